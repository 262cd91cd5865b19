//! The server answers only for the host names it is configured for (DNS rebinding), and its
//! session cookie's `Secure` flag follows the configured public URL, never the request's `Host`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use db::testing::{TestDatabase, backends};
use support::{Reply, send};

fn router_with_site(database: &TestDatabase, site: app::api::request::SitePolicy) -> Router {
    let mut state = support::app_state(support::services_for(database));
    state.site = site;
    server::router(state)
}

async fn sign_up_at(router: &Router, host: &str, email: &str) -> Reply {
    let mut request = Request::builder()
        .method("POST")
        .uri("/api/auth/sign-up")
        .header(header::HOST, host)
        .header(header::ORIGIN, format!("http://{host}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "email={email}&name=Ada&password=correct+horse+battery+staple"
        )))
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    send(router, request).await
}

#[tokio::test]
async fn a_rebinding_page_cannot_claim_the_first_account() {
    for backend in backends() {
        let database = TestDatabase::migrated(backend).await;
        let router = router_with_site(&database, app::api::request::SitePolicy::default());
        // A page on attacker.example whose name now resolves to 127.0.0.1: its requests are
        // same-origin for the browser, and carry the attacker's host name.
        let rebound = sign_up_at(&router, "attacker.example:3000", "evil%40example.com").await;
        assert_eq!(
            rebound.status,
            StatusCode::MISDIRECTED_REQUEST,
            "{}",
            rebound.body
        );
        assert!(
            database
                .database
                .find_user_by_email("evil@example.com")
                .await
                .unwrap()
                .is_none()
        );
        // Pages too.
        let page = send(
            &router,
            Request::builder()
                .uri("/")
                .header(header::HOST, "attacker.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(page.status, StatusCode::MISDIRECTED_REQUEST);
        // The owner, on the loopback address, claims it.
        let owner = sign_up_at(&router, "localhost:3000", "owner%40example.com").await;
        assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
        assert_eq!(support::json(&owner)["role"], "admin");
        // Health checks answer whatever their host.
        let health = send(
            &router,
            Request::builder()
                .uri("/healthz")
                .header(header::HOST, "10.1.2.3:3000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(health.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn behind_an_https_proxy_the_cookie_is_secure_whatever_host_is_forwarded() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let site = app::api::request::SitePolicy {
        allowed_hosts: Arc::new(vec!["coder.example.com".into()]),
        https: true,
    };
    let router = router_with_site(&database, site);
    // A proxy that forwards its upstream's address as the host.
    let reply = sign_up_at(&router, "127.0.0.1:3000", "ada%40example.com").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let cookie = reply
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        cookie.starts_with("__Host-session=") && cookie.contains("Secure"),
        "{cookie}"
    );
    let public = sign_up_at(&router, "coder.example.com", "bob%40example.com").await;
    assert_eq!(public.status, StatusCode::OK, "{}", public.body);
}
