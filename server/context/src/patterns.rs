//! A grammar's tags query, with its simplest patterns matched by one walk of the tree instead of
//! the query engine.
//!
//! Most tags patterns say "a node of kind P whose child (in field F) of kind C is the name":
//! `(function_signature name: (identifier) @name) @definition.function`. Tree-sitter's query
//! cursor evaluates every pattern at every node of the tree, which costs as much as a third of
//! the parse on large files; these patterns are instead looked up by the node's kind during a
//! plain walk, and disabled in the query. Patterns with anything more (nesting, predicates,
//! anchors, alternations, quantifiers, wildcards, supertypes) stay with the query engine, so what
//! is found is the same either way (a test compares the two on real files).

use std::num::NonZeroU16;

use tree_sitter::{Language as Grammar, Node, Query, QueryError};

/// What a match says of its name: a definition or a reference, and of which kind
/// (`function`, `class`, `type`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Role {
    pub is_definition: bool,
    pub kind: String,
}

impl Role {
    /// The role a capture name gives: `definition.function`, `reference.call`, ...
    pub(crate) fn of_capture(name: &str) -> Option<Role> {
        if let Some(kind) = name.strip_prefix("definition.") {
            Some(Role {
                is_definition: true,
                kind: kind.to_owned(),
            })
        } else {
            name.strip_prefix("reference.").map(|kind| Role {
                is_definition: false,
                kind: kind.to_owned(),
            })
        }
    }
}

/// Which simple patterns the walk takes from the query engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// None: the engine runs every pattern.
    Never,
    /// All of them when every pattern is simple; otherwise none.
    WhenAllSimple,
    /// Every simple pattern, the engine running the rest.
    EverySimplePattern,
}

/// `(parent field: (child) @name) @role`, or without the field.
#[derive(Clone, Debug)]
struct DirectPattern {
    /// Its place in the query (earlier patterns win when two give the same name a kind).
    index: usize,
    field: Option<NonZeroU16>,
    child: u16,
    role: Role,
}

/// The tags query of one grammar, split between the walk and the query engine.
#[derive(Debug)]
pub struct TagsQuery {
    /// The whole query, with the patterns of `direct` disabled.
    query: Query,
    /// Whether any pattern is left to the query engine.
    query_needed: bool,
    /// The direct patterns by the kind id of the node they start at.
    direct: Vec<Vec<DirectPattern>>,
}

impl TagsQuery {
    /// The walk takes the simple patterns when they are all there is: it makes the engine's own
    /// walk of every node unnecessary. Beside the engine it would only add a second walk.
    pub fn new(grammar: &Grammar, source: &str) -> Result<TagsQuery, QueryError> {
        TagsQuery::build(grammar, source, Split::WhenAllSimple)
    }

    /// The tags query split as `split` says (to check the walk against the engine).
    #[doc(hidden)]
    pub fn split(grammar: &Grammar, source: &str, split: Split) -> Result<TagsQuery, QueryError> {
        TagsQuery::build(grammar, source, split)
    }

    fn build(grammar: &Grammar, source: &str, split: Split) -> Result<TagsQuery, QueryError> {
        let mut query = crate::allocator::query(grammar, source)?;
        let simple: Vec<Option<(u16, DirectPattern)>> = (0..query.pattern_count())
            .map(|index| {
                let text =
                    &source[query.start_byte_for_pattern(index)..query.end_byte_for_pattern(index)];
                let plain = query.general_predicates(index).is_empty()
                    && query.property_predicates(index).is_empty()
                    && query.property_settings(index).is_empty();
                simple_pattern(text)
                    .filter(|_| plain)
                    .and_then(|simple| resolve(grammar, &simple, index))
                    .filter(|(parent, _)| usize::from(*parent) < grammar.node_kind_count())
            })
            .collect();
        let walk = match split {
            Split::Never => false,
            Split::WhenAllSimple => simple.iter().all(Option::is_some),
            Split::EverySimplePattern => true,
        };
        let mut direct: Vec<Vec<DirectPattern>> = vec![Vec::new(); grammar.node_kind_count()];
        let mut query_needed = false;
        for (index, found) in simple.into_iter().enumerate() {
            match found {
                Some((parent, pattern)) if walk => {
                    direct[usize::from(parent)].push(pattern);
                    query.disable_pattern(index);
                }
                _ => query_needed = true,
            }
        }
        Ok(TagsQuery {
            query,
            query_needed,
            direct,
        })
    }

    /// The query as the engine runs it (the direct patterns disabled).
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// Whether the walk takes any pattern.
    pub fn walks(&self) -> bool {
        self.direct.iter().any(|patterns| !patterns.is_empty())
    }

    /// Whether the engine has patterns left to run.
    pub fn query_needed(&self) -> bool {
        self.query_needed
    }

    /// Calls `found` with the pattern's index, its role and the name node of every match of
    /// the direct patterns.
    pub(crate) fn walk<'tree>(
        &self,
        root: Node<'tree>,
        mut found: impl FnMut(usize, &Role, Node<'tree>),
    ) {
        if !self.walks() {
            return;
        }
        let mut cursor = root.walk();
        // The direct patterns of each node from the root down to the cursor's parent.
        let mut ancestors: Vec<&[DirectPattern]> = Vec::new();
        loop {
            let node = cursor.node();
            if let Some(patterns) = ancestors.last()
                && !patterns.is_empty()
            {
                let kind = node.kind_id();
                let mut field = None;
                for pattern in patterns.iter() {
                    if pattern.child != kind {
                        continue;
                    }
                    if let Some(wanted) = pattern.field {
                        let field = *field.get_or_insert_with(|| cursor.field_id());
                        if field != Some(wanted) {
                            continue;
                        }
                    }
                    found(pattern.index, &pattern.role, node);
                }
            }
            if cursor.goto_first_child() {
                ancestors.push(
                    self.direct
                        .get(usize::from(node.kind_id()))
                        .map_or(&[], Vec::as_slice),
                );
                continue;
            }
            loop {
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return;
                }
                ancestors.pop();
            }
        }
    }
}

/// A pattern read from its source: `(parent field: (child) @name) @role`.
#[derive(Debug, PartialEq, Eq)]
struct SimplePattern<'a> {
    parent: &'a str,
    field: Option<&'a str>,
    child: &'a str,
    role: Role,
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    Word(&'a str),
    Field(&'a str),
    Capture(&'a str),
}

/// The tokens of a pattern's source, or `None` when it holds anything beyond names, fields,
/// captures and parentheses (strings, predicates, anchors, quantifiers, alternations, ...).
fn tokens(text: &str) -> Option<Vec<Token<'_>>> {
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix(';') {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
            continue;
        }
        let Some(first) = rest.chars().next() else {
            return Some(tokens);
        };
        let is_name =
            |character: char| character.is_ascii_alphanumeric() || "_.-".contains(character);
        match first {
            '(' => {
                tokens.push(Token::Open);
                rest = &rest[1..];
            }
            ')' => {
                tokens.push(Token::Close);
                rest = &rest[1..];
            }
            '@' => {
                let end = rest[1..]
                    .find(|character| !is_name(character))
                    .map_or(rest.len(), |end| end + 1);
                tokens.push(Token::Capture(&rest[1..end]));
                rest = &rest[end..];
            }
            character if character.is_ascii_alphabetic() || character == '_' => {
                let end = rest
                    .find(|character| !is_name(character))
                    .unwrap_or(rest.len());
                let word = &rest[..end];
                rest = &rest[end..];
                if let Some(after) = rest.strip_prefix(':') {
                    tokens.push(Token::Field(word));
                    rest = after;
                } else {
                    tokens.push(Token::Word(word));
                }
            }
            _ => return None,
        }
    }
}

fn simple_pattern(text: &str) -> Option<SimplePattern<'_>> {
    let mut tokens = tokens(text)?;
    let field = match tokens.get(2) {
        Some(&Token::Field(field)) => {
            tokens.remove(2);
            Some(field)
        }
        _ => None,
    };
    let [
        Token::Open,
        Token::Word(parent),
        Token::Open,
        Token::Word(child),
        Token::Close,
        Token::Capture(name),
        Token::Close,
        Token::Capture(role),
    ] = *tokens.as_slice()
    else {
        return None;
    };
    // `_` is the wildcard; a name captured as anything else is not a tag.
    if name != "name" || parent == "_" || child == "_" {
        return None;
    }
    Some(SimplePattern {
        parent,
        field,
        child,
        role: Role::of_capture(role)?,
    })
}

/// The pattern in the grammar's ids: `None` for a kind or field the grammar does not have as a
/// plain named node (supertypes match their subtypes, which a kind lookup would miss).
fn resolve(
    grammar: &Grammar,
    pattern: &SimplePattern<'_>,
    index: usize,
) -> Option<(u16, DirectPattern)> {
    let kind = |name: &str| {
        let id = grammar.id_for_node_kind(name, true);
        (id != 0 && !grammar.node_kind_is_supertype(id)).then_some(id)
    };
    let field = match pattern.field {
        Some(name) => Some(grammar.field_id_for_name(name)?),
        None => None,
    };
    Some((
        kind(pattern.parent)?,
        DirectPattern {
            index,
            field,
            child: kind(pattern.child)?,
            role: pattern.role.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_patterns_are_read() {
        assert_eq!(
            simple_pattern("(function_signature\n  name: (identifier) @name) @definition.function"),
            Some(SimplePattern {
                parent: "function_signature",
                field: Some("name"),
                child: "identifier",
                role: Role {
                    is_definition: true,
                    kind: "function".to_owned()
                },
            })
        );
        assert_eq!(
            simple_pattern(
                "; a comment\n(type_annotation (type_identifier) @name) @reference.type"
            )
            .map(|pattern| (pattern.parent, pattern.field, pattern.child)),
            Some(("type_annotation", None, "type_identifier"))
        );
    }

    #[test]
    fn anything_more_stays_with_the_query_engine() {
        for text in [
            "((identifier) @name (#match? @name \"^[A-Z]\")) @definition.constant",
            "(call_expression function: [(identifier) (member_expression)] @name) @reference.call",
            "(class_declaration name: (_) @name) @definition.class",
            "(module (expression_statement (assignment left: (identifier) @name)) @definition.constant)",
            "(call function: (identifier) @name) @reference.call (#not-eq? @name \"print\")",
            "(function_item . name: (identifier) @name) @definition.function",
            "(function_item name: (identifier)* @name) @definition.function",
            "(function_item name: (identifier) @doc) @definition.function",
            "(function_item name: (identifier) @name) @local.scope",
            "(function_item !body name: (identifier) @name) @definition.function",
        ] {
            assert_eq!(simple_pattern(text), None, "{text}");
        }
    }
}
