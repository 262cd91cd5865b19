//! Each project's context index, kept up to date as files are saved, moved and deleted, saved to
//! disk and read back after a restart; and the context chosen for a chat message from it.
//!
//! A project's index is loaded (or built) in the background the first time something asks for
//! it. Requests never wait for that: they use what the index holds now, and the manifest says
//! when it is still being built.
//!
//! Several instances may each keep an index of one project. Each index knows the version of
//! every file it reflects; before it ranks, a request compares them with the database's (paths
//! and versions only) and brings the index up to date with what changed elsewhere (saves,
//! moves, deletes on another instance), so no request ranks files older than the database held
//! when it asked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use context::exclude::{Exclusion, IgnoreRules, is_ignore_file};
use context::index::{self, Index, content_hash};
use db::ids::ProjectId;
use serde::{Deserialize, Serialize};

pub use context::{Choice, Item, ItemKind, Manifest};

/// How many of the project's latest changes files changed together are learned from.
const CO_CHANGE_HISTORY: u64 = 2_000;

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

/// A conversation's pins and drops, as stored.
pub fn choices_of(value: Option<&serde_json::Value>) -> BTreeMap<String, context::Choice> {
    value
        .and_then(|value| serde_json::from_value(value.clone()).ok())
        .unwrap_or_default()
}

/// Dependency manifests sent as context (at the project's root or one folder down).
const MANIFEST_NAMES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "pyproject.toml",
    "requirements.txt",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
];
/// Longest manifest or diff sent (characters).
const MAX_SOURCE_CHARS: usize = 4000;
/// Places in attached output sent, at most.
const MAX_ERROR_LOCATIONS: usize = 6;
/// Lines shown before and after a place attached output points at.
const LINES_AROUND: u32 = 8;
/// Recently changed files whose last change is sent, at most.
const RECENT_CHANGES: u64 = 3;
/// Only changes this recent count as recent.
const RECENT_WINDOW_HOURS: i64 = 72;
/// Pins and drops kept per conversation, at most.
const MAX_CHOICES: usize = 500;

/// The context chosen for a message, and the index it was chosen from.
#[derive(Clone, Debug)]
pub struct ChosenContext {
    pub manifest: context::Manifest,
    /// `None` without a project.
    pub index: Option<IndexStatus>,
}

fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(limit).collect();
    if let Some(end) = cut.rfind('\n') {
        cut.truncate(end + 1);
    }
    cut.push_str("… (cut)\n");
    cut
}

/// The selection and the current file, as the mode's policy allows.
pub fn editor_candidates(
    input: &crate::chat::ContextInput,
    policy: &crate::chat::ContextPolicy,
) -> (Vec<context::Candidate>, Vec<context::Item>) {
    use context::{Candidate, ItemKind};
    let mut candidates = Vec::new();
    let mut refused = Vec::new();
    let Some(file) = &input.current_file else {
        return (candidates, refused);
    };
    let mut offer = |allowed: bool, candidate: Candidate, why_not: &str| {
        if allowed {
            candidates.push(candidate);
        } else {
            refused.push(context::Item {
                key: candidate.key(),
                kind: candidate.kind,
                label: candidate.label,
                reason: format!("{}; {why_not}", candidate.reason),
                score: candidate.score,
                tokens: 0,
                included: false,
                choice: None,
                language: candidate.language,
                content: String::new(),
            });
        }
    };
    if let Some(selection) = file
        .selection
        .as_ref()
        .filter(|selection| !selection.text.trim().is_empty())
    {
        offer(
            policy.selection,
            Candidate {
                kind: ItemKind::Selection,
                label: format!(
                    "{}:{}-{}",
                    file.path, selection.start_line, selection.end_line
                ),
                reason: "selected in the editor".into(),
                score: 1.0,
                content: selection.text.clone(),
                language: file.language.clone(),
            },
            "this mode does not send selections",
        );
    }
    offer(
        policy.current_file,
        Candidate {
            kind: ItemKind::CurrentFile,
            label: file.path.clone(),
            reason: "open in the editor".into(),
            score: 1.0,
            content: file.content.clone(),
            language: file.language.clone(),
        },
        "this mode does not send the current file",
    );
    (candidates, refused)
}

impl crate::Services {
    /// The tokenizer family of the model a conversation asks (its own, else the user's default).
    async fn tokenizer_for(
        &self,
        user: &crate::AuthenticatedUser,
        model: Option<&str>,
    ) -> Result<context::TokenizerFamily, crate::Error> {
        let route = match model {
            Some(model) => Some(model.to_owned()),
            None => self.default_model(user).await?,
        };
        let Some(route) = route else {
            return Ok(context::TokenizerFamily::default());
        };
        let model = route.rsplit('/').next().unwrap_or(&route);
        let provider = self
            .ai
            .catalog
            .provider_of(model)
            .map_or("", |provider| provider.name());
        Ok(context::TokenizerFamily::of_model(provider, model))
    }

    /// Chooses the context of a message: the selection and current file, places attached output
    /// points at, recent changes, dependency manifests and the repo map, within the mode's
    /// budget and the conversation's pins and drops.
    #[allow(clippy::too_many_arguments)]
    pub async fn choose_context(
        &self,
        user: &crate::AuthenticatedUser,
        project: Option<ProjectId>,
        model: Option<&str>,
        choices: &BTreeMap<String, context::Choice>,
        policy: &crate::chat::ContextPolicy,
        input: &crate::chat::ContextInput,
        text: &str,
    ) -> Result<ChosenContext, crate::Error> {
        use context::{Candidate, ItemKind};
        let family = self.tokenizer_for(user, model).await?;
        let (mut candidates, refused) = editor_candidates(input, policy);
        let current_path = input.current_file.as_ref().map(|file| file.path.clone());
        let Some(project) = project else {
            let manifest = context::choose(
                &Index::new(),
                context::Selection {
                    budget: policy.max_tokens,
                    family,
                    candidates,
                    map: None,
                    choices,
                },
            );
            return Ok(ChosenContext {
                manifest: with_refused(manifest, refused),
                index: None,
            });
        };
        let entry = self.context.project(&self.database, project);
        self.context
            .bring_up_to_date(&self.database, project, &entry)
            .await?;
        let paths: Vec<String> = entry.read(|index| index.files().keys().cloned().collect());
        let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();

        if policy.errors {
            let mut seen = HashSet::new();
            for location in context::diagnostics::locations(text) {
                if seen.len() >= MAX_ERROR_LOCATIONS {
                    break;
                }
                let Some(path) = context::diagnostics::resolve(&location.path, &path_refs) else {
                    continue;
                };
                if !seen.insert((path.to_owned(), location.line)) {
                    continue;
                }
                let Some(file) = self.database.find_file_by_path(project, path).await? else {
                    continue;
                };
                let (first, excerpt) =
                    context::diagnostics::excerpt(&file.content, location.line, LINES_AROUND);
                if excerpt.is_empty() {
                    continue;
                }
                let last = first + excerpt.lines().count() as u32 - 1;
                candidates.push(Candidate {
                    kind: ItemKind::ErrorLocation,
                    label: format!("{path}:{first}-{last}"),
                    reason: format!(
                        "line {} is named by the {} output in your message",
                        location.line, location.format
                    ),
                    score: 1.0,
                    content: excerpt,
                    language: file.language.clone(),
                });
            }
        }

        let mut recent_paths = Vec::new();
        if policy.recent_changes {
            let since = chrono::Utc::now() - chrono::Duration::hours(RECENT_WINDOW_HOURS);
            let recent = self
                .database
                .recently_changed_files(project, RECENT_CHANGES + 1)
                .await?;
            for (file, path, updated_at) in recent {
                if updated_at < since || Some(&path) == current_path.as_ref() {
                    continue;
                }
                if candidates
                    .iter()
                    .filter(|candidate| candidate.kind == ItemKind::RecentChange)
                    .count() as u64
                    >= RECENT_CHANGES
                {
                    continue;
                }
                let revisions = self.database.latest_revisions(file, 2).await?;
                let [newest, previous] = revisions.as_slice() else {
                    continue;
                };
                if newest.binary_content.is_some() || previous.binary_content.is_some() {
                    continue;
                }
                let diff = similar::TextDiff::from_lines(&previous.content, &newest.content)
                    .unified_diff()
                    .context_radius(2)
                    .header(&format!("a/{path}"), &format!("b/{path}"))
                    .to_string();
                if diff.trim().is_empty() {
                    continue;
                }
                recent_paths.push(path.clone());
                candidates.push(Candidate {
                    kind: ItemKind::RecentChange,
                    label: path.clone(),
                    reason: format!(
                        "changed {} (version {} to {})",
                        updated_at.format("%Y-%m-%d %H:%M UTC"),
                        previous.version,
                        newest.version
                    ),
                    score: 0.6,
                    content: cut(&diff, MAX_SOURCE_CHARS),
                    language: Some("diff".into()),
                });
            }
        }

        if policy.manifests {
            for path in &paths {
                let name = path.rsplit('/').next().unwrap_or(path);
                if !MANIFEST_NAMES.contains(&name) || path.matches('/').count() > 1 {
                    continue;
                }
                let Some(file) = self.database.find_file_by_path(project, path).await? else {
                    continue;
                };
                candidates.push(Candidate {
                    kind: ItemKind::Dependencies,
                    label: path.clone(),
                    reason: "the project's dependencies".into(),
                    score: 0.4,
                    content: cut(&file.content, MAX_SOURCE_CHARS),
                    language: file.language.clone(),
                });
            }
        }

        let co_changed = match (&current_path, policy.repo_map) {
            (Some(current), true) => {
                let history = self
                    .database
                    .change_history(project, CO_CHANGE_HISTORY)
                    .await?;
                crate::co_changes::changed_together(&history, current)
            }
            _ => Vec::new(),
        };
        let map = policy.repo_map.then(|| context::RankRequest {
            chat_files: current_path.iter().cloned().collect(),
            mentioned_files: context::mentioned_files(text, path_refs.iter().copied()),
            recent_files: recent_paths,
            mentioned_names: context::mentioned_names(text),
            co_changed,
        });
        let budget = policy.max_tokens;
        let choices = choices.clone();
        let work_entry = entry.clone();
        let manifest = tokio::task::spawn_blocking(move || {
            work_entry.read(|index| {
                context::choose(
                    index,
                    context::Selection {
                        budget,
                        family,
                        candidates,
                        map,
                        choices: &choices,
                    },
                )
            })
        })
        .await
        .map_err(|error| crate::Error::Internal(format!("context choice failed: {error}")))?;
        Ok(ChosenContext {
            manifest: with_refused(manifest, refused),
            index: Some(entry.status()),
        })
    }

    /// The context the next message would carry: in a conversation (its project, model, mode,
    /// pins and drops), or before there is one (a project and a mode).
    #[allow(clippy::too_many_arguments)]
    pub async fn preview_context(
        &self,
        user: &crate::AuthenticatedUser,
        conversation: Option<db::ids::ConversationId>,
        project: Option<ProjectId>,
        mode: &str,
        input: &crate::chat::ContextInput,
        text: &str,
    ) -> Result<ChosenContext, crate::Error> {
        crate::chat::check_context(input)?;
        let (project, model, choices, mode) = match conversation {
            Some(id) => {
                let found = self
                    .database
                    .find_conversation(user.id, id)
                    .await?
                    .ok_or(crate::Error::NotFound)?;
                (
                    found.project_id,
                    found.model.clone(),
                    choices_of(found.context_choices.as_ref()),
                    found.mode.clone(),
                )
            }
            None => {
                if let Some(project) = project {
                    self.project(user, project).await?;
                }
                (project, None, BTreeMap::new(), mode.to_owned())
            }
        };
        let mode = self.usable_mode(user, &mode).await?;
        self.choose_context(
            user,
            project,
            model.as_deref(),
            &choices,
            &mode.context,
            input,
            text,
        )
        .await
    }

    /// Where a project's index stands (starting it when it is not loaded).
    pub async fn context_index_status(
        &self,
        user: &crate::AuthenticatedUser,
        project: ProjectId,
    ) -> Result<IndexStatus, crate::Error> {
        self.project(user, project).await?;
        Ok(self.context.project(&self.database, project).status())
    }

    /// Pins, drops or releases (`None`) one context item of a conversation.
    pub async fn set_context_choice(
        &self,
        user: &crate::AuthenticatedUser,
        conversation: db::ids::ConversationId,
        key: &str,
        choice: Option<context::Choice>,
    ) -> Result<BTreeMap<String, context::Choice>, crate::Error> {
        if key.is_empty() || key.len() > 1024 || !key.contains(':') {
            return Err(crate::Error::Invalid(
                "That context item is unknown.".into(),
            ));
        }
        let found = self
            .database
            .find_conversation(user.id, conversation)
            .await?
            .ok_or(crate::Error::NotFound)?;
        let mut choices = choices_of(found.context_choices.as_ref());
        match choice {
            Some(choice) => {
                if !choices.contains_key(key) && choices.len() >= MAX_CHOICES {
                    return Err(crate::Error::LimitReached(format!(
                        "A conversation keeps at most {MAX_CHOICES} pins and drops; release some first."
                    )));
                }
                choices.insert(key.to_owned(), choice);
            }
            None => {
                choices.remove(key);
            }
        }
        let value = serde_json::to_value(&choices)
            .map_err(|error| crate::Error::Internal(error.to_string()))?;
        self.database
            .set_context_choices(user.id, conversation, value)
            .await?
            .ok_or(crate::Error::NotFound)?;
        Ok(choices)
    }
}

/// Adds the items the mode's policy refused (listed, not sent) after the others of their kind.
fn with_refused(mut manifest: context::Manifest, refused: Vec<context::Item>) -> context::Manifest {
    for item in refused.into_iter().rev() {
        manifest.items.insert(0, item);
    }
    manifest
}
