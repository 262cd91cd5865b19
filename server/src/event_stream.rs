//! What the server-sent events endpoints (`chat_stream`, `run_stream`) share: the request's
//! checks (this site's pages only, the id in the path, where to resume from) and the response
//! (keep-alive comments, never cached, never held back by a proxy; 204 when nothing can come;
//! errors as `AppError` JSON without internal detail).

use std::convert::Infallible;
use std::str::FromStr;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;

/// How often a comment keeps a quiet stream (a slow first token, a silent command) alive.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// `?after=<n>`: the number of the last event the reader has (a reload).
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    after: Option<u64>,
}

/// A checked request for events: what to follow and the number of the last event the reader
/// has (`Last-Event-ID`, sent by an EventSource that reconnects, before `?after`; 0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsRequest<Id> {
    pub id: Id,
    pub after: u64,
}

/// Why a request for events is refused before anything is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// From another site's page: 403.
    CrossSite,
    /// The id does not parse: 404, as for an id nobody has.
    NotFound,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::CrossSite => {
                (StatusCode::FORBIDDEN, "Cross-site request refused.").into_response()
            }
            Refused::NotFound => error_response(services::Error::NotFound),
        }
    }
}

/// Checks a request for the events of `what` (named in the log): refused from another site's
/// pages, or when the id does not parse.
pub fn events_request<Id: FromStr>(
    headers: &HeaderMap,
    id: &str,
    query: &EventsQuery,
    what: &str,
) -> Result<EventsRequest<Id>, Refused> {
    if from_other_site(headers) {
        tracing::info!(what, "a cross-site request for events was refused");
        return Err(Refused::CrossSite);
    }
    let Ok(id) = id.parse() else {
        return Err(Refused::NotFound);
    };
    let last_seen = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    Ok(EventsRequest {
        id,
        after: last_seen.or(query.after).unwrap_or(0),
    })
}

/// Browsers say where a request comes from: refuse pages of other sites. (A program without a
/// browser's headers needs the session cookie or a token anyway.)
pub fn from_other_site(headers: &HeaderMap) -> bool {
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

/// A refusal or failure as the `AppError` JSON the pages read (internal detail only logged).
pub fn error_response(error: services::Error) -> Response {
    let error = app::api::app_error_of(error);
    let body = serde_json::to_string(&error).unwrap_or_else(|_| "\"NotFound\"".to_owned());
    (
        error.status(),
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Nothing to send and nothing more will come: 204, which also tells an EventSource not to
/// connect again.
pub fn no_content() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "no-store")],
    )
        .into_response()
}

/// The events as a server-sent events response.
pub fn sse_response<S>(events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
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
    use crate::request_guards::tests::headers;

    #[test]
    fn only_this_sites_pages_may_follow_events() {
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

    #[test]
    fn last_event_id_comes_before_after_and_bad_ids_are_not_found() {
        let query = EventsQuery { after: Some(7) };
        let request = events_request::<u32>(&headers(&[]), "5", &query, "test").unwrap();
        assert_eq!(request, EventsRequest { id: 5, after: 7 });
        let resumed =
            events_request::<u32>(&headers(&[("last-event-id", " 9 ")]), "5", &query, "test")
                .unwrap();
        assert_eq!(resumed.after, 9);
        let unreadable =
            events_request::<u32>(&headers(&[("last-event-id", "x")]), "5", &query, "test")
                .unwrap();
        assert_eq!(unreadable.after, 7);
        let none =
            events_request::<u32>(&headers(&[]), "5", &EventsQuery::default(), "test").unwrap();
        assert_eq!(none.after, 0);
        let missing = events_request::<u32>(&headers(&[]), "nope", &query, "test").unwrap_err();
        assert_eq!(missing, Refused::NotFound);
        assert_eq!(missing.into_response().status(), StatusCode::NOT_FOUND);
        let cross = events_request::<u32>(
            &headers(&[("sec-fetch-site", "cross-site")]),
            "5",
            &query,
            "test",
        )
        .unwrap_err();
        assert_eq!(cross.into_response().status(), StatusCode::FORBIDDEN);
    }
}
