//! SeaORM entities, one module per table. Entities stay inside the server: only `app::types`
//! crosses the wire.

pub mod access_tokens;
pub mod agent_journal;
pub mod agent_tasks;
pub mod agent_usage;
pub mod api_usage;
pub mod audit_log;
pub mod conversations;
pub mod file_revisions;
pub mod files;
pub mod folders;
pub mod messages;
pub mod modes;
pub mod plan_counters;
pub mod project_commands;
pub mod projects;
pub mod provider_credentials;
pub mod rate_limits;
pub mod run_events;
pub mod runs;
pub mod server_settings;
pub mod sessions;
pub mod users;
