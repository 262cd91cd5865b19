//! Liveness and readiness, for load balancers and orchestrators.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;

const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the database answers within two seconds, this instance's master
/// key is still the database's (another instance may have rotated it) and its writes of runs
/// do not fail (it can hold leases), 503 otherwise. The reason is logged (a changed key once),
/// never returned in detail.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
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
