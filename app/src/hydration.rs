//! The scripts that make a rendered page live. Every page runs Leptos' own
//! ([`HydrationScripts`]) except a workspace page, which first runs the early editor
//! (`editor/early.js`: the file open there last time, shown in Monaco before the WebAssembly has
//! downloaded) and starts the WebAssembly once that editor is on screen (`hydration.js`).
//!
//! Why the order: on a modest link (the first-load bench's 9 Mbit/s) the workspace's
//! WebAssembly and Monaco's modules, downloaded together, share the bandwidth, and the editor
//! appears only once both have arrived. Monaco first puts the code on screen in about half the
//! time; the app then adopts the very editor (`createEditor` in `editor/monaco.js`).
//!
//! The workspace page gives up Leptos' preloads of the WebAssembly and of the route's chunks
//! (they would start at once and share the link again). When the early editor is done, it asks
//! for all of them at once (`<link rel=preload>` made then): the main file, the splitter's
//! loader and the route's chunks (from the splitter's manifest), rather than the chunks only
//! once the main file has run (a waterfall: 113 small files after 224 KB).

use leptos::prelude::*;

/// How long hydration waits for the early editor at most: on a very slow link the page must not
/// stay dead for Monaco's sake.
pub const EARLY_EDITOR_WAIT_MILLISECONDS: u32 = 4000;

/// The workspace route's name in the WebAssembly splitter's manifest (a prefix: a hash follows),
/// from its type in `pages/lazy.rs`.
const WORKSPACE_ROUTE_LOADER: &str = "__workspace_route_view_";

/// The page's hydration scripts (see the module's documentation).
#[component]
pub fn PageHydrationScripts(options: LeptosOptions) -> impl IntoView {
    match workspace_scripts(&options) {
        Some(scripts) => {
            let nonce = leptos::nonce::use_nonce();
            let modules: Vec<&str> = std::iter::once(scripts.script.as_str())
                .chain(scripts.split_loader.as_deref())
                .collect();
            let hydration = format!(
                "{}({:?}, {:?}, {}, {}, {EARLY_EDITOR_WAIT_MILLISECONDS});",
                include_str!("hydration.js").trim_end(),
                scripts.script,
                scripts.wasm,
                json_list(&modules),
                json_list(&scripts.chunks),
            );
            view! {
                <script type="module" src=scripts.early_editor></script>
                <script type="module" nonce=nonce>{hydration}</script>
            }
            .into_any()
        }
        None => view! { <HydrationScripts options/> }.into_any(),
    }
}

/// A list of paths as a JavaScript array literal (JSON).
fn json_list<T: AsRef<str>>(items: &[T]) -> String {
    serde_json::to_string(&items.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

/// What a workspace page loads instead of Leptos' scripts.
#[derive(Debug, PartialEq, Eq)]
struct WorkspaceScripts {
    early_editor: String,
    script: String,
    wasm: String,
    /// The WebAssembly splitter's loader, when the build lists it.
    split_loader: Option<String>,
    /// The workspace route's WebAssembly chunks, asked for with the main file.
    chunks: Vec<String>,
}

/// The workspace page's scripts, when this request is for one and the build has what they need
/// (the early editor in Monaco's build, hashed names for the app's script and WebAssembly):
/// otherwise the page hydrates as every other.
fn workspace_scripts(options: &LeptosOptions) -> Option<WorkspaceScripts> {
    let request = use_context::<http::request::Parts>()?;
    if !crate::workspace::is_workspace_path(request.uri.path()) || !options.hash_files {
        return None;
    }
    let early_editor = crate::editor::monaco_build(&options.site_root)
        .early_editor
        .clone()?;
    let (script, wasm) =
        crate::assets::script_and_wasm_hrefs(&options.output_name, &options.site_pkg_dir)?;
    Some(WorkspaceScripts {
        early_editor,
        script,
        wasm,
        split_loader: crate::assets::split_loader_href(&options.site_pkg_dir),
        chunks: crate::assets::route_chunk_hrefs(
            &options.site_root,
            &options.site_pkg_dir,
            WORKSPACE_ROUTE_LOADER,
        ),
    })
}
