//! Async Coder's use cases: what the server functions call. Each checks its input, authorizes,
//! and goes through [`db::Database`]. Nothing here knows HTTP or Leptos: callers pass what they
//! know of the request in a [`RequestMeta`].

pub mod access_tokens;
pub mod accounts;
pub mod admin;
pub mod ai;
pub mod archives;
pub mod chat;
pub mod co_changes;
mod finish;
mod passwords;
pub mod paths;
pub mod policy;
pub mod project_context;
pub mod projects;
pub mod providers;
pub mod rate_limit;
pub mod runner;
pub mod runs;
pub mod secrets;
pub mod tasks;
mod tokens;
pub mod usage_writer;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Duration;

pub use accounts::{AuthenticatedUser, SessionToken};
pub use llm::Usage;
pub use secrecy::{ExposeSecret, SecretString};

/// The errors of the use cases. Their `Display` is safe to show a person, except `Internal`,
/// whose text is for the log only.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("An account with this email exists already. Sign in instead.")]
    EmailTaken,
    #[error("The email or the password is wrong, or the account is disabled.")]
    SignInFailed,
    #[error("Please sign in to continue.")]
    Unauthorized,
    #[error("That item does not exist.")]
    NotFound,
    #[error("You are not allowed to do that.")]
    Forbidden,
    /// The request clashes with what is stored (a path taken, ...); nothing changed.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    LimitReached(String),
    #[error("Too many attempts; try again in {} seconds.", retry_after.num_seconds().max(1))]
    RateLimited { retry_after: Duration },
    /// The user has no provider that can serve the request (the text says what to do).
    #[error("{0}")]
    NoProvider(String),
    /// A provider refused or failed; its `Display` says what the user can do.
    #[error("{0}")]
    Provider(#[from] llm::ProviderError),
    /// The server is at its capacity for this kind of work (password hashing); nothing was
    /// done, try again after `retry_after`.
    #[error("The server is busy; try again in {} seconds.", retry_after.num_seconds().max(1))]
    Busy { retry_after: Duration },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<db::Error> for Error {
    fn from(error: db::Error) -> Self {
        match error {
            db::Error::EmailTaken => Error::EmailTaken,
            other => Error::Internal(other.to_string()),
        }
    }
}

/// What the caller knows of the request a use case serves, for audit rows and rate limits.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// The client's address (the proxy's view already resolved by the server).
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// The client's address as the server resolved it (trusting `X-Forwarded-For` only from
/// configured proxies). The server puts it in each request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Session lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::days(7),
            absolute_timeout: Duration::days(30),
        }
    }
}

/// Everything the use cases share: the database, the policies and the rate limiter (in the
/// database, shared by every instance).
#[derive(Clone)]
pub struct Services {
    pub database: db::Database,
    pub sessions: SessionPolicy,
    pub limiter: Arc<rate_limit::RateLimiter>,
    pub master_key: Arc<secrets::MasterKey>,
    pub tiers: Arc<policy::TierPolicy>,
    pub projects: projects::ProjectLimits,
    /// Sign-ups allowed per client address and hour.
    pub sign_ups_per_address_per_hour: u32,
    /// The AI gateway, its model catalog and address rules.
    pub ai: ai::Ai,
    /// Personal access tokens recently found valid.
    pub token_cache: Arc<access_tokens::TokenCache>,
    /// Chat answers being generated now.
    pub live: Arc<chat::live::LiveAnswers>,
    /// Each project's context index (repo map, symbols), loaded on first use.
    pub context: Arc<project_context::ContextIndexes>,
    /// This instance's side of the runs: the leases it holds (answers it generates), the
    /// readers it wakes. Replace it (with [`runs::Runs::with_instance`]) to name the instance or
    /// change its lease settings.
    pub runs: runs::Runs,
    /// Running project commands, sandboxed (disabled until the server probes the sandbox).
    pub runner: Arc<runner::Runner>,
    /// The agent tasks this instance runs now.
    pub tasks: Arc<tasks::LiveTasks>,
}

impl Services {
    pub fn new(database: db::Database, master_key: secrets::MasterKey) -> Self {
        Self {
            sessions: SessionPolicy::default(),
            limiter: Arc::new(rate_limit::RateLimiter::new(database.clone())),
            master_key: Arc::new(master_key),
            tiers: Arc::new(policy::TierPolicy::builtin().unwrap_or_else(|error| {
                // The built-in file is part of the binary and covered by a test.
                tracing::error!(%error, "the built-in tiers are invalid; refusing all limited work");
                policy::TierPolicy::empty()
            })),
            projects: projects::ProjectLimits::default(),
            sign_ups_per_address_per_hour: accounts::DEFAULT_SIGN_UPS_PER_ADDRESS_PER_HOUR,
            ai: ai::Ai::default(),
            token_cache: Arc::default(),
            live: Arc::default(),
            context: Arc::default(),
            runs: runs::Runs::new(database.clone(), runs::RunsConfig::default()),
            runner: Arc::default(),
            tasks: Arc::default(),
            database,
        }
    }

    /// Saves context indexes under `directory` (else they live in memory and are rebuilt after
    /// a restart).
    pub fn with_context_directory(mut self, directory: std::path::PathBuf) -> Self {
        self.context = Arc::new(project_context::ContextIndexes::new(Some(directory)));
        self
    }
}
