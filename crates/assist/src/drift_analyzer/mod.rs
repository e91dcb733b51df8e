//! The Drift Analyzer's local engine: deterministic, rule-based, no model.
//!
//! Every answer follows the same path: look up the environment
//! (`GetEnvironmentConfig`) and its drift events since the baseline
//! (`GetDriftEvents`), read the question with keyword rules (the `intent`
//! module), pick the event it is about (the latest, or the latest that
//! changed the package it names), then gather what the answer needs —
//! package metadata (`GetPackageChangelog`), the notebooks and their imports
//! (`GetEnvironmentNotebooks`), a snapshot comparison
//! (`GetSnapshotComparison`) — and say it sentence by sentence, each
//! sentence cited. An explanation ends in a recommendation:
//!
//! - critical drift and a snapshot to return to → roll back to the baseline
//!   (else the latest snapshot), or pin the previous versions
//!   (`CreateRollbackRecommendation`);
//! - only minor drift → accept it by taking a snapshot
//!   (`CreateSnapshotRecommendation`);
//! - no drift → the environment is stable, nothing to do.
//!
//! Policy: the same question about the same data gives the same answer. A
//! recommendation is recorded once per drift event and session; a follow-up
//! shows the recorded one again. Package metadata is optional: when
//! `GetPackageChangelog` fails the answer goes on without it; when the caller
//! may not record a recommendation the advice is still given. Any other tool
//! failure ends the stream with [`AgentChunk::Error`] carrying the tool
//! error's code and a generic message (the cause is logged).

mod intent;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use serde_json::json;
use westtek_domain::{EnvironmentId, EventId, SnapshotId};
use westtek_inventory::{Finding, FindingKind, Severity};

use crate::changelog::PackageChangelog;
use crate::drift_tools::{
    DriftAction, DriftEventView, DriftTools, EnvironmentConfigView, NotebookView, Recommendation,
    RecommendationKind, SnapshotSummary, ToolError, ToolScope,
};
use crate::port::{Agent, AgentChunk, AgentKind, AgentRequest, SourceKind, SourceRef};
use crate::session::{SessionKey, SessionState, SessionStore, Turn};
use crate::{AssistError, Result};

use crate::compose::Composer;
use intent::{import_name_matches, Intent, Question};
use text::*;

/// Longest question accepted, in characters (InvokeAgent's `inputText` limit).
pub use crate::port::MAX_INPUT_CHARS;
/// Most findings described one by one in an answer; the rest are counted.
const MAX_FINDINGS: usize = 8;
/// Most notebooks listed one by one in an answer; the rest are counted.
const MAX_NOTEBOOKS: usize = 10;

/// The Drift Analyzer, answering from [`DriftTools`] with fixed rules.
/// Cheap to clone.
#[derive(Clone)]
pub struct LocalDriftAnalyzer {
    tools: Arc<dyn DriftTools>,
    sessions: Arc<SessionStore>,
}

impl LocalDriftAnalyzer {
    /// An analyzer over `tools`, remembering conversations in `sessions`
    /// (which other agents may share: sessions are keyed by agent too).
    pub fn new(tools: Arc<dyn DriftTools>, sessions: Arc<SessionStore>) -> Self {
        LocalDriftAnalyzer { tools, sessions }
    }

    /// The full explanation of `event` with a recommendation, unasked: what
    /// the platform runs when critical drift is detected. The chunks are the
    /// ones a chat answer would stream, ending in [`AgentChunk::Done`] (with
    /// session id `drift-event-<event id>`) or [`AgentChunk::Error`].
    /// `scope.actor` is `None` when the platform itself asks.
    pub async fn analyze_event(&self, scope: ToolScope, event: DriftEventView) -> Vec<AgentChunk> {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut work = Work {
            tools: self.tools.clone(),
            scope,
            env: event.environment_id,
            c: Composer::new(tx),
        };
        let session_id = format!("drift-event-{}", event.id);
        let result = async {
            let config = work.config().await?;
            if event.findings.iter().any(is_drift) {
                work.explain(&config, &event, None, &SessionState::default())
                    .await
            } else {
                work.stable(&config);
                Ok(Outcome::default())
            }
        }
        .await;
        match result {
            Ok(_) => work.c.done(&session_id),
            Err(e) => work.fail(&e),
        }
        drop(work);
        rx.collect().await
    }
}

#[async_trait]
impl Agent for LocalDriftAnalyzer {
    async fn invoke(&self, req: AgentRequest) -> Result<BoxStream<'static, AgentChunk>> {
        crate::port::validate_request(&req, AgentKind::DriftAnalyzer)?;
        let key = SessionKey {
            lab_id: req.lab_id,
            user_id: req.caller.user_id,
            agent: AgentKind::DriftAnalyzer,
            session_id: req.session_id,
        };
        let mut session = self.sessions.get(&key).unwrap_or_default();
        let env = req
            .environment_id
            .or(session.environment_id)
            .ok_or(AssistError::MissingEnvironment)?;
        if session.environment_id.is_some_and(|e| e != env) {
            // Another environment: what "it" meant no longer applies.
            session = SessionState {
                turns: std::mem::take(&mut session.turns),
                ..SessionState::default()
            };
        }
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut work = Work {
            tools: self.tools.clone(),
            scope: ToolScope {
                lab_id: req.lab_id,
                actor: Some(req.caller.user_id),
            },
            env,
            c: Composer::new(tx),
        };
        let sessions = self.sessions.clone();
        let question = req.input_text;
        let producer = async move {
            match work.answer(&question, &session).await {
                Ok(outcome) => {
                    let answer = work.c.answer().to_string();
                    sessions.update(&key, |s| {
                        s.environment_id = Some(env);
                        if let Some(p) = outcome.package {
                            s.package = Some(p);
                        }
                        if let Some(e) = outcome.event_id {
                            s.event_id = Some(e);
                        }
                        s.recommendations.extend(outcome.recommendations);
                        s.turns.push_back(Turn::new(&question, &answer, Utc::now()));
                    });
                    work.c.done(&key.session_id);
                }
                Err(e) => work.fail(&e),
            }
        };
        // The work runs as the stream is polled: `select` drives the
        // producer (which yields nothing itself) while passing on what it
        // sends; the channel closes when the producer is done.
        let driver = stream::once(producer).filter_map(|()| async { None::<AgentChunk> });
        Ok(stream::select(rx, driver).boxed())
    }
}

/// What an answer leaves for the session.
#[derive(Default)]
struct Outcome {
    package: Option<String>,
    event_id: Option<EventId>,
    recommendations: Vec<(EventId, Recommendation)>,
}

/// One answer being worked out.
struct Work {
    tools: Arc<dyn DriftTools>,
    scope: ToolScope,
    env: EnvironmentId,
    c: Composer,
}

type ToolResult<T> = std::result::Result<T, ToolError>;

impl Work {
    fn fail(&self, e: &ToolError) {
        let cause = std::error::Error::source(e).map(|s| s.to_string());
        tracing::warn!(environment_id = %self.env, code = e.code(), error = %e, ?cause, "drift analyzer tool failed");
        let message = match e {
            ToolError::NotFound(_) => "The environment or one of its snapshots was not found.",
            ToolError::Forbidden => "You are not allowed to do this for this environment.",
            ToolError::Invalid(_) => "The question led to a request the tools could not accept.",
            ToolError::Failed(_) => {
                "The drift analysis is unavailable right now; please try again."
            }
        };
        self.c.error(e.code(), message);
    }

    /// Reports a tool's result on the trace and passes it on.
    fn traced<T>(
        &self,
        action: DriftAction,
        result: ToolResult<T>,
        summary: impl FnOnce(&T) -> String,
    ) -> ToolResult<T> {
        let line = match &result {
            Ok(v) => summary(v),
            Err(e) => format!("failed: {}", e.code()),
        };
        self.c.tool_result(action.name(), line);
        result
    }

    async fn config(&self) -> ToolResult<EnvironmentConfigView> {
        let action = DriftAction::GetEnvironmentConfig;
        self.c
            .tool_call(action.name(), json!({ "environment_id": self.env }));
        let r = self
            .tools
            .get_environment_config(&self.scope, self.env)
            .await;
        self.traced(action, r, |c| {
            format!(
                "{}: Python {}, {} snapshots, baseline {}, status {}",
                c.name,
                c.python_version,
                c.snapshots.len(),
                c.baseline_snapshot_id
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into()),
                c.drift_status.as_str()
            )
        })
    }

    async fn events(&self, since: Option<DateTime<Utc>>) -> ToolResult<Vec<DriftEventView>> {
        let action = DriftAction::GetDriftEvents;
        self.c.tool_call(
            action.name(),
            json!({ "environment_id": self.env, "since": since, "until": null }),
        );
        let r = self
            .tools
            .get_drift_events(&self.scope, self.env, since, None)
            .await;
        let mut events = self.traced(action, r, |e| format!("{} drift events", e.len()))?;
        // Newest first, whatever order the tool used; ties by id for
        // determinism.
        events.sort_by_key(|e| std::cmp::Reverse((e.detected_at, e.id)));
        Ok(events)
    }

    async fn notebooks(&self) -> ToolResult<Vec<NotebookView>> {
        let action = DriftAction::GetEnvironmentNotebooks;
        self.c
            .tool_call(action.name(), json!({ "environment_id": self.env }));
        let r = self
            .tools
            .get_environment_notebooks(&self.scope, self.env)
            .await;
        self.traced(action, r, |n| format!("{} notebooks", n.len()))
    }

    /// Package metadata for a change; `None` (logged) when unavailable.
    async fn changelog(
        &self,
        package: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Option<PackageChangelog> {
        let action = DriftAction::GetPackageChangelog;
        self.c.tool_call(
            action.name(),
            json!({
                "environment_id": self.env,
                "package": package,
                "old_version": old,
                "new_version": new,
            }),
        );
        let r = self
            .tools
            .get_package_changelog(&self.scope, self.env, package, old, new)
            .await;
        let r = self.traced(action, r, |c| {
            format!(
                "{} {} → {}; metadata {}",
                c.package,
                c.old_version.as_deref().unwrap_or("none"),
                c.new_version.as_deref().unwrap_or("none"),
                if c.metadata_path.is_some() {
                    "found"
                } else {
                    "not found"
                }
            )
        });
        match r {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(package, code = e.code(), error = %e, "package metadata unavailable");
                None
            }
        }
    }

    async fn comparison(&self, before: SnapshotId, after: SnapshotId) -> ToolResult<Vec<Finding>> {
        let action = DriftAction::GetSnapshotComparison;
        self.c
            .tool_call(action.name(), json!({ "before": before, "after": after }));
        let r = self
            .tools
            .get_snapshot_comparison(&self.scope, before, after)
            .await;
        self.traced(action, r, |f| format!("{} findings", f.len()))
    }

    /// A recommendation recorded for `ev` in this session already, or a new
    /// one; `None` when the caller may not record one.
    async fn recommendation(
        &self,
        session: &SessionState,
        ev: &DriftEventView,
        kind: RecommendationKind,
        reason: &str,
        out: &mut Vec<(EventId, Recommendation)>,
    ) -> ToolResult<Option<Recommendation>> {
        if let Some((_, r)) = session
            .recommendations
            .iter()
            .find(|(e, r)| *e == ev.id && r.kind == kind)
        {
            return Ok(Some(r.clone()));
        }
        let (action, r) = match &kind {
            RecommendationKind::Rollback { target_snapshot_id } => {
                let action = DriftAction::CreateRollbackRecommendation;
                self.c.tool_call(
                    action.name(),
                    json!({
                        "environment_id": self.env,
                        "target_snapshot_id": target_snapshot_id,
                        "reason": reason,
                    }),
                );
                let r = self
                    .tools
                    .create_rollback_recommendation(
                        &self.scope,
                        self.env,
                        *target_snapshot_id,
                        reason,
                    )
                    .await;
                (action, r)
            }
            RecommendationKind::Snapshot | RecommendationKind::Pin { .. } => {
                let action = DriftAction::CreateSnapshotRecommendation;
                self.c.tool_call(
                    action.name(),
                    json!({ "environment_id": self.env, "reason": reason }),
                );
                let r = self
                    .tools
                    .create_snapshot_recommendation(&self.scope, self.env, reason)
                    .await;
                (action, r)
            }
        };
        match self.traced(action, r, |r| format!("recorded recommendation {}", r.id)) {
            Ok(r) => {
                out.push((ev.id, r.clone()));
                Ok(Some(r))
            }
            Err(ToolError::Forbidden) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Answers a chat question.
    async fn answer(&mut self, text: &str, session: &SessionState) -> ToolResult<Outcome> {
        let q = Question::new(text);
        let config = self.config().await?;

        if let Some((a, b)) = snapshots_named(&q, &config) {
            return self.compare(&config, &a, &b).await;
        }

        let since = config
            .rollback_target()
            .and_then(|id| config.snapshot(id))
            .map(|s| s.created_at);
        let events = self.events(since).await?;

        let mut candidates: BTreeSet<&str> = events
            .iter()
            .flat_map(|e| &e.findings)
            .filter(|f| is_package(f.kind))
            .map(|f| f.subject.as_str())
            .collect();
        if let Some(p) = &session.package {
            candidates.insert(p);
        }
        let mentioned = q.mentioned(candidates.iter().copied());
        let intent = q.intent(mentioned.is_some());
        let remembered = session.package.clone().filter(|_| q.refers_back());
        let focus = mentioned.or(remembered);

        match intent {
            Intent::Help => {
                self.help();
                Ok(Outcome::default())
            }
            Intent::Changelog => {
                let package = focus
                    .or_else(|| q.named_after_keyword())
                    .or_else(|| session.package.clone());
                self.changelog_answer(&config, &events, package).await
            }
            Intent::Notebooks => {
                let package = focus.or_else(|| q.named_after_keyword());
                self.notebooks_answer(&config, &events, package).await
            }
            Intent::Explain | Intent::WhatChanged | Intent::Rollback | Intent::Recommend => {
                let Some(ev) = pick_event(&events, focus.as_deref()) else {
                    self.stable(&config);
                    return Ok(Outcome {
                        package: focus,
                        ..Outcome::default()
                    });
                };
                match intent {
                    Intent::WhatChanged => Ok(self.what_changed(ev, focus.as_deref())),
                    Intent::Rollback | Intent::Recommend => {
                        self.advise(&config, ev, session, intent == Intent::Rollback)
                            .await
                    }
                    _ => self.explain(&config, ev, focus.as_deref(), session).await,
                }
            }
        }
    }

    fn help(&mut self) {
        for line in HELP {
            self.c.say(line, &[]);
        }
    }

    fn stable(&mut self, config: &EnvironmentConfigView) {
        let env = environment_source(config);
        let baseline = config.rollback_target().and_then(|id| config.snapshot(id));
        match baseline {
            Some(s) => self.c.say(
                &format!(
                    "{} is stable: no drift has been detected since the baseline snapshot {} of {}, so there is nothing to do.",
                    config.name,
                    s.id,
                    when(s.created_at)
                ),
                &[snapshot_source(s), env],
            ),
            None if config.snapshots.is_empty() && config.latest_snapshot.is_none() => {
                self.c.say(
                    &format!(
                        "{} is stable: no drift has been recorded, but it has no snapshot yet, so there is no baseline to measure drift against.",
                        config.name
                    ),
                    &[env],
                );
                self.c
                    .say("Take a snapshot to have one.", &[]);
            }
            None => self.c.say(
                &format!(
                    "{} is stable: no drift has been detected, so there is nothing to do.",
                    config.name
                ),
                &[env],
            ),
        }
    }

    /// "Drift was detected in env on …: 1 critical change and 2 minor changes against its baseline."
    fn intro(&mut self, config: &EnvironmentConfigView, ev: &DriftEventView) {
        let critical = severity_count(ev, Severity::Critical);
        let minor = severity_count(ev, Severity::Minor);
        let mut parts = Vec::new();
        if critical > 0 {
            parts.push(count(critical, "critical change"));
        }
        if minor > 0 {
            parts.push(count(minor, "minor change"));
        }
        self.c.say(
            &format!(
                "Drift was detected in {} on {}: {} against its baseline.",
                config.name,
                when(ev.detected_at),
                list(&parts)
            ),
            &[event_source(ev)],
        );
    }

    /// The findings of `ev` an answer is about: those on `focus` if it
    /// changed in `ev`, else all drift findings; and whether `focus` was
    /// named but did not change.
    fn shown<'e>(ev: &'e DriftEventView, focus: Option<&str>) -> (Vec<&'e Finding>, bool) {
        let drift: Vec<&Finding> = ev.findings.iter().filter(|f| is_drift(f)).collect();
        let Some(p) = focus else {
            return (drift, false);
        };
        let focused: Vec<&Finding> = drift
            .iter()
            .copied()
            .filter(|f| is_package(f.kind) && f.subject == p)
            .collect();
        if focused.is_empty() {
            (drift, true)
        } else {
            (focused, false)
        }
    }

    fn say_findings(&mut self, ev: &DriftEventView, findings: &[&Finding], as_list: bool) {
        for f in findings.iter().take(MAX_FINDINGS) {
            let sentence = describe(f);
            let sources = finding_sources(ev, f);
            if as_list {
                self.c.bullet(&sentence, &sources);
            } else {
                self.c.say(&sentence, &sources);
            }
        }
        if findings.len() > MAX_FINDINGS {
            self.c.say(
                &format!(
                    "There {} {} more.",
                    if findings.len() - MAX_FINDINGS == 1 {
                        "is"
                    } else {
                        "are"
                    },
                    count(findings.len() - MAX_FINDINGS, "change")
                ),
                &[event_source(ev)],
            );
        }
    }

    /// What a package's metadata adds to a finding.
    fn say_changelog(
        &mut self,
        config: &EnvironmentConfigView,
        cl: &PackageChangelog,
        fallback: Option<&SourceRef>,
    ) {
        let meta = metadata_source(cl);
        let note_sources: Vec<SourceRef> = meta.iter().chain(fallback).take(1).cloned().collect();
        if let (Some(summary), Some(m)) = (&cl.summary, &meta) {
            self.c.say(
                &format!(
                    "Its package metadata describes it as \"{}\".",
                    summary.trim_end_matches('.')
                ),
                std::slice::from_ref(m),
            );
        }
        if !cl.note.is_empty() {
            self.c.say(&cl.note, &note_sources);
        }
        if let Some(m) = &meta {
            if let Some(url) = &cl.changelog_url {
                self.c.say(
                    &format!("Its release notes are at {url}."),
                    std::slice::from_ref(m),
                );
            }
            if cl.excludes_python(&config.python_version) == Some(true) {
                if let (Some(rp), Some(v)) = (&cl.requires_python, &cl.new_version) {
                    self.c.say(
                        &format!(
                            "{} {v} requires Python {rp}, which this environment's Python {} does not satisfy.",
                            cl.package, config.python_version
                        ),
                        &[m.clone(), environment_source(config)],
                    );
                }
            }
        }
    }

    /// Lists the notebooks `findings` affect and why; returns how many are
    /// affected by a critical finding.
    fn say_notebooks_at_risk(
        &mut self,
        ev: &DriftEventView,
        findings: &[&Finding],
        notebooks: &[NotebookView],
    ) -> usize {
        let mut affected: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
        for f in findings {
            for nb in &f.affected_notebooks {
                affected.entry(nb.as_str()).or_default().push(f);
            }
        }
        if affected.is_empty() {
            self.c.say(
                "No notebook imports or uses anything that changed.",
                &[event_source(ev)],
            );
            return 0;
        }
        let critical = affected
            .values()
            .filter(|fs| fs.iter().any(|f| f.severity == Severity::Critical))
            .count();
        self.c.say(
            &format!(
                "{} on what changed:",
                match affected.len() {
                    1 => "1 notebook depends".to_string(),
                    n => format!("{n} notebooks depend"),
                }
            ),
            &[event_source(ev)],
        );
        for (path, fs) in affected.iter().take(MAX_NOTEBOOKS) {
            let nb = notebooks.iter().find(|n| n.path == *path);
            let mut reasons: Vec<String> = Vec::new();
            let modules: Vec<String> = nb
                .map(|nb| {
                    nb.imports
                        .iter()
                        .filter(|m| {
                            fs.iter()
                                .any(|f| is_package(f.kind) && import_name_matches(m, &f.subject))
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if modules.is_empty() {
                for f in fs.iter().filter(|f| is_package(f.kind)) {
                    push_unique(&mut reasons, format!("depends on {}", f.subject));
                }
            } else {
                reasons.push(format!("imports {}", list(&modules)));
            }
            for f in fs {
                if let Some(r) = non_package_reason(f) {
                    push_unique(&mut reasons, r);
                }
            }
            let tail = if fs.iter().any(|f| f.severity == Severity::Critical) {
                "so it is at risk"
            } else {
                "but only through minor changes, so the risk is low"
            };
            let mut sources: Vec<SourceRef> = nb.map(notebook_source).into_iter().collect();
            sources.push(event_source(ev));
            self.c
                .bullet(&format!("{path} {}, {tail}.", list(&reasons)), &sources);
        }
        if affected.len() > MAX_NOTEBOOKS {
            self.c.say(
                &format!(
                    "And {} more.",
                    count(affected.len() - MAX_NOTEBOOKS, "notebook")
                ),
                &[event_source(ev)],
            );
        }
        critical
    }

    fn say_risk(&mut self, ev: &DriftEventView, critical_notebooks: usize) {
        let sentence = if ev.findings.iter().any(|f| f.severity == Severity::Critical) {
            let who = if critical_notebooks > 0 {
                format!(
                    "{} may fail or compute different results until this is resolved",
                    count(critical_notebooks, "notebook")
                )
            } else {
                "notebooks may fail or compute different results until this is resolved".into()
            };
            format!("Risk: high — {who}.")
        } else {
            "Risk: low — none of the changes is critical for your notebooks.".to_string()
        };
        self.c.say(&sentence, &[event_source(ev)]);
    }

    /// The recommendation for `ev`, recorded through the tools.
    async fn recommend(
        &mut self,
        config: &EnvironmentConfigView,
        ev: &DriftEventView,
        session: &SessionState,
    ) -> ToolResult<Vec<(EventId, Recommendation)>> {
        let mut out = Vec::new();
        let critical: Vec<&Finding> = ev
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Critical)
            .collect();
        if critical.is_empty() {
            if !ev.findings.iter().any(is_drift) {
                return Ok(out);
            }
            let reason = format!(
                "Minor drift detected on {}: nothing the notebooks depend on changed critically. Accept the change by taking a snapshot, which becomes the new baseline.",
                when(ev.detected_at)
            );
            let rec = self
                .recommendation(session, ev, RecommendationKind::Snapshot, &reason, &mut out)
                .await?;
            self.c.say(
                "Recommendation: accept the change by taking a snapshot, which becomes the new baseline.",
                &[event_source(ev)],
            );
            if let Some(rec) = rec {
                self.c.recommendation(rec);
            }
            return Ok(out);
        }

        let mut pins: Vec<String> = Vec::new();
        for f in &critical {
            if is_package(f.kind) && f.kind != FindingKind::PackageAdded {
                if let Some(before) = &f.before {
                    push_unique(&mut pins, format!("{}=={before}", f.subject));
                }
            }
        }
        let pin_text = pins
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let versions = if pins.len() == 1 {
            "version"
        } else {
            "versions"
        };

        let Some(target) = config.rollback_target() else {
            self.c.say(
                "There is no snapshot to roll back to.",
                &[environment_source(config)],
            );
            if !pins.is_empty() {
                self.c.say(
                    &format!(
                        "Pin the previous {versions} ({pin_text}), check that the notebooks run, then take a snapshot so there is a baseline to return to."
                    ),
                    &[event_source(ev)],
                );
            }
            return Ok(out);
        };
        let summary = config.snapshot(target);
        let which = if config.baseline_snapshot_id == Some(target) {
            "the baseline"
        } else {
            "the latest snapshot"
        };
        let taken = summary
            .map(|s| format!(", taken {}", when(s.created_at)))
            .unwrap_or_default();
        let changes: Vec<String> = critical
            .iter()
            .take(MAX_FINDINGS)
            .map(|f| describe(f).trim_end_matches('.').to_string())
            .collect();
        let mut reason = format!(
            "Critical drift detected on {}: {}. Roll back to snapshot {target} ({which}).",
            when(ev.detected_at),
            changes.join("; ")
        );
        if !pins.is_empty() {
            reason.push_str(&format!(
                " Alternatively pin the previous {versions}: {}.",
                pins.join(", ")
            ));
        }
        let rec = self
            .recommendation(
                session,
                ev,
                RecommendationKind::Rollback {
                    target_snapshot_id: target,
                },
                &reason,
                &mut out,
            )
            .await?;
        let snapshot = summary.map(snapshot_source).unwrap_or_else(|| SourceRef {
            kind: SourceKind::Snapshot,
            id: target.to_string(),
            span: None,
            title: format!("Snapshot {target}"),
        });
        self.c.say(
            &format!(
                "Recommendation: roll back to snapshot {target} ({which}{taken}), from before this drift."
            ),
            &[snapshot],
        );
        if !pins.is_empty() {
            self.c.say(
                &format!(
                    "If you would rather keep the other changes, pin the previous {versions} instead: {pin_text}."
                ),
                &[event_source(ev)],
            );
        }
        if let Some(rec) = rec {
            self.c.recommendation(rec);
        }
        Ok(out)
    }

    /// Why it drifted, what it means for the notebooks, what to do.
    async fn explain(
        &mut self,
        config: &EnvironmentConfigView,
        ev: &DriftEventView,
        focus: Option<&str>,
        session: &SessionState,
    ) -> ToolResult<Outcome> {
        let (shown, focus_missing) = Self::shown(ev, focus);
        self.intro(config, ev);
        if let (Some(p), true) = (focus, focus_missing) {
            self.c.say(
                &format!("{p} is not among its changes; here is what did change."),
                &[event_source(ev)],
            );
        }
        for f in shown.iter().take(MAX_FINDINGS) {
            self.c.say(&describe(f), &finding_sources(ev, f));
            if is_package(f.kind) {
                let changelog = self
                    .changelog(&f.subject, f.before.as_deref(), f.after.as_deref())
                    .await;
                if let Some(cl) = changelog {
                    self.say_changelog(config, &cl, Some(&event_source(ev)));
                }
            }
        }
        if shown.len() > MAX_FINDINGS {
            self.c.say(
                &format!(
                    "Further changes: {}.",
                    count(shown.len() - MAX_FINDINGS, "change")
                ),
                &[event_source(ev)],
            );
        }
        let drift_total = ev.findings.iter().filter(|f| is_drift(f)).count();
        if drift_total > shown.len() {
            self.c.say(
                &format!(
                    "The same drift event has {} as well.",
                    count(drift_total - shown.len(), "other change")
                ),
                &[event_source(ev)],
            );
        }

        self.c.paragraph();
        let touches_notebooks = shown.iter().any(|f| !f.affected_notebooks.is_empty());
        let notebooks = if touches_notebooks {
            self.notebooks().await?
        } else {
            Vec::new()
        };
        let critical_notebooks = self.say_notebooks_at_risk(ev, &shown, &notebooks);

        self.c.paragraph();
        self.say_risk(ev, critical_notebooks);

        self.c.paragraph();
        let recommendations = self.recommend(config, ev, session).await?;
        Ok(Outcome {
            package: focus
                .filter(|_| !focus_missing)
                .map(str::to_string)
                .or_else(|| first_package(&shown)),
            event_id: Some(ev.id),
            recommendations,
        })
    }

    /// Just the list of changes.
    fn what_changed(&mut self, ev: &DriftEventView, focus: Option<&str>) -> Outcome {
        let (shown, focus_missing) = Self::shown(ev, focus);
        let intro = format!(
            "The latest drift, detected on {}, has {}:",
            when(ev.detected_at),
            count(shown.len(), "change")
        );
        if let (Some(p), true) = (focus, focus_missing) {
            self.c.say(
                &format!("{p} did not change in the latest drift."),
                &[event_source(ev)],
            );
        }
        self.c.say(&intro, &[event_source(ev)]);
        self.say_findings(ev, &shown, true);
        let info = ev.findings.len() - ev.findings.iter().filter(|f| is_drift(f)).count();
        if info > 0 {
            self.c.say(
                &format!(
                    "It also records {} to notebooks or data files, which are your own work rather than drift.",
                    count(info, "edit")
                ),
                &[event_source(ev)],
            );
        }
        Outcome {
            package: focus
                .filter(|_| !focus_missing)
                .map(str::to_string)
                .or_else(|| first_package(&shown)),
            event_id: Some(ev.id),
            recommendations: Vec::new(),
        }
    }

    /// Whether to roll back, and the recommendation.
    async fn advise(
        &mut self,
        config: &EnvironmentConfigView,
        ev: &DriftEventView,
        session: &SessionState,
        asked_rollback: bool,
    ) -> ToolResult<Outcome> {
        let critical: Vec<&Finding> = ev
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Critical)
            .collect();
        let drift: Vec<&Finding> = ev.findings.iter().filter(|f| is_drift(f)).collect();
        let date = when(ev.detected_at);
        let (opening, shown) = match (critical.is_empty(), asked_rollback) {
            (false, true) => (
                format!(
                    "Yes: the drift detected in {} on {date} is critical.",
                    config.name
                ),
                &critical,
            ),
            (false, false) => (
                format!(
                    "The drift detected in {} on {date} is critical.",
                    config.name
                ),
                &critical,
            ),
            (true, true) => (
                format!(
                    "No rollback is needed: the drift detected in {} on {date} is minor.",
                    config.name
                ),
                &drift,
            ),
            (true, false) => (
                format!("The drift detected in {} on {date} is minor.", config.name),
                &drift,
            ),
        };
        self.c.say(&opening, &[event_source(ev)]);
        self.say_findings(ev, shown, false);
        self.c.paragraph();
        let recommendations = self.recommend(config, ev, session).await?;
        Ok(Outcome {
            package: first_package(shown),
            event_id: Some(ev.id),
            recommendations,
        })
    }

    /// Which notebooks use a package, or which are at risk.
    async fn notebooks_answer(
        &mut self,
        config: &EnvironmentConfigView,
        events: &[DriftEventView],
        package: Option<String>,
    ) -> ToolResult<Outcome> {
        let notebooks = self.notebooks().await?;
        let Some(p) = package else {
            let Some(ev) = pick_event(events, None) else {
                self.c.say(
                    &format!(
                        "No drift has been detected in {}, so no notebook is at risk.",
                        config.name
                    ),
                    &[environment_source(config)],
                );
                return Ok(Outcome::default());
            };
            let drift: Vec<&Finding> = ev.findings.iter().filter(|f| is_drift(f)).collect();
            let critical = self.say_notebooks_at_risk(ev, &drift, &notebooks);
            self.c.paragraph();
            self.say_risk(ev, critical);
            return Ok(Outcome {
                package: first_package(&drift),
                event_id: Some(ev.id),
                recommendations: Vec::new(),
            });
        };

        let changed = latest_change(events, &p);
        let affected: BTreeSet<&str> = changed
            .map(|(_, f)| f.affected_notebooks.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let users: Vec<&NotebookView> = notebooks
            .iter()
            .filter(|nb| {
                affected.contains(nb.path.as_str())
                    || nb.imports.iter().any(|m| import_name_matches(m, &p))
            })
            .collect();
        if users.is_empty() {
            self.c.say(
                &format!("No notebook in {} imports {p}.", config.name),
                &[environment_source(config)],
            );
        } else {
            self.c.say(&format!("Notebooks that use {p}:"), &[]);
            for nb in users.iter().take(MAX_NOTEBOOKS) {
                let modules: Vec<String> = nb
                    .imports
                    .iter()
                    .filter(|m| import_name_matches(m, &p))
                    .cloned()
                    .collect();
                let how = if modules.is_empty() {
                    format!("depends on {p}")
                } else {
                    format!("imports {}", list(&modules))
                };
                let mut sources = vec![notebook_source(nb)];
                if let Some((ev, _)) = changed.filter(|_| affected.contains(nb.path.as_str())) {
                    sources.push(event_source(ev));
                }
                self.c.bullet(&format!("{} {how}.", nb.path), &sources);
            }
            if users.len() > MAX_NOTEBOOKS {
                self.c.say(
                    &format!(
                        "And {} more.",
                        count(users.len() - MAX_NOTEBOOKS, "notebook")
                    ),
                    &[environment_source(config)],
                );
            }
        }
        let event_id = match changed {
            Some((ev, f)) if is_drift(f) => {
                self.c.paragraph();
                self.c.say(&describe(f), &[event_source(ev)]);
                let risk = if f.severity == Severity::Critical {
                    match users.len() {
                        0 => "Notebooks that import it are at risk until that is resolved.",
                        1 => "That notebook is at risk until that is resolved.",
                        _ => "Those notebooks are at risk until that is resolved.",
                    }
                } else {
                    "The change is minor, so the risk is low."
                };
                self.c.say(risk, &[event_source(ev)]);
                Some(ev.id)
            }
            _ => None,
        };
        Ok(Outcome {
            package: Some(p),
            event_id,
            recommendations: Vec::new(),
        })
    }

    /// What the package's metadata says about its latest change.
    async fn changelog_answer(
        &mut self,
        config: &EnvironmentConfigView,
        events: &[DriftEventView],
        package: Option<String>,
    ) -> ToolResult<Outcome> {
        let Some(p) = package else {
            self.c.say(
                "Which package? Ask for example \"changelog requests\".",
                &[],
            );
            return Ok(Outcome::default());
        };
        let changed = latest_change(events, &p);
        let (old, new) = changed
            .map(|(_, f)| (f.before.as_deref(), f.after.as_deref()))
            .unwrap_or((None, None));
        let changelog = self.changelog(&p, old, new).await;
        let fallback = match changed {
            Some((ev, f)) => {
                self.c.say(&describe(f), &[event_source(ev)]);
                Some(event_source(ev))
            }
            None => {
                self.c.say(
                    &format!("No drift event since the baseline changed {p}."),
                    &[environment_source(config)],
                );
                None
            }
        };
        match &changelog {
            Some(cl) if cl.metadata_path.is_some() || changed.is_some() => {
                self.say_changelog(config, cl, fallback.as_ref());
                if cl.changelog_url.is_none() {
                    if let (Some(m), Some(url)) = (
                        metadata_source(cl),
                        cl.home_page
                            .as_ref()
                            .or(cl.project_urls.first().map(|u| &u.url)),
                    ) {
                        self.c.say(
                            &format!("It names no changelog; its project page is {url}."),
                            &[m],
                        );
                    }
                }
            }
            _ => self.c.say(
                &format!("I found no installed metadata for {p}."),
                &[environment_source(config)],
            ),
        }
        Ok(Outcome {
            package: Some(p),
            event_id: changed.map(|(ev, _)| ev.id),
            recommendations: Vec::new(),
        })
    }

    /// How two snapshots differ.
    async fn compare(
        &mut self,
        config: &EnvironmentConfigView,
        before: &SnapshotSummary,
        after: &SnapshotSummary,
    ) -> ToolResult<Outcome> {
        let findings = self.comparison(before.id, after.id).await?;
        let drift: Vec<&Finding> = findings.iter().filter(|f| is_drift(f)).collect();
        let sources = [snapshot_source(before), snapshot_source(after)];
        let (b, a) = (
            format!("{} ({})", before.id, when(before.created_at)),
            format!("{} ({})", after.id, when(after.created_at)),
        );
        if drift.is_empty() {
            self.c.say(
                &format!(
                    "Snapshots {b} and {a} of {} do not differ in Python, packages, kernels, extensions or configuration.",
                    config.name
                ),
                &sources,
            );
        } else {
            self.c.say(
                &format!(
                    "From snapshot {b} to snapshot {a} there are {}:",
                    count(drift.len(), "change")
                ),
                &sources,
            );
            for f in drift.iter().take(MAX_FINDINGS) {
                self.c.bullet(&describe(f), &sources);
            }
            if drift.len() > MAX_FINDINGS {
                self.c.say(
                    &format!("And {} more.", count(drift.len() - MAX_FINDINGS, "change")),
                    &sources,
                );
            }
        }
        Ok(Outcome {
            package: first_package(&drift),
            ..Outcome::default()
        })
    }
}

fn severity_count(ev: &DriftEventView, s: Severity) -> usize {
    ev.findings.iter().filter(|f| f.severity == s).count()
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// The first package among `findings` (most severe first, as sorted).
fn first_package(findings: &[&Finding]) -> Option<String> {
    findings
        .iter()
        .find(|f| is_package(f.kind))
        .map(|f| f.subject.clone())
}

/// The event an answer is about: the latest with drift that changed
/// `focus`, else the latest with drift. `events` is newest first.
fn pick_event<'e>(events: &'e [DriftEventView], focus: Option<&str>) -> Option<&'e DriftEventView> {
    let with_drift = || events.iter().filter(|e| e.findings.iter().any(is_drift));
    // Only the latest event says where the environment stands now: an event
    // without drift after older ones means it is stable again.
    let latest = events.first()?;
    if !latest.findings.iter().any(is_drift) {
        return None;
    }
    focus
        .and_then(|p| {
            with_drift().find(|e| {
                e.findings
                    .iter()
                    .any(|f| is_drift(f) && is_package(f.kind) && f.subject == p)
            })
        })
        .or(Some(latest))
}

/// The latest package finding on `package`, with its event.
fn latest_change<'e>(
    events: &'e [DriftEventView],
    package: &str,
) -> Option<(&'e DriftEventView, &'e Finding)> {
    events.iter().find_map(|e| {
        e.findings
            .iter()
            .find(|f| is_package(f.kind) && f.subject == package)
            .map(|f| (e, f))
    })
}

/// Two snapshots named in the question (oldest first), or one and the
/// latest snapshot.
fn snapshots_named(
    q: &Question,
    config: &EnvironmentConfigView,
) -> Option<(SnapshotSummary, SnapshotSummary)> {
    let mut named: Vec<&SnapshotSummary> = config
        .snapshots
        .iter()
        .chain(config.latest_snapshot.as_ref())
        .filter(|s| q.lower().contains(&s.id.to_string()))
        .collect();
    named.sort_by_key(|s| (s.created_at, s.id));
    named.dedup_by_key(|s| s.id);
    match named.as_slice() {
        [] => None,
        [one] => {
            let latest = config.latest_snapshot.as_ref()?;
            (latest.id != one.id).then(|| {
                if one.created_at <= latest.created_at {
                    ((*one).clone(), latest.clone())
                } else {
                    (latest.clone(), (*one).clone())
                }
            })
        }
        [first, .., last] => Some(((*first).clone(), (*last).clone())),
    }
}
