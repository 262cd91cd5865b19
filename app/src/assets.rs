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
