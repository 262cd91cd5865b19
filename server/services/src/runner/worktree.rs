//! A project's saved files written into its worktree, `<data dir>/worktrees/<project id>/`,
//! where its commands run.
//!
//! Incremental: a manifest beside the worktree (`<project id>.manifest.json`, outside what the
//! sandbox may write) records, per path, the file's id and version as saved and the size and
//! modification time of what was written. A file is written again only when its saved version
//! changed or the copy on disk is no longer what was written (a command changed it); files
//! removed from the project are removed from the worktree; anything else a command left there
//! (build folders, caches) stays, which keeps later builds fast.
//!
//! The worktree belongs to the sandbox's uid (when the server is root): commands may write
//! there, and so may plant symbolic links. The server therefore never follows a link inside it:
//! every folder on a path is checked without following links and replaced when it is not a
//! real folder, and files are written to a fresh temporary file (`O_EXCL | O_NOFOLLOW`) renamed
//! over the target. Materialising never runs while a command of the project runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use db::ids::{FileId, ProjectId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

/// The folder of sandbox-private state inside a worktree (HOME and TMPDIR); never a project path.
pub const SANDBOX_FOLDER: &str = ".sandbox";

/// Who owns what is written (the sandbox's uid and gid), when the server may choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// One file as the manifest remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ManifestEntry {
    id: FileId,
    version: i64,
    size: u64,
    modified_nanoseconds: i64,
}

/// What was written, per path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, ManifestEntry>,
}

/// What one materialisation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Materialised {
    /// The worktree's folder.
    pub root: PathBuf,
    /// The saved files' revision: a digest of every path with its version (12 hex digits).
    pub revision: String,
    pub files: usize,
    pub written: usize,
    pub removed: usize,
    pub elapsed: std::time::Duration,
}

/// The worktrees of every project, under one folder.
#[derive(Clone, Debug)]
pub struct Worktrees {
    folder: PathBuf,
    owner: Option<Owner>,
}

fn io_error(action: &str, path: &Path, error: std::io::Error) -> Error {
    Error::Internal(format!("worktree: {action} {}: {error}", path.display()))
}

impl Worktrees {
    /// Worktrees under `folder`; files are given to `owner` when set (the server runs as root).
    pub fn new(folder: PathBuf, owner: Option<Owner>) -> Self {
        Self { folder, owner }
    }

    /// The folder holding every worktree.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The project's worktree folder.
    pub fn root_of(&self, project: ProjectId) -> PathBuf {
        self.folder.join(project.to_string())
    }

    /// Where the last successful setup's revision and command line are kept.
    pub fn setup_marker(&self, project: ProjectId) -> PathBuf {
        self.folder.join(format!("{project}.setup"))
    }

    fn manifest_path(&self, project: ProjectId) -> PathBuf {
        self.folder.join(format!("{project}.manifest.json"))
    }

    /// Brings the project's worktree up to date with its saved files.
    pub async fn materialise(
        &self,
        database: &db::Database,
        project: ProjectId,
    ) -> Result<Materialised, Error> {
        let started = Instant::now();
        let tree = database.tree_of(project).await?;
        let root = self.root_of(project);
        let manifest_path = self.manifest_path(project);
        let owner = self.owner;
        let folder = self.folder.clone();
        let listed: Vec<(FileId, String, i64)> = tree
            .files
            .iter()
            .filter(|file| !is_sandbox_path(&file.path))
            .map(|file| (file.id, file.path.clone(), file.version))
            .collect();
        let folders: Vec<String> = tree
            .folders
            .into_iter()
            .filter(|path| !is_sandbox_path(path))
            .collect();
        let revision = revision_of(&listed);
        // Which files need writing: decided from metadata only, off the async threads.
        let plan = {
            let root = root.clone();
            let listed = listed.clone();
            tokio::task::spawn_blocking(move || {
                plan(&folder, &root, &manifest_path, owner, &listed)
            })
            .await
            .map_err(|error| Error::Internal(format!("worktree: {error}")))??
        };
        let contents = if plan.to_write.is_empty() {
            Vec::new()
        } else {
            database.files_by_ids(project, &plan.to_write).await?
        };
        let manifest_path = self.manifest_path(project);
        let files = listed.len();
        let (written, removed) = {
            let root = root.clone();
            tokio::task::spawn_blocking(move || {
                apply(&root, &manifest_path, owner, plan, contents, &folders)
            })
            .await
            .map_err(|error| Error::Internal(format!("worktree: {error}")))??
        };
        Ok(Materialised {
            root,
            revision,
            files,
            written,
            removed,
            elapsed: started.elapsed(),
        })
    }
}

/// Whether a project path lies in the sandbox's own folder (never written from the project).
fn is_sandbox_path(path: &str) -> bool {
    path == SANDBOX_FOLDER || path.starts_with(".sandbox/")
}

/// A digest of the saved files (paths and versions), short enough to show.
pub fn revision_of(files: &[(FileId, String, i64)]) -> String {
    let mut sorted: Vec<&(FileId, String, i64)> = files.iter().collect();
    sorted.sort_by(|left, right| left.1.cmp(&right.1));
    let mut hasher = Sha256::new();
    for (_, path, version) in sorted {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(version.to_le_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What [`apply`] has to do.
struct Plan {
    manifest: Manifest,
    to_write: Vec<FileId>,
    /// Paths of the manifest no longer in the project.
    to_remove: Vec<String>,
    /// Where each listed file goes, by id.
    paths: HashMap<FileId, (String, i64)>,
}

fn plan(
    folder: &Path,
    root: &Path,
    manifest_path: &Path,
    owner: Option<Owner>,
    listed: &[(FileId, String, i64)],
) -> Result<Plan, Error> {
    fs::create_dir_all(folder).map_err(|error| io_error("creating", folder, error))?;
    ensure_real_folder(root, owner)?;
    let manifest: Manifest = match fs::read(manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(%error, path = %manifest_path.display(), "a worktree manifest is unreadable; writing every file again");
            Manifest::default()
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
        Err(error) => return Err(io_error("reading", manifest_path, error)),
    };
    let mut to_write = Vec::new();
    let mut paths = HashMap::with_capacity(listed.len());
    let mut current: HashSet<&str> = HashSet::with_capacity(listed.len());
    for (id, path, version) in listed {
        current.insert(path.as_str());
        paths.insert(*id, (path.clone(), *version));
        let unchanged = manifest.files.get(path).is_some_and(|entry| {
            entry.id == *id
                && entry.version == *version
                && fs::symlink_metadata(root.join(path)).is_ok_and(|metadata| {
                    metadata.file_type().is_file()
                        && metadata.len() == entry.size
                        && modified_nanoseconds(&metadata) == entry.modified_nanoseconds
                })
        });
        if !unchanged {
            to_write.push(*id);
        }
    }
    let to_remove = manifest
        .files
        .keys()
        .filter(|path| !current.contains(path.as_str()))
        .cloned()
        .collect();
    Ok(Plan {
        manifest,
        to_write,
        to_remove,
        paths,
    })
}

fn modified_nanoseconds(metadata: &fs::Metadata) -> i64 {
    metadata
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(metadata.mtime_nsec())
}

fn apply(
    root: &Path,
    manifest_path: &Path,
    owner: Option<Owner>,
    plan: Plan,
    contents: Vec<db::tables::files::Model>,
    folders: &[String],
) -> Result<(usize, usize), Error> {
    let Plan {
        mut manifest,
        to_write,
        to_remove,
        paths,
    } = plan;
    let mut removed = 0;
    for path in &to_remove {
        manifest.files.remove(path);
        if remove_inside(root, path)? {
            removed += 1;
        }
    }
    for folder in folders {
        ensure_folders(root, Path::new(folder), owner)?;
    }
    let mut written = 0;
    let changed = !to_write.is_empty() || !to_remove.is_empty();
    for file in contents {
        let Some((path, version)) = paths.get(&file.id) else {
            continue;
        };
        let bytes: &[u8] = match &file.binary_content {
            Some(bytes) => bytes,
            None => file.content.as_bytes(),
        };
        let metadata = write_inside(root, path, bytes, owner)?;
        manifest.files.insert(
            path.clone(),
            ManifestEntry {
                id: file.id,
                version: *version,
                size: metadata.len(),
                modified_nanoseconds: modified_nanoseconds(&metadata),
            },
        );
        written += 1;
    }
    if changed {
        let text = serde_json::to_vec(&manifest)
            .map_err(|error| Error::Internal(format!("worktree manifest: {error}")))?;
        let temporary = manifest_path.with_extension("json.tmp");
        fs::write(&temporary, text).map_err(|error| io_error("writing", &temporary, error))?;
        fs::rename(&temporary, manifest_path)
            .map_err(|error| io_error("renaming", manifest_path, error))?;
    }
    Ok((written, removed))
}

/// Makes `path` a real folder (not a link, not a file) owned by `owner`.
fn ensure_real_folder(path: &Path, owner: Option<Owner>) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(path).map_err(|error| io_error("removing", path, error))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error("inspecting", path, error)),
    }
    fs::create_dir(path).map_err(|error| io_error("creating", path, error))?;
    if let Some(owner) = owner {
        std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
            .map_err(|error| io_error("giving to the sandbox uid", path, error))?;
    }
    Ok(())
}

/// Makes every folder of `relative` under `root` a real folder.
fn ensure_folders(root: &Path, relative: &Path, owner: Option<Owner>) -> Result<(), Error> {
    let mut path = root.to_path_buf();
    for component in relative.components() {
        path.push(component);
        ensure_real_folder(&path, owner)?;
    }
    Ok(())
}

/// Writes `bytes` at `relative` under `root` without following links; returns the written
/// file's metadata.
fn write_inside(
    root: &Path,
    relative: &str,
    bytes: &[u8],
    owner: Option<Owner>,
) -> Result<fs::Metadata, Error> {
    let relative = Path::new(relative);
    if let Some(parent) = relative.parent() {
        ensure_folders(root, parent, owner)?;
    }
    let target = root.join(relative);
    let parent = target.parent().unwrap_or(root);
    let temporary = parent.join(format!(
        ".async-coder-{}.tmp",
        db::ids::RunId::new().to_string().replace('-', "")
    ));
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        // A link at the temporary file's name (there should be none) is refused.
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .map_err(|error| io_error("creating", &temporary, error))?;
    file.write_all(bytes)
        .map_err(|error| io_error("writing", &temporary, error))?;
    if let Some(owner) = owner {
        std::os::unix::fs::fchown(&file, Some(owner.uid), Some(owner.gid))
            .map_err(|error| io_error("giving to the sandbox uid", &temporary, error))?;
    }
    let metadata = file
        .metadata()
        .map_err(|error| io_error("inspecting", &temporary, error))?;
    drop(file);
    if fs::symlink_metadata(&target).is_ok_and(|metadata| metadata.file_type().is_dir()) {
        fs::remove_dir_all(&target).map_err(|error| io_error("removing", &target, error))?;
    }
    fs::rename(&temporary, &target).map_err(|error| io_error("renaming", &target, error))?;
    Ok(metadata)
}

/// Removes the file (or link, or folder) at `relative` under `root` without following links,
/// then its folders left empty. Whether something was there.
fn remove_inside(root: &Path, relative: &str) -> Result<bool, Error> {
    let target = root.join(relative);
    // A folder on the way that is a link would lead outside: then nothing of ours is there.
    let mut path = root.to_path_buf();
    let relative_path = Path::new(relative);
    if let Some(parent) = relative_path.parent() {
        for component in parent.components() {
            path.push(component);
            match fs::symlink_metadata(&path) {
                Ok(metadata) if metadata.file_type().is_dir() => {}
                _ => return Ok(false),
            }
        }
    }
    let existed = match fs::symlink_metadata(&target) {
        Ok(metadata) if metadata.file_type().is_dir() => {
            fs::remove_dir_all(&target).map_err(|error| io_error("removing", &target, error))?;
            true
        }
        Ok(_) => {
            fs::remove_file(&target).map_err(|error| io_error("removing", &target, error))?;
            true
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => return Err(io_error("inspecting", &target, error)),
    };
    let mut folder = target.parent();
    while let Some(current) = folder {
        if current == root || !current.starts_with(root) {
            break;
        }
        // Only an empty folder is removed; a folder with anything left stays.
        if fs::remove_dir(current).is_err() {
            break;
        }
        folder = current.parent();
    }
    Ok(existed)
}

#[cfg(test)]
mod tests;
