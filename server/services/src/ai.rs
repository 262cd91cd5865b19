//! AI calls on a user's behalf, through the gateway (`llm`): the tier policy is checked first,
//! model names are routed to the user's own credentials (a key only ever goes to the base URL it
//! was saved with), every call is recorded in `api_usage` with its cost (failed ones included),
//! and a key the provider refuses with 401 is marked invalid.

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

fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now)
}

fn start_of_month(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// How a call ended, for its usage row.
fn outcome_of(error: &ProviderError) -> UsageOutcome {
    if error.kind == ErrorKind::Incomplete {
        UsageOutcome::Incomplete
    } else {
        UsageOutcome::Error
    }
}

impl Services {
    /// Whether the user's plan includes `mode` (before anything is routed or reserved).
    pub fn check_ai_mode(&self, user: &AuthenticatedUser, mode: &str) -> Result<(), Error> {
        self.tiers.check_mode(Some(user.tier), mode)
    }

    /// Reserves one AI request of the user's plan for today, and checks this month's tokens,
    /// before the provider is called: one conditional update in the database decides, so
    /// concurrent calls (on any number of server instances) never pass the limit together. A
    /// counter that does not exist yet is seeded from `api_usage`. Tokens are added to the
    /// month's counter as calls are recorded (the usage writer does it with their rows).
    pub async fn reserve_ai_request(&self, user: &AuthenticatedUser) -> Result<(), Error> {
        let limits = self.tiers.limits(Some(user.tier));
        let now = Utc::now();
        if let Some(limit) = limits.requests_per_day {
            let counter = crate::policy::requests_counter(now);
            let mut outcome = self
                .database
                .reserve_on_plan_counter(user.id, &counter, 1, limit)
                .await?;
            if outcome == db::Reservation::Missing {
                self.flush_usage().await;
                let today = self
                    .database
                    .usage_since(user.id, start_of_day(now))
                    .await?;
                self.database
                    .seed_plan_counter(user.id, &counter, today.requests)
                    .await?;
                outcome = self
                    .database
                    .reserve_on_plan_counter(user.id, &counter, 1, limit)
                    .await?;
            }
            if outcome != db::Reservation::Reserved {
                return Err(self.tiers.daily_requests_used_up(Some(user.tier)));
            }
        }
        if let Some(limit) = limits.tokens_per_month {
            let counter = crate::policy::tokens_counter(now);
            let used = match self.database.plan_counter(user.id, &counter).await? {
                Some(used) => used,
                None => {
                    self.flush_usage().await;
                    let month = self
                        .database
                        .usage_since(user.id, start_of_month(now))
                        .await?;
                    self.database
                        .seed_plan_counter(user.id, &counter, month.tokens)
                        .await?;
                    self.database
                        .plan_counter(user.id, &counter)
                        .await?
                        .unwrap_or(month.tokens)
                }
            };
            if used >= limit {
                if limits.requests_per_day.is_some() {
                    self.database
                        .release_on_plan_counter(user.id, &crate::policy::requests_counter(now), 1)
                        .await?;
                }
                return Err(self.tiers.monthly_tokens_used_up(Some(user.tier)));
            }
        }
        Ok(())
    }

    /// Queues a usage row for the writer task, which inserts rows in batches.
    fn write_usage(&self, row: db::NewUsage, at: DateTime<Utc>) {
        self.ai
            .writer
            .get_or_init(|| UsageWriter::start(self.database.clone()))
            .push(row, at);
    }

    /// Returns once every usage row queued before this call is in the database (or its write
    /// failed and was logged). Called before usage is read, and by the server before it closes
    /// the database at shutdown.
    pub async fn flush_usage(&self) {
        if let Some(writer) = self.ai.writer.get() {
            writer.flush().await;
        }
    }

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

    /// Records one call (in the background: the answer does not wait for it).
    fn record(
        &self,
        user: &AuthenticatedUser,
        provider: ProviderKind,
        model: &str,
        tag: &CallTag,
        usage: Option<Usage>,
        (outcome, error_kind): (UsageOutcome, Option<ErrorKind>),
    ) {
        let usage = usage.unwrap_or_default();
        let cost = self.ai.catalog.cost_micros(provider, model, &usage);
        if cost.is_none() && usage.total_tokens() > 0 {
            tracing::warn!(
                provider = provider.name(),
                model,
                "no price known for this model; its cost is recorded as 0"
            );
        }
        let row = db::NewUsage {
            user_id: user.id,
            provider: provider.name().to_owned(),
            model: model.to_owned(),
            mode: tag.mode.clone(),
            conversation_id: tag.origin.map(|(conversation, _)| conversation),
            message_id: tag.origin.map(|(_, message)| message),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cost_micros: cost.unwrap_or(0),
            outcome,
            error_kind: error_kind.map(ErrorKind::name),
        };
        self.write_usage(row, Utc::now());
    }

    /// After a failure: a refused key is marked invalid.
    fn note_failure(
        &self,
        user: &AuthenticatedUser,
        credential: ProviderCredentialId,
        error: &ProviderError,
    ) {
        if !error.marks_key_invalid() {
            return;
        }
        let database = self.database.clone();
        let user_id = user.id;
        tokio::spawn(async move {
            if let Err(error) = database
                .set_credential_status(user_id, credential, CredentialStatus::Invalid, Utc::now())
                .await
            {
                tracing::error!(%error, "marking a provider key invalid failed");
            }
        });
    }

    fn record_failed_attempts(
        &self,
        user: &AuthenticatedUser,
        routed: &[Routed],
        tag: &CallTag,
        failed: &[FailedAttempt],
    ) {
        for attempt in failed {
            if let Some(route) = routed.get(attempt.target) {
                self.note_failure(user, route.credential, &attempt.error);
            }
            if attempt.usage.is_some_and(|usage| usage.total_tokens() > 0) {
                self.record(
                    user,
                    attempt.provider,
                    &attempt.model,
                    tag,
                    attempt.usage,
                    (UsageOutcome::FailedOver, Some(attempt.kind)),
                );
            }
        }
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

    /// The user's calls, tokens and cost today and this month, and the latest `recent` calls.
    pub async fn usage_report(
        &self,
        user: &AuthenticatedUser,
        recent: u64,
    ) -> Result<UsageReport, Error> {
        self.flush_usage().await;
        let now = Utc::now();
        Ok(UsageReport {
            today: self
                .database
                .usage_since(user.id, start_of_day(now))
                .await?,
            this_month: self
                .database
                .usage_since(user.id, start_of_month(now))
                .await?,
            recent: self.database.recent_usage(user.id, recent).await?,
        })
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

/// Which of the user's credentials answers the model `name`, and under which model name (a pure
/// function, table-tested below):
/// - `openai/…`, `anthropic/…`, `gemini/…`: that provider's credential (`default`, else the
///   first), the rest of the name being the model;
/// - `<label>/…`: the credential of that label (a local server's, say);
/// - a name the catalog knows: its provider's credential;
/// - else a local server: the only one, or the one whose model list (as last read,
///   `local_lists`) has the name.
///
/// `None` when nothing answers it, or the model name left is empty.
fn route_model<'credentials>(
    name: &str,
    credentials: &'credentials [provider_credentials::Model],
    catalog: &llm::Catalog,
    local_lists: impl Fn(ProviderCredentialId, &str) -> bool,
) -> Option<(&'credentials provider_credentials::Model, String)> {
    let mut chosen: Option<(&provider_credentials::Model, String)> = None;
    if let Some((prefix, rest)) = name.split_once('/') {
        // A cloud provider's name routes to that provider; any other prefix (a local
        // server's included) is a credential's label.
        let by_provider = match prefix.parse::<ProviderKind>() {
            Ok(ProviderKind::OpenAiCompatible) | Err(_) => None,
            Ok(kind) => Some(stored_kind(kind)),
        };
        chosen = match by_provider {
            Some(kind) => preferred(credentials, kind),
            None => credentials
                .iter()
                .find(|credential| credential.label == prefix),
        }
        .map(|credential| (credential, rest.to_owned()));
    }
    if chosen.is_none() {
        chosen = match catalog.provider_of(name) {
            Some(ProviderKind::OpenAiCompatible) | None => None,
            Some(kind) => preferred(credentials, stored_kind(kind)),
        }
        .map(|credential| (credential, name.to_owned()));
    }
    if chosen.is_none() {
        let locals: Vec<&provider_credentials::Model> = credentials
            .iter()
            .filter(|credential| credential.provider == StoredKind::OpenAiCompatible)
            .collect();
        chosen = match locals.as_slice() {
            [only] => Some((*only, name.to_owned())),
            [] => None,
            several => several
                .iter()
                .find(|credential| local_lists(credential.id, name))
                .map(|credential| (*credential, name.to_owned())),
        };
    }
    chosen.filter(|(_, model)| !model.is_empty())
}

/// The credential of a provider kind to use: the one labelled `default`, else the first.
fn preferred(
    credentials: &[provider_credentials::Model],
    kind: StoredKind,
) -> Option<&provider_credentials::Model> {
    let mut of_kind = credentials
        .iter()
        .filter(|credential| credential.provider == kind);
    let all: Vec<&provider_credentials::Model> = of_kind.by_ref().collect();
    all.iter()
        .find(|credential| credential.label == "default")
        .or_else(|| all.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn credential(provider: StoredKind, label: &str) -> provider_credentials::Model {
        provider_credentials::Model {
            id: ProviderCredentialId::new(),
            user_id: db::ids::UserId::new(),
            provider,
            label: label.to_owned(),
            base_url: None,
            encrypted_key: None,
            key_last_four: None,
            status: CredentialStatus::Valid,
            last_verified_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn catalog() -> llm::Catalog {
        let entry = |id: &str, provider: &str| {
            format!(
                "[[models]]\nid = \"{id}\"\nprovider = \"{provider}\"\nname = \"{id}\"\n\
                 context_window = 1000\nmax_output_tokens = 100\ntools = true\nreasoning = false\n\
                 input = 1.0\noutput = 2.0\ncache_read = 0.1\ncache_write = 0\n"
            )
        };
        llm::Catalog::parse(&format!(
            "checked = \"today\"\nsource = \"a test\"\n{}{}",
            entry("gpt-test", "openai"),
            entry("claude-test", "anthropic")
        ))
        .expect("the test catalog parses")
    }

    /// A model name, the credentials, and the (label, model) it routes to.
    type RouteCase<'a> = (
        &'a str,
        &'a [provider_credentials::Model],
        Option<(&'a str, &'a str)>,
    );

    #[test]
    fn each_model_name_routes_to_the_credential_that_answers_it() {
        let openai_first = credential(StoredKind::OpenAi, "work");
        let openai_default = credential(StoredKind::OpenAi, "default");
        let anthropic = credential(StoredKind::Anthropic, "default");
        let ollama = credential(StoredKind::OpenAiCompatible, "ollama");
        let vllm = credential(StoredKind::OpenAiCompatible, "vllm");
        let everything = vec![
            openai_first.clone(),
            openai_default.clone(),
            anthropic.clone(),
            ollama.clone(),
            vllm.clone(),
        ];
        let one_local = vec![anthropic.clone(), ollama.clone()];
        // vLLM's list (as last read) has "qwen3-coder"; Ollama's none of these.
        let lists = |credential: ProviderCredentialId, model: &str| {
            credential == vllm.id && model == "qwen3-coder"
        };
        let catalog = catalog();
        let cases: [RouteCase; 12] = [
            // A provider's prefix: its `default` credential, the rest is the model.
            ("openai/gpt-anything", &everything, Some(("default", "gpt-anything"))),
            ("anthropic/claude-x", &everything, Some(("default", "claude-x"))),
            // A label's prefix.
            ("work/gpt-test", &everything, Some(("work", "gpt-test"))),
            ("ollama/llama3", &everything, Some(("ollama", "llama3"))),
            // A local server's kind name is no routing prefix.
            ("openai_compatible/llama3", &everything, None),
            // Known to the catalog: its provider.
            ("gpt-test", &everything, Some(("default", "gpt-test"))),
            ("claude-test", &one_local, Some(("default", "claude-test"))),
            // Unknown: the only local server, or the one listing it.
            ("llama3", &one_local, Some(("ollama", "llama3"))),
            ("qwen3-coder", &everything, Some(("vllm", "qwen3-coder"))),
            ("mystery", &everything, None),
            // A provider with no credential, an empty model name.
            ("gemini/gemini-x", &everything, None),
            ("ollama/", &everything, None),
        ];
        for (name, credentials, expected) in cases {
            let routed = route_model(name, credentials, &catalog, lists)
                .map(|(credential, model)| (credential.label.as_str(), model));
            assert_eq!(
                routed,
                expected.map(|(label, model)| (label, model.to_owned())),
                "{name}"
            );
        }
        // The first credential of a kind when none is labelled `default`.
        let no_default = vec![openai_first.clone()];
        assert_eq!(
            route_model("gpt-test", &no_default, &catalog, lists).map(|(credential, _)| credential.id),
            Some(openai_first.id)
        );
    }
}
