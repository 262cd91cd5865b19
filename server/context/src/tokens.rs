//! Token counts in the family of the model that will read the text.
//!
//! OpenAI's encodings are public and counted exactly (`o200k_base`, `cl100k_base`). Anthropic
//! and Google do not publish their tokenizers: their counts are `o200k_base` counts with a margin
//! measured on code (their tokenizers split code into more pieces), so a budget holds.

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
            TokenizerFamily::Cl100k => tiktoken_rs::cl100k_base_singleton().count_ordinary(text),
            _ => tiktoken_rs::o200k_base_singleton().count_ordinary(text),
        };
        let exact = u32::try_from(exact).unwrap_or(u32::MAX);
        match self {
            TokenizerFamily::Anthropic => exact.saturating_add(exact.div_ceil(5)),
            TokenizerFamily::Gemini => exact.saturating_add(exact.div_ceil(10)),
            _ => exact,
        }
    }
}

/// Loads the encodings (a few hundred milliseconds the first time), so that the first request
/// does not wait for them.
pub fn warm_up() {
    TokenizerFamily::O200k.count("warm up");
    TokenizerFamily::Cl100k.count("warm up");
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
