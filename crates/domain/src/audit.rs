//! The tamper-evident audit trail: entries, their hash chain and its check.
//!
//! Every entry's `hash` is BLAKE3 over its own fields and the previous
//! entry's hash, in a fixed order. Editing an entry breaks its hash, deleting
//! or reordering one breaks the next entry's `prev_hash` link or the sequence,
//! and cutting the tail is caught by the separately stored head.

use crate::{AuditId, LabId, UserId};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The hash the first entry links to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a caller wants recorded; the store adds sequence, time and hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// `None` for the platform itself (start-up reconcile, idle culling).
    pub actor_id: Option<UserId>,
    pub actor_name: String,
    /// `None` for platform-wide actions (creating a lab's first admin, …).
    pub lab_id: Option<LabId>,
    /// Dotted verb: `environment.create`, `auth.login`, …
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub request_id: String,
    pub details: serde_json::Value,
}

/// One stored entry of the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, starting at 1, without gaps.
    pub seq: i64,
    pub id: AuditId,
    pub time: DateTime<Utc>,
    pub actor_id: Option<UserId>,
    pub actor_name: String,
    pub lab_id: Option<LabId>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub request_id: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// Seals a draft as entry `seq` after `prev_hash`. `time` is truncated to
    /// microseconds so it survives storage round trips exactly.
    pub fn seal(draft: &AuditDraft, seq: i64, time: DateTime<Utc>, prev_hash: &str) -> Self {
        let time = truncate_micros(time);
        let mut e = AuditEntry {
            seq,
            id: AuditId::new(),
            time,
            actor_id: draft.actor_id,
            actor_name: draft.actor_name.clone(),
            lab_id: draft.lab_id,
            action: draft.action.clone(),
            target_kind: draft.target_kind.clone(),
            target_id: draft.target_id.clone(),
            request_id: draft.request_id.clone(),
            details: draft.details.clone(),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    /// The hash the entry's content should have.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::json!([
            self.seq,
            self.id.to_string(),
            format_time(self.time),
            self.actor_id.map(|u| u.to_string()),
            self.actor_name,
            self.lab_id.map(|l| l.to_string()),
            self.action,
            self.target_kind,
            self.target_id,
            self.request_id,
            self.details,
            self.prev_hash,
        ]);
        blake3::hash(canonical.to_string().as_bytes())
            .to_hex()
            .to_string()
    }
}

/// The form audit times are stored and hashed in.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `t` truncated to whole microseconds (what every store keeps exactly).
pub fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let micros = t.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(t)
}

/// Filter for listing and exporting the trail.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// `None` means every lab (IT admins only).
    pub lab_id: Option<LabId>,
    pub actor_name: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
    pub offset: u32,
}

/// A defect found in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ChainProblem {
    /// The entry's content no longer matches its hash.
    Edited { seq: i64, id: String },
    /// Entries are missing between `after_seq` and `next_seq`.
    Missing { after_seq: i64, next_seq: i64 },
    /// The entry does not link to the one stored before it.
    BrokenLink { seq: i64, id: String },
    /// The newest entries are gone: the head says `head_seq`, the trail ends
    /// at `last_seq`.
    TruncatedTail { last_seq: i64, head_seq: i64 },
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainProblem::Edited { seq, id } => write!(
                f,
                "entry #{seq} ({id}) was edited: its content does not match its hash"
            ),
            ChainProblem::Missing {
                after_seq,
                next_seq,
            } => write!(
                f,
                "entries #{}..#{} were deleted (trail jumps from #{after_seq} to #{next_seq})",
                after_seq + 1,
                next_seq - 1
            ),
            ChainProblem::BrokenLink { seq, id } => write!(
                f,
                "entry #{seq} ({id}) does not link to the entry before it (reordered or replaced)"
            ),
            ChainProblem::TruncatedTail { last_seq, head_seq } => write!(
                f,
                "entries #{}..#{head_seq} were deleted from the end of the trail",
                last_seq + 1
            ),
        }
    }
}

/// The chain head kept beside the trail: the newest entry's sequence and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// Checks a whole trail, given in storage order (by `seq`), against its head.
/// Returns every problem found; empty means intact.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    head: Option<&AuditHead>,
) -> Vec<ChainProblem> {
    let mut problems = Vec::new();
    let mut prev: Option<&AuditEntry> = None;
    for e in entries {
        if e.compute_hash() != e.hash {
            problems.push(ChainProblem::Edited {
                seq: e.seq,
                id: e.id.to_string(),
            });
        }
        let expected_seq = prev.map_or(1, |p| p.seq + 1);
        if e.seq > expected_seq {
            problems.push(ChainProblem::Missing {
                after_seq: expected_seq - 1,
                next_seq: e.seq,
            });
        }
        let expected_prev = prev.map_or(GENESIS_HASH, |p| p.hash.as_str());
        // A gap already explains a broken link; report it once.
        if e.prev_hash != expected_prev && e.seq <= expected_seq {
            problems.push(ChainProblem::BrokenLink {
                seq: e.seq,
                id: e.id.to_string(),
            });
        }
        prev = Some(e);
    }
    if let Some(h) = head {
        let last_seq = prev.map_or(0, |p| p.seq);
        if h.seq > last_seq {
            problems.push(ChainProblem::TruncatedTail {
                last_seq,
                head_seq: h.seq,
            });
        } else if h.seq == last_seq && prev.is_some_and(|p| p.hash != h.hash) {
            problems.push(ChainProblem::BrokenLink {
                seq: last_seq,
                id: prev.map(|p| p.id.to_string()).unwrap_or_default(),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(action: &str) -> AuditDraft {
        AuditDraft {
            actor_id: None,
            actor_name: "system".into(),
            lab_id: None,
            action: action.into(),
            target_kind: "lab".into(),
            target_id: "x".into(),
            request_id: "r".into(),
            details: serde_json::json!({"k": 1}),
        }
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_string(), |e| e.hash.clone());
            out.push(AuditEntry::seal(
                &draft(&format!("a{seq}")),
                seq,
                Utc::now(),
                &prev,
            ));
        }
        out
    }

    fn head(c: &[AuditEntry]) -> AuditHead {
        let last = c.last().unwrap();
        AuditHead {
            seq: last.seq,
            hash: last.hash.clone(),
        }
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let c = chain(5);
        assert!(verify_chain(&c, Some(&head(&c))).is_empty());
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut c = chain(5);
        let h = head(&c);
        c[2].action = "forged".into();
        let p = verify_chain(&c, Some(&h));
        assert_eq!(
            p,
            vec![ChainProblem::Edited {
                seq: 3,
                id: c[2].id.to_string()
            }]
        );
    }

    #[test]
    fn a_deleted_entry_is_named_by_its_position() {
        let mut c = chain(5);
        let h = head(&c);
        c.remove(1);
        assert_eq!(
            verify_chain(&c, Some(&h)),
            vec![ChainProblem::Missing {
                after_seq: 1,
                next_seq: 3
            }]
        );
    }

    #[test]
    fn swapped_entries_break_the_links() {
        let mut c = chain(4);
        let h = head(&c);
        // Swap the content of #2 and #3 but keep their sequence numbers.
        let (a, b) = (c[1].clone(), c[2].clone());
        c[1] = AuditEntry { seq: 2, ..b };
        c[2] = AuditEntry { seq: 3, ..a };
        let p = verify_chain(&c, Some(&h));
        assert!(p
            .iter()
            .any(|x| matches!(x, ChainProblem::Edited { seq: 2, .. })));
        assert!(p
            .iter()
            .any(|x| matches!(x, ChainProblem::BrokenLink { .. })));
    }

    #[test]
    fn a_cut_tail_is_caught_by_the_head() {
        let mut c = chain(5);
        let h = head(&c);
        c.truncate(3);
        assert_eq!(
            verify_chain(&c, Some(&h)),
            vec![ChainProblem::TruncatedTail {
                last_seq: 3,
                head_seq: 5
            }]
        );
    }
}
