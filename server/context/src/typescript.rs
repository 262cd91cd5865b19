//! TypeScript that tree-sitter's TypeScript grammar (0.23) cannot parse, made parsable without
//! moving a byte.
//!
//! Four kinds of valid, common TypeScript put the grammar into error recovery, which then often
//! swallows the rest of the file into one `ERROR` node: the file's definitions are lost, and the
//! parse costs about twice as much (in the `effect` package, 185 of 572 files):
//!
//! - variance annotations on type parameters (TypeScript 4.7): `interface Effect<out A, in R>`;
//! - type arguments that hold an object type on a tagged template: ``sql<{ id: number }>`SELECT` ``;
//! - `export type * from "./module"` (TypeScript 5.0);
//! - a call signature with type parameters on the line after another member, with no `;` between:
//!   TypeScript never reads `A` at the end of one line and `<B>` at the start of the next as one
//!   type `A<B>` (type arguments must start on the same line), the grammar does:
//!
//!   ```text
//!   export const clamp: {
//!     <A>(options: Options): (self: A) => A
//!     <A>(self: A, options: Options): A
//!   }
//!   ```
//!
//!   (the same for a member named `in` on the line after another member).
//!
//! [`repair`] blanks the modifiers and the template tag's type arguments out (`out` becomes
//! three spaces) and turns the indentation before such a `<` or `in` into a `;`. Only ASCII
//! characters other than line breaks are replaced, by spaces and `;`, so every byte offset, line
//! and column stays where it was, and no name is changed: signatures are still read from the
//! original text. A replacement that lands in a string, comment or regular expression only changes
//! letters or spaces inside it, never its delimiters (blanked type arguments never hold one), so
//! it changes nothing the tags are read from.

use std::borrow::Cow;

/// How far back a line is searched for its start when checking for a `//` comment line; minified
/// code has lines of megabytes, and a comment line is never that long.
const COMMENT_LINE_SEARCH: usize = 512;
/// How far back a `/*` is searched for from a `*/` (a `*/` in a string has none).
const BLOCK_COMMENT_SEARCH: usize = 64 * 1024;
/// How far a tagged template's type arguments are searched for their end.
const TYPE_ARGUMENTS_SEARCH: usize = 1024;

/// `source` with the constructs above made parsable (see the module's documentation), the same
/// length; `jsx` leaves lines that start with `<` alone (there they start JSX elements).
pub fn repair(source: &str, jsx: bool) -> Cow<'_, str> {
    let mut buffers = RepairBuffers::default();
    match repair_into(source, jsx, &mut buffers).map(|bytes| String::from_utf8(bytes.to_vec())) {
        Some(Ok(text)) => Cow::Owned(text),
        // Unreachable: only ASCII bytes are replaced, by ASCII bytes.
        Some(Err(_)) | None => Cow::Borrowed(source),
    }
}

/// What [`repair_into`] reuses from one file to the next (a large allocation freed per file
/// costs glibc's allocator a consolidation of its free lists).
#[derive(Debug, Default)]
pub struct RepairBuffers {
    candidates: Vec<usize>,
    text: Vec<u8>,
}

/// The text being repaired: the source, copied into the buffer at the first change.
struct Repaired<'a> {
    source: &'a [u8],
    text: &'a mut Vec<u8>,
    changed: bool,
}

impl Repaired<'_> {
    fn bytes(&mut self) -> &mut [u8] {
        if !self.changed {
            self.text.clear();
            self.text.extend_from_slice(self.source);
            self.changed = true;
        }
        self.text
    }
}

/// [`repair`] in `buffers`: the repaired text, or `None` when `source` needs no repair.
pub fn repair_into<'b>(
    source: &str,
    jsx: bool,
    buffers: &'b mut RepairBuffers,
) -> Option<&'b [u8]> {
    let bytes = source.as_bytes();
    let RepairBuffers { candidates, text } = buffers;
    let mut repaired = Repaired {
        source: bytes,
        text,
        changed: false,
    };
    // Where each construct can start: a `<`, or the word `in`, `out` or `type` (found with
    // memchr's vectorised searches; the bytes between are never looked at).
    candidates.clear();
    candidates.extend(memchr::memchr_iter(b'<', bytes));
    for word in [&b"in"[..], b"out", b"type"] {
        candidates.extend(memchr::memmem::find_iter(bytes, word).filter(|&start| {
            (start == 0 || !is_identifier(bytes[start - 1]))
                && !bytes
                    .get(start + word.len())
                    .copied()
                    .is_some_and(is_identifier)
        }));
    }
    candidates.sort_unstable();
    // Bytes before this were blanked already.
    let mut resume = 0;
    for &position in candidates.iter() {
        if position < resume {
            continue;
        }
        if bytes[position] == b'<' {
            if !jsx && starts_member_signature(bytes, position) {
                repaired.bytes()[position - 1] = b';';
            } else if let Some(end) = template_tag_type_arguments(bytes, position) {
                let repaired = repaired.bytes();
                for byte in &mut repaired[position..end] {
                    if !matches!(*byte, b'\n' | b'\r') {
                        *byte = b' ';
                    }
                }
                resume = end;
            }
            continue;
        }
        let end = word_end(bytes, position);
        match &bytes[position..end] {
            b"in" | b"out"
                if let Some(modifiers_end) = variance_modifiers(bytes, position, end) =>
            {
                blank(repaired.bytes(), position, modifiers_end);
                resume = modifiers_end;
            }
            b"in" if !jsx && starts_member_named_in(bytes, position, end) => {
                repaired.bytes()[position - 1] = b';';
            }
            b"type" if is_export_type_star(bytes, position, end) => {
                blank(repaired.bytes(), position, end);
            }
            _ => {}
        }
    }
    let changed = repaired.changed;
    changed.then_some(buffers.text.as_slice())
}

fn is_identifier_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b'$'
}

fn is_identifier(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$'
}

fn word_end(bytes: &[u8], start: usize) -> usize {
    start
        + bytes[start..]
            .iter()
            .take_while(|byte| is_identifier(**byte))
            .count()
}

fn skip_whitespace(bytes: &[u8], start: usize) -> usize {
    start
        + bytes[start..]
            .iter()
            .take_while(|byte| byte.is_ascii_whitespace())
            .count()
}

fn blank(bytes: &mut [u8], start: usize, end: usize) {
    for byte in &mut bytes[start..end] {
        if is_identifier(*byte) {
            *byte = b' ';
        }
    }
}

/// The last byte before `end` that is not whitespace, a `/* */` comment or a line holding only a
/// `//` comment.
fn previous_significant(bytes: &[u8], mut end: usize) -> Option<usize> {
    loop {
        let mut crossed_line = false;
        while end > 0 && bytes[end - 1].is_ascii_whitespace() {
            crossed_line |= bytes[end - 1] == b'\n';
            end -= 1;
        }
        if end == 0 {
            return None;
        }
        if end >= 2 && bytes[end - 2..end] == *b"*/" {
            let search_from = (end - 2).saturating_sub(BLOCK_COMMENT_SEARCH);
            let opening = bytes[search_from..end - 2]
                .windows(2)
                .rposition(|pair| pair == b"/*")?;
            end = search_from + opening;
            continue;
        }
        // (A byte on the line `end` was on is never a comment line's: either `end` is in that
        // comment itself, or no comment ends that line before it.)
        let search_from = end.saturating_sub(COMMENT_LINE_SEARCH);
        if crossed_line
            && let Some(newline) = bytes[search_from..end]
                .iter()
                .rposition(|byte| *byte == b'\n')
        {
            let line_start = search_from + newline + 1;
            let indentation = skip_whitespace(bytes, line_start);
            if bytes[indentation..end].starts_with(b"//") {
                end = line_start;
                continue;
            }
        }
        return Some(end - 1);
    }
}

/// Whether the `<` at `position` starts a call signature's type parameters on a line of its own
/// after a member that ended without `;` or `,`: it is followed by a name or a line break, and
/// [`follows_unterminated_member`].
fn starts_member_signature(bytes: &[u8], position: usize) -> bool {
    let Some(&next) = bytes.get(position + 1) else {
        return false;
    };
    (is_identifier_start(next) || next == b'\n' || next == b'\r')
        && follows_unterminated_member(bytes, position)
}

/// Whether the word `in` at `start..end` names a member (`in: "query" | "header"`) on a line of
/// its own after a member that ended without `;` or `,` (the grammar reads it as the operator).
fn starts_member_named_in(bytes: &[u8], start: usize, end: usize) -> bool {
    let mut after = skip_whitespace(bytes, end);
    if bytes.get(after) == Some(&b'?') {
        after += 1;
    }
    bytes.get(after) == Some(&b':') && follows_unterminated_member(bytes, start)
}

/// Whether `position` is the first character of its line after at least one space or tab, and
/// what precedes the line ends a type (a name, `)`, `]`, `}`, `>` other than `=>`'s, or a
/// literal).
fn follows_unterminated_member(bytes: &[u8], position: usize) -> bool {
    let indentation = bytes[..position]
        .iter()
        .rev()
        .take_while(|byte| **byte == b' ' || **byte == b'\t')
        .count();
    let line_start = position - indentation;
    if indentation == 0 || line_start == 0 || bytes[line_start - 1] != b'\n' {
        return false;
    }
    let Some(previous) = previous_significant(bytes, line_start) else {
        return false;
    };
    let ends_arrow = bytes[previous] == b'>' && previous > 0 && bytes[previous - 1] == b'=';
    !ends_arrow
        && (is_identifier(bytes[previous])
            || matches!(
                bytes[previous],
                b')' | b']' | b'}' | b'>' | b'\'' | b'"' | b'`'
            ))
}

/// Where the type arguments of a tagged template (``sql<{ count: number }>`SELECT ...` ``) that
/// start at the `<` at `position` end, when they hold an object type (the grammar reads those
/// only in calls): after the `>` that closes them, directly followed by the template's backtick.
/// Arguments that hold a string, comment or template are left alone.
fn template_tag_type_arguments(bytes: &[u8], position: usize) -> Option<usize> {
    if position == 0 || !is_identifier(bytes[position - 1]) {
        return None;
    }
    let mut depth = 0usize;
    let mut object = false;
    let limit = bytes.len().min(position + TYPE_ARGUMENTS_SEARCH);
    for index in position..limit {
        match bytes[index] {
            b'<' => depth += 1,
            b'>' if index > 0 && bytes[index - 1] == b'=' => {}
            b'>' => {
                depth -= 1;
                if depth == 0 {
                    return (object && bytes.get(index + 1) == Some(&b'`')).then_some(index + 1);
                }
            }
            b'{' => object = true,
            b'"' | b'\'' | b'`' | b'/' | b'(' => return None,
            _ => {}
        }
    }
    None
}

/// Where the variance modifiers starting with the word `start..end` (`in`, `out` or `in out`)
/// end, when they modify a type parameter: after `<` or `,`, followed by the parameter's name and
/// then `,`, `>`, `=` or `extends`.
fn variance_modifiers(bytes: &[u8], start: usize, end: usize) -> Option<usize> {
    let previous = previous_significant(bytes, start)?;
    if !matches!(bytes[previous], b'<' | b',') {
        return None;
    }
    let mut modifiers_end = end;
    let mut name_start = skip_whitespace(bytes, end);
    if name_start == end {
        return None;
    }
    let mut name_end = word_end(bytes, name_start);
    if &bytes[start..end] == b"in" && &bytes[name_start..name_end] == b"out" {
        let after_out = skip_whitespace(bytes, name_end);
        if after_out > name_end
            && bytes
                .get(after_out)
                .copied()
                .is_some_and(is_identifier_start)
        {
            modifiers_end = name_end;
            name_start = after_out;
            name_end = word_end(bytes, name_start);
        }
    }
    if name_end == name_start
        || !is_identifier_start(bytes[name_start])
        || &bytes[name_start..name_end] == b"extends"
    {
        return None;
    }
    let after = skip_whitespace(bytes, name_end);
    let follows_parameter = matches!(bytes.get(after), Some(b',' | b'>' | b'='))
        || (bytes[after..].starts_with(b"extends")
            && !bytes
                .get(after + "extends".len())
                .copied()
                .is_some_and(is_identifier));
    follows_parameter.then_some(modifiers_end)
}

/// Whether the word `type` at `start..end` is the one of `export type * from`.
fn is_export_type_star(bytes: &[u8], start: usize, end: usize) -> bool {
    let Some(previous) = previous_significant(bytes, start) else {
        return false;
    };
    let export_end = previous + 1;
    let exported = export_end >= "export".len()
        && &bytes[export_end - "export".len()..export_end] == b"export"
        && (export_end == "export".len() || !is_identifier(bytes[export_end - "export".len() - 1]));
    exported && bytes.get(skip_whitespace(bytes, end)) == Some(&b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses_cleanly(source: &str, jsx: bool) -> bool {
        let grammar: tree_sitter::Language = if jsx {
            tree_sitter_typescript::LANGUAGE_TSX.into()
        } else {
            tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()
        };
        let mut parser = crate::allocator::parser();
        parser.set_language(&grammar).expect("grammar loads");
        let tree = parser.parse(source, None).expect("parses");
        !tree.root_node().has_error()
    }

    #[test]
    fn each_construct_fails_the_grammar_and_parses_once_repaired() {
        let cases = [
            "interface Effect<out A, out E = never, in R = never> extends Pipeable {\n  readonly a: A\n}",
            "type Pair<in out A> = { a: A }",
            "export type * from \"./Schema.ts\"",
            "export type * as Schema from \"./Schema.ts\"",
            "export const clamp: {\n  <A>(options: O): (self: A) => A\n  <A>(self: A, options: O): A\n} = f",
            "interface I {\n  <A>(a: A): Array<A>\n  /** The other. */\n  <\n    B\n  >(b: B): B\n}",
            "type T = {\n  <A>(a: A): A\n  // The other.\n  <B>(b: B): B\n}",
            "interface Parameter {\n  name: string\n  in: \"query\" | \"path\"\n  in?: Place\n}",
            "const rows = sql<{ count: number }>`SELECT COUNT(*) FROM ${table}`",
            "const rows = sql<{ id: Array<Id>; at: Date }>`SELECT id, at`.pipe(run)",
        ];
        for source in cases {
            assert!(
                !parses_cleanly(source, false),
                "the grammar now parses {source:?}"
            );
            let repaired = repair(source, false);
            assert_eq!(repaired.len(), source.len());
            assert!(
                parses_cleanly(&repaired, false),
                "{source:?} became {repaired:?}"
            );
        }
    }

    #[test]
    fn valid_code_the_grammar_reads_is_left_alone() {
        let cases = [
            "for (const key in record) {}",
            "const isIn = \"a\" in b, out = 1",
            "function f<out>(value: out): out { return value }",
            "function g<out extends string>(value: out) {}",
            "function h<in, T>() {}",
            "const k = (a: number) =>\n  <B>(b: B) => b",
            "const m = f(\n  <A>(a: A) => a\n)",
            "let value = a\n  < b",
            "type Kind = \"type\"\nexport { type A } from \"./a\"",
            "const inside = { in: 1, out: 2 }\nif (key\n  in record) {}",
            "const view = styled.div<Props>`color: red`",
            "const call = f<{ a: A }>(x)\nconst text = a < b ? `${c}>` : d",
        ];
        for source in cases {
            assert_eq!(repair(source, false), source, "{source:?} was changed");
        }
    }

    #[test]
    fn reused_buffers_hold_only_the_latest_file() {
        let mut buffers = RepairBuffers::default();
        let long = "type Long<out A> = { value: A; other: A; third: A }";
        let short = "type S<in B> = B";
        assert_eq!(
            repair_into(long, false, &mut buffers),
            Some(&b"type Long<    A> = { value: A; other: A; third: A }"[..])
        );
        assert_eq!(repair_into("const a = 1", false, &mut buffers), None);
        assert_eq!(
            repair_into(short, false, &mut buffers),
            Some(&b"type S<   B> = B"[..])
        );
    }

    #[test]
    fn jsx_lines_that_start_with_a_tag_are_left_alone() {
        let source = "const view = (\n  <div>\n    <span>{a}</span>\n    <b>{c}</b>\n  </div>\n)";
        assert!(parses_cleanly(source, true));
        assert_eq!(repair(source, true), source);
    }
}
