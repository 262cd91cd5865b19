//! The provider-neutral request and the one stream of events every provider is translated into.

use serde::{Deserialize, Serialize};

/// Which wire format a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    #[serde(rename = "openai")]
    OpenAi,
    Anthropic,
    Gemini,
    /// Ollama, llama.cpp server, vLLM, LM Studio, ...: OpenAI's wire format at a base URL.
    #[serde(rename = "openai_compatible")]
    OpenAiCompatible,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::OpenAiCompatible,
    ];

    /// The kind's name: in stored credentials, usage rows, routing prefixes (`openai/gpt-4o`)
    /// and on the wire. The one list of these names; [`FromStr`](std::str::FromStr) reads it.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::OpenAiCompatible => "openai_compatible",
        }
    }

    /// The provider's public API, for kinds that have one.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            ProviderKind::OpenAiCompatible => None,
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.name())
    }
}

/// A provider kind name that is none of [`ProviderKind::ALL`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider kind {0:?} (known: openai, anthropic, gemini, openai_compatible)")]
pub struct UnknownProviderKind(pub String);

impl std::str::FromStr for ProviderKind {
    type Err = UnknownProviderKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownProviderKind(name.to_owned()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of the conversation. An assistant message may carry the tool calls it made; a
/// tool message answers the call `tool_call_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The tool's name, for a tool message (Gemini needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant turn's signed reasoning (Anthropic's thinking blocks), sent back with it:
    /// Anthropic refuses a tool-use turn whose thinking blocks were dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning: Vec<ReasoningBlock>,
}

/// One signed block of a model's reasoning (Anthropic's `thinking` block and its `signature`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasoningBlock {
    pub text: String,
    pub signature: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
            reasoning: Vec::new(),
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// The result of the tool call `call_id` to the tool `name`.
    pub fn tool_result(
        call_id: impl Into<String>,
        name: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
            name: Some(name.into()),
            reasoning: Vec::new(),
        }
    }
}

/// A complete tool call: `arguments` is the JSON text the model produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    /// The provider's opaque signature of the reasoning behind the call (Gemini's
    /// `thoughtSignature`), sent back with the call in the next request: Gemini 3 refuses a
    /// conversation whose function calls lost theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A tool the model may call; `parameters` is a JSON schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub parameters: serde_json::Value,
}

/// What to ask a model. The provider and key come from the [`crate::Target`], never from here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Tokens a model that reasons may spend thinking before it answers (Anthropic's extended
    /// thinking, Gemini's thinking budget, OpenAI's reasoning effort). Sent only to models the
    /// catalog lists as reasoning ([`crate::catalog::reasons`]); others never see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<u32>,
}

/// Token counts of one call, normalised across providers (the provider's own figures).
/// `input_tokens` counts every billed input token, cache reads and writes included;
/// `output_tokens` every generated token, reasoning included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Two calls' figures together (an answer continued after a restart, say); saturating.
impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(other.input_tokens),
            output_tokens: self.output_tokens.saturating_add(other.output_tokens),
            cache_read_tokens: self
                .cache_read_tokens
                .saturating_add(other.cache_read_tokens),
            cache_write_tokens: self
                .cache_write_tokens
                .saturating_add(other.cache_write_tokens),
            reasoning_tokens: self.reasoning_tokens.saturating_add(other.reasoning_tokens),
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        *self = *self + other;
    }
}

/// Why the model stopped, normalised; the provider's own word is kept beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    ContentFilter,
    Other,
}

impl StopReason {
    pub fn name(&self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::ContentFilter => "content_filter",
            StopReason::Other => "other",
        }
    }
}

/// One event of an answer, in the order the provider sent it. A stream that ends well ends
/// with `Usage` (when the provider reports it) and then `Stop`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    TextDelta {
        text: String,
    },
    ReasoningDelta {
        text: String,
    },
    /// Anthropic signs its thinking blocks; the signature must go back with them.
    ReasoningSignature {
        signature: String,
    },
    /// Part of tool call number `index`: its id and name come with the first part.
    ToolCallDelta {
        index: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        arguments: String,
    },
    /// The signature of tool call number `index` (see [`ToolCall::signature`]); it comes
    /// before the call's first part.
    ToolCallSignature {
        index: usize,
        signature: String,
    },
    Usage {
        usage: Usage,
    },
    Stop {
        reason: StopReason,
        raw: String,
    },
}

/// Folds events into the whole answer: what a caller that does not stream gets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    pub reasoning: String,
    pub reasoning_signatures: Vec<String>,
    /// The reasoning as signed blocks: the text since the previous signature, with its own.
    pub reasoning_blocks: Vec<ReasoningBlock>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    pub stop: Option<(StopReason, String)>,
    /// Where `reasoning` stood at the last signature.
    signed_reasoning_bytes: usize,
}

impl Answer {
    pub fn push(&mut self, event: &Event) {
        match event {
            Event::TextDelta { text } => self.text.push_str(text),
            Event::ReasoningDelta { text } => self.reasoning.push_str(text),
            Event::ReasoningSignature { signature } => {
                self.reasoning_signatures.push(signature.clone());
                let text = self
                    .reasoning
                    .get(self.signed_reasoning_bytes..)
                    .unwrap_or_default()
                    .to_owned();
                self.signed_reasoning_bytes = self.reasoning.len();
                self.reasoning_blocks.push(ReasoningBlock {
                    text,
                    signature: signature.clone(),
                });
            }
            Event::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let call = self.tool_call(*index);
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.clone_from(name);
                }
                call.arguments.push_str(arguments);
            }
            Event::ToolCallSignature { index, signature } => {
                self.tool_call(*index).signature = Some(signature.clone());
            }
            Event::Usage { usage } => self.usage = Some(*usage),
            Event::Stop { reason, raw } => self.stop = Some((reason.clone(), raw.clone())),
        }
    }

    fn tool_call(&mut self, index: usize) -> &mut ToolCall {
        if self.tool_calls.len() <= index {
            self.tool_calls.resize_with(index + 1, ToolCall::default);
        }
        &mut self.tool_calls[index]
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut answer = Self::default();
        for event in events {
            answer.push(event);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_provider_kind_name_reads_back_as_its_kind_and_is_its_serde_name() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.name().parse::<ProviderKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
            assert_eq!(
                serde_json::to_value(kind).expect("a kind serialises"),
                serde_json::Value::String(kind.name().to_owned())
            );
        }
        for unknown in ["", "OpenAI", "openai ", "ollama", "openai-compatible"] {
            assert_eq!(
                unknown.parse::<ProviderKind>(),
                Err(UnknownProviderKind(unknown.to_owned()))
            );
        }
    }

    #[test]
    fn usages_add_field_by_field_without_overflowing() {
        let first = Usage {
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 3,
            cache_write_tokens: 2,
            reasoning_tokens: 1,
        };
        let second = Usage {
            input_tokens: 1,
            output_tokens: 2,
            cache_read_tokens: 3,
            cache_write_tokens: 4,
            reasoning_tokens: u64::MAX,
        };
        let mut total = first;
        total += second;
        assert_eq!(
            total,
            Usage {
                input_tokens: 11,
                output_tokens: 7,
                cache_read_tokens: 6,
                cache_write_tokens: 6,
                reasoning_tokens: u64::MAX,
            }
        );
        assert_eq!(first + Usage::default(), first);
    }

    #[test]
    fn each_signature_closes_the_reasoning_block_before_it() {
        let mut answer = Answer::default();
        for event in [
            Event::ReasoningDelta {
                text: "First ".into(),
            },
            Event::ReasoningDelta {
                text: "thought.".into(),
            },
            Event::ReasoningSignature {
                signature: "sig-1".into(),
            },
            Event::ReasoningDelta {
                text: "Second.".into(),
            },
            Event::ReasoningSignature {
                signature: "sig-2".into(),
            },
        ] {
            answer.push(&event);
        }
        assert_eq!(answer.reasoning, "First thought.Second.");
        assert_eq!(
            answer.reasoning_blocks,
            [
                ReasoningBlock {
                    text: "First thought.".into(),
                    signature: "sig-1".into(),
                },
                ReasoningBlock {
                    text: "Second.".into(),
                    signature: "sig-2".into(),
                },
            ]
        );
    }
}
