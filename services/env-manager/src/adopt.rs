//! Adopting an environment that already lives on a lab machine, and the
//! credential of its agent (issue 15, "adopt").
//!
//! Policy:
//! - A researcher (or lab admin) adopts into a lab they may write to; the
//!   environment is recorded `ready`, marked adopted with its host and
//!   paths, and counts against the lab's environment quota. The platform
//!   did not build it: Jupyter for it stays the researcher's own, and its
//!   files are read only by its agent.
//! - The answer carries the agent's credential once (`agent_token`); the
//!   record keeps its hash. The environment's researcher or a lab admin may
//!   issue a new one (the old one stops at once) or revoke it; both are
//!   audited.

use crate::dto::EnvironmentResponse;
use crate::environments::{modify, operable};
use crate::publish;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use westtek_domain::event::types;
use westtek_domain::ports::Write;
use westtek_domain::{
    validate_python_version, AdoptedFrom, DomainError, DriftStatus, Environment, EnvironmentId,
    EnvironmentStatus, JupyterStatus, Slug,
};
use westtek_platform::agent_auth;
use westtek_platform::auth::Caller;
use westtek_platform::extract::{ApiJson, IdPath};
use westtek_platform::{ApiResult, AppState};

/// Adopt an environment from a lab machine (what `westtek agent adopt`
/// sends).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptRequest {
    /// 1–64 letters, digits, `-`, `_`, `.`; unique in the lab.
    pub name: String,
    /// The machine's host name.
    pub host: String,
    /// The venv's absolute path on that machine.
    pub venv_path: String,
    /// The notebooks folder's absolute path on that machine.
    pub notebooks_path: String,
    /// The venv's interpreter version, e.g. `3.11.7`.
    pub python_version: String,
}

/// An adopted environment and its agent's credential.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdoptResponse {
    pub environment: EnvironmentResponse,
    /// `wtagent_…`: shown once; it opens only the agent API of this
    /// environment.
    pub agent_token: String,
}

/// A new agent credential.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentTokenResponse {
    pub environment_id: String,
    /// `wtagent_…`: shown once.
    pub agent_token: String,
}

/// An absolute, normalised path that restores can relocate from: not `/`,
/// no `.` or `..` parts, no empty parts, printable, at most 1024 bytes.
fn clean_path(field: &str, v: &str) -> westtek_domain::Result<String> {
    let v = v.trim();
    let v = if v.len() > 1 {
        v.trim_end_matches('/')
    } else {
        v
    };
    let parts_ok = v
        .split('/')
        .skip(1)
        .all(|p| !p.is_empty() && p != "." && p != "..");
    if !v.starts_with('/')
        || v == "/"
        || !parts_ok
        || v.len() > 1024
        || v.chars().any(char::is_control)
    {
        return Err(DomainError::invalid(
            field,
            "an absolute, normalised path other than / (no . or .. parts), at most 1024 printable characters",
        ));
    }
    Ok(v.to_string())
}

/// Records an environment that lives on a lab machine and hands out its
/// agent's credential (once).
#[utoipa::path(operation_id = "adopt_environment", post, path = "/api/environments/adopt", tag = "environments", request_body = AdoptRequest,
    responses((status = 201, body = AdoptResponse), (status = 403, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem, description = "`conflict`: the name is taken in the lab"),
              (status = 422, body = westtek_platform::Problem), (status = 429, body = westtek_platform::Problem, description = "`quota_exceeded`: the lab has its most environments")))]
pub async fn adopt(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AdoptRequest>,
) -> ApiResult<Response> {
    let scope = caller.write_scope()?;
    let name = Slug::parse_field(req.name.trim(), "name")?;
    let host = req.host.trim();
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(DomainError::invalid("host", "a host name (letters, digits, -, ., _)").into());
    }
    let venv_path = clean_path("venv_path", &req.venv_path)?;
    let notebooks_path = clean_path("notebooks_path", &req.notebooks_path)?;
    let python_version = req.python_version.trim().to_string();
    validate_python_version(&python_version)?;
    let lab = state.store.get_lab(scope.lab).await?;
    let now = state.clock.now();
    let id = EnvironmentId::new();
    let (token, credential) = agent_auth::mint(id, caller.principal.user_id, now);
    let env = Environment {
        id,
        lab_id: scope.lab,
        researcher_id: caller.principal.user_id,
        name,
        python_version,
        packages: Vec::new(),
        status: EnvironmentStatus::Ready,
        jupyter_status: JupyterStatus::Stopped,
        created_at: now,
        updated_at: now,
        last_snapshot: None,
        drift_status: DriftStatus::Stable,
        configuration_hash: None,
        container_info: Default::default(),
        metadata: Default::default(),
        baseline_snapshot_id: None,
        current_baseline_id: None,
        retention: Default::default(),
        drill_interval_days: None,
        adopted: Some(AdoptedFrom {
            host: host.to_string(),
            venv_path,
            notebooks_path,
        }),
        agent_credential: Some(credential.clone()),
        version: 0,
    };
    let audit = caller.audit(
        Some(scope.lab),
        "environment.adopt",
        "environment",
        env.id,
        serde_json::json!({
            "name": env.name,
            "adopted": env.adopted,
            "agent_credential": credential.id,
        }),
    );
    state
        .store
        .commit(
            vec![Write::InsertEnvironment {
                env: env.clone(),
                max_in_lab: Some(lab.quotas.max_environments),
            }],
            vec![audit],
        )
        .await?;
    publish(
        &state,
        types::ENVIRONMENT_CREATED,
        &env,
        serde_json::json!({ "adopted": true }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(AdoptResponse {
            environment: env.into(),
            agent_token: token,
        }),
    )
        .into_response())
}

/// Issues a new credential for the environment's agent; the old one stops
/// working at once.
#[utoipa::path(operation_id = "issue_agent_credential", post, path = "/api/environments/{id}/agent-credential", tag = "environments", params(("id" = String, Path)),
    responses((status = 200, body = AgentTokenResponse), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem), (status = 409, body = westtek_platform::Problem)))]
pub async fn issue(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<Json<AgentTokenResponse>> {
    let (env, _) = operable(&state, &caller, id).await?;
    if env.adopted.is_none() {
        return Err(DomainError::Conflict(
            "only adopted environments have an agent outside the platform".into(),
        )
        .into());
    }
    let (token, credential) = agent_auth::mint(id, caller.principal.user_id, state.clock.now());
    let audit = caller.audit(
        Some(env.lab_id),
        "environment.agent_credential.issue",
        "environment",
        id,
        serde_json::json!({
            "agent_credential": credential.id,
            "replaces": env.agent_credential.as_ref().map(|c| c.id.clone()),
        }),
    );
    modify(&state, id, Some(audit), move |e| {
        e.agent_credential = Some(credential.clone());
        Ok(())
    })
    .await?;
    Ok(Json(AgentTokenResponse {
        environment_id: id.to_string(),
        agent_token: token,
    }))
}

/// Revokes the environment's agent credential (its agent stops being
/// heard until a new one is issued).
#[utoipa::path(operation_id = "revoke_agent_credential", delete, path = "/api/environments/{id}/agent-credential", tag = "environments", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem)))]
pub async fn revoke(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<StatusCode> {
    let (env, _) = operable(&state, &caller, id).await?;
    let Some(old) = env.agent_credential.clone() else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let audit = caller.audit(
        Some(env.lab_id),
        "environment.agent_credential.revoke",
        "environment",
        id,
        serde_json::json!({ "agent_credential": old.id }),
    );
    modify(&state, id, Some(audit), |e| {
        e.agent_credential = None;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn paths_restores_cannot_relocate_from_are_refused() {
        for bad in [
            "/",
            "",
            "relative/venv",
            "/a/../b",
            "/a/./b",
            "/a//b",
            "/a/\nb",
        ] {
            assert!(clean_path("venv_path", bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            clean_path("p", "/srv/proj/.venv/").unwrap(),
            "/srv/proj/.venv"
        );
        assert_eq!(clean_path("p", " /srv/proj ").unwrap(), "/srv/proj");
    }
}
