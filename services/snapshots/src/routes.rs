//! Snapshot endpoints and the jobs behind them.
//!
//! Policy: a snapshot record is `creating` from the request until its bytes
//! are verified in the vault, then `complete`; anything else ends `failed`
//! with the reason on its job. One snapshot of an environment at a time.
//! Restoring in place first snapshots the current state, so nothing is
//! lost; restoring into a new environment creates it like a build does.
//! Snapshot, restore and drill jobs wait their turn in the platform's
//! vault queue (bounded parallelism, fair across labs); a lab with too
//! many waiting is refused (`429 queue_full`) before anything is recorded.

use crate::dto::{
    CreateSnapshotRequest, RestoreAccepted, RestoreSnapshotRequest, SnapshotAccepted, SnapshotPage,
    SnapshotResponse,
};
use crate::{publish, retention};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;
use westtek_domain::event::types;
use westtek_domain::ports::{CaptureRequest, ProgressSink, Write};
use westtek_domain::{
    AuditDraft, DomainError, Environment, EnvironmentId, EnvironmentStatus, Job, JobError, JobId,
    JobStatus, JupyterStatus, Result, ShareResource, Slug, Snapshot, SnapshotFilter, SnapshotId,
    SnapshotMetadata, SnapshotStatus, UserId,
};
use westtek_env_manager::environments::{is_stale_version, modify, operable, visible};
use westtek_platform::auth::{Caller, WriteScope};
use westtek_platform::extract::{parse_id, ApiJson, ApiQuery, IdPath};
use westtek_platform::grants;
use westtek_platform::jobs::{accepted, JobTracker};
use westtek_platform::queue::{Slot, Ticket};
use westtek_platform::{ApiError, ApiResult, AppState};

/// Routes of the service (the seed's path first).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/environments/snapshot", post(create))
        .route("/api/snapshots", get(list))
        .route("/api/snapshots/{id}", get(get_one).delete(delete))
        .route("/api/snapshots/{id}/diff/{other}", get(diff))
        .route("/api/snapshots/{id}/restore", post(restore))
        .route("/api/snapshots/{id}/drill", post(drill))
        .route("/api/snapshots/{id}/inventory", get(inventory))
        .route("/api/labs/{id}/storage", get(lab_storage))
        .route("/api/vault/gc", post(vault_gc))
        .route("/api/vault/verify", get(vault_verify))
        .route(
            westtek_platform::AGENT_UPLOAD_PATH,
            post(agent_upload).layer(axum::extract::DefaultBodyLimit::disable()),
        )
}

/// A lab's snapshot storage.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StorageResponse {
    pub lab_id: String,
    /// Bytes the lab's snapshots added to the vault.
    pub used_bytes: u64,
    pub max_storage_bytes: Option<u64>,
    pub snapshots: u64,
}

/// How much vault storage a lab's snapshots use, against its quota.
#[utoipa::path(get, path = "/api/labs/{id}/storage", tag = "snapshots", params(("id" = String, Path)),
    responses((status = 200, body = StorageResponse), (status = 404, body = westtek_platform::Problem)))]
pub async fn lab_storage(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<westtek_domain::LabId>,
) -> ApiResult<Json<StorageResponse>> {
    if !caller.can_read(id) {
        return Err(ApiError::not_found("lab"));
    }
    let lab = state.store.get_lab(id).await?;
    let used = state.store.lab_storage_bytes(id).await?;
    let count = state
        .store
        .list_snapshots(&SnapshotFilter {
            lab_id: Some(id),
            status: Some(SnapshotStatus::Complete),
            limit: 1,
            ..Default::default()
        })
        .await?
        .total;
    Ok(Json(StorageResponse {
        lab_id: id.to_string(),
        used_bytes: used,
        max_storage_bytes: lab.quotas.max_storage_bytes,
        snapshots: count,
    }))
}

/// Garbage-collects the vault now (IT admins): removes data no snapshot
/// uses; safe while snapshots run.
#[utoipa::path(post, path = "/api/vault/gc", tag = "snapshots",
    responses((status = 200, description = "the gc report (JSON)"), (status = 403, body = westtek_platform::Problem)))]
pub async fn vault_gc(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_it_admin("maintain the vault")?;
    let report = state.snapshots.gc().await?;
    let audit = caller.audit(None, "vault.gc", "vault", "local", report.clone());
    state.store.append(vec![audit]).await?;
    Ok(Json(report))
}

/// Query of `GET /api/vault/verify`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Read and check every byte (slow), not just the structure.
    pub read_data: Option<bool>,
}

/// Checks the vault (IT admins); names damaged snapshots and files.
#[utoipa::path(get, path = "/api/vault/verify", tag = "snapshots", params(VerifyQuery),
    responses((status = 200, description = "the verify report (JSON)"), (status = 403, body = westtek_platform::Problem)))]
pub async fn vault_verify(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<VerifyQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require_it_admin("maintain the vault")?;
    Ok(Json(
        state.snapshots.verify(q.read_data.unwrap_or(false)).await?,
    ))
}

/// Drills due by their environment's `drill_interval_days`: the latest
/// complete snapshot whose last drill is older than the interval.
pub async fn run_due_drills(state: &AppState) -> Result<usize> {
    let now = state.clock.now();
    let mut started = 0;
    let mut offset = 0;
    loop {
        let page = state
            .store
            .list_environments(&westtek_domain::EnvironmentFilter {
                limit: 500,
                offset,
                ..Default::default()
            })
            .await?;
        for env in page
            .items
            .iter()
            .filter(|e| e.drill_interval_days.is_some())
        {
            let days = i64::from(env.drill_interval_days.unwrap_or(0));
            let Some(latest) = latest_complete(state, env.id).await? else {
                continue;
            };
            let due = latest
                .drill
                .as_ref()
                .is_none_or(|d| now - d.at >= chrono::Duration::days(days));
            let Some(engine) = latest.vault_snapshot_id.clone().filter(|_| due) else {
                continue;
            };
            let Ok(ticket) = state.vault_queue.enqueue(env.lab_id) else {
                tracing::warn!(lab = %env.lab_id, "the vault queue is full; scheduled drills wait for the next round");
                continue;
            };
            let job = new_job(
                env.lab_id,
                "snapshot.drill",
                latest.id.to_string(),
                env.researcher_id,
                now,
            );
            let audit = westtek_env_manager::system_audit(
                Some(env.lab_id),
                "snapshot.drill",
                "snapshot",
                latest.id.to_string(),
                serde_json::json!({ "scheduled": true, "interval_days": days }),
            );
            state
                .store
                .commit(vec![Write::InsertJob(job.clone())], vec![audit])
                .await?;
            let tracker = state.jobs.track(job);
            // One at a time: drills restore whole environments.
            let _slot = wait_turn(ticket, &tracker).await;
            run_drill(state.clone(), tracker, latest.id, engine).await;
            started += 1;
        }
        if page.items.len() < 500 {
            break;
        }
        offset += 500;
    }
    Ok(started)
}

/// Waits for a job's turn in the vault queue, showing its place on the job
/// (`queued (position N)`); the job runs while the returned slot lives.
pub(crate) async fn wait_turn(ticket: Ticket, tracker: &JobTracker) -> Slot {
    let t = tracker.clone();
    ticket.ready(move |p| t.queued(p)).await
}

fn new_job(
    lab: westtek_domain::LabId,
    kind: &str,
    target: String,
    by: UserId,
    now: chrono::DateTime<chrono::Utc>,
) -> Job {
    Job {
        id: JobId::new(),
        lab_id: lab,
        kind: kind.into(),
        target_id: target,
        status: JobStatus::Queued,
        progress: 0.0,
        message: "queued".into(),
        error: None,
        created_by: by,
        created_at: now,
        updated_at: now,
    }
}

pub(crate) fn job_error(e: &DomainError) -> JobError {
    match e {
        DomainError::Upstream { code, message } => JobError {
            code: (*code).into(),
            message: message.clone(),
        },
        DomainError::Conflict(m) => JobError {
            code: "conflict".into(),
            message: m.clone(),
        },
        DomainError::NotFound { kind } => JobError {
            code: "not_found".into(),
            message: format!("{kind} not found"),
        },
        DomainError::Validation { field, message } => JobError {
            code: "validation_failed".into(),
            message: format!("{field}: {message}"),
        },
        other => {
            tracing::error!(error = %other, "snapshot job failed");
            JobError {
                code: "internal".into(),
                message: "the snapshot engine failed; see the server log".into(),
            }
        }
    }
}

fn audit_as(
    actor: UserId,
    name: &str,
    lab: westtek_domain::LabId,
    action: &str,
    target: String,
    details: serde_json::Value,
    rid: &str,
) -> AuditDraft {
    AuditDraft {
        actor_id: Some(actor),
        actor_name: name.into(),
        lab_id: Some(lab),
        action: action.into(),
        target_kind: "snapshot".into(),
        target_id: target,
        request_id: rid.into(),
        details,
    }
}

/// The newest complete snapshot of an environment.
pub async fn latest_complete(state: &AppState, env: EnvironmentId) -> Result<Option<Snapshot>> {
    let page = state
        .store
        .list_snapshots(&SnapshotFilter {
            environment_id: Some(env),
            status: Some(SnapshotStatus::Complete),
            limit: 1,
            ..Default::default()
        })
        .await?;
    Ok(page.items.into_iter().next())
}

/// The snapshot of `env` being taken now, if any.
pub(crate) async fn latest_creating(
    state: &AppState,
    env: EnvironmentId,
) -> Result<Option<Snapshot>> {
    let page = state
        .store
        .list_snapshots(&SnapshotFilter {
            environment_id: Some(env),
            status: Some(SnapshotStatus::Creating),
            limit: 1,
            ..Default::default()
        })
        .await?;
    Ok(page.items.into_iter().next())
}

/// Whether a snapshot of `env` may start now: it is ready (`held`: held
/// `provisioning` by an in-place restore), none is being taken, and the
/// lab's storage quota has room.
///
/// # Errors
/// `conflict`, `quota_exceeded`; store failures.
pub(crate) async fn snapshot_allowed(
    state: &AppState,
    env: &Environment,
    held: bool,
) -> Result<()> {
    let expected = if held {
        EnvironmentStatus::Provisioning
    } else {
        EnvironmentStatus::Ready
    };
    if env.status != expected {
        return Err(DomainError::Conflict(
            "only a ready environment can be snapshotted".into(),
        ));
    }
    if latest_creating(state, env.id).await?.is_some() {
        return Err(DomainError::Conflict(
            "a snapshot of this environment is already being taken".into(),
        ));
    }
    let lab = state.store.get_lab(env.lab_id).await?;
    if let Some(max) = lab.quotas.max_storage_bytes {
        let used = state.store.lab_storage_bytes(env.lab_id).await?;
        if used >= max {
            return Err(DomainError::QuotaExceeded(format!(
                "the lab's snapshots use {used} of its {max} bytes; delete snapshots or ask for more"
            )));
        }
    }
    Ok(())
}

/// Checks and records a new snapshot of `env` as `creating`, with its job.
///
/// Race-free: the environment is re-read and written back (version-checked)
/// in the same commit that inserts the snapshot, so of two concurrent
/// requests one wins and the other sees the first's `creating` snapshot;
/// a delete or in-place restore that marked the environment in between
/// makes this one fail its status check. `held` is true for the in-place
/// restore, which has already marked the environment `provisioning` itself.
pub(crate) async fn begin_snapshot(
    state: &AppState,
    env_id: EnvironmentId,
    held: bool,
    by: UserId,
    notes: Option<String>,
    audit: AuditDraft,
    job_kind: &str,
) -> Result<(Snapshot, Job)> {
    let mut last = None;
    for _ in 0..5 {
        let mut env = state.store.get_environment(env_id).await?;
        snapshot_allowed(state, &env, held).await?;
        let parent = latest_complete(state, env.id).await?;
        let now = state.clock.now();
        let snap = Snapshot {
            id: SnapshotId::new(),
            lab_id: env.lab_id,
            environment_id: env.id,
            created_by: by,
            timestamp: now,
            status: SnapshotStatus::Creating,
            s3_location: String::new(),
            vault_snapshot_id: None,
            size_bytes: 0,
            stored_bytes_added: 0,
            checksum: None,
            container_image: None,
            efs_snapshot_id: None,
            ebs_snapshot_id: None,
            metadata: SnapshotMetadata {
                notes: notes.clone(),
                ..Default::default()
            },
            parent_id: parent.map(|p| p.id),
            drill: None,
        };
        let job = new_job(env.lab_id, job_kind, snap.id.to_string(), by, now);
        env.updated_at = now;
        match state
            .store
            .commit(
                vec![
                    Write::UpdateEnvironment(env),
                    Write::InsertSnapshot(snap.clone()),
                    Write::InsertJob(job.clone()),
                ],
                vec![audit.clone()],
            )
            .await
        {
            Ok(_) => return Ok((snap, job)),
            Err(e) if is_stale_version(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| DomainError::internal("snapshot start retries exhausted")))
}

/// Captures a snapshot recorded by `begin_snapshot` and records the
/// outcome. Returns the complete snapshot.
pub(crate) async fn capture(
    state: &AppState,
    mut snap: Snapshot,
    progress: Arc<dyn ProgressSink>,
    actor_name: &str,
    rid: &str,
    becomes_baseline: bool,
    staged: Option<westtek_domain::ports::StagedTree>,
) -> Result<Snapshot> {
    let parent_engine_id = match snap.parent_id {
        Some(p) => state
            .store
            .get_snapshot(p)
            .await
            .ok()
            .and_then(|p| p.vault_snapshot_id),
        None => None,
    };
    let req = CaptureRequest {
        env_id: snap.environment_id,
        lab_id: snap.lab_id,
        parent: parent_engine_id,
        notes: snap.metadata.notes.clone(),
        staged,
    };
    match state.snapshots.capture(&req, progress).await {
        Ok(out) => {
            snap.status = SnapshotStatus::Complete;
            snap.s3_location = out.location;
            snap.vault_snapshot_id = Some(out.engine_id);
            snap.size_bytes = out.size_bytes;
            snap.stored_bytes_added = out.stored_bytes_added;
            snap.checksum = Some(out.checksum);
            let notes = snap.metadata.notes.take();
            snap.metadata = SnapshotMetadata {
                notes,
                ..out.metadata
            };
            let audit = audit_as(
                snap.created_by,
                actor_name,
                snap.lab_id,
                "snapshot.created",
                snap.id.to_string(),
                serde_json::json!({
                    "environment_id": snap.environment_id.to_string(),
                    "checksum": snap.checksum,
                    "size_bytes": snap.size_bytes,
                    "stored_bytes_added": snap.stored_bytes_added,
                    "changed_during_read": out.changed_during_read,
                    "skipped": out.skipped,
                }),
                rid,
            );
            let at = snap.timestamp;
            if let Err(e) = state
                .store
                .commit(vec![Write::UpdateSnapshot(snap.clone())], vec![audit])
                .await
            {
                // Never leave it `creating`: that blocks every later snapshot.
                let mut failed = snap.clone();
                failed.status = SnapshotStatus::Failed;
                let _ = state
                    .store
                    .commit(vec![Write::UpdateSnapshot(failed)], vec![])
                    .await;
                return Err(e);
            }
            // The environment's own record: best effort against concurrent edits.
            let id = snap.id;
            let _ = modify(state, snap.environment_id, None, move |e| {
                e.last_snapshot = Some(at);
                if becomes_baseline {
                    e.current_baseline_id = Some(id);
                }
                Ok(())
            })
            .await;
            publish(
                state,
                types::SNAPSHOT_CREATED,
                &snap,
                serde_json::json!({ "size_bytes": snap.size_bytes }),
            )
            .await;
            Ok(snap)
        }
        Err(e) => {
            snap.status = SnapshotStatus::Failed;
            let audit = audit_as(
                snap.created_by,
                actor_name,
                snap.lab_id,
                "snapshot.failed",
                snap.id.to_string(),
                serde_json::json!({ "environment_id": snap.environment_id.to_string(), "code": job_error(&e).code }),
                rid,
            );
            if let Err(record) = state
                .store
                .commit(vec![Write::UpdateSnapshot(snap.clone())], vec![audit])
                .await
            {
                tracing::error!(error = %record, "could not record a failed snapshot");
            }
            publish(state, types::SNAPSHOT_FAILED, &snap, serde_json::json!({})).await;
            Err(e)
        }
    }
}

/// Deletes snapshots the environment's retention policy lets go.
pub(crate) async fn apply_retention(
    state: &AppState,
    env_id: EnvironmentId,
) -> Result<Vec<SnapshotId>> {
    let env = state.store.get_environment(env_id).await?;
    let all = state
        .store
        .list_snapshots(&SnapshotFilter {
            environment_id: Some(env_id),
            status: Some(SnapshotStatus::Complete),
            limit: 100_000,
            ..Default::default()
        })
        .await?;
    let baselines: Vec<SnapshotId> = env
        .baseline_snapshot_id
        .into_iter()
        .chain(env.current_baseline_id)
        .collect();
    let expired = retention::to_expire(&all.items, &env.retention, &baselines);
    for id in &expired {
        if let Some(s) = all.items.iter().find(|s| s.id == *id) {
            forget(state, s, westtek_env_manager::system_audit(
                Some(s.lab_id),
                "snapshot.expired",
                "snapshot",
                s.id.to_string(),
                serde_json::json!({ "environment_id": env_id.to_string(), "policy": env.retention }),
            ))
            .await?;
        }
    }
    Ok(expired)
}

/// Deletes a snapshot. Storage accounting: the bytes it added mostly stay
/// in the vault while its children reference them, so they move to its
/// oldest child (which also takes its parent); a snapshot without children
/// takes its bytes with it (the next gc frees what nothing else uses).
async fn forget(state: &AppState, s: &Snapshot, audit: AuditDraft) -> Result<()> {
    let mut last = None;
    for _ in 0..5 {
        // The environment (when it still exists) is written back
        // version-checked in the same commit: a snapshot that starts in
        // between (and might take this one as its parent) makes it retry.
        let env = match state.store.get_environment(s.environment_id).await {
            Ok(e) => Some(e),
            Err(DomainError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let siblings = state
            .store
            .list_snapshots(&SnapshotFilter {
                environment_id: Some(s.environment_id),
                limit: 100_000,
                ..Default::default()
            })
            .await?
            .items;
        if siblings
            .iter()
            .any(|c| c.parent_id == Some(s.id) && c.status == SnapshotStatus::Creating)
        {
            return Err(DomainError::Conflict(
                "a snapshot based on this one is being taken; retry when it is done".into(),
            ));
        }
        let child = siblings
            .into_iter()
            .filter(|c| c.parent_id == Some(s.id))
            .min_by_key(|c| c.timestamp);
        let mut writes = vec![Write::DeleteSnapshot(s.id)];
        if let Some(mut env) = env {
            env.updated_at = state.clock.now();
            writes.insert(0, Write::UpdateEnvironment(env));
        }
        if let Some(mut child) = child {
            child.stored_bytes_added += s.stored_bytes_added;
            child.parent_id = s.parent_id;
            writes.push(Write::UpdateSnapshot(child));
        }
        match state.store.commit(writes, vec![audit.clone()]).await {
            Ok(_) => {
                last = None;
                break;
            }
            Err(e) if is_stale_version(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    if let Some(e) = last {
        return Err(e);
    }
    // The record goes first: a snapshot listed is always restorable. A
    // vault snapshot left behind by a failure here only costs space.
    if let Some(engine_id) = &s.vault_snapshot_id {
        if let Err(e) = state.snapshots.delete(engine_id).await {
            tracing::warn!(error = %e, snapshot = %s.id, vault_snapshot = %engine_id,
                "the snapshot's record is deleted but its vault snapshot could not be; it keeps its chunks until removed with `westtek vault`");
        }
    }
    publish(state, types::SNAPSHOT_DELETED, s, serde_json::json!({})).await;
    Ok(())
}

async fn run_snapshot_job(
    state: AppState,
    tracker: JobTracker,
    snap: Snapshot,
    actor_name: String,
    rid: String,
) {
    let sink: Arc<dyn ProgressSink> = Arc::new(tracker.clone());
    let env_id = snap.environment_id;
    let outcome = capture(&state, snap, sink, &actor_name, &rid, true, None).await;
    let result = match outcome {
        Ok(s) => {
            let expired = apply_retention(&state, env_id).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, env = %env_id, "retention could not be applied");
                Vec::new()
            });
            let mut msg = format!(
                "snapshot {} complete: {} bytes, {} new in the vault",
                s.id, s.size_bytes, s.stored_bytes_added
            );
            if !expired.is_empty() {
                msg.push_str(&format!(
                    "; {} old snapshot(s) expired by the retention policy",
                    expired.len()
                ));
            }
            Ok(msg)
        }
        Err(e) => Err(job_error(&e)),
    };
    tracker.settle(result, vec![], vec![]).await;
}

/// Takes a snapshot of an environment (seed path). The job reports progress;
/// `snapshot.created` is published when it is complete and verified.
#[utoipa::path(operation_id = "create_snapshot", post, path = "/api/environments/snapshot", tag = "snapshots", request_body = CreateSnapshotRequest,
    responses((status = 202, body = SnapshotAccepted), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem), (status = 403, body = westtek_platform::Problem),
              (status = 429, body = westtek_platform::Problem, description = "`queue_full`: the lab already has the most snapshot, restore and drill jobs waiting that the vault queue accepts (`WESTTEK_VAULT_QUEUE_PER_LAB`); retry later")))]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateSnapshotRequest>,
) -> ApiResult<Response> {
    let env_id: EnvironmentId = parse_id("environment_id", &req.environment_id)?;
    let (snap, job) = start_snapshot(&state, &caller, env_id, req.notes).await?;
    Ok(accepted(
        job.id,
        SnapshotAccepted {
            job_id: job.id.to_string(),
            snapshot_id: snap.id.to_string(),
        },
    ))
}

/// Starts a snapshot of an environment the caller may operate: records it
/// `creating` with its job and runs the job in the background (the drift
/// accept action uses this too). The snapshot becomes the environment's
/// current drift baseline when complete.
///
/// # Errors
/// `not_found`/`forbidden` for the environment, `conflict` when it is not
/// ready or a snapshot is already being taken, `quota_exceeded`.
pub async fn start_snapshot(
    state: &AppState,
    caller: &Caller,
    env_id: EnvironmentId,
    notes: Option<String>,
) -> ApiResult<(Snapshot, Job)> {
    let (env, _) = operable(state, caller, env_id).await?;
    if let Some(a) = &env.adopted {
        return Err(DomainError::Conflict(format!(
            "this environment was adopted from {host}: its agent takes its snapshots there (run `westtek agent snapshot` on {host})",
            host = a.host
        ))
        .into());
    }
    let ticket = state.vault_queue.enqueue(env.lab_id)?;
    let notes = notes
        .map(|n| n.trim().chars().take(2000).collect::<String>())
        .filter(|n| !n.is_empty());
    let snap_audit = caller.audit(
        Some(env.lab_id),
        "snapshot.create",
        "environment",
        env.id,
        serde_json::json!({ "notes": notes }),
    );
    let (snap, job) = begin_snapshot(
        state,
        env.id,
        false,
        caller.principal.user_id,
        notes,
        snap_audit,
        "snapshot.create",
    )
    .await?;
    let tracker = state.jobs.track(job.clone());
    let run = run_snapshot_job(
        state.clone(),
        tracker.clone(),
        snap.clone(),
        caller.principal.username.clone(),
        caller.request_id.clone(),
    );
    tokio::spawn(async move {
        let _slot = wait_turn(ticket, &tracker).await;
        run.await;
    });
    Ok((snap, job))
}

/// Query of an agent's upload.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Why the snapshot was taken (at most 2000 characters kept).
    pub notes: Option<String>,
}

/// An adopted environment's agent uploads its files (a zstd-compressed tar:
/// `inventory.json`, `env/venv/…`, `env/home/…`, optionally `closure.json`
/// and `base/…`); the platform captures them into the vault as a snapshot
/// of the environment (its new drift baseline) and answers when it is
/// complete. Agent credential only.
#[utoipa::path(operation_id = "agent_upload_snapshot", post, path = "/api/agent/v1/snapshots", tag = "agent", params(UploadQuery),
    security(("agent_credential" = [])),
    request_body(content = Vec<u8>, content_type = "application/zstd"),
    responses((status = 201, body = SnapshotResponse), (status = 401, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem, description = "`conflict`: not an adopted environment, or a snapshot of it is being taken"),
              (status = 422, body = westtek_platform::Problem, description = "`invalid_input`: a malformed upload, a member outside the layout, a device or hard link, or more than `WESTTEK_AGENT_UPLOAD_MAX_BYTES` unpacked"),
              (status = 429, body = westtek_platform::Problem)))]
pub async fn agent_upload(
    agent: westtek_platform::agent_auth::AgentCaller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let snap = crate::upload::capture_upload(&state, &agent, body, q.notes).await?;
    Ok((StatusCode::CREATED, Json(SnapshotResponse::from(snap))).into_response())
}

/// Filters of the snapshot listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub environment_id: Option<String>,
    /// `creating`, `complete`, `failed`.
    pub status: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// Snapshots the caller can see, newest first.
#[utoipa::path(operation_id = "list_snapshots", get, path = "/api/snapshots", tag = "snapshots", params(ListQuery),
    responses((status = 200, body = SnapshotPage), (status = 404, body = westtek_platform::Problem)))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<SnapshotPage>> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(DomainError::invalid("limit", "must be 1-500").into());
    }
    let mut filter = SnapshotFilter {
        limit,
        offset: q.offset.unwrap_or(0),
        ..Default::default()
    };
    if let Some(e) = &q.environment_id {
        let env = visible(&state, &caller, parse_id("environment_id", e)?).await?;
        filter.environment_id = Some(env.id);
    } else {
        filter.lab_id = caller.read_scope()?.lab_filter();
    }
    if let Some(s) = &q.status {
        filter.status = Some(
            serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|_| {
                DomainError::invalid("status", "must be creating, complete or failed")
            })?,
        );
    }
    let page = state.store.list_snapshots(&filter).await?;
    Ok(Json(SnapshotPage {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// A snapshot the caller can see: one of their lab's, or another lab's
/// through an active share of it or of its environment, or a handover's
/// read grant (audited); any other is "not found".
pub async fn readable(state: &AppState, caller: &Caller, id: SnapshotId) -> ApiResult<Snapshot> {
    let s = state.store.get_snapshot(id).await?;
    if caller.can_read(s.lab_id) {
        return Ok(s);
    }
    if let Some(share) = grants::active_share(
        state,
        caller,
        s.lab_id,
        ShareResource::Snapshot,
        &s.id.to_string(),
    )
    .await?
    {
        grants::audit_access(state, caller, &share, "snapshot", &s.id.to_string()).await?;
        return Ok(s);
    }
    if grants::environment_grant(state, caller, s.lab_id, s.environment_id)
        .await?
        .is_some()
    {
        return Ok(s);
    }
    Err(ApiError::not_found("snapshot"))
}

fn engine_id(s: &Snapshot) -> ApiResult<String> {
    match (&s.status, &s.vault_snapshot_id) {
        (SnapshotStatus::Complete, Some(id)) => Ok(id.clone()),
        _ => Err(DomainError::Conflict("the snapshot is not complete".into()).into()),
    }
}

/// Who may use or change a snapshot: whoever may operate its environment;
/// once that environment is deleted (its snapshots stay), the snapshot's
/// author or an admin of its lab. `None`: the environment is gone.
async fn snapshot_operable(
    state: &AppState,
    caller: &Caller,
    s: &Snapshot,
) -> ApiResult<(Option<Environment>, WriteScope)> {
    match state.store.get_environment(s.environment_id).await {
        Ok(_) => {
            let (env, scope) = operable(state, caller, s.environment_id).await?;
            Ok((Some(env), scope))
        }
        Err(DomainError::NotFound { .. }) => {
            let scope = caller.write_scope_for(s.lab_id)?;
            if s.created_by != caller.principal.user_id && !scope.is_lab_admin() {
                return Err(ApiError::forbidden(
                    "only the snapshot's author or a lab admin may do this (its environment was deleted)",
                ));
            }
            Ok((None, scope))
        }
        Err(e) => Err(e.into()),
    }
}

/// One snapshot.
#[utoipa::path(operation_id = "get_snapshot", get, path = "/api/snapshots/{id}", tag = "snapshots", params(("id" = String, Path)),
    responses((status = 200, body = SnapshotResponse), (status = 404, body = westtek_platform::Problem)))]
pub async fn get_one(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<SnapshotId>,
) -> ApiResult<Json<SnapshotResponse>> {
    Ok(Json(readable(&state, &caller, id).await?.into()))
}

/// The inventory stored with a snapshot: interpreter, packages, kernels,
/// extensions, config files, notebooks with their imports, data files.
#[utoipa::path(get, path = "/api/snapshots/{id}/inventory", tag = "snapshots", params(("id" = String, Path)),
    responses((status = 200, description = "the inventory (JSON)"), (status = 404, body = westtek_platform::Problem)))]
pub async fn inventory(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<SnapshotId>,
) -> ApiResult<Json<serde_json::Value>> {
    let s = readable(&state, &caller, id).await?;
    Ok(Json(state.snapshots.inventory(&engine_id(&s)?).await?))
}

/// What changed from snapshot `id` to snapshot `other`: inventory findings
/// (packages, kernels, extensions, config, notebooks, data, with severity)
/// and file-level changes per layer.
#[utoipa::path(get, path = "/api/snapshots/{id}/diff/{other}", tag = "snapshots",
    params(("id" = String, Path), ("other" = String, Path)),
    responses((status = 200, description = "findings and file changes (JSON)"), (status = 404, body = westtek_platform::Problem)))]
pub async fn diff(
    caller: Caller,
    State(state): State<AppState>,
    Path((a, b)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let a = readable(&state, &caller, parse_id("id", &a)?).await?;
    let b = readable(&state, &caller, parse_id("other", &b)?).await?;
    let mut d = state
        .snapshots
        .diff(&engine_id(&a)?, &engine_id(&b)?)
        .await?;
    if let serde_json::Value::Object(m) = &mut d {
        m.insert("from".into(), serde_json::Value::String(a.id.to_string()));
        m.insert("to".into(), serde_json::Value::String(b.id.to_string()));
    }
    Ok(Json(d))
}

/// Deletes a snapshot (its unshared bytes leave the vault at the next gc).
/// A pinned drift baseline cannot be deleted.
#[utoipa::path(operation_id = "delete_snapshot", delete, path = "/api/snapshots/{id}", tag = "snapshots", params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem)))]
pub async fn delete(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<SnapshotId>,
) -> ApiResult<StatusCode> {
    let s = readable(&state, &caller, id).await?;
    let (env, _) = snapshot_operable(&state, &caller, &s).await?;
    if env.is_some_and(|e| e.baseline_snapshot_id == Some(s.id)) {
        return Err(DomainError::Conflict(
            "this snapshot is the environment's pinned drift baseline; unpin it first".into(),
        )
        .into());
    }
    if s.status == SnapshotStatus::Creating {
        return Err(DomainError::Conflict("the snapshot is still being taken".into()).into());
    }
    if let Some(t) = state
        .store
        .list_templates(None, Some(s.id), false)
        .await?
        .first()
    {
        return Err(DomainError::Conflict(format!(
            "this snapshot is published as template '{}' (templates are immutable); withdraw the template first",
            t.name
        ))
        .into());
    }
    let audit = caller.audit(
        Some(s.lab_id),
        "snapshot.delete",
        "snapshot",
        s.id,
        serde_json::json!({ "environment_id": s.environment_id.to_string() }),
    );
    forget(&state, &s, audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restores a snapshot: into a new environment of the caller's lab (default),
/// or in place, after the environment's current state is snapshotted.
#[utoipa::path(post, path = "/api/snapshots/{id}/restore", tag = "snapshots", params(("id" = String, Path)),
    request_body = RestoreSnapshotRequest,
    responses((status = 202, body = RestoreAccepted), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem), (status = 429, body = westtek_platform::Problem, description = "`queue_full`: the lab already has the most snapshot, restore and drill jobs waiting that the vault queue accepts (`WESTTEK_VAULT_QUEUE_PER_LAB`); retry later")))]
pub async fn restore(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<SnapshotId>,
    ApiJson(req): ApiJson<RestoreSnapshotRequest>,
) -> ApiResult<Response> {
    let s = readable(&state, &caller, id).await?;
    let engine = engine_id(&s)?;
    match req.mode.as_deref().unwrap_or("new_environment") {
        "new_environment" => restore_new(&state, &caller, s, engine, req.name).await,
        "in_place" => restore_in_place(&state, &caller, s, engine).await,
        _ => Err(DomainError::invalid("mode", "must be new_environment or in_place").into()),
    }
}

/// What a restored environment inherits when its source environment was
/// deleted: the interpreter's version from the snapshot's inventory, the
/// rest from the snapshot's record.
async fn deleted_source(state: &AppState, s: &Snapshot, engine: &str) -> Result<Environment> {
    let inventory = state.snapshots.inventory(engine).await?;
    let python_version = inventory
        .pointer("/python/version")
        .and_then(|v| v.as_str())
        .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "3".into());
    let name = Slug::parse_field(&format!("snapshot-{}", &s.id.to_string()[..8]), "name")?;
    Ok(Environment {
        id: s.environment_id,
        lab_id: s.lab_id,
        researcher_id: s.created_by,
        name,
        python_version,
        packages: Vec::new(),
        status: EnvironmentStatus::Ready,
        jupyter_status: JupyterStatus::Stopped,
        created_at: s.timestamp,
        updated_at: s.timestamp,
        last_snapshot: None,
        drift_status: westtek_domain::DriftStatus::Stable,
        configuration_hash: None,
        container_info: Default::default(),
        metadata: Default::default(),
        baseline_snapshot_id: None,
        current_baseline_id: None,
        retention: Default::default(),
        drill_interval_days: None,
        adopted: None,
        agent_credential: None,
        version: 0,
    })
}

async fn restore_new(
    state: &AppState,
    caller: &Caller,
    s: Snapshot,
    engine: String,
    name: Option<String>,
) -> ApiResult<Response> {
    // Only someone who may use the source environment restores it, and only
    // within its own lab (other labs get snapshots through explicit shares).
    let (source, scope) = snapshot_operable(state, caller, &s).await?;
    if scope.lab != s.lab_id {
        return Err(ApiError::not_found("snapshot"));
    }
    let source = match source {
        Some(e) => e,
        None => deleted_source(state, &s, &engine).await?,
    };
    restore_as_new(state, caller, scope, s, engine, source, name, Vec::new()).await
}

/// The environment a snapshot was taken of, or (deleted) what a restore of
/// it inherits.
///
/// # Errors
/// `conflict` for an incomplete snapshot; store failures.
pub async fn source_environment(
    state: &AppState,
    s: &Snapshot,
) -> ApiResult<(Environment, String)> {
    let engine = engine_id(s)?;
    match state.store.get_environment(s.environment_id).await {
        Ok(e) => Ok((e, engine)),
        Err(DomainError::NotFound { .. }) => Ok((deleted_source(state, s, &engine).await?, engine)),
        Err(e) => Err(e.into()),
    }
}

/// Restores snapshot `s` (vault id `engine`) into a new environment of
/// `scope.lab` owned by the caller: the restore endpoint, and cloning a
/// shared snapshot or template into another lab (then the source's lab
/// metadata stays behind, and `extra_audit` records the clone on both
/// labs' trails in the same commit).
///
/// # Errors
/// `validation` for a bad name, `conflict` for a taken one, `quota_exceeded`.
#[allow(clippy::too_many_arguments)]
pub async fn restore_as_new(
    state: &AppState,
    caller: &Caller,
    scope: WriteScope,
    s: Snapshot,
    engine: String,
    source: Environment,
    name: Option<String>,
    extra_audit: Vec<AuditDraft>,
) -> ApiResult<Response> {
    let name = name.unwrap_or_else(|| format!("{}-restored", source.name));
    let name = Slug::parse_field(name.trim(), "name")?;
    let ticket = state.vault_queue.enqueue(scope.lab)?;
    let lab = state.store.get_lab(scope.lab).await?;
    let now = state.clock.now();
    let mut env = source.clone();
    env.id = EnvironmentId::new();
    env.lab_id = scope.lab;
    env.researcher_id = caller.principal.user_id;
    env.name = name;
    env.status = EnvironmentStatus::Provisioning;
    env.jupyter_status = JupyterStatus::Stopped;
    env.created_at = now;
    env.updated_at = now;
    env.last_snapshot = None;
    env.drift_status = westtek_domain::DriftStatus::Stable;
    env.container_info = Default::default();
    // A platform environment now, whatever the source was: no lab machine,
    // no agent credential.
    env.adopted = None;
    env.agent_credential = None;
    if scope.lab != s.lab_id {
        // Another lab's experiment ids, funding and policies are not ours.
        env.metadata = Default::default();
        env.retention = Default::default();
        env.drill_interval_days = None;
    }
    env.metadata.jupyter_packages = s.metadata.installed_packages.clone();
    env.baseline_snapshot_id = None;
    env.current_baseline_id = Some(s.id);
    env.version = 0;
    let job = new_job(
        scope.lab,
        "environment.restore",
        env.id.to_string(),
        caller.principal.user_id,
        now,
    );
    let audit = caller.audit(
        Some(scope.lab),
        "snapshot.restore",
        "snapshot",
        s.id,
        serde_json::json!({ "mode": "new_environment", "environment_id": env.id.to_string(), "name": env.name }),
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
            std::iter::once(audit).chain(extra_audit).collect(),
        )
        .await?;
    let tracker = state.jobs.track(job.clone());
    let st = state.clone();
    let (actor, rid) = (caller.principal.username.clone(), caller.request_id.clone());
    let actor_id = caller.principal.user_id;
    let env_id = env.id;
    tokio::spawn(async move {
        let _slot = wait_turn(ticket, &tracker).await;
        let sink: Arc<dyn ProgressSink> = Arc::new(tracker.clone());
        let result = st
            .snapshots
            .restore(&engine, s.environment_id, env_id, sink)
            .await;
        let audit = |action: &str, details: serde_json::Value| {
            audit_as(
                actor_id,
                &actor,
                env.lab_id,
                action,
                s.id.to_string(),
                details,
                &rid,
            )
        };
        let restored = match result {
            Ok(out) => modify(&st, env_id, None, |e| {
                e.status = EnvironmentStatus::Ready;
                Ok(())
            })
            .await
            .map(|_| out),
            Err(e) => Err(e),
        };
        match restored {
            Ok(out) => {
                let a = audit(
                    "snapshot.restored",
                    serde_json::json!({
                        "environment_id": env_id.to_string(), "files": out.files, "bytes": out.bytes, "relocated": out.relocated,
                    }),
                );
                let msg = format!("restored {} files into environment {env_id}; {} files rewritten for the new path", out.files, out.relocated.len());
                tracker.settle(Ok(msg), vec![], vec![a]).await;
                publish(
                    &st,
                    types::SNAPSHOT_RESTORED,
                    &s,
                    serde_json::json!({ "environment_id": env_id.to_string() }),
                )
                .await;
            }
            Err(e) => {
                // Nothing half-made stays: files and record go.
                if let Err(rm) = st.builder.remove(env_id).await {
                    tracing::warn!(error = %rm, env = %env_id, "could not remove a failed restore's files");
                }
                let a = audit(
                    "snapshot.restore_failed",
                    serde_json::json!({ "environment_id": env_id.to_string(), "code": job_error(&e).code }),
                );
                tracker
                    .settle(
                        Err(job_error(&e)),
                        vec![Write::DeleteEnvironment(env_id)],
                        vec![a],
                    )
                    .await;
            }
        }
    });
    Ok(accepted(
        job.id,
        RestoreAccepted {
            job_id: job.id.to_string(),
            environment_id: env.id.to_string(),
        },
    ))
}

/// Restores `s` over its own environment, after snapshotting the current
/// state (the drift rollback uses this too).
///
/// # Errors
/// `conflict` when the environment is busy, its Jupyter runs, or it was deleted.
pub async fn restore_in_place(
    state: &AppState,
    caller: &Caller,
    s: Snapshot,
    engine: String,
) -> ApiResult<Response> {
    let (env, _) = snapshot_operable(state, caller, &s).await?;
    let Some(env) = env else {
        return Err(DomainError::Conflict(
            "the snapshot's environment was deleted; restore it into a new environment".into(),
        )
        .into());
    };
    if let Some(a) = &env.adopted {
        return Err(DomainError::Conflict(format!(
            "this environment was adopted from {}: the platform cannot write its files there; restore the snapshot into a new environment",
            a.host
        ))
        .into());
    }
    let ticket = state.vault_queue.enqueue(env.lab_id)?;
    // The environment is held (`provisioning`) for the whole restore, its
    // wait in the queue included: no launch, snapshot, delete or second
    // restore can interleave.
    modify(state, env.id, None, |e| {
        if e.status != EnvironmentStatus::Ready {
            return Err(DomainError::Conflict(
                "the environment is busy (being built, restored or deleted)".into(),
            ));
        }
        if e.jupyter_status != JupyterStatus::Stopped {
            return Err(DomainError::Conflict(
                "stop the environment's Jupyter server before restoring it in place".into(),
            ));
        }
        e.status = EnvironmentStatus::Provisioning;
        Ok(())
    })
    .await?;
    // First the safety snapshot of the current state; its job is the restore's.
    let audit = caller.audit(
        Some(env.lab_id),
        "snapshot.restore",
        "snapshot",
        s.id,
        serde_json::json!({ "mode": "in_place", "environment_id": env.id.to_string() }),
    );
    let note = Some(format!(
        "automatic: state before restoring snapshot {}",
        s.id
    ));
    let begun = begin_snapshot(
        state,
        env.id,
        true,
        caller.principal.user_id,
        note,
        audit,
        "snapshot.restore",
    )
    .await;
    let (safety, job) = match begun {
        Ok(b) => b,
        Err(e) => {
            release(state, env.id, None).await;
            return Err(e.into());
        }
    };
    let tracker = state.jobs.track(job.clone());
    let st = state.clone();
    let (actor, rid) = (caller.principal.username.clone(), caller.request_id.clone());
    let actor_id = caller.principal.user_id;
    let env_id = s.environment_id;
    tokio::spawn(async move {
        let _slot = wait_turn(ticket, &tracker).await;
        let sink: Arc<dyn ProgressSink> = Arc::new(Halves {
            inner: Arc::new(tracker.clone()),
            second: false,
        });
        // The safety snapshot records the drifted state: not a baseline.
        let before = capture(&st, safety, sink, &actor, &rid, false, None).await;
        let outcome = match before {
            Err(e) => Err(e),
            Ok(_) => {
                let sink: Arc<dyn ProgressSink> = Arc::new(Halves {
                    inner: Arc::new(tracker.clone()),
                    second: true,
                });
                st.snapshots
                    .restore(&engine, s.environment_id, s.environment_id, sink)
                    .await
            }
        };
        release(&st, env_id, outcome.as_ref().ok().map(|_| s.id)).await;
        let ok = outcome.is_ok();
        let (result, audits) = match outcome {
            Ok(out) => (
                Ok(format!(
                    "restored snapshot {} in place ({} files); the previous state was snapshotted first",
                    s.id, out.files
                )),
                vec![audit_as(actor_id, &actor, s.lab_id, "snapshot.restored", s.id.to_string(),
                    serde_json::json!({ "mode": "in_place", "files": out.files, "bytes": out.bytes }), &rid)],
            ),
            Err(e) => {
                let err = job_error(&e);
                let audit = audit_as(actor_id, &actor, s.lab_id, "snapshot.restore_failed", s.id.to_string(),
                    serde_json::json!({ "mode": "in_place", "code": err.code }), &rid);
                (Err(err), vec![audit])
            }
        };
        tracker.settle(result, vec![], audits).await;
        if ok {
            publish(&st, types::SNAPSHOT_RESTORED, &s, serde_json::json!({ "environment_id": s.environment_id.to_string(), "mode": "in_place" })).await;
        }
    });
    Ok(accepted(
        job.id,
        RestoreAccepted {
            job_id: job.id.to_string(),
            environment_id: env_id.to_string(),
        },
    ))
}

/// Gives an environment held by an in-place restore back (`ready`); after
/// a successful restore, the restored snapshot is its drift baseline.
async fn release(state: &AppState, env: EnvironmentId, restored: Option<SnapshotId>) {
    let r = modify(state, env, None, |e| {
        if e.status == EnvironmentStatus::Provisioning {
            e.status = EnvironmentStatus::Ready;
        }
        if restored.is_some() {
            e.current_baseline_id = restored;
        }
        Ok(())
    })
    .await;
    if let Err(e) = r {
        tracing::error!(error = %e, env = %env, "could not release an environment after an in-place restore");
    }
}

/// Maps a sub-task's 0–1 progress onto the first or second half of a job.
struct Halves {
    inner: Arc<dyn ProgressSink>,
    second: bool,
}

impl ProgressSink for Halves {
    fn update(&self, fraction: f32, message: &str) {
        let f = fraction.clamp(0.0, 1.0) / 2.0 + if self.second { 0.5 } else { 0.0 };
        let phase = if self.second {
            "restore"
        } else {
            "safety snapshot"
        };
        self.inner.update(f, &format!("{phase}: {message}"));
    }
}

/// Runs a restore drill now: restore into a scratch dir, start the kernel,
/// import every top-level module the notebooks import; the result is kept
/// on the snapshot.
#[utoipa::path(post, path = "/api/snapshots/{id}/drill", tag = "snapshots", params(("id" = String, Path)),
    responses((status = 202, body = westtek_platform::dto::JobAccepted), (status = 404, body = westtek_platform::Problem),
              (status = 429, body = westtek_platform::Problem, description = "`queue_full`: the lab already has the most snapshot, restore and drill jobs waiting that the vault queue accepts (`WESTTEK_VAULT_QUEUE_PER_LAB`); retry later")))]
pub async fn drill(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<SnapshotId>,
) -> ApiResult<Response> {
    let s = readable(&state, &caller, id).await?;
    snapshot_operable(&state, &caller, &s).await?;
    let engine = engine_id(&s)?;
    let ticket = state.vault_queue.enqueue(s.lab_id)?;
    let job = new_job(
        s.lab_id,
        "snapshot.drill",
        s.id.to_string(),
        caller.principal.user_id,
        state.clock.now(),
    );
    let audit = caller.audit(
        Some(s.lab_id),
        "snapshot.drill",
        "snapshot",
        s.id,
        serde_json::json!({}),
    );
    state
        .store
        .commit(vec![Write::InsertJob(job.clone())], vec![audit])
        .await?;
    let tracker = state.jobs.track(job.clone());
    let st = state.clone();
    tokio::spawn(async move {
        let _slot = wait_turn(ticket, &tracker).await;
        run_drill(st, tracker, s.id, engine).await;
    });
    Ok(accepted(
        job.id,
        westtek_platform::dto::JobAccepted {
            job_id: job.id.to_string(),
            environment_id: None,
        },
    ))
}

/// Runs a drill and records its result on the snapshot. A drill that
/// cannot run at all (the vault cannot be read, the restore fails) is a
/// failed drill too: recorded, so the scheduler waits for the next interval
/// instead of retrying it every round.
pub async fn run_drill(state: AppState, tracker: JobTracker, id: SnapshotId, engine: String) {
    let sink: Arc<dyn ProgressSink> = Arc::new(tracker.clone());
    let started = state.clock.now();
    let outcome = state.snapshots.drill(&engine, sink).await;
    let (result, writes, audits) = match state.store.get_snapshot(id).await {
        Ok(mut s) => {
            let (d, result) = match outcome {
                Ok(d) => {
                    let msg = if d.passed {
                        format!(
                            "drill passed: {} modules imported in the restored kernel",
                            d.modules_checked.len()
                        )
                    } else {
                        format!("drill FAILED: {}", d.failures.join("; "))
                    };
                    (d, Ok(msg))
                }
                Err(e) => {
                    let err = job_error(&e);
                    let now = state.clock.now();
                    let d = westtek_domain::DrillResult {
                        passed: false,
                        at: now,
                        duration_ms: u64::try_from((now - started).num_milliseconds()).unwrap_or(0),
                        modules_checked: Vec::new(),
                        failures: vec![format!("the drill could not run: {}", err.message)],
                    };
                    (d, Err(err))
                }
            };
            let audit = westtek_env_manager::system_audit(
                Some(s.lab_id),
                "snapshot.drilled",
                "snapshot",
                s.id.to_string(),
                serde_json::json!({ "passed": d.passed, "failures": d.failures }),
            );
            s.drill = Some(d);
            publish(&state, types::SNAPSHOT_DRILLED, &s, serde_json::json!({})).await;
            (result, vec![Write::UpdateSnapshot(s)], vec![audit])
        }
        // The snapshot was deleted meanwhile: nothing to record it on.
        Err(e) => (Err(job_error(&e)), vec![], vec![]),
    };
    tracker.settle(result, writes, audits).await;
}
