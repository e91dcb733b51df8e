//! Knowledge-base sync: on every new snapshot, the environment's documents
//! are (re)written in the seed's layout and (re)indexed.
//!
//! | document | from |
//! |---|---|
//! | `notebooks/{lab}/{researcher}/{environment}/{path}.md` | each notebook of the snapshot the files last equalled (the restored one after a rollback, else the newest), converted to Markdown and redacted |
//! | `package-manifests/{environment}/{snapshot}.txt` | each complete snapshot's inventory, `pip freeze` format |
//! | `installation-history/{environment}/history.jsonl` | consecutive manifests diffed, with the drift event that saw each change and the snapshot's notes as the reason |
//! | `experiment-logs/{lab}/{experiment}.json` | the lab's environments of the experiment and their snapshots |
//! | `environment-docs/{environment}/summary.md` | generated from all of the above |
//! | `environment-docs/{environment}/redactions.json` | what was redacted where (never the values); not indexed |
//!
//! Policy: a sync is a pure function of the stored records and the
//! environment's files, so running it twice (a redelivered event) writes
//! the same documents. Notebooks are read from the environment's files and
//! used only when their BLAKE3 equals the snapshot's inventory (a notebook
//! edited since the snapshot keeps its previous document). Anything that
//! cannot be read (invalid JSON, binary junk, a huge file) is listed in the
//! summary, never fatal.

use crate::KnowledgeService;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use westtek_domain::{
    DomainError, DriftEvent, Environment, EnvironmentFilter, EnvironmentId, Result, Snapshot,
    SnapshotFilter, SnapshotStatus,
};
use westtek_inventory::Inventory;
use westtek_knowledge::{
    notebook_to_markdown, redact, DocPath, IndexDocument, NotebookOptions, RedactionKind,
};

/// Largest notebook converted; bigger ones are listed, not read.
pub const MAX_NOTEBOOK_BYTES: u64 = 32 * 1024 * 1024;

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the change happened: the drift event that first saw it, else the
    /// snapshot that first holds it.
    pub time: DateTime<Utc>,
    /// PEP 503 name.
    pub package: String,
    /// `installed`, `upgraded`, `downgraded`, `changed`, `removed`, or
    /// `present` (in the environment's first snapshot).
    pub action: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The first snapshot that holds the change.
    pub snapshot_id: String,
    pub snapshot_time: DateTime<Utc>,
    /// Why: the notes of that snapshot, when it has any.
    pub reason: Option<String>,
    /// The drift event that saw the change, when one did.
    pub drift_event_id: Option<String>,
    /// `INSTALLER` of the installed distribution (`uv`, `pip`).
    pub installer: Option<String>,
    /// The researcher asked for it (not only a dependency).
    pub requested: Option<bool>,
}

/// One redaction in a document (kind and place; never the value).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RedactionRecord {
    pub document: String,
    pub kind: String,
    pub line: usize,
    pub column: usize,
}

/// What one sync did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    pub documents: Vec<String>,
    pub chunks: usize,
    pub redactions: usize,
    /// Notebooks that could not be converted, with the reason.
    pub skipped: Vec<String>,
}

/// A notebook of the newest snapshot and its document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotebookEntry {
    /// Root-relative path (`home/01_load.ipynb`).
    pub path: String,
    pub document: Option<String>,
    pub imports: Vec<String>,
    /// Files it refers to that exist in the environment.
    pub data_files: Vec<String>,
    pub error: Option<String>,
}

/// Package name → version as `pip freeze` spells it, from a manifest.
pub fn parse_manifest(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            if let Some((n, v)) = l.split_once("==") {
                Some((
                    westtek_inventory::normalize_name(n.trim()),
                    v.trim().to_string(),
                ))
            } else {
                l.split_once(" @ ").map(|(n, u)| {
                    (
                        westtek_inventory::normalize_name(n.trim()),
                        format!("@ {}", u.trim()),
                    )
                })
            }
        })
        .collect()
}

/// The inventory's packages in `pip freeze` format, with a header naming the
/// snapshot.
pub fn manifest_text(env_name: &str, s: &Snapshot, inv: &Inventory) -> String {
    let mut out = format!(
        "# pip freeze of environment {env_name} ({}), snapshot {} taken {} (Python {})\n",
        s.environment_id,
        s.id,
        s.timestamp.format("%Y-%m-%d %H:%M UTC"),
        inv.python.version.as_deref().unwrap_or("unknown")
    );
    if let Some(n) = s.metadata.notes.as_deref().filter(|n| !n.trim().is_empty()) {
        let one_line = n.trim().replace(['\n', '\r'], " ");
        out.push_str(&format!("# snapshot notes: {}\n", redact(&one_line).0));
    }
    let mut lines: Vec<String> = inv
        .packages
        .iter()
        .map(|p| match &p.direct_url {
            Some(d) => format!("{} @ {}", p.display_name, d.url),
            None => format!("{}=={}", p.display_name, p.version),
        })
        .collect();
    lines.sort_by_key(|l| l.to_lowercase());
    lines.dedup();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn version_action(from: &str, to: &str) -> &'static str {
    match westtek_inventory::version_order(from, to) {
        Some(std::cmp::Ordering::Greater) => "upgraded",
        Some(std::cmp::Ordering::Less) => "downgraded",
        _ => "changed",
    }
}

impl KnowledgeService {
    /// The complete snapshots of `env`, oldest first.
    pub async fn complete_snapshots(&self, env: EnvironmentId) -> Result<Vec<Snapshot>> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let page = self
                .state
                .store
                .list_snapshots(&SnapshotFilter {
                    environment_id: Some(env),
                    status: Some(SnapshotStatus::Complete),
                    limit: 500,
                    offset,
                    ..Default::default()
                })
                .await?;
            let n = page.items.len();
            out.extend(page.items);
            if n < 500 {
                break;
            }
            offset += 500;
        }
        out.sort_by_key(|s| (s.timestamp, s.id));
        Ok(out)
    }

    async fn inventory_of(&self, s: &Snapshot) -> Result<Inventory> {
        let engine = s
            .vault_snapshot_id
            .as_deref()
            .ok_or_else(|| DomainError::Conflict("the snapshot is not complete".into()))?;
        let v = self.state.snapshots.inventory(engine).await?;
        serde_json::from_value(v).map_err(|e| DomainError::internal(format!("inventory: {e}")))
    }

    pub(crate) async fn put_text(
        &self,
        path: &DocPath,
        text: &str,
        content_type: &str,
    ) -> Result<()> {
        self.docs
            .put(path, text.as_bytes(), content_type)
            .await
            .map_err(crate::knowledge_error)
    }

    pub(crate) async fn get_text(&self, path: &DocPath) -> Result<Option<String>> {
        Ok(self
            .docs
            .get(path)
            .await
            .map_err(crate::knowledge_error)?
            .map(|d| String::from_utf8_lossy(&d.bytes).into_owned()))
    }

    /// Re-syncs one environment's documents and index entries.
    ///
    /// # Errors
    /// Store, vault or index failures; a missing environment is `NotFound`.
    pub async fn sync_environment(&self, env_id: EnvironmentId) -> Result<SyncReport> {
        let _one_at_a_time = self.sync_lock.lock().await;
        let env = self.state.store.get_environment(env_id).await?;
        let snapshots = self.complete_snapshots(env_id).await?;
        let mut report = SyncReport::default();
        let mut redactions: Vec<RedactionRecord> = Vec::new();
        let mut to_index: Vec<(DocPath, String)> = Vec::new();

        // Manifests: one per complete snapshot, written once.
        let mut manifests: Vec<(Snapshot, BTreeMap<String, String>)> = Vec::new();
        let mut newest_inventory: Option<Inventory> = None;
        for (i, s) in snapshots.iter().enumerate() {
            let path = DocPath::package_manifest(env_id, s.id);
            let is_newest = i + 1 == snapshots.len();
            let text = match self.get_text(&path).await? {
                Some(t) if !is_newest => t,
                _ => {
                    let inv = self.inventory_of(s).await?;
                    let t = manifest_text(env.name.as_str(), s, &inv);
                    self.put_text(&path, &t, "text/plain").await?;
                    if is_newest {
                        newest_inventory = Some(inv);
                    }
                    t
                }
            };
            manifests.push((s.clone(), parse_manifest(&text)));
            to_index.push((path, text));
        }

        // Installation history from consecutive manifests; the drift events
        // (oldest first) say when, and the summary lists them.
        let events = crate::transfer::drift_events(self, &env).await?;
        let history = install_history(&manifests, newest_inventory.as_ref(), &events);
        let history_path = DocPath::installation_history(env_id);
        let mut jsonl = String::new();
        for h in &history {
            jsonl.push_str(&serde_json::to_string(h).map_err(DomainError::internal)?);
            jsonl.push('\n');
        }
        self.put_text(&history_path, &jsonl, "application/x-ndjson")
            .await?;
        to_index.push((history_path, jsonl));

        // Notebooks of the snapshot the files last equalled: the one restored
        // (after a rollback the newest snapshot is the state rolled away
        // from), else the newest.
        let current = env
            .current_baseline_id
            .and_then(|id| snapshots.iter().find(|s| s.id == id))
            .filter(|s| snapshots.last().is_some_and(|n| n.id != s.id));
        let notebook_inventory = match current {
            Some(s) => Some(self.inventory_of(s).await?),
            None => newest_inventory,
        };
        let notebooks = match &notebook_inventory {
            Some(inv) => {
                self.sync_notebooks(&env, inv, &mut to_index, &mut redactions, &mut report)
                    .await?
            }
            None => Vec::new(),
        };

        // Experiment log.
        if let Some(exp) = env
            .metadata
            .experiment_id
            .clone()
            .filter(|e| !e.trim().is_empty())
        {
            match DocPath::experiment_log(env.lab_id, &exp) {
                Ok(path) => {
                    let text = self.experiment_log(&env, &exp).await?;
                    let (text, r) = redact(&text);
                    redactions.extend(r.redactions().iter().map(|x| RedactionRecord {
                        document: path.to_string(),
                        kind: x.kind.as_str().to_string(),
                        line: x.line,
                        column: x.column,
                    }));
                    self.put_text(&path, &text, "application/json").await?;
                    to_index.push((path, text));
                }
                Err(e) => report.skipped.push(format!("experiment log {exp:?}: {e}")),
            }
        }

        // The summary, then the redaction report.
        let summary = crate::transfer::summary_markdown(
            self,
            &env,
            &snapshots,
            &history,
            &events,
            &notebooks,
            &redactions,
        )
        .await?;
        let (summary, r) = redact(&summary);
        let summary_path = DocPath::environment_summary(env_id);
        redactions.extend(r.redactions().iter().map(|x| RedactionRecord {
            document: summary_path.to_string(),
            kind: x.kind.as_str().to_string(),
            line: x.line,
            column: x.column,
        }));
        self.put_text(&summary_path, &summary, "text/markdown")
            .await?;
        to_index.push((summary_path, summary));
        let notebooks_json =
            serde_json::to_string_pretty(&notebooks).map_err(DomainError::internal)?;
        self.put_text(
            &notebook_list_path(env_id)?,
            &notebooks_json,
            "application/json",
        )
        .await?;
        let redactions_json =
            serde_json::to_string_pretty(&redactions).map_err(DomainError::internal)?;
        self.put_text(
            &redactions_path(env_id)?,
            &redactions_json,
            "application/json",
        )
        .await?;
        report.redactions = redactions.len();

        // Index (replacing what was indexed under the same paths).
        let lab = env.lab_id;
        let index = std::sync::Arc::clone(&self.index);
        let docs = to_index.clone();
        report.chunks = tokio::task::spawn_blocking(move || {
            let items: Vec<IndexDocument<'_>> = docs
                .iter()
                .map(|(p, t)| IndexDocument {
                    lab_id: lab,
                    path: p,
                    title: None,
                    text: t,
                })
                .collect();
            index.index_documents(&items)
        })
        .await
        .map_err(DomainError::internal)?
        .map_err(crate::knowledge_error)?;
        report.documents = to_index.into_iter().map(|(p, _)| p.to_string()).collect();
        if let Some(hook) = &self.after_sync {
            hook.synced(env_id, &report).await;
        }
        Ok(report)
    }

    async fn sync_notebooks(
        &self,
        env: &Environment,
        inv: &Inventory,
        to_index: &mut Vec<(DocPath, String)>,
        redactions: &mut Vec<RedactionRecord>,
        report: &mut SyncReport,
    ) -> Result<Vec<NotebookEntry>> {
        let root = self.state.builder.root(env.id);
        let data: BTreeSet<&str> = inv.data_files.iter().map(|d| d.path.as_str()).collect();
        // Under any researcher: after a handover they move to the new one's folder.
        let prefix = format!("notebooks/{}/", env.lab_id);
        let env_segment = env.id.to_string();
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let mut out = Vec::new();
        let mut notebooks: Vec<_> = inv.notebooks.iter().collect();
        notebooks.sort_by_key(|n| run_order_key(&n.path));
        for nb in notebooks {
            let relative = nb.path.strip_prefix("home/").unwrap_or(&nb.path);
            let doc_rel = format!(
                "{}/{}.md",
                env.id,
                relative.strip_suffix(".ipynb").unwrap_or(relative)
            );
            let path = DocPath::notebook(env.lab_id, env.researcher_id, &doc_rel).or_else(|_| {
                DocPath::notebook(
                    env.lab_id,
                    env.researcher_id,
                    &format!(
                        "{}/notebook-{}.md",
                        env.id,
                        &nb.blake3[..nb.blake3.len().min(12)]
                    ),
                )
            });
            let data_files: Vec<String> = nb
                .file_refs
                .iter()
                .filter_map(|r| {
                    let r = r.trim_start_matches("./");
                    [format!("home/{r}"), r.to_string()]
                        .into_iter()
                        .find(|c| data.contains(c.as_str()))
                })
                .collect();
            let mut entry = NotebookEntry {
                path: nb.path.clone(),
                document: None,
                imports: nb.imports.clone(),
                data_files,
                error: None,
            };
            let path = match path {
                Ok(p) => p,
                Err(e) => {
                    entry.error = Some(format!("no document path: {e}"));
                    out.push(entry);
                    continue;
                }
            };
            let converted = if nb.size > MAX_NOTEBOOK_BYTES {
                Err(format!(
                    "larger than {} MiB; not converted",
                    MAX_NOTEBOOK_BYTES >> 20
                ))
            } else {
                match tokio::fs::read(root.join(&nb.path)).await {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Err("no longer in the environment (removed since the snapshot)".into())
                    }
                    Err(e) => Err(format!("cannot be read: {}", e.kind())),
                    Ok(bytes) if blake3::hash(&bytes).to_hex().as_str() != nb.blake3 => {
                        Err("changed since the snapshot; kept the earlier document".into())
                    }
                    Ok(bytes) => {
                        let opts = NotebookOptions {
                            title: Some(format!("Notebook {}", relative)),
                            ..Default::default()
                        };
                        notebook_to_markdown(&bytes, &opts).map_err(|e| e.to_string())
                    }
                }
            };
            match converted {
                Ok(md) => {
                    let (md, r) = md.redacted();
                    redactions.extend(r.redactions().iter().map(|x| RedactionRecord {
                        document: path.to_string(),
                        kind: x.kind.as_str().to_string(),
                        line: x.line,
                        column: x.column,
                    }));
                    self.put_text(&path, &md.text, "text/markdown").await?;
                    to_index.push((path.clone(), md.text));
                    keep.insert(path.to_string());
                    entry.document = Some(path.to_string());
                }
                Err(reason) => {
                    if self.get_text(&path).await?.is_some() {
                        keep.insert(path.to_string());
                        entry.document = Some(path.to_string());
                    }
                    report.skipped.push(format!("{}: {reason}", nb.path));
                    entry.error = Some(reason);
                }
            }
            out.push(entry);
        }
        // Notebooks gone from the environment (or filed under its previous
        // researcher) leave the knowledge base.
        for old in self
            .docs
            .list(&prefix)
            .await
            .map_err(crate::knowledge_error)?
        {
            let of_env = old.path.as_str().split('/').nth(3) == Some(env_segment.as_str());
            if of_env && !keep.contains(old.path.as_str()) {
                self.docs
                    .delete(&old.path)
                    .await
                    .map_err(crate::knowledge_error)?;
                let index = std::sync::Arc::clone(&self.index);
                let (lab, p) = (env.lab_id, old.path.clone());
                tokio::task::spawn_blocking(move || index.remove_document(lab, &p))
                    .await
                    .map_err(DomainError::internal)?
                    .map_err(crate::knowledge_error)?;
            }
        }
        Ok(out)
    }

    async fn experiment_log(&self, env: &Environment, experiment: &str) -> Result<String> {
        let page = self
            .state
            .store
            .list_environments(&EnvironmentFilter {
                lab_id: Some(env.lab_id),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let mut envs = Vec::new();
        for e in page
            .items
            .iter()
            .filter(|e| e.metadata.experiment_id.as_deref() == Some(experiment))
        {
            let snaps = self.complete_snapshots(e.id).await?;
            envs.push(serde_json::json!({
                "environment_id": e.id.to_string(),
                "name": e.name.as_str(),
                "researcher_id": e.researcher_id.to_string(),
                "python_version": e.python_version,
                "drift_status": e.drift_status,
                "snapshots": snaps.iter().map(|s| serde_json::json!({
                    "snapshot_id": s.id.to_string(),
                    "time": s.timestamp,
                    "notes": s.metadata.notes,
                    "packages": s.metadata.installed_packages.len(),
                })).collect::<Vec<_>>(),
            }));
        }
        serde_json::to_string_pretty(&serde_json::json!({
            "experiment_id": experiment,
            "lab_id": env.lab_id.to_string(),
            "funding_source": env.metadata.funding_source,
            "criticality": env.metadata.criticality,
            "environments": envs,
        }))
        .map_err(DomainError::internal)
    }
}

/// The installation history: consecutive manifests diffed; each change
/// timed by the first drift event (of `events`, oldest first) that saw it,
/// with the snapshot's notes (redacted) as the reason and dist-info from
/// the newest inventory.
fn install_history(
    manifests: &[(Snapshot, BTreeMap<String, String>)],
    newest: Option<&Inventory>,
    events: &[DriftEvent],
) -> Vec<HistoryEntry> {
    let dist = |name: &str| newest.and_then(|i| i.packages.iter().find(|p| p.name == name));
    let mut out = Vec::new();
    let empty = BTreeMap::new();
    for (i, (s, now)) in manifests.iter().enumerate() {
        let (before, prev_time) = match i.checked_sub(1).and_then(|j| manifests.get(j)) {
            Some((p, m)) => (m, Some(p.timestamp)),
            None => (&empty, None),
        };
        let names: BTreeSet<&String> = before.keys().chain(now.keys()).collect();
        for name in names {
            let (from, to) = (before.get(name), now.get(name));
            let action = match (from, to) {
                (None, Some(_)) if i == 0 => "present",
                (None, Some(_)) => "installed",
                (Some(_), None) => "removed",
                (Some(a), Some(b)) if a != b => version_action(a, b),
                _ => continue,
            };
            // The first drift event after the previous snapshot that saw
            // this package reach this state.
            let seen = prev_time.and_then(|t0| {
                events.iter().find(|e| {
                    e.detected_at >= t0
                        && e.detected_at <= s.timestamp
                        && e.findings.as_array().is_some_and(|fs| {
                            fs.iter().any(|f| {
                                f.get("subject").and_then(|v| v.as_str()) == Some(name.as_str())
                                    && f.get("after").and_then(|v| v.as_str())
                                        == to.map(String::as_str)
                            })
                        })
                })
            });
            let d = if to.is_some() { dist(name) } else { None };
            out.push(HistoryEntry {
                time: seen.map_or(s.timestamp, |e| e.detected_at),
                package: name.clone(),
                action: action.to_string(),
                from: from.cloned(),
                to: to.cloned(),
                snapshot_id: s.id.to_string(),
                snapshot_time: s.timestamp,
                reason: s.metadata.notes.clone().filter(|n| !n.trim().is_empty()),
                drift_event_id: seen.map(|e| e.id.to_string()),
                installer: d.and_then(|p| p.installer.clone()),
                requested: d.map(|p| p.requested),
            });
        }
    }
    // Notes are the researcher's words and may hold an address: each reason
    // is redacted on its own, so the JSON lines stay valid.
    for h in &mut out {
        if let Some(r) = &h.reason {
            h.reason = Some(redact(r).0);
        }
    }
    out
}

/// Where the notebook list of an environment's newest snapshot is kept.
pub fn notebook_list_path(env: EnvironmentId) -> Result<DocPath> {
    DocPath::parse(&format!("environment-docs/{env}/notebooks.json"))
        .map_err(crate::knowledge_error)
}

/// Where the redaction report of an environment is kept.
pub fn redactions_path(env: EnvironmentId) -> Result<DocPath> {
    DocPath::parse(&format!("environment-docs/{env}/redactions.json"))
        .map_err(crate::knowledge_error)
}

/// Notebooks run in the order their names give (`01_load`, `02_clean`, …),
/// then by path.
pub fn run_order_key(path: &str) -> (u64, String) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    (digits.parse().unwrap_or(u64::MAX), path.to_string())
}

/// Human word for a redaction kind.
pub fn kind_label(kind: &str) -> &str {
    match kind {
        k if k == RedactionKind::Email.as_str() => "e-mail address",
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_back_with_normalised_names() {
        let m = parse_manifest("# header\nPyYAML==6.0\npandas==2.2.2\nmylib @ file:///x\n");
        assert_eq!(m.get("pyyaml").map(String::as_str), Some("6.0"));
        assert_eq!(m.get("pandas").map(String::as_str), Some("2.2.2"));
        assert_eq!(m.get("mylib").map(String::as_str), Some("@ file:///x"));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn versions_are_compared_as_pep_440() {
        assert_eq!(version_action("1.5.3", "2.2.2"), "upgraded");
        assert_eq!(version_action("2.10", "2.9"), "downgraded");
        assert_eq!(version_action("@ a", "@ b"), "changed");
    }

    #[test]
    fn notebooks_run_in_numbered_order() {
        let mut v = vec![
            "home/b.ipynb",
            "home/10_x.ipynb",
            "home/02_y.ipynb",
            "home/a.ipynb",
        ];
        v.sort_by_key(|p| run_order_key(p));
        assert_eq!(
            v,
            [
                "home/02_y.ipynb",
                "home/10_x.ipynb",
                "home/a.ipynb",
                "home/b.ipynb"
            ]
        );
    }
}
