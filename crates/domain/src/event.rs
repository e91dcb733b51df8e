//! The domain event envelope shared by every service and bus adapter.
//!
//! One versioned shape for every event (CloudEvents-like): consumers check
//! `version` and ignore types they do not know, and use `id` to stay
//! idempotent when a bus delivers the same event twice.

use crate::{EventId, LabId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Current envelope version.
pub const EVENT_VERSION: u16 = 1;

/// Event types published by the platform.
pub mod types {
    pub const ENVIRONMENT_CREATED: &str = "environment.created";
    pub const ENVIRONMENT_READY: &str = "environment.ready";
    pub const ENVIRONMENT_BUILD_FAILED: &str = "environment.build_failed";
    pub const ENVIRONMENT_UPDATED: &str = "environment.updated";
    pub const ENVIRONMENT_DELETED: &str = "environment.deleted";
    pub const ENVIRONMENT_LAUNCHED: &str = "environment.launched";
    pub const ENVIRONMENT_STOPPED: &str = "environment.stopped";
    pub const SNAPSHOT_CREATED: &str = "snapshot.created";
    pub const SNAPSHOT_FAILED: &str = "snapshot.failed";
    pub const SNAPSHOT_DELETED: &str = "snapshot.deleted";
    pub const SNAPSHOT_RESTORED: &str = "snapshot.restored";
    pub const SNAPSHOT_DRILLED: &str = "snapshot.drilled";
    pub const DRIFT_DETECTED: &str = "drift.detected";
}

/// One domain event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u16,
    /// The service that published it (`env-manager`, `snapshots`, …).
    pub source: String,
    pub lab_id: LabId,
    pub time: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl DomainEvent {
    /// A new event of the current version.
    pub fn new(
        event_type: &str,
        source: &str,
        lab_id: LabId,
        time: DateTime<Utc>,
        data: serde_json::Value,
    ) -> Self {
        DomainEvent {
            id: EventId::new(),
            event_type: event_type.to_string(),
            version: EVENT_VERSION,
            source: source.to_string(),
            lab_id,
            time,
            data,
        }
    }
}
