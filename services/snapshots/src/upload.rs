//! Snapshots an adopted environment's agent uploads (issue 15, "adopt").
//!
//! The agent sends its environment's files as one zstd-compressed tar (see
//! [`crate::staged`]); the platform unpacks it into a private staging
//! folder, captures it into the vault with the same engine, records and
//! audits the snapshot exactly as one it took itself (it becomes the drift
//! baseline; the retention policy applies), and deletes the staging folder.
//!
//! Order, so a slow or hostile upload costs only its own environment: the
//! cheap checks first (ready, no snapshot being taken, storage quota), one
//! upload per environment at a time, then the unpacking, and only then a
//! place in the lab's vault queue. The capture runs in its own task: an
//! agent that goes away mid-capture leaves a snapshot that completes (or
//! fails) on its own, never one stuck `creating`.
//!
//! The vault's key never leaves the platform: an agent on a lab workstation
//! holds only its environment's credential.

use crate::routes::{
    apply_retention, begin_snapshot, capture, job_error, snapshot_allowed, wait_turn,
};
use crate::staged;
use futures::TryStreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use westtek_domain::ports::{ProgressSink, StagedTree};
use westtek_domain::{DomainError, EnvironmentId, Snapshot};
use westtek_platform::agent_auth::AgentCaller;
use westtek_platform::{ApiResult, AppState};

/// Environments whose upload is being received.
static RECEIVING: Mutex<Option<HashSet<EnvironmentId>>> = Mutex::new(None);

/// Holds an environment's upload slot; frees it when dropped.
struct Receiving(EnvironmentId);

impl Receiving {
    fn take(env: EnvironmentId) -> Option<Self> {
        let mut g = RECEIVING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.get_or_insert_with(HashSet::new)
            .insert(env)
            .then_some(Receiving(env))
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let mut g = RECEIVING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(set) = g.as_mut() {
            set.remove(&self.0);
        }
    }
}

/// Unpacks, captures and records one upload; returns the complete snapshot.
///
/// # Errors
/// `conflict` for an environment that is not adopted, not ready or already
/// being snapshotted or uploaded; `invalid_input` for a malformed upload
/// (see [`staged::unpack`]); `queue_full`, `quota_exceeded`; vault failures.
pub async fn capture_upload(
    state: &AppState,
    agent: &AgentCaller,
    body: axum::body::Body,
    notes: Option<String>,
) -> ApiResult<Snapshot> {
    let env = &agent.env;
    let origin: westtek_domain::AdoptedFrom = env.adopted.clone().ok_or_else(|| {
        DomainError::Conflict(
            "only an adopted environment's agent uploads snapshots; the platform snapshots its own environments".into(),
        )
    })?;
    // `begin_snapshot` checks again under its commit; checked first so a
    // refused upload costs nothing.
    snapshot_allowed(state, env, false).await?;
    let _receiving = Receiving::take(env.id).ok_or_else(|| {
        DomainError::Conflict("an upload of this environment is already being received".into())
    })?;
    std::fs::create_dir_all(&state.config.upload_dir).map_err(DomainError::internal)?;
    let dir = tempfile::Builder::new()
        .prefix("upload-")
        .tempdir_in(&state.config.upload_dir)
        .map_err(DomainError::internal)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let (path, env_id, limit) = (
        dir.path().to_path_buf(),
        env.id,
        state.config.agent_upload_max_bytes,
    );
    let unpacked =
        tokio::task::spawn_blocking(move || staged::unpack(reader, &path, env_id, limit))
            .await
            .map_err(|e| DomainError::internal(format!("unpacking the upload: {e}")))??;
    let ticket = state.vault_queue.enqueue(env.lab_id)?;
    let notes = notes
        .map(|n| n.trim().chars().take(2000).collect::<String>())
        .filter(|n| !n.is_empty());
    let audit = agent.audit(
        "snapshot.create",
        "environment",
        env.id,
        serde_json::json!({
            "notes": notes,
            "uploaded": { "entries": unpacked.entries, "bytes": unpacked.bytes },
        }),
    );
    let by = env
        .agent_credential
        .as_ref()
        .map_or(env.researcher_id, |c| c.issued_by);
    let (snap, job) =
        begin_snapshot(state, env.id, false, by, notes, audit, "snapshot.upload").await?;
    let tracker = state.jobs.track(job);
    let staged = StagedTree {
        dir: dir.path().to_path_buf(),
        origin,
        inventory: unpacked.inventory,
        closure: unpacked.closure,
    };
    let (st, actor, rid) = (state.clone(), agent.actor_name(), agent.request_id.clone());
    // Its own task: it finishes (and removes the staging folder) even when
    // the agent goes away.
    let run = tokio::spawn(async move {
        let _slot = wait_turn(ticket, &tracker).await;
        let sink: Arc<dyn ProgressSink> = Arc::new(tracker.clone());
        let outcome = capture(&st, snap, sink, &actor, &rid, true, Some(staged)).await;
        drop(dir);
        let settled = match &outcome {
            Ok(s) => {
                let expired = apply_retention(&st, env_id).await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, env = %env_id, "retention could not be applied");
                    Vec::new()
                });
                // What the portal counts as installed, from what was uploaded.
                let installed = s.metadata.installed_packages.clone();
                let _ = westtek_env_manager::environments::modify(&st, env_id, None, move |e| {
                    e.metadata.jupyter_packages = installed.clone();
                    Ok(())
                })
                .await;
                Ok(format!(
                    "snapshot {} of the upload complete: {} bytes, {} new in the vault; {} expired by the retention policy",
                    s.id, s.size_bytes, s.stored_bytes_added, expired.len()
                ))
            }
            Err(e) => Err(job_error(e)),
        };
        tracker.settle(settled, vec![], vec![]).await;
        outcome
    });
    let outcome = run
        .await
        .map_err(|e| DomainError::internal(format!("the upload's capture: {e}")))?;
    Ok(outcome?)
}
