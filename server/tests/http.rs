//! The HTTP surface of the real router, on SQLite and Postgres: health, readiness, metrics, pages
//! rendered on the server, status codes, headers, and the panic guard.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use db::Backend;
use db::testing::{TestDatabase, backends};
use http_body_util::BodyExt;
use server::AppState;
use tower::ServiceExt;

fn state(database: &TestDatabase) -> AppState {
    support::app_state(support::services_for(database))
}

async fn send(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = router.clone().oneshot(request).await.expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn get_request(path: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .body(Body::empty())
        .expect("a request")
}

#[tokio::test]
async fn health_and_readiness_answer_on_every_backend() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = server::router(state(&database));
        let (status, headers, body) = send(&router, get_request("/healthz")).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "ok"),
            "{backend:?}"
        );
        assert_eq!(
            headers
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..])
        );
        let (status, _, body) = send(&router, get_request("/readyz")).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "ready"),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn readiness_fails_when_the_database_goes_away_and_says_nothing_internal() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let database = TestDatabase::migrated(Backend::Postgres).await;
    let router = server::router(state(&database));
    assert_eq!(
        send(&router, get_request("/readyz")).await.0,
        StatusCode::OK
    );
    database.drop_postgres_database().await;
    let (status, _, body) = send(&router, get_request("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: database unavailable");
    // Liveness does not depend on the database.
    assert_eq!(
        send(&router, get_request("/healthz")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_report_the_pool() {
    let database = TestDatabase::migrated(Backend::Sqlite).await;
    let router = server::router(state(&database));
    send(&router, get_request("/healthz")).await;
    send(&router, get_request("/settings")).await;
    send(&router, get_request("/no/such/page/123")).await;
    let (status, headers, body) = send(&router, get_request("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    assert!(
        body.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"}"#),
        "{body}"
    );
    assert!(body.contains(r#"route="/settings",status="200""#), "{body}");
    // Unknown paths share one label instead of creating a series per URL.
    assert!(body.contains(r#"route="fallback",status="404""#), "{body}");
    assert!(!body.contains("/no/such/page/123"));
    assert!(
        body.contains("http_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(
        body.contains(r#"db_pool_connections{backend="sqlite"}"#),
        "{body}"
    );
    assert!(
        body.contains(r#"db_pool_max_connections{backend="sqlite"} 8"#),
        "{body}"
    );
}

#[tokio::test]
async fn pages_are_rendered_on_the_server_in_the_visitors_theme() {
    let database = TestDatabase::migrated(Backend::Sqlite).await;
    let router = server::router(state(&database));
    let (status, headers, body) = send(&router, get_request("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(body.contains("Your AI coding workspace, on your own server."));
    assert!(
        body.contains(r#"<html lang="en" data-theme="system""#),
        "{body}"
    );
    assert!(body.contains(r#"<link rel="manifest" href="/manifest.webmanifest">"#));

    let request = Request::builder()
        .uri("/settings")
        .header(header::COOKIE, "theme=dark; editor_font_size=20")
        .body(Body::empty())
        .expect("a request");
    let (status, _, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#"data-theme="dark" data-editor-font-size="20""#),
        "{body}"
    );
    assert!(body.contains("<h1>Settings</h1>"));

    // A forged cookie falls back to the default instead of reaching the HTML.
    let request = Request::builder()
        .uri("/")
        .header(header::COOKIE, r#"theme="><script>alert(1)</script>"#)
        .body(Body::empty())
        .expect("a request");
    let (_, _, body) = send(&router, request).await;
    assert!(body.contains(r#"data-theme="system""#));
    assert!(!body.contains("alert(1)"));
}

#[tokio::test]
async fn unknown_paths_get_the_404_page() {
    let database = TestDatabase::migrated(Backend::Sqlite).await;
    let router = server::router(state(&database));
    let (status, _, body) = send(&router, get_request("/does/not/exist")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("This page does not exist"), "{body}");
}

#[tokio::test]
async fn the_theme_server_function_sets_a_cookie_and_refuses_bad_input() {
    let database = TestDatabase::migrated(Backend::Sqlite).await;
    let router = server::router(state(&database));
    let post = |path: &str, body: &str| {
        Request::builder()
            .method("POST")
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .expect("a request")
    };
    let (status, headers, body) = send(&router, post("/api/settings/theme", "theme=dark")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, r#""dark""#);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap_or_default();
    assert!(
        cookie.starts_with("theme=dark; Path=/;") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let (status, headers, body) = send(&router, post("/api/settings/theme", "theme=purple")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"BadRequest":"Unknown theme \"purple\": choose light, dark or system."}"#
    );
    assert!(headers.get(header::SET_COOKIE).is_none());

    let (status, _, body) = send(&router, post("/api/settings/editor-font-size", "size=abc")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("whole number"), "{body}");

    let (status, headers, body) = send(&router, post("/api/settings/reset", "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cleared: Vec<_> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(cleared.len(), 2, "{cleared:?}");
    assert!(
        cleared.iter().all(|cookie| cookie.contains("Max-Age=0")),
        "{cleared:?}"
    );
}

#[tokio::test]
async fn a_panicking_handler_gets_a_generic_error_page_and_the_server_keeps_serving() {
    let database = TestDatabase::migrated(Backend::Sqlite).await;
    async fn explode() -> &'static str {
        panic!("secret internal detail: db password is hunter2")
    }
    let extra = Router::new().route("/test-only/panic", get(explode));
    let router = server::router_with(state(&database), extra);
    let (status, headers, body) = send(&router, get_request("/test-only/panic")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(body.contains("Something went wrong"), "{body}");
    assert!(
        !body.contains("hunter2") && !body.contains("secret internal detail"),
        "{body}"
    );
    assert_eq!(
        send(&router, get_request("/healthz")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let database = TestDatabase::migrated(Backend::Sqlite).await;
    let router = server::router(state(&database));
    let body = format!(
        "email=a%40example.com&password={}",
        "x".repeat(5 * 1024 * 1024)
    );
    let request = Request::builder()
        .method("POST")
        .uri("/api/auth/sign-in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("a request");
    let (status, _, _) = send(&router, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A static file served while a page is rendering on the same thread takes nothing of the
/// page's response: before each request was given its own reactive owner, leptos_axum's file
/// fallback found the waiting page's owner still current on the thread, applied the page's
/// response options to the file and took their headers, so the page (an unknown project here,
/// 404) went out without its Content-Security-Policy and never hydrated, and the file went out
/// with the page's policy.
#[tokio::test(flavor = "current_thread")]
async fn a_file_served_while_a_page_waits_takes_nothing_of_the_page() {
    use std::task::Poll;
    let database = TestDatabase::migrated(Backend::Sqlite).await;
    let services = support::services_for(&database);
    let (_user, cookie) = support::sign_up_with(&services, "owners@example.com").await;
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("robots.txt"), "User-agent: *\n").unwrap();
    let mut state = support::app_state(services);
    state.leptos_options.site_root = site.path().to_string_lossy().as_ref().into();
    let router = server::router(state);

    let page_request = support::same_origin_request(
        "GET",
        &format!("/projects/{}", uuid::Uuid::now_v7()),
        &cookie,
        Vec::new(),
    );
    let page = router.clone().oneshot(page_request);
    tokio::pin!(page);
    let mut files_served = 0;
    let response = loop {
        if let Poll::Ready(response) = futures::poll!(page.as_mut()) {
            break response.unwrap();
        }
        // The page waits (for the database): serve a file on this same thread meanwhile.
        let (status, headers, body) = send(&router, get_request("/robots.txt")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "User-agent: *\n");
        let policy = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        assert!(
            !policy.contains("nonce-"),
            "the file got the page's policy: {policy}"
        );
        assert!(headers.get(header::SET_COOKIE).is_none());
        files_served += 1;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    };
    assert!(
        files_served > 0,
        "the page never waited: nothing was tested"
    );
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let policy = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        policy.contains("nonce-"),
        "the page lost its own policy: {policy:?}"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("does not exist"));
}
