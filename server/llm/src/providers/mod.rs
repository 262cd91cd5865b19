//! One translator per wire format: each turns a [`Request`] into that provider's HTTP call, and
//! its answers (a JSON body, or server-sent events one at a time) back into [`Event`]s, and its
//! errors into [`ProviderError`]s. Transport, retries and SSE framing are shared (see
//! [`crate::gateway`]).

pub(crate) mod anthropic;
pub(crate) mod gemini;
pub(crate) mod openai;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::Endpoint;
use crate::error::{ErrorKind, ProviderError, kind_of_status, parse_retry_after};
use crate::sse::SseEvent;
use crate::types::{Event, Message, ProviderKind, Request, Role, Usage};

/// An HTTP call to make, built by a translator.
#[derive(Debug)]
pub(crate) struct HttpCall {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
}

impl HttpCall {
    pub(crate) fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub(crate) fn post_json(url: Url, body: &impl Serialize) -> Result<Self, ProviderError> {
        let body = serde_json::to_vec(body).map_err(|error| {
            ProviderError::new(ErrorKind::BadRequest).with_message(error.to_string())
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(Self {
            method: Method::POST,
            url,
            headers,
            body: Some(body),
        })
    }

    /// Adds a header holding a secret: marked sensitive so no debug output shows it.
    pub(crate) fn secret_header(
        &mut self,
        name: HeaderName,
        value: &str,
    ) -> Result<(), ProviderError> {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            ProviderError::new(ErrorKind::Auth)
                .with_message("the stored key holds characters a header cannot carry")
        })?;
        value.set_sensitive(true);
        self.headers.insert(name, value);
        Ok(())
    }
}

/// Appends path segments to a base URL (which may itself end with a path such as `/v1`).
pub(crate) fn join(base: &Url, path: &str) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    {
        let mut segments = url.path_segments_mut().map_err(|_| {
            ProviderError::new(ErrorKind::AddressRefused)
                .with_message("the base URL cannot take a path")
        })?;
        segments.pop_if_empty();
        for segment in path.split('/').filter(|segment| !segment.is_empty()) {
            segments.push(segment);
        }
    }
    Ok(url)
}

/// Turns one streamed event after another into [`Event`]s.
pub(crate) trait Decoder: Send {
    /// One server-sent event; events it completes go to `out`. An error event of the provider
    /// is returned as an error (after `out` got what preceded it).
    fn event(&mut self, event: &SseEvent, out: &mut Vec<Event>) -> Result<(), ProviderError>;
    /// The body ended cleanly: the last events, or `Incomplete` if the provider's end marker
    /// never came.
    fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), ProviderError>;
    /// The usage reported so far (for calls that fail after using tokens).
    fn usage_so_far(&self) -> Option<Usage>;
}

/// A model a provider's list endpoint returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteModel {
    pub id: String,
    pub display_name: Option<String>,
    pub context_window: Option<u64>,
}

pub(crate) fn chat_call(
    endpoint: &Endpoint,
    model: &str,
    request: &Request,
    stream: bool,
) -> Result<HttpCall, ProviderError> {
    match endpoint.kind() {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            openai::chat_call(endpoint, model, request, stream)
        }
        ProviderKind::Anthropic => anthropic::chat_call(endpoint, model, request, stream),
        ProviderKind::Gemini => gemini::chat_call(endpoint, model, request, stream),
    }
}

pub(crate) fn decoder(kind: ProviderKind) -> Box<dyn Decoder> {
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            Box::new(openai::StreamDecoder::default())
        }
        ProviderKind::Anthropic => Box::new(anthropic::StreamDecoder::default()),
        ProviderKind::Gemini => Box::new(gemini::StreamDecoder::default()),
    }
}

/// A whole (not streamed) answer.
pub(crate) fn parse_answer(kind: ProviderKind, body: &[u8]) -> Result<Vec<Event>, ProviderError> {
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => openai::parse_answer(body),
        ProviderKind::Anthropic => anthropic::parse_answer(body),
        ProviderKind::Gemini => gemini::parse_answer(body),
    }
}

/// An answer with an error status.
pub(crate) fn parse_error(
    kind: ProviderKind,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let base = status_error(status, headers);
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => openai::refine_error(base, body),
        ProviderKind::Anthropic => anthropic::refine_error(base, body),
        ProviderKind::Gemini => gemini::refine_error(base, body),
    }
}

pub(crate) fn models_call(endpoint: &Endpoint) -> Result<HttpCall, ProviderError> {
    match endpoint.kind() {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => openai::models_call(endpoint),
        ProviderKind::Anthropic => anthropic::models_call(endpoint),
        ProviderKind::Gemini => gemini::models_call(endpoint),
    }
}

pub(crate) fn parse_models(
    kind: ProviderKind,
    body: &[u8],
) -> Result<Vec<RemoteModel>, ProviderError> {
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => openai::parse_models(body),
        ProviderKind::Anthropic => anthropic::parse_models(body),
        ProviderKind::Gemini => gemini::parse_models(body),
    }
}

/// What the status line and headers alone say.
fn status_error(status: u16, headers: &HeaderMap) -> ProviderError {
    let (kind, retryable) = kind_of_status(status);
    let retry_after = headers
        .get("retry-after-ms")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
        .or_else(|| {
            headers
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_retry_after)
        });
    let mut error = ProviderError::new(kind).retryable(retryable);
    error.http_status = Some(status);
    error.retry_after = retry_after;
    error
}

/// The API key of an endpoint that must have one.
pub(crate) fn required_key(endpoint: &Endpoint) -> Result<&str, ProviderError> {
    endpoint
        .api_key()
        .map(ExposeSecret::expose_secret)
        .ok_or_else(|| {
            ProviderError::new(ErrorKind::Auth)
                .with_message("no API key is stored for this provider")
        })
}

fn parse_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, ProviderError> {
    serde_json::from_str(text)
        .map_err(|error| ProviderError::invalid_response(format!("unreadable event: {error}")))
}

/// Parses the JSON of an answer body.
fn parse_json_bytes<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body)
        .map_err(|error| ProviderError::invalid_response(format!("unreadable answer: {error}")))
}

/// The non-system messages of a request as turns of a two-role API (Anthropic, Gemini): each
/// message becomes its parts (`parts_of`; a message without parts is skipped), assistant
/// messages take `assistant_role` and everything else (user, tool results) `user`, and
/// consecutive turns of one role are merged into one, as both APIs require. Each turn is
/// `{"role": …, <parts_key>: [parts]}`.
pub(crate) fn two_role_turns(
    request: &Request,
    assistant_role: &str,
    parts_key: &str,
    parts_of: impl Fn(&Message) -> Vec<serde_json::Value>,
) -> Vec<serde_json::Value> {
    let mut turns: Vec<serde_json::Value> = Vec::new();
    let mut last_role = "";
    for message in request
        .messages
        .iter()
        .filter(|message| message.role != Role::System)
    {
        let role = if message.role == Role::Assistant {
            assistant_role
        } else {
            "user"
        };
        let parts = parts_of(message);
        if parts.is_empty() {
            continue;
        }
        if role == last_role
            && let Some(serde_json::Value::Array(existing)) = turns
                .last_mut()
                .and_then(|previous| previous.get_mut(parts_key))
        {
            existing.extend(parts);
            continue;
        }
        turns.push(serde_json::json!({"role": role, parts_key: parts}));
        last_role = role;
    }
    turns
}
