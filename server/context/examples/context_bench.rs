//! Builds the repo map of a folder and times it, for `scripts/bench-context` (which runs Aider's
//! on the same files and prints both side by side).
//!
//! `context_bench <root> <file list> <chat file> <budget> <requests (one per line: words)>`
//! prints one JSON object: cold build, request and edit timings, and the top 20 files.

#![allow(clippy::print_stdout)]

use std::io::Write;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use context::index::Index;

use context::map::render;
use context::{RankRequest, TokenizerFamily, mentioned_names};
use rustc_hash::FxHashSet;

fn percentile(samples: &mut [f64], fraction: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    if samples.is_empty() {
        return 0.0;
    }
    let position = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[position]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().collect();
    let [_, root, list, chat_file, budget, requests] = arguments.as_slice() else {
        return Err(
            "usage: context_bench <root> <file list> <chat file> <budget> <requests file>".into(),
        );
    };
    let budget: u32 = budget.parse()?;
    let family = TokenizerFamily::Cl100k;
    let paths: Vec<String> = std::fs::read_to_string(list)?
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    let requests: Vec<String> = std::fs::read_to_string(requests)?
        .lines()
        .map(str::to_owned)
        .collect();
    let workers = std::thread::available_parallelism().map_or(1, |count| count.get());
    let index_file =
        std::env::temp_dir().join(format!("context-bench-{}.index", std::process::id()));
    let request_for = |words: &str| RankRequest {
        chat_files: vec![chat_file.clone()],
        mentioned_files: Vec::new(),
        recent_files: Vec::new(),
        mentioned_names: mentioned_names(words),
        co_changed: Vec::new(),
    };

    // Cold: read every file, index, save, rank and render one map.
    let started = Instant::now();
    let files: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|path| Ok((path.clone(), std::fs::read(format!("{root}/{path}"))?)))
        .collect::<Result<_, std::io::Error>>()?;
    let index = Index::build(&files, workers, &AtomicUsize::new(0));
    let indexed = started.elapsed().as_secs_f64();
    index.save(&index_file)?;
    let graph = index.graph();
    let first_words = requests.first().cloned().unwrap_or_default();
    let ranking = graph.rank_best(
        &request_for(&first_words),
        context::manifest::map_limit(budget),
    );
    let map = render(&index, &ranking, budget, family, &FxHashSet::default());
    let cold = started.elapsed().as_secs_f64();
    let top: Vec<String> = ranking
        .files()
        .into_iter()
        .take(20)
        .map(str::to_owned)
        .collect();
    let saved_bytes = std::fs::metadata(&index_file)?.len();

    // Restart: read the saved index back.
    let started = Instant::now();
    let mut index = Index::load(&index_file)?;
    let loaded = started.elapsed().as_secs_f64();

    // New requests on the unchanged project (the graph is built once, then reused).
    let mut request_times = Vec::new();
    for words in requests.iter().cycle().take(requests.len().max(1) * 5) {
        let started = Instant::now();
        let ranking = index
            .graph()
            .rank_best(&request_for(words), context::manifest::map_limit(budget));
        let map = render(&index, &ranking, budget, family, &FxHashSet::default());
        std::hint::black_box(map);
        request_times.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    // One file edited, then a request.
    let mut edit_times = Vec::new();
    let edited = paths
        .iter()
        .find(|path| {
            *path != chat_file
                && index
                    .file(path)
                    .is_some_and(|entry| !entry.tags.definitions.is_empty())
        })
        .cloned()
        .unwrap_or_else(|| chat_file.clone());
    let original = std::fs::read(format!("{root}/{edited}"))?;
    for (round, words) in requests.iter().cycle().take(20).enumerate() {
        let mut content = original.clone();
        content.extend_from_slice(format!("\n// edit {round}\n").as_bytes());
        let started = Instant::now();
        index.update(&edited, &content);
        let ranking = index
            .graph()
            .rank_best(&request_for(words), context::manifest::map_limit(budget));
        let map = render(&index, &ranking, budget, family, &FxHashSet::default());
        std::hint::black_box(map);
        edit_times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    if let Err(error) = std::fs::remove_file(&index_file) {
        eprintln!("could not remove {}: {error}", index_file.display());
    }

    let json = format!(
        "{{\"files\":{},\"indexed\":{},\"cold_seconds\":{cold:.4},\"index_seconds\":{indexed:.4},\"load_seconds\":{loaded:.4},\"saved_bytes\":{saved_bytes},\"map_tokens\":{},\"request_p50_ms\":{:.3},\"request_p95_ms\":{:.3},\"edit_p50_ms\":{:.3},\"edit_p95_ms\":{:.3},\"edited\":{:?},\"top\":[{}]}}",
        paths.len(),
        index.files().len(),
        map.tokens,
        percentile(&mut request_times.clone(), 0.5),
        percentile(&mut request_times, 0.95),
        percentile(&mut edit_times.clone(), 0.5),
        percentile(&mut edit_times, 0.95),
        edited,
        top.iter()
            .map(|file| format!("{file:?}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{json}")?;
    Ok(())
}
