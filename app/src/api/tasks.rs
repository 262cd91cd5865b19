//! Async tasks: start one, follow it, steer it, review its change set. The task page follows the
//! timeline from `GET /api/tasks/<id>/events` (served by the server crate, see `tasks_api`); the
//! same use cases are a JSON API under `/api/tasks` for scripts.

use leptos::prelude::*;
use server_fn::codec::Json;

use crate::error::AppError;
use crate::types::{TaskApplyReport, TaskDetail, TaskFileChange, TaskFileDecision, TaskSummary};

/// A use case's answer in the wire type of the same JSON shape.
#[cfg(feature = "ssr")]
fn to_wire<From: serde::Serialize, To: serde::de::DeserializeOwned>(
    value: &From,
) -> Result<To, AppError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|error| super::reject(AppError::internal(format!("task wire type: {error}"))))
}

#[cfg(feature = "ssr")]
fn task_id(text: &str) -> Result<db::ids::AgentTaskId, AppError> {
    text.trim()
        .parse()
        .map_err(|_| super::reject(AppError::NotFound))
}

/// A request's idempotency key: the page's, else a fresh one.
#[cfg(feature = "ssr")]
fn key_or_new(key: Option<String>) -> String {
    key.filter(|key| !key.is_empty() && key.len() <= 100)
        .unwrap_or_else(|| db::ids::AgentTaskId::new().to_string())
}

/// `POST /api/agent/tasks`: the caller's tasks, newest first (of one project when given).
#[server(prefix = "/api", endpoint = "agent/tasks")]
pub async fn list_tasks(project_id: Option<String>) -> Result<Vec<TaskSummary>, AppError> {
    let user = super::request::require_user().await?;
    let services = super::request::services()?;
    let project = match project_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => {
            let id = super::projects::project_id(id)?;
            // Another person's project does not exist, even with no task on it.
            services
                .project(&user, id)
                .await
                .map_err(super::reject_service_error)?;
            Some(id)
        }
        None => None,
    };
    let tasks = services
        .tasks(&user, project)
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&tasks)
}

/// `POST /api/agent/task`: the task page (its timeline so far, plan and evidence).
#[server(prefix = "/api", endpoint = "agent/task")]
pub async fn get_task(task_id: String) -> Result<TaskDetail, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let detail = super::request::services()?
        .task(&user, id)
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&detail)
}

/// `POST /api/agent/start` (JSON): starts a task on one of the caller's projects, asking
/// `models` in order (the async mode's list, else the caller's default, when empty).
#[server(prefix = "/api", endpoint = "agent/start", input = Json)]
pub async fn start_task(
    project_id: String,
    instructions: String,
    max_steps: Option<u64>,
    max_cost_micros: Option<u64>,
    #[server(default)] models: Vec<String>,
) -> Result<TaskSummary, AppError> {
    let user = super::request::require_user().await?;
    let project_id = super::projects::project_id(&project_id)?;
    let new = services::tasks::NewTask {
        project_id,
        instructions,
        models,
        max_steps,
        max_cost_micros,
        ..services::tasks::NewTask::default()
    };
    let task = super::request::services()?
        .create_task(&user, new, &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&task)
}

/// `POST /api/agent/cancel`: ends a running or paused task (its worktree stays for review).
#[server(prefix = "/api", endpoint = "agent/cancel")]
pub async fn cancel_task(task_id: String) -> Result<TaskSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let task = super::request::services()?
        .cancel_task(&user, id, &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&task)
}

/// `POST /api/agent/pause`: asks a running task to pause at its next step boundary.
#[server(prefix = "/api", endpoint = "agent/pause")]
pub async fn pause_task(task_id: String) -> Result<TaskSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let task = super::request::services()?
        .pause_task(&user, id, &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&task)
}

/// `POST /api/agent/resume` (JSON): lets a paused task go on; with `more_budget`, each of its
/// limits is doubled first (continue with more budget).
#[server(prefix = "/api", endpoint = "agent/resume", input = Json)]
pub async fn resume_task(
    task_id: String,
    more_budget: bool,
    key: Option<String>,
) -> Result<TaskSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let services = super::request::services()?;
    let limits = if more_budget {
        let task = services
            .task_summary(&user, id)
            .await
            .map_err(super::reject_service_error)?;
        let doubled = |limit: Option<i64>| {
            limit.map(|value| u64::try_from(value).unwrap_or(0).saturating_mul(2).max(1))
        };
        Some(db::queries::agent_tasks::TaskLimits {
            steps: doubled(task.limits.max_steps),
            tokens: doubled(task.limits.max_tokens),
            cost_micros: doubled(task.limits.max_cost_micros),
            wall_time_seconds: doubled(task.limits.max_wall_time_seconds),
        })
    } else {
        None
    };
    let task = services
        .resume_task(&user, id, limits, &key_or_new(key), &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&task)
}

/// `POST /api/agent/follow-up` (JSON): an instruction for the task, while it runs or after.
#[server(prefix = "/api", endpoint = "agent/follow-up", input = Json)]
pub async fn follow_up_task(
    task_id: String,
    text: String,
    key: Option<String>,
) -> Result<TaskSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let task = super::request::services()?
        .follow_up_task(&user, id, &text, &key_or_new(key), &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&task)
}

/// `POST /api/agent/changes`: the change set, file by file and hunk by hunk, against the base.
#[server(prefix = "/api", endpoint = "agent/changes")]
pub async fn task_changes(task_id: String) -> Result<Vec<TaskFileChange>, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let changes = super::request::services()?
        .task_change_set(&user, id)
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&changes)
}

/// `POST /api/agent/apply` (JSON): writes the accepted hunks (or a file's edited text) as new
/// revisions; a file changed since the base is merged, and what overlaps is reported.
#[server(prefix = "/api", endpoint = "agent/apply", input = Json)]
pub async fn apply_task_changes(
    task_id: String,
    files: Vec<TaskFileDecision>,
) -> Result<TaskApplyReport, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let decisions: Vec<services::tasks::FileDecision> = to_wire(&files)?;
    let report = super::request::services()?
        .apply_task_changes(&user, id, &decisions, &super::request::meta())
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&report)
}

/// `POST /api/agent/reject` (JSON): sends hunks (path, index) and a comment back to the agent,
/// which goes on from there.
#[server(prefix = "/api", endpoint = "agent/reject", input = Json)]
pub async fn reject_task_changes(
    task_id: String,
    hunks: Vec<(String, usize)>,
    comment: String,
    key: Option<String>,
) -> Result<TaskSummary, AppError> {
    let user = super::request::require_user().await?;
    let id = self::task_id(&task_id)?;
    let task = super::request::services()?
        .reject_task_changes(
            &user,
            id,
            &hunks,
            &comment,
            &key_or_new(key),
            &super::request::meta(),
        )
        .await
        .map_err(super::reject_service_error)?;
    to_wire(&task)
}
