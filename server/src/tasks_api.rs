//! The async agent's JSON API, under `/api/tasks` (session cookie; state-changing requests from
//! this site's own pages only, like every `/api/` request):
//!
//! - `POST /api/tasks` creates a task (`project_id`, `instructions`, optional `title`,
//!   `models`, `max_steps`, `max_tokens`, `max_cost_micros`, `max_wall_time_seconds`);
//! - `GET /api/tasks` (`?project=<id>`) lists the user's tasks: state, cost, steps, last activity;
//! - `GET /api/tasks/{id}` is the task page: its journal replayed (timeline, plan, evidence);
//! - `GET /api/tasks/{id}/events` follows the timeline as server-sent events (`entry`, numbered
//!   by the journal, from `after` / `Last-Event-ID`), ending with a `state` event once the task
//!   stops running; 204 when it is not running and nothing is after `after`;
//! - `POST /api/tasks/{id}/cancel`, `/pause`, `/resume` (optional new limits), `/follow-up`
//!   (`text`);
//! - `GET /api/tasks/{id}/changes` is the change set; `POST /api/tasks/{id}/changes/apply`
//!   (`files`: per path, one flag per hunk, or `content`, the file as the person edited it)
//!   writes the accepted hunks (or that text, merged when the file changed since) as new
//!   revisions;
//!   `POST /api/tasks/{id}/changes/reject` (`hunks`: path and index, `comment`) sends them back.
//!
//! Another user's task does not exist (404), whatever the request.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Json, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use db::ids::{AgentTaskId, ProjectId};
use db::queries::agent_tasks::TaskLimits;
use serde::Deserialize;
use services::tasks::{FileDecision, NewTask};
use services::{AuthenticatedUser, ClientAddress, RequestMeta, Services};

use crate::AppState;
use crate::event_stream::{error_response, from_other_site, no_content, sse_response};

/// Every path of this API starts here (the body checks treat them as JSON).
pub const PREFIX: &str = "/api/tasks";
pub const TASKS_PATH: &str = "/api/tasks";
pub const TASK_PATH: &str = "/api/tasks/{task_id}";
pub const EVENTS_PATH: &str = "/api/tasks/{task_id}/events";
pub const CANCEL_PATH: &str = "/api/tasks/{task_id}/cancel";
pub const PAUSE_PATH: &str = "/api/tasks/{task_id}/pause";
pub const RESUME_PATH: &str = "/api/tasks/{task_id}/resume";
pub const FOLLOW_UP_PATH: &str = "/api/tasks/{task_id}/follow-up";
pub const CHANGES_PATH: &str = "/api/tasks/{task_id}/changes";
pub const APPLY_PATH: &str = "/api/tasks/{task_id}/changes/apply";
pub const REJECT_PATH: &str = "/api/tasks/{task_id}/changes/reject";

/// How often a follower looks for new entries (writers may be on another instance).
const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// The routes, for the server's router.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(TASKS_PATH, post(create).get(list))
        .route(TASK_PATH, get(one))
        .route(EVENTS_PATH, get(events))
        .route(CANCEL_PATH, post(cancel))
        .route(PAUSE_PATH, post(pause))
        .route(RESUME_PATH, post(resume))
        .route(FOLLOW_UP_PATH, post(follow_up))
        .route(CHANGES_PATH, get(changes))
        .route(APPLY_PATH, post(apply))
        .route(REJECT_PATH, post(reject))
}

fn meta_of(address: Option<Extension<ClientAddress>>, headers: &HeaderMap) -> RequestMeta {
    RequestMeta {
        ip: address.map(|Extension(ClientAddress(ip))| ip),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.chars().take(300).collect()),
    }
}

fn json<T: serde::Serialize>(result: Result<T, services::Error>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => error_response(error),
    }
}

fn task_id_of(text: &str) -> Result<AgentTaskId, services::Error> {
    text.parse().map_err(|_| services::Error::NotFound)
}

/// A request's idempotency key: the `Idempotency-Key` header, else a fresh one.
fn key_of(headers: &HeaderMap, body_key: Option<String>) -> String {
    body_key
        .or_else(|| {
            headers
                .get("idempotency-key")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        })
        .filter(|key| !key.is_empty() && key.len() <= 100)
        .unwrap_or_else(|| AgentTaskId::new().to_string())
}

pub async fn create(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    Json(new): Json<NewTask>,
) -> Response {
    let meta = meta_of(address, &headers);
    match state.services.create_task(&user, new, &meta).await {
        Ok(task) => (StatusCode::CREATED, Json(task)).into_response(),
        Err(error) => error_response(error),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    project: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Query(query): Query<ListQuery>,
) -> Response {
    let project = match query.project.as_deref().map(str::parse::<ProjectId>) {
        None => None,
        Some(Ok(project)) => Some(project),
        Some(Err(_)) => return error_response(services::Error::NotFound),
    };
    json(state.services.tasks(&user, project).await)
}

pub async fn one(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(task_id): Path<String>,
) -> Response {
    match task_id_of(&task_id) {
        Ok(id) => json(state.services.task(&user, id).await),
        Err(error) => error_response(error),
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> Response {
    let meta = meta_of(address, &headers);
    match task_id_of(&task_id) {
        Ok(id) => json(state.services.cancel_task(&user, id, &meta).await),
        Err(error) => error_response(error),
    }
}

pub async fn pause(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> Response {
    let meta = meta_of(address, &headers);
    match task_id_of(&task_id) {
        Ok(id) => json(state.services.pause_task(&user, id, &meta).await),
        Err(error) => error_response(error),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ResumeBody {
    max_steps: Option<u64>,
    max_tokens: Option<u64>,
    max_cost_micros: Option<u64>,
    max_wall_time_seconds: Option<u64>,
    key: Option<String>,
}

pub async fn resume(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    body: Option<Json<ResumeBody>>,
) -> Response {
    let meta = meta_of(address, &headers);
    let Json(body) = body.unwrap_or_default();
    let limits = (body.max_steps.is_some()
        || body.max_tokens.is_some()
        || body.max_cost_micros.is_some()
        || body.max_wall_time_seconds.is_some())
    .then_some(TaskLimits {
        steps: body.max_steps,
        tokens: body.max_tokens,
        cost_micros: body.max_cost_micros,
        wall_time_seconds: body.max_wall_time_seconds,
    });
    let key = key_of(&headers, body.key);
    match task_id_of(&task_id) {
        Ok(id) => json(
            state
                .services
                .resume_task(&user, id, limits, &key, &meta)
                .await,
        ),
        Err(error) => error_response(error),
    }
}

#[derive(Debug, Deserialize)]
pub struct FollowUpBody {
    text: String,
    key: Option<String>,
}

pub async fn follow_up(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    Json(body): Json<FollowUpBody>,
) -> Response {
    let meta = meta_of(address, &headers);
    let key = key_of(&headers, body.key);
    match task_id_of(&task_id) {
        Ok(id) => json(
            state
                .services
                .follow_up_task(&user, id, &body.text, &key, &meta)
                .await,
        ),
        Err(error) => error_response(error),
    }
}

pub async fn changes(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(task_id): Path<String>,
) -> Response {
    match task_id_of(&task_id) {
        Ok(id) => json(state.services.task_change_set(&user, id).await),
        Err(error) => error_response(error),
    }
}

#[derive(Debug, Deserialize)]
pub struct ApplyBody {
    files: Vec<FileDecision>,
}

pub async fn apply(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    Json(body): Json<ApplyBody>,
) -> Response {
    let meta = meta_of(address, &headers);
    match task_id_of(&task_id) {
        Ok(id) => json(
            state
                .services
                .apply_task_changes(&user, id, &body.files, &meta)
                .await,
        ),
        Err(error) => error_response(error),
    }
}

#[derive(Debug, Deserialize)]
pub struct RejectedHunk {
    path: String,
    index: usize,
}

#[derive(Debug, Deserialize)]
pub struct RejectBody {
    hunks: Vec<RejectedHunk>,
    #[serde(default)]
    comment: String,
    key: Option<String>,
}

pub async fn reject(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    address: Option<Extension<ClientAddress>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    Json(body): Json<RejectBody>,
) -> Response {
    let meta = meta_of(address, &headers);
    let key = key_of(&headers, body.key);
    let rejected: Vec<(String, usize)> = body
        .hunks
        .into_iter()
        .map(|hunk| (hunk.path, hunk.index))
        .collect();
    match task_id_of(&task_id) {
        Ok(id) => json(
            state
                .services
                .reject_task_changes(&user, id, &rejected, &body.comment, &key, &meta)
                .await,
        ),
        Err(error) => error_response(error),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    after: Option<i64>,
}

/// What the follower stream carries between polls.
struct Follower {
    services: Services,
    user: AuthenticatedUser,
    id: AgentTaskId,
    after: i64,
    pending: std::collections::VecDeque<Event>,
    ended: bool,
}

pub async fn events(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(task_id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    if from_other_site(&headers) {
        tracing::info!("a cross-site request for a task's events was refused");
        return (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response();
    }
    let id = match task_id_of(&task_id) {
        Ok(id) => id,
        Err(error) => return error_response(error),
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok());
    let after = last_seen.or(query.after).unwrap_or(0).max(0);
    let summary = match state.services.task_summary(&user, id).await {
        Ok(summary) => summary,
        Err(error) => return error_response(error),
    };
    if summary.state != "running" {
        match state.services.task_events(&user, id, after).await {
            Ok(entries) if entries.is_empty() => return no_content(),
            Ok(_) => {}
            Err(error) => return error_response(error),
        }
    }
    let follower = Follower {
        services: state.services.clone(),
        user,
        id,
        after,
        pending: std::collections::VecDeque::new(),
        ended: false,
    };
    let stream = futures::stream::unfold(follower, |mut follower| async move {
        loop {
            if let Some(event) = follower.pending.pop_front() {
                return Some((Ok::<Event, Infallible>(event), follower));
            }
            if follower.ended {
                return None;
            }
            // The state is read before the entries: entries written before it stopped are
            // all read after it.
            let summary = match follower
                .services
                .task_summary(&follower.user, follower.id)
                .await
            {
                Ok(summary) => summary,
                Err(error) => {
                    tracing::warn!(%error, "following a task failed");
                    return None;
                }
            };
            let entries = match follower
                .services
                .task_events(&follower.user, follower.id, follower.after)
                .await
            {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%error, "reading a task's entries failed");
                    return None;
                }
            };
            let full_page = entries.len() >= 500;
            for entry in entries {
                follower.after = entry.seq;
                let data = serde_json::to_string(&entry).unwrap_or_else(|_| "{}".to_owned());
                follower.pending.push_back(
                    Event::default()
                        .event("entry")
                        .id(entry.seq.to_string())
                        .data(data),
                );
            }
            if summary.state != "running" && !full_page {
                let data = serde_json::to_string(&summary).unwrap_or_else(|_| "{}".to_owned());
                follower
                    .pending
                    .push_back(Event::default().event("state").data(data));
                follower.ended = true;
                continue;
            }
            if follower.pending.is_empty() {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    });
    sse_response(stream)
}
