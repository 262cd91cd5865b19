//! The index of one project: each file's tags, kept up to date one file at a time, saved to disk
//! and read back at start.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::exclude::{self, Exclusion, IgnoreRules};
use crate::language::Language;
use crate::rank::{FileNames, Graph, Interner, RankRequest, Ranking};
use crate::tags::{self, FileTags};
use crate::terms::FileWords;
use rustc_hash::{FxHashMap, FxHashSet};

/// Format of the saved index; a file of another version is rebuilt, never misread. (3: TypeScript
/// is parsed with [`crate::typescript::repair`], which finds more of its tags; 4: JavaScript and
/// TypeScript are parsed without comments, see [`crate::comments`], which finds a few more; 5:
/// each source file's words and imports are kept, see [`crate::terms`] and [`crate::imports`].)
const FORMAT_VERSION: u32 = 5;

/// One indexed file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Hash of the content the tags were read from.
    pub hash: u64,
    pub language: Option<Language>,
    pub bytes: u64,
    pub tags: FileTags,
    /// A source file's words, to match a request's against (shared with the reference graph).
    pub words: Arc<FileWords>,
    /// A source file's import specifiers as written (resolved when the graph is built).
    pub imports: Vec<String>,
}

/// What an update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The file was (re)indexed.
    Indexed,
    /// The content was the one already indexed.
    Unchanged,
    /// The file is left out, and why.
    Excluded(Exclusion),
}

#[derive(Default)]
pub struct Index {
    files: BTreeMap<String, FileEntry>,
    excluded: BTreeMap<String, Exclusion>,
    ignore_rules: Arc<IgnoreRules>,
    /// Names by number, and each file's names as numbers (not saved: rebuilt when read).
    interner: Interner,
    file_names: FxHashMap<String, FileNames>,
    /// The reference graph, built on first use after a change.
    graph: Mutex<Option<Arc<Graph>>>,
    /// Each file's imports resolved to file numbers, kept while the set of paths stays the same
    /// (an edit resolves the edited file's imports only).
    resolved_imports: Mutex<FxHashMap<String, Vec<u32>>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Index")
            .field("files", &self.files.len())
            .field("excluded", &self.excluded.len())
            .finish()
    }
}

/// The saved form (written borrowed, read owned; same fields in the same order).
#[derive(Serialize)]
struct SavedRef<'a> {
    version: u32,
    files: &'a BTreeMap<String, FileEntry>,
    excluded: &'a BTreeMap<String, Exclusion>,
}

#[derive(Deserialize)]
struct Saved {
    version: u32,
    files: BTreeMap<String, FileEntry>,
    excluded: BTreeMap<String, Exclusion>,
}

pub fn content_hash(content: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(content)
}

/// A file's entry, or why it is left out (the parsing half of an update, done without the index:
/// see [`Index::apply`]).
pub fn read(path: &str, content: &[u8], rules: &IgnoreRules) -> Result<FileEntry, Exclusion> {
    read_with(
        path,
        content,
        content_hash(content),
        rules,
        |language, text| tags::extract(language, text).unwrap_or_default(),
    )
}

/// [`read`] of content whose hash is known, with the tags of a parsable file from `tags_of`.
fn read_with(
    path: &str,
    content: &[u8],
    hash: u64,
    rules: &IgnoreRules,
    tags_of: impl FnOnce(Language, &str) -> FileTags,
) -> Result<FileEntry, Exclusion> {
    if let Some(exclusion) = exclude::by_path(path) {
        return Err(exclusion);
    }
    if rules.is_ignored(path) {
        return Err(Exclusion::Ignored);
    }
    if let Some(exclusion) = exclude::by_content(content) {
        return Err(exclusion);
    }
    let language = Language::of_path(path);
    let (tags, words, imports) = match (language, std::str::from_utf8(content)) {
        (Some(language), Ok(text)) => (
            tags_of(language, text),
            FileWords::of_text(text),
            crate::imports::of_text(language, text),
        ),
        _ => (FileTags::default(), FileWords::default(), Vec::new()),
    };
    Ok(FileEntry {
        hash,
        language,
        bytes: content.len() as u64,
        tags,
        words: Arc::new(words),
        imports,
    })
}

/// Content that several files of one build share (copies, several versions of one library side
/// by side) is parsed once: its tags are kept here by language, hash and length.
type SharedKey = (Language, u64, usize);

struct SharedTags {
    /// Keys seen more than once among the files to build.
    shared: FxHashSet<SharedKey>,
    parsed: Mutex<FxHashMap<SharedKey, Arc<OnceLock<FileTags>>>>,
}

impl SharedTags {
    fn new<P: AsRef<str>, C: AsRef<[u8]>>(files: &[(P, C)], hashes: &[u64]) -> SharedTags {
        let mut seen = FxHashSet::default();
        let mut shared = FxHashSet::default();
        for ((path, content), hash) in files.iter().zip(hashes) {
            if let Some(language) = Language::of_path(path.as_ref()) {
                let key = (language, *hash, content.as_ref().len());
                if !seen.insert(key) {
                    shared.insert(key);
                }
            }
        }
        SharedTags {
            shared,
            parsed: Mutex::default(),
        }
    }

    fn tags(&self, language: Language, text: &str, hash: u64) -> FileTags {
        let key = (language, hash, text.len());
        if !self.shared.contains(&key) {
            return tags::extract(language, text).unwrap_or_default();
        }
        let slot = {
            let mut parsed = match self.parsed.lock() {
                Ok(parsed) => parsed,
                Err(poisoned) => poisoned.into_inner(),
            };
            parsed.entry(key).or_default().clone()
        };
        // A second worker asking for the same content waits for the first one's parse.
        slot.get_or_init(|| tags::extract(language, text).unwrap_or_default())
            .clone()
    }
}

/// [`read`]s many files at once on `workers` threads, counting finished files in `progress`;
/// the results come in the order of `files`. Files with the same content and language (copies,
/// several versions of one library side by side) are parsed once.
pub fn read_all<P: AsRef<str> + Sync, C: AsRef<[u8]> + Sync>(
    files: &[(P, C)],
    rules: &IgnoreRules,
    workers: usize,
    progress: &AtomicUsize,
) -> Vec<Result<FileEntry, Exclusion>> {
    let hashes: Vec<u64> = files
        .iter()
        .map(|(_, content)| content_hash(content.as_ref()))
        .collect();
    let shared = SharedTags::new(files, &hashes);
    let next = AtomicUsize::new(0);
    let finished: Vec<Vec<(usize, Result<FileEntry, Exclusion>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let position = next.fetch_add(1, Ordering::Relaxed);
                        let (Some((path, content)), Some(&hash)) =
                            (files.get(position), hashes.get(position))
                        else {
                            break;
                        };
                        let read = read_with(
                            path.as_ref(),
                            content.as_ref(),
                            hash,
                            rules,
                            |language, text| shared.tags(language, text, hash),
                        );
                        done.push((position, read));
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().ok())
            .collect()
    });
    let mut results: Vec<Option<Result<FileEntry, Exclusion>>> =
        std::iter::repeat_with(|| None).take(files.len()).collect();
    for (position, read) in finished.into_iter().flatten() {
        results[position] = Some(read);
    }
    // A worker that panicked leaves its files unread: they count as unparsable text.
    results
        .into_iter()
        .zip(files)
        .map(|(read, (path, content))| {
            read.unwrap_or_else(|| {
                read_with(path.as_ref(), content.as_ref(), 0, rules, |_, _| {
                    FileTags::default()
                })
            })
        })
        .collect()
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    /// Indexes many files at once on `workers` threads, counting finished files in `progress`
    /// (see [`read_all`]). Ignore files among them apply to all the others.
    pub fn build<C: AsRef<[u8]> + Sync>(
        files: &[(String, C)],
        workers: usize,
        progress: &AtomicUsize,
    ) -> Index {
        let rules = IgnoreRules::new(files.iter().filter_map(|(path, content)| {
            exclude::is_ignore_file(path)
                .then(|| {
                    std::str::from_utf8(content.as_ref())
                        .ok()
                        .map(|text| (path.as_str(), text))
                })
                .flatten()
        }));
        let results = read_all(files, &rules, workers, progress);
        let mut index = Index {
            ignore_rules: Arc::new(rules),
            ..Index::default()
        };
        for ((path, _), result) in files.iter().zip(results) {
            let path = path.clone();
            match result {
                Ok(entry) => {
                    let names = index.interner.file_names(&entry);
                    index.file_names.insert(path.clone(), names);
                    index.files.insert(path, entry);
                }
                Err(exclusion) => {
                    index.excluded.insert(path, exclusion);
                }
            }
        }
        index
    }

    /// Indexes one saved file (again); nothing is parsed when its content did not change.
    pub fn update(&mut self, path: &str, content: &[u8]) -> Change {
        if let Some(entry) = self.files.get(path)
            && entry.hash == content_hash(content)
        {
            return Change::Unchanged;
        }
        let read = read(path, content, &self.ignore_rules);
        self.apply(path, read)
    }

    /// Stores what [`read`] found for a file.
    pub fn apply(&mut self, path: &str, read: Result<FileEntry, Exclusion>) -> Change {
        self.forget_graph();
        let known = self.files.contains_key(path);
        match &read {
            Ok(_) if known => self.forget_imports(Some(path)),
            _ => self.forget_imports(None),
        }
        match read {
            Ok(entry) => {
                self.excluded.remove(path);
                let names = self.interner.file_names(&entry);
                self.file_names.insert(path.to_owned(), names);
                self.files.insert(path.to_owned(), entry);
                Change::Indexed
            }
            Err(exclusion) => {
                self.files.remove(path);
                self.file_names.remove(path);
                self.excluded.insert(path.to_owned(), exclusion);
                Change::Excluded(exclusion)
            }
        }
    }

    /// The ignore rules in force (to [`read`] files without holding the index).
    pub fn ignore_rules(&self) -> Arc<IgnoreRules> {
        self.ignore_rules.clone()
    }

    /// Forgets a deleted file (or every file under a deleted folder).
    pub fn remove(&mut self, path: &str) {
        let folder = format!("{path}/");
        let before = self.files.len() + self.excluded.len();
        self.files
            .retain(|candidate, _| candidate != path && !candidate.starts_with(&folder));
        self.file_names
            .retain(|candidate, _| candidate != path && !candidate.starts_with(&folder));
        self.excluded
            .retain(|candidate, _| candidate != path && !candidate.starts_with(&folder));
        if before != self.files.len() + self.excluded.len() {
            self.forget_graph();
            self.forget_imports(None);
        }
    }

    /// Follows a renamed file or folder without parsing anything again. A file that moves in or
    /// out of a vendored or generated folder is re-judged by `update` with its content.
    pub fn rename(&mut self, from: &str, to: &str) {
        let folder = format!("{from}/");
        let moved: Vec<String> = self
            .files
            .keys()
            .chain(self.excluded.keys())
            .filter(|path| *path == from || path.starts_with(&folder))
            .cloned()
            .collect();
        for old in moved {
            let new = format!("{to}{}", &old[from.len()..]);
            if let Some(entry) = self.files.remove(&old) {
                if let Some(names) = self.file_names.remove(&old) {
                    self.file_names.insert(new.clone(), names);
                }
                self.files.insert(new, entry);
            } else if let Some(exclusion) = self.excluded.remove(&old) {
                self.excluded.insert(new, exclusion);
            }
        }
        self.forget_graph();
        self.forget_imports(None);
    }

    /// Replaces the ignore rules (after an ignore file changed). Files that become ignored
    /// leave; files no longer ignored need their content: they are returned to be updated.
    pub fn set_ignore_rules(&mut self, rules: IgnoreRules) -> Vec<String> {
        let newly_ignored: Vec<String> = self
            .files
            .keys()
            .filter(|path| rules.is_ignored(path))
            .cloned()
            .collect();
        for path in newly_ignored {
            self.files.remove(&path);
            self.file_names.remove(&path);
            self.excluded.insert(path, Exclusion::Ignored);
        }
        let released: Vec<String> = self
            .excluded
            .iter()
            .filter(|(path, exclusion)| {
                **exclusion == Exclusion::Ignored && !rules.is_ignored(path)
            })
            .map(|(path, _)| path.clone())
            .collect();
        for path in &released {
            self.excluded.remove(path);
        }
        self.ignore_rules = Arc::new(rules);
        self.forget_graph();
        self.forget_imports(None);
        released
    }

    pub fn files(&self) -> &BTreeMap<String, FileEntry> {
        &self.files
    }

    pub fn excluded(&self) -> &BTreeMap<String, Exclusion> {
        &self.excluded
    }

    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.get(path)
    }

    /// Whether `path` is indexed with this content already.
    pub fn is_current(&self, path: &str, hash: u64) -> bool {
        self.files.get(path).is_some_and(|entry| entry.hash == hash)
    }

    /// The reference graph of the files as indexed now (built once after each change).
    pub fn graph(&self) -> Arc<Graph> {
        let mut slot = match self.graph.lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(graph) = slot.as_ref() {
            return graph.clone();
        }
        let mut resolved = match self.resolved_imports.lock() {
            Ok(resolved) => resolved,
            Err(poisoned) => poisoned.into_inner(),
        };
        let graph = Arc::new(Graph::build(
            &self.files,
            &self.file_names,
            &self.interner,
            &mut resolved,
        ));
        *slot = Some(graph.clone());
        graph
    }

    /// Ranks the definitions and files for a request, keeping the best `limit`.
    pub fn rank(&self, request: &RankRequest, limit: usize) -> Ranking {
        self.graph().rank_best(request, limit)
    }

    /// Forgets one file's resolved imports (its content changed), or all of them (the set of
    /// paths changed: an import may now resolve elsewhere, and files are numbered anew).
    fn forget_imports(&mut self, path: Option<&str>) {
        let resolved = match self.resolved_imports.get_mut() {
            Ok(resolved) => resolved,
            Err(poisoned) => poisoned.into_inner(),
        };
        match path {
            Some(path) => {
                resolved.remove(path);
            }
            None => resolved.clear(),
        }
    }

    fn forget_graph(&mut self) {
        match self.graph.get_mut() {
            Ok(slot) => *slot = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }

    /// Writes the index to `path` (through a temporary file, so a crash leaves the old one).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let saved = SavedRef {
            version: FORMAT_VERSION,
            files: &self.files,
            excluded: &self.excluded,
        };
        let bytes =
            postcard::to_stdvec(&saved).map_err(|error| Error::Format(error.to_string()))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }

    /// Reads an index written by `save`. The ignore rules are not saved: set them again.
    pub fn load(path: &Path) -> Result<Index, Error> {
        let bytes = std::fs::read(path)?;
        let saved: Saved =
            postcard::from_bytes(&bytes).map_err(|error| Error::Format(error.to_string()))?;
        if saved.version != FORMAT_VERSION {
            return Err(Error::Format(format!(
                "index format {} (this build reads {FORMAT_VERSION})",
                saved.version
            )));
        }
        let mut index = Index {
            files: saved.files,
            excluded: saved.excluded,
            ..Index::default()
        };
        for (path, entry) in &index.files {
            let names = index.interner.file_names(entry);
            index.file_names.insert(path.clone(), names);
        }
        Ok(index)
    }
}
