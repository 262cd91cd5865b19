//! Which files a file imports: its import statements read line by line (`import … from './x'`,
//! `from .x import y`, `mod x;` and `use crate::x::y`, `#include "x.h"`, `import a.b.C;`,
//! `import "a/b"`), kept as written in the index, and resolved against the project's paths when
//! the reference graph is built (so a rename or a new file needs no parse). An import says more
//! than a shared name: a module file that declares or re-exports the current file
//! (`mod.rs`, `lib.rs`, `index.ts`, `__init__.py`) and a test that imports it are found this way.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::language::Language;

/// Imports kept per file, at most.
const MAX_IMPORTS: usize = 200;

/// The import specifiers of a file, as written (Python's with the imported names appended:
/// `from .a import b` gives `.a` and `.a.b`, since `b` may be a module; Rust's `mod x;` as `mod:x`).
pub fn of_text(language: Language, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    match language {
        Language::TypeScript | Language::Tsx | Language::JavaScript => javascript(text, &mut found),
        Language::Python => python(text, &mut found),
        Language::Rust => rust(text, &mut found),
        Language::C | Language::Cpp => {
            for line in text.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("#include")
                    && let Some(spec) = quoted(rest.trim_start())
                {
                    found.push(spec.to_owned());
                }
            }
        }
        Language::Java => {
            for line in text.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("import ") {
                    let rest = rest.trim_start_matches("static ").trim();
                    let spec = rest.trim_end_matches(';').trim();
                    if !spec.is_empty() && !spec.ends_with('*') {
                        found.push(spec.to_owned());
                    }
                }
            }
        }
        Language::Go => {
            let mut in_block = false;
            for line in text.lines() {
                let line = line.trim();
                if in_block {
                    if line.starts_with(')') {
                        in_block = false;
                    } else if let Some(spec) = line.find('"').and_then(|at| quoted(&line[at..])) {
                        found.push(spec.to_owned());
                    }
                } else if let Some(rest) = line.strip_prefix("import") {
                    let rest = rest.trim();
                    if rest.starts_with('(') {
                        in_block = true;
                    } else if let Some(spec) = rest.find('"').and_then(|at| quoted(&rest[at..])) {
                        found.push(spec.to_owned());
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found.truncate(MAX_IMPORTS);
    found
}

/// The text of a string literal at the start of `text` (`'…'`, `"…"` or `` `…` ``).
fn quoted(text: &str) -> Option<&str> {
    let quote = text
        .chars()
        .next()
        .filter(|c| matches!(c, '\'' | '"' | '`'))?;
    let rest = &text[1..];
    let end = rest.find(quote)?;
    Some(&rest[..end])
}

fn javascript(text: &str, found: &mut Vec<String>) {
    // `from '…'` (imports and re-exports, on their statement's last line), `import '…'`,
    // `require('…')` and `import('…')`.
    for (pattern, skip) in [
        ("from ", 5),
        ("import ", 7),
        ("require(", 8),
        ("import(", 7),
    ] {
        let mut rest = text;
        while let Some(at) = rest.find(pattern) {
            let after = rest[at + skip..].trim_start();
            if let Some(spec) = quoted(after)
                && !spec.is_empty()
                && !spec.contains('\n')
                && (spec.starts_with('.') || !spec.contains(' '))
            {
                found.push(spec.to_owned());
            }
            rest = &rest[at + skip..];
        }
    }
}

fn python(text: &str, found: &mut Vec<String>) {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("from ") {
            let Some((module, names)) = rest.split_once(" import ") else {
                continue;
            };
            let module = module.trim();
            let mut names = names.trim().to_owned();
            // `from x import (\n a,\n b,\n)`
            if names.starts_with('(') && !names.contains(')') {
                for more in lines.by_ref() {
                    names.push_str(more);
                    if more.contains(')') {
                        break;
                    }
                }
            }
            if !module.ends_with('.') {
                found.push(module.to_owned());
            }
            for name in names.trim_matches(|c| c == '(' || c == ')').split(',') {
                let name = name.split_whitespace().next().unwrap_or("");
                let name = name.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_'));
                if name.is_empty() || name == "*" {
                    continue;
                }
                if module.ends_with('.') {
                    found.push(format!("{module}{name}"));
                } else {
                    found.push(format!("{module}.{name}"));
                }
            }
        } else if let Some(rest) = line.strip_prefix("import ") {
            for module in rest.split(',') {
                if let Some(module) = module.split_whitespace().next() {
                    found.push(module.to_owned());
                }
            }
        }
    }
}

fn rust(text: &str, found: &mut Vec<String>) {
    let mut statement = String::new();
    let mut in_use = false;
    let mut indented = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if !in_use {
            indented = line.starts_with([' ', '\t']);
            let rest = trimmed
                .strip_prefix("pub(crate) ")
                .or_else(|| trimmed.strip_prefix("pub(super) "))
                .or_else(|| trimmed.strip_prefix("pub "))
                .unwrap_or(trimmed);
            if let Some(name) = rest.strip_prefix("mod ") {
                let name = name.trim();
                if let Some(name) = name.strip_suffix(';') {
                    found.push(format!("mod:{}", name.trim()));
                }
                continue;
            }
            let Some(rest) = rest.strip_prefix("use ") else {
                continue;
            };
            statement.clear();
            statement.push_str(rest);
            in_use = true;
        } else {
            statement.push(' ');
            statement.push_str(trimmed);
        }
        if statement.contains(';') {
            in_use = false;
            let body = statement.split(';').next().unwrap_or("");
            // Renames left out (`x as y`), keeping what follows the new name (`,` or `}`).
            let mut joined = String::new();
            let mut tokens = body.split_whitespace();
            while let Some(token) = tokens.next() {
                if token == "as" {
                    if let Some(renamed) = tokens.next() {
                        joined.extend(
                            renamed
                                .chars()
                                .skip_while(|c| c.is_alphanumeric() || *c == '_'),
                        );
                    }
                } else {
                    joined.push_str(token);
                }
            }
            // An indented `use super::…` is inside the file's own inline module (`mod tests`):
            // its `super` is the file itself.
            if indented && let Some(rest) = joined.strip_prefix("super") {
                joined = format!("self{rest}");
            }
            expand_use("", &joined, found);
        }
    }
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e` (renames and globs dropped).
fn expand_use(prefix: &str, body: &str, found: &mut Vec<String>) {
    if found.len() >= MAX_IMPORTS {
        return;
    }
    if let Some(open) = body.find('{') {
        let head = body[..open].trim_end_matches("::");
        let inner = body[open + 1..]
            .strip_suffix('}')
            .unwrap_or(&body[open + 1..]);
        let base = join_path(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (position, character) in inner.char_indices() {
            match character {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&base, &inner[start..position], found);
                    start = position + 1;
                }
                _ => {}
            }
        }
        expand_use(&base, &inner[start..], found);
        return;
    }
    let body = body.trim_end_matches("::*").trim_end_matches('*');
    if body.is_empty() || body == "self" {
        if !prefix.is_empty() {
            found.push(format!("use:{prefix}"));
        }
        return;
    }
    found.push(format!("use:{}", join_path(prefix, body)));
}

fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}::{rest}"),
    }
}

fn folder(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(folder, _)| folder)
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// `a/./b/../c` as `a/c`; `None` when it leaves the project.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// Resolves import specifiers to the project's files.
pub struct Resolver<'a> {
    ids: &'a FxHashMap<String, u32>,
    /// Python modules by every dotted suffix of their path (`flask.app`, `app`, `src.flask.app`).
    python: FxHashMap<String, Vec<u32>>,
    /// Rust crates' root folders by crate name (`axum_core` -> `axum-core/src`).
    crates: FxHashMap<String, Vec<String>>,
    /// Rust crate roots (folders holding `lib.rs` or `main.rs`).
    roots: FxHashSet<String>,
    /// Files by name (for includes, Java and Go imports matched by their path's end).
    by_name: FxHashMap<&'a str, Vec<u32>>,
    paths: &'a [String],
}

impl<'a> Resolver<'a> {
    pub fn new(paths: &'a [String], ids: &'a FxHashMap<String, u32>) -> Resolver<'a> {
        let mut python: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        let mut crates: FxHashMap<String, Vec<String>> = FxHashMap::default();
        let mut roots = FxHashSet::default();
        let mut by_name: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
        for (id, path) in paths.iter().enumerate() {
            let id = id as u32;
            let name = path.rsplit('/').next().unwrap_or(path);
            by_name.entry(name).or_default().push(id);
            if let Some(module) = path
                .strip_suffix(".py")
                .or_else(|| path.strip_suffix(".pyi"))
            {
                let module = module.strip_suffix("/__init__").unwrap_or(module);
                let parts: Vec<&str> = module.split('/').collect();
                for start in 0..parts.len() {
                    python.entry(parts[start..].join(".")).or_default().push(id);
                }
            }
            if name == "lib.rs" || name == "main.rs" {
                let root = folder(path);
                roots.insert(root.to_owned());
                // `x/src/lib.rs` is crate `x`; a `lib.rs` elsewhere is named by its folder.
                let crate_folder = root.strip_suffix("/src").unwrap_or(root);
                let crate_name = crate_folder
                    .rsplit('/')
                    .next()
                    .unwrap_or(crate_folder)
                    .replace('-', "_");
                if !crate_name.is_empty() && name == "lib.rs" {
                    crates.entry(crate_name).or_default().push(root.to_owned());
                }
            }
        }
        Resolver {
            ids,
            python,
            crates,
            roots,
            by_name,
            paths,
        }
    }

    fn id(&self, path: &str) -> Option<u32> {
        self.ids.get(path).copied()
    }

    /// Of several files, the one nearest `importer` (most leading folders in common).
    fn nearest(&self, importer: &str, candidates: &[u32]) -> Option<u32> {
        candidates.iter().copied().max_by_key(|candidate| {
            let path = &self.paths[*candidate as usize];
            let shared = path
                .split('/')
                .zip(importer.split('/'))
                .take_while(|(a, b)| a == b)
                .count();
            (shared, std::cmp::Reverse(path.len()))
        })
    }

    /// The files `spec`, imported by `importer`, may be.
    pub fn resolve(&self, importer: &str, language: Language, spec: &str) -> Option<u32> {
        match language {
            Language::TypeScript | Language::Tsx | Language::JavaScript => {
                self.javascript(importer, spec)
            }
            Language::Python => self.python(importer, spec),
            Language::Rust => self.rust(importer, spec),
            Language::C | Language::Cpp => self
                .id(&normalize(&join(folder(importer), spec))?)
                .or_else(|| self.by_suffix(importer, spec)),
            Language::Java => self.by_suffix(importer, &format!("{}.java", spec.replace('.', "/"))),
            Language::Go => None,
        }
    }

    fn by_suffix(&self, importer: &str, suffix: &str) -> Option<u32> {
        let name = suffix.rsplit('/').next().unwrap_or(suffix);
        let candidates: Vec<u32> = self
            .by_name
            .get(name)?
            .iter()
            .copied()
            .filter(|id| {
                let path = &self.paths[*id as usize];
                path == suffix || path.ends_with(&format!("/{suffix}"))
            })
            .collect();
        self.nearest(importer, &candidates)
    }

    fn javascript(&self, importer: &str, spec: &str) -> Option<u32> {
        let base = if spec.starts_with('.') {
            normalize(&join(folder(importer), spec))?
        } else {
            // A path alias (`@/x`, `~/x`) or a package of the project: matched by the path's end.
            let spec = spec
                .strip_prefix("@/")
                .or_else(|| spec.strip_prefix("~/"))
                .unwrap_or(spec);
            return [".ts", ".tsx", ".js", "/index.ts", "/index.tsx", "/index.js"]
                .iter()
                .find_map(|extension| self.by_suffix(importer, &format!("{spec}{extension}")));
        };
        let stem = ["js", "mjs", "cjs", "jsx"]
            .iter()
            .find_map(|extension| base.strip_suffix(&format!(".{extension}")));
        let mut candidates = vec![base.clone()];
        for extension in [".ts", ".tsx", ".js", ".jsx", ".mjs", ".d.ts"] {
            candidates.push(format!("{base}{extension}"));
        }
        if let Some(stem) = stem {
            candidates.push(format!("{stem}.ts"));
            candidates.push(format!("{stem}.tsx"));
        }
        for index in ["index.ts", "index.tsx", "index.js", "mod.ts"] {
            candidates.push(join(&base, index));
        }
        candidates.iter().find_map(|candidate| self.id(candidate))
    }

    fn python(&self, importer: &str, spec: &str) -> Option<u32> {
        let dots = spec.chars().take_while(|c| *c == '.').count();
        if dots > 0 {
            let mut package = folder(importer).to_owned();
            for _ in 1..dots {
                package = folder(&package).to_owned();
            }
            let module = spec[dots..].replace('.', "/");
            let base = join(&package, &module);
            let base = base.trim_end_matches('/');
            return [format!("{base}.py"), format!("{base}/__init__.py")]
                .iter()
                .find_map(|candidate| self.id(candidate));
        }
        self.nearest(importer, self.python.get(spec)?)
    }

    /// The folder of the modules a Rust file declares (`a/b.rs` and `a/b/mod.rs` declare
    /// `a/b/x.rs`; `lib.rs` and `main.rs` their siblings).
    fn rust_module_folder(path: &str) -> String {
        let name = path.rsplit('/').next().unwrap_or(path);
        match name {
            "mod.rs" | "lib.rs" | "main.rs" => folder(path).to_owned(),
            _ => path.strip_suffix(".rs").unwrap_or(path).to_owned(),
        }
    }

    /// The module file of a module folder: `a/b.rs` or `a/b/mod.rs` (a crate root's `lib.rs`).
    fn rust_module_file(&self, module_folder: &str) -> Option<u32> {
        self.id(&format!("{module_folder}.rs"))
            .or_else(|| self.id(&join(module_folder, "mod.rs")))
            .or_else(|| self.id(&join(module_folder, "lib.rs")))
            .or_else(|| self.id(&join(module_folder, "main.rs")))
    }

    fn rust_root(&self, path: &str) -> Option<String> {
        let mut folder_now = folder(path);
        loop {
            if self.roots.contains(folder_now) {
                return Some(folder_now.to_owned());
            }
            if folder_now.is_empty() {
                return None;
            }
            folder_now = folder(folder_now);
        }
    }

    fn rust(&self, importer: &str, spec: &str) -> Option<u32> {
        if let Some(name) = spec.strip_prefix("mod:") {
            let base = join(&Self::rust_module_folder(importer), name);
            return self
                .id(&format!("{base}.rs"))
                .or_else(|| self.id(&join(&base, "mod.rs")));
        }
        let path = spec.strip_prefix("use:")?;
        let mut segments = path.split("::").filter(|segment| !segment.is_empty());
        let first = segments.next()?;
        let module_folder = Self::rust_module_folder(importer);
        let mut current = match first {
            "crate" => self.rust_root(importer)?,
            "self" => module_folder,
            "super" => folder(&module_folder).to_owned(),
            name => {
                if let Some(roots) = self.crates.get(name) {
                    roots.first()?.clone()
                } else {
                    // A module of the crate's root (2015 edition), or an outside crate.
                    let root = self.rust_root(importer)?;
                    let candidate = join(&root, name);
                    self.rust_module_file(&candidate)?;
                    candidate
                }
            }
        };
        let mut found = self.rust_module_file(&current);
        for segment in segments {
            if segment == "super" {
                current = folder(&current).to_owned();
                found = self.rust_module_file(&current);
                continue;
            }
            let next = join(&current, segment);
            match self.rust_module_file(&next) {
                Some(file) => {
                    found = Some(file);
                    current = next;
                }
                None => break,
            }
        }
        found.filter(|file| self.paths[*file as usize] != importer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_of_each_language() {
        assert_eq!(
            of_text(
                Language::TypeScript,
                "import { a } from './a'\nexport * from \"../b/index.js\"\nconst c = require('./c')\n"
            ),
            ["../b/index.js", "./a", "./c"]
        );
        assert_eq!(
            of_text(
                Language::Python,
                "from .app import Flask, g\nfrom . import json\nimport os.path as p, sys\nfrom x import (\n  y,\n  z,\n)\n"
            ),
            [
                ".app",
                ".app.Flask",
                ".app.g",
                ".json",
                "os.path",
                "sys",
                "x",
                "x.y",
                "x.z"
            ]
        );
        assert_eq!(
            of_text(
                Language::Rust,
                "mod routing;\npub mod extract {\n}\nuse crate::{body::Body, response::{IntoResponse as R, Response}};\nuse super::*;\nmod tests {\n    use super::*;\n}\n"
            ),
            [
                "mod:routing",
                "use:crate::body::Body",
                "use:crate::response::IntoResponse",
                "use:crate::response::Response",
                "use:super",
            ]
        );
    }

    #[test]
    fn specifiers_resolve_to_files() {
        let paths: Vec<String> = [
            "src/index.ts",
            "src/router/trie.ts",
            "src/router/index.ts",
            "pkg/app.py",
            "pkg/__init__.py",
            "pkg/sub/x.py",
            "core/src/lib.rs",
            "core/src/body.rs",
            "core/src/response/mod.rs",
            "core/src/response/into.rs",
        ]
        .map(str::to_owned)
        .to_vec();
        let ids: FxHashMap<String, u32> = paths
            .iter()
            .enumerate()
            .map(|(id, path)| (path.clone(), id as u32))
            .collect();
        let resolver = Resolver::new(&paths, &ids);
        let path = |found: Option<u32>| found.map(|id| paths[id as usize].as_str());
        let resolve =
            |importer: &str, language, spec: &str| path(resolver.resolve(importer, language, spec));
        assert_eq!(
            resolve("src/index.ts", Language::TypeScript, "./router"),
            Some("src/router/index.ts")
        );
        assert_eq!(
            resolve("src/router/index.ts", Language::TypeScript, "./trie.js"),
            Some("src/router/trie.ts")
        );
        assert_eq!(
            resolve("pkg/sub/x.py", Language::Python, "..app"),
            Some("pkg/app.py")
        );
        assert_eq!(
            resolve("tests/t.py", Language::Python, "pkg.app"),
            Some("pkg/app.py")
        );
        assert_eq!(
            resolve("core/src/lib.rs", Language::Rust, "mod:response"),
            Some("core/src/response/mod.rs")
        );
        assert_eq!(
            resolve("core/src/response/mod.rs", Language::Rust, "mod:into"),
            Some("core/src/response/into.rs")
        );
        assert_eq!(
            resolve(
                "core/src/body.rs",
                Language::Rust,
                "use:crate::response::into::X"
            ),
            Some("core/src/response/into.rs")
        );
        assert_eq!(
            resolve(
                "core/src/response/into.rs",
                Language::Rust,
                "use:super::super::body::B"
            ),
            Some("core/src/body.rs")
        );
        assert_eq!(
            resolve("other/src/lib.rs", Language::Rust, "use:core::body::Body"),
            Some("core/src/body.rs")
        );
    }
}
