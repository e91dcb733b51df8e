//! The Knowledge Transfer agent's tools as a port, and their implementation
//! over the knowledge documents.
//!
//! The seed's actions (`GetEnvironmentDetails`, `GetSnapshotHistory`,
//! `GetDriftHistory`, `GetResearcherProfile`, `GetPackageInstallHistory`,
//! `GetTransferPackage`, `GetOnboardingChecklist`) each return lines of a
//! stored knowledge document with their byte spans ([`Excerpt`]), the same
//! documents and sections the local Knowledge Transfer agent reads
//! (`services/knowledge/src/agent.rs`): the generated
//! `environment-docs/{env}/summary.md` and
//! `installation-history/{env}/history.jsonl`. So a Bedrock agent can cite
//! the very span a fact came from, as the local one does.
//!
//! [`DocumentKnowledgeTools`] implements [`KnowledgeTools`] over any
//! [`DocumentStore`]: the local folder, or S3 (`westtek-knowledge-aws`'s
//! `S3DocumentStore`, the Knowledge Base's data source).
//!
//! Policy: a Knowledge Transfer conversation is about one environment, the
//! one the platform authorised the caller for and put in the session
//! ([`KnowledgeScope::environment_id`]); the tools read that environment's
//! documents only. An `environment_id` the model passes must be that one,
//! else the action answers "not found" (a share or handover grant covers
//! one environment, never the rest of its lab).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use westtek_assist::ToolError;
use westtek_domain::{EnvironmentId, LabId, UserId};
use westtek_knowledge::{DocPath, DocumentStore};

/// The seed's Knowledge Transfer actions, by their wire names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KnowledgeAction {
    /// [`KnowledgeTools::get_environment_details`].
    GetEnvironmentDetails,
    /// [`KnowledgeTools::get_snapshot_history`].
    GetSnapshotHistory,
    /// [`KnowledgeTools::get_drift_history`].
    GetDriftHistory,
    /// [`KnowledgeTools::get_researcher_profile`].
    GetResearcherProfile,
    /// [`KnowledgeTools::get_package_install_history`].
    GetPackageInstallHistory,
    /// [`KnowledgeTools::get_transfer_package`].
    GetTransferPackage,
    /// [`KnowledgeTools::get_onboarding_checklist`].
    GetOnboardingChecklist,
}

impl KnowledgeAction {
    /// Every action, in the seed's order.
    pub const ALL: [KnowledgeAction; 7] = [
        KnowledgeAction::GetEnvironmentDetails,
        KnowledgeAction::GetSnapshotHistory,
        KnowledgeAction::GetDriftHistory,
        KnowledgeAction::GetResearcherProfile,
        KnowledgeAction::GetPackageInstallHistory,
        KnowledgeAction::GetTransferPackage,
        KnowledgeAction::GetOnboardingChecklist,
    ];

    /// The seed's name (`GetEnvironmentDetails`, …).
    pub fn name(self) -> &'static str {
        match self {
            KnowledgeAction::GetEnvironmentDetails => "GetEnvironmentDetails",
            KnowledgeAction::GetSnapshotHistory => "GetSnapshotHistory",
            KnowledgeAction::GetDriftHistory => "GetDriftHistory",
            KnowledgeAction::GetResearcherProfile => "GetResearcherProfile",
            KnowledgeAction::GetPackageInstallHistory => "GetPackageInstallHistory",
            KnowledgeAction::GetTransferPackage => "GetTransferPackage",
            KnowledgeAction::GetOnboardingChecklist => "GetOnboardingChecklist",
        }
    }
}

/// Whom and what a Knowledge Transfer action is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnowledgeScope {
    /// The caller's lab.
    pub lab_id: LabId,
    /// The environment the conversation is about.
    pub environment_id: EnvironmentId,
    /// Who asks, if known.
    pub actor: Option<UserId>,
}

/// One line of a document and where it is (byte offsets, end exclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitedLine {
    /// The line, without its newline.
    pub text: String,
    /// Its first byte in the document.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
}

/// Lines of one stored document: what a Knowledge Transfer action returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excerpt {
    /// The document's path (what `GET /api/knowledge/documents?path=` opens).
    pub path: String,
    /// The section read (`Snapshots`), or `None` for a whole-document read.
    pub section: Option<String>,
    /// The lines, in document order; empty when the document has none
    /// (or does not exist yet: the environment was never synced).
    pub lines: Vec<CitedLine>,
    /// A note for the model (where to download the transfer package, or
    /// that the document does not exist yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The Knowledge Transfer agent's actions. See the module documentation
/// for the scoping rule every implementation follows.
#[async_trait]
pub trait KnowledgeTools: Send + Sync {
    /// `GetEnvironmentDetails`: the summary's header (ids, lab, owner,
    /// Python, status), the packages the researcher asked for and the
    /// notebooks in the order to run them.
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the documents cannot be read.
    async fn get_environment_details(
        &self,
        scope: &KnowledgeScope,
    ) -> Result<Vec<Excerpt>, ToolError>;

    /// `GetSnapshotHistory`: the summary's snapshot list.
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the documents cannot be read.
    async fn get_snapshot_history(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError>;

    /// `GetDriftHistory`: the summary's drift history within
    /// `[since, until]` (by day; either end open when `None`).
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the documents cannot be read.
    async fn get_drift_history(
        &self,
        scope: &KnowledgeScope,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Excerpt, ToolError>;

    /// `GetResearcherProfile`: who owns the environment, in which lab, for
    /// which experiment and funding.
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the documents cannot be read.
    async fn get_researcher_profile(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError>;

    /// `GetPackageInstallHistory`: the install history's entries for
    /// `package` (PEP 503-normalised before matching), oldest first.
    ///
    /// # Errors
    /// [`ToolError::Invalid`] for an empty package name;
    /// [`ToolError::Failed`] when the documents cannot be read.
    async fn get_package_install_history(
        &self,
        scope: &KnowledgeScope,
        package: &str,
    ) -> Result<Excerpt, ToolError>;

    /// `GetTransferPackage`: the whole summary the transfer package is
    /// built around, with where to download the package.
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the documents cannot be read.
    async fn get_transfer_package(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError>;

    /// `GetOnboardingChecklist`: the summary's onboarding checklist.
    ///
    /// # Errors
    /// [`ToolError::Failed`] when the documents cannot be read.
    async fn get_onboarding_checklist(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError>;
}

/// [`KnowledgeTools`] over the knowledge documents of a [`DocumentStore`].
#[derive(Clone)]
pub struct DocumentKnowledgeTools {
    store: Arc<dyn DocumentStore>,
}

impl DocumentKnowledgeTools {
    /// Tools reading `store`.
    pub fn new(store: Arc<dyn DocumentStore>) -> Self {
        DocumentKnowledgeTools { store }
    }

    async fn lines(&self, path: &DocPath) -> Result<Option<Vec<CitedLine>>, ToolError> {
        let doc = self
            .store
            .get(path)
            .await
            .map_err(|e| ToolError::Failed(Box::new(e)))?;
        Ok(doc.map(|d| lines_of(&String::from_utf8_lossy(&d.bytes))))
    }

    /// The summary's lines under `heading` (`""`: the header block).
    async fn summary_section(
        &self,
        scope: &KnowledgeScope,
        heading: &str,
    ) -> Result<Excerpt, ToolError> {
        let path = DocPath::environment_summary(scope.environment_id);
        let lines = self.lines(&path).await?;
        Ok(excerpt(&path, heading, lines, |all| section(all, heading)))
    }
}

fn excerpt(
    path: &DocPath,
    heading: &str,
    lines: Option<Vec<CitedLine>>,
    pick: impl FnOnce(Vec<CitedLine>) -> Vec<CitedLine>,
) -> Excerpt {
    let section = Some(
        if heading.is_empty() {
            "header"
        } else {
            heading
        }
        .to_string(),
    );
    match lines {
        Some(all) => Excerpt {
            path: path.to_string(),
            section,
            lines: pick(all),
            note: None,
        },
        None => Excerpt {
            path: path.to_string(),
            section,
            lines: Vec::new(),
            note: Some("this document does not exist yet: the environment's knowledge has not been synced (it is after its first complete snapshot)".into()),
        },
    }
}

/// The non-blank lines of `text` with their byte spans.
fn lines_of(text: &str) -> Vec<CitedLine> {
    let mut out = Vec::new();
    let mut at = 0;
    for l in text.split_inclusive('\n') {
        let body = l.strip_suffix('\n').unwrap_or(l);
        if !body.trim().is_empty() {
            out.push(CitedLine {
                text: body.to_string(),
                start: at,
                end: at + body.len(),
            });
        }
        at += l.len();
    }
    out
}

/// The lines under `## heading` (a prefix of the heading's text, as the
/// summary writes `Notebooks (run in this order)`); `""` is the header
/// block's `- ` lines before the first section.
fn section(lines: Vec<CitedLine>, heading: &str) -> Vec<CitedLine> {
    if heading.is_empty() {
        return lines
            .into_iter()
            .take_while(|l| !l.text.starts_with("## "))
            .filter(|l| l.text.starts_with("- "))
            .collect();
    }
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

/// The day a summary list line starts with (`- 2026-03-04: …`).
fn day_of(line: &str) -> Option<NaiveDate> {
    let t = line.strip_prefix("- ")?;
    NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()
}

/// The package name of one `history.jsonl` line.
#[derive(Deserialize)]
struct HistoryLine {
    package: String,
}

#[async_trait]
impl KnowledgeTools for DocumentKnowledgeTools {
    async fn get_environment_details(
        &self,
        scope: &KnowledgeScope,
    ) -> Result<Vec<Excerpt>, ToolError> {
        let mut out = Vec::new();
        for heading in ["", "Packages the researcher asked for", "Notebooks"] {
            out.push(self.summary_section(scope, heading).await?);
        }
        Ok(out)
    }

    async fn get_snapshot_history(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError> {
        self.summary_section(scope, "Snapshots").await
    }

    async fn get_drift_history(
        &self,
        scope: &KnowledgeScope,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Excerpt, ToolError> {
        let mut e = self.summary_section(scope, "Drift history").await?;
        let (from, to) = (since.map(|t| t.date_naive()), until.map(|t| t.date_naive()));
        if from.is_some() || to.is_some() {
            e.lines.retain(|l| {
                day_of(&l.text)
                    .is_some_and(|d| from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t))
            });
        }
        Ok(e)
    }

    async fn get_researcher_profile(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError> {
        self.summary_section(scope, "").await
    }

    async fn get_package_install_history(
        &self,
        scope: &KnowledgeScope,
        package: &str,
    ) -> Result<Excerpt, ToolError> {
        let wanted = westtek_inventory::normalize_name(package.trim());
        if wanted.is_empty() {
            return Err(ToolError::Invalid("`package` is empty".into()));
        }
        let path = DocPath::installation_history(scope.environment_id);
        let lines = self.lines(&path).await?;
        let mut e = excerpt(&path, "", lines, |all| {
            all.into_iter()
                .filter(|l| {
                    serde_json::from_str::<HistoryLine>(&l.text)
                        .is_ok_and(|h| westtek_inventory::normalize_name(&h.package) == wanted)
                })
                .collect()
        });
        e.section = Some(format!("entries for {wanted}"));
        Ok(e)
    }

    async fn get_transfer_package(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError> {
        let path = DocPath::environment_summary(scope.environment_id);
        let lines = self.lines(&path).await?;
        let mut e = excerpt(&path, "", lines, |all| all);
        e.section = None;
        if e.note.is_none() {
            e.note = Some(format!(
                "the transfer package (this summary, the notebooks as Markdown, the manifests and the install history) downloads from /api/knowledge/transfer/{}/package.zip",
                scope.environment_id
            ));
        }
        Ok(e)
    }

    async fn get_onboarding_checklist(&self, scope: &KnowledgeScope) -> Result<Excerpt, ToolError> {
        self.summary_section(scope, "Onboarding checklist").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_byte_spans() {
        let text = "# T\n\n- Python: 3.11\n- Lab: ünï\n";
        let lines = lines_of(text);
        assert_eq!(lines.len(), 3);
        for l in &lines {
            assert_eq!(&text[l.start..l.end], l.text);
        }
    }

    #[test]
    fn a_section_is_the_lines_under_its_heading_and_the_header_is_its_list() {
        let text = "# T\n- a: 1\n## Snapshots\n- s\n## Drift history\n- d\n";
        let get = |h: &str| -> Vec<String> {
            section(lines_of(text), h)
                .into_iter()
                .map(|l| l.text)
                .collect()
        };
        assert_eq!(get(""), ["- a: 1"]);
        assert_eq!(get("Snapshots"), ["- s"]);
        assert_eq!(get("Drift history"), ["- d"]);
    }

    #[test]
    fn a_drift_line_has_its_day() {
        assert_eq!(
            day_of("- 2026-03-04: critical drift event x"),
            NaiveDate::from_ymd_opt(2026, 3, 4)
        );
        assert_eq!(day_of("No drift recorded."), None);
    }
}
