//! Chooses the context sent with a request, and says why.
//!
//! Files are parsed with tree-sitter into definitions and uses ([`tags`]); the [`index`] keeps
//! them per project, one file at a time, and saves itself to disk. The reference graph between
//! files is ranked for each request ([`rank`]), and the best-ranked definitions are rendered as a
//! repo map that fits a token budget ([`map`]), counted in the reading model's tokenizer family
//! ([`tokens`]). Errors and test output point at files ([`diagnostics`]). [`manifest`] fits every
//! source into one budget and lists each item with its reason, score and cost.
//!
//! This crate knows nothing of the database, the web server or the UI.

mod allocator;
pub mod comments;
pub mod diagnostics;
pub mod exclude;
pub mod imports;
pub mod index;
pub mod language;
pub mod manifest;
pub mod map;
pub mod patterns;
pub mod rank;
pub mod relevance;
pub mod tags;
pub mod terms;
pub mod tokens;
pub mod typescript;

pub use index::{Change, Index};
pub use language::Language;
pub use manifest::{Candidate, Choice, Item, ItemKind, Manifest, Selection, choose};
pub use rank::{RankRequest, Ranking};
pub use tokens::TokenizerFamily;

use rustc_hash::FxHashSet;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the index file could not be read or written: {0}")]
    Io(#[from] std::io::Error),
    #[error("the index file is not in this build's format: {0}")]
    Format(String),
}

/// The words of a message (runs of letters, digits and `_`), as names it may mention.
pub fn mentioned_names(message: &str) -> FxHashSet<String> {
    message
        .split(|character: char| !(character.is_alphanumeric() || character == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The project files a message names: by their whole path, or by a file name only one file has
/// (and that looks like a file name: with `.`, `_`, `-` or `/`).
pub fn mentioned_files<'a>(message: &str, paths: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let words: FxHashSet<&str> = message
        .split_whitespace()
        .map(|word| {
            word.trim_matches(|character: char| {
                matches!(
                    character,
                    ',' | '.'
                        | ';'
                        | ':'
                        | '!'
                        | '?'
                        | '\''
                        | '"'
                        | '`'
                        | '('
                        | ')'
                        | '['
                        | ']'
                        | '{'
                        | '}'
                        | '<'
                        | '>'
                )
            })
        })
        .filter(|word| !word.is_empty())
        .collect();
    let mut by_name: rustc_hash::FxHashMap<&str, Vec<&str>> = rustc_hash::FxHashMap::default();
    let mut found = Vec::new();
    for path in paths {
        if words.contains(path) || words.contains(path.trim_start_matches("./")) {
            found.push(path.to_owned());
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        by_name.entry(name).or_default().push(path);
    }
    for (name, paths) in by_name {
        if paths.len() == 1
            && words.contains(name)
            && name.contains(['.', '_', '-', '/'])
            && !found.iter().any(|path| path == paths[0])
        {
            found.push(paths[0].to_owned());
        }
    }
    found.sort();
    found
}
