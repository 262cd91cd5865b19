//! Monaco, bound through wasm-bindgen. Monaco's files are served from `/monaco` (built from npm's
//! `monaco-editor` by `scripts/build-monaco.mjs`, entry `monaco-entry.js`) and loaded only when a
//! page needs an editor, after hydration.
//! An [`Editor`] exists only in the browser: on the server there is no way to make one, so the
//! server build carries no editor code paths at all.

/// Where Monaco's files are served.
pub const MONACO_BASE: &str = "/monaco";

#[cfg(feature = "ssr")]
mod preloads;
#[cfg(feature = "ssr")]
pub use preloads::{MonacoBuild, Preload, PreloadKind, monaco_build};

#[cfg(feature = "hydrate")]
mod binding {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(module = "/src/editor/monaco.js")]
    extern "C" {
        #[wasm_bindgen(js_name = loadMonaco)]
        pub fn load_monaco(base: &str) -> js_sys::Promise;
        #[wasm_bindgen(js_name = setTheme)]
        pub fn set_theme(dark: bool);
        #[wasm_bindgen(js_name = createEditor)]
        pub fn create_editor(
            element: &web_sys::HtmlElement,
            font_size: u32,
            dark: bool,
            on_save: &JsValue,
            on_change: &JsValue,
            on_cursor: &JsValue,
        ) -> JsValue;
        #[wasm_bindgen(js_name = showModel)]
        pub fn show_model(editor: &JsValue, uri: &str, value: &str, language: &str) -> Vec<u32>;
        #[wasm_bindgen(js_name = hasModel)]
        pub fn has_model(uri: &str) -> bool;
        #[wasm_bindgen(js_name = modelValue)]
        pub fn model_value(uri: &str) -> Option<String>;
        #[wasm_bindgen(js_name = replaceModelValue)]
        pub fn replace_model_value(uri: &str, value: &str);
        #[wasm_bindgen(js_name = modelVersion)]
        pub fn model_version(uri: &str) -> f64;
        #[wasm_bindgen(js_name = markSaved)]
        pub fn mark_saved(uri: &str, version: f64);
        #[wasm_bindgen(js_name = isDirty)]
        pub fn is_dirty(uri: &str) -> bool;
        #[wasm_bindgen(js_name = disposeModel)]
        pub fn dispose_model(uri: &str);
        #[wasm_bindgen(js_name = reveal)]
        pub fn reveal(editor: &JsValue, line: u32, column: u32);
        #[wasm_bindgen(js_name = focusEditor)]
        pub fn focus_editor(editor: &JsValue);
        #[wasm_bindgen(js_name = setFontSize)]
        pub fn set_font_size(editor: &JsValue, font_size: u32);
        #[wasm_bindgen(js_name = disposeEditor)]
        pub fn dispose_editor(editor: &JsValue);
        #[wasm_bindgen(js_name = createDiff)]
        pub fn create_diff(
            element: &web_sys::HtmlElement,
            original: &str,
            modified: &str,
            language: &str,
            dark: bool,
            editable: bool,
        ) -> JsValue;
        #[wasm_bindgen(js_name = disposeDiff)]
        pub fn dispose_diff(diff: &JsValue);
        #[wasm_bindgen(js_name = diffModifiedValue)]
        pub fn diff_modified_value(diff: &JsValue) -> String;
        #[wasm_bindgen(js_name = selectionOf)]
        pub fn selection_of(editor: &JsValue) -> JsValue;
        #[wasm_bindgen(js_name = colorizeCode)]
        pub fn colorize_code(root: &web_sys::Element, dark: bool);
    }
}

/// Loads Monaco's files (once per page); resolves when `monaco` is ready.
#[cfg(feature = "hydrate")]
pub async fn load() -> Result<(), String> {
    wasm_bindgen_futures::JsFuture::from(binding::load_monaco(MONACO_BASE))
        .await
        .map(|_| ())
        .map_err(|error| format!("{error:?}"))
}

/// The model URI of a file: one model per file, whatever tab shows it.
pub fn model_uri(file_id: &str) -> String {
    format!("inmemory://file/{file_id}")
}

/// One Monaco code editor on the page.
#[derive(Clone)]
pub struct Editor {
    #[cfg(feature = "hydrate")]
    handle: wasm_bindgen::JsValue,
    #[cfg(not(feature = "hydrate"))]
    never: std::convert::Infallible,
}

/// Callbacks the editor calls: Ctrl/Cmd+S, a model's content changed (its URI), the cursor moved.
pub struct EditorEvents {
    pub on_save: Box<dyn FnMut()>,
    pub on_change: Box<dyn FnMut(String)>,
    pub on_cursor: Box<dyn FnMut(u32, u32)>,
}

#[cfg(feature = "hydrate")]
impl Editor {
    /// Creates the editor in `element`. The callbacks live as long as the page.
    pub fn create(
        element: &web_sys::HtmlElement,
        font_size: u32,
        dark: bool,
        events: EditorEvents,
    ) -> Self {
        use wasm_bindgen::closure::Closure;
        let EditorEvents {
            on_save,
            on_change,
            on_cursor,
        } = events;
        let on_save = Closure::<dyn FnMut()>::new(on_save).into_js_value();
        let on_change = Closure::<dyn FnMut(String)>::new(on_change).into_js_value();
        let on_cursor = Closure::<dyn FnMut(u32, u32)>::new(on_cursor).into_js_value();
        Self {
            handle: binding::create_editor(
                element, font_size, dark, &on_save, &on_change, &on_cursor,
            ),
        }
    }

    /// Shows the file's model, creating it with `text` the first time. Returns the cursor.
    pub fn show(&self, uri: &str, text: &str, language: Option<&str>) -> (u32, u32) {
        let position = binding::show_model(&self.handle, uri, text, language.unwrap_or(""));
        (
            position.first().copied().unwrap_or(1),
            position.get(1).copied().unwrap_or(1),
        )
    }

    pub fn reveal(&self, line: u32, column: u32) {
        binding::reveal(&self.handle, line, column);
    }

    pub fn focus(&self) {
        binding::focus_editor(&self.handle);
    }

    /// The selected lines (1-based, inclusive) and text; `None` when nothing is selected.
    pub fn selection(&self) -> Option<(u32, u32, String)> {
        use wasm_bindgen::JsCast;
        let value = binding::selection_of(&self.handle);
        let array = value.dyn_into::<js_sys::Array>().ok()?;
        let start = array.get(0).as_f64()?;
        let end = array.get(1).as_f64()?;
        let text = array.get(2).as_string()?;
        Some((start as u32, end as u32, text))
    }

    pub fn set_font_size(&self, font_size: u32) {
        binding::set_font_size(&self.handle, font_size);
    }

    pub fn dispose(&self) {
        binding::dispose_editor(&self.handle);
    }
}

#[cfg(not(feature = "hydrate"))]
impl Editor {
    pub fn show(&self, _uri: &str, _text: &str, _language: Option<&str>) -> (u32, u32) {
        match self.never {}
    }

    pub fn reveal(&self, _line: u32, _column: u32) {
        match self.never {}
    }

    pub fn focus(&self) {
        match self.never {}
    }

    pub fn set_font_size(&self, _font_size: u32) {
        match self.never {}
    }

    pub fn dispose(&self) {
        match self.never {}
    }
}

/// The models behind the tabs (text, saved state). In the browser they live in Monaco.
#[cfg(feature = "hydrate")]
pub mod models {
    use super::binding;

    pub fn exists(uri: &str) -> bool {
        binding::has_model(uri)
    }

    pub fn text(uri: &str) -> Option<String> {
        binding::model_value(uri)
    }

    pub fn replace_text(uri: &str, text: &str) {
        binding::replace_model_value(uri, text);
    }

    /// A mark of the model's content now, for [`mark_saved`] once a save of it succeeded.
    pub fn version(uri: &str) -> f64 {
        binding::model_version(uri)
    }

    pub fn mark_saved(uri: &str, version: f64) {
        binding::mark_saved(uri, version);
    }

    pub fn is_dirty(uri: &str) -> bool {
        binding::is_dirty(uri)
    }

    pub fn dispose(uri: &str) {
        binding::dispose_model(uri);
    }

    pub fn set_theme(dark: bool) {
        binding::set_theme(dark);
    }
}

/// A read-only side-by-side comparison in Monaco's diff editor.
#[cfg(feature = "hydrate")]
pub struct Diff {
    handle: wasm_bindgen::JsValue,
}

#[cfg(feature = "hydrate")]
impl Diff {
    pub fn create(
        element: &web_sys::HtmlElement,
        original: &str,
        modified: &str,
        language: Option<&str>,
        dark: bool,
        editable: bool,
    ) -> Self {
        Self {
            handle: binding::create_diff(
                element,
                original,
                modified,
                language.unwrap_or(""),
                dark,
                editable,
            ),
        }
    }

    /// The right side's text, as the person left it.
    pub fn modified_text(&self) -> String {
        binding::diff_modified_value(&self.handle)
    }

    pub fn dispose(&self) {
        binding::dispose_diff(&self.handle);
    }
}

/// Highlights the code blocks under `root` with Monaco's colorizer, when Monaco is loaded.
#[cfg(feature = "hydrate")]
pub fn colorize(root: &web_sys::Element, dark: bool) {
    binding::colorize_code(root, dark);
}
