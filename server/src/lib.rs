//! The Async Coder server: the axum router around the Leptos app, health and metrics endpoints,
//! and the layers every response goes through. The binary (`main.rs`) adds configuration,
//! logging, the database and graceful shutdown.

#![recursion_limit = "256"]

pub mod chat_stream;
pub mod config;
pub mod event_stream;
mod health;
mod http_layers;
pub mod listen;
mod metrics;
pub mod openai_api;
pub mod project_archives;
pub mod request_body;
pub mod request_guards;
mod request_owner;
pub mod resident_code;
pub mod run_stream;
pub mod tasks_api;

use axum::Router;
use axum::extract::FromRef;
use axum::middleware;
use axum::routing::{get, post};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};

pub use crate::metrics::Metrics;
pub use crate::request_guards::TrustedProxies;

/// What every request handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub services: services::Services,
    pub metrics: Metrics,
    pub trusted_proxies: TrustedProxies,
    /// The host names answered and whether cookies must be `Secure` (`--public-url`).
    pub site: app::api::request::SitePolicy,
}

/// The whole HTTP surface: Leptos pages and server functions, static files, `/healthz`,
/// `/readyz`, `/metrics`, wrapped in the common layers.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] with extra routes merged in before the common layers (tests use it to check that
/// the layers also guard routes added later).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let routes = generate_route_list(app::App);
    let leptos_options = state.leptos_options.clone();
    // Server functions and pages reach the use cases through Leptos' context.
    let context = {
        let services = state.services.clone();
        let site = state.site.clone();
        move || {
            provide_context(services.clone());
            provide_context(site.clone());
        }
    };
    let site = state.site.clone();
    let trusted_proxies = state.trusted_proxies.clone();
    let services = state.services.clone();
    let body_limits = http_layers::BodyLimits {
        default: http_layers::BODY_LIMIT_BYTES,
        import: usize::try_from(state.services.projects.max_archive_bytes).unwrap_or(usize::MAX),
    };
    let router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route(
            project_archives::IMPORT_PATH,
            post(project_archives::import),
        )
        .route(project_archives::EXPORT_PATH, get(project_archives::export))
        .route(
            openai_api::CHAT_COMPLETIONS_PATH,
            post(openai_api::chat_completions),
        )
        .route(openai_api::MODELS_PATH, get(openai_api::models))
        .route(chat_stream::EVENTS_PATH, get(chat_stream::events))
        .route(run_stream::EVENTS_PATH, get(run_stream::events))
        .merge(tasks_api::routes())
        .merge(extra)
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(leptos_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        .with_state(state)
        // axum's extractors stop at 2 MB by default; `http_layers` enforces this server's own
        // limits (the default one, and the archive limit for an import) before any handler.
        .layer(axum::extract::DefaultBodyLimit::disable())
        // Inside the session check: a caller without a session is refused before this reads.
        .layer(middleware::from_fn(request_body::check_api_request))
        .layer(middleware::from_fn_with_state(
            (services, site.clone()),
            request_guards::authenticate_api,
        ))
        .layer(middleware::from_fn(request_guards::same_origin_only))
        .layer(middleware::from_fn_with_state(
            trusted_proxies,
            request_guards::resolve_client_address,
        ))
        .layer(middleware::from_fn_with_state(
            site,
            request_guards::allowed_hosts_only,
        ));
    http_layers::apply(router, body_limits)
}
