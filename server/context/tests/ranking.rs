//! Ranking, the repo map's budget, the manifest, and the index kept up to date file by file.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;

use context::index::Index;
use context::manifest::{Candidate, Choice, ItemKind, Selection, choose};
use context::map::render;
use context::{Change, RankRequest, TokenizerFamily, mentioned_files, mentioned_names};
use rustc_hash::FxHashSet;

fn project() -> Vec<(String, String)> {
    let mut files = vec![
        (
            "src/main.rs".to_owned(),
            "fn main() { let total = compute_invoice_total(3); render_report(total); }\n".to_owned(),
        ),
        (
            "src/billing.rs".to_owned(),
            "pub fn compute_invoice_total(items: u32) -> u32 { apply_tax_rate(items) }\n".to_owned(),
        ),
        (
            "src/tax.rs".to_owned(),
            "pub fn apply_tax_rate(amount: u32) -> u32 { amount * 2 }\n".to_owned(),
        ),
        (
            "src/report.rs".to_owned(),
            "pub fn render_report(total: u32) { print_line(total) }\npub fn print_line(value: u32) {}\n"
                .to_owned(),
        ),
        ("README.md".to_owned(), "# Demo\n".to_owned()),
        ("node_modules/left-pad/index.js".to_owned(), "function leftPad() {}\n".to_owned()),
        ("Cargo.lock".to_owned(), "# lock\n".to_owned()),
        (".gitignore".to_owned(), "scratch/\n".to_owned()),
        ("scratch/notes.rs".to_owned(), "fn compute_invoice_total() {}\n".to_owned()),
    ];
    // Unrelated files that call each other but nothing of the above.
    for number in 0..30 {
        files.push((
            format!("src/unrelated/module_{number}.rs"),
            format!(
                "pub fn unrelated_helper_{number}() {{ unrelated_helper_{}(); }}\n",
                (number + 1) % 30
            ),
        ));
    }
    files
}

fn build() -> Index {
    Index::build(&project(), 2, &AtomicUsize::new(0))
}

fn request(current: &str, message: &str) -> RankRequest {
    RankRequest {
        chat_files: vec![current.to_owned()],
        mentioned_files: Vec::new(),
        recent_files: Vec::new(),
        mentioned_names: mentioned_names(message),
        co_changed: Vec::new(),
    }
}

#[test]
fn the_file_defining_what_the_current_file_calls_ranks_first() {
    let index = build();
    let ranking = index
        .graph()
        .rank(&request("src/main.rs", "why is the total wrong?"));
    let files = ranking.files();
    let billing = files.iter().position(|file| *file == "src/billing.rs");
    let report = files.iter().position(|file| *file == "src/report.rs");
    let unrelated = files
        .iter()
        .position(|file| file.starts_with("src/unrelated/"));
    assert!(billing.is_some() && report.is_some(), "{files:?}");
    assert!(billing < unrelated && report < unrelated, "{files:?}");
    assert!(
        !files.contains(&"src/main.rs"),
        "the current file is sent whole, not mapped"
    );
}

#[test]
fn a_mentioned_name_lifts_its_file() {
    let index = build();
    let position = |message: &str, file: &str| {
        index
            .graph()
            .rank(&request("src/main.rs", message))
            .files()
            .iter()
            .position(|candidate| *candidate == file)
    };
    // main.rs calls into billing.rs and report.rs; naming one of them puts its file first.
    assert_eq!(
        position("why is render_report slow?", "src/report.rs"),
        Some(0)
    );
    assert!(
        position("is compute_invoice_total right?", "src/billing.rs")
            < position("is compute_invoice_total right?", "src/report.rs")
    );
    // A file named by its path lifts what it uses (as in Aider, its own definitions rank by
    // who uses them).
    let used = "src/unrelated/module_8.rs";
    assert!(position("look at module_7", used) < position("hello", used));
}

#[test]
fn left_out_files_say_why() {
    let index = build();
    let excluded = index.excluded();
    assert_eq!(
        excluded
            .get("node_modules/left-pad/index.js")
            .map(|e| e.reason()),
        Some("vendored (third-party code)")
    );
    assert_eq!(
        excluded.get("Cargo.lock").map(|e| e.reason()),
        Some("generated")
    );
    assert_eq!(
        excluded.get("scratch/notes.rs").map(|e| e.reason()),
        Some("ignored by the project's ignore files")
    );
    assert!(index.file("src/main.rs").is_some());
}

#[test]
fn the_map_never_exceeds_its_budget() {
    let index = build();
    let ranking = index.graph().rank(&request("src/main.rs", "total"));
    for family in [
        TokenizerFamily::O200k,
        TokenizerFamily::Cl100k,
        TokenizerFamily::Anthropic,
    ] {
        for budget in [0, 5, 20, 40, 80, 160, 1000] {
            let map = render(&index, &ranking, budget, family, &FxHashSet::default());
            assert!(map.tokens <= budget, "{budget}: {}", map.tokens);
            assert_eq!(map.tokens, family.count(&map.text()));
        }
    }
    let roomy = render(
        &index,
        &ranking,
        1000,
        TokenizerFamily::O200k,
        &FxHashSet::default(),
    );
    let text = roomy.text();
    assert!(text.contains("src/billing.rs:\n"), "{text}");
    assert!(
        text.contains("│pub fn compute_invoice_total(items: u32) -> u32 {"),
        "{text}"
    );
}

fn candidate(kind: ItemKind, label: &str, content: &str) -> Candidate {
    Candidate {
        kind,
        label: label.to_owned(),
        reason: "test".into(),
        score: 1.0,
        content: content.to_owned(),
        language: None,
    }
}

#[test]
fn the_manifest_keeps_the_budget_and_the_users_choices() {
    let index = build();
    let big = "word ".repeat(400);
    for budget in [50, 200, 600, 2000] {
        let choices = BTreeMap::new();
        let manifest = choose(
            &index,
            Selection {
                budget,
                family: TokenizerFamily::O200k,
                candidates: vec![
                    candidate(ItemKind::CurrentFile, "src/main.rs", "fn main() {}"),
                    candidate(ItemKind::ErrorLocation, "src/tax.rs:1", &big),
                ],
                map: Some(request("src/main.rs", "total")),
                choices: &choices,
            },
        );
        let sent: u32 = manifest
            .items
            .iter()
            .filter(|item| item.included)
            .map(|item| item.tokens)
            .sum();
        assert!(sent <= budget, "{budget}: {sent}");
        assert_eq!(sent, manifest.used);
        for item in &manifest.items {
            assert_eq!(item.included, !item.content.is_empty() || item.tokens == 0);
        }
    }

    let mut choices = BTreeMap::new();
    choices.insert("symbols:src/billing.rs".to_owned(), Choice::Dropped);
    choices.insert(
        "symbols:src/unrelated/module_3.rs".to_owned(),
        Choice::Pinned,
    );
    choices.insert("error_location:src/tax.rs:1".to_owned(), Choice::Dropped);
    let manifest = choose(
        &index,
        Selection {
            budget: 2000,
            family: TokenizerFamily::O200k,
            candidates: vec![candidate(ItemKind::ErrorLocation, "src/tax.rs:1", "x")],
            map: Some(request("src/main.rs", "total")),
            choices: &choices,
        },
    );
    let find = |key: &str| manifest.items.iter().find(|item| item.key == key);
    let billing = find("symbols:src/billing.rs").map(|item| (item.included, item.choice));
    assert_eq!(billing, Some((false, Some(Choice::Dropped))));
    let pinned = find("symbols:src/unrelated/module_3.rs");
    assert!(pinned.is_some_and(|item| item.included && item.choice == Some(Choice::Pinned)));
    let dropped = find("error_location:src/tax.rs:1");
    assert!(dropped.is_some_and(|item| !item.included && item.reason.contains("dropped by you")));
    assert!(
        manifest
            .left_out
            .iter()
            .any(|group| group.reason == "generated")
    );
}

#[test]
fn an_edit_reindexes_one_file_and_moves_the_ranking() {
    let mut index = build();
    assert_eq!(
        index.update(
            "src/tax.rs",
            b"pub fn apply_tax_rate(amount: u32) -> u32 { amount * 2 }\n"
        ),
        Change::Unchanged
    );
    // main.rs now calls the tax code directly.
    let change = index.update(
        "src/main.rs",
        b"fn main() { apply_tax_rate(1); apply_tax_rate(2); unrelated_helper_9(); }\n",
    );
    assert_eq!(change, Change::Indexed);
    let ranking = index.graph().rank(&request("src/main.rs", ""));
    let files = ranking.files();
    let tax = files.iter().position(|file| *file == "src/tax.rs");
    let report = files.iter().position(|file| *file == "src/report.rs");
    assert!(tax < report, "{files:?}");

    index.rename("src/tax.rs", "src/finance/tax.rs");
    assert!(index.file("src/tax.rs").is_none());
    assert!(index.file("src/finance/tax.rs").is_some());
    let files = index
        .graph()
        .rank(&request("src/main.rs", ""))
        .files()
        .join(",");
    assert!(files.contains("src/finance/tax.rs"), "{files}");

    index.remove("src/unrelated");
    assert!(
        index
            .files()
            .keys()
            .all(|path| !path.starts_with("src/unrelated/"))
    );
    index.remove("src/finance/tax.rs");
    let files = index
        .graph()
        .rank(&request("src/main.rs", ""))
        .files()
        .join(",");
    assert!(!files.contains("tax.rs"), "{files}");

    assert_eq!(
        index.update("src/blob.rs", b"\0\0\0binary"),
        Change::Excluded(context::exclude::Exclusion::Binary)
    );
}

#[test]
fn the_index_survives_a_restart() {
    let directory = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let path = directory.path().join("project.index");
    let index = build();
    index.save(&path).unwrap_or_else(|error| panic!("{error}"));
    let loaded = Index::load(&path).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(loaded.files(), index.files());
    assert_eq!(loaded.excluded(), index.excluded());
    let before = index
        .graph()
        .rank(&request("src/main.rs", "total"))
        .files()
        .join(",");
    let after = loaded
        .graph()
        .rank(&request("src/main.rs", "total"))
        .files()
        .join(",");
    assert_eq!(before, after);

    std::fs::write(&path, b"not an index").unwrap_or_else(|error| panic!("{error}"));
    assert!(Index::load(&path).is_err());
}

#[test]
fn messages_mention_files_and_names() {
    let paths = [
        "src/main.rs",
        "src/billing.rs",
        "web/main.rs",
        "docs/guide.md",
    ];
    let found = mentioned_files("see `src/billing.rs`, and guide.md or main.rs?", paths);
    assert_eq!(
        found,
        vec!["docs/guide.md".to_owned(), "src/billing.rs".to_owned()]
    );
    let names = mentioned_names("why does compute_total(x) fail?");
    assert!(names.contains("compute_total") && names.contains("fail"));
}

#[test]
fn identical_files_are_each_indexed_from_one_parse() {
    let source = "pub fn shared_helper() -> u32 {\n    inner_call()\n}\n";
    let files: Vec<(String, String)> = vec![
        ("crate-1.0/src/lib.rs".to_owned(), source.to_owned()),
        ("crate-1.1/src/lib.rs".to_owned(), source.to_owned()),
        // Same bytes, another language: parsed as that language.
        ("copy/lib.py".to_owned(), source.to_owned()),
        // Same bytes in a vendored folder: still left out by its path.
        ("vendor/crate/src/lib.rs".to_owned(), source.to_owned()),
        ("other/src/lib.rs".to_owned(), "fn other() {}\n".to_owned()),
    ];
    for workers in [1, 2, 4] {
        let index = Index::build(&files, workers, &AtomicUsize::new(0));
        let first = index.file("crate-1.0/src/lib.rs").expect("indexed");
        let second = index.file("crate-1.1/src/lib.rs").expect("indexed");
        assert_eq!(first, second);
        assert_eq!(first.tags.definitions[0].name, "shared_helper");
        assert_eq!(first.tags.references, vec![("inner_call".to_owned(), 1)]);
        let python = index.file("copy/lib.py").expect("indexed");
        assert_eq!(python.hash, first.hash);
        assert_ne!(python.tags, first.tags);
        assert_eq!(
            index
                .excluded()
                .get("vendor/crate/src/lib.rs")
                .map(|e| e.reason()),
            Some("vendored (third-party code)")
        );
        assert_eq!(
            index
                .file("other/src/lib.rs")
                .expect("indexed")
                .tags
                .definitions[0]
                .name,
            "other"
        );
    }
}
