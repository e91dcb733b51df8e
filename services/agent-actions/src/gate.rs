//! Who may record a recommendation through an agent.
//!
//! In the portal's chat the drift service decides per caller whether the
//! Drift Analyzer's recommendations are recorded (`ServiceTools::new(hub,
//! may_record)`, `may_record` = the caller has a write scope in the lab).
//! Through Bedrock the caller is the session's `user_id`, so the service
//! side of the action groups serves its tools with recording on, wrapped in
//! [`RecordingGate`]: `CreateSnapshotRecommendation` and
//! `CreateRollbackRecommendation` go through only for a member of the
//! session's lab (a share or handover viewer is not one), and answer
//! [`ToolError::Forbidden`] otherwise, as the `DriftTools` contract says;
//! reads pass through unchanged.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use westtek_assist::{
    DriftEventView, DriftTools, EnvironmentConfigView, NotebookView, PackageChangelog,
    Recommendation, ToolError, ToolScope,
};
use westtek_domain::ports::MetadataStore;
use westtek_domain::{EnvironmentId, LabId, SnapshotId, UserId};
use westtek_inventory::Finding;

/// Whether a user belongs to a lab.
#[async_trait]
pub trait Memberships: Send + Sync {
    /// `true` when `user` is a member of `lab` (any role).
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the lookup fails.
    async fn is_member(&self, user: UserId, lab: LabId) -> Result<bool, ToolError>;
}

/// [`Memberships`] from the platform's metadata store.
pub struct StoreMemberships(pub Arc<dyn MetadataStore>);

#[async_trait]
impl Memberships for StoreMemberships {
    async fn is_member(&self, user: UserId, lab: LabId) -> Result<bool, ToolError> {
        match self.0.memberships_of(user).await {
            Ok(ms) => Ok(ms.iter().any(|m| m.lab_id == lab)),
            Err(westtek_domain::DomainError::NotFound { .. }) => Ok(false),
            Err(e) => Err(ToolError::Failed(Box::new(e))),
        }
    }
}

/// `tools` whose recommendations only a member of the scope's lab may make.
pub struct RecordingGate {
    tools: Arc<dyn DriftTools>,
    members: Arc<dyn Memberships>,
}

impl RecordingGate {
    /// Gates `tools` (which record) on `members`.
    pub fn new(tools: Arc<dyn DriftTools>, members: Arc<dyn Memberships>) -> Self {
        RecordingGate { tools, members }
    }

    async fn may_record(&self, scope: &ToolScope) -> Result<(), ToolError> {
        let Some(user) = scope.actor else {
            return Err(ToolError::Forbidden);
        };
        if self.members.is_member(user, scope.lab_id).await? {
            Ok(())
        } else {
            Err(ToolError::Forbidden)
        }
    }
}

#[async_trait]
impl DriftTools for RecordingGate {
    async fn get_drift_events(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DriftEventView>, ToolError> {
        self.tools
            .get_drift_events(scope, environment_id, since, until)
            .await
    }

    async fn get_package_changelog(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        package: &str,
        old_version: Option<&str>,
        new_version: Option<&str>,
    ) -> Result<PackageChangelog, ToolError> {
        self.tools
            .get_package_changelog(scope, environment_id, package, old_version, new_version)
            .await
    }

    async fn get_environment_notebooks(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<Vec<NotebookView>, ToolError> {
        self.tools
            .get_environment_notebooks(scope, environment_id)
            .await
    }

    async fn get_snapshot_comparison(
        &self,
        scope: &ToolScope,
        before: SnapshotId,
        after: SnapshotId,
    ) -> Result<Vec<Finding>, ToolError> {
        self.tools
            .get_snapshot_comparison(scope, before, after)
            .await
    }

    async fn get_environment_config(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<EnvironmentConfigView, ToolError> {
        self.tools
            .get_environment_config(scope, environment_id)
            .await
    }

    async fn create_snapshot_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        self.may_record(scope).await?;
        self.tools
            .create_snapshot_recommendation(scope, environment_id, reason)
            .await
    }

    async fn create_rollback_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        target_snapshot_id: SnapshotId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        self.may_record(scope).await?;
        self.tools
            .create_rollback_recommendation(scope, environment_id, target_snapshot_id, reason)
            .await
    }
}
