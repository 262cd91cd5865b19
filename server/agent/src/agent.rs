//! The loop. Its state is rebuilt from the [`Journal`] at every start, so a fresh loop (another
//! instance, a restarted server) goes on from the last saved boundary: a saved model response is
//! never asked for again, an edit recorded as started is applied only when its files still hold
//! the content from before it, and a command that was running is reported as interrupted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::cap::{OutputCap, cap_output};
use crate::error::{Error, Result};
use crate::journal::{Entry, FileEffect, Journal, PauseReason};
use crate::model::{Model, ModelResponse};
use crate::prompt::{load_project_rules, system_prompt};
use crate::runner::{CommandOutcome, CommandRunner, CommandStatus};
use crate::stuck::{Observation, StuckThresholds, detect};
use crate::tools::{
    Action, EffectState, PlanItem, PlanStatus, ToolStatus, action_key, apply_effects, definitions,
    effect_state, names, prepare, run_read_only,
};
use crate::workspace::Workspace;

/// A step boundary, where a test's hook may stop the loop as a crash would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failpoint {
    /// Before a model is asked.
    BeforeModelCall,
    /// After its response was saved.
    AfterModelCall,
    /// Before a tool call is recorded as started.
    BeforeToolStart,
    /// After it was recorded as started, before it does anything.
    AfterToolStart,
    /// After it did its work, before its result is saved.
    BeforeResultSaved,
    /// After its result was saved.
    AfterResultSaved,
}

impl Failpoint {
    /// Every boundary.
    pub const ALL: [Failpoint; 6] = [
        Failpoint::BeforeModelCall,
        Failpoint::AfterModelCall,
        Failpoint::BeforeToolStart,
        Failpoint::AfterToolStart,
        Failpoint::BeforeResultSaved,
        Failpoint::AfterResultSaved,
    ];
}

/// Called at each boundary with the step; `true` stops the loop there with
/// [`Error::Aborted`].
pub type FailpointHook = Arc<dyn Fn(Failpoint, u64) -> bool + Send + Sync>;

/// How a run of the loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The agent called `finish`.
    Finished {
        /// Its summary (and evidence).
        summary: String,
    },
    /// The task waits for the person.
    Paused(PauseReason),
    /// The person cancelled it.
    Cancelled,
}

#[derive(Default)]
struct ControlInner {
    cancel: AtomicBool,
    pause: AtomicBool,
    refresh: AtomicBool,
    messages: Mutex<Vec<String>>,
}

/// Cancel, pause and follow-up instructions for a running loop, checked at step boundaries.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<ControlInner>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Control")
            .field("cancel", &self.inner.cancel.load(Ordering::SeqCst))
            .field("pause", &self.inner.pause.load(Ordering::SeqCst))
            .finish()
    }
}

impl Control {
    /// A handle with nothing asked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the task at the next boundary.
    pub fn cancel(&self) {
        self.inner.cancel.store(true, Ordering::SeqCst);
    }

    /// Pauses the task at the next boundary.
    pub fn pause(&self) {
        self.inner.pause.store(true, Ordering::SeqCst);
    }

    /// A follow-up instruction, given to the model before its next step.
    pub fn send(&self, text: impl Into<String>) {
        self.inner
            .messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(text.into());
    }

    /// The journal gained entries the loop did not write (a follow-up appended by a request,
    /// on this instance or another): the loop reads the journal again at its next boundary.
    pub fn refresh(&self) {
        self.inner.refresh.store(true, Ordering::SeqCst);
    }

    /// Whether `other` is this very handle (a clone of it), not another loop's.
    pub fn same_as(&self, other: &Control) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    fn take_refresh(&self) -> bool {
        self.inner.refresh.swap(false, Ordering::SeqCst)
    }

    /// Whether a cancel or a pause waits to be handled.
    fn interrupted(&self) -> bool {
        self.inner.cancel.load(Ordering::SeqCst) || self.inner.pause.load(Ordering::SeqCst)
    }

    fn take_messages(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .inner
                .messages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// The loop's settings.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The mode's system prompt (the project's rules are added to it).
    pub system_prompt: String,
    /// The cap of every tool result.
    pub output_cap: OutputCap,
    /// When the agent counts as stuck.
    pub stuck: StuckThresholds,
    /// Model calls tried for one step before the task pauses.
    pub model_attempts: u32,
    /// The longest a command may run.
    pub command_timeout: Duration,
    /// The share of the context window above which old steps are summarised.
    pub compaction_ratio: f64,
    /// Messages kept whole by a compaction.
    pub compaction_keep_messages: usize,
    /// The context window assumed when the model's is unknown.
    pub default_context_window: u64,
    /// The most tokens one response may have.
    pub max_output_tokens: Option<u32>,
    /// Tokens a model that reasons may think before each step (Anthropic's extended thinking,
    /// Gemini's thinking budget, OpenAI's reasoning effort); `None` asks for no thinking. Models
    /// that do not reason never see it (the gateway asks the catalog).
    pub thinking_budget: Option<u32>,
}

/// The thinking budget of a step by default: room to plan an edit (a medium effort on OpenAI).
pub const DEFAULT_THINKING_BUDGET: u32 = 4096;

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: crate::prompt::DEFAULT_SYSTEM_PROMPT.to_owned(),
            output_cap: OutputCap::default(),
            stuck: StuckThresholds::default(),
            model_attempts: 3,
            command_timeout: Duration::from_secs(600),
            compaction_ratio: 0.8,
            compaction_keep_messages: 8,
            default_context_window: 128_000,
            max_output_tokens: None,
            thinking_budget: Some(DEFAULT_THINKING_BUDGET),
        }
    }
}

/// The text the model gets after a response without tool calls.
pub const NO_TOOL_NUDGE: &str = "You answered without calling a tool. Continue the task with the tools, or call finish with a summary when it is done.";

/// Where the task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// It goes on.
    Running,
    /// `finish` was called.
    Finished(String),
    /// It waits for the person.
    Paused(PauseReason),
    /// It was cancelled.
    Cancelled,
}

/// A task as its journal describes it.
#[derive(Clone, Debug)]
pub struct TaskState {
    /// The conversation sent to the model (without the system prompt).
    pub messages: Vec<llm::Message>,
    /// The last step (model call) saved.
    pub last_step: u64,
    /// The plan.
    pub plan: Vec<PlanItem>,
    /// Where it stands.
    pub status: TaskStatus,
    /// Each command run (its command line and outcome): the change set's evidence.
    pub commands: Vec<(String, CommandOutcome)>,
    /// The number of entries read.
    pub entry_count: usize,
    calls: Vec<llm::ToolCall>,
    call_step: u64,
    started: HashMap<(u64, String), Entry>,
    done: HashSet<(u64, String)>,
    observations: Vec<Observation>,
    /// User messages (entry index, text) waiting for the tool calls of the last response to get
    /// their results.
    deferred: Vec<(usize, String)>,
    /// User messages added since the last response: (entry index, index in `messages`).
    recent_user: Vec<(usize, usize)>,
}

impl TaskState {
    /// The state after `entries`.
    pub fn replay(entries: &[Entry]) -> Self {
        let mut state = Self {
            messages: Vec::new(),
            last_step: 0,
            plan: Vec::new(),
            status: TaskStatus::Running,
            commands: Vec::new(),
            entry_count: 0,
            calls: Vec::new(),
            call_step: 0,
            started: HashMap::new(),
            done: HashSet::new(),
            observations: Vec::new(),
            deferred: Vec::new(),
            recent_user: Vec::new(),
        };
        for entry in entries {
            state.apply(entry);
        }
        state
    }

    /// The tool calls of the last response that have no result yet.
    pub fn pending_calls(&self) -> Vec<llm::ToolCall> {
        self.calls
            .iter()
            .filter(|call| !self.done.contains(&(self.call_step, call.id.clone())))
            .cloned()
            .collect()
    }

    /// The deferred user messages, once no tool call waits for its result.
    fn flush_deferred(&mut self) {
        if !self.pending_calls().is_empty() {
            return;
        }
        for (index, text) in std::mem::take(&mut self.deferred) {
            self.messages.push(llm::Message::user(text));
            self.recent_user.push((index, self.messages.len() - 1));
        }
    }

    fn apply(&mut self, entry: &Entry) {
        let index = self.entry_count;
        self.entry_count += 1;
        match entry {
            Entry::UserMessage { text } => {
                // Never between a response's tool calls and their results.
                self.deferred.push((index, text.clone()));
                self.flush_deferred();
                self.observations.clear();
                self.status = TaskStatus::Running;
            }
            Entry::ModelResponse {
                step,
                response,
                context_entries,
            } => {
                // User messages the model did not see come after its response.
                if let Some(seen) = context_entries {
                    let mut unseen = Vec::new();
                    for (entry_index, message_index) in self.recent_user.iter().rev() {
                        if *entry_index >= *seen && *message_index < self.messages.len() {
                            let message = self.messages.remove(*message_index);
                            unseen.push((*entry_index, message.content));
                        }
                    }
                    unseen.reverse();
                    unseen.append(&mut self.deferred);
                    self.deferred = unseen;
                }
                self.recent_user.clear();
                let mut message = llm::Message::assistant(response.text.clone());
                message.tool_calls = response.tool_calls.clone();
                message.reasoning = response.reasoning_blocks.clone();
                self.messages.push(message);
                self.last_step = *step;
                self.calls = response.tool_calls.clone();
                self.call_step = *step;
                if response.tool_calls.is_empty() {
                    self.observations
                        .push(Observation::TextOnly { step: *step });
                    self.messages.push(llm::Message::user(NO_TOOL_NUDGE));
                }
                self.flush_deferred();
            }
            Entry::ToolStarted { step, call_id, .. } => {
                self.started.insert((*step, call_id.clone()), entry.clone());
            }
            Entry::ToolDone {
                step,
                call_id,
                name,
                status,
                content,
                plan,
                command,
            } => {
                self.messages.push(llm::Message::tool_result(
                    call_id.clone(),
                    name.clone(),
                    content.clone(),
                ));
                self.done.insert((*step, call_id.clone()));
                if let Some(plan) = plan {
                    self.plan.clone_from(plan);
                }
                if let Some(command) = command {
                    let line = self
                        .calls
                        .iter()
                        .find(|call| &call.id == call_id)
                        .and_then(|call| {
                            serde_json::from_str::<serde_json::Value>(&call.arguments).ok()
                        })
                        .and_then(|arguments| arguments["command"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    self.commands.push((line, command.clone()));
                }
                let action = self
                    .calls
                    .iter()
                    .find(|call| &call.id == call_id)
                    .map(action_key)
                    .unwrap_or_else(|| name.clone());
                // A command's duration changes from run to run: its result is its status and
                // output.
                let result = match command {
                    Some(command) => format!("{:?}\n{}", command.status, command.output),
                    None => content.clone(),
                };
                self.observations.push(Observation::Action {
                    step: *step,
                    action,
                    result,
                    error: *status != ToolStatus::Ok,
                });
                if name == names::FINISH && *status == ToolStatus::Ok {
                    self.status = TaskStatus::Finished(content.clone());
                }
                if !self.deferred.is_empty() {
                    self.flush_deferred();
                    // A user message after the finish call: the task goes on.
                    if self.pending_calls().is_empty() {
                        self.status = TaskStatus::Running;
                    }
                }
            }
            Entry::Compaction {
                summary,
                kept_messages,
                ..
            } => {
                let task = self
                    .messages
                    .iter()
                    .find(|message| message.role == llm::Role::User)
                    .cloned();
                let keep_from = self.messages.len().saturating_sub(*kept_messages);
                let kept: Vec<llm::Message> = self.messages.split_off(keep_from);
                self.messages.clear();
                self.recent_user.clear();
                self.messages.extend(task);
                let mut text = format!("Summary of the earlier steps:\n{summary}");
                if !self.plan.is_empty() {
                    text.push_str("\n\nThe plan:\n");
                    text.push_str(&render_plan(&self.plan));
                }
                self.messages.push(llm::Message::user(text));
                self.messages.extend(kept);
            }
            Entry::Paused { reason, .. } => self.status = TaskStatus::Paused(reason.clone()),
            Entry::Resumed { note } => {
                self.status = TaskStatus::Running;
                self.observations.clear();
                if let Some(note) = note {
                    self.messages.push(llm::Message::user(note.clone()));
                }
            }
            Entry::Cancelled { .. } => self.status = TaskStatus::Cancelled,
        }
    }
}

/// The plan as text.
pub fn render_plan(plan: &[PlanItem]) -> String {
    plan.iter()
        .map(|item| {
            let mark = match item.status {
                PlanStatus::Pending => "[ ]",
                PlanStatus::InProgress => "[~]",
                PlanStatus::Done => "[x]",
            };
            format!("{mark} {}\n", item.text)
        })
        .collect()
}

/// Starts a task: its instructions become the journal's first entry (once).
pub async fn start_task(journal: &dyn Journal, task: &str, instructions: &str) -> Result<()> {
    journal
        .append(
            task,
            "instructions",
            Entry::UserMessage {
                text: instructions.to_owned(),
            },
        )
        .await?;
    Ok(())
}

/// A follow-up instruction for a task that is not running (finished or paused): the next run
/// goes on from it. `key` makes the call idempotent (the request's id).
pub async fn follow_up(journal: &dyn Journal, task: &str, key: &str, text: &str) -> Result<bool> {
    journal
        .append(
            task,
            &format!("message-{key}"),
            Entry::UserMessage {
                text: text.to_owned(),
            },
        )
        .await
}

/// Lets a paused task go on (after its budget was raised, or it was looked at); `key` makes
/// the call idempotent.
pub async fn resume(
    journal: &dyn Journal,
    task: &str,
    key: &str,
    note: Option<&str>,
) -> Result<bool> {
    journal
        .append(
            task,
            &format!("resumed-{key}"),
            Entry::Resumed {
                note: note.map(str::to_owned),
            },
        )
        .await
}

/// The agent of one task: what it works with.
pub struct Agent {
    /// The task's id (the journal's key).
    pub task: String,
    /// The task's worktree.
    pub workspace: Arc<dyn Workspace>,
    /// The runner of its commands.
    pub runner: Arc<dyn CommandRunner>,
    /// The model.
    pub model: Arc<dyn Model>,
    /// The journal.
    pub journal: Arc<dyn Journal>,
    /// The budget.
    pub budget: Arc<dyn Budget>,
    /// Cancel, pause, follow-ups.
    pub control: Control,
    /// The settings.
    pub config: AgentConfig,
    /// Stops the loop at a boundary (tests).
    pub failpoints: Option<FailpointHook>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Agent")
            .field("task", &self.task)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn estimate_tokens(messages: &[llm::Message]) -> u64 {
    let characters: usize = messages
        .iter()
        .map(|message| {
            message.content.len()
                + message
                    .tool_calls
                    .iter()
                    .map(|call| call.arguments.len() + call.name.len())
                    .sum::<usize>()
                + 16
        })
        .sum();
    (characters / 4) as u64
}

impl Agent {
    fn failpoint(&self, point: Failpoint, step: u64) -> Result<()> {
        if let Some(hook) = &self.failpoints
            && hook(point, step)
        {
            return Err(Error::Aborted(point));
        }
        Ok(())
    }

    async fn record(&self, state: &mut TaskState, key: &str, entry: Entry) -> Result<()> {
        if self.journal.append(&self.task, key, entry.clone()).await? {
            state.apply(&entry);
        } else {
            // Another loop wrote it: what the journal holds is what happened.
            *state = TaskState::replay(&self.journal.entries(&self.task).await?);
        }
        Ok(())
    }

    /// Runs the task from where its journal stands until it finishes, pauses or is cancelled.
    pub async fn run(&self) -> Result<Outcome> {
        let entries = self.journal.entries(&self.task).await?;
        if entries.is_empty() {
            return Err(Error::InvalidArguments(format!(
                "the task {} has no instructions",
                self.task
            )));
        }
        let mut state = TaskState::replay(&entries);
        let rules = load_project_rules(self.workspace.as_ref()).await;
        let system = system_prompt(&self.config.system_prompt, &rules);
        loop {
            if self.control.take_refresh() {
                // Entries written elsewhere (follow-ups): what the journal holds is the task.
                state = TaskState::replay(&self.journal.entries(&self.task).await?);
            }
            match &state.status {
                TaskStatus::Running => {}
                TaskStatus::Finished(summary) => {
                    return Ok(Outcome::Finished {
                        summary: summary.clone(),
                    });
                }
                TaskStatus::Paused(reason) => return Ok(Outcome::Paused(reason.clone())),
                TaskStatus::Cancelled => return Ok(Outcome::Cancelled),
            }
            let (last_step, entry_count) = (state.last_step, state.entry_count);
            if self.control.inner.cancel.load(Ordering::SeqCst) {
                self.record(
                    &mut state,
                    &format!("cancelled-{entry_count}"),
                    Entry::Cancelled { step: last_step },
                )
                .await?;
                continue;
            }
            if self.control.inner.pause.swap(false, Ordering::SeqCst) {
                self.record(
                    &mut state,
                    &format!("paused-{entry_count}"),
                    Entry::Paused {
                        step: last_step,
                        reason: PauseReason::Requested,
                    },
                )
                .await?;
                continue;
            }
            let mut pending = state.pending_calls();
            if !pending.is_empty() {
                let step = state.call_step;
                // `finish` goes last, so that the other calls of its response run first.
                pending.sort_by_key(|call| call.name == names::FINISH);
                for call in pending {
                    if matches!(state.status, TaskStatus::Finished(_)) {
                        // Every call gets a result (providers refuse a call without one).
                        self.record(
                            &mut state,
                            &format!("step-{step}-{}-done", call.id),
                            Entry::ToolDone {
                                step,
                                call_id: call.id.clone(),
                                name: call.name.clone(),
                                status: ToolStatus::Error,
                                content: "not run: the task had finished".to_owned(),
                                plan: None,
                                command: None,
                            },
                        )
                        .await?;
                        continue;
                    }
                    if self.control.interrupted() {
                        // Cancel or pause first; the calls left run after a resume.
                        break;
                    }
                    self.execute_call(&mut state, step, &call).await?;
                }
                continue;
            }
            let last_step = state.last_step;
            let step = last_step + 1;
            for text in self.control.take_messages() {
                let key = format!("message-{}", state.entry_count);
                self.record(&mut state, &key, Entry::UserMessage { text })
                    .await?;
            }
            if let Some((reason, steps)) = detect(&state.observations, &self.config.stuck) {
                let key = format!("paused-{}", state.entry_count);
                self.record(
                    &mut state,
                    &key,
                    Entry::Paused {
                        step: last_step,
                        reason: PauseReason::Stuck { reason, steps },
                    },
                )
                .await?;
                continue;
            }
            self.failpoint(Failpoint::BeforeModelCall, step)?;
            if let Some(which) = self.budget.reserve(&self.task, step).await? {
                let key = format!("paused-{}", state.entry_count);
                self.record(
                    &mut state,
                    &key,
                    Entry::Paused {
                        step: last_step,
                        reason: PauseReason::Budget { which },
                    },
                )
                .await?;
                continue;
            }
            self.compact_if_needed(&mut state, &system, step).await?;
            let context_entries = state.entry_count;
            let mut messages = vec![llm::Message::system(system.clone())];
            messages.extend(state.messages.iter().cloned());
            let request = llm::Request {
                messages,
                tools: definitions(),
                max_tokens: self.config.max_output_tokens,
                thinking_budget: self.config.thinking_budget,
                ..llm::Request::default()
            };
            let mut response = match self
                .ask(&format!("{}/step-{step}", self.task), &request)
                .await
            {
                Ok(response) => response,
                Err(message) => {
                    let key = format!("paused-{}", state.entry_count);
                    self.record(
                        &mut state,
                        &key,
                        Entry::Paused {
                            step: last_step,
                            reason: PauseReason::ModelFailed { message },
                        },
                    )
                    .await?;
                    continue;
                }
            };
            // Every call of a response needs its own id (Gemini sends none, some servers repeat one).
            let mut seen = HashSet::new();
            for (index, call) in response.tool_calls.iter_mut().enumerate() {
                if call.id.is_empty() || !seen.insert(call.id.clone()) {
                    call.id = format!("call-{step}-{index}");
                    seen.insert(call.id.clone());
                }
            }
            let usage = response.usage;
            let cost = response.cost_micros;
            self.record(
                &mut state,
                &format!("step-{step}-model"),
                Entry::ModelResponse {
                    step,
                    response,
                    context_entries: Some(context_entries),
                },
            )
            .await?;
            self.budget
                .record(&self.task, &format!("step-{step}"), &usage, cost)
                .await?;
            self.failpoint(Failpoint::AfterModelCall, step)?;
        }
    }

    async fn ask(
        &self,
        call_key: &str,
        request: &llm::Request,
    ) -> std::result::Result<ModelResponse, String> {
        let mut last = String::new();
        for attempt in 1..=self.config.model_attempts.max(1) {
            match self.model.complete(call_key, request).await {
                Ok(response) => return Ok(response),
                Err(error) => {
                    tracing::info!(task = %self.task, attempt, %error, "a model call failed");
                    last = error.to_string();
                }
            }
        }
        Err(last)
    }

    async fn compact_if_needed(
        &self,
        state: &mut TaskState,
        system: &str,
        step: u64,
    ) -> Result<()> {
        let window = self
            .model
            .context_window()
            .unwrap_or(self.config.default_context_window);
        let limit = (window as f64 * self.config.compaction_ratio) as u64;
        let used = estimate_tokens(&state.messages) + (system.len() / 4) as u64 + 1500;
        if used <= limit || state.messages.len() <= self.config.compaction_keep_messages + 2 {
            return Ok(());
        }
        // Keep whole turns: the kept part never starts with a tool result.
        let mut keep_from = state
            .messages
            .len()
            .saturating_sub(self.config.compaction_keep_messages);
        while keep_from > 1 && state.messages[keep_from].role == llm::Role::Tool {
            keep_from -= 1;
        }
        let kept_messages = state.messages.len() - keep_from;
        let mut transcript = String::new();
        for message in &state.messages[..keep_from] {
            let role = match message.role {
                llm::Role::System => "system",
                llm::Role::User => "user",
                llm::Role::Assistant => "assistant",
                llm::Role::Tool => "tool result",
            };
            transcript.push_str(&format!(
                "## {role}\n{}\n",
                cap_output(
                    &message.content,
                    OutputCap {
                        bytes: 4000,
                        lines: 80
                    }
                )
            ));
            for call in &message.tool_calls {
                transcript.push_str(&format!("(called {} {})\n", call.name, call.arguments));
            }
        }
        let request = llm::Request {
            messages: vec![
                llm::Message::system(
                    "Summarise the earlier steps of a coding task for the agent that continues it: what was found, what was changed (files), what was run and its results, what failed, and what remains. Be precise and brief.",
                ),
                llm::Message::user(transcript),
            ],
            ..llm::Request::default()
        };
        let response = match self
            .ask(&format!("{}/step-{step}-compaction", self.task), &request)
            .await
        {
            Ok(response) => response,
            Err(message) => {
                tracing::warn!(task = %self.task, %message, "the history could not be summarised");
                return Ok(());
            }
        };
        self.budget
            .record(
                &self.task,
                &format!("step-{step}-compaction"),
                &response.usage,
                response.cost_micros,
            )
            .await?;
        self.record(
            state,
            &format!("step-{step}-compaction"),
            Entry::Compaction {
                step,
                summary: response.text,
                kept_messages,
            },
        )
        .await
    }

    async fn execute_call(
        &self,
        state: &mut TaskState,
        step: u64,
        call: &llm::ToolCall,
    ) -> Result<()> {
        self.failpoint(Failpoint::BeforeToolStart, step)?;
        let workspace = self.workspace.as_ref();
        let mut plan = None;
        let mut command = None;
        let (status, content) = match state.started.get(&(step, call.id.clone())).cloned() {
            Some(Entry::ToolStarted {
                name,
                effects,
                planned_result: Some(result),
                ..
            }) if name != names::RUN => self.recover_mutation(&effects, result).await?,
            Some(Entry::ToolStarted { name, .. }) if name == names::RUN => {
                command = Some(CommandOutcome {
                    status: CommandStatus::Interrupted,
                    duration_milliseconds: 0,
                    output: String::new(),
                });
                (
                    ToolStatus::Interrupted,
                    "the command was interrupted: the agent stopped while it ran, so its result is unknown. It was not run again; run it again if you need its result.".to_owned(),
                )
            }
            started => {
                let prepared = prepare(call, workspace, self.config.command_timeout).await;
                let (effects, planned_result) = match &prepared {
                    Ok(Action::Mutation { effects, result }) => {
                        (effects.clone(), Some(result.clone()))
                    }
                    _ => (Vec::new(), None),
                };
                // A call started before a stop is prepared again (it changed no file); if it
                // now changes files, that is recorded first, under a new key.
                let key = match &started {
                    None => Some(format!("step-{step}-{}-started", call.id)),
                    Some(_) if planned_result.is_some() => Some(format!(
                        "step-{step}-{}-started-{}",
                        call.id, state.entry_count
                    )),
                    Some(_) => None,
                };
                if let Some(key) = key {
                    self.record(
                        state,
                        &key,
                        Entry::ToolStarted {
                            step,
                            call_id: call.id.clone(),
                            name: call.name.clone(),
                            effects,
                            planned_result,
                        },
                    )
                    .await?;
                }
                self.failpoint(Failpoint::AfterToolStart, step)?;
                match prepared {
                    Err(message) => (ToolStatus::Error, message),
                    Ok(Action::Mutation { effects, result }) => {
                        match apply_effects(workspace, &effects).await {
                            Ok(()) => (ToolStatus::Ok, result),
                            Err(error) => {
                                (ToolStatus::Error, format!("nothing was changed: {error}"))
                            }
                        }
                    }
                    Ok(Action::Run {
                        command: line,
                        timeout,
                    }) => {
                        let outcome = self.runner.run(&line, timeout).await?;
                        let text = describe_command(&outcome, self.config.output_cap);
                        let status = match outcome.status {
                            CommandStatus::Exited { .. } => ToolStatus::Ok,
                            CommandStatus::Interrupted => ToolStatus::Interrupted,
                            CommandStatus::Denied { .. } | CommandStatus::TimedOut => {
                                ToolStatus::Error
                            }
                        };
                        command = Some(outcome);
                        (status, text)
                    }
                    Ok(Action::Plan(items)) => {
                        let text = format!("plan updated:\n{}", render_plan(&items));
                        plan = Some(items);
                        (ToolStatus::Ok, text)
                    }
                    Ok(Action::Finish { summary }) => (ToolStatus::Ok, summary),
                    Ok(action) => match run_read_only(&action, workspace).await {
                        Ok(text) => (ToolStatus::Ok, text),
                        Err(message) => (ToolStatus::Error, message),
                    },
                }
            }
        };
        let content = if status == ToolStatus::Error {
            format!("error: {content}")
        } else {
            content
        };
        let content = cap_output(&content, self.config.output_cap);
        self.failpoint(Failpoint::BeforeResultSaved, step)?;
        self.record(
            state,
            &format!("step-{step}-{}-done", call.id),
            Entry::ToolDone {
                step,
                call_id: call.id.clone(),
                name: call.name.clone(),
                status,
                content,
                plan,
                command,
            },
        )
        .await?;
        self.failpoint(Failpoint::AfterResultSaved, step)?;
        Ok(())
    }

    /// An edit recorded as started before a stop: done when its files hold the content after,
    /// applied when they still hold the content before, a conflict otherwise.
    async fn recover_mutation(
        &self,
        effects: &[FileEffect],
        result: String,
    ) -> Result<(ToolStatus, String)> {
        let workspace = self.workspace.as_ref();
        let mut pending = Vec::new();
        let mut conflicts = Vec::new();
        for effect in effects {
            match effect_state(workspace, effect).await? {
                EffectState::Applied => {}
                EffectState::Pending => pending.push(effect.clone()),
                EffectState::Conflict => conflicts.push(effect.path.clone()),
            }
        }
        if !conflicts.is_empty() {
            return Ok((
                ToolStatus::Conflict,
                format!(
                    "conflict: {} changed while the agent was stopped, so this edit was not applied; read the file(s) again and redo the change",
                    conflicts.join(", ")
                ),
            ));
        }
        match apply_effects(workspace, &pending).await {
            Ok(()) => Ok((ToolStatus::Ok, result)),
            Err(error) => Ok((ToolStatus::Error, format!("nothing was changed: {error}"))),
        }
    }
}

/// A command's outcome as the model reads it (output capped).
pub fn describe_command(outcome: &CommandOutcome, cap: OutputCap) -> String {
    let status = match &outcome.status {
        CommandStatus::Exited { code: Some(code) } => format!("exit code {code}"),
        CommandStatus::Exited { code: None } => "ended by a signal".to_owned(),
        CommandStatus::Denied { reason } => format!("denied by the sandbox: {reason}"),
        CommandStatus::TimedOut => "timed out and was stopped".to_owned(),
        CommandStatus::Interrupted => "interrupted".to_owned(),
    };
    format!(
        "{status} after {} ms\n{}",
        outcome.duration_milliseconds,
        cap_output(&crate::cap::strip_terminal_codes(&outcome.output), cap)
    )
}
