//! The Drift Analyzer's action groups over the platform's records: the
//! `DriftTools` port of `westtek-assist`, scoped to the caller's lab (an
//! environment or snapshot of another lab is "not found").

use crate::hub::{event_view, DriftHub};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use westtek_assist::drift_tools::{
    DriftEventView, DriftTools, EnvironmentConfigView, NotebookView, Recommendation,
    RecommendationKind, SnapshotSummary, ToolError, ToolScope,
};
use westtek_assist::{changelog_for, PackageChangelog};
use westtek_domain::{
    DomainError, DriftEventFilter, Environment, EnvironmentId, RecommendationId,
    RecommendationRecord, SnapshotFilter, SnapshotId, SnapshotStatus,
};
use westtek_env_manager::system_audit;
use westtek_inventory::{Finding, Inventory};

/// `DriftTools` for one hub. `record`: recommendations are stored and
/// audited as they are made (chat); otherwise the caller stores them with
/// the analysis (automatic analysis of a CRITICAL event).
pub struct ServiceTools {
    hub: Arc<DriftHub>,
    record: bool,
}

impl ServiceTools {
    /// Tools over `hub`.
    pub fn new(hub: Arc<DriftHub>, record: bool) -> Self {
        ServiceTools { hub, record }
    }

    async fn env(&self, scope: &ToolScope, id: EnvironmentId) -> Result<Environment, ToolError> {
        match self.hub.state.store.get_environment(id).await {
            Ok(e) if e.lab_id == scope.lab_id => Ok(e),
            Ok(_) | Err(DomainError::NotFound { .. }) => {
                Err(ToolError::NotFound("environment".into()))
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// The newest inventory known for the environment: the one its last
    /// drift evaluation took (what its events describe), else one taken now,
    /// else its baseline's.
    async fn present(&self, env: &Environment) -> Result<Option<Arc<Inventory>>, ToolError> {
        if let Some(i) = self.hub.last_inventory(env.id) {
            return Ok(Some(i));
        }
        let root = self.hub.state.builder.root(env.id);
        let taken = tokio::task::spawn_blocking(move || westtek_inventory::inventory(&root)).await;
        if let Ok(Ok(i)) = taken {
            return Ok(Some(Arc::new(i)));
        }
        match self.hub.baseline_of(env).await.map_err(failed)? {
            Some(b) => Ok(Some(self.hub.inventory_of(b).await.map_err(failed)?)),
            None => Ok(None),
        }
    }

    async fn remember(
        &self,
        scope: &ToolScope,
        env: &Environment,
        kind: RecommendationKind,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        let rec = Recommendation {
            id: uuid::Uuid::now_v7(),
            environment_id: env.id,
            kind,
            reason: reason.chars().take(2000).collect(),
            created_at: self.hub.state.clock.now(),
        };
        if !self.record {
            return Ok(rec);
        }
        let body =
            serde_json::to_value(&rec).map_err(|e| failed(DomainError::internal(e.to_string())))?;
        let record = RecommendationRecord {
            id: RecommendationId::from_uuid(rec.id),
            lab_id: env.lab_id,
            environment_id: env.id,
            agent: "drift_analyzer".into(),
            body: body.clone(),
            analysis: None,
            drift_event_id: None,
            created_by: scope.actor,
            created_at: rec.created_at,
        };
        self.hub
            .store
            .insert_recommendation(record)
            .await
            .map_err(failed)?;
        let mut audit = system_audit(
            Some(env.lab_id),
            "drift.recommendation",
            "environment",
            env.id.to_string(),
            serde_json::json!({ "recommendation": body }),
        );
        if let Some(actor) = scope.actor {
            audit.actor_id = Some(actor);
            audit.actor_name = "drift analyzer (on behalf of the user)".into();
        }
        self.hub
            .state
            .store
            .append(vec![audit])
            .await
            .map_err(failed)?;
        Ok(rec)
    }
}

fn failed(e: DomainError) -> ToolError {
    match e {
        DomainError::NotFound { kind } => ToolError::NotFound(kind.to_string()),
        other => ToolError::Failed(Box::new(other)),
    }
}

/// `<root>/venv/lib/python3.X/site-packages` (the first one found).
pub(crate) fn site_packages(root: &Path) -> Option<PathBuf> {
    let lib = root.join("venv").join("lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python"))
        })
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|d| d.join("site-packages"))
        .find(|d| d.is_dir())
}

#[async_trait]
impl DriftTools for ServiceTools {
    async fn get_drift_events(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DriftEventView>, ToolError> {
        let env = self.env(scope, environment_id).await?;
        let page = self
            .hub
            .store
            .list_drift_events(&DriftEventFilter {
                lab_id: Some(env.lab_id),
                environment_id: Some(env.id),
                since,
                until,
                limit: 200,
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        Ok(page.items.iter().map(event_view).collect())
    }

    async fn get_package_changelog(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        package: &str,
        old_version: Option<&str>,
        new_version: Option<&str>,
    ) -> Result<PackageChangelog, ToolError> {
        let env = self.env(scope, environment_id).await?;
        let root = self.hub.state.builder.root(env.id);
        let (package, old, new) = (
            package.to_string(),
            old_version.map(str::to_string),
            new_version.map(str::to_string),
        );
        tokio::task::spawn_blocking(move || {
            let sp = site_packages(&root).unwrap_or_else(|| root.join("venv"));
            changelog_for(&sp, &package, old.as_deref(), new.as_deref())
        })
        .await
        .map_err(|e| failed(DomainError::internal(e.to_string())))
    }

    async fn get_environment_notebooks(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<Vec<NotebookView>, ToolError> {
        let env = self.env(scope, environment_id).await?;
        let Some(inv) = self.present(&env).await? else {
            return Ok(Vec::new());
        };
        Ok(inv
            .notebooks
            .iter()
            .map(|n| NotebookView {
                path: n.path.clone(),
                imports: n.imports.clone(),
            })
            .collect())
    }

    async fn get_snapshot_comparison(
        &self,
        scope: &ToolScope,
        before: SnapshotId,
        after: SnapshotId,
    ) -> Result<Vec<Finding>, ToolError> {
        let mut snaps = Vec::new();
        for id in [before, after] {
            match self.hub.state.store.get_snapshot(id).await {
                Ok(s) if s.lab_id == scope.lab_id => snaps.push(s),
                Ok(_) | Err(DomainError::NotFound { .. }) => {
                    return Err(ToolError::NotFound("snapshot".into()))
                }
                Err(e) => return Err(failed(e)),
            }
        }
        if snaps[0].environment_id != snaps[1].environment_id {
            return Err(ToolError::Invalid(
                "the snapshots belong to different environments".into(),
            ));
        }
        let a = self.hub.inventory_of(before).await.map_err(failed)?;
        let b = self.hub.inventory_of(after).await.map_err(failed)?;
        Ok(westtek_inventory::diff(&a, &b))
    }

    async fn get_environment_config(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<EnvironmentConfigView, ToolError> {
        let env = self.env(scope, environment_id).await?;
        let snaps = self
            .hub
            .state
            .store
            .list_snapshots(&SnapshotFilter {
                environment_id: Some(env.id),
                status: Some(SnapshotStatus::Complete),
                limit: 50,
                ..Default::default()
            })
            .await
            .map_err(failed)?;
        let snapshots: Vec<SnapshotSummary> = snaps
            .items
            .iter()
            .map(|s| SnapshotSummary {
                id: s.id,
                created_at: s.timestamp,
                notes: s.metadata.notes.clone(),
            })
            .collect();
        let baseline = self.hub.baseline_of(&env).await.map_err(failed)?;
        let jupyter_version = snaps
            .items
            .iter()
            .find(|s| Some(s.id) == baseline)
            .or(snaps.items.first())
            .and_then(|s| s.metadata.jupyter_version.clone());
        let inv = self.present(&env).await?;
        Ok(EnvironmentConfigView {
            environment_id: env.id,
            name: env.name.to_string(),
            python_version: inv
                .as_ref()
                .and_then(|i| i.python.version.clone())
                .unwrap_or_else(|| env.python_version.clone()),
            // The effective baseline: what a rollback returns to.
            baseline_snapshot_id: baseline,
            latest_snapshot: snapshots.first().cloned(),
            snapshots,
            drift_status: env.drift_status,
            jupyter_version,
            kernels: inv
                .map(|i| i.kernels.iter().map(|k| k.name.clone()).collect())
                .unwrap_or_default(),
        })
    }

    async fn create_snapshot_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        let env = self.env(scope, environment_id).await?;
        self.remember(scope, &env, RecommendationKind::Snapshot, reason)
            .await
    }

    async fn create_rollback_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        target_snapshot_id: SnapshotId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        let env = self.env(scope, environment_id).await?;
        match self.hub.state.store.get_snapshot(target_snapshot_id).await {
            Ok(s) if s.environment_id == env.id => {}
            Ok(_) | Err(DomainError::NotFound { .. }) => {
                return Err(ToolError::NotFound("snapshot".into()))
            }
            Err(e) => return Err(failed(e)),
        }
        self.remember(
            scope,
            &env,
            RecommendationKind::Rollback { target_snapshot_id },
            reason,
        )
        .await
    }
}
