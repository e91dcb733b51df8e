//! The Drift Analyzer's tools: the seed's action groups as a port.
//!
//! One method per action (`GetDriftEvents`, `GetPackageChangelog`,
//! `GetEnvironmentNotebooks`, `GetSnapshotComparison`,
//! `GetEnvironmentConfig`, `CreateSnapshotRecommendation`,
//! `CreateRollbackRecommendation`), with the seed's parameters. The service
//! implements [`DriftTools`] over its database (the `create_*` methods
//! persist and audit the recommendation); the local engine and, later, the
//! Bedrock action-group Lambda call it.
//!
//! Policy: every call carries a [`ToolScope`] — the lab the caller acts in
//! and who acts — which the seed's actions get out of band (Bedrock session
//! attributes). An implementation must refuse an environment or snapshot
//! outside the scope's lab with [`ToolError::NotFound`], so nothing tells a
//! caller that another lab's resource exists.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use westtek_domain::{DriftStatus, EnvironmentId, EventId, LabId, SnapshotId, UserId};
use westtek_inventory::{Finding, Severity};

use crate::changelog::PackageChangelog;

/// Who a tool call is for: the lab every lookup is confined to and the
/// user recorded in the audit of what it creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolScope {
    /// The caller's lab.
    pub lab_id: LabId,
    /// The user on whose behalf the agent acts; `None` for the platform's
    /// own automatic analysis of a critical drift event.
    pub actor: Option<UserId>,
}

/// The seed's Drift Analyzer actions, by their wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DriftAction {
    /// [`DriftTools::get_drift_events`].
    GetDriftEvents,
    /// [`DriftTools::get_package_changelog`].
    GetPackageChangelog,
    /// [`DriftTools::get_environment_notebooks`].
    GetEnvironmentNotebooks,
    /// [`DriftTools::get_snapshot_comparison`].
    GetSnapshotComparison,
    /// [`DriftTools::get_environment_config`].
    GetEnvironmentConfig,
    /// [`DriftTools::create_snapshot_recommendation`].
    CreateSnapshotRecommendation,
    /// [`DriftTools::create_rollback_recommendation`].
    CreateRollbackRecommendation,
}

impl DriftAction {
    /// Every action, in the seed's order.
    pub const ALL: [DriftAction; 7] = [
        DriftAction::GetDriftEvents,
        DriftAction::GetPackageChangelog,
        DriftAction::GetEnvironmentNotebooks,
        DriftAction::GetSnapshotComparison,
        DriftAction::GetEnvironmentConfig,
        DriftAction::CreateSnapshotRecommendation,
        DriftAction::CreateRollbackRecommendation,
    ];

    /// The seed's name (`GetDriftEvents`, …).
    pub fn name(self) -> &'static str {
        match self {
            DriftAction::GetDriftEvents => "GetDriftEvents",
            DriftAction::GetPackageChangelog => "GetPackageChangelog",
            DriftAction::GetEnvironmentNotebooks => "GetEnvironmentNotebooks",
            DriftAction::GetSnapshotComparison => "GetSnapshotComparison",
            DriftAction::GetEnvironmentConfig => "GetEnvironmentConfig",
            DriftAction::CreateSnapshotRecommendation => "CreateSnapshotRecommendation",
            DriftAction::CreateRollbackRecommendation => "CreateRollbackRecommendation",
        }
    }

    /// The action with the seed's name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// One recorded drift event, as the agent sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftEventView {
    /// The event's id (that of its `drift.detected` domain event).
    pub id: EventId,
    /// The environment that drifted.
    pub environment_id: EnvironmentId,
    /// When the drift was detected.
    pub detected_at: DateTime<Utc>,
    /// The environment's drift status this event reported.
    pub status: DriftStatus,
    /// The highest severity among its findings.
    pub severity: Severity,
    /// What differs from the baseline, sorted by severity.
    pub findings: Vec<Finding>,
}

/// A notebook and the top-level modules it imports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotebookView {
    /// Root-relative path (`home/analysis.ipynb`).
    pub path: String,
    /// Top-level modules its code imports, sorted.
    pub imports: Vec<String>,
}

/// One snapshot of an environment, as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// The snapshot.
    pub id: SnapshotId,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Its notes, if any.
    pub notes: Option<String>,
}

/// An environment's configuration, as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentConfigView {
    /// The environment.
    pub environment_id: EnvironmentId,
    /// Its name.
    pub name: String,
    /// The interpreter version (`3.11.9`).
    pub python_version: String,
    /// The snapshot drift is measured against, when the lab pinned one.
    pub baseline_snapshot_id: Option<SnapshotId>,
    /// The newest complete snapshot.
    pub latest_snapshot: Option<SnapshotSummary>,
    /// Its complete snapshots, newest first.
    pub snapshots: Vec<SnapshotSummary>,
    /// Its current drift status.
    pub drift_status: DriftStatus,
    /// The Jupyter version, if known.
    pub jupyter_version: Option<String>,
    /// Its kernel names.
    pub kernels: Vec<String>,
}

impl EnvironmentConfigView {
    /// The snapshot a rollback should return to: the pinned baseline, else
    /// the newest snapshot.
    pub fn rollback_target(&self) -> Option<SnapshotId> {
        self.baseline_snapshot_id
            .or(self.latest_snapshot.as_ref().map(|s| s.id))
    }

    /// The snapshot `id`, if the environment has it.
    pub fn snapshot(&self, id: SnapshotId) -> Option<&SnapshotSummary> {
        self.snapshots
            .iter()
            .chain(self.latest_snapshot.as_ref())
            .find(|s| s.id == id)
    }
}

/// What a recommendation asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecommendationKind {
    /// Take a snapshot, accepting the present state as the new baseline.
    Snapshot,
    /// Restore the environment to a snapshot.
    Rollback {
        /// The snapshot to restore.
        #[schema(value_type = String)]
        target_snapshot_id: SnapshotId,
    },
    /// Pin a package to a version.
    Pin {
        /// The package.
        package: String,
        /// The version to pin.
        version: String,
    },
}

/// A recorded recommendation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendation {
    /// Its id.
    pub id: Uuid,
    /// The environment it is for.
    #[schema(value_type = String)]
    pub environment_id: EnvironmentId,
    /// What it asks for.
    pub kind: RecommendationKind,
    /// Why, in a sentence or two.
    pub reason: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Why a tool call failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The environment, snapshot or package does not exist in the scope's lab.
    #[error("{0} not found")]
    NotFound(String),
    /// The actor may not do this (for example, a read-only member creating
    /// a recommendation).
    #[error("not allowed")]
    Forbidden,
    /// An argument is invalid.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Anything else (database, I/O); logged, never shown to the user.
    #[error("tool failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ToolError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::NotFound(_) => "not_found",
            ToolError::Forbidden => "forbidden",
            ToolError::Invalid(_) => "invalid_argument",
            ToolError::Failed(_) => "tool_failed",
        }
    }
}

/// The Drift Analyzer's actions. See the module documentation for the
/// scoping rule every implementation follows.
#[async_trait]
pub trait DriftTools: Send + Sync {
    /// `GetDriftEvents`: the environment's drift events detected within
    /// `[since, until]` (either end open when `None`), newest first.
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for an environment outside the scope's lab.
    async fn get_drift_events(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DriftEventView>, ToolError>;

    /// `GetPackageChangelog`: what is known offline about `package` moving
    /// from `old_version` to `new_version` (either `None` when it was added
    /// or removed) — see [`crate::changelog`].
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for an environment outside the scope's lab.
    async fn get_package_changelog(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        package: &str,
        old_version: Option<&str>,
        new_version: Option<&str>,
    ) -> Result<PackageChangelog, ToolError>;

    /// `GetEnvironmentNotebooks`: the environment's notebooks and what they
    /// import.
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for an environment outside the scope's lab.
    async fn get_environment_notebooks(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<Vec<NotebookView>, ToolError>;

    /// `GetSnapshotComparison`: the findings between two snapshots of the
    /// same environment (`before` as the baseline).
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for a snapshot outside the scope's lab;
    /// [`ToolError::Invalid`] for snapshots of different environments.
    async fn get_snapshot_comparison(
        &self,
        scope: &ToolScope,
        before: SnapshotId,
        after: SnapshotId,
    ) -> Result<Vec<Finding>, ToolError>;

    /// `GetEnvironmentConfig`: the environment's configuration and snapshots.
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for an environment outside the scope's lab.
    async fn get_environment_config(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<EnvironmentConfigView, ToolError>;

    /// `CreateSnapshotRecommendation`: records (and audits) a recommendation
    /// to take a snapshot.
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for an environment outside the scope's lab;
    /// [`ToolError::Forbidden`] when the actor may not.
    async fn create_snapshot_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        reason: &str,
    ) -> Result<Recommendation, ToolError>;

    /// `CreateRollbackRecommendation`: records (and audits) a recommendation
    /// to restore `target_snapshot_id`.
    ///
    /// # Errors
    /// [`ToolError::NotFound`] for an environment or snapshot outside the
    /// scope's lab; [`ToolError::Forbidden`] when the actor may not.
    async fn create_rollback_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        target_snapshot_id: SnapshotId,
        reason: &str,
    ) -> Result<Recommendation, ToolError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip() {
        for a in DriftAction::ALL {
            assert_eq!(DriftAction::from_name(a.name()), Some(a));
        }
        assert_eq!(DriftAction::from_name("DropTables"), None);
    }

    #[test]
    fn a_rollback_recommendation_serialises_with_its_target() {
        let target = SnapshotId::new();
        let kind = serde_json::to_value(RecommendationKind::Rollback {
            target_snapshot_id: target,
        })
        .unwrap();
        assert_eq!(
            kind,
            serde_json::json!({"type": "rollback", "target_snapshot_id": target.to_string()})
        );
    }

    #[test]
    fn the_rollback_target_is_the_baseline_before_the_latest_snapshot() {
        let (baseline, latest) = (SnapshotId::new(), SnapshotId::new());
        let summary = |id| SnapshotSummary {
            id,
            created_at: Utc::now(),
            notes: None,
        };
        let mut config = EnvironmentConfigView {
            environment_id: EnvironmentId::new(),
            name: "env".into(),
            python_version: "3.11".into(),
            baseline_snapshot_id: Some(baseline),
            latest_snapshot: Some(summary(latest)),
            snapshots: vec![summary(latest), summary(baseline)],
            drift_status: DriftStatus::Stable,
            jupyter_version: None,
            kernels: vec![],
        };
        assert_eq!(config.rollback_target(), Some(baseline));
        config.baseline_snapshot_id = None;
        assert_eq!(config.rollback_target(), Some(latest));
    }
}
