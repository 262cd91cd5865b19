//! Removing ended runs after the retention (`--run-retention-days`): a periodic round, taken by
//! one instance at a time.

use std::time::Duration;

use chrono::Utc;

use super::{RunError, Runs};

/// The name of the round in `server_settings` (the instance that took the last one, and when).
pub const RETENTION_TASK: &str = "runs.retention";

/// How often a round is due, across every instance.
pub const RETENTION_PERIOD: Duration = Duration::from_secs(60 * 60);

/// Runs deleted per transaction.
const BATCH: u64 = 500;

impl Runs {
    /// One round of the retention: if no instance took one within `period`, this one takes it
    /// (one conditional update: of instances asking at once exactly one gets it) and deletes
    /// the runs that ended more than `retention` ago, with their events. Returns how many were
    /// deleted, or `None` when the round was not this instance's or `retention` is zero (keep
    /// forever). The deletion is idempotent too: an instance whose round overran the period
    /// and the next one delete each run once between them.
    pub async fn remove_old_runs(
        &self,
        retention: Duration,
        period: Duration,
    ) -> Result<Option<u64>, RunError> {
        if retention.is_zero() {
            return Ok(None);
        }
        let now = Utc::now();
        let period = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::hours(1));
        let taken = self
            .database()
            .take_periodic_round(RETENTION_TASK, self.instance(), period, now)
            .await?;
        if !taken {
            return Ok(None);
        }
        let retention =
            chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(36_500));
        let deleted = self
            .database()
            .delete_runs_ended_before(now - retention, BATCH)
            .await?;
        Ok(Some(deleted))
    }

    /// Runs the retention's rounds for as long as the process runs: one is due every
    /// [`RETENTION_PERIOD`] across all instances (each instance asks every tenth of it). Does
    /// nothing with a zero retention (runs are kept forever).
    pub async fn keep_removing_old_runs(self, retention: Duration) {
        if retention.is_zero() {
            return;
        }
        let mut rounds = tokio::time::interval(RETENTION_PERIOD / 10);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            rounds.tick().await;
            match self.remove_old_runs(retention, RETENTION_PERIOD).await {
                Ok(None | Some(0)) => {}
                Ok(Some(runs)) => tracing::info!(runs, "ended runs past the retention removed"),
                Err(error) => tracing::warn!(%error, "removing old runs failed"),
            }
        }
    }
}
