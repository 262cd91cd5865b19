//! Async Coder's AI gateway. Every AI feature goes through it.
//!
//! - [`types`]: the provider-neutral [`Request`] and the one stream of [`Event`]s.
//! - [`providers`]: a translator per wire format (OpenAI and compatible servers, Anthropic,
//!   Gemini) between those and HTTP.
//! - [`gateway`]: the shared transport — timeouts, retries before output, fallback, one-for-one
//!   forwarding of chunks.
//! - [`address`]: which provider addresses may be called.
//! - [`catalog`]: models, context windows, tool support and prices (a data file), and cost.
//! - [`redact`]: a key taken out of the texts of the errors made for its endpoint.
//!
//! A key travels with the base URL it was saved with, inside an [`Endpoint`]: nothing in a
//! request can send it elsewhere, and no error text the gateway returns holds it.

pub mod address;
pub mod catalog;
pub mod error;
pub mod gateway;
pub mod providers;
pub mod redact;
mod sse;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod types;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use address::{AddressPolicy, AllowedEndpoint};
pub use catalog::{Catalog, ModelInfo};
pub use error::{ErrorKind, ProviderError};
pub use gateway::{Completion, FailedAttempt, Failure, Gateway, RetryPolicy, StreamItem, Timeouts};
pub use providers::RemoteModel;
pub use types::{
    Answer, Event, Message, ProviderKind, ReasoningBlock, Request, Role, StopReason, Tool,
    ToolCall, UnknownProviderKind, Usage,
};

/// A provider to call: its wire format, its base URL (checked) and the key saved with it.
#[derive(Clone)]
pub struct Endpoint {
    kind: ProviderKind,
    base_url: Url,
    api_key: Option<SecretString>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url.as_str())
            .field("has_key", &self.api_key.is_some())
            .finish()
    }
}

impl Endpoint {
    /// An endpoint at `base_url`, or at the provider's public API when `None`. The address is
    /// checked against `policy`.
    pub fn new(
        kind: ProviderKind,
        base_url: Option<&str>,
        api_key: Option<SecretString>,
        policy: &AddressPolicy,
    ) -> Result<Self, ProviderError> {
        let base = base_url.or(kind.default_base_url()).ok_or_else(|| {
            ProviderError::new(ErrorKind::AddressRefused)
                .with_message("a local provider needs its server's address")
        })?;
        let base_url = policy.check_url(base).map_err(|error| match &api_key {
            Some(key) => error.redacted(&redact::KeyRedactor::new(key.expose_secret())),
            None => error,
        })?;
        Ok(Self {
            kind,
            base_url,
            api_key,
        })
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn api_key(&self) -> Option<&SecretString> {
        self.api_key.as_ref()
    }

    /// `error` with every piece of this endpoint's key taken out of its texts (see
    /// [`redact`]). The gateway passes every error it makes for an endpoint through this
    /// before returning it, whichever translator produced it.
    pub fn redact(&self, error: ProviderError) -> ProviderError {
        match &self.api_key {
            Some(key) if !key.expose_secret().is_empty() => {
                error.redacted(&redact::KeyRedactor::new(key.expose_secret()))
            }
            _ => error,
        }
    }
}

/// One model at one endpoint: an entry of a fallback list.
#[derive(Clone, Debug)]
pub struct Target {
    pub endpoint: Endpoint,
    pub model: String,
}
