//! [`DriftState`]: one environment's live drift state, fed successive
//! [`Evaluation`]s, deciding when a drift event is due.
//!
//! Policy: an event is due whenever the fingerprint differs from the last
//! one seen — including a return to the baseline (no findings), which is
//! the event that clears an alert. The same state evaluated twice (watcher
//! batch, then sweep) is one event. A state that returns to an earlier
//! fingerprint after a different one (install, uninstall) is a new event:
//! only the latest fingerprint is remembered.

use serde::{Deserialize, Serialize};
use westtek_inventory::DriftStatus;

use crate::evaluate::{fingerprint, Evaluation};

/// One environment's last known drift state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftState {
    fingerprint: String,
    status: DriftStatus,
}

/// What one observation changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// A drift event must be emitted (the findings changed).
    pub emit: bool,
    /// The status before the observation.
    pub previous_status: DriftStatus,
    /// The status now.
    pub status: DriftStatus,
    /// The fingerprint now.
    pub fingerprint: String,
}

impl Default for DriftState {
    fn default() -> Self {
        Self::at_baseline()
    }
}

impl DriftState {
    /// An environment identical to its baseline (just snapshotted, or a
    /// baseline just accepted).
    pub fn at_baseline() -> Self {
        Self {
            fingerprint: fingerprint(&[]),
            status: DriftStatus::Stable,
        }
    }

    /// The state last recorded (e.g. loaded from the drift store at start-up).
    pub fn resume(fingerprint: impl Into<String>, status: DriftStatus) -> Self {
        Self {
            fingerprint: fingerprint.into(),
            status,
        }
    }

    /// The last fingerprint seen.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The current status.
    pub fn status(&self) -> DriftStatus {
        self.status
    }

    /// Record `evaluation`; says whether it is a new drift event.
    pub fn observe(&mut self, evaluation: &Evaluation) -> Transition {
        let previous_status = self.status;
        let emit = evaluation.fingerprint != self.fingerprint;
        if emit {
            self.fingerprint.clone_from(&evaluation.fingerprint);
            self.status = evaluation.status;
        }
        Transition {
            emit,
            previous_status,
            status: self.status,
            fingerprint: self.fingerprint.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use westtek_inventory::{Finding, FindingKind, Inventory, Severity};

    fn evaluation(findings: Vec<Finding>) -> Evaluation {
        let empty = br#"{"format_version":1,"root":"/x","python":{},"packages":[],"kernels":[],"extensions":[],"config_files":[],"notebooks":[],"data_files":[],"warnings":[]}"#;
        Evaluation {
            current: Inventory::from_json(empty).unwrap(),
            status: westtek_inventory::drift_status(&findings),
            fingerprint: fingerprint(&findings),
            findings,
        }
    }

    fn added(name: &str) -> Finding {
        Finding {
            kind: FindingKind::PackageAdded,
            subject: name.into(),
            before: None,
            after: Some("1.0".into()),
            distance: None,
            severity: Severity::Minor,
            affected_notebooks: vec![],
        }
    }

    #[test]
    fn a_stable_environment_emits_nothing() {
        let mut s = DriftState::at_baseline();
        let t = s.observe(&evaluation(vec![]));
        assert!(!t.emit);
        assert_eq!(t.status, DriftStatus::Stable);
    }

    #[test]
    fn the_same_change_seen_twice_is_one_event() {
        let mut s = DriftState::default();
        let e = evaluation(vec![added("toolz")]);
        let first = s.observe(&e);
        assert!(first.emit);
        assert_eq!(first.previous_status, DriftStatus::Stable);
        assert_eq!(first.status, DriftStatus::MinorDrift);
        assert!(!s.observe(&e).emit);
    }

    #[test]
    fn a_further_change_and_a_return_to_baseline_are_new_events() {
        let mut s = DriftState::default();
        assert!(s.observe(&evaluation(vec![added("toolz")])).emit);
        assert!(
            s.observe(&evaluation(vec![added("toolz"), added("tabulate")]))
                .emit
        );
        let back = s.observe(&evaluation(vec![]));
        assert!(back.emit);
        assert_eq!(back.previous_status, DriftStatus::MinorDrift);
        assert_eq!(back.status, DriftStatus::Stable);
    }
}
