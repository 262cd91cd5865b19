//! JavaScript, TypeScript and Rust with their comments and indentation left out, for the parser.
//!
//! Comments hold no definitions and no references, but the grammar's lexer reads them one
//! character at a time like any other text, and in documented code they are most of it (41% of the
//! bytes of the `effect` package are `/** */` blocks); indentation is the same (another 4%).
//! [`strip_into`] copies a source without them: a comment becomes the line breaks it held, or one
//! space when it held none, so every line keeps its number and no two tokens run together; the
//! spaces and tabs that start a line (outside template literals) go. Columns change, lines do not.
//! [`Stripped::original_offset`] maps an offset in the copy back to the source.
//!
//! Telling a comment from a `//` or `/*` inside a string, a template literal or a regular
//! expression takes a small lexer: strings, template literals (with `${}` nested to any depth) and
//! regular expressions are skipped, a `/` starting a regular expression rather than a division
//! when what precedes it cannot end an operand. That is the usual rule of thumb, not a parse; the
//! caller parses the source itself when the stripped copy does not parse cleanly (JSX text, where
//! `//` is plain text, is the case it does not try to handle).
//!
//! Rust ([`strip_rust_into`]) has no regular expressions or templates, but strings that span
//! lines, raw strings (`r#".."#`), character literals that must be told from lifetimes (`'"'`
//! against `'a`) and block comments that nest.

/// Where the stripped copy's bytes come from.
#[derive(Debug, Default)]
pub struct Stripped {
    /// The copy.
    pub text: Vec<u8>,
    /// After each removed comment: the offset in the copy and the source's offset there.
    shifts: Vec<(usize, usize)>,
    /// Whether the lexer had to guess: it met a regular expression, a `/` after a `)`, `]` or
    /// `}` (a division, or a regular expression after `if (..)`), a string, template or
    /// regular expression left open, or brackets that do not pair.
    guessed: bool,
}

impl Stripped {
    /// Whether the copy is certainly the source without its comments (the lexer never had to
    /// guess), for a language without JSX: then a parse error in the copy is one in the source.
    pub fn is_certain(&self) -> bool {
        !self.guessed
    }

    /// The source's offset of the byte at `offset` in the copy (a byte that is not part of a
    /// comment's replacement).
    pub fn original_offset(&self, offset: usize) -> usize {
        let after = self
            .shifts
            .partition_point(|&(stripped, _)| stripped <= offset);
        match after.checked_sub(1).and_then(|last| self.shifts.get(last)) {
            Some(&(stripped, original)) => original + (offset - stripped),
            None => offset,
        }
    }
}

/// What a removed span leaves in the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replacement {
    /// Nothing: a line comment (its line break follows it) or indentation.
    Nothing,
    /// A block comment's line breaks, or one space when it has none.
    LineBreaksOrSpace,
}

/// What encloses the lexer's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nesting {
    /// A `{` in code.
    Brace,
    /// A template literal's `${`: its `}` returns to the template.
    Substitution,
}

/// Keywords after which a `/` starts a regular expression.
const KEYWORDS_BEFORE_EXPRESSION: [&[u8]; 14] = [
    b"return",
    b"typeof",
    b"instanceof",
    b"in",
    b"of",
    b"new",
    b"delete",
    b"void",
    b"throw",
    b"case",
    b"do",
    b"else",
    b"yield",
    b"await",
];

/// The language whose literals and comments the lexer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Syntax {
    JavaScript,
    Rust,
}

/// Copies JavaScript or TypeScript `source` without its comments into `into` (see the module's
/// documentation); false, with `into` left as it was, when it has none.
pub fn strip_into(source: &[u8], into: &mut Stripped) -> bool {
    strip(source, Syntax::JavaScript, into)
}

/// [`strip_into`] for Rust.
pub fn strip_rust_into(source: &[u8], into: &mut Stripped) -> bool {
    strip(source, Syntax::Rust, into)
}

fn strip(source: &[u8], syntax: Syntax, into: &mut Stripped) -> bool {
    let mut lexer = Lexer {
        source,
        syntax,
        position: 0,
        copied: 0,
        last_significant: None,
        nesting: Vec::new(),
        into,
        stripped_any: false,
        guessed: false,
    };
    lexer.run();
    let stripped_any = lexer.stripped_any;
    if stripped_any {
        lexer.into.text.extend_from_slice(&source[lexer.copied..]);
        lexer.into.guessed = lexer.guessed || !lexer.nesting.is_empty();
    }
    stripped_any
}

struct Lexer<'a> {
    source: &'a [u8],
    syntax: Syntax,
    position: usize,
    /// Bytes before this are in the copy.
    copied: usize,
    /// The last byte of code before `position` that is not whitespace or a comment.
    last_significant: Option<usize>,
    nesting: Vec<Nesting>,
    into: &'a mut Stripped,
    stripped_any: bool,
    guessed: bool,
}

impl Lexer<'_> {
    fn run(&mut self) {
        match self.syntax {
            Syntax::JavaScript => self.run_javascript(),
            Syntax::Rust => self.run_rust(),
        }
    }

    /// Removes the indentation after the line break at `position`.
    fn line_break(&mut self) {
        self.position += 1;
        let indentation = self.source[self.position..]
            .iter()
            .take_while(|byte| matches!(byte, b' ' | b'\t'))
            .count();
        if indentation > 0 {
            self.remove(self.position + indentation, Replacement::Nothing);
        }
    }

    /// Removes the line comment at `position` (up to its line break).
    fn line_comment(&mut self) {
        let end = memchr::memchr(b'\n', &self.source[self.position..])
            .map_or(self.source.len(), |newline| self.position + newline);
        self.remove(end, Replacement::Nothing);
    }

    fn run_rust(&mut self) {
        let source = self.source;
        while let Some(&byte) = source.get(self.position) {
            match byte {
                b'\n' => self.line_break(),
                b'/' => match source.get(self.position + 1) {
                    Some(b'/') => self.line_comment(),
                    Some(b'*') => {
                        let end = self.nested_block_comment_end();
                        self.remove(end, Replacement::LineBreaksOrSpace);
                    }
                    _ => self.position += 1,
                },
                b'"' => {
                    self.skip_until(self.position + 1, false, |byte, _| byte == b'"');
                }
                b'\'' => self.skip_character_or_lifetime(),
                b'r' => self.skip_raw_string_or_letter(),
                _ => self.position += 1,
            }
        }
    }

    /// The end of the Rust block comment at `position` (block comments nest), or of the source.
    fn nested_block_comment_end(&self) -> usize {
        let source = self.source;
        let mut depth = 0usize;
        let mut position = self.position;
        while let Some(pair) = source.get(position..position + 2) {
            match pair {
                b"/*" => {
                    depth += 1;
                    position += 2;
                }
                b"*/" => {
                    depth -= 1;
                    position += 2;
                    if depth == 0 {
                        return position;
                    }
                }
                _ => position += 1,
            }
        }
        source.len()
    }

    /// Skips a character literal (`'x'`, `'\n'`, `'"'`) at `position`, or only the quote of a
    /// lifetime or label (`'a`).
    fn skip_character_or_lifetime(&mut self) {
        let source = self.source;
        let start = self.position + 1;
        if source.get(start) == Some(&b'\\') {
            self.skip_until(start, true, |byte, _| byte == b'\'');
            return;
        }
        // One character, of one to four bytes in UTF-8, then the closing quote.
        let width = match source.get(start) {
            Some(&byte) if byte >= 0xF0 => 4,
            Some(&byte) if byte >= 0xE0 => 3,
            Some(&byte) if byte >= 0xC0 => 2,
            _ => 1,
        };
        if source.get(start + width) == Some(&b'\'') {
            self.position = start + width + 1;
        } else {
            self.position = start;
        }
    }

    /// Skips a raw string (`r".."`, `r#".."#`, also after `b` or `c`) starting at the `r` at
    /// `position`, or only that letter when none starts there (`r#name` is an identifier).
    fn skip_raw_string_or_letter(&mut self) {
        let source = self.source;
        let starts_word = |at: usize| {
            at.checked_sub(1)
                .and_then(|before| source.get(before))
                .is_none_or(|&byte| !(byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80))
        };
        let prefixed = self
            .position
            .checked_sub(1)
            .and_then(|before| source.get(before))
            .is_some_and(|&byte| matches!(byte, b'b' | b'c'))
            && starts_word(self.position - 1);
        let start = self.position + 1;
        let hashes = source[start..]
            .iter()
            .take_while(|&&byte| byte == b'#')
            .count();
        if !(starts_word(self.position) || prefixed) || source.get(start + hashes) != Some(&b'"') {
            self.position += 1;
            return;
        }
        let body = start + hashes + 1;
        let mut closing = Vec::with_capacity(hashes + 1);
        closing.push(b'"');
        closing.resize(hashes + 1, b'#');
        match memchr::memmem::find(&source[body..], &closing) {
            Some(found) => self.position = body + found + closing.len(),
            None => {
                self.guessed = true;
                self.position = source.len();
            }
        }
    }

    fn run_javascript(&mut self) {
        let source = self.source;
        while let Some(&byte) = source.get(self.position) {
            match byte {
                b'\n' => {
                    self.line_break();
                    continue;
                }
                b' ' | b'\t' | b'\r' => {
                    self.position += 1;
                    continue;
                }
                b'\'' | b'"' => self.skip_string(byte),
                b'`' => {
                    self.position += 1;
                    self.skip_template();
                }
                b'{' => {
                    self.nesting.push(Nesting::Brace);
                    self.position += 1;
                }
                b'}' => {
                    self.position += 1;
                    match self.nesting.pop() {
                        Some(Nesting::Substitution) => self.skip_template(),
                        Some(Nesting::Brace) => {}
                        None => self.guessed = true,
                    }
                }
                b'/' => match source.get(self.position + 1) {
                    Some(b'/') => {
                        self.line_comment();
                        continue;
                    }
                    Some(b'*') => {
                        let end = memchr::memmem::find(&source[self.position + 2..], b"*/")
                            .map_or(source.len(), |close| self.position + 2 + close + 2);
                        self.remove(end, Replacement::LineBreaksOrSpace);
                        continue;
                    }
                    _ if self.regular_expression_may_start() => {
                        self.guessed = true;
                        self.skip_regular_expression();
                    }
                    _ => {
                        self.guessed |= self
                            .last_significant
                            .is_some_and(|last| matches!(self.source[last], b')' | b']' | b'}'));
                        self.position += 1;
                    }
                },
                _ => self.position += 1,
            }
            // Every branch that did not `continue` ended a token whose last byte is significant.
            self.last_significant = Some(self.position - 1);
        }
    }

    /// Leaves `position..end` (a comment, or indentation) out of the copy.
    fn remove(&mut self, end: usize, replacement: Replacement) {
        let start = self.position;
        let copy = &mut self.into;
        if !self.stripped_any {
            copy.text.clear();
            copy.shifts.clear();
            self.stripped_any = true;
        }
        copy.text
            .extend_from_slice(&self.source[self.copied..start]);
        if replacement == Replacement::LineBreaksOrSpace {
            let line_breaks = memchr::memchr_iter(b'\n', &self.source[start..end]).count();
            if line_breaks > 0 {
                copy.text.resize(copy.text.len() + line_breaks, b'\n');
            } else {
                copy.text.push(b' ');
            }
        }
        copy.shifts.push((copy.text.len(), end));
        self.copied = end;
        self.position = end;
    }

    /// Skips a literal's text from `start` past the byte that `closes` it (given that byte and
    /// the next), stepping over escapes; a line break ends it too when `line_ends_it` (strings and
    /// regular expressions, not templates). Returns the closing byte, or `None` when the literal
    /// was left open (which makes the copy a guess).
    fn skip_until(
        &mut self,
        start: usize,
        line_ends_it: bool,
        mut closes: impl FnMut(u8, Option<u8>) -> bool,
    ) -> Option<u8> {
        let source = self.source;
        let mut position = start;
        let closing = loop {
            let Some(&byte) = source.get(position) else {
                break None;
            };
            position += 1;
            match byte {
                b'\\' => position += 1,
                b'\n' if line_ends_it => break None,
                _ if closes(byte, source.get(position).copied()) => break Some(byte),
                _ => {}
            }
        };
        self.guessed |= closing.is_none();
        self.position = position.min(source.len());
        closing
    }

    /// Skips a string literal opened by `quote` at `position`.
    fn skip_string(&mut self, quote: u8) {
        self.skip_until(self.position + 1, true, |byte, _| byte == quote);
    }

    /// Skips a template literal's text from `position` to its closing backtick, or into a
    /// `${` substitution (whose `}` comes back here).
    fn skip_template(&mut self) {
        let closing = self.skip_until(self.position, false, |byte, next| {
            byte == b'`' || (byte == b'$' && next == Some(b'{'))
        });
        if closing == Some(b'$') {
            self.position += 1;
            self.nesting.push(Nesting::Substitution);
        }
    }

    /// Whether a `/` at `position` starts a regular expression: what precedes it cannot end an
    /// operand (an operator, an opening bracket, a keyword such as `return`, or nothing).
    fn regular_expression_may_start(&self) -> bool {
        let Some(last) = self.last_significant else {
            return true;
        };
        let byte = self.source[last];
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' {
            let start = self.source[..=last]
                .iter()
                .rposition(|byte| !(byte.is_ascii_alphanumeric() || *byte == b'_' || *byte == b'$'))
                .map_or(0, |before| before + 1);
            let word = &self.source[start..=last];
            return KEYWORDS_BEFORE_EXPRESSION.contains(&word);
        }
        !matches!(byte, b')' | b']' | b'}' | b'\'' | b'"' | b'`')
    }

    /// Skips a regular expression literal from its opening `/` at `position` (to its closing `/`
    /// outside a character class).
    fn skip_regular_expression(&mut self) {
        let mut in_class = false;
        self.skip_until(self.position + 1, true, |byte, _| {
            match byte {
                b'[' => in_class = true,
                b']' => in_class = false,
                b'/' => return !in_class,
                _ => {}
            }
            false
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `source` as `strip` leaves it (itself when it has nothing to leave out).
    fn stripped_by(strip: fn(&[u8], &mut Stripped) -> bool, source: &str) -> String {
        let mut into = Stripped::default();
        if strip(source.as_bytes(), &mut into) {
            String::from_utf8(into.text).expect("comments are removed whole")
        } else {
            source.to_owned()
        }
    }

    fn stripped(source: &str) -> String {
        stripped_by(strip_into, source)
    }

    #[test]
    fn comments_become_their_line_breaks_or_one_space() {
        assert_eq!(
            stripped("/**\n * Docs.\n */\nexport const a = 1 // one\nlet b/* x */= 2\n"),
            "\n\n\nexport const a = 1 \nlet b = 2\n"
        );
        assert_eq!(stripped("a /* never closed\n\n"), "a \n\n");
        assert_eq!(stripped("a // at the end"), "a ");
        assert_eq!(
            stripped("class A {\n  /** B. */\n\tb() {\n    return `\n  c`\n  }\n}"),
            "class A {\n \nb() {\nreturn `\n  c`\n}\n}"
        );
    }

    #[test]
    fn strings_templates_and_regular_expressions_keep_what_looks_like_comments() {
        for source in [
            "const url = \"https://example.com/*\" // c",
            "const url = 'https://example.com/*' // c",
            "const query = `a // b ${ { x: '/*' }.x + `c /* d ${ e /* f */ } */` } // g` // h",
            "const pattern = /\\/*[/*]\\//g; // c",
            "if (x) return /a\\/\\/b/.test(y) // c",
            "const half = total / 2 / count // c",
            "const half = (total) / 2 // c",
        ] {
            let result = stripped(source);
            let (code, _comment) = source.rsplit_once(" // ").expect("a trailing comment");
            let expected_inner = code.replace(" /* f */ ", "   ");
            assert!(
                result == format!("{code} ") || result == format!("{expected_inner} "),
                "{source:?} became {result:?}"
            );
        }
    }

    #[test]
    fn offsets_map_back_to_the_source() {
        let source = "/** A. */\nexport function a() {}\n/* two\n lines */ const b = 1";
        let mut into = Stripped::default();
        assert!(strip_into(source.as_bytes(), &mut into));
        let text = String::from_utf8(into.text.clone()).expect("utf-8");
        for name in ["export", "function", "a()", "const", "b = 1"] {
            let in_copy = text.find(name).expect("in the copy");
            let in_source = source.find(name).expect("in the source");
            assert_eq!(into.original_offset(in_copy), in_source, "{name}");
        }
        // Lines stay where they were.
        assert_eq!(text.lines().count(), source.lines().count());
    }

    fn stripped_rust(source: &str) -> String {
        stripped_by(strip_rust_into, source)
    }

    #[test]
    fn rust_comments_nest_and_literals_keep_what_looks_like_comments() {
        assert_eq!(
            stripped_rust("/// Docs.\n//! Inner.\nfn a() {} /* one /* two */ still */ fn b() {}\n"),
            "\n\nfn a() {}   fn b() {}\n"
        );
        assert_eq!(
            stripped_rust("fn a<'a>(x: &'a str) {\n    let c = '\"'; // c\n}"),
            "fn a<'a>(x: &'a str) {\nlet c = '\"'; \n}"
        );
        for source in [
            "let url = \"https://example.com/*\"; // c",
            "let url = \"multi\n  line // not a comment\"; // c",
            "let raw = r#\"a \" // b\"#; // c",
            "let raw = br##\"a \"# /* b\"##; // c",
            "let quote = '\\''; let slash = b'/'; // c",
            "let r#type = r\"/*\"; // c",
            "let emoji = '\u{1F600}'; let label = 'outer: loop {}; // c",
        ] {
            let (code, _comment) = source.rsplit_once(" // c").expect("a trailing comment");
            assert_eq!(stripped_rust(source), format!("{code} "), "{source:?}");
        }
    }

    #[test]
    fn a_source_without_comments_or_indentation_is_not_copied() {
        let mut into = Stripped::default();
        assert!(!strip_into(b"const a = `/${b}/` / 2", &mut into));
        assert!(into.text.is_empty());
    }
}
