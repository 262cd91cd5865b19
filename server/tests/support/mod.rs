//! What the server's integration tests share: the real router over a throwaway database, and
//! requests as our own pages (or other sites, or scripts) send them.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod processes;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use db::testing::TestDatabase;
use http_body_util::BodyExt;
use leptos::config::LeptosOptions;
use server::{AppState, Metrics};
use tower::ServiceExt;

pub fn services_for(database: &TestDatabase) -> services::Services {
    services::Services::new(
        database.database.clone(),
        services::secrets::MasterKey::generate(1).unwrap(),
    )
}

pub fn app_state(services: services::Services) -> AppState {
    AppState {
        leptos_options: LeptosOptions::builder()
            .output_name("async-coder")
            .site_root("target/site")
            .build(),
        services,
        metrics: Metrics::install(),
        trusted_proxies: server::TrustedProxies::default(),
        site: app::api::request::SitePolicy::default(),
    }
}

/// Use cases whose AI gateway may call loopback servers (a local upstream), with short
/// timeouts and retries.
pub fn services_with_gateway(database: &TestDatabase) -> services::Services {
    services_with_gateway_over(database.database.clone())
}

/// [`services_with_gateway`] over a connection of its own (an instance with its own pool).
pub fn services_with_gateway_over(database: db::Database) -> services::Services {
    let mut services =
        services::Services::new(database, services::secrets::MasterKey::generate(1).unwrap());
    services.ai = services::ai::Ai::new(
        llm::testing::loopback_policy(),
        llm::Timeouts {
            connect: std::time::Duration::from_secs(2),
            first_byte: std::time::Duration::from_secs(5),
            between_chunks: std::time::Duration::from_secs(5),
        },
        llm::RetryPolicy {
            max_retries: 1,
            base_delay: std::time::Duration::from_millis(10),
            max_delay: std::time::Duration::from_millis(50),
        },
    );
    services
}

/// Saves the local `upstream` as the user's OpenAI-compatible provider `label` (its models are
/// then `<label>/<model>`).
pub async fn add_local_provider(
    services: &services::Services,
    user: &services::AuthenticatedUser,
    label: &str,
    upstream: &llm::testing::Upstream,
) {
    services
        .save_credential(
            user,
            services::providers::SaveCredential {
                provider: db::tables::provider_credentials::ProviderKind::OpenAiCompatible,
                label: label.into(),
                api_key: None,
                base_url: Some(upstream.base_url(llm::ProviderKind::OpenAiCompatible)),
            },
            &services::RequestMeta::default(),
        )
        .await
        .unwrap();
}

/// `w0 `, `w1 `, … : the pieces of a streamed answer.
pub fn pieces(count: usize) -> Vec<String> {
    (0..count).map(|index| format!("w{index} ")).collect()
}

/// A streamed OpenAI answer of these pieces.
pub fn stream_of(words: &[String]) -> llm::testing::Reply {
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    llm::testing::Reply::sse(llm::testing::openai::text_stream(
        &refs,
        12,
        words.len() as u64,
    ))
}

/// Signs a new person up through the use cases: the user and their session cookie
/// (`session=<token>`).
pub async fn sign_up_with(
    services: &services::Services,
    email: &str,
) -> (services::AuthenticatedUser, String) {
    use services::ExposeSecret;
    let (user, token) = services
        .sign_up(
            services::accounts::SignUp {
                email: email.into(),
                name: "Ada".into(),
                password: services::SecretString::from("correct horse battery staple".to_owned()),
            },
            &services::RequestMeta::default(),
        )
        .await
        .unwrap();
    (user, format!("session={}", token.0.expose_secret()))
}

/// The whole router with the given use cases.
pub fn router_for(services: services::Services) -> Router {
    server::router(app_state(services))
}

/// The whole router over `database`.
pub fn test_router(database: &TestDatabase) -> Router {
    router_for(services_for(database))
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The session token a `Set-Cookie` handed out, as `name=value`.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|cookie| cookie.starts_with("session=") || cookie.starts_with("__Host-session="))
            .map(|cookie| cookie.split(';').next().unwrap_or_default().to_owned())
    }
}

pub fn json(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|error| panic!("{error}: {}", reply.body))
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A form POST from our own page on the loopback host, from client `address`.
pub async fn post(
    router: &Router,
    path: &str,
    form: &str,
    cookie: Option<&str>,
    address: &str,
) -> Reply {
    let mut builder = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "http://127.0.0.1:3000")
        .header(header::USER_AGENT, "accounts-test/1.0")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    let mut request = builder.body(Body::from(form.to_owned())).unwrap();
    let peer: SocketAddr = format!("{address}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    send(router, request).await
}

/// Signs up `local@example.com` with the tests' password, from the loopback address.
pub async fn sign_up(router: &Router, local: &str, name: &str) -> Reply {
    let form =
        format!("email={local}%40example.com&name={name}&password=correct+horse+battery+staple");
    post(router, "/api/auth/sign-up", &form, None, "127.0.0.1").await
}

/// Sends a request and returns the body as bytes (downloads).
pub async fn send_for_bytes(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, bytes.to_vec())
}

/// A request from our own page on the loopback host, with the session cookie.
pub fn same_origin_request(method: &str, path: &str, cookie: &str, body: Vec<u8>) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "http://127.0.0.1:3000")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Percent-encodes a form value.
pub fn form_value(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}
