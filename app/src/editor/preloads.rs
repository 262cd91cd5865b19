//! The files Monaco loads when a workspace opens, for `<link rel=preload>` in the workspace page's
//! head (see `page_preloads` in the shell).
//!
//! Monaco's AMD loader only asks for `editor.main.js` once the page is live, learns its
//! dependencies from that file's `define(...)`, asks for those, and so on: three or four round
//! trips after hydration, on top of ~600 KB to download. Preloading the whole graph lets the
//! browser fetch it while the WebAssembly downloads. The graph is read from the files themselves
//! (their names carry hashes that change with every Monaco release), once per process.

use std::path::Path;
use std::sync::OnceLock;

use super::MONACO_BASE;

/// What a preload is fetched as (the `as` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreloadKind {
    Script,
    Style,
}

impl PreloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Script => "script",
            Self::Style => "style",
        }
    }
}

/// One file to preload: its URL path and what it is fetched as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preload {
    pub href: String,
    pub kind: PreloadKind,
}

/// Monaco's entry module, as the loader names it.
const ENTRY_MODULE: &str = "vs/editor/editor.main";

/// Reading stops after this many modules: the graph has about twenty; a bound keeps a corrupt or
/// unexpected Monaco from making every workspace page list hundreds of files.
const MODULE_LIMIT: usize = 64;

/// The `define(...)` header is at the start of each module; no need to read 2 MB to find it.
const HEADER_BYTES: usize = 4096;

/// The loader, the entry module and every module it depends on (transitively), then the
/// stylesheet `editor.main.js` inserts. Empty when Monaco's files are not in the site root
/// (a build without them): the editor then loads as before, only later.
pub fn monaco_preloads(site_root: &str) -> &'static [Preload] {
    static PRELOADS: OnceLock<Vec<Preload>> = OnceLock::new();
    PRELOADS.get_or_init(|| {
        let base = Path::new(site_root).join(MONACO_BASE.trim_start_matches('/'));
        let modules = module_graph(|module| read_header(&base.join(format!("{module}.js"))));
        if modules.is_empty() {
            return Vec::new();
        }
        let mut preloads = vec![Preload {
            href: format!("{MONACO_BASE}/vs/loader.js"),
            kind: PreloadKind::Script,
        }];
        preloads.extend(modules.iter().map(|module| Preload {
            href: format!("{MONACO_BASE}/{module}.js"),
            kind: PreloadKind::Script,
        }));
        preloads.push(Preload {
            href: format!("{MONACO_BASE}/{ENTRY_MODULE}.css"),
            kind: PreloadKind::Style,
        });
        preloads
    })
}

/// The first bytes of a module file, `None` when it cannot be read.
fn read_header(path: &Path) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut header = Vec::with_capacity(HEADER_BYTES);
    file.take(HEADER_BYTES as u64)
        .read_to_end(&mut header)
        .ok()?;
    Some(String::from_utf8_lossy(&header).into_owned())
}

/// The modules reachable from [`ENTRY_MODULE`], entry first, each once, in the order found;
/// `header` gives the start of a module's file (`None`: not there, and then not listed).
fn module_graph(header: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut pending = vec![ENTRY_MODULE.to_owned()];
    while let Some(module) = pending.pop() {
        if found.contains(&module) || found.len() >= MODULE_LIMIT {
            continue;
        }
        let Some(text) = header(&module) else {
            continue;
        };
        let dependencies = define_dependencies(&text);
        found.push(module.clone());
        // Reversed so that the first dependency is visited (and listed) first.
        for dependency in dependencies.iter().rev() {
            if let Some(resolved) = resolve(&module, dependency) {
                pending.push(resolved);
            }
        }
    }
    found
}

/// The dependency list of an AMD `define("name", [..], factory)` (or `define([..], factory)`).
fn define_dependencies(text: &str) -> Vec<String> {
    let Some(start) = text.find("define(") else {
        return Vec::new();
    };
    let rest = &text[start..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else {
        return Vec::new();
    };
    if close < open {
        return Vec::new();
    }
    rest[open + 1..close]
        .split(',')
        .map(|item| item.trim().trim_matches(['"', '\'']))
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A dependency's module name, resolved against the module that names it; `None` for the
/// loader's own pseudo-modules (`require`, `exports`, `module`). A plugin's `!` suffix (as in
/// `vs/nls.messages-loader!`) names the plugin's module.
fn resolve(module: &str, dependency: &str) -> Option<String> {
    if matches!(dependency, "require" | "exports" | "module") {
        return None;
    }
    let dependency = dependency.split('!').next().unwrap_or(dependency);
    if dependency.is_empty() {
        return None;
    }
    if !dependency.starts_with("./") && !dependency.starts_with("../") {
        return Some(dependency.to_owned());
    }
    let mut parts: Vec<&str> = module.split('/').collect();
    // The module's own name goes; its folder stays.
    parts.pop();
    for part in dependency.split('/') {
        match part {
            "." => {}
            ".." => {
                // Above Monaco's root: not one of its files.
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::{define_dependencies, module_graph, resolve};

    #[test]
    fn dependencies_are_read_from_the_define_header() {
        let text = r#"define("vs/editor/editor.main",["exports","../json.worker-Bp7","require","vs/nls.messages-loader!","../editor-Bd"],(function(e){"use strict";const a=[1,2];"#;
        assert_eq!(
            define_dependencies(text),
            [
                "exports",
                "../json.worker-Bp7",
                "require",
                "vs/nls.messages-loader!",
                "../editor-Bd"
            ]
        );
        assert_eq!(
            define_dependencies(r#"define("vs/x", ["require", "exports","./y"], (function(){"#),
            ["require", "exports", "./y"]
        );
        assert!(define_dependencies("console.log(1)").is_empty());
    }

    #[test]
    fn names_resolve_against_the_module_that_names_them() {
        assert_eq!(
            resolve("vs/editor/editor.main", "../index-D").as_deref(),
            Some("vs/index-D")
        );
        assert_eq!(
            resolve("vs/index-D", "./basic-languages/monaco.contribution").as_deref(),
            Some("vs/basic-languages/monaco.contribution")
        );
        assert_eq!(
            resolve("vs/editor/editor.main", "vs/nls.messages-loader!").as_deref(),
            Some("vs/nls.messages-loader")
        );
        assert_eq!(resolve("vs/editor/editor.main", "exports"), None);
        assert_eq!(resolve("vs/x", "../../outside"), None);
    }

    #[test]
    fn the_graph_lists_each_reachable_module_once_entry_first() {
        let graph = module_graph(|module| {
            Some(
                match module {
                    "vs/editor/editor.main" => {
                        r#"define("vs/editor/editor.main",["exports","../a","../b"],"#
                    }
                    "vs/a" => r#"define("vs/a",["require","./b","./c"],"#,
                    "vs/b" => r#"define("vs/b",["exports","./a"],"#,
                    // vs/c is missing: not listed.
                    _ => return None,
                }
                .to_owned(),
            )
        });
        assert_eq!(graph, ["vs/editor/editor.main", "vs/a", "vs/b"]);
    }
}
