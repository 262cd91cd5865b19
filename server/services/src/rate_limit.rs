//! Rate limits shared by every server instance of one database (the `rate_limits` table). Two
//! shapes:
//!
//! - failure counters with growing delays: after `free` failures under a key, each further
//!   failure doubles the wait (1 s, 2 s, 4 s, ... up to a cap); a success clears the key. Sign-in
//!   counts failures per account *and client address*, so an attacker elsewhere cannot lock the
//!   real user out, and per client address across accounts. An attempt is counted as a failure
//!   when it starts ([`RateLimiter::reserve_attempt`], checked and counted in one step) and
//!   given back if it succeeds: attempts sent at once cannot all pass the check before any of
//!   them is counted.
//! - fixed windows: at most `limit` events per key per window (sign-ups per address).
//!
//! Each step reads, decides and writes a key's row under its lock
//! ([`db::Database::update_rate_limit`]), so the limits are exact across instances: attempts
//! spread over any number of servers are decided one after the other. The decisions themselves
//! are the pure functions below.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use db::RateLimitState;

use crate::Error;

#[derive(Clone, Copy, Debug)]
pub struct FailurePolicy {
    /// Failures allowed before any delay.
    pub free: u32,
    /// The longest delay.
    pub cap: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct WindowPolicy {
    pub limit: u32,
    pub window: Duration,
}

/// Keys are forgotten after this long without activity.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Forgotten keys are removed from the database at most this often (by each instance).
const PRUNE_EVERY_SECONDS: i64 = 60;

/// The shared rate limits, through the database every instance uses.
#[derive(Debug)]
pub struct RateLimiter {
    database: db::Database,
    /// When this instance last removed forgotten keys (Unix seconds).
    last_pruned: AtomicI64,
}

/// The error a refused attempt answers, with the wait.
pub fn rate_limited(wait: Duration) -> Error {
    Error::RateLimited {
        retry_after: chrono::Duration::seconds(
            i64::try_from(wait.as_secs()).unwrap_or(i64::MAX) + 1,
        ),
    }
}

fn chrono_of(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn wait_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (until - now).to_std().unwrap_or(Duration::ZERO)
}

impl RateLimiter {
    pub fn new(database: db::Database) -> RateLimiter {
        RateLimiter {
            database,
            last_pruned: AtomicI64::new(0),
        }
    }

    /// Removes keys unused for [`FORGET_AFTER`], at most once a minute.
    async fn prune(&self, now: DateTime<Utc>) {
        let last = self.last_pruned.load(Ordering::Relaxed);
        if now.timestamp() - last < PRUNE_EVERY_SECONDS
            || self
                .last_pruned
                .compare_exchange(last, now.timestamp(), Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(error) = self
            .database
            .forget_rate_limits_before(now - chrono_of(FORGET_AFTER))
            .await
        {
            tracing::warn!(%error, "forgotten rate limits were not removed");
        }
    }

    async fn decide<T>(
        &self,
        key: &str,
        decide: impl FnOnce(&mut RateLimitState, DateTime<Utc>) -> T,
    ) -> Result<T, Error> {
        let now = Utc::now();
        self.prune(now).await;
        Ok(self
            .database
            .update_rate_limit(key, now, |state| decide(state, now))
            .await?)
    }

    /// Checks the key and, if it is not serving a delay, counts this attempt as a failure at
    /// once, in one step: the slot is reserved before the work it limits. A success gives it
    /// back with [`Self::clear`] or [`Self::refund`]. [`Error::RateLimited`] while the key
    /// serves a delay.
    pub async fn reserve_attempt(&self, key: &str, policy: FailurePolicy) -> Result<(), Error> {
        self.decide(key, |state, now| reserve_attempt(state, policy, now))
            .await?
            .map_err(rate_limited)
    }

    /// Gives back one reserved attempt (it succeeded); the delay it started, if any, ends when
    /// no more failures than the free ones remain.
    pub async fn refund(&self, key: &str, policy: FailurePolicy) -> Result<(), Error> {
        self.decide(key, |state, _| refund(state, policy)).await
    }

    /// Forgets the key's failures and delay.
    pub async fn clear(&self, key: &str) -> Result<(), Error> {
        self.decide(key, |state, _| {
            state.count = 0;
            state.blocked_until = None;
        })
        .await
    }

    /// Counts an event in a fixed window; [`Error::RateLimited`] when the window is full.
    pub async fn hit(&self, key: &str, policy: WindowPolicy) -> Result<(), Error> {
        self.decide(key, |state, now| hit(state, policy, now))
            .await?
            .map_err(rate_limited)
    }
}

/// `Err(wait)` while the key serves a delay; else the attempt is counted as a failure.
fn reserve_attempt(
    state: &mut RateLimitState,
    policy: FailurePolicy,
    now: DateTime<Utc>,
) -> Result<(), Duration> {
    if let Some(until) = state.blocked_until
        && until > now
    {
        return Err(wait_until(until, now));
    }
    count_failure(state, policy, now);
    Ok(())
}

fn refund(state: &mut RateLimitState, policy: FailurePolicy) {
    state.count = state.count.saturating_sub(1);
    if state.count <= policy.free {
        state.blocked_until = None;
    }
}

/// Counts a failure; past the free ones, starts a delay that doubles each time.
fn count_failure(state: &mut RateLimitState, policy: FailurePolicy, now: DateTime<Utc>) {
    if now - state.since > chrono_of(FORGET_AFTER) {
        state.count = 0;
    }
    state.count = state.count.saturating_add(1);
    state.since = now;
    if state.count > policy.free {
        let doublings = (state.count - policy.free - 1).min(20);
        let delay = Duration::from_secs(1u64 << doublings).min(policy.cap);
        state.blocked_until = Some(now + chrono_of(delay));
    }
}

/// Counts an event in a fixed window; `Err(wait)` when the window is full.
fn hit(
    state: &mut RateLimitState,
    policy: WindowPolicy,
    now: DateTime<Utc>,
) -> Result<(), Duration> {
    let window = chrono_of(policy.window);
    if now - state.since >= window {
        state.count = 0;
        state.since = now;
    }
    if state.count >= policy.limit {
        return Err(wait_until(state.since + window, now));
    }
    state.count += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(now: DateTime<Utc>) -> RateLimitState {
        RateLimitState {
            count: 0,
            since: now,
            blocked_until: None,
        }
    }

    fn waits(state: &RateLimitState, now: DateTime<Utc>) -> Option<Duration> {
        state
            .blocked_until
            .filter(|until| *until > now)
            .map(|until| wait_until(until, now))
    }

    #[test]
    fn delays_start_after_the_free_failures_and_double() {
        let now = Utc::now();
        let mut state = fresh(now);
        let policy = FailurePolicy {
            free: 3,
            cap: Duration::from_secs(60),
        };
        for _ in 0..3 {
            assert!(waits(&state, now).is_none());
            count_failure(&mut state, policy, now);
        }
        assert!(waits(&state, now).is_none(), "three failures are free");
        count_failure(&mut state, policy, now);
        assert_eq!(waits(&state, now), Some(Duration::from_secs(1)));
        count_failure(&mut state, policy, now);
        assert_eq!(waits(&state, now), Some(Duration::from_secs(2)));
        for _ in 0..30 {
            count_failure(&mut state, policy, now);
        }
        assert_eq!(waits(&state, now), Some(Duration::from_secs(60)), "capped");
        let later = now + chrono::Duration::hours(2);
        count_failure(&mut state, policy, later);
        assert_eq!(state.count, 1, "forgotten after an hour without failures");
    }

    #[test]
    fn attempts_started_together_are_counted_before_any_finishes() {
        let now = Utc::now();
        let mut state = fresh(now);
        let policy = FailurePolicy {
            free: 5,
            cap: Duration::from_secs(60),
        };
        // Fifteen attempts start before any of them ends: only the free ones and the one that
        // starts the delay get through.
        let admitted = (0..15)
            .filter(|_| reserve_attempt(&mut state, policy, now).is_ok())
            .count();
        assert_eq!(admitted, 6);
        // One of them succeeds: its slot is given back, and with it the delay if no more
        // failures than the free ones remain.
        refund(&mut state, policy);
        assert!(
            reserve_attempt(&mut state, policy, now).is_ok(),
            "five failures counted"
        );
        assert!(
            reserve_attempt(&mut state, policy, now).is_err(),
            "and a delay again"
        );
    }

    #[test]
    fn windows_allow_the_limit_then_refuse() {
        let now = Utc::now();
        let mut state = fresh(now);
        let policy = WindowPolicy {
            limit: 2,
            window: Duration::from_secs(60),
        };
        assert!(hit(&mut state, policy, now).is_ok());
        assert!(hit(&mut state, policy, now).is_ok());
        let wait = hit(&mut state, policy, now + chrono::Duration::seconds(5)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(55));
        assert!(
            hit(&mut state, policy, now + chrono::Duration::seconds(61)).is_ok(),
            "a new window"
        );
    }
}
