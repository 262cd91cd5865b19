//! Definitions and references of one file, found with its grammar's tags query.

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Parser, Tree};

use crate::comments::{self, Stripped};
use crate::language::Language;
use crate::patterns::{Role, TagsQuery};
use crate::typescript;

/// Longest signature line kept (characters).
const SIGNATURE_CHARS: usize = 160;
/// Parsing stops after this long on one file (a pathological file must not hold a worker).
const PARSE_TIMEOUT_MICROS: u64 = 2_000_000;

/// A named definition: a function, method, type, class, interface, module or macro.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    /// The tags query's kind: `function`, `method`, `class`, `interface`, `module`, `macro`, ...
    pub kind: String,
    /// Zero-based line of the name.
    pub line: u32,
    /// That line, trimmed (the definition's signature as written).
    pub signature: String,
}

/// What one file defines and which names it uses (with how often).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTags {
    pub definitions: Vec<Definition>,
    /// Names used, each once, with the number of uses, sorted by name.
    pub references: Vec<(String, u32)>,
}

/// What the parse of one file reuses from the last (a large allocation freed per file costs
/// glibc's allocator a consolidation of its free lists).
#[derive(Default)]
struct ParseBuffers {
    repair: typescript::RepairBuffers,
    stripped: Stripped,
}

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new(crate::allocator::parser());
    static PARSE_BUFFERS: RefCell<ParseBuffers> = RefCell::new(ParseBuffers::default());
}

/// The tags of one file's source; `None` when the grammar could not parse it in time.
pub fn extract(language: Language, source: &str) -> Option<FileTags> {
    extract_with(language, language.tags_query()?, source)
}

/// The tags of one file's source found with `tags` (see [`Language::tags_query`]).
pub fn extract_with(language: Language, tags: &TagsQuery, source: &str) -> Option<FileTags> {
    PARSE_BUFFERS.with(|buffers| {
        let mut buffers = buffers.borrow_mut();
        let ParseBuffers { repair, stripped } = &mut *buffers;
        // The parsed text differs from `source` where the grammar needs help, in place (see
        // `typescript`), and by leaving comments out (see `comments`).
        let (repaired, stripped) = match language {
            Language::TypeScript | Language::Tsx => {
                let repaired = typescript::repair_into(source, language == Language::Tsx, repair)
                    .unwrap_or(source.as_bytes());
                (
                    repaired,
                    comments::strip_into(repaired, stripped).then_some(&*stripped),
                )
            }
            Language::JavaScript => (
                source.as_bytes(),
                comments::strip_into(source.as_bytes(), stripped).then_some(&*stripped),
            ),
            Language::Rust => (
                source.as_bytes(),
                comments::strip_rust_into(source.as_bytes(), stripped).then_some(&*stripped),
            ),
            _ => (source.as_bytes(), None),
        };
        PARSER.with(|parser| {
            let mut parser = parser.borrow_mut();
            parser.set_language(&language.grammar()).ok()?;
            #[allow(deprecated)]
            parser.set_timeout_micros(PARSE_TIMEOUT_MICROS);
            if let Some(stripped) = stripped {
                let tree = parser.parse(&stripped.text, None)?;
                // The lexer telling comments apart is a rule of thumb (see `comments`): when
                // the copy does not parse cleanly, the file itself is parsed, unless the lexer
                // is sure of the copy (then the error is the file's own).
                let sure = language == Language::TypeScript && stripped.is_certain();
                if sure || !tree.root_node().has_error() {
                    return Some(tags_of(tags, source, &tree, &stripped.text, Some(stripped)));
                }
            }
            let tree = parser.parse(repaired, None)?;
            Some(tags_of(tags, source, &tree, repaired, None))
        })
    })
}

/// The tags in `tree`, parsed from `parsed`: `source` itself, or a copy of it changed in place,
/// or without comments (`stripped`, which maps offsets back).
fn tags_of(
    tags: &TagsQuery,
    source: &str,
    tree: &Tree,
    parsed: &[u8],
    stripped: Option<&Stripped>,
) -> FileTags {
    // With the index of the pattern that found them.
    let mut definitions: Vec<(usize, Definition)> = Vec::new();
    let mut references: FxHashMap<&str, u32> = FxHashMap::default();
    let mut add = |pattern: usize, role: &Role, node: Node<'_>| {
        // Names are never changed in the parsed text.
        let Ok(text) = node.utf8_text(parsed) else {
            return;
        };
        if text.is_empty() {
            return;
        }
        if role.is_definition {
            let line = node.start_position().row;
            let start = stripped.map_or(node.start_byte(), |stripped| {
                stripped.original_offset(node.start_byte())
            });
            definitions.push((
                pattern,
                Definition {
                    name: text.to_owned(),
                    kind: role.kind.clone(),
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                    signature: signature_at(source, start),
                },
            ));
        } else {
            *references.entry(text).or_default() += 1;
        }
    };
    tags.walk(tree.root_node(), &mut add);
    if tags.query_needed() {
        let query = tags.query();
        let roles: Vec<Option<Role>> = query
            .capture_names()
            .iter()
            .map(|name| Role::of_capture(name))
            .collect();
        let name_capture = query.capture_index_for_name("name");
        let mut cursor = crate::allocator::query_cursor();
        let mut matches = cursor.matches(query, tree.root_node(), parsed);
        while let Some(found) = matches.next() {
            let mut name = None;
            let mut role = None;
            for capture in found.captures {
                if Some(capture.index) == name_capture {
                    name = Some(capture.node);
                } else if let Some(Some(found_role)) = roles.get(capture.index as usize) {
                    role = Some(found_role);
                }
            }
            if let (Some(node), Some(role)) = (name, role) {
                add(found.pattern_index, role, node);
            }
        }
    }
    // Some grammars' tags queries list definitions only (C and C++): then every identifier
    // used in the file counts as a reference, as Aider does with its lexer.
    if references.is_empty() && !definitions.is_empty() {
        collect_identifiers(tree.root_node(), parsed, &mut references);
    }
    // A name that two patterns give a kind keeps the kind of the one listed first in the query
    // (the more specific: a method before a function).
    definitions.sort_by(|(a_pattern, a), (b_pattern, b)| {
        a.line
            .cmp(&b.line)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a_pattern.cmp(b_pattern))
    });
    definitions.dedup_by(|(_, a), (_, b)| a.line == b.line && a.name == b.name);
    let definitions = definitions
        .into_iter()
        .map(|(_, definition)| definition)
        .collect();
    let mut references: Vec<(String, u32)> = references
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count))
        .collect();
    references.sort_unstable();
    FileTags {
        definitions,
        references,
    }
}

fn collect_identifiers<'a>(root: Node<'_>, source: &'a [u8], into: &mut FxHashMap<&'a str, u32>) {
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.child_count() == 0
            && node.kind().ends_with("identifier")
            && let Ok(text) = std::str::from_utf8(&source[node.byte_range()])
        {
            *into.entry(text).or_default() += 1;
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

/// The trimmed line of `source` that holds `offset`.
fn signature_at(source: &str, offset: usize) -> String {
    let offset = source.floor_char_boundary(offset.min(source.len()));
    let start = source[..offset].rfind('\n').map_or(0, |index| index + 1);
    let end = source[offset..]
        .find('\n')
        .map_or(source.len(), |index| offset + index);
    let line = source[start..end].trim();
    if line.chars().count() <= SIGNATURE_CHARS {
        line.to_owned()
    } else {
        let mut cut: String = line.chars().take(SIGNATURE_CHARS).collect();
        cut.push('…');
        cut
    }
}
