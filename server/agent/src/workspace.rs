//! The task's files: the [`Workspace`] trait services implement, and [`DirectoryWorkspace`], a
//! folder on disk (the task's worktree) that no path can leave.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Files larger than this are left out of searches.
pub const GREP_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// One line that matched a search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrepMatch {
    /// The file, relative to the worktree's root, with `/` separators.
    pub path: String,
    /// The line number, from 1.
    pub line_number: usize,
    /// The line's text.
    pub line: String,
}

/// The files of a task's worktree, as the agent's tools see them. Every path is relative to the
/// worktree's root with `/` separators; an implementation refuses any path that would leave it.
#[async_trait]
pub trait Workspace: Send + Sync {
    /// The text of the file, or `None` when there is no such file.
    async fn read(&self, path: &str) -> Result<Option<String>>;
    /// Writes the whole file (creating its folders).
    async fn write(&self, path: &str, content: &str) -> Result<()>;
    /// Deletes the file; a missing file is [`Error::NotFound`].
    async fn delete(&self, path: &str) -> Result<()>;
    /// The files whose path matches the glob (every file when `None`), sorted, ignored files
    /// (`.gitignore`, `.git/`) left out.
    async fn list(&self, glob: Option<&str>) -> Result<Vec<String>>;
    /// Lines matching the regular expression, in the files matching `glob`, at most `limit`.
    async fn grep(&self, pattern: &str, glob: Option<&str>, limit: usize)
    -> Result<Vec<GrepMatch>>;
    /// A map of the code relevant to `query` (the context builder's repo map), in about
    /// `max_tokens` tokens.
    async fn repo_map(&self, query: &str, max_tokens: usize) -> Result<String>;
}

/// The hex SHA-256 of a file's content: what the journal records before and after an edit.
pub fn content_hash(content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The checked, normalised form of a relative path (`a/b.rs`), or [`Error::PathRefused`]:
/// empty, absolute, `..`, backslashes and any `.git` component are refused.
pub fn normalize_path(path: &str) -> Result<String> {
    let refused = || Error::PathRefused(path.to_owned());
    let trimmed = path.trim();
    if trimmed.is_empty() || trimmed.contains('\0') || trimmed.contains('\\') {
        return Err(refused());
    }
    let mut parts = Vec::new();
    for component in Path::new(trimmed).components() {
        match component {
            Component::Normal(part) => {
                let part = part.to_str().ok_or_else(refused)?;
                // Git's own folder is not the agent's: a hook written there would run outside
                // the sandbox the next time git runs in the worktree.
                if part.eq_ignore_ascii_case(".git") {
                    return Err(refused());
                }
                parts.push(part.to_owned());
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(refused());
            }
        }
    }
    if parts.is_empty() {
        return Err(refused());
    }
    Ok(parts.join("/"))
}

/// A worktree on disk. Paths are checked ([`normalize_path`]) and every existing part of a path
/// is resolved: a link that leads out of the root is refused.
#[derive(Clone, Debug)]
pub struct DirectoryWorkspace {
    root: Arc<PathBuf>,
}

impl DirectoryWorkspace {
    /// The worktree at `root`, which must exist.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().canonicalize()?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// The worktree's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `path` inside the root, after checking that neither it nor the
    /// deepest part of it that exists leads out of the root.
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let relative = normalize_path(path)?;
        let full = self.root.join(&relative);
        let mut existing = full.as_path();
        loop {
            match existing.symlink_metadata() {
                Ok(_) => break,
                Err(_) => match existing.parent() {
                    Some(parent) => existing = parent,
                    None => return Err(Error::PathRefused(path.to_owned())),
                },
            }
        }
        let real = existing
            .canonicalize()
            .map_err(|_| Error::PathRefused(path.to_owned()))?;
        if !real.starts_with(self.root.as_path()) {
            return Err(Error::PathRefused(path.to_owned()));
        }
        Ok(full)
    }

    fn walk(&self, glob: Option<&str>) -> Result<Vec<(String, PathBuf)>> {
        let matcher = match glob {
            Some(glob) if !glob.trim().is_empty() => Some(
                globset::GlobBuilder::new(glob.trim().trim_start_matches("./"))
                    .literal_separator(false)
                    .build()
                    .map_err(|error| Error::InvalidArguments(format!("bad glob: {error}")))?
                    .compile_matcher(),
            ),
            _ => None,
        };
        let mut files = Vec::new();
        let walker = ignore::WalkBuilder::new(self.root.as_path())
            .hidden(false)
            .follow_links(false)
            .require_git(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .build();
        for entry in walker {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                continue;
            }
            let Ok(relative) = entry.path().strip_prefix(self.root.as_path()) else {
                continue;
            };
            let Some(relative) = relative.to_str() else {
                continue;
            };
            let relative = relative.replace('\\', "/");
            if matcher
                .as_ref()
                .is_none_or(|matcher| matcher.is_match(&relative))
            {
                files.push((relative, entry.path().to_path_buf()));
            }
        }
        files.sort();
        Ok(files)
    }
}

#[async_trait]
impl Workspace for DirectoryWorkspace {
    async fn read(&self, path: &str) -> Result<Option<String>> {
        let full = self.resolve(path)?;
        match std::fs::read(&full) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| Error::NotText(path.to_owned())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) if full.is_dir() => Err(Error::InvalidArguments(format!(
                "{path} is a folder, not a file ({error})"
            ))),
            Err(error) => Err(error.into()),
        }
    }

    async fn write(&self, path: &str, content: &str) -> Result<()> {
        let full = self.resolve(path)?;
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Created folders are checked again: nothing may have put a link in their place.
        self.resolve(path)?;
        if full
            .symlink_metadata()
            .is_ok_and(|metadata| metadata.file_type().is_symlink())
        {
            std::fs::remove_file(&full)?;
        }
        std::fs::write(&full, content)?;
        Ok(())
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let full = self.resolve(path)?;
        match std::fs::remove_file(&full) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(path.to_owned()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn list(&self, glob: Option<&str>) -> Result<Vec<String>> {
        let workspace = self.clone();
        let glob = glob.map(str::to_owned);
        tokio::task::spawn_blocking(move || workspace.walk(glob.as_deref()))
            .await
            .map_err(|error| Error::Io(error.to_string()))?
            .map(|files| files.into_iter().map(|(relative, _)| relative).collect())
    }

    async fn grep(
        &self,
        pattern: &str,
        glob: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GrepMatch>> {
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|error| Error::InvalidArguments(format!("bad regular expression: {error}")))?;
        let workspace = self.clone();
        let glob = glob.map(str::to_owned);
        tokio::task::spawn_blocking(move || -> Result<Vec<GrepMatch>> {
            let mut matches = Vec::new();
            for (relative, full) in workspace.walk(glob.as_deref())? {
                // Large files (logs, data, builds) are not searched.
                if std::fs::metadata(&full)
                    .is_ok_and(|metadata| metadata.len() > GREP_MAX_FILE_BYTES)
                {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&full) else {
                    continue;
                };
                for (index, line) in text.lines().enumerate() {
                    if regex.is_match(line) {
                        matches.push(GrepMatch {
                            path: relative.clone(),
                            line_number: index + 1,
                            line: line.to_owned(),
                        });
                        if matches.len() >= limit {
                            return Ok(matches);
                        }
                    }
                }
            }
            Ok(matches)
        })
        .await
        .map_err(|error| Error::Io(error.to_string()))?
    }

    /// Without the context builder: the files, those whose path names a word of the query
    /// first.
    async fn repo_map(&self, query: &str, max_tokens: usize) -> Result<String> {
        let files = self.list(None).await?;
        let words: Vec<String> = query
            .split(|character: char| !character.is_alphanumeric())
            .filter(|word| word.len() > 2)
            .map(str::to_lowercase)
            .collect();
        let mut ranked: Vec<(usize, String)> = files
            .into_iter()
            .map(|path| {
                let lower = path.to_lowercase();
                let score = words
                    .iter()
                    .filter(|word| lower.contains(word.as_str()))
                    .count();
                (score, path)
            })
            .collect();
        ranked.sort_by(|left, right| right.0.cmp(&left.0).then_with(|| left.1.cmp(&right.1)));
        let mut map = String::new();
        for (_, path) in ranked {
            if (map.len() + path.len()) / 4 > max_tokens {
                break;
            }
            map.push_str(&path);
            map.push('\n');
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(normalize_path("./src//main.rs").unwrap(), "src/main.rs");
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/../b",
            ".",
            "a\\b",
            ".git/hooks/pre-commit",
            "sub/.GIT/config",
        ] {
            assert!(
                matches!(normalize_path(bad), Err(Error::PathRefused(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn links_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("file"))
            .unwrap();
        let workspace = DirectoryWorkspace::new(root.path()).unwrap();
        assert!(matches!(
            workspace.read("out/secret").await,
            Err(Error::PathRefused(_))
        ));
        assert!(matches!(
            workspace.read("file").await,
            Err(Error::PathRefused(_))
        ));
        assert!(matches!(
            workspace.write("out/new", "x").await,
            Err(Error::PathRefused(_))
        ));
        assert!(!outside.path().join("new").exists());
        workspace
            .write("inside/a.txt", "hello\nworld\n")
            .await
            .unwrap();
        assert_eq!(
            workspace.read("inside/a.txt").await.unwrap().as_deref(),
            Some("hello\nworld\n")
        );
        assert_eq!(workspace.read("missing").await.unwrap(), None);
        assert_eq!(
            workspace.list(Some("*.txt")).await.unwrap(),
            vec!["inside/a.txt"]
        );
        let found = workspace.grep("wor", None, 10).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line_number, 2);
        workspace.delete("inside/a.txt").await.unwrap();
        assert!(matches!(
            workspace.delete("inside/a.txt").await,
            Err(Error::NotFound(_))
        ));
    }
}
