//! Async Coder's user interface, its server functions and the wire types both sides share.
//!
//! Compiled twice: with feature `ssr` into the server (rendering pages, running server functions)
//! and with feature `hydrate` into the browser's WebAssembly (making the rendered page live).

#![recursion_limit = "256"]

pub mod api;
#[cfg(feature = "ssr")]
pub mod assets;
pub mod chat;
pub mod components;
pub mod editor;
pub mod error;
#[cfg(feature = "ssr")]
pub mod hydration;
pub mod markdown;
pub mod pages;
pub mod preferences;
pub mod tasks;
pub mod types;
pub mod workspace;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, ParamSegment, StaticSegment};

use crate::components::{ToastRegion, provide_toaster};
use crate::pages::{
    AccountRoute, AdminRoute, ChatRoute, ErrorPage, LandingPage, NotFoundPage, ProjectsRoute,
    ProvidersRoute, SettingsRoute, SignInRoute, SignUpRoute, TaskRoute, TasksRoute, WorkspaceRoute,
};

/// The HTML document around the app, rendered on the server only. The theme and font size come
/// from the request's cookies, so the first paint is already right (no flash of the wrong theme).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let preferences = api::settings::preferences_of_request();
    #[cfg(feature = "ssr")]
    set_content_security_policy();
    #[cfg(not(feature = "ssr"))]
    let preferences = types::Preferences::default();
    #[cfg(feature = "ssr")]
    let stylesheet = assets::stylesheet_href(
        &options.output_name,
        &options.site_pkg_dir,
        options.hash_files,
    );
    #[cfg(not(feature = "ssr"))]
    let stylesheet = String::new();
    #[cfg(feature = "ssr")]
    let preloads = page_preloads(&options.site_root);
    #[cfg(not(feature = "ssr"))]
    let preloads: Vec<(String, &'static str, Option<&'static str>)> = Vec::new();
    // Leptos' hydration scripts, or on a workspace page the early editor's first (hydration.rs).
    #[cfg(feature = "ssr")]
    let hydration_scripts = view! { <hydration::PageHydrationScripts options=options.clone()/> };
    #[cfg(not(feature = "ssr"))]
    let hydration_scripts = view! { <HydrationScripts options=options.clone()/> };
    view! {
        <!DOCTYPE html>
        <html
            lang="en"
            data-theme=preferences.theme.as_str()
            data-editor-font-size=preferences.editor_font_size.to_string()
            style=format!("--editor-font-size: {}px", preferences.editor_font_size)
        >
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <meta name="theme-color" content="#4f46e5"/>
                <link rel="stylesheet" id="leptos" href=stylesheet/>
                <link rel="manifest" href="/manifest.webmanifest"/>
                <link rel="icon" href="/icons/icon.svg" type="image/svg+xml"/>
                <link rel="icon" href="/favicon.ico" sizes="32x32"/>
                <link rel="apple-touch-icon" href="/icons/icon-192.png"/>
                {preloads
                    .into_iter()
                    .map(|(href, rel, destination)| view! { <link rel=rel href=href r#as=destination/> })
                    .collect_view()}
                // Inline (with the response's nonce): a file of its own cost every page a request.
                <script nonce=leptos::nonce::use_nonce()>{include_str!("sw-register.js")}</script>
                <AutoReload options/>
                {hydration_scripts}
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// `<link>`s (URL path, `rel`, `as`) for what the requested page loads right after it is live:
/// on a workspace page, Monaco's modules and stylesheet, which would otherwise be asked for only
/// once the WebAssembly has run.
#[cfg(feature = "ssr")]
fn page_preloads(site_root: &str) -> Vec<(String, &'static str, Option<&'static str>)> {
    let Some(request) = use_context::<http::request::Parts>() else {
        return Vec::new();
    };
    if !workspace::is_workspace_path(request.uri.path()) {
        return Vec::new();
    }
    editor::monaco_build(site_root)
        .preloads
        .iter()
        .map(|preload| {
            (
                preload.href.clone(),
                preload.kind.rel(),
                preload.kind.destination(),
            )
        })
        .collect()
}

/// The page's Content-Security-Policy: scripts only from this origin or carrying this
/// response's nonce (Leptos' hydration script), WebAssembly allowed, no framing.
#[cfg(feature = "ssr")]
fn set_content_security_policy() {
    let (Some(response), Some(nonce)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        leptos::nonce::use_nonce(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; font-src 'self' data:; \
         connect-src 'self'; worker-src 'self' blob:; manifest-src 'self'; frame-ancestors 'none'; \
         base-uri 'self'; form-action 'self'; object-src 'none'",
        nonce.as_inner()
    );
    match http::HeaderValue::from_str(&policy) {
        Ok(value) => response.insert_header(http::header::CONTENT_SECURITY_POLICY, value),
        Err(error) => tracing::error!(%error, "the Content-Security-Policy is not a header value"),
    }
}

/// Marks the page hydrated (`<html data-hydrated="true">`, what the end-to-end tests wait for).
/// Called by every route's view after it has made its page: effects run only in the browser,
/// after the view they belong to has hydrated, in the order they were made, so the mark comes
/// after the page's own effects (what it restores from local storage, say). Not in [`App`]: a
/// lazily loaded route hydrates once its chunk has arrived, after the app's own effects ran.
pub fn mark_hydrated() {
    Effect::new(move |_| {
        if let Some(root) = document().document_element()
            && let Err(error) = root.set_attribute("data-hydrated", "true")
        {
            leptos::logging::error!("could not mark the page hydrated: {error:?}");
        }
    });
}

/// The application: providers, routes and the toast region.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_toaster();
    preferences::provide_preferences();
    components::provide_session();
    view! {
        <Title text="Async Coder"/>
        <Router>
            <ErrorBoundary fallback=|errors| view! { <ErrorPage errors/> }>
                <Routes fallback=|| view! { <NotFoundPage/> }>
                    <Route path=StaticSegment("") view=LandingPage/>
                    // Every other page is split out of the main WebAssembly file (pages/lazy.rs).
                    <Route path=StaticSegment("settings") view={Lazy::<SettingsRoute>::new()}/>
                    <Route path=StaticSegment("account") view={Lazy::<AccountRoute>::new()}/>
                    <Route path=StaticSegment("admin") view={Lazy::<AdminRoute>::new()}/>
                    <Route
                        path=(StaticSegment("settings"), StaticSegment("providers"))
                        view={Lazy::<ProvidersRoute>::new()}
                    />
                    <Route path=StaticSegment("sign-in") view={Lazy::<SignInRoute>::new()}/>
                    <Route path=StaticSegment("sign-up") view={Lazy::<SignUpRoute>::new()}/>
                    <Route path=StaticSegment("projects") view={Lazy::<ProjectsRoute>::new()}/>
                    <Route path=StaticSegment("chat") view={Lazy::<ChatRoute>::new()}/>
                    <Route path=StaticSegment("tasks") view={Lazy::<TasksRoute>::new()}/>
                    <Route
                        path=(StaticSegment("tasks"), ParamSegment("id"))
                        view={Lazy::<TaskRoute>::new()}
                    />
                    <Route
                        path=(StaticSegment("projects"), ParamSegment("id"))
                        view={Lazy::<WorkspaceRoute>::new()}
                    />
                </Routes>
            </ErrorBoundary>
        </Router>
        <ToastRegion/>
    }
}
