//! The Drift Analyzer's local engine end to end, over an in-memory
//! [`DriftTools`].
//!
//! A fake is acceptable here: `DriftTools` is our own port, and what is
//! under test is the engine's behaviour over whatever the port returns. The
//! fake's package metadata is real, though: it answers
//! `GetPackageChangelog` with [`changelog_for`] over a temp site-packages
//! holding a hand-written `METADATA`, as the service does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod changelog;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use westtek_assist::*;
use westtek_domain::{DriftStatus, EnvironmentId, EventId, LabId, SnapshotId, UserId};
use westtek_inventory::{Change, Finding, FindingKind, Severity, VersionDistance};

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, day, hour, 0, 0).unwrap()
}

const ANALYSIS: &str = "home/analysis.ipynb";
const PLOTS: &str = "home/plots.ipynb";
const SERVER_CONFIG: &str = "jupyter/config/jupyter_server_config.json";
const REQUESTS_METADATA: &str = "Metadata-Version: 2.1
Name: requests
Version: 3.0.0
Summary: Python HTTP for Humans.
Home-page: https://requests.readthedocs.io
Requires-Python: >=3.9
Project-URL: Documentation, https://requests.readthedocs.io
Project-URL: Source, https://github.com/psf/requests
Project-URL: Changelog, https://github.com/psf/requests/blob/main/HISTORY.md
Requires-Dist: charset_normalizer<4,>=2
Requires-Dist: idna<4,>=2.5

# Requests

Summary: this is the long description, not a header.
";

fn finding(
    kind: FindingKind,
    subject: &str,
    before: Option<&str>,
    after: Option<&str>,
    distance: Option<VersionDistance>,
    severity: Severity,
    notebooks: &[&str],
) -> Finding {
    Finding {
        kind,
        subject: subject.into(),
        before: before.map(Into::into),
        after: after.map(Into::into),
        distance,
        severity,
        affected_notebooks: notebooks.iter().map(|s| s.to_string()).collect(),
    }
}

/// The data behind the fake tools.
struct Fixture {
    lab: LabId,
    env: EnvironmentId,
    baseline: SnapshotSummary,
    latest: SnapshotSummary,
    critical: DriftEventView,
    minor: DriftEventView,
    site_packages: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let env = EnvironmentId::new();
        let baseline = SnapshotSummary {
            id: SnapshotId::new(),
            created_at: at(1, 9),
            notes: Some("paper submission".into()),
        };
        let latest = SnapshotSummary {
            id: SnapshotId::new(),
            created_at: at(5, 9),
            notes: None,
        };
        let minor = DriftEventView {
            id: EventId::new(),
            environment_id: env,
            detected_at: at(10, 12),
            status: DriftStatus::MinorDrift,
            severity: Severity::Minor,
            findings: vec![
                finding(
                    FindingKind::PackageAdded,
                    "black",
                    None,
                    Some("24.1.0"),
                    None,
                    Severity::Minor,
                    &[],
                ),
                finding(
                    FindingKind::ConfigChanged(Change::Modified),
                    SERVER_CONFIG,
                    Some("aaaa"),
                    Some("bbbb"),
                    None,
                    Severity::Minor,
                    &[],
                ),
            ],
        };
        let critical = DriftEventView {
            id: EventId::new(),
            environment_id: env,
            detected_at: at(15, 9),
            status: DriftStatus::CriticalDrift,
            severity: Severity::Critical,
            findings: vec![
                finding(
                    FindingKind::PackageUpgraded,
                    "requests",
                    Some("2.32.3"),
                    Some("3.0.0"),
                    Some(VersionDistance::Major),
                    Severity::Critical,
                    &[ANALYSIS],
                ),
                finding(
                    FindingKind::PackageUpgraded,
                    "tqdm",
                    Some("4.66.1"),
                    Some("4.66.4"),
                    Some(VersionDistance::Patch),
                    Severity::Minor,
                    &[],
                ),
                finding(
                    FindingKind::NotebookChanged,
                    PLOTS,
                    Some("h1"),
                    Some("h2"),
                    None,
                    Severity::Info,
                    &[PLOTS],
                ),
            ],
        };
        let site_packages = tempfile::tempdir().unwrap();
        let dist = site_packages.path().join("requests-3.0.0.dist-info");
        std::fs::create_dir(&dist).unwrap();
        std::fs::write(dist.join("METADATA"), REQUESTS_METADATA).unwrap();
        Fixture {
            lab: LabId::new(),
            env,
            baseline,
            latest,
            critical,
            minor,
            site_packages,
        }
    }

    fn config(&self) -> EnvironmentConfigView {
        EnvironmentConfigView {
            environment_id: self.env,
            name: "genomics-env".into(),
            python_version: "3.11.9".into(),
            baseline_snapshot_id: Some(self.baseline.id),
            latest_snapshot: Some(self.latest.clone()),
            snapshots: vec![self.latest.clone(), self.baseline.clone()],
            drift_status: DriftStatus::CriticalDrift,
            jupyter_version: Some("4.2.5".into()),
            kernels: vec!["python3".into()],
        }
    }

    fn notebooks(&self) -> Vec<NotebookView> {
        vec![
            NotebookView {
                path: ANALYSIS.into(),
                imports: vec!["json".into(), "pandas".into(), "requests".into()],
            },
            NotebookView {
                path: PLOTS.into(),
                imports: vec!["matplotlib".into(), "numpy".into()],
            },
        ]
    }
}

/// In-memory [`DriftTools`] over a [`Fixture`], recording its calls.
struct FakeTools {
    fx: Fixture,
    events: Vec<DriftEventView>,
    calls: Mutex<Vec<&'static str>>,
    fail_events: bool,
}

impl FakeTools {
    fn new(fx: Fixture, events: impl Fn(&Fixture) -> Vec<DriftEventView>) -> Self {
        let events = events(&fx);
        FakeTools {
            fx,
            events,
            calls: Mutex::new(Vec::new()),
            fail_events: false,
        }
    }

    fn record(&self, action: DriftAction) {
        self.calls.lock().unwrap().push(action.name());
    }

    fn calls_of(&self, action: DriftAction) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| **c == action.name())
            .count()
    }

    fn check(&self, scope: &ToolScope, env: EnvironmentId) -> Result<(), ToolError> {
        if scope.lab_id == self.fx.lab && env == self.fx.env {
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
            id: uuid::Uuid::new_v4(),
            environment_id: env,
            kind,
            reason: reason.into(),
            created_at: Utc::now(),
        }
    }
}

/// Gives way once, as a database round trip would, so the tests see the
/// engine's stream interleave with its tool calls.
async fn pending() {
    tokio::task::yield_now().await;
}

#[async_trait]
impl DriftTools for FakeTools {
    async fn get_drift_events(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DriftEventView>, ToolError> {
        pending().await;
        self.record(DriftAction::GetDriftEvents);
        self.check(scope, environment_id)?;
        if self.fail_events {
            return Err(ToolError::Failed("disk on fire at /var/lib/westtek".into()));
        }
        Ok(self
            .events
            .iter()
            .filter(|e| since.is_none_or(|s| e.detected_at >= s))
            .filter(|e| until.is_none_or(|u| e.detected_at <= u))
            .cloned()
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
        pending().await;
        self.record(DriftAction::GetPackageChangelog);
        self.check(scope, environment_id)?;
        Ok(changelog_for(
            self.fx.site_packages.path(),
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
        pending().await;
        self.record(DriftAction::GetEnvironmentNotebooks);
        self.check(scope, environment_id)?;
        Ok(self.fx.notebooks())
    }

    async fn get_snapshot_comparison(
        &self,
        scope: &ToolScope,
        before: SnapshotId,
        after: SnapshotId,
    ) -> Result<Vec<Finding>, ToolError> {
        pending().await;
        self.record(DriftAction::GetSnapshotComparison);
        self.check(scope, self.fx.env)?;
        let known = [self.fx.baseline.id, self.fx.latest.id];
        if !known.contains(&before) || !known.contains(&after) {
            return Err(ToolError::NotFound("snapshot".into()));
        }
        Ok(self.fx.minor.findings.clone())
    }

    async fn get_environment_config(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
    ) -> Result<EnvironmentConfigView, ToolError> {
        pending().await;
        self.record(DriftAction::GetEnvironmentConfig);
        self.check(scope, environment_id)?;
        Ok(self.fx.config())
    }

    async fn create_snapshot_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        pending().await;
        self.record(DriftAction::CreateSnapshotRecommendation);
        self.check(scope, environment_id)?;
        Ok(self.recommendation(environment_id, RecommendationKind::Snapshot, reason))
    }

    async fn create_rollback_recommendation(
        &self,
        scope: &ToolScope,
        environment_id: EnvironmentId,
        target_snapshot_id: SnapshotId,
        reason: &str,
    ) -> Result<Recommendation, ToolError> {
        pending().await;
        self.record(DriftAction::CreateRollbackRecommendation);
        self.check(scope, environment_id)?;
        Ok(self.recommendation(
            environment_id,
            RecommendationKind::Rollback { target_snapshot_id },
            reason,
        ))
    }
}

struct Harness {
    tools: Arc<FakeTools>,
    agent: LocalDriftAnalyzer,
    user: UserId,
}

impl Harness {
    fn new(events: impl Fn(&Fixture) -> Vec<DriftEventView>) -> Self {
        Self::with(FakeTools::new(Fixture::new(), events))
    }

    fn with(tools: FakeTools) -> Self {
        let tools = Arc::new(tools);
        let agent = LocalDriftAnalyzer::new(tools.clone(), Arc::new(SessionStore::default()));
        Harness {
            tools,
            agent,
            user: UserId::new(),
        }
    }

    fn fx(&self) -> &Fixture {
        &self.tools.fx
    }

    fn request(&self, session: &str, question: &str) -> AgentRequest {
        AgentRequest {
            agent: AgentKind::DriftAnalyzer,
            session_id: session.into(),
            lab_id: self.fx().lab,
            environment_id: Some(self.fx().env),
            input_text: question.into(),
            caller: CallerRef {
                user_id: self.user,
                display_name: "Dr. Ada".into(),
            },
        }
    }

    async fn send(&self, req: AgentRequest) -> Vec<AgentChunk> {
        let stream = self.agent.invoke(req).await.unwrap();
        let chunks: Vec<AgentChunk> = stream.collect().await;
        self.check_chunks(&chunks);
        chunks
    }

    async fn ask(&self, session: &str, question: &str) -> Vec<AgentChunk> {
        self.send(self.request(session, question)).await
    }

    /// What every answer must satisfy: it ends in exactly one Done or
    /// Error; every citation covers text already sent and points at a
    /// source that exists; every tool call is answered by its result.
    fn check_chunks(&self, chunks: &[AgentChunk]) {
        let ends = chunks
            .iter()
            .filter(|c| matches!(c, AgentChunk::Done { .. } | AgentChunk::Error { .. }))
            .count();
        assert_eq!(ends, 1, "{chunks:#?}");
        assert!(matches!(
            chunks.last(),
            Some(AgentChunk::Done { .. } | AgentChunk::Error { .. })
        ));
        let mut answer = String::new();
        let mut pending_tool: Option<String> = None;
        for c in chunks {
            match c {
                AgentChunk::Text { text } => answer.push_str(text),
                AgentChunk::Citation {
                    index,
                    source,
                    text_span: (start, end),
                } => {
                    assert!(*index >= 1);
                    assert!(start < end, "empty span {start}..{end}");
                    let claim = answer
                        .get(*start..*end)
                        .unwrap_or_else(|| panic!("span {start}..{end} outside {answer:?}"));
                    assert!(!claim.trim().is_empty());
                    assert!(
                        self.source_exists(source),
                        "citation of a missing source {source:?}"
                    );
                }
                AgentChunk::ToolCall { name, .. } => {
                    assert!(pending_tool.is_none());
                    assert!(DriftAction::from_name(name).is_some(), "{name}");
                    pending_tool = Some(name.clone());
                }
                AgentChunk::ToolResult { name, .. } => {
                    assert_eq!(pending_tool.take().as_deref(), Some(name.as_str()));
                }
                _ => {}
            }
        }
        assert!(pending_tool.is_none());
    }

    fn source_exists(&self, s: &SourceRef) -> bool {
        let fx = self.fx();
        match s.kind {
            SourceKind::DriftEvent => [fx.critical.id, fx.minor.id]
                .iter()
                .any(|id| id.to_string() == s.id),
            SourceKind::Snapshot => [fx.baseline.id, fx.latest.id]
                .iter()
                .any(|id| id.to_string() == s.id),
            SourceKind::Notebook => fx.notebooks().iter().any(|n| n.path == s.id),
            SourceKind::PackageMetadata => fx.site_packages.path().join(&s.id).is_file(),
            SourceKind::Config => s.id == fx.env.to_string() || s.id == SERVER_CONFIG,
            SourceKind::Document => false,
        }
    }
}

fn answer(chunks: &[AgentChunk]) -> String {
    AgentChunk::answer_text(chunks)
}

fn recommendations(chunks: &[AgentChunk]) -> Vec<&Recommendation> {
    chunks
        .iter()
        .filter_map(|c| match c {
            AgentChunk::Recommendation { recommendation } => Some(recommendation),
            _ => None,
        })
        .collect()
}

fn tool_calls(chunks: &[AgentChunk]) -> Vec<&str> {
    chunks
        .iter()
        .filter_map(|c| match c {
            AgentChunk::ToolCall { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

fn both(fx: &Fixture) -> Vec<DriftEventView> {
    vec![fx.minor.clone(), fx.critical.clone()]
}

#[tokio::test]
async fn critical_drift_is_explained_and_a_rollback_to_the_baseline_is_recommended() {
    let h = Harness::new(both);
    let chunks = h.ask("chat-1", "Why did my environment drift?").await;
    let text = answer(&chunks);

    for expected in [
        "requests was upgraded from 2.32.3 to 3.0.0 — a major version jump",
        "breaking API changes",
        "home/analysis.ipynb imports requests, so it is at risk",
        "Risk: high",
        "https://github.com/psf/requests/blob/main/HISTORY.md",
        &format!("roll back to snapshot {}", h.fx().baseline.id),
        "`requests==2.32.3`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("plots.ipynb"), "{text}");

    let recs = recommendations(&chunks);
    assert_eq!(recs.len(), 1);
    assert_eq!(
        recs[0].kind,
        RecommendationKind::Rollback {
            target_snapshot_id: h.fx().baseline.id
        }
    );
    assert!(
        recs[0].reason.contains("requests==2.32.3"),
        "{}",
        recs[0].reason
    );
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateRollbackRecommendation),
        1
    );
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateSnapshotRecommendation),
        0
    );

    assert_eq!(
        tool_calls(&chunks),
        [
            "GetEnvironmentConfig",
            "GetDriftEvents",
            "GetPackageChangelog",
            "GetPackageChangelog",
            "GetEnvironmentNotebooks",
            "CreateRollbackRecommendation",
        ]
    );
    assert_eq!(
        chunks.last(),
        Some(&AgentChunk::Done {
            session_id: "chat-1".into()
        })
    );

    // The claims about the package rest on its metadata file, the at-risk
    // notebook on the notebook, the rollback on the baseline snapshot.
    let cited: Vec<(SourceKind, &str)> = chunks
        .iter()
        .filter_map(|c| match c {
            AgentChunk::Citation { source, .. } => Some((source.kind, source.id.as_str())),
            _ => None,
        })
        .collect();
    let baseline = h.fx().baseline.id.to_string();
    let event = h.fx().critical.id.to_string();
    for expected in [
        (
            SourceKind::PackageMetadata,
            "requests-3.0.0.dist-info/METADATA",
        ),
        (SourceKind::Notebook, ANALYSIS),
        (SourceKind::Snapshot, baseline.as_str()),
        (SourceKind::DriftEvent, event.as_str()),
    ] {
        assert!(cited.contains(&expected), "no citation of {expected:?}");
    }
}

#[tokio::test]
async fn every_sentence_of_an_explanation_is_cited() {
    let h = Harness::new(both);
    let chunks = h.ask("chat-1", "explain the drift").await;
    let text = answer(&chunks);
    let mut covered = vec![false; text.len()];
    for c in &chunks {
        if let AgentChunk::Citation {
            text_span: (s, e), ..
        } = c
        {
            covered[*s..*e].iter_mut().for_each(|b| *b = true);
        }
    }
    // Everything but separators and the lead-in of a list is cited.
    let uncited: String = text
        .char_indices()
        .filter(|(i, _)| !covered[*i])
        .map(|(_, c)| c)
        .collect();
    assert!(
        uncited.chars().all(|c| c.is_whitespace() || c == '-'),
        "uncited text: {uncited:?}"
    );
}

#[tokio::test]
async fn a_follow_up_resolves_it_to_the_package_last_discussed() {
    let h = Harness::new(both);
    h.ask("chat-2", "Why did my environment drift?").await;

    let chunks = h.ask("chat-2", "which notebooks use it?").await;
    let text = answer(&chunks);
    assert!(text.contains("Notebooks that use requests"), "{text}");
    assert!(
        text.contains("home/analysis.ipynb imports requests."),
        "{text}"
    );
    assert!(text.contains("That notebook is at risk"), "{text}");
    assert!(!text.contains("plots.ipynb"), "{text}");

    // A follow-up about rolling back shows the recommendation already
    // recorded instead of recording another.
    let chunks = h.ask("chat-2", "Should I roll back?").await;
    let text = answer(&chunks);
    assert!(text.starts_with("Yes: "), "{text}");
    assert_eq!(recommendations(&chunks).len(), 1);
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateRollbackRecommendation),
        1
    );

    // Another session knows nothing of "it".
    let chunks = h.ask("chat-3", "which notebooks use it?").await;
    assert!(!answer(&chunks).contains("Notebooks that use requests"));
}

#[tokio::test]
async fn a_follow_up_may_leave_out_the_environment() {
    let h = Harness::new(both);
    h.ask("chat-4", "what changed?").await;
    let mut req = h.request("chat-4", "changelog for it");
    req.environment_id = None;
    let text = answer(&h.send(req).await);
    assert!(text.contains("requests was upgraded"), "{text}");
    assert!(
        text.contains("describes it as \"Python HTTP for Humans\"."),
        "{text}"
    );
}

#[tokio::test]
async fn minor_drift_only_recommends_accepting_it_with_a_snapshot() {
    let h = Harness::new(|fx| vec![fx.minor.clone()]);
    let chunks = h.ask("chat-5", "Why did my environment drift?").await;
    let text = answer(&chunks);
    assert!(text.contains("black 24.1.0 was newly installed"), "{text}");
    assert!(
        text.contains(&format!(
            "The configuration file {SERVER_CONFIG} was modified"
        )),
        "{text}"
    );
    assert!(text.contains("Risk: low"), "{text}");
    assert!(text.contains("taking a snapshot"), "{text}");
    assert!(!text.contains("roll back"), "{text}");
    let recs = recommendations(&chunks);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].kind, RecommendationKind::Snapshot);
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateSnapshotRecommendation),
        1
    );
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateRollbackRecommendation),
        0
    );

    let text = answer(&h.ask("chat-5", "should I roll back?").await);
    assert!(text.starts_with("No rollback is needed"), "{text}");
}

#[tokio::test]
async fn without_drift_the_environment_is_stable_and_nothing_is_recommended() {
    let h = Harness::new(|_| Vec::new());
    let chunks = h.ask("chat-6", "Why did my environment drift?").await;
    let text = answer(&chunks);
    assert!(text.contains("genomics-env is stable"), "{text}");
    assert!(text.contains(&h.fx().baseline.id.to_string()), "{text}");
    assert!(text.contains("nothing to do"), "{text}");
    assert!(recommendations(&chunks).is_empty());
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateRollbackRecommendation),
        0
    );
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateSnapshotRecommendation),
        0
    );
}

#[tokio::test]
async fn events_before_the_baseline_are_not_asked_for() {
    let h = Harness::new(|fx| {
        let mut old = fx.critical.clone();
        old.detected_at = at(1, 1); // before the baseline of day 1, 9:00
        vec![old]
    });
    let text = answer(&h.ask("chat-7", "status?").await);
    assert!(text.contains("is stable"), "{text}");
}

#[tokio::test]
async fn what_changed_lists_the_latest_event() {
    let h = Harness::new(both);
    let chunks = h.ask("chat-8", "What changed?").await;
    let text = answer(&chunks);
    assert!(text.contains("has 2 changes:"), "{text}");
    assert!(
        text.contains("\n- requests was upgraded from 2.32.3 to 3.0.0"),
        "{text}"
    );
    assert!(
        text.contains("\n- tqdm was upgraded from 4.66.1 to 4.66.4 — a patch-level change"),
        "{text}"
    );
    assert!(text.contains("1 edit to notebooks or data files"), "{text}");
    assert!(recommendations(&chunks).is_empty());
}

#[tokio::test]
async fn a_named_package_picks_the_event_that_changed_it() {
    let h = Harness::new(both);
    let text = answer(&h.ask("chat-9", "why was black installed?").await);
    assert!(text.contains("black 24.1.0 was newly installed"), "{text}");
    assert!(!text.contains("requests was upgraded"), "{text}");
    assert!(
        text.contains("The same drift event has 1 other change as well."),
        "{text}"
    );
}

#[tokio::test]
async fn a_changelog_question_answers_from_the_package_metadata() {
    let h = Harness::new(both);
    let text = answer(&h.ask("chat-10", "changelog requests").await);
    assert!(
        text.contains("requests was upgraded from 2.32.3 to 3.0.0"),
        "{text}"
    );
    assert!(
        text.contains(
            "Its release notes are at https://github.com/psf/requests/blob/main/HISTORY.md."
        ),
        "{text}"
    );
    let text = answer(&h.ask("chat-10", "changelog numpy").await);
    assert!(
        text.contains("No drift event since the baseline changed numpy."),
        "{text}"
    );
    assert!(
        text.contains("I found no installed metadata for numpy."),
        "{text}"
    );
}

#[tokio::test]
async fn two_snapshot_ids_ask_for_a_comparison() {
    let h = Harness::new(both);
    let q = format!("compare {} and {}", h.fx().latest.id, h.fx().baseline.id);
    let chunks = h.ask("chat-11", &q).await;
    let text = answer(&chunks);
    assert_eq!(h.tools.calls_of(DriftAction::GetSnapshotComparison), 1);
    assert!(
        text.starts_with(&format!("From snapshot {} ", h.fx().baseline.id)),
        "{text}"
    );
    assert!(text.contains("black 24.1.0 was newly installed"), "{text}");
}

#[tokio::test]
async fn an_unknown_question_gets_what_can_be_asked() {
    let h = Harness::new(both);
    let chunks = h.ask("chat-12", "tell me a joke").await;
    let text = answer(&chunks);
    assert!(text.starts_with("I can explain drift"), "{text}");
    assert!(text.contains("should I roll back?"));
    assert!(!chunks
        .iter()
        .any(|c| matches!(c, AgentChunk::Citation { .. })));
}

#[tokio::test]
async fn the_same_question_gets_the_same_answer() {
    let h = Harness::new(both);
    let a = answer(&h.ask("chat-13", "why did it drift?").await);
    let b = answer(&h.ask("chat-14", "why did it drift?").await);
    assert_eq!(a, b);
}

#[tokio::test]
async fn critical_drift_is_analysed_without_a_question() {
    let h = Harness::new(both);
    let scope = ToolScope {
        lab_id: h.fx().lab,
        actor: None,
    };
    let chunks = h.agent.analyze_event(scope, h.fx().critical.clone()).await;
    h.check_chunks(&chunks);
    let text = answer(&chunks);
    assert!(
        text.contains("requests was upgraded from 2.32.3 to 3.0.0"),
        "{text}"
    );
    assert!(text.contains("home/analysis.ipynb"), "{text}");
    assert_eq!(recommendations(&chunks).len(), 1);
    assert_eq!(
        chunks.last(),
        Some(&AgentChunk::Done {
            session_id: format!("drift-event-{}", h.fx().critical.id)
        })
    );
    assert!(!tool_calls(&chunks).contains(&"GetDriftEvents"));
}

#[tokio::test]
async fn a_tool_failure_ends_the_stream_with_a_generic_error() {
    let mut tools = FakeTools::new(Fixture::new(), both);
    tools.fail_events = true;
    let h = Harness::with(tools);
    let chunks = h.ask("chat-15", "why?").await;
    let Some(AgentChunk::Error { code, message }) = chunks.last() else {
        panic!("{chunks:#?}");
    };
    assert_eq!(code, "tool_failed");
    assert!(!message.contains("disk on fire"));
    assert!(!message.contains("/var/lib"));
}

#[tokio::test]
async fn another_labs_environment_is_not_found() {
    let h = Harness::new(both);
    let mut req = h.request("chat-16", "why?");
    req.lab_id = LabId::new();
    let chunks = h.send(req).await;
    assert!(
        matches!(chunks.last(), Some(AgentChunk::Error { code, .. }) if code == "not_found"),
        "{chunks:#?}"
    );
}

#[tokio::test]
async fn requests_the_agent_cannot_serve_are_refused_up_front() {
    let h = Harness::new(both);
    let mut req = h.request("chat-17", "why?");
    req.agent = AgentKind::KnowledgeTransfer;
    assert!(matches!(
        h.agent.invoke(req).await,
        Err(AssistError::WrongAgent { .. })
    ));
    let mut req = h.request("fresh-session", "why?");
    req.environment_id = None;
    assert!(matches!(
        h.agent.invoke(req).await,
        Err(AssistError::MissingEnvironment)
    ));
    let req = h.request("a b", "why?");
    assert!(matches!(
        h.agent.invoke(req).await,
        Err(AssistError::InvalidSessionId)
    ));
    let req = h.request("chat-17", "   ");
    assert!(matches!(
        h.agent.invoke(req).await,
        Err(AssistError::EmptyInput)
    ));
}

#[tokio::test]
async fn chunks_stream_as_the_work_happens() {
    let h = Harness::new(both);
    let mut stream = h.agent.invoke(h.request("chat-18", "why?")).await.unwrap();
    // The first chunk is the first tool call, before anything is answered.
    let first = stream.next().await.unwrap();
    assert!(
        matches!(&first, AgentChunk::ToolCall { name, .. } if name == "GetEnvironmentConfig"),
        "{first:?}"
    );
    // Dropping the stream abandons the answer: nothing is recorded.
    drop(stream);
    assert_eq!(
        h.tools.calls_of(DriftAction::CreateRollbackRecommendation),
        0
    );
}

#[test]
fn the_fixture_metadata_is_found_by_any_spelling_of_the_name() {
    let fx = Fixture::new();
    let m = read_package_metadata(fx.site_packages.path(), "Requests").unwrap();
    assert_eq!(m.new_version.as_deref(), Some("3.0.0"));
    assert!(Path::new(&fx.site_packages.path().join(m.metadata_path.unwrap())).is_file());
}
