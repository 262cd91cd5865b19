//! The layers every response passes through: metrics, tracing, compression, security headers,
//! a body size limit, and a panic guard that answers with a generic error page.

use std::any::Any;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::middleware;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::metrics;

/// Largest request body accepted, in bytes, except for an archive upload: room for a file of
/// the largest size the editor saves, form-encoded.
pub const BODY_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// How large a request body may be.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    /// Every request but an import.
    pub default: usize,
    /// `POST /api/projects/import`.
    pub import: usize,
}

pub fn apply(router: Router, limits: BodyLimits) -> Router {
    router
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(limits, limit_body))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        // Pages set their own policy (with the nonce of their inline script); this one covers
        // everything else, the service worker included.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(metrics::track))
}

/// Refuses a body larger than the limit with 413: at once when `Content-Length` says so, else as
/// soon as reading it passes the limit (before anything parses it).
async fn limit_body(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response<Body> {
    let limit = if request.uri().path() == crate::project_archives::IMPORT_PATH {
        limits.import
    } else {
        limits.default
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        let mut response = Response::new(Body::from(format!(
            "The request is larger than the {limit} bytes this server accepts."
        )));
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return response;
    }
    let (parts, body) = request.into_parts();
    let limited = Body::new(http_body_util::Limited::new(body, limit));
    next.run(axum::extract::Request::from_parts(parts, limited))
        .await
}

/// A handler panicked: log what happened, show a generic page, keep serving.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    tracing::error!(%reference, panic = detail, "a request handler panicked");
    let page = ERROR_PAGE.replace("{reference}", &reference);
    let mut response = Response::new(Body::from(page));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

const ERROR_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Something went wrong · Async Coder</title>
<link rel="stylesheet" href="/pkg/async-coder.css">
</head>
<body>
<main class="message-page" role="alert">
<h1>Something went wrong</h1>
<p>Something went wrong on our side. If it keeps happening, report reference {reference}.</p>
<p><a class="button button-primary" href="/">Go to the home page</a></p>
</main>
</body>
</html>
"#;
