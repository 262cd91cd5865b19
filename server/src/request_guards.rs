//! Per-request guards that need HTTP: who the client is (trusting `X-Forwarded-For` only from
//! configured proxies) and whether a state-changing request comes from our own pages.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use services::ClientAddress;

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(pub Arc<Vec<IpAddr>>);

/// Middleware: refuses a request whose `Host` the server does not answer for (see
/// [`app::api::request::SitePolicy::allows_host`]): a DNS-rebinding page reaches the server
/// under the attacker's name and is refused before anything runs, so it cannot, say, claim the
/// first (administrator) account of a fresh instance. A request without `Host` (HTTP/1.0, a
/// program) has no name to rebind and passes; health checks pass whatever their `Host`.
pub async fn allowed_hosts_only(
    State(site): State<app::api::request::SitePolicy>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .map(|value| value.to_str().unwrap_or("\u{fffd}").to_owned())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.to_string())
        });
    match host {
        Some(host) if !site.allows_host(&host) => {
            tracing::info!(host = %host.chars().take(100).collect::<String>(), "request for a host this server does not answer refused");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "This server does not answer for this host name. Its administrator can allow it \
                 with --public-url or --allowed-host.",
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

/// Middleware: puts the client's [`ClientAddress`] in the request's extensions.
pub async fn resolve_client_address(
    State(trusted): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    if let Some(peer) = peer {
        let client = client_address(peer, request.headers(), &trusted.0);
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

/// The peer, unless it is a trusted proxy: then the rightmost address in `X-Forwarded-For` that
/// is not itself a trusted proxy.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|address| !trusted.contains(address))
        .unwrap_or(peer)
}

/// Middleware: refuses a state-changing request (anything but GET, HEAD, OPTIONS) unless the
/// browser says it comes from this origin (`Sec-Fetch-Site: same-origin`, or an `Origin` whose
/// host is this host). A request with neither header comes from a program, not a browser page:
/// it is let through only without cookies, so that it cannot ride on a session.
pub async fn same_origin_only(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if is_same_origin(request.headers()) {
        next.run(request).await
    } else {
        tracing::info!(method = %request.method(), path = %request.uri().path(), "cross-site request refused");
        (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response()
    }
}

fn is_same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return site == "same-origin";
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        return origin_host.is_some() && origin_host == text(header::HOST.as_str());
    }
    headers.get(header::COOKIE).is_none()
}

/// Middleware: every `/api/` endpoint outside [`app::api::PUBLIC_ENDPOINTS`] needs a valid
/// session, checked here before the request body is read; the signed-in user then rides along
/// in the request's extensions for the server function.
pub async fn authenticate_api(
    State((services, site)): State<(services::Services, app::api::request::SitePolicy)>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/api/") {
        return next.run(request).await;
    }
    let public = app::api::PUBLIC_ENDPOINTS.contains(&path);
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(token) = bearer {
        // A token is all-or-nothing: a wrong one is refused even on a public endpoint.
        return match services.authenticate_bearer(&token).await {
            Ok(Some(user)) => {
                let is_get = request.method() == Method::GET;
                let needed = app::api::token_scopes_needed(path)
                    .or_else(|| app::api::task_api_token_scopes(is_get, path));
                let allowed = needed.is_some_and(|needed| {
                    let granted = user.token_scopes.unwrap_or_default();
                    needed.iter().all(|scope| granted.names().contains(scope))
                });
                if !allowed {
                    return error_response(app::error::AppError::Forbidden);
                }
                request.extensions_mut().insert(user);
                next.run(request).await
            }
            Ok(None) => error_response(app::error::AppError::Unauthorized),
            Err(error) => {
                tracing::error!(%error, "looking up an access token failed");
                error_response(app::error::AppError::Internal {
                    reference: "token lookup".into(),
                })
            }
        };
    }
    let user = match app::api::request::session_token_of(request.headers(), &site) {
        Some(token) => match services.authenticate(&token).await {
            Ok(user) => user,
            Err(error) => {
                tracing::error!(%error, "looking up a session failed");
                return error_response(app::error::AppError::Internal {
                    reference: "session lookup".into(),
                });
            }
        },
        None => None,
    };
    match user {
        Some(user) => {
            request.extensions_mut().insert(user);
            next.run(request).await
        }
        None if public => next.run(request).await,
        None => error_response(app::error::AppError::Unauthorized),
    }
}

/// An error answered the way server functions answer theirs (JSON `AppError`).
fn error_response(error: app::error::AppError) -> Response {
    let body = serde_json::to_string(&error).unwrap_or_else(|_| "\"Unauthorized\"".to_owned());
    (
        error.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// Request headers from name-value pairs.
    pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(client_address(client, &spoofed, &[proxy]), client);
        let forwarded = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.9")]);
        assert_eq!(client_address(proxy, &forwarded, &[proxy]), client);
        assert_eq!(client_address(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }

    #[test]
    fn only_same_origin_browser_requests_pass() {
        assert!(is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("cookie", "a=b")
        ])));
        assert!(!is_same_origin(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(is_same_origin(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(
            is_same_origin(&HeaderMap::new()),
            "a program without cookies"
        );
        assert!(
            !is_same_origin(&headers(&[("cookie", "session=x")])),
            "cookies but no origin"
        );
    }
}
