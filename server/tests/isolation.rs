//! Derived from the registered endpoints, so that a new server function is covered without anyone
//! remembering to add it: outside the explicit public list, every `/api/` endpoint answers 401 to
//! a caller who is not signed in, whatever the request holds; and the public list names only
//! endpoints that exist.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use db::testing::TestDatabase;
use http_body_util::BodyExt;
use tower::ServiceExt;

#[tokio::test]
async fn every_endpoint_outside_the_public_list_needs_a_session() {
    let database = TestDatabase::migrated(db::Backend::Sqlite).await;
    let router = support::test_router(&database);
    let endpoints: Vec<(String, axum::http::Method)> = server_fn::axum::server_fn_paths()
        .map(|(path, method)| (path.to_owned(), method))
        .collect();
    assert!(endpoints.len() >= 12, "{endpoints:?}");
    for public in app::api::PUBLIC_ENDPOINTS {
        assert!(
            endpoints.iter().any(|(path, _)| path == public),
            "{public} is not an endpoint"
        );
    }

    let mut checked = 0;
    for (path, method) in &endpoints {
        assert!(
            path.starts_with("/api/"),
            "{path}: every server function lives under /api/"
        );
        if app::api::PUBLIC_ENDPOINTS.contains(&path.as_str()) {
            continue;
        }
        for (body, cookie) in [
            ("", None),
            ("id=x&name=y", None),
            ("", Some("session=forged-token")),
        ] {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(header::HOST, "127.0.0.1:3000")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(cookie) = cookie {
                request = request
                    .header(header::COOKIE, cookie)
                    .header(header::ORIGIN, "http://127.0.0.1:3000");
            }
            let response = router
                .clone()
                .oneshot(request.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {body:?} {cookie:?}"
            );
            assert_eq!(&bytes[..], br#""Unauthorized""#, "{path}");
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} private endpoints");
}
