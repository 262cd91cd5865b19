//! One error type for every provider: what went wrong, said so that a person knows what to do.

use std::time::Duration;

use serde::Serialize;

use crate::redact::KeyRedactor;

/// What kind of failure, across providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The key is missing, wrong or revoked.
    Auth,
    /// The account has no credit or quota left.
    NoCredit,
    /// Too many requests; try again after `retry_after`.
    RateLimited,
    ModelNotFound,
    ContextTooLong,
    /// The provider failed, is overloaded, or could not be reached.
    ProviderDown,
    /// The provider refused the request as malformed.
    BadRequest,
    /// The answer stopped before its end (the connection dropped, or the stream ended early).
    Incomplete,
    /// The address is not allowed (private, loopback, link-local, redirect, ...).
    AddressRefused,
    /// The provider answered something this gateway cannot read.
    InvalidResponse,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::NoCredit => "no_credit",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::ContextTooLong => "context_too_long",
            ErrorKind::ProviderDown => "provider_down",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::AddressRefused => "address_refused",
            ErrorKind::InvalidResponse => "invalid_response",
        }
    }
}

/// A failed call. `Display` is safe to show the user, and the provider's message is kept apart
/// in `provider_message`. No text of an error the gateway returns holds its endpoint's key: every
/// error made for an endpoint goes through [`crate::Endpoint::redact`] before it leaves.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// The HTTP status of the answer, when there was one (200 for errors inside a stream).
    pub http_status: Option<u16>,
    /// Whether asking again may work (never for errors after output reached the caller).
    pub retryable: bool,
    /// When the provider said to come back.
    pub retry_after: Option<Duration>,
    /// The provider's own error type / code / status, for the log and the record.
    pub provider_type: Option<String>,
    pub provider_code: Option<String>,
    pub provider_message: Option<String>,
    /// The error arrived inside a successful stream.
    pub in_band: bool,
}

impl ProviderError {
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            http_status: None,
            retryable: false,
            retry_after: None,
            provider_type: None,
            provider_code: None,
            provider_message: None,
            in_band: false,
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.provider_message = Some(message.into());
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    pub(crate) fn invalid_response(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidResponse).with_message(detail)
    }

    pub(crate) fn incomplete(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Incomplete).with_message(detail)
    }

    /// A connection that could not be made or failed before an answer: worth another try.
    pub(crate) fn unreachable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::ProviderDown)
            .with_message(detail)
            .retryable(true)
    }

    /// The same error with every piece of a key taken out of its texts (see
    /// [`crate::redact`]). Every field is named here, so a text field added later cannot be
    /// left out.
    pub fn redacted(self, redactor: &KeyRedactor) -> Self {
        let Self {
            kind,
            http_status,
            retryable,
            retry_after,
            provider_type,
            provider_code,
            provider_message,
            in_band,
        } = self;
        let clean = |text: Option<String>| text.map(|text| redactor.redact(&text));
        Self {
            kind,
            http_status,
            retryable,
            retry_after,
            provider_type: clean(provider_type),
            provider_code: clean(provider_code),
            provider_message: clean(provider_message),
            in_band,
        }
    }

    /// A 401 (or Gemini's `API_KEY_INVALID`) means the stored key is no good and should be
    /// marked so.
    pub fn marks_key_invalid(&self) -> bool {
        self.kind == ErrorKind::Auth
            && !self.in_band
            && (self.http_status == Some(401)
                || matches!(
                    self.provider_code.as_deref(),
                    Some("API_KEY_INVALID" | "API_KEY_EXPIRED")
                ))
    }

    /// The sentence for the user.
    pub fn describe(&self) -> String {
        match self.kind {
            ErrorKind::Auth => {
                "The provider refused the API key: check it in Settings → AI providers.".into()
            }
            ErrorKind::NoCredit => {
                "The provider account has no credit or quota left: add credit with the provider or use another key.".into()
            }
            ErrorKind::RateLimited => match self.retry_after {
                Some(after) => format!(
                    "The provider is rate limiting this key; try again in {} seconds.",
                    after.as_secs().max(1)
                ),
                None => "The provider is rate limiting this key; try again shortly.".into(),
            },
            ErrorKind::ModelNotFound => {
                "The provider does not offer this model to this key: pick another model.".into()
            }
            ErrorKind::ContextTooLong => {
                "The conversation is longer than this model's context window: shorten it, drop context, or pick a model with a larger window.".into()
            }
            ErrorKind::ProviderDown => {
                "The provider failed or could not be reached; try again later or pick another model.".into()
            }
            ErrorKind::BadRequest => match &self.provider_message {
                Some(message) => format!("The provider refused the request: {message}"),
                None => "The provider refused the request.".into(),
            },
            ErrorKind::Incomplete => {
                "The answer was cut off before its end; what arrived is kept.".into()
            }
            ErrorKind::AddressRefused => match &self.provider_message {
                Some(message) => format!("That provider address is not allowed: {message}"),
                None => "That provider address is not allowed.".into(),
            },
            ErrorKind::InvalidResponse => {
                "The provider sent an answer this server cannot read.".into()
            }
        }
    }
}

/// Parses a `Retry-After` header: seconds, or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds));
        }
        return None;
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Maps an HTTP status to the kind and whether a retry may help, before the provider's own
/// error body refines it.
pub(crate) fn kind_of_status(status: u16) -> (ErrorKind, bool) {
    match status {
        401 | 403 => (ErrorKind::Auth, false),
        402 => (ErrorKind::NoCredit, false),
        404 => (ErrorKind::ModelNotFound, false),
        408 | 409 => (ErrorKind::ProviderDown, true),
        413 => (ErrorKind::ContextTooLong, false),
        429 => (ErrorKind::RateLimited, true),
        500..=599 => (ErrorKind::ProviderDown, true),
        _ => (ErrorKind::BadRequest, false),
    }
}

/// Whether a provider's message says the input is longer than the context window.
pub(crate) fn mentions_context_length(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "context length",
        "context_length",
        "context window",
        "maximum context",
        "prompt is too long",
        "too many tokens",
        "input token count",
        "exceeds the maximum number of tokens",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_dates() {
        assert_eq!(parse_retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_redacted_error_holds_no_piece_of_the_key_in_any_text() {
        let key = "sk-ant-api03-Hq4Wn8Zt2Xc6Vb1Nm5Lk9Jh3";
        let mut error = ProviderError::new(ErrorKind::BadRequest)
            .with_message(format!("invalid x-api-key {key}"))
            .retryable(true);
        error.http_status = Some(400);
        error.provider_type = Some(format!("bad_key:{key}"));
        error.provider_code = Some("sk-ant-api03-Hq4W****Jh3".into());
        let redacted = error.clone().redacted(&KeyRedactor::new(key));
        assert_eq!(
            redacted.provider_message.as_deref(),
            Some("invalid x-api-key [redacted]")
        );
        assert_eq!(
            redacted.provider_type.as_deref(),
            Some("bad_key:[redacted]")
        );
        assert_eq!(redacted.provider_code.as_deref(), Some("[redacted]****Jh3"));
        for text in [
            redacted.to_string(),
            redacted.describe(),
            format!("{redacted:?}"),
        ] {
            assert!(!text.contains("sk-ant-api03-Hq4W"), "{text}");
        }
        // Everything else is kept.
        assert_eq!(
            (redacted.kind, redacted.http_status, redacted.retryable),
            (error.kind, error.http_status, error.retryable)
        );
    }

    #[test]
    fn statuses_say_whether_to_retry() {
        for status in [408, 409, 429, 500, 502, 503, 529] {
            assert!(kind_of_status(status).1, "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!kind_of_status(status).1, "{status}");
        }
    }
}
