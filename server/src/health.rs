//! Liveness and readiness, for load balancers and orchestrators.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;

const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`'s query.
#[derive(Debug, Default, Deserialize)]
pub struct ReadinessQuery {
    /// `?details=1`: answer with JSON that also holds the sandbox's layers.
    details: Option<String>,
}

/// `GET /readyz`: 200 when the database answers within two seconds, this instance's master
/// key is still the database's (another instance may have rotated it) and its writes of runs
/// do not fail (it can hold leases), 503 otherwise. The reason is logged (a changed key once),
/// never returned in detail. With `?details=1` the answer is JSON: `status`, and `sandbox`,
/// each layer of the sandbox as probed at start and whether project commands may run here
/// (with the reason and the fix when not); the runner being disabled does not make the
/// instance unready.
pub async fn readyz(
    State(state): State<AppState>,
    Query(query): Query<ReadinessQuery>,
) -> Response {
    let (status, text) = readiness(&state).await;
    if query.details.is_none() {
        return (status, text).into_response();
    }
    let body = serde_json::json!({
        "status": text,
        "sandbox": state.services.runner.status(),
    });
    (status, Json(body)).into_response()
}

async fn readiness(state: &AppState) -> (StatusCode, &'static str) {
    static KEY_CHANGE_LOGGED: AtomicBool = AtomicBool::new(false);
    match tokio::time::timeout(READINESS_TIMEOUT, state.services.database.ping()).await {
        Ok(Ok(())) => match state.services.master_key_is_current().await {
            Ok(true) if state.services.runs.cannot_hold_leases() => {
                tracing::warn!("not ready: this instance's writes of its runs fail");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: cannot hold leases",
                )
            }
            Ok(true) => (StatusCode::OK, "ready"),
            Ok(false) => {
                if !KEY_CHANGE_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "not ready: the database's master key changed (rotated by another \
                         instance?); this instance cannot decrypt stored provider keys. Restart \
                         it with the new key (ASYNC_CODER_MASTER_KEY or --master-key-file)."
                    );
                }
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: master key outdated",
                )
            }
            Err(error) => {
                tracing::warn!(%error, "not ready: the master key check could not be read");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: database unavailable",
                )
            }
        },
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
