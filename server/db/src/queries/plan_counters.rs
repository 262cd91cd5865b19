//! Plan counters: reservations made before the work they limit, exact under concurrency and
//! across server instances (one conditional `UPDATE` decides; the database serializes it).

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::ids::UserId;
use crate::tables::plan_counters;
use crate::{Database, Error};

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// What a reservation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Added: the counter stays within its limit.
    Reserved,
    /// The counter is at its limit (or `amount` would pass it); nothing changed.
    Full,
    /// The counter does not exist yet (seed it with [`Database::seed_plan_counter`]).
    Missing,
}

impl Database {
    /// Adds `amount` to the user's `counter` if it stays at most `limit`: one conditional
    /// update decides (a second one when the first found no row but a concurrent first
    /// reservation created it since, so a counter seeded concurrently is never taken for full).
    pub async fn reserve_on_plan_counter(
        &self,
        user_id: UserId,
        counter: &str,
        amount: u64,
        limit: u64,
    ) -> Result<Reservation, Error> {
        if self
            .add_within_limit(user_id, counter, amount, limit)
            .await?
        {
            return Ok(Reservation::Reserved);
        }
        if self.plan_counter(user_id, counter).await?.is_none() {
            return Ok(Reservation::Missing);
        }
        // The counter exists now, but it may have been created (by a concurrent first
        // reservation) after the update above looked: only an update that saw it decides that
        // it is full.
        Ok(
            if self
                .add_within_limit(user_id, counter, amount, limit)
                .await?
            {
                Reservation::Reserved
            } else {
                Reservation::Full
            },
        )
    }

    /// The conditional update of a reservation: `true` when it added `amount`.
    async fn add_within_limit(
        &self,
        user_id: UserId,
        counter: &str,
        amount: u64,
        limit: u64,
    ) -> Result<bool, Error> {
        let result = plan_counters::Entity::update_many()
            .col_expr(
                plan_counters::Column::Used,
                Expr::col(plan_counters::Column::Used).add(signed(amount)),
            )
            .filter(plan_counters::Column::UserId.eq(user_id))
            .filter(plan_counters::Column::Counter.eq(counter))
            .filter(
                Expr::col(plan_counters::Column::Used)
                    .add(signed(amount))
                    .lte(signed(limit)),
            )
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Creates the counter with `used` unless it exists (then it is left as it is). Counters of
    /// the same kind for other periods (`kind:…` before the colon) are removed.
    pub async fn seed_plan_counter(
        &self,
        user_id: UserId,
        counter: &str,
        used: u64,
    ) -> Result<(), Error> {
        if let Some((kind, _)) = counter.split_once(':') {
            plan_counters::Entity::delete_many()
                .filter(plan_counters::Column::UserId.eq(user_id))
                .filter(plan_counters::Column::Counter.starts_with(format!("{kind}:")))
                .filter(plan_counters::Column::Counter.ne(counter))
                .exec(self.connection())
                .await?;
        }
        plan_counters::Entity::insert(plan_counters::ActiveModel {
            user_id: Set(user_id),
            counter: Set(counter.to_owned()),
            used: Set(signed(used)),
        })
        .on_conflict(
            OnConflict::columns([
                plan_counters::Column::UserId,
                plan_counters::Column::Counter,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(self.connection())
        .await?;
        Ok(())
    }

    /// The counter's value, if it exists.
    pub async fn plan_counter(&self, user_id: UserId, counter: &str) -> Result<Option<u64>, Error> {
        Ok(
            plan_counters::Entity::find_by_id((user_id, counter.to_owned()))
                .one(self.connection())
                .await?
                .map(|row| u64::try_from(row.used).unwrap_or(0)),
        )
    }

    /// Adds `amount` whatever the limit (what was used beyond a reservation, such as tokens);
    /// a counter that does not exist is left alone (its seed will count it).
    pub async fn add_to_plan_counter(
        &self,
        user_id: UserId,
        counter: &str,
        amount: u64,
    ) -> Result<(), Error> {
        self.change_plan_counter(user_id, counter, signed(amount))
            .await
    }

    /// Gives back a reservation that was not used (never below zero).
    pub async fn release_on_plan_counter(
        &self,
        user_id: UserId,
        counter: &str,
        amount: u64,
    ) -> Result<(), Error> {
        self.change_plan_counter(user_id, counter, -signed(amount))
            .await
    }

    /// Adds `delta` (negative: takes away) unless the counter would go below zero.
    async fn change_plan_counter(
        &self,
        user_id: UserId,
        counter: &str,
        delta: i64,
    ) -> Result<(), Error> {
        plan_counters::Entity::update_many()
            .col_expr(
                plan_counters::Column::Used,
                Expr::col(plan_counters::Column::Used).add(delta),
            )
            .filter(plan_counters::Column::UserId.eq(user_id))
            .filter(plan_counters::Column::Counter.eq(counter))
            .filter(Expr::col(plan_counters::Column::Used).add(delta).gte(0))
            .exec(self.connection())
            .await?;
        Ok(())
    }
}
