//! The index's life: loaded or built in the background, kept up to date as files are saved,
//! moved and deleted (here or, through the database's versions, on another instance), saved to
//! disk soon after a change.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use context::exclude::{Exclusion, IgnoreRules, is_ignore_file};
use context::index::{self, Index, content_hash};
use db::ids::ProjectId;
use serde::{Deserialize, Serialize};

/// How many of the project's latest changes files changed together are learned from.
pub(super) const CO_CHANGE_HISTORY: u64 = 2_000;

/// How long after a change the index is written to disk (changes in between are written once).
const SAVE_DELAY: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexPhase {
    /// Reading the saved index, or the project's files.
    Loading,
    /// Parsing files: `done` of `total`.
    Indexing,
    Ready,
    /// The last build failed (the log says why); what was indexed before still serves.
    Failed,
}

/// Where a project's index stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexStatus {
    pub phase: IndexPhase,
    pub done: usize,
    pub total: usize,
    /// Files indexed now.
    pub files: usize,
    /// Files left out now.
    pub excluded: usize,
}

/// One project's index and its state.
pub struct ProjectIndex {
    index: RwLock<Index>,
    phase: AtomicU8,
    done: AtomicUsize,
    total: AtomicUsize,
    /// Paths changed by saves while a build runs: the build's older reading must not win.
    changed_during_build: Mutex<Option<HashSet<String>>>,
    save_scheduled: AtomicBool,
    /// A build is running.
    building: AtomicBool,
    /// Another build was asked for while one ran (an ignore file changed): it runs next.
    build_again: AtomicBool,
    /// The version of each file the index reflects (as the database numbers them): an older
    /// reading never replaces a newer one, and what differs from the database is read again.
    versions: Mutex<HashMap<String, i64>>,
    /// One check against the database at a time.
    refreshing: tokio::sync::Mutex<()>,
}

fn phase_code(phase: IndexPhase) -> u8 {
    match phase {
        IndexPhase::Loading => 0,
        IndexPhase::Indexing => 1,
        IndexPhase::Ready => 2,
        IndexPhase::Failed => 3,
    }
}

fn phase_of(code: u8) -> IndexPhase {
    match code {
        0 => IndexPhase::Loading,
        1 => IndexPhase::Indexing,
        2 => IndexPhase::Ready,
        _ => IndexPhase::Failed,
    }
}

impl ProjectIndex {
    fn new() -> ProjectIndex {
        ProjectIndex {
            index: RwLock::new(Index::new()),
            phase: AtomicU8::new(phase_code(IndexPhase::Loading)),
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            changed_during_build: Mutex::new(None),
            save_scheduled: AtomicBool::new(false),
            building: AtomicBool::new(false),
            build_again: AtomicBool::new(false),
            versions: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        match self.versions.lock() {
            Ok(versions) => versions,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Applies a reading of `path` at `version` unless the index reflects that version or a
    /// newer one already.
    fn apply_version(&self, path: &str, version: i64, read: Result<index::FileEntry, Exclusion>) {
        let mut versions = self.versions();
        if versions.get(path).is_some_and(|known| *known >= version) {
            return;
        }
        self.write(|index| index.apply(path, read));
        versions.insert(path.to_owned(), version);
    }

    /// Forgets the versions of `path` and of everything below it (moved or deleted).
    fn forget_versions_under(&self, path: &str) {
        let below = format!("{path}/");
        self.versions()
            .retain(|known, _| known != path && !known.starts_with(&below));
    }

    fn set_phase(&self, phase: IndexPhase) {
        self.phase.store(phase_code(phase), Ordering::Release);
    }

    pub fn status(&self) -> IndexStatus {
        let (files, excluded) = self.read(|index| (index.files().len(), index.excluded().len()));
        IndexStatus {
            phase: phase_of(self.phase.load(Ordering::Acquire)),
            done: self.done.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            files,
            excluded,
        }
    }

    /// Runs `work` on the index as it is now.
    pub fn read<T>(&self, work: impl FnOnce(&Index) -> T) -> T {
        let index = match self.index.read() {
            Ok(index) => index,
            Err(poisoned) => poisoned.into_inner(),
        };
        work(&index)
    }

    fn write<T>(&self, work: impl FnOnce(&mut Index) -> T) -> T {
        let mut index = match self.index.write() {
            Ok(index) => index,
            Err(poisoned) => poisoned.into_inner(),
        };
        work(&mut index)
    }

    fn note_change(&self, path: &str) {
        let mut changed = match self.changed_during_build.lock() {
            Ok(changed) => changed,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(changed) = changed.as_mut() {
            changed.insert(path.to_owned());
        }
    }
}

/// Every loaded project's index.
#[derive(Default)]
pub struct ContextIndexes {
    /// Where indexes are saved (`<data dir>/context`); `None` keeps them in memory only.
    directory: Option<PathBuf>,
    projects: Mutex<HashMap<ProjectId, Arc<ProjectIndex>>>,
}

impl ContextIndexes {
    pub fn new(directory: Option<PathBuf>) -> ContextIndexes {
        ContextIndexes {
            directory,
            projects: Mutex::default(),
        }
    }

    fn file_of(&self, project: ProjectId) -> Option<PathBuf> {
        self.directory
            .as_ref()
            .map(|directory| directory.join(format!("{project}.index")))
    }

    fn loaded(&self, project: ProjectId) -> Option<Arc<ProjectIndex>> {
        let projects = match self.projects.lock() {
            Ok(projects) => projects,
            Err(poisoned) => poisoned.into_inner(),
        };
        projects.get(&project).cloned()
    }

    /// The project's index, starting to load or build it in the background when it is not
    /// loaded yet (the caller never waits for that).
    pub fn project(
        self: &Arc<Self>,
        database: &db::Database,
        project: ProjectId,
    ) -> Arc<ProjectIndex> {
        let (entry, created) = {
            let mut projects = match self.projects.lock() {
                Ok(projects) => projects,
                Err(poisoned) => poisoned.into_inner(),
            };
            match projects.get(&project) {
                Some(entry) => (entry.clone(), false),
                None => {
                    let entry = Arc::new(ProjectIndex::new());
                    projects.insert(project, entry.clone());
                    (entry, true)
                }
            }
        };
        if created {
            // The first project opened loads the tokenizers too (a few MB, built on first
            // use): a server that is only a gateway never holds them.
            self.warm_up();
            self.start_build(database.clone(), project, entry.clone(), true);
        }
        entry
    }

    /// Loads the saved index (when `load_saved`), then brings it up to date with the project's
    /// files: only files whose content changed are parsed again.
    fn start_build(
        self: &Arc<Self>,
        database: db::Database,
        project: ProjectId,
        entry: Arc<ProjectIndex>,
        load_saved: bool,
    ) {
        if entry.building.swap(true, Ordering::AcqRel) {
            entry.build_again.store(true, Ordering::Release);
            return;
        }
        let indexes = self.clone();
        tokio::spawn(async move {
            let result = indexes.build(&database, project, &entry, load_saved).await;
            entry.building.store(false, Ordering::Release);
            match result {
                Ok(()) => {
                    entry.set_phase(IndexPhase::Ready);
                    indexes.save_soon(project, entry.clone());
                }
                Err(error) => {
                    tracing::error!(%project, %error, "the context index could not be built");
                    entry.set_phase(IndexPhase::Failed);
                }
            }
            if entry.build_again.swap(false, Ordering::AcqRel) {
                indexes.start_build(database, project, entry, false);
            }
        });
    }

    async fn build(
        &self,
        database: &db::Database,
        project: ProjectId,
        entry: &Arc<ProjectIndex>,
        load_saved: bool,
    ) -> Result<(), String> {
        entry.set_phase(IndexPhase::Loading);
        if load_saved && let Some(file) = self.file_of(project) {
            let loaded = tokio::task::spawn_blocking(move || {
                if file.exists() {
                    Some(Index::load(&file))
                } else {
                    None
                }
            })
            .await
            .map_err(|error| error.to_string())?;
            match loaded {
                Some(Ok(saved)) => entry.write(|index| *index = saved),
                Some(Err(error)) => {
                    tracing::warn!(%project, %error, "the saved context index is unreadable; building it again");
                }
                None => {}
            }
        }
        {
            let mut changed = match entry.changed_during_build.lock() {
                Ok(changed) => changed,
                Err(poisoned) => poisoned.into_inner(),
            };
            *changed = Some(HashSet::new());
        }
        let files = database
            .files_with_content(project)
            .await
            .map_err(|error| error.to_string())?;
        let entry_for_work = entry.clone();
        tokio::task::spawn_blocking(move || reconcile(&entry_for_work, files))
            .await
            .map_err(|error| error.to_string())?;
        let mut changed = match entry.changed_during_build.lock() {
            Ok(changed) => changed,
            Err(poisoned) => poisoned.into_inner(),
        };
        *changed = None;
        Ok(())
    }

    /// Writes the project's index to disk a little later (once for many changes).
    fn save_soon(self: &Arc<Self>, project: ProjectId, entry: Arc<ProjectIndex>) {
        let Some(file) = self.file_of(project) else {
            return;
        };
        if entry.save_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(SAVE_DELAY).await;
            entry.save_scheduled.store(false, Ordering::Release);
            let result =
                tokio::task::spawn_blocking(move || entry.read(|index| index.save(&file))).await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%project, %error, "the context index was not saved")
                }
                Err(error) => tracing::warn!(%project, %error, "the context index was not saved"),
            }
        });
    }

    /// Re-indexes one saved file (only that file). An ignore file changes what is ignored: the
    /// project is brought up to date in the background.
    pub async fn file_saved(
        self: &Arc<Self>,
        database: &db::Database,
        project: ProjectId,
        path: &str,
        version: i64,
        content: Vec<u8>,
    ) {
        let Some(entry) = self.loaded(project) else {
            return;
        };
        entry.note_change(path);
        if is_ignore_file(path) {
            self.start_build(database.clone(), project, entry.clone(), false);
        }
        let rules = entry.read(Index::ignore_rules);
        let owned_path = path.to_owned();
        let read =
            tokio::task::spawn_blocking(move || index::read(&owned_path, &content, &rules)).await;
        match read {
            Ok(read) => {
                entry.apply_version(path, version, read);
                self.save_soon(project, entry);
            }
            Err(error) => tracing::warn!(%project, %error, "a saved file was not indexed"),
        }
    }

    /// Follows a moved file or folder (nothing is parsed again).
    pub fn entry_moved(self: &Arc<Self>, project: ProjectId, from: &str, to: &str) {
        let Some(entry) = self.loaded(project) else {
            return;
        };
        entry.note_change(from);
        entry.note_change(to);
        entry.write(|index| index.rename(from, to));
        // The next check finds the new paths' versions (and nothing to parse).
        entry.forget_versions_under(from);
        entry.forget_versions_under(to);
        self.save_soon(project, entry);
    }

    /// Forgets a deleted file or folder.
    pub fn entry_deleted(self: &Arc<Self>, project: ProjectId, path: &str) {
        let Some(entry) = self.loaded(project) else {
            return;
        };
        entry.note_change(path);
        entry.write(|index| index.remove(path));
        entry.forget_versions_under(path);
        self.save_soon(project, entry);
    }

    /// Brings a loaded index up to date with the database before it ranks: the files whose
    /// version differs from the one the index reflects (changed on another instance) are read
    /// again, files gone are removed, and a changed ignore file brings the whole project up to
    /// date. While the index is being built this does nothing (the build reads every file, and
    /// requests never wait for it).
    pub async fn bring_up_to_date(
        self: &Arc<Self>,
        database: &db::Database,
        project: ProjectId,
        entry: &Arc<ProjectIndex>,
    ) -> Result<(), db::Error> {
        if entry.building.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one_at_a_time = entry.refreshing.lock().await;
        let listing = database.file_versions(project).await?;
        let present: HashSet<&str> = listing.iter().map(|(path, _)| path.as_str()).collect();
        let (changed, gone): (Vec<String>, Vec<String>) = {
            let versions = entry.versions();
            let changed = listing
                .iter()
                .filter(|(path, version)| versions.get(path) != Some(version))
                .map(|(path, _)| path.clone())
                .collect();
            let gone = entry.read(|index| {
                index
                    .files()
                    .keys()
                    .chain(index.excluded().keys())
                    .chain(versions.keys())
                    .filter(|path| !present.contains(path.as_str()))
                    .cloned()
                    .collect::<HashSet<String>>()
            });
            (changed, gone.into_iter().collect())
        };
        if changed.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let ignore_rules_changed = changed
            .iter()
            .chain(gone.iter())
            .any(|path| is_ignore_file(path));
        let work_entry = entry.clone();
        let applied = if ignore_rules_changed {
            let files = database.files_with_content(project).await?;
            tokio::task::spawn_blocking(move || reconcile(&work_entry, files)).await
        } else {
            let files = database.files_at_paths(project, &changed).await?;
            tokio::task::spawn_blocking(move || apply_changes(&work_entry, files, gone)).await
        };
        if let Err(error) = applied {
            tracing::error!(%project, %error, "the context index was not brought up to date");
        }
        self.save_soon(project, entry.clone());
        Ok(())
    }

    /// Loads the tokenizers in the background (the first count builds their vocabulary tables;
    /// later calls find them built).
    fn warm_up(&self) {
        tokio::task::spawn_blocking(context::tokens::warm_up);
    }

    /// Forgets a deleted project (and its saved index).
    pub fn project_deleted(&self, project: ProjectId) {
        {
            let mut projects = match self.projects.lock() {
                Ok(projects) => projects,
                Err(poisoned) => poisoned.into_inner(),
            };
            projects.remove(&project);
        }
        if let Some(file) = self.file_of(project)
            && file.exists()
            && let Err(error) = std::fs::remove_file(&file)
        {
            tracing::warn!(%project, %error, "a deleted project's context index was not removed");
        }
    }
}

/// Brings `entry` up to date with `files` (the project's files now): new ignore rules, files
/// whose content changed parsed again on every core, files gone forgotten.
fn reconcile(entry: &ProjectIndex, files: Vec<db::tables::files::Model>) {
    let rules = IgnoreRules::new(
        files
            .iter()
            .filter(|file| is_ignore_file(&file.path) && !file.is_binary)
            .map(|file| (file.path.as_str(), file.content.as_str())),
    );
    entry.write(|index| index.set_ignore_rules(rules));
    let rules = entry.read(Index::ignore_rules);
    let present: HashSet<&str> = files.iter().map(|file| file.path.as_str()).collect();
    let stale: Vec<String> = entry.read(|index| {
        index
            .files()
            .keys()
            .chain(index.excluded().keys())
            .filter(|path| !present.contains(path.as_str()))
            .cloned()
            .collect()
    });
    let work: Vec<&db::tables::files::Model> = entry.read(|index| {
        files
            .iter()
            .filter(|file| needs_reading(index, file))
            .collect()
    });
    entry.total.store(work.len(), Ordering::Relaxed);
    entry.done.store(0, Ordering::Relaxed);
    entry.set_phase(IndexPhase::Indexing);
    let workers = std::thread::available_parallelism().map_or(1, |count| count.get());
    let (binary, text): (Vec<_>, Vec<_>) = work.into_iter().partition(|file| file.is_binary);
    let contents: Vec<(&str, &[u8])> = text
        .iter()
        .map(|file| (file.path.as_str(), file.content.as_bytes()))
        .collect();
    let read = index::read_all(&contents, &rules, workers, &entry.done);
    entry.done.fetch_add(binary.len(), Ordering::Relaxed);
    let results: Vec<(String, Result<index::FileEntry, Exclusion>)> = text
        .iter()
        .map(|file| file.path.clone())
        .zip(read)
        .chain(
            binary
                .iter()
                .map(|file| (file.path.clone(), Err(Exclusion::Binary))),
        )
        .collect();
    let skip: HashSet<String> = {
        let changed = match entry.changed_during_build.lock() {
            Ok(changed) => changed,
            Err(poisoned) => poisoned.into_inner(),
        };
        changed.clone().unwrap_or_default()
    };
    entry.write(|index| {
        for path in &stale {
            if !skip.contains(path) {
                index.remove(path);
            }
        }
        for (path, read) in results {
            if !skip.contains(&path) {
                index.apply(&path, read);
            }
        }
    });
    // The index now reflects these versions (a path changed meanwhile keeps the version its
    // change recorded; the next check reads again whatever still differs).
    let mut versions = entry.versions();
    versions.retain(|path, _| present.contains(path.as_str()) || skip.contains(path));
    for file in &files {
        if !skip.contains(&file.path) {
            let known = versions.entry(file.path.clone()).or_insert(file.version);
            *known = (*known).max(file.version);
        }
    }
}

/// Applies what another instance changed: `files` read again (their versions checked at
/// apply time, so an older reading never wins), `gone` removed.
fn apply_changes(entry: &ProjectIndex, files: Vec<db::tables::files::Model>, gone: Vec<String>) {
    let rules = entry.read(Index::ignore_rules);
    for file in files {
        if !entry.read(|index| needs_reading(index, &file)) {
            // The content is what the index holds (a move, or a save seen already).
            let mut versions = entry.versions();
            let known = versions.entry(file.path.clone()).or_insert(file.version);
            *known = (*known).max(file.version);
            continue;
        }
        let read = if file.is_binary {
            Err(Exclusion::Binary)
        } else {
            index::read(&file.path, file.content.as_bytes(), &rules)
        };
        entry.apply_version(&file.path, file.version, read);
    }
    for path in gone {
        let mut versions = entry.versions();
        entry.write(|index| index.remove(&path));
        versions.remove(&path);
    }
}

/// Whether a file must be read (again) to bring the index up to date.
fn needs_reading(index: &Index, file: &db::tables::files::Model) -> bool {
    if file.is_binary {
        return index.excluded().get(&file.path) != Some(&Exclusion::Binary);
    }
    if index.is_current(&file.path, content_hash(file.content.as_bytes())) {
        return false;
    }
    match index.excluded().get(&file.path) {
        // Still ignored (the rules were just replaced, and released what they no longer hold).
        Some(Exclusion::Ignored) => false,
        // Left out for its path or content: read again only if that no longer holds.
        Some(_) => {
            context::exclude::by_path(&file.path).is_none()
                && context::exclude::by_content(file.content.as_bytes()).is_none()
        }
        None => true,
    }
}
