//! Server functions, one module per area. Every server function has an explicit, stable endpoint
//! `/api/<area>/<action>` (listed in ARCHITECTURE.md): they are public HTTP endpoints.

pub mod account;
pub mod admin;
pub mod ai;
pub mod auth;
pub mod chat;
pub mod files;
pub mod projects;
pub mod providers;
#[cfg(feature = "ssr")]
pub mod request;
pub mod settings;
pub mod tokens;

/// The server functions a visitor may call without signing in. Every other `/api/` endpoint is
/// refused with 401 before its request is even read (the server enforces this list; the
/// isolation test walks every registered endpoint against it).
pub const PUBLIC_ENDPOINTS: &[&str] = &[
    "/api/auth/sign-up",
    "/api/auth/sign-in",
    "/api/auth/me",
    "/api/settings/theme",
    "/api/settings/editor-font-size",
    "/api/settings/reset",
];

/// Sets the HTTP status of the server function's response from the error, and returns it.
#[cfg(feature = "ssr")]
pub(crate) fn reject(error: crate::error::AppError) -> crate::error::AppError {
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(error.status());
        if let crate::error::AppError::RateLimited {
            retry_after_seconds,
        } = &error
            && let Ok(value) = http::HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.insert_header(http::header::RETRY_AFTER, value);
        }
    }
    error
}

/// Turns a use case's refusal into the app's error and sets the response's status.
#[cfg(feature = "ssr")]
pub(crate) fn reject_service_error(error: services::Error) -> crate::error::AppError {
    reject(app_error_of(error))
}

/// The app's error for a use case's refusal (internal details go to the log only).
#[cfg(feature = "ssr")]
pub fn app_error_of(error: services::Error) -> crate::error::AppError {
    use crate::error::AppError;
    match error {
        services::Error::Invalid(message) => AppError::BadRequest(message),
        services::Error::EmailTaken => AppError::Conflict(error.to_string()),
        services::Error::SignInFailed | services::Error::AccountDisabled => {
            AppError::SignInRefused(error.to_string())
        }
        services::Error::Unauthorized => AppError::Unauthorized,
        services::Error::NotFound => AppError::NotFound,
        services::Error::Forbidden => AppError::Forbidden,
        services::Error::Conflict(message) => AppError::Conflict(message),
        services::Error::LimitReached(message) => AppError::LimitReached(message),
        services::Error::RateLimited { retry_after } => AppError::RateLimited {
            retry_after_seconds: u64::try_from(retry_after.num_seconds()).unwrap_or(1).max(1),
        },
        services::Error::NoProvider(message) => AppError::Provider(message),
        services::Error::Provider(error) => AppError::Provider(error.describe()),
        services::Error::Internal(detail) => AppError::internal(detail),
    }
}
