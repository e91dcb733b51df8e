//! The transfer package: the generated summary, the onboarding checklist,
//! and every knowledge document of an environment, as a zip.
//!
//! Policy: everything in a package went through redaction before it was
//! stored; the package adds only generated text and the drift history
//! (which holds package names, versions and paths, not personal data).

use crate::sync::{
    notebook_list_path, redactions_path, HistoryEntry, NotebookEntry, RedactionRecord,
};
use crate::KnowledgeService;
use std::collections::BTreeMap;
use std::io::Write as _;
use westtek_domain::{
    ChecklistItem, DomainError, DriftEvent, DriftEventFilter, Environment, Result, Snapshot,
};
use westtek_knowledge::DocPath;

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The environment's drift events, oldest first.
pub async fn drift_events(svc: &KnowledgeService, env: &Environment) -> Result<Vec<DriftEvent>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = svc
            .drift
            .list_drift_events(&DriftEventFilter {
                environment_id: Some(env.id),
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
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// One line per finding of a drift event, e.g. `tabulate package upgraded
/// 0.8.10 → 0.9.0`.
pub fn finding_lines(e: &DriftEvent) -> Vec<String> {
    e.findings
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    let s = |k: &str| f.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    // `{"type": "package_upgraded"}`, or with a change:
                    // `{"type": "config_changed", "change": "modified"}`.
                    let kind = f.get("kind");
                    let part = |k: &str| kind.and_then(|x| x.get(k)).and_then(|v| v.as_str());
                    let kind = match (part("type"), part("change")) {
                        (Some(t), Some(c)) => format!("{} ({c})", t.replace('_', " ")),
                        (Some(t), None) => t.replace('_', " "),
                        _ => String::new(),
                    };
                    let change = match (s("before"), s("after")) {
                        ("", "") => String::new(),
                        ("", a) => format!(" ({a})"),
                        (b, "") => format!(" (was {b})"),
                        (b, a) => format!(" {b} → {a}"),
                    };
                    format!("{} {}{}", s("subject"), kind, change)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The onboarding checklist: restore, launch, run the notebooks in order
/// with the data they need, read the history.
pub fn checklist(
    env: &Environment,
    snapshots: &[Snapshot],
    notebooks: &[NotebookEntry],
) -> Vec<ChecklistItem> {
    let summary = DocPath::environment_summary(env.id).to_string();
    let item = |key: String, text: String, source: Option<String>| ChecklistItem {
        key,
        text,
        source,
        done_at: None,
        done_by: None,
    };
    let mut out = Vec::new();
    // The snapshot the files last equalled (not the automatic one taken
    // before a rollback), else the newest.
    let current = env
        .current_baseline_id
        .and_then(|id| snapshots.iter().find(|s| s.id == id))
        .or(snapshots.last());
    if let Some(s) = current {
        out.push(item(
            "restore".into(),
            format!(
                "Restore snapshot {} of {} (taken {}) into a new environment, or work in {} itself.",
                s.id,
                env.name.as_str(),
                day(s.timestamp),
                env.name.as_str()
            ),
            Some(DocPath::package_manifest(env.id, s.id).to_string()),
        ));
    }
    out.push(item(
        "launch".into(),
        format!(
            "Launch Jupyter for {} and open JupyterLab.",
            env.name.as_str()
        ),
        Some(summary.clone()),
    ));
    for (i, nb) in notebooks.iter().enumerate() {
        let text = match (&nb.document, &nb.error) {
            (None, Some(e)) => format!("Check {}: it could not be read ({e}).", nb.path),
            _ if nb.data_files.is_empty() => format!("Run {}.", nb.path),
            _ => format!("Run {} (needs {}).", nb.path, nb.data_files.join(", ")),
        };
        out.push(item(
            format!("notebook:{}", i + 1),
            text,
            nb.document.clone().or_else(|| Some(summary.clone())),
        ));
    }
    out.push(item(
        "history".into(),
        "Read the installation history and the drift history (why each package is there).".into(),
        Some(DocPath::installation_history(env.id).to_string()),
    ));
    out
}

fn checklist_markdown(items: &[ChecklistItem]) -> String {
    let mut s = String::from("# Onboarding checklist\n\n");
    for (i, c) in items.iter().enumerate() {
        let mark = if c.done_at.is_some() { "x" } else { " " };
        s.push_str(&format!("{}. [{mark}] {}\n", i + 1, c.text));
    }
    s
}

/// The generated `summary.md`.
pub async fn summary_markdown(
    svc: &KnowledgeService,
    env: &Environment,
    snapshots: &[Snapshot],
    history: &[HistoryEntry],
    events: &[DriftEvent],
    notebooks: &[NotebookEntry],
    redactions: &[RedactionRecord],
) -> Result<String> {
    let lab = svc.state.store.get_lab(env.lab_id).await?;
    let owner = svc
        .state
        .store
        .get_user(env.researcher_id)
        .await
        .map(|u| u.username.as_str().to_string())
        .unwrap_or_else(|_| env.researcher_id.to_string());
    let mut s = format!("# Environment summary: {}\n\n", env.name.as_str());
    s.push_str(&format!("- Environment id: {}\n", env.id));
    s.push_str(&format!("- Lab: {}\n", lab.name.as_str()));
    s.push_str(&format!("- Researcher (owner): {owner}\n"));
    s.push_str(&format!("- Python: {}\n", env.python_version));
    s.push_str(&format!("- Created: {}\n", day(env.created_at)));
    s.push_str(&format!(
        "- Drift status: {}\n",
        serde_json::to_value(env.drift_status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    ));
    if let Some(x) = &env.metadata.experiment_id {
        s.push_str(&format!("- Experiment: {x}\n"));
    }
    if let Some(x) = &env.metadata.funding_source {
        s.push_str(&format!("- Funding source: {x}\n"));
    }

    s.push_str("\n## Snapshots\n\n");
    if snapshots.is_empty() {
        s.push_str("No complete snapshot yet.\n");
    }
    for snap in snapshots {
        s.push_str(&format!(
            "- {} snapshot {}: {} packages, {} notebooks",
            day(snap.timestamp),
            snap.id,
            snap.metadata.installed_packages.len(),
            snap.metadata.notebook_count
        ));
        if let Some(n) = snap
            .metadata
            .notes
            .as_deref()
            .filter(|n| !n.trim().is_empty())
        {
            s.push_str(&format!("; notes: {}", n.trim().replace('\n', " ")));
        }
        s.push('\n');
    }

    s.push_str("\n## Package changes\n\n");
    let changes: Vec<&HistoryEntry> = history.iter().filter(|h| h.action != "present").collect();
    if changes.is_empty() {
        s.push_str("No package changed between snapshots.\n");
    }
    for h in changes {
        let what = match (h.action.as_str(), &h.from, &h.to) {
            ("installed", _, Some(t)) => format!("{} {} installed", h.package, t),
            ("removed", Some(f), _) => format!("{} {} removed", h.package, f),
            (a, Some(f), Some(t)) => format!("{} {a} from {f} to {t}", h.package),
            (a, _, _) => format!("{} {a}", h.package),
        };
        s.push_str(&format!(
            "- {}: {what} (snapshot {})",
            day(h.time),
            h.snapshot_id
        ));
        if let Some(r) = &h.reason {
            s.push_str(&format!("; reason: {}", r.trim().replace('\n', " ")));
        }
        s.push('\n');
    }

    s.push_str("\n## Packages the researcher asked for\n\n");
    // What the environment was created with, then what was installed later.
    let mut latest: BTreeMap<&str, &HistoryEntry> = BTreeMap::new();
    for h in history {
        latest.insert(&h.package, h);
    }
    let created_with: Vec<String> = env
        .packages
        .iter()
        .map(|p| westtek_inventory::normalize_name(&p.name))
        .collect();
    let asked: Vec<&&HistoryEntry> = latest
        .values()
        .filter(|h| h.to.is_some())
        .filter(|h| {
            created_with.contains(&h.package)
                || (h.requested == Some(true)
                    && history
                        .iter()
                        .any(|x| x.package == h.package && x.action == "installed"))
        })
        .collect();
    if asked.is_empty() {
        s.push_str("None besides JupyterLab.\n");
    }
    for h in asked {
        s.push_str(&format!(
            "- {} {}\n",
            h.package,
            h.to.as_deref().unwrap_or("")
        ));
    }

    s.push_str("\n## Notebooks (run in this order)\n\n");
    if notebooks.is_empty() {
        s.push_str("No notebooks.\n");
    }
    for (i, nb) in notebooks.iter().enumerate() {
        s.push_str(&format!("{}. {}", i + 1, nb.path));
        if !nb.imports.is_empty() {
            s.push_str(&format!(": imports {}", nb.imports.join(", ")));
        }
        if !nb.data_files.is_empty() {
            s.push_str(&format!("; reads {}", nb.data_files.join(", ")));
        }
        if let Some(e) = &nb.error {
            s.push_str(&format!(" (not in the knowledge base: {e})"));
        }
        s.push('\n');
    }

    s.push_str("\n## Drift history\n\n");
    if events.is_empty() {
        s.push_str("No drift recorded.\n");
    }
    for e in events {
        let status = serde_json::to_value(e.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match e.severity.as_deref() {
            Some(sev) => s.push_str(&format!(
                "- {}: {sev} drift event {} ({status}): {}",
                day(e.detected_at),
                e.id,
                finding_lines(e).join("; ")
            )),
            None => s.push_str(&format!(
                "- {}: back at the baseline (event {})",
                day(e.detected_at),
                e.id
            )),
        }
        if !e.affected_notebooks.is_empty() {
            s.push_str(&format!("; affects {}", e.affected_notebooks.join(", ")));
        }
        s.push('\n');
    }

    s.push_str("\n## Onboarding checklist\n\n");
    for (i, c) in checklist(env, snapshots, notebooks).iter().enumerate() {
        s.push_str(&format!("{}. {}\n", i + 1, c.text));
    }

    s.push_str("\n## Redactions\n\n");
    if redactions.is_empty() {
        s.push_str("Nothing was redacted.\n");
    } else {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in redactions {
            *counts.entry(r.kind.as_str()).or_default() += 1;
        }
        let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
        s.push_str(&format!(
            "Redacted before storing: {} (kinds and places in redactions.json, never the values).\n",
            parts.join(", ")
        ));
    }
    Ok(s)
}

/// What the transfer endpoints and the agent need of an environment.
pub struct TransferData {
    pub summary_path: DocPath,
    pub summary: String,
    pub snapshots: Vec<Snapshot>,
    pub notebooks: Vec<NotebookEntry>,
    pub redactions: Vec<RedactionRecord>,
    pub checklist: Vec<ChecklistItem>,
}

/// Syncs the environment's knowledge when nothing is stored for it yet.
///
/// # Errors
/// Store, vault or index failures.
pub async fn ensure_synced(svc: &KnowledgeService, env: &Environment) -> Result<()> {
    if svc
        .get_text(&DocPath::environment_summary(env.id))
        .await?
        .is_none()
    {
        svc.sync_environment(env.id).await?;
    }
    Ok(())
}

/// The environment's stored knowledge, syncing first when nothing is stored
/// yet (or `force`).
///
/// # Errors
/// Store, vault or index failures.
pub async fn load(svc: &KnowledgeService, env: &Environment, force: bool) -> Result<TransferData> {
    let summary_path = DocPath::environment_summary(env.id);
    let summary = match svc.get_text(&summary_path).await? {
        Some(text) if !force => text,
        _ => {
            svc.sync_environment(env.id).await?;
            svc.get_text(&summary_path).await?.unwrap_or_default()
        }
    };
    let notebooks: Vec<NotebookEntry> = match svc.get_text(&notebook_list_path(env.id)?).await? {
        Some(t) => serde_json::from_str(&t).map_err(DomainError::internal)?,
        None => Vec::new(),
    };
    let redactions: Vec<RedactionRecord> = match svc.get_text(&redactions_path(env.id)?).await? {
        Some(t) => serde_json::from_str(&t).map_err(DomainError::internal)?,
        None => Vec::new(),
    };
    let snapshots = svc.complete_snapshots(env.id).await?;
    let checklist = checklist(env, &snapshots, &notebooks);
    Ok(TransferData {
        summary_path,
        summary,
        snapshots,
        notebooks,
        redactions,
        checklist,
    })
}

/// The package as zip bytes.
///
/// # Errors
/// Store failures; zip failures are internal.
pub async fn package_zip(
    svc: &KnowledgeService,
    env: &Environment,
    checklist_override: Option<&[ChecklistItem]>,
) -> Result<Vec<u8>> {
    let data = load(svc, env, false).await?;
    let checklist = checklist_override.map_or(data.checklist.clone(), <[ChecklistItem]>::to_vec);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let root = format!("transfer-{}", env.name.as_str());
    files.push((
        "README.md".into(),
        format!(
            "# Transfer package: {}\n\nGenerated {}.\n\n\
             - summary.md: the environment at a glance\n\
             - onboarding-checklist.md / .json: what to do first, in order\n\
             - notebooks/: the notebooks as Markdown (outputs summarised)\n\
             - package-manifests/: pip freeze of every snapshot\n\
             - installation-history.jsonl: when and why each package changed\n\
             - drift-history.jsonl: every drift event\n\
             - experiment-logs/: the experiment's environments and snapshots\n\
             - redactions.json: what was redacted where (never the values)\n",
            env.name.as_str(),
            svc.state.clock.now().format("%Y-%m-%d %H:%M UTC")
        )
        .into_bytes(),
    ));
    files.push(("summary.md".into(), data.summary.clone().into_bytes()));
    files.push((
        "onboarding-checklist.md".into(),
        checklist_markdown(&checklist).into_bytes(),
    ));
    files.push((
        "onboarding-checklist.json".into(),
        serde_json::to_vec_pretty(&checklist).map_err(DomainError::internal)?,
    ));
    for nb in &data.notebooks {
        let Some(doc) = &nb.document else { continue };
        if let Some(text) = svc
            .get_text(&DocPath::parse(doc).map_err(crate::knowledge_error)?)
            .await?
        {
            let name = nb.path.strip_prefix("home/").unwrap_or(&nb.path);
            let name = name.strip_suffix(".ipynb").unwrap_or(name);
            files.push((format!("notebooks/{name}.md"), text.into_bytes()));
        }
    }
    for s in &data.snapshots {
        if let Some(text) = svc
            .get_text(&DocPath::package_manifest(env.id, s.id))
            .await?
        {
            files.push((format!("package-manifests/{}.txt", s.id), text.into_bytes()));
        }
    }
    let history = svc
        .get_text(&DocPath::installation_history(env.id))
        .await?
        .unwrap_or_default();
    files.push(("installation-history.jsonl".into(), history.into_bytes()));
    let mut drift = String::new();
    for e in drift_events(svc, env).await? {
        drift.push_str(
            &serde_json::to_string(&serde_json::json!({
                "id": e.id.to_string(),
                "detected_at": e.detected_at,
                "severity": e.severity,
                "status": e.status,
                "source": e.source,
                "baseline_snapshot_id": e.baseline_snapshot_id.map(|s| s.to_string()),
                "findings": e.findings,
                "affected_notebooks": e.affected_notebooks,
            }))
            .map_err(DomainError::internal)?,
        );
        drift.push('\n');
    }
    files.push(("drift-history.jsonl".into(), drift.into_bytes()));
    if let Some(exp) = &env.metadata.experiment_id {
        if let Ok(p) = DocPath::experiment_log(env.lab_id, exp) {
            if let Some(text) = svc.get_text(&p).await? {
                files.push((
                    format!("experiment-logs/{}", p.file_name()),
                    text.into_bytes(),
                ));
            }
        }
    }
    files.push((
        "redactions.json".into(),
        serde_json::to_vec_pretty(&data.redactions).map_err(DomainError::internal)?,
    ));
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o644);
        for (name, bytes) in files {
            zip.start_file(format!("{root}/{name}"), opts)
                .map_err(std::io::Error::other)?;
            zip.write_all(&bytes)?;
        }
        Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
    })
    .await
    .map_err(DomainError::internal)?
    .map_err(DomainError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use westtek_domain::{DriftEventId, DriftSource, DriftStatus, EnvironmentId, LabId};

    #[test]
    fn findings_read_as_one_line_each() {
        let e = DriftEvent {
            id: DriftEventId::new(),
            seq: 1,
            lab_id: LabId::new(),
            environment_id: EnvironmentId::new(),
            detected_at: chrono::Utc::now(),
            source: DriftSource::Watcher,
            baseline_snapshot_id: None,
            previous_status: DriftStatus::Stable,
            status: DriftStatus::MinorDrift,
            severity: Some("MINOR".into()),
            fingerprint: String::new(),
            findings: serde_json::json!([
                {"kind": {"type": "package_upgraded"}, "subject": "tabulate", "before": "0.8.10", "after": "0.9.0"},
                {"kind": {"type": "config_changed", "change": "modified"}, "subject": "etc/jupyter/x.py"},
                {"kind": {"type": "package_added"}, "subject": "rich", "after": "13.0"}
            ]),
            affected_notebooks: vec![],
        };
        assert_eq!(
            finding_lines(&e),
            [
                "tabulate package upgraded 0.8.10 → 0.9.0",
                "etc/jupyter/x.py config changed (modified)",
                "rich package added (13.0)"
            ]
        );
    }
}
