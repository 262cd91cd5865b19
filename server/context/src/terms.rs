//! The words of a file and of a request, to match one against the other (BM25): identifiers are
//! split at `_`, `-` and case changes (`parseHTTPTimeout` gives `parse`, `http`, `timeout`),
//! lowercased and lightly stemmed (`timeouts`, `routing` and `routed` meet `timeout` and
//! `route`); a split identifier also counts whole (`parse_timeout`). A file keeps each word's hash
//! and count, sorted by hash, so a request's words are found by binary search, one file at a time:
//! nothing is shared between files, and an edit changes one file's list only.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

thread_local! {
    /// The word hashes of the file being read (reused from file to file).
    static HASHES: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Words shorter than this are not kept.
const MIN_WORD: usize = 3;
/// Longest word kept (longer runs are data, not names).
const MAX_WORD: usize = 40;

/// A word's number: its hash.
pub fn hash(word: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(word.as_bytes()) as u32
}

/// The light stem of a lowercase word: endings such as `-ing`, `-ed`, `-s`, `-e` and `-y` left
/// off, so that `parse`, `parsed`, `parses` and `parsing` meet (only ever a prefix of the word).
pub fn stem(word: &str) -> &str {
    let mut stem = word;
    if (stem.len() > 5 && stem.ends_with("ing"))
        || (stem.len() > 4 && (stem.ends_with("ies") || stem.ends_with("ied")))
    {
        stem = &stem[..stem.len() - 3];
    } else if stem.len() > 4 && stem.ends_with("ed") && !stem.ends_with("eed") {
        stem = &stem[..stem.len() - 2];
    } else if stem.len() > 3
        && stem.ends_with('s')
        && !stem.ends_with("ss")
        && !stem.ends_with("us")
        && !stem.ends_with("is")
    {
        stem = &stem[..stem.len() - 1];
    }
    if stem.len() > 3 && (stem.ends_with('e') || stem.ends_with('y')) {
        stem = &stem[..stem.len() - 1];
    }
    stem
}

/// Calls `each` with every word of `text` (lowercased and stemmed), parts and whole identifiers.
pub fn for_each_word(text: &str, mut each: impl FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut lower = String::with_capacity(MAX_WORD);
    let mut whole = String::with_capacity(MAX_WORD * 2);
    let mut position = 0;
    while position < bytes.len() {
        // An identifier: ASCII letters, digits and `_` (other text is skipped byte by byte).
        if !bytes[position].is_ascii_alphanumeric() {
            position += 1;
            continue;
        }
        let start = position;
        while position < bytes.len()
            && (bytes[position].is_ascii_alphanumeric() || bytes[position] == b'_')
        {
            position += 1;
        }
        let identifier = &bytes[start..position];
        if identifier.len() > MAX_WORD * 2 {
            continue;
        }
        whole.clear();
        let mut parts = 0;
        let mut part_start = 0;
        let flush = |from: usize,
                     to: usize,
                     lower: &mut String,
                     whole: &mut String,
                     parts: &mut usize,
                     each: &mut dyn FnMut(&str)| {
            if to <= from {
                return;
            }
            lower.clear();
            for byte in &identifier[from..to] {
                lower.push(byte.to_ascii_lowercase() as char);
            }
            whole.push_str(lower);
            *parts += 1;
            if lower.len() >= MIN_WORD && lower.len() <= MAX_WORD {
                each(stem(lower));
            }
        };
        for index in 0..identifier.len() {
            let byte = identifier[index];
            if byte == b'_' {
                flush(
                    part_start, index, &mut lower, &mut whole, &mut parts, &mut each,
                );
                part_start = index + 1;
                continue;
            }
            // A case change starts a part: `aB`, and `ABc` before `B` (`HTTPServer`).
            if index > part_start && byte.is_ascii_uppercase() {
                let previous = identifier[index - 1];
                let next_lower = identifier
                    .get(index + 1)
                    .is_some_and(|next| next.is_ascii_lowercase());
                if previous.is_ascii_lowercase()
                    || previous.is_ascii_digit()
                    || (previous.is_ascii_uppercase() && next_lower)
                {
                    flush(
                        part_start, index, &mut lower, &mut whole, &mut parts, &mut each,
                    );
                    part_start = index;
                }
            }
        }
        flush(
            part_start,
            identifier.len(),
            &mut lower,
            &mut whole,
            &mut parts,
            &mut each,
        );
        if parts > 1 && whole.len() <= MAX_WORD {
            each(stem(&whole));
        }
    }
}

/// A file's words: each word's hash with its count, sorted by hash, and how many there are in all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWords {
    pub counts: Vec<(u32, u32)>,
    pub total: u32,
}

impl FileWords {
    pub fn of_text(text: &str) -> FileWords {
        HASHES.with(|hashes| {
            let mut hashes = hashes.borrow_mut();
            hashes.clear();
            for_each_word(text, |word| hashes.push(hash(word)));
            hashes.sort_unstable();
            let mut counts: Vec<(u32, u32)> = Vec::new();
            for hash in hashes.iter() {
                match counts.last_mut() {
                    Some((last, count)) if last == hash => *count += 1,
                    _ => counts.push((*hash, 1)),
                }
            }
            FileWords {
                counts,
                total: hashes.len() as u32,
            }
        })
    }

    /// How often the file has a word (0 when it has not).
    pub fn count(&self, word: u32) -> u32 {
        self.counts
            .binary_search_by_key(&word, |(hash, _)| *hash)
            .map_or(0, |position| self.counts[position].1)
    }
}

/// A request's words worth looking for, each once with the text it came from: common English
/// words and words shorter than three letters left out.
pub fn of_request(text: &str) -> Vec<(u32, String)> {
    let mut seen = rustc_hash::FxHashSet::default();
    let mut words = Vec::new();
    for_each_word(text, |word| {
        if !STOP_WORDS.iter().any(|stop| stem(stop) == word) && seen.insert(word.to_owned()) {
            words.push((hash(word), word.to_owned()));
        }
    });
    words
}

/// Common words of commit messages and requests (compared once stemmed).
const STOP_WORDS: &[&str] = &[
    "able",
    "about",
    "across",
    "actually",
    "add",
    "after",
    "again",
    "against",
    "all",
    "allow",
    "already",
    "also",
    "although",
    "always",
    "am",
    "among",
    "an",
    "and",
    "any",
    "anyone",
    "anything",
    "are",
    "around",
    "as",
    "at",
    "bad",
    "be",
    "because",
    "been",
    "before",
    "being",
    "best",
    "better",
    "between",
    "bit",
    "both",
    "bump",
    "but",
    "by",
    "call",
    "called",
    "can",
    "case",
    "cases",
    "change",
    "chore",
    "close",
    "closes",
    "come",
    "comes",
    "commit",
    "commits",
    "correct",
    "could",
    "currently",
    "did",
    "do",
    "doc",
    "docs",
    "does",
    "done",
    "down",
    "during",
    "each",
    "earlier",
    "either",
    "else",
    "ensure",
    "etc",
    "even",
    "ever",
    "every",
    "everything",
    "feat",
    "few",
    "find",
    "first",
    "fix",
    "fixes",
    "for",
    "found",
    "from",
    "gave",
    "get",
    "getting",
    "give",
    "go",
    "goes",
    "going",
    "good",
    "got",
    "had",
    "has",
    "have",
    "he",
    "her",
    "here",
    "him",
    "his",
    "how",
    "however",
    "i",
    "if",
    "improve",
    "in",
    "instead",
    "into",
    "is",
    "issue",
    "it",
    "its",
    "just",
    "keep",
    "kept",
    "kind",
    "know",
    "known",
    "last",
    "later",
    "least",
    "less",
    "let",
    "like",
    "likely",
    "look",
    "lot",
    "made",
    "make",
    "many",
    "may",
    "maybe",
    "me",
    "merge",
    "might",
    "minor",
    "more",
    "most",
    "much",
    "must",
    "my",
    "need",
    "needed",
    "needs",
    "neither",
    "never",
    "new",
    "next",
    "no",
    "nor",
    "not",
    "note",
    "notes",
    "nothing",
    "now",
    "of",
    "off",
    "ok",
    "okay",
    "old",
    "on",
    "one",
    "only",
    "onto",
    "or",
    "other",
    "our",
    "out",
    "over",
    "part",
    "parts",
    "patch",
    "patches",
    "per",
    "perhaps",
    "place",
    "please",
    "point",
    "possible",
    "pr",
    "previous",
    "previously",
    "probably",
    "properly",
    "prs",
    "pull",
    "put",
    "really",
    "recently",
    "refactor",
    "release",
    "released",
    "remove",
    "request",
    "right",
    "run",
    "running",
    "runs",
    "same",
    "second",
    "see",
    "seen",
    "set",
    "several",
    "she",
    "should",
    "simply",
    "since",
    "small",
    "so",
    "some",
    "someone",
    "something",
    "sort",
    "still",
    "such",
    "support",
    "sure",
    "take",
    "test",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "though",
    "three",
    "through",
    "time",
    "times",
    "to",
    "today",
    "too",
    "took",
    "tried",
    "try",
    "two",
    "unable",
    "under",
    "unlikely",
    "up",
    "update",
    "upon",
    "us",
    "use",
    "version",
    "versions",
    "very",
    "via",
    "want",
    "was",
    "way",
    "ways",
    "we",
    "well",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "why",
    "will",
    "wip",
    "with",
    "within",
    "without",
    "work",
    "worked",
    "works",
    "worse",
    "worst",
    "would",
    "wrong",
    "yes",
    "yet",
    "you",
    "your",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut words = Vec::new();
        for_each_word(text, |word| words.push(word.to_owned()));
        words
    }

    #[test]
    fn identifiers_split_and_whole() {
        assert_eq!(
            words("parseHTTPTimeout(read_timeouts)"),
            [
                "pars",
                "http",
                "timeout",
                "parsehttptimeout",
                "read",
                "timeout",
                "readtimeout"
            ]
            .map(str::to_owned)
        );
        assert_eq!(words("a is ok"), Vec::<String>::new());
    }

    #[test]
    fn stems_meet() {
        assert_eq!(stem("routing"), stem("routes"));
        assert_eq!(stem("parse"), stem("parsing"));
        assert_eq!(stem("parsed"), stem("parses"));
        assert_eq!(stem("queries"), stem("query"));
        assert_eq!(stem("handled"), "handl");
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("status"), "status");
    }
}
