//! Snapshots an adopted environment's agent uploads (issue 15, "adopt").
//!
//! The agent sends its environment's files as one zstd-compressed tar (see
//! [`crate::staged`]); the platform unpacks it into a private staging
//! folder, captures it into the vault with the same engine, records and
//! audits the snapshot exactly as one it took itself (it becomes the drift
//! baseline), and deletes the staging folder. The upload waits its turn in
//! the lab's vault queue like every snapshot.
//!
//! The vault's key never leaves the platform: an agent on a lab workstation
//! holds only its environment's credential.

use crate::routes::{begin_snapshot, capture, job_error, wait_turn};
use crate::staged;
use futures::TryStreamExt;
use std::sync::Arc;
use westtek_domain::ports::{ProgressSink, StagedTree};
use westtek_domain::{DomainError, Snapshot};
use westtek_platform::agent_auth::AgentCaller;
use westtek_platform::{ApiResult, AppState};

/// Unpacks, captures and records one upload; returns the complete snapshot.
///
/// # Errors
/// `conflict` for an environment that is not adopted, not ready or already
/// being snapshotted; `invalid_input` for a malformed upload (see
/// [`staged::unpack`]); `queue_full`, `quota_exceeded`; vault failures.
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
    let ticket = state.vault_queue.enqueue(env.lab_id)?;
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
    let _slot = wait_turn(ticket, &tracker).await;
    let sink: Arc<dyn ProgressSink> = Arc::new(tracker.clone());
    let staged = StagedTree {
        dir: dir.path().to_path_buf(),
        origin,
        inventory: unpacked.inventory,
    };
    let outcome = capture(
        state,
        snap,
        sink,
        &agent.actor_name(),
        &agent.request_id,
        true,
        Some(staged),
    )
    .await;
    let settled = match &outcome {
        Ok(s) => Ok(format!(
            "snapshot {} of the upload complete: {} bytes, {} new in the vault",
            s.id, s.size_bytes, s.stored_bytes_added
        )),
        Err(e) => Err(job_error(e)),
    };
    tracker.settle(settled, vec![], vec![]).await;
    drop(dir);
    if let Ok(snap) = &outcome {
        // What the portal counts as installed, from what was uploaded.
        let installed = snap.metadata.installed_packages.clone();
        let _ = westtek_env_manager::environments::modify(state, env.id, None, move |e| {
            e.metadata.jupyter_packages = installed.clone();
            Ok(())
        })
        .await;
    }
    Ok(outcome?)
}
