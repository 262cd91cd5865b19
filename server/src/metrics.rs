//! Prometheus metrics: request counts and latency histograms by route, and the database pool.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

const REQUEST_DURATION: &str = "http_request_duration_seconds";
const REQUESTS: &str = "http_requests_total";
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's metrics registry. There is one per process (the `metrics` facade is global),
/// so every [`Metrics`] shares it.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    pub fn install() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), LATENCY_BUCKETS);
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(error) => {
                    tracing::warn!(%error, "latency buckets refused; using summaries");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            if let Err(error) = ::metrics::set_global_recorder(recorder) {
                tracing::warn!(%error, "another metrics recorder is installed");
            }
            ::metrics::describe_counter!(
                REQUESTS,
                "HTTP requests answered, by method, route and status"
            );
            ::metrics::describe_histogram!(
                REQUEST_DURATION,
                ::metrics::Unit::Seconds,
                "Time to answer HTTP requests, by method, route and status"
            );
            handle
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// Folds the latency samples recorded since the last call into their histograms, every
    /// `period`, for as long as the server runs. The recorder keeps each sample until then (or
    /// until `/metrics` is scraped): without this a server nobody scrapes would hold eight bytes
    /// more for every request it ever answered.
    pub async fn keep_up(self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.handle.run_upkeep();
        }
    }
}

/// Middleware: counts and times every request under its route pattern (never the raw path,
/// which would make a series per URL).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "fallback".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    ::metrics::counter!(REQUESTS, &labels).increment(1);
    ::metrics::histogram!(REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let pool = state.services.database.pool_statistics();
    let backend = state.services.database.backend().name();
    ::metrics::gauge!("db_pool_connections", "backend" => backend).set(f64::from(pool.size));
    ::metrics::gauge!("db_pool_idle_connections", "backend" => backend).set(f64::from(pool.idle));
    ::metrics::gauge!("db_pool_max_connections", "backend" => backend).set(f64::from(pool.max));
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.handle.render(),
    )
}
