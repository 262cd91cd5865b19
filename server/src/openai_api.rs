//! The OpenAI-compatible endpoint for outside tools: `POST /v1/chat/completions` (streamed and
//! not) and `GET /v1/models`, authenticated with a personal access token only (never a
//! cookie), routed by model name to the user's own providers and keys, recorded like every
//! other call. Requests are read with async-openai's types; errors are OpenAI's error objects
//! with the status codes OpenAI's clients understand.

use std::convert::Infallible;
use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestAssistantMessageContentPart, ChatCompletionRequestDeveloperMessageContent,
    ChatCompletionRequestDeveloperMessageContentPart, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestSystemMessageContentPart,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestToolMessageContentPart,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart,
    ChatCompletionTools, CreateChatCompletionRequest, StopConfiguration,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use llm::{
    ErrorKind, Event, FailedAttempt, Message, ProviderError, Request, StopReason, Tool, ToolCall,
    Usage,
};
use serde_json::{Value, json};
use services::ai::{AiCall, AiItem, Answering};
use services::{AuthenticatedUser, Services};

pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
pub const MODELS_PATH: &str = "/v1/models";

/// The mode calls through this endpoint are made in (for the tier policy and the record).
const MODE: &str = "chat";

/// An OpenAI error object.
fn error_response(
    status: StatusCode,
    message: &str,
    error_type: &str,
    code: Option<&str>,
    retry_after: Option<Duration>,
) -> Response {
    let body =
        json!({"error": {"message": message, "type": error_type, "param": null, "code": code}});
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(after) = retry_after
        && let Ok(value) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn invalid(message: impl AsRef<str>) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        message.as_ref(),
        "invalid_request_error",
        None,
        None,
    )
}

fn provider_error_response(error: &ProviderError) -> Response {
    let message = error.describe();
    let (status, error_type, code) = match error.kind {
        ErrorKind::Auth => (
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "provider_key_refused",
        ),
        ErrorKind::NoCredit => (
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            "insufficient_quota",
        ),
        ErrorKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        ErrorKind::ModelNotFound => (
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
        ),
        ErrorKind::ContextTooLong => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        ErrorKind::BadRequest => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "provider_refused_request",
        ),
        ErrorKind::AddressRefused => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "provider_address_refused",
        ),
        ErrorKind::ProviderDown | ErrorKind::Incomplete | ErrorKind::InvalidResponse => {
            (StatusCode::BAD_GATEWAY, "api_error", "provider_unavailable")
        }
    };
    error_response(status, &message, error_type, Some(code), error.retry_after)
}

fn service_error_response(error: services::Error) -> Response {
    match error {
        services::Error::Provider(error) => provider_error_response(&error),
        services::Error::NoProvider(message) => error_response(
            StatusCode::NOT_FOUND,
            &message,
            "invalid_request_error",
            Some("no_provider_configured"),
            None,
        ),
        services::Error::LimitReached(message) => error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &message,
            "insufficient_quota",
            Some("tier_limit_reached"),
            None,
        ),
        services::Error::Invalid(message) => invalid(message),
        services::Error::NotFound => error_response(
            StatusCode::NOT_FOUND,
            "That item does not exist.",
            "invalid_request_error",
            None,
            None,
        ),
        services::Error::Unauthorized => unauthorized(),
        services::Error::Busy { retry_after } => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy; try again shortly.",
            "api_error",
            Some("server_busy"),
            retry_after.to_std().ok(),
        ),
        other => {
            let reference = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(%reference, error = %other, "the OpenAI-compatible endpoint failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "Something went wrong on our side; reference {}.",
                    &reference[..12]
                ),
                "api_error",
                None,
                None,
            )
        }
    }
}

fn unauthorized() -> Response {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "Send a personal access token as `Authorization: Bearer <token>` (create one in Settings → Access tokens).",
        "invalid_request_error",
        Some("invalid_api_key"),
        None,
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The token's user; cookies are never looked at here.
async fn authenticate(
    services: &Services,
    headers: &HeaderMap,
) -> Result<AuthenticatedUser, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    match services.authenticate_bearer(token).await {
        Ok(Some(user)) if user.token_scopes.is_some_and(|scopes| scopes.ai) => Ok(user),
        Ok(Some(_)) => Err(error_response(
            StatusCode::FORBIDDEN,
            "This access token may not call AI models: create one with the AI scope.",
            "permission_error",
            Some("token_scope_missing"),
            None,
        )),
        Ok(None) => Err(unauthorized()),
        Err(error) => Err(service_error_response(error)),
    }
}

fn joined<T>(parts: &[T], text_of: impl Fn(&T) -> Option<&str>) -> Result<String, String> {
    let mut text = String::new();
    for part in parts {
        match text_of(part) {
            Some(piece) => text.push_str(piece),
            None => return Err("Only text content is supported by this endpoint.".to_owned()),
        }
    }
    Ok(text)
}

/// OpenAI's request, read with async-openai's types, as the gateway's request.
fn translate(body: &CreateChatCompletionRequest) -> Result<Request, String> {
    if body.n.is_some_and(|n| n > 1) {
        return Err("`n` greater than 1 is not supported.".to_owned());
    }
    if body.messages.is_empty() {
        return Err("`messages` must hold at least one message.".to_owned());
    }
    let mut messages: Vec<Message> = Vec::with_capacity(body.messages.len());
    for message in &body.messages {
        let translated = match message {
            ChatCompletionRequestMessage::System(system) => {
                Message::system(match &system.content {
                    ChatCompletionRequestSystemMessageContent::Text(text) => text.clone(),
                    ChatCompletionRequestSystemMessageContent::Array(parts) => {
                        joined(parts, |part| match part {
                            ChatCompletionRequestSystemMessageContentPart::Text(text) => {
                                Some(text.text.as_str())
                            }
                        })?
                    }
                })
            }
            ChatCompletionRequestMessage::Developer(developer) => {
                Message::system(match &developer.content {
                    ChatCompletionRequestDeveloperMessageContent::Text(text) => text.clone(),
                    ChatCompletionRequestDeveloperMessageContent::Array(parts) => {
                        joined(parts, |part| match part {
                            ChatCompletionRequestDeveloperMessageContentPart::Text(text) => {
                                Some(text.text.as_str())
                            }
                        })?
                    }
                })
            }
            ChatCompletionRequestMessage::User(user) => Message::user(match &user.content {
                ChatCompletionRequestUserMessageContent::Text(text) => text.clone(),
                ChatCompletionRequestUserMessageContent::Array(parts) => {
                    joined(parts, |part| match part {
                        ChatCompletionRequestUserMessageContentPart::Text(text) => {
                            Some(text.text.as_str())
                        }
                        _ => None,
                    })?
                }
            }),
            ChatCompletionRequestMessage::Assistant(assistant) => {
                let content = match &assistant.content {
                    None => String::new(),
                    Some(ChatCompletionRequestAssistantMessageContent::Text(text)) => text.clone(),
                    Some(ChatCompletionRequestAssistantMessageContent::Array(parts)) => {
                        joined(parts, |part| match part {
                            ChatCompletionRequestAssistantMessageContentPart::Text(text) => {
                                Some(text.text.as_str())
                            }
                            ChatCompletionRequestAssistantMessageContentPart::Refusal(refusal) => {
                                Some(refusal.refusal.as_str())
                            }
                        })?
                    }
                };
                let mut translated = Message::assistant(content);
                for call in assistant.tool_calls.iter().flatten() {
                    match call {
                        ChatCompletionMessageToolCalls::Function(call) => {
                            let (id, signature) = split_tool_call_id(&call.id);
                            translated.tool_calls.push(ToolCall {
                                id,
                                name: call.function.name.clone(),
                                arguments: call.function.arguments.clone(),
                                signature,
                            })
                        }
                        ChatCompletionMessageToolCalls::Custom(_) => {
                            return Err("Custom tool calls are not supported; use function tools."
                                .to_owned());
                        }
                    }
                }
                translated
            }
            ChatCompletionRequestMessage::Tool(tool) => {
                let content = match &tool.content {
                    ChatCompletionRequestToolMessageContent::Text(text) => text.clone(),
                    ChatCompletionRequestToolMessageContent::Array(parts) => {
                        joined(parts, |part| match part {
                            ChatCompletionRequestToolMessageContentPart::Text(text) => {
                                Some(text.text.as_str())
                            }
                        })?
                    }
                };
                let (call_id, _) = split_tool_call_id(&tool.tool_call_id);
                // Gemini answers a call by the function's name: find it from the call's id.
                let name = messages
                    .iter()
                    .rev()
                    .flat_map(|previous| previous.tool_calls.iter())
                    .find(|call| call.id == call_id)
                    .map(|call| call.name.clone())
                    .unwrap_or_default();
                Message::tool_result(call_id, name, content)
            }
            ChatCompletionRequestMessage::Function(_) => {
                return Err("`function` messages are deprecated; send `tool` messages.".to_owned());
            }
        };
        messages.push(translated);
    }
    let mut tools = Vec::new();
    for tool in body.tools.iter().flatten() {
        match tool {
            ChatCompletionTools::Function(function) => tools.push(Tool {
                name: function.function.name.clone(),
                description: function.function.description.clone().unwrap_or_default(),
                parameters: function
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            }),
            ChatCompletionTools::Custom(_) => {
                return Err("Custom tools are not supported; use function tools.".to_owned());
            }
        }
    }
    #[expect(deprecated, reason = "older clients still send `max_tokens`")]
    let max_tokens = body.max_completion_tokens.or(body.max_tokens);
    Ok(Request {
        messages,
        temperature: body.temperature,
        max_tokens,
        tools,
        stop: match &body.stop {
            None => Vec::new(),
            Some(StopConfiguration::String(stop)) => vec![stop.clone()],
            Some(StopConfiguration::StringArray(stops)) => stops.clone(),
        },
        thinking_budget: body.reasoning_effort.as_ref().and_then(thinking_budget),
    })
}

/// A client's `reasoning_effort` as the gateway's thinking budget (sent on to models that
/// reason: Anthropic's extended thinking, Gemini's budget, OpenAI's effort again).
fn thinking_budget(effort: &async_openai::types::chat::ReasoningEffort) -> Option<u32> {
    use async_openai::types::chat::ReasoningEffort;
    match effort {
        ReasoningEffort::None => None,
        ReasoningEffort::Minimal | ReasoningEffort::Low => Some(1024),
        ReasoningEffort::Medium => Some(4096),
        ReasoningEffort::High | ReasoningEffort::Xhigh | ReasoningEffort::Max => Some(16_384),
    }
}

fn finish_reason(reason: &StopReason) -> &'static str {
    match reason {
        StopReason::ToolUse => "tool_calls",
        StopReason::MaxTokens => "length",
        StopReason::ContentFilter => "content_filter",
        StopReason::EndTurn | StopReason::StopSequence | StopReason::Other => "stop",
    }
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    })
}

/// Which provider answered and why earlier ones did not (an extension field and headers).
fn routing_json(answering: &Answering) -> Value {
    json!({
        "provider": answering.provider.name(),
        "model": answering.model,
        "fallback": answering.failed.iter().map(failed_json).collect::<Vec<_>>(),
    })
}

fn failed_json(attempt: &FailedAttempt) -> Value {
    json!({"provider": attempt.provider.name(), "model": attempt.model, "kind": attempt.kind.name(), "reason": attempt.reason})
}

fn routing_headers(response: &mut Response, answering: &Answering) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(answering.provider.name()) {
        headers.insert("x-async-coder-provider", value);
    }
    if let Ok(value) = HeaderValue::from_str(&answering.model) {
        headers.insert("x-async-coder-model", value);
    }
    if !answering.failed.is_empty()
        && let Ok(value) = HeaderValue::from_str(
            &Value::Array(answering.failed.iter().map(failed_json).collect()).to_string(),
        )
    {
        headers.insert("x-async-coder-fallback", value);
    }
}

/// The request body: async-openai's type, plus LiteLLM's `fallbacks` extension (models to try,
/// in order, when the first fails before answering).
fn parse_body(body: &[u8]) -> Result<(CreateChatCompletionRequest, Vec<String>), String> {
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|error| format!("The body is not valid JSON: {error}"))?;
    let fallbacks = match value
        .as_object_mut()
        .and_then(|object| object.remove("fallbacks"))
    {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(model) => Ok(model),
                _ => Err("`fallbacks` must be a list of model names.".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`fallbacks` must be a list of model names.".to_owned()),
    };
    let request: CreateChatCompletionRequest = serde_json::from_value(value)
        .map_err(|error| format!("The request does not match the chat completions API: {error}"))?;
    Ok((request, fallbacks))
}

pub async fn chat_completions(
    State(services): State<Services>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match authenticate(&services, &headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let (body, fallbacks) = match parse_body(&body) {
        Ok(parsed) => parsed,
        Err(message) => return invalid(message),
    };
    let request = match translate(&body) {
        Ok(request) => request,
        Err(message) => return invalid(message),
    };
    let mut models = vec![body.model.clone()];
    models.extend(fallbacks);
    let call = AiCall {
        models,
        request,
        mode: MODE.to_owned(),
        origin: None,
    };
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    let created = chrono::Utc::now().timestamp();
    if body.stream == Some(true) {
        let include_usage = body
            .stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false);
        return stream_response(&services, &user, call, id, created, include_usage).await;
    }
    match services.ai_complete(&user, call).await {
        Ok(completion) => {
            let answer = completion.answer;
            let mut message = json!({"role": "assistant", "content": answer.text, "refusal": null});
            if !answer.reasoning.is_empty() {
                message["reasoning_content"] = json!(answer.reasoning);
            }
            if !answer.tool_calls.is_empty() {
                message["tool_calls"] = Value::Array(
                    answer
                        .tool_calls
                        .iter()
                        .enumerate()
                        .map(|(index, call)| {
                            json!({"id": tool_call_id(&call.id, index, call.signature.as_deref()), "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
                        })
                        .collect(),
                );
            }
            let finish = answer
                .stop
                .as_ref()
                .map_or("stop", |(reason, _)| finish_reason(reason));
            let body = json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": completion.answering.model,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                "usage": usage_json(&answer.usage.unwrap_or_default()),
                "x_async_coder": routing_json(&completion.answering),
            });
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
            routing_headers(&mut response, &completion.answering);
            response
        }
        Err(error) => service_error_response(error),
    }
}

/// Joins a tool call's id and its provider signature (Gemini's `thoughtSignature`, which must
/// come back with the call): OpenAI's format has no place for it, and clients send ids back
/// unchanged, so it travels in the id, after this separator (as LiteLLM does).
const SIGNATURE_SEPARATOR: &str = "__thought__";

fn tool_call_id(id: &str, index: usize, signature: Option<&str>) -> String {
    let id = if id.is_empty() {
        format!("call_{index}")
    } else {
        id.to_owned()
    };
    match signature {
        Some(signature) => format!("{id}{SIGNATURE_SEPARATOR}{signature}"),
        None => id,
    }
}

/// The id and signature that [`tool_call_id`] joined.
fn split_tool_call_id(id: &str) -> (String, Option<String>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((id, signature)) if !signature.is_empty() => {
            (id.to_owned(), Some(signature.to_owned()))
        }
        _ => (id.to_owned(), None),
    }
}

/// Writes the OpenAI stream: one `chat.completion.chunk` per gateway event, as it arrives.
struct ChunkWriter {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    usage: Option<Usage>,
    /// Tool calls whose id was sent already.
    announced_tools: Vec<usize>,
    /// Signatures of tool calls not announced yet, by call number.
    signatures: Vec<(usize, String)>,
}

impl ChunkWriter {
    fn frame(&self, choices: Value, extra: Option<(&str, Value)>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let Some((name, value)) = extra {
            chunk[name] = value;
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    }

    fn delta(&self, delta: Value, finish: Option<&str>) -> Bytes {
        self.frame(
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]),
            None,
        )
    }

    fn start(&mut self, answering: &Answering) -> Bytes {
        self.model.clone_from(&answering.model);
        self.frame(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
            Some(("x_async_coder", routing_json(answering))),
        )
    }

    /// The frames for one event (a stop also ends the stream).
    fn event(&mut self, event: Event, out: &mut Vec<Bytes>) {
        match event {
            Event::TextDelta { text } => out.push(self.delta(json!({"content": text}), None)),
            Event::ReasoningDelta { text } => {
                out.push(self.delta(json!({"reasoning_content": text}), None));
            }
            Event::ReasoningSignature { .. } => {}
            Event::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if !self.announced_tools.contains(&index) {
                    self.announced_tools.push(index);
                    let signature = self
                        .signatures
                        .iter()
                        .position(|(call, _)| *call == index)
                        .map(|position| self.signatures.swap_remove(position).1);
                    call["id"] = json!(tool_call_id(
                        id.as_deref().unwrap_or_default(),
                        index,
                        signature.as_deref()
                    ));
                    call["type"] = json!("function");
                    call["function"]["name"] = json!(name.unwrap_or_default());
                }
                out.push(self.delta(json!({"tool_calls": [call]}), None));
            }
            Event::ToolCallSignature { index, signature } => {
                self.signatures.push((index, signature));
            }
            Event::Usage { usage } => self.usage = Some(usage),
            Event::Stop { reason, .. } => {
                out.push(self.delta(json!({}), Some(finish_reason(&reason))));
                if self.include_usage {
                    let usage = usage_json(&self.usage.unwrap_or_default());
                    out.push(self.frame(json!([]), Some(("usage", usage))));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
        }
    }

    fn error(&self, error: &ProviderError) -> Bytes {
        let body = json!({"error": {"message": error.describe(), "type": "api_error", "param": null, "code": error.kind.name()}});
        Bytes::from(format!("data: {body}\n\n"))
    }
}

async fn stream_response(
    services: &Services,
    user: &AuthenticatedUser,
    call: AiCall,
    id: String,
    created: i64,
    include_usage: bool,
) -> Response {
    // Polled by the response body itself: each chunk goes out from the task that read it.
    let mut answer = match services.ai_stream_polled(user, call).await {
        Ok(answer) => Box::pin(answer),
        Err(error) => return service_error_response(error),
    };
    let heartbeat = services.ai.heartbeat;
    // Until the first item or the first heartbeat, a failure still gets a proper status.
    let first = tokio::time::timeout(heartbeat, answer.next()).await;
    let first = match first {
        Ok(None) => return provider_error_response(&ProviderError::new(ErrorKind::ProviderDown)),
        Ok(Some(AiItem::Failed {
            error,
            output_started: false,
            ..
        })) => {
            return provider_error_response(&error);
        }
        Ok(Some(item)) => Some(item),
        Err(_) => None,
    };
    let answering = match &first {
        Some(AiItem::Answering(answering)) => Some(answering.clone()),
        _ => None,
    };
    let mut writer = ChunkWriter {
        id,
        created,
        model: String::new(),
        include_usage,
        usage: None,
        announced_tools: Vec::new(),
        signatures: Vec::new(),
    };
    let body = async_stream::stream! {
        let mut pending = first;
        let mut frames: Vec<Bytes> = Vec::new();
        loop {
            let item = match pending.take() {
                Some(item) => item,
                None => match tokio::time::timeout(heartbeat, answer.next()).await {
                    Ok(Some(item)) => item,
                    Ok(None) => return,
                    Err(_) => {
                        // Keeps proxies and clients from giving up while the model thinks.
                        yield Ok::<Bytes, Infallible>(Bytes::from_static(b": keep-alive\n\n"));
                        continue;
                    }
                },
            };
            let mut finished = false;
            match item {
                AiItem::Answering(answering) => frames.push(writer.start(&answering)),
                AiItem::Event(event) => {
                    finished = matches!(event, Event::Stop { .. });
                    writer.event(event, &mut frames);
                }
                AiItem::Failed { error, .. } => {
                    frames.push(writer.error(&error));
                    finished = true;
                }
            }
            for frame in frames.drain(..) {
                yield Ok(frame);
            }
            if finished {
                return;
            }
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    if let Some(answering) = &answering {
        routing_headers(&mut response, answering);
    }
    response
}

/// `GET /v1/models`: what the token's user can call.
pub async fn models(State(services): State<Services>, headers: HeaderMap) -> Response {
    let user = match authenticate(&services, &headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match services.available_models(&user).await {
        Ok(choices) => {
            for (label, problem) in &choices.problems {
                tracing::info!(label, problem, "a provider's model list could not be read");
            }
            let data: Vec<Value> = choices
                .models
                .iter()
                .map(|model| {
                    json!({
                        "id": model.route,
                        "object": "model",
                        "created": 0,
                        "owned_by": model.info.provider.name(),
                        "context_window": model.info.context_window,
                        "supports_tools": model.info.tools,
                    })
                })
                .collect();
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"object": "list", "data": data}).to_string(),
            )
                .into_response()
        }
        Err(error) => service_error_response(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm::Role;

    #[test]
    fn requests_translate_with_tools_and_tool_results() {
        let (body, fallbacks) = parse_body(
            br#"{"model":"gpt-4o","fallbacks":["claude-haiku-4-5"],"max_tokens":50,"stop":"END",
                "messages":[{"role":"developer","content":"be brief"},
                            {"role":"user","content":[{"type":"text","text":"weather?"}]},
                            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},
                            {"role":"tool","tool_call_id":"call_1","content":"sunny"}],
                "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}"#,
        )
        .unwrap();
        assert_eq!(fallbacks, vec!["claude-haiku-4-5".to_owned()]);
        let request = translate(&body).unwrap();
        assert_eq!(request.messages[0].role, Role::System);
        assert_eq!(request.messages[1].content, "weather?");
        assert_eq!(request.messages[2].tool_calls[0].name, "get_weather");
        assert_eq!(request.messages[3].name.as_deref(), Some("get_weather"));
        assert_eq!(request.max_tokens, Some(50));
        assert_eq!(request.stop, vec!["END".to_owned()]);
        assert_eq!(request.tools[0].name, "get_weather");
        assert_eq!(request.thinking_budget, None);
    }

    #[test]
    fn a_reasoning_effort_becomes_a_thinking_budget() {
        for (effort, budget) in [
            ("\"low\"", Some(1024)),
            ("\"medium\"", Some(4096)),
            ("\"high\"", Some(16_384)),
            ("\"none\"", None),
        ] {
            let text = format!(
                r#"{{"model":"claude-sonnet-4-5","reasoning_effort":{effort},
                    "messages":[{{"role":"user","content":"hi"}}]}}"#
            );
            let (body, _) = parse_body(text.as_bytes()).unwrap();
            assert_eq!(
                translate(&body).unwrap().thinking_budget,
                budget,
                "{effort}"
            );
        }
    }

    #[test]
    fn tool_call_ids_carry_signatures_both_ways() {
        assert_eq!(tool_call_id("", 2, None), "call_2");
        assert_eq!(tool_call_id("toolu_1", 0, None), "toolu_1");
        let joined = tool_call_id("", 0, Some("c2ln+/="));
        assert_eq!(joined, "call_0__thought__c2ln+/=");
        assert_eq!(
            split_tool_call_id(&joined),
            ("call_0".to_owned(), Some("c2ln+/=".to_owned()))
        );
        assert_eq!(split_tool_call_id("call_1"), ("call_1".to_owned(), None));
        assert_eq!(
            split_tool_call_id("call_1__thought__"),
            ("call_1__thought__".to_owned(), None)
        );

        // A streamed call announces its id (with the signature that came before it) once.
        let mut writer = ChunkWriter {
            id: "chatcmpl-1".into(),
            created: 0,
            model: "gemini-3-pro-preview".into(),
            include_usage: false,
            usage: None,
            announced_tools: Vec::new(),
            signatures: Vec::new(),
        };
        let mut frames = Vec::new();
        writer.event(
            Event::ToolCallSignature {
                index: 0,
                signature: "c2ln".into(),
            },
            &mut frames,
        );
        assert!(frames.is_empty());
        for arguments in ["{\"path\":", "\"a.rs\"}"] {
            writer.event(
                Event::ToolCallDelta {
                    index: 0,
                    id: None,
                    name: Some("read_file".into()),
                    arguments: arguments.into(),
                },
                &mut frames,
            );
        }
        let chunks: Vec<serde_json::Value> = frames
            .iter()
            .map(|frame| {
                let text = std::str::from_utf8(frame).unwrap();
                serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap()
            })
            .collect();
        let call =
            |chunk: &serde_json::Value| chunk["choices"][0]["delta"]["tool_calls"][0].clone();
        assert_eq!(call(&chunks[0])["id"], "call_0__thought__c2ln");
        assert_eq!(call(&chunks[0])["function"]["name"], "read_file");
        assert!(call(&chunks[1]).get("id").is_none());
    }

    #[test]
    fn unsupported_input_is_a_clear_error() {
        assert!(parse_body(b"{not json").is_err());
        assert!(parse_body(br#"{"model":"x","messages":[],"fallbacks":"y"}"#).is_err());
        let (body, _) = parse_body(
            br#"{"model":"x","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
        )
        .unwrap();
        assert!(translate(&body).unwrap_err().contains("Only text content"));
    }
}
