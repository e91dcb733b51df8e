//! The Knowledge Transfer agent's local engine: deterministic, no model.
//!
//! It answers from the environment's knowledge documents through the
//! seed's tools (GetEnvironmentDetails, GetSnapshotHistory, GetDriftHistory,
//! GetResearcherProfile, GetPackageInstallHistory, GetTransferPackage,
//! GetOnboardingChecklist), each of which returns lines of stored documents
//! with their byte spans, and falls back to BM25 retrieval over the lab's
//! knowledge base. Every sentence that states a fact cites the document
//! span it was read from; when nothing answers the question the agent says
//! it does not know.
//!
//! Policy: a caller who sees the environment through a share or a handover
//! (not a member of its lab) gets only that environment's documents, never
//! the rest of the owning lab's.

use crate::sync::HistoryEntry;
use crate::KnowledgeService;
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::json;
use std::sync::Arc;
use westtek_assist::{
    Agent, AgentChunk, AgentKind, AgentRequest, Composer, Result as AssistResult, SessionKey,
    SessionState, SourceKind, SourceRef, Turn,
};
use westtek_domain::{Environment, Result};
use westtek_knowledge::DocPath;

/// Hits the retrieval fallback cites at most.
const MAX_PASSAGES: usize = 3;

/// One line of a stored document and where it is.
#[derive(Clone, Debug)]
struct Line {
    path: String,
    title: String,
    start: usize,
    end: usize,
    text: String,
}

impl Line {
    fn source(&self) -> SourceRef {
        SourceRef {
            kind: SourceKind::Document,
            id: self.path.clone(),
            span: Some((self.start, self.end)),
            title: self.title.clone(),
        }
    }
}

/// The lines of `text` with their byte spans (newline excluded).
fn lines_of(path: &str, title: &str, text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        let body = l.strip_suffix('\n').unwrap_or(l);
        if !body.trim().is_empty() {
            out.push(Line {
                path: path.to_string(),
                title: title.to_string(),
                start: at,
                end: at + body.len(),
                text: body.to_string(),
            });
        }
        at += l.len();
    }
    out
}

/// The lines under `## heading` of a Markdown document.
fn section<'a>(lines: &'a [Line], heading: &str) -> Vec<&'a Line> {
    let mut inside = false;
    let mut out = Vec::new();
    for l in lines {
        if let Some(h) = l.text.strip_prefix("## ") {
            inside = h.trim().starts_with(heading);
            continue;
        }
        if inside {
            out.push(l);
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Words of a question, lower case.
fn words(q: &str) -> Vec<String> {
    q.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .map(|w| w.trim_matches('.').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// A month (1–12) and maybe a year named in the question: a month name
/// or a 3+ letter abbreviation after "in", "during", "since", … or before a
/// year ("may I …" is not May).
fn month_of(words: &[String]) -> Option<(u32, Option<i32>)> {
    const BEFORE: [&str; 10] = [
        "in", "during", "since", "before", "after", "of", "from", "until", "by", "early",
    ];
    let is_year = |w: &str| w.parse::<i32>().ok().filter(|y| (1990..=2200).contains(y));
    let month = words.iter().enumerate().find_map(|(i, w)| {
        let m = MONTHS
            .iter()
            .position(|m| w == m || (w.len() >= 3 && w != "mar" && m.starts_with(w.as_str())))?;
        let prev = i.checked_sub(1).and_then(|p| words.get(p));
        let next = words.get(i + 1);
        let anchored = prev.is_some_and(|p| BEFORE.contains(&p.as_str()))
            || next.is_some_and(|n| is_year(n).is_some());
        anchored.then(|| u32::try_from(m + 1).ok()).flatten()
    })?;
    let year = words.iter().find_map(|w| is_year(w));
    Some((month, year))
}

/// What the question asks for.
#[derive(Default, Debug)]
struct Intent {
    package: Option<String>,
    month: Option<(u32, Option<i32>)>,
    why: bool,
    version: bool,
    onboarding: bool,
    drift: bool,
    owner: bool,
    snapshots: bool,
    notebooks: bool,
    package_download: bool,
}

fn has(words: &[String], any: &[&str]) -> bool {
    words.iter().any(|w| any.iter().any(|a| w == a))
}

fn intent(question: &str, known_packages: &[String], session: &SessionState) -> Intent {
    let w = words(question);
    let package = w
        .iter()
        .map(|x| westtek_inventory::normalize_name(x))
        .find(|x| known_packages.iter().any(|p| p == x))
        .or_else(|| {
            // "it" is the package last discussed, unless the question is
            // about something else the agent knows.
            let other = has(
                &w,
                &[
                    "who",
                    "owner",
                    "owns",
                    "onboarding",
                    "checklist",
                    "started",
                    "snapshots",
                    "notebooks",
                ],
            );
            if !other && has(&w, &["it", "its", "that", "this"]) {
                session.package.clone()
            } else {
                None
            }
        });
    Intent {
        month: month_of(&w),
        why: has(&w, &["why", "reason", "because"]),
        version: has(&w, &["version", "versions", "which", "what"]) && package.is_some(),
        onboarding: has(
            &w,
            &[
                "onboard",
                "onboarding",
                "checklist",
                "start",
                "started",
                "begin",
                "first",
                "steps",
            ],
        ),
        drift: has(
            &w,
            &[
                "drift", "drifted", "broke", "broken", "break", "changed", "change", "changes",
            ],
        ),
        owner: has(
            &w,
            &["who", "owner", "owns", "researcher", "built", "maintains"],
        ),
        snapshots: has(&w, &["snapshot", "snapshots", "backup", "backups"]),
        notebooks: has(&w, &["notebook", "notebooks", "order", "run"]),
        package_download: has(&w, &["package", "zip", "handover", "transfer", "download"]),
        package,
    }
}

/// The Knowledge Transfer agent for one environment.
pub struct LocalKnowledgeAgent {
    svc: Arc<KnowledgeService>,
    env: Environment,
    /// The caller may read the whole lab's documents (a member), or only
    /// this environment's (a share or a handover grant).
    whole_lab: bool,
}

impl LocalKnowledgeAgent {
    /// An agent answering about `env`.
    pub fn new(svc: Arc<KnowledgeService>, env: Environment, whole_lab: bool) -> Self {
        LocalKnowledgeAgent {
            svc,
            env,
            whole_lab,
        }
    }
}

struct Work {
    svc: Arc<KnowledgeService>,
    env: Environment,
    whole_lab: bool,
    c: Composer,
}

impl Work {
    async fn doc_lines(&self, path: &DocPath, title: &str) -> Result<Vec<Line>> {
        Ok(self
            .svc
            .get_text(path)
            .await?
            .map(|t| lines_of(path.as_str(), title, &t))
            .unwrap_or_default())
    }

    async fn summary(&self) -> Result<Vec<Line>> {
        self.doc_lines(
            &DocPath::environment_summary(self.env.id),
            &format!("Summary of {}", self.env.name.as_str()),
        )
        .await
    }

    fn tool(&self, name: &str, input: serde_json::Value) {
        self.c.tool_call(name, input);
    }

    /// GetEnvironmentDetails / GetResearcherProfile / GetSnapshotHistory /
    /// GetDriftHistory / GetOnboardingChecklist / GetTransferPackage all
    /// read the generated summary; each names its section.
    fn summary_section<'a>(&self, tool: &str, lines: &'a [Line], heading: &str) -> Vec<&'a Line> {
        self.tool(tool, json!({ "environment_id": self.env.id.to_string() }));
        let out: Vec<&Line> = if heading.is_empty() {
            // The header block: the lines before the first section.
            lines
                .iter()
                .take_while(|l| !l.text.starts_with("## "))
                .filter(|l| l.text.starts_with("- "))
                .collect()
        } else {
            section(lines, heading)
        };
        self.c.tool_result(tool, format!("{} lines", out.len()));
        out
    }

    async fn history(&self, package: &str) -> Result<Vec<(HistoryEntry, Line)>> {
        self.tool(
            "GetPackageInstallHistory",
            json!({ "environment_id": self.env.id.to_string(), "package": package }),
        );
        let lines = self
            .doc_lines(
                &DocPath::installation_history(self.env.id),
                &format!("Installation history of {}", self.env.name.as_str()),
            )
            .await?;
        let out: Vec<(HistoryEntry, Line)> = lines
            .into_iter()
            .filter_map(|l| {
                serde_json::from_str::<HistoryEntry>(&l.text)
                    .ok()
                    .map(|h| (h, l))
            })
            .filter(|(h, _)| h.package == package)
            .collect();
        self.c
            .tool_result("GetPackageInstallHistory", format!("{} entries", out.len()));
        Ok(out)
    }

    /// The manifest line naming `package` in each complete snapshot, oldest first.
    async fn versions(&self, package: &str) -> Result<Vec<(DateTime<Utc>, String, Line)>> {
        self.tool(
            "GetSnapshotHistory",
            json!({ "environment_id": self.env.id.to_string() }),
        );
        let snaps = self.svc.complete_snapshots(self.env.id).await?;
        self.c.tool_result(
            "GetSnapshotHistory",
            format!("{} complete snapshots", snaps.len()),
        );
        let mut out = Vec::new();
        for s in &snaps {
            let path = DocPath::package_manifest(self.env.id, s.id);
            let title = format!(
                "pip freeze of the snapshot of {}",
                s.timestamp.format("%Y-%m-%d %H:%M")
            );
            for l in self.doc_lines(&path, &title).await? {
                let parsed = crate::sync::parse_manifest(&l.text);
                if let Some(v) = parsed.get(package) {
                    out.push((s.timestamp, v.clone(), l));
                }
            }
        }
        Ok(out)
    }

    async fn answer_package(&mut self, package: &str, i: &Intent) -> Result<bool> {
        let mut said = false;
        let versions = self.versions(package).await?;
        let history = self.history(package).await?;
        if i.version || !i.why {
            match i.month {
                Some((m, y)) => {
                    let in_month: Vec<&(DateTime<Utc>, String, Line)> = versions
                        .iter()
                        .filter(|(t, _, _)| t.month() == m && y.is_none_or(|y| t.year() == y))
                        .collect();
                    // The month's year: the one asked, else the latest with snapshots then.
                    let year = y.or_else(|| in_month.iter().map(|(t, _, _)| t.year()).max());
                    let in_month: Vec<_> = in_month
                        .into_iter()
                        .filter(|(t, _, _)| Some(t.year()) == year)
                        .collect();
                    let month_name = MONTHS.get(m as usize - 1).copied().unwrap_or("");
                    let label = format!(
                        "{}{}",
                        capitalise(month_name),
                        year.map(|y| format!(" {y}")).unwrap_or_default()
                    );
                    if in_month.is_empty() {
                        // What was in effect: the last snapshot before that month.
                        let before = versions
                            .iter()
                            .rev()
                            .find(|(t, _, _)| year.is_some_and(|y| (t.year(), t.month()) < (y, m)));
                        match before {
                            Some((t, v, l)) => {
                                self.c.say(
                                    &format!(
                                        "No snapshot was taken in {label}; the last one before it ({}) had {package} {v}.",
                                        t.format("%Y-%m-%d")
                                    ),
                                    &[l.source()],
                                );
                                said = true;
                            }
                            None => {
                                self.c.say(
                                    &format!("I do not know which version of {package} was used in {label}: no snapshot records it."),
                                    &[],
                                );
                            }
                        }
                    } else {
                        let mut distinct: Vec<&(DateTime<Utc>, String, Line)> = Vec::new();
                        for x in &in_month {
                            if !distinct.iter().any(|d| d.1 == x.1) {
                                distinct.push(x);
                            }
                        }
                        for (n, (t, v, l)) in distinct.into_iter().enumerate() {
                            let when = t.format("%Y-%m-%d %H:%M");
                            let sentence = if n == 0 {
                                format!("In {label} the environment used {package} {v} (snapshot of {when}).")
                            } else {
                                format!(
                                    "Later in {label} it used {package} {v} (snapshot of {when})."
                                )
                            };
                            self.c.say(&sentence, &[l.source()]);
                            said = true;
                        }
                    }
                }
                None => {
                    if let Some((t, v, l)) = versions.last() {
                        self.c.say(
                            &format!(
                                "The newest snapshot ({}) has {package} {v}.",
                                t.format("%Y-%m-%d %H:%M")
                            ),
                            &[l.source()],
                        );
                        said = true;
                    }
                }
            }
        }
        let changes: Vec<&(HistoryEntry, Line)> = history
            .iter()
            .filter(|(h, _)| h.action != "present")
            .collect();
        if i.why || i.drift || !changes.is_empty() {
            for (h, l) in &changes {
                let what = match (h.action.as_str(), &h.from, &h.to) {
                    ("installed", _, Some(t)) => format!("{package} {t} was installed"),
                    ("removed", Some(f), _) => format!("{package} {f} was removed"),
                    (a, Some(f), Some(t)) => format!("{package} was {a} from {f} to {t}"),
                    (a, _, _) => format!("{package} was {a}"),
                };
                self.c.paragraph();
                self.c.say(
                    &format!(
                        "On {} {what} (first in the snapshot of {}).",
                        h.time.format("%Y-%m-%d"),
                        h.snapshot_time.format("%Y-%m-%d %H:%M")
                    ),
                    &[l.source()],
                );
                match &h.reason {
                    Some(r) => self.c.say(
                        &format!("The reason recorded: \"{}\".", r.trim()),
                        &[l.source()],
                    ),
                    None if i.why => self
                        .c
                        .say("No reason was recorded with that snapshot.", &[l.source()]),
                    None => {}
                }
                if let Some(e) = &h.drift_event_id {
                    let summary = self.summary().await?;
                    if let Some(dl) = section(&summary, "Drift history")
                        .into_iter()
                        .find(|x| x.text.contains(e.as_str()))
                    {
                        self.c.say(
                            "The change was seen as drift when it happened.",
                            &[dl.source()],
                        );
                    }
                }
                said = true;
            }
            if changes.is_empty() && i.why {
                if let Some((_, l)) = history.first() {
                    self.c.say(
                        &format!("{package} has not changed since the first snapshot, so nothing records why it would have."),
                        &[l.source()],
                    );
                    said = true;
                }
            }
        }
        Ok(said)
    }

    async fn answer(&mut self, question: &str, session: &SessionState) -> Result<Option<String>> {
        // Packages the environment has or had, from its history.
        self.tool(
            "GetEnvironmentDetails",
            json!({ "environment_id": self.env.id.to_string() }),
        );
        let history_lines = self
            .doc_lines(&DocPath::installation_history(self.env.id), "history")
            .await?;
        let mut known: Vec<String> = history_lines
            .iter()
            .filter_map(|l| serde_json::from_str::<HistoryEntry>(&l.text).ok())
            .map(|h| h.package)
            .collect();
        known.sort();
        known.dedup();
        self.c.tool_result(
            "GetEnvironmentDetails",
            format!("{} packages known", known.len()),
        );
        let i = intent(question, &known, session);
        let summary = self.summary().await?;
        let mut said = false;
        if let Some(p) = i.package.clone() {
            said |= self.answer_package(&p, &i).await?;
        }
        let sections: [(bool, &str, &str, &str); 6] = [
            (
                i.owner,
                "GetResearcherProfile",
                "",
                "About the environment:",
            ),
            (
                i.snapshots && i.package.is_none(),
                "GetSnapshotHistory",
                "Snapshots",
                "Snapshots:",
            ),
            (
                i.drift && i.package.is_none(),
                "GetDriftHistory",
                "Drift history",
                "Drift history:",
            ),
            (
                i.notebooks,
                "GetEnvironmentDetails",
                "Notebooks",
                "The notebooks, in the order to run them:",
            ),
            (
                i.onboarding,
                "GetOnboardingChecklist",
                "Onboarding checklist",
                "To get started:",
            ),
            (
                i.package_download && !i.onboarding,
                "GetTransferPackage",
                "",
                "The transfer package summarises:",
            ),
        ];
        for (wanted, tool, heading, intro) in sections {
            if !wanted {
                continue;
            }
            let lines: Vec<Line> = self
                .summary_section(tool, &summary, heading)
                .into_iter()
                .cloned()
                .collect();
            if lines.is_empty() {
                continue;
            }
            self.c.paragraph();
            self.c.say(intro, &[]);
            for l in lines.iter().take(12) {
                let text = list_item(&l.text);
                self.c.bullet(text, &[l.source()]);
            }
            if tool == "GetTransferPackage" {
                self.c.say(
                    &format!(
                        "Download it from /api/knowledge/transfer/{}/package.zip.",
                        self.env.id
                    ),
                    &[],
                );
            }
            said = true;
        }
        if !said {
            said = self.retrieve(question).await?;
        }
        if !said {
            self.c.say(
                "I don't know: nothing in this environment's knowledge documents answers that. \
                 Try asking about a package, its versions, the snapshots, the drift history, the notebooks or how to get started.",
                &[],
            );
        }
        Ok(i.package)
    }

    /// BM25 over the lab's documents (only this environment's for a caller
    /// from another lab); cites the best passages as they are.
    async fn retrieve(&mut self, question: &str) -> Result<bool> {
        self.tool("Retrieve", json!({ "query": question }));
        let index = Arc::clone(&self.svc.index);
        let (lab, q) = (self.env.lab_id, question.to_string());
        let hits = tokio::task::spawn_blocking(move || index.search(lab, &q, 20))
            .await
            .map_err(westtek_domain::DomainError::internal)?
            .map_err(crate::knowledge_error)?;
        let env = self.env.id.to_string();
        let allowed = |p: &str| self.whole_lab || p.split('/').any(|seg| seg == env);
        let hits: Vec<_> = hits
            .into_iter()
            .filter(|h| allowed(h.citation.path.as_str()))
            .take(MAX_PASSAGES)
            .collect();
        self.c
            .tool_result("Retrieve", format!("{} passages", hits.len()));
        if hits.is_empty() {
            return Ok(false);
        }
        self.c.say("Here is what the documents say:", &[]);
        for h in &hits {
            // Quote the passage's first meaningful line, cited by its span.
            let text = &h.text;
            let (off, line) = text
                .split_inclusive('\n')
                .scan(0usize, |at, l| {
                    let start = *at;
                    *at += l.len();
                    Some((start, l.trim_end_matches('\n')))
                })
                .find(|(_, l)| l.trim().len() > 3 && !l.trim_start().starts_with("```"))
                .unwrap_or((0, text.as_str()));
            let quoted: String = line.trim().chars().take(300).collect();
            let start = h.citation.start + off;
            let end = start + line.len();
            let source = SourceRef {
                kind: SourceKind::Document,
                id: h.citation.path.to_string(),
                span: Some((start, end)),
                title: h.title.clone(),
            };
            self.c.bullet(&format!("{}: {quoted}", h.title), &[source]);
        }
        Ok(true)
    }
}

/// The text of a Markdown list item (`- x`, `12. x`), or the line.
fn list_item(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("- ") {
        return rest;
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    match line[digits..].strip_prefix(". ") {
        Some(rest) if digits > 0 => rest,
        _ => line,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[async_trait]
impl Agent for LocalKnowledgeAgent {
    async fn invoke(&self, req: AgentRequest) -> AssistResult<BoxStream<'static, AgentChunk>> {
        westtek_assist::port::validate_request(&req, AgentKind::KnowledgeTransfer)?;
        let key = SessionKey {
            lab_id: req.lab_id,
            user_id: req.caller.user_id,
            agent: AgentKind::KnowledgeTransfer,
            session_id: req.session_id.clone(),
        };
        let mut session = self.svc.sessions.get(&key).unwrap_or_default();
        if session.environment_id.is_some_and(|e| e != self.env.id) {
            session = SessionState {
                turns: std::mem::take(&mut session.turns),
                ..SessionState::default()
            };
        }
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut work = Work {
            svc: Arc::clone(&self.svc),
            env: self.env.clone(),
            whole_lab: self.whole_lab,
            c: Composer::new(tx),
        };
        let sessions = Arc::clone(&self.svc.sessions);
        let question = req.input_text;
        let env = self.env.id;
        let producer = async move {
            match work.answer(&question, &session).await {
                Ok(package) => {
                    let answer = work.c.answer().to_string();
                    sessions.update(&key, |s| {
                        s.environment_id = Some(env);
                        if package.is_some() {
                            s.package = package;
                        }
                        s.turns.push_back(Turn::new(&question, &answer, Utc::now()));
                    });
                    work.c.done(&key.session_id);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "knowledge agent failed");
                    work.c.error(
                        "agent_failed",
                        "The answer could not be completed; try again.",
                    );
                }
            }
        };
        let driver = stream::once(producer).filter_map(|()| async { None::<AgentChunk> });
        Ok(stream::select(rx, driver).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_byte_spans() {
        let text = "# T\n\n- Python: 3.11\n- Lab: ünï\n";
        let lines = lines_of("p", "t", text);
        assert_eq!(lines.len(), 3);
        for l in &lines {
            assert_eq!(&text[l.start..l.end], l.text);
        }
    }

    #[test]
    fn list_items_lose_only_their_marker() {
        assert_eq!(list_item("- 2026-11-22 snapshot"), "2026-11-22 snapshot");
        assert_eq!(list_item("12. Run a"), "Run a");
        assert_eq!(list_item("2026-11-22: x"), "2026-11-22: x");
    }

    #[test]
    fn sections_are_the_lines_under_their_heading() {
        let text = "# T\n## Snapshots\n- a\n- b\n## Drift history\n- c\n";
        let lines = lines_of("p", "t", text);
        let s: Vec<&str> = section(&lines, "Snapshots")
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(s, ["- a", "- b"]);
    }

    #[test]
    fn the_intent_names_the_package_month_and_why() {
        let known = vec!["pandas".to_string(), "tabulate".to_string()];
        let i = intent(
            "Which version of Pandas did we use in March 2026 and why was it upgraded?",
            &known,
            &SessionState::default(),
        );
        assert_eq!(i.package.as_deref(), Some("pandas"));
        assert_eq!(i.month, Some((3, Some(2026))));
        assert!(i.why && i.version);
        // A follow-up's "it" is the session's package.
        let s = SessionState {
            package: Some("tabulate".into()),
            ..Default::default()
        };
        assert_eq!(
            intent("why was it upgraded?", &known, &s)
                .package
                .as_deref(),
            Some("tabulate")
        );
        assert_eq!(
            intent("¿qué pasó?", &known, &SessionState::default()).package,
            None
        );
        // "may" alone is a month, "mar" is not a word we take for March.
        assert_eq!(month_of(&words("in may")), Some((5, None)));
        assert_eq!(month_of(&words("may I ask")), None);
        assert_eq!(
            month_of(&words("what changed in sept 2025")),
            Some((9, Some(2025)))
        );
    }
}
