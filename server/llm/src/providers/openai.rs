//! OpenAI's chat completions wire format, also spoken by Ollama, llama.cpp server, vLLM and LM
//! Studio. Request bodies are built with async-openai's types; answers are read with tolerant
//! types of our own, because compatible servers add fields (`reasoning_content`, `reasoning`)
//! and send error objects inside a stream.

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionTools, CreateChatCompletionRequest, FunctionCall, FunctionObject,
    StopConfiguration,
};
use serde::Deserialize;

use super::{Decoder, HttpCall, RemoteModel, join, parse_json, parse_json_bytes};
use crate::Endpoint;
use crate::error::{ErrorKind, ProviderError, mentions_context_length};
use crate::sse::SseEvent;
use crate::types::{Event, ProviderKind, Request, Role, StopReason, Usage};

fn message(message: &crate::types::Message) -> ChatCompletionRequestMessage {
    match message.role {
        Role::System => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(message.content.clone()),
            name: None,
        }),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(message.content.clone()),
            name: None,
        }),
        Role::Assistant => {
            let tool_calls: Vec<ChatCompletionMessageToolCalls> = message
                .tool_calls
                .iter()
                .map(|call| {
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: call.id.clone(),
                        function: FunctionCall {
                            name: call.name.clone(),
                            arguments: call.arguments.clone(),
                        },
                    })
                })
                .collect();
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: (!message.content.is_empty() || tool_calls.is_empty()).then(|| {
                    ChatCompletionRequestAssistantMessageContent::Text(message.content.clone())
                }),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                ..ChatCompletionRequestAssistantMessage::default()
            })
        }
        Role::Tool => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(message.content.clone()),
            tool_call_id: message.tool_call_id.clone().unwrap_or_default(),
        }),
    }
}

/// The request body (async-openai's type, so the field names are OpenAI's own).
pub(crate) fn request_body(
    kind: ProviderKind,
    model: &str,
    request: &Request,
    stream: bool,
) -> CreateChatCompletionRequest {
    let tools: Vec<ChatCompletionTools> = request
        .tools
        .iter()
        .map(|tool| {
            ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: tool.name.clone(),
                    description: (!tool.description.is_empty()).then(|| tool.description.clone()),
                    parameters: Some(tool.parameters.clone()),
                    strict: None,
                },
            })
        })
        .collect();
    let mut body = CreateChatCompletionRequest {
        model: model.to_owned(),
        messages: request.messages.iter().map(message).collect(),
        temperature: request.temperature,
        tools: (!tools.is_empty()).then_some(tools),
        stop: (!request.stop.is_empty())
            .then(|| StopConfiguration::StringArray(request.stop.clone())),
        ..CreateChatCompletionRequest::default()
    };
    // OpenAI replaced `max_tokens` (refused by its reasoning models); compatible servers still
    // read the old name.
    if kind == ProviderKind::OpenAi {
        body.max_completion_tokens = request.max_tokens;
    } else {
        #[expect(deprecated, reason = "compatible servers read only the old field")]
        {
            body.max_tokens = request.max_tokens;
        }
    }
    if kind == ProviderKind::OpenAi
        && let Some(budget) = request
            .thinking_budget
            .filter(|_| crate::catalog::reasons(kind, model))
    {
        body.reasoning_effort = Some(reasoning_effort(budget));
    }
    if stream {
        body.stream = Some(true);
        body.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
    }
    body
}

/// OpenAI's reasoning models take an effort, not a token budget: the budget's order of size.
fn reasoning_effort(budget: u32) -> async_openai::types::chat::ReasoningEffort {
    use async_openai::types::chat::ReasoningEffort;
    match budget {
        0..2048 => ReasoningEffort::Low,
        2048..16384 => ReasoningEffort::Medium,
        _ => ReasoningEffort::High,
    }
}

fn authorize(endpoint: &Endpoint, call: &mut HttpCall) -> Result<(), ProviderError> {
    match endpoint.api_key() {
        Some(key) => call.secret_header(
            http::header::AUTHORIZATION,
            &format!("Bearer {}", secrecy::ExposeSecret::expose_secret(key)),
        ),
        None if endpoint.kind() == ProviderKind::OpenAi => {
            Err(ProviderError::new(ErrorKind::Auth).with_message("no API key is stored for OpenAI"))
        }
        None => Ok(()),
    }
}

pub(crate) fn chat_call(
    endpoint: &Endpoint,
    model: &str,
    request: &Request,
    stream: bool,
) -> Result<HttpCall, ProviderError> {
    let body = request_body(endpoint.kind(), model, request, stream);
    let mut call = HttpCall::post_json(join(endpoint.base_url(), "chat/completions")?, &body)?;
    authorize(endpoint, &mut call)?;
    Ok(call)
}

pub(crate) fn models_call(endpoint: &Endpoint) -> Result<HttpCall, ProviderError> {
    let mut call = HttpCall::get(join(endpoint.base_url(), "models")?);
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
    /// vLLM reports the context window.
    #[serde(default)]
    max_model_len: Option<u64>,
}

pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<RemoteModel>, ProviderError> {
    let list: ModelList = parse_json_bytes(body)?;
    Ok(list
        .data
        .into_iter()
        .map(|entry| RemoteModel {
            id: entry.id,
            display_name: None,
            context_window: entry.max_model_len,
        })
        .collect())
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn normalise(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
            cache_read_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|details| details.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|details| details.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

fn stop_reason(raw: &str) -> StopReason {
    match raw {
        "stop" | "eos" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    /// DeepSeek, vLLM and llama.cpp server.
    #[serde(default)]
    reasoning_content: Option<String>,
    /// Ollama and OpenRouter.
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallChunk>>,
}

#[derive(Deserialize)]
struct ToolCallChunk {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionChunk>,
}

#[derive(Deserialize)]
struct FunctionChunk {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Reads a stream of `chat.completion.chunk` events ended by `data: [DONE]`.
#[derive(Default)]
pub(crate) struct StreamDecoder {
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
    /// Tool calls seen so far, to number those a server sends without an index.
    tool_calls: usize,
}

impl StreamDecoder {
    fn end(&mut self, out: &mut Vec<Event>) {
        self.done = true;
        if let Some(usage) = self.usage {
            out.push(Event::Usage { usage });
        }
        let raw = self.finish_reason.clone().unwrap_or_default();
        out.push(Event::Stop {
            reason: stop_reason(&raw),
            raw,
        });
    }
}

fn push_delta(delta: Delta, tool_calls: &mut usize, out: &mut Vec<Event>) {
    if let Some(text) = delta.reasoning_content.or(delta.reasoning)
        && !text.is_empty()
    {
        out.push(Event::ReasoningDelta { text });
    }
    if let Some(text) = delta.content
        && !text.is_empty()
    {
        out.push(Event::TextDelta { text });
    }
    for call in delta.tool_calls.unwrap_or_default() {
        let index = call.index.unwrap_or(*tool_calls);
        *tool_calls = (*tool_calls).max(index + 1);
        let (name, arguments) = match call.function {
            Some(function) => (function.name, function.arguments.unwrap_or_default()),
            None => (None, String::new()),
        };
        out.push(Event::ToolCallDelta {
            index,
            id: call.id.filter(|id| !id.is_empty()),
            name: name.filter(|name| !name.is_empty()),
            arguments,
        });
    }
}

impl Decoder for StreamDecoder {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.end(out);
            return Ok(());
        }
        let chunk: Chunk = parse_json(data)?;
        if let Some(error) = chunk.error {
            let mut error = error_from_value(ProviderError::new(ErrorKind::ProviderDown), &error);
            error.in_band = true;
            error.retryable = false;
            error.http_status = Some(200);
            return Err(error);
        }
        for choice in chunk.choices.into_iter().filter(|choice| choice.index == 0) {
            if let Some(delta) = choice.delta {
                push_delta(delta, &mut self.tool_calls, out);
            }
            if let Some(reason) = choice.finish_reason.filter(|reason| !reason.is_empty()) {
                self.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.normalise());
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        // Some compatible servers end without `[DONE]`; a finish reason still marks a whole
        // answer.
        if self.finish_reason.is_some() {
            self.end(out);
            return Ok(());
        }
        Err(ProviderError::incomplete(
            "the stream ended without a finish reason",
        ))
    }

    fn usage_so_far(&self) -> Option<Usage> {
        self.usage
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<CompletionChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct CompletionChoice {
    #[serde(default)]
    message: Option<CompletionMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CompletionMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallChunk>>,
}

pub(crate) fn parse_answer(body: &[u8]) -> Result<Vec<Event>, ProviderError> {
    let completion: Completion = parse_json_bytes(body)?;
    if let Some(error) = completion.error {
        let mut error = error_from_value(ProviderError::new(ErrorKind::ProviderDown), &error);
        error.http_status = Some(200);
        return Err(error);
    }
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::invalid_response("the answer has no choices"))?;
    let mut out = Vec::new();
    if let Some(message) = choice.message {
        let mut tool_calls = 0;
        push_delta(
            Delta {
                content: message.content,
                reasoning_content: message.reasoning_content,
                reasoning: message.reasoning,
                tool_calls: message.tool_calls,
            },
            &mut tool_calls,
            &mut out,
        );
    }
    if let Some(usage) = completion.usage {
        out.push(Event::Usage {
            usage: usage.normalise(),
        });
    }
    let raw = choice.finish_reason.unwrap_or_default();
    out.push(Event::Stop {
        reason: stop_reason(&raw),
        raw,
    });
    Ok(out)
}

/// Refines an error from its body: `{"error": {"message", "type", "code"}}` (OpenAI, vLLM),
/// `{"error": "text"}` (Ollama) or `{"message": ...}`.
pub(crate) fn refine_error(base: ProviderError, body: &[u8]) -> ProviderError {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => match value.get("error") {
            Some(error) => error_from_value(base, error),
            None => error_from_value(base, &value),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                base
            } else {
                let message: String = text.chars().take(500).collect();
                classify(base, None, None, &message)
            }
        }
    }
}

fn text_of(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn error_from_value(base: ProviderError, error: &serde_json::Value) -> ProviderError {
    if let serde_json::Value::String(message) = error {
        return classify(base, None, None, message);
    }
    let message = text_of(error.get("message")).unwrap_or_default();
    let error_type = text_of(error.get("type"));
    let code = text_of(error.get("code"));
    classify(base, error_type, code, &message)
}

fn classify(
    mut error: ProviderError,
    error_type: Option<String>,
    code: Option<String>,
    message: &str,
) -> ProviderError {
    let says = |word: &str| code.as_deref() == Some(word) || error_type.as_deref() == Some(word);
    if says("insufficient_quota") || says("billing_hard_limit_reached") {
        error.kind = ErrorKind::NoCredit;
        error.retryable = false;
    } else if says("context_length_exceeded") || mentions_context_length(message) {
        error.kind = ErrorKind::ContextTooLong;
        error.retryable = false;
    } else if says("model_not_found")
        || (error.http_status == Some(404) && message.to_ascii_lowercase().contains("model"))
    {
        error.kind = ErrorKind::ModelNotFound;
        error.retryable = false;
    } else if says("invalid_api_key") {
        error.kind = ErrorKind::Auth;
        error.retryable = false;
    } else if says("rate_limit_exceeded") && error.kind != ErrorKind::RateLimited {
        error.kind = ErrorKind::RateLimited;
        error.retryable = !error.in_band;
    }
    error.provider_type = error_type;
    error.provider_code = code;
    if !message.is_empty() {
        error.provider_message = Some(message.to_owned());
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Answer, Message, Tool};

    fn decode(body: &str) -> (Vec<Event>, Result<(), ProviderError>) {
        let mut parser = crate::sse::SseParser::new();
        let mut events = Vec::new();
        let mut decoder = StreamDecoder::default();
        let mut out = Vec::new();
        parser.feed(body.as_bytes(), &mut events);
        parser.finish(&mut events);
        for event in &events {
            if let Err(error) = decoder.event(event, &mut out) {
                return (out, Err(error));
            }
        }
        let result = decoder.finish(&mut out);
        (out, result)
    }

    #[test]
    fn a_thinking_budget_becomes_an_effort_for_openai_reasoning_models_only() {
        let request = |budget| Request {
            messages: vec![crate::types::Message::user("fix the test")],
            thinking_budget: Some(budget),
            ..Request::default()
        };
        let effort = |kind, model: &str, budget| {
            serde_json::to_value(request_body(kind, model, &request(budget), false)).unwrap()
                ["reasoning_effort"]
                .clone()
        };
        assert_eq!(effort(ProviderKind::OpenAi, "o4-mini", 1024), "low");
        assert_eq!(
            effort(ProviderKind::OpenAi, "gpt-5.4-2026-03-05", 8192),
            "medium"
        );
        assert_eq!(effort(ProviderKind::OpenAi, "gpt-5", 32_000), "high");
        // Models that do not reason refuse the field; local servers are not sent it.
        assert!(effort(ProviderKind::OpenAi, "gpt-4o", 8192).is_null());
        assert!(effort(ProviderKind::OpenAiCompatible, "gpt-5", 8192).is_null());
    }

    #[test]
    fn the_request_body_has_openai_field_names() {
        let request = Request {
            messages: vec![Message::system("be brief"), Message::user("hi")],
            max_tokens: Some(100),
            tools: vec![Tool {
                name: "read_file".into(),
                description: "Reads a file".into(),
                parameters: serde_json::json!({"type": "object"}),
            }],
            ..Request::default()
        };
        let body =
            serde_json::to_value(request_body(ProviderKind::OpenAi, "gpt-4o", &request, true))
                .expect("json");
        assert_eq!(body["model"], "gpt-4o");
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["content"], "hi");
        assert_eq!(body["max_completion_tokens"], 100);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["tools"][0]["type"], "function");
        assert_eq!(body["tools"][0]["function"]["name"], "read_file");
        let local = serde_json::to_value(request_body(
            ProviderKind::OpenAiCompatible,
            "llama3",
            &request,
            false,
        ))
        .expect("json");
        assert_eq!(local["max_tokens"], 100);
        assert!(local.get("stream").is_none());
    }

    #[test]
    fn streamed_tool_calls_and_usage() {
        let body = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
            "data: [DONE]\n\n"
        );
        let (events, result) = decode(body);
        result.expect("complete");
        let answer = Answer::from_events(&events);
        assert_eq!(answer.tool_calls.len(), 1);
        assert_eq!(answer.tool_calls[0].id, "call_1");
        assert_eq!(answer.tool_calls[0].arguments, "{\"a\":1}");
        assert_eq!(
            answer.stop,
            Some((StopReason::ToolUse, "tool_calls".into()))
        );
        assert_eq!(
            answer.usage,
            Some(Usage {
                input_tokens: 10,
                output_tokens: 5,
                cache_read_tokens: 4,
                ..Usage::default()
            })
        );
        assert!(matches!(events.last(), Some(Event::Stop { .. })));
    }

    #[test]
    fn a_stream_without_end_is_incomplete_and_an_error_event_is_in_band() {
        let (events, result) = decode(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
        );
        assert_eq!(events, vec![Event::TextDelta { text: "Hel".into() }]);
        assert_eq!(result.expect_err("incomplete").kind, ErrorKind::Incomplete);
        let (events, result) = decode(concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
            "data: {\"error\":{\"message\":\"CUDA out of memory\",\"type\":\"InternalServerError\",\"code\":500}}\n\n",
            "data: [DONE]\n\n"
        ));
        assert_eq!(events.len(), 1);
        let error = result.expect_err("in-band error");
        assert!(error.in_band && !error.retryable);
        assert_eq!(error.kind, ErrorKind::ProviderDown);
    }

    #[test]
    fn errors_say_what_to_do() {
        let mut headers = http::HeaderMap::new();
        headers.insert("retry-after", http::HeaderValue::from_static("1"));
        let error = super::super::parse_error(
            ProviderKind::OpenAi,
            429,
            &headers,
            br#"{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(error.kind, ErrorKind::RateLimited);
        assert!(error.retryable);
        assert_eq!(error.retry_after, Some(std::time::Duration::from_secs(1)));
        let quota = super::super::parse_error(
            ProviderKind::OpenAi,
            429,
            &http::HeaderMap::new(),
            br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(quota.kind, ErrorKind::NoCredit);
        assert!(!quota.retryable);
        let context = super::super::parse_error(
            ProviderKind::OpenAi,
            400,
            &http::HeaderMap::new(),
            br#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert_eq!(context.kind, ErrorKind::ContextTooLong);
        let ollama = super::super::parse_error(
            ProviderKind::OpenAiCompatible,
            404,
            &http::HeaderMap::new(),
            br#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
        );
        assert_eq!(ollama.kind, ErrorKind::ModelNotFound);
        let auth = super::super::parse_error(
            ProviderKind::OpenAi,
            401,
            &http::HeaderMap::new(),
            br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        );
        assert!(auth.marks_key_invalid());
    }
}
