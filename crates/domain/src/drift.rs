//! Drift records (issue 5): events, per-environment live state, webhook
//! targets, undelivered alerts and agent recommendations, and the
//! [`DriftStore`] port that keeps them (SQLite locally, DynamoDB on AWS).
//!
//! Findings are kept as JSON (`westtek_inventory::Finding` serialised): the
//! domain crate has no I/O and does not depend on the inventory crate.

use crate::{
    DriftEventId, DriftStatus, EnvironmentId, LabId, Page, RecommendationId, Result, SnapshotId,
    UserId, WebhookId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why an environment was evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftSource {
    /// A watcher batch (inotify).
    Watcher,
    /// The periodic safety-net sweep.
    Sweep,
    /// The check at start-up (changes made while the platform was down).
    Startup,
    /// A new baseline (snapshot taken, accepted, pinned, rolled back).
    Baseline,
}

/// One change of an environment's drift findings against its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftEvent {
    pub id: DriftEventId,
    /// Position in the store's global order (assigned on insert; resumable
    /// streams use it as `Last-Event-ID`).
    pub seq: u64,
    pub lab_id: LabId,
    pub environment_id: EnvironmentId,
    pub detected_at: DateTime<Utc>,
    pub source: DriftSource,
    pub baseline_snapshot_id: Option<SnapshotId>,
    pub previous_status: DriftStatus,
    pub status: DriftStatus,
    /// `CRITICAL`, `MINOR` or `INFO` (the highest finding); `None` when the
    /// environment is back at its baseline.
    pub severity: Option<String>,
    /// Identity of `findings` (same findings, same fingerprint).
    pub fingerprint: String,
    /// `westtek_inventory::Finding`s as JSON, sorted.
    pub findings: serde_json::Value,
    /// Affected notebooks across all findings, sorted.
    pub affected_notebooks: Vec<String>,
}

/// An environment's live drift state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftStateRecord {
    pub environment_id: EnvironmentId,
    pub lab_id: LabId,
    pub status: DriftStatus,
    pub fingerprint: String,
    pub baseline_snapshot_id: Option<SnapshotId>,
    /// The event that set this state.
    pub last_event_id: Option<DriftEventId>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of [`DriftStore::list_drift_events`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriftEventFilter {
    /// `None`: every lab (IT admins).
    pub lab_id: Option<LabId>,
    pub environment_id: Option<EnvironmentId>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
    /// Only events with `seq` greater than this, oldest first (stream resume).
    /// Without it: newest first.
    pub after_seq: Option<u64>,
    pub limit: u32,
    pub offset: u32,
}

/// Payload format of a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The alert as JSON.
    Generic,
    /// Slack incoming-webhook shape (`text`, `blocks`).
    Slack,
}

/// A lab's webhook target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: WebhookId,
    pub lab_id: LabId,
    pub url: String,
    /// HMAC-SHA256 signing secret (shown once, at creation).
    pub secret: String,
    pub format: WebhookFormat,
    /// `CRITICAL`, `MINOR` or `INFO`: the lowest severity delivered.
    pub min_severity: String,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

/// An alert that could not be delivered after every retry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    pub id: uuid::Uuid,
    pub lab_id: LabId,
    /// `webhook`, `email` or `router`.
    pub channel: String,
    /// Webhook id, email target or `router`.
    pub target: String,
    /// The drift event's id (as the alert's `event_id`).
    pub event_id: String,
    pub attempts: u32,
    pub last_error: String,
    pub last_status: Option<u16>,
    pub payload: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A recommendation an agent made (snapshot, rollback, pin).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendationRecord {
    pub id: RecommendationId,
    pub lab_id: LabId,
    pub environment_id: EnvironmentId,
    /// `drift_analyzer`, …
    pub agent: String,
    /// The recommendation itself (`westtek_assist::Recommendation` as JSON).
    pub body: serde_json::Value,
    /// The plain-language analysis it came with, if any.
    pub analysis: Option<String>,
    pub drift_event_id: Option<DriftEventId>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// Outcome of [`DriftStore::record_drift`].
#[derive(Clone, Debug, PartialEq)]
pub enum RecordOutcome {
    /// The event was stored (with its `seq`) and the state moved.
    Recorded(DriftEvent),
    /// The stored state was not at `expected_fingerprint` any more (someone
    /// recorded this or another change first): nothing was written.
    Stale(Option<DriftStateRecord>),
}

/// Where drift records live.
#[async_trait]
pub trait DriftStore: Send + Sync {
    /// Atomically: when the environment's stored fingerprint equals
    /// `expected_fingerprint` (`None`: no state stored yet), store `event`
    /// (assigning `seq`) and set the state to the event's status,
    /// fingerprint and baseline. Otherwise nothing. This makes detection
    /// idempotent: the watcher and the sweep seeing the same change record
    /// one event.
    async fn record_drift(
        &self,
        event: DriftEvent,
        expected_fingerprint: Option<String>,
    ) -> Result<RecordOutcome>;
    /// Sets the state without an event (e.g. a fresh baseline).
    async fn put_drift_state(&self, state: DriftStateRecord) -> Result<()>;
    async fn get_drift_state(&self, env: EnvironmentId) -> Result<Option<DriftStateRecord>>;
    /// States of a lab (`None`: all).
    async fn list_drift_states(&self, lab: Option<LabId>) -> Result<Vec<DriftStateRecord>>;
    /// Removes an environment's state (it was deleted); its events stay.
    async fn delete_drift_state(&self, env: EnvironmentId) -> Result<()>;
    async fn get_drift_event(&self, id: DriftEventId) -> Result<DriftEvent>;
    async fn list_drift_events(&self, filter: &DriftEventFilter) -> Result<Page<DriftEvent>>;

    /// Fails with `Conflict` when the lab already has a webhook to `url`.
    async fn insert_webhook(&self, hook: Webhook) -> Result<()>;
    /// Fails with `NotFound` when absent.
    async fn delete_webhook(&self, id: WebhookId) -> Result<()>;
    async fn get_webhook(&self, id: WebhookId) -> Result<Webhook>;
    async fn list_webhooks(&self, lab: LabId) -> Result<Vec<Webhook>>;

    async fn insert_dead_letter(&self, letter: DeadLetterRecord) -> Result<()>;
    /// Newest first.
    async fn list_dead_letters(&self, lab: LabId, limit: u32) -> Result<Vec<DeadLetterRecord>>;

    async fn insert_recommendation(&self, rec: RecommendationRecord) -> Result<()>;
    /// Newest first.
    async fn list_recommendations(
        &self,
        env: EnvironmentId,
        limit: u32,
    ) -> Result<Vec<RecommendationRecord>>;
}
