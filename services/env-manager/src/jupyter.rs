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
use std::time::Duration;
use tokio::sync::Mutex;
use westtek_domain::event::types;
use westtek_domain::ports::LaunchSpec;
use westtek_domain::{
    DomainError, EnvironmentFilter, EnvironmentId, EnvironmentStatus, JupyterStatus, Result,
};
use westtek_platform::auth::Caller;
use westtek_platform::extract::{ApiJson, IdPath};
use westtek_platform::{ApiResult, AppState};

/// Serialises quota checks with the start they allow.
static LAUNCH_GATE: Mutex<()> = Mutex::const_new(());

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
    let id = EnvironmentId::parse(&req.environment_id)?;
    let (env, _) = operable(&state, &caller, id).await?;
    let url = format!(
        "{}{}lab",
        state.config.public_url.trim_end_matches('/'),
        base_url(id)
    );
    if env.status != EnvironmentStatus::Ready {
        return Err(DomainError::Conflict(format!(
            "the environment is {}; it can be launched once ready",
            status_word(env.status)
        ))
        .into());
    }
    if state.runtime.upstream(id).await.is_some() {
        return Ok(Json(LaunchResponse {
            environment_id: id.to_string(),
            jupyter_status: "running".into(),
            jupyter_url: url,
        }));
    }
    {
        let _gate = LAUNCH_GATE.lock().await;
        let lab = state.store.get_lab(env.lab_id).await?;
        let running = state
            .runtime
            .running()
            .await
            .into_iter()
            .filter(|s| s.lab_id == env.lab_id && s.env_id != id)
            .count();
        if running >= lab.quotas.max_running_servers as usize {
            return Err(DomainError::QuotaExceeded(format!(
                "the lab already runs {running} of its {} Jupyter servers; stop one first",
                lab.quotas.max_running_servers
            ))
            .into());
        }
        let audit = caller.audit(
            Some(env.lab_id),
            "environment.launch",
            "environment",
            id,
            serde_json::json!({}),
        );
        modify(&state, id, Some(audit), |e| {
            e.jupyter_status = JupyterStatus::Starting;
            Ok(())
        })
        .await?;
        // Reserve the slot before leaving the gate: `start` registers it.
        let spec = LaunchSpec {
            env_id: id,
            lab_id: env.lab_id,
            base_url: base_url(id),
        };
        let started = state.runtime.start(&spec).await;
        if let Err(e) = started {
            let _ = modify(&state, id, None, |e| {
                e.jupyter_status = JupyterStatus::Stopped;
                Ok(())
            })
            .await;
            return Err(e.into());
        }
    }
    let u = url.clone();
    let running = modify(&state, id, None, move |e| {
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
    Ok(Json(LaunchResponse {
        environment_id: id.to_string(),
        jupyter_status: "running".into(),
        jupyter_url: url,
    }))
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
            for id in state.runtime.take_exited().await {
                let Ok(env) = state.store.get_environment(id).await else {
                    continue;
                };
                let audit = system_audit(
                    Some(env.lab_id),
                    "environment.jupyter_exited",
                    "environment",
                    id.to_string(),
                    serde_json::json!({ "reason": "exited, idle-culled or gave up restarting" }),
                );
                match mark_stopped(&state, id, Some(audit)).await {
                    Ok(e) => {
                        publish(
                            &state,
                            types::ENVIRONMENT_STOPPED,
                            &e,
                            serde_json::json!({ "reason": "exited" }),
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
