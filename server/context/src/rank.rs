//! The reference graph between files and its personalized ranking, as Aider's repo map does it:
//! a file that uses a name points at every file that defines it; PageRank, personalized towards
//! the files in the conversation and the names and files the request mentions, ranks files; each
//! file's rank flows along its edges to the definitions it uses.
//!
//! Aider builds one graph edge per (referencer, definer, name); a name defined in many files and
//! used in many makes that product large. Here an edge is kept per (referencer, name) and per
//! (name, definer): every definer of a name receives the same share, so the ranks are the same
//! and the work is the sum of those counts rather than their product.
//!
//! PageRank alone ranks files by what the current file uses and by how central they are: the same
//! hubs for every request, and never the files that use the current file. So files are ordered by
//! a score combining signals (see [`crate::relevance`]): the graph in both directions (names
//! used and defined, imports made and received: callers, tests, the `mod.rs`, `lib.rs`,
//! `index.ts` or `__init__.py` that declares or re-exports the current file), folder proximity,
//! names alike, the request's words in the file's content (BM25) and path, recent edits, changes
//! made together before, and a penalty for hubs that match nothing of the request. Copies are
//! left out of the ranking: files with the same content as another, and folders mirroring
//! another (a generated `deno_dist/` beside `src/`), keeping one and saying why.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::imports::Resolver;
use crate::index::FileEntry;
use crate::language::Language;
use crate::relevance::{Signals, Weights};
use crate::terms::{self, FileWords};

/// The index's names, each once, with a number (kept across changes, so that rebuilding the graph
/// after one file changed hashes no name again).
#[derive(Debug, Default)]
pub struct Interner {
    names: Arc<Vec<String>>,
    ids: FxHashMap<String, u32>,
}

impl Interner {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        Arc::make_mut(&mut self.names).push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    /// The numbers of one file's defined and used names.
    pub fn file_names(&mut self, entry: &FileEntry) -> FileNames {
        let definitions: Vec<u32> = entry
            .tags
            .definitions
            .iter()
            .map(|definition| self.intern(&definition.name))
            .collect();
        let mut sorted: Vec<&str> = definitions
            .iter()
            .map(|name| self.names[*name as usize].as_str())
            .collect();
        sorted.sort_unstable();
        sorted.dedup();
        let shape = if sorted.len() >= 2 {
            crate::index::content_hash(sorted.join("\n").as_bytes())
        } else {
            0
        };
        FileNames {
            shape,
            definitions,
            references: entry
                .tags
                .references
                .iter()
                .map(|(name, count)| (self.intern(name), *count))
                .collect(),
        }
    }
}

/// One file's names by number: each definition's, and each used name with its count; and a hash
/// of its definitions' names (files alike in two folders have the same).
#[derive(Clone, Debug, Default)]
pub struct FileNames {
    pub definitions: Vec<u32>,
    pub references: Vec<(u32, u32)>,
    pub shape: u64,
}

const DAMPING: f64 = 0.85;
const MAX_ITERATIONS: usize = 100;
const TOLERANCE: f64 = 1e-6;
/// Weight of the edge a definition nobody uses keeps to its own file.
const UNUSED_DEFINITION_WEIGHT: f64 = 0.1;

/// The files and names of an index, with who defines and who uses each name.
#[derive(Debug, Default)]
pub struct Graph {
    files: Vec<String>,
    file_ids: FxHashMap<String, u32>,
    names: Arc<Vec<String>>,
    /// Per name used somewhere and defined somewhere: its weight before the request's.
    linked: Vec<LinkedName>,
    reference_file: Vec<u32>,
    reference_weight: Vec<f64>,
    definer_file: Vec<u32>,
    /// Per name defined and never used: (defining file, name).
    unused: Vec<(u32, u32)>,
    /// Files with at least one edge (the nodes PageRank sees).
    in_graph: Vec<bool>,
    /// How many files lie under a folder of each name.
    folder_files: FxHashMap<String, u32>,
    /// Per file: its language (`None`: not source code).
    languages: Vec<Option<Language>>,
    /// Per file: its words, and the average count of words of a source file.
    words: Vec<Arc<FileWords>>,
    average_words: f64,
    /// Per file: the files it imports, and the files that import it.
    imports_out: Vec<Vec<u32>>,
    imports_in: Vec<Vec<u32>>,
    /// Per file: the linked names it uses, and those it defines (positions in `linked`).
    uses_of: Vec<Vec<u32>>,
    defines_of: Vec<Vec<u32>>,
    /// Per file: how many uses its definitions have.
    used: Vec<u32>,
    /// Per file: its path's words (folders and name), and in how many paths each word is.
    path_words: Vec<Vec<u32>>,
    path_word_files: FxHashMap<u32, u32>,
    /// Per file: its name's words (generic names such as `index` or `mod` left out).
    name_words: Vec<Vec<u32>>,
    /// Files left out of the ranking as copies: the file kept, and why.
    left: Vec<Option<(u32, Duplicate)>>,
}

/// Why a file is left out of the ranking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Duplicate {
    /// Its content is another file's.
    SameContent,
    /// Its folder mirrors another (`mirror` is a generated copy of `kept`): same paths below
    /// them, same definitions.
    Mirror { mirror: String, kept: String },
}

impl Duplicate {
    pub fn reason(&self) -> String {
        match self {
            Duplicate::SameContent => "a copy: another file has the same content".to_owned(),
            Duplicate::Mirror { mirror, kept } => {
                let name = |folder: &str| {
                    if folder.is_empty() {
                        "the project's root".to_owned()
                    } else {
                        format!("{folder}/")
                    }
                };
                format!("a mirror of {} in {}", name(kept), name(mirror))
            }
        }
    }
}

#[derive(Debug)]
struct LinkedName {
    name: u32,
    weight: f64,
    references: std::ops::Range<usize>,
    definers: std::ops::Range<usize>,
}

/// What a request points at.
#[derive(Clone, Debug, Default)]
pub struct RankRequest {
    /// Files already in the conversation (the current file): their uses weigh 50 times more,
    /// and they are left out of the map (their content is sent whole).
    pub chat_files: Vec<String>,
    /// Files the message names.
    pub mentioned_files: Vec<String>,
    /// Files edited lately: lifted half as much as a mentioned file.
    pub recent_files: Vec<String>,
    /// Words of the message: names among them weigh 10 times more.
    pub mentioned_names: FxHashSet<String>,
    /// Files changed together with the current file before (from a version history, when the
    /// project has one), with how many times.
    pub co_changed: Vec<(String, u32)>,
}

/// One ranked definition (or a file with no ranked definitions, `name` empty).
#[derive(Clone, Debug, PartialEq)]
pub struct RankedName {
    pub file: String,
    pub name: String,
    pub rank: f64,
}

/// The outcome of ranking: definitions best first (a file's best definition where the file's
/// score puts it, its others after), with the files without definitions among them.
#[derive(Clone, Debug, Default)]
pub struct Ranking {
    pub names: Vec<RankedName>,
    /// Each file's own PageRank (files outside the graph are absent).
    pub file_ranks: FxHashMap<String, f64>,
    /// Why the best files rank where they do ("uses the current file; same folder; ...").
    pub reasons: FxHashMap<String, String>,
}

impl Ranking {
    /// Files in the order their first definition (or themselves) appears.
    pub fn files(&self) -> Vec<&str> {
        let mut seen = FxHashSet::default();
        self.names
            .iter()
            .filter(|ranked| seen.insert(ranked.file.as_str()))
            .map(|ranked| ranked.file.as_str())
            .collect()
    }
}

fn name_weight(name: &str, definers: usize) -> f64 {
    let has_letter = name.chars().any(char::is_alphabetic);
    let snake = name.contains('_') && has_letter;
    let kebab = name.contains('-') && has_letter;
    let camel = name.chars().any(char::is_uppercase) && name.chars().any(char::is_lowercase);
    let mut weight = 1.0;
    if (snake || kebab || camel) && name.chars().count() >= 8 {
        weight *= 10.0;
    }
    if name.starts_with('_') {
        weight *= 0.1;
    }
    if definers > 5 {
        weight *= 0.1;
    }
    weight
}

/// Words of file names that say nothing of what a file is about.
const GENERIC_NAMES: &[&str] = &[
    "index", "mod", "lib", "main", "init", "test", "tests", "spec", "util", "utils", "helper",
    "helpers", "types", "common", "core", "base", "src",
];

/// Folder names that say "a generated copy" (a mirror of another folder with one of these names
/// is taken for the copy).
const COPY_FOLDER_WORDS: &[&str] = &[
    "dist",
    "build",
    "gen",
    "generated",
    "out",
    "compiled",
    "deno",
    "esm",
    "cjs",
    "bundle",
    "copy",
    "mirror",
    "vendored",
    "legacy",
    "old",
];

/// Files that are copies of others, with the file kept: same content (and language), or a
/// folder mirroring another (at least 3 files, and half of the smaller folder's source files,
/// with the same name and definitions at the same path below each folder).
fn copies(
    files: &[String],
    entries: &BTreeMap<String, FileEntry>,
    file_names: &FxHashMap<String, FileNames>,
) -> Vec<Option<(u32, Duplicate)>> {
    let mut left: Vec<Option<(u32, Duplicate)>> = vec![None; files.len()];
    let entry = |file: u32| entries.get(&files[file as usize]);
    let copy_like = |path: &str| {
        path.split('/').rev().skip(1).any(|folder| {
            let folder = folder.to_ascii_lowercase();
            COPY_FOLDER_WORDS
                .iter()
                .any(|word| folder.split(['_', '-', '.']).any(|part| part == *word))
        })
    };
    // Which of two files to keep: not under a copy-like folder, shallower, then first by path.
    let keep_key = |file: u32| {
        let path = files[file as usize].as_str();
        (copy_like(path), path.matches('/').count(), path)
    };
    let mut by_content: FxHashMap<(u64, u64), Vec<u32>> = FxHashMap::default();
    let mut by_shape: FxHashMap<(&str, u64), Vec<u32>> = FxHashMap::default();
    // Source files under each folder (the root is "").
    let mut sources_in: FxHashMap<&str, usize> = FxHashMap::default();
    for (file, path) in files.iter().enumerate() {
        let Some(entry) = entries.get(path) else {
            continue;
        };
        if entry.language.is_none() {
            continue;
        }
        let mut end = path.len();
        while let Some(slash) = path[..end].rfind('/') {
            *sources_in.entry(&path[..slash]).or_default() += 1;
            end = slash;
        }
        *sources_in.entry("").or_default() += 1;
        by_content
            .entry((entry.hash, entry.bytes))
            .or_default()
            .push(file as u32);
        let shape = file_names.get(path).map_or(0, |names| names.shape);
        if shape != 0 {
            let name = path.rsplit('/').next().unwrap_or(path);
            by_shape.entry((name, shape)).or_default().push(file as u32);
        }
    }
    for group in by_content.values().filter(|group| group.len() > 1) {
        let Some(kept) = group
            .iter()
            .copied()
            .min_by(|a, b| keep_key(*a).cmp(&keep_key(*b)))
        else {
            continue;
        };
        for file in group {
            if *file != kept && entry(*file).is_some() {
                left[*file as usize] = Some((kept, Duplicate::SameContent));
            }
        }
    }
    // Pairs of files alike below two different folders, by pair of folders.
    let mut pairs: FxHashMap<(String, String), Vec<(u32, u32)>> = FxHashMap::default();
    for group in by_shape
        .values()
        .chain(by_content.values())
        .filter(|group| (2..=4).contains(&group.len()))
    {
        for (position, a) in group.iter().enumerate() {
            for b in &group[position + 1..] {
                let (pa, pb) = (&files[*a as usize], &files[*b as usize]);
                let (fa, fb) = (
                    pa.split('/').collect::<Vec<_>>(),
                    pb.split('/').collect::<Vec<_>>(),
                );
                let common = fa
                    .iter()
                    .rev()
                    .zip(fb.iter().rev())
                    .take_while(|(x, y)| x == y)
                    .count();
                let folder_a = fa[..fa.len() - common].join("/");
                let folder_b = fb[..fb.len() - common].join("/");
                if folder_a == folder_b {
                    continue;
                }
                if folder_a < folder_b {
                    pairs
                        .entry((folder_a, folder_b))
                        .or_default()
                        .push((*a, *b));
                } else {
                    pairs
                        .entry((folder_b, folder_a))
                        .or_default()
                        .push((*b, *a));
                }
            }
        }
    }
    let sources_under = |folder: &str| sources_in.get(folder).copied().unwrap_or(0);
    let ids: FxHashMap<&str, u32> = files
        .iter()
        .enumerate()
        .map(|(file, path)| (path.as_str(), file as u32))
        .collect();
    for ((folder_a, folder_b), mut matched) in pairs {
        matched.sort_unstable();
        matched.dedup();
        if matched.len() < 3 {
            continue;
        }
        let smaller = sources_under(&folder_a).min(sources_under(&folder_b));
        if matched.len() * 3 < smaller {
            continue;
        }
        // The copy: the folder named like one, else the one with fewer source files, else the
        // deeper.
        let key = |folder: &str| {
            (
                copy_like(&format!("{folder}/x")),
                std::cmp::Reverse(sources_under(folder)),
                folder.matches('/').count(),
            )
        };
        let a_is_copy = key(&folder_a) > key(&folder_b);
        let (mirror, kept) = if a_is_copy {
            (folder_a, folder_b)
        } else {
            (folder_b, folder_a)
        };
        // Every file of the mirror with a counterpart at the same place in the kept folder (its
        // content may lag behind, or differ where the copy was rewritten).
        let prefix = if mirror.is_empty() {
            String::new()
        } else {
            format!("{mirror}/")
        };
        for (file, path) in files.iter().enumerate() {
            let Some(below) = path.strip_prefix(&prefix) else {
                continue;
            };
            let counterpart = if kept.is_empty() {
                below.to_owned()
            } else {
                format!("{kept}/{below}")
            };
            let Some(original) = ids.get(counterpart.as_str()).copied() else {
                continue;
            };
            if left[file].is_none() && left[original as usize].is_none() {
                left[file] = Some((
                    original,
                    Duplicate::Mirror {
                        mirror: mirror.clone(),
                        kept: kept.clone(),
                    },
                ));
            }
        }
    }
    left
}

impl Graph {
    /// The graph of `entries`; `resolved` keeps each file's imports resolved (see
    /// [`crate::index::Index`]): files missing there are resolved and added.
    pub fn build(
        entries: &BTreeMap<String, FileEntry>,
        file_names: &FxHashMap<String, FileNames>,
        interner: &Interner,
        resolved: &mut FxHashMap<String, Vec<u32>>,
    ) -> Graph {
        let mut graph = Graph {
            names: interner.names.clone(),
            ..Graph::default()
        };
        let name_count = graph.names.len();
        let mut definers: Vec<Vec<u32>> = vec![Vec::new(); name_count];
        let mut users: Vec<Vec<(u32, u32)>> = vec![Vec::new(); name_count];
        let mut any_reference = false;
        let mut source_words = 0u64;
        let mut source_files = 0u64;
        for (path, entry) in entries {
            let mut folders: Vec<&str> = path.split('/').collect();
            folders.pop();
            folders.sort_unstable();
            folders.dedup();
            for folder in folders {
                *graph.folder_files.entry(folder.to_owned()).or_default() += 1;
            }
            graph
                .file_ids
                .insert(path.clone(), graph.files.len() as u32);
            graph.files.push(path.clone());
            graph.languages.push(entry.language);
            graph.words.push(entry.words.clone());
            if entry.language.is_some() {
                source_words += u64::from(entry.words.total);
                source_files += 1;
            }
        }
        graph.average_words = source_words as f64 / source_files.max(1) as f64;
        graph.left = copies(&graph.files, entries, file_names);
        for (file, path) in graph.files.iter().enumerate() {
            let file = file as u32;
            if graph.left[file as usize].is_some() {
                continue;
            }
            let Some(names) = file_names.get(path) else {
                continue;
            };
            for name in &names.definitions {
                let list = &mut definers[*name as usize];
                if list.last() != Some(&file) {
                    list.push(file);
                }
            }
            for (name, count) in &names.references {
                any_reference = true;
                users[*name as usize].push((file, *count));
            }
        }
        // A project whose grammar found no uses at all links each definition to its own file.
        if !any_reference {
            for (name, files) in definers.iter().enumerate() {
                users[name] = files.iter().map(|file| (*file, 1)).collect();
            }
        }
        let file_count = graph.files.len();
        graph.in_graph = vec![false; file_count];
        graph.uses_of = vec![Vec::new(); file_count];
        graph.defines_of = vec![Vec::new(); file_count];
        graph.used = vec![0; file_count];
        for (name, files) in definers.iter_mut().enumerate() {
            if files.is_empty() {
                continue;
            }
            files.sort_unstable();
            files.dedup();
            if users[name].is_empty() {
                for file in files.iter() {
                    graph.unused.push((*file, name as u32));
                    graph.in_graph[*file as usize] = true;
                }
                continue;
            }
            let position = graph.linked.len() as u32;
            let references_start = graph.reference_file.len();
            for (file, count) in &users[name] {
                graph.reference_file.push(*file);
                graph.reference_weight.push(f64::from(*count).sqrt());
                graph.in_graph[*file as usize] = true;
                graph.uses_of[*file as usize].push(position);
            }
            let definers_start = graph.definer_file.len();
            for file in files.iter() {
                graph.definer_file.push(*file);
                graph.in_graph[*file as usize] = true;
                graph.defines_of[*file as usize].push(position);
                graph.used[*file as usize] += users[name].len() as u32;
            }
            graph.linked.push(LinkedName {
                name: name as u32,
                weight: name_weight(&graph.names[name], files.len()),
                references: references_start..graph.reference_file.len(),
                definers: definers_start..graph.definer_file.len(),
            });
        }
        // Imports, resolved to the project's files.
        graph.imports_out = vec![Vec::new(); file_count];
        graph.imports_in = vec![Vec::new(); file_count];
        let mut resolver: Option<Resolver<'_>> = None;
        for (path, entry) in entries {
            let (Some(language), Some(file)) = (entry.language, graph.file_ids.get(path)) else {
                continue;
            };
            let file = *file;
            if graph.left[file as usize].is_some() || entry.imports.is_empty() {
                continue;
            }
            if !resolved.contains_key(path) {
                let resolver =
                    resolver.get_or_insert_with(|| Resolver::new(&graph.files, &graph.file_ids));
                let targets: Vec<u32> = entry
                    .imports
                    .iter()
                    .filter_map(|spec| resolver.resolve(path, language, spec))
                    .collect();
                resolved.insert(path.clone(), targets);
            }
            for target in resolved.get(path).into_iter().flatten().copied() {
                if target == file || graph.left[target as usize].is_some() {
                    continue;
                }
                if !graph.imports_out[file as usize].contains(&target) {
                    graph.imports_out[file as usize].push(target);
                    graph.imports_in[target as usize].push(file);
                }
            }
        }
        // Words of paths and names.
        graph.path_words = vec![Vec::new(); file_count];
        graph.name_words = vec![Vec::new(); file_count];
        for (file, path) in graph.files.iter().enumerate() {
            let without_extension = path
                .rsplit_once('.')
                .map_or(path.as_str(), |(stem, _)| stem);
            let mut words: Vec<u32> = Vec::new();
            terms::for_each_word(without_extension, |word| words.push(terms::hash(word)));
            words.sort_unstable();
            words.dedup();
            for word in &words {
                *graph.path_word_files.entry(*word).or_default() += 1;
            }
            graph.path_words[file] = words;
            let name = without_extension
                .rsplit('/')
                .next()
                .unwrap_or(without_extension);
            let mut words: Vec<u32> = Vec::new();
            terms::for_each_word(name, |word| {
                if !GENERIC_NAMES
                    .iter()
                    .any(|generic| terms::stem(generic) == word)
                {
                    words.push(terms::hash(word));
                }
            });
            words.sort_unstable();
            words.dedup();
            graph.name_words[file] = words;
        }
        graph
    }

    /// The files left out of the ranking as copies, and why.
    pub fn left_out(&self) -> Vec<(&str, &Duplicate, &str)> {
        self.left
            .iter()
            .enumerate()
            .filter_map(|(file, left)| {
                let (kept, why) = left.as_ref()?;
                Some((
                    self.files[file].as_str(),
                    why,
                    self.files[*kept as usize].as_str(),
                ))
            })
            .collect()
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    pub fn file_id(&self, path: &str) -> Option<u32> {
        self.file_ids.get(path).copied()
    }

    /// Ranks the definitions and files for a request: every one of them.
    pub fn rank(&self, request: &RankRequest) -> Ranking {
        self.rank_best(request, usize::MAX)
    }

    /// Ranks the definitions and files for a request, keeping the best `limit` (a map of `n`
    /// tokens never shows more than `n / 2` of them: each costs a line).
    pub fn rank_best(&self, request: &RankRequest, limit: usize) -> Ranking {
        self.rank_with(request, limit, &Weights::default())
    }

    fn chat(&self, request: &RankRequest) -> FxHashSet<u32> {
        request
            .chat_files
            .iter()
            .filter_map(|path| self.file_id(path))
            .collect()
    }

    /// Whether a file may be ranked: not in the conversation, not a copy, source code (or
    /// named by the request).
    fn rankable(&self, file: usize, chat: &FxHashSet<u32>, signals: &Signals) -> bool {
        !chat.contains(&(file as u32))
            && self.left[file].is_none()
            && (self.languages[file].is_some() || signals.mentioned > 0.0)
    }

    /// Each file's signals for a request (see [`crate::relevance`]), by path: the files that may
    /// be ranked only (not the current file, not copies).
    pub fn signals(&self, request: &RankRequest) -> Vec<(&str, Signals)> {
        if self.files.is_empty() {
            return Vec::new();
        }
        let chat = self.chat(request);
        let page_rank = self.page_rank(request, &chat);
        let query = query_words(request);
        let signals = self.file_signals(request, &chat, &page_rank.rank, &query);
        signals
            .into_iter()
            .enumerate()
            .filter(|(file, signals)| self.rankable(*file, &chat, signals))
            .map(|(file, signals)| (self.files[file].as_str(), signals))
            .collect()
    }

    /// [`Graph::rank_best`] with other weights (to tune them).
    pub fn rank_with(&self, request: &RankRequest, limit: usize, weights: &Weights) -> Ranking {
        let file_count = self.files.len();
        if file_count == 0 {
            return Ranking::default();
        }
        let chat = self.chat(request);
        let page_rank = self.page_rank(request, &chat);
        let query = query_words(request);
        let signals = self.file_signals(request, &chat, &page_rank.rank, &query);
        let scores: Vec<f64> = signals
            .iter()
            .map(|signals| f64::from(weights.score(signals)))
            .collect();
        let rankable: Vec<bool> = (0..file_count)
            .map(|file| self.rankable(file, &chat, &signals[file]))
            .collect();

        // Each definition's share of its file's rank: how much rank flows to it along the edges
        // of the files that use it (as Aider ranks definitions).
        let mut inflow = vec![0.0f64; self.linked.len()];
        self.flow(
            &page_rank.rank,
            &page_rank.weight,
            &page_rank.out,
            &mut inflow,
        );
        let mut shares: Vec<(f64, u32, u32)> = Vec::new();
        for (linked, flow) in self.linked.iter().zip(&inflow) {
            for position in linked.definers.clone() {
                shares.push((*flow, self.definer_file[position], linked.name));
            }
        }
        for (file, name) in &self.unused {
            let out = page_rank.out[*file as usize];
            let share = if out > 0.0 {
                page_rank.rank[*file as usize] * UNUSED_DEFINITION_WEIGHT / out
            } else {
                0.0
            };
            shares.push((share, *file, *name));
        }
        shares.retain(|(_, file, _)| rankable[*file as usize]);
        let mut best_share = vec![0.0f64; file_count];
        for (share, file, _) in &shares {
            let best = &mut best_share[*file as usize];
            *best = best.max(*share);
        }
        // A file's best definition takes its score; its others follow, lower by up to
        // NAME_SPREAD as their share is smaller.
        let key = |share: f64, file: u32| {
            let best = best_share[file as usize];
            let relative = if best > 0.0 { share / best } else { 1.0 };
            scores[file as usize] - NAME_SPREAD * (1.0 - relative)
        };
        let mut ranked: Vec<(f64, u32, u32)> = shares
            .iter()
            .map(|(share, file, name)| (key(*share, *file), *file, *name))
            .collect();
        let mut has_names = vec![false; file_count];
        for (_, file, _) in &ranked {
            has_names[*file as usize] = true;
        }
        const NO_NAME: u32 = u32::MAX;
        for file in 0..file_count {
            if rankable[file] && !has_names[file] {
                ranked.push((scores[file], file as u32, NO_NAME));
            }
        }
        let name_of = |name: u32| {
            if name == NO_NAME {
                ""
            } else {
                self.names[name as usize].as_str()
            }
        };
        let order = |a: &(f64, u32, u32), b: &(f64, u32, u32)| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.files[a.1 as usize].cmp(&self.files[b.1 as usize]))
                .then_with(|| name_of(a.2).cmp(name_of(b.2)))
        };
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit, order);
            ranked.truncate(limit);
        }
        ranked.sort_by(order);
        // Ranks are positive (the manifest shows each file's share of the best).
        let names: Vec<RankedName> = ranked
            .into_iter()
            .map(|(key, file, name)| RankedName {
                file: self.files[file as usize].clone(),
                name: name_of(name).to_owned(),
                rank: key.exp(),
            })
            .collect();

        // For each file using the current file, the most specific name it uses.
        let mut used_name: FxHashMap<u32, u32> = FxHashMap::default();
        for chat_file in &chat {
            let mut defined: Vec<&LinkedName> = self.defines_of[*chat_file as usize]
                .iter()
                .map(|position| &self.linked[*position as usize])
                .collect();
            defined.sort_by(|a, b| self.specificity(b).total_cmp(&self.specificity(a)));
            for linked in defined {
                for reference in linked.references.clone() {
                    used_name
                        .entry(self.reference_file[reference])
                        .or_insert(linked.name);
                }
            }
        }
        let mut reasons = FxHashMap::default();
        for ranked in &names {
            if reasons.len() >= REASON_FILES {
                break;
            }
            if reasons.contains_key(&ranked.file) {
                continue;
            }
            let Some(file) = self.file_id(&ranked.file) else {
                continue;
            };
            reasons.insert(
                ranked.file.clone(),
                self.explain(
                    file,
                    request,
                    used_name
                        .get(&file)
                        .map(|name| self.names[*name as usize].as_str()),
                    &signals[file as usize],
                    &query,
                    weights,
                ),
            );
        }
        let file_ranks = (0..file_count)
            .filter(|file| self.in_graph[*file])
            .map(|file| (self.files[file].clone(), page_rank.rank[file]))
            .collect();
        Ranking {
            names,
            file_ranks,
            reasons,
        }
    }

    /// PageRank over the reference graph, personalized towards the request, as Aider does it.
    fn page_rank(&self, request: &RankRequest, chat: &FxHashSet<u32>) -> PageRank {
        let file_count = self.files.len();
        let mentioned_files: FxHashSet<&str> =
            request.mentioned_files.iter().map(String::as_str).collect();
        let recent_files: FxHashSet<&str> =
            request.recent_files.iter().map(String::as_str).collect();

        // Personalization, as Aider: files in the conversation, files mentioned, and files
        // whose path parts are mentioned words.
        let mut personal = vec![0.0f64; file_count];
        for (file, path) in self.files.iter().enumerate() {
            let mut value = 0.0;
            if chat.contains(&(file as u32)) {
                value += 1.0;
            }
            if mentioned_files.contains(path.as_str()) {
                value = f64::max(value, 1.0);
            }
            if recent_files.contains(path.as_str()) {
                value = f64::max(value, 0.5);
            }
            if !request.mentioned_names.is_empty()
                && self.path_mentions(path, &request.mentioned_names)
            {
                value += 1.0;
            }
            personal[file] = value;
        }

        // Edge weights for this request, and each file's total outgoing weight.
        let mut weight = vec![0.0f64; self.reference_file.len()];
        let mut out = vec![0.0f64; file_count];
        for linked in &self.linked {
            let mut name_weight = linked.weight;
            if request
                .mentioned_names
                .contains(self.names[linked.name as usize].as_str())
            {
                name_weight *= 10.0;
            }
            let definers = linked.definers.len() as f64;
            for position in linked.references.clone() {
                let file = self.reference_file[position];
                let mut value = name_weight * self.reference_weight[position];
                if chat.contains(&file) {
                    value *= 50.0;
                }
                weight[position] = value;
                out[file as usize] += value * definers;
            }
        }
        for (file, _) in &self.unused {
            out[*file as usize] += UNUSED_DEFINITION_WEIGHT;
        }
        let mut unused_count = vec![0u32; file_count];
        for (file, _) in &self.unused {
            unused_count[*file as usize] += 1;
        }

        let nodes: Vec<usize> = (0..file_count)
            .filter(|file| self.in_graph[*file])
            .collect();
        let node_count = nodes.len();
        let mut rank = vec![0.0f64; file_count];
        if node_count == 0 {
            return PageRank { rank, weight, out };
        }
        let personal_total: f64 = nodes.iter().map(|file| personal[*file]).sum();
        let teleport: Vec<f64> = (0..file_count)
            .map(|file| {
                if !self.in_graph[file] {
                    0.0
                } else if personal_total > 0.0 {
                    personal[file] / personal_total
                } else {
                    1.0 / node_count as f64
                }
            })
            .collect();
        let dangling: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|file| out[*file] == 0.0)
            .collect();

        for file in &nodes {
            rank[*file] = 1.0 / node_count as f64;
        }
        let mut next = vec![0.0f64; file_count];
        let mut inflow = vec![0.0f64; self.linked.len()];
        for _ in 0..MAX_ITERATIONS {
            next.iter_mut().for_each(|value| *value = 0.0);
            self.flow(&rank, &weight, &out, &mut inflow);
            for (linked, flow) in self.linked.iter().zip(&inflow) {
                for position in linked.definers.clone() {
                    next[self.definer_file[position] as usize] += flow;
                }
            }
            for file in &nodes {
                if unused_count[*file] > 0 {
                    next[*file] +=
                        rank[*file] * UNUSED_DEFINITION_WEIGHT * f64::from(unused_count[*file])
                            / out[*file];
                }
            }
            let dangling_sum: f64 = dangling.iter().map(|file| rank[*file]).sum();
            let mut change = 0.0;
            for file in &nodes {
                let value = DAMPING * (next[*file] + dangling_sum * teleport[*file])
                    + (1.0 - DAMPING) * teleport[*file];
                change += (value - rank[*file]).abs();
                next[*file] = value;
            }
            std::mem::swap(&mut rank, &mut next);
            if change < node_count as f64 * TOLERANCE {
                break;
            }
        }
        PageRank { rank, weight, out }
    }

    /// Per linked name: the rank flowing into each of its definers.
    fn flow(&self, rank: &[f64], weight: &[f64], out: &[f64], inflow: &mut [f64]) {
        for (linked, flow) in self.linked.iter().zip(inflow.iter_mut()) {
            let mut total = 0.0;
            for position in linked.references.clone() {
                let file = self.reference_file[position] as usize;
                if out[file] > 0.0 {
                    total += rank[file] * weight[position] / out[file];
                }
            }
            *flow = total;
        }
    }

    /// How specific a linked name is: rare uses and a single definer make a strong tie.
    fn specificity(&self, linked: &LinkedName) -> f64 {
        let users = linked.references.len() as f64;
        let definers = linked.definers.len() as f64;
        let name = &self.names[linked.name as usize];
        let short = if name.chars().count() < 3 { 0.2 } else { 1.0 };
        short * (1.0 + self.files.len() as f64 / (1.0 + users)).ln() / definers
    }

    fn file_signals(
        &self,
        request: &RankRequest,
        chat: &FxHashSet<u32>,
        page_rank: &[f64],
        query: &[(u32, String)],
    ) -> Vec<Signals> {
        let file_count = self.files.len();
        let mut signals = vec![Signals::default(); file_count];
        let chat_paths: Vec<&str> = chat
            .iter()
            .map(|file| self.files[*file as usize].as_str())
            .collect();

        // Folders and names.
        let chat_name_words: Vec<&[u32]> = chat
            .iter()
            .map(|file| self.name_words[*file as usize].as_slice())
            .collect();
        for (file, path) in self.files.iter().enumerate() {
            let signal = &mut signals[file];
            for chat_path in &chat_paths {
                let distance = folder_distance(path, chat_path);
                if distance == 0 {
                    signal.same_folder = 1.0;
                }
                signal.folder_near = signal.folder_near.max(1.0 / (1.0 + distance as f32));
            }
            let words = &self.name_words[file];
            for chat_words in &chat_name_words {
                if words.is_empty() || chat_words.is_empty() {
                    continue;
                }
                let shared = words
                    .iter()
                    .filter(|word| chat_words.contains(word))
                    .count();
                let union = words.len() + chat_words.len() - shared;
                signal.name_like = signal.name_like.max(shared as f32 / union as f32);
            }
        }

        // The reference graph both ways, by names and by imports.
        let mut defines_used = vec![0.0f64; file_count];
        let mut uses_current = vec![0.0f64; file_count];
        for chat_file in chat {
            let chat_file = *chat_file as usize;
            for position in &self.uses_of[chat_file] {
                let linked = &self.linked[*position as usize];
                let weight = self.specificity(linked);
                for definer in linked.definers.clone() {
                    defines_used[self.definer_file[definer] as usize] += weight;
                }
            }
            for position in &self.defines_of[chat_file] {
                let linked = &self.linked[*position as usize];
                let weight = self.specificity(linked);
                for reference in linked.references.clone() {
                    uses_current[self.reference_file[reference] as usize] += weight;
                }
            }
            for imported in &self.imports_out[chat_file] {
                signals[*imported as usize].imported = 1.0;
            }
            for importer in &self.imports_in[chat_file] {
                signals[*importer as usize].imports_current = 1.0;
            }
        }
        normalize(
            &mut defines_used,
            |signal, value| signal.defines_used = value,
            &mut signals,
        );
        normalize(
            &mut uses_current,
            |signal, value| signal.uses_current = value,
            &mut signals,
        );

        // The request's words in each source file (BM25) and in its path.
        if !query.is_empty() {
            let mut counts = vec![0u32; file_count * query.len()];
            let mut document_frequency = vec![0u32; query.len()];
            let mut sources = 0u32;
            for file in 0..file_count {
                if self.languages[file].is_none() || self.left[file].is_some() {
                    continue;
                }
                sources += 1;
                let words = &self.words[file];
                for (position, (word, _)) in query.iter().enumerate() {
                    let count = words.count(*word);
                    counts[file * query.len() + position] = count;
                    if count > 0 {
                        document_frequency[position] += 1;
                    }
                }
            }
            let mut idf: Vec<f64> = document_frequency
                .iter()
                .map(|frequency| {
                    let frequency = f64::from(*frequency);
                    (1.0 + (f64::from(sources) - frequency + 0.5) / (frequency + 0.5)).ln()
                })
                .collect();
            // A long request counts its rarest words only (common ones would add noise to
            // every file's score).
            let mut rarest: Vec<usize> = (0..query.len())
                .filter(|position| document_frequency[*position] > 0)
                .collect();
            if rarest.len() > QUERY_WORDS {
                rarest.sort_by(|a, b| idf[*b].total_cmp(&idf[*a]).then(a.cmp(b)));
                for position in rarest.into_iter().skip(QUERY_WORDS) {
                    idf[position] = 0.0;
                }
            }
            let mut text = vec![0.0f64; file_count];
            for (file, value) in text.iter_mut().enumerate() {
                let length = f64::from(self.words[file].total) / self.average_words.max(1.0);
                for (position, idf) in idf.iter().enumerate() {
                    let count = f64::from(counts[file * query.len() + position]);
                    if count > 0.0 {
                        *value += idf * count * (BM25_K1 + 1.0)
                            / (count + BM25_K1 * (1.0 - BM25_B + BM25_B * length));
                    }
                }
            }
            normalize(&mut text, |signal, value| signal.text = value, &mut signals);

            let query_words: FxHashSet<u32> = query.iter().map(|(word, _)| *word).collect();
            let mut path = vec![0.0f64; file_count];
            for (file, value) in path.iter_mut().enumerate() {
                for word in &self.path_words[file] {
                    if query_words.contains(word) {
                        let files = f64::from(self.path_word_files.get(word).copied().unwrap_or(1));
                        *value += (1.0 + file_count as f64 / files).ln();
                    }
                }
            }
            normalize(
                &mut path,
                |signal, value| signal.path_words = value,
                &mut signals,
            );
        }

        // The graph's rank, hubs, and what the caller knows.
        let best_rank = page_rank.iter().copied().fold(0.0f64, f64::max);
        let most_used = self.used.iter().copied().max().unwrap_or(0);
        let recent: FxHashSet<&str> = request.recent_files.iter().map(String::as_str).collect();
        let mentioned: FxHashSet<&str> =
            request.mentioned_files.iter().map(String::as_str).collect();
        let co_changed: FxHashMap<&str, u32> = request
            .co_changed
            .iter()
            .map(|(path, count)| (path.as_str(), *count))
            .collect();
        let most_co_changed = request
            .co_changed
            .iter()
            .map(|(_, count)| *count)
            .max()
            .unwrap_or(0);
        for (file, path) in self.files.iter().enumerate() {
            let signal = &mut signals[file];
            if best_rank > 0.0 {
                signal.graph_rank = (page_rank[file] / best_rank) as f32;
            }
            if most_used > 0 {
                signal.hub = ((1.0 + f64::from(self.used[file])).ln()
                    / (1.0 + f64::from(most_used)).ln()) as f32;
            }
            if recent.contains(path.as_str()) {
                signal.recent = 1.0;
            }
            if let Some(count) = co_changed.get(path.as_str()) {
                signal.co_changed = ((1.0 + f64::from(*count)).ln()
                    / (1.0 + f64::from(most_co_changed)).ln())
                    as f32;
            }
            if mentioned.contains(path.as_str()) {
                signal.mentioned = 1.0;
            } else if !request.mentioned_names.is_empty()
                && self.path_mentions_name(path, &request.mentioned_names)
            {
                signal.mentioned = 0.5;
            }
        }
        signals
    }

    /// The reasons of one file's rank, in words.
    fn explain(
        &self,
        file: u32,
        request: &RankRequest,
        used_name: Option<&str>,
        signals: &Signals,
        query: &[(u32, String)],
        weights: &Weights,
    ) -> String {
        let words = &self.words[file as usize];
        let mut matched: Vec<(u32, &str)> = query
            .iter()
            .filter(|(word, _)| words.count(*word) > 0)
            .map(|(word, text)| {
                (
                    self.path_word_files.get(word).copied().unwrap_or(0),
                    text.as_str(),
                )
            })
            .collect();
        matched.sort();
        let matched: Vec<String> = matched
            .into_iter()
            .map(|(_, text)| text.to_owned())
            .collect();
        let path = &self.files[file as usize];
        let together = request
            .co_changed
            .iter()
            .find(|(other, _)| other == path)
            .map_or(0, |(_, count)| *count);
        crate::relevance::reasons(weights, signals, &matched, used_name, together)
    }
}

/// What PageRank leaves for ranking definitions: each file's rank, each reference's weight for
/// this request and each file's total outgoing weight.
struct PageRank {
    rank: Vec<f64>,
    weight: Vec<f64>,
    out: Vec<f64>,
}

const BM25_K1: f64 = 1.2;
const BM25_B: f64 = 0.75;
/// How far below its file's score a file's least ranked definition goes.
const NAME_SPREAD: f64 = 0.3;
/// Files whose reasons are written out, at most (more than a map shows).
const REASON_FILES: usize = 80;
/// Words of a request whose counts add to a file's score, at most (the rarest).
const QUERY_WORDS: usize = 64;
/// Words of a request looked for, at most.
const QUERY_WORDS_READ: usize = 256;

/// The request's words to look for in files (from the words of its message).
fn query_words(request: &RankRequest) -> Vec<(u32, String)> {
    let mut names: Vec<&str> = request.mentioned_names.iter().map(String::as_str).collect();
    names.sort_unstable();
    let mut words = terms::of_request(&names.join(" "));
    words.truncate(QUERY_WORDS_READ);
    words
}

/// Sets each file's signal to its value over the largest (0 when all are 0).
fn normalize(values: &mut [f64], set: impl Fn(&mut Signals, f32), signals: &mut [Signals]) {
    let best = values.iter().copied().fold(0.0f64, f64::max);
    if best <= 0.0 {
        return;
    }
    for (value, signal) in values.iter().zip(signals.iter_mut()) {
        set(signal, (*value / best) as f32);
    }
}

/// Folders between two files' folders (0: the same folder).
fn folder_distance(a: &str, b: &str) -> usize {
    let (mut a, mut b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    a.pop();
    b.pop();
    let shared = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    a.len() + b.len() - 2 * shared
}

impl Graph {
    /// Whether a path's name or name without extension is one of the words.
    fn path_mentions_name(&self, path: &str, words: &FxHashSet<String>) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        words.contains(name) || words.contains(stem)
    }

    /// Whether a path's name, name without extension, or one of its folders is one of the words.
    /// Aider counts every folder; here a folder counts only when it is specific (holds fewer
    /// than one file in twenty): naming `src` says nothing about which file under it.
    fn path_mentions(&self, path: &str, words: &FxHashSet<String>) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        if words.contains(name) || words.contains(stem) {
            return true;
        }
        let specific = (self.files.len() / 20).max(5) as u32;
        let mut folders = path.split('/');
        folders.next_back();
        folders.any(|folder| {
            words.contains(folder)
                && self
                    .folder_files
                    .get(folder)
                    .is_some_and(|count| *count < specific)
        })
    }
}
