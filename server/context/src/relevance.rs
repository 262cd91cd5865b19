//! How relevant each file is to a request, from several signals, and why: the signals of one
//! file (each between 0 and 1), the weights that combine them into its score, and the reasons the
//! manifest shows. The weights were tuned on the tuning half of `scripts/eval-context`'s commits
//! (real history of public repositories), never on the held-out half.

/// What ties one file to the request. The current file is the file open in the editor (or the
/// files in the conversation); every value lies between 0 and 1.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Signals {
    /// It is in the current file's folder.
    pub same_folder: f32,
    /// How near its folder is: 1 / (1 + folders between them).
    pub folder_near: f32,
    /// Its name shares words with the current file's (`app.py` and `test_app.py`).
    pub name_like: f32,
    /// The current file imports it.
    pub imported: f32,
    /// It imports the current file (a caller, a test, a module that declares or re-exports it).
    pub imports_current: f32,
    /// It defines names the current file uses (weighted by how specific each name is, relative
    /// to the file that defines the most).
    pub defines_used: f32,
    /// It uses names the current file defines (likewise).
    pub uses_current: f32,
    /// Its words match the request's (BM25, relative to the best match).
    pub text: f32,
    /// Its path's words match the request's (relative to the best match).
    pub path_words: f32,
    /// Its PageRank over the reference graph, personalized to the request (relative to the best).
    pub graph_rank: f32,
    /// How many files use its definitions (log scale, relative to the most used file): a hub.
    pub hub: f32,
    /// It was edited lately.
    pub recent: f32,
    /// It changed together with the current file before (log scale, relative to the most).
    pub co_changed: f32,
    /// The request names it.
    pub mentioned: f32,
}

/// The weight of each signal in a file's score (the hub's is a penalty, applied in proportion to
/// how little of the request the file matches).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    pub same_folder: f32,
    pub folder_near: f32,
    pub name_like: f32,
    pub imported: f32,
    pub imports_current: f32,
    pub defines_used: f32,
    pub uses_current: f32,
    pub text: f32,
    pub path_words: f32,
    pub graph_rank: f32,
    pub hub: f32,
    pub recent: f32,
    pub co_changed: f32,
    pub mentioned: f32,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            same_folder: 0.0,
            folder_near: 0.5,
            name_like: 3.16,
            imported: 0.85,
            imports_current: 0.36,
            defines_used: 1.16,
            uses_current: 1.0,
            text: 3.36,
            path_words: 0.61,
            graph_rank: 0.3,
            hub: 0.43,
            recent: 0.5,
            co_changed: 1.0,
            mentioned: 0.15,
        }
    }
}

impl Weights {
    /// The weights as a list (for tuning), in the order of [`Weights::NAMES`].
    pub fn to_vec(&self) -> Vec<f32> {
        vec![
            self.same_folder,
            self.folder_near,
            self.name_like,
            self.imported,
            self.imports_current,
            self.defines_used,
            self.uses_current,
            self.text,
            self.path_words,
            self.graph_rank,
            self.hub,
            self.recent,
            self.co_changed,
            self.mentioned,
        ]
    }

    pub const NAMES: [&'static str; 14] = [
        "same_folder",
        "folder_near",
        "name_like",
        "imported",
        "imports_current",
        "defines_used",
        "uses_current",
        "text",
        "path_words",
        "graph_rank",
        "hub",
        "recent",
        "co_changed",
        "mentioned",
    ];

    pub fn from_slice(values: &[f32]) -> Weights {
        let value = |index: usize| values.get(index).copied().unwrap_or(0.0);
        Weights {
            same_folder: value(0),
            folder_near: value(1),
            name_like: value(2),
            imported: value(3),
            imports_current: value(4),
            defines_used: value(5),
            uses_current: value(6),
            text: value(7),
            path_words: value(8),
            graph_rank: value(9),
            hub: value(10),
            recent: value(11),
            co_changed: value(12),
            mentioned: value(13),
        }
    }

    /// The parts of a file's score, signal by signal, in the order of [`Weights::NAMES`].
    pub fn parts(&self, signals: &Signals) -> [f32; 14] {
        let matched = (signals.text + signals.path_words + signals.mentioned).min(1.0);
        [
            self.same_folder * signals.same_folder,
            self.folder_near * signals.folder_near,
            self.name_like * signals.name_like,
            self.imported * signals.imported,
            self.imports_current * signals.imports_current,
            self.defines_used * signals.defines_used,
            self.uses_current * signals.uses_current,
            self.text * signals.text,
            self.path_words * signals.path_words,
            self.graph_rank * signals.graph_rank,
            -self.hub * signals.hub * (1.0 - matched),
            self.recent * signals.recent,
            self.co_changed * signals.co_changed,
            self.mentioned * signals.mentioned,
        ]
    }

    pub fn score(&self, signals: &Signals) -> f32 {
        self.parts(signals).iter().sum()
    }
}

/// Parts of a score smaller than this are not given as reasons.
const REASON_MIN: f32 = 0.05;

/// Why a file ranks where it does: its signals' largest parts, in words. `matched_words` are
/// the request's words the file has (best first), `used_name` a name of the current file it uses.
pub fn reasons(
    weights: &Weights,
    signals: &Signals,
    matched_words: &[String],
    used_name: Option<&str>,
    changed_together: u32,
) -> String {
    let parts = weights.parts(signals);
    let mut order: Vec<usize> = (0..parts.len())
        .filter(|index| parts[*index] >= REASON_MIN)
        .collect();
    order.sort_by(|a, b| parts[*b].total_cmp(&parts[*a]));
    let quoted = |words: &[String]| {
        words
            .iter()
            .take(3)
            .map(|word| format!("'{word}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut said: Vec<String> = Vec::new();
    for index in order {
        let reason = match Weights::NAMES[index] {
            "same_folder" => "same folder".to_owned(),
            "folder_near" if signals.same_folder > 0.0 => "same folder".to_owned(),
            "folder_near" => "nearby folder".to_owned(),
            "name_like" => "name like the current file's".to_owned(),
            "imported" => "imported by the current file".to_owned(),
            "imports_current" => "imports the current file".to_owned(),
            "defines_used" => "defines what the current file uses".to_owned(),
            "uses_current" => match used_name {
                Some(name) => format!("uses the current file ('{name}')"),
                None => "uses the current file".to_owned(),
            },
            "text" if !matched_words.is_empty() => format!("mentions {}", quoted(matched_words)),
            "path_words" => "its path matches the request".to_owned(),
            "graph_rank" => "central in the reference graph".to_owned(),
            "recent" => "edited recently".to_owned(),
            "co_changed" => format!("changed together {changed_together} times"),
            "mentioned" => "named in the request".to_owned(),
            _ => continue,
        };
        if !said.contains(&reason) {
            said.push(reason);
        }
    }
    if said.is_empty() {
        "ranked by references to and from what you are working on".to_owned()
    } else {
        said.join("; ")
    }
}
