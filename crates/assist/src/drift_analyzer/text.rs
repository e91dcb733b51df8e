//! The sentences the analyzer says and the sources they cite.

use chrono::{DateTime, Utc};
use westtek_inventory::{Change, Finding, FindingKind, Severity, VersionDistance};

use crate::changelog::PackageChangelog;
use crate::drift_tools::{DriftEventView, EnvironmentConfigView, NotebookView, SnapshotSummary};
use crate::port::{SourceKind, SourceRef};

/// `2025-03-01 14:05 UTC`.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub(crate) fn event_source(ev: &DriftEventView) -> SourceRef {
    SourceRef {
        kind: SourceKind::DriftEvent,
        id: ev.id.to_string(),
        span: None,
        title: format!("Drift event of {}", when(ev.detected_at)),
    }
}

pub(crate) fn snapshot_source(s: &SnapshotSummary) -> SourceRef {
    let title = match s.notes.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(notes) => format!("Snapshot of {} ({notes})", when(s.created_at)),
        None => format!("Snapshot of {}", when(s.created_at)),
    };
    SourceRef {
        kind: SourceKind::Snapshot,
        id: s.id.to_string(),
        span: None,
        title,
    }
}

pub(crate) fn environment_source(config: &EnvironmentConfigView) -> SourceRef {
    SourceRef {
        kind: SourceKind::Config,
        id: config.environment_id.to_string(),
        span: None,
        title: format!("Environment {}", config.name),
    }
}

pub(crate) fn config_file_source(path: &str) -> SourceRef {
    SourceRef {
        kind: SourceKind::Config,
        id: path.to_string(),
        span: None,
        title: path.to_string(),
    }
}

pub(crate) fn notebook_source(nb: &NotebookView) -> SourceRef {
    let title = nb.path.rsplit('/').next().unwrap_or(&nb.path).to_string();
    SourceRef {
        kind: SourceKind::Notebook,
        id: nb.path.clone(),
        span: None,
        title,
    }
}

/// The package's metadata file, if one was read.
pub(crate) fn metadata_source(c: &PackageChangelog) -> Option<SourceRef> {
    let path = c.metadata_path.as_ref()?;
    let version = c.new_version.as_deref().unwrap_or("installed");
    Some(SourceRef {
        kind: SourceKind::PackageMetadata,
        id: path.clone(),
        span: None,
        title: format!("{} {version} package metadata", c.package),
    })
}

/// Whether a finding is about a distribution.
pub(crate) fn is_package(kind: FindingKind) -> bool {
    matches!(
        kind,
        FindingKind::PackageAdded
            | FindingKind::PackageRemoved
            | FindingKind::PackageUpgraded
            | FindingKind::PackageDowngraded
            | FindingKind::PackageChanged
    )
}

/// Findings that are drift (not the researcher's own edits).
pub(crate) fn is_drift(f: &Finding) -> bool {
    f.severity != Severity::Info
}

fn distance_phrase(d: Option<VersionDistance>, down: bool) -> &'static str {
    match (d, down) {
        (Some(VersionDistance::Major), false) => " — a major version jump",
        (Some(VersionDistance::Major), true) => " — back across a major version",
        (Some(VersionDistance::Minor), false) => " — a minor version change",
        (Some(VersionDistance::Minor), true) => " — back a minor version",
        (Some(VersionDistance::Patch), _) => " — a patch-level change",
        (Some(VersionDistance::PreRelease), _) => " — a pre-release change",
        (Some(VersionDistance::Other), _) => " — a different build",
        (None, _) => "",
    }
}

fn change_word(c: Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Removed => "removed",
        Change::Modified => "modified",
    }
}

/// One sentence saying what a finding is.
pub(crate) fn describe(f: &Finding) -> String {
    let s = &f.subject;
    let before = f.before.as_deref().unwrap_or("an unknown version");
    let after = f.after.as_deref().unwrap_or("an unknown version");
    match f.kind {
        FindingKind::PythonChanged => format!(
            "The Python interpreter changed from {before} to {after}{}.",
            distance_phrase(f.distance, false)
        ),
        FindingKind::PackageAdded => format!("{s} {after} was newly installed."),
        FindingKind::PackageRemoved => format!("{s} {before} was removed."),
        FindingKind::PackageUpgraded => format!(
            "{s} was upgraded from {before} to {after}{}.",
            distance_phrase(f.distance, false)
        ),
        FindingKind::PackageDowngraded => format!(
            "{s} was downgraded from {before} to {after}{}.",
            distance_phrase(f.distance, true)
        ),
        FindingKind::PackageChanged => {
            format!("{s} was reinstalled differently (from {before} to {after}).")
        }
        FindingKind::KernelAdded => format!("The kernel {s} was added."),
        FindingKind::KernelRemoved => format!("The kernel {s} was removed."),
        FindingKind::KernelChanged => {
            format!("The kernel {s} now starts a different interpreter or command.")
        }
        FindingKind::ExtensionChanged(c) => {
            format!("The Jupyter extension {s} was {}.", change_word(c))
        }
        FindingKind::ConfigChanged(c) => {
            format!("The configuration file {s} was {}.", change_word(c))
        }
        FindingKind::NotebookAdded => format!("The notebook {s} was added."),
        FindingKind::NotebookChanged => format!("The notebook {s} was edited."),
        FindingKind::NotebookRemoved => format!("The notebook {s} was removed."),
        FindingKind::DataAdded => format!("The data file {s} was added."),
        FindingKind::DataChanged => format!("The data file {s} changed."),
        FindingKind::DataRemoved => format!("The data file {s} was removed."),
    }
}

/// The sources of a finding: the event, plus the file for a config change.
pub(crate) fn finding_sources(ev: &DriftEventView, f: &Finding) -> Vec<SourceRef> {
    let mut out = vec![event_source(ev)];
    if matches!(f.kind, FindingKind::ConfigChanged(_)) {
        out.push(config_file_source(&f.subject));
    }
    out
}

/// Why a finding affects a notebook, as a verb phrase ("runs on the
/// changed Python interpreter"); `None` for package findings, which are
/// explained by the modules the notebook imports.
pub(crate) fn non_package_reason(f: &Finding) -> Option<String> {
    match f.kind {
        FindingKind::PythonChanged => Some("runs on the changed Python interpreter".into()),
        FindingKind::KernelAdded | FindingKind::KernelRemoved | FindingKind::KernelChanged => {
            Some(format!("uses the kernel {}", f.subject))
        }
        FindingKind::ConfigChanged(_) => {
            Some(format!("is affected by the change to {}", f.subject))
        }
        FindingKind::ExtensionChanged(_) => {
            Some(format!("is affected by the extension {}", f.subject))
        }
        FindingKind::DataAdded | FindingKind::DataChanged | FindingKind::DataRemoved => {
            Some(format!("reads {}", f.subject))
        }
        _ => None,
    }
}

/// `a, b and c`.
pub(crate) fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `1 notebook`, `2 notebooks`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The help text: what the analyzer can answer. Claims nothing, cites
/// nothing.
pub(crate) const HELP: [&str; 3] = [
    "I can explain drift in this environment and what to do about it.",
    "Ask why it drifted (\"why did my environment drift?\"), what changed (\"what changed?\"), which notebooks are at risk (\"which notebooks use requests?\"), whether to roll back (\"should I roll back?\"), what a package's metadata says about its change (\"changelog requests\"), or how two snapshots differ (give both snapshot ids).",
    "Follow-up questions can say \"it\" for the package we last talked about.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(
        kind: FindingKind,
        before: &str,
        after: &str,
        d: Option<VersionDistance>,
    ) -> Finding {
        Finding {
            kind,
            subject: "requests".into(),
            before: Some(before.into()),
            after: Some(after.into()),
            distance: d,
            severity: Severity::Critical,
            affected_notebooks: vec![],
        }
    }

    #[test]
    fn a_major_upgrade_is_described_with_both_versions() {
        let f = finding(
            FindingKind::PackageUpgraded,
            "2.32.3",
            "3.0.0",
            Some(VersionDistance::Major),
        );
        assert_eq!(
            describe(&f),
            "requests was upgraded from 2.32.3 to 3.0.0 — a major version jump."
        );
    }

    #[test]
    fn lists_read_naturally() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(list(&s(&["a"])), "a");
        assert_eq!(list(&s(&["a", "b", "c"])), "a, b and c");
        assert_eq!(count(1, "notebook"), "1 notebook");
        assert_eq!(count(3, "change"), "3 changes");
    }
}
