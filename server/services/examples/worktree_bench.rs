//! Worktree materialisation figures (printed, not asserted): a project of 5,000 files written
//! cold into an empty worktree, again with nothing changed, and after one saved file (the case
//! every run after an edit pays; the target is 50 ms or less).
//!
//! `cargo run --release -p services --example worktree_bench [files]`

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use chrono::Utc;
use db::ids::ProjectId;
use db::queries::NewUser;
use db::tables::file_revisions::RevisionSource;
use db::tables::projects;
use db::testing::TestDatabase;
use db::{Authorship, FileBody};
use services::runner::worktree::Worktrees;

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(5_000);
    let test = TestDatabase::migrated(db::Backend::Sqlite).await;
    let database = &test.database;
    let now = Utc::now();
    let user = database
        .create_user(
            NewUser {
                email: "bench@example.com".to_owned(),
                name: "Bench".to_owned(),
                password_hash: "x".to_owned(),
            },
            now,
        )
        .await
        .unwrap();
    let folders: Vec<String> = (0..count.div_ceil(50))
        .map(|folder| format!("src/module{folder:03}"))
        .chain(std::iter::once("src".to_owned()))
        .collect();
    let files: Vec<(String, FileBody, Option<String>)> = (0..count)
        .map(|index| {
            let text = format!(
                "// file {index}\n{}",
                "fn body() { let value = 42; }\n".repeat(60)
            );
            (
                format!("src/module{:03}/file{index}.rs", index / 50),
                FileBody::Text(text),
                None,
            )
        })
        .collect();
    let bytes: usize = files
        .iter()
        .map(|(_, body, _)| usize::try_from(body.size()).unwrap())
        .sum();
    let project = database
        .create_project_with_tree(
            projects::Model {
                id: ProjectId::new(),
                owner_id: user.id,
                name: "bench".to_owned(),
                description: None,
                repository_url: None,
                created_at: now,
                updated_at: now,
            },
            &folders,
            files,
            Authorship {
                author: Some(user.id),
                source: RevisionSource::Import,
            },
            None,
        )
        .await
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let worktrees = Worktrees::new(folder.path().join("worktrees"), None);

    let cold = worktrees.materialise(database, project.id).await.unwrap();
    println!(
        "worktree of {} files ({:.1} MB), SQLite, this machine:",
        cold.files,
        bytes as f64 / 1e6
    );
    println!(
        "  cold (empty worktree):   {:>8.1} ms  ({} written)",
        millis(cold.elapsed),
        cold.written
    );
    let unchanged = worktrees.materialise(database, project.id).await.unwrap();
    println!(
        "  nothing changed:         {:>8.1} ms  ({} written)",
        millis(unchanged.elapsed),
        unchanged.written
    );
    let mut after_save = Vec::new();
    for round in 0..20 {
        let file = database
            .find_file_by_path(project.id, &format!("src/module000/file{}.rs", round % 50))
            .await
            .unwrap()
            .unwrap();
        database
            .save_file(
                project.id,
                file.id,
                file.version,
                FileBody::Text(format!("// saved {round}\n")),
                Authorship {
                    author: Some(user.id),
                    source: RevisionSource::User,
                },
                Utc::now(),
            )
            .await
            .unwrap()
            .unwrap();
        let started = Instant::now();
        let saved = worktrees.materialise(database, project.id).await.unwrap();
        assert_eq!(saved.written, 1);
        after_save.push(started.elapsed());
    }
    after_save.sort();
    println!(
        "  after one save (20x):    {:>8.1} ms p50, {:.1} ms max  (1 written; target <= 50 ms)",
        millis(after_save[after_save.len() / 2]),
        millis(after_save[after_save.len() - 1])
    );
}
