//! Rate limits shared by every server instance: each key's state is read, decided on and written
//! back inside one transaction with its row locked, so concurrent attempts on any number of
//! instances are decided one after the other (exact), on Postgres and on SQLite alike.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect,
};

use crate::tables::rate_limits;
use crate::{Database, Error};

/// A key's state as a rate limit decides on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitState {
    /// Failures, or events in the current window.
    pub count: u32,
    /// Start of the window, or time of the last failure.
    pub since: DateTime<Utc>,
    /// The end of the delay the key serves, if any.
    pub blocked_until: Option<DateTime<Utc>>,
}

impl Database {
    /// Reads the state of `key` (a fresh state at `now` when it has none), lets `decide` change
    /// it and return its answer, and writes the change, all under the row's lock: no other
    /// caller, on any instance, decides on the key in between.
    pub async fn update_rate_limit<T>(
        &self,
        key: &str,
        now: DateTime<Utc>,
        decide: impl FnOnce(&mut RateLimitState) -> T,
    ) -> Result<T, Error> {
        let transaction = self.begin_write().await?;
        rate_limits::Entity::insert(rate_limits::ActiveModel {
            key: Set(key.to_owned()),
            count: Set(0),
            since: Set(now),
            blocked_until: Set(None),
        })
        .on_conflict(
            OnConflict::column(rate_limits::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await?;
        let Some(row) = rate_limits::Entity::find_by_id(key.to_owned())
            .lock_exclusive()
            .one(&transaction)
            .await?
        else {
            return Err(Error::Query(sea_orm::DbErr::RecordNotFound(format!(
                "the rate limit {key} vanished inside its transaction"
            ))));
        };
        let before = RateLimitState {
            count: u32::try_from(row.count.max(0)).unwrap_or(u32::MAX),
            since: row.since,
            blocked_until: row.blocked_until,
        };
        let mut state = before;
        let answer = decide(&mut state);
        if state != before {
            let mut active = row.into_active_model();
            active.count = Set(i64::from(state.count));
            active.since = Set(state.since);
            active.blocked_until = Set(state.blocked_until);
            active.update(&transaction).await?;
        }
        transaction.commit().await?;
        Ok(answer)
    }

    /// Forgets keys without activity since `before`.
    pub async fn forget_rate_limits_before(&self, before: DateTime<Utc>) -> Result<u64, Error> {
        let result = rate_limits::Entity::delete_many()
            .filter(rate_limits::Column::Since.lt(before))
            .filter(
                sea_orm::Condition::any()
                    .add(rate_limits::Column::BlockedUntil.is_null())
                    .add(rate_limits::Column::BlockedUntil.lt(before)),
            )
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected)
    }
}
