//! The gateway against local upstreams that speak each provider's wire format
//! ([`llm::testing`]): the normalised events of answers, streams, tool calls and usage; retries
//! before output only; fallback and its report; timeouts; one-for-one forwarding; where the key
//! goes; and the address checks at connection time.

#![allow(
    clippy::expect_used,
    reason = "test helpers fail the test that calls them"
)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use llm::address::GuardedResolver;
use llm::testing::{self, End, Received, Reply, Upstream, anthropic, gemini, openai};
use llm::{
    AddressPolicy, AllowedEndpoint, Answer, Endpoint, ErrorKind, Event, FailedAttempt, Failure,
    Gateway, Message, ProviderKind, Request, RetryPolicy, StopReason, StreamItem, Target, Timeouts,
    Tool, Usage,
};
use secrecy::SecretString;
use serde_json::json;

const OPENAI_KEY: &str = "sk-test-openai-key";
const ANTHROPIC_KEY: &str = "sk-ant-test-key";
const GEMINI_KEY: &str = "AIza-test-gemini-key";

use ProviderKind::{Anthropic, Gemini, OpenAi, OpenAiCompatible};

const ALL: [ProviderKind; 4] = [OpenAi, OpenAiCompatible, Anthropic, Gemini];

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_secs(5),
        between_chunks: Duration::from_secs(5),
    }
}

fn retries(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(1),
    }
}

fn gateway_with(timeouts: Timeouts, retry: RetryPolicy) -> Gateway {
    Gateway::new(testing::loopback_policy(), timeouts, retry)
}

fn gateway() -> Gateway {
    gateway_with(timeouts(), retries(2))
}

fn key_of(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        OpenAi => Some(OPENAI_KEY),
        OpenAiCompatible => None,
        Anthropic => Some(ANTHROPIC_KEY),
        Gemini => Some(GEMINI_KEY),
    }
}

fn model_of(kind: ProviderKind) -> &'static str {
    match kind {
        OpenAi => "gpt-4o",
        OpenAiCompatible => "llama3.2",
        Anthropic => "claude-haiku-4-5",
        Gemini => "gemini-2.5-flash",
    }
}

fn target(upstream: &Upstream, kind: ProviderKind) -> Target {
    let endpoint = Endpoint::new(
        kind,
        Some(&upstream.base_url(kind)),
        key_of(kind).map(|key| SecretString::from(key.to_owned())),
        &testing::loopback_policy(),
    )
    .expect("endpoint");
    Target {
        endpoint,
        model: model_of(kind).into(),
    }
}

async fn upstream() -> Upstream {
    Upstream::start().await.expect("upstream")
}

fn request() -> Request {
    Request {
        messages: vec![Message::system("be brief"), Message::user("hi")],
        max_tokens: Some(64),
        ..Request::default()
    }
}

fn tool_request() -> Request {
    Request {
        messages: vec![Message::user("what is in a.rs?")],
        tools: vec![Tool {
            name: "read_file".into(),
            description: "Reads a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        }],
        ..Request::default()
    }
}

fn text(text: &str) -> Event {
    Event::TextDelta { text: text.into() }
}

fn reasoning(text: &str) -> Event {
    Event::ReasoningDelta { text: text.into() }
}

fn stop(reason: StopReason, raw: &str) -> Event {
    Event::Stop {
        reason,
        raw: raw.into(),
    }
}

fn usage(input_tokens: u64, output_tokens: u64) -> Usage {
    Usage {
        input_tokens,
        output_tokens,
        ..Usage::default()
    }
}

fn usage_event(usage: Usage) -> Event {
    Event::Usage { usage }
}

fn tool_delta(index: usize, id: Option<&str>, name: Option<&str>, arguments: &str) -> Event {
    Event::ToolCallDelta {
        index,
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        arguments: arguments.into(),
    }
}

/// What a caller of [`Gateway::stream`] saw.
#[derive(Debug, Default)]
struct Streamed {
    answering: Option<(usize, Vec<FailedAttempt>)>,
    events: Vec<Event>,
    /// When each event arrived.
    arrivals: Vec<Instant>,
    /// Each usage-so-far report, in order.
    usage_so_far: Vec<Usage>,
    failure: Option<Failure>,
}

impl Streamed {
    fn answer(&self) -> Answer {
        Answer::from_events(&self.events)
    }

    fn failure(&self) -> &Failure {
        self.failure.as_ref().expect("the stream failed")
    }

    fn succeeded_on(&self, target: usize) -> &[FailedAttempt] {
        assert!(
            self.failure.is_none(),
            "unexpected failure: {:?}",
            self.failure
        );
        let (answering, failed) = self.answering.as_ref().expect("Answering was sent");
        assert_eq!(*answering, target, "the answering target");
        assert!(
            matches!(self.events.last(), Some(Event::Stop { .. })),
            "a whole answer ends with Stop: {:?}",
            self.events
        );
        failed
    }
}

async fn run_stream(gateway: &Gateway, targets: Vec<Target>, request: Request) -> Streamed {
    let stream = gateway.stream(targets, request);
    let mut stream = std::pin::pin!(stream);
    let mut seen = Streamed::default();
    while let Some(item) = stream.next().await {
        assert!(seen.failure.is_none(), "nothing follows a failure");
        match item {
            Ok(StreamItem::Answering { target, failed }) => {
                assert!(seen.answering.is_none(), "Answering is sent once");
                seen.answering = Some((target, failed));
            }
            Ok(StreamItem::Event(event)) => {
                assert!(
                    seen.answering.is_some(),
                    "Answering comes before the events"
                );
                seen.events.push(event);
                seen.arrivals.push(Instant::now());
            }
            Ok(StreamItem::UsageSoFar(usage)) => {
                assert!(seen.answering.is_some(), "Answering comes first");
                seen.usage_so_far.push(usage);
            }
            Err(failure) => seen.failure = Some(failure),
        }
    }
    seen
}

/// Checks that the one key of `expected` (or none) is in that header, and that no key is
/// anywhere else in the request.
fn assert_key_only_in(call: &Received, expected: Option<(&str, &str)>) {
    for key in [OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY] {
        assert!(!call.uri.contains(key), "a key in the URL: {}", call.uri);
        assert!(
            !String::from_utf8_lossy(&call.body).contains(key),
            "a key in the body"
        );
        for (name, value) in &call.headers {
            let value = value.to_str().unwrap_or_default();
            if value.contains(key) {
                let (expected_name, expected_value) =
                    expected.unwrap_or_else(|| panic!("a key in {name}, none expected"));
                assert_eq!((name.as_str(), value), (expected_name, expected_value));
            }
        }
    }
    if let Some((name, value)) = expected {
        assert_eq!(call.header(name), Some(value), "{name}");
    }
}

/// The header that must carry the key of `kind`, as the provider expects it.
fn key_header(kind: ProviderKind) -> Option<(&'static str, String)> {
    match kind {
        OpenAi => Some(("authorization", format!("Bearer {OPENAI_KEY}"))),
        OpenAiCompatible => None,
        Anthropic => Some(("x-api-key", ANTHROPIC_KEY.to_owned())),
        Gemini => Some(("x-goog-api-key", GEMINI_KEY.to_owned())),
    }
}

fn assert_call(call: &Received, kind: ProviderKind, method: &str, uri: &str) {
    assert_eq!(call.method, method, "{kind:?}");
    assert_eq!(call.uri, uri, "{kind:?}");
    let header = key_header(kind);
    assert_key_only_in(
        call,
        header.as_ref().map(|(name, value)| (*name, value.as_str())),
    );
    if kind == OpenAiCompatible {
        assert_eq!(call.header("authorization"), None);
    }
    if kind == Anthropic {
        assert_eq!(call.header("anthropic-version"), Some("2023-06-01"));
    } else {
        assert_eq!(call.header("anthropic-version"), None);
    }
}

fn chat_uri(kind: ProviderKind, stream: bool) -> String {
    match kind {
        OpenAi | OpenAiCompatible => "/v1/chat/completions".into(),
        Anthropic => "/v1/messages".into(),
        Gemini if stream => "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse".into(),
        Gemini => "/v1beta/models/gemini-2.5-flash:generateContent".into(),
    }
}

/// A streamed answer `Hel` `lo` in the wire format of `kind`, its normalised events, and the
/// number of chunks that carry the text (a cut after them loses only the end).
fn text_stream(kind: ProviderKind) -> (Vec<String>, Vec<Event>, usize) {
    match kind {
        OpenAi | OpenAiCompatible => (
            openai::text_stream(&["Hel", "lo"], 10, 2),
            vec![
                text("Hel"),
                text("lo"),
                usage_event(usage(10, 2)),
                stop(StopReason::EndTurn, "stop"),
            ],
            3,
        ),
        Anthropic => (
            anthropic::text_stream(&["Hel", "lo"], 30, 0, 7),
            vec![
                text("Hel"),
                text("lo"),
                usage_event(usage(30, 7)),
                stop(StopReason::EndTurn, "end_turn"),
            ],
            5,
        ),
        Gemini => (
            gemini::text_stream(&["Hel", "lo", "!"], 9, 4, 0),
            vec![
                text("Hel"),
                text("lo"),
                text("!"),
                usage_event(usage(9, 4)),
                stop(StopReason::EndTurn, "STOP"),
            ],
            2,
        ),
    }
}

fn error_frame(kind: ProviderKind) -> String {
    match kind {
        OpenAi | OpenAiCompatible => openai::error_frame("CUDA out of memory"),
        Anthropic => anthropic::error_frame("overloaded_error", "Overloaded"),
        Gemini => gemini::error_frame(503, "UNAVAILABLE", "The model is overloaded."),
    }
}

fn rate_limit(kind: ProviderKind, seconds: &str) -> Reply {
    match kind {
        OpenAi | OpenAiCompatible => openai::error(
            429,
            "tokens",
            Some("rate_limit_exceeded"),
            "Rate limit reached",
        )
        .header("retry-after", seconds),
        Anthropic => anthropic::error(429, "rate_limit_error", "Number of request tokens exceeded")
            .header("retry-after", seconds),
        // Gemini says when in the body.
        Gemini => {
            let body = json!({"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED", "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s")}
            ]}});
            Reply::json(429, body.to_string())
        }
    }
}

fn server_error(kind: ProviderKind, status: u16) -> Reply {
    match kind {
        OpenAi | OpenAiCompatible => {
            openai::error(status, "server_error", None, "The server had an error")
        }
        Anthropic => anthropic::error(status, "api_error", "Internal server error"),
        Gemini => gemini::error(status, "UNAVAILABLE", "The model is overloaded.", None),
    }
}

fn unauthorized(kind: ProviderKind) -> Reply {
    match kind {
        OpenAi | OpenAiCompatible => openai::error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided",
        ),
        Anthropic => anthropic::error(401, "authentication_error", "invalid x-api-key"),
        Gemini => gemini::error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid credentials.",
            None,
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Answers, streams, tool calls, usage

#[tokio::test]
async fn a_whole_answer_from_each_provider() {
    for kind in ALL {
        let upstream = upstream().await;
        let (reply, expected) = match kind {
            OpenAi | OpenAiCompatible => (
                openai::completion("Paris.", 24, 8),
                vec![
                    text("Paris."),
                    usage_event(usage(24, 8)),
                    stop(StopReason::EndTurn, "stop"),
                ],
            ),
            Anthropic => (
                anthropic::message("Paris.", 8, 16),
                vec![
                    text("Paris."),
                    usage_event(usage(8, 16)),
                    stop(StopReason::EndTurn, "end_turn"),
                ],
            ),
            Gemini => (
                gemini::answer("Paris.", 9, 2),
                vec![
                    text("Paris."),
                    usage_event(usage(9, 2)),
                    stop(StopReason::EndTurn, "STOP"),
                ],
            ),
        };
        upstream.push(reply);
        let completion = gateway()
            .complete(&[target(&upstream, kind)], &request())
            .await
            .unwrap_or_else(|failure| panic!("{kind:?}: {failure:?}"));
        assert_eq!(completion.target, 0);
        assert!(completion.failed.is_empty());
        assert_eq!(completion.events, expected, "{kind:?}");
        assert_eq!(Answer::from_events(&completion.events).text, "Paris.");

        let received = upstream.received();
        assert_eq!(received.len(), 1);
        let call = &received[0];
        assert_call(call, kind, "POST", &chat_uri(kind, false));
        assert_eq!(call.header("content-type"), Some("application/json"));
        let body = call.json();
        match kind {
            OpenAi | OpenAiCompatible => {
                assert_eq!(body["model"], model_of(kind));
                assert_eq!(body["messages"][0]["role"], "system");
                assert_eq!(body["messages"][1]["content"], "hi");
                assert!(body.get("stream").is_none());
                let max_tokens = if kind == OpenAi {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                assert_eq!(body[max_tokens], 64, "{kind:?}");
            }
            Anthropic => {
                assert_eq!(body["model"], "claude-haiku-4-5");
                assert_eq!(body["system"], "be brief");
                assert_eq!(body["max_tokens"], 64);
                assert_eq!(body["messages"][0]["role"], "user");
                assert!(body.get("stream").is_none());
            }
            Gemini => {
                assert_eq!(body["systemInstruction"]["parts"][0]["text"], "be brief");
                assert_eq!(body["contents"][0]["parts"][0]["text"], "hi");
                assert_eq!(body["generationConfig"]["maxOutputTokens"], 64);
            }
        }
    }
}

#[tokio::test]
async fn a_streamed_answer_from_each_provider() {
    for kind in ALL {
        let upstream = upstream().await;
        let (frames, expected, _) = text_stream(kind);
        upstream.push(Reply::sse(frames));
        let seen = run_stream(&gateway(), vec![target(&upstream, kind)], request()).await;
        assert!(seen.succeeded_on(0).is_empty());
        assert_eq!(seen.events, expected, "{kind:?}");

        let received = upstream.received();
        assert_eq!(received.len(), 1);
        assert_call(&received[0], kind, "POST", &chat_uri(kind, true));
        let body = received[0].json();
        match kind {
            OpenAi | OpenAiCompatible => {
                assert_eq!(body["stream"], true);
                assert_eq!(body["stream_options"]["include_usage"], true);
            }
            Anthropic => assert_eq!(body["stream"], true),
            Gemini => assert!(body.get("stream").is_none()),
        }
    }
}

#[tokio::test]
async fn tool_calls_stream_from_each_provider() {
    for kind in ALL {
        let upstream = upstream().await;
        let (frames, expected) = match kind {
            OpenAi | OpenAiCompatible => (
                openai::tool_call_stream("call_1", "read_file", &["{\"path\":", "\"a.rs\"}"]),
                vec![
                    tool_delta(0, Some("call_1"), Some("read_file"), ""),
                    tool_delta(0, None, None, "{\"path\":"),
                    tool_delta(0, None, None, "\"a.rs\"}"),
                    usage_event(usage(80, 20)),
                    stop(StopReason::ToolUse, "tool_calls"),
                ],
            ),
            Anthropic => (
                anthropic::thinking_and_tool_stream(
                    "The user wants a.rs.",
                    "Let me look.",
                    "toolu_1",
                    "read_file",
                    &["{\"path\":", "\"a.rs\"}"],
                ),
                vec![
                    reasoning("The user wants a.rs."),
                    Event::ReasoningSignature {
                        signature: "sig-test".into(),
                    },
                    text("Let me look."),
                    tool_delta(0, Some("toolu_1"), Some("read_file"), ""),
                    tool_delta(0, None, None, "{\"path\":"),
                    tool_delta(0, None, None, "\"a.rs\"}"),
                    usage_event(usage(120, 60)),
                    stop(StopReason::ToolUse, "tool_use"),
                ],
            ),
            Gemini => (
                gemini::function_call_stream(
                    "The user wants a.rs.",
                    "read_file",
                    &json!({"path": "a.rs"}),
                ),
                vec![
                    reasoning("The user wants a.rs."),
                    Event::ToolCallSignature {
                        index: 0,
                        signature: gemini::FUNCTION_CALL_SIGNATURE.into(),
                    },
                    tool_delta(0, None, Some("read_file"), "{\"path\":\"a.rs\"}"),
                    usage_event(Usage {
                        input_tokens: 52,
                        output_tokens: 15,
                        reasoning_tokens: 10,
                        ..Usage::default()
                    }),
                    // Gemini says STOP after a function call.
                    stop(StopReason::ToolUse, "STOP"),
                ],
            ),
        };
        upstream.push(Reply::sse(frames));
        let seen = run_stream(&gateway(), vec![target(&upstream, kind)], tool_request()).await;
        seen.succeeded_on(0);
        assert_eq!(seen.events, expected, "{kind:?}");
        let answer = seen.answer();
        assert_eq!(answer.tool_calls.len(), 1, "{kind:?}");
        assert_eq!(answer.tool_calls[0].name, "read_file");
        let arguments: serde_json::Value =
            serde_json::from_str(&answer.tool_calls[0].arguments).expect("JSON arguments");
        assert_eq!(arguments, json!({"path": "a.rs"}), "{kind:?}");

        // The tool was offered in the provider's own shape.
        let body = upstream.received()[0].json();
        match kind {
            OpenAi | OpenAiCompatible => {
                assert_eq!(body["tools"][0]["type"], "function");
                assert_eq!(body["tools"][0]["function"]["name"], "read_file");
                assert_eq!(
                    body["tools"][0]["function"]["parameters"]["required"][0],
                    "path"
                );
            }
            Anthropic => {
                assert_eq!(body["tools"][0]["name"], "read_file");
                assert_eq!(body["tools"][0]["input_schema"]["required"][0], "path");
            }
            Gemini => {
                let declaration = &body["tools"][0]["functionDeclarations"][0];
                assert_eq!(declaration["name"], "read_file");
                assert_eq!(declaration["parameters"]["required"][0], "path");
            }
        }
    }
}

#[tokio::test]
async fn gemini_function_call_signatures_go_back_in_the_next_turn() {
    let upstream = upstream().await;
    upstream.push(Reply::sse(gemini::function_call_stream(
        "The user wants a.rs.",
        "read_file",
        &json!({"path": "a.rs"}),
    )));
    upstream.push(Reply::sse(gemini::text_stream(
        &["It holds main."],
        70,
        4,
        0,
    )));
    let first = run_stream(&gateway(), vec![target(&upstream, Gemini)], tool_request()).await;
    first.succeeded_on(0);
    let answer = first.answer();
    assert_eq!(
        answer.tool_calls[0].signature.as_deref(),
        Some(gemini::FUNCTION_CALL_SIGNATURE)
    );

    let mut request = tool_request();
    let mut assistant = Message::assistant(answer.text.clone());
    assistant.tool_calls = answer.tool_calls.clone();
    request.messages.push(assistant);
    request
        .messages
        .push(Message::tool_result("call_0", "read_file", "fn main() {}"));
    let second = run_stream(&gateway(), vec![target(&upstream, Gemini)], request).await;
    second.succeeded_on(0);
    assert_eq!(second.answer().text, "It holds main.");
    let body = upstream.received()[1].json();
    let model_turn = &body["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(model_turn["parts"][0]["functionCall"]["name"], "read_file");
    assert_eq!(
        model_turn["parts"][0]["thoughtSignature"],
        gemini::FUNCTION_CALL_SIGNATURE
    );
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"]["name"],
        "read_file"
    );
}

#[tokio::test]
async fn openai_usage_with_cache_reads_and_reasoning() {
    let upstream = upstream().await;
    let chunk = |body: serde_json::Value| format!("data: {body}\n\n");
    upstream.push(Reply::sse(vec![
        chunk(
            json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "OK."}, "finish_reason": null}]}),
        ),
        chunk(
            json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": null}),
        ),
        chunk(
            json!({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {
                "prompt_tokens": 563, "completion_tokens": 116, "total_tokens": 679,
                "prompt_tokens_details": {"cached_tokens": 512},
                "completion_tokens_details": {"reasoning_tokens": 60}}}),
        ),
        // A later chunk with `usage: null` must not erase it.
        chunk(
            json!({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": null}),
        ),
        "data: [DONE]\n\n".into(),
    ]));
    let seen = run_stream(&gateway(), vec![target(&upstream, OpenAi)], request()).await;
    seen.succeeded_on(0);
    assert_eq!(
        seen.events,
        vec![
            text("OK."),
            usage_event(Usage {
                input_tokens: 563,
                output_tokens: 116,
                cache_read_tokens: 512,
                cache_write_tokens: 0,
                reasoning_tokens: 60,
            }),
            stop(StopReason::EndTurn, "stop"),
        ]
    );
}

#[tokio::test]
async fn anthropic_usage_is_cumulative_with_cache_reads_and_writes() {
    // Cache read, from the builder: message_start reports output 1, message_delta the total.
    let upstream = upstream().await;
    // Frames apart, so that what message_start reported is passed on before the end.
    upstream.push(
        Reply::sse(anthropic::text_stream(&["O", "K."], 9, 4202, 5)).gap(Duration::from_millis(20)),
    );
    let seen = run_stream(&gateway(), vec![target(&upstream, Anthropic)], request()).await;
    seen.succeeded_on(0);
    assert_eq!(
        seen.answer().usage,
        Some(Usage {
            input_tokens: 9 + 4202,
            output_tokens: 5,
            cache_read_tokens: 4202,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        })
    );
    // What a caller that stops reading early records: the input, known from the start.
    assert_eq!(
        seen.usage_so_far.first(),
        Some(&Usage {
            input_tokens: 9 + 4202,
            output_tokens: 1,
            cache_read_tokens: 4202,
            cache_write_tokens: 0,
            reasoning_tokens: 0,
        })
    );
    assert!(
        seen.usage_so_far.windows(2).all(|pair| pair[0] != pair[1]),
        "a report is sent only when the figure changes: {:?}",
        seen.usage_so_far
    );
    // Exactly one usage report, just before Stop.
    let usages = seen
        .events
        .iter()
        .filter(|event| matches!(event, Event::Usage { .. }))
        .count();
    assert_eq!(usages, 1);

    // Cache write; message_delta repeats the cumulative input fields (they are not added).
    let upstream = self::upstream().await;
    let frame = |event: &str, data: serde_json::Value| format!("event: {event}\ndata: {data}\n\n");
    upstream.push(Reply::sse(vec![
        frame(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-haiku-4-5", "stop_reason": null,
                "usage": {"input_tokens": 9, "cache_creation_input_tokens": 4202, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        ),
        frame(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        frame(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "OK."}}),
        ),
        frame(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        frame(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
                "usage": {"input_tokens": 9, "cache_creation_input_tokens": 4202, "cache_read_input_tokens": 0, "output_tokens": 5}}),
        ),
        frame("message_stop", json!({"type": "message_stop"})),
    ]));
    let seen = run_stream(&gateway(), vec![target(&upstream, Anthropic)], request()).await;
    seen.succeeded_on(0);
    assert_eq!(
        seen.events,
        vec![
            text("OK."),
            usage_event(Usage {
                input_tokens: 9 + 4202,
                output_tokens: 5,
                cache_read_tokens: 0,
                cache_write_tokens: 4202,
                reasoning_tokens: 0,
            }),
            stop(StopReason::MaxTokens, "max_tokens"),
        ]
    );
}

#[tokio::test]
async fn gemini_usage_counts_thoughts_and_cache_once() {
    // Every frame repeats the cumulative usage: the last one counts, not the sum.
    let upstream = upstream().await;
    upstream.push(Reply::sse(gemini::text_stream(
        &["a", "b", "c"],
        12,
        20,
        30,
    )));
    let seen = run_stream(&gateway(), vec![target(&upstream, Gemini)], request()).await;
    seen.succeeded_on(0);
    assert_eq!(seen.answer().text, "abc");
    assert_eq!(
        seen.answer().usage,
        Some(Usage {
            input_tokens: 12,
            output_tokens: 50,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 30,
        })
    );

    let upstream = self::upstream().await;
    let frame = |data: serde_json::Value| format!("data: {data}\r\n\r\n");
    upstream.push(Reply::sse(vec![
        frame(
            json!({"candidates": [{"content": {"parts": [{"text": "thinking", "thought": true}], "role": "model"}, "index": 0}],
                "usageMetadata": {"promptTokenCount": 17713, "cachedContentTokenCount": 17379, "totalTokenCount": 17800, "thoughtsTokenCount": 87}}),
        ),
        frame(
            json!({"candidates": [{"content": {"parts": [{"text": "Done."}], "role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
                "usageMetadata": {"promptTokenCount": 17713, "candidatesTokenCount": 68, "cachedContentTokenCount": 17379, "toolUsePromptTokenCount": 40, "totalTokenCount": 18602, "thoughtsTokenCount": 821}}),
        ),
    ]));
    let seen = run_stream(&gateway(), vec![target(&upstream, Gemini)], request()).await;
    seen.succeeded_on(0);
    assert_eq!(
        seen.events,
        vec![
            reasoning("thinking"),
            text("Done."),
            usage_event(Usage {
                input_tokens: 17713 + 40,
                output_tokens: 68 + 821,
                cache_read_tokens: 17379,
                cache_write_tokens: 0,
                reasoning_tokens: 821,
            }),
            stop(StopReason::MaxTokens, "MAX_TOKENS"),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Retries and fallback

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_asks_for() {
    for kind in [OpenAi, Anthropic, Gemini] {
        let upstream = upstream().await;
        upstream.push(rate_limit(kind, "0.2"));
        let (frames, expected, _) = text_stream(kind);
        upstream.push(Reply::sse(frames));
        let started = Instant::now();
        let seen = run_stream(&gateway(), vec![target(&upstream, kind)], request()).await;
        let elapsed = started.elapsed();
        assert!(seen.succeeded_on(0).is_empty(), "{kind:?}");
        assert_eq!(seen.events, expected, "{kind:?}");
        assert_eq!(upstream.received().len(), 2, "{kind:?}");
        assert!(
            elapsed >= Duration::from_millis(200),
            "{kind:?} retried after {elapsed:?}"
        );
    }

    // The same for a whole answer.
    let upstream = upstream().await;
    upstream.push(rate_limit(OpenAi, "0.1"));
    upstream.push(openai::completion("Paris.", 24, 8));
    let started = Instant::now();
    let completion = gateway()
        .complete(&[target(&upstream, OpenAi)], &request())
        .await
        .expect("answer");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(Answer::from_events(&completion.events).text, "Paris.");
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn a_429_asking_for_longer_than_the_longest_wait_goes_to_the_next_target() {
    let limited = upstream().await;
    limited.always(rate_limit(OpenAi, "30"));
    let fallback = upstream().await;
    let (frames, expected, _) = text_stream(Anthropic);
    fallback.push(Reply::sse(frames));
    let started = Instant::now();
    let seen = run_stream(
        &gateway(),
        vec![target(&limited, OpenAi), target(&fallback, Anthropic)],
        request(),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let failed = seen.succeeded_on(1);
    assert_eq!(seen.events, expected);
    assert_eq!(limited.received().len(), 1);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].kind, ErrorKind::RateLimited);
    assert_eq!(failed[0].error.retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn a_500_is_retried_then_the_next_target_answers() {
    for kind in [OpenAi, Anthropic, Gemini] {
        let failing = upstream().await;
        failing.always(server_error(kind, 500));
        let fallback = upstream().await;
        let (frames, expected, _) = text_stream(OpenAiCompatible);
        fallback.push(Reply::sse(frames));
        let seen = run_stream(
            &gateway(),
            vec![target(&failing, kind), target(&fallback, OpenAiCompatible)],
            request(),
        )
        .await;
        let failed = seen.succeeded_on(1);
        assert_eq!(seen.events, expected, "{kind:?}");
        // The first try and two retries.
        assert_eq!(failing.received().len(), 3, "{kind:?}");
        assert_eq!(fallback.received().len(), 1);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].target, 0);
        assert_eq!(failed[0].provider, kind);
        assert_eq!(failed[0].model, model_of(kind));
        assert_eq!(failed[0].kind, ErrorKind::ProviderDown);
        assert_eq!(failed[0].error.http_status, Some(500));
        assert!(
            failed[0].reason.contains("failed or could not be reached"),
            "{}",
            failed[0].reason
        );
    }

    // complete() falls back the same way.
    let failing = upstream().await;
    failing.always(server_error(Anthropic, 529));
    let fallback = upstream().await;
    fallback.push(gemini::answer("Paris.", 9, 2));
    let completion = gateway()
        .complete(
            &[target(&failing, Anthropic), target(&fallback, Gemini)],
            &request(),
        )
        .await
        .expect("answer");
    assert_eq!(completion.target, 1);
    assert_eq!(completion.failed.len(), 1);
    assert_eq!(completion.failed[0].kind, ErrorKind::ProviderDown);
    assert_eq!(completion.failed[0].error.http_status, Some(529));
    assert_eq!(failing.received().len(), 3);
    assert_eq!(Answer::from_events(&completion.events).text, "Paris.");
}

#[tokio::test]
async fn when_every_target_fails_the_failure_names_them_all() {
    let first = upstream().await;
    first.always(server_error(OpenAi, 503));
    let second = upstream().await;
    second.always(unauthorized(Anthropic));
    let seen = run_stream(
        &gateway_with(timeouts(), retries(1)),
        vec![target(&first, OpenAi), target(&second, Anthropic)],
        request(),
    )
    .await;
    assert!(seen.answering.is_none());
    assert!(seen.events.is_empty());
    let failure = seen.failure();
    assert!(!failure.output_started);
    assert_eq!(failure.target, Some(1));
    assert_eq!(failure.error.kind, ErrorKind::Auth);
    assert_eq!(failure.failed.len(), 1);
    assert_eq!(failure.failed[0].target, 0);
    assert_eq!(failure.failed[0].kind, ErrorKind::ProviderDown);
    assert_eq!(first.received().len(), 2);
    assert_eq!(second.received().len(), 1);
}

#[tokio::test]
async fn a_401_is_not_retried_and_marks_the_key_invalid() {
    for kind in [OpenAi, Anthropic, Gemini] {
        let upstream = upstream().await;
        upstream.always(unauthorized(kind));
        let seen = run_stream(&gateway(), vec![target(&upstream, kind)], request()).await;
        let failure = seen.failure();
        assert!(seen.answering.is_none());
        assert_eq!(failure.error.kind, ErrorKind::Auth, "{kind:?}");
        assert_eq!(failure.error.http_status, Some(401));
        assert!(!failure.error.retryable);
        assert!(failure.error.marks_key_invalid(), "{kind:?}");
        assert!(!failure.output_started);
        assert_eq!(failure.target, Some(0));
        assert_eq!(upstream.received().len(), 1, "{kind:?}");

        let failure = gateway()
            .complete(&[target(&upstream, kind)], &request())
            .await
            .expect_err("refused");
        assert!(failure.error.marks_key_invalid());
        assert_eq!(upstream.received().len(), 2, "{kind:?}");
    }

    // Gemini refuses a bad key with a 400 whose reason says so.
    let upstream = upstream().await;
    upstream.always(gemini::error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        Some("API_KEY_INVALID"),
    ));
    let seen = run_stream(&gateway(), vec![target(&upstream, Gemini)], request()).await;
    let failure = seen.failure();
    assert_eq!(failure.error.kind, ErrorKind::Auth);
    assert!(failure.error.marks_key_invalid());
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test]
async fn a_401_falls_back_and_says_why() {
    let refused = upstream().await;
    refused.always(unauthorized(OpenAi));
    let fallback = upstream().await;
    let (frames, expected, _) = text_stream(Gemini);
    fallback.push(Reply::sse(frames));
    let seen = run_stream(
        &gateway(),
        vec![target(&refused, OpenAi), target(&fallback, Gemini)],
        request(),
    )
    .await;
    let failed = seen.succeeded_on(1);
    assert_eq!(seen.events, expected);
    assert_eq!(refused.received().len(), 1);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].target, 0);
    assert_eq!(failed[0].provider, OpenAi);
    assert_eq!(failed[0].kind, ErrorKind::Auth);
    assert!(failed[0].reason.contains("API key"), "{}", failed[0].reason);
    assert!(failed[0].error.marks_key_invalid());
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for kind in [OpenAi, Anthropic, Gemini] {
        for (status, expected) in [
            (400, ErrorKind::BadRequest),
            (404, ErrorKind::ModelNotFound),
            (422, ErrorKind::BadRequest),
        ] {
            let reply = match kind {
                OpenAi | OpenAiCompatible if status == 404 => openai::error(
                    404,
                    "invalid_request_error",
                    Some("model_not_found"),
                    "The model `gpt-9` does not exist",
                ),
                OpenAi | OpenAiCompatible => {
                    openai::error(status, "invalid_request_error", None, "Invalid request")
                }
                Anthropic if status == 404 => {
                    anthropic::error(404, "not_found_error", "model: claude-9")
                }
                Anthropic => anthropic::error(status, "invalid_request_error", "Invalid request"),
                Gemini if status == 404 => {
                    gemini::error(404, "NOT_FOUND", "models/gemini-9 is not found", None)
                }
                Gemini => gemini::error(status, "INVALID_ARGUMENT", "Invalid request", None),
            };
            let upstream = upstream().await;
            upstream.always(reply);
            let seen = run_stream(&gateway(), vec![target(&upstream, kind)], request()).await;
            let failure = seen.failure();
            assert_eq!(failure.error.kind, expected, "{kind:?} {status}");
            assert_eq!(failure.error.http_status, Some(status));
            assert!(!failure.error.retryable, "{kind:?} {status}");
            assert!(!failure.error.marks_key_invalid());
            assert_eq!(upstream.received().len(), 1, "{kind:?} {status}");

            let failure = gateway()
                .complete(&[target(&upstream, kind)], &request())
                .await
                .expect_err("refused");
            assert_eq!(failure.error.kind, expected, "{kind:?} {status}");
            assert_eq!(upstream.received().len(), 2, "{kind:?} {status}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Failures after output

#[tokio::test]
async fn an_error_event_mid_stream_keeps_the_output_and_does_not_fall_back() {
    for kind in ALL {
        let upstream = upstream().await;
        let (frames, _, text_chunks) = text_stream(kind);
        let mut frames: Vec<String> = frames.into_iter().take(text_chunks).collect();
        frames.push(error_frame(kind));
        upstream.push(Reply::sse(frames));
        let fallback = self::upstream().await;
        let (good, _, _) = text_stream(OpenAiCompatible);
        fallback.always(Reply::sse(good));

        let seen = run_stream(
            &gateway(),
            vec![target(&upstream, kind), target(&fallback, OpenAiCompatible)],
            request(),
        )
        .await;
        assert_eq!(seen.answering.as_ref().map(|(target, _)| *target), Some(0));
        assert_eq!(seen.events, vec![text("Hel"), text("lo")], "{kind:?}");
        let failure = seen.failure();
        assert!(failure.output_started, "{kind:?}");
        assert_eq!(failure.target, Some(0));
        assert!(failure.failed.is_empty());
        assert_eq!(failure.error.kind, ErrorKind::ProviderDown, "{kind:?}");
        assert!(failure.error.in_band);
        assert!(!failure.error.retryable);
        assert_eq!(failure.error.http_status, Some(200));
        assert!(!failure.error.marks_key_invalid());
        assert_eq!(upstream.received().len(), 1, "{kind:?}: not retried");
        assert_eq!(fallback.received().len(), 0, "{kind:?}: no fallback");
        if kind == Anthropic {
            assert_eq!(failure.usage_so_far, Some(usage(30, 1)));
        }
        if kind == Gemini {
            assert_eq!(failure.usage_so_far, Some(usage(9, 4)));
        }
    }
}

#[tokio::test]
async fn a_stream_cut_before_its_end_is_incomplete_with_the_text_kept() {
    for kind in ALL {
        for end in [End::Clean, End::Abort] {
            let upstream = upstream().await;
            let (frames, _, text_chunks) = text_stream(kind);
            upstream.push(Reply::sse(frames).cut_after(text_chunks, end));
            let fallback = self::upstream().await;
            let (good, _, _) = text_stream(OpenAiCompatible);
            fallback.always(Reply::sse(good));

            let seen = run_stream(
                &gateway(),
                vec![target(&upstream, kind), target(&fallback, OpenAiCompatible)],
                request(),
            )
            .await;
            assert_eq!(
                seen.events,
                vec![text("Hel"), text("lo")],
                "{kind:?} {end:?}"
            );
            assert_eq!(seen.answer().text, "Hel".to_owned() + "lo");
            let failure = seen.failure();
            assert_eq!(
                failure.error.kind,
                ErrorKind::Incomplete,
                "{kind:?} {end:?}"
            );
            assert!(failure.output_started);
            assert!(!failure.error.retryable);
            assert_eq!(failure.target, Some(0));
            assert_eq!(upstream.received().len(), 1, "{kind:?} {end:?}");
            assert_eq!(fallback.received().len(), 0, "{kind:?} {end:?}");
        }
    }
}

#[tokio::test]
async fn a_stream_cut_before_any_output_is_asked_again() {
    for end in [End::Clean, End::Abort] {
        let upstream = upstream().await;
        // Only the role chunk, which carries no event.
        upstream.push(Reply::sse(openai::text_stream(&["Hel", "lo"], 10, 2)).cut_after(1, end));
        upstream.push(Reply::sse(openai::text_stream(&["Hel", "lo"], 10, 2)));
        let seen = run_stream(&gateway(), vec![target(&upstream, OpenAi)], request()).await;
        assert!(seen.succeeded_on(0).is_empty(), "{end:?}");
        assert_eq!(seen.answer().text, "Hello");
        assert_eq!(upstream.received().len(), 2, "{end:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Timeouts and forwarding

#[tokio::test]
async fn a_slow_first_token_within_the_timeout_is_waited_for() {
    let upstream = upstream().await;
    let (frames, expected, _) = text_stream(Anthropic);
    upstream.push(Reply::sse(frames).first_byte_delay(Duration::from_millis(100)));
    let timeouts = Timeouts {
        first_byte: Duration::from_millis(400),
        ..timeouts()
    };
    let seen = run_stream(
        &gateway_with(timeouts, retries(0)),
        vec![target(&upstream, Anthropic)],
        request(),
    )
    .await;
    seen.succeeded_on(0);
    assert_eq!(seen.events, expected);
}

#[tokio::test]
async fn a_first_token_later_than_the_timeout_falls_back() {
    let slow = upstream().await;
    let (frames, _, _) = text_stream(OpenAi);
    slow.always(Reply::sse(frames).first_byte_delay(Duration::from_secs(3)));
    let fallback = upstream().await;
    let (frames, expected, _) = text_stream(Gemini);
    fallback.push(Reply::sse(frames));
    let timeouts = Timeouts {
        first_byte: Duration::from_millis(200),
        ..timeouts()
    };
    let started = Instant::now();
    let seen = run_stream(
        &gateway_with(timeouts, retries(0)),
        vec![target(&slow, OpenAi), target(&fallback, Gemini)],
        request(),
    )
    .await;
    let elapsed = started.elapsed();
    let failed = seen.succeeded_on(1);
    assert_eq!(seen.events, expected);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].kind, ErrorKind::ProviderDown);
    assert_eq!(failed[0].error.http_status, None);
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "not waited for: {elapsed:?}"
    );
    assert_eq!(slow.received().len(), 1);

    // complete() too.
    let fallback = upstream().await;
    fallback.push(openai::completion("Paris.", 24, 8));
    let completion = gateway_with(timeouts, retries(0))
        .complete(
            &[target(&slow, OpenAi), target(&fallback, OpenAiCompatible)],
            &request(),
        )
        .await
        .expect("answer");
    assert_eq!(completion.target, 1);
    assert_eq!(completion.failed[0].kind, ErrorKind::ProviderDown);
}

#[tokio::test]
async fn a_gap_between_chunks_longer_than_the_timeout_is_incomplete() {
    let upstream = upstream().await;
    // Without the role chunk, so that text reaches the caller before the gap.
    let frames: Vec<String> = openai::text_stream(&["Hel", "lo"], 10, 2)
        .into_iter()
        .skip(1)
        .collect();
    upstream.push(Reply::sse(frames).gap(Duration::from_millis(600)));
    let timeouts = Timeouts {
        between_chunks: Duration::from_millis(150),
        ..timeouts()
    };
    let started = Instant::now();
    let seen = run_stream(
        &gateway_with(timeouts, retries(2)),
        vec![target(&upstream, OpenAi)],
        request(),
    )
    .await;
    assert!(started.elapsed() < Duration::from_millis(550));
    assert_eq!(seen.events, vec![text("Hel")]);
    let failure = seen.failure();
    assert_eq!(failure.error.kind, ErrorKind::Incomplete);
    assert!(failure.output_started);
    assert_eq!(upstream.received().len(), 1);
}

/// Streams five pieces 50 ms apart from an upstream speaking `kind` and checks that each
/// reached the caller on its own, as it was sent.
async fn forwards_one_for_one(kind: ProviderKind) {
    let gap = Duration::from_millis(50);
    let upstream = upstream().await;
    let pieces = ["one", " two", " three", " four", " five"];
    let frames = match kind {
        OpenAi | OpenAiCompatible => openai::text_stream(&pieces, 5, 5),
        Anthropic => anthropic::text_stream(&pieces, 5, 0, 5),
        Gemini => gemini::text_stream(&pieces, 5, 5, 0),
    };
    let chunks = frames.len();
    upstream.push(Reply::sse(frames).gap(gap));
    let started = Instant::now();
    let seen = run_stream(&gateway(), vec![target(&upstream, kind)], request()).await;
    let total = started.elapsed();
    seen.succeeded_on(0);
    let deltas: Vec<(usize, &Event)> = seen
        .events
        .iter()
        .enumerate()
        .filter(|(_, event)| matches!(event, Event::TextDelta { .. }))
        .collect();
    let texts: Vec<Event> = pieces.iter().map(|piece| text(piece)).collect();
    assert_eq!(
        deltas
            .iter()
            .map(|(_, event)| (*event).clone())
            .collect::<Vec<_>>(),
        texts,
        "{kind:?}: one delta per chunk"
    );
    let sent = gap * u32::try_from(chunks - 1).expect("chunks");
    assert!(total >= sent, "{kind:?}: {total:?}");
    let first = seen.arrivals[deltas[0].0];
    let last = seen.arrivals[deltas[4].0];
    // The first delta reached the caller well before the last was sent.
    assert!(
        first.duration_since(started) + gap * 3 <= total,
        "{kind:?}: the first delta came at {:?} of {total:?}",
        first.duration_since(started)
    );
    // Spread over the time they were sent (4 gaps), not batched at the end.
    assert!(
        last.duration_since(first) >= gap * 3,
        "{kind:?}: the deltas came within {:?}",
        last.duration_since(first)
    );
}

#[tokio::test]
async fn chunks_are_forwarded_one_for_one_as_they_arrive() {
    futures::future::join_all(ALL.map(forwards_one_for_one)).await;
}

// ---------------------------------------------------------------------------------------------
// Addresses

#[tokio::test]
async fn a_loopback_base_url_is_refused_by_default() {
    let upstream = upstream().await;
    let port = upstream.address().port();
    let policy = AddressPolicy::default();
    for base in [
        upstream.base_url(OpenAiCompatible),
        format!("http://2130706433:{port}/v1"),
        format!("http://0x7f.1:{port}/v1"),
        format!("http://[::ffff:127.0.0.1]:{port}/v1"),
        format!("http://localhost:{port}/v1"),
    ] {
        let error = Endpoint::new(OpenAiCompatible, Some(&base), None, &policy)
            .expect_err("loopback is refused");
        assert_eq!(error.kind, ErrorKind::AddressRefused, "{base}");
    }
    // An administrator may allow it.
    assert!(
        Endpoint::new(
            OpenAiCompatible,
            Some(&upstream.base_url(OpenAiCompatible)),
            None,
            &AddressPolicy::new(vec![
                AllowedEndpoint::parse(&format!("127.0.0.1:{port}")).expect("entry")
            ]),
        )
        .is_ok()
    );
    assert!(upstream.received().is_empty());
}

#[tokio::test]
async fn the_resolver_refuses_names_of_private_addresses() {
    use reqwest::dns::Resolve;

    let resolver = GuardedResolver::new(Arc::new(AddressPolicy::default()));
    let name = reqwest::dns::Name::from_str("localhost").expect("name");
    let error = match resolver.resolve(name).await {
        Ok(addresses) => panic!("localhost resolved to {:?}", addresses.collect::<Vec<_>>()),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("private or reserved address"), "{error}");

    let allowed = GuardedResolver::new(Arc::new(AddressPolicy::new(vec![
        AllowedEndpoint::parse("localhost").expect("entry"),
    ])));
    let name = reqwest::dns::Name::from_str("localhost").expect("name");
    let addresses: Vec<_> = allowed.resolve(name).await.expect("allowed").collect();
    assert!(!addresses.is_empty());
}

/// A name other than `localhost` that this machine resolves to a loopback address (its own
/// host name, or another `/etc/hosts` entry), which the URL check cannot see through.
async fn loopback_name() -> Option<String> {
    let mut names: Vec<String> = Vec::new();
    if let Ok(hostname) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(hostname.trim().to_owned());
    }
    if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            if fields
                .next()
                .is_some_and(|address| address.starts_with("127."))
            {
                names.extend(fields.map(str::to_owned));
            }
        }
    }
    for name in names {
        let url = format!("http://{name}:1/");
        if name.is_empty() || AddressPolicy::default().check_url(&url).is_err() {
            continue;
        }
        let addresses: Vec<_> = match tokio::net::lookup_host((name.as_str(), 0)).await {
            Ok(addresses) => addresses.collect(),
            Err(_) => continue,
        };
        if !addresses.is_empty()
            && addresses
                .iter()
                .all(|address| address.ip() == std::net::Ipv4Addr::LOCALHOST)
        {
            return Some(name);
        }
    }
    None
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_when_connecting() {
    let Some(name) = loopback_name().await else {
        // No such name on this machine: the resolver is checked directly above.
        return;
    };
    let upstream = upstream().await;
    let (frames, _, _) = text_stream(OpenAiCompatible);
    upstream.always(Reply::sse(frames));
    let base = format!("http://{name}:{}/v1", upstream.address().port());
    // The URL check passes: only the resolver can tell.
    let endpoint = Endpoint::new(
        OpenAiCompatible,
        Some(&base),
        None,
        &AddressPolicy::default(),
    )
    .expect("the name looks public");
    let strict = Gateway::new(AddressPolicy::default(), timeouts(), retries(2));
    let targets = vec![Target {
        endpoint: endpoint.clone(),
        model: "llama3.2".into(),
    }];
    let seen = run_stream(&strict, targets.clone(), request()).await;
    let failure = seen.failure();
    assert_eq!(failure.error.kind, ErrorKind::AddressRefused, "{name}");
    assert!(!failure.error.retryable);
    let error = strict.list_models(&endpoint).await.expect_err("refused");
    assert_eq!(error.kind, ErrorKind::AddressRefused);
    assert!(upstream.received().is_empty(), "nothing reached {name}");

    // Allowed by name, the same call goes through.
    let allowing = Gateway::new(
        AddressPolicy::new(vec![AllowedEndpoint::parse(&name).expect("entry")]),
        timeouts(),
        retries(0),
    );
    let seen = run_stream(&allowing, targets, request()).await;
    seen.succeeded_on(0);
    assert_eq!(upstream.received().len(), 1);
}

#[tokio::test]
async fn a_redirect_is_refused_and_not_followed() {
    let elsewhere = upstream().await;
    let (frames, _, _) = text_stream(OpenAi);
    elsewhere.always(Reply::sse(frames));
    for status in [301, 302, 307, 308] {
        let redirecting = upstream().await;
        let location = format!(
            "http://127.0.0.1:{}/v1/chat/completions",
            elsewhere.address().port()
        );
        let redirect = Reply::json(status, "").header("location", &location);
        redirecting.always(redirect);

        let seen = run_stream(&gateway(), vec![target(&redirecting, OpenAi)], request()).await;
        let failure = seen.failure();
        assert_eq!(failure.error.kind, ErrorKind::AddressRefused, "{status}");
        assert!(!failure.error.retryable);
        assert_eq!(redirecting.received().len(), 1, "{status}: not retried");

        let failure = gateway()
            .complete(&[target(&redirecting, OpenAi)], &request())
            .await
            .expect_err("refused");
        assert_eq!(failure.error.kind, ErrorKind::AddressRefused);

        let error = gateway()
            .list_models(&target(&redirecting, OpenAi).endpoint)
            .await
            .expect_err("refused");
        assert_eq!(error.kind, ErrorKind::AddressRefused);
        assert_eq!(redirecting.received().len(), 3);
    }
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}

// ---------------------------------------------------------------------------------------------
// Model lists

#[tokio::test]
async fn each_provider_lists_its_models() {
    for kind in ALL {
        let upstream = upstream().await;
        let (reply, uri) = match kind {
            OpenAi => (openai::models(&["gpt-4o", "gpt-4o-mini"]), "/v1/models"),
            // vLLM says how long a context its model takes.
            OpenAiCompatible => (
                Reply::json(
                    200,
                    json!({"object": "list", "data": [
                        {"id": "gpt-4o", "object": "model", "owned_by": "vllm", "max_model_len": 32768},
                        {"id": "gpt-4o-mini", "object": "model", "owned_by": "vllm"}
                    ]})
                    .to_string(),
                ),
                "/v1/models",
            ),
            Anthropic => (
                anthropic::models(&["gpt-4o", "gpt-4o-mini"]),
                "/v1/models?limit=1000",
            ),
            Gemini => {
                let body = json!({"models": [
                    {"name": "models/gpt-4o", "displayName": "Four", "inputTokenLimit": 1_048_576, "supportedGenerationMethods": ["generateContent", "countTokens"]},
                    {"name": "models/text-embedding-004", "displayName": "Embedding", "supportedGenerationMethods": ["embedContent"]},
                    {"name": "models/gpt-4o-mini", "supportedGenerationMethods": ["generateContent"]}
                ]});
                (
                    Reply::json(200, body.to_string()),
                    "/v1beta/models?pageSize=1000",
                )
            }
        };
        upstream.push(reply);
        let models = gateway()
            .list_models(&target(&upstream, kind).endpoint)
            .await
            .unwrap_or_else(|error| panic!("{kind:?}: {error:?}"));
        let ids: Vec<&str> = models.iter().map(|model| model.id.as_str()).collect();
        assert_eq!(ids, ["gpt-4o", "gpt-4o-mini"], "{kind:?}");
        match kind {
            OpenAi => assert_eq!(models[0].context_window, None),
            OpenAiCompatible => assert_eq!(models[0].context_window, Some(32768)),
            Anthropic => assert_eq!(models[0].display_name.as_deref(), Some("gpt-4o")),
            Gemini => {
                assert_eq!(models[0].display_name.as_deref(), Some("Four"));
                assert_eq!(models[0].context_window, Some(1_048_576));
            }
        }
        let received = upstream.received();
        assert_eq!(received.len(), 1);
        assert_call(&received[0], kind, "GET", uri);
        assert!(received[0].body.is_empty());

        // A refused key says so, once.
        upstream.always(unauthorized(kind));
        if kind != OpenAiCompatible {
            let error = gateway()
                .list_models(&target(&upstream, kind).endpoint)
                .await
                .expect_err("refused");
            assert_eq!(error.kind, ErrorKind::Auth, "{kind:?}");
            assert!(error.marks_key_invalid());
            assert_eq!(upstream.received().len(), 2);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys echoed in provider errors

/// A realistic key per provider; the local server's holds characters a URL encodes.
fn echoed_key(kind: ProviderKind) -> &'static str {
    match kind {
        OpenAi => "sk-proj-Q7vLx2mN9pRt4WzK8yHb3JcF6dGs1AeU",
        OpenAiCompatible => "lm-studio/Xy9+Qw3=Zr8Kp2Lm7Vn4Tb6",
        Anthropic => "sk-ant-api03-Hq4Wn8Zt2Xc6Vb1Nm5Lk9Jh3Gf7Ds0Pa",
        Gemini => "AIzaSyD3k9Qm7Xw2Lp5Rt8Vn1Bc4Hj6Fg0Ze",
    }
}

/// What providers echo: the whole key and a masked copy of it (`sk-proj-Q7vL****1AeU`).
struct Echo {
    key: &'static str,
    partial: String,
    encoded: String,
    text: String,
}

fn echo(kind: ProviderKind) -> Echo {
    let key = echoed_key(kind);
    let partial = format!("{}****{}", &key[..12], &key[key.len() - 4..]);
    let encoded = key
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    let text = format!(
        "Incorrect API key provided: {key}. You can find your key at https://example.com; you passed {partial}. Authorization: Bearer {key}. GET /v1/models?key={encoded}"
    );
    Echo {
        key,
        partial,
        encoded,
        text,
    }
}

fn echoing_target(upstream: &Upstream, kind: ProviderKind) -> Target {
    let endpoint = Endpoint::new(
        kind,
        Some(&upstream.base_url(kind)),
        Some(SecretString::from(echoed_key(kind).to_owned())),
        &testing::loopback_policy(),
    )
    .expect("endpoint");
    Target {
        endpoint,
        model: model_of(kind).into(),
    }
}

/// An error answer of `kind` whose every text field the gateway reads echoes the key.
fn echoing_error(kind: ProviderKind, status: u16, text: &str) -> Reply {
    match kind {
        OpenAi if status == 401 => {
            openai::error(401, "invalid_request_error", Some("invalid_api_key"), text)
        }
        OpenAi => openai::error(status, "invalid_request_error", None, text),
        // A local server that puts the header it got everywhere.
        OpenAiCompatible => openai::error(status, text, Some(text), text),
        Anthropic if status == 401 => anthropic::error(401, "authentication_error", text),
        Anthropic => anthropic::error(status, "invalid_request_error", text),
        Gemini if status == 401 => gemini::error(401, "UNAUTHENTICATED", text, Some(text)),
        Gemini => gemini::error(status, text, text, None),
    }
}

fn echoing_error_frame(kind: ProviderKind, text: &str) -> String {
    match kind {
        OpenAi | OpenAiCompatible => openai::error_frame(text),
        Anthropic => anthropic::error_frame("overloaded_error", text),
        Gemini => gemini::error_frame(503, "UNAVAILABLE", text),
    }
}

/// Every text form of `error` holds neither the key nor the masked copy, and says where the
/// provider's text was cut.
fn assert_no_key(what: &str, error: &llm::ProviderError, echo: &Echo) {
    let forms = [
        ("Display", error.to_string()),
        ("describe", error.describe()),
        ("Debug", format!("{error:?}")),
        (
            "message",
            error.provider_message.clone().unwrap_or_default(),
        ),
        ("type", error.provider_type.clone().unwrap_or_default()),
        ("code", error.provider_code.clone().unwrap_or_default()),
    ];
    for (form, text) in forms {
        for secret in [echo.key, echo.partial.as_str(), echo.encoded.as_str()] {
            assert!(
                !text.contains(secret),
                "{what}: the {form} holds {secret:?}: {text}"
            );
        }
    }
    let message = error.provider_message.as_deref().unwrap_or_default();
    assert!(
        message.contains("[redacted]") && message.contains("Incorrect API key provided"),
        "{what}: the provider's message is kept without the key: {message}"
    );
}

fn assert_failure_has_no_key(what: &str, failure: &Failure, echo: &Echo) {
    assert_no_key(what, &failure.error, echo);
    let debug = format!("{failure:?}");
    assert!(
        !debug.contains(echo.key) && !debug.contains(&echo.partial),
        "{what}: {debug}"
    );
    for attempt in &failure.failed {
        assert_no_key(what, &attempt.error, echo);
        assert!(
            !attempt.reason.contains(echo.key),
            "{what}: {}",
            attempt.reason
        );
    }
}

#[tokio::test]
async fn a_key_echoed_in_a_provider_error_never_leaves_the_gateway() {
    for kind in ALL {
        let echo = echo(kind);

        // An error status, for each kind of call: the key test (model list), a whole answer, a
        // stream. A 400's message is part of the sentence shown to the user.
        for status in [400, 401] {
            let upstream = upstream().await;
            upstream.always(echoing_error(kind, status, &echo.text));
            let what = format!("{kind:?} {status}");

            let error = gateway()
                .list_models(&echoing_target(&upstream, kind).endpoint)
                .await
                .expect_err("refused");
            assert_no_key(&format!("{what} model list"), &error, &echo);

            let failure = gateway()
                .complete(&[echoing_target(&upstream, kind)], &request())
                .await
                .expect_err("refused");
            assert_failure_has_no_key(&format!("{what} whole answer"), &failure, &echo);

            let seen =
                run_stream(&gateway(), vec![echoing_target(&upstream, kind)], request()).await;
            assert_failure_has_no_key(&format!("{what} stream"), seen.failure(), &echo);
        }

        // A target that failed before a fallback answered: its report too.
        let refused = upstream().await;
        refused.always(echoing_error(kind, 401, &echo.text));
        let fallback = upstream().await;
        let (frames, _, _) = text_stream(OpenAiCompatible);
        fallback.always(Reply::sse(frames));
        let seen = run_stream(
            &gateway(),
            vec![
                echoing_target(&refused, kind),
                target(&fallback, OpenAiCompatible),
            ],
            request(),
        )
        .await;
        let failed = seen.succeeded_on(1);
        assert_eq!(failed.len(), 1, "{kind:?}");
        assert_no_key(&format!("{kind:?} fallback"), &failed[0].error, &echo);
        assert!(!failed[0].reason.contains(echo.key));
        assert!(!format!("{failed:?}").contains(echo.key), "{kind:?}");

        // An error event inside a stream that already answered.
        let upstream = self::upstream().await;
        let (frames, _, text_chunks) = text_stream(kind);
        let mut frames: Vec<String> = frames.into_iter().take(text_chunks).collect();
        frames.push(echoing_error_frame(kind, &echo.text));
        upstream.push(Reply::sse(frames));
        let seen = run_stream(&gateway(), vec![echoing_target(&upstream, kind)], request()).await;
        let failure = seen.failure();
        assert!(failure.output_started && failure.error.in_band, "{kind:?}");
        assert_failure_has_no_key(&format!("{kind:?} in-band"), failure, &echo);

        // A whole answer with status 200 that is an error.
        if matches!(kind, OpenAi | OpenAiCompatible) {
            let upstream = self::upstream().await;
            upstream.push(Reply::json(
                200,
                json!({"error": {"message": echo.text, "type": "server_error", "code": null}})
                    .to_string(),
            ));
            let failure = gateway()
                .complete(&[echoing_target(&upstream, kind)], &request())
                .await
                .expect_err("an error");
            assert_failure_has_no_key(&format!("{kind:?} 200 error"), &failure, &echo);
        }
    }

    // A local server answering plain text (its body is kept as the message).
    let echo = echo(OpenAiCompatible);
    let upstream = upstream().await;
    upstream.always(Reply::json(401, echo.text.clone()));
    let error = gateway()
        .list_models(&echoing_target(&upstream, OpenAiCompatible).endpoint)
        .await
        .expect_err("refused");
    assert_no_key("plain text body", &error, &echo);
}
