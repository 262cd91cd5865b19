//! A project's named commands: what is saved, checked on the way in, and the defaults suggested
//! from its files (shown to the user, never run until someone asks).

use serde::Deserialize;

use crate::Error;

/// The name of the command that runs before the others, when set.
pub const SETUP: &str = "setup";

/// Longest command name, in characters.
const MAX_NAME_CHARACTERS: usize = 32;

/// Longest command line, in bytes.
const MAX_COMMAND_LINE_BYTES: usize = 4096;

/// A command suggested from the project's files, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuggestedCommand {
    pub name: String,
    pub command_line: String,
    /// The file it was found in (`Cargo.toml`, `package.json`, …).
    pub source: String,
}

/// Checks a command's name: 1 to 32 of `a-z`, `0-9`, `-`, `_`, starting with a letter.
pub fn check_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARACTERS
        && name.starts_with(|character: char| character.is_ascii_lowercase())
        && name.chars().all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || character == '-'
                || character == '_'
        });
    if valid {
        Ok(name.to_owned())
    } else {
        Err(Error::Invalid(
            "A command's name is 1 to 32 lowercase letters, digits, - or _, starting with a letter."
                .to_owned(),
        ))
    }
}

/// Checks a command line: not empty, one line, at most 4 KiB, no NUL or other control
/// characters but tabs.
pub fn check_command_line(command_line: &str) -> Result<String, Error> {
    let command_line = command_line.trim();
    if command_line.is_empty() {
        return Err(Error::Invalid("The command is empty.".to_owned()));
    }
    if command_line.len() > MAX_COMMAND_LINE_BYTES {
        return Err(Error::Invalid(format!(
            "A command is at most {MAX_COMMAND_LINE_BYTES} bytes."
        )));
    }
    if command_line
        .chars()
        .any(|character| character.is_control() && character != '\t')
    {
        return Err(Error::Invalid(
            "A command is one line without control characters (join steps with && or ;)."
                .to_owned(),
        ));
    }
    Ok(command_line.to_owned())
}

#[derive(Deserialize)]
struct PackageJson {
    #[serde(default)]
    scripts: std::collections::BTreeMap<String, String>,
}

/// The commands the project's files suggest, in order of preference per name (the first
/// suggestion of a name wins). `paths` are the project's files; `read` gives a root manifest's
/// text (`package.json`, `pyproject.toml`) when it is asked for.
pub fn suggest(paths: &[String], read: &dyn Fn(&str) -> Option<String>) -> Vec<SuggestedCommand> {
    let has = |path: &str| paths.iter().any(|candidate| candidate == path);
    let mut suggestions: Vec<SuggestedCommand> = Vec::new();
    let mut add = |name: &str, command_line: &str, source: &str| {
        if !suggestions.iter().any(|existing| existing.name == name) {
            suggestions.push(SuggestedCommand {
                name: name.to_owned(),
                command_line: command_line.to_owned(),
                source: source.to_owned(),
            });
        }
    };
    if has("Cargo.toml") {
        add("test", "cargo test", "Cargo.toml");
        add("lint", "cargo clippy -- -D warnings", "Cargo.toml");
        add("build", "cargo build", "Cargo.toml");
    }
    if has("package.json")
        && let Some(text) = read("package.json")
        && let Ok(package) = serde_json::from_str::<PackageJson>(&text)
    {
        let runner = if has("pnpm-lock.yaml") {
            "pnpm"
        } else if has("yarn.lock") {
            "yarn"
        } else {
            "npm"
        };
        for (name, script) in [("test", "test"), ("lint", "lint"), ("build", "build")] {
            if package.scripts.contains_key(script) {
                let command_line = if runner == "npm" && script != "test" {
                    format!("npm run {script}")
                } else {
                    format!("{runner} {script}")
                };
                add(name, &command_line, "package.json");
            }
        }
        if has("package-lock.json") {
            add(SETUP, "npm ci", "package-lock.json");
        }
    }
    let pyproject = has("pyproject.toml")
        .then(|| read("pyproject.toml"))
        .flatten()
        .unwrap_or_default();
    let python_tests = pyproject.contains("pytest")
        || has("pytest.ini")
        || has("conftest.py")
        || paths.iter().any(|path| {
            let name = path.rsplit('/').next().unwrap_or(path);
            name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
        });
    if python_tests {
        add(
            "test",
            "python3 -m pytest",
            if pyproject.contains("pytest") {
                "pyproject.toml"
            } else {
                "test files"
            },
        );
    }
    if pyproject.contains("ruff") {
        add("lint", "ruff check .", "pyproject.toml");
    }
    if has("go.mod") {
        add("test", "go test ./...", "go.mod");
        add("lint", "go vet ./...", "go.mod");
        add("build", "go build ./...", "go.mod");
    }
    if has("Makefile") {
        add("build", "make", "Makefile");
    }
    suggestions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|path| (*path).to_owned()).collect()
    }

    #[test]
    fn names_and_command_lines_are_checked() {
        assert_eq!(check_name(" test ").unwrap(), "test");
        assert_eq!(check_name("e2e-fast_1").unwrap(), "e2e-fast_1");
        for wrong in ["", "Test", "1st", "a b", "rm;", &"a".repeat(33)] {
            assert!(check_name(wrong).is_err(), "{wrong:?}");
        }
        assert_eq!(
            check_command_line("  cargo test --all  ").unwrap(),
            "cargo test --all"
        );
        for wrong in ["", "   ", "a\nb", "a\0b", &"x".repeat(4097)] {
            assert!(check_command_line(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn defaults_come_from_the_files() {
        let none = |_: &str| None;
        let rust = suggest(&paths(&["Cargo.toml", "src/main.rs"]), &none);
        assert_eq!(rust[0].name, "test");
        assert_eq!(rust[0].command_line, "cargo test");
        assert_eq!(rust[0].source, "Cargo.toml");

        let go = suggest(&paths(&["go.mod", "main.go"]), &none);
        assert_eq!(go[0].command_line, "go test ./...");

        let node_files = paths(&["package.json", "package-lock.json", "index.js"]);
        let node = suggest(&node_files, &|path| {
            (path == "package.json")
                .then(|| r#"{"scripts": {"test": "vitest", "build": "vite build"}}"#.to_owned())
        });
        let find = |list: &[SuggestedCommand], name: &str| {
            list.iter()
                .find(|command| command.name == name)
                .map(|command| command.command_line.clone())
        };
        assert_eq!(find(&node, "test").as_deref(), Some("npm test"));
        assert_eq!(find(&node, "build").as_deref(), Some("npm run build"));
        assert_eq!(find(&node, "lint"), None, "no lint script, no lint command");
        assert_eq!(find(&node, SETUP).as_deref(), Some("npm ci"));

        let python = suggest(&paths(&["pyproject.toml", "app.py"]), &|_| {
            Some("[tool.pytest.ini_options]\n".to_owned())
        });
        assert_eq!(find(&python, "test").as_deref(), Some("python3 -m pytest"));
        let bare_python = suggest(&paths(&["calc.py", "tests/test_calc.py"]), &none);
        assert_eq!(
            find(&bare_python, "test").as_deref(),
            Some("python3 -m pytest")
        );

        assert!(suggest(&paths(&["README.md"]), &none).is_empty());
    }
}
