//! The languages the index understands: how a file is recognised, its tree-sitter grammar and the
//! tags query (the grammar's own `tags.scm`) that finds its definitions and references.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tree_sitter::Language as Grammar;

use crate::patterns::{Split, TagsQuery};

/// TypeScript declarations the grammar's `tags.scm` leaves to JavaScript's.
const TYPESCRIPT_DECLARATIONS: &str = r#"
(function_declaration name: (identifier) @name) @definition.function
(method_definition name: (property_identifier) @name) @definition.method
(class_declaration name: (type_identifier) @name) @definition.class
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    Rust,
    TypeScript,
    Tsx,
    JavaScript,
    Python,
    Go,
    Java,
    C,
    Cpp,
}

impl Language {
    pub const ALL: [Language; 9] = [
        Language::Rust,
        Language::TypeScript,
        Language::Tsx,
        Language::JavaScript,
        Language::Python,
        Language::Go,
        Language::Java,
        Language::C,
        Language::Cpp,
    ];

    /// The language of a path, by its extension.
    pub fn of_path(path: &str) -> Option<Language> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match extension.as_str() {
            "rs" => Language::Rust,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "py" | "pyi" => Language::Python,
            "go" => Language::Go,
            "java" => Language::Java,
            "c" | "h" => Language::C,
            "cc" | "cpp" | "cxx" | "c++" | "hh" | "hpp" | "hxx" | "h++" | "ipp" | "inl" => {
                Language::Cpp
            }
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::JavaScript => "javascript",
            Language::Python => "python",
            Language::Go => "go",
            Language::Java => "java",
            Language::C => "c",
            Language::Cpp => "cpp",
        }
    }

    pub fn grammar(self) -> Grammar {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
            Language::Java => tree_sitter_java::LANGUAGE.into(),
            Language::C => tree_sitter_c::LANGUAGE.into(),
            Language::Cpp => tree_sitter_cpp::LANGUAGE.into(),
        }
    }

    /// The tags query source: the grammar's own `tags.scm` (TypeScript's extends JavaScript's).
    fn tags_source(self) -> String {
        match self {
            Language::Rust => tree_sitter_rust::TAGS_QUERY.to_owned(),
            // As Aider's TypeScript tags: the grammar's own query (signatures, interfaces, type
            // annotations and `new` as uses) with the declarations JavaScript's would add, but
            // not JavaScript's calls: uses are types.
            Language::TypeScript | Language::Tsx => format!(
                "{}\n{TYPESCRIPT_DECLARATIONS}",
                tree_sitter_typescript::TAGS_QUERY
            ),
            Language::JavaScript => tree_sitter_javascript::TAGS_QUERY.to_owned(),
            // Module-level constants are definitions too (as in Aider's Python tags).
            Language::Python => format!(
                "{}\n(module (expression_statement (assignment left: (identifier) @name) @definition.constant))",
                tree_sitter_python::TAGS_QUERY
            ),
            Language::Go => tree_sitter_go::TAGS_QUERY.to_owned(),
            Language::Java => tree_sitter_java::TAGS_QUERY.to_owned(),
            Language::C => tree_sitter_c::TAGS_QUERY.to_owned(),
            Language::Cpp => format!(
                "{}\n{}",
                tree_sitter_c::TAGS_QUERY,
                tree_sitter_cpp::TAGS_QUERY
            ),
        }
    }

    /// The compiled tags query, built once per language and shared by every thread.
    pub fn tags_query(self) -> Option<&'static TagsQuery> {
        static QUERIES: [OnceLock<Option<TagsQuery>>; 9] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        let slot = &QUERIES[self as usize];
        slot.get_or_init(
            || match TagsQuery::new(&self.grammar(), &self.tags_source()) {
                Ok(query) => Some(query),
                Err(error) => {
                    tracing::error!(language = self.name(), %error, "the tags query does not compile");
                    None
                }
            },
        )
        .as_ref()
    }

    /// The tags query split between the walk and the engine as `split` says (to check one
    /// against the other).
    #[doc(hidden)]
    pub fn tags_query_split(self, split: Split) -> Option<TagsQuery> {
        TagsQuery::split(&self.grammar(), &self.tags_source(), split).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tags_query_compiles() {
        for language in Language::ALL {
            assert!(language.tags_query().is_some(), "{language:?}");
        }
    }

    #[test]
    fn languages_are_known_by_extension() {
        assert_eq!(Language::of_path("src/main.rs"), Some(Language::Rust));
        assert_eq!(Language::of_path("a/b.TSX"), Some(Language::Tsx));
        assert_eq!(Language::of_path("x.hpp"), Some(Language::Cpp));
        assert_eq!(Language::of_path("README"), None);
        assert_eq!(Language::of_path("notes.md"), None);
    }
}
