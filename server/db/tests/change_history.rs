//! A project's change history, what files changed together are learned from: saves and agent
//! edits newest first under the files' current paths, never the import's revisions, never
//! another project's, never binary files.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use chrono::{Duration, Utc};
use db::tables::file_revisions::RevisionSource;
use db::testing::{TestDatabase, backends};
use db::{Authorship, FileBody, ProjectFields, SaveOutcome};

#[tokio::test]
async fn the_history_holds_saves_under_current_paths_newest_first() {
    for backend in backends() {
        let test_database = TestDatabase::migrated(backend).await;
        let database = &test_database.database;
        // Whole seconds: Postgres keeps microseconds.
        let start = chrono::DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).unwrap();
        let user = database
            .create_user(
                db::NewUser {
                    email: "history@example.com".into(),
                    name: "History".into(),
                    password_hash: "hash".into(),
                },
                start,
            )
            .await
            .unwrap();
        let fields = |name: &str| ProjectFields {
            name: name.into(),
            description: None,
            repository_url: None,
        };
        let project = database
            .create_project(user.id, fields("history"), start, None)
            .await
            .unwrap();
        let other = database
            .create_project(user.id, fields("other"), start, None)
            .await
            .unwrap();
        let imported = Authorship {
            author: Some(user.id),
            source: RevisionSource::Import,
        };
        let by_user = Authorship {
            author: Some(user.id),
            source: RevisionSource::User,
        };
        let by_agent = Authorship {
            author: Some(user.id),
            source: RevisionSource::Agent,
        };
        let create = |project, path: &'static str, body: FileBody, authorship| {
            database.create_file(project, path, body, None, authorship, start)
        };
        let parse = create(
            project.id,
            "src/parse.rs",
            FileBody::Text("a".into()),
            imported,
        )
        .await
        .unwrap()
        .unwrap();
        let lexer = create(
            project.id,
            "src/lex.rs",
            FileBody::Text("b".into()),
            imported,
        )
        .await
        .unwrap()
        .unwrap();
        let image = create(
            project.id,
            "logo.png",
            FileBody::Binary(vec![0, 1]),
            imported,
        )
        .await
        .unwrap()
        .unwrap();
        create(
            project.id,
            "src/new.rs",
            FileBody::Text("c".into()),
            by_user,
        )
        .await
        .unwrap()
        .unwrap();
        let elsewhere = create(
            other.id,
            "src/parse.rs",
            FileBody::Text("d".into()),
            by_user,
        )
        .await
        .unwrap()
        .unwrap();

        let save = |project, file: &db::tables::files::Model, authorship, minutes| {
            let body = if file.is_binary {
                FileBody::Binary(vec![2, 3])
            } else {
                FileBody::Text(format!("saved at {minutes}"))
            };
            database.save_file(
                project,
                file.id,
                file.version,
                body,
                authorship,
                start + Duration::minutes(minutes),
            )
        };
        let Some(SaveOutcome::Saved(_)) = save(project.id, &parse, by_user, 1).await.unwrap()
        else {
            panic!("{backend:?}: the save failed");
        };
        let Some(SaveOutcome::Saved(_)) = save(project.id, &lexer, by_agent, 2).await.unwrap()
        else {
            panic!("{backend:?}: the save failed");
        };
        let Some(SaveOutcome::Saved(_)) = save(project.id, &image, by_user, 3).await.unwrap()
        else {
            panic!("{backend:?}: the save failed");
        };
        let Some(SaveOutcome::Saved(_)) = save(other.id, &elsewhere, by_user, 4).await.unwrap()
        else {
            panic!("{backend:?}: the save failed");
        };
        database
            .move_entry(project.id, "src/lex.rs", "src/lexer.rs", start)
            .await
            .unwrap()
            .unwrap();

        let history = database.change_history(project.id, 10).await.unwrap();
        let seen: Vec<(&str, i64)> = history
            .iter()
            .map(|change| {
                (
                    change.path.as_str(),
                    (change.created_at - start).num_minutes(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [("src/lexer.rs", 2), ("src/parse.rs", 1), ("src/new.rs", 0)],
            "{backend:?}"
        );
        assert!(
            history.iter().all(|change| change.author == Some(user.id)),
            "{backend:?}"
        );
        let newest = database.change_history(project.id, 1).await.unwrap();
        assert_eq!(newest.len(), 1, "{backend:?}");
    }
}
