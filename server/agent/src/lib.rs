//! Async Coder's coding agent, knowing nothing of Leptos, axum or the database.
//!
//! - [`agent`]: the loop, durable through a [`Journal`]: a fresh loop resumes a task at any
//!   step boundary without asking a model twice or applying an edit twice.
//! - [`tools`]: the tools' JSON schemas and what they do; [`patch`]: the patch format.
//! - [`workspace`]: the [`Workspace`] trait (files, search, repo map) and a folder on disk no
//!   path can leave; [`runner`]: the [`CommandRunner`] trait.
//! - [`model`]: the [`Model`] trait and [`GatewayModel`] over `llm::Gateway`.
//! - [`budget`]: per-task budgets reserved before each model call; [`stuck`]: stuck detection.
//! - [`changeset`]: the change set (file operations with hunks), accepted per hunk, merged in
//!   three ways onto a file that changed since the base.
//! - [`cap`]: the cap of every tool result.

pub mod agent;
pub mod budget;
pub mod cap;
pub mod changeset;
pub mod error;
pub mod journal;
pub mod model;
pub mod patch;
pub mod prompt;
pub mod runner;
pub mod stuck;
pub mod timing;
pub mod tools;
pub mod workspace;

pub use agent::{
    Agent, AgentConfig, Control, DEFAULT_THINKING_BUDGET, Failpoint, FailpointHook, Outcome,
    TaskState, TaskStatus, follow_up, resume, start_task,
};
pub use budget::{Budget, BudgetLimits, MemoryBudget};
pub use cap::{OutputCap, cap_output};
pub use error::{Error, Result};
pub use journal::{BudgetKind, Entry, FileEffect, Journal, MemoryJournal, PauseReason};
pub use model::{FailedModel, GatewayModel, Model, ModelResponse};
pub use runner::{CommandOutcome, CommandRunner, CommandStatus};
pub use stuck::{StuckReason, StuckThresholds};
pub use tools::{PlanItem, PlanStatus, ToolStatus};
pub use workspace::{DirectoryWorkspace, GrepMatch, Workspace, content_hash, normalize_path};
