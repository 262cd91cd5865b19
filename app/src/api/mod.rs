//! Server functions, one module per area. Every server function has an explicit, stable endpoint
//! `/api/<area>/<action>` (listed in ARCHITECTURE.md): they are public HTTP endpoints.

pub mod settings;

/// Sets the HTTP status of the server function's response from the error, and returns it.
#[cfg(feature = "ssr")]
pub(crate) fn reject(error: crate::error::AppError) -> crate::error::AppError {
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(error.status());
    }
    error
}
