//! The change set a task hands back: the difference between the base snapshot and the worktree
//! as file operations with hunks. Each hunk is accepted or rejected; the accepted ones are
//! applied onto the base, or merged in three ways onto a file that changed since the base, a
//! hunk that overlaps the other change being a conflict (and not applied).

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use similar::{Algorithm, DiffOp, capture_diff_slices};

use crate::error::Result;
use crate::workspace::Workspace;

/// What happens to a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOperation {
    /// A new file.
    Added,
    /// A changed file.
    Modified,
    /// A deleted file.
    Deleted,
}

/// One contiguous change of a file: base lines replaced by new lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    /// The base's lines it replaces (0-based, end excluded).
    pub base_range: Range<usize>,
    /// The worktree's lines in its place (0-based, end excluded).
    pub new_range: Range<usize>,
    /// The base's lines (each with its line end).
    pub removed: Vec<String>,
    /// The new lines (each with its line end).
    pub added: Vec<String>,
}

/// One file of the change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The file.
    pub path: String,
    /// What happens to it.
    pub operation: FileOperation,
    /// Its content at the base, `None` when added.
    pub base: Option<String>,
    /// Its content in the worktree, `None` when deleted.
    pub current: Option<String>,
    /// Its hunks, in file order.
    pub hunks: Vec<Hunk>,
}

/// The file's content after a decision, or the hunks that conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeResult {
    /// The content to save (`None`: the file is deleted).
    pub content: Option<String>,
    /// Accepted hunks (their indexes) that overlap a change made since the base and were not
    /// applied.
    pub conflicts: Vec<usize>,
}

/// The lines of a text, each with its line end.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The hunks turning `base` into `new`.
pub fn hunks(base: &str, new: &str) -> Vec<Hunk> {
    let old_lines = lines(base);
    let new_lines = lines(new);
    let operations = capture_diff_slices(Algorithm::Myers, &old_lines, &new_lines);
    let mut result: Vec<Hunk> = Vec::new();
    let mut open: Option<(Range<usize>, Range<usize>)> = None;
    let close = |open: &mut Option<(Range<usize>, Range<usize>)>, result: &mut Vec<Hunk>| {
        if let Some((base_range, new_range)) = open.take() {
            result.push(Hunk {
                removed: old_lines[base_range.clone()]
                    .iter()
                    .map(|line| (*line).to_owned())
                    .collect(),
                added: new_lines[new_range.clone()]
                    .iter()
                    .map(|line| (*line).to_owned())
                    .collect(),
                base_range,
                new_range,
            });
        }
    };
    for operation in operations {
        if matches!(operation, DiffOp::Equal { .. }) {
            close(&mut open, &mut result);
            continue;
        }
        let (old_range, new_range) = (operation.old_range(), operation.new_range());
        open = Some(match open.take() {
            Some((base, new)) => (base.start..old_range.end, new.start..new_range.end),
            None => (old_range, new_range),
        });
    }
    close(&mut open, &mut result);
    result
}

/// The difference between two snapshots (path to content).
pub fn diff(
    base: &BTreeMap<String, String>,
    worktree: &BTreeMap<String, String>,
) -> Vec<FileChange> {
    let mut changes = Vec::new();
    for (path, before) in base {
        match worktree.get(path) {
            Some(after) if after == before => {}
            Some(after) => changes.push(FileChange {
                path: path.clone(),
                operation: FileOperation::Modified,
                base: Some(before.clone()),
                current: Some(after.clone()),
                hunks: hunks(before, after),
            }),
            None => changes.push(FileChange {
                path: path.clone(),
                operation: FileOperation::Deleted,
                base: Some(before.clone()),
                current: None,
                hunks: hunks(before, ""),
            }),
        }
    }
    for (path, after) in worktree {
        if !base.contains_key(path) {
            changes.push(FileChange {
                path: path.clone(),
                operation: FileOperation::Added,
                base: None,
                current: Some(after.clone()),
                hunks: hunks("", after),
            });
        }
    }
    changes.sort_by(|left, right| left.path.cmp(&right.path));
    changes
}

/// Every text file of a workspace (the base snapshot, or the worktree at the end).
pub async fn snapshot(workspace: &dyn Workspace) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for path in workspace.list(None).await? {
        match workspace.read(&path).await {
            Ok(Some(content)) => {
                files.insert(path, content);
            }
            Ok(None) | Err(crate::Error::NotText(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(files)
}

/// `base` with `changes` (base range, replacement lines) applied; they do not overlap and are
/// sorted.
fn splice(base: &str, changes: &[(Range<usize>, Vec<String>)]) -> String {
    let base_lines = lines(base);
    let mut text = String::new();
    let mut position = 0;
    for (range, replacement) in changes {
        for line in &base_lines[position..range.start.min(base_lines.len())] {
            text.push_str(line);
        }
        for line in replacement {
            text.push_str(line);
        }
        position = range.end.max(position);
    }
    for line in base_lines.get(position..).unwrap_or_default() {
        text.push_str(line);
    }
    text
}

fn overlaps(left: &Range<usize>, right: &Range<usize>) -> bool {
    // Changes that touch (or insert at the same place) conflict too, as in git.
    left.start <= right.end && right.start <= left.end
}

impl FileChange {
    /// The file after the accepted hunks (`accepted[i]` for hunk `i`; missing means rejected)
    /// are applied onto the base.
    pub fn apply_accepted(&self, accepted: &[bool]) -> Option<String> {
        self.merge_onto(accepted, self.base.as_deref()).content
    }

    /// The accepted hunks merged onto `live`, the file as it is now (it may have changed since
    /// the base): the changes made since the base are kept, an accepted hunk that overlaps one
    /// of them is a conflict and is not applied.
    pub fn merge_onto(&self, accepted: &[bool], live: Option<&str>) -> MergeResult {
        let base = self.base.as_deref().unwrap_or("");
        let all_accepted = !self.hunks.is_empty()
            && (0..self.hunks.len()).all(|index| accepted.get(index) == Some(&true));
        let live_text = live.unwrap_or("");
        if self.operation == FileOperation::Deleted && all_accepted {
            return if live.is_none() || live_text == base {
                MergeResult {
                    content: None,
                    conflicts: Vec::new(),
                }
            } else {
                MergeResult {
                    content: live.map(str::to_owned),
                    conflicts: (0..self.hunks.len()).collect(),
                }
            };
        }
        let theirs = hunks(base, live_text);
        let mut changes: Vec<(Range<usize>, Vec<String>)> = theirs
            .iter()
            .map(|hunk| (hunk.base_range.clone(), hunk.added.clone()))
            .collect();
        let mut conflicts = Vec::new();
        for (index, hunk) in self.hunks.iter().enumerate() {
            if accepted.get(index) != Some(&true) {
                continue;
            }
            let same = theirs
                .iter()
                .any(|other| other.base_range == hunk.base_range && other.added == hunk.added);
            if same {
                continue;
            }
            if theirs
                .iter()
                .any(|other| overlaps(&other.base_range, &hunk.base_range))
            {
                conflicts.push(index);
                continue;
            }
            changes.push((hunk.base_range.clone(), hunk.added.clone()));
        }
        changes.sort_by_key(|(range, _)| (range.start, range.end));
        let content = splice(base, &changes);
        let content =
            if live.is_none() && content.is_empty() && self.operation != FileOperation::Added {
                None
            } else {
                Some(content)
            };
        MergeResult { content, conflicts }
    }

    /// The hunk as unified-diff text (for the review and for rejected hunks sent back).
    pub fn hunk_text(&self, index: usize) -> String {
        let Some(hunk) = self.hunks.get(index) else {
            return String::new();
        };
        let mut text = format!(
            "@@ -{},{} +{},{} @@\n",
            hunk.base_range.start + 1,
            hunk.base_range.len(),
            hunk.new_range.start + 1,
            hunk.new_range.len()
        );
        for line in &hunk.removed {
            text.push('-');
            text.push_str(line);
            if !line.ends_with('\n') {
                text.push('\n');
            }
        }
        for line in &hunk.added {
            text.push('+');
            text.push_str(line);
            if !line.ends_with('\n') {
                text.push('\n');
            }
        }
        text
    }
}

/// The follow-up instruction that sends rejected hunks (file, hunk index) back to the agent with
/// the person's comment.
pub fn rejection_message(
    changes: &[FileChange],
    rejected: &[(String, usize)],
    comment: &str,
) -> String {
    let mut text = format!("The reviewer rejected these changes. {comment}\n");
    for (path, index) in rejected {
        if let Some(change) = changes.iter().find(|change| &change.path == path) {
            text.push_str(&format!("\n{path}:\n{}", change.hunk_text(*index)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    const BASE: &str = "a\nb\nc\nd\ne\nf\ng\n";

    fn change(current: &str) -> FileChange {
        let base = BTreeMap::from([("f.txt".to_owned(), BASE.to_owned())]);
        let worktree = BTreeMap::from([("f.txt".to_owned(), current.to_owned())]);
        diff(&base, &worktree).remove(0)
    }

    #[test]
    fn hunks_accepted_one_by_one() {
        let change = change("A\nb\nc\nd\ne\nf\nG\n");
        assert_eq!(change.operation, FileOperation::Modified);
        assert_eq!(change.hunks.len(), 2);
        assert_eq!(
            change.apply_accepted(&[true, true]).unwrap(),
            "A\nb\nc\nd\ne\nf\nG\n"
        );
        assert_eq!(
            change.apply_accepted(&[true, false]).unwrap(),
            "A\nb\nc\nd\ne\nf\ng\n"
        );
        assert_eq!(
            change.apply_accepted(&[false, true]).unwrap(),
            "a\nb\nc\nd\ne\nf\nG\n"
        );
        assert_eq!(change.apply_accepted(&[]).unwrap(), BASE);
        assert!(change.hunk_text(0).starts_with("@@ -1,1 +1,1 @@\n-a\n+A\n"));
    }

    #[test]
    fn merged_onto_a_file_changed_since_the_base() {
        let change = change("A\nb\nc\nd\ne\nf\nG\n");
        // The person changed d since the base: both changes are kept.
        let merged = change.merge_onto(&[true, true], Some("a\nb\nc\nD\ne\nf\ng\n"));
        assert_eq!(merged.content.unwrap(), "A\nb\nc\nD\ne\nf\nG\n");
        assert!(merged.conflicts.is_empty());
        // The person changed g too: that hunk conflicts and is not applied; the other is.
        let merged = change.merge_onto(&[true, true], Some("a\nb\nc\nd\ne\nf\nX\n"));
        assert_eq!(merged.content.unwrap(), "A\nb\nc\nd\ne\nf\nX\n");
        assert_eq!(merged.conflicts, vec![1]);
        // The same change on both sides is no conflict.
        let merged = change.merge_onto(&[true, true], Some("a\nb\nc\nd\ne\nf\nG\n"));
        assert_eq!(merged.content.unwrap(), "A\nb\nc\nd\ne\nf\nG\n");
        assert!(merged.conflicts.is_empty());
    }

    #[test]
    fn added_and_deleted_files() {
        let base = BTreeMap::from([("old.txt".to_owned(), "x\n".to_owned())]);
        let worktree = BTreeMap::from([("new.txt".to_owned(), "y\n".to_owned())]);
        let changes = diff(&base, &worktree);
        assert_eq!(changes[0].operation, FileOperation::Added);
        assert_eq!(changes[0].apply_accepted(&[true]).as_deref(), Some("y\n"));
        assert_eq!(changes[1].operation, FileOperation::Deleted);
        assert_eq!(changes[1].apply_accepted(&[true]), None);
        assert_eq!(changes[1].apply_accepted(&[false]).as_deref(), Some("x\n"));
        let merged = changes[1].merge_onto(&[true], Some("x changed\n"));
        assert_eq!(merged.conflicts, vec![0]);
        assert_eq!(merged.content.as_deref(), Some("x changed\n"));
        let message = rejection_message(&changes, &[("new.txt".to_owned(), 0)], "Not needed.");
        assert!(
            message.contains("Not needed.") && message.contains("+y\n"),
            "{message}"
        );
    }
}
