//! The shared transport: one HTTP client (address-checked resolver, no redirects), timeouts for
//! connect, first byte and the gap between chunks, retries with backoff and jitter only before
//! anything reached the caller, and fallback along an ordered list of targets. Every error made
//! while calling an endpoint (the translator's, the transport's, an error status's body, an error
//! inside a stream) goes through [`Endpoint::redact`] where the gateway receives it, so no text
//! it returns or logs holds that endpoint's key.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use rand::Rng;
use serde::Serialize;

use crate::address::{AddressPolicy, GuardedResolver};
use crate::error::{ErrorKind, ProviderError};
use crate::providers::{self, HttpCall, RemoteModel};
use crate::sse::{SseEvent, SseParser};
use crate::types::{Event, ProviderKind, Request, Usage};
use crate::{Endpoint, Target};

/// How long to wait.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// From sending the request to the answer's status line.
    pub first_byte: Duration,
    /// Between two chunks of a streamed answer (and for the whole body of one that is not).
    pub between_chunks: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(300),
            between_chunks: Duration::from_secs(120),
        }
    }
}

/// When to ask again.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries per target after the first try.
    pub max_retries: u32,
    pub base_delay: Duration,
    /// The longest wait; a provider asking for longer is not waited for (the next target is
    /// tried instead).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), or `None` to give up on this target.
    fn delay(&self, retry: u32, error: &ProviderError) -> Option<Duration> {
        if !error.retryable || retry >= self.max_retries {
            return None;
        }
        if let Some(after) = error.retry_after {
            return (after <= self.max_delay).then_some(after);
        }
        let exponential = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        // Full jitter between half and all of the exponential delay.
        let jitter = rand::rng().random_range(0.5..=1.0);
        Some(exponential.mul_f64(jitter))
    }
}

/// A target that failed before answering, and why.
#[derive(Clone, Debug, Serialize)]
pub struct FailedAttempt {
    pub target: usize,
    pub provider: ProviderKind,
    pub model: String,
    pub kind: ErrorKind,
    pub reason: String,
    /// Tokens the failed call used (recorded like any other).
    pub usage: Option<Usage>,
    #[serde(skip)]
    pub error: ProviderError,
}

/// An item of a gateway stream.
#[derive(Clone, Debug)]
pub enum StreamItem {
    /// Sent once, before the first event: which target answers and which failed before it.
    Answering {
        target: usize,
        failed: Vec<FailedAttempt>,
    },
    Event(Event),
    /// The tokens the answering target has reported so far, sent whenever that figure grows
    /// before the final [`Event::Usage`] (Anthropic reports the input tokens at the start): what
    /// a caller that stops reading early records as used.
    UsageSoFar(Usage),
}

/// The call failed: every target failed before output, or the answering one failed after.
#[derive(Clone, Debug)]
pub struct Failure {
    pub error: ProviderError,
    /// The target that failed last.
    pub target: Option<usize>,
    /// Whether events of that target reached the caller (then it was not retried).
    pub output_started: bool,
    /// Tokens the last target used before failing.
    pub usage_so_far: Option<Usage>,
    /// Targets before it that failed before output.
    pub failed: Vec<FailedAttempt>,
}

/// A whole answer from [`Gateway::complete`].
#[derive(Clone, Debug)]
pub struct Completion {
    pub target: usize,
    pub failed: Vec<FailedAttempt>,
    pub events: Vec<Event>,
}

struct Inner {
    /// The client, or why it could not be built (then every call fails with that).
    client: Result<reqwest::Client, ProviderError>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    policy: Arc<AddressPolicy>,
}

/// The AI gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Gateway")
            .field("timeouts", &self.inner.timeouts)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Whether a connection error came from the address check in the resolver.
fn refused_by_resolver(error: &reqwest::Error) -> Option<String> {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        let text = current.to_string();
        if text.contains("private or reserved address") {
            return Some(text);
        }
        source = current.source();
    }
    None
}

fn transport_error(error: &reqwest::Error) -> ProviderError {
    if let Some(reason) = refused_by_resolver(error) {
        return ProviderError::new(ErrorKind::AddressRefused).with_message(reason);
    }
    if error.is_timeout() {
        return ProviderError::unreachable("the provider did not answer in time");
    }
    if error.is_connect() {
        return ProviderError::unreachable("could not connect to the provider");
    }
    ProviderError::unreachable("the connection to the provider failed")
}

impl Gateway {
    pub fn new(policy: AddressPolicy, timeouts: Timeouts, retry: RetryPolicy) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve provider names itself, past the
            // address checks of `GuardedResolver`.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("async-coder/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                tracing::error!(%error, "the AI gateway's HTTP client could not start");
                ProviderError::new(ErrorKind::ProviderDown)
                    .with_message(format!("the HTTP client could not start: {error}"))
            });
        Self {
            inner: Arc::new(Inner {
                client,
                timeouts,
                retry,
                policy,
            }),
        }
    }

    pub fn timeouts(&self) -> Timeouts {
        self.inner.timeouts
    }

    /// The address rules this gateway applies.
    pub fn address_policy(&self) -> &AddressPolicy {
        &self.inner.policy
    }

    /// Sends a call and waits for the status line; an error status becomes the provider's
    /// error, with its body read.
    async fn send(
        &self,
        kind: ProviderKind,
        call: HttpCall,
    ) -> Result<reqwest::Response, ProviderError> {
        let client = self.inner.client.as_ref().map_err(Clone::clone)?;
        let mut builder = client.request(call.method, call.url).headers(call.headers);
        if let Some(body) = call.body {
            builder = builder.body(body);
        }
        let response = tokio::time::timeout(self.inner.timeouts.first_byte, builder.send())
            .await
            .map_err(|_| {
                ProviderError::unreachable("the provider did not start answering in time")
            })?
            .map_err(|error| transport_error(&error))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(ProviderError::new(ErrorKind::AddressRefused)
                .with_message("the provider answered with a redirect, which is not followed"));
        }
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        let body = tokio::time::timeout(self.inner.timeouts.between_chunks, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Err(providers::parse_error(
            kind,
            status.as_u16(),
            &headers,
            &body,
        ))
    }

    /// Lists the models an endpoint offers to its key: also the cheap call that tests a key.
    pub async fn list_models(
        &self,
        endpoint: &Endpoint,
    ) -> Result<Vec<RemoteModel>, ProviderError> {
        async {
            let call = providers::models_call(endpoint)?;
            let response = self.send(endpoint.kind(), call).await?;
            let body = tokio::time::timeout(self.inner.timeouts.between_chunks, response.bytes())
                .await
                .map_err(|_| ProviderError::unreachable("the model list did not arrive in time"))?
                .map_err(|error| transport_error(&error))?;
            providers::parse_models(endpoint.kind(), &body)
        }
        .await
        .map_err(|error| endpoint.redact(error))
    }

    /// Asks the targets in order for a whole answer (not streamed).
    pub async fn complete(
        &self,
        targets: &[Target],
        request: &Request,
    ) -> Result<Completion, Failure> {
        let mut failed = Vec::new();
        let mut last: Option<(usize, ProviderError)> = None;
        for (index, target) in targets.iter().enumerate() {
            let mut retry = 0;
            let error = loop {
                let result = async {
                    let call =
                        providers::chat_call(&target.endpoint, &target.model, request, false)?;
                    let response = self.send(target.endpoint.kind(), call).await?;
                    let body =
                        tokio::time::timeout(self.inner.timeouts.between_chunks, response.bytes())
                            .await
                            .map_err(|_| ProviderError::incomplete("the answer stopped arriving"))?
                            .map_err(|error| transport_error(&error))?;
                    providers::parse_answer(target.endpoint.kind(), &body)
                }
                .await
                .map_err(|error| target.endpoint.redact(error));
                match result {
                    Ok(events) => {
                        // The target tried just before this one failed too.
                        if let Some((previous, previous_error)) = last.take() {
                            failed.push(attempt(targets, previous, previous_error, None));
                        }
                        return Ok(Completion {
                            target: index,
                            failed,
                            events,
                        });
                    }
                    Err(error) => match self.inner.retry.delay(retry, &error) {
                        Some(delay) => {
                            tracing::info!(provider = target.endpoint.kind().name(), model = %target.model, kind = error.kind.name(), ?delay, "retrying a provider call");
                            tokio::time::sleep(delay).await;
                            retry += 1;
                        }
                        None => break error,
                    },
                }
            };
            if let Some((previous, previous_error)) = last.take() {
                failed.push(attempt(targets, previous, previous_error, None));
            }
            last = Some((index, error));
        }
        let (target, error) =
            last.map_or((None, no_targets()), |(index, error)| (Some(index), error));
        Err(Failure {
            error,
            target,
            output_started: false,
            usage_so_far: None,
            failed,
        })
    }

    /// Asks the targets in order for a streamed answer: the first that starts answering wins;
    /// its events are forwarded one for one as they arrive.
    pub fn stream(
        &self,
        targets: Vec<Target>,
        request: Request,
    ) -> impl Stream<Item = Result<StreamItem, Failure>> + Send + 'static {
        let gateway = self.clone();
        async_stream::stream! {
            let mut failed: Vec<FailedAttempt> = Vec::new();
            let mut last: Option<(usize, ProviderError, Option<Usage>)> = None;
            'targets: for (index, target) in targets.iter().enumerate() {
                let kind = target.endpoint.kind();
                let mut retry = 0;
                let (error, usage) = 'attempts: loop {
                    let response = async {
                        let call = providers::chat_call(&target.endpoint, &target.model, &request, true)?;
                        gateway.send(kind, call).await
                    }
                    .await
                    .map_err(|error| target.endpoint.redact(error));
                    let response = match response {
                        Ok(response) => response,
                        Err(error) => match gateway.inner.retry.delay(retry, &error) {
                            Some(delay) => {
                                tracing::info!(provider = kind.name(), model = %target.model, kind = error.kind.name(), ?delay, "retrying a provider call");
                                tokio::time::sleep(delay).await;
                                retry += 1;
                                continue 'attempts;
                            }
                            None => break 'attempts (error, None),
                        },
                    };
                    let mut body = response.bytes_stream();
                    let mut parser = SseParser::new();
                    let mut decoder = providers::decoder(kind);
                    let mut frames: Vec<SseEvent> = Vec::new();
                    let mut events: Vec<Event> = Vec::new();
                    let mut started = false;
                    let mut reported: Option<Usage> = None;
                    loop {
                        let next = tokio::time::timeout(gateway.inner.timeouts.between_chunks, body.next()).await;
                        let mut ended = false;
                        let mut outcome: Result<(), ProviderError> = Ok(());
                        match next {
                            Err(_) => outcome = Err(ProviderError::incomplete("the provider stopped sending")),
                            Ok(Some(Err(_))) => outcome = Err(ProviderError::incomplete("the connection dropped before the answer's end")),
                            Ok(Some(Ok(bytes))) => parser.feed(&bytes, &mut frames),
                            Ok(None) => {
                                parser.finish(&mut frames);
                                ended = true;
                            }
                        }
                        if outcome.is_ok() {
                            for frame in frames.drain(..) {
                                if let Err(error) = decoder.event(&frame, &mut events) {
                                    outcome = Err(error);
                                    break;
                                }
                            }
                            frames.clear();
                        }
                        if outcome.is_ok() && ended {
                            outcome = decoder.finish(&mut events);
                        }
                        let outcome = outcome.map_err(|error| target.endpoint.redact(error));
                        if !events.is_empty() {
                            if !started {
                                started = true;
                                if let Some((previous, previous_error, previous_usage)) = last.take() {
                                    failed.push(attempt(&targets, previous, previous_error, previous_usage));
                                }
                                yield Ok(StreamItem::Answering { target: index, failed: std::mem::take(&mut failed) });
                            }
                            let final_usage_sent = events.iter().any(|event| matches!(event, Event::Usage { .. }));
                            for event in events.drain(..) {
                                yield Ok(StreamItem::Event(event));
                            }
                            if !final_usage_sent
                                && let Some(usage) = decoder.usage_so_far()
                                && reported != Some(usage)
                            {
                                reported = Some(usage);
                                yield Ok(StreamItem::UsageSoFar(usage));
                            }
                        }
                        match outcome {
                            Ok(()) if ended => {
                                if !started {
                                    if let Some((previous, previous_error, previous_usage)) = last.take() {
                                        failed.push(attempt(&targets, previous, previous_error, previous_usage));
                                    }
                                    yield Ok(StreamItem::Answering { target: index, failed: std::mem::take(&mut failed) });
                                }
                                return;
                            }
                            Ok(()) => {}
                            Err(mut error) => {
                                let usage = decoder.usage_so_far();
                                if started {
                                    error.retryable = false;
                                    yield Err(Failure {
                                        error,
                                        target: Some(index),
                                        output_started: true,
                                        usage_so_far: usage,
                                        failed: Vec::new(),
                                    });
                                    return;
                                }
                                // Nothing reached the caller: a cut stream may be asked again.
                                if error.kind == ErrorKind::Incomplete {
                                    error.retryable = true;
                                }
                                match gateway.inner.retry.delay(retry, &error) {
                                    Some(delay) => {
                                        tokio::time::sleep(delay).await;
                                        retry += 1;
                                        continue 'attempts;
                                    }
                                    None => break 'attempts (error, usage),
                                }
                            }
                        }
                    }
                };
                tracing::info!(provider = kind.name(), model = %target.model, kind = error.kind.name(), "a provider failed before answering");
                if let Some((previous, previous_error, previous_usage)) = last.take() {
                    failed.push(attempt(&targets, previous, previous_error, previous_usage));
                }
                last = Some((index, error, usage));
                continue 'targets;
            }
            let (target, error, usage) = match last {
                Some((index, error, usage)) => (Some(index), error, usage),
                None => (None, no_targets(), None),
            };
            yield Err(Failure {
                error,
                target,
                output_started: false,
                usage_so_far: usage,
                failed,
            });
        }
    }
}

fn no_targets() -> ProviderError {
    ProviderError::new(ErrorKind::ModelNotFound)
        .with_message("no configured provider offers this model")
}

fn attempt(
    targets: &[Target],
    index: usize,
    error: ProviderError,
    usage: Option<Usage>,
) -> FailedAttempt {
    let (provider, model) = targets
        .get(index)
        .map(|target| (target.endpoint.kind(), target.model.clone()))
        .unwrap_or((ProviderKind::OpenAiCompatible, String::new()));
    FailedAttempt {
        target: index,
        provider,
        model,
        kind: error.kind,
        reason: error.describe(),
        usage,
        error,
    }
}
