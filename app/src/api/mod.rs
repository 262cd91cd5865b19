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
pub mod runner;
pub mod settings;
pub mod tasks;
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

/// What a personal access token (`Authorization: Bearer acp_…`) needs to call each endpoint:
/// the scopes it must hold (`ai`, `read`, `write`). An endpoint not listed is for browser
/// sessions only (the account, its tokens, provider keys, administration, signing in and out),
/// and a token is refused there whatever its scopes: this list is an allow-list.
pub const TOKEN_ENDPOINTS: &[(&str, &[&str])] = &[
    ("/api/auth/me", &[]),
    ("/api/ai/models", &["read"]),
    ("/api/ai/usage", &["read"]),
    ("/api/chat/conversations", &["read"]),
    ("/api/chat/open", &["read"]),
    ("/api/chat/setup", &["read"]),
    ("/api/chat/context/preview", &["read"]),
    ("/api/chat/context/choose", &["write"]),
    ("/api/chat/default-model", &["write"]),
    ("/api/chat/delete", &["write"]),
    ("/api/chat/mode", &["write"]),
    ("/api/chat/model", &["write"]),
    ("/api/chat/modes/delete", &["write"]),
    ("/api/chat/modes/save", &["write"]),
    ("/api/chat/new", &["write"]),
    ("/api/chat/rename", &["write"]),
    ("/api/chat/stop", &["write"]),
    ("/api/chat/send", &["ai", "write"]),
    ("/api/chat/regenerate", &["ai", "write"]),
    ("/api/chat/continue", &["ai", "write"]),
    ("/api/chat/edit", &["ai", "write"]),
    ("/api/files/open", &["read"]),
    ("/api/files/revision", &["read"]),
    ("/api/files/revisions", &["read"]),
    ("/api/files/search", &["read"]),
    ("/api/files/tree", &["read"]),
    ("/api/files/create", &["write"]),
    ("/api/files/create-folder", &["write"]),
    ("/api/files/delete", &["write"]),
    ("/api/files/move", &["write"]),
    ("/api/files/restore", &["write"]),
    ("/api/files/save", &["write"]),
    ("/api/projects/get", &["read"]),
    ("/api/projects/list", &["read"]),
    ("/api/projects/context-index", &["read"]),
    ("/api/projects/create", &["write"]),
    ("/api/projects/update", &["write"]),
    ("/api/projects/delete", &["write"]),
    ("/api/projects/import", &["write"]),
    ("/api/runner/project", &["read"]),
    ("/api/runner/save-command", &["write"]),
    ("/api/runner/delete-command", &["write"]),
    ("/api/runner/start", &["write"]),
    ("/api/runner/stop", &["write"]),
    ("/api/agent/tasks", &["read"]),
    ("/api/agent/task", &["read"]),
    ("/api/agent/changes", &["read"]),
    ("/api/agent/cancel", &["write"]),
    ("/api/agent/pause", &["write"]),
    ("/api/agent/apply", &["write"]),
    ("/api/agent/start", &["ai", "write"]),
    ("/api/agent/resume", &["ai", "write"]),
    ("/api/agent/follow-up", &["ai", "write"]),
    ("/api/agent/reject", &["ai", "write"]),
];

/// The scopes a personal access token needs for `path`, or `None` when tokens may not use it.
pub fn token_scopes_needed(path: &str) -> Option<&'static [&'static str]> {
    if let Some((_, needed)) = TOKEN_ENDPOINTS
        .iter()
        .find(|(endpoint, _)| *endpoint == path)
    {
        return Some(needed);
    }
    // Endpoints with an id in the path: an export, a chat answer's events.
    if path.starts_with("/api/projects/") && path.ends_with("/export.zip") {
        return Some(&["read"]);
    }
    if path.starts_with("/api/chat/answers/") && path.ends_with("/events") {
        return Some(&["read"]);
    }
    if path.starts_with("/api/runs/") && path.ends_with("/events") {
        return Some(&["read"]);
    }
    None
}

/// The scopes a personal access token needs for the async tasks' JSON API (`/api/tasks`):
/// reading (`GET`) needs `read`; creating a task, resuming it, a follow-up or sending hunks back
/// (which ask models) need `ai` and `write`; cancel, pause and apply need `write`.
pub fn task_api_token_scopes(method_is_get: bool, path: &str) -> Option<&'static [&'static str]> {
    if path != "/api/tasks" && !path.starts_with("/api/tasks/") {
        return None;
    }
    if method_is_get {
        return Some(&["read"]);
    }
    let asks_models = path == "/api/tasks"
        || path.ends_with("/resume")
        || path.ends_with("/follow-up")
        || path.ends_with("/changes/reject");
    if asks_models {
        Some(&["ai", "write"])
    } else {
        Some(&["write"])
    }
}

/// Sets the HTTP status of the server function's response from the error, and returns it.
#[cfg(feature = "ssr")]
pub(crate) fn reject(error: crate::error::AppError) -> crate::error::AppError {
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(error.status());
        if let crate::error::AppError::RateLimited {
            retry_after_seconds,
        }
        | crate::error::AppError::Busy {
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
        services::Error::SignInFailed => AppError::SignInRefused(error.to_string()),
        services::Error::Unauthorized => AppError::Unauthorized,
        services::Error::NotFound => AppError::NotFound,
        services::Error::Forbidden => AppError::Forbidden,
        services::Error::Conflict(message) => AppError::Conflict(message),
        services::Error::LimitReached(message) => AppError::LimitReached(message),
        services::Error::RateLimited { retry_after } => AppError::RateLimited {
            retry_after_seconds: u64::try_from(retry_after.num_seconds()).unwrap_or(1).max(1),
        },
        services::Error::Busy { retry_after } => AppError::Busy {
            retry_after_seconds: u64::try_from(retry_after.num_seconds()).unwrap_or(1).max(1),
        },
        services::Error::NoProvider(message) => AppError::Provider(message),
        services::Error::Provider(error) => AppError::Provider(error.describe()),
        services::Error::Internal(detail) => AppError::internal(detail),
    }
}
