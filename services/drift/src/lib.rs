//! drift: real-time drift detection for every ready environment against its
//! baseline snapshot (issue 5, "Drift model" in ARCHITECTURE.md): the
//! inotify watcher and the periodic sweep feed [`DriftHub`], which records
//! drift events in the `DriftStore`, keeps each environment's `drift_status`,
//! publishes `drift.detected`, streams events to dashboards (SSE), sends
//! alerts (webhooks, e-mail) by severity, and has the Drift Analyzer explain
//! CRITICAL drift. A library exposing `router(hub)`; `westtek up` and
//! `westtek serve drift` serve it.

pub mod alerting;
pub mod hub;
pub mod routes;
pub mod tools;

pub use hub::{DriftConfig, DriftHub, SERVICE};
pub use routes::router;

use utoipa::OpenApi;

/// OpenAPI of the service.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::environment_drift, routes::events, routes::stream_events, routes::accept,
        routes::rollback, routes::pin_baseline, routes::create_webhook, routes::list_webhooks,
        routes::delete_webhook, routes::dead_letters, routes::chat, routes::agent_inventory,
    ),
    tags((name = "drift", description = "Drift against the baseline snapshot: status, events, live stream, alerts, accept/rollback, the Drift Analyzer"))
)]
pub struct DriftApi;
