//! In-memory rate limits (one server process). Two shapes:
//!
//! - failure counters with growing delays: after `free` failures under a key, each further
//!   failure doubles the wait (1 s, 2 s, 4 s, ... up to a cap); a success clears the key. Sign-in
//!   counts failures per account *and client address*, so an attacker elsewhere cannot lock the
//!   real user out, and per client address across accounts. An attempt is counted as a failure
//!   when it starts ([`RateLimiter::reserve_attempt`], checked and counted under one lock) and
//!   given back if it succeeds: attempts sent at once cannot all pass the check before any of
//!   them is counted.
//! - fixed windows: at most `limit` events per key per window (sign-ups per address).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

#[derive(Debug)]
struct Entry {
    /// Failures, or events in the current window.
    count: u32,
    /// Start of the window, or time of the last failure.
    since: Instant,
    blocked_until: Option<Instant>,
}

/// Keys are forgotten after this long without activity.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct RateLimiter {
    entries: Mutex<HashMap<String, Entry>>,
}

impl RateLimiter {
    fn with_entries<T>(&self, action: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut entries = match self.entries.lock() {
            Ok(entries) => entries,
            // A panic while holding the lock leaves counters, not broken invariants.
            Err(poisoned) => poisoned.into_inner(),
        };
        if entries.len() > PRUNE_ABOVE {
            let now = Instant::now();
            entries.retain(|_, entry| now.duration_since(entry.since) < FORGET_AFTER);
        }
        action(&mut entries)
    }

    /// `Err(wait)` while the key is serving a delay.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        self.with_entries(
            |entries| match entries.get(key).and_then(|entry| entry.blocked_until) {
                Some(until) if until > now => Err(until - now),
                _ => Ok(()),
            },
        )
    }

    /// Checks the key and, if it is not serving a delay, counts this attempt as a failure at
    /// once, in one step: the slot is reserved before the work it limits. A success gives it
    /// back with [`Self::clear`] or [`Self::refund`].
    pub fn reserve_attempt(&self, key: &str, policy: FailurePolicy) -> Result<(), Duration> {
        let now = Instant::now();
        self.with_entries(|entries| {
            if let Some(until) = entries.get(key).and_then(|entry| entry.blocked_until)
                && until > now
            {
                return Err(until - now);
            }
            count_failure(entries, key, policy, now);
            Ok(())
        })
    }

    /// Gives back one reserved attempt (it succeeded); the delay it started, if any, ends when
    /// no more failures than the free ones remain.
    pub fn refund(&self, key: &str, policy: FailurePolicy) {
        self.with_entries(|entries| {
            if let Some(entry) = entries.get_mut(key) {
                entry.count = entry.count.saturating_sub(1);
                if entry.count <= policy.free {
                    entry.blocked_until = None;
                }
            }
        });
    }

    /// Counts a failure; past the free ones, starts a delay that doubles each time.
    pub fn record_failure(&self, key: &str, policy: FailurePolicy) {
        let now = Instant::now();
        self.with_entries(|entries| count_failure(entries, key, policy, now));
    }

    pub fn clear(&self, key: &str) {
        self.with_entries(|entries| {
            entries.remove(key);
        });
    }

    /// Counts an event in a fixed window; `Err(wait)` when the window is full.
    pub fn hit(&self, key: &str, policy: WindowPolicy) -> Result<(), Duration> {
        let now = Instant::now();
        self.with_entries(|entries| {
            let entry = entries.entry(key.to_owned()).or_insert(Entry {
                count: 0,
                since: now,
                blocked_until: None,
            });
            if now.duration_since(entry.since) >= policy.window {
                entry.count = 0;
                entry.since = now;
            }
            if entry.count >= policy.limit {
                return Err(policy
                    .window
                    .saturating_sub(now.duration_since(entry.since)));
            }
            entry.count += 1;
            Ok(())
        })
    }
}

fn count_failure(
    entries: &mut HashMap<String, Entry>,
    key: &str,
    policy: FailurePolicy,
    now: Instant,
) {
    let entry = entries.entry(key.to_owned()).or_insert(Entry {
        count: 0,
        since: now,
        blocked_until: None,
    });
    if now.duration_since(entry.since) > FORGET_AFTER {
        entry.count = 0;
    }
    entry.count += 1;
    entry.since = now;
    if entry.count > policy.free {
        let doublings = (entry.count - policy.free - 1).min(20);
        let delay = Duration::from_secs(1u64 << doublings).min(policy.cap);
        entry.blocked_until = Some(now + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_failures_and_double() {
        let limiter = RateLimiter::default();
        let policy = FailurePolicy {
            free: 3,
            cap: Duration::from_secs(60),
        };
        for _ in 0..3 {
            assert!(limiter.check("k").is_ok());
            limiter.record_failure("k", policy);
        }
        assert!(limiter.check("k").is_ok(), "three failures are free");
        limiter.record_failure("k", policy);
        let first = limiter.check("k").unwrap_err();
        assert!(first <= Duration::from_secs(1) && first > Duration::ZERO);
        limiter.record_failure("k", policy);
        let second = limiter.check("k").unwrap_err();
        assert!(second > Duration::from_secs(1) && second <= Duration::from_secs(2));
        for _ in 0..30 {
            limiter.record_failure("k", policy);
        }
        assert!(
            limiter.check("k").unwrap_err() <= Duration::from_secs(60),
            "capped"
        );
        assert!(limiter.check("other").is_ok(), "keys are separate");
        limiter.clear("k");
        assert!(limiter.check("k").is_ok());
    }

    #[test]
    fn attempts_started_together_are_counted_before_any_finishes() {
        let limiter = RateLimiter::default();
        let policy = FailurePolicy {
            free: 5,
            cap: Duration::from_secs(60),
        };
        // Fifteen attempts start before any of them ends: only the free ones and the one that
        // starts the delay get through.
        let admitted = (0..15)
            .filter(|_| limiter.reserve_attempt("k", policy).is_ok())
            .count();
        assert_eq!(admitted, 6);
        // One of them succeeds: its slot is given back, and with it the delay if no more
        // failures than the free ones remain.
        limiter.refund("k", policy);
        assert!(
            limiter.reserve_attempt("k", policy).is_ok(),
            "five failures counted"
        );
        assert!(
            limiter.reserve_attempt("k", policy).is_err(),
            "and a delay again"
        );
        limiter.clear("k");
        assert!(limiter.reserve_attempt("k", policy).is_ok());
    }

    #[test]
    fn windows_allow_the_limit_then_refuse() {
        let limiter = RateLimiter::default();
        let policy = WindowPolicy {
            limit: 2,
            window: Duration::from_secs(60),
        };
        assert!(limiter.hit("ip", policy).is_ok());
        assert!(limiter.hit("ip", policy).is_ok());
        let wait = limiter.hit("ip", policy).unwrap_err();
        assert!(wait > Duration::from_secs(50));
        assert!(limiter.hit("other ip", policy).is_ok());
    }
}
