//! Launching and stopping Jupyter servers, the per-lab running-server quota,
//! and keeping recorded state true to the processes: servers that exit on
//! their own (crash beyond the restart policy, idle culling) are marked
//! stopped, and at start-up every server recorded as running is reconciled.

use crate::dto::{EnvironmentResponse, LaunchRequest, LaunchResponse};
use crate::environments::{modify, operable};
use crate::{publish, system_audit};
use axum::extract::State;
use axum::routing::{delete, post};
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::Duration;
use tokio::sync::Mutex;
use westtek_domain::event::types;
use westtek_domain::ports::{LaunchSpec, ResourceLimits};
use westtek_domain::{
    AuditDraft, DomainError, EnvironmentFilter, EnvironmentId, EnvironmentStatus, JupyterStatus,
    Result,
};
use westtek_platform::auth::Caller;
use westtek_platform::extract::{parse_id, ApiJson, IdPath};
use westtek_platform::{ApiResult, AppState};

/// Routes of this module (seed paths).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/environments/jupyter", post(launch))
        .route("/api/environments/{id}/jupyter", delete(stop))
}

/// The URL prefix Jupyter serves under for `env`.
pub fn base_url(env: EnvironmentId) -> String {
    format!("/jupyter/{env}/")
}

/// Starts JupyterLab for an environment and waits until it answers through
/// the gateway's upstream. Launching a running server returns it as is.
#[utoipa::path(post, path = "/api/environments/jupyter", tag = "jupyter", request_body = LaunchRequest,
    responses((status = 200, body = LaunchResponse), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem), (status = 409, body = westtek_platform::Problem),
              (status = 502, body = westtek_platform::Problem)))]
pub async fn launch(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LaunchRequest>,
) -> ApiResult<Json<LaunchResponse>> {
    let id: EnvironmentId = parse_id("environment_id", &req.environment_id)?;
    let (env, _) = operable(&state, &caller, id).await?;
    if let Some(a) = &env.adopted {
        return Err(DomainError::Conflict(format!(
            "this environment was adopted from {}: its Jupyter is the researcher's own, run there; restore a snapshot of it into a new environment to run it on the platform",
            a.host
        ))
        .into());
    }
    let url = format!(
        "{}{}lab",
        state.config.public_url.trim_end_matches('/'),
        base_url(id)
    );
    let running = |url: String| {
        Json(LaunchResponse {
            environment_id: id.to_string(),
            jupyter_status: "running".into(),
            jupyter_url: url,
            secure_browser_url: state.config.secure_browser_url.clone(),
        })
    };
    let limits = {
        // The quota check and the reservation it allows happen under the
        // lab's gate; waiting for Jupyter happens outside it.
        let gate = lab_gate(env.lab_id);
        let _gate = gate.lock().await;
        if state.runtime.upstream(id).await.is_some() {
            return Ok(running(url));
        }
        let lab = state.store.get_lab(env.lab_id).await?;
        let mut in_use = 0;
        for status in [JupyterStatus::Starting, JupyterStatus::Running] {
            let page = state
                .store
                .list_environments(&EnvironmentFilter {
                    lab_id: Some(env.lab_id),
                    jupyter_status: Some(status),
                    limit: 1000,
                    ..Default::default()
                })
                .await?;
            in_use += page.items.iter().filter(|e| e.id != id).count();
        }
        if in_use >= lab.quotas.max_running_servers as usize {
            return Err(DomainError::QuotaExceeded(format!(
                "the lab already runs {in_use} of its {} Jupyter servers; stop one first",
                lab.quotas.max_running_servers
            ))
            .into());
        }
        modify(&state, id, None, |e| {
            if e.status != EnvironmentStatus::Ready {
                return Err(DomainError::Conflict(format!(
                    "the environment is {}; it can be launched once ready",
                    status_word(e.status)
                )));
            }
            if e.jupyter_status == JupyterStatus::Starting {
                return Err(DomainError::Conflict(
                    "Jupyter is already starting for this environment; retry in a moment".into(),
                ));
            }
            e.jupyter_status = JupyterStatus::Starting;
            Ok(())
        })
        .await?;
        ResourceLimits::from_quotas(&lab.quotas)
    };
    // Started in its own task so the record is settled even when the client
    // goes away while Jupyter starts.
    let audit_ok = caller.audit(
        Some(env.lab_id),
        "environment.launch",
        "environment",
        id,
        serde_json::json!({ "jupyter_url": url }),
    );
    let audit_failed = caller.audit(
        Some(env.lab_id),
        "environment.launch_failed",
        "environment",
        id,
        serde_json::json!({}),
    );
    let task = tokio::spawn(start_and_record(
        state.clone(),
        (env.lab_id, env.researcher_id),
        id,
        url.clone(),
        limits,
        audit_ok,
        audit_failed,
    ));
    match task.await {
        Ok(Ok(())) => Ok(running(url)),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(DomainError::internal(e).into()),
    }
}

/// Starts the server and records the outcome (running, or stopped with the
/// failure audited).
async fn start_and_record(
    state: AppState,
    (lab_id, researcher_id): (westtek_domain::LabId, westtek_domain::UserId),
    id: EnvironmentId,
    url: String,
    limits: ResourceLimits,
    audit_ok: AuditDraft,
    mut audit_failed: AuditDraft,
) -> Result<()> {
    let spec = LaunchSpec {
        env_id: id,
        lab_id,
        researcher_id,
        base_url: base_url(id),
        limits,
    };
    match state.runtime.start(&spec).await {
        // Conflict: it is already running (a concurrent start won the race).
        Ok(_) | Err(DomainError::Conflict(_)) => {
            let u = url.clone();
            let running = modify(&state, id, Some(audit_ok), move |e| {
                e.jupyter_status = JupyterStatus::Running;
                e.container_info.jupyter_url = Some(u.clone());
                Ok(())
            })
            .await?;
            publish(
                &state,
                types::ENVIRONMENT_LAUNCHED,
                &running,
                serde_json::json!({ "jupyter_url": url }),
            )
            .await;
            Ok(())
        }
        Err(e) => {
            if let serde_json::Value::Object(d) = &mut audit_failed.details {
                let code = match &e {
                    DomainError::Upstream { code, .. } => (*code).to_string(),
                    _ => "internal".to_string(),
                };
                d.insert("code".into(), serde_json::Value::String(code));
            }
            if let Err(record) = mark_stopped(&state, id, Some(audit_failed)).await {
                tracing::error!(error = %record, env = %id, "could not record a failed launch");
            }
            Err(e)
        }
    }
}

/// One gate per lab, for the running-server quota.
fn lab_gate(lab: westtek_domain::LabId) -> Arc<Mutex<()>> {
    static GATES: OnceLock<StdMutex<HashMap<westtek_domain::LabId, Arc<Mutex<()>>>>> =
        OnceLock::new();
    let gates = GATES.get_or_init(Default::default);
    match gates.lock() {
        Ok(mut g) => g.entry(lab).or_default().clone(),
        // A poisoned map only loses sharing: a fresh gate still works.
        Err(_) => Arc::new(Mutex::new(())),
    }
}

fn status_word(s: EnvironmentStatus) -> &'static str {
    match s {
        EnvironmentStatus::Provisioning => "still being built",
        EnvironmentStatus::Ready => "ready",
        EnvironmentStatus::Deleting => "being deleted",
    }
}

/// Stops the environment's Jupyter server (running kernels end).
#[utoipa::path(delete, path = "/api/environments/{id}/jupyter", tag = "jupyter", params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentResponse), (status = 404, body = westtek_platform::Problem)))]
pub async fn stop(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<Json<EnvironmentResponse>> {
    let (env, _) = operable(&state, &caller, id).await?;
    state.runtime.stop(id).await?;
    let audit = caller.audit(
        Some(env.lab_id),
        "environment.stop",
        "environment",
        id,
        serde_json::json!({}),
    );
    let stopped = mark_stopped(&state, id, Some(audit)).await?;
    publish(
        &state,
        types::ENVIRONMENT_STOPPED,
        &stopped,
        serde_json::json!({ "reason": "requested" }),
    )
    .await;
    Ok(Json(stopped.into()))
}

async fn mark_stopped(
    state: &AppState,
    id: EnvironmentId,
    audit: Option<westtek_domain::AuditDraft>,
) -> Result<westtek_domain::Environment> {
    modify(state, id, audit, |e| {
        e.jupyter_status = JupyterStatus::Stopped;
        e.container_info.jupyter_url = None;
        Ok(())
    })
    .await
}

/// At start-up: every environment recorded with a server is marked stopped
/// (no server of this process runs yet; orphans were killed by the runtime).
///
/// # Errors
/// Store failures.
pub async fn reconcile_servers(state: &AppState) -> Result<()> {
    for status in [JupyterStatus::Running, JupyterStatus::Starting] {
        let recorded = state
            .store
            .list_environments(&EnvironmentFilter {
                jupyter_status: Some(status),
                limit: 100_000,
                ..Default::default()
            })
            .await?;
        for env in recorded.items {
            if state.runtime.upstream(env.id).await.is_some() {
                continue;
            }
            let audit = system_audit(
                Some(env.lab_id),
                "environment.jupyter_reconciled",
                "environment",
                env.id.to_string(),
                serde_json::json!({ "recorded": status, "found": "not running" }),
            );
            match mark_stopped(state, env.id, Some(audit)).await {
                Ok(e) => {
                    publish(
                        state,
                        types::ENVIRONMENT_STOPPED,
                        &e,
                        serde_json::json!({ "reason": "reconciled" }),
                    )
                    .await
                }
                Err(DomainError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Background task: records servers that stopped on their own.
pub fn spawn_monitor(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            for (id, exit) in state.runtime.take_exited().await {
                let Ok(env) = state.store.get_environment(id).await else {
                    continue;
                };
                let audit = system_audit(
                    Some(env.lab_id),
                    "environment.jupyter_exited",
                    "environment",
                    id.to_string(),
                    serde_json::json!({ "reason": exit.reason, "message": exit.message }),
                );
                let reason = exit.reason.clone();
                let stopped = modify(&state, id, Some(audit), move |e| {
                    e.jupyter_status = JupyterStatus::Stopped;
                    e.container_info.jupyter_url = None;
                    e.container_info.last_exit = Some(exit.clone());
                    Ok(())
                })
                .await;
                match stopped {
                    Ok(e) => {
                        publish(
                            &state,
                            types::ENVIRONMENT_STOPPED,
                            &e,
                            serde_json::json!({ "reason": reason }),
                        )
                        .await
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, env = %id, "could not record a stopped server")
                    }
                }
            }
        }
    })
}
