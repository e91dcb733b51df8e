//! In-memory implementations of the tool ports, recording what they were
//! asked, and a knowledge folder seeded with an environment's documents.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use westtek_agent_actions::{DocumentKnowledgeTools, Tools};
use westtek_assist::{
    DriftEventView, DriftTools, EnvironmentConfigView, NotebookView, PackageChangelog,
    Recommendation, RecommendationKind, ToolError, ToolScope,
};
use westtek_domain::{DriftStatus, EnvironmentId, EventId, LabId, SnapshotId, UserId};
use westtek_inventory::{Finding, Severity};
use westtek_knowledge::{DocPath, DocumentStore, LocalFolderStore};

/// One recorded call: the action, its scope, its arguments.
pub type Call = (&'static str, ToolScope, Value);

/// Drift tools over one lab with one environment and two snapshots;
/// anything else is "not found", as the service's tools answer.
pub struct FakeDrift {
    pub lab: LabId,
    pub env: EnvironmentId,
    pub snapshots: [SnapshotId; 2],
    pub calls: Mutex<Vec<Call>>,
    /// Every call fails with an internal error (a database outage).
    pub broken: bool,
    /// How many drift events the environment has (newest first).
    pub events: usize,
}

impl FakeDrift {
    pub fn new(lab: LabId, env: EnvironmentId) -> Self {
        FakeDrift {
            lab,
            env,
            snapshots: [SnapshotId::new(), SnapshotId::new()],
            calls: Mutex::new(Vec::new()),
            broken: false,
            events: 1,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn enter(&self, name: &'static str, scope: &ToolScope, args: Value) -> Result<(), ToolError> {
        self.calls.lock().unwrap().push((name, *scope, args));
        if self.broken {
            return Err(ToolError::Failed(
                "connection reset by mongodb-7.internal:27017".into(),
            ));
        }
        if scope.lab_id != self.lab {
            return Err(ToolError::NotFound("environment".into()));
        }
        Ok(())
    }

    fn check_env(&self, env: EnvironmentId) -> Result<(), ToolError> {
        if env == self.env {
            Ok(())
        } else {
            Err(ToolError::NotFound("environment".into()))
        }
    }

    fn recommendation(
        &self,
        env: EnvironmentId,
        kind: RecommendationKind,
        reason: &str,
    ) -> Recommendation {
        Recommendation {
            id: uuid::Uuid::now_v7(),
            environment_id: env,
            kind,
            reason: reason.into(),
            created_at: Utc::now(),
        }
    }
}

fn finding() -> Finding {
    serde_json::from_value(json!({
        "kind": {"type": "package_changed"},
        "subject": "numpy",
        "before": "1.26.4",
        "after": "2.0.1",
        "distance": null,
        "severity": "CRITICAL",
        "affected_notebooks": ["home/growth.ipynb"]
    }))
    .unwrap()
}

#[async_trait]
impl DriftTools for FakeDrift {
    async fn get_drift_events(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DriftEventView>, ToolError> {
        self.enter(
            "GetDriftEvents",
            scope,
            json!({"environment_id": environment_id, "since": since, "until": until}),
        )?;
        self.check_env(environment_id)?;
        let now = Utc::now();
        Ok((0..self.events)
            .map(|i| DriftEventView {
                id: EventId::new(),
                environment_id,
                detected_at: now - chrono::Duration::minutes(i as i64),
                status: DriftStatus::CriticalDrift,
                severity: Severity::Critical,
                findings: vec![finding()],
            })
            .collect())
    }

    async fn get_package_changelog(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        package: &str,
        old_version: Option<&str>,
        new_version: Option<&str>,
    ) -> Result<PackageChangelog, ToolError> {
        self.enter(
            "GetPackageChangelog",
            scope,
            json!({"environment_id": environment_id, "package": package, "old_version": old_version, "new_version": new_version}),
        )?;
        self.check_env(environment_id)?;
        Ok(PackageChangelog::from_versions(
            package,
            old_version,
            new_version,
        ))
    }

    async fn get_environment_notebooks(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<Vec<NotebookView>, ToolError> {
        self.enter(
            "GetEnvironmentNotebooks",
            scope,
            json!({"environment_id": environment_id}),
        )?;
        self.check_env(environment_id)?;
        Ok(vec![NotebookView {
            path: "home/growth.ipynb".into(),
            imports: vec!["numpy".into(), "pandas".into()],
        }])
    }

    async fn get_snapshot_comparison(
        &self,
        scope: &ToolScope,
        before: SnapshotId,
        after: SnapshotId,
    ) -> Result<Vec<Finding>, ToolError> {
        self.enter(
            "GetSnapshotComparison",
            scope,
            json!({"before": before, "after": after}),
        )?;
        if !self.snapshots.contains(&before) || !self.snapshots.contains(&after) {
            return Err(ToolError::NotFound("snapshot".into()));
        }
        Ok(vec![finding()])
    }

    async fn get_environment_config(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<EnvironmentConfigView, ToolError> {
        self.enter(
            "GetEnvironmentConfig",
            scope,
            json!({"environment_id": environment_id}),
        )?;
        self.check_env(environment_id)?;
        Ok(EnvironmentConfigView {
            environment_id,
            name: "growth".into(),
            python_version: "3.11.9".into(),
            baseline_snapshot_id: Some(self.snapshots[0]),
            latest_snapshot: None,
            snapshots: vec![],
            drift_status: DriftStatus::CriticalDrift,
            jupyter_version: Some("4.2.5".into()),
            kernels: vec!["python3".into()],
        })
    }

    async fn create_snapshot_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        self.enter(
            "CreateSnapshotRecommendation",
            scope,
            json!({"environment_id": environment_id, "reason": reason}),
        )?;
        self.check_env(environment_id)?;
        Ok(self.recommendation(environment_id, RecommendationKind::Snapshot, reason))
    }

    async fn create_rollback_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        target_snapshot_id: SnapshotId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        self.enter(
            "CreateRollbackRecommendation",
            scope,
            json!({"environment_id": environment_id, "target_snapshot_id": target_snapshot_id, "reason": reason}),
        )?;
        self.check_env(environment_id)?;
        if !self.snapshots.contains(&target_snapshot_id) {
            return Err(ToolError::NotFound("snapshot".into()));
        }
        Ok(self.recommendation(
            environment_id,
            RecommendationKind::Rollback { target_snapshot_id },
            reason,
        ))
    }
}

/// The summary the knowledge service generates (same sections and lines).
pub fn summary(env: EnvironmentId, snap: SnapshotId) -> String {
    format!(
        "# Environment summary: growth\n\n\
         - Environment id: {env}\n\
         - Lab: Genomics\n\
         - Researcher (owner): ada\n\
         - Python: 3.11.9\n\
         - Created: 2026-01-10\n\
         - Drift status: CRITICAL_DRIFT\n\
         - Experiment: EXP-42\n\n\
         ## Snapshots\n\n\
         - 2026-02-01 snapshot {snap}: 112 packages, 2 notebooks; notes: baseline for the paper\n\n\
         ## Package changes\n\n\
         - 2026-03-04: pandas upgraded from 2.1.4 to 2.2.2 (snapshot {snap}); reason: parquet fix\n\n\
         ## Packages the researcher asked for\n\n\
         - pandas 2.2.2\n\n\
         ## Notebooks (run in this order)\n\n\
         1. home/clean.ipynb: imports pandas\n\
         2. home/growth.ipynb: imports numpy, pandas\n\n\
         ## Drift history\n\n\
         - 2026-02-20: MINOR drift event a1 (MINOR_DRIFT): tabulate added\n\
         - 2026-03-04: CRITICAL drift event b2 (CRITICAL_DRIFT): numpy 1.26.4 -> 2.0.1\n\n\
         ## Onboarding checklist\n\n\
         1. Restore the baseline snapshot\n\
         2. Run home/clean.ipynb, then home/growth.ipynb\n\n\
         ## Redactions\n\nNothing was redacted.\n"
    )
}

/// A knowledge folder holding `env`'s summary and install history.
pub async fn knowledge_folder(
    env: EnvironmentId,
    snap: SnapshotId,
) -> (tempfile::TempDir, Arc<dyn DocumentStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn DocumentStore> = Arc::new(LocalFolderStore::new(dir.path()).unwrap());
    store
        .put(
            &DocPath::environment_summary(env),
            summary(env, snap).as_bytes(),
            "text/markdown",
        )
        .await
        .unwrap();
    let history = [
        json!({"time": "2026-01-10T09:00:00Z", "package": "pandas", "action": "present", "from": null, "to": "2.1.4", "snapshot_id": snap, "snapshot_time": "2026-02-01T10:00:00Z", "reason": null, "drift_event_id": null, "installer": "uv", "requested": true}),
        json!({"time": "2026-01-10T09:00:00Z", "package": "numpy", "action": "present", "from": null, "to": "1.26.4", "snapshot_id": snap, "snapshot_time": "2026-02-01T10:00:00Z", "reason": null, "drift_event_id": null, "installer": "uv", "requested": false}),
        json!({"time": "2026-03-04T12:00:00Z", "package": "pandas", "action": "upgraded", "from": "2.1.4", "to": "2.2.2", "snapshot_id": snap, "snapshot_time": "2026-03-05T10:00:00Z", "reason": "parquet fix", "drift_event_id": "b2", "installer": "uv", "requested": true}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    store
        .put(
            &DocPath::installation_history(env),
            history.as_bytes(),
            "application/x-ndjson",
        )
        .await
        .unwrap();
    (dir, store)
}

/// The scope every test runs in.
pub struct World {
    pub lab: LabId,
    pub user: UserId,
    pub env: EnvironmentId,
    pub drift: Arc<FakeDrift>,
    pub store: Arc<dyn DocumentStore>,
    pub tools: Tools,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn new() -> Self {
        let (lab, user, env) = (LabId::new(), UserId::new(), EnvironmentId::new());
        let drift = Arc::new(FakeDrift::new(lab, env));
        let (dir, store) = knowledge_folder(env, drift.snapshots[0]).await;
        let tools = Tools {
            drift: Some(drift.clone()),
            knowledge: Some(Arc::new(DocumentKnowledgeTools::new(store.clone()))),
        };
        World {
            lab,
            user,
            env,
            drift,
            store,
            tools,
            _dir: dir,
        }
    }

    /// A stored event file with this world's ids substituted.
    pub fn event(&self, file: &str) -> Value {
        let path = format!("{}/tests/it/events/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("@LAB@", &self.lab.to_string())
            .replace("@USER@", &self.user.to_string())
            .replace("@ENV@", &self.env.to_string())
            .replace("@SNAP@", &self.drift.snapshots[0].to_string());
        serde_json::from_str(&text).unwrap()
    }

    /// An OpenAPI event for `method path` with query `params` and body `props`.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        props: &[(&str, String)],
    ) -> Value {
        let mut e = json!({
            "messageVersion": "1.0",
            "agent": {"name": "agent", "id": "AGENT12345", "alias": "TSTALIASID", "version": "DRAFT"},
            "inputText": "question",
            "sessionId": "session-1",
            "actionGroup": "actions",
            "apiPath": path,
            "httpMethod": method,
            "parameters": list(params),
            "sessionAttributes": self.session(),
            "promptSessionAttributes": {}
        });
        if !props.is_empty() {
            e["requestBody"] =
                json!({"content": {"application/json": {"properties": list(props)}}});
        }
        e
    }

    /// A function-details event calling `function` with `params`.
    pub fn function(&self, function: &str, params: &[(&str, String)]) -> Value {
        json!({
            "messageVersion": "1.0",
            "agent": {"name": "agent", "id": "AGENT12345", "alias": "TSTALIASID", "version": "DRAFT"},
            "inputText": "question",
            "sessionId": "session-1",
            "actionGroup": "functions",
            "function": function,
            "parameters": list(params),
            "sessionAttributes": self.session(),
            "promptSessionAttributes": {}
        })
    }

    pub fn session(&self) -> Value {
        json!({
            "lab_id": self.lab.to_string(),
            "user_id": self.user.to_string(),
            "environment_id": self.env.to_string()
        })
    }
}

fn list(params: &[(&str, String)]) -> Value {
    Value::Array(
        params
            .iter()
            .map(|(n, v)| json!({"name": n, "type": "string", "value": v}))
            .collect(),
    )
}

/// The reply body of an OpenAPI reply, decoded.
pub fn api_body(reply: &Value) -> Value {
    let body = reply["response"]["responseBody"]["application/json"]["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no application/json body in {reply}"));
    serde_json::from_str(body).unwrap()
}

/// The reply body of a function reply, decoded.
pub fn function_body(reply: &Value) -> Value {
    let body = reply["response"]["functionResponse"]["responseBody"]["TEXT"]["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no TEXT body in {reply}"));
    serde_json::from_str(body).unwrap()
}
