//! Async Coder's schema, as an ordered list of migrations that run unchanged on SQLite and Postgres.
//!
//! Rules for a new migration: add a file `mYYYYMMDD_NNNNNN_what.rs`, append it to
//! [`Migrator::migrations`], write a `down` that undoes exactly its `up`, and never edit a migration
//! that has landed. Foreign keys are declared inside `CREATE TABLE` because SQLite cannot add them later.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_accounts;
mod m20261127_000002_projects_and_files;
mod m20261127_000003_conversations;
mod m20261127_000004_usage_and_credentials;
mod m20261127_000005_audit_user_agent;
mod m20261127_000006_access_tokens;
mod m20261127_000007_file_tree;
mod m20261127_000008_file_tree_index;
mod m20261127_000009_usage_outcome;
mod m20261127_000010_chat;
mod m20261127_000011_context_choices;
mod m20261206_000012_reservations_scopes_key_check;
mod m20261207_000013_runs;
mod m20261207_000014_project_commands;
mod m20261208_000015_rate_limits;
mod m20261209_000016_run_stop_requests;
mod m20261209_000018_agent_tasks;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_accounts::Migration),
            Box::new(m20261127_000002_projects_and_files::Migration),
            Box::new(m20261127_000003_conversations::Migration),
            Box::new(m20261127_000004_usage_and_credentials::Migration),
            Box::new(m20261127_000005_audit_user_agent::Migration),
            Box::new(m20261127_000006_access_tokens::Migration),
            Box::new(m20261127_000007_file_tree::Migration),
            Box::new(m20261127_000008_file_tree_index::Migration),
            Box::new(m20261127_000009_usage_outcome::Migration),
            Box::new(m20261127_000010_chat::Migration),
            Box::new(m20261127_000011_context_choices::Migration),
            Box::new(m20261206_000012_reservations_scopes_key_check::Migration),
            Box::new(m20261207_000013_runs::Migration),
            Box::new(m20261207_000014_project_commands::Migration),
            Box::new(m20261208_000015_rate_limits::Migration),
            Box::new(m20261209_000016_run_stop_requests::Migration),
            Box::new(m20261209_000018_agent_tasks::Migration),
        ]
    }
}

/// Every table the migrations create, in creation order. Tests use it to check up and down.
pub const TABLES: &[&str] = &[
    "users",
    "sessions",
    "audit_log",
    "projects",
    "files",
    "file_revisions",
    "conversations",
    "messages",
    "api_usage",
    "provider_credentials",
    "access_tokens",
    "folders",
    "modes",
    "plan_counters",
    "server_settings",
    "runs",
    "run_events",
    "project_commands",
    "rate_limits",
    "agent_tasks",
    "agent_journal",
    "agent_usage",
];
