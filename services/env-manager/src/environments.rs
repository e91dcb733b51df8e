//! Environment endpoints and the build job behind `POST /api/environments`.
//!
//! Policy: an environment is created `provisioning` together with its job in
//! one transaction (quota checked there too); the build runs in the
//! background, at most `BUILD_SLOTS` at once; success makes it `ready`,
//! failure removes both its files and its record, so nothing half-made
//! remains, and the job keeps the reason.

use crate::dto::{
    CreateEnvironmentRequest, EnvironmentPage, EnvironmentResponse, UpdateEnvironmentRequest,
};
use crate::{publish, system_audit};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::Semaphore;
use westtek_domain::event::types;
use westtek_domain::ports::{BuildSpec, Write};
use westtek_domain::{
    validate_python_version, AuditDraft, DomainError, DriftStatus, Environment, EnvironmentFilter,
    EnvironmentId, EnvironmentMetadata, EnvironmentStatus, Job, JobError, JobId, JobStatus,
    JupyterStatus, Result, Slug,
};
use westtek_platform::auth::{Caller, WriteScope};
use westtek_platform::dto::JobAccepted;
use westtek_platform::extract::{parse_id, ApiJson, ApiQuery, IdPath};
use westtek_platform::{ApiError, ApiResult, AppState};

/// Python used when a request names none.
pub const DEFAULT_PYTHON: &str = "3.11";

/// Builds running at once; more wait queued (2 cores: uv is CPU and disk bound).
static BUILD_SLOTS: Semaphore = Semaphore::const_new(2);

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/environments", get(list).post(create))
        .route(
            "/api/environments/{id}",
            get(get_one).patch(update).delete(delete),
        )
}

/// Filters of the environment listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this lab (IT admins; others see their selected lab).
    pub lab_id: Option<String>,
    pub researcher_id: Option<String>,
    /// `STABLE`, `MINOR_DRIFT`, `CRITICAL_DRIFT`.
    pub drift_status: Option<String>,
    /// `provisioning`, `ready`, `deleting`.
    pub status: Option<String>,
    /// `stopped`, `starting`, `running`.
    pub jupyter_status: Option<String>,
    /// Case-insensitive part of the name.
    pub q: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

fn parse_enum<T: serde::de::DeserializeOwned>(field: &str, v: &str, allowed: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(v.to_string()))
        .map_err(|_| DomainError::invalid(field, format!("must be one of {allowed}")))
}

/// The environments of the caller's lab (IT admins: every lab), newest first.
#[utoipa::path(operation_id = "list_environments", get, path = "/api/environments", tag = "environments", params(ListQuery),
    responses((status = 200, body = EnvironmentPage, content_type = "application/json"), (status = 401, body = westtek_platform::Problem)))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let requested = q
        .lab_id
        .as_deref()
        .map(|v| parse_id::<westtek_domain::LabId>("lab_id", v))
        .transpose()?;
    let lab_id = match requested {
        Some(l) if caller.can_read(l) => Some(l),
        Some(_) => return Err(ApiError::not_found("lab")),
        None => caller.read_scope()?.lab_filter(),
    };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(DomainError::invalid("limit", "must be 1-500").into());
    }
    let filter = EnvironmentFilter {
        lab_id,
        researcher_id: q
            .researcher_id
            .as_deref()
            .map(|v| parse_id::<westtek_domain::UserId>("researcher_id", v))
            .transpose()?,
        drift_status: q
            .drift_status
            .as_deref()
            .map(|v| {
                parse_enum::<DriftStatus>("drift_status", v, "STABLE, MINOR_DRIFT, CRITICAL_DRIFT")
            })
            .transpose()?,
        status: q
            .status
            .as_deref()
            .map(|v| parse_enum("status", v, "provisioning, ready, deleting"))
            .transpose()?,
        jupyter_status: q
            .jupyter_status
            .as_deref()
            .map(|v| parse_enum("jupyter_status", v, "stopped, starting, running"))
            .transpose()?,
        name_contains: q.q.clone().filter(|s| !s.is_empty()),
        limit,
        offset: q.offset.unwrap_or(0),
    };
    // The validated filter is the cache key: same filter, same answer, until
    // the next commit.
    let key = format!("environments|{filter:?}");
    let generation = state.store.generation();
    let body = match generation.and_then(|g| state.responses.get(&key, g)) {
        Some(hit) => hit,
        None => {
            let page = state.store.list_environments(&filter).await?;
            let body = serde_json::to_vec(&EnvironmentPage {
                items: page.items.into_iter().map(Into::into).collect(),
                total: page.total,
                limit: page.limit,
                offset: page.offset,
            })
            .map_err(DomainError::internal)?;
            let body = axum::body::Bytes::from(body);
            if let Some(g) = generation {
                state.responses.put(key, g, body.clone());
            }
            body
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// An environment the caller can see: one of their lab's, or another lab's
/// through an active share or a handover's read grant (audited); any other
/// is "not found".
pub async fn visible(
    state: &AppState,
    caller: &Caller,
    id: EnvironmentId,
) -> ApiResult<Environment> {
    let env = state.store.get_environment(id).await?;
    if caller.can_read(env.lab_id)
        || westtek_platform::grants::environment_grant(state, caller, env.lab_id, env.id)
            .await?
            .is_some()
    {
        return Ok(env);
    }
    Err(ApiError::not_found("environment"))
}

/// An environment the caller may change or use: its owner, a lab admin, or
/// an IT admin acting in its lab.
pub async fn operable(
    state: &AppState,
    caller: &Caller,
    id: EnvironmentId,
) -> ApiResult<(Environment, WriteScope)> {
    let env = visible(state, caller, id).await?;
    let scope = caller.write_scope_for(env.lab_id)?;
    if env.researcher_id != caller.principal.user_id && !scope.is_lab_admin() {
        return Err(ApiError::forbidden(
            "only the environment's researcher or a lab admin may do this",
        ));
    }
    Ok((env, scope))
}

/// One environment.
#[utoipa::path(operation_id = "get_environment", get, path = "/api/environments/{id}", tag = "environments", params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentResponse), (status = 404, body = westtek_platform::Problem)))]
pub async fn get_one(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<Json<EnvironmentResponse>> {
    Ok(Json(visible(&state, &caller, id).await?.into()))
}

/// Creates an environment; the venv is built by a background job.
#[utoipa::path(operation_id = "create_environment", post, path = "/api/environments", tag = "environments", request_body = CreateEnvironmentRequest,
    responses((status = 202, body = JobAccepted, headers(("Location" = String, description = "/api/jobs/{id}"))),
              (status = 403, body = westtek_platform::Problem), (status = 409, body = westtek_platform::Problem),
              (status = 422, body = westtek_platform::Problem)))]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateEnvironmentRequest>,
) -> ApiResult<Response> {
    let scope = caller.write_scope()?;
    let name = Slug::parse_field(req.name.trim(), "name")?;
    let python_version = req
        .python_version
        .clone()
        .unwrap_or_else(|| DEFAULT_PYTHON.to_string());
    validate_python_version(&python_version)?;
    if req.packages.len() > 200 {
        return Err(DomainError::invalid("packages", "at most 200 packages").into());
    }
    let packages = req
        .packages
        .iter()
        .map(|p| p.to_spec())
        .collect::<Result<Vec<_>>>()?;
    let metadata = metadata_from(&req.metadata, EnvironmentMetadata::default())?;
    let lab = state.store.get_lab(scope.lab).await?;
    let now = state.clock.now();
    let env = Environment {
        id: EnvironmentId::new(),
        lab_id: scope.lab,
        researcher_id: caller.principal.user_id,
        name,
        python_version: python_version.clone(),
        packages: packages.clone(),
        status: EnvironmentStatus::Provisioning,
        jupyter_status: JupyterStatus::Stopped,
        created_at: now,
        updated_at: now,
        last_snapshot: None,
        drift_status: DriftStatus::Stable,
        configuration_hash: None,
        container_info: Default::default(),
        metadata,
        baseline_snapshot_id: None,
        current_baseline_id: None,
        retention: Default::default(),
        drill_interval_days: None,
        adopted: None,
        agent_credential: None,
        version: 0,
    };
    let job = Job {
        id: JobId::new(),
        lab_id: scope.lab,
        kind: "environment.create".into(),
        target_id: env.id.to_string(),
        status: JobStatus::Queued,
        progress: 0.0,
        message: "queued".into(),
        error: None,
        created_by: caller.principal.user_id,
        created_at: now,
        updated_at: now,
    };
    let audit = caller.audit(
        Some(scope.lab),
        "environment.create",
        "environment",
        env.id,
        serde_json::json!({
            "name": env.name,
            "python_version": python_version,
            "packages": packages.iter().map(|p| p.requirement()).collect::<Vec<_>>(),
            "job_id": job.id.to_string(),
        }),
    );
    state
        .store
        .commit(
            vec![
                Write::InsertEnvironment {
                    env: env.clone(),
                    max_in_lab: Some(lab.quotas.max_environments),
                },
                Write::InsertJob(job.clone()),
            ],
            vec![audit],
        )
        .await?;
    publish(
        &state,
        types::ENVIRONMENT_CREATED,
        &env,
        serde_json::json!({ "job_id": job.id.to_string() }),
    )
    .await;
    let job_id = job.id;
    tokio::spawn(run_build(state.clone(), env.clone(), job));
    let body = JobAccepted {
        job_id: job_id.to_string(),
        environment_id: Some(env.id.to_string()),
    };
    Ok(westtek_platform::jobs::accepted(job_id, body))
}

fn metadata_from(
    input: &crate::dto::MetadataInput,
    mut base: EnvironmentMetadata,
) -> Result<EnvironmentMetadata> {
    let clean = |field: &str, v: &Option<String>| -> Result<Option<String>> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) if s.len() > 200 || s.chars().any(char::is_control) => Err(
                DomainError::invalid(field, "at most 200 printable characters"),
            ),
            Some(s) => Ok(Some(s.to_string())),
        }
    };
    if input.experiment_id.is_some() {
        base.experiment_id = clean("metadata.experiment_id", &input.experiment_id)?;
    }
    if input.funding_source.is_some() {
        base.funding_source = clean("metadata.funding_source", &input.funding_source)?;
    }
    if let Some(c) = input.criticality {
        base.criticality = c;
    }
    Ok(base)
}

/// Runs one build job to its end.
async fn run_build(state: AppState, env: Environment, job: Job) {
    let tracker = state.jobs.track(job.clone());
    let permit = BUILD_SLOTS.acquire().await;
    if permit.is_err() {
        tracing::error!("build slots closed");
        return;
    }
    let spec = BuildSpec {
        env_id: env.id,
        lab_id: env.lab_id,
        python_version: env.python_version.clone(),
        packages: env.packages.clone(),
    };
    let sink: Arc<dyn westtek_domain::ports::ProgressSink> = Arc::new(tracker.clone());
    sink.update(0.01, "starting build");
    let outcome = state.builder.build(&spec, sink).await;
    let actor = |action: &str, details: serde_json::Value| AuditDraft {
        actor_id: Some(job.created_by),
        actor_name: "westtek (build job)".into(),
        lab_id: Some(env.lab_id),
        action: action.into(),
        target_kind: "environment".into(),
        target_id: env.id.to_string(),
        request_id: format!("job-{}", job.id),
        details,
    };
    match outcome {
        Ok(out) => {
            // Record the success; a concurrent change (Conflict) is re-read,
            // a failing store is retried with backoff. If it still cannot be
            // recorded, the build is undone so no unrecorded venv remains.
            let mut last_error = None;
            for attempt in 0..8u32 {
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt.min(5)))
                        .await;
                }
                let current = match state.store.get_environment(env.id).await {
                    Ok(c) => c,
                    Err(DomainError::NotFound { .. }) => {
                        let _ = state.builder.remove(env.id).await;
                        let err = JobError {
                            code: "environment_deleted".into(),
                            message: "the environment was deleted during its build".into(),
                        };
                        let _ = tracker.finish(Err(err), vec![], vec![]).await;
                        return;
                    }
                    Err(e) => {
                        last_error = Some(e);
                        continue;
                    }
                };
                let mut ready = current.clone();
                ready.status = EnvironmentStatus::Ready;
                ready.python_version = out.python_version.clone();
                ready.configuration_hash = Some(out.configuration_hash.clone());
                ready.metadata.jupyter_packages = out.installed.clone();
                ready.updated_at = state.clock.now();
                let audit = actor(
                    "environment.ready",
                    serde_json::json!({ "configuration_hash": out.configuration_hash, "packages": out.installed.len() }),
                );
                let msg = format!(
                    "ready: {} packages on Python {}",
                    out.installed.len(),
                    out.python_version
                );
                match tracker
                    .finish(
                        Ok(msg),
                        vec![Write::UpdateEnvironment(ready.clone())],
                        vec![audit],
                    )
                    .await
                {
                    Ok(()) => {
                        ready.version += 1;
                        publish(
                            &state,
                            types::ENVIRONMENT_READY,
                            &ready,
                            serde_json::json!({ "job_id": job.id.to_string() }),
                        )
                        .await;
                        return;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            tracing::error!(error = ?last_error, env = %env.id, "could not record a finished build; undoing it");
            let _ = state.builder.remove(env.id).await;
            let audit = actor(
                "environment.build_failed",
                serde_json::json!({ "code": "record_failed" }),
            );
            let err = JobError {
                code: "record_failed".into(),
                message: "the environment was built but could not be recorded; it was removed, please retry".into(),
            };
            if let Err(e) = tracker
                .finish(
                    Err(err),
                    vec![Write::DeleteEnvironment(env.id)],
                    vec![audit],
                )
                .await
            {
                tracing::error!(error = %e, env = %env.id, "could not record the undone build either");
            }
        }
        Err(e) => {
            let (code, message) = match &e {
                DomainError::Upstream { code, message } => ((*code).to_string(), message.clone()),
                other => {
                    tracing::error!(error = %other, env = %env.id, "build failed");
                    (
                        "install_failed".to_string(),
                        "the environment could not be built; see the server log".to_string(),
                    )
                }
            };
            // The builder removed its files; remove the record too.
            let _ = state.builder.remove(env.id).await;
            let audit = actor(
                "environment.build_failed",
                serde_json::json!({ "code": code, "message": message }),
            );
            let err = JobError {
                code: code.clone(),
                message: message.clone(),
            };
            if let Err(e) = tracker
                .finish(
                    Err(err),
                    vec![Write::DeleteEnvironment(env.id)],
                    vec![audit],
                )
                .await
            {
                tracing::error!(error = %e, env = %env.id, "could not record a failed build");
            }
            publish(
                &state,
                types::ENVIRONMENT_BUILD_FAILED,
                &env,
                serde_json::json!({ "code": code, "job_id": job.id.to_string() }),
            )
            .await;
        }
    }
}

/// The store refused an `UpdateEnvironment` because the environment changed
/// since it was read (optimistic concurrency): re-read and retry.
pub fn is_stale_version(e: &DomainError) -> bool {
    matches!(e, DomainError::Conflict(m) if m.starts_with("the environment was changed"))
}

/// Reads, changes and writes an environment, retrying when someone else
/// changed it in between.
///
/// # Errors
/// `f`'s error, or the store's.
pub async fn modify<F>(
    state: &AppState,
    id: EnvironmentId,
    audit: Option<AuditDraft>,
    f: F,
) -> Result<Environment>
where
    F: Fn(&mut Environment) -> Result<()>,
{
    let mut last = None;
    for _ in 0..5 {
        let mut env = state.store.get_environment(id).await?;
        f(&mut env)?;
        env.updated_at = state.clock.now();
        match state
            .store
            .commit(
                vec![Write::UpdateEnvironment(env.clone())],
                audit.clone().into_iter().collect(),
            )
            .await
        {
            Ok(_) => {
                env.version += 1;
                return Ok(env);
            }
            Err(e) if is_stale_version(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| DomainError::internal("update retries exhausted")))
}

/// Renames an environment or changes its metadata.
#[utoipa::path(patch, path = "/api/environments/{id}", tag = "environments", params(("id" = String, Path)),
    request_body = UpdateEnvironmentRequest,
    responses((status = 200, body = EnvironmentResponse), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem)))]
pub async fn update(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<EnvironmentId>,
    ApiJson(req): ApiJson<UpdateEnvironmentRequest>,
) -> ApiResult<Json<EnvironmentResponse>> {
    let (env, _) = operable(&state, &caller, id).await?;
    let name = req
        .name
        .as_deref()
        .map(|n| Slug::parse_field(n.trim(), "name"))
        .transpose()?;
    let meta = req.metadata.clone();
    // Validate before touching anything.
    if let Some(m) = &meta {
        metadata_from(m, env.metadata.clone())?;
    }
    let audit = caller.audit(
        Some(env.lab_id),
        "environment.update",
        "environment",
        id,
        serde_json::json!({
            "name": name,
            "metadata": req.metadata.as_ref().map(|m| serde_json::to_value(m).unwrap_or_default()),
            "retention": req.retention,
            "drill_interval_days": req.drill_interval_days,
        }),
    );
    if let Some(r) = req.retention {
        if [r.keep_last, r.keep_daily, r.keep_monthly].contains(&Some(0)) {
            return Err(DomainError::invalid(
                "retention",
                "counts must be at least 1 (leave a rule out to not use it)",
            )
            .into());
        }
    }
    let retention = req.retention;
    let drill = req.drill_interval_days;
    let updated = modify(&state, id, Some(audit), |e| {
        if let Some(n) = &name {
            e.name = n.clone();
        }
        if let Some(r) = retention {
            e.retention = westtek_domain::RetentionPolicy {
                keep_last: r.keep_last,
                keep_daily: r.keep_daily,
                keep_monthly: r.keep_monthly,
            };
        }
        if let Some(d) = drill {
            e.drill_interval_days = (d > 0).then_some(d);
        }
        if let Some(m) = &meta {
            e.metadata = metadata_from(m, e.metadata.clone())?;
        }
        Ok(())
    })
    .await?;
    publish(
        &state,
        types::ENVIRONMENT_UPDATED,
        &updated,
        serde_json::json!({}),
    )
    .await;
    Ok(Json(updated.into()))
}

/// Deletes an environment: stops its Jupyter server, removes its files and
/// its record.
#[utoipa::path(operation_id = "delete_environment", delete, path = "/api/environments/{id}", tag = "environments", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem)))]
pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<StatusCode> {
    let (env, _) = operable(&state, &caller, id).await?;
    // Marked (and audited) first: one delete at a time, and a crash half-way
    // is finished by the start-up reconcile.
    let requested = caller.audit(
        Some(env.lab_id),
        "environment.delete",
        "environment",
        id,
        serde_json::json!({ "name": env.name }),
    );
    modify(&state, id, Some(requested), |e| match e.status {
        EnvironmentStatus::Provisioning => Err(DomainError::Conflict(
            "the environment is still being built; wait for its job to end".into(),
        )),
        EnvironmentStatus::Deleting => Err(DomainError::Conflict(
            "the environment is already being deleted".into(),
        )),
        EnvironmentStatus::Ready => {
            e.status = EnvironmentStatus::Deleting;
            Ok(())
        }
    })
    .await?;
    // A snapshot being taken reads these files: wait for it. Checked after
    // the mark, so a snapshot cannot start in between (it needs `ready`).
    let creating = state
        .store
        .list_snapshots(&westtek_domain::SnapshotFilter {
            environment_id: Some(id),
            status: Some(westtek_domain::SnapshotStatus::Creating),
            limit: 1,
            ..Default::default()
        })
        .await?;
    if creating.total > 0 {
        let undo = caller.audit(
            Some(env.lab_id),
            "environment.delete_refused",
            "environment",
            id,
            serde_json::json!({ "reason": "snapshot_in_progress" }),
        );
        modify(&state, id, Some(undo), |e| {
            if e.status == EnvironmentStatus::Deleting {
                e.status = EnvironmentStatus::Ready;
            }
            Ok(())
        })
        .await?;
        return Err(DomainError::Conflict(
            "a snapshot of this environment is being taken; delete it when the snapshot is done"
                .into(),
        )
        .into());
    }
    state.runtime.stop(id).await?;
    state.builder.remove(id).await?;
    let audit = caller.audit(
        Some(env.lab_id),
        "environment.deleted",
        "environment",
        id,
        serde_json::json!({ "name": env.name, "files_removed": true }),
    );
    state
        .store
        .commit(vec![Write::DeleteEnvironment(id)], vec![audit])
        .await?;
    publish(
        &state,
        types::ENVIRONMENT_DELETED,
        &env,
        serde_json::json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// At start-up: builds that were running when the process died are failed
/// (`interrupted`) and their partial files and records removed; deletions
/// that were cut short are finished.
///
/// # Errors
/// Store failures.
pub async fn reconcile_builds(state: &AppState) -> Result<()> {
    let mut stuck = state.store.list_jobs(Some(JobStatus::Running)).await?;
    stuck.extend(state.store.list_jobs(Some(JobStatus::Queued)).await?);
    for mut job in stuck {
        let env_id = EnvironmentId::parse(&job.target_id).ok();
        let mut writes = vec![];
        // Jobs that make an environment (build, restore into a new one)
        // leave a half-made one behind: remove it.
        if job.kind == "environment.create" || job.kind == "environment.restore" {
            if let Some(id) = env_id {
                state.builder.remove(id).await?;
                if state.store.get_environment(id).await.is_ok() {
                    writes.push(Write::DeleteEnvironment(id));
                }
            }
        }
        job.status = JobStatus::Failed;
        job.error = Some(JobError {
            code: "interrupted".into(),
            message: "the platform stopped while this job ran; its partial work was removed, please retry".into(),
        });
        job.message = "interrupted".into();
        job.updated_at = state.clock.now();
        let audit = system_audit(
            Some(job.lab_id),
            "job.interrupted",
            "job",
            job.id.to_string(),
            serde_json::json!({ "kind": job.kind }),
        );
        writes.push(Write::UpdateJob(job));
        state.store.commit(writes, vec![audit]).await?;
    }
    let deleting = state
        .store
        .list_environments(&EnvironmentFilter {
            status: Some(EnvironmentStatus::Deleting),
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    for env in deleting.items {
        state.builder.remove(env.id).await?;
        let audit = system_audit(
            Some(env.lab_id),
            "environment.deleted",
            "environment",
            env.id.to_string(),
            serde_json::json!({ "resumed": true }),
        );
        state
            .store
            .commit(vec![Write::DeleteEnvironment(env.id)], vec![audit])
            .await?;
    }
    Ok(())
}
