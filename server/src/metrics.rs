//! Prometheus metrics: request counts and latency histograms by route, and the database pool.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
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

/// The route label of a request that matched no route (static files, the 404 page).
const UNMATCHED_ROUTE: &str = "fallback";
/// The method label of every method but the standard ones, and the status label of a status
/// outside 100..=599.
const OTHER: &str = "other";

/// Middleware: counts and times every request under its route pattern (never the raw path,
/// which would make a series per URL). Every label has a bounded set of values, whatever a
/// client sends: see [`request_labels`].
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let labels = request_labels(&method, route.as_ref(), response.status());
    ::metrics::counter!(REQUESTS, &labels).increment(1);
    ::metrics::histogram!(REQUEST_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// The labels of a request's series. A client chooses the method and the path, so neither is
/// used as sent: the method is one of the nine standard ones or `other` (an invented method
/// would otherwise make series kept for as long as the process lives), the route is the pattern
/// the router matched (a fixed set) or `fallback`, and the status is a number of 100..=599 or
/// `other`.
pub fn request_labels(
    method: &Method,
    route: Option<&MatchedPath>,
    status: StatusCode,
) -> [(&'static str, String); 3] {
    let route = route.map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let status = if (100..600).contains(&status.as_u16()) {
        status.as_u16().to_string()
    } else {
        OTHER.to_owned()
    };
    [
        ("method", method_label(method).to_owned()),
        ("route", route.to_owned()),
        ("status", status),
    ]
}

/// One of the standard methods (RFC 9110, and PATCH), or `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER,
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn invented_methods() -> impl Iterator<Item = Method> {
        (0..5000).map(|index| {
            Method::from_bytes(format!("INVENTED{index}").as_bytes()).expect("a method")
        })
    }

    #[test]
    fn invented_methods_share_one_label() {
        let mut methods = BTreeSet::new();
        for method in invented_methods().chain([Method::from_bytes(b"get").expect("a method")]) {
            let [(_, label), _, _] = request_labels(&method, None, StatusCode::OK);
            methods.insert(label);
        }
        assert_eq!(methods, BTreeSet::from([OTHER.to_owned()]));
        for (method, label) in [
            (Method::GET, "GET"),
            (Method::HEAD, "HEAD"),
            (Method::POST, "POST"),
            (Method::PUT, "PUT"),
            (Method::DELETE, "DELETE"),
            (Method::PATCH, "PATCH"),
            (Method::OPTIONS, "OPTIONS"),
            (Method::CONNECT, "CONNECT"),
            (Method::TRACE, "TRACE"),
        ] {
            assert_eq!(request_labels(&method, None, StatusCode::OK)[0].1, label);
        }
    }

    #[test]
    fn routes_and_statuses_are_bounded() {
        let [_, (_, route), (_, status)] =
            request_labels(&Method::GET, None, StatusCode::NOT_FOUND);
        assert_eq!((route.as_str(), status.as_str()), (UNMATCHED_ROUTE, "404"));
        let odd = StatusCode::from_u16(999).expect("a status");
        assert_eq!(request_labels(&Method::GET, None, odd)[2].1, OTHER);
    }

    /// Through the middleware and the recorder: 5,000 invented methods, on a route and on no
    /// route, add no series beyond `other`.
    #[tokio::test]
    async fn invented_methods_add_no_series_to_the_exposition() {
        const ROUTE: &str = "/metrics-test/cardinality";
        let metrics = Metrics::install();
        let router = Router::new()
            .route(ROUTE, get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(track));
        for (index, method) in invented_methods().enumerate() {
            let path = if index % 2 == 0 {
                ROUTE.to_owned()
            } else {
                format!("/metrics-test/unmatched/{index}")
            };
            let request = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .expect("a request");
            router.clone().oneshot(request).await.expect("an answer");
        }
        let exposition = metrics.handle.render();
        let mut methods = BTreeSet::new();
        let mut routes = BTreeSet::new();
        for line in exposition.lines().filter(|line| line.starts_with(REQUESTS)) {
            let label = |name: &str| {
                let start = line.find(&format!("{name}=\""))? + name.len() + 2;
                let length = line[start..].find('"')?;
                Some(line[start..start + length].to_owned())
            };
            methods.extend(label("method"));
            routes.extend(label("route"));
        }
        assert!(
            !exposition.contains("INVENTED"),
            "an invented method is a label"
        );
        assert!(
            !exposition.contains("/metrics-test/unmatched"),
            "a raw path is a label"
        );
        assert!(methods.contains(OTHER), "{exposition}");
        assert!(
            routes.contains(ROUTE) && routes.contains(UNMATCHED_ROUTE),
            "{exposition}"
        );
        let standard = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", OTHER,
        ];
        assert!(
            methods
                .iter()
                .all(|method| standard.contains(&method.as_str())),
            "{methods:?}"
        );
    }
}
