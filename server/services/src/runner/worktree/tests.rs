#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use chrono::Utc;
use db::ids::ProjectId;
use db::queries::NewUser;
use db::tables::file_revisions::RevisionSource;
use db::tables::projects;
use db::testing::{TestDatabase, backends};
use db::{Authorship, FileBody};

use super::*;

/// A project of `files` (path, text) owned by a new user.
pub(crate) async fn project_with(
    database: &db::Database,
    files: Vec<(String, String)>,
) -> (db::ids::UserId, ProjectId) {
    let now = Utc::now();
    let user = database
        .create_user(
            NewUser {
                email: format!("{}@example.com", db::ids::RunId::new()),
                name: "Runner".to_owned(),
                password_hash: "x".to_owned(),
            },
            now,
        )
        .await
        .unwrap();
    let project = projects::Model {
        id: ProjectId::new(),
        owner_id: user.id,
        name: "worktree".to_owned(),
        description: None,
        repository_url: None,
        created_at: now,
        updated_at: now,
    };
    let mut folders: Vec<String> = files
        .iter()
        .flat_map(|(path, _)| db::queries::files::ancestors(path))
        .map(str::to_owned)
        .collect();
    folders.sort();
    folders.dedup();
    let project = database
        .create_project_with_tree(
            project,
            &folders,
            files
                .into_iter()
                .map(|(path, text)| (path, FileBody::Text(text), None))
                .collect(),
            Authorship {
                author: Some(user.id),
                source: RevisionSource::Import,
            },
            None,
        )
        .await
        .unwrap();
    (user.id, project.id)
}

async fn save(database: &db::Database, project: ProjectId, path: &str, text: &str) {
    let file = database
        .find_file_by_path(project, path)
        .await
        .unwrap()
        .unwrap();
    database
        .save_file(
            project,
            file.id,
            file.version,
            FileBody::Text(text.to_owned()),
            Authorship {
                author: None,
                source: RevisionSource::User,
            },
            Utc::now(),
        )
        .await
        .unwrap()
        .unwrap();
}

fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path)).unwrap()
}

#[tokio::test]
async fn only_changed_files_are_written_and_removed_files_go() {
    for backend in backends() {
        let test = TestDatabase::migrated(backend).await;
        let database = &test.database;
        let (_, project) = project_with(
            database,
            vec![
                ("a.py".to_owned(), "a = 1\n".to_owned()),
                ("pkg/b.py".to_owned(), "b = 2\n".to_owned()),
                ("pkg/deep/c.txt".to_owned(), "c\n".to_owned()),
            ],
        )
        .await;
        let folder = tempfile::tempdir().unwrap();
        let worktrees = Worktrees::new(folder.path().join("worktrees"), None);

        let cold = worktrees.materialise(database, project).await.unwrap();
        assert_eq!((cold.files, cold.written, cold.removed), (3, 3, 0));
        assert_eq!(read(&cold.root, "pkg/deep/c.txt"), "c\n");

        let again = worktrees.materialise(database, project).await.unwrap();
        assert_eq!((again.written, again.removed), (0, 0), "nothing changed");
        assert_eq!(again.revision, cold.revision);

        // A save rewrites that file only, and changes the revision.
        save(database, project, "pkg/b.py", "b = 3\n").await;
        let saved = worktrees.materialise(database, project).await.unwrap();
        assert_eq!((saved.written, saved.removed), (1, 0));
        assert_eq!(read(&saved.root, "pkg/b.py"), "b = 3\n");
        assert_ne!(saved.revision, cold.revision);

        // A command that changed a file on disk gets it back; what it made stays.
        fs::write(saved.root.join("a.py"), "broken").unwrap();
        fs::create_dir_all(saved.root.join("target")).unwrap();
        fs::write(saved.root.join("target/out"), "built").unwrap();
        let repaired = worktrees.materialise(database, project).await.unwrap();
        assert_eq!(repaired.written, 1);
        assert_eq!(read(&repaired.root, "a.py"), "a = 1\n");
        assert_eq!(read(&repaired.root, "target/out"), "built");

        // A deleted folder's files are removed, and the folder left empty.
        database
            .delete_entry(project, "pkg/deep", Utc::now())
            .await
            .unwrap();
        let deleted = worktrees.materialise(database, project).await.unwrap();
        assert_eq!((deleted.written, deleted.removed), (0, 1));
        assert!(!deleted.root.join("pkg/deep/c.txt").exists());
        assert!(!deleted.root.join("pkg/deep").exists());
        assert!(deleted.root.join("pkg/b.py").exists());
    }
}

#[tokio::test]
async fn links_a_command_planted_are_never_followed() {
    let test = TestDatabase::migrated(db::Backend::Sqlite).await;
    let database = &test.database;
    let (_, project) = project_with(
        database,
        vec![
            ("src/main.py".to_owned(), "print(1)\n".to_owned()),
            ("gone.txt".to_owned(), "x\n".to_owned()),
        ],
    )
    .await;
    let folder = tempfile::tempdir().unwrap();
    let outside = folder.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("keep.txt"), "keep").unwrap();
    let worktrees = Worktrees::new(folder.path().join("worktrees"), None);
    let first = worktrees.materialise(database, project).await.unwrap();

    // What a command could do: replace a folder and a file by links to the outside.
    fs::remove_dir_all(first.root.join("src")).unwrap();
    std::os::unix::fs::symlink(&outside, first.root.join("src")).unwrap();
    fs::remove_file(first.root.join("gone.txt")).unwrap();
    std::os::unix::fs::symlink(outside.join("keep.txt"), first.root.join("gone.txt")).unwrap();
    save(database, project, "src/main.py", "print(2)\n").await;
    database
        .delete_entry(project, "gone.txt", Utc::now())
        .await
        .unwrap();

    let second = worktrees.materialise(database, project).await.unwrap();
    assert_eq!(read(&second.root, "src/main.py"), "print(2)\n");
    assert!(
        fs::symlink_metadata(second.root.join("src"))
            .unwrap()
            .is_dir(),
        "the link was replaced by a real folder"
    );
    assert!(!outside.join("main.py").exists(), "nothing written outside");
    assert_eq!(
        fs::read_to_string(outside.join("keep.txt")).unwrap(),
        "keep"
    );
    assert!(fs::symlink_metadata(second.root.join("gone.txt")).is_err());
}
