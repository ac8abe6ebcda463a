//! Logs, request spans and metrics.
//!
//! Request spans carry the method, the route *pattern* (`/api/v1/admin/users/{id}`, never the
//! raw path or query, which may hold identifiers), a request id (also sent back as
//! `x-request-id`), the caller's role, and the caller's id only for staff: a patient's account
//! id would identify a patient, and nothing that does goes into logs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _, web};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use carehub_domain::jobs::{JobCount, JobKind, JobState};

use crate::settings::LogFormat;
use crate::state::AppState;

/// Installs the global log subscriber, writing to standard error.
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    // A subscriber already installed (tests start several servers in one process) is fine.
    let _ = result;
}

/// The route pattern a request matched, or `unmatched` (so unknown paths add no label values).
fn route_of(request: &ServiceRequest) -> String {
    request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// Builds request spans with no raw path or query in them.
#[derive(Debug)]
pub struct CareHubRootSpan;

impl RootSpanBuilder for CareHubRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route_of(request),
            request_id = %request_id,
            role = tracing::field::Empty,
            user_id = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("status", status.as_u16());
    }
}

/// Times every request, counts it by route and status, logs its completion and returns the
/// request id to the client.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = route_of(&request);
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|state| Arc::clone(&state.metrics));
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string);

    let outcome = next.call(request).await;
    let elapsed = started.elapsed();
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    if let Some(metrics) = metrics {
        metrics.record_request(&method, &route, status.as_u16(), elapsed);
    }
    tracing::info!(
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1_000.0,
        "request completed"
    );
    let mut response = outcome?;
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    Ok(response)
}

const JOB_DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// This server's metrics. Each server owns its recorder (no process-wide global), so several
/// servers in one process, as in tests, keep their own counts.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// # Errors
    /// When the histogram buckets are rejected (they are constant and valid).
    pub fn new() -> Result<Self, metrics_exporter_prometheus::BuildError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".into()),
                &LATENCY_BUCKETS,
            )?
            .set_buckets_for_metric(
                Matcher::Full("carehub_job_duration_seconds".into()),
                &JOB_DURATION_BUCKETS,
            )?
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_counter!(
                "http_requests_total",
                "HTTP requests by method, route and status"
            );
            metrics::describe_histogram!(
                "http_request_duration_seconds",
                metrics::Unit::Seconds,
                "HTTP request latency by method, route and status"
            );
            metrics::describe_histogram!(
                "carehub_job_duration_seconds",
                metrics::Unit::Seconds,
                "How long jobs run on this instance, by kind and outcome (succeeded, failed)"
            );
            metrics::describe_gauge!(
                "carehub_jobs",
                "Jobs in the queue (all instances), by kind and state, as of the last scrape"
            );
        });
        Ok(Self { recorder, handle })
    }

    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        metrics::with_local_recorder(&self.recorder, || {
            metrics::counter!("http_requests_total", &labels).increment(1);
            metrics::histogram!("http_request_duration_seconds", &labels)
                .record(elapsed.as_secs_f64());
        });
    }

    /// One job run on this instance: its kind, `succeeded` or `failed`, and how long it took.
    pub fn record_job(&self, kind: &str, outcome: &'static str, elapsed: Duration) {
        let labels = [("kind", kind.to_owned()), ("outcome", outcome.to_owned())];
        metrics::with_local_recorder(&self.recorder, || {
            metrics::histogram!("carehub_job_duration_seconds", &labels)
                .record(elapsed.as_secs_f64());
        });
    }

    /// The queue's job counts, every kind and state included (0 where there are none, so a
    /// state that emptied does not keep its last count).
    pub fn set_job_counts(&self, counts: &[JobCount]) {
        metrics::with_local_recorder(&self.recorder, || {
            for kind in JobKind::ALL {
                for state in JobState::ALL {
                    let count = counts
                        .iter()
                        .find(|c| c.kind == *kind && c.state == *state)
                        .map_or(0, |c| c.count);
                    let labels = [("kind", kind.as_str()), ("state", state.as_str())];
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!("carehub_jobs", &labels).set(count as f64);
                }
            }
        });
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}
