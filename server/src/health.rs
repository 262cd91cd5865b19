//! Liveness and readiness, for load balancers and orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;

const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the database answers within two seconds, 503 otherwise. The reason is
/// logged, never returned.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(READINESS_TIMEOUT, state.services.database.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database unavailable",
            )
        }
        Err(_elapsed) => {
            tracing::warn!("not ready: the database did not answer within {READINESS_TIMEOUT:?}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: database unavailable",
            )
        }
    }
}
