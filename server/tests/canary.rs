//! A canary provider key, sent through saves, errors and listings with trace-level logging on,
//! appears in no log line, no answer and no audit row. Its own test binary: the subscriber is
//! process-wide, so no other test can race it.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use db::sea_orm::EntityTrait;
use db::testing::TestDatabase;

const CANARY: &str = "sk-canary-7f3a9c2e51d04b8f";

async fn post(
    router: &Router,
    path: &str,
    form: &str,
    cookie: Option<&str>,
) -> (String, Option<String>) {
    let reply = support::post(router, path, form, cookie, "127.0.0.1").await;
    let cookie = reply.session_cookie();
    (reply.body, cookie)
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_canary_key_reaches_no_log_line_error_body_or_audit_row() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let router = support::test_router(&database);
    let ada = post(
        &router,
        "/api/auth/sign-up",
        "email=ada%40example.com&name=Ada&password=correct+horse+battery+staple",
        None,
    )
    .await
    .1
    .unwrap();
    let mut bodies = Vec::new();
    for form in [
        format!("provider=openai&label=&api_key={CANARY}&base_url="),
        format!("provider=gemini&label=&api_key={CANARY}%20with%20spaces&base_url="),
        format!("provider=nonsense&label=&api_key={CANARY}&base_url="),
        format!("provider=openai_compatible&label=x&api_key={CANARY}&base_url=ftp%3A%2F%2Fnowhere"),
        format!(
            "provider=openai&label={}&api_key={CANARY}&base_url=",
            "l".repeat(70)
        ),
    ] {
        bodies.push(
            post(&router, "/api/providers/save", &form, Some(&ada))
                .await
                .0,
        );
    }
    bodies.push(post(&router, "/api/providers/list", "", Some(&ada)).await.0);
    bodies.push(
        post(
            &router,
            "/api/providers/save",
            &format!("api_key={CANARY}"),
            Some(&ada),
        )
        .await
        .0,
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.len() > 1000, "trace logging captured little: {logs}");
    assert!(!logs.contains("canary"), "a log line holds the key");
    for body in &bodies {
        assert!(!body.contains("canary"), "an answer holds the key: {body}");
    }
    let audit = db::tables::audit_log::Entity::find()
        .all(database.database.connection())
        .await
        .unwrap();
    assert!(!audit.is_empty());
    assert!(
        audit
            .iter()
            .all(|row| !format!("{row:?}").contains("canary"))
    );
}
