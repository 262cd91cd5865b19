use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};

use crate::ids::{ApiUsageId, ConversationId, MessageId, ProviderCredentialId, UserId};
use crate::tables::{api_usage, provider_credentials};
use crate::{Database, Error};

/// How a recorded provider call ended: the `outcome` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UsageOutcome {
    /// The answer came whole.
    #[default]
    Ok,
    /// The stream ended before the provider said it was done.
    Incomplete,
    /// The provider refused or failed.
    Error,
    /// The person (or a shutdown) stopped it.
    Cancelled,
    /// A fallback attempt that failed and was followed by the next model: its tokens count,
    /// it is not counted as a request.
    FailedOver,
}

impl UsageOutcome {
    pub const ALL: [UsageOutcome; 5] = [
        UsageOutcome::Ok,
        UsageOutcome::Incomplete,
        UsageOutcome::Error,
        UsageOutcome::Cancelled,
        UsageOutcome::FailedOver,
    ];

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            UsageOutcome::Ok => "ok",
            UsageOutcome::Incomplete => "incomplete",
            UsageOutcome::Error => "error",
            UsageOutcome::Cancelled => "cancelled",
            UsageOutcome::FailedOver => "failed_over",
        }
    }
}

/// One provider call to record.
#[derive(Clone, Debug, Default)]
pub struct NewUsage {
    pub user_id: UserId,
    pub provider: String,
    pub model: String,
    pub mode: String,
    /// The chat message the call answered, if any.
    pub conversation_id: Option<ConversationId>,
    pub message_id: Option<MessageId>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_micros: u64,
    pub outcome: UsageOutcome,
    pub error_kind: Option<&'static str>,
}

/// What a user used in a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Calls made (fallback attempts that failed over are not counted again).
    pub requests: u64,
    pub tokens: u64,
    pub cost_micros: u64,
}

#[derive(FromQueryResult)]
struct TotalsRow {
    requests: Option<i64>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cost_micros: Option<i64>,
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unsigned(value: Option<i64>) -> u64 {
    value
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0)
}

fn active(usage: NewUsage, now: DateTime<Utc>) -> api_usage::ActiveModel {
    api_usage::ActiveModel {
        id: Set(ApiUsageId::new()),
        user_id: Set(usage.user_id),
        conversation_id: Set(usage.conversation_id),
        message_id: Set(usage.message_id),
        provider: Set(usage.provider),
        model: Set(usage.model),
        mode: Set(usage.mode),
        input_tokens: Set(signed(usage.input_tokens)),
        output_tokens: Set(signed(usage.output_tokens)),
        cached_tokens: Set(signed(usage.cache_read_tokens)),
        cache_write_tokens: Set(signed(usage.cache_write_tokens)),
        reasoning_tokens: Set(signed(usage.reasoning_tokens)),
        cost_micros: Set(signed(usage.cost_micros)),
        created_at: Set(now),
        outcome: Set(usage.outcome.name().to_owned()),
        error_kind: Set(usage.error_kind.map(str::to_owned)),
    }
}

impl Database {
    pub async fn record_usage(&self, usage: NewUsage, now: DateTime<Utc>) -> Result<(), Error> {
        active(usage, now).insert(self.connection()).await?;
        Ok(())
    }

    /// Records several calls in one statement (the usage writer batches what arrives together).
    pub async fn record_usage_batch(
        &self,
        rows: Vec<(NewUsage, DateTime<Utc>)>,
    ) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        api_usage::Entity::insert_many(rows.into_iter().map(|(usage, at)| active(usage, at)))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// The user's calls, tokens and cost since `since`.
    pub async fn usage_since(
        &self,
        user_id: UserId,
        since: DateTime<Utc>,
    ) -> Result<UsageTotals, Error> {
        let row = api_usage::Entity::find()
            .select_only()
            // Fallback attempts that failed over count their tokens, not as requests.
            // (Postgres sums BIGINT into NUMERIC: cast back.)
            .column_as(
                Expr::cust(format!(
                    "CAST(COALESCE(SUM(CASE WHEN outcome <> '{}' THEN 1 ELSE 0 END), 0) AS BIGINT)",
                    UsageOutcome::FailedOver.name()
                )),
                "requests",
            )
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT)"),
                "input_tokens",
            )
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT)"),
                "output_tokens",
            )
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT)"),
                "cost_micros",
            )
            .filter(api_usage::Column::UserId.eq(user_id))
            .filter(api_usage::Column::CreatedAt.gte(since))
            .into_model::<TotalsRow>()
            .one(self.connection())
            .await?;
        let totals = row.map_or_else(UsageTotals::default, |row| UsageTotals {
            requests: unsigned(row.requests),
            tokens: unsigned(row.input_tokens) + unsigned(row.output_tokens),
            cost_micros: unsigned(row.cost_micros),
        });
        Ok(totals)
    }

    /// The user's latest usage rows, newest first.
    pub async fn recent_usage(
        &self,
        user_id: UserId,
        limit: u64,
    ) -> Result<Vec<api_usage::Model>, Error> {
        Ok(api_usage::Entity::find()
            .filter(api_usage::Column::UserId.eq(user_id))
            .order_by_desc(api_usage::Column::CreatedAt)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// Sets a credential's status after a call or a test (`last_verified_at` when it was checked).
    pub async fn set_credential_status(
        &self,
        user_id: UserId,
        id: ProviderCredentialId,
        status: provider_credentials::CredentialStatus,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        provider_credentials::Entity::update_many()
            .col_expr(provider_credentials::Column::Status, Expr::value(status))
            .col_expr(
                provider_credentials::Column::LastVerifiedAt,
                Expr::value(now),
            )
            .filter(provider_credentials::Column::Id.eq(id))
            .filter(provider_credentials::Column::UserId.eq(user_id))
            .exec(self.connection())
            .await?;
        Ok(())
    }
}
