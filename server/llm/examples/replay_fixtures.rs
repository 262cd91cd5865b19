//! Replays recorded provider responses through the gateway and checks what it concludes.
//!
//! Run: `cargo run -p llm --features test-support --example replay_fixtures -- <dir>`, where
//! `<dir>` holds `openai/`, `anthropic/` and `gemini/`, each with `<case>.response` (the exact
//! body bytes) and `<case>.meta.json` (how to serve them and what a correct adapter must
//! conclude, under `expect`). Every case is served from its own server on 127.0.0.1 at the
//! provider's real path, with the recorded status and headers, one server-sent event per HTTP
//! chunk (or the recorded byte splits), the recorded delay before the first byte, and a dropped
//! connection where the recording ends so. The gateway is called without retries:
//! `Gateway::stream` for streamed cases, `Gateway::complete` for the others, `list_models` for
//! model lists. One line per case, then a summary; the exit status is non-zero if any failed.
//! The fixtures are read where they are, never copied.

#![allow(clippy::print_stdout, reason = "the report is the output")]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::response::Response;
use futures::StreamExt;
use llm::{
    Answer, Endpoint, ErrorKind, Event, Failure, Gateway, Message, ProviderError, ProviderKind,
    Request, RetryPolicy, StreamItem, Target, Timeouts, Usage,
};
use secrecy::SecretString;
use serde_json::Value;

/// One recorded case.
struct Case {
    provider: String,
    name: String,
    meta: Value,
    body: Vec<u8>,
}

impl Case {
    fn kind(&self) -> Option<ProviderKind> {
        match self.provider.as_str() {
            "openai" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            "gemini" => Some(ProviderKind::Gemini),
            _ => None,
        }
    }

    fn expect(&self) -> &Value {
        &self.meta["expect"]
    }

    fn stream(&self) -> bool {
        self.meta["stream"].as_bool().unwrap_or(false)
    }

    fn request_path(&self) -> &str {
        self.meta["request_path"].as_str().unwrap_or_default()
    }

    fn is_model_list(&self) -> bool {
        self.request_path().ends_with("/models")
    }

    /// The model asked for: the recording's, or one the provider offers.
    fn model(&self) -> String {
        if let Some(model) = self.expect()["model"].as_str() {
            return model.to_owned();
        }
        match self.provider.as_str() {
            "anthropic" => "claude-haiku-4-5-20251001",
            "gemini" => "gemini-2.5-flash",
            _ => "gpt-4o",
        }
        .to_owned()
    }
}

fn read_cases(root: &Path) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for provider in ["openai", "anthropic", "gemini"] {
        let dir = root.join(provider);
        let entries = std::fs::read_dir(&dir)
            .map_err(|error| format!("cannot read {}: {error}", dir.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.strip_suffix(".meta.json"))
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        for name in names {
            let meta_path = dir.join(format!("{name}.meta.json"));
            let body_path = dir.join(format!("{name}.response"));
            let meta = std::fs::read(&meta_path)
                .map_err(|error| format!("cannot read {}: {error}", meta_path.display()))?;
            let meta: Value = serde_json::from_slice(&meta)
                .map_err(|error| format!("{}: {error}", meta_path.display()))?;
            let body = std::fs::read(&body_path)
                .map_err(|error| format!("cannot read {}: {error}", body_path.display()))?;
            cases.push(Case {
                provider: provider.to_owned(),
                name,
                meta,
                body,
            });
        }
    }
    Ok(cases)
}

// ---------------------------------------------------------------------------------------------
// Serving

/// Cuts a server-sent event stream after every blank line: one event per chunk.
fn split_events(body: &[u8]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut at_line_start = true;
    let mut index = 0;
    while index < body.len() {
        match body[index] {
            byte @ (b'\r' | b'\n') => {
                let next = if byte == b'\r' && body.get(index + 1) == Some(&b'\n') {
                    index + 2
                } else {
                    index + 1
                };
                if at_line_start && index > start {
                    chunks.push(Bytes::copy_from_slice(&body[start..next]));
                    start = next;
                }
                at_line_start = true;
                index = next;
            }
            _ => {
                at_line_start = false;
                index += 1;
            }
        }
    }
    if start < body.len() {
        chunks.push(Bytes::copy_from_slice(&body[start..]));
    }
    chunks
}

/// Cuts the body at the recorded byte offsets.
fn split_at_offsets(body: &[u8], splits: &[Value]) -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for split in splits {
        let Some(end) = split.as_u64().and_then(|end| usize::try_from(end).ok()) else {
            continue;
        };
        let end = end.min(body.len());
        if end > start {
            chunks.push(Bytes::copy_from_slice(&body[start..end]));
            start = end;
        }
    }
    if start < body.len() {
        chunks.push(Bytes::copy_from_slice(&body[start..]));
    }
    chunks
}

/// What the server of one case serves, and the requests it got.
struct Serving {
    status: u16,
    headers: Vec<(String, String)>,
    chunks: Vec<Bytes>,
    /// Send the body as a stream of chunks (else in one piece, with its length).
    chunked: bool,
    first_byte_delay: Duration,
    abort: bool,
    /// `request_path` with the model filled in.
    path: String,
    received: Mutex<Vec<String>>,
}

impl Serving {
    fn new(case: &Case) -> Self {
        let meta = &case.meta;
        let hop_by_hop = [
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
        ];
        let headers = meta["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .filter(|(name, _)| !hop_by_hop.contains(&name.to_ascii_lowercase().as_str()))
                    .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let splits = meta["chunking"]["splits"].as_array();
        let chunks = match splits {
            Some(splits) => split_at_offsets(&case.body, splits),
            None if case.stream() => split_events(&case.body),
            None => vec![Bytes::copy_from_slice(&case.body)],
        };
        let abort = meta["terminate"].as_str() == Some("abort");
        Self {
            status: meta["status"]
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .unwrap_or(200),
            headers,
            chunks,
            chunked: case.stream() || splits.is_some() || abort,
            first_byte_delay: Duration::from_millis(
                meta["first_byte_delay_ms"].as_u64().unwrap_or(0),
            ),
            abort,
            path: case.request_path().replace("{model}", &case.model()),
            received: Mutex::new(Vec::new()),
        }
    }

    /// Whether a request's path (and query, where the recording names one) is the case's.
    fn answers(&self, path_and_query: &str) -> bool {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        match self.path.split_once('?') {
            Some((expected_path, expected_query)) => {
                path == expected_path && query == expected_query
            }
            None => path == self.path,
        }
    }
}

async fn serve(State(serving): State<Arc<Serving>>, request: HttpRequest) -> Response {
    let path_and_query = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |path| path.as_str().to_owned(),
    );
    serving
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(format!("{} {path_and_query}", request.method()));
    if !serving.answers(&path_and_query) {
        return Response::builder()
            .status(599)
            .body(Body::from("the replay server answers only the case's path"))
            .unwrap_or_default();
    }
    tokio::time::sleep(serving.first_byte_delay).await;
    let mut builder = Response::builder().status(serving.status);
    for (name, value) in &serving.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = if serving.chunked {
        let chunks = serving.chunks.clone();
        let abort = serving.abort;
        Body::from_stream(async_stream::stream! {
            for chunk in chunks {
                yield Ok::<Bytes, std::io::Error>(chunk);
            }
            if abort {
                // Let what was sent leave first, then drop the connection without the final
                // zero-length chunk.
                tokio::time::sleep(Duration::from_millis(20)).await;
                yield Err(std::io::Error::other("the recording ends with a dropped connection"));
            }
        })
    } else {
        Body::from(serving.chunks.concat())
    };
    builder.body(body).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Calling the gateway

/// What the gateway concluded.
#[derive(Default)]
struct Outcome {
    answer: Answer,
    /// Whether a `Usage` event came (it must not for a failed stream).
    usage_event: bool,
    error: Option<ProviderError>,
    usage_so_far: Option<Usage>,
    models: Option<Vec<String>>,
}

impl Outcome {
    fn name(&self) -> &'static str {
        match &self.error {
            None => "success",
            Some(error) if error.kind == ErrorKind::Incomplete => "incomplete",
            Some(_) => "error",
        }
    }

    fn from_events(events: &[Event], failure: Option<Failure>) -> Self {
        let (error, usage_so_far) = match failure {
            Some(failure) => (Some(failure.error), failure.usage_so_far),
            None => (None, None),
        };
        Self {
            answer: Answer::from_events(events),
            usage_event: events
                .iter()
                .any(|event| matches!(event, Event::Usage { .. })),
            error,
            usage_so_far,
            models: None,
        }
    }
}

fn key(kind: ProviderKind) -> SecretString {
    let key = match kind {
        ProviderKind::Anthropic => "sk-ant-replay",
        ProviderKind::Gemini => "AIza-replay",
        _ => "sk-replay",
    };
    SecretString::from(key.to_owned())
}

async fn call(gateway: &Gateway, case: &Case, kind: ProviderKind, base_url: &str) -> Outcome {
    let endpoint = match Endpoint::new(
        kind,
        Some(base_url),
        Some(key(kind)),
        &llm::testing::loopback_policy(),
    ) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            return Outcome {
                error: Some(error),
                ..Outcome::default()
            };
        }
    };
    if case.is_model_list() {
        return match gateway.list_models(&endpoint).await {
            Ok(models) => Outcome {
                models: Some(models.into_iter().map(|model| model.id).collect()),
                ..Outcome::default()
            },
            Err(error) => Outcome {
                error: Some(error),
                ..Outcome::default()
            },
        };
    }
    let target = Target {
        endpoint,
        model: case.model(),
    };
    let request = Request {
        messages: vec![Message::user("Hello")],
        max_tokens: Some(1024),
        ..Request::default()
    };
    if case.stream() {
        let stream = gateway.stream(vec![target], request);
        let mut stream = std::pin::pin!(stream);
        let mut events = Vec::new();
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(StreamItem::Event(event)) => events.push(event),
                Ok(StreamItem::Answering { .. } | StreamItem::UsageSoFar(_)) => {}
                Err(error) => failure = Some(error),
            }
        }
        Outcome::from_events(&events, failure)
    } else {
        match gateway.complete(&[target], &request).await {
            Ok(completion) => Outcome::from_events(&completion.events, None),
            Err(failure) => Outcome::from_events(&[], Some(failure)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing

struct Differences(Vec<String>);

impl Differences {
    fn check(&mut self, field: &str, expected: impl std::fmt::Debug, got: impl std::fmt::Debug) {
        let (expected, got) = (format!("{expected:?}"), format!("{got:?}"));
        if expected != got {
            self.0
                .push(format!("{field}: expected {expected}, got {got}"));
        }
    }

    fn note(&mut self, difference: String) {
        self.0.push(difference);
    }
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn expected_usage(usage: &Value) -> Usage {
    Usage {
        input_tokens: number(&usage["input_tokens"]),
        output_tokens: number(&usage["output_tokens"]),
        cache_read_tokens: number(&usage["cache_read_tokens"]),
        cache_write_tokens: number(&usage["cache_write_tokens"]),
        // Not reported (null) is 0 here.
        reasoning_tokens: number(&usage["reasoning_tokens"]),
    }
}

/// A provider's own usage figures, normalised as the fixtures' README says.
fn normalise_raw_usage(provider: &str, raw: &Value) -> Usage {
    match provider {
        "anthropic" => {
            let cache_read = number(&raw["cache_read_input_tokens"]);
            let cache_write = number(&raw["cache_creation_input_tokens"]);
            Usage {
                input_tokens: number(&raw["input_tokens"]) + cache_read + cache_write,
                output_tokens: number(&raw["output_tokens"]),
                cache_read_tokens: cache_read,
                cache_write_tokens: cache_write,
                reasoning_tokens: 0,
            }
        }
        "gemini" => {
            let thoughts = number(&raw["thoughtsTokenCount"]);
            Usage {
                input_tokens: number(&raw["promptTokenCount"])
                    + number(&raw["toolUsePromptTokenCount"]),
                output_tokens: number(&raw["candidatesTokenCount"]) + thoughts,
                cache_read_tokens: number(&raw["cachedContentTokenCount"]),
                cache_write_tokens: 0,
                reasoning_tokens: thoughts,
            }
        }
        _ => Usage {
            input_tokens: number(&raw["prompt_tokens"]),
            output_tokens: number(&raw["completion_tokens"]),
            cache_read_tokens: number(&raw["prompt_tokens_details"]["cached_tokens"]),
            cache_write_tokens: 0,
            reasoning_tokens: number(&raw["completion_tokens_details"]["reasoning_tokens"]),
        },
    }
}

fn compare_tool_calls(expected: &[Value], answer: &Answer, differences: &mut Differences) {
    differences.check("tool_calls.len", expected.len(), answer.tool_calls.len());
    for (index, (expected, got)) in expected.iter().zip(&answer.tool_calls).enumerate() {
        differences.check(
            &format!("tool_calls[{index}].name"),
            expected["name"].as_str().unwrap_or_default(),
            got.name.as_str(),
        );
        if let Some(id) = expected["id"].as_str() {
            differences.check(&format!("tool_calls[{index}].id"), id, got.id.as_str());
        }
        match serde_json::from_str::<Value>(&got.arguments) {
            Ok(arguments) => differences.check(
                &format!("tool_calls[{index}].arguments"),
                &expected["arguments"],
                &arguments,
            ),
            Err(error) => differences.note(format!(
                "tool_calls[{index}].arguments: not JSON ({error}): {:?}",
                got.arguments
            )),
        }
    }
}

fn compare_error(expected: &Value, error: Option<&ProviderError>, differences: &mut Differences) {
    let Some(error) = error else {
        differences.note("error: expected one, got none".into());
        return;
    };
    if let Some(kind) = expected["kind"].as_str() {
        differences.check("error.kind", kind, error.kind.name());
    }
    if let Some(status) = expected["http_status"].as_u64() {
        differences.check(
            "error.http_status",
            Some(status),
            error.http_status.map(u64::from),
        );
    }
    if let Some(retryable) = expected["retryable"].as_bool() {
        differences.check("error.retryable", retryable, error.retryable);
    }
    if let Some(after) = expected.get("retry_after_seconds") {
        differences.check(
            "error.retry_after_seconds",
            after.as_f64(),
            error.retry_after.map(|after| after.as_secs_f64()),
        );
    }
    if let Some(marks) = expected["marks_key_invalid"].as_bool() {
        differences.check("error.marks_key_invalid", marks, error.marks_key_invalid());
    }
    differences.check(
        "error.in_band",
        expected["in_band"].as_bool().unwrap_or(false),
        error.in_band,
    );
    // The provider's own words: OpenAI's and Anthropic's type and code; Gemini's status and
    // reason (kept as type and code).
    for (field, got) in [
        ("provider_type", &error.provider_type),
        ("provider_status", &error.provider_type),
        ("provider_code", &error.provider_code),
        ("provider_reason", &error.provider_code),
    ] {
        if let Some(expected) = expected[field].as_str() {
            differences.check(&format!("error.{field}"), Some(expected), got.as_deref());
        }
    }
}

/// The `thoughtSignature` beside each `functionCall` part of a recorded Gemini answer (JSON, or
/// server-sent events of JSON), in order.
fn gemini_call_signatures(body: &[u8]) -> Vec<Option<String>> {
    let text = String::from_utf8_lossy(body);
    let documents: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(whole) => vec![whole],
        Err(_) => text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect(),
    };
    documents
        .iter()
        .flat_map(|document| {
            document["candidates"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|candidate| {
            candidate["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|part| part.get("functionCall").is_some())
        .map(|part| part["thoughtSignature"].as_str().map(str::to_owned))
        .collect()
}

fn compare(case: &Case, outcome: &Outcome, differences: &mut Differences) {
    let expect = case.expect();
    let expected_outcome = expect["outcome"].as_str().unwrap_or("success");
    differences.check("outcome", expected_outcome, outcome.name());
    if expected_outcome == "success"
        && let Some(error) = &outcome.error
    {
        differences.note(format!("error: {error:?}"));
    }

    if let Some(models) = expect["model_ids_include"].as_array() {
        let got = outcome.models.clone().unwrap_or_default();
        for model in models.iter().filter_map(Value::as_str) {
            if !got.iter().any(|id| id == model) {
                differences.note(format!("models: {model} missing from {got:?}"));
            }
        }
        return;
    }

    let answer = &outcome.answer;
    if let Some(text) = expect["text"].as_str().or(expect["partial_text"].as_str()) {
        differences.check("text", text, answer.text.as_str());
    }
    if expected_outcome == "success" || expect.get("reasoning").is_some() {
        differences.check(
            "reasoning",
            expect["reasoning"].as_str().unwrap_or_default(),
            answer.reasoning.as_str(),
        );
    }
    if let Some(signatures) = expect["thinking_signatures"].as_array() {
        let signatures: Vec<&str> = signatures.iter().filter_map(Value::as_str).collect();
        differences.check(
            "thinking_signatures",
            signatures,
            &answer.reasoning_signatures,
        );
    }
    if let Some(calls) = expect["tool_calls"].as_array() {
        compare_tool_calls(calls, answer, differences);
        if case.provider == "gemini" {
            differences.check(
                "tool_calls[].signature (Gemini thoughtSignature, kept for the next turn)",
                gemini_call_signatures(&case.body),
                answer
                    .tool_calls
                    .iter()
                    .map(|call| call.signature.clone())
                    .collect::<Vec<_>>(),
            );
        }
    }
    if let Some(reason) = expect.get("stop_reason") {
        differences.check(
            "stop_reason",
            reason.as_str(),
            answer.stop.as_ref().map(|(reason, _)| reason.name()),
        );
    }
    if let Some(raw) = expect
        .get("finish_reason_raw")
        .or(expect.get("stop_reason_raw"))
    {
        differences.check(
            "stop_reason_raw",
            raw.as_str(),
            answer.stop.as_ref().map(|(_, raw)| raw.as_str()),
        );
    }
    if let Some(usage) = expect.get("usage") {
        if usage.is_null() {
            differences.check("usage", None::<Usage>, answer.usage);
            differences.check("usage event", false, outcome.usage_event);
        } else {
            differences.check("usage", Some(expected_usage(usage)), answer.usage);
        }
    }
    if let Some(raw) = expect.get("usage_so_far_raw") {
        differences.check(
            "usage_so_far",
            Some(normalise_raw_usage(&case.provider, raw)),
            outcome.usage_so_far,
        );
    }
    if expected_outcome == "error" {
        compare_error(&expect["error"], outcome.error.as_ref(), differences);
    }
}

async fn run_case(gateway: &Gateway, case: &Case) -> Result<Vec<String>, String> {
    let kind = case
        .kind()
        .ok_or_else(|| format!("unknown provider {}", case.provider))?;
    let serving = Arc::new(Serving::new(case));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("cannot listen: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("cannot listen: {error}"))?;
    let router = axum::Router::new()
        .fallback(serve)
        .with_state(serving.clone());
    let server = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            println!("the replay server stopped: {error}");
        }
    });
    let version = if kind == ProviderKind::Gemini {
        "v1beta"
    } else {
        "v1"
    };
    let outcome = call(gateway, case, kind, &format!("http://{address}/{version}")).await;
    server.abort();

    let mut differences = Differences(Vec::new());
    let received = serving
        .received
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    match received.as_slice() {
        [request] if serving.answers(request.split_once(' ').map_or("", |(_, path)| path)) => {}
        _ => differences.note(format!(
            "requests: expected one to {}, got {received:?}",
            serving.path
        )),
    }
    compare(case, &outcome, &mut differences);
    Ok(differences.0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(root) = std::env::args_os().nth(1).map(PathBuf::from) else {
        println!("usage: replay_fixtures <provider-fixtures directory>");
        return ExitCode::from(2);
    };
    let cases = match read_cases(&root) {
        Ok(cases) => cases,
        Err(error) => {
            println!("{error}");
            return ExitCode::from(2);
        }
    };
    let gateway = Gateway::new(
        llm::testing::loopback_policy(),
        Timeouts::default(),
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        },
    );
    let mut failed = 0;
    for case in &cases {
        let label = format!("{}/{}", case.provider, case.name);
        match run_case(&gateway, case).await {
            Ok(differences) if differences.is_empty() => println!("PASS {label}"),
            Ok(differences) => {
                failed += 1;
                println!("FAIL {label}: {}", differences.join("; "));
            }
            Err(error) => {
                failed += 1;
                println!("FAIL {label}: {error}");
            }
        }
    }
    println!(
        "{} cases: {} passed, {failed} failed",
        cases.len(),
        cases.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
