//! `GET /api/runs/<run id>/events`: a project command's run as server-sent events (`run`), each
//! with its number as `id`, from `after` / `Last-Event-ID` on. The runs reader serves them from
//! the database, so any instance serves any run and a reload reattaches: a finished run is
//! replayed from its first event, then the response ends. When nothing more can come (the run
//! has ended and `after` is its last event) the answer is 204 No Content, which also tells an
//! EventSource not to connect again. Only the run's owner can follow it (404 for anyone else),
//! and only from this site's own pages.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use services::AuthenticatedUser;

use crate::AppState;
use crate::chat_stream::{error_response, from_other_site};

pub const EVENTS_PATH: &str = "/api/runs/{run_id}/events";

/// How often a comment keeps a quiet run's stream alive.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    after: Option<i64>,
}

pub async fn events(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(run_id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    if from_other_site(&headers) {
        tracing::info!("a cross-site request for a run's events was refused");
        return (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response();
    }
    let Ok(run_id) = run_id.parse() else {
        return error_response(services::Error::NotFound);
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok());
    let after = last_seen.or(query.after).unwrap_or(0).max(0);
    let reader = match state
        .services
        .follow_command_run(&user, run_id, after)
        .await
    {
        Ok(reader) => reader,
        Err(error) => return error_response(error),
    };
    match state.services.runs.run(run_id).await {
        Ok(Some(run)) if run.state.is_terminal() && run.last_seq <= after => {
            return (
                StatusCode::NO_CONTENT,
                [(header::CACHE_CONTROL, "no-store")],
            )
                .into_response();
        }
        Ok(_) => {}
        Err(error) => return error_response(error.into()),
    }
    let stream = futures::stream::unfold(reader, |mut reader| async move {
        match reader.next().await {
            Ok(Some(record)) => {
                let event = app::api::runner::run_event_of(record.event);
                let data = serde_json::to_string(&event).unwrap_or_else(|_| "{}".to_owned());
                let event = Event::default()
                    .event("run")
                    .id(record.seq.to_string())
                    .data(data);
                Some((Ok::<Event, Infallible>(event), reader))
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "reading a run's events failed");
                None
            }
        }
    });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("alive"))
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    // Proxies (nginx) must not hold the events back.
    response
        .headers_mut()
        .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    response
}
