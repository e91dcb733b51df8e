//! The verdict on one environment: its inventory now against its baseline.
//!
//! [`evaluate`] is what both the watcher's consumer (on a [`crate::ChangeBatch`])
//! and the periodic sweep call, so both see the same findings and the same
//! [`Evaluation::fingerprint`]. It blocks on file I/O (a few ms on a warm
//! 500 MB environment when `previous` is given): run it with
//! `tokio::task::spawn_blocking` from async code.

use serde::Serialize;
use std::path::Path;
use westtek_inventory::{diff, drift_status, inventory, inventory_reusing};
use westtek_inventory::{DriftStatus, Finding, Inventory};

use crate::error::Result;

/// An environment's state against its baseline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The inventory taken now; pass it as `previous` next time.
    pub current: Inventory,
    /// What differs from the baseline, sorted (severity, kind, subject).
    pub findings: Vec<Finding>,
    /// STABLE, MINOR_DRIFT or CRITICAL_DRIFT.
    pub status: DriftStatus,
    /// [`fingerprint`] of `findings`.
    pub fingerprint: String,
}

/// Inventory `root` (reusing the hashes of files whose path, size and
/// mtime equal their entry in `previous`; with `None`, every file is read —
/// the thorough check for start-up), diff it against
/// `baseline` and fingerprint the findings. Bytecode is never part of an
/// inventory, so bytecode-only changes give no findings.
///
/// # Errors
/// [`crate::Error::Inventory`] when `root` is missing or unreadable (an
/// environment deleted while watched); unreadable single files become
/// inventory warnings, not errors.
pub fn evaluate(
    baseline: &Inventory,
    root: &Path,
    previous: Option<&Inventory>,
) -> Result<Evaluation> {
    let current = match previous {
        Some(p) => inventory_reusing(root, p)?,
        None => inventory(root)?,
    };
    Ok(judge(baseline, current))
}

/// The verdict on an inventory taken elsewhere (by an environment's agent,
/// beside files the platform cannot read): the same diff and fingerprint
/// as [`evaluate`], so an agent's report and a local watcher agree.
pub fn judge(baseline: &Inventory, current: Inventory) -> Evaluation {
    let findings = diff(baseline, &current);
    let status = drift_status(&findings);
    let fingerprint = fingerprint(&findings);
    Evaluation {
        current,
        findings,
        status,
        fingerprint,
    }
}

/// A stable identity of a set of findings: BLAKE3 (hex) of their canonical
/// JSON, prefixed with a format tag. The same findings give the same
/// fingerprint in any process and on any machine; any change to a finding
/// (another version, another content hash, another affected notebook)
/// gives another. No findings → the fingerprint of the baseline state.
pub fn fingerprint(findings: &[Finding]) -> String {
    // `diff` sorts findings and their affected notebooks, and `Finding` has
    // no maps, so the JSON is canonical. Serialising plain data to a Vec
    // cannot fail; fall back to Debug rather than panic all the same.
    let bytes =
        serde_json::to_vec(findings).unwrap_or_else(|_| format!("{findings:?}").into_bytes());
    let mut h = blake3::Hasher::new();
    h.update(b"westtek-drift-findings-v1\n");
    h.update(&bytes);
    format!("v1:{}", h.finalize().to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use westtek_inventory::{FindingKind, Severity};

    fn finding(subject: &str, after: &str) -> Finding {
        Finding {
            kind: FindingKind::PackageAdded,
            subject: subject.into(),
            before: None,
            after: Some(after.into()),
            distance: None,
            severity: Severity::Minor,
            affected_notebooks: vec![],
        }
    }

    #[test]
    fn the_same_findings_give_the_same_fingerprint() {
        let a = vec![finding("toolz", "1.0.0")];
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert!(fingerprint(&a).starts_with("v1:"));
    }

    #[test]
    fn another_version_or_finding_gives_another_fingerprint() {
        let a = vec![finding("toolz", "1.0.0")];
        let b = vec![finding("toolz", "1.0.1")];
        let c = vec![finding("toolz", "1.0.0"), finding("tabulate", "0.9.0")];
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_ne!(fingerprint(&a), fingerprint(&[]));
    }
}
