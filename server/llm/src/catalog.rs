//! The model catalog: per model its provider, context window, output limit, tool support and
//! prices, from `data/models.toml` (with the date its prices were checked), merged with what a
//! provider's list endpoint returns for a user's key. Costs are integer micro-dollars.

use serde::{Deserialize, Serialize};

use crate::providers::RemoteModel;
use crate::types::{ProviderKind, Usage};

const BUILTIN: &str = include_str!("../data/models.toml");

/// Whether the built-in catalog lists `model` of `provider` as a model that reasons: the
/// providers ask this before they send a thinking budget (a model that does not reason refuses
/// one). A model the catalog does not list gets none.
pub fn reasons(provider: ProviderKind, model: &str) -> bool {
    static BUILTIN_CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    BUILTIN_CATALOG
        .get_or_init(|| Catalog::builtin().unwrap_or_else(|_| Catalog::empty()))
        .reasons(provider, model)
}

/// Prices in micro-dollars per million tokens (so $2.50 per million is 2,500,000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Prices {
    /// The cost of `usage` in micro-dollars, rounded to the nearest one. Cache reads and writes
    /// are billed at their own price; the rest of the input at the input price.
    pub fn cost_micros(&self, usage: &Usage) -> u64 {
        let uncached = usage
            .input_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens);
        let total: u128 = u128::from(uncached) * u128::from(self.input)
            + u128::from(usage.cache_read_tokens) * u128::from(self.cache_read)
            + u128::from(usage.cache_write_tokens) * u128::from(self.cache_write)
            + u128::from(usage.output_tokens) * u128::from(self.output);
        u64::try_from((total + 500_000) / 1_000_000).unwrap_or(u64::MAX)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    pub provider: ProviderKind,
    pub display_name: String,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub tools: bool,
    /// Whether the model reasons before answering and takes a thinking budget.
    #[serde(default)]
    pub reasoning: bool,
    /// `None` when the price is unknown (a model the catalog does not list); local servers cost
    /// nothing.
    pub prices: Option<Prices>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    checked: String,
    source: String,
    models: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    provider: ProviderKind,
    name: String,
    context_window: u64,
    max_output_tokens: u64,
    tools: bool,
    #[serde(default)]
    reasoning: bool,
    /// US dollars per million tokens.
    input: f64,
    output: f64,
    #[serde(default)]
    cache_read: f64,
    #[serde(default)]
    cache_write: f64,
}

fn micros(dollars: f64) -> Result<u64, String> {
    if !dollars.is_finite() || !(0.0..=1_000_000.0).contains(&dollars) {
        return Err(format!("{dollars} is not a price"));
    }
    // Prices have at most six decimals: rounding removes the float's noise.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "checked range"
    )]
    Ok((dollars * 1_000_000.0).round() as u64)
}

/// The catalog of known models.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// When the prices were last checked against the providers' price lists.
    pub checked: String,
    pub source: String,
    models: Vec<ModelInfo>,
}

impl Catalog {
    /// A catalog that knows no model.
    pub fn empty() -> Self {
        Self {
            checked: "never".into(),
            source: "none".into(),
            models: Vec::new(),
        }
    }

    pub fn builtin() -> Result<Self, String> {
        Self::parse(BUILTIN)
    }

    /// Whether the catalog lists `model` of `provider` as a model that reasons.
    pub fn reasons(&self, provider: ProviderKind, model: &str) -> bool {
        self.find(provider, model)
            .is_some_and(|info| info.reasoning)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text)
            .map_err(|error| format!("the model catalog is invalid: {error}"))?;
        let mut models = Vec::with_capacity(file.models.len());
        for entry in file.models {
            let prices = Prices {
                input: micros(entry.input)?,
                output: micros(entry.output)?,
                cache_read: micros(entry.cache_read)?,
                cache_write: micros(entry.cache_write)?,
            };
            models.push(ModelInfo {
                id: entry.id,
                provider: entry.provider,
                display_name: entry.name,
                context_window: Some(entry.context_window),
                max_output_tokens: Some(entry.max_output_tokens),
                tools: entry.tools,
                reasoning: entry.reasoning,
                prices: Some(prices),
            });
        }
        Ok(Self {
            checked: file.checked,
            source: file.source,
            models,
        })
    }

    pub fn models(&self) -> &[ModelInfo] {
        &self.models
    }

    /// The entry for `model` of `provider`: the exact id, or the longest id the model name
    /// extends with a dated or versioned suffix (`claude-haiku-4-5-20251001` is
    /// `claude-haiku-4-5`).
    pub fn find(&self, provider: ProviderKind, model: &str) -> Option<&ModelInfo> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        self.models
            .iter()
            .filter(|info| info.provider == provider)
            .filter(|info| {
                model == info.id
                    || model
                        .strip_prefix(info.id.as_str())
                        .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('@'))
            })
            .max_by_key(|info| info.id.len())
    }

    /// Which cloud provider serves a model, from the catalog or from the provider's naming.
    pub fn provider_of(&self, model: &str) -> Option<ProviderKind> {
        for provider in [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            if self.find(provider, model).is_some() {
                return Some(provider);
            }
        }
        let model = model.strip_prefix("models/").unwrap_or(model);
        if model.starts_with("gpt-")
            || model.starts_with("chatgpt-")
            || model.starts_with("o1")
            || model.starts_with("o3")
            || model.starts_with("o4")
            || model.starts_with("codex-")
        {
            Some(ProviderKind::OpenAi)
        } else if model.starts_with("claude-") {
            Some(ProviderKind::Anthropic)
        } else if model.starts_with("gemini-") {
            Some(ProviderKind::Gemini)
        } else {
            None
        }
    }

    /// What a user can pick for one endpoint: the models its list endpoint returned, with what
    /// the catalog knows of them (a model the catalog does not list keeps unknown prices; a
    /// local server's models cost nothing).
    pub fn merge(&self, provider: ProviderKind, remote: &[RemoteModel]) -> Vec<ModelInfo> {
        remote
            .iter()
            .map(|model| match self.find(provider, &model.id) {
                Some(info) => ModelInfo {
                    id: model.id.clone(),
                    context_window: model.context_window.or(info.context_window),
                    ..info.clone()
                },
                None => ModelInfo {
                    id: model.id.clone(),
                    provider,
                    display_name: model
                        .display_name
                        .clone()
                        .unwrap_or_else(|| model.id.clone()),
                    context_window: model.context_window,
                    max_output_tokens: None,
                    tools: provider == ProviderKind::OpenAiCompatible,
                    reasoning: false,
                    prices: (provider == ProviderKind::OpenAiCompatible).then(Prices::default),
                },
            })
            .collect()
    }

    /// The cost of a call in micro-dollars, `None` when the model's price is unknown.
    pub fn cost_micros(&self, provider: ProviderKind, model: &str, usage: &Usage) -> Option<u64> {
        if provider == ProviderKind::OpenAiCompatible {
            return Some(0);
        }
        self.find(provider, model)
            .and_then(|info| info.prices)
            .map(|prices| prices.cost_micros(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_parses_and_has_every_provider() {
        let catalog = Catalog::builtin().expect("catalog");
        for provider in [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            assert!(
                catalog
                    .models()
                    .iter()
                    .any(|model| model.provider == provider)
            );
        }
        assert!(!catalog.checked.is_empty());
    }

    #[test]
    fn dated_names_find_their_entry_and_costs_are_exact() {
        let catalog = Catalog::parse(
            r#"
checked = "2026-11-27"
source = "test"
[[models]]
id = "claude-haiku-4-5"
provider = "anthropic"
name = "Claude Haiku 4.5"
context_window = 200000
max_output_tokens = 64000
tools = true
input = 1.0
output = 5.0
cache_read = 0.1
cache_write = 1.25
"#,
        )
        .expect("catalog");
        assert!(
            catalog
                .find(ProviderKind::Anthropic, "claude-haiku-4-5-20251001")
                .is_some()
        );
        assert!(
            catalog
                .find(ProviderKind::Anthropic, "claude-haiku-4")
                .is_none()
        );
        assert_eq!(
            catalog.provider_of("claude-haiku-4-5-20251001"),
            Some(ProviderKind::Anthropic)
        );
        // 9 uncached input, 4202 cache read, 5 output:
        // 9 × 1 + 4202 × 0.1 + 5 × 5 = 454.2 micro-dollars.
        let usage = Usage {
            input_tokens: 4211,
            output_tokens: 5,
            cache_read_tokens: 4202,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        };
        assert_eq!(
            catalog.cost_micros(ProviderKind::Anthropic, "claude-haiku-4-5-20251001", &usage),
            Some(454)
        );
        assert_eq!(
            catalog.cost_micros(ProviderKind::OpenAiCompatible, "llama3", &usage),
            Some(0)
        );
        assert_eq!(
            catalog.cost_micros(ProviderKind::Anthropic, "claude-unknown", &usage),
            None
        );
    }
}
