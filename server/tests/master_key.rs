//! Every instance of one database holds the same master key: the database keeps a check of it
//! (a fingerprint, never the key), a server with another key (or none, where keys exist) refuses
//! to start and changes nothing, and an instance whose key was rotated away says it is not ready.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use db::testing::{TestDatabase, backends};
use services::secrets::{MASTER_KEY_CHECK, MASTER_KEY_FILE, MasterKey, verify_master_key};
use services::{ExposeSecret, RequestMeta};
use support::processes::free_port;

fn server(database_url: &str, data_dir: &Path, port: u16, key_file: Option<&Path>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .arg("--database-url")
        .arg(database_url)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--site-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--leptos-config")
        .arg("missing-on-purpose.toml")
        .env_remove("ASYNC_CODER_MASTER_KEY")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(key_file) = key_file {
        command.arg("--master-key-file").arg(key_file);
    }
    command
}

/// The status of `GET path` on the local port, or `None` while nothing answers.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply.split(' ').nth(1)?.parse().ok()
}

fn wait_until_ready(port: u16, child: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if get_status(port, "/readyz") == Some(200) {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the first server stopped ({status}): {stderr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the first server did not become ready");
}

/// Runs a server that should refuse to start; returns what it printed.
fn refused_start(mut command: Command) -> String {
    let output = command.stdout(Stdio::piped()).output().unwrap();
    assert!(!output.status.success(), "it started");
    // The log goes to standard output.
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_with_another_key_or_none_refuses_and_changes_nothing() {
    // Several servers share a database on Postgres only (a second one on an SQLite file is
    // refused before it reads a key: the last test below).
    for backend in backends()
        .into_iter()
        .filter(|backend| *backend == db::Backend::Postgres)
    {
        let database = TestDatabase::migrated(backend).await;
        let folders = tempfile::tempdir().unwrap();
        let (first_dir, second_dir) = (folders.path().join("a"), folders.path().join("b"));
        let first_port = free_port();
        let mut first = server(&database.url, &first_dir, first_port, None)
            .spawn()
            .unwrap();
        wait_until_ready(first_port, &mut first);
        let check = database
            .database
            .server_setting(MASTER_KEY_CHECK)
            .await
            .unwrap()
            .expect("the first start writes the check");
        let first_key = MasterKey::load(&first_dir.join(MASTER_KEY_FILE))
            .unwrap()
            .unwrap();
        assert_eq!(check, first_key.check());
        assert!(!check.contains(first_key.encode().expose_secret()));

        // No key at all, with a database whose keys need one: refused, no key file made.
        let message = refused_start(server(&database.url, &second_dir, free_port(), None));
        assert!(
            message.contains("no master key is configured")
                && message.contains("Nothing was changed"),
            "{message}"
        );
        assert!(!second_dir.join(MASTER_KEY_FILE).exists());

        // Another key: refused with the fix named.
        let other_key = folders.path().join("other.key");
        MasterKey::generate(1)
            .unwrap()
            .write_to(&other_key)
            .unwrap();
        let message = refused_start(server(
            &database.url,
            &second_dir,
            free_port(),
            Some(&other_key),
        ));
        assert!(
            message.contains("does not match")
                && message.contains("ASYNC_CODER_MASTER_KEY")
                && message.contains("--master-key-file"),
            "{message}"
        );

        // The first goes on serving; the check is unchanged.
        assert_eq!(get_status(first_port, "/readyz"), Some(200));
        assert_eq!(
            database
                .database
                .server_setting(MASTER_KEY_CHECK)
                .await
                .unwrap(),
            Some(check)
        );

        // The same key, given as a file: serves.
        let second_port = free_port();
        let mut second = server(
            &database.url,
            &second_dir,
            second_port,
            Some(&first_dir.join(MASTER_KEY_FILE)),
        )
        .spawn()
        .unwrap();
        wait_until_ready(second_port, &mut second);
        for child in [&mut first, &mut second] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

/// Saves `key` as the person's `provider` key (label `default`).
async fn save_key(
    services: &services::Services,
    user: &services::AuthenticatedUser,
    provider: db::tables::provider_credentials::ProviderKind,
    key: &str,
) -> services::providers::CredentialSummary {
    services
        .save_credential(
            user,
            services::providers::SaveCredential {
                provider,
                label: "default".into(),
                api_key: Some(key.to_owned().into()),
                base_url: None,
            },
            &RequestMeta::default(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn instances_with_the_same_key_use_each_others_saved_keys() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let shared = MasterKey::generate(1).unwrap();
        let encoded = shared.encode();
        let first = services::Services::new(database.database.clone(), shared);
        verify_master_key(&database.database, &first.master_key)
            .await
            .unwrap();
        let second = services::Services::new(
            database.database.clone(),
            MasterKey::decode(encoded.expose_secret()).unwrap(),
        );
        verify_master_key(&database.database, &second.master_key)
            .await
            .unwrap();
        let (ada, _) = support::sign_up_with(&first, "ada@example.com").await;
        let saved = save_key(
            &first,
            &ada,
            db::tables::provider_credentials::ProviderKind::OpenAi,
            "sk-shared-between-instances",
        )
        .await;
        let clear = second
            .credential_key(&ada, saved.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clear.expose_secret(), "sk-shared-between-instances");
    }
}

#[tokio::test]
async fn a_database_from_before_the_check_is_checked_by_decrypting_a_stored_key() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let right = MasterKey::generate(1).unwrap();
        let right_copy = MasterKey::decode(right.encode().expose_secret()).unwrap();
        let services = services::Services::new(database.database.clone(), right);
        let (ada, _) = support::sign_up_with(&services, "ada@example.com").await;
        save_key(
            &services,
            &ada,
            db::tables::provider_credentials::ProviderKind::Anthropic,
            "sk-ant-older-database",
        )
        .await;
        assert_eq!(
            database
                .database
                .server_setting(MASTER_KEY_CHECK)
                .await
                .unwrap(),
            None,
            "as before this change: keys, no check"
        );
        let wrong = MasterKey::generate(1).unwrap();
        let refused = verify_master_key(&database.database, &wrong).await;
        assert!(
            matches!(refused, Err(services::secrets::KeyRefusal::DoesNotDecrypt)),
            "{refused:?}"
        );
        assert_eq!(
            database
                .database
                .server_setting(MASTER_KEY_CHECK)
                .await
                .unwrap(),
            None,
            "a refusal writes nothing"
        );
        verify_master_key(&database.database, &right_copy)
            .await
            .unwrap();
        assert_eq!(
            database
                .database
                .server_setting(MASTER_KEY_CHECK)
                .await
                .unwrap(),
            Some(right_copy.check())
        );
    }
}

#[tokio::test]
async fn an_instance_whose_key_was_rotated_away_is_not_ready_until_restarted_with_the_new_one() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let folder = tempfile::tempdir().unwrap();
        let key_file = folder.path().join(MASTER_KEY_FILE);
        let key = services::secrets::master_key_for(&database.database, &key_file)
            .await
            .unwrap();
        let running = services::Services::new(database.database.clone(), key);
        let router = support::router_for(running.clone());
        let readiness = || async {
            support::send(
                &router,
                Request::builder()
                    .uri("/readyz")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .status
        };
        assert_eq!(readiness().await, StatusCode::OK);

        services::secrets::rotate(&database.database, &key_file)
            .await
            .unwrap();
        assert!(!running.master_key_is_current().await.unwrap());
        assert_eq!(readiness().await, StatusCode::SERVICE_UNAVAILABLE);

        let restarted = services::secrets::master_key_for(&database.database, &key_file)
            .await
            .unwrap();
        assert_eq!(restarted.version(), 2);
        let restarted = services::Services::new(database.database.clone(), restarted);
        assert!(restarted.master_key_is_current().await.unwrap());
    }
}

#[test]
fn a_second_server_on_the_same_sqlite_file_refuses_to_start_and_the_first_serves_on() {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let url = format!(
        "sqlite://{}?mode=rwc",
        data.join("async-coder.db").display()
    );
    let first_port = free_port();
    let mut first = server(&url, &data, first_port, None).spawn().unwrap();
    wait_until_ready(first_port, &mut first);
    let message = refused_start(server(
        &url,
        &folder.path().join("other"),
        free_port(),
        Some(&data.join(MASTER_KEY_FILE)),
    ));
    assert!(
        message.contains("already using the SQLite database") && message.contains("Postgres"),
        "{message}"
    );
    assert_eq!(get_status(first_port, "/readyz"), Some(200));
    first.kill().unwrap();
    first.wait().unwrap();
    // Once the first has gone (even killed), the file is free.
    let second_port = free_port();
    let mut second = server(&url, &data, second_port, None).spawn().unwrap();
    wait_until_ready(second_port, &mut second);
    second.kill().unwrap();
    second.wait().unwrap();
}
