//! Anthropic's Messages API: `POST /v1/messages` with `x-api-key` and `anthropic-version`,
//! streamed as named events (`message_start`, `content_block_start/delta/stop`,
//! `message_delta`, `message_stop`, `ping`, `error`). Unknown events and deltas are skipped, as
//! Anthropic's versioning policy asks.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Decoder, HttpCall, RemoteModel, join, parse_json, parse_json_bytes, required_key};
use crate::Endpoint;
use crate::error::{ErrorKind, ProviderError, mentions_context_length};
use crate::sse::SseEvent;
use crate::types::{Event, Request, Role, StopReason, Usage};

const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the request names none.
const DEFAULT_MAX_TOKENS: u32 = 8192;

fn content_blocks(message: &crate::types::Message) -> Vec<Value> {
    let mut blocks = Vec::new();
    match message.role {
        Role::Tool => blocks.push(json!({
            "type": "tool_result",
            "tool_use_id": message.tool_call_id.clone().unwrap_or_default(),
            "content": message.content,
        })),
        _ => {
            // Thinking blocks come first in their turn, as they were received.
            for reasoning in &message.reasoning {
                blocks.push(json!({
                    "type": "thinking",
                    "thinking": reasoning.text,
                    "signature": reasoning.signature,
                }));
            }
            if !message.content.is_empty() {
                blocks.push(json!({"type": "text", "text": message.content}));
            }
            for call in &message.tool_calls {
                let input: Value =
                    serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
                blocks.push(json!({
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.name,
                    "input": input,
                }));
            }
        }
    }
    blocks
}

pub(crate) fn request_body(model: &str, request: &Request, stream: bool) -> Value {
    let system: Vec<&str> = request
        .messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| message.content.as_str())
        .collect();
    // Anthropic has two roles; tool results travel in user turns, and consecutive turns of
    // one role are merged.
    let messages = super::two_role_turns(request, "assistant", "content", content_blocks);
    let thinking = thinking_budget(model, request);
    let mut max_tokens = request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if let Some(budget) = thinking {
        // The budget counts within `max_tokens`, and must leave room for the answer.
        max_tokens = max_tokens.max(budget.saturating_add(DEFAULT_MAX_TOKENS));
    }
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(budget) = thinking {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
    } else if let Some(temperature) = request.temperature {
        // Extended thinking takes no temperature.
        body["temperature"] = json!(temperature);
    }
    if !request.stop.is_empty() {
        body["stop_sequences"] = json!(request.stop);
    }
    if !request.tools.is_empty() {
        body["tools"] = Value::Array(
            request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "name": tool.name,
                        "description": tool.description,
                        "input_schema": tool.parameters,
                    })
                })
                .collect(),
        );
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u32 = 1024;

/// The thinking budget to send: the request's, at least Anthropic's minimum, for a model that
/// reasons; none when the request continues an assistant turn (a tool-use loop: everything
/// since the person's last message) that began without thinking, after a fallback from another
/// provider, say: Anthropic requires a turn made with thinking to start with a thinking block.
fn thinking_budget(model: &str, request: &Request) -> Option<u32> {
    let budget = request.thinking_budget?;
    if !crate::catalog::reasons(crate::types::ProviderKind::Anthropic, model) {
        return None;
    }
    let turn_start = request
        .messages
        .iter()
        .rposition(|message| message.role == Role::User)
        .map_or(0, |index| index + 1);
    let turn_began_without_thinking = request.messages[turn_start..]
        .iter()
        .find(|message| message.role == Role::Assistant)
        .is_some_and(|message| message.reasoning.is_empty());
    if turn_began_without_thinking {
        return None;
    }
    Some(budget.max(MIN_THINKING_BUDGET))
}

fn authorize(endpoint: &Endpoint, call: &mut HttpCall) -> Result<(), ProviderError> {
    call.secret_header(
        http::HeaderName::from_static("x-api-key"),
        required_key(endpoint)?,
    )?;
    call.headers.insert(
        http::HeaderName::from_static("anthropic-version"),
        http::HeaderValue::from_static(API_VERSION),
    );
    Ok(())
}

pub(crate) fn chat_call(
    endpoint: &Endpoint,
    model: &str,
    request: &Request,
    stream: bool,
) -> Result<HttpCall, ProviderError> {
    let mut call = HttpCall::post_json(
        join(endpoint.base_url(), "messages")?,
        &request_body(model, request, stream),
    )?;
    authorize(endpoint, &mut call)?;
    Ok(call)
}

pub(crate) fn models_call(endpoint: &Endpoint) -> Result<HttpCall, ProviderError> {
    let mut url = join(endpoint.base_url(), "models")?;
    url.query_pairs_mut().append_pair("limit", "1000");
    let mut call = HttpCall::get(url);
    authorize(endpoint, &mut call)?;
    Ok(call)
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
    #[serde(default)]
    display_name: Option<String>,
}

pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<RemoteModel>, ProviderError> {
    let list: ModelList = parse_json_bytes(body)?;
    Ok(list
        .data
        .into_iter()
        .map(|entry| RemoteModel {
            id: entry.id,
            display_name: entry.display_name,
            context_window: None,
        })
        .collect())
}

/// Anthropic's usage: cumulative; a later report replaces the fields it carries.
#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    fn merge(&mut self, later: &WireUsage) {
        if later.input_tokens.is_some() {
            self.input_tokens = later.input_tokens;
        }
        if later.output_tokens.is_some() {
            self.output_tokens = later.output_tokens;
        }
        if later.cache_read_input_tokens.is_some() {
            self.cache_read_input_tokens = later.cache_read_input_tokens;
        }
        if later.cache_creation_input_tokens.is_some() {
            self.cache_creation_input_tokens = later.cache_creation_input_tokens;
        }
    }

    fn normalise(&self) -> Usage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0) + cache_read + cache_write,
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            reasoning_tokens: 0,
        }
    }
}

fn stop_reason(raw: &str) -> StopReason {
    match raw {
        "end_turn" | "pause_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[derive(Deserialize)]
struct StreamEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    message: Option<MessageStart>,
    #[serde(default)]
    content_block: Option<Value>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct MessageStart {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Default)]
pub(crate) struct StreamDecoder {
    usage: Option<WireUsage>,
    stop: Option<String>,
    done: bool,
    /// Content block index → tool call number.
    tool_blocks: Vec<(usize, usize)>,
}

impl StreamDecoder {
    fn tool_index(&self, block: usize) -> Option<usize> {
        self.tool_blocks
            .iter()
            .find(|(index, _)| *index == block)
            .map(|(_, tool)| *tool)
    }

    fn merge_usage(&mut self, usage: &WireUsage) {
        self.usage
            .get_or_insert_with(WireUsage::default)
            .merge(usage);
    }
}

fn text_field(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_owned)
}

impl Decoder for StreamDecoder {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        if self.done || event.data.trim().is_empty() {
            return Ok(());
        }
        let parsed: StreamEvent = parse_json(&event.data)?;
        match parsed.kind.as_str() {
            "message_start" => {
                if let Some(usage) = parsed.message.and_then(|message| message.usage) {
                    self.merge_usage(&usage);
                }
            }
            "content_block_start" => {
                let block = parsed.content_block.unwrap_or(Value::Null);
                let index = parsed.index.unwrap_or(0);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let tool = self.tool_blocks.len();
                        self.tool_blocks.push((index, tool));
                        out.push(Event::ToolCallDelta {
                            index: tool,
                            id: text_field(&block, "id"),
                            name: text_field(&block, "name"),
                            arguments: String::new(),
                        });
                    }
                    Some("text") => {
                        if let Some(text) =
                            text_field(&block, "text").filter(|text| !text.is_empty())
                        {
                            out.push(Event::TextDelta { text });
                        }
                    }
                    Some("thinking") => {
                        if let Some(text) =
                            text_field(&block, "thinking").filter(|text| !text.is_empty())
                        {
                            out.push(Event::ReasoningDelta { text });
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = parsed.delta.unwrap_or(Value::Null);
                let index = parsed.index.unwrap_or(0);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(text) = text_field(&delta, "text") {
                            out.push(Event::TextDelta { text });
                        }
                    }
                    Some("thinking_delta") => {
                        if let Some(text) = text_field(&delta, "thinking") {
                            out.push(Event::ReasoningDelta { text });
                        }
                    }
                    Some("signature_delta") => {
                        if let Some(signature) = text_field(&delta, "signature") {
                            out.push(Event::ReasoningSignature { signature });
                        }
                    }
                    Some("input_json_delta") => {
                        if let (Some(tool), Some(arguments)) =
                            (self.tool_index(index), text_field(&delta, "partial_json"))
                        {
                            out.push(Event::ToolCallDelta {
                                index: tool,
                                id: None,
                                name: None,
                                arguments,
                            });
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(usage) = parsed.usage {
                    self.merge_usage(&usage);
                }
                if let Some(reason) = parsed
                    .delta
                    .as_ref()
                    .and_then(|delta| text_field(delta, "stop_reason"))
                {
                    self.stop = Some(reason);
                }
            }
            "message_stop" => {
                self.done = true;
                if let Some(usage) = self.usage {
                    out.push(Event::Usage {
                        usage: usage.normalise(),
                    });
                }
                let raw = self.stop.clone().unwrap_or_default();
                out.push(Event::Stop {
                    reason: stop_reason(&raw),
                    raw,
                });
            }
            "error" => {
                let mut error = error_from_body(
                    ProviderError::new(ErrorKind::ProviderDown),
                    parsed.error.as_ref(),
                );
                error.in_band = true;
                error.retryable = false;
                error.http_status = Some(200);
                return Err(error);
            }
            // ping, content_block_stop, and events added after this was written.
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<Event>) -> Result<(), ProviderError> {
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::incomplete(
                "the stream ended before message_stop",
            ))
        }
    }

    fn usage_so_far(&self) -> Option<Usage> {
        self.usage.map(|usage| usage.normalise())
    }
}

#[derive(Deserialize)]
struct WholeMessage {
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

pub(crate) fn parse_answer(body: &[u8]) -> Result<Vec<Event>, ProviderError> {
    let message: WholeMessage = parse_json_bytes(body)?;
    let mut out = Vec::new();
    let mut tools = 0;
    for block in &message.content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = text_field(block, "text") {
                    out.push(Event::TextDelta { text });
                }
            }
            Some("thinking") => {
                if let Some(text) = text_field(block, "thinking") {
                    out.push(Event::ReasoningDelta { text });
                }
                if let Some(signature) = text_field(block, "signature") {
                    out.push(Event::ReasoningSignature { signature });
                }
            }
            Some("tool_use") => {
                out.push(Event::ToolCallDelta {
                    index: tools,
                    id: text_field(block, "id"),
                    name: text_field(block, "name"),
                    arguments: block
                        .get("input")
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".into()),
                });
                tools += 1;
            }
            _ => {}
        }
    }
    if let Some(usage) = message.usage {
        out.push(Event::Usage {
            usage: usage.normalise(),
        });
    }
    let raw = message.stop_reason.unwrap_or_default();
    out.push(Event::Stop {
        reason: stop_reason(&raw),
        raw,
    });
    Ok(out)
}

/// `{"type": "error", "error": {"type": "...", "message": "..."}}`.
pub(crate) fn refine_error(base: ProviderError, body: &[u8]) -> ProviderError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    error_from_body(base, value.as_ref().and_then(|value| value.get("error")))
}

fn error_from_body(mut error: ProviderError, body: Option<&Value>) -> ProviderError {
    let Some(body) = body else {
        return error;
    };
    let error_type = text_field(body, "type");
    let message = text_field(body, "message").unwrap_or_default();
    match error_type.as_deref() {
        Some("authentication_error" | "permission_error") => {
            error.kind = ErrorKind::Auth;
            error.retryable = false;
        }
        Some("billing_error") => {
            error.kind = ErrorKind::NoCredit;
            error.retryable = false;
        }
        Some("not_found_error") => {
            error.kind = ErrorKind::ModelNotFound;
            error.retryable = false;
        }
        Some("rate_limit_error") => {
            error.kind = ErrorKind::RateLimited;
            error.retryable = !error.in_band;
        }
        Some("overloaded_error" | "api_error" | "timeout_error") => {
            error.kind = ErrorKind::ProviderDown;
            error.retryable = !error.in_band;
        }
        Some("request_too_large") => {
            error.kind = ErrorKind::ContextTooLong;
            error.retryable = false;
        }
        Some("invalid_request_error") => {
            let lower = message.to_ascii_lowercase();
            error.kind =
                if mentions_context_length(&message) || lower.contains("exceed context limit") {
                    ErrorKind::ContextTooLong
                } else if lower.contains("credit balance") {
                    ErrorKind::NoCredit
                } else {
                    ErrorKind::BadRequest
                };
            error.retryable = false;
        }
        _ => {}
    }
    error.provider_type = error_type;
    if !message.is_empty() {
        error.provider_message = Some(message);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Answer, Message, ToolCall};

    #[test]
    fn tool_results_travel_in_user_turns() {
        let mut assistant = Message::assistant("Let me look.");
        assistant.reasoning.push(crate::types::ReasoningBlock {
            text: "The file may be small.".into(),
            signature: "sig-1".into(),
        });
        assistant.tool_calls.push(ToolCall {
            id: "toolu_1".into(),
            name: "read_file".into(),
            arguments: "{\"path\":\"a.rs\"}".into(),
            signature: None,
        });
        let request = Request {
            messages: vec![
                Message::system("be brief"),
                Message::user("what is in a.rs?"),
                assistant,
                Message::tool_result("toolu_1", "read_file", "fn main() {}"),
            ],
            ..Request::default()
        };
        let body = request_body("claude-sonnet-4-5", &request, true);
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(body["messages"][1]["content"][0]["type"], "thinking");
        assert_eq!(body["messages"][1]["content"][0]["signature"], "sig-1");
        assert_eq!(body["messages"][1]["content"][2]["type"], "tool_use");
        assert_eq!(body["messages"][1]["content"][2]["input"]["path"], "a.rs");
        assert_eq!(body["messages"][2]["role"], "user");
        assert_eq!(body["messages"][2]["content"][0]["type"], "tool_result");
        assert_eq!(body["stream"], true);
    }

    #[test]
    fn a_thinking_budget_enables_extended_thinking_on_models_that_reason_only() {
        let request = Request {
            messages: vec![Message::user("fix the test")],
            max_tokens: Some(4096),
            temperature: Some(0.2),
            thinking_budget: Some(500),
            ..Request::default()
        };
        let body = request_body("claude-sonnet-4-5-20250929", &request, true);
        // At least Anthropic's minimum, with room left for the answer, and no temperature.
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": MIN_THINKING_BUDGET})
        );
        assert_eq!(body["max_tokens"], MIN_THINKING_BUDGET + DEFAULT_MAX_TOKENS);
        assert!(body.get("temperature").is_none());
        // A model that does not reason, or one the catalog does not know, never sees it.
        for model in ["claude-3-5-haiku-20241022", "my-proxy-model"] {
            let body = request_body(model, &request, true);
            assert!(body.get("thinking").is_none(), "{model}");
            assert_eq!(body["max_tokens"], 4096);
            assert!((body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
        }
    }

    #[test]
    fn thinking_is_not_switched_on_in_the_middle_of_a_turn_that_began_without_it() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "read".into(),
            arguments: "{}".into(),
            signature: None,
        };
        let mut without = Message::assistant("");
        without.tool_calls.push(call.clone());
        let mut with = without.clone();
        with.reasoning.push(crate::types::ReasoningBlock {
            text: "Read it first.".into(),
            signature: "sig".into(),
        });
        let turn = |assistant: Message| Request {
            messages: vec![
                Message::user("fix it"),
                assistant,
                Message::tool_result("call_1", "read", "text"),
            ],
            thinking_budget: Some(2048),
            ..Request::default()
        };
        // The turn began on another provider (no thinking block): thinking stays off.
        assert!(
            request_body("claude-opus-4-6", &turn(without.clone()), true)
                .get("thinking")
                .is_none()
        );
        // The turn began with thinking: it goes on, its block sent back first.
        let body = request_body("claude-opus-4-6", &turn(with), true);
        assert_eq!(body["thinking"]["budget_tokens"], 2048);
        assert_eq!(body["messages"][1]["content"][0]["type"], "thinking");
        // A new message from the person starts a new turn, with thinking.
        let mut next = turn(without);
        next.messages.push(Message::user("now the other one"));
        assert_eq!(
            request_body("claude-opus-4-6", &next, true)["thinking"]["budget_tokens"],
            2048
        );
    }

    #[test]
    fn usage_is_the_last_cumulative_report() {
        let events = [
            r#"{"type":"message_start","message":{"usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":4202,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"OK."}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"future_delta","x":1}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        let mut decoder = StreamDecoder::default();
        let mut out = Vec::new();
        for data in events {
            decoder
                .event(
                    &SseEvent {
                        event: String::new(),
                        data: data.into(),
                    },
                    &mut out,
                )
                .expect("event");
        }
        decoder.finish(&mut out).expect("complete");
        let answer = Answer::from_events(&out);
        assert_eq!(answer.text, "OK.");
        assert_eq!(
            answer.usage,
            Some(Usage {
                input_tokens: 4211,
                output_tokens: 5,
                cache_read_tokens: 4202,
                cache_write_tokens: 0,
                reasoning_tokens: 0,
            })
        );
        assert_eq!(answer.stop, Some((StopReason::EndTurn, "end_turn".into())));
    }

    #[test]
    fn errors_map_to_kinds() {
        let context = super::super::parse_error(
            crate::ProviderKind::Anthropic,
            400,
            &http::HeaderMap::new(),
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 200251 tokens > 200000 maximum"}}"#,
        );
        assert_eq!(context.kind, ErrorKind::ContextTooLong);
        let overloaded = super::super::parse_error(
            crate::ProviderKind::Anthropic,
            529,
            &http::HeaderMap::new(),
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(overloaded.kind, ErrorKind::ProviderDown);
        assert!(overloaded.retryable);
    }
}
