//! How the agent runs commands: through a [`CommandRunner`] services implement with the sandbox.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandStatus {
    /// It ran to its end with this exit code (`None` when a signal ended it).
    Exited {
        /// The exit code.
        code: Option<i32>,
    },
    /// The runner refused it (sandbox unavailable, limits); it did not run.
    Denied {
        /// Why, for the model and the person.
        reason: String,
    },
    /// It ran longer than its timeout and was stopped.
    TimedOut,
    /// It was stopped before its end (cancel, shutdown), or the agent was interrupted while it
    /// ran and its result is unknown.
    Interrupted,
}

/// What one command did: the evidence of the change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// How it ended.
    pub status: CommandStatus,
    /// How long it ran, in milliseconds.
    pub duration_milliseconds: u64,
    /// Its output (stdout and stderr interleaved), uncapped: the agent caps it.
    pub output: String,
}

impl CommandOutcome {
    /// Whether it exited with code 0.
    pub fn succeeded(&self) -> bool {
        self.status == CommandStatus::Exited { code: Some(0) }
    }
}

/// Runs a command in the task's worktree. Services implement it with the sandboxed runner.
#[async_trait]
pub trait CommandRunner: Send + Sync {
    /// Runs `command` (a shell command line) in the worktree's root, stopped after `timeout`.
    /// A refusal or a timeout is an outcome, not an error; an error is a failure of the runner.
    async fn run(&self, command: &str, timeout: Duration) -> Result<CommandOutcome>;
}
