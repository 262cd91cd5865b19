//! The patch format models know (`*** Begin Patch` … `*** End Patch`): files added, updated
//! (hunks of context, `-` and `+` lines after `@@`, optionally moved) and deleted. Parsing and
//! applying are pure; the tool applies every file or none.

use crate::error::{Error, Result};

/// One file's operation in a patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchOperation {
    /// A new file with this content.
    Add {
        /// The file.
        path: String,
        /// Its content.
        content: String,
    },
    /// The file is deleted.
    Delete {
        /// The file.
        path: String,
    },
    /// The file's hunks are applied in order; it may be moved.
    Update {
        /// The file.
        path: String,
        /// Where it moves to, if it does.
        move_to: Option<String>,
        /// Its hunks.
        hunks: Vec<PatchHunk>,
    },
}

/// One `@@` hunk: the lines before and after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchHunk {
    /// The text after `@@`, a line to find before the hunk (a function's signature), if any.
    pub anchor: Option<String>,
    /// The lines the file has (context and removed lines).
    pub old_lines: Vec<String>,
    /// The lines it gets (context and added lines).
    pub new_lines: Vec<String>,
    /// The hunk ends at the end of the file.
    pub at_end_of_file: bool,
}

/// Parses a patch.
pub fn parse_patch(text: &str) -> Result<Vec<PatchOperation>> {
    let bad = |message: String| Error::Patch(message);
    let lines: Vec<&str> = text.trim().lines().collect();
    if lines.first().map(|line| line.trim()) != Some("*** Begin Patch") {
        return Err(bad(
            "a patch starts with the line \"*** Begin Patch\"".into()
        ));
    }
    if lines.last().map(|line| line.trim()) != Some("*** End Patch") {
        return Err(bad("a patch ends with the line \"*** End Patch\"".into()));
    }
    let body = &lines[1..lines.len() - 1];
    let mut operations = Vec::new();
    let mut index = 0;
    while index < body.len() {
        let line = body[index];
        if let Some(path) = line.strip_prefix("*** Add File: ") {
            index += 1;
            let mut content = String::new();
            while index < body.len() && !body[index].starts_with("*** ") {
                let Some(added) = body[index].strip_prefix('+') else {
                    return Err(bad(format!(
                        "line {}: every line of an added file starts with '+'",
                        index + 2
                    )));
                };
                content.push_str(added);
                content.push('\n');
                index += 1;
            }
            operations.push(PatchOperation::Add {
                path: path.trim().to_owned(),
                content,
            });
        } else if let Some(path) = line.strip_prefix("*** Delete File: ") {
            index += 1;
            operations.push(PatchOperation::Delete {
                path: path.trim().to_owned(),
            });
        } else if let Some(path) = line.strip_prefix("*** Update File: ") {
            index += 1;
            let mut move_to = None;
            if let Some(target) = body
                .get(index)
                .and_then(|line| line.strip_prefix("*** Move to: "))
            {
                move_to = Some(target.trim().to_owned());
                index += 1;
            }
            let mut hunks: Vec<PatchHunk> = Vec::new();
            let mut current: Option<PatchHunk> = None;
            while index < body.len() {
                let line = body[index];
                if line.trim() == "*** End of File" {
                    if let Some(hunk) = current.as_mut() {
                        hunk.at_end_of_file = true;
                    }
                    index += 1;
                    continue;
                }
                if line.starts_with("*** ") {
                    break;
                }
                if let Some(anchor) = line.strip_prefix("@@") {
                    if let Some(hunk) = current.take() {
                        hunks.push(hunk);
                    }
                    let anchor = anchor.trim();
                    current = Some(PatchHunk {
                        anchor: (!anchor.is_empty()).then(|| anchor.to_owned()),
                        ..PatchHunk::default()
                    });
                    index += 1;
                    continue;
                }
                let hunk = current.get_or_insert_with(PatchHunk::default);
                if let Some(removed) = line.strip_prefix('-') {
                    hunk.old_lines.push(removed.to_owned());
                } else if let Some(added) = line.strip_prefix('+') {
                    hunk.new_lines.push(added.to_owned());
                } else {
                    let context = line.strip_prefix(' ').unwrap_or(line);
                    hunk.old_lines.push(context.to_owned());
                    hunk.new_lines.push(context.to_owned());
                }
                index += 1;
            }
            if let Some(hunk) = current.take() {
                hunks.push(hunk);
            }
            if hunks.is_empty() && move_to.is_none() {
                return Err(bad(format!("the update of {} has no hunk", path.trim())));
            }
            operations.push(PatchOperation::Update {
                path: path.trim().to_owned(),
                move_to,
                hunks,
            });
        } else if line.trim().is_empty() {
            index += 1;
        } else {
            return Err(bad(format!(
                "line {}: expected \"*** Add File: \", \"*** Update File: \" or \"*** Delete File: \", found {line:?}",
                index + 2
            )));
        }
    }
    if operations.is_empty() {
        return Err(bad("the patch changes no file".into()));
    }
    Ok(operations)
}

fn find_lines(
    haystack: &[&str],
    needle: &[String],
    from: usize,
    normalise: fn(&str) -> &str,
) -> Option<usize> {
    if needle.is_empty() {
        return Some(from.min(haystack.len()));
    }
    if needle.len() > haystack.len() {
        return None;
    }
    (from..=haystack.len() - needle.len()).find(|&start| {
        needle
            .iter()
            .zip(&haystack[start..])
            .all(|(wanted, found)| normalise(wanted) == normalise(found))
    })
}

/// The file's content after the hunks, or why a hunk does not apply.
pub fn apply_hunks(path: &str, content: &str, hunks: &[PatchHunk]) -> Result<String> {
    let ends_with_newline = content.is_empty() || content.ends_with('\n');
    let lines: Vec<&str> = content.lines().collect();
    let mut result: Vec<String> = Vec::new();
    let mut position = 0;
    for (number, hunk) in hunks.iter().enumerate() {
        let mut search_from = position;
        if let Some(anchor) = &hunk.anchor {
            let anchor_line = [anchor.clone()];
            if let Some(found) = find_lines(&lines, &anchor_line, position, str::trim) {
                // The anchor line is context of this hunk only when the hunk repeats it.
                search_from = found;
            }
        }
        let start = if hunk.at_end_of_file {
            let start = lines.len().saturating_sub(hunk.old_lines.len());
            find_lines(&lines, &hunk.old_lines, start, |line| line)
                .or_else(|| find_lines(&lines, &hunk.old_lines, start, str::trim))
        } else {
            find_lines(&lines, &hunk.old_lines, search_from, |line| line)
                .or_else(|| find_lines(&lines, &hunk.old_lines, search_from, str::trim_end))
                .or_else(|| find_lines(&lines, &hunk.old_lines, search_from, str::trim))
        };
        let Some(start) = start else {
            return Err(Error::Patch(format!(
                "hunk {} of {path} does not match the file: these lines were not found in order after the previous hunk:\n{}",
                number + 1,
                hunk.old_lines.join("\n")
            )));
        };
        result.extend(lines[position..start].iter().map(|line| (*line).to_owned()));
        result.extend(hunk.new_lines.iter().cloned());
        position = start + hunk.old_lines.len();
    }
    result.extend(lines[position..].iter().map(|line| (*line).to_owned()));
    let mut text = result.join("\n");
    if ends_with_newline && !text.is_empty() {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn parses_and_applies_a_multi_file_patch() {
        let patch = "*** Begin Patch\n*** Add File: new.txt\n+hello\n*** Update File: src/lib.rs\n@@ fn one()\n fn one() {\n-    1\n+    2\n }\n*** Delete File: old.txt\n*** End Patch\n";
        let operations = parse_patch(patch).unwrap();
        assert_eq!(operations.len(), 3);
        let PatchOperation::Update { hunks, .. } = &operations[1] else {
            panic!("{operations:?}")
        };
        let updated = apply_hunks(
            "src/lib.rs",
            "fn zero() {\n    0\n}\nfn one() {\n    1\n}\n",
            hunks,
        )
        .unwrap();
        assert_eq!(updated, "fn zero() {\n    0\n}\nfn one() {\n    2\n}\n");
    }

    #[test]
    fn a_hunk_that_does_not_match_is_an_error() {
        let hunks = vec![PatchHunk {
            old_lines: vec!["absent".into()],
            new_lines: vec!["x".into()],
            ..PatchHunk::default()
        }];
        assert!(matches!(
            apply_hunks("a", "present\n", &hunks),
            Err(Error::Patch(_))
        ));
        assert!(parse_patch("no header").is_err());
    }
}
