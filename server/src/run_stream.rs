//! `GET /api/runs/<run id>/events`: a project command's run as server-sent events (`run`), each
//! with its number as `id`, from `after` / `Last-Event-ID` on. The runs reader serves them from
//! the database, so any instance serves any run and a reload reattaches: a finished run is
//! replayed from its first event, then the response ends. When nothing more can come (the run
//! has ended and `after` is its last event) the answer is 204 No Content, which also tells an
//! EventSource not to connect again. Only the run's owner can follow it (404 for anyone else),
//! and only from this site's own pages.

use std::convert::Infallible;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use services::AuthenticatedUser;

use crate::AppState;
use crate::event_stream::{EventsQuery, error_response, events_request, no_content, sse_response};

pub const EVENTS_PATH: &str = "/api/runs/{run_id}/events";

pub async fn events(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(run_id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let request = match events_request(&headers, &run_id, &query, "a run") {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    let (run_id, after) = (request.id, i64::try_from(request.after).unwrap_or(i64::MAX));
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
            return no_content();
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
    sse_response(stream)
}
