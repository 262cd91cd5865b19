//! `file:line` references in errors, logs and test output, in the formats of common tools,
//! resolved to a project's files.

use std::sync::LazyLock;

use regex::Regex;

/// A place an output points at, as written there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    /// One-based.
    pub line: u32,
    pub column: Option<u32>,
    /// The tool whose format it was read in.
    pub format: &'static str,
}

struct Patterns {
    python: Regex,
    java_stack: Regex,
    maven: Regex,
    tsc: Regex,
    node_stack: Regex,
    go_stack: Regex,
    eslint_message: Regex,
    eslint_file: Regex,
    generic: Regex,
}

fn patterns() -> Result<Patterns, regex::Error> {
    Ok(Patterns {
        python: Regex::new(r#"File "([^"]+)", line (\d+)"#)?,
        java_stack: Regex::new(
            r"\bat ((?:[\w$]+\.)*)[\w$<>]+\(([\w$]+\.(?:java|kt|scala|groovy)):(\d+)\)",
        )?,
        maven: Regex::new(r"([^\s\[\]]+\.(?:java|kt)):\[(\d+),(\d+)\]")?,
        tsc: Regex::new(r"([^\s()]+\.(?:[cm]?[jt]sx?|vue|svelte))\((\d+),(\d+)\)")?,
        node_stack: Regex::new(
            r"\bat (?:[^()]*\()?(?:file://)?([^\s()]+?\.[cm]?[jt]sx?):(\d+):(\d+)\)?",
        )?,
        go_stack: Regex::new(r"^\s+(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?\s*$")?,
        eslint_message: Regex::new(r"^\s+(\d+):(\d+)\s+(?:error|warning)\b")?,
        eslint_file: Regex::new(r"^((?:[A-Za-z]:)?[^\s:]+\.(?:[cm]?[jt]sx?|vue|svelte))\s*$")?,
        generic: Regex::new(
            r"((?:[A-Za-z]:)?[\w./\\@+~-]*[\w-]\.[A-Za-z][A-Za-z0-9]{0,5}):(\d+)(?::(\d+))?",
        )?,
    })
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| match patterns() {
    Ok(patterns) => Some(patterns),
    Err(error) => {
        tracing::error!(%error, "a location pattern does not compile");
        None
    }
});

fn number(text: &str) -> Option<u32> {
    text.parse().ok().filter(|line| *line > 0)
}

fn generic_format(line: &str, path: &str) -> &'static str {
    if line.contains("-->") || line.contains("panicked at") || path.ends_with(".rs") {
        "rustc"
    } else if line.contains("error TS") {
        "tsc"
    } else if path.ends_with(".go") {
        "go"
    } else if path.ends_with(".py") {
        "pytest"
    } else if path.ends_with(".js")
        || path.ends_with(".ts")
        || path.ends_with(".tsx")
        || path.ends_with(".jsx")
    {
        "eslint"
    } else {
        "path:line"
    }
}

/// Every `file:line` reference in `output`, in order, each once.
pub fn locations(output: &str) -> Vec<Location> {
    let mut found: Vec<Location> = Vec::new();
    let Some(patterns) = PATTERNS.as_ref() else {
        return found;
    };
    let mut eslint_file: Option<String> = None;
    for line in output.lines() {
        let before = found.len();
        if let Some(captures) = patterns.python.captures(line) {
            push(
                &mut found,
                &captures[1],
                &captures[2],
                None,
                "python traceback",
            );
        } else if let Some(captures) = patterns.java_stack.captures(line) {
            // `at com.example.Foo.bar(Foo.java:10)`: the package names the folders.
            let qualifier = &captures[1];
            let parts: Vec<&str> = qualifier.trim_end_matches('.').split('.').collect();
            let package = if parts.len() > 1 {
                parts[..parts.len() - 1].join("/")
            } else {
                String::new()
            };
            let path = if package.is_empty() {
                captures[2].to_owned()
            } else {
                format!("{package}/{}", &captures[2])
            };
            push(&mut found, &path, &captures[3], None, "junit");
        } else if let Some(captures) = patterns.maven.captures(line) {
            push(
                &mut found,
                &captures[1],
                &captures[2],
                captures.get(3),
                "javac",
            );
        } else if let Some(captures) = patterns.tsc.captures(line) {
            push(
                &mut found,
                &captures[1],
                &captures[2],
                captures.get(3),
                "tsc",
            );
        } else if let Some(captures) = patterns.node_stack.captures(line) {
            push(
                &mut found,
                &captures[1],
                &captures[2],
                captures.get(3),
                "node",
            );
        } else if let Some(captures) = patterns.go_stack.captures(line) {
            push(&mut found, &captures[1], &captures[2], None, "go");
        } else if let Some(captures) = patterns.eslint_file.captures(line) {
            eslint_file = Some(captures[1].to_owned());
            continue;
        } else if let (Some(file), Some(captures)) =
            (&eslint_file, patterns.eslint_message.captures(line))
        {
            let file = file.clone();
            push(&mut found, &file, &captures[1], captures.get(2), "eslint");
            continue;
        } else {
            for captures in patterns.generic.captures_iter(line) {
                let path = captures[1].to_owned();
                let format = generic_format(line, &path);
                push(&mut found, &path, &captures[2], captures.get(3), format);
            }
        }
        if found.len() != before || !line.trim().is_empty() {
            eslint_file = None;
        }
    }
    found
}

fn push(
    found: &mut Vec<Location>,
    path: &str,
    line: &str,
    column: Option<regex::Match<'_>>,
    format: &'static str,
) {
    let Some(line) = number(line) else {
        return;
    };
    let location = Location {
        path: path.trim_start_matches("file://").to_owned(),
        line,
        column: column.and_then(|column| number(column.as_str())),
        format,
    };
    if !found
        .iter()
        .any(|seen| seen.path == location.path && seen.line == location.line)
    {
        found.push(location);
    }
}

/// The project file a written path means: the file whose path is the longest match of the
/// written path's last components (absolute paths, `./` and `\` are allowed); a bare file name
/// only when one file has it.
pub fn resolve<'a>(written: &str, files: &[&'a str]) -> Option<&'a str> {
    let normalized = written.replace('\\', "/");
    let parts: Vec<&str> = normalized
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let name = *parts.last()?;
    let mut best: Option<(&'a str, usize)> = None;
    let mut ties = 0;
    for file in files {
        let file_parts: Vec<&str> = file.split('/').collect();
        if file_parts.last() != Some(&name) {
            continue;
        }
        let matched = file_parts
            .iter()
            .rev()
            .zip(parts.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        match best {
            Some((_, best_matched)) if matched < best_matched => {}
            Some((_, best_matched)) if matched == best_matched => ties += 1,
            _ => {
                best = Some((file, matched));
                ties = 0;
            }
        }
    }
    let (file, matched) = best?;
    // A lone name shared by several files says nothing about which one.
    if ties > 0 && matched <= 1 {
        return None;
    }
    Some(file)
}

/// Lines `line - around ..= line + around` of `content`, numbered, as `(first line, text)`.
pub fn excerpt(content: &str, line: u32, around: u32) -> (u32, String) {
    let first = line.saturating_sub(around).max(1);
    let last = line.saturating_add(around);
    let mut text = String::new();
    for (number, text_line) in content.lines().enumerate() {
        let number = number as u32 + 1;
        if number < first {
            continue;
        }
        if number > last {
            break;
        }
        let marker = if number == line { '>' } else { ' ' };
        text.push_str(&format!("{marker}{number:>5} {text_line}\n"));
    }
    (first, text)
}
