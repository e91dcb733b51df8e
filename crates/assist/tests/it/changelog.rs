//! `read_package_metadata` and `changelog_for` against hand-written
//! site-packages folders.

use std::path::Path;

use westtek_assist::changelog::PackageChange;
use westtek_assist::{changelog_for, read_package_metadata};
use westtek_inventory::VersionDistance;

const METADATA: &str = "Metadata-Version: 2.3
Name: typing_extensions
Version: 4.12.2
Summary: Backported and Experimental Type Hints for Python 3.8+
Requires-Python: >=3.8
Project-URL: Bug Tracker, https://github.com/python/typing_extensions/issues
Project-URL: Changes, https://github.com/python/typing_extensions/blob/main/CHANGELOG.md
Project-URL: Documentation, https://typing-extensions.readthedocs.io/
Project-URL: Home, https://github.com/python/typing_extensions
Requires-Dist: something>=1; python_version < \"3.9\"
Description-Content-Type: text/markdown

Project-URL: Fake, https://not-a-header.example
";

fn install(site: &Path, folder: &str, metadata: &str) {
    let dir = site.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("METADATA"), metadata).unwrap();
}

#[test]
fn metadata_is_read_from_the_dist_info_folder_by_normalised_name() {
    let site = tempfile::tempdir().unwrap();
    install(site.path(), "typing_extensions-4.12.2.dist-info", METADATA);
    install(
        site.path(),
        "other-1.0.dist-info",
        "Name: other\nVersion: 1.0\n",
    );

    for spelling in [
        "typing-extensions",
        "Typing_Extensions",
        "typing.extensions",
    ] {
        let m = read_package_metadata(site.path(), spelling).unwrap();
        assert_eq!(m.package, "typing-extensions");
        assert_eq!(m.new_version.as_deref(), Some("4.12.2"));
        assert_eq!(m.old_version, None);
        assert_eq!(m.change, None);
        assert_eq!(
            m.summary.as_deref(),
            Some("Backported and Experimental Type Hints for Python 3.8+")
        );
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(m.requires_dist, ["something>=1; python_version < \"3.9\""]);
        let labels: Vec<&str> = m.project_urls.iter().map(|u| u.label.as_str()).collect();
        assert_eq!(labels, ["Bug Tracker", "Changes", "Documentation", "Home"]);
        assert_eq!(
            m.changelog_url.as_deref(),
            Some("https://github.com/python/typing_extensions/blob/main/CHANGELOG.md")
        );
        assert_eq!(
            m.metadata_path.as_deref(),
            Some("typing_extensions-4.12.2.dist-info/METADATA")
        );
    }
    assert!(read_package_metadata(site.path(), "typing").is_none());
    assert!(read_package_metadata(site.path(), "../typing_extensions").is_none());
    assert!(read_package_metadata(&site.path().join("missing"), "other").is_none());
}

#[test]
fn of_two_installs_of_a_package_the_highest_version_wins() {
    let site = tempfile::tempdir().unwrap();
    install(
        site.path(),
        "demo-1.10.0.dist-info",
        "Name: demo\nVersion: 1.10.0\n",
    );
    install(
        site.path(),
        "demo-1.9.0.dist-info",
        "Name: demo\nVersion: 1.9.0\n",
    );
    let m = read_package_metadata(site.path(), "demo").unwrap();
    assert_eq!(m.new_version.as_deref(), Some("1.10.0"));
}

#[test]
fn a_change_to_the_installed_version_carries_its_metadata() {
    let site = tempfile::tempdir().unwrap();
    install(site.path(), "typing_extensions-4.12.2.dist-info", METADATA);
    let c = changelog_for(
        site.path(),
        "typing-extensions",
        Some("3.10.0"),
        Some("4.12.2"),
    );
    assert_eq!(c.change, Some(PackageChange::Upgraded));
    assert_eq!(c.distance, Some(VersionDistance::Major));
    assert!(c.note.contains("breaking API changes"), "{}", c.note);
    assert!(c.changelog_url.is_some());
    assert!(c.metadata_path.is_some());

    // Metadata of another version would describe the wrong release.
    let c = changelog_for(
        site.path(),
        "typing-extensions",
        Some("4.12.2"),
        Some("4.13.0"),
    );
    assert_eq!(c.metadata_path, None);
    assert_eq!(c.distance, Some(VersionDistance::Minor));

    // A removed package has no metadata left.
    let c = changelog_for(site.path(), "gone", Some("1.0"), None);
    assert_eq!(c.change, Some(PackageChange::Removed));
    assert_eq!(c.metadata_path, None);
}
