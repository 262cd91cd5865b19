//! The files Monaco needs before it runs, for `<link rel=modulepreload>` / `<link rel=preload>` in
//! the workspace page's head (see `page_preloads` in the shell), and the early editor's script
//! (`early.js`, run before the WebAssembly: see `hydration.rs`).
//!
//! The editor asks for Monaco only once the page is live (after the WebAssembly has downloaded
//! and hydrated); preloading its modules and stylesheet lets the browser fetch them meanwhile.
//! `scripts/build-monaco.mjs` writes the list into `manifest.json` next to the files (their names
//! carry content hashes that change with every build); it is read once per process.

use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use super::MONACO_BASE;

/// How a file is preloaded: the `rel` attribute and, for `preload`, its `as`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreloadKind {
    /// `rel=modulepreload`: an ES module (fetched and parsed as the module import will be).
    Module,
    /// `rel=preload as=style`.
    Style,
}

impl PreloadKind {
    pub fn rel(self) -> &'static str {
        match self {
            Self::Module => "modulepreload",
            Self::Style => "preload",
        }
    }

    /// The `as` attribute (`None` for a module preload, which has none).
    pub fn destination(self) -> Option<&'static str> {
        match self {
            Self::Module => None,
            Self::Style => Some("style"),
        }
    }
}

/// One file to preload: its URL path and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preload {
    pub href: String,
    pub kind: PreloadKind,
}

/// What `scripts/build-monaco.mjs` writes as `manifest.json` (only the fields read here).
#[derive(Debug, Deserialize)]
struct Manifest {
    stylesheet: String,
    /// The entry first, then what it imports before it runs.
    modules: Vec<String>,
    /// The early editor's script (absent from builds made before it existed).
    #[serde(default)]
    early: Option<String>,
}

/// What a workspace page needs of Monaco's build.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MonacoBuild {
    /// Monaco's modules (entry first) and stylesheet.
    pub preloads: Vec<Preload>,
    /// The early editor's script (`/monaco/early-<hash>.js`).
    pub early_editor: Option<String>,
}

/// The manifest lists a few files; a bound keeps a corrupt one from making every workspace page
/// list hundreds.
const PRELOAD_LIMIT: usize = 16;

/// Monaco's build as its manifest describes it, read once per process. Empty when Monaco's files
/// are not in the site root (a build without them) or the manifest cannot be read: the editor
/// then loads as it would without preloads, once the page is live.
pub fn monaco_build(site_root: &str) -> &'static MonacoBuild {
    static BUILD: OnceLock<MonacoBuild> = OnceLock::new();
    BUILD.get_or_init(|| {
        let path = Path::new(site_root)
            .join(MONACO_BASE.trim_start_matches('/'))
            .join("manifest.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => build_of_manifest(&text).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "Monaco's manifest is not valid: no preloads");
                MonacoBuild::default()
            }),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "Monaco's manifest cannot be read: no preloads");
                MonacoBuild::default()
            }
        }
    })
}

/// The preloads a manifest asks for (each module, then the stylesheet) and its early editor. A
/// file name that could leave `/monaco/` or break out of the attribute is an error.
fn build_of_manifest(text: &str) -> Result<MonacoBuild, String> {
    let manifest: Manifest = serde_json::from_str(text).map_err(|error| error.to_string())?;
    if manifest.modules.is_empty() {
        return Err("no modules".into());
    }
    let mut preloads = Vec::with_capacity(manifest.modules.len() + 1);
    for module in manifest.modules.iter().take(PRELOAD_LIMIT) {
        preloads.push(Preload {
            href: href_of(module)?,
            kind: PreloadKind::Module,
        });
    }
    preloads.push(Preload {
        href: href_of(&manifest.stylesheet)?,
        kind: PreloadKind::Style,
    });
    let early_editor = manifest.early.as_deref().map(href_of).transpose()?;
    Ok(MonacoBuild {
        preloads,
        early_editor,
    })
}

/// `/monaco/<file>` for a plain file name of the build (letters, digits, `-`, `_`, `.`).
fn href_of(file: &str) -> Result<String, String> {
    let plain = !file.is_empty()
        && !file.starts_with('.')
        && file
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character));
    if plain {
        Ok(format!("{MONACO_BASE}/{file}"))
    } else {
        Err(format!("{file:?} is not a file name of the build"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_gives_its_modules_in_order_then_the_stylesheet() {
        let build = build_of_manifest(
            r#"{"version":"0.57.0","entry":"editor.js","stylesheet":"editor.css",
                "modules":["editor.js","chunk-U45DGW4R.js","chunk-OULOODRV.js"],
                "workers":{"editor":"editor.worker-2EWUC4ZH.js"},"early":"early-VOTYQKIX.js"}"#,
        )
        .unwrap();
        assert_eq!(
            build.early_editor.as_deref(),
            Some("/monaco/early-VOTYQKIX.js")
        );
        assert_eq!(
            build.preloads,
            vec![
                Preload {
                    href: "/monaco/editor.js".into(),
                    kind: PreloadKind::Module
                },
                Preload {
                    href: "/monaco/chunk-U45DGW4R.js".into(),
                    kind: PreloadKind::Module
                },
                Preload {
                    href: "/monaco/chunk-OULOODRV.js".into(),
                    kind: PreloadKind::Module
                },
                Preload {
                    href: "/monaco/editor.css".into(),
                    kind: PreloadKind::Style
                },
            ]
        );
        assert_eq!(PreloadKind::Module.rel(), "modulepreload");
        assert_eq!(PreloadKind::Module.destination(), None);
        assert_eq!(PreloadKind::Style.destination(), Some("style"));
    }

    #[test]
    fn a_manifest_naming_files_outside_the_build_or_nothing_is_refused() {
        for text in [
            r#"{"stylesheet":"editor.css","modules":["../secret.js"]}"#,
            r#"{"stylesheet":"editor.css","modules":["a\" onload=\"x.js"]}"#,
            r#"{"stylesheet":"/etc/passwd","modules":["editor.js"]}"#,
            r#"{"stylesheet":"editor.css","modules":[]}"#,
            r#"{"modules":["editor.js"]}"#,
            r#"{"stylesheet":"editor.css","modules":["editor.js"],"early":"../early.js"}"#,
            "not json",
        ] {
            assert!(build_of_manifest(text).is_err(), "{text}");
        }
    }

    #[test]
    fn a_long_module_list_is_cut_at_the_bound() {
        let modules: Vec<String> = (0..100)
            .map(|index| format!("\"chunk-{index}.js\""))
            .collect();
        let text = format!(
            r#"{{"stylesheet":"editor.css","modules":[{}]}}"#,
            modules.join(",")
        );
        let build = build_of_manifest(&text).unwrap();
        assert_eq!(build.preloads.len(), PRELOAD_LIMIT + 1);
        assert_eq!(build.early_editor, None);
    }

    #[test]
    fn the_built_manifest_when_there_is_one_lists_files_that_exist() {
        // After `scripts/build-monaco.mjs` (scripts/test runs it before the tests): every file
        // the manifest names is in the build.
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../public/monaco");
        let Ok(text) = std::fs::read_to_string(folder.join("manifest.json")) else {
            return;
        };
        let build = build_of_manifest(&text).unwrap();
        let early = build.early_editor.iter().cloned();
        for href in build
            .preloads
            .iter()
            .map(|preload| preload.href.clone())
            .chain(early)
        {
            let file = href.trim_start_matches("/monaco/");
            assert!(folder.join(file).is_file(), "{file} is missing");
        }
    }
}
