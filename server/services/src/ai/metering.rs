//! Metering: the tier's checks and reservations before a call, and every call's usage row (with
//! its cost, failed attempts included) after it; the usage report.

use super::*;

pub(super) fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now)
}

pub(super) fn start_of_month(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// How a call ended, for its usage row.
pub(super) fn outcome_of(error: &ProviderError) -> UsageOutcome {
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
    pub(super) fn write_usage(&self, row: db::NewUsage, at: DateTime<Utc>) {
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

    /// Records one call (in the background: the answer does not wait for it).
    pub(super) fn record(
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
    pub(super) fn note_failure(
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

    pub(super) fn record_failed_attempts(
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
}
