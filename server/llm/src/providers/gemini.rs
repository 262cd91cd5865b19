//! Google Gemini's `generateContent` and `streamGenerateContent?alt=sse` (v1beta), keyed with
//! `x-goog-api-key`. Every streamed event is a whole `GenerateContentResponse`; `usageMetadata`
//! is cumulative; the stream is whole once a candidate carries a `finishReason`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Decoder, HttpCall, RemoteModel, join, parse_json, parse_json_bytes, required_key};
use crate::Endpoint;
use crate::error::{ErrorKind, ProviderError, mentions_context_length, parse_retry_after};
use crate::sse::SseEvent;
use crate::types::{Event, ProviderKind, Request, Role, StopReason, Usage};

/// Gemini reads an OpenAPI subset of JSON schema: drop the keywords it refuses.
fn schema(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| {
                    !matches!(
                        key.as_str(),
                        "$schema" | "$id" | "additionalProperties" | "strict"
                    )
                })
                .map(|(key, value)| (key.clone(), schema(value)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(schema).collect()),
        other => other.clone(),
    }
}

fn parts(message: &crate::types::Message) -> Vec<Value> {
    let mut parts = Vec::new();
    if message.role == Role::Tool {
        let response: Value = serde_json::from_str(&message.content)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({"result": message.content}));
        parts.push(json!({"functionResponse": {
            "name": message.name.clone().unwrap_or_default(),
            "response": response,
        }}));
        return parts;
    }
    if !message.content.is_empty() {
        parts.push(json!({"text": message.content}));
    }
    for call in &message.tool_calls {
        let args: Value = serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!({}));
        let mut part = json!({"functionCall": {"name": call.name, "args": args}});
        // The signature goes back in the part it came in, beside the call.
        if let Some(signature) = &call.signature {
            part["thoughtSignature"] = json!(signature);
        }
        parts.push(part);
    }
    parts
}

pub(crate) fn request_body(model: &str, request: &Request) -> Value {
    let system: Vec<Value> = request
        .messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| json!({"text": message.content}))
        .collect();
    let contents = super::two_role_turns(request, "model", "parts", parts);
    let mut body = json!({"contents": contents});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": system});
    }
    let mut config = Map::new();
    if let Some(temperature) = request.temperature {
        config.insert("temperature".into(), json!(temperature));
    }
    if let Some(max_tokens) = request.max_tokens {
        config.insert("maxOutputTokens".into(), json!(max_tokens));
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), json!(request.stop));
    }
    if let Some(budget) = request
        .thinking_budget
        .filter(|_| crate::catalog::reasons(ProviderKind::Gemini, model))
    {
        // Thought summaries come back as parts marked `thought`, with their signatures.
        config.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": budget, "includeThoughts": true}),
        );
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": schema(&tool.parameters),
                })
            })
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    body
}

fn authorize(endpoint: &Endpoint, call: &mut HttpCall) -> Result<(), ProviderError> {
    call.secret_header(
        http::HeaderName::from_static("x-goog-api-key"),
        required_key(endpoint)?,
    )
}

pub(crate) fn chat_call(
    endpoint: &Endpoint,
    model: &str,
    request: &Request,
    stream: bool,
) -> Result<HttpCall, ProviderError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if model.is_empty() || model.contains(['/', '?', '#']) {
        return Err(ProviderError::new(ErrorKind::ModelNotFound)
            .with_message("a Gemini model name has no slashes"));
    }
    let method = if stream {
        "streamGenerateContent"
    } else {
        "generateContent"
    };
    let mut url = join(endpoint.base_url(), &format!("models/{model}:{method}"))?;
    if stream {
        url.query_pairs_mut().append_pair("alt", "sse");
    }
    let mut call = HttpCall::post_json(url, &request_body(model, request))?;
    authorize(endpoint, &mut call)?;
    Ok(call)
}

pub(crate) fn models_call(endpoint: &Endpoint) -> Result<HttpCall, ProviderError> {
    let mut url = join(endpoint.base_url(), "models")?;
    url.query_pairs_mut().append_pair("pageSize", "1000");
    let mut call = HttpCall::get(url);
    authorize(endpoint, &mut call)?;
    Ok(call)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelList {
    #[serde(default)]
    models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelEntry {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    input_token_limit: Option<u64>,
    #[serde(default)]
    supported_generation_methods: Vec<String>,
}

pub(crate) fn parse_models(body: &[u8]) -> Result<Vec<RemoteModel>, ProviderError> {
    let list: ModelList = parse_json_bytes(body)?;
    Ok(list
        .models
        .into_iter()
        .filter(|entry| {
            entry.supported_generation_methods.is_empty()
                || entry
                    .supported_generation_methods
                    .iter()
                    .any(|method| method == "generateContent")
        })
        .map(|entry| RemoteModel {
            id: entry
                .name
                .strip_prefix("models/")
                .unwrap_or(&entry.name)
                .to_owned(),
            display_name: entry.display_name,
            context_window: entry.input_token_limit,
        })
        .collect())
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    tool_use_prompt_token_count: Option<u64>,
}

impl UsageMetadata {
    fn normalise(&self) -> Usage {
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        Usage {
            input_tokens: self.prompt_token_count.unwrap_or(0)
                + self.tool_use_prompt_token_count.unwrap_or(0),
            output_tokens: self.candidates_token_count.unwrap_or(0) + thoughts,
            cache_read_tokens: self.cached_content_token_count.unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: thoughts,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    prompt_feedback: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Value>,
}

fn stop_reason(raw: &str, called_tools: bool) -> StopReason {
    match raw {
        // Gemini says STOP even when it called a function.
        "STOP" if called_tools => StopReason::ToolUse,
        "STOP" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => StopReason::Other,
        _ => StopReason::Other,
    }
}

#[derive(Default)]
pub(crate) struct StreamDecoder {
    usage: Option<UsageMetadata>,
    finish: Option<String>,
    tool_calls: usize,
}

fn push_parts(parts: &[Value], tool_calls: &mut usize, out: &mut Vec<Event>) {
    for part in parts {
        if let Some(call) = part.get("functionCall") {
            if let Some(signature) = part.get("thoughtSignature").and_then(Value::as_str) {
                out.push(Event::ToolCallSignature {
                    index: *tool_calls,
                    signature: signature.to_owned(),
                });
            }
            out.push(Event::ToolCallDelta {
                index: *tool_calls,
                id: call.get("id").and_then(Value::as_str).map(str::to_owned),
                name: call.get("name").and_then(Value::as_str).map(str::to_owned),
                arguments: call
                    .get("args")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".into()),
            });
            *tool_calls += 1;
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if text.is_empty() {
                continue;
            }
            let text = text.to_owned();
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                out.push(Event::ReasoningDelta { text });
            } else {
                out.push(Event::TextDelta { text });
            }
        }
    }
}

fn response_error(error: &Value) -> ProviderError {
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok());
    let (kind, retryable) = status.map_or(
        (ErrorKind::ProviderDown, true),
        crate::error::kind_of_status,
    );
    let mut base = ProviderError::new(kind).retryable(retryable);
    base.http_status = status;
    error_from_body(base, Some(error))
}

impl Decoder for StreamDecoder {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        if event.data.trim().is_empty() {
            return Ok(());
        }
        let response: Response = parse_json(&event.data)?;
        if let Some(error) = response.error {
            let mut error = response_error(&error);
            error.in_band = true;
            error.retryable = false;
            error.http_status = Some(200);
            return Err(error);
        }
        for candidate in response
            .candidates
            .iter()
            .filter(|candidate| candidate.index.unwrap_or(0) == 0)
        {
            if let Some(content) = &candidate.content {
                push_parts(&content.parts, &mut self.tool_calls, out);
            }
            if let Some(reason) = &candidate.finish_reason {
                self.finish = Some(reason.clone());
            }
        }
        if let Some(usage) = response.usage_metadata {
            self.usage = Some(usage);
        }
        if response.candidates.is_empty()
            && let Some(feedback) = response.prompt_feedback
            && let Some(reason) = feedback.get("blockReason").and_then(Value::as_str)
        {
            self.finish = Some(reason.to_owned());
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), ProviderError> {
        let Some(raw) = self.finish.clone() else {
            return Err(ProviderError::incomplete(
                "the stream ended before a finish reason",
            ));
        };
        if let Some(usage) = self.usage {
            out.push(Event::Usage {
                usage: usage.normalise(),
            });
        }
        out.push(Event::Stop {
            reason: stop_reason(&raw, self.tool_calls > 0),
            raw,
        });
        Ok(())
    }

    fn usage_so_far(&self) -> Option<Usage> {
        self.usage.map(|usage| usage.normalise())
    }
}

pub(crate) fn parse_answer(body: &[u8]) -> Result<Vec<Event>, ProviderError> {
    let mut decoder = StreamDecoder::default();
    let mut out = Vec::new();
    let text = std::str::from_utf8(body)
        .map_err(|_| ProviderError::invalid_response("the answer is not UTF-8"))?;
    decoder.event(
        &SseEvent {
            event: String::new(),
            data: text.to_owned(),
        },
        &mut out,
    )?;
    decoder.finish(&mut out)?;
    Ok(out)
}

/// `{"error": {"code", "message", "status", "details": [...]}}`.
pub(crate) fn refine_error(base: ProviderError, body: &[u8]) -> ProviderError {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    error_from_body(base, value.as_ref().and_then(|value| value.get("error")))
}

fn error_from_body(mut error: ProviderError, body: Option<&Value>) -> ProviderError {
    let Some(body) = body else {
        return error;
    };
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let details = body
        .get("details")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let reason = details
        .iter()
        .find_map(|detail| detail.get("reason").and_then(Value::as_str))
        .map(str::to_owned);
    if error.retry_after.is_none() {
        error.retry_after = details
            .iter()
            .find_map(|detail| detail.get("retryDelay").and_then(Value::as_str))
            .and_then(|delay| parse_retry_after(delay.trim_end_matches('s')));
    }
    match (status.as_deref(), reason.as_deref()) {
        (_, Some("API_KEY_INVALID" | "API_KEY_EXPIRED")) => {
            error.kind = ErrorKind::Auth;
            error.retryable = false;
        }
        (Some("UNAUTHENTICATED" | "PERMISSION_DENIED"), _) => {
            error.kind = ErrorKind::Auth;
            error.retryable = false;
        }
        (Some("NOT_FOUND"), _) => {
            error.kind = ErrorKind::ModelNotFound;
            error.retryable = false;
        }
        (Some("RESOURCE_EXHAUSTED"), _) => {
            error.kind = ErrorKind::RateLimited;
            error.retryable = !error.in_band;
        }
        (Some("UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED"), _) => {
            error.kind = ErrorKind::ProviderDown;
            error.retryable = !error.in_band;
        }
        (Some("FAILED_PRECONDITION"), _) if message.to_ascii_lowercase().contains("billing") => {
            error.kind = ErrorKind::NoCredit;
            error.retryable = false;
        }
        (Some("INVALID_ARGUMENT"), _) if mentions_context_length(&message) => {
            error.kind = ErrorKind::ContextTooLong;
            error.retryable = false;
        }
        _ => {}
    }
    error.provider_type = status;
    error.provider_code = reason;
    if !message.is_empty() {
        error.provider_message = Some(message);
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Answer, Message, Tool};

    #[test]
    fn a_thinking_budget_reaches_models_that_reason_only() {
        let request = Request {
            messages: vec![crate::types::Message::user("fix the test")],
            thinking_budget: Some(4096),
            ..Request::default()
        };
        let body = request_body("gemini-2.5-pro", &request);
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 4096, "includeThoughts": true})
        );
        let body = request_body("gemma-3-27b-it", &request);
        assert!(body.get("generationConfig").is_none());
    }

    #[test]
    fn the_request_names_tools_and_system_instruction() {
        let request = Request {
            messages: vec![Message::system("be brief"), Message::user("hi")],
            max_tokens: Some(50),
            tools: vec![Tool {
                name: "get_capital".into(),
                description: "Capital of a country".into(),
                parameters: json!({"type": "object", "additionalProperties": false, "properties": {"country": {"type": "string"}}}),
            }],
            ..Request::default()
        };
        let body = request_body("gemini-2.5-flash", &request);
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(body["contents"][0]["role"], "user");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 50);
        let declaration = &body["tools"][0]["functionDeclarations"][0];
        assert_eq!(declaration["name"], "get_capital");
        assert!(
            declaration["parameters"]
                .get("additionalProperties")
                .is_none()
        );
    }

    #[test]
    fn a_function_call_stops_with_tool_use() {
        let events = parse_answer(br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"get_capital","args":{"country":"France"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":52,"candidatesTokenCount":5,"totalTokenCount":57}}"#)
            .expect("answer");
        let answer = Answer::from_events(&events);
        assert_eq!(answer.tool_calls[0].name, "get_capital");
        assert_eq!(answer.tool_calls[0].arguments, r#"{"country":"France"}"#);
        assert_eq!(answer.stop, Some((StopReason::ToolUse, "STOP".into())));
        assert_eq!(answer.usage.map(|usage| usage.input_tokens), Some(52));
    }

    #[test]
    fn a_function_calls_signature_goes_back_with_it() {
        // Gemini 3: the signature sits beside the call in its part.
        let events = parse_answer(br#"{"candidates":[{"content":{"parts":[{"text":"Looking.","thoughtSignature":"c2lnLXRleHQ="},{"functionCall":{"name":"get_capital","args":{"country":"France"}},"thoughtSignature":"c2lnLWNhbGw="},{"functionCall":{"name":"get_capital","args":{"country":"Peru"}}}],"role":"model"},"finishReason":"STOP","index":0}]}"#)
            .expect("answer");
        let answer = Answer::from_events(&events);
        assert_eq!(answer.text, "Looking.");
        assert_eq!(answer.tool_calls.len(), 2);
        assert_eq!(
            answer.tool_calls[0].signature.as_deref(),
            Some("c2lnLWNhbGw=")
        );
        assert_eq!(answer.tool_calls[1].signature, None);

        let mut assistant = Message::assistant(answer.text.clone());
        assistant.tool_calls = answer.tool_calls.clone();
        let request = Request {
            messages: vec![
                Message::user("capitals?"),
                assistant,
                Message::tool_result("call_0", "get_capital", r#"{"capital":"Paris"}"#),
                Message::tool_result("call_1", "get_capital", r#"{"capital":"Lima"}"#),
            ],
            ..Request::default()
        };
        let body = request_body("gemini-2.5-flash", &request);
        let model_parts = &body["contents"][1]["parts"];
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(model_parts[0]["text"], "Looking.");
        assert_eq!(model_parts[1]["functionCall"]["args"]["country"], "France");
        assert_eq!(model_parts[1]["thoughtSignature"], "c2lnLWNhbGw=");
        assert!(model_parts[2].get("thoughtSignature").is_none());
        assert_eq!(
            body["contents"][2]["parts"][1]["functionResponse"]["response"]["capital"],
            "Lima"
        );
    }

    #[test]
    fn errors_map_to_kinds() {
        let invalid_key = super::super::parse_error(
            crate::ProviderKind::Gemini,
            400,
            &http::HeaderMap::new(),
            br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        );
        assert_eq!(invalid_key.kind, ErrorKind::Auth);
        assert!(invalid_key.marks_key_invalid());
        let limited = super::super::parse_error(
            crate::ProviderKind::Gemini,
            429,
            &http::HeaderMap::new(),
            br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"47s"}]}}"#,
        );
        assert_eq!(limited.kind, ErrorKind::RateLimited);
        assert_eq!(
            limited.retry_after,
            Some(std::time::Duration::from_secs(47))
        );
    }
}
