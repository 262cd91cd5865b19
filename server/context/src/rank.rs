//! The reference graph between files and its personalized ranking, as Aider's repo map does it:
//! a file that uses a name points at every file that defines it; PageRank, personalized towards
//! the files in the conversation and the names and files the request mentions, ranks files; each
//! file's rank flows along its edges to the definitions it uses.
//!
//! Aider builds one graph edge per (referencer, definer, name); a name defined in many files and
//! used in many makes that product large. Here an edge is kept per (referencer, name) and per
//! (name, definer): every definer of a name receives the same share, so the ranks are the same
//! and the work is the sum of those counts rather than their product.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::index::FileEntry;

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
        FileNames {
            definitions: entry
                .tags
                .definitions
                .iter()
                .map(|definition| self.intern(&definition.name))
                .collect(),
            references: entry
                .tags
                .references
                .iter()
                .map(|(name, count)| (self.intern(name), *count))
                .collect(),
        }
    }
}

/// One file's names by number: each definition's, and each used name with its count.
#[derive(Clone, Debug, Default)]
pub struct FileNames {
    pub definitions: Vec<u32>,
    pub references: Vec<(u32, u32)>,
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

/// The outcome of ranking: definitions best first, then the files without ranked definitions.
#[derive(Clone, Debug, Default)]
pub struct Ranking {
    pub names: Vec<RankedName>,
    /// Each file's own PageRank (files outside the graph are absent).
    pub file_ranks: FxHashMap<String, f64>,
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

impl Graph {
    pub fn build(
        entries: &BTreeMap<String, FileEntry>,
        file_names: &FxHashMap<String, FileNames>,
        interner: &Interner,
    ) -> Graph {
        let mut graph = Graph {
            names: interner.names.clone(),
            ..Graph::default()
        };
        let name_count = graph.names.len();
        let mut definers: Vec<Vec<u32>> = vec![Vec::new(); name_count];
        let mut users: Vec<Vec<(u32, u32)>> = vec![Vec::new(); name_count];
        let mut any_reference = false;
        for path in entries.keys() {
            let mut folders: Vec<&str> = path.split('/').collect();
            folders.pop();
            folders.sort_unstable();
            folders.dedup();
            for folder in folders {
                *graph.folder_files.entry(folder.to_owned()).or_default() += 1;
            }
            let file = graph.files.len() as u32;
            graph.files.push(path.clone());
            graph.file_ids.insert(path.clone(), file);
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
        graph.in_graph = vec![false; graph.files.len()];
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
            let references_start = graph.reference_file.len();
            for (file, count) in &users[name] {
                graph.reference_file.push(*file);
                graph.reference_weight.push(f64::from(*count).sqrt());
                graph.in_graph[*file as usize] = true;
            }
            let definers_start = graph.definer_file.len();
            for file in files.iter() {
                graph.definer_file.push(*file);
                graph.in_graph[*file as usize] = true;
            }
            graph.linked.push(LinkedName {
                name: name as u32,
                weight: name_weight(&graph.names[name], files.len()),
                references: references_start..graph.reference_file.len(),
                definers: definers_start..graph.definer_file.len(),
            });
        }
        graph
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
        let file_count = self.files.len();
        if file_count == 0 {
            return Ranking::default();
        }
        let chat: FxHashSet<u32> = request
            .chat_files
            .iter()
            .filter_map(|path| self.file_id(path))
            .collect();
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
        if node_count == 0 {
            return self.unranked(request, &chat);
        }
        let personal_total: f64 = nodes.iter().map(|file| personal[*file]).sum();
        let teleport: Vec<f64> = if personal_total > 0.0 {
            (0..file_count)
                .map(|file| {
                    if self.in_graph[file] {
                        personal[file] / personal_total
                    } else {
                        0.0
                    }
                })
                .collect()
        } else {
            (0..file_count)
                .map(|file| {
                    if self.in_graph[file] {
                        1.0 / node_count as f64
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let dangling: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|file| out[*file] == 0.0)
            .collect();

        let mut rank = vec![0.0f64; file_count];
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

        // Each file's rank flows along its edges to the definitions it uses.
        self.flow(&rank, &weight, &out, &mut inflow);
        let mut ranked: Vec<(f64, u32, u32)> = Vec::new();
        for (linked, flow) in self.linked.iter().zip(&inflow) {
            for position in linked.definers.clone() {
                ranked.push((*flow, self.definer_file[position], linked.name));
            }
        }
        for (file, name) in &self.unused {
            let share = rank[*file as usize] * UNUSED_DEFINITION_WEIGHT / out[*file as usize];
            ranked.push((share, *file, *name));
        }
        ranked.retain(|(_, file, _)| !chat.contains(file));
        let order = |a: &(f64, u32, u32), b: &(f64, u32, u32)| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.files[b.1 as usize].cmp(&self.files[a.1 as usize]))
                .then_with(|| self.names[b.2 as usize].cmp(&self.names[a.2 as usize]))
        };
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit, order);
            ranked.truncate(limit);
        }
        ranked.sort_by(order);
        let mut names: Vec<RankedName> = ranked
            .into_iter()
            .map(|(rank, file, name)| RankedName {
                file: self.files[file as usize].clone(),
                name: self.names[name as usize].clone(),
                rank,
            })
            .collect();
        let mut listed: FxHashSet<u32> = names
            .iter()
            .filter_map(|ranked| self.file_id(&ranked.file))
            .collect();
        let mut by_rank: Vec<usize> = nodes.clone();
        by_rank.sort_by(|a, b| {
            rank[*b]
                .total_cmp(&rank[*a])
                .then_with(|| self.files[*b].cmp(&self.files[*a]))
        });
        for file in by_rank.into_iter().chain(0..file_count) {
            if names.len() >= limit {
                break;
            }
            let id = file as u32;
            if chat.contains(&id) || !listed.insert(id) {
                continue;
            }
            names.push(RankedName {
                file: self.files[file].clone(),
                name: String::new(),
                rank: rank[file],
            });
        }
        let file_ranks = nodes
            .iter()
            .map(|file| (self.files[*file].clone(), rank[*file]))
            .collect();
        Ranking { names, file_ranks }
    }

    /// Per linked name: the rank flowing into each of its definers.
    fn flow(&self, rank: &[f64], weight: &[f64], out: &[f64], inflow: &mut [f64]) {
        for (linked, flow) in self.linked.iter().zip(inflow.iter_mut()) {
            let mut total = 0.0;
            for position in linked.references.clone() {
                let file = self.reference_file[position] as usize;
                total += rank[file] * weight[position] / out[file];
            }
            *flow = total;
        }
    }

    fn unranked(&self, _request: &RankRequest, chat: &FxHashSet<u32>) -> Ranking {
        let names = (0..self.files.len())
            .filter(|file| !chat.contains(&(*file as u32)))
            .map(|file| RankedName {
                file: self.files[file].clone(),
                name: String::new(),
                rank: 0.0,
            })
            .collect();
        Ranking {
            names,
            file_ranks: FxHashMap::default(),
        }
    }
}

impl Graph {
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
