//! Files changed together, learned from a project's own history: the ranking's co-change input
//! ("changed together 7 times").
//!
//! A project keeps every save and agent edit as a revision, but no commits. Changes are grouped
//! into sessions instead: one author's changes, each within [`SESSION_GAP`] of the one before
//! (an agent's edits for one request, a user fixing a bug across three files). A session counts
//! once, however often each file in it was saved; sessions of one file say nothing, and sessions
//! of more than [`MAX_SESSION_FILES`] files (a search and replace, a formatter over the tree) say
//! too little, so both are left out.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use db::ChangeEntry;
use db::ids::UserId;

/// The longest pause within one session of changes.
pub const SESSION_GAP: Duration = Duration::minutes(20);
/// Sessions changing more files than this are left out.
pub const MAX_SESSION_FILES: usize = 40;
/// Most files given to the ranking.
pub const MAX_CO_CHANGED: usize = 50;

/// The project's changes grouped into sessions (each its distinct paths), oldest first.
pub fn sessions(history: &[ChangeEntry]) -> Vec<BTreeSet<&str>> {
    let mut changes: Vec<&ChangeEntry> = history.iter().collect();
    changes.sort_by_key(|change| change.created_at);
    let mut open: HashMap<Option<UserId>, (usize, DateTime<Utc>)> = HashMap::new();
    let mut groups: Vec<BTreeSet<&str>> = Vec::new();
    for change in changes {
        let continued = open
            .get(&change.author)
            .filter(|(_, last)| change.created_at - *last <= SESSION_GAP)
            .map(|(group, _)| *group);
        let group = match continued {
            Some(group) => group,
            None => {
                groups.push(BTreeSet::new());
                groups.len() - 1
            }
        };
        if let Some(paths) = groups.get_mut(group) {
            paths.insert(change.path.as_str());
        }
        open.insert(change.author, (group, change.created_at));
    }
    groups
}

/// The files changed together with `current`, with how many sessions changed both, most first
/// (ties by path), at most [`MAX_CO_CHANGED`].
pub fn changed_together(history: &[ChangeEntry], current: &str) -> Vec<(String, u32)> {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for session in sessions(history) {
        if session.len() < 2 || session.len() > MAX_SESSION_FILES || !session.contains(current) {
            continue;
        }
        for path in session {
            if path != current {
                *counts.entry(path).or_default() += 1;
            }
        }
    }
    let mut together: Vec<(String, u32)> = counts
        .into_iter()
        .map(|(path, count)| (path.to_owned(), count))
        .collect();
    together.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    together.truncate(MAX_CO_CHANGED);
    together
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// A change by author `who` (the `who`th of a few fixed users, 0 for none) `minute` minutes
    /// after a fixed start.
    fn change(path: &str, who: usize, minute: i64) -> ChangeEntry {
        static AUTHORS: std::sync::OnceLock<[UserId; 3]> = std::sync::OnceLock::new();
        let authors = AUTHORS.get_or_init(|| [UserId::new(), UserId::new(), UserId::new()]);
        let start = DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        ChangeEntry {
            path: path.to_owned(),
            author: (who != 0).then(|| authors[who]),
            created_at: start + Duration::minutes(minute),
        }
    }

    struct Case {
        name: &'static str,
        history: Vec<ChangeEntry>,
        current: &'static str,
        expected: Vec<(&'static str, u32)>,
    }

    #[test]
    fn files_changed_together_are_counted_by_session() {
        let many: Vec<ChangeEntry> = (0..=MAX_SESSION_FILES)
            .map(|number| change(&format!("src/file_{number}.rs"), 1, 0))
            .chain([change("src/lib.rs", 1, 0)])
            .collect();
        let cases = [
            Case {
                name: "two sessions with the same pair count twice",
                history: vec![
                    change("src/parse.rs", 1, 0),
                    change("src/lexer.rs", 1, 5),
                    change("src/parse.rs", 1, 120),
                    change("src/lexer.rs", 1, 130),
                    change("src/lexer.rs", 1, 131),
                ],
                current: "src/parse.rs",
                expected: vec![("src/lexer.rs", 2)],
            },
            Case {
                name: "a pause longer than the gap starts a new session",
                history: vec![change("src/parse.rs", 1, 0), change("src/lexer.rs", 1, 21)],
                current: "src/parse.rs",
                expected: vec![],
            },
            Case {
                name: "a session goes on while each change follows the last within the gap",
                history: vec![
                    change("src/parse.rs", 1, 0),
                    change("src/ast.rs", 1, 15),
                    change("src/lexer.rs", 1, 30),
                ],
                current: "src/parse.rs",
                expected: vec![("src/ast.rs", 1), ("src/lexer.rs", 1)],
            },
            Case {
                name: "two authors at once are two sessions",
                history: vec![change("src/parse.rs", 1, 0), change("src/lexer.rs", 2, 1)],
                current: "src/parse.rs",
                expected: vec![],
            },
            Case {
                name: "changes with no author group among themselves",
                history: vec![change("src/parse.rs", 0, 0), change("src/lexer.rs", 0, 1)],
                current: "src/parse.rs",
                expected: vec![("src/lexer.rs", 1)],
            },
            Case {
                name: "a session changing too many files is left out",
                history: many,
                current: "src/lib.rs",
                expected: vec![],
            },
            Case {
                name: "order: most first, then by path; sessions without the current file ignored",
                history: vec![
                    change("b.py", 1, 0),
                    change("a.py", 1, 1),
                    change("main.py", 1, 2),
                    change("b.py", 1, 100),
                    change("main.py", 1, 101),
                    change("c.py", 1, 200),
                    change("d.py", 1, 201),
                ],
                current: "main.py",
                expected: vec![("b.py", 2), ("a.py", 1)],
            },
        ];
        for case in cases {
            let expected: Vec<(String, u32)> = case
                .expected
                .iter()
                .map(|(path, count)| ((*path).to_owned(), *count))
                .collect();
            assert_eq!(
                changed_together(&case.history, case.current),
                expected,
                "{}",
                case.name
            );
        }
    }
}
