//! How far apart two versions of a package are, by PEP 440 (`pep440_rs`),
//! never by splitting strings by hand: `1.0` equals `1.0.0`, `2.0.0rc1` is
//! before `2.0.0`, epochs and local labels count.

use pep440_rs::Version;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::str::FromStr;

/// The most significant part of a version that changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionDistance {
    /// First release segment (`1.26.4` → `2.0.0`).
    Major,
    /// Second release segment (`2.1.0` → `2.2.0`).
    Minor,
    /// Third or later release segment, or a post-release (`2.1.0` → `2.1.1`,
    /// `1.0` → `1.0.post1`).
    Patch,
    /// Same release, different pre- or dev-release (`2.0.0rc1` → `2.0.0`).
    PreRelease,
    /// Epoch or local label changed (`1!1.0`, `2.1+cpu` → `2.1+cu121`: a
    /// different build of the same number), or a version is not PEP 440.
    Other,
}

impl VersionDistance {
    /// Anything but a patch: what makes a change to an imported module
    /// critical.
    pub fn beyond_patch(self) -> bool {
        self != Self::Patch
    }
}

/// Direction and distance of a version change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VersionChange {
    Same,
    Upgrade(VersionDistance),
    Downgrade(VersionDistance),
    /// At least one side is not a PEP 440 version and the strings differ.
    Unordered,
}

/// The distance between two versions; `None` when they are equal by PEP 440
/// (`1.0` and `1.0.0`). A version that does not parse is [`VersionDistance::Other`]
/// from any different string.
pub fn version_distance(before: &str, after: &str) -> Option<VersionDistance> {
    match compare(before, after) {
        VersionChange::Same => None,
        VersionChange::Upgrade(d) | VersionChange::Downgrade(d) => Some(d),
        VersionChange::Unordered => Some(VersionDistance::Other),
    }
}

/// How `after` orders against `before` by PEP 440; `None` when either is
/// not a PEP 440 version.
pub fn version_order(before: &str, after: &str) -> Option<Ordering> {
    let a = Version::from_str(before.trim()).ok()?;
    let b = Version::from_str(after.trim()).ok()?;
    Some(b.cmp(&a))
}

pub(crate) fn compare(before: &str, after: &str) -> VersionChange {
    let (Ok(a), Ok(b)) = (
        Version::from_str(before.trim()),
        Version::from_str(after.trim()),
    ) else {
        return if before.trim() == after.trim() {
            VersionChange::Same
        } else {
            VersionChange::Unordered
        };
    };
    let distance = distance(&a, &b);
    match (a.cmp(&b), distance) {
        (Ordering::Equal, _) | (_, None) => VersionChange::Same,
        (Ordering::Less, Some(d)) => VersionChange::Upgrade(d),
        (Ordering::Greater, Some(d)) => VersionChange::Downgrade(d),
    }
}

fn distance(a: &Version, b: &Version) -> Option<VersionDistance> {
    if a == b {
        return None;
    }
    if a.epoch() != b.epoch() {
        return Some(VersionDistance::Other);
    }
    let (ra, rb) = (a.release(), b.release());
    let len = ra.len().max(rb.len());
    let segment = |r: &[u64], i: usize| r.get(i).copied().unwrap_or(0);
    if let Some(i) = (0..len).find(|&i| segment(ra, i) != segment(rb, i)) {
        return Some(match i {
            0 => VersionDistance::Major,
            1 => VersionDistance::Minor,
            _ => VersionDistance::Patch,
        });
    }
    if a.pre() != b.pre() || a.dev() != b.dev() {
        return Some(VersionDistance::PreRelease);
    }
    if a.post() != b.post() {
        return Some(VersionDistance::Patch);
    }
    // Only the local label differs.
    Some(VersionDistance::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use VersionDistance::*;

    #[test]
    fn a_new_first_segment_is_a_major_change() {
        assert_eq!(version_distance("1.26.4", "2.0.0"), Some(Major));
    }

    #[test]
    fn a_new_second_segment_is_a_minor_change() {
        assert_eq!(version_distance("2.1.0", "2.2.0"), Some(Minor));
        assert_eq!(version_distance("2.1", "2.2.0"), Some(Minor));
    }

    #[test]
    fn a_new_third_segment_is_a_patch() {
        assert_eq!(version_distance("2.1.0", "2.1.1"), Some(Patch));
        assert_eq!(version_distance("6.0.1", "6.0.2"), Some(Patch));
        assert_eq!(version_distance("1.2.3.4", "1.2.3.5"), Some(Patch));
    }

    #[test]
    fn a_release_candidate_becoming_final_is_a_pre_release_change() {
        assert_eq!(version_distance("2.0.0rc1", "2.0.0"), Some(PreRelease));
        assert_eq!(version_distance("2.0.0b1", "2.0.0rc1"), Some(PreRelease));
        assert_eq!(version_distance("2.0.0.dev3", "2.0.0"), Some(PreRelease));
        assert_eq!(
            compare("2.0.0rc1", "2.0.0"),
            VersionChange::Upgrade(PreRelease)
        );
    }

    #[test]
    fn a_pre_release_of_a_new_major_counts_as_major() {
        assert_eq!(version_distance("1.26.4", "2.0.0rc1"), Some(Major));
    }

    #[test]
    fn a_post_release_is_a_patch() {
        assert_eq!(version_distance("1.0", "1.0.post1"), Some(Patch));
    }

    #[test]
    fn equal_versions_spelled_differently_are_the_same() {
        assert_eq!(version_distance("1.0", "1.0.0"), None);
        assert_eq!(version_distance("2.0.0RC1", "2.0.0rc1"), None);
        assert_eq!(compare("1.0", "1.0.0"), VersionChange::Same);
    }

    #[test]
    fn a_different_local_label_is_another_build() {
        assert_eq!(version_distance("2.1.0+cpu", "2.1.0+cu121"), Some(Other));
        assert_eq!(version_distance("2.1.0", "2.1.0+cpu"), Some(Other));
    }

    #[test]
    fn a_local_label_does_not_hide_a_release_change() {
        assert_eq!(version_distance("2.1.0+cpu", "2.2.0+cpu"), Some(Minor));
    }

    #[test]
    fn a_new_epoch_is_other() {
        assert_eq!(version_distance("2024.1", "1!1.0"), Some(Other));
        assert_eq!(compare("2024.1", "1!1.0"), VersionChange::Upgrade(Other));
    }

    #[test]
    fn a_downgrade_has_the_same_distance_as_the_upgrade() {
        assert_eq!(compare("2.0.0", "1.26.4"), VersionChange::Downgrade(Major));
        assert_eq!(compare("6.0.2", "6.0.1"), VersionChange::Downgrade(Patch));
        assert_eq!(
            compare("2.0.0", "2.0.0rc1"),
            VersionChange::Downgrade(PreRelease)
        );
    }

    #[test]
    fn a_version_that_is_not_pep_440_is_other_and_unordered() {
        assert_eq!(version_distance("not-a-version", "1.0"), Some(Other));
        assert_eq!(compare("weird", "weirder"), VersionChange::Unordered);
        assert_eq!(compare("weird", "weird"), VersionChange::Same);
    }

    #[test]
    fn only_a_patch_stays_within_patch_level() {
        assert!(!Patch.beyond_patch());
        for d in [Major, Minor, PreRelease, Other] {
            assert!(d.beyond_patch());
        }
    }
}
