//! Retention: which complete snapshots of an environment a policy lets go.
//!
//! Policy (like restic's `forget`): a snapshot is kept when any rule keeps
//! it — the newest `keep_last`; the newest of each of the last `keep_daily`
//! days that have snapshots; the newest of each of the last `keep_monthly`
//! months that have snapshots — and drift baselines (pinned, current) are always kept. A
//! policy with no rule set keeps everything.

use chrono::Datelike;
use std::collections::HashSet;
use westtek_domain::{RetentionPolicy, Snapshot, SnapshotId};

/// The snapshots to delete. `complete` must hold only complete snapshots of
/// one environment, in any order.
pub fn to_expire(
    complete: &[Snapshot],
    policy: &RetentionPolicy,
    pinned: &[SnapshotId],
) -> Vec<SnapshotId> {
    if policy.keep_last.is_none() && policy.keep_daily.is_none() && policy.keep_monthly.is_none() {
        return Vec::new();
    }
    let mut newest_first: Vec<&Snapshot> = complete.iter().collect();
    newest_first.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(b.id.cmp(&a.id)));
    let mut keep: HashSet<SnapshotId> = HashSet::new();
    if let Some(n) = policy.keep_last {
        keep.extend(newest_first.iter().take(n as usize).map(|s| s.id));
    }
    let mut bucketed = |n: Option<u32>, bucket: &dyn Fn(&Snapshot) -> (i32, u32, u32)| {
        let Some(n) = n else { return };
        let mut seen = Vec::new();
        for s in &newest_first {
            let b = bucket(s);
            if !seen.contains(&b) {
                if seen.len() == n as usize {
                    break;
                }
                seen.push(b);
                keep.insert(s.id);
            }
        }
    };
    bucketed(policy.keep_daily, &|s| {
        (s.timestamp.year(), s.timestamp.month(), s.timestamp.day())
    });
    bucketed(policy.keep_monthly, &|s| {
        (s.timestamp.year(), s.timestamp.month(), 0)
    });
    keep.extend(pinned.iter().copied());
    newest_first
        .iter()
        .filter(|s| !keep.contains(&s.id))
        .map(|s| s.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use westtek_domain::*;

    fn snap(y: i32, m: u32, d: u32, h: u32) -> Snapshot {
        Snapshot {
            id: SnapshotId::new(),
            lab_id: LabId::new(),
            environment_id: EnvironmentId::new(),
            created_by: UserId::new(),
            timestamp: Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap(),
            status: SnapshotStatus::Complete,
            s3_location: String::new(),
            vault_snapshot_id: None,
            size_bytes: 0,
            stored_bytes_added: 0,
            checksum: None,
            container_image: None,
            efs_snapshot_id: None,
            ebs_snapshot_id: None,
            metadata: SnapshotMetadata::default(),
            parent_id: None,
            drill: None,
        }
    }

    #[test]
    fn no_rule_keeps_everything() {
        let s = vec![snap(2026, 1, 1, 1), snap(2026, 1, 2, 1)];
        assert!(to_expire(&s, &RetentionPolicy::default(), &[]).is_empty());
    }

    #[test]
    fn keep_last_keeps_the_newest_and_a_pinned_baseline() {
        let s = vec![
            snap(2026, 1, 1, 1),
            snap(2026, 1, 2, 1),
            snap(2026, 1, 3, 1),
            snap(2026, 1, 4, 1),
        ];
        let policy = RetentionPolicy {
            keep_last: Some(2),
            ..Default::default()
        };
        let gone = to_expire(&s, &policy, &[s[0].id]);
        assert_eq!(gone, vec![s[1].id]);
    }

    #[test]
    fn daily_and_monthly_keep_the_newest_of_each_bucket() {
        let s = vec![
            snap(2026, 3, 10, 9),
            snap(2026, 3, 10, 17), // newest of 10 March
            snap(2026, 3, 11, 8),  // newest of 11 March
            snap(2026, 2, 5, 8),   // newest of February
            snap(2026, 2, 1, 8),
        ];
        let daily = RetentionPolicy {
            keep_daily: Some(2),
            ..Default::default()
        };
        let mut gone = to_expire(&s, &daily, &[]);
        gone.sort();
        let mut want = vec![s[0].id, s[3].id, s[4].id];
        want.sort();
        assert_eq!(gone, want);
        let monthly = RetentionPolicy {
            keep_monthly: Some(2),
            ..Default::default()
        };
        let mut gone = to_expire(&s, &monthly, &[]);
        gone.sort();
        let mut want = vec![s[0].id, s[1].id, s[4].id];
        want.sort();
        assert_eq!(gone, want);
    }
}
