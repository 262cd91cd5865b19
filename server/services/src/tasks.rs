//! Async agent tasks: the `agent` crate's loop run as a durable run of kind [`AGENT_TASK_RUN`].
//!
//! - A task belongs to its project's owner and needs a plan that includes the `async` mode.
//! - Its worktree (`<worktrees>/tasks/<task id>/`) is written from the project's files at the
//!   task's start: that base (paths, file ids, versions, contents) is stored with the task, so
//!   the change set is always the difference between the base and the worktree, and any
//!   instance can rebuild the worktree (the base, then every file effect of the journal).
//! - The journal and the budget are in the database ([`DatabaseJournal`], [`DatabaseBudget`]):
//!   an instance that claims the run of a task whose instance died resumes it from its journal.
//! - Cancel and pause are written to the task's row; the instance running it watches the row and
//!   tells the loop (so they work whichever instance the request reached). A cancel of a task no
//!   loop runs (paused, or its instance died) is written to its journal too.
//! - A follow-up to a running task is appended to its journal under the request's key (once);
//!   the instance running it watches the journal and its loop reads it at the next step
//!   boundary, after the tool results it waits for. A loop that ended meanwhile is started again.
//! - Every tool action is audited (`agent.tool`); every model call writes an `api_usage` row.
//! - Accepting hunks writes new revisions (source `agent`), never overwriting: a file changed
//!   since the base is merged in three ways, and a hunk that overlaps that change is reported as
//!   a conflict and not written.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent::changeset::{self, FileChange};
use agent::{
    Agent, AgentConfig, Budget, BudgetKind, CommandOutcome, CommandRunner, CommandStatus, Control,
    DirectoryWorkspace, Entry, Failpoint, FailpointHook, Journal, Model, ModelResponse, Outcome,
    PauseReason, TaskState, TaskStatus, Workspace,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use db::ids::{AgentTaskId, FileId, ProjectId};
use db::queries::agent_tasks::{
    NewAgentTask, StepReservation, TaskLimit, TaskLimits, TaskStateChange,
};
use db::queries::runs::NewRun;
use db::tables::agent_tasks::{self, TaskState as StoredState};
use db::tables::file_revisions::RevisionSource;
use db::tables::runs::RunState;
use db::{Authorship, FileBody, NewAuditEntry, SaveOutcome};
use serde::{Deserialize, Serialize};

use crate::runs::{RunError, RunEvent, RunWriter};
use crate::{AuthenticatedUser, Error, RequestMeta, Services};

/// The kind of the runs that carry agent tasks.
pub const AGENT_TASK_RUN: &str = "agent_task";
/// The mode a plan must include for async tasks.
pub const ASYNC_MODE: &str = "async";
/// The longest instructions or follow-up accepted, in bytes.
pub const MAX_INSTRUCTIONS_BYTES: usize = 64 * 1024;
/// How often the instance running a task looks at its row (cancel, pause).
const WATCH_INTERVAL: Duration = Duration::from_millis(200);
/// The budget a task gets unless the request says otherwise.
pub const DEFAULT_LIMITS: TaskLimits = TaskLimits {
    steps: Some(50),
    tokens: Some(2_000_000),
    cost_micros: Some(5_000_000),
    wall_time_seconds: Some(2 * 60 * 60),
};

/// The event of an agent task's run: the lease is what matters; the timeline is the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRunEvent {
    pub state: String,
}

impl RunEvent for TaskRunEvent {
    fn kind(&self) -> &str {
        "state"
    }
}

/// The tasks this instance runs now, with their controls.
#[derive(Default)]
pub struct LiveTasks {
    running: Mutex<HashMap<AgentTaskId, Control>>,
    /// Called at each step boundary of every task run here: tests stop an instance at one to
    /// play `kill -9` there, benches time the steps. None in the server.
    failpoints: Option<TaskFailpointHook>,
}

/// Called with the task, the boundary and the step; `true` stops the task's loop there.
pub type TaskFailpointHook = Arc<dyn Fn(AgentTaskId, Failpoint, u64) -> bool + Send + Sync>;

impl std::fmt::Debug for LiveTasks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LiveTasks")
            .field("running", &self.count())
            .field("failpoints", &self.failpoints.is_some())
            .finish()
    }
}

impl LiveTasks {
    /// No task yet, and `hook` called at each step boundary of the tasks run here.
    pub fn with_failpoints(hook: TaskFailpointHook) -> Self {
        Self {
            running: Mutex::default(),
            failpoints: Some(hook),
        }
    }

    fn control(&self, task: AgentTaskId) -> Option<Control> {
        self.lock().get(&task).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AgentTaskId, Control>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many tasks run here now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// A new task, as asked.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewTask {
    pub project_id: ProjectId,
    pub instructions: String,
    pub title: Option<String>,
    /// The models to ask, in order (the mode's list when empty).
    #[serde(default)]
    pub models: Vec<String>,
    pub max_steps: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost_micros: Option<u64>,
    pub max_wall_time_seconds: Option<u64>,
}

/// A task in the list.
#[derive(Clone, Debug, Serialize)]
pub struct TaskSummary {
    pub id: AgentTaskId,
    pub project_id: ProjectId,
    pub title: String,
    pub state: &'static str,
    pub pause_reason: Option<PauseReason>,
    pub summary: Option<String>,
    pub steps: i64,
    pub tokens: i64,
    pub cost_micros: i64,
    pub limits: LimitsView,
    pub created_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A task's limits on the wire.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LimitsView {
    pub max_steps: Option<i64>,
    pub max_tokens: Option<i64>,
    pub max_cost_micros: Option<i64>,
    pub max_wall_time_seconds: Option<i64>,
}

/// One entry of the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineEntry {
    pub seq: i64,
    pub entry: Entry,
}

/// The task page: the summary, the plan, the evidence and the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: TaskSummary,
    pub instructions: String,
    pub plan: Vec<agent::PlanItem>,
    pub commands: Vec<(String, CommandOutcome)>,
    pub timeline: Vec<TimelineEntry>,
}

/// What the person decided for one file of the change set.
#[derive(Clone, Debug, Deserialize)]
pub struct FileDecision {
    pub path: String,
    /// One flag per hunk, in order (ignored when `content` is given).
    #[serde(default)]
    pub accepted: Vec<bool>,
    /// The person's edited text of the whole file: it replaces the accepted hunks (every hunk
    /// of the file counts as decided). Saved as is when the file did not change since the base;
    /// merged in three ways (base to this text, onto the file now) when it did.
    #[serde(default)]
    pub content: Option<String>,
}

/// What applying a change set did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyReport {
    /// Files written (new revisions) or deleted.
    pub applied: Vec<String>,
    /// Files not written: the hunks (indexes) that conflict with a change made since the base.
    pub conflicts: Vec<ConflictReport>,
}

/// A file not written because of a conflict.
#[derive(Clone, Debug, Serialize)]
pub struct ConflictReport {
    /// The file.
    pub path: String,
    /// The hunks that conflict: the change set's, or, for a file the person edited, those of
    /// the difference between the base and their text.
    pub hunks: Vec<usize>,
}

/// The files a task started from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Base {
    files: BTreeMap<String, BaseFile>,
    /// The models asked for, in order (the user's default otherwise).
    #[serde(default)]
    models: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct BaseFile {
    file_id: FileId,
    version: i64,
    content: String,
}

fn internal(context: &str, error: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{context}: {error}"))
}

fn agent_error(error: agent::Error) -> Error {
    internal("agent", error)
}

fn state_name(state: StoredState) -> &'static str {
    state.name()
}

fn summary_of(task: &agent_tasks::Model) -> TaskSummary {
    TaskSummary {
        id: task.id,
        project_id: task.project_id,
        title: task.title.clone(),
        state: state_name(task.state),
        pause_reason: task
            .pause_reason
            .as_deref()
            .and_then(|reason| serde_json::from_str(reason).ok()),
        summary: task.summary.clone(),
        steps: task.steps_used,
        tokens: task.tokens_used,
        cost_micros: task.cost_used_micros,
        limits: LimitsView {
            max_steps: task.step_limit,
            max_tokens: task.token_limit,
            max_cost_micros: task.cost_limit_micros,
            max_wall_time_seconds: task.wall_time_limit_seconds,
        },
        created_at: task.created_at,
        last_activity_at: task.updated_at,
        ended_at: task.ended_at,
    }
}

fn title_from(instructions: &str) -> String {
    let line = instructions.lines().next().unwrap_or("").trim();
    let mut title: String = line.chars().take(80).collect();
    if title.is_empty() {
        title = "Task".to_owned();
    }
    title
}

/// The journal in the database.
pub struct DatabaseJournal {
    database: db::Database,
}

fn task_id(task: &str) -> agent::Result<AgentTaskId> {
    task.parse()
        .map_err(|_| agent::Error::Journal(format!("not a task id: {task}")))
}

#[async_trait]
impl Journal for DatabaseJournal {
    async fn entries(&self, task: &str) -> agent::Result<Vec<Entry>> {
        let rows = self
            .database
            .agent_journal(task_id(task)?)
            .await
            .map_err(|error| agent::Error::Journal(error.to_string()))?;
        rows.iter()
            .map(|row| {
                serde_json::from_str(row).map_err(|error| agent::Error::Journal(error.to_string()))
            })
            .collect()
    }

    async fn append(&self, task: &str, key: &str, entry: Entry) -> agent::Result<bool> {
        let text = serde_json::to_string(&entry)
            .map_err(|error| agent::Error::Journal(error.to_string()))?;
        self.database
            .append_agent_journal(task_id(task)?, key, &text)
            .await
            .map_err(|error| agent::Error::Journal(error.to_string()))
    }
}

/// The budget in the database, with the user's plan above it.
pub struct DatabaseBudget {
    services: Services,
    user: AuthenticatedUser,
}

#[async_trait]
impl Budget for DatabaseBudget {
    async fn reserve(&self, task: &str, step: u64) -> agent::Result<Option<BudgetKind>> {
        let id = task_id(task)?;
        let budget_error = |error: db::Error| agent::Error::Budget(error.to_string());
        let row = self
            .services
            .database
            .agent_task(id)
            .await
            .map_err(budget_error)?
            .ok_or_else(|| agent::Error::Budget("the task is gone".into()))?;
        // The plan's daily requests, once per new step.
        let mut plan_reserved_at = None;
        if i64::try_from(step).unwrap_or(i64::MAX) > row.last_step {
            let now = Utc::now();
            match self.services.reserve_ai_request(&self.user).await {
                Ok(()) => plan_reserved_at = Some(now),
                Err(Error::LimitReached(_)) => return Ok(Some(BudgetKind::Steps)),
                Err(error) => return Err(agent::Error::Budget(error.to_string())),
            }
        }
        let reservation = self.services.database.reserve_agent_step(id, step).await;
        let refused = match reservation {
            Ok(StepReservation::Reserved) => return Ok(None),
            Ok(StepReservation::Exceeded(limit)) => Ok(Some(match limit {
                TaskLimit::Steps => BudgetKind::Steps,
                TaskLimit::Tokens => BudgetKind::Tokens,
                TaskLimit::Cost => BudgetKind::Cost,
                TaskLimit::WallTime => BudgetKind::WallTime,
            })),
            Ok(StepReservation::Missing) => Err(agent::Error::Budget("the task is gone".into())),
            Err(error) => Err(budget_error(error)),
        };
        // No model call follows: the plan's request is given back.
        if let Some(reserved_at) = plan_reserved_at {
            self.services
                .release_ai_request(&self.user, reserved_at)
                .await
                .map_err(|error| agent::Error::Budget(error.to_string()))?;
        }
        refused
    }

    async fn record(
        &self,
        task: &str,
        key: &str,
        usage: &llm::Usage,
        cost_micros: u64,
    ) -> agent::Result<()> {
        self.services
            .database
            .record_agent_usage(task_id(task)?, key, usage.total_tokens(), cost_micros)
            .await
            .map_err(|error| agent::Error::Budget(error.to_string()))?;
        Ok(())
    }
}

impl Services {
    /// Gives back the plan's request reserved (by [`Services::reserve_ai_request`]) at
    /// `reserved_at` for a model call that is not made.
    async fn release_ai_request(
        &self,
        user: &AuthenticatedUser,
        reserved_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        if self
            .tiers
            .limits(Some(user.tier))
            .requests_per_day
            .is_some()
        {
            self.database
                .release_on_plan_counter(user.id, &crate::policy::requests_counter(reserved_at), 1)
                .await?;
        }
        Ok(())
    }
}

/// The gateway model, writing an `api_usage` row per call.
struct UsageRecordingModel {
    inner: agent::GatewayModel,
    services: Services,
    user: AuthenticatedUser,
}

#[async_trait]
impl Model for UsageRecordingModel {
    async fn complete(
        &self,
        call_key: &str,
        request: &llm::Request,
    ) -> agent::Result<ModelResponse> {
        let response = self.inner.complete(call_key, request).await?;
        self.services.record_agent_call(
            &self.user,
            &response.provider,
            &response.model,
            response.usage,
            response.cost_micros,
        );
        Ok(response)
    }

    fn context_window(&self) -> Option<u64> {
        self.inner.context_window()
    }
}

/// Commands in the sandbox, in the task's worktree.
struct SandboxRunner {
    services: Services,
    root: PathBuf,
}

#[async_trait]
impl CommandRunner for SandboxRunner {
    async fn run(&self, command: &str, timeout: Duration) -> agent::Result<CommandOutcome> {
        let sandbox = match self.services.runner.sandbox() {
            Ok(sandbox) => sandbox,
            Err(_) => {
                let reason = self
                    .services
                    .runner
                    .status()
                    .reason
                    .clone()
                    .unwrap_or_else(|| "commands cannot run on this server".to_owned());
                return Ok(CommandOutcome {
                    status: CommandStatus::Denied { reason },
                    duration_milliseconds: 0,
                    output: String::new(),
                });
            }
        };
        let timeout = timeout.min(self.services.runner.settings().max_timeout);
        let mut spec = sandbox::CommandSpec::shell(command, &self.root);
        spec.read_only_paths = self.services.runner.settings().toolchains.clone();
        spec.env
            .push(("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()));
        spec.limits.timeout = timeout;
        spec.limits.cpu_seconds = timeout.as_secs().max(1);
        let mut handle = match sandbox.run(spec) {
            Ok(handle) => handle,
            Err(error) => {
                tracing::warn!(%error, "an agent's command could not start");
                return Ok(CommandOutcome {
                    status: CommandStatus::Denied {
                        reason: "the command could not start".to_owned(),
                    },
                    duration_milliseconds: 0,
                    output: String::new(),
                });
            }
        };
        let mut output = Vec::new();
        while let Some(event) = handle.next_event().await {
            if let sandbox::Event::Output { bytes, .. } = event {
                output.extend_from_slice(&bytes);
            }
        }
        let output = String::from_utf8_lossy(&output).into_owned();
        match handle.finish().await {
            Ok(result) => Ok(CommandOutcome {
                status: if result.timed_out {
                    CommandStatus::TimedOut
                } else if result.stopped {
                    CommandStatus::Interrupted
                } else {
                    CommandStatus::Exited {
                        code: result.exit_code,
                    }
                },
                duration_milliseconds: u64::try_from(result.duration.as_millis())
                    .unwrap_or(u64::MAX),
                output,
            }),
            Err(sandbox::Error::SandboxSetup(reason)) => Ok(CommandOutcome {
                status: CommandStatus::Denied { reason },
                duration_milliseconds: 0,
                output,
            }),
            Err(error) => Err(agent::Error::Io(error.to_string())),
        }
    }
}

/// Audits each tool action as the journal records its result.
struct AuditingJournal {
    inner: DatabaseJournal,
    services: Services,
    user: AuthenticatedUser,
}

#[async_trait]
impl Journal for AuditingJournal {
    async fn entries(&self, task: &str) -> agent::Result<Vec<Entry>> {
        self.inner.entries(task).await
    }

    async fn append(&self, task: &str, key: &str, entry: Entry) -> agent::Result<bool> {
        let audit = match &entry {
            Entry::ToolDone {
                step,
                call_id,
                name,
                status,
                content,
                command,
                ..
            } => Some(serde_json::json!({
                "task": task,
                "step": step,
                "call": call_id,
                "tool": name,
                "status": status,
                "command_status": command.as_ref().map(|outcome| &outcome.status),
                "result_bytes": content.len(),
            })),
            _ => None,
        };
        let appended = self.inner.append(task, key, entry).await?;
        if appended && let Some(detail) = audit {
            let entry = NewAuditEntry {
                actor_id: Some(self.user.id),
                action: "agent.tool",
                target_type: Some("agent_task"),
                target_id: Some(task.to_owned()),
                detail: Some(detail),
                ..NewAuditEntry::default()
            };
            if let Err(error) = self.services.audit(entry, &RequestMeta::default()).await {
                tracing::error!(%error, task, "an agent's tool action could not be audited");
            }
        }
        Ok(appended)
    }
}

impl Services {
    /// The task if `user` owns it; not found otherwise (another's task does not exist for them).
    async fn owned_task(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
    ) -> Result<agent_tasks::Model, Error> {
        self.database
            .agent_task_of(user.id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    fn task_root(&self, task: AgentTaskId) -> PathBuf {
        self.runner
            .worktrees()
            .folder()
            .join("tasks")
            .join(task.to_string())
    }

    /// Creates a task on one of the user's projects and starts it.
    pub async fn create_task(
        &self,
        user: &AuthenticatedUser,
        new: NewTask,
        meta: &RequestMeta,
    ) -> Result<TaskSummary, Error> {
        // Another user's project does not exist for them, whatever their plan.
        let project = self
            .database
            .find_project(user.id, new.project_id)
            .await?
            .ok_or(Error::NotFound)?;
        self.check_ai_mode(user, ASYNC_MODE)?;
        let instructions = new.instructions.trim().to_owned();
        if instructions.is_empty() {
            return Err(Error::Invalid("Say what the task is.".into()));
        }
        if instructions.len() > MAX_INSTRUCTIONS_BYTES {
            return Err(Error::Invalid("The instructions are too long.".into()));
        }
        // The models are routed now, so that a user without a provider hears it at once.
        self.agent_targets(user, &new.models).await?;
        let mut base = Base {
            models: new.models.clone(),
            ..Base::default()
        };
        for file in self.database.files_with_content(project.id).await? {
            if !file.is_binary {
                let content = file.content;
                base.files.insert(
                    file.path.clone(),
                    BaseFile {
                        file_id: file.id,
                        version: file.version,
                        content,
                    },
                );
            }
        }
        let limits = TaskLimits {
            steps: new.max_steps.or(DEFAULT_LIMITS.steps),
            tokens: new.max_tokens.or(DEFAULT_LIMITS.tokens),
            cost_micros: new.max_cost_micros.or(DEFAULT_LIMITS.cost_micros),
            wall_time_seconds: new
                .max_wall_time_seconds
                .or(DEFAULT_LIMITS.wall_time_seconds),
        };
        let title = new
            .title
            .map(|title| title.trim().chars().take(200).collect::<String>())
            .filter(|title| !title.is_empty())
            .unwrap_or_else(|| title_from(&instructions));
        let task = self
            .database
            .create_agent_task(NewAgentTask {
                project_id: project.id,
                owner_user_id: user.id,
                title,
                instructions: instructions.clone(),
                base: serde_json::to_string(&base).map_err(|error| internal("base", error))?,
                limits,
            })
            .await?;
        let journal = DatabaseJournal {
            database: self.database.clone(),
        };
        agent::start_task(&journal, &task.id.to_string(), &instructions)
            .await
            .map_err(agent_error)?;
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "agent.task.create",
                target_type: Some("agent_task"),
                target_id: Some(task.id.to_string()),
                detail: Some(serde_json::json!({ "project": project.id.to_string() })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        // The worktree exists before anything can read it (the loop, a change set).
        self.ensure_worktree(&task, &base).await?;
        self.start_task_run(task.id).await?;
        let task = self
            .database
            .agent_task(task.id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(summary_of(&task))
    }

    /// The user's tasks, newest first (of one project when given).
    pub async fn tasks(
        &self,
        user: &AuthenticatedUser,
        project: Option<ProjectId>,
    ) -> Result<Vec<TaskSummary>, Error> {
        Ok(self
            .database
            .agent_tasks_of(user.id, project)
            .await?
            .iter()
            .map(summary_of)
            .collect())
    }

    /// The task page: its journal replayed.
    pub async fn task(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
    ) -> Result<TaskDetail, Error> {
        let task = self.owned_task(user, id).await?;
        let timeline = self.task_events(user, id, 0).await?;
        let entries: Vec<Entry> = timeline.iter().map(|item| item.entry.clone()).collect();
        let state = TaskState::replay(&entries);
        Ok(TaskDetail {
            task: summary_of(&task),
            instructions: task.instructions.clone(),
            plan: state.plan,
            commands: state.commands,
            timeline,
        })
    }

    /// The task's journal entries numbered after `after` (for following it).
    pub async fn task_events(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
        after: i64,
    ) -> Result<Vec<TimelineEntry>, Error> {
        self.owned_task(user, id).await?;
        let rows = self.database.agent_journal_after(id, after, 500).await?;
        rows.into_iter()
            .map(|(seq, text)| {
                serde_json::from_str(&text)
                    .map(|entry| TimelineEntry { seq, entry })
                    .map_err(|error| internal("journal entry", error))
            })
            .collect()
    }

    /// The task's state now (for a follower to know when the timeline ends).
    pub async fn task_summary(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
    ) -> Result<TaskSummary, Error> {
        Ok(summary_of(&self.owned_task(user, id).await?))
    }

    /// Cancels a running or paused task.
    pub async fn cancel_task(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
        meta: &RequestMeta,
    ) -> Result<TaskSummary, Error> {
        let task = self.owned_task(user, id).await?;
        let changed = self
            .database
            .set_agent_task_state(
                id,
                TaskStateChange {
                    state: StoredState::Cancelled,
                    pause_reason: None,
                    summary: None,
                },
                &[StoredState::Running, StoredState::Paused],
            )
            .await?;
        if !changed {
            return Err(Error::Conflict("The task is not running or paused.".into()));
        }
        if let Some(control) = self.tasks.control(id) {
            control.cancel();
        } else if task.state == StoredState::Paused || !self.loop_is_live(&task).await? {
            // No loop will see the cancel and write it to the journal: the timeline must say
            // what the row says.
            self.journal_cancelled(id).await?;
        }
        self.audit_task(user, "agent.task.cancel", id, meta).await?;
        self.task_summary(user, id).await
    }

    /// Whether a loop runs the task: here, or on an instance whose lease on the task's run is
    /// still valid.
    async fn loop_is_live(&self, task: &agent_tasks::Model) -> Result<bool, Error> {
        if self.tasks.control(task.id).is_some() {
            return Ok(true);
        }
        let Some(run_id) = task.run_id else {
            return Ok(false);
        };
        let now = Utc::now();
        Ok(self.database.run(run_id).await?.is_some_and(|run| {
            !run.state.is_terminal()
                && run.lease_owner.is_some()
                && run.lease_expires_at.is_some_and(|expiry| expiry > now)
        }))
    }

    /// Writes the cancel of a task no loop runs to its journal, unless the journal ends cancelled
    /// already. The key is the one a loop would use at that point, so that a loop writing it at
    /// the same time writes it once.
    async fn journal_cancelled(&self, id: AgentTaskId) -> Result<(), Error> {
        let journal = DatabaseJournal {
            database: self.database.clone(),
        };
        let task = id.to_string();
        let state = TaskState::replay(&journal.entries(&task).await.map_err(agent_error)?);
        if state.status == TaskStatus::Cancelled {
            return Ok(());
        }
        journal
            .append(
                &task,
                &format!("cancelled-{}", state.entry_count),
                Entry::Cancelled {
                    step: state.last_step,
                },
            )
            .await
            .map_err(agent_error)?;
        Ok(())
    }

    /// Asks a running task to pause at its next step boundary.
    pub async fn pause_task(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
        meta: &RequestMeta,
    ) -> Result<TaskSummary, Error> {
        let task = self.owned_task(user, id).await?;
        if task.state != StoredState::Running {
            return Err(Error::Conflict("The task is not running.".into()));
        }
        let requested = serde_json::to_string(&PauseReason::Requested)
            .map_err(|error| internal("pause", error))?;
        // The running instance sees the reason on a running task and pauses the loop.
        self.database
            .set_agent_task_state(
                id,
                TaskStateChange {
                    state: StoredState::Running,
                    pause_reason: Some(requested),
                    summary: None,
                },
                &[StoredState::Running],
            )
            .await?;
        if let Some(control) = self.tasks.control(id) {
            control.pause();
        }
        self.audit_task(user, "agent.task.pause", id, meta).await?;
        self.task_summary(user, id).await
    }

    /// Lets a paused task go on, with new limits when given (continue with more budget).
    pub async fn resume_task(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
        limits: Option<TaskLimits>,
        key: &str,
        meta: &RequestMeta,
    ) -> Result<TaskSummary, Error> {
        // Another user's task does not exist for them, whatever their plan.
        let task = self.owned_task(user, id).await?;
        self.check_ai_mode(user, ASYNC_MODE)?;
        if task.state != StoredState::Paused {
            return Err(Error::Conflict("The task is not paused.".into()));
        }
        if let Some(limits) = limits {
            self.database.set_agent_task_limits(id, limits).await?;
        }
        let journal = DatabaseJournal {
            database: self.database.clone(),
        };
        agent::resume(&journal, &id.to_string(), key, None)
            .await
            .map_err(agent_error)?;
        self.restart_task(id, &[StoredState::Paused]).await?;
        self.audit_task(user, "agent.task.resume", id, meta).await?;
        self.task_summary(user, id).await
    }

    /// A follow-up instruction: to the running loop (through the journal, once per `key`,
    /// whichever instance runs it), or it starts the task again.
    pub async fn follow_up_task(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
        text: &str,
        key: &str,
        meta: &RequestMeta,
    ) -> Result<TaskSummary, Error> {
        // Another user's task does not exist for them, whatever their plan.
        let task = self.owned_task(user, id).await?;
        self.check_ai_mode(user, ASYNC_MODE)?;
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_INSTRUCTIONS_BYTES {
            return Err(Error::Invalid(
                "Write the follow-up (at most 64 KiB).".into(),
            ));
        }
        if task.state == StoredState::Running {
            // Durable first, once per key: the loop running the task (here, or on another
            // instance, whose watcher sees the entry) reads it at its next step boundary.
            let journal = DatabaseJournal {
                database: self.database.clone(),
            };
            agent::follow_up(&journal, &id.to_string(), key, text)
                .await
                .map_err(agent_error)?;
            if let Some(control) = self.tasks.control(id) {
                control.refresh();
            }
            // The loop may have ended just before the entry was written.
            self.continue_if_followed_up(id).await?;
        } else {
            let journal = DatabaseJournal {
                database: self.database.clone(),
            };
            agent::follow_up(&journal, &id.to_string(), key, text)
                .await
                .map_err(agent_error)?;
            self.restart_task(
                id,
                &[
                    StoredState::Paused,
                    StoredState::Finished,
                    StoredState::Cancelled,
                    StoredState::Failed,
                ],
            )
            .await?;
        }
        self.audit_task(user, "agent.task.follow_up", id, meta)
            .await?;
        self.task_summary(user, id).await
    }

    /// Starts the task again when it stopped (finished or paused) while a follow-up was being
    /// written to its journal: the journal then ends with that message. Called after a loop ends
    /// and after a follow-up is written to a running task, so that whichever comes second starts
    /// it (both may: the state's conditional update lets one).
    async fn continue_if_followed_up(&self, id: AgentTaskId) -> Result<(), Error> {
        let Some(task) = self.database.agent_task(id).await? else {
            return Ok(());
        };
        if !matches!(task.state, StoredState::Finished | StoredState::Paused) {
            return Ok(());
        }
        let journal = DatabaseJournal {
            database: self.database.clone(),
        };
        let state = TaskState::replay(
            &journal
                .entries(&id.to_string())
                .await
                .map_err(agent_error)?,
        );
        if state.status != TaskStatus::Running {
            return Ok(());
        }
        match self.restart_task(id, &[task.state]).await {
            // Another request or instance started it first.
            Ok(()) | Err(Error::Conflict(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The change set: the difference between the task's base and its worktree now.
    pub async fn task_change_set(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
    ) -> Result<Vec<FileChange>, Error> {
        let task = self.owned_task(user, id).await?;
        let base = base_of(&task)?;
        let root = self.ensure_worktree(&task, &base).await?;
        let workspace = DirectoryWorkspace::new(&root).map_err(agent_error)?;
        let now = changeset::snapshot(&workspace).await.map_err(agent_error)?;
        let before: BTreeMap<String, String> = base
            .files
            .iter()
            .map(|(path, file)| (path.clone(), file.content.clone()))
            .collect();
        Ok(changeset::diff(&before, &now))
    }

    /// Applies the accepted hunks as new revisions of the project's files. A file changed since
    /// the base is merged; accepted hunks overlapping that change are reported, and that file is
    /// not written.
    pub async fn apply_task_changes(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
        decisions: &[FileDecision],
        meta: &RequestMeta,
    ) -> Result<ApplyReport, Error> {
        let task = self.owned_task(user, id).await?;
        if task.state == StoredState::Running {
            return Err(Error::Conflict(
                "The task is still running; pause it or wait for it to finish.".into(),
            ));
        }
        let changes = self.task_change_set(user, id).await?;
        let base = base_of(&task)?;
        let mut report = ApplyReport::default();
        let authorship = Authorship {
            author: Some(user.id),
            source: RevisionSource::Agent,
        };
        for decision in decisions {
            let Some(change) = changes.iter().find(|change| change.path == decision.path) else {
                return Err(Error::Invalid(format!(
                    "{} is not in the change set.",
                    decision.path
                )));
            };
            if decision.content.is_none() && decision.accepted.len() != change.hunks.len() {
                return Err(Error::Invalid(format!(
                    "{} has {} hunks.",
                    decision.path,
                    change.hunks.len()
                )));
            }
            if decision.content.is_none() && !decision.accepted.iter().any(|accepted| *accepted) {
                continue;
            }
            let live = self
                .database
                .find_file_by_path(task.project_id, &change.path)
                .await?;
            let base_file = base.files.get(&change.path);
            let unchanged = match (base_file, &live) {
                (Some(base_file), Some(live)) => {
                    live.id == base_file.file_id && live.version == base_file.version
                }
                (None, None) => true,
                _ => false,
            };
            let live_text = live.as_ref().map(|file| file.content.clone());
            let merged = match &decision.content {
                // The person's text, as is.
                Some(edited) if unchanged => changeset::MergeResult {
                    content: Some(edited.clone()),
                    conflicts: Vec::new(),
                },
                // The person's text is a change of the base like the agent's: base to it, in
                // hunks, all accepted, merged onto the file now.
                Some(edited) => {
                    let base_text = change.base.clone();
                    let edit = FileChange {
                        path: change.path.clone(),
                        operation: if base_text.is_some() {
                            changeset::FileOperation::Modified
                        } else {
                            changeset::FileOperation::Added
                        },
                        hunks: changeset::hunks(base_text.as_deref().unwrap_or(""), edited),
                        base: base_text,
                        current: Some(edited.clone()),
                    };
                    let all = vec![true; edit.hunks.len()];
                    edit.merge_onto(&all, live_text.as_deref())
                }
                None if unchanged => changeset::MergeResult {
                    content: change.apply_accepted(&decision.accepted),
                    conflicts: Vec::new(),
                },
                None => change.merge_onto(&decision.accepted, live_text.as_deref()),
            };
            if !merged.conflicts.is_empty() {
                report.conflicts.push(ConflictReport {
                    path: change.path.clone(),
                    hunks: merged.conflicts,
                });
                continue;
            }
            let now = Utc::now();
            match (merged.content, live) {
                (Some(content), Some(live)) => {
                    if live.content == content {
                        continue;
                    }
                    match self
                        .database
                        .save_file(
                            task.project_id,
                            live.id,
                            live.version,
                            FileBody::Text(content),
                            authorship,
                            now,
                        )
                        .await?
                    {
                        Some(SaveOutcome::Saved(_)) => report.applied.push(change.path.clone()),
                        _ => report.conflicts.push(ConflictReport {
                            path: change.path.clone(),
                            hunks: (0..change.hunks.len()).collect(),
                        }),
                    }
                }
                (Some(content), None) => {
                    match self
                        .database
                        .create_file(
                            task.project_id,
                            &change.path,
                            FileBody::Text(content),
                            None,
                            authorship,
                            now,
                        )
                        .await?
                    {
                        Ok(_) => report.applied.push(change.path.clone()),
                        Err(_) => report.conflicts.push(ConflictReport {
                            path: change.path.clone(),
                            hunks: (0..change.hunks.len()).collect(),
                        }),
                    }
                }
                (None, Some(_)) => {
                    if self
                        .database
                        .delete_entry(task.project_id, &change.path, now)
                        .await?
                    {
                        report.applied.push(change.path.clone());
                    }
                }
                (None, None) => {}
            }
        }
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action: "agent.task.apply",
                target_type: Some("agent_task"),
                target_id: Some(id.to_string()),
                detail: Some(serde_json::json!({
                    "applied": report.applied,
                    "conflicts": report.conflicts.len(),
                })),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await?;
        Ok(report)
    }

    /// Sends rejected hunks (path, hunk index) and a comment back to the agent, which goes on.
    pub async fn reject_task_changes(
        &self,
        user: &AuthenticatedUser,
        id: AgentTaskId,
        rejected: &[(String, usize)],
        comment: &str,
        key: &str,
        meta: &RequestMeta,
    ) -> Result<TaskSummary, Error> {
        let task = self.owned_task(user, id).await?;
        if task.state == StoredState::Running {
            return Err(Error::Conflict("The task is still running.".into()));
        }
        let changes = self.task_change_set(user, id).await?;
        let text = changeset::rejection_message(&changes, rejected, comment.trim());
        self.follow_up_task(user, id, &text, key, meta).await
    }

    async fn audit_task(
        &self,
        user: &AuthenticatedUser,
        action: &'static str,
        id: AgentTaskId,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        self.audit(
            NewAuditEntry {
                actor_id: Some(user.id),
                action,
                target_type: Some("agent_task"),
                target_id: Some(id.to_string()),
                ..NewAuditEntry::default()
            },
            meta,
        )
        .await
    }

    /// Moves the task back to running (from one of `from`) and starts a run for it.
    async fn restart_task(&self, id: AgentTaskId, from: &[StoredState]) -> Result<(), Error> {
        let changed = self
            .database
            .set_agent_task_state(
                id,
                TaskStateChange {
                    state: StoredState::Running,
                    pause_reason: None,
                    summary: None,
                },
                from,
            )
            .await?;
        if !changed {
            return Err(Error::Conflict("The task changed meanwhile.".into()));
        }
        self.start_task_run(id).await
    }

    /// Creates the task's run, held here, and runs the loop in the background.
    async fn start_task_run(&self, id: AgentTaskId) -> Result<(), Error> {
        let task = self.database.agent_task(id).await?.ok_or(Error::NotFound)?;
        let writer = self
            .runs
            .start::<TaskRunEvent>(NewRun {
                kind: AGENT_TASK_RUN.to_owned(),
                owner_user_id: Some(task.owner_user_id),
                subject: Some(id.to_string()),
            })
            .await?;
        self.database
            .set_agent_task_run(id, writer.run_id())
            .await?;
        let services = self.clone();
        tokio::spawn(async move { services.drive_task(id, writer).await });
        Ok(())
    }

    /// Writes the worktree from the base and the journal's file effects when it is missing
    /// (a new task, or a task resumed on another instance).
    async fn ensure_worktree(
        &self,
        task: &agent_tasks::Model,
        base: &Base,
    ) -> Result<PathBuf, Error> {
        let root = self.task_root(task.id);
        if tokio::fs::try_exists(&root).await.unwrap_or(false) {
            return Ok(root);
        }
        let staging = root.with_extension("staging");
        if tokio::fs::try_exists(&staging).await.unwrap_or(false) {
            tokio::fs::remove_dir_all(&staging)
                .await
                .map_err(|error| internal("worktree", error))?;
        }
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|error| internal("worktree", error))?;
        let workspace = DirectoryWorkspace::new(&staging).map_err(agent_error)?;
        for (path, file) in &base.files {
            if agent::normalize_path(path).is_ok() {
                workspace
                    .write(path, &file.content)
                    .await
                    .map_err(agent_error)?;
            }
        }
        let journal = DatabaseJournal {
            database: self.database.clone(),
        };
        for entry in journal
            .entries(&task.id.to_string())
            .await
            .map_err(agent_error)?
        {
            if let Entry::ToolStarted { effects, .. } = entry {
                for effect in effects {
                    match effect.after {
                        Some(content) => workspace
                            .write(&effect.path, &content)
                            .await
                            .map_err(agent_error)?,
                        None => {
                            if let Err(error) = workspace.delete(&effect.path).await
                                && !matches!(error, agent::Error::NotFound(_))
                            {
                                return Err(agent_error(error));
                            }
                        }
                    }
                }
            }
        }
        tokio::fs::rename(&staging, &root)
            .await
            .map_err(|error| internal("worktree", error))?;
        Ok(root)
    }

    /// The user a task works for, as the loop needs them (their tier, their providers).
    async fn task_owner(&self, task: &agent_tasks::Model) -> Result<AuthenticatedUser, Error> {
        let user = self
            .database
            .find_user(task.owner_user_id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(AuthenticatedUser {
            id: user.id,
            session_id: None,
            email: user.email,
            name: user.name,
            role: user.role,
            tier: user.tier,
            token_scopes: None,
        })
    }

    /// Runs the task's loop while this instance holds its run; writes the outcome to its row.
    ///
    /// Boxed: a follow-up that came as the loop ended starts the task again from within it.
    fn drive_task(
        self,
        id: AgentTaskId,
        writer: RunWriter<TaskRunEvent>,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(self.drive_task_body(id, writer))
    }

    async fn drive_task_body(self, id: AgentTaskId, writer: RunWriter<TaskRunEvent>) {
        let control = Control::new();
        self.tasks.lock().insert(id, control.clone());
        let ending = self.drive_task_inner(id, &writer, &control).await;
        {
            let mut running = self.tasks.lock();
            // Only this loop's handle: a follow-up may have started the next loop already.
            if running
                .get(&id)
                .is_some_and(|current| current.same_as(&control))
            {
                running.remove(&id);
            }
        }
        let run_state = match ending {
            Ok(Some(state)) => {
                if let Err(error) = writer.push(TaskRunEvent {
                    state: state.name().to_owned(),
                }) {
                    tracing::warn!(%error, task = %id, "a task's end could not be written");
                }
                RunState::Finished
            }
            // The lease was lost: another instance has the task now.
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, task = %id, "an agent task failed");
                if let Err(error) = self
                    .database
                    .set_agent_task_state(
                        id,
                        TaskStateChange {
                            state: StoredState::Failed,
                            pause_reason: None,
                            summary: None,
                        },
                        &[StoredState::Running],
                    )
                    .await
                {
                    tracing::error!(%error, task = %id, "a failed task could not be marked");
                }
                RunState::Failed
            }
        };
        if let Err(error) = writer.finish(run_state).await {
            tracing::warn!(%error, task = %id, "a task's run could not be ended");
        }
        if let Err(error) = self.continue_if_followed_up(id).await {
            tracing::warn!(%error, task = %id, "a follow-up could not start the task again");
        }
    }

    async fn drive_task_inner(
        &self,
        id: AgentTaskId,
        writer: &RunWriter<TaskRunEvent>,
        control: &Control,
    ) -> Result<Option<StoredState>, Error> {
        let task = self.database.agent_task(id).await?.ok_or(Error::NotFound)?;
        if task.state == StoredState::Cancelled {
            // Cancelled while no loop ran it (its instance died): the journal says so too.
            self.journal_cancelled(id).await?;
        }
        if task.state != StoredState::Running {
            return Ok(Some(task.state));
        }
        let base = base_of(&task)?;
        let root = self.ensure_worktree(&task, &base).await?;
        let user = self.task_owner(&task).await?;
        let journal = Arc::new(AuditingJournal {
            inner: DatabaseJournal {
                database: self.database.clone(),
            },
            services: self.clone(),
            user: user.clone(),
        });
        let targets = self.agent_targets(&user, &base.models).await?;
        let model = Arc::new(UsageRecordingModel {
            inner: agent::GatewayModel::new(
                self.ai.gateway.clone(),
                targets,
                self.ai.catalog.clone(),
            ),
            services: self.clone(),
            user: user.clone(),
        });
        let config = AgentConfig::default();
        let runner_root = root.clone();
        let failpoints = self
            .tasks
            .failpoints
            .clone()
            .map(|hook| Arc::new(move |point, step| hook(id, point, step)) as FailpointHook);
        let agent = Agent {
            task: id.to_string(),
            workspace: Arc::new(DirectoryWorkspace::new(&root).map_err(agent_error)?),
            runner: Arc::new(SandboxRunner {
                services: self.clone(),
                root: runner_root,
            }),
            model,
            journal,
            budget: Arc::new(DatabaseBudget {
                services: self.clone(),
                user,
            }),
            control: control.clone(),
            config,
            failpoints,
        };
        let watcher = {
            let services = self.clone();
            let control = control.clone();
            tokio::spawn(async move { services.watch_task(id, control).await })
        };
        let outcome = tokio::select! {
            outcome = agent.run() => Some(outcome),
            () = writer.lost() => None,
        };
        watcher.abort();
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        let change = match outcome.map_err(agent_error)? {
            Outcome::Finished { summary } => TaskStateChange {
                state: StoredState::Finished,
                pause_reason: None,
                summary: Some(summary),
            },
            Outcome::Paused(reason) => TaskStateChange {
                state: StoredState::Paused,
                pause_reason: Some(
                    serde_json::to_string(&reason).map_err(|error| internal("pause", error))?,
                ),
                summary: None,
            },
            Outcome::Cancelled => TaskStateChange {
                state: StoredState::Cancelled,
                pause_reason: None,
                summary: None,
            },
        };
        let state = change.state;
        self.database
            .set_agent_task_state(id, change, &[StoredState::Running])
            .await?;
        Ok(Some(state))
    }

    /// Tells the loop about a cancel or a pause written to the task's row, and about follow-ups
    /// written to its journal (by any instance).
    async fn watch_task(self, id: AgentTaskId, control: Control) {
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        let mut seen = 0;
        loop {
            ticks.tick().await;
            match self.database.agent_journal_keys_after(id, seen).await {
                Ok(keys) => {
                    if keys.iter().any(|(_, key)| key.starts_with("message-")) {
                        control.refresh();
                    }
                    if let Some((last, _)) = keys.last() {
                        seen = *last;
                    }
                }
                Err(error) => tracing::warn!(%error, task = %id, "watching a task failed"),
            }
            match self.database.agent_task(id).await {
                Ok(Some(task)) if task.state == StoredState::Cancelled => {
                    control.cancel();
                    return;
                }
                Ok(Some(task))
                    if task.state == StoredState::Running && task.pause_reason.is_some() =>
                {
                    control.pause();
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    control.cancel();
                    return;
                }
                Err(error) => tracing::warn!(%error, task = %id, "watching a task failed"),
            }
        }
    }

    /// Claims the runs of tasks whose instance went away and resumes each from its journal.
    pub async fn recover_agent_tasks(&self) -> Result<usize, Error> {
        let services = self.clone();
        Ok(self
            .runs
            .recover::<TaskRunEvent, _, _>(AGENT_TASK_RUN, |writer| {
                let services = services.clone();
                async move {
                    let Some(id) = writer
                        .run()
                        .subject
                        .as_deref()
                        .and_then(|subject| subject.parse::<AgentTaskId>().ok())
                    else {
                        return writer.finish(RunState::Failed).await;
                    };
                    tracing::info!(task = %id, "resuming an agent task whose server went away");
                    tokio::spawn(async move { services.drive_task(id, writer).await });
                    Ok::<(), RunError>(())
                }
            })
            .await?)
    }

    /// Recovers abandoned tasks now and then every half lease, for as long as the process runs.
    pub async fn keep_recovering_agent_tasks(self) {
        let period = (self.runs.config().lease.lease / 2).max(Duration::from_millis(100));
        let mut rounds = tokio::time::interval(period);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            rounds.tick().await;
            if let Err(error) = self.recover_agent_tasks().await {
                tracing::warn!(%error, "recovering agent tasks failed");
            }
        }
    }
}

fn base_of(task: &agent_tasks::Model) -> Result<Base, Error> {
    serde_json::from_str(&task.base).map_err(|error| internal("task base", error))
}
