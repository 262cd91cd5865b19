//! The one place where a path inside a project is checked. Every path that reaches the database
//! went through [`normalize`]: relative, `/`-separated, no `.` or `..` segment, no empty segment,
//! no NUL or other control character, no bidirectional control character (a right-to-left
//! override makes `evil\u{202e}txt.exe` read as `evilexe.txt`), bounded length and depth.

use crate::Error;

/// Longest path, in bytes of UTF-8.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest single file or folder name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 255;
/// Deepest nesting of folders.
pub const MAX_DEPTH: usize = 48;

/// The bidirectional control characters: they change the order in which the rest of a name is
/// shown (a right-to-left override makes `photo\u{202e}gpj.exe` look like `photoexe.jpg`), so a
/// name could read differently from what it is. Arabic letter mark, left-to-right and
/// right-to-left marks, the embeddings and overrides, and the isolates.
const BIDIRECTIONAL_CONTROLS: &[char] = &[
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// The normalised form of `input`, or an error that names the path and says what is wrong.
/// Backslashes count as separators (archives made on Windows use them); `a//b` and `./a` are
/// tidied to `a/b` and `a`.
pub fn normalize(input: &str) -> Result<String, Error> {
    let refuse = |reason: &str| Error::Invalid(format!("{}: {reason}", shown(input)));
    if input.trim().is_empty() {
        return Err(Error::Invalid("A path is required.".into()));
    }
    if input.contains('\0') {
        return Err(refuse("a path cannot contain a NUL character"));
    }
    if input.chars().any(char::is_control) {
        return Err(refuse("a path cannot contain control characters"));
    }
    if input.contains(BIDIRECTIONAL_CONTROLS) {
        return Err(refuse(
            "a file or folder name cannot contain right-to-left overrides or other bidirectional \
             control characters",
        ));
    }
    let unified = input.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(refuse(
            "the path must be relative to the project, not absolute",
        ));
    }
    let bytes = unified.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err(refuse(
            "the path must be relative to the project, not a drive path",
        ));
    }
    let mut segments = Vec::new();
    for segment in unified.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return Err(refuse("a path cannot contain '..'")),
            name if name.len() > MAX_NAME_BYTES => {
                return Err(refuse(&format!(
                    "a file or folder name is limited to {MAX_NAME_BYTES} bytes"
                )));
            }
            name if name.trim() != name => {
                return Err(refuse(
                    "a file or folder name cannot start or end with a space",
                ));
            }
            name => segments.push(name),
        }
    }
    if segments.is_empty() {
        return Err(refuse("the path names no file or folder"));
    }
    if segments.len() > MAX_DEPTH {
        return Err(refuse(&format!(
            "folders can be nested at most {MAX_DEPTH} deep"
        )));
    }
    let normalized = segments.join("/");
    if normalized.len() > MAX_PATH_BYTES {
        return Err(refuse(&format!(
            "a path is limited to {MAX_PATH_BYTES} bytes"
        )));
    }
    Ok(normalized)
}

/// The path as shown in a message: quoted, shortened, control characters escaped.
fn shown(path: &str) -> String {
    let escaped: String = path
        .chars()
        .flat_map(char::escape_debug)
        .take(120)
        .collect();
    format!("\"{escaped}\"")
}

/// The editor language of a file, from its name (Monaco's language ids).
pub fn language_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lowered = name.to_ascii_lowercase();
    match lowered.as_str() {
        "dockerfile" => return Some("dockerfile"),
        "makefile" => return Some("makefile"),
        "cargo.lock" => return Some("toml"),
        _ => {}
    }
    let extension = lowered.rsplit_once('.')?.1;
    Some(match extension {
        "rs" => "rust",
        "ts" | "mts" | "cts" | "tsx" => "typescript",
        "js" | "mjs" | "cjs" | "jsx" => "javascript",
        "py" | "pyi" => "python",
        "go" => "go",
        "java" => "java",
        "kt" | "kts" => "kotlin",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "cpp",
        "cs" => "csharp",
        "rb" => "ruby",
        "php" => "php",
        "swift" => "swift",
        "scala" => "scala",
        "sh" | "bash" | "zsh" => "shell",
        "ps1" => "powershell",
        "sql" => "sql",
        "html" | "htm" => "html",
        "css" => "css",
        "scss" => "scss",
        "less" => "less",
        "json" | "jsonc" => "json",
        "yaml" | "yml" => "yaml",
        "toml" => "toml",
        "xml" | "svg" => "xml",
        "md" | "markdown" => "markdown",
        "lua" => "lua",
        "r" => "r",
        "dart" => "dart",
        "ex" | "exs" => "elixir",
        "graphql" | "gql" => "graphql",
        "proto" => "proto",
        "ini" | "cfg" => "ini",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_paths_are_normalised() {
        for (input, expected) in [
            ("src/main.rs", "src/main.rs"),
            ("./src//lib.rs", "src/lib.rs"),
            ("src\\windows\\file.txt", "src/windows/file.txt"),
            ("docs/", "docs"),
            ("naïve/ünïcode.md", "naïve/ünïcode.md"),
            ("a/.hidden", "a/.hidden"),
        ] {
            assert_eq!(normalize(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn bad_paths_are_refused_with_a_message_naming_them() {
        for (input, reason) in [
            ("", "required"),
            ("   ", "required"),
            ("/etc/passwd", "absolute"),
            ("\\\\server\\share", "absolute"),
            ("C:/Windows", "drive"),
            ("../outside", ".."),
            ("a/../../b", ".."),
            ("a\0b", "NUL"),
            ("a\nb", "control"),
            (".", "names no file"),
            ("./", "names no file"),
            (" leading", "space"),
            ("evil\u{202E}txt.exe", "bidirectional"),
            ("src/\u{202D}main.rs", "bidirectional"),
            ("a\u{202A}b", "bidirectional"),
            ("a\u{202B}b", "bidirectional"),
            ("a\u{202C}b", "bidirectional"),
            ("dir\u{2066}/x", "bidirectional"),
            ("a\u{2067}b", "bidirectional"),
            ("a\u{2068}b", "bidirectional"),
            ("a\u{2069}b", "bidirectional"),
            ("a\u{200E}b", "bidirectional"),
            ("a\u{200F}b", "bidirectional"),
            ("a\u{061C}b", "bidirectional"),
        ] {
            let message = normalize(input).unwrap_err().to_string();
            assert!(message.contains(reason), "{input:?}: {message}");
        }
        let long_name = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(normalize(&long_name).is_err());
        let long_path = vec!["abcdefghij"; 100].join("/");
        assert!(normalize(&long_path).is_err());
        let message = normalize("../secret").unwrap_err().to_string();
        assert!(message.contains("\"../secret\""), "{message}");
    }

    #[test]
    fn a_refused_bidirectional_control_is_shown_escaped_never_raw() {
        let message = normalize("invoice\u{202E}fdp.exe").unwrap_err().to_string();
        assert!(!message.contains('\u{202E}'), "{message:?}");
        assert!(message.contains("\\u{202e}"), "{message}");
    }

    #[test]
    fn right_to_left_scripts_themselves_are_names() {
        for input in ["مستندات/ملف.txt", "תיקייה/קובץ.md", "docs/日本語.md"]
        {
            assert_eq!(normalize(input).unwrap(), input, "{input}");
        }
    }

    #[test]
    fn languages_follow_the_file_name() {
        assert_eq!(language_of("src/main.rs"), Some("rust"));
        assert_eq!(language_of("web/App.TSX"), Some("typescript"));
        assert_eq!(language_of("Dockerfile"), Some("dockerfile"));
        assert_eq!(language_of("notes"), None);
        assert_eq!(language_of("archive.unknown"), None);
    }
}
