//! Definitions and references of one file, found with its grammar's tags query.

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Parser, QueryCursor};

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

thread_local! {
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
    static REPAIR_BUFFERS: RefCell<typescript::RepairBuffers> =
        RefCell::new(typescript::RepairBuffers::default());
}

/// The tags of one file's source; `None` when the grammar could not parse it in time.
pub fn extract(language: Language, source: &str) -> Option<FileTags> {
    extract_with(language, language.tags_query()?, source)
}

/// The tags of one file's source found with `tags` (see [`Language::tags_query`]).
pub fn extract_with(language: Language, tags: &TagsQuery, source: &str) -> Option<FileTags> {
    let tree = PARSER.with(|parser| {
        let mut parser = parser.borrow_mut();
        parser.set_language(&language.grammar()).ok()?;
        #[allow(deprecated)]
        parser.set_timeout_micros(PARSE_TIMEOUT_MICROS);
        // The parsed text differs from `source` only where the grammar needs help; offsets
        // agree, so names and signatures are read from `source`.
        let jsx = match language {
            Language::TypeScript => false,
            Language::Tsx => true,
            _ => return parser.parse(source, None),
        };
        REPAIR_BUFFERS.with(|buffers| {
            let mut buffers = buffers.borrow_mut();
            match typescript::repair_into(source, jsx, &mut buffers) {
                Some(repaired) => parser.parse(repaired, None),
                None => parser.parse(source, None),
            }
        })
    })?;
    let bytes = source.as_bytes();
    // With the index of the pattern that found them.
    let mut definitions: Vec<(usize, Definition)> = Vec::new();
    let mut references: FxHashMap<&str, u32> = FxHashMap::default();
    let mut add = |pattern: usize, role: &Role, node: Node<'_>| {
        let Ok(text) = node.utf8_text(bytes) else {
            return;
        };
        if text.is_empty() {
            return;
        }
        if role.is_definition {
            let line = node.start_position().row;
            definitions.push((
                pattern,
                Definition {
                    name: text.to_owned(),
                    kind: role.kind.clone(),
                    line: u32::try_from(line).unwrap_or(u32::MAX),
                    signature: signature_at(source, node),
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
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(query, tree.root_node(), bytes);
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
        collect_identifiers(tree.root_node(), bytes, &mut references);
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
    Some(FileTags {
        definitions,
        references,
    })
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

fn signature_at(source: &str, node: Node<'_>) -> String {
    let start = source[..node.start_byte()]
        .rfind('\n')
        .map_or(0, |index| index + 1);
    let end = source[node.start_byte()..]
        .find('\n')
        .map_or(source.len(), |index| node.start_byte() + index);
    let line = source[start..end].trim();
    if line.chars().count() <= SIGNATURE_CHARS {
        line.to_owned()
    } else {
        let mut cut: String = line.chars().take(SIGNATURE_CHARS).collect();
        cut.push('…');
        cut
    }
}
