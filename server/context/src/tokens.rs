//! Token counts in the family of the model that will read the text.
//!
//! OpenAI's encodings are public and counted exactly (`o200k_base`, `cl100k_base`). Anthropic
//! and Google do not publish their tokenizers: their counts are `o200k_base` counts with a margin
//! measured on code (their tokenizers split code into more pieces), so a budget holds.

use std::sync::OnceLock;

use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenizerFamily {
    /// GPT-4o, GPT-4.1, GPT-5, o-series.
    #[default]
    O200k,
    /// GPT-4, GPT-3.5 and most local models' vocabularies' size class.
    Cl100k,
    /// Claude: `o200k_base` plus 20%.
    Anthropic,
    /// Gemini: `o200k_base` plus 10%.
    Gemini,
}

impl TokenizerFamily {
    /// The family of a model, from its provider kind (`openai`, `anthropic`, `gemini`, `local`)
    /// and its name.
    pub fn of_model(provider: &str, model: &str) -> TokenizerFamily {
        let model = model.to_ascii_lowercase();
        match provider {
            "anthropic" => TokenizerFamily::Anthropic,
            "gemini" | "google" => TokenizerFamily::Gemini,
            "openai"
                if model.starts_with("gpt-4-")
                    || model == "gpt-4"
                    || model.starts_with("gpt-3.5") =>
            {
                TokenizerFamily::Cl100k
            }
            "openai" => TokenizerFamily::O200k,
            _ if model.contains("claude") => TokenizerFamily::Anthropic,
            _ if model.contains("gemini") || model.contains("gemma") => TokenizerFamily::Gemini,
            // Local models (Llama, Qwen, Mistral, ...) have vocabularies of 32k to 150k pieces:
            // the smaller encoding is the safer estimate.
            _ => TokenizerFamily::Cl100k,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenizerFamily::O200k => "o200k_base",
            TokenizerFamily::Cl100k => "cl100k_base",
            TokenizerFamily::Anthropic => "o200k_base + 20% (Claude)",
            TokenizerFamily::Gemini => "o200k_base + 10% (Gemini)",
        }
    }

    /// Tokens of `text`.
    pub fn count(self, text: &str) -> u32 {
        if text.is_empty() {
            return 0;
        }
        let exact = match self {
            TokenizerFamily::Cl100k => cl100k_base().count(text),
            _ => o200k_base().count(text),
        };
        let exact = u32::try_from(exact).unwrap_or(u32::MAX);
        match self {
            TokenizerFamily::Anthropic => exact.saturating_add(exact.div_ceil(5)),
            TokenizerFamily::Gemini => exact.saturating_add(exact.div_ceil(10)),
            _ => exact,
        }
    }
}

/// Loads the encodings (tens of milliseconds the first time), so that the first request does
/// not wait for them.
pub fn warm_up() {
    TokenizerFamily::O200k.count("warm up");
    TokenizerFamily::Cl100k.count("warm up");
}

/// The pre-tokenizer of `o200k_base` (tiktoken's).
const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+"
);

/// The pre-tokenizer of `cl100k_base` (tiktoken's).
const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

/// Pieces longer than this are counted in windows of this size (a bound on the quadratic
/// merge; such pieces, megabytes of one character class, do not occur in source code).
const LONGEST_PIECE: usize = 16 * 1024;

fn o200k_base() -> &'static Encoding {
    static ENCODING: OnceLock<Encoding> = OnceLock::new();
    ENCODING.get_or_init(|| {
        Encoding::new(
            include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.bytes")),
            include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.offsets")),
            O200K_PATTERN,
        )
    })
}

fn cl100k_base() -> &'static Encoding {
    static ENCODING: OnceLock<Encoding> = OnceLock::new();
    ENCODING.get_or_init(|| {
        Encoding::new(
            include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.bytes")),
            include_bytes!(concat!(env!("OUT_DIR"), "/cl100k_base.offsets")),
            CL100K_PATTERN,
        )
    })
}

/// A byte-pair encoding that counts tokens as tiktoken does (same pre-tokenizer, same merges),
/// with its vocabulary left in the binary: the hash table holds ranks only, and a rank's bytes
/// are found through `offsets` (rank `r` is `bytes[offsets[r]..offsets[r + 1]]`).
struct Encoding {
    bytes: &'static [u8],
    /// Little-endian u32 starts, one per rank and one for the end.
    offsets: &'static [u8],
    /// Ranks, hashed by their bytes.
    table: HashTable<u32>,
    pattern: Option<fancy_regex::Regex>,
}

impl Encoding {
    fn new(bytes: &'static [u8], offsets: &'static [u8], pattern: &str) -> Encoding {
        let ranks = (offsets.len() / 4).saturating_sub(1);
        let mut encoding = Encoding {
            bytes,
            offsets,
            table: HashTable::with_capacity(ranks),
            pattern: None,
        };
        for rank in 0..ranks as u32 {
            let hash = hash_bytes(encoding.token(rank));
            let Encoding { table, .. } = &mut encoding;
            table.insert_unique(hash, rank, |&other| {
                hash_bytes(token_of(bytes, offsets, other))
            });
        }
        encoding.pattern = match fancy_regex::Regex::new(pattern) {
            Ok(regex) => Some(regex),
            Err(error) => {
                // The patterns are constants covered by tests; this cannot happen in a release.
                tracing::error!(%error, "the tokenizer's pattern does not compile; counting bytes");
                None
            }
        };
        encoding
    }

    fn token(&self, rank: u32) -> &'static [u8] {
        token_of(self.bytes, self.offsets, rank)
    }

    fn rank(&self, piece: &[u8]) -> Option<u32> {
        self.table
            .find(hash_bytes(piece), |&rank| self.token(rank) == piece)
            .copied()
    }

    fn count(&self, text: &str) -> usize {
        let Some(pattern) = &self.pattern else {
            return text.len();
        };
        let mut count = 0;
        let mut position = 0;
        for found in pattern.find_iter(text) {
            match found {
                Ok(found) => {
                    count += self.count_piece(found.as_str().as_bytes());
                    position = found.end();
                }
                Err(error) => {
                    // The regex gave up (its backtracking limit): the rest counts a token per
                    // byte, an overestimate, so a budget still holds.
                    tracing::debug!(%error, "the tokenizer's pattern gave up; counting bytes");
                    return count + (text.len() - position);
                }
            }
        }
        count
    }

    fn count_piece(&self, piece: &[u8]) -> usize {
        if piece.len() > LONGEST_PIECE {
            return piece
                .chunks(LONGEST_PIECE)
                .map(|window| self.count_piece(window))
                .sum();
        }
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return piece.len().min(1);
        }
        self.merge(piece).len() - 1
    }

    /// tiktoken's byte-pair merge: the boundaries of the pieces' tokens, as (start, rank of the
    /// pair starting there), merging the lowest-ranked pair until none is in the vocabulary.
    fn merge(&self, piece: &[u8]) -> Vec<(usize, u32)> {
        let mut parts: Vec<(usize, u32)> = Vec::with_capacity(piece.len() + 1);
        let mut lowest = (u32::MAX, usize::MAX);
        for start in 0..piece.len() - 1 {
            let rank = self.rank(&piece[start..start + 2]).unwrap_or(u32::MAX);
            if rank < lowest.0 {
                lowest = (rank, start);
            }
            parts.push((start, rank));
        }
        parts.push((piece.len() - 1, u32::MAX));
        parts.push((piece.len(), u32::MAX));
        let rank_at = |parts: &Vec<(usize, u32)>, index: usize| {
            if index + 3 < parts.len() {
                self.rank(&piece[parts[index].0..parts[index + 3].0])
                    .unwrap_or(u32::MAX)
            } else {
                u32::MAX
            }
        };
        while lowest.0 != u32::MAX {
            let index = lowest.1;
            if index > 0 {
                parts[index - 1].1 = rank_at(&parts, index - 1);
            }
            parts[index].1 = rank_at(&parts, index);
            parts.remove(index + 1);
            lowest = (u32::MAX, usize::MAX);
            for (index, &(_, rank)) in parts[..parts.len() - 1].iter().enumerate() {
                if rank < lowest.0 {
                    lowest = (rank, index);
                }
            }
        }
        parts
    }
}

fn token_of(bytes: &'static [u8], offsets: &'static [u8], rank: u32) -> &'static [u8] {
    let at = |index: usize| {
        offsets.get(index * 4..index * 4 + 4).map_or(0, |word| {
            u32::from_le_bytes([word[0], word[1], word[2], word[3]]) as usize
        })
    };
    let rank = rank as usize;
    bytes.get(at(rank)..at(rank + 1)).unwrap_or_default()
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_counts_are_exact() {
        assert_eq!(TokenizerFamily::O200k.count("hello world"), 2);
        assert_eq!(TokenizerFamily::Cl100k.count("hello world"), 2);
        assert_eq!(TokenizerFamily::O200k.count(""), 0);
    }

    /// The counts are tiktoken's, on code, prose, Unicode and odd whitespace.
    #[test]
    fn counts_equal_tiktoken() {
        let mut samples: Vec<String> = vec![
            "hello world".into(),
            "  leading and trailing spaces   ".into(),
            "tabs\t\tand\r\nnewlines\n\n\n   \n".into(),
            "Ünïcödé: 日本語のテキスト, emoji 🦀🚀, Ελληνικά, русский текст".into(),
            "numbers 1234567890 3.14159 0xDEADBEEF 1e-10".into(),
            "I'm sure they'll say it's what we've done, 'twas THEIR'S".into(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            "!!!???...;;;{{{}}}[[[]]]((()))<<<>>>///\\\\\\".into(),
            " ".repeat(300),
            "x".repeat(5_000),
        ];
        for source in [
            include_str!("tokens.rs"),
            include_str!("rank.rs"),
            include_str!("diagnostics.rs"),
            include_str!("../Cargo.toml"),
        ] {
            samples.push(source.to_owned());
        }
        let o200k = tiktoken_rs::o200k_base().unwrap();
        let cl100k = tiktoken_rs::cl100k_base().unwrap();
        for sample in &samples {
            assert_eq!(
                o200k_base().count(sample),
                o200k.encode_ordinary(sample).len(),
                "o200k_base: {sample:.80}"
            );
            assert_eq!(
                cl100k_base().count(sample),
                cl100k.encode_ordinary(sample).len(),
                "cl100k_base: {sample:.80}"
            );
        }
    }

    #[test]
    fn estimated_families_add_their_margin() {
        let text = "fn main() { println!(\"hello\"); }\n".repeat(20);
        let base = TokenizerFamily::O200k.count(&text);
        assert!(TokenizerFamily::Anthropic.count(&text) > base);
        assert!(TokenizerFamily::Gemini.count(&text) > base);
    }

    #[test]
    fn families_follow_the_provider() {
        assert_eq!(
            TokenizerFamily::of_model("anthropic", "claude-sonnet-4-5"),
            TokenizerFamily::Anthropic
        );
        assert_eq!(
            TokenizerFamily::of_model("openai", "gpt-4o-mini"),
            TokenizerFamily::O200k
        );
        assert_eq!(
            TokenizerFamily::of_model("openai", "gpt-4-turbo"),
            TokenizerFamily::Cl100k
        );
        assert_eq!(
            TokenizerFamily::of_model("gemini", "gemini-2.5-pro"),
            TokenizerFamily::Gemini
        );
        assert_eq!(
            TokenizerFamily::of_model("local", "llama3.1"),
            TokenizerFamily::Cl100k
        );
    }
}
