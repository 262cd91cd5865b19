//! The names of the built stylesheet, script and WebAssembly. With `hash-files` (the release
//! build), cargo-leptos puts a hash of each file's content into its name and lists the hashes in
//! `hash.txt` next to the server's executable: a new build has new names, so browsers may keep
//! the files forever (`Cache-Control: immutable`) and never run old code against a new server.

use std::sync::OnceLock;

/// `(css, js, wasm)` hashes from `hash.txt`, read once; `None` without hashed names.
fn hashes() -> &'static Option<(String, String, String)> {
    static HASHES: OnceLock<Option<(String, String, String)>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let path = std::env::current_exe().ok()?.parent()?.join("hash.txt");
        let text = std::fs::read_to_string(path).ok()?;
        let find = |kind: &str| {
            text.lines().find_map(|line| {
                let (name, hash) = line.split_once(':')?;
                (name.trim() == kind).then(|| hash.trim().to_owned())
            })
        };
        Some((find("css")?, find("js")?, find("wasm")?))
    })
}

/// A hash `hash.txt` lists under `kind` (`manifest`, `split`: the WebAssembly splitter's
/// manifest and loader), read once per kind.
fn listed_hash(kind: &'static str) -> Option<String> {
    static TEXT: OnceLock<Option<String>> = OnceLock::new();
    let text = TEXT.get_or_init(|| {
        let path = std::env::current_exe().ok()?.parent()?.join("hash.txt");
        std::fs::read_to_string(path).ok()
    });
    text.as_ref()?.lines().find_map(|line| {
        let (name, hash) = line.split_once(':')?;
        (name.trim() == kind).then(|| hash.trim().to_owned())
    })
}

/// The WebAssembly splitter's loader (`/pkg/__wasm_split.<hash>.js`), when the build lists it.
pub fn split_loader_href(pkg_dir: &str) -> Option<String> {
    listed_hash("split").map(|hash| format!("/{pkg_dir}/__wasm_split.{hash}.js"))
}

/// The WebAssembly files a lazily loaded route needs (its own chunk and the shared chunks it
/// uses) as `/pkg/<name>.wasm`, from the manifest the splitter writes
/// (`__wasm_split_manifest.<hash>.json`, read once). `loader` names the route as the manifest
/// does (`__workspace_route_view_`, a prefix). Empty without a manifest or such a route.
pub fn route_chunk_hrefs(site_root: &str, pkg_dir: &str, loader: &str) -> Vec<String> {
    static MANIFEST: OnceLock<Option<std::collections::HashMap<String, Vec<String>>>> =
        OnceLock::new();
    let manifest = MANIFEST.get_or_init(|| {
        let hash = listed_hash("manifest")?;
        let path = std::path::Path::new(site_root)
            .join(pkg_dir)
            .join(format!("__wasm_split_manifest.{hash}.json"));
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    });
    manifest
        .as_ref()
        .and_then(|manifest| {
            manifest
                .iter()
                .find(|(name, _)| name.starts_with(loader))
                .map(|(_, files)| files)
        })
        .map(|files| {
            files
                .iter()
                .map(|file| format!("/{pkg_dir}/{file}.wasm"))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the built files carry content hashes in their names.
pub fn hashed() -> bool {
    hashes().is_some()
}

/// The stylesheet's path: `/pkg/async-coder.<hash>.css` when the site is built with hashed
/// names (`hash_files`, as Leptos' options say) and `hash.txt` names it, else
/// `/pkg/async-coder.css`.
pub fn stylesheet_href(output_name: &str, pkg_dir: &str, hash_files: bool) -> String {
    match hashes() {
        Some((css, _, _)) if hash_files => format!("/{pkg_dir}/{output_name}.{css}.css"),
        _ => format!("/{pkg_dir}/{output_name}.css"),
    }
}

/// The app's script and WebAssembly (`/pkg/async-coder.<hash>.js`, `….wasm`) when the built files
/// carry hashed names; `None` otherwise.
pub fn script_and_wasm_hrefs(output_name: &str, pkg_dir: &str) -> Option<(String, String)> {
    let (_, js, wasm) = hashes().as_ref()?;
    Some((
        format!("/{pkg_dir}/{output_name}.{js}.js"),
        format!("/{pkg_dir}/{output_name}.{wasm}.wasm"),
    ))
}
