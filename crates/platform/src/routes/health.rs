//! Liveness, readiness and Prometheus metrics.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Routes of this module (outside `/api`: probes and scrapers).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

/// The process-wide Prometheus recorder (installed once, shared by every app
/// in the process, e.g. several in one test binary).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok().map(|_| handle)
        })
        .as_ref()
}

/// Installs the recorder and, once per process, a task that drains its
/// histograms every few seconds (without it they grow with every request
/// until the next scrape).
pub fn start_upkeep() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    let Some(handle) = prometheus() else { return };
    STARTED.call_once(|| {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            });
        }
    });
}

/// Middleware counting requests and their latency by route template.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method), ("path", path), ("status", status)];
    metrics::counter!("westtek_http_requests_total", &labels).increment(1);
    metrics::histogram!("westtek_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the metadata store and the event bus answer (a service
/// without them cannot do its work); the body names what does not.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.count_users().await {
        tracing::warn!(error = %e, "not ready: store unreachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metadata store unreachable",
        )
            .into_response();
    }
    if let Err(e) = state.bus.check().await {
        tracing::warn!(error = %e, "not ready: event bus unreachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "event bus unreachable").into_response();
    }
    "ready".into_response()
}

async fn metrics_text() -> Response {
    let body = prometheus().map(|h| h.render()).unwrap_or_default();
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}
