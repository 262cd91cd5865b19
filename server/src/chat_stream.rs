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
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use services::AuthenticatedUser;
use services::chat::AnswerFeed;

use crate::AppState;

pub const EVENTS_PATH: &str = "/api/chat/answers/{message_id}/events";

/// How often a comment keeps a quiet stream (a slow first token) alive.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    after: Option<u64>,
}

pub(crate) fn error_response(error: services::Error) -> Response {
    let error = app::api::app_error_of(error);
    let body = serde_json::to_string(&error).unwrap_or_else(|_| "\"NotFound\"".to_owned());
    (
        error.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn event_of(sequence: Option<u64>, event: &app::types::AnswerEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    let event = Event::default().event("answer").data(data);
    match sequence {
        Some(sequence) => event.id(sequence.to_string()),
        None => event,
    }
}

/// Browsers say where a request comes from: refuse pages of other sites. (A program without a
/// browser's headers needs the session cookie or a token anyway.)
pub(crate) fn from_other_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        return origin_host.is_none() || origin_host != text(header::HOST.as_str());
    }
    false
}

pub async fn events(
    State(state): State<AppState>,
    Extension(user): Extension<AuthenticatedUser>,
    Path(message_id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Response {
    if from_other_site(&headers) {
        tracing::info!("a cross-site request for an answer's events was refused");
        return (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response();
    }
    let Ok(message) = message_id.parse() else {
        return error_response(services::Error::NotFound);
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let after = last_seen.or(query.after).unwrap_or(0);
    let feed = match state.services.follow_answer(&user, message, after).await {
        Ok(feed) => feed,
        Err(error) => return error_response(error),
    };
    let stream = match feed {
        AnswerFeed::Live(events) => {
            let mut events = events.peekable();
            // A follower with nothing to send and nothing to wait for ends at once.
            if let Some(None) = std::pin::Pin::new(&mut events).peek().now_or_never() {
                return (
                    StatusCode::NO_CONTENT,
                    [(header::CACHE_CONTROL, "no-store")],
                )
                    .into_response();
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_this_sites_pages_may_follow_an_answer() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, HeaderValue::from_static(value));
            }
            map
        };
        assert!(!from_other_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(from_other_site(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(from_other_site(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        assert!(!from_other_site(&headers(&[
            ("origin", "http://127.0.0.1:3000"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(from_other_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:3000")
        ])));
        assert!(!from_other_site(&HeaderMap::new()));
    }
}
