//! Request and response bodies of the snapshot endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use westtek_domain::{DrillResult, Snapshot};
use westtek_platform::dto::unit_name;

/// Take a snapshot (seed: `POST /api/environments/snapshot`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshotRequest {
    pub environment_id: String,
    /// Why this snapshot was taken (kept with it).
    pub notes: Option<String>,
}

/// Restore a snapshot.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreSnapshotRequest {
    /// `new_environment` (default): a new environment of the caller's lab;
    /// `in_place`: the snapshot's own environment, after snapshotting its
    /// current state.
    pub mode: Option<String>,
    /// Name of the new environment (`new_environment` only).
    pub name: Option<String>,
}

/// The seed's snapshot metadata.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotMetadataBody {
    pub jupyter_version: Option<String>,
    pub installed_packages: Vec<String>,
    pub notebook_count: u32,
    pub configuration_files: Vec<String>,
    pub notes: Option<String>,
}

/// The latest restore drill of a snapshot.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DrillBody {
    pub passed: bool,
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    pub modules_checked: Vec<String>,
    pub failures: Vec<String>,
}

impl From<DrillResult> for DrillBody {
    fn from(d: DrillResult) -> Self {
        DrillBody {
            passed: d.passed,
            at: d.at,
            duration_ms: d.duration_ms,
            modules_checked: d.modules_checked,
            failures: d.failures,
        }
    }
}

/// A snapshot (seed data model).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotResponse {
    pub id: String,
    pub lab_id: String,
    pub environment_id: String,
    pub created_by: String,
    pub timestamp: DateTime<Utc>,
    /// `creating`, `complete` or `failed`.
    pub status: String,
    pub s3_location: String,
    pub size_bytes: u64,
    pub stored_bytes_added: u64,
    pub checksum: Option<String>,
    pub container_image: Option<String>,
    pub efs_snapshot_id: Option<String>,
    pub ebs_snapshot_id: Option<String>,
    pub metadata: SnapshotMetadataBody,
    pub parent_id: Option<String>,
    pub drill: Option<DrillBody>,
}

impl From<Snapshot> for SnapshotResponse {
    fn from(s: Snapshot) -> Self {
        SnapshotResponse {
            id: s.id.to_string(),
            lab_id: s.lab_id.to_string(),
            environment_id: s.environment_id.to_string(),
            created_by: s.created_by.to_string(),
            timestamp: s.timestamp,
            status: unit_name(&s.status),
            s3_location: s.s3_location,
            size_bytes: s.size_bytes,
            stored_bytes_added: s.stored_bytes_added,
            checksum: s.checksum,
            container_image: s.container_image,
            efs_snapshot_id: s.efs_snapshot_id,
            ebs_snapshot_id: s.ebs_snapshot_id,
            metadata: SnapshotMetadataBody {
                jupyter_version: s.metadata.jupyter_version,
                installed_packages: s.metadata.installed_packages,
                notebook_count: s.metadata.notebook_count,
                configuration_files: s.metadata.configuration_files,
                notes: s.metadata.notes,
            },
            parent_id: s.parent_id.map(|p| p.to_string()),
            drill: s.drill.map(Into::into),
        }
    }
}

/// A page of snapshots, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotPage {
    pub items: Vec<SnapshotResponse>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

/// Snapshot accepted: follow the job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SnapshotAccepted {
    pub job_id: String,
    pub snapshot_id: String,
}

/// Restore accepted: follow the job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RestoreAccepted {
    pub job_id: String,
    /// The environment the files go to.
    pub environment_id: String,
}
