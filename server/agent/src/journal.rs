//! The task's durable record. Every model response is saved when received and every tool call
//! recorded started and done, each under an idempotency key, so that a fresh loop rebuilds the
//! task from it and goes on without asking for a saved response again or applying an edit twice.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::ModelResponse;
use crate::stuck::StuckReason;
use crate::tools::{PlanItem, ToolStatus};

/// A file a mutating tool call changes: recorded before the change, checked on resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEffect {
    /// The file.
    pub path: String,
    /// The hash ([`crate::content_hash`]) of its content before, `None` when it did not exist.
    pub before_hash: Option<String>,
    /// Its content after, `None` when it is deleted.
    pub after: Option<String>,
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    /// Model calls.
    Steps,
    /// Input and output tokens.
    Tokens,
    /// Cost in micro-dollars.
    Cost,
    /// Wall-clock time.
    WallTime,
}

/// Why a task paused (it waits for the person: `needs input`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PauseReason {
    /// A budget ran out; continue with more budget.
    Budget {
        /// Which.
        which: BudgetKind,
    },
    /// The agent repeats itself.
    Stuck {
        /// How.
        reason: StuckReason,
        /// The steps that tripped it.
        steps: Vec<u64>,
    },
    /// The person asked for a pause.
    Requested,
    /// Every model failed, several times.
    ModelFailed {
        /// The last failure.
        message: String,
    },
}

/// One record of the journal, in the order they happened. A task has finished when the
/// `finish` tool's call is done (its content is the summary) and no user message follows.
///
/// Only the loop appends, except user messages (follow-ups), which any instance may append at
/// any time: replayed, a user message that came while tool calls waited for their results comes
/// after those results, and one the model did not see comes after its response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// The task's instructions (the first entry) or a follow-up instruction.
    UserMessage {
        /// The text.
        text: String,
    },
    /// The model's response for a step, saved as soon as it was received.
    ModelResponse {
        /// The step (model call) number, from 1.
        step: u64,
        /// The response.
        response: ModelResponse,
        /// How many entries of the journal the request was built from. A user message
        /// appended after them (while the model answered, by a request the loop heard of
        /// later) was not seen by the model: it comes after this response and its tool results.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context_entries: Option<usize>,
    },
    /// A tool call began. For an edit, what it will change (with the files' hashes before).
    ToolStarted {
        /// The step whose response made the call.
        step: u64,
        /// The call's id.
        call_id: String,
        /// The tool.
        name: String,
        /// The files it changes (empty for tools that change none).
        effects: Vec<FileEffect>,
        /// The result the model gets once the effects are applied.
        planned_result: Option<String>,
    },
    /// A tool call ended; this is what the model was told.
    ToolDone {
        /// The step.
        step: u64,
        /// The call's id.
        call_id: String,
        /// The tool.
        name: String,
        /// How it ended.
        status: ToolStatus,
        /// What the model gets (capped).
        content: String,
        /// The plan after an `update_plan` call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<Vec<PlanItem>>,
        /// The command's outcome after a `run` call: the change set's evidence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<crate::runner::CommandOutcome>,
    },
    /// Old steps were summarised: the history before the last `kept_messages` messages is
    /// replaced by the summary.
    Compaction {
        /// The step before which it happened.
        step: u64,
        /// The summary.
        summary: String,
        /// How many of the latest messages were kept whole.
        kept_messages: usize,
    },
    /// The task paused.
    Paused {
        /// After this step.
        step: u64,
        /// Why.
        reason: PauseReason,
    },
    /// The person let a paused task go on.
    Resumed {
        /// A note for the model, if any.
        note: Option<String>,
    },
    /// The person cancelled the task.
    Cancelled {
        /// After this step.
        step: u64,
    },
}

/// Where a task's entries are kept. Services keep them in the database, in a transaction per
/// append with a unique index on (task, key).
#[async_trait]
pub trait Journal: Send + Sync {
    /// Every entry of the task, in the order appended.
    async fn entries(&self, task: &str) -> Result<Vec<Entry>>;
    /// Appends `entry` under the idempotency key `key` (unique per task). Returns `false` and
    /// appends nothing when an entry with that key exists already.
    async fn append(&self, task: &str, key: &str, entry: Entry) -> Result<bool>;
}

/// A task's entries and the keys they were appended under.
type TaskEntries = (Vec<Entry>, HashSet<String>);

/// A journal in memory, for tests and single-process use.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    tasks: Mutex<HashMap<String, TaskEntries>>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TaskEntries>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn entries(&self, task: &str) -> Result<Vec<Entry>> {
        Ok(self
            .lock()
            .get(task)
            .map(|(entries, _)| entries.clone())
            .unwrap_or_default())
    }

    async fn append(&self, task: &str, key: &str, entry: Entry) -> Result<bool> {
        let mut tasks = self.lock();
        let (entries, keys) = tasks.entry(task.to_owned()).or_default();
        if !keys.insert(key.to_owned()) {
            return Ok(false);
        }
        entries.push(entry);
        Ok(true)
    }
}
