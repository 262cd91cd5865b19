//! Tier limits, in one place: what a visitor (public), a free, premium or enterprise account may
//! do. Features call [`TierPolicy::check`] before doing work. The limits are configuration
//! (`data/tiers.toml` built in, or a file given to the server).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use db::tables::users::Tier;
use serde::Deserialize;

use crate::Error;

const DEFAULT_TIERS: &str = include_str!("../data/tiers.toml");

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    pub requests_per_day: Option<u64>,
    pub tokens_per_month: Option<u64>,
    #[serde(default)]
    pub modes: Vec<String>,
    pub max_projects: Option<u64>,
    /// Project commands running at once (0: none may run).
    pub concurrent_runs: Option<u64>,
    /// The longest a project command may run, in seconds (the server's own maximum applies too).
    pub run_timeout_seconds: Option<u64>,
    /// Seconds of project commands per day (UTC), reserved as each run's timeout when it
    /// starts and given back for what it did not use.
    pub run_seconds_per_day: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierPolicy {
    tiers: HashMap<String, TierLimits>,
}

/// Work a feature is about to do, with what the caller has used so far.
#[derive(Clone, Debug)]
pub enum Work<'a> {
    /// One AI request in a mode; `requests_today` already made.
    AiRequest {
        mode: &'a str,
        requests_today: u64,
        tokens_this_month: u64,
    },
    /// A new project, with `existing` projects owned.
    CreateProject { existing: u64 },
}

/// The plan counter of the requests made on `now`'s day (UTC).
pub fn requests_counter(now: DateTime<Utc>) -> String {
    format!("requests:{}", now.format("%Y-%m-%d"))
}

/// The plan counter of the project commands running now (one per user, not per period).
pub const ACTIVE_RUNS_COUNTER: &str = "runs:active";

/// The plan counter of the seconds of project commands reserved on `now`'s day (UTC).
pub fn run_seconds_counter(now: DateTime<Utc>) -> String {
    format!("run_seconds:{}", now.format("%Y-%m-%d"))
}

/// The plan counter of the tokens used in `now`'s month (UTC).
pub fn tokens_counter(now: DateTime<Utc>) -> String {
    format!("tokens:{}", now.format("%Y-%m"))
}

fn tier_name(tier: Option<Tier>) -> &'static str {
    match tier {
        None => "public",
        Some(Tier::Free) => "free",
        Some(Tier::Premium) => "premium",
        Some(Tier::Enterprise) => "enterprise",
    }
}

impl TierPolicy {
    /// The built-in limits.
    pub fn builtin() -> Result<Self, Error> {
        Self::parse(DEFAULT_TIERS)
    }

    /// No tier may do anything limited (every limit zero, no modes).
    pub fn empty() -> Self {
        let closed = TierLimits {
            requests_per_day: Some(0),
            tokens_per_month: Some(0),
            modes: Vec::new(),
            max_projects: Some(0),
            concurrent_runs: Some(0),
            run_timeout_seconds: Some(0),
            run_seconds_per_day: Some(0),
        };
        let tiers = ["public", "free", "premium", "enterprise"]
            .into_iter()
            .map(|name| (name.to_owned(), closed.clone()))
            .collect();
        Self { tiers }
    }

    /// Parses a tiers file; every tier must be present.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let tiers: HashMap<String, TierLimits> = toml::from_str(text)
            .map_err(|error| Error::Internal(format!("the tiers file is invalid: {error}")))?;
        for name in ["public", "free", "premium", "enterprise"] {
            if !tiers.contains_key(name) {
                return Err(Error::Internal(format!(
                    "the tiers file has no [{name}] section"
                )));
            }
        }
        Ok(Self { tiers })
    }

    pub fn limits(&self, tier: Option<Tier>) -> TierLimits {
        self.tiers.get(tier_name(tier)).cloned().unwrap_or_default()
    }

    /// Whether `tier` includes `mode`.
    pub fn check_mode(&self, tier: Option<Tier>, mode: &str) -> Result<(), Error> {
        self.check(
            tier,
            &Work::AiRequest {
                mode,
                requests_today: 0,
                tokens_this_month: 0,
            },
        )
    }

    /// The refusal when the day's requests are used up.
    pub fn daily_requests_used_up(&self, tier: Option<Tier>) -> Error {
        Error::LimitReached(format!(
            "The {} plan's daily AI requests are used up; they renew tomorrow.",
            tier_name(tier)
        ))
    }

    /// The refusal when the month's tokens are used up.
    pub fn monthly_tokens_used_up(&self, tier: Option<Tier>) -> Error {
        Error::LimitReached(format!(
            "The {} plan's tokens for this month are used up.",
            tier_name(tier)
        ))
    }

    /// `Ok` when `tier` (`None` for a visitor) may do `work`; otherwise a message that says which
    /// limit was reached.
    pub fn check(&self, tier: Option<Tier>, work: &Work<'_>) -> Result<(), Error> {
        let limits = self.limits(tier);
        let name = tier_name(tier);
        match work {
            Work::AiRequest {
                mode,
                requests_today,
                tokens_this_month,
            } => {
                if !limits
                    .modes
                    .iter()
                    .any(|allowed| allowed == "*" || allowed == mode)
                {
                    return Err(Error::LimitReached(format!(
                        "The {mode} mode is not part of the {name} plan."
                    )));
                }
                if limits
                    .requests_per_day
                    .is_some_and(|limit| *requests_today >= limit)
                {
                    return Err(self.daily_requests_used_up(tier));
                }
                if limits
                    .tokens_per_month
                    .is_some_and(|limit| *tokens_this_month >= limit)
                {
                    return Err(self.monthly_tokens_used_up(tier));
                }
                Ok(())
            }
            Work::CreateProject { existing } => {
                if limits.max_projects.is_some_and(|limit| *existing >= limit) {
                    return Err(Error::LimitReached(format!(
                        "The {name} plan allows {} projects.",
                        limits.max_projects.unwrap_or_default()
                    )));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_limits_apply_per_tier() {
        let policy = TierPolicy::builtin().unwrap();
        let chat = |requests_today| Work::AiRequest {
            mode: "chat",
            requests_today,
            tokens_this_month: 0,
        };
        assert!(policy.check(None, &chat(0)).is_err(), "visitors get no AI");
        assert!(policy.check(Some(Tier::Free), &chat(0)).is_ok());
        assert!(
            policy
                .check(Some(Tier::Free), &chat(100))
                .unwrap_err()
                .to_string()
                .contains("daily")
        );
        let architect = Work::AiRequest {
            mode: "architect",
            requests_today: 0,
            tokens_this_month: 0,
        };
        assert!(
            policy
                .check(Some(Tier::Free), &architect)
                .unwrap_err()
                .to_string()
                .contains("architect")
        );
        assert!(policy.check(Some(Tier::Premium), &architect).is_ok());
        assert!(
            policy
                .check(Some(Tier::Enterprise), &chat(1_000_000))
                .is_ok(),
            "no limit"
        );
        assert!(
            policy
                .check(Some(Tier::Free), &Work::CreateProject { existing: 3 })
                .is_err()
        );
        assert!(
            policy
                .check(Some(Tier::Free), &Work::CreateProject { existing: 2 })
                .is_ok()
        );
        let tokens = Work::AiRequest {
            mode: "chat",
            requests_today: 0,
            tokens_this_month: 1_000_000,
        };
        assert!(
            policy
                .check(Some(Tier::Free), &tokens)
                .unwrap_err()
                .to_string()
                .contains("tokens")
        );
    }

    #[test]
    fn a_tiers_file_is_checked() {
        assert!(
            TierPolicy::parse("[free]\nmodes = [\"*\"]").is_err(),
            "missing tiers"
        );
        assert!(
            TierPolicy::parse("[public]\nbogus = 1\n[free]\n[premium]\n[enterprise]").is_err(),
            "unknown keys"
        );
        let custom =
            TierPolicy::parse("[public]\n[free]\nmax_projects = 1\n[premium]\n[enterprise]")
                .unwrap();
        assert_eq!(custom.limits(Some(Tier::Free)).max_projects, Some(1));
    }
}
