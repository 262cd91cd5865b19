//! The browser entry point. cargo-leptos builds this crate to WebAssembly; the generated
//! JavaScript calls [`hydrate`] once the server-rendered page has loaded.
//!
//! `hydrate_lazy`, not `hydrate_body`: most routes are lazily loaded chunks (app/src/pages/lazy.rs),
//! and hydration must wait for the current route's chunk before it walks the server's HTML
//! (`hydrate_body` hydrates synchronously and panics on a route that is not loaded yet).
//!
//! The recursion limit: `hydrate_lazy` holds `App`'s whole view type in an async block, whose
//! layout the compiler computes more than the default 128 queries deep (as in `app`).
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
