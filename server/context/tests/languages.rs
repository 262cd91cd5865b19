//! Definitions and references found in small files of each language.

use context::Language;
use context::patterns::Split;
use context::tags::extract;

struct Case {
    path: &'static str,
    source: &'static str,
    definitions: &'static [(&'static str, &'static str)],
    references: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        path: "src/lib.rs",
        source: r#"
pub struct Parser { depth: usize }
pub enum Token { Word, Number }
pub trait Visit { fn visit(&self); }
impl Parser {
    pub fn parse_item(&mut self) -> Token { tokenize_input("x"); Token::Word }
}
fn tokenize_input(text: &str) -> usize { ensure!(); helpers::count_words(text) }
macro_rules! ensure { () => {} }
"#,
        definitions: &[
            ("Parser", "class"),
            ("Token", "class"),
            ("Visit", "interface"),
            ("parse_item", "method"),
            ("tokenize_input", "function"),
            ("ensure", "macro"),
        ],
        references: &["tokenize_input", "Parser", "ensure"],
    },
    Case {
        path: "app/models.py",
        source: r#"
MAX_USERS = 10

class Account:
    def deposit(self, amount):
        return validate_amount(amount)

def validate_amount(amount):
    return check(amount) and helpers.round_cents(amount)
"#,
        definitions: &[
            ("MAX_USERS", "constant"),
            ("Account", "class"),
            ("deposit", "function"),
            ("validate_amount", "function"),
        ],
        references: &["validate_amount", "check", "round_cents"],
    },
    Case {
        path: "web/cart.ts",
        source: r#"
interface CartItem { sku: string }
export class Cart {
  total(items: CartItem[]): number { return sumPrices(items); }
}
export function sumPrices(items: CartItem[]): number { return format(items.length); }
type Discount = { percent: number };
export function firstItem(item: CartItem): CartItem { return item; }
const cart = new Cart();
"#,
        definitions: &[
            ("CartItem", "interface"),
            ("Cart", "class"),
            ("total", "method"),
            ("sumPrices", "function"),
            ("Discount", "type"),
        ],
        // Uses in TypeScript are types (as in Aider's TypeScript tags), not calls.
        references: &["CartItem", "Cart"],
    },
    Case {
        path: "web/view.tsx",
        source: r#"
export function Badge(props: { label: Label }) { return <span>{renderLabel(props.label)}</span>; }
function renderLabel(label: Label) { return label.text; }
"#,
        definitions: &[("Badge", "function"), ("renderLabel", "function")],
        references: &["Label"],
    },
    Case {
        path: "web/util.js",
        source: r#"
class Queue { push(item) { this.items.push(item); } }
function drain(queue) { return queue.flushAll(); }
const later = function () { setTimeout(drain, 10); };
"#,
        definitions: &[
            ("Queue", "class"),
            ("push", "method"),
            ("drain", "function"),
            ("later", "function"),
        ],
        references: &["flushAll", "setTimeout"],
    },
    Case {
        path: "cmd/server.go",
        source: r#"
package main

type Server struct { port int }

func (s *Server) Start() error { return listenOn(s.port) }

func listenOn(port int) error { return net.Listen("tcp", port) }
"#,
        definitions: &[
            ("Server", "type"),
            ("Start", "method"),
            ("listenOn", "function"),
        ],
        references: &["listenOn", "Listen"],
    },
    Case {
        path: "src/main/java/com/shop/Order.java",
        source: r#"
package com.shop;

public class Order implements Payable {
    public int total() { return Pricing.sum(lines); }
}

interface Payable { int total(); }
"#,
        definitions: &[
            ("Order", "class"),
            ("total", "method"),
            ("Payable", "interface"),
        ],
        references: &["sum", "Payable"],
    },
    Case {
        path: "src/list.c",
        source: r#"
struct node { int value; struct node *next; };
typedef struct node node_t;
int list_length(node_t *head) { return count_nodes(head); }
"#,
        definitions: &[
            ("node", "class"),
            ("node_t", "type"),
            ("list_length", "function"),
        ],
        references: &["count_nodes"],
    },
    Case {
        path: "src/shape.cpp",
        source: r#"
namespace geo {
class Shape { public: virtual double area() const = 0; };
}
double geo::total_area(const Shape& shape) { return shape.area() + helper_scale(2); }
"#,
        definitions: &[("Shape", "class"), ("total_area", "method")],
        references: &["helper_scale", "area"],
    },
];

#[test]
fn each_language_finds_its_definitions_and_references() {
    for case in CASES {
        let language = Language::of_path(case.path).unwrap_or_else(|| panic!("{}", case.path));
        let tags = extract(language, case.source).unwrap_or_else(|| panic!("{}", case.path));
        for (name, kind) in case.definitions {
            assert!(
                tags.definitions
                    .iter()
                    .any(|definition| definition.name == *name && definition.kind == *kind),
                "{}: definition {name} ({kind}) missing from {:?}",
                case.path,
                tags.definitions
                    .iter()
                    .map(|definition| (&definition.name, &definition.kind))
                    .collect::<Vec<_>>()
            );
        }
        for name in case.references {
            assert!(
                tags.references.iter().any(|(used, _)| used == name),
                "{}: reference {name} missing from {:?}",
                case.path,
                tags.references
            );
        }
    }
}

#[test]
fn a_definition_keeps_its_line_and_signature() {
    let tags = extract(
        Language::Rust,
        "// header\n\npub fn answer(question: &str) -> u32 {\n    42\n}\n",
    )
    .unwrap_or_default();
    let answer = &tags.definitions[0];
    assert_eq!(answer.name, "answer");
    assert_eq!(answer.line, 2);
    assert_eq!(answer.signature, "pub fn answer(question: &str) -> u32 {");
}

/// TypeScript the grammar needs help with (see `context::typescript`): without it, error recovery
/// swallows these definitions.
#[test]
fn modern_typescript_keeps_its_definitions_and_signatures() {
    let source = r#"
export type * from "./Schedule.ts"
export interface Effect<out A, out E = never, in R = never> extends Pipeable {
  readonly value: A
}
export const clamp: {
  <Min extends Bound, Max extends Bound>(
    options: { readonly minimum: Min; readonly maximum: Max }
  ): <A extends Bound>(self: A) => A | Min | Max
  <A extends Bound, Min extends Bound, Max extends Bound>(
    self: A,
    options: { readonly minimum: Min; readonly maximum: Max }
  ): A | Min | Max
} = makeClamp(order)
export function makeClamp(order: Order): Clamp { return order }
export class Scheduler<in out T> { run(task: T): Fiber<T> { return runTask(task) } }
"#;
    let tags = extract(Language::TypeScript, source).unwrap_or_default();
    let found: Vec<(&str, &str, u32, &str)> = tags
        .definitions
        .iter()
        .map(|definition| {
            (
                definition.name.as_str(),
                definition.kind.as_str(),
                definition.line,
                definition.signature.as_str(),
            )
        })
        .collect();
    for expected in [
        (
            "Effect",
            "interface",
            2,
            "export interface Effect<out A, out E = never, in R = never> extends Pipeable {",
        ),
        (
            "makeClamp",
            "function",
            14,
            "export function makeClamp(order: Order): Clamp { return order }",
        ),
        (
            "Scheduler",
            "class",
            15,
            "export class Scheduler<in out T> { run(task: T): Fiber<T> { return runTask(task) } }",
        ),
        (
            "run",
            "method",
            15,
            "export class Scheduler<in out T> { run(task: T): Fiber<T> { return runTask(task) } }",
        ),
    ] {
        assert!(
            found.contains(&expected),
            "{expected:?} missing from {found:?}"
        );
    }
    for name in ["Order", "Clamp", "Min"] {
        assert!(
            tags.references.iter().any(|(used, _)| used == name),
            "reference {name} missing from {:?}",
            tags.references
        );
    }
}

/// Definitions as (name, kind, line, signature).
fn definitions_of(language: Language, source: &str) -> Vec<(String, String, u32, String)> {
    extract(language, source)
        .unwrap_or_default()
        .definitions
        .into_iter()
        .map(|definition| {
            (
                definition.name,
                definition.kind,
                definition.line,
                definition.signature,
            )
        })
        .collect()
}

fn definition(name: &str, kind: &str, line: u32, signature: &str) -> (String, String, u32, String) {
    (name.to_owned(), kind.to_owned(), line, signature.to_owned())
}

#[test]
fn comments_left_out_of_the_parse_change_no_line_or_signature() {
    // Comments in every place, and what only looks like one: in strings, templates and
    // regular expressions.
    let typescript = r#"/**
 * A clock. `// not a comment` in the docs
 */
export interface Clock { /* one */ readonly now: number } // trailing
const pattern = /\/*[/*]\//g /* after a regular expression */
const url = "https://example.com/*" + `// ${ "/*" } */`
/** Starts. */ export function start(clock: Clock /* the clock */): Timer { return run(clock) }
export class Timer {
  // A field.
  elapsed(): Duration { return measure(this) } /* the end
  of the class */ }
"#;
    let found = definitions_of(Language::TypeScript, typescript);
    assert_eq!(
        found,
        vec![
            definition(
                "Clock",
                "interface",
                3,
                "export interface Clock { /* one */ readonly now: number } // trailing"
            ),
            definition(
                "start",
                "function",
                6,
                "/** Starts. */ export function start(clock: Clock /* the clock */): Timer { return run(clock) }"
            ),
            definition("Timer", "class", 7, "export class Timer {"),
            definition(
                "elapsed",
                "method",
                9,
                "elapsed(): Duration { return measure(this) } /* the end"
            ),
        ]
    );
    let tags = extract(Language::TypeScript, typescript).unwrap_or_default();
    for name in ["Clock", "Timer", "Duration"] {
        assert!(
            tags.references.iter().any(|(used, _)| used == name),
            "reference {name} missing from {:?}",
            tags.references
        );
    }
    // Rust: doc comments, nested block comments, raw strings and character literals.
    let rust = r##"//! A crate.
/// A clock. /* not closed here
pub struct Clock { now: u64 } // trailing
/* outer /* inner */ still a comment */ pub fn start<'a>(clock: &'a Clock /* the clock */) -> Timer { run(clock, '"', r#"// "#) }
impl Timer {
    /// Elapsed.
    fn elapsed(&self) -> u64 { measure(self) } /* the end
    of the impl */ }
"##;
    let found = definitions_of(Language::Rust, rust);
    let names: Vec<(&str, u32, &str)> = found
        .iter()
        .map(|(name, _, line, signature)| (name.as_str(), *line, signature.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("Clock", 2, "pub struct Clock { now: u64 } // trailing"),
            (
                "start",
                3,
                "/* outer /* inner */ still a comment */ pub fn start<'a>(clock: &'a Clock /* the clock */) -> Timer { run(clock, '\"', r#\"// \"#) }"
            ),
            (
                "elapsed",
                6,
                "fn elapsed(&self) -> u64 { measure(self) } /* the end"
            ),
        ],
        "{found:?}"
    );
    let tags = extract(Language::Rust, rust).unwrap_or_default();
    for name in ["run", "measure"] {
        assert!(
            tags.references.iter().any(|(used, _)| used == name),
            "reference {name} missing from {:?}",
            tags.references
        );
    }
    // JavaScript: a regular expression after `return`, a division after `)`.
    let javascript = "function ratio(a, b) { return (a) / b // half\n}\n/* gone */ function words(text) { return text.split(/\\/+/) }\n";
    let found = definitions_of(Language::JavaScript, javascript);
    let names: Vec<&str> = found.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(names, ["ratio", "words"], "{found:?}");
    assert_eq!(found[1].2, 2);
    // TSX: `//` in JSX text is text; the definitions after it are still found.
    let tsx = "export function Link() {\n  return <a href=\"x\">see http://example.com</a>\n}\n/** Docs. */\nexport function After(): Element { return <p /> }\n";
    let found = definitions_of(Language::Tsx, tsx);
    assert_eq!(
        found,
        vec![
            definition("Link", "function", 0, "export function Link() {"),
            definition(
                "After",
                "function",
                4,
                "export function After(): Element { return <p /> }"
            ),
        ]
    );
}

#[test]
fn references_are_counted() {
    let tags = extract(Language::Python, "a()\na()\nb()\n").unwrap_or_default();
    assert_eq!(
        tags.references,
        vec![("a".to_owned(), 2), ("b".to_owned(), 1)]
    );
}

#[test]
fn broken_source_still_yields_what_parses() {
    let tags = extract(Language::Rust, "fn good() {}\nfn broken( {\n").unwrap_or_default();
    assert!(
        tags.definitions
            .iter()
            .any(|definition| definition.name == "good")
    );
}

/// Every file of this repository in a language the index knows, with its language.
fn repository_sources() -> Vec<(std::path::PathBuf, Language)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut found = Vec::new();
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.')
                    && !["target", "node_modules", "test-results"].contains(&name.as_str())
                {
                    folders.push(path);
                }
            } else if let Some(language) = Language::of_path(&name) {
                found.push((path, language));
            }
        }
    }
    found
}

#[test]
fn the_walk_finds_what_the_query_engine_finds() {
    let mut sources: Vec<(String, Language, String)> = CASES
        .iter()
        .filter_map(|case| {
            Some((
                case.path.to_owned(),
                Language::of_path(case.path)?,
                case.source.to_owned(),
            ))
        })
        .collect();
    for (path, language) in repository_sources() {
        // Files the index leaves out (minified bundles, generated code) are never parsed.
        if let Ok(text) = std::fs::read_to_string(&path)
            && context::exclude::by_content(text.as_bytes()).is_none()
        {
            sources.push((path.display().to_string(), language, text));
        }
    }
    let languages: std::collections::HashSet<Language> =
        sources.iter().map(|(_, language, _)| *language).collect();
    assert_eq!(
        languages.len(),
        Language::ALL.len(),
        "a language has no source to check"
    );
    assert!(sources.len() > 100, "only {} sources found", sources.len());
    let split = |language: Language, split: Split| {
        language
            .tags_query_split(split)
            .unwrap_or_else(|| panic!("{language:?}"))
    };
    for (path, language, text) in &sources {
        let engine = split(*language, Split::Never);
        let expected = context::tags::extract_with(*language, &engine, text);
        // In every language, with the walk taking every simple pattern it can.
        let walked = split(*language, Split::EverySimplePattern);
        assert_eq!(
            context::tags::extract_with(*language, &walked, text),
            expected,
            "{path}"
        );
        // And as the index runs it.
        let used = language
            .tags_query()
            .unwrap_or_else(|| panic!("{language:?}"));
        assert_eq!(
            context::tags::extract_with(*language, used, text),
            expected,
            "{path}"
        );
    }
}

#[test]
fn typescript_tags_need_no_query_engine() {
    // Its tags patterns are all of the simple kind, so a file is walked once after parsing.
    for language in [Language::TypeScript, Language::Tsx] {
        let tags = language
            .tags_query()
            .unwrap_or_else(|| panic!("{language:?}"));
        assert!(!tags.query_needed(), "{language:?}");
    }
    // Rust's has nested patterns: the engine runs them all, without a second walk beside it.
    let rust = Language::Rust
        .tags_query()
        .unwrap_or_else(|| panic!("rust"));
    assert!(rust.query_needed());
    assert!(!rust.walks());
}
