//! The one error type of the app's server functions and pages. What it displays is safe to show a
//! person: internal failures carry only a reference, and their details go to the server's log.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use server_fn::Bytes;
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The request was understood but its content is wrong; the text says what to change.
    #[error("{0}")]
    BadRequest(String),
    #[error("Please sign in to continue.")]
    Unauthorized,
    #[error("You are not allowed to do that.")]
    Forbidden,
    #[error("That page or item does not exist.")]
    NotFound,
    /// The request clashes with what exists (an email already registered, ...).
    #[error("{0}")]
    Conflict(String),
    /// Sign-in refused; the text never says whether the email exists.
    #[error("{0}")]
    SignInRefused(String),
    /// The request is larger than the server accepts.
    #[error("{0}")]
    TooLarge(String),
    /// A limit of the person's plan.
    #[error("{0}")]
    LimitReached(String),
    #[error("Too many attempts; try again in {retry_after_seconds} seconds.")]
    RateLimited { retry_after_seconds: u64 },
    /// The server is at capacity for this work; nothing was done.
    #[error("The server is busy; try again in {retry_after_seconds} seconds.")]
    Busy { retry_after_seconds: u64 },
    /// No AI provider can serve the request, or the provider refused or failed; the text says
    /// what the person can do.
    #[error("{0}")]
    Provider(String),
    /// Something failed on the server. Only the reference reaches the browser.
    #[error(
        "Something went wrong on our side. If it keeps happening, report reference {reference}."
    )]
    Internal { reference: String },
    /// The browser could not reach the server, or could not read its answer.
    #[error("Could not reach the server; check your connection and try again.")]
    Unreachable,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::SignInRefused(_) => StatusCode::UNAUTHORIZED,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::LimitReached(_) => StatusCode::FORBIDDEN,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Provider(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Unreachable => StatusCode::BAD_GATEWAY,
        }
    }

    /// Logs `error` in full under a fresh reference and returns an error that shows only the
    /// reference.
    #[cfg(feature = "ssr")]
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        tracing::error!(%reference, %error, "internal error");
        AppError::Internal { reference }
    }

    /// Gives the response of the server function or page being served this error's status (and
    /// `Retry-After` when it has one). Outside a request it does nothing.
    #[cfg(feature = "ssr")]
    pub fn set_response_status(&self) {
        let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() else {
            return;
        };
        response.set_status(self.status());
        if let AppError::RateLimited {
            retry_after_seconds,
        }
        | AppError::Busy {
            retry_after_seconds,
        } = self
            && let Ok(value) = http::HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.insert_header(http::header::RETRY_AFTER, value);
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let error = Self::from_server_fn_error_inner(value);
        #[cfg(feature = "ssr")]
        error.set_response_status();
        error
    }

    /// Every error a server function answers with is serialized here, on the server, while its
    /// response is being made: the response's status follows the error whichever way the
    /// function returned it, so a refusal is never a 500 because no one set its status.
    fn ser(&self) -> Bytes {
        #[cfg(feature = "ssr")]
        self.set_response_status();
        serde_json::to_vec(self).map_or_else(
            |_| Bytes::from_static(br#"{"Internal":{"reference":"unserializable"}}"#),
            Bytes::from,
        )
    }
}

impl AppError {
    fn from_server_fn_error_inner(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(detail) => {
                AppError::BadRequest(format!("The request's fields could not be read: {detail}"))
            }
            ServerFnErrorErr::MissingArg(name) => {
                AppError::BadRequest(format!("The request is missing the field \"{name}\"."))
            }
            // On the server these mean the client's request could not be read (its body is not
            // text, not JSON, or was cut); in the browser, that the server's answer could not be.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Request(detail) | ServerFnErrorErr::Deserialization(detail) => {
                AppError::BadRequest(format!("The request could not be read: {detail}"))
            }
            #[cfg(not(feature = "ssr"))]
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Deserialization(_) => {
                AppError::Unreachable
            }
            #[cfg(feature = "ssr")]
            other => AppError::internal(other),
            #[cfg(not(feature = "ssr"))]
            _ => AppError::Internal {
                reference: "in the browser".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_kind_of_error() {
        assert_eq!(
            AppError::BadRequest("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(AppError::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(AppError::Unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            AppError::Internal {
                reference: "r".into()
            }
            .status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            AppError::TooLarge("x".into()).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    /// On the server, a request that cannot be read is the client's mistake: 400 with what was
    /// wrong, never "could not reach the server" (502).
    #[cfg(feature = "ssr")]
    #[test]
    fn an_unreadable_request_is_a_bad_request_on_the_server() {
        for error in [
            ServerFnErrorErr::Deserialization("expected value at line 1 column 1".into()),
            ServerFnErrorErr::Request("invalid utf-8 sequence".into()),
        ] {
            let error = AppError::from_server_fn_error(error);
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{error:?}");
            assert!(
                error
                    .to_string()
                    .starts_with("The request could not be read: "),
                "{error}"
            );
        }
    }

    /// The status of a server function's answer follows the error it returns, even when no one
    /// set it before.
    #[cfg(feature = "ssr")]
    #[test]
    fn serializing_an_error_sets_its_status_and_retry_after() {
        use leptos::prelude::{Owner, provide_context};
        let owner = Owner::new();
        owner.with(|| {
            let response = leptos_axum::ResponseOptions::default();
            provide_context(response.clone());
            let bytes = AppError::BadRequest("Pick pinned or dropped.".into()).ser();
            assert_eq!(
                serde_json::from_slice::<AppError>(&bytes).unwrap(),
                AppError::BadRequest("Pick pinned or dropped.".into())
            );
            assert_eq!(
                response.0.read().unwrap().status,
                Some(StatusCode::BAD_REQUEST)
            );
            AppError::Busy {
                retry_after_seconds: 7,
            }
            .ser();
            let parts = response.0.read().unwrap();
            assert_eq!(parts.status, Some(StatusCode::SERVICE_UNAVAILABLE));
            assert_eq!(parts.headers[http::header::RETRY_AFTER], "7");
        });
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn internal_errors_show_a_reference_and_never_the_detail() {
        let error = AppError::internal("connection to 10.0.0.7:5432 refused; password=hunter2");
        let shown = error.to_string();
        assert!(
            !shown.contains("10.0.0.7") && !shown.contains("hunter2"),
            "{shown}"
        );
        let AppError::Internal { reference } = &error else {
            panic!("expected an internal error");
        };
        assert_eq!(reference.len(), 12);
        assert!(shown.contains(reference.as_str()));
        let serialized = serde_json::to_string(&error).unwrap();
        assert!(!serialized.contains("hunter2"));

        let from_server_fn = AppError::from_server_fn_error(ServerFnErrorErr::ServerError(
            "disk /var/lib/secret full".into(),
        ));
        assert!(!from_server_fn.to_string().contains("/var/lib/secret"));
    }
}
