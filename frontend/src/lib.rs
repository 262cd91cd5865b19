//! The browser entry point. cargo-leptos builds this crate to WebAssembly; the generated
//! JavaScript calls [`hydrate`] once the server-rendered page has loaded.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
