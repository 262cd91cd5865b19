//! AI calls on a user's behalf, through the gateway (`llm`): the tier policy is checked first,
//! model names are routed to the user's own credentials (a key only ever goes to the base URL it
//! was saved with), every call is recorded in `api_usage` with its cost (failed ones included),
//! and a key the provider refuses with 401 is marked invalid.

mod metering;
mod routing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, TimeZone, Utc};
use db::UsageOutcome;
use db::ids::{ConversationId, MessageId, ProviderCredentialId};
use db::tables::provider_credentials::{self, CredentialStatus, ProviderKind as StoredKind};
use futures::StreamExt;
use llm::{
    AddressPolicy, Answer, Catalog, Endpoint, ErrorKind, Event, FailedAttempt, Gateway, ModelInfo,
    ProviderError, ProviderKind, RemoteModel, Request, RetryPolicy, StreamItem, Target, Timeouts,
    Usage,
};
use tokio::sync::mpsc;

use crate::finish::FinishWhenDropped;
use crate::providers::{llm_kind, stored_kind};
use crate::usage_writer::UsageWriter;
use crate::{AuthenticatedUser, Error, Services};
use metering::outcome_of;
use routing::route_model;

/// How long a provider's model list is reused.
const MODEL_LIST_TTL: Duration = Duration::from_secs(300);

/// The gateway and what it needs, shared by every request.
#[derive(Clone, Debug)]
pub struct Ai {
    pub gateway: Gateway,
    pub catalog: Arc<Catalog>,
    /// How often a streamed answer that has nothing new sends a keep-alive.
    pub heartbeat: Duration,
    model_lists: Arc<Mutex<HashMap<ProviderCredentialId, CachedList>>>,
    /// Each user's credentials as last read (for [`CREDENTIALS_TTL`] at most; emptied for the
    /// user when this process saves, removes or marks one).
    credentials: Arc<Mutex<HashMap<db::ids::UserId, CachedCredentials>>>,
    writer: Arc<std::sync::OnceLock<UsageWriter>>,
}

/// A user's credentials and when they were read.
type CachedCredentials = (Instant, Arc<Vec<provider_credentials::Model>>);

/// How long a user's credentials are reused without reading them again.
const CREDENTIALS_TTL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
struct CachedList {
    fetched: Instant,
    updated_at: DateTime<Utc>,
    models: Vec<RemoteModel>,
}

impl Ai {
    pub fn new(policy: AddressPolicy, timeouts: Timeouts, retry: RetryPolicy) -> Self {
        let catalog = Catalog::builtin().unwrap_or_else(|error| {
            // The built-in file is part of the binary and covered by a test.
            tracing::error!(%error, "the built-in model catalog is invalid; prices are unknown");
            Catalog::empty()
        });
        Self {
            gateway: Gateway::new(policy, timeouts, retry),
            catalog: Arc::new(catalog),
            heartbeat: Duration::from_secs(5),
            model_lists: Arc::default(),
            credentials: Arc::default(),
            writer: Arc::default(),
        }
    }
}

impl Default for Ai {
    fn default() -> Self {
        Self::new(
            AddressPolicy::default(),
            Timeouts::default(),
            RetryPolicy::default(),
        )
    }
}

/// What to ask: the models in order (the first that answers wins), the request, the mode it is
/// made in (for the tier policy and the record).
#[derive(Clone, Debug)]
pub struct AiCall {
    pub models: Vec<String>,
    pub request: Request,
    pub mode: String,
    /// The chat message this call answers, when it answers one (for the usage rows).
    pub origin: Option<(ConversationId, MessageId)>,
}

impl AiCall {
    fn tag(&self) -> CallTag {
        CallTag {
            mode: self.mode.clone(),
            origin: self.origin,
        }
    }
}

/// What every usage row of one call carries besides its figures.
#[derive(Clone, Debug)]
struct CallTag {
    mode: String,
    origin: Option<(ConversationId, MessageId)>,
}

/// Which model answers, and why the ones before it did not.
#[derive(Clone, Debug)]
pub struct Answering {
    pub provider: ProviderKind,
    pub model: String,
    pub failed: Vec<FailedAttempt>,
}

/// An item of a streamed answer.
#[derive(Clone, Debug)]
pub enum AiItem {
    Answering(Answering),
    Event(Event),
    /// The call failed; `output_started` says whether events reached the caller first.
    Failed {
        error: ProviderError,
        output_started: bool,
        failed: Vec<FailedAttempt>,
    },
}

impl AiItem {
    /// Whether this is the last item of its answer (its stop or its failure).
    pub fn is_last(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Event(Event::Stop { .. }))
    }
}

/// What a streamed call has done so far. It records the call once, however the stream ends:
/// at its stop (`ok`), at a failure, or, dropped before either, as `cancelled` with the usage
/// reported so far.
struct StreamRecord {
    services: Services,
    user: AuthenticatedUser,
    routed: Vec<Routed>,
    tag: CallTag,
    /// The index of the target that answers, once one does.
    answering: Option<usize>,
    usage: Option<Usage>,
    finished: bool,
}

impl StreamRecord {
    /// Records what `item` says and turns it into what the caller receives, if anything.
    fn forward(&mut self, item: Result<StreamItem, llm::Failure>) -> Option<AiItem> {
        let services = &self.services;
        Some(match item {
            Ok(StreamItem::UsageSoFar(usage)) => {
                self.usage = Some(usage);
                return None;
            }
            Ok(StreamItem::Answering { target, failed }) => {
                self.answering = Some(target);
                services.record_failed_attempts(&self.user, &self.routed, &self.tag, &failed);
                let route = &self.routed[target.min(self.routed.len() - 1)];
                AiItem::Answering(Answering {
                    provider: route.target.endpoint.kind(),
                    model: route.target.model.clone(),
                    failed,
                })
            }
            Ok(StreamItem::Event(event)) => {
                if let Event::Usage { usage: reported } = &event {
                    self.usage = Some(*reported);
                }
                if let Event::Stop { .. } = &event {
                    self.finished = true;
                    if let Some(route) = self.answering.and_then(|index| self.routed.get(index)) {
                        services.record(
                            &self.user,
                            route.target.endpoint.kind(),
                            &route.target.model,
                            &self.tag,
                            self.usage,
                            (UsageOutcome::Ok, None),
                        );
                    }
                }
                AiItem::Event(event)
            }
            Err(failure) => {
                self.finished = true;
                services.record_failed_attempts(
                    &self.user,
                    &self.routed,
                    &self.tag,
                    &failure.failed,
                );
                if let Some(route) = failure.target.and_then(|index| self.routed.get(index)) {
                    services.note_failure(&self.user, route.credential, &failure.error);
                    services.record(
                        &self.user,
                        route.target.endpoint.kind(),
                        &route.target.model,
                        &self.tag,
                        failure.usage_so_far.or(self.usage),
                        (outcome_of(&failure.error), Some(failure.error.kind)),
                    );
                }
                AiItem::Failed {
                    error: failure.error,
                    output_started: failure.output_started,
                    failed: failure.failed,
                }
            }
        })
    }
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The caller left (or the provider's stream ended without a stop): record what was
        // used.
        if let Some(route) = self.answering.and_then(|index| self.routed.get(index)) {
            self.services.record(
                &self.user,
                route.target.endpoint.kind(),
                &route.target.model,
                &self.tag,
                self.usage,
                (UsageOutcome::Cancelled, None),
            );
        }
    }
}

/// A whole answer.
#[derive(Clone, Debug)]
pub struct AiCompletion {
    pub answering: Answering,
    pub answer: Answer,
}

/// A model the user can pick, with the name that routes to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvailableModel {
    /// What to send as `model`: the bare id for cloud providers, `<label>/<id>` for a local
    /// server.
    pub route: String,
    pub credential_label: String,
    pub info: ModelInfo,
}

/// The models a user can pick, and the providers whose list could not be read.
#[derive(Clone, Debug, Default)]
pub struct ModelChoices {
    pub models: Vec<AvailableModel>,
    pub problems: Vec<(String, String)>,
}

/// What a user used.
#[derive(Clone, Debug)]
pub struct UsageReport {
    pub today: db::UsageTotals,
    pub this_month: db::UsageTotals,
    pub recent: Vec<db::tables::api_usage::Model>,
}

/// The outcome of testing a saved key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialTest {
    pub ok: bool,
    pub message: String,
    pub models: usize,
}

/// One routed model: where it goes and which stored credential pays for it.
#[derive(Clone, Debug)]
struct Routed {
    target: Target,
    credential: ProviderCredentialId,
}

fn no_provider() -> Error {
    Error::NoProvider(
        "No AI provider is configured: add a key or a local server in Settings → AI providers."
            .into(),
    )
}

impl Services {
    fn endpoint_of(
        &self,
        user: &AuthenticatedUser,
        credential: &provider_credentials::Model,
    ) -> Result<Endpoint, Error> {
        let key = credential
            .encrypted_key
            .as_deref()
            .map(|stored| {
                self.master_key.decrypt(
                    stored,
                    &crate::providers::binding_of(user.id, credential.provider, &credential.label),
                )
            })
            .transpose()?;
        Ok(Endpoint::new(
            llm_kind(credential.provider),
            credential.base_url.as_deref(),
            key,
            self.ai.gateway.address_policy(),
        )?)
    }

    /// Routes model names to the user's credentials, in order. A name may say where it goes
    /// (`openai/gpt-4o`, `anthropic/…`, `gemini/…`, or `<label>/<model>` for any of the user's
    /// credentials); a bare name goes to the provider the catalog names, or to the user's only
    /// local server (or the one whose model list has it).
    async fn route(
        &self,
        user: &AuthenticatedUser,
        models: &[String],
    ) -> Result<Vec<Routed>, Error> {
        let credentials = self.credentials_for_calls(user).await?;
        if credentials.is_empty() {
            return Err(no_provider());
        }
        let mut routed = Vec::new();
        let mut problems = Vec::new();
        for name in models {
            let name = name.trim();
            let chosen = route_model(name, &credentials, &self.ai.catalog, |credential, model| {
                self.cached_list_has(credential, model)
            });
            match chosen {
                Some((credential, model)) => {
                    routed.push(Routed {
                        target: Target {
                            endpoint: self.endpoint_of(user, credential)?,
                            model,
                        },
                        credential: credential.id,
                    });
                }
                None => problems.push(name.to_owned()),
            }
        }
        if routed.is_empty() {
            return Err(Error::Provider(
                ProviderError::new(ErrorKind::ModelNotFound).with_message(format!(
                    "none of your providers offers {}",
                    problems.join(", ")
                )),
            ));
        }
        Ok(routed)
    }

    /// The user's credentials, reused for a few seconds between calls.
    async fn credentials_for_calls(
        &self,
        user: &AuthenticatedUser,
    ) -> Result<Arc<Vec<provider_credentials::Model>>, Error> {
        let cached = self
            .ai
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&user.id)
            .filter(|(read, _)| read.elapsed() < CREDENTIALS_TTL)
            .map(|(_, credentials)| credentials.clone());
        if let Some(credentials) = cached {
            return Ok(credentials);
        }
        let credentials = Arc::new(self.database.credentials_of(user.id).await?);
        self.ai
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(user.id, (Instant::now(), credentials.clone()));
        Ok(credentials)
    }

    /// Forgets the user's cached credentials (one was saved, removed or marked).
    pub(crate) fn forget_credentials(&self, user: db::ids::UserId) {
        self.ai
            .credentials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&user);
    }

    fn cached_list_has(&self, credential: ProviderCredentialId, model: &str) -> bool {
        self.ai
            .model_lists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&credential)
            .is_some_and(|list| list.models.iter().any(|entry| entry.id == model))
    }

    /// The targets an agent task asks, in order: `models`, or the user's default model, or the
    /// first model their providers offer.
    pub(crate) async fn agent_targets(
        &self,
        user: &AuthenticatedUser,
        models: &[String],
    ) -> Result<Vec<Target>, Error> {
        let mut names = models.to_vec();
        if names.is_empty()
            && let Some(model) = self.default_model(user).await?
        {
            names.push(model);
        }
        if names.is_empty() {
            let choices = self.available_models(user).await?;
            match choices.models.first() {
                Some(first) => names.push(first.route.clone()),
                None => return Err(no_provider()),
            }
        }
        Ok(self
            .route(user, &names)
            .await?
            .into_iter()
            .map(|route| route.target)
            .collect())
    }

    /// Records one model call of an agent task (mode `async`).
    pub(crate) fn record_agent_call(
        &self,
        user: &AuthenticatedUser,
        provider: &str,
        model: &str,
        usage: Usage,
        cost_micros: u64,
    ) {
        let row = db::NewUsage {
            user_id: user.id,
            provider: provider.to_owned(),
            model: model.to_owned(),
            mode: crate::tasks::ASYNC_MODE.to_owned(),
            conversation_id: None,
            message_id: None,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cost_micros,
            outcome: UsageOutcome::Ok,
            error_kind: None,
        };
        self.write_usage(row, Utc::now());
    }

    /// Starts a streamed answer. Errors found before any provider is called (tier limit, no
    /// provider, unknown model) are returned; the rest arrive as items. The answer is produced
    /// by a task of its own, so it goes on while the receiver waits: dropping the receiver
    /// cancels it (and its usage so far is recorded as `cancelled`).
    pub async fn ai_stream(
        &self,
        user: &AuthenticatedUser,
        call: AiCall,
    ) -> Result<mpsc::Receiver<AiItem>, Error> {
        let answer = self.ai_stream_polled(user, call).await?;
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(async move {
            futures::pin_mut!(answer);
            while let Some(item) = answer.next().await {
                let stopped = item.is_last();
                if sender.send(item).await.is_err() || stopped {
                    return;
                }
            }
        });
        Ok(receiver)
    }

    /// Starts a streamed answer that is produced while the caller polls it, with no task or
    /// channel of its own (the OpenAI-compatible endpoint forwards it as it comes). Errors
    /// found before any provider is called are returned, as by [`Self::ai_stream`]; the stream
    /// ends after its last item ([`AiItem::is_last`]). Dropping it before then cancels the
    /// call, and its usage so far is recorded as `cancelled`.
    pub async fn ai_stream_polled(
        &self,
        user: &AuthenticatedUser,
        call: AiCall,
    ) -> Result<impl futures::Stream<Item = AiItem> + Send + 'static, Error> {
        self.check_ai_mode(user, &call.mode)?;
        let routed = self.route(user, &call.models).await?;
        self.reserve_ai_request(user).await?;
        let targets: Vec<Target> = routed.iter().map(|route| route.target.clone()).collect();
        let tag = call.tag();
        let upstream = self.ai.gateway.stream(targets, call.request);
        let mut record = StreamRecord {
            services: self.clone(),
            user: user.clone(),
            routed,
            tag,
            answering: None,
            usage: None,
            finished: false,
        };
        Ok(upstream
            .filter_map(move |item| futures::future::ready(record.forward(item)))
            .scan(false, |ended, item| {
                // Nothing comes after the last item.
                let next = (!*ended).then_some(item);
                *ended = next.as_ref().is_none_or(AiItem::is_last);
                futures::future::ready(next)
            }))
    }

    /// A whole answer. The call runs to its end and is recorded even if the caller leaves.
    pub async fn ai_complete(
        &self,
        user: &AuthenticatedUser,
        call: AiCall,
    ) -> Result<AiCompletion, Error> {
        self.check_ai_mode(user, &call.mode)?;
        let routed = self.route(user, &call.models).await?;
        self.reserve_ai_request(user).await?;
        let tag = call.tag();
        let services = self.clone();
        let user = user.clone();
        // Polled by the caller's own task (no task of its own: a hop between tasks made the
        // runtime wake its second worker for every call); handed to a task if the caller leaves.
        FinishWhenDropped::new(async move {
            let targets: Vec<Target> = routed.iter().map(|route| route.target.clone()).collect();
            match services.ai.gateway.complete(&targets, &call.request).await {
                Ok(completion) => {
                    services.record_failed_attempts(&user, &routed, &tag, &completion.failed);
                    let route = &routed[completion.target.min(routed.len() - 1)];
                    let answer = Answer::from_events(&completion.events);
                    services.record(
                        &user,
                        route.target.endpoint.kind(),
                        &route.target.model,
                        &tag,
                        answer.usage,
                        (UsageOutcome::Ok, None),
                    );
                    Ok(AiCompletion {
                        answering: Answering {
                            provider: route.target.endpoint.kind(),
                            model: route.target.model.clone(),
                            failed: completion.failed,
                        },
                        answer,
                    })
                }
                Err(failure) => {
                    services.record_failed_attempts(&user, &routed, &tag, &failure.failed);
                    if let Some(route) = failure.target.and_then(|index| routed.get(index)) {
                        services.note_failure(&user, route.credential, &failure.error);
                        services.record(
                            &user,
                            route.target.endpoint.kind(),
                            &route.target.model,
                            &tag,
                            None,
                            (outcome_of(&failure.error), Some(failure.error.kind)),
                        );
                    }
                    Err(Error::Provider(failure.error))
                }
            }
        })
        .await
    }

    async fn remote_models(
        &self,
        user: &AuthenticatedUser,
        credential: &provider_credentials::Model,
    ) -> Result<Vec<RemoteModel>, Error> {
        let cached = self
            .ai
            .model_lists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&credential.id)
            .filter(|list| {
                list.fetched.elapsed() < MODEL_LIST_TTL && list.updated_at == credential.updated_at
            })
            .map(|list| list.models.clone());
        if let Some(models) = cached {
            return Ok(models);
        }
        let endpoint = self.endpoint_of(user, credential)?;
        let result = self.ai.gateway.list_models(&endpoint).await;
        match result {
            Ok(models) => {
                self.ai
                    .model_lists
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(
                        credential.id,
                        CachedList {
                            fetched: Instant::now(),
                            updated_at: credential.updated_at,
                            models: models.clone(),
                        },
                    );
                Ok(models)
            }
            Err(error) => {
                self.note_failure(user, credential.id, &error);
                Err(Error::Provider(error))
            }
        }
    }

    /// The models the user can pick: each credential's list, merged with the catalog. A
    /// provider whose list cannot be read is named in `problems` (its catalog models are still
    /// offered for cloud providers).
    pub async fn available_models(&self, user: &AuthenticatedUser) -> Result<ModelChoices, Error> {
        let credentials = self.database.credentials_of(user.id).await?;
        let lists = futures::future::join_all(
            credentials
                .iter()
                .map(|credential| self.remote_models(user, credential)),
        )
        .await;
        let mut choices = ModelChoices::default();
        for (credential, list) in credentials.iter().zip(lists) {
            let kind = llm_kind(credential.provider);
            let infos = match list {
                Ok(remote) => self.ai.catalog.merge(kind, &remote),
                Err(error) => {
                    choices
                        .problems
                        .push((credential.label.clone(), error.to_string()));
                    self.ai
                        .catalog
                        .models()
                        .iter()
                        .filter(|model| model.provider == kind)
                        .cloned()
                        .collect()
                }
            };
            for info in infos {
                let route = if kind == ProviderKind::OpenAiCompatible {
                    format!("{}/{}", credential.label, info.id)
                } else {
                    info.id.clone()
                };
                if choices
                    .models
                    .iter()
                    .all(|existing| existing.route != route)
                {
                    choices.models.push(AvailableModel {
                        route,
                        credential_label: credential.label.clone(),
                        info,
                    });
                }
            }
        }
        Ok(choices)
    }

    /// Tests a saved key with a cheap call (its provider's model list) and stores the result.
    pub async fn test_credential(
        &self,
        user: &AuthenticatedUser,
        id: ProviderCredentialId,
    ) -> Result<CredentialTest, Error> {
        let credential = self
            .database
            .find_credential(user.id, id)
            .await?
            .ok_or(Error::NotFound)?;
        self.ai
            .model_lists
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&credential.id);
        match self.remote_models(user, &credential).await {
            Ok(models) => {
                self.database
                    .set_credential_status(user.id, id, CredentialStatus::Valid, Utc::now())
                    .await?;
                Ok(CredentialTest {
                    ok: true,
                    message: format!(
                        "The provider accepted the key and offers {} models.",
                        models.len()
                    ),
                    models: models.len(),
                })
            }
            Err(Error::Provider(error)) => {
                if error.kind == ErrorKind::Auth {
                    self.database
                        .set_credential_status(user.id, id, CredentialStatus::Invalid, Utc::now())
                        .await?;
                }
                Ok(CredentialTest {
                    ok: false,
                    message: error.describe(),
                    models: 0,
                })
            }
            Err(other) => Err(other),
        }
    }
}
