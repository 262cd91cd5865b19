//! Each ranking signal on a small synthetic project: the file it should bring up ranks near the
//! top for the request, with the reason the manifest gives; copies and mirrored folders are left
//! out, saying why.

use std::sync::atomic::AtomicUsize;

use context::index::Index;
use context::{RankRequest, mentioned_files, mentioned_names};

fn project() -> Vec<(String, String)> {
    let mut files: Vec<(&str, String)> = vec![
        // TypeScript: the current file, what it imports, who imports it, a same-folder file.
        (
            "src/server/listen.ts",
            "import { parseOptions } from './options'\n\
             export function listen(port: number) { return parseOptions(port) }\n\
             export function closeServer() {}\n"
                .into(),
        ),
        (
            "src/server/options.ts",
            "export function parseOptions(port: number) { return { port } }\n".into(),
        ),
        (
            "src/server/index.ts",
            "export * from './listen'\nexport * from './options'\n".into(),
        ),
        (
            "src/app.ts",
            "import { listen } from './server'\nexport function startApp() { listen(80) }\n".into(),
        ),
        (
            "src/server/tls.ts",
            "export function loadCertificates() { return [] }\n".into(),
        ),
        (
            "src/retry/backoff.ts",
            "export function computeBackoff(attempt: number) {\n  // a request timeout grows\n  const timeout = attempt * 2\n  return timeout\n}\n".into(),
        ),
        // A copy of backoff.ts (same content) and a generated mirror of src/server.
        (
            "src/legacy/backoff.ts",
            "export function computeBackoff(attempt: number) {\n  // a request timeout grows\n  const timeout = attempt * 2\n  return timeout\n}\n".into(),
        ),
        (
            "deno_dist/server/listen.ts",
            "import { parseOptions } from './options.ts'\n\
             export function listen(port: number) { return parseOptions(port) }\n\
             export function closeServer() {}\n"
                .into(),
        ),
        (
            "deno_dist/server/options.ts",
            "export function parseOptions(port: number) { return { port } }\n".into(),
        ),
        (
            "deno_dist/server/tls.ts",
            "export function loadCertificates() { return [] }\n".into(),
        ),
        (
            "deno_dist/app.ts",
            "import { listen } from './server/index.ts'\nexport function startApp() { listen(80) }\n"
                .into(),
        ),
        // A hub everything uses.
        (
            "src/core/hub.ts",
            "export function hubHelper() {}\nexport function hubLogger() {}\n".into(),
        ),
        // Rust: a module declared and re-exported by its mod.rs, used by another module.
        ("crate/src/lib.rs", "pub mod net;\npub mod client;\n".into()),
        (
            "crate/src/net/mod.rs",
            "mod socket;\npub use socket::Socket;\n".into(),
        ),
        (
            "crate/src/net/socket.rs",
            "pub struct Socket;\nimpl Socket {\n    pub fn connect_socket() {}\n}\n".into(),
        ),
        (
            "crate/src/client.rs",
            "use crate::net::Socket;\npub fn run_client() { Socket::connect_socket(); }\n".into(),
        ),
        // Python: a test importing the module by its package path.
        (
            "pkg/app.py",
            "def create_app(config):\n    return config\n\ndef configure_logging():\n    pass\n".into(),
        ),
        (
            "tests/test_app.py",
            "from pkg.app import create_app\n\ndef test_create():\n    assert create_app(1) == 1\n".into(),
        ),
    ];
    // Unrelated files that use the hub (and so make it central).
    for number in 0..40 {
        files.push((
            Box::leak(format!("src/features/feature_{number}.ts").into_boxed_str()),
            format!(
                "import {{ hubHelper, hubLogger }} from '../core/hub'\nexport function feature{number}() {{ hubHelper(); hubLogger() }}\n"
            ),
        ));
    }
    files
        .into_iter()
        .map(|(path, content)| (path.to_owned(), content))
        .collect()
}

fn index() -> Index {
    Index::build(&project(), 2, &AtomicUsize::new(0))
}

fn request(index: &Index, current: &str, message: &str) -> RankRequest {
    RankRequest {
        chat_files: vec![current.to_owned()],
        mentioned_files: mentioned_files(message, index.files().keys().map(String::as_str)),
        recent_files: Vec::new(),
        mentioned_names: mentioned_names(message),
        co_changed: Vec::new(),
    }
}

/// (current file, request, file expected, within the first n, words its reason has)
const CASES: &[(&str, &str, &str, usize, &str)] = &[
    (
        "src/server/listen.ts",
        "let the server listen twice",
        "src/server/options.ts",
        3,
        "imported by the current file",
    ),
    (
        "src/server/listen.ts",
        "let the server listen twice",
        "src/server/index.ts",
        3,
        "imports the current file",
    ),
    (
        "src/server/listen.ts",
        "let the server listen twice",
        "src/app.ts",
        5,
        "uses the current file ('listen')",
    ),
    (
        "src/server/listen.ts",
        "let the server listen twice",
        "src/server/tls.ts",
        5,
        "same folder",
    ),
    (
        "src/server/listen.ts",
        "listen should give up after a timeout",
        "src/retry/backoff.ts",
        3,
        "mentions 'timeout'",
    ),
    (
        "crate/src/net/socket.rs",
        "sockets connect lazily",
        "crate/src/net/mod.rs",
        3,
        "imports the current file",
    ),
    (
        "crate/src/net/socket.rs",
        "sockets connect lazily",
        "crate/src/client.rs",
        5,
        "uses the current file",
    ),
    (
        "pkg/app.py",
        "create_app takes a config",
        "tests/test_app.py",
        3,
        "imports the current file",
    ),
];

#[test]
fn each_signal_brings_its_file_up_with_its_reason() {
    let index = index();
    for (current, message, expected, within, reason) in CASES {
        let ranking = index.rank(&request(&index, current, message), usize::MAX);
        let files = ranking.files();
        let position = files.iter().position(|file| file == expected);
        assert!(
            position.is_some_and(|position| position < *within),
            "{expected} for {current} and {message:?}: at {position:?} in {files:?}"
        );
        let why = ranking.reasons.get(*expected).map_or("", String::as_str);
        assert!(
            why.contains(reason),
            "{expected} for {current} and {message:?}: reasons {why:?}, not {reason:?}"
        );
    }
}

#[test]
fn a_hub_matching_nothing_of_the_request_stays_out_of_the_first_files() {
    let index = index();
    let ranking = index.rank(
        &request(
            &index,
            "src/server/listen.ts",
            "let the server listen twice",
        ),
        usize::MAX,
    );
    let files = ranking.files();
    let hub = files.iter().position(|file| *file == "src/core/hub.ts");
    assert!(hub.is_none_or(|position| position >= 5), "{files:?}");
}

#[test]
fn copies_and_mirrored_folders_are_left_out_with_why() {
    let index = index();
    let graph = index.graph();
    let left: Vec<(String, String, String)> = graph
        .left_out()
        .into_iter()
        .map(|(path, why, kept)| (path.to_owned(), why.reason(), kept.to_owned()))
        .collect();
    let find = |path: &str| left.iter().find(|(left, _, _)| left == path);
    // Of two files with the same content, the one under a folder named like a copy is left.
    let (_, why, kept) = find("src/legacy/backoff.ts").expect("the copy is left out");
    assert_eq!(kept, "src/retry/backoff.ts");
    assert!(why.contains("same content"), "{why}");
    for mirrored in [
        "deno_dist/server/listen.ts",
        "deno_dist/server/options.ts",
        "deno_dist/server/tls.ts",
        "deno_dist/app.ts",
    ] {
        let (_, why, kept) = find(mirrored).unwrap_or_else(|| panic!("{mirrored}: {left:?}"));
        assert_eq!(kept, &mirrored.replace("deno_dist/", "src/"));
        // Files that differ from their original (an import rewritten) are left as part of the
        // mirror; identical ones as copies.
        if mirrored.ends_with("listen.ts") || mirrored.ends_with("app.ts") {
            assert!(why.contains("a mirror of src/ in deno_dist/"), "{why}");
        } else {
            assert!(why.contains("same content"), "{why}");
        }
    }
    // None of them is ranked, whatever the request.
    let ranking = index.rank(
        &request(&index, "src/server/listen.ts", "listen timeout options"),
        usize::MAX,
    );
    for file in ranking.files() {
        assert!(find(file).is_none(), "{file} is ranked");
    }
    // The manifest says why they are not in the map.
    let manifest = context::choose(
        &index,
        context::Selection {
            budget: 2000,
            family: context::TokenizerFamily::Cl100k,
            candidates: Vec::new(),
            map: Some(request(&index, "src/server/listen.ts", "listen")),
            choices: &Default::default(),
        },
    );
    assert!(
        manifest
            .left_out
            .iter()
            .any(|group| group.reason.contains("mirror of src/") && group.count == 2),
        "{:?}",
        manifest.left_out
    );
    let listed = manifest
        .items
        .iter()
        .find(|item| item.label == "src/server/options.ts")
        .expect("options.ts is in the map");
    assert!(
        listed.reason.contains("imported by the current file"),
        "{}",
        listed.reason
    );
}

#[test]
fn changed_together_and_recent_files_come_first_when_given() {
    let index = index();
    let mut request = request(
        &index,
        "src/server/listen.ts",
        "let the server listen twice",
    );
    request.co_changed = vec![("src/features/feature_7.ts".to_owned(), 6)];
    let ranking = index.rank(&request, usize::MAX);
    let files = ranking.files();
    let position = files
        .iter()
        .position(|file| *file == "src/features/feature_7.ts");
    assert!(position.is_some_and(|position| position < 5), "{files:?}");
    assert!(
        ranking.reasons["src/features/feature_7.ts"].contains("changed together 6 times"),
        "{:?}",
        ranking.reasons.get("src/features/feature_7.ts")
    );
}

#[test]
fn words_and_imports_survive_saving_and_an_edit() {
    let mut index = index();
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = folder.path().join("project.index");
    index.save(&file).expect("saved");
    let loaded = Index::load(&file).expect("read back");
    assert_eq!(
        loaded
            .file("src/retry/backoff.ts")
            .map(|entry| &entry.words),
        index.file("src/retry/backoff.ts").map(|entry| &entry.words)
    );
    assert_eq!(
        loaded
            .file("src/server/listen.ts")
            .map(|entry| entry.imports.clone()),
        Some(vec!["./options".to_owned()])
    );
    // An edit that drops the import drops the tie.
    index.update(
        "src/server/listen.ts",
        b"export function listen(port: number) { return port }\n",
    );
    let ranking = index.rank(
        &request(
            &index,
            "src/server/listen.ts",
            "let the server listen twice",
        ),
        usize::MAX,
    );
    let why = ranking
        .reasons
        .get("src/server/options.ts")
        .map_or("", String::as_str);
    assert!(!why.contains("imported by the current file"), "{why}");
}

#[test]
fn a_long_request_keeps_its_rarest_words() {
    // Seventy words the two feature files both have, and one only backoff.ts has: sorted, the
    // rare word comes last, and a request counting its first words only would lose it.
    let filler: Vec<String> = (0..70).map(|number| format!("aaword{number}")).collect();
    let mut files = project();
    for name in ["src/features/feature_1.ts", "src/features/feature_2.ts"] {
        let file = files
            .iter_mut()
            .find(|(path, _)| path == name)
            .expect("the feature file");
        file.1.push_str(&format!("// {}\n", filler.join(" ")));
    }
    let index = Index::build(&files, 2, &AtomicUsize::new(0));
    let message = format!("{} timeout", filler.join(" "));
    let ranking = index.rank(
        &request(&index, "src/server/listen.ts", &message),
        usize::MAX,
    );
    let files = ranking.files();
    let position = files
        .iter()
        .position(|file| *file == "src/retry/backoff.ts");
    // Behind the two files with the seventy words, ahead of every file with none.
    let unrelated = files
        .iter()
        .position(|file| *file == "src/features/feature_0.ts");
    assert!(
        position.is_some_and(|position| position < 10 && Some(position) < unrelated),
        "{files:?}"
    );
    let why = ranking
        .reasons
        .get("src/retry/backoff.ts")
        .map_or("", String::as_str);
    assert!(why.contains("mentions 'timeout'"), "{why}");
}
