//! `GET /api/chat/answers/<message id>/events`: an answer as server-sent events. Each event's
//! `id` is its sequence number; a browser that reconnects (EventSource does so by itself, with
//! `Last-Event-ID`) or that reloads the page (`?after=<n>`) gets exactly the events after that
//! one. An answer no longer being generated comes as one `stored` event holding the message as
//! saved. Only the answer's owner can follow it (404 for anyone else, as for a message that does
//! not exist), and only from this site's own pages.
//!
//! Any instance serves any answer: one this instance generates is followed from memory, one
//! another instance generates (or one whose instance died, until its recovery ends it) from its
//! run's rows, under the same numbers (see [`services::Services::follow_answer`]).
//!
//! Every response ends; none waits for events that cannot come. A stored answer is its one
//! `stored` event whatever `after` says. A live answer streams until its `finished` event, if
//! `after` is a number it gave out; when there is nothing to send and nothing more will come
//! (the answer is over and `after` is its last event, or `after` is past the last event it gave
//! out, a number it never sent, see [`services::chat::live::LiveAnswer::follow`]) the answer is
//! 204 No Content, which also tells an EventSource not to connect again.

use std::convert::Infallible;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use services::AuthenticatedUser;
use services::chat::AnswerFeed;

use crate::AppState;
use crate::event_stream::{EventsQuery, error_response, events_request, no_content, sse_response};

pub const EVENTS_PATH: &str = "/api/chat/answers/{message_id}/events";

fn event_of(sequence: Option<u64>, event: &app::types::AnswerEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    let event = Event::default().event("answer").data(data);
    match sequence {
        Some(sequence) => event.id(sequence.to_string()),
        None => event,
    }
}

pub async fn events(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(message_id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    let request = match events_request(&headers, &message_id, &query, "an answer") {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    let (message, after) = (request.id, request.after);
    let feed = match state.services.follow_answer(&user, message, after).await {
        Ok(feed) => feed,
        Err(error) => return error_response(error),
    };
    let stream = match feed {
        AnswerFeed::Live(events) => {
            let mut events = events.peekable();
            // A follower with nothing to send and nothing to wait for ends at once.
            if let Some(None) = std::pin::Pin::new(&mut events).peek().now_or_never() {
                return no_content();
            }
            events
                .map(|(sequence, event)| {
                    Ok::<Event, Infallible>(event_of(
                        Some(sequence),
                        &app::api::chat::event_of(event),
                    ))
                })
                .boxed()
        }
        AnswerFeed::Stored(message) => {
            let event = app::types::AnswerEvent::Stored {
                message: app::api::chat::message_of(*message),
            };
            futures::stream::once(async move { Ok(event_of(None, &event)) }).boxed()
        }
    };
    sse_response(stream)
}
