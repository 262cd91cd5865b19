//! Choosing what is sent: candidates from every source, the user's pins and drops, and the repo
//! map, fitted into one token budget; each item says why it is there (or why not) and its cost.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::exclude::Exclusion;
use crate::index::Index;
use crate::map;
use crate::rank::RankRequest;
use crate::tokens::TokenizerFamily;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// Lines selected in the editor.
    Selection,
    /// The file open in the editor.
    CurrentFile,
    /// A whole file the user pinned.
    File,
    /// Lines around a place an error, log or test output points at.
    ErrorLocation,
    /// A recent change to a file.
    RecentChange,
    /// A dependency manifest (Cargo.toml, package.json, ...).
    Dependencies,
    /// A file's ranked definitions in the repo map.
    Symbols,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Selection => "selection",
            ItemKind::CurrentFile => "current_file",
            ItemKind::File => "file",
            ItemKind::ErrorLocation => "error_location",
            ItemKind::RecentChange => "recent_change",
            ItemKind::Dependencies => "dependencies",
            ItemKind::Symbols => "symbols",
        }
    }
}

/// Something that could be sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub kind: ItemKind,
    /// What it is about: a path, with lines where it is part of a file.
    pub label: String,
    pub reason: String,
    /// How relevant it is: 1.0 for what the user points at, a rank share for the map.
    pub score: f64,
    pub content: String,
    pub language: Option<String>,
}

impl Candidate {
    /// The key a pin or a drop is kept under for the conversation.
    pub fn key(&self) -> String {
        item_key(self.kind, &self.label)
    }
}

pub fn item_key(kind: ItemKind, label: &str) -> String {
    format!("{}:{label}", kind.as_str())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Pinned,
    Dropped,
}

/// One item of the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    pub kind: ItemKind,
    pub label: String,
    pub reason: String,
    pub score: f64,
    pub tokens: u32,
    pub included: bool,
    pub choice: Option<Choice>,
    pub language: Option<String>,
    /// The text sent (empty when left out).
    pub content: String,
}

/// Files left out of the index for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub reason: String,
    pub count: u32,
    /// A few of them.
    pub examples: Vec<String>,
}

/// What was chosen, and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub items: Vec<Item>,
    pub budget: u32,
    pub used: u32,
    pub tokenizer: String,
    pub left_out: Vec<LeftOut>,
}

/// What to choose from.
#[derive(Debug)]
pub struct Selection<'a> {
    pub budget: u32,
    pub family: TokenizerFamily,
    /// Candidates best first (the order decides who gets the budget).
    pub candidates: Vec<Candidate>,
    /// The repo map's ranking request; `None` when the map is not wanted.
    pub map: Option<RankRequest>,
    /// The conversation's pins and drops, by item key.
    pub choices: &'a BTreeMap<String, Choice>,
}

/// The share of the budget kept for the repo map while other items are chosen.
const MAP_SHARE: u32 = 4;

fn left_out_reasons(index: &Index) -> Vec<LeftOut> {
    let mut groups: BTreeMap<Exclusion, LeftOut> = BTreeMap::new();
    for (path, exclusion) in index.excluded() {
        let group = groups.entry(*exclusion).or_insert_with(|| LeftOut {
            reason: exclusion.reason().to_owned(),
            count: 0,
            examples: Vec::new(),
        });
        group.count += 1;
        if group.examples.len() < 5 {
            group.examples.push(path.clone());
        }
    }
    let mut left: Vec<LeftOut> = groups.into_values().collect();
    // Copies stay indexed (one may be opened) but are left out of the map.
    let graph = index.graph();
    let mut copies: BTreeMap<String, LeftOut> = BTreeMap::new();
    for (path, why, kept) in graph.left_out() {
        let reason = match why {
            crate::rank::Duplicate::SameContent => {
                "left out of the map: the same content as a file kept".to_owned()
            }
            mirror => format!("left out of the map: {}", mirror.reason()),
        };
        let group = copies.entry(reason.clone()).or_insert_with(|| LeftOut {
            reason,
            count: 0,
            examples: Vec::new(),
        });
        group.count += 1;
        if group.examples.len() < 5 {
            group.examples.push(format!("{path} (kept: {kept})"));
        }
    }
    left.extend(copies.into_values());
    left
}

/// Chooses within the budget: pinned items first, then the candidates in order while they fit
/// (a quarter of the budget stays for the map), then the repo map in what is left. Dropped items
/// are listed, never sent. The items sent never add up to more than the budget.
pub fn choose(index: &Index, selection: Selection<'_>) -> Manifest {
    let Selection {
        budget,
        family,
        candidates,
        map,
        choices,
    } = selection;
    let mut items: Vec<Item> = Vec::new();
    let mut used = 0u32;
    let map_reserve = if map.is_some() { budget / MAP_SHARE } else { 0 };

    let mut pinned_map_files: Vec<String> = choices
        .iter()
        .filter(|(_, choice)| **choice == Choice::Pinned)
        .filter_map(|(key, _)| key.strip_prefix("symbols:").map(str::to_owned))
        .collect();
    pinned_map_files.retain(|path| index.file(path).is_some());
    let mut ordered: Vec<Candidate> = Vec::new();
    for path in &pinned_map_files {
        if let Some(outline) = outline(index, path) {
            ordered.push(Candidate {
                kind: ItemKind::Symbols,
                label: path.clone(),
                reason: "pinned by you: its definitions".into(),
                score: 1.0,
                content: outline,
                language: None,
            });
        }
    }
    let (pinned, others): (Vec<Candidate>, Vec<Candidate>) = candidates
        .into_iter()
        .partition(|candidate| choices.get(&candidate.key()) == Some(&Choice::Pinned));
    ordered.extend(pinned);
    let pinned_count = ordered.len();
    ordered.extend(others);

    for (position, candidate) in ordered.into_iter().enumerate() {
        let key = candidate.key();
        let choice = choices.get(&key).copied();
        let tokens = family.count(&candidate.content);
        let is_pinned = position < pinned_count;
        let limit = if is_pinned {
            budget
        } else {
            budget.saturating_sub(map_reserve)
        };
        let (included, reason) = if choice == Some(Choice::Dropped) {
            (false, format!("{}; dropped by you", candidate.reason))
        } else if used + tokens <= limit {
            (true, candidate.reason.clone())
        } else {
            let left = limit.saturating_sub(used);
            (
                false,
                format!(
                    "{}; left out: {tokens} tokens do not fit the {left} left of the budget",
                    candidate.reason
                ),
            )
        };
        if included {
            used += tokens;
        }
        items.push(Item {
            key,
            kind: candidate.kind,
            label: candidate.label,
            reason,
            score: candidate.score,
            tokens,
            included,
            choice: choice.or(is_pinned.then_some(Choice::Pinned)),
            language: candidate.language,
            content: if included {
                candidate.content
            } else {
                String::new()
            },
        });
    }

    if let Some(request) = map {
        let mut skip: FxHashSet<String> = pinned_map_files.iter().cloned().collect();
        for (key, choice) in choices {
            if *choice == Choice::Dropped
                && let Some(path) = key.strip_prefix("symbols:")
            {
                skip.insert(path.to_owned());
                if index.file(path).is_some() {
                    items.push(Item {
                        key: key.clone(),
                        kind: ItemKind::Symbols,
                        label: path.to_owned(),
                        reason: "dropped by you".into(),
                        score: 0.0,
                        tokens: 0,
                        included: false,
                        choice: Some(Choice::Dropped),
                        language: None,
                        content: String::new(),
                    });
                }
            }
        }
        // Files sent whole need no outline.
        for item in &items {
            if item.included && matches!(item.kind, ItemKind::CurrentFile | ItemKind::File) {
                skip.insert(item.label.clone());
            }
        }
        let graph = index.graph();
        let ranking = graph.rank_best(&request, map_limit(budget));
        let room = budget.saturating_sub(used);
        let repo_map = map::render(index, &ranking, room, family, &skip);
        let top = repo_map
            .files
            .iter()
            .map(|file| file.rank)
            .fold(0.0f64, f64::max);
        for file in repo_map.files {
            used += file.tokens;
            let why = ranking.reasons.get(&file.path).map_or(
                "ranked by references to and from what you are working on",
                String::as_str,
            );
            let reason = format!("repo map: {why}");
            items.push(Item {
                key: item_key(ItemKind::Symbols, &file.path),
                kind: ItemKind::Symbols,
                label: file.path,
                reason,
                score: if top > 0.0 { file.rank / top } else { 0.0 },
                tokens: file.tokens,
                included: true,
                choice: None,
                language: None,
                content: file.text,
            });
        }
    }
    // Per-item counts can exceed the count of their concatenation by a token or two, never less:
    // `used` is the sum, so the budget holds for the whole.
    Manifest {
        items,
        budget,
        used,
        tokenizer: family.name().to_owned(),
        left_out: left_out_reasons(index),
    }
}

/// The most ranked names a map of `budget` tokens can show (each costs a line of 2 tokens or more).
pub fn map_limit(budget: u32) -> usize {
    budget as usize / 2 + 16
}

/// All definitions of one file, as the map shows them.
fn outline(index: &Index, path: &str) -> Option<String> {
    let entry = index.file(path)?;
    let mut text = format!("{path}:\n");
    for definition in &entry.tags.definitions {
        text.push('│');
        text.push_str(&definition.signature);
        text.push('\n');
    }
    Some(text)
}
