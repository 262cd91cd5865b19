//! Queries, one module per aggregate, each an `impl Database` block. Every query that reads a
//! user's data takes the owner's id and filters on it.

mod access_tokens;
pub mod agent_tasks;
mod audit;
mod chat;
mod credentials;
pub mod files;
mod plan_counters;
mod project_commands;
mod projects;
mod rate_limits;
pub mod runs;
mod server_settings;
mod sessions;
mod usage;
mod users;

pub use audit::NewAuditEntry;
pub use chat::{ConversationEntry, ConversationTotals, ModeFields, NewMessage};
pub use credentials::NewCredential;
pub use files::{
    Authorship, ChangeEntry, FileBody, FileEntry, RevisionEntry, SaveOutcome, Tree, TreeConflict,
};
pub use plan_counters::Reservation;
pub use projects::ProjectFields;
pub use rate_limits::RateLimitState;
pub use runs::{Heartbeat, RunLease, RunListener, RunNotice, RunSignal};
pub use usage::{NewUsage, UsageOutcome, UsageTotals};
pub use users::NewUser;
