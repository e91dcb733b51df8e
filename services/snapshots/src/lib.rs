//! snapshots: capture environments into the vault, list and compare
//! snapshots, restore them (into a new environment or in place), restore
//! drills, retention. A library exposing `router()`; `westtek up` and
//! `westtek serve snapshots` serve it. The bytes are the `SnapshotEngine`
//! port's business; this service keeps the records, jobs, audit and events.

pub mod dto;
pub mod engine;
pub mod retention;
pub mod routes;
pub mod staged;
pub mod upload;

use axum::Router;
use utoipa::OpenApi;
use westtek_domain::ports::Write;
use westtek_domain::{DomainEvent, Snapshot, SnapshotFilter, SnapshotStatus};
use westtek_env_manager::system_audit;
use westtek_platform::AppState;

/// The service name in events and logs.
pub const SERVICE: &str = "snapshots";

/// All routes of the service.
pub fn router() -> Router<AppState> {
    routes::router()
}

/// OpenAPI of the service.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::create, routes::list, routes::get_one, routes::diff, routes::restore,
        routes::delete, routes::drill, routes::inventory, routes::lab_storage, routes::vault_gc,
        routes::vault_verify, routes::agent_upload,
    ),
    tags((name = "snapshots", description = "Snapshots of environments: capture, compare, restore, drill"),
         (name = "agent", description = "The environment agent's API (`westtek agent`): authenticated with the agent's credential `wtagent_…`, scoped to its one environment"))
)]
pub struct SnapshotsApi;

/// Starts the service's background tasks: scheduled restore drills (checked
/// every 10 minutes) and vault garbage collection (every 6 hours); first
/// removes agent uploads a crash left behind.
pub fn spawn_background(state: AppState) -> Vec<tokio::task::JoinHandle<()>> {
    // Uploads a crash left half unpacked (their snapshots were failed by
    // the start-up reconcile): nothing else uses them.
    if let Err(e) = std::fs::remove_dir_all(&state.config.upload_dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(error = %e, dir = %state.config.upload_dir.display(), "could not remove old agent uploads");
        }
    }
    let drills = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                if let Err(e) = routes::run_due_drills(&state).await {
                    tracing::warn!(error = %e, "scheduled drills failed");
                }
            }
        })
    };
    let gc = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(6 * 3600));
        tick.tick().await;
        loop {
            tick.tick().await;
            match state.snapshots.gc().await {
                Ok(report) => tracing::info!(%report, "vault gc"),
                Err(e) => tracing::warn!(error = %e, "vault gc failed"),
            }
        }
    });
    vec![drills, gc]
}

/// Publishes a snapshot event; a bus failure is logged, never fails the
/// request (the change is committed and audited).
pub(crate) async fn publish(
    state: &AppState,
    event_type: &str,
    s: &Snapshot,
    extra: serde_json::Value,
) {
    let mut data = serde_json::json!({
        "snapshot_id": s.id.to_string(),
        "environment_id": s.environment_id.to_string(),
        "status": s.status,
        "checksum": s.checksum,
        "created_by": s.created_by.to_string(),
    });
    if let (serde_json::Value::Object(d), serde_json::Value::Object(x)) = (&mut data, extra) {
        d.extend(x);
    }
    let ev = DomainEvent::new(event_type, SERVICE, s.lab_id, state.clock.now(), data);
    if let Err(e) = state.bus.publish(&ev).await {
        tracing::warn!(error = %e, event = event_type, "could not publish event");
    }
}

/// At start-up: snapshots that were being written when the process died
/// are marked failed (the vault never lists a snapshot it did not finish;
/// its leftovers go at the next gc). Their jobs are failed as interrupted
/// by the env-manager's reconcile, which runs first.
///
/// # Errors
/// Store failures.
pub async fn reconcile(state: &AppState) -> westtek_domain::Result<()> {
    let creating = state
        .store
        .list_snapshots(&SnapshotFilter {
            status: Some(SnapshotStatus::Creating),
            limit: 100_000,
            ..Default::default()
        })
        .await?;
    for mut s in creating.items {
        s.status = SnapshotStatus::Failed;
        let audit = system_audit(
            Some(s.lab_id),
            "snapshot.interrupted",
            "snapshot",
            s.id.to_string(),
            serde_json::json!({ "environment_id": s.environment_id.to_string() }),
        );
        state
            .store
            .commit(vec![Write::UpdateSnapshot(s)], vec![audit])
            .await?;
    }
    // Environments still held after the env-manager's reconcile (which
    // removed half-made ones) were being restored in place: give them back;
    // their safety snapshot holds the state from before.
    let held = state
        .store
        .list_environments(&westtek_domain::EnvironmentFilter {
            status: Some(westtek_domain::EnvironmentStatus::Provisioning),
            limit: 100_000,
            ..Default::default()
        })
        .await?;
    for env in held.items {
        let audit = system_audit(
            Some(env.lab_id),
            "environment.restore_interrupted",
            "environment",
            env.id.to_string(),
            serde_json::json!({ "note": "an in-place restore was cut short; the snapshot taken before it holds the previous state" }),
        );
        westtek_env_manager::environments::modify(state, env.id, Some(audit), |e| {
            e.status = westtek_domain::EnvironmentStatus::Ready;
            Ok(())
        })
        .await?;
    }
    Ok(())
}
