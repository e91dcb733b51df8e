//! One drift event as people read it: [`Alert`], its one-line
//! [`Alert::summary`] and its plain-text [`Alert::text_body`].
//!
//! Wording policy: say what changed and which notebooks it breaks, in the
//! words a researcher uses ("numpy upgraded 1.26.4 → 2.1.0 (major)"), most
//! severe finding first (the order [`westtek_inventory::diff`] gives).
//! Notebook paths are shown relative to the environment's `home/`, the folder
//! users see in Jupyter.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use westtek_domain::{EnvironmentId, EventId, LabId};
use westtek_inventory::{
    drift_status, Change, DriftStatus, Finding, FindingKind, Severity, VersionDistance,
};
use Severity::{Critical, Info, Minor};

/// How many notebooks a one-line summary names before "and N more".
const SUMMARY_NOTEBOOKS: usize = 3;

/// One drift event to deliver: which environment drifted, how badly, and
/// the findings behind it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The drift event's id; receivers use it to drop duplicates (a retried
    /// delivery carries the same id).
    pub event_id: EventId,
    /// The lab (tenant) the environment belongs to.
    pub lab_id: LabId,
    /// The environment that drifted.
    pub environment_id: EnvironmentId,
    /// Its human name.
    pub environment_name: String,
    /// The highest severity among the findings.
    pub severity: Severity,
    /// The environment's overall state against its baseline.
    pub status: DriftStatus,
    /// What changed, most severe first; each names the notebooks it affects.
    pub findings: Vec<Finding>,
    /// When the drift was detected.
    pub occurred_at: DateTime<Utc>,
    /// Where to review it in the portal, when the portal's address is known.
    pub link: Option<String>,
}

impl Alert {
    /// An alert whose severity and status follow from `findings` (the
    /// highest severity; [`Severity::Info`] when there are none). The
    /// findings are kept in the order given.
    pub fn from_findings(
        event_id: EventId,
        lab_id: LabId,
        environment_id: EnvironmentId,
        environment_name: impl Into<String>,
        findings: Vec<Finding>,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        let severity = findings
            .iter()
            .map(|f| f.severity)
            .max_by_key(|s| rank(*s))
            .unwrap_or(Info);
        Self {
            event_id,
            lab_id,
            environment_id,
            environment_name: environment_name.into(),
            severity,
            status: drift_status(&findings),
            findings,
            occurred_at,
            link: None,
        }
    }

    /// The same alert with a portal link.
    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// One plain-language line: "CRITICAL drift in 'demo': numpy upgraded
    /// 1.26.4 → 2.1.0 (major); affects analysis.ipynb". Names the first
    /// finding, counts the others, and lists the notebooks affected by the
    /// findings of the alert's own severity.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} drift in '{}'",
            severity_label(self.severity),
            one_line(&self.environment_name)
        );
        let Some(first) = self.findings.first() else {
            s.push_str(": no changes");
            return s;
        };
        let _ = write!(s, ": {}", describe(first));
        let more = self.findings.len() - 1;
        if more > 0 {
            let _ = write!(
                s,
                " and {more} more change{}",
                if more == 1 { "" } else { "s" }
            );
        }
        let notebooks = self.affected_notebooks(Some(self.severity));
        if !notebooks.is_empty() {
            let shown: Vec<&str> = notebooks
                .iter()
                .take(SUMMARY_NOTEBOOKS)
                .map(|n| display_path(n))
                .collect();
            let _ = write!(s, "; affects {}", shown.join(", "));
            if notebooks.len() > SUMMARY_NOTEBOOKS {
                let _ = write!(s, " and {} more", notebooks.len() - SUMMARY_NOTEBOOKS);
            }
        }
        s
    }

    /// A short title: "CRITICAL drift in demo" (the email subject after the
    /// "[West Tek]" tag).
    pub fn title(&self) -> String {
        format!(
            "{} drift in {}",
            severity_label(self.severity),
            one_line(&self.environment_name)
        )
    }

    /// The plain-text body of an email (and of a dead letter's preview):
    /// the summary, every finding with its severity and affected notebooks,
    /// all affected notebooks, the portal link and the ids.
    pub fn text_body(&self) -> String {
        let mut b = String::new();
        let _ = writeln!(b, "{}", self.summary());
        b.push('\n');
        let _ = writeln!(b, "Environment: {}", one_line(&self.environment_name));
        let _ = writeln!(b, "Status: {}", status_label(self.status));
        let _ = writeln!(
            b,
            "Detected: {}",
            self.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        b.push('\n');
        let _ = writeln!(b, "Findings ({}):", self.findings.len());
        for f in &self.findings {
            let _ = writeln!(b, "  - [{}] {}", severity_label(f.severity), describe(f));
            if f.affected_notebooks.is_empty() {
                let _ = writeln!(b, "      affects no notebook");
            } else {
                let names: Vec<&str> = f
                    .affected_notebooks
                    .iter()
                    .map(|n| display_path(n))
                    .collect();
                let _ = writeln!(b, "      affects: {}", names.join(", "));
            }
        }
        let all = self.affected_notebooks(None);
        b.push('\n');
        if all.is_empty() {
            let _ = writeln!(b, "No notebook is affected.");
        } else {
            let _ = writeln!(b, "Affected notebooks ({}):", all.len());
            for n in &all {
                let _ = writeln!(b, "  - {}", display_path(n));
            }
        }
        if let Some(link) = &self.link {
            b.push('\n');
            let _ = writeln!(b, "Review: {}", one_line(link));
        }
        b.push('\n');
        let _ = writeln!(
            b,
            "Event {} · lab {} · environment {}",
            self.event_id, self.lab_id, self.environment_id
        );
        b
    }

    /// The distinct notebooks (root-relative paths, sorted) affected by the
    /// findings of severity `only`, or by all findings when `None`.
    pub fn affected_notebooks(&self, only: Option<Severity>) -> Vec<String> {
        let set: BTreeSet<&String> = self
            .findings
            .iter()
            .filter(|f| only.is_none_or(|s| f.severity == s))
            .flat_map(|f| f.affected_notebooks.iter())
            .collect();
        set.into_iter().cloned().collect()
    }
}

/// Whether an alert of `severity` reaches a target that asks for `min` and
/// above (Critical > Minor > Info).
pub fn admits(min: Severity, severity: Severity) -> bool {
    rank(severity) >= rank(min)
}

/// Higher is more severe (the inventory's derived `Ord` puts Critical first).
fn rank(s: Severity) -> u8 {
    match s {
        Critical => 2,
        Minor => 1,
        Info => 0,
    }
}

/// "CRITICAL", "MINOR", "INFO".
pub(crate) fn severity_label(s: Severity) -> &'static str {
    match s {
        Critical => "CRITICAL",
        Minor => "MINOR",
        Info => "INFO",
    }
}

fn status_label(s: DriftStatus) -> &'static str {
    match s {
        DriftStatus::Stable => "stable",
        DriftStatus::MinorDrift => "minor drift",
        DriftStatus::CriticalDrift => "critical drift",
    }
}

/// A notebook path as users see it in Jupyter (below `home/`).
pub(crate) fn display_path(p: &str) -> &str {
    p.strip_prefix("home/").unwrap_or(p)
}

/// Control characters (newlines above all) replaced by spaces, so a name can
/// never add a line to a message or a header.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn distance_label(d: VersionDistance) -> &'static str {
    match d {
        VersionDistance::Major => "major",
        VersionDistance::Minor => "minor",
        VersionDistance::Patch => "patch",
        VersionDistance::PreRelease => "pre-release",
        VersionDistance::Other => "other build",
    }
}

fn change_label(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Modified => "modified",
    }
}

/// One finding in words: "numpy upgraded 1.26.4 → 2.1.0 (major)".
pub fn describe(f: &Finding) -> String {
    let subject = one_line(&f.subject);
    let before = f.before.as_deref().map(one_line);
    let after = f.after.as_deref().map(one_line);
    let arrow = || {
        format!(
            "{} → {}",
            before.as_deref().unwrap_or("?"),
            after.as_deref().unwrap_or("?")
        )
    };
    let distance = f
        .distance
        .map(|d| format!(" ({})", distance_label(d)))
        .unwrap_or_default();
    let version = |v: &Option<String>| v.as_deref().map(|v| format!(" {v}")).unwrap_or_default();
    match f.kind {
        FindingKind::PythonChanged => format!("Python changed {}{distance}", arrow()),
        FindingKind::PackageAdded => format!("{subject}{} added", version(&after)),
        FindingKind::PackageRemoved => format!("{subject}{} removed", version(&before)),
        FindingKind::PackageUpgraded => format!("{subject} upgraded {}{distance}", arrow()),
        FindingKind::PackageDowngraded => format!("{subject} downgraded {}{distance}", arrow()),
        FindingKind::PackageChanged => format!("{subject} reinstalled from another source"),
        FindingKind::KernelAdded => format!("kernel {subject} added"),
        FindingKind::KernelRemoved => format!("kernel {subject} removed"),
        FindingKind::KernelChanged => format!("kernel {subject} changed"),
        FindingKind::ExtensionChanged(c) => format!("extension {subject} {}", change_label(c)),
        FindingKind::ConfigChanged(c) => format!("config file {subject} {}", change_label(c)),
        FindingKind::NotebookAdded => format!("notebook {} added", display_path(&subject)),
        FindingKind::NotebookChanged => format!("notebook {} edited", display_path(&subject)),
        FindingKind::NotebookRemoved => format!("notebook {} removed", display_path(&subject)),
        FindingKind::DataAdded => format!("data file {} added", display_path(&subject)),
        FindingKind::DataChanged => format!("data file {} changed", display_path(&subject)),
        FindingKind::DataRemoved => format!("data file {} removed", display_path(&subject)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn finding(
        kind: FindingKind,
        subject: &str,
        before: Option<&str>,
        after: Option<&str>,
        severity: Severity,
        notebooks: &[&str],
    ) -> Finding {
        Finding {
            kind,
            subject: subject.into(),
            before: before.map(Into::into),
            after: after.map(Into::into),
            distance: None,
            severity,
            affected_notebooks: notebooks.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn numpy_alert() -> Alert {
        let mut numpy = finding(
            FindingKind::PackageUpgraded,
            "numpy",
            Some("1.26.4"),
            Some("2.1.0"),
            Critical,
            &["home/analysis.ipynb"],
        );
        numpy.distance = Some(VersionDistance::Major);
        Alert::from_findings(
            EventId::new(),
            LabId::new(),
            EnvironmentId::new(),
            "demo",
            vec![numpy],
            Utc::now(),
        )
    }

    #[test]
    fn the_summary_names_the_change_and_the_notebook_in_plain_words() {
        assert_eq!(
            numpy_alert().summary(),
            "CRITICAL drift in 'demo': numpy upgraded 1.26.4 → 2.1.0 (major); affects analysis.ipynb"
        );
    }

    #[test]
    fn severity_and_status_follow_from_the_findings() {
        let a = numpy_alert();
        assert_eq!(a.severity, Critical);
        assert_eq!(a.status, DriftStatus::CriticalDrift);
        let minor = Alert::from_findings(
            EventId::new(),
            LabId::new(),
            EnvironmentId::new(),
            "demo",
            vec![
                finding(
                    FindingKind::NotebookChanged,
                    "home/a.ipynb",
                    None,
                    None,
                    Info,
                    &["home/a.ipynb"],
                ),
                finding(
                    FindingKind::PackageAdded,
                    "tqdm",
                    None,
                    Some("4.0"),
                    Minor,
                    &[],
                ),
            ],
            Utc::now(),
        );
        assert_eq!(minor.severity, Minor);
        assert_eq!(minor.status, DriftStatus::MinorDrift);
        assert_eq!(
            minor.summary(),
            "MINOR drift in 'demo': notebook a.ipynb edited and 1 more change"
        );
    }

    #[test]
    fn the_summary_counts_notebooks_beyond_three() {
        let mut a = numpy_alert();
        a.findings[0].affected_notebooks = (1..=5).map(|i| format!("home/n{i}.ipynb")).collect();
        assert!(a
            .summary()
            .ends_with("affects n1.ipynb, n2.ipynb, n3.ipynb and 2 more"));
    }

    #[test]
    fn the_body_lists_every_finding_and_notebook_and_the_link() {
        let mut a = numpy_alert().with_link("https://westtek.example/envs/1");
        a.findings.push(finding(
            FindingKind::ConfigChanged(Change::Modified),
            "jupyter/config/jupyter_server_config.py",
            None,
            None,
            Minor,
            &[],
        ));
        let body = a.text_body();
        assert!(body.contains("[CRITICAL] numpy upgraded 1.26.4 → 2.1.0 (major)"));
        assert!(body.contains("affects: analysis.ipynb"));
        assert!(
            body.contains("[MINOR] config file jupyter/config/jupyter_server_config.py modified")
        );
        assert!(body.contains("affects no notebook"));
        assert!(body.contains("Review: https://westtek.example/envs/1"));
        assert!(body.contains(&a.event_id.to_string()));
    }

    #[test]
    fn a_name_with_a_newline_cannot_add_a_line() {
        let mut a = numpy_alert();
        a.environment_name = "demo\nBcc: x@evil".into();
        assert!(!a.title().contains('\n'));
        assert!(!a.summary().contains('\n'));
    }

    #[test]
    fn admission_orders_critical_above_minor_above_info() {
        assert!(admits(Info, Critical));
        assert!(admits(Minor, Minor));
        assert!(admits(Critical, Critical));
        assert!(!admits(Critical, Minor));
        assert!(!admits(Minor, Info));
    }
}
