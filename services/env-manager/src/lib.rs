//! env-manager: environments (create with a real venv, list, change,
//! delete), Jupyter launch/stop and the authenticated Jupyter gateway.
//! A library exposing `router()`; `westtek up` and `westtek serve
//! env-manager` serve it.

pub mod adopt;
pub mod dto;
pub mod environments;
pub mod gateway;
pub mod jupyter;

use axum::Router;
use utoipa::OpenApi;
use westtek_domain::{AuditDraft, DomainEvent, Environment, LabId};
use westtek_platform::AppState;

/// The service name in events and logs.
pub const SERVICE: &str = "env-manager";

/// All routes of the service.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(environments::router())
        .route("/api/environments/adopt", axum::routing::post(adopt::adopt))
        .route(
            "/api/environments/{id}/agent-credential",
            axum::routing::post(adopt::issue).delete(adopt::revoke),
        )
        .merge(jupyter::router())
        .merge(gateway::router())
}

/// OpenAPI of the service.
#[derive(OpenApi)]
#[openapi(
    paths(
        environments::list, environments::create, environments::get_one, environments::update, environments::delete,
        jupyter::launch, jupyter::stop,
        adopt::adopt, adopt::issue, adopt::revoke,
    ),
    tags(
        (name = "environments", description = "Jupyter environments of a lab"),
        (name = "jupyter", description = "Jupyter servers; JupyterLab itself is served at /jupyter/{environment_id}/lab"),
    )
)]
pub struct EnvManagerApi;

/// Brings recorded state in line with reality after a (re)start.
///
/// # Errors
/// Store failures.
pub async fn reconcile(state: &AppState) -> westtek_domain::Result<()> {
    environments::reconcile_builds(state).await?;
    jupyter::reconcile_servers(state).await
}

/// Starts the service's background tasks.
pub fn spawn_background(state: AppState) -> Vec<tokio::task::JoinHandle<()>> {
    vec![jupyter::spawn_monitor(state)]
}

/// An audit draft for something the platform does by itself.
pub fn system_audit(
    lab: Option<LabId>,
    action: &str,
    kind: &str,
    target: String,
    details: serde_json::Value,
) -> AuditDraft {
    AuditDraft {
        actor_id: None,
        actor_name: "westtek (system)".into(),
        lab_id: lab,
        action: action.into(),
        target_kind: kind.into(),
        target_id: target,
        request_id: "-".into(),
        details,
    }
}

/// Publishes an environment event; a bus failure is logged, never fails the
/// request (the state change is already committed and audited).
pub async fn publish(
    state: &AppState,
    event_type: &str,
    env: &Environment,
    extra: serde_json::Value,
) {
    let mut data = serde_json::json!({
        "environment_id": env.id.to_string(),
        "name": env.name,
        "researcher_id": env.researcher_id.to_string(),
        "status": env.status,
        "jupyter_status": env.jupyter_status,
    });
    if let (serde_json::Value::Object(d), serde_json::Value::Object(x)) = (&mut data, extra) {
        d.extend(x);
    }
    let ev = DomainEvent::new(event_type, SERVICE, env.lab_id, state.clock.now(), data);
    if let Err(e) = state.bus.publish(&ev).await {
        tracing::warn!(error = %e, event = event_type, "could not publish event");
    }
}
