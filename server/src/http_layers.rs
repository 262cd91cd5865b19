//! The layers every response passes through: one reactive owner per request
//! ([`IsolatedOwner`]), metrics, tracing, compression, security headers,
//! a body size limit (413 however the body was sent), and a panic guard that answers with a
//! generic error page. The tracing layer's span carries the request's URI with the values of
//! secret query parameters redacted ([`redact_query`]); no other callback of it writes the URI.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use axum::middleware;
use http_body_util::BodyExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{MakeSpan, TraceLayer};
use tracing::Span;

use crate::metrics;
use crate::request_owner::IsolatedOwner;

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
        .layer(middleware::from_fn(cache_control))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(RedactedSpan))
        .layer(middleware::from_fn(metrics::track))
        // Outermost: every poll of a request sees its own reactive owner, never another's.
        .layer(tower::util::MapFutureLayer::new(IsolatedOwner::new))
}

/// How long browsers may keep a response: files under `/pkg/` whose names carry a content hash
/// forever (a new build has new names); other static files only after asking again (their
/// validators make that cheap); pages, which belong to the signed-in person, never. A response
/// that says already is left alone.
async fn cache_control(request: Request<Body>, next: middleware::Next) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if response.headers().contains_key(header::CACHE_CONTROL) {
        return response;
    }
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("text/html"));
    if let Some(policy) = cache_policy(
        &path,
        is_page,
        response.status().is_success(),
        app::assets::hashed(),
    ) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// The `Cache-Control` of a response (see [`cache_control`]); `None` leaves it to the handler
/// (API answers).
fn cache_policy(path: &str, is_page: bool, success: bool, hashed: bool) -> Option<&'static str> {
    if is_page {
        Some("no-store")
    } else if path.starts_with("/api/") || path.starts_with("/v1/") {
        None
    } else if success && ((path.starts_with("/pkg/") && hashed) || is_hashed_monaco_file(path)) {
        Some("public, max-age=31536000, immutable")
    } else {
        Some("no-cache")
    }
}

/// A file of Monaco's build (`scripts/build-monaco.mjs`) whose name carries esbuild's content
/// hash (`chunk-U45DGW4R.js`, `json.worker-B6CKNVV6.js`, `codicon-LTRFOK3N.ttf`): its content never
/// changes under that name. The entry and stylesheet (`editor.js`, `editor.css`) keep their names.
fn is_hashed_monaco_file(path: &str) -> bool {
    let Some(name) = path.strip_prefix("/monaco/") else {
        return false;
    };
    let Some((stem, _extension)) = name.rsplit_once('.') else {
        return false;
    };
    let Some((_, hash)) = stem.rsplit_once('-') else {
        return false;
    };
    !name.contains('/')
        && hash.len() == 8
        && hash
            .chars()
            .all(|character| character.is_ascii_uppercase() || character.is_ascii_digit())
}

/// The tracing layer's span: `tower_http`'s default one (DEBUG, method, URI, version; no
/// headers), with the URI through [`redact_query`]. The layer's other callbacks (request,
/// response, failure, end of stream) write latencies, statuses and classifications, never the
/// URI, so this is the only way the URI reaches a log line, at every level.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactedSpan;

impl<B> MakeSpan<B> for RedactedSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            uri = %redact_query(request.uri()),
            version = ?request.version(),
        )
    }
}

/// What a redacted value reads as.
const REDACTED: &str = "[redacted]";

/// Query parameter names whose values are secrets (compared in lower case, with `-` read as `_`);
/// names ending in `_token`, `_key` or `_secret` are secret too.
const SECRET_NAMES: &[&str] = &[
    "key",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "refresh_token",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "code",
    "session",
    "signature",
    "sig",
    "auth",
    "authorization",
    "x_api_key",
    "jwt",
    "credential",
    "credentials",
];

/// A URI as it may be logged: the values of query parameters with a secret name
/// ([`SECRET_NAMES`]) become `[redacted]`, names and the other values stay, and so does the
/// path. Pairs are separated by `&` or `;`; a name is compared percent-decoded, and a bracketed
/// or dotted name (`user[password]`, `auth.token`) is secret when any part of it is. A user name
/// and password in an absolute URI are redacted too.
pub fn redact_query(uri: &Uri) -> String {
    let mut text = String::with_capacity(uri.to_string().len());
    if let Some(scheme) = uri.scheme_str() {
        text.push_str(scheme);
        text.push_str("://");
    }
    if let Some(authority) = uri.authority() {
        match authority.as_str().rsplit_once('@') {
            Some((_, host)) => {
                text.push_str(REDACTED);
                text.push('@');
                text.push_str(host);
            }
            None => text.push_str(authority.as_str()),
        }
    }
    text.push_str(uri.path());
    if let Some(query) = uri.query() {
        text.push('?');
        let mut rest = query;
        loop {
            let end = rest.find(['&', ';']).unwrap_or(rest.len());
            let (pair, tail) = rest.split_at(end);
            match pair.split_once('=') {
                Some((name, _)) if is_secret_name(name) => {
                    text.push_str(name);
                    text.push('=');
                    text.push_str(REDACTED);
                }
                _ => text.push_str(pair),
            }
            let mut tail = tail.chars();
            match tail.next() {
                Some(separator) => text.push(separator),
                None => break,
            }
            rest = tail.as_str();
        }
    }
    text
}

/// Whether a query parameter's name (as sent, percent-encoded) names a secret.
fn is_secret_name(name: &str) -> bool {
    let name = percent_decode(name).to_lowercase().replace('-', "_");
    let secret = |part: &str| {
        let part = part.trim();
        SECRET_NAMES.contains(&part)
            || part.ends_with("_token")
            || part.ends_with("_key")
            || part.ends_with("_secret")
    };
    secret(&name) || name.split(['[', ']', '.']).any(secret)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(text: &str) -> String {
    String::from_utf8_lossy(&crate::request_body::form_decode(text)).into_owned()
}

/// Refuses a body larger than the limit with 413: at once when `Content-Length` says so, else as
/// soon as reading it passes the limit (before anything parses it). Whatever read the body then
/// (a server function, an extractor, the body check of `request_body`) and however it answered,
/// the answer is this layer's 413, so that a body sent without a length (chunked) is refused as
/// clearly as one that declared it.
async fn limit_body(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response<Body> {
    let path = request.uri().path();
    let api = path.starts_with("/api/");
    let limit = if path == crate::project_archives::IMPORT_PATH {
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
        return too_large(limit, api);
    }
    let exceeded = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, limit).map_err({
        let exceeded = Arc::clone(&exceeded);
        move |error| {
            if error.is::<http_body_util::LengthLimitError>() {
                exceeded.store(true, Ordering::Relaxed);
            }
            error
        }
    });
    let response = next
        .run(axum::extract::Request::from_parts(
            parts,
            Body::new(limited),
        ))
        .await;
    if exceeded.load(Ordering::Relaxed) && !response.status().is_success() {
        return too_large(limit, api);
    }
    response
}

/// 413 with what the limit is: for `/api/` as the app's error (what its pages read), elsewhere
/// as text.
fn too_large(limit: usize, api: bool) -> Response<Body> {
    let message = format!("The request is larger than the {limit} bytes this server accepts.");
    let (body, content_type) = if api {
        let error = app::error::AppError::TooLarge(message.clone());
        match serde_json::to_string(&error) {
            Ok(json) => (json, "application/json"),
            Err(_) => (message, "text/plain; charset=utf-8"),
        }
    } else {
        (message, "text/plain; charset=utf-8")
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
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
    let page = ERROR_PAGE.replace("{reference}", &reference).replace(
        "{stylesheet}",
        &app::assets::stylesheet_href("async-coder", "pkg", app::assets::hashed()),
    );
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
<link rel="stylesheet" href="{stylesheet}">
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

#[cfg(test)]
mod cache_tests {
    use super::cache_policy;

    #[test]
    fn hashed_files_are_kept_forever_pages_never_the_rest_after_asking() {
        let immutable = Some("public, max-age=31536000, immutable");
        assert_eq!(
            cache_policy("/pkg/async-coder.AbC_1.wasm", false, true, true),
            immutable
        );
        assert_eq!(
            cache_policy("/pkg/async-coder.wasm", false, true, false),
            Some("no-cache")
        );
        assert_eq!(
            cache_policy("/pkg/missing.js", false, false, true),
            Some("no-cache")
        );
        assert_eq!(
            cache_policy("/projects", true, true, true),
            Some("no-store")
        );
        assert_eq!(cache_policy("/", true, true, true), Some("no-store"));
        assert_eq!(cache_policy("/sw.js", false, true, true), Some("no-cache"));
        assert_eq!(
            cache_policy("/monaco/chunk-U45DGW4R.js", false, true, false),
            immutable
        );
        assert_eq!(
            cache_policy("/monaco/json.worker-B6CKNVV6.js", false, true, true),
            immutable
        );
        assert_eq!(
            cache_policy("/monaco/codicon-LTRFOK3N.ttf", false, true, true),
            immutable
        );
        for unhashed in [
            "/monaco/editor.js",
            "/monaco/editor.css",
            "/monaco/manifest.json",
            "/monaco/chunk-lower123.js",
            "/monaco/sub/chunk-U45DGW4R.js",
            "/other/chunk-U45DGW4R.js",
        ] {
            assert_eq!(
                cache_policy(unhashed, false, true, true),
                Some("no-cache"),
                "{unhashed}"
            );
        }
        assert_eq!(
            cache_policy("/monaco/chunk-U45DGW4R.js", false, false, true),
            Some("no-cache")
        );
        assert_eq!(cache_policy("/api/projects/list", false, true, true), None);
        assert_eq!(cache_policy("/v1/models", false, true, true), None);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn secret_query_values_are_redacted() {
        for (uri, logged) in [
            ("/v1/models", "/v1/models"),
            ("/search?q=rust&page=2", "/search?q=rust&page=2"),
            (
                "/x?api_key=SECRET123&page=2",
                "/x?api_key=[redacted]&page=2",
            ),
            ("/x?key=AIza123", "/x?key=[redacted]"),
            (
                "/x?KEY=AIza123&Api_Key=s",
                "/x?KEY=[redacted]&Api_Key=[redacted]",
            ),
            (
                "/x?apikey=s&token=s",
                "/x?apikey=[redacted]&token=[redacted]",
            ),
            (
                "/x?access_token=s&refresh_token=s&id_token=s",
                "/x?access_token=[redacted]&refresh_token=[redacted]&id_token=[redacted]",
            ),
            (
                "/x?password=s&secret=s&client_secret=s",
                "/x?password=[redacted]&secret=[redacted]&client_secret=[redacted]",
            ),
            (
                "/callback?code=abc&state=xyz",
                "/callback?code=[redacted]&state=xyz",
            ),
            (
                "/x?session=s&signature=s&sig=s",
                "/x?session=[redacted]&signature=[redacted]&sig=[redacted]",
            ),
            (
                "/x?auth=s&Authorization=Bearer%20s&X-API-KEY=s",
                "/x?auth=[redacted]&Authorization=[redacted]&X-API-KEY=[redacted]",
            ),
            (
                "/x?github_token=s&private_key=s&app_secret=s&deploy-key=s",
                "/x?github_token=[redacted]&private_key=[redacted]&app_secret=[redacted]&deploy-key=[redacted]",
            ),
            (
                "/x?api%5Fkey=s&api%2Dkey=s",
                "/x?api%5Fkey=[redacted]&api%2Dkey=[redacted]",
            ),
            (
                "/x?user[password]=s&auth.token=s",
                "/x?user[password]=[redacted]&auth.token=[redacted]",
            ),
            ("/x?page=1;token=s", "/x?page=1;token=[redacted]"),
            ("/x?token=&token", "/x?token=[redacted]&token"),
            ("/x?token=a=b&b=c", "/x?token=[redacted]&b=c"),
            ("/x?&&name=ada&", "/x?&&name=ada&"),
            ("/x?", "/x?"),
            ("/x?monkey=banana", "/x?monkey=banana"),
            (
                "/api/projects/import?name=My%20project",
                "/api/projects/import?name=My%20project",
            ),
            (
                "http://user:pass@example.com/v1beta/models?key=s",
                "http://[redacted]@example.com/v1beta/models?key=[redacted]",
            ),
            (
                "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000&key=AIza",
                "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000&key=[redacted]",
            ),
        ] {
            let parsed: Uri = uri.parse().expect(uri);
            assert_eq!(redact_query(&parsed), logged, "{uri}");
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            let bytes = self.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every layer, with everything logged at TRACE: the secret is in no line, the request is.
    #[tokio::test(flavor = "current_thread")]
    async fn a_secret_query_value_reaches_no_log_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let router = apply(
            Router::new()
                .route("/items", get(|| async { "items" }))
                .route(
                    "/broken",
                    get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
                ),
            BodyLimits {
                default: BODY_LIMIT_BYTES,
                import: BODY_LIMIT_BYTES,
            },
        );
        for path in [
            "/items?api_key=SECRET123&page=2",
            "/broken?api_key=SECRET123&page=2",
            "/nowhere?token=SECRET123&page=2",
        ] {
            let request = axum::http::Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("a request");
            let response = router.clone().oneshot(request).await.expect("an answer");
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
        }
        let logs = captured.text();
        assert!(
            logs.contains("/items?api_key=[redacted]&page=2"),
            "the request was not logged: {logs}"
        );
        assert!(
            !logs.contains("SECRET123"),
            "a log line holds the secret: {logs}"
        );
    }
}
