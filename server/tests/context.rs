//! A project's context: indexed in the background, kept up to date file by file as files are
//! saved, moved and deleted, saved to disk and read back after a restart; chosen for a message
//! within the mode's budget, with the conversation's pins and drops, and recorded with it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::time::Duration;

use db::ids::ProjectId;
use db::testing::{TestDatabase, backends};
use services::chat::{ContextInput, CurrentFile};
use services::project_context::{Choice, ChosenContext, IndexPhase};
use services::projects::ProjectInput;
use services::{AuthenticatedUser, RequestMeta, Services};

async fn sign_up(services: &Services, email: &str) -> AuthenticatedUser {
    support::sign_up_with(services, email).await.0
}

const MAIN: &str =
    "fn main() {\n    let total = compute_invoice_total(3);\n    render_report(total);\n}\n";

fn files() -> Vec<(String, String)> {
    let mut files = vec![
        ("src/main.rs".to_owned(), MAIN.to_owned()),
        (
            "src/billing.rs".to_owned(),
            "pub fn compute_invoice_total(items: u32) -> u32 {\n    apply_tax_rate(items)\n}\n"
                .to_owned(),
        ),
        (
            "src/tax.rs".to_owned(),
            "pub fn apply_tax_rate(amount: u32) -> u32 {\n    amount * 2\n}\n".to_owned(),
        ),
        (
            "src/report.rs".to_owned(),
            "pub fn render_report(total: u32) {\n    println!(\"{total}\");\n}\n".to_owned(),
        ),
        (
            "Cargo.toml".to_owned(),
            "[package]\nname = \"shop\"\n\n[dependencies]\nserde = \"1\"\n".to_owned(),
        ),
        (".gitignore".to_owned(), "scratch/\n".to_owned()),
        (
            "scratch/notes.rs".to_owned(),
            "fn compute_invoice_total() {}\n".to_owned(),
        ),
        (
            "node_modules/left-pad/index.js".to_owned(),
            "module.exports = function leftPad() {};\n".to_owned(),
        ),
    ];
    for number in 0..12 {
        files.push((
            format!("src/unrelated/module_{number}.rs"),
            format!(
                "pub fn unrelated_helper_{number}() {{\n    unrelated_helper_{}();\n}}\n",
                (number + 1) % 12
            ),
        ));
    }
    files
}

async fn project_with_files(services: &Services, user: &AuthenticatedUser) -> ProjectId {
    let project = services
        .create_project(
            user,
            ProjectInput {
                name: "shop".into(),
                description: String::new(),
                repository_url: String::new(),
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap()
        .id;
    for (path, content) in files() {
        services
            .create_file(user, project, &path, content)
            .await
            .unwrap();
    }
    project
}

async fn ready(
    services: &Services,
    user: &AuthenticatedUser,
    project: ProjectId,
) -> services::project_context::IndexStatus {
    for _ in 0..200 {
        let status = services.context_index_status(user, project).await.unwrap();
        if status.phase == IndexPhase::Ready {
            return status;
        }
        assert_ne!(status.phase, IndexPhase::Failed);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the index was not ready in 5 seconds");
}

fn main_file() -> ContextInput {
    ContextInput {
        current_file: Some(CurrentFile {
            path: "src/main.rs".into(),
            language: Some("rust".into()),
            content: MAIN.into(),
            selection: None,
        }),
    }
}

async fn preview(
    services: &Services,
    user: &AuthenticatedUser,
    project: ProjectId,
    text: &str,
) -> ChosenContext {
    services
        .preview_context(user, None, Some(project), "chat", &main_file(), text)
        .await
        .unwrap()
}

/// The preview inside a conversation (its mode, pins and drops), with main.rs open.
async fn in_conversation(
    services: &Services,
    user: &AuthenticatedUser,
    conversation: db::ids::ConversationId,
) -> ChosenContext {
    services
        .preview_context(
            user,
            Some(conversation),
            None,
            "ignored",
            &main_file(),
            "total",
        )
        .await
        .unwrap()
}

fn item<'a>(chosen: &'a ChosenContext, key: &str) -> Option<&'a services::project_context::Item> {
    chosen.manifest.items.iter().find(|item| item.key == key)
}

fn map_files(chosen: &ChosenContext) -> Vec<String> {
    chosen
        .manifest
        .items
        .iter()
        .filter(|item| item.kind == services::project_context::ItemKind::Symbols && item.included)
        .map(|item| item.label.clone())
        .collect()
}

#[tokio::test]
async fn the_context_follows_the_project_and_says_why() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let directory = tempfile::tempdir().unwrap();
        let services =
            support::services_for(&database).with_context_directory(directory.path().to_path_buf());
        let user = sign_up(&services, "ada@example.com").await;
        let project = project_with_files(&services, &user).await;
        let status = ready(&services, &user, project).await;
        assert_eq!(status.files, 18, "{status:?}");
        assert_eq!(status.excluded, 2, "the ignored and the vendored file");

        let chosen = preview(
            &services,
            &user,
            project,
            "Why is the total wrong?\nerror[E0308]: mismatched types\n  --> src/tax.rs:2:5\n",
        )
        .await;
        let map = map_files(&chosen);
        let billing = map.iter().position(|path| path == "src/billing.rs");
        let unrelated = map
            .iter()
            .position(|path| path.starts_with("src/unrelated/"));
        assert!(billing.is_some(), "{map:?}");
        assert!(unrelated.is_none() || billing < unrelated, "{map:?}");
        assert!(
            !map.contains(&"src/main.rs".to_owned()),
            "the open file is sent whole"
        );
        let current = item(&chosen, "current_file:src/main.rs").unwrap();
        assert!(current.included && current.content == MAIN);
        let error = item(&chosen, "error_location:src/tax.rs:1-3").unwrap();
        assert!(error.included, "{error:?}");
        assert!(
            error.content.contains(">    2     amount * 2"),
            "{}",
            error.content
        );
        assert!(error.reason.contains("rustc"));
        assert!(item(&chosen, "dependencies:Cargo.toml").is_some_and(|item| item.included));
        let sent: u32 = chosen
            .manifest
            .items
            .iter()
            .filter(|item| item.included)
            .map(|item| item.tokens)
            .sum();
        assert!(sent <= chosen.manifest.budget);
        let reasons: Vec<&str> = chosen
            .manifest
            .left_out
            .iter()
            .map(|group| group.reason.as_str())
            .collect();
        assert!(
            reasons.contains(&"vendored (third-party code)"),
            "{reasons:?}"
        );
        assert!(
            reasons.contains(&"ignored by the project's ignore files"),
            "{reasons:?}"
        );

        // A save re-indexes that file: its new definition shows in the map at once.
        let tax = database
            .database
            .find_file_by_path(project, "src/tax.rs")
            .await
            .unwrap()
            .unwrap();
        services
            .save_file(
                &user,
                project,
                tax.id,
                tax.version,
                "pub fn apply_tax_rate(amount: u32) -> u32 {\n    amount * 3\n}\npub fn round_to_cents(value: u32) -> u32 {\n    value\n}\n".into(),
            )
            .await
            .unwrap();
        let chosen = preview(&services, &user, project, "round_to_cents apply_tax_rate").await;
        let tax_map = item(&chosen, "symbols:src/tax.rs").expect("tax.rs in the map");
        assert!(
            tax_map.content.contains("│pub fn apply_tax_rate"),
            "{}",
            tax_map.content
        );
        // The save is a recent change, sent as a diff.
        let change = item(&chosen, "recent_change:src/tax.rs").expect("the recent change");
        assert!(
            change.content.contains("-    amount * 2\n+    amount * 3"),
            "{}",
            change.content
        );

        // A move follows the file; a delete forgets it.
        services
            .move_entry(&user, project, "src/tax.rs", "src/finance/tax.rs")
            .await
            .unwrap();
        let chosen = preview(&services, &user, project, "apply_tax_rate").await;
        assert!(map_files(&chosen).contains(&"src/finance/tax.rs".to_owned()));
        assert!(!map_files(&chosen).contains(&"src/tax.rs".to_owned()));
        services
            .delete_entry(&user, project, "src/finance")
            .await
            .unwrap();
        let chosen = preview(&services, &user, project, "apply_tax_rate").await;
        assert!(
            map_files(&chosen)
                .iter()
                .all(|path| !path.contains("tax.rs"))
        );

        // An ignore file that changes lets the file it ignored in.
        let ignore = database
            .database
            .find_file_by_path(project, ".gitignore")
            .await
            .unwrap()
            .unwrap();
        services
            .save_file(
                &user,
                project,
                ignore.id,
                ignore.version,
                "# nothing\n".into(),
            )
            .await
            .unwrap();
        let mut released = false;
        for _ in 0..200 {
            let status = services.context_index_status(&user, project).await.unwrap();
            if status.phase == IndexPhase::Ready && status.excluded == 1 {
                released = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            released,
            "scratch/notes.rs is indexed once no longer ignored"
        );

        // The index survives a restart: read back, nothing parsed again.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let before = services.context_index_status(&user, project).await.unwrap();
        let restarted =
            support::services_for(&database).with_context_directory(directory.path().to_path_buf());
        let after = ready(&restarted, &user, project).await;
        assert_eq!(
            (after.files, after.excluded),
            (before.files, before.excluded)
        );
        assert_eq!(after.total, 0, "every file was current in the saved index");
    }
}

#[tokio::test]
async fn pins_and_drops_are_kept_for_the_conversation_and_sent() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let services = support::services_for(&database);
        let user = sign_up(&services, "ada@example.com").await;
        let project = project_with_files(&services, &user).await;
        ready(&services, &user, project).await;
        let conversation = services
            .create_conversation(&user, Some(project), Some("chat"), None)
            .await
            .unwrap()
            .id;
        let choices = services
            .set_context_choice(
                &user,
                conversation,
                "symbols:src/billing.rs",
                Some(Choice::Dropped),
            )
            .await
            .unwrap();
        assert_eq!(choices.len(), 1);
        services
            .set_context_choice(
                &user,
                conversation,
                "symbols:src/unrelated/module_5.rs",
                Some(Choice::Pinned),
            )
            .await
            .unwrap();
        let chosen = in_conversation(&services, &user, conversation).await;
        let dropped = item(&chosen, "symbols:src/billing.rs").unwrap();
        assert!(!dropped.included && dropped.choice == Some(Choice::Dropped));
        let pinned = item(&chosen, "symbols:src/unrelated/module_5.rs").unwrap();
        assert!(pinned.included && pinned.choice == Some(Choice::Pinned));
        assert!(pinned.content.contains("pub fn unrelated_helper_5()"));

        // Released, the item is ranked again like any other.
        services
            .set_context_choice(&user, conversation, "symbols:src/billing.rs", None)
            .await
            .unwrap();
        let chosen = in_conversation(&services, &user, conversation).await;
        assert!(item(&chosen, "symbols:src/billing.rs").is_some_and(|item| item.included));

        // Bad keys and other people's conversations are refused.
        assert!(matches!(
            services
                .set_context_choice(&user, conversation, "", Some(Choice::Pinned))
                .await,
            Err(services::Error::Invalid(_))
        ));
        let eve = sign_up(&services, "eve@example.com").await;
        assert!(matches!(
            services
                .set_context_choice(
                    &eve,
                    conversation,
                    "symbols:src/billing.rs",
                    Some(Choice::Pinned)
                )
                .await,
            Err(services::Error::NotFound)
        ));
        assert!(matches!(
            services
                .preview_context(&eve, Some(conversation), None, "chat", &main_file(), "x")
                .await,
            Err(services::Error::NotFound)
        ));
        assert!(
            services
                .preview_context(&eve, None, Some(project), "chat", &main_file(), "x")
                .await
                .is_err()
        );
        assert!(services.context_index_status(&eve, project).await.is_err());
    }
}

/// Two instances of one database, each with its own pool and its own index of the project: a
/// save, a move and a delete on one are seen by the next request on the other, with no wait
/// (its index compares versions with the database before it ranks).
#[tokio::test]
async fn a_change_on_one_instance_is_ranked_by_the_next_request_on_another() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let first = support::services_for(&database);
        let second = services::Services::new(
            db::Database::connect(&database.url).await.unwrap(),
            services::secrets::MasterKey::generate(1).unwrap(),
        );
        let user = sign_up(&first, "ada@example.com").await;
        let project = project_with_files(&first, &user).await;
        ready(&first, &user, project).await;
        let status = ready(&second, &user, project).await;
        assert_eq!(status.files, 18, "{}: {status:?}", backend.name());

        // Saved on the first: the second's very next request ranks the new definition.
        let tax = database
            .database
            .find_file_by_path(project, "src/tax.rs")
            .await
            .unwrap()
            .unwrap();
        first
            .save_file(
                &user,
                project,
                tax.id,
                tax.version,
                "pub fn apply_tax_rate(amount: u32) -> u32 {\n    amount * 3\n}\npub fn zebra_checksum(value: u32) -> u32 {\n    value\n}\n".into(),
            )
            .await
            .unwrap();
        let chosen = preview(&second, &user, project, "zebra_checksum apply_tax_rate").await;
        let tax_map = item(&chosen, "symbols:src/tax.rs").expect("tax.rs in the map");
        assert!(
            tax_map.content.contains("zebra_checksum"),
            "{}: {}",
            backend.name(),
            tax_map.content
        );

        // Moved and deleted on the first: the second ranks the new path, never the old ones.
        first
            .move_entry(&user, project, "src/billing.rs", "src/invoices/billing.rs")
            .await
            .unwrap();
        first
            .delete_entry(&user, project, "src/report.rs")
            .await
            .unwrap();
        let chosen = preview(
            &second,
            &user,
            project,
            "compute_invoice_total render_report",
        )
        .await;
        let map = map_files(&chosen);
        assert!(
            map.contains(&"src/invoices/billing.rs".to_owned()),
            "{}: {map:?}",
            backend.name()
        );
        assert!(
            !map.contains(&"src/billing.rs".to_owned())
                && !map.contains(&"src/report.rs".to_owned()),
            "{}: {map:?}",
            backend.name()
        );
        let status = second.context_index_status(&user, project).await.unwrap();
        assert_eq!(status.files, 17, "{}: {status:?}", backend.name());

        // And the first, which made the changes, agrees (its own versions are current: nothing
        // is read again).
        let chosen = preview(&first, &user, project, "zebra_checksum").await;
        assert!(
            item(&chosen, "symbols:src/tax.rs")
                .is_some_and(|item| item.content.contains("zebra_checksum")),
            "{}",
            backend.name()
        );
    }
}
