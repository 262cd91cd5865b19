//! A local upstream on 127.0.0.1 that answers like a provider, for tests: it replies from a
//! script (status, headers, a JSON body or server-sent events with delays, a clean end or a
//! dropped connection) and records every request it got. The builders in [`openai`],
//! [`anthropic`] and [`gemini`] write each provider's wire format as its API reference
//! describes it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::types::ProviderKind;

/// How a streamed answer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The body ends normally (whatever the events said).
    Clean,
    /// The connection drops without the end of the chunked body.
    Abort,
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, in the chunks it is sent in.
    pub chunks: Vec<String>,
    pub first_byte_delay: Duration,
    pub gap: Duration,
    pub end: End,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            chunks: vec![body.into()],
            first_byte_delay: Duration::ZERO,
            gap: Duration::ZERO,
            end: End::Clean,
        }
    }

    /// Server-sent events, one per chunk; each string is a whole frame (`data: ...\n\n`).
    pub fn sse(frames: Vec<String>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            chunks: frames,
            first_byte_delay: Duration::ZERO,
            gap: Duration::ZERO,
            end: End::Clean,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn first_byte_delay(mut self, delay: Duration) -> Self {
        self.first_byte_delay = delay;
        self
    }

    pub fn gap(mut self, gap: Duration) -> Self {
        self.gap = gap;
        self
    }

    /// Keeps only the first `count` chunks and ends the way `end` says.
    pub fn cut_after(mut self, count: usize, end: End) -> Self {
        self.chunks.truncate(count);
        self.end = end;
        self
    }
}

/// A request the upstream received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Answers every request once the script is used up.
    repeat: Option<Reply>,
    received: Vec<Received>,
}

/// The upstream; stops when dropped.
pub struct Upstream {
    address: SocketAddr,
    script: Arc<Mutex<Script>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(script: &Mutex<Script>) -> std::sync::MutexGuard<'_, Script> {
    script
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let reply = {
        let mut script = lock(&script);
        script.received.push(Received {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body,
        });
        script.replies.pop_front().or_else(|| script.repeat.clone())
    };
    let Some(reply) = reply else {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from("the test upstream has no reply scripted"))
            .unwrap_or_default();
    };
    tokio::time::sleep(reply.first_byte_delay).await;
    let gap = reply.gap;
    let end = reply.end;
    let chunks = reply.chunks;
    let stream = async_stream::stream! {
        for (index, chunk) in chunks.into_iter().enumerate() {
            if index > 0 && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            yield Ok::<Bytes, std::io::Error>(Bytes::from(chunk));
        }
        if end == End::Abort {
            // Let the server write out the chunks sent so far first: an error drops whatever
            // it still holds, and a real dropped connection loses only what was not yet sent.
            tokio::time::sleep(Duration::from_millis(10)).await;
            yield Err(std::io::Error::other("the test upstream drops the connection"));
        }
    };
    let mut builder = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::from_stream(stream)).unwrap_or_default()
}

impl Upstream {
    /// Starts an upstream on an ephemeral port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let script = Arc::new(Mutex::new(Script::default()));
        let router = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the test upstream stopped");
            }
        });
        Ok(Self {
            address,
            script,
            server,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The base URL a provider of `kind` would have here (`/v1`, or `/v1beta` for Gemini).
    pub fn base_url(&self, kind: ProviderKind) -> String {
        let version = if kind == ProviderKind::Gemini {
            "v1beta"
        } else {
            "v1"
        };
        format!("http://{}/{version}", self.address)
    }

    /// Queues an answer for the next request.
    pub fn push(&self, reply: Reply) {
        lock(&self.script).replies.push_back(reply);
    }

    /// Answers every request with `reply` once the queue is empty.
    pub fn always(&self, reply: Reply) {
        lock(&self.script).repeat = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.script).received.clone()
    }
}

/// An address policy that lets the gateway call upstreams on 127.0.0.1 (tests only).
pub fn loopback_policy() -> crate::AddressPolicy {
    crate::AddressPolicy::new(vec![
        crate::AllowedEndpoint::parse("127.0.0.1").unwrap_or_else(|error| panic!("{error}")),
    ])
}

/// OpenAI's chat completions wire format.
pub mod openai {
    use serde_json::{Value, json};

    use super::Reply;

    fn chunk(delta: Value, finish_reason: Option<&str>) -> String {
        let body = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_727_346_168,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_test",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        format!("data: {body}\n\n")
    }

    fn usage_chunk(prompt: u64, completion: u64, cached: u64) -> String {
        let body = json!({
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_727_346_168,
            "model": "gpt-4o-2024-08-06",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        });
        format!("data: {body}\n\n")
    }

    /// A streamed text answer with usage (as with `stream_options.include_usage`).
    pub fn text_stream(pieces: &[&str], prompt_tokens: u64, completion_tokens: u64) -> Vec<String> {
        let mut frames = vec![chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            None,
        )];
        frames.extend(
            pieces
                .iter()
                .map(|piece| chunk(json!({"content": piece}), None)),
        );
        frames.push(chunk(json!({}), Some("stop")));
        frames.push(usage_chunk(prompt_tokens, completion_tokens, 0));
        frames.push("data: [DONE]\n\n".into());
        frames
    }

    /// A streamed call of one tool, its arguments split in `argument_pieces`.
    pub fn tool_call_stream(id: &str, name: &str, argument_pieces: &[&str]) -> Vec<String> {
        let mut frames = vec![
            chunk(json!({"role": "assistant", "content": null}), None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            ),
        ];
        frames.extend(argument_pieces.iter().map(|piece| {
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                None,
            )
        }));
        frames.push(chunk(json!({}), Some("tool_calls")));
        frames.push(usage_chunk(80, 20, 0));
        frames.push("data: [DONE]\n\n".into());
        frames
    }

    /// An error event inside the stream (as vLLM and others send).
    pub fn error_frame(message: &str) -> String {
        format!(
            "data: {}\n\n",
            json!({"error": {"message": message, "type": "InternalServerError", "param": null, "code": 500}})
        )
    }

    /// A whole (not streamed) answer.
    pub fn completion(text: &str, prompt_tokens: u64, completion_tokens: u64) -> Reply {
        Reply::json(
            200,
            json!({
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 1_727_346_168,
                "model": "gpt-4o-2024-08-06",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
            })
            .to_string(),
        )
    }

    /// An error answer: `{"error": {"message", "type", "param", "code"}}`.
    pub fn error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
                .to_string(),
        )
    }

    pub fn models(ids: &[&str]) -> Reply {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": 1_686_935_002, "owned_by": "system"}))
            .collect();
        Reply::json(200, json!({"object": "list", "data": data}).to_string())
    }
}

/// Anthropic's Messages API wire format.
pub mod anthropic {
    use serde_json::{Value, json};

    use super::Reply;

    fn frame(event: &str, data: &Value) -> String {
        format!("event: {event}\ndata: {data}\n\n")
    }

    fn start(input_tokens: u64, cache_read: u64, cache_write: u64) -> String {
        frame(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": "msg_test", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": cache_write,
                          "cache_read_input_tokens": cache_read, "output_tokens": 1}}}),
        )
    }

    fn end(stop_reason: &str, output_tokens: u64) -> Vec<String> {
        vec![
            frame(
                "message_delta",
                &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
            ),
            frame("message_stop", &json!({"type": "message_stop"})),
        ]
    }

    /// A streamed text answer; `cache_read` tokens were read from the prompt cache.
    pub fn text_stream(
        pieces: &[&str],
        input_tokens: u64,
        cache_read: u64,
        output_tokens: u64,
    ) -> Vec<String> {
        let mut frames = vec![
            start(input_tokens, cache_read, 0),
            frame(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            frame("ping", &json!({"type": "ping"})),
        ];
        frames.extend(pieces.iter().map(|piece| {
            frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
            )
        }));
        frames.push(frame(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 0}),
        ));
        frames.extend(end("end_turn", output_tokens));
        frames
    }

    /// Thinking, then text, then a tool call whose input arrives in pieces.
    pub fn thinking_and_tool_stream(
        thinking: &str,
        text: &str,
        id: &str,
        name: &str,
        input_pieces: &[&str],
    ) -> Vec<String> {
        let mut frames = vec![
            start(120, 0, 0),
            frame(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ),
            frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": thinking}}),
            ),
            frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-test"}}),
            ),
            frame(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 0}),
            ),
            frame(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            ),
            frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": text}}),
            ),
            frame(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": 1}),
            ),
            frame(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            ),
        ];
        frames.extend(input_pieces.iter().map(|piece| {
            frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            )
        }));
        frames.push(frame(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": 2}),
        ));
        frames.extend(end("tool_use", 60));
        frames
    }

    /// An `error` event inside the stream.
    pub fn error_frame(error_type: &str, message: &str) -> String {
        frame(
            "error",
            &json!({"type": "error", "error": {"type": error_type, "message": message}}),
        )
    }

    pub fn message(text: &str, input_tokens: u64, output_tokens: u64) -> Reply {
        Reply::json(
            200,
            json!({
                "id": "msg_test", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output_tokens},
            })
            .to_string(),
        )
    }

    pub fn error(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_test"}).to_string(),
        )
    }

    pub fn models(ids: &[&str]) -> Reply {
        let data: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-09-29T00:00:00Z"}))
            .collect();
        Reply::json(200, json!({"data": data, "has_more": false, "first_id": ids.first(), "last_id": ids.last()}).to_string())
    }
}

/// Google Gemini's generateContent wire format (SSE frames end with CRLF, as Google sends them).
pub mod gemini {
    use serde_json::{Value, json};

    use super::Reply;

    fn frame(data: &Value) -> String {
        format!("data: {data}\r\n\r\n")
    }

    fn usage(prompt: u64, candidates: u64, thoughts: u64) -> Value {
        json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates, "totalTokenCount": prompt + candidates + thoughts, "thoughtsTokenCount": thoughts})
    }

    /// A streamed text answer; the last piece carries `finishReason`.
    pub fn text_stream(
        pieces: &[&str],
        prompt: u64,
        candidates: u64,
        thoughts: u64,
    ) -> Vec<String> {
        let count = pieces.len();
        pieces
            .iter()
            .enumerate()
            .map(|(index, piece)| {
                let mut candidate = json!({"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0});
                if index + 1 == count {
                    candidate["finishReason"] = json!("STOP");
                }
                frame(&json!({"candidates": [candidate], "usageMetadata": usage(prompt, candidates, thoughts), "modelVersion": "gemini-2.5-flash", "responseId": "test"}))
            })
            .collect()
    }

    /// The `thoughtSignature` of [`function_call_stream`]'s call.
    pub const FUNCTION_CALL_SIGNATURE: &str = "Q2lzS0FhNmF0ZXN0LXNpZ25hdHVyZQ==";

    /// A thought summary, then a function call with its thought signature, as Gemini 3 sends
    /// them (Gemini says STOP).
    pub fn function_call_stream(thought: &str, name: &str, args: &Value) -> Vec<String> {
        vec![
            frame(
                &json!({"candidates": [{"content": {"parts": [{"text": thought, "thought": true}], "role": "model"}, "index": 0}], "usageMetadata": usage(52, 0, 10)}),
            ),
            frame(
                &json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": name, "args": args}, "thoughtSignature": FUNCTION_CALL_SIGNATURE}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": usage(52, 5, 10)}),
            ),
        ]
    }

    pub fn error_frame(code: u16, status: &str, message: &str) -> String {
        frame(&json!({"error": {"code": code, "message": message, "status": status}}))
    }

    pub fn answer(text: &str, prompt: u64, candidates: u64) -> Reply {
        Reply::json(
            200,
            json!({"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": usage(prompt, candidates, 0), "modelVersion": "gemini-2.5-flash"}).to_string(),
        )
    }

    pub fn error(status: u16, rpc_status: &str, message: &str, reason: Option<&str>) -> Reply {
        let mut error = json!({"code": status, "message": message, "status": rpc_status});
        if let Some(reason) = reason {
            error["details"] = json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}]);
        }
        Reply::json(status, json!({"error": error}).to_string())
    }

    pub fn models(ids: &[&str]) -> Reply {
        let models: Vec<Value> = ids
            .iter()
            .map(|id| json!({"name": format!("models/{id}"), "displayName": id, "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536, "supportedGenerationMethods": ["generateContent", "countTokens"]}))
            .collect();
        Reply::json(200, json!({"models": models}).to_string())
    }
}
