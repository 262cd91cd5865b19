//! What server functions know of their request: the services, the client, the session cookie.

use http::HeaderValue;
use http::header::{COOKIE, HOST, SET_COOKIE, USER_AGENT};
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;
use services::{
    AuthenticatedUser, ClientAddress, ExposeSecret, RequestMeta, Services, SessionToken,
};

use crate::error::AppError;
use crate::types::{CurrentUser, UserRole, UserTier};

/// Name of the session cookie: `__Host-` prefixed (Secure, no Domain, Path=/) everywhere except
/// plain http on a loopback address, where browsers would drop a Secure cookie.
const SECURE_COOKIE: &str = "__Host-session";
const LOOPBACK_COOKIE: &str = "session";

/// What the server knows of the address people reach it by (`--public-url`, `--allowed-host`):
/// which `Host` values it answers, and whether its cookies must be `Secure`. Decided by
/// configuration, never by a request's own `Host` header (a proxy forwarding its upstream's
/// host, `127.0.0.1:3000`, would otherwise make the session cookie plain).
#[derive(Clone, Debug, Default)]
pub struct SitePolicy {
    /// `host[:port]` values (lower case) answered besides the loopback names; an entry without a
    /// port matches every port.
    pub allowed_hosts: std::sync::Arc<Vec<String>>,
    /// The public URL is https: the session cookie is always `__Host-` and `Secure`.
    pub https: bool,
}

/// The loopback names every server answers (plain http is accepted there).
const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// `name` and `port` of a `Host` value (`[::1]:3000` -> (`[::1]`, `3000`)).
fn split_host(host: &str) -> (String, Option<&str>) {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            (name.to_ascii_lowercase(), Some(port))
        }
        _ => (host.to_ascii_lowercase(), None),
    }
}

impl SitePolicy {
    /// Whether the server answers a request whose `Host` is `host`: a loopback name, or one of
    /// the allowed hosts (DNS rebinding makes a browser send the attacker's name: refused).
    pub fn allows_host(&self, host: &str) -> bool {
        let (name, port) = split_host(host.trim());
        if LOOPBACK_NAMES.contains(&name.as_str()) {
            return true;
        }
        self.allowed_hosts.iter().any(|allowed| {
            let (allowed_name, allowed_port) = split_host(allowed);
            allowed_name == name && (allowed_port.is_none() || allowed_port == port)
        })
    }

    /// Whether the session cookie may be the plain `session` one (not `Secure`): only with an
    /// http (or no) public URL and a request to a loopback name.
    fn plain_cookie(&self, headers: &http::HeaderMap) -> bool {
        !self.https && is_loopback_host(headers)
    }
}

fn site_policy() -> SitePolicy {
    use_context::<SitePolicy>().unwrap_or_default()
}

pub fn services() -> Result<Services, AppError> {
    use_context::<Services>()
        .ok_or_else(|| AppError::internal("no Services in the server function's context"))
}

fn parts() -> Option<http::request::Parts> {
    use_context::<http::request::Parts>()
}

pub fn meta() -> RequestMeta {
    let parts = parts();
    RequestMeta {
        ip: parts
            .as_ref()
            .and_then(|parts| parts.extensions.get::<ClientAddress>())
            .map(|address| address.0),
        user_agent: parts
            .as_ref()
            .and_then(|parts| parts.headers.get(USER_AGENT))
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(300).collect()),
    }
}

/// Whether this request may get the plain session cookie (see [`SitePolicy`]).
fn on_loopback() -> bool {
    parts().is_some_and(|parts| site_policy().plain_cookie(&parts.headers))
}

fn is_loopback_host(headers: &http::HeaderMap) -> bool {
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    LOOPBACK_NAMES.contains(&split_host(host).0.as_str())
}

fn session_token() -> Option<String> {
    let parts = parts()?;
    session_token_of(&parts.headers, &site_policy())
}

/// The session token in a request's cookies: `__Host-session`, or `session` on loopback.
pub fn session_token_of(headers: &http::HeaderMap, site: &SitePolicy) -> Option<String> {
    let header = headers.get(COOKIE)?.to_str().ok()?;
    let mut loopback_token = None;
    for pair in header.split(';') {
        let Some((name, value)) = pair.trim().split_once('=') else {
            continue;
        };
        if name == SECURE_COOKIE {
            return Some(value.to_owned());
        }
        if name == LOOPBACK_COOKIE {
            loopback_token = Some(value.to_owned());
        }
    }
    loopback_token.filter(|_| site.plain_cookie(headers))
}

pub async fn current_user() -> Result<Option<AuthenticatedUser>, AppError> {
    // The server's guard has usually looked the session up already.
    if let Some(user) =
        parts().and_then(|parts| parts.extensions.get::<AuthenticatedUser>().cloned())
    {
        return Ok(Some(user));
    }
    let Some(token) = session_token() else {
        return Ok(None);
    };
    services()?
        .authenticate(&token)
        .await
        .map_err(super::reject_service_error)
}

/// The signed-in user, or 401.
pub async fn require_user() -> Result<AuthenticatedUser, AppError> {
    current_user()
        .await?
        .ok_or_else(|| super::reject(AppError::Unauthorized))
}

fn set_cookie(value: String) -> Result<(), AppError> {
    let response =
        use_context::<ResponseOptions>().ok_or_else(|| AppError::internal("no ResponseOptions"))?;
    let header = HeaderValue::from_str(&value).map_err(AppError::internal)?;
    response.append_header(SET_COOKIE, header);
    Ok(())
}

pub fn set_session_cookie(token: &SessionToken) -> Result<(), AppError> {
    let secret = token.0.expose_secret();
    if on_loopback() {
        set_cookie(format!(
            "{LOOPBACK_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax"
        ))
    } else {
        set_cookie(format!(
            "{SECURE_COOKIE}={secret}; Path=/; Secure; HttpOnly; SameSite=Lax"
        ))
    }
}

pub fn clear_session_cookie() -> Result<(), AppError> {
    if on_loopback() {
        set_cookie(format!(
            "{LOOPBACK_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        ))
    } else {
        set_cookie(format!(
            "{SECURE_COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"
        ))
    }
}

pub fn to_wire(user: &AuthenticatedUser) -> CurrentUser {
    use db::tables::users::{Role, Tier};
    CurrentUser {
        id: user.id.to_string(),
        email: user.email.clone(),
        name: user.name.clone(),
        role: match user.role {
            Role::Admin => UserRole::Admin,
            Role::User => UserRole::User,
        },
        tier: match user.tier {
            Tier::Free => UserTier::Free,
            Tier::Premium => UserTier::Premium,
            Tier::Enterprise => UserTier::Enterprise,
        },
    }
}
