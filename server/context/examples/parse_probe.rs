#![allow(clippy::print_stdout, clippy::unwrap_used)]
use std::time::Instant;
use streaming_iterator::StreamingIterator;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = &args[1];
    let paths: Vec<String> = std::fs::read_to_string(&args[2])
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let files: Vec<String> = paths
        .iter()
        .map(|p| std::fs::read_to_string(format!("{root}/{p}")).unwrap_or_default())
        .collect();
    let mut parser = tree_sitter::Parser::new();
    let lang = context::Language::Rust;
    parser.set_language(&lang.grammar()).unwrap();
    let started = Instant::now();
    let mut trees = Vec::new();
    let mut bytes = 0;
    for f in &files {
        bytes += f.len();
        trees.push(parser.parse(f, None));
    }
    println!("parse {:?} {} MB", started.elapsed(), bytes / 1_000_000);
    let query = lang.tags_query().unwrap();
    let started = Instant::now();
    let mut n = 0;
    for (f, t) in files.iter().zip(&trees) {
        if let Some(t) = t {
            let mut cursor = tree_sitter::QueryCursor::new();
            let mut m = cursor.matches(query, t.root_node(), f.as_bytes());
            while m.next().is_some() {
                n += 1;
            }
        }
    }
    println!("query {:?} {n} matches", started.elapsed());
    let started = Instant::now();
    for f in &files {
        std::hint::black_box(context::tags::extract(lang, f));
    }
    println!("extract {:?}", started.elapsed());
}
