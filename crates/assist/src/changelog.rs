//! What a package's own metadata says about a version change, offline.
//!
//! `GetPackageChangelog` answers from the installed distribution's
//! `*.dist-info/METADATA` (summary, project URLs — among them, often, a
//! changelog —, `Requires-Python`, `Requires-Dist`) and from the versions
//! themselves (how far apart, in which direction, and what that usually
//! means, in a plain-language [`PackageChangelog::note`]).
//!
//! Policy: no network, ever — the release notes are linked, not fetched. The
//! package name is only compared with folder names, never joined into a
//! path. Only METADATA's header block is read (up to [`MAX_HEADER_BYTES`]):
//! the long description after it can be large and says nothing we use.

use std::cmp::Ordering;
use std::io::{BufReader, Read};
use std::path::Path;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use serde::{Deserialize, Serialize};
use westtek_inventory::{
    normalize_name, parse_headers, version_distance, ProjectUrl, VersionDistance,
};

/// The most of METADATA read while looking for the end of the headers.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Which way a package moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageChange {
    /// It was installed.
    Added,
    /// It was removed.
    Removed,
    /// Its version went up.
    Upgraded,
    /// Its version went down.
    Downgraded,
    /// The same version again, from another source.
    Reinstalled,
    /// Its version changed in a way PEP 440 cannot order.
    Changed,
}

/// What is known offline about a package's change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageChangelog {
    /// The package's name, PEP 503 normalised (`scikit-learn`).
    pub package: String,
    /// The version before, if it was installed before.
    pub old_version: Option<String>,
    /// The version now, if it is installed now.
    pub new_version: Option<String>,
    /// Which way it moved; `None` when only one version is known and it is
    /// not known whether the package was added.
    pub change: Option<PackageChange>,
    /// How far the version moved (PEP 440), when both are known and differ.
    pub distance: Option<VersionDistance>,
    /// METADATA `Summary`.
    pub summary: Option<String>,
    /// METADATA `Home-page`.
    pub home_page: Option<String>,
    /// METADATA `Project-URL`s, in file order.
    pub project_urls: Vec<ProjectUrl>,
    /// The project URL labelled as a changelog (`Changelog`, `Changes`,
    /// `Release Notes`, `History`, …), if any.
    pub changelog_url: Option<String>,
    /// METADATA `Requires-Python`.
    pub requires_python: Option<String>,
    /// METADATA `Requires-Dist`, verbatim, in file order.
    pub requires_dist: Vec<String>,
    /// The METADATA file the fields come from, relative to site-packages
    /// (`requests-3.0.0.dist-info/METADATA`); `None` when none was read.
    pub metadata_path: Option<String>,
    /// What the change usually means, in a plain-language sentence.
    pub note: String,
}

impl PackageChangelog {
    /// A changelog from the versions alone, without metadata.
    pub fn from_versions(
        package: &str,
        old_version: Option<&str>,
        new_version: Option<&str>,
    ) -> Self {
        PackageChangelog {
            package: normalize_name(package),
            old_version: None,
            new_version: None,
            change: None,
            distance: None,
            summary: None,
            home_page: None,
            project_urls: Vec::new(),
            changelog_url: None,
            requires_python: None,
            requires_dist: Vec::new(),
            metadata_path: None,
            note: String::new(),
        }
        .with_versions(old_version, new_version)
    }

    /// The same metadata for a change from `old_version` to `new_version`:
    /// direction, distance and note recomputed.
    pub fn with_versions(mut self, old_version: Option<&str>, new_version: Option<&str>) -> Self {
        let clean = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        self.old_version = clean(old_version);
        self.new_version = clean(new_version);
        let (change, distance) = match (&self.old_version, &self.new_version) {
            (None, Some(_)) => (Some(PackageChange::Added), None),
            (Some(_), None) => (Some(PackageChange::Removed), None),
            (Some(old), Some(new)) => {
                let distance = version_distance(old, new);
                (Some(direction(old, new)), distance)
            }
            (None, None) => (None, None),
        };
        self.change = change;
        self.distance = distance;
        self.note = note(
            self.change,
            distance,
            self.old_version.as_deref(),
            self.new_version.as_deref(),
        );
        self
    }

    /// Whether `python_version` (`3.9.18`) fails this version's
    /// `Requires-Python`; `None` when either does not parse or none is
    /// declared.
    pub fn excludes_python(&self, python_version: &str) -> Option<bool> {
        let spec = VersionSpecifiers::from_str(self.requires_python.as_deref()?).ok()?;
        let version = Version::from_str(python_version.trim()).ok()?;
        Some(!spec.contains(&version))
    }
}

fn direction(old: &str, new: &str) -> PackageChange {
    match (Version::from_str(old), Version::from_str(new)) {
        (Ok(o), Ok(n)) => match o.cmp(&n) {
            Ordering::Less => PackageChange::Upgraded,
            Ordering::Greater => PackageChange::Downgraded,
            Ordering::Equal => PackageChange::Reinstalled,
        },
        _ if old == new => PackageChange::Reinstalled,
        _ => PackageChange::Changed,
    }
}

/// The plain-language sentence for a change.
fn note(
    change: Option<PackageChange>,
    distance: Option<VersionDistance>,
    old: Option<&str>,
    new: Option<&str>,
) -> String {
    use PackageChange::*;
    use VersionDistance::*;
    let old = old.unwrap_or("the previous version");
    match (change, distance) {
        (Some(Added), _) => "A newly installed package does not change notebooks that do not import it, though installing it may have upgraded shared dependencies.".into(),
        (Some(Removed), _) => "A removed package makes every notebook that imports it stop with ModuleNotFoundError.".into(),
        (Some(Reinstalled), _) => "The same version reinstalled from another source (a different commit, archive or path) can contain different code.".into(),
        (Some(Upgraded), Some(Major)) => format!("A major version jump usually means breaking API changes: code written for {old} may fail or behave differently."),
        (Some(Downgraded), Some(Major)) => "Going back a major version usually means API differences: code written for the newer version may fail or behave differently.".into(),
        (Some(Upgraded), Some(Minor)) => "A minor version usually adds features and may deprecate or subtly change existing behaviour.".into(),
        (Some(Downgraded), Some(Minor)) => "Going back a minor version can remove features and fixes that newer code relies on.".into(),
        (Some(Upgraded | Downgraded), Some(Patch)) => "A patch release usually only fixes bugs, though a fix can still change results that depended on the old behaviour.".into(),
        (Some(Upgraded | Downgraded), Some(PreRelease)) => "Pre-releases are not final: behaviour can differ between a pre-release and the final version.".into(),
        (Some(Upgraded | Downgraded | Changed), Some(Other)) | (Some(Changed), _) => "A different build of the package (another epoch, local label or non-standard version) can be compiled differently or come from another source.".into(),
        (Some(Upgraded | Downgraded), None) => "The version changed.".into(),
        (None, _) => match new {
            Some(v) => format!("Version {v} is installed."),
            None => "Nothing is known about its versions.".into(),
        },
    }
}

/// The installed distribution `package` (any spelling: `PyYAML`, `pyyaml`,
/// `scikit_learn`) in `site_packages`, read from its
/// `<name>-<version>.dist-info/METADATA`. The result has the installed
/// version as `new_version` and no old version; use
/// [`PackageChangelog::with_versions`] for a change. When several
/// `dist-info` folders match (a broken install), the highest version wins.
/// `None` when it is not installed or METADATA cannot be read.
pub fn read_package_metadata(site_packages: &Path, package: &str) -> Option<PackageChangelog> {
    let wanted = normalize_name(package);
    if wanted.is_empty() {
        return None;
    }
    let mut best: Option<(String, String)> = None; // (folder, version)
    for entry in std::fs::read_dir(site_packages).ok()?.flatten() {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = folder.strip_suffix(".dist-info") else {
            continue;
        };
        // Installers escape `-` in the name to `_`, so the first `-` ends it.
        let Some((name, version)) = stem.split_once('-') else {
            continue;
        };
        if normalize_name(name) != wanted {
            continue;
        }
        let better = match &best {
            None => true,
            Some((_, v)) => match (Version::from_str(version), Version::from_str(v)) {
                (Ok(a), Ok(b)) => a > b,
                _ => version > v.as_str(),
            },
        };
        if better {
            best = Some((folder.clone(), version.to_string()));
        }
    }
    let (folder, folder_version) = best?;
    let file = std::fs::File::open(site_packages.join(&folder).join("METADATA")).ok()?;
    let headers = parse_headers(BufReader::new(file.take(MAX_HEADER_BYTES))).ok()?;
    let version = headers.version.clone().unwrap_or(folder_version);
    let changelog_url = pick_changelog_url(&headers.project_urls);
    let base = PackageChangelog {
        package: wanted,
        old_version: None,
        new_version: None,
        change: None,
        distance: None,
        summary: headers.summary,
        home_page: headers.home_page,
        project_urls: headers.project_urls,
        changelog_url,
        requires_python: headers.requires_python,
        requires_dist: headers.requires_dist,
        metadata_path: Some(format!("{folder}/METADATA")),
        note: String::new(),
    };
    let mut out = base.with_versions(None, Some(&version));
    // Only the installed version is known, not whether it was just added.
    out.change = None;
    out.note = note(None, None, None, Some(&version));
    Some(out)
}

/// [`GetPackageChangelog`](crate::DriftTools::get_package_changelog) offline:
/// the installed metadata of `package` in `site_packages` when its version
/// is `new_version`, else the versions alone (metadata of another version
/// would describe the wrong release).
pub fn changelog_for(
    site_packages: &Path,
    package: &str,
    old_version: Option<&str>,
    new_version: Option<&str>,
) -> PackageChangelog {
    let installed = new_version.and_then(|new| {
        read_package_metadata(site_packages, package).filter(|m| {
            m.new_version
                .as_deref()
                .is_some_and(|v| version_distance(v, new).is_none())
        })
    });
    match installed {
        Some(m) => m.with_versions(old_version, new_version),
        None => PackageChangelog::from_versions(package, old_version, new_version),
    }
}

/// Project-URL labels that name a changelog, best first, compared
/// lower-cased with everything but letters removed.
const CHANGELOG_LABELS: [&str; 7] = [
    "changelog",
    "changes",
    "releasenotes",
    "history",
    "changelogs",
    "whatsnew",
    "news",
];

fn pick_changelog_url(urls: &[ProjectUrl]) -> Option<String> {
    urls.iter()
        .filter_map(|u| {
            let label: String = u
                .label
                .chars()
                .filter(|c| c.is_alphabetic())
                .flat_map(char::to_lowercase)
                .collect();
            CHANGELOG_LABELS
                .iter()
                .position(|l| *l == label)
                .map(|rank| (rank, u))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, u)| u.url.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use westtek_inventory::MetadataHeaders as Headers;

    #[test]
    fn headers_stop_at_the_first_empty_line_and_join_continuations() {
        let text = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: A demo\n  package\nRequires-Dist: a>=1\nRequires-Dist: b; extra == \"x\"\n\nSummary: not a header\n";
        let h = parse_headers(text.as_bytes()).unwrap();
        assert_eq!(h.summary.as_deref(), Some("A demo package"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.requires_dist, ["a>=1", "b; extra == \"x\""]);
    }

    #[test]
    fn unknown_values_are_left_out() {
        let h = parse_headers("Summary: UNKNOWN\nHome-page: UNKNOWN\n".as_bytes()).unwrap();
        assert_eq!(h, Headers::default());
    }

    #[test]
    fn the_changelog_label_is_picked_over_other_urls() {
        let url = |label: &str, url: &str| ProjectUrl {
            label: label.into(),
            url: url.into(),
        };
        let urls = [
            url("Source", "https://s"),
            url("History", "https://h"),
            url("Release Notes", "https://r"),
        ];
        assert_eq!(pick_changelog_url(&urls).as_deref(), Some("https://r"));
        assert_eq!(pick_changelog_url(&urls[..1]), None);
        assert_eq!(
            pick_changelog_url(&[url("Change-Log", "https://c")]).as_deref(),
            Some("https://c")
        );
    }

    #[test]
    fn a_major_upgrade_warns_of_breaking_changes() {
        let c = PackageChangelog::from_versions("Requests", Some("2.32.3"), Some("3.0.0"));
        assert_eq!(c.package, "requests");
        assert_eq!(c.change, Some(PackageChange::Upgraded));
        assert_eq!(c.distance, Some(VersionDistance::Major));
        assert!(c.note.contains("breaking API changes"), "{}", c.note);
        assert!(c.note.contains("2.32.3"));
    }

    #[test]
    fn direction_and_distance_follow_pep_440() {
        let c = PackageChangelog::from_versions("numpy", Some("2.0.0"), Some("1.26.4"));
        assert_eq!(c.change, Some(PackageChange::Downgraded));
        assert_eq!(c.distance, Some(VersionDistance::Major));
        let c = PackageChangelog::from_versions("tqdm", Some("4.66.1"), Some("4.66.4"));
        assert_eq!(c.distance, Some(VersionDistance::Patch));
        assert!(c.note.contains("fixes bugs"));
        let c = PackageChangelog::from_versions("x", Some("1.0"), Some("1.0.0"));
        assert_eq!(c.change, Some(PackageChange::Reinstalled));
        let c = PackageChangelog::from_versions("x", None, Some("1.0"));
        assert_eq!(c.change, Some(PackageChange::Added));
        let c = PackageChangelog::from_versions("x", Some("1.0"), None);
        assert_eq!(c.change, Some(PackageChange::Removed));
        assert!(c.note.contains("ModuleNotFoundError"));
    }

    #[test]
    fn requires_python_is_checked_by_pep_440() {
        let mut c = PackageChangelog::from_versions("x", None, Some("1"));
        assert_eq!(c.excludes_python("3.9.18"), None);
        c.requires_python = Some(">=3.10".into());
        assert_eq!(c.excludes_python("3.9.18"), Some(true));
        assert_eq!(c.excludes_python("3.11"), Some(false));
    }
}
