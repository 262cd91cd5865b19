//! The repo map: the best-ranked files with their best-ranked definitions' signatures, as much
//! of it as fits a token budget.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::index::Index;
use crate::rank::Ranking;
use crate::tokens::TokenizerFamily;

/// One file's part of the map.
#[derive(Clone, Debug, PartialEq)]
pub struct MapFile {
    pub path: String,
    /// The sum of its shown definitions' ranks (or its own rank when it shows none).
    pub rank: f64,
    /// Its lines of the map: the path, then each signature (`⋮` between lines apart).
    pub text: String,
    pub tokens: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepoMap {
    pub files: Vec<MapFile>,
    pub tokens: u32,
}

impl RepoMap {
    pub fn text(&self) -> String {
        self.files.iter().map(|file| file.text.as_str()).collect()
    }
}

struct Draft {
    path: String,
    rank: f64,
    lines: Vec<(u32, String)>,
}

fn render_file(draft: &Draft) -> String {
    let mut lines = draft.lines.clone();
    lines.sort();
    lines.dedup();
    if lines.is_empty() {
        return format!("{}\n", draft.path);
    }
    let mut text = format!("{}:\n", draft.path);
    let mut previous: Option<u32> = None;
    for (line, signature) in &lines {
        if previous.is_some_and(|previous| previous + 1 != *line)
            || (previous.is_none() && *line > 0)
        {
            text.push_str("⋮\n");
        }
        text.push('│');
        text.push_str(signature);
        text.push('\n');
        previous = Some(*line);
    }
    text.push_str("⋮\n");
    text
}

/// The longest prefix of the ranking whose map fits `budget` tokens, leaving out `skip`.
pub fn render(
    index: &Index,
    ranking: &Ranking,
    budget: u32,
    family: TokenizerFamily,
    skip: &FxHashSet<String>,
) -> RepoMap {
    let separator = family.count("⋮\n");
    let mut drafts: Vec<Draft> = Vec::new();
    let mut positions: FxHashMap<&str, usize> = FxHashMap::default();
    let mut estimate = 0u32;
    'names: for ranked in &ranking.names {
        if skip.contains(&ranked.file) {
            continue;
        }
        let mut cost = 0u32;
        let new_file = !positions.contains_key(ranked.file.as_str());
        if new_file {
            cost += family.count(&ranked.file) + 2 + separator;
        }
        let mut lines = Vec::new();
        if !ranked.name.is_empty()
            && let Some(entry) = index.file(&ranked.file)
        {
            for definition in entry
                .tags
                .definitions
                .iter()
                .filter(|definition| definition.name == ranked.name)
            {
                cost += family.count(&definition.signature) + 1 + separator;
                lines.push((definition.line, definition.signature.clone()));
            }
        }
        if estimate + cost > budget {
            break 'names;
        }
        estimate += cost;
        let position = *positions.entry(ranked.file.as_str()).or_insert_with(|| {
            drafts.push(Draft {
                path: ranked.file.clone(),
                rank: 0.0,
                lines: Vec::new(),
            });
            drafts.len() - 1
        });
        let draft = &mut drafts[position];
        draft.rank += ranked.rank;
        draft.lines.extend(lines);
    }
    // The estimate counts lines apart; the exact count of the whole decides.
    loop {
        let files: Vec<MapFile> = drafts
            .iter()
            .map(|draft| {
                let text = render_file(draft);
                MapFile {
                    path: draft.path.clone(),
                    rank: draft.rank,
                    tokens: family.count(&text),
                    text,
                }
            })
            .collect();
        let total: u32 = family.count(
            &files
                .iter()
                .map(|file| file.text.as_str())
                .collect::<String>(),
        );
        if total <= budget || drafts.is_empty() {
            return RepoMap {
                files,
                tokens: total,
            };
        }
        if let Some(last) = drafts.last_mut()
            && last.lines.len() > 1
        {
            last.lines.pop();
        } else {
            drafts.pop();
        }
    }
}
