//! `diff` between inventories of a real environment before and after real
//! changes: `uv pip install`/`uninstall`, edits of notebooks, data, kernels,
//! config and extensions.

use std::fs;

use westtek_inventory::{
    diff, drift_status, inventory, Change, DriftStatus, Finding, FindingKind, Severity,
    VersionDistance,
};

use crate::support::*;

fn both_notebooks() -> Vec<String> {
    vec![ANALYSIS_NB.to_string(), UNICODE_NB.to_string()]
}

fn only(findings: &[Finding]) -> &Finding {
    assert_eq!(findings.len(), 1, "{findings:#?}");
    &findings[0]
}

#[test]
fn an_unrelated_install_is_minor_a_patch_is_minor_and_a_vanished_import_is_critical() {
    let s = scratch("diff-packages");
    let root = scratch_env(&s, "env");
    let start = inventory(&root).unwrap();

    uv_pip(&root, &["install", "-q", "tqdm"]);
    let with_tqdm = inventory(&root).unwrap();
    let f = diff(&start, &with_tqdm);
    let added = only(&f);
    assert_eq!(added.kind, FindingKind::PackageAdded);
    assert_eq!(added.subject, "tqdm");
    assert_eq!(added.severity, Severity::Minor);
    assert!(added.affected_notebooks.is_empty());
    assert_eq!(drift_status(&f), DriftStatus::MinorDrift);

    uv_pip(&root, &["install", "-q", "pyyaml==6.0.1"]);
    let yaml_601 = inventory(&root).unwrap();
    uv_pip(&root, &["install", "-q", "pyyaml==6.0.2"]);
    let yaml_602 = inventory(&root).unwrap();
    let f = diff(&yaml_601, &yaml_602);
    let patch = only(&f);
    assert_eq!(patch.kind, FindingKind::PackageUpgraded);
    assert_eq!(patch.subject, "pyyaml");
    assert_eq!(
        (patch.before.as_deref(), patch.after.as_deref()),
        (Some("6.0.1"), Some("6.0.2"))
    );
    assert_eq!(patch.distance, Some(VersionDistance::Patch));
    assert_eq!(
        patch.severity,
        Severity::Minor,
        "a patch of an imported module stays minor"
    );
    assert_eq!(
        patch.affected_notebooks,
        both_notebooks(),
        "yaml links to pyyaml"
    );

    uv_pip(&root, &["uninstall", "-q", "pyyaml"]);
    let without_yaml = inventory(&root).unwrap();
    let f = diff(&yaml_602, &without_yaml);
    let removed = only(&f);
    assert_eq!(removed.kind, FindingKind::PackageRemoved);
    assert_eq!(removed.severity, Severity::Critical);
    assert_eq!(removed.affected_notebooks, both_notebooks());
    assert_eq!(drift_status(&f), DriftStatus::CriticalDrift);
}

#[test]
fn minor_and_major_numpy_changes_are_critical_for_the_notebooks_importing_it() {
    let s = scratch("diff-numpy");
    let root = scratch_env(&s, "env");
    uv_pip(&root, &["install", "-q", "numpy==2.2.6"]);
    let v226 = inventory(&root).unwrap();
    uv_pip(&root, &["install", "-q", "numpy==2.3.0"]);
    let v230 = inventory(&root).unwrap();
    uv_pip(&root, &["install", "-q", "numpy==1.26.4"]);
    let v1264 = inventory(&root).unwrap();

    let f = diff(&v226, &v230);
    let minor = only(&f);
    assert_eq!(minor.kind, FindingKind::PackageUpgraded);
    assert_eq!(minor.distance, Some(VersionDistance::Minor));
    assert_eq!(minor.severity, Severity::Critical);
    assert_eq!(minor.affected_notebooks, both_notebooks());

    let f = diff(&v230, &v1264);
    let major = only(&f);
    assert_eq!(major.kind, FindingKind::PackageDowngraded);
    assert_eq!(major.distance, Some(VersionDistance::Major));
    assert_eq!(major.severity, Severity::Critical);
    assert_eq!(
        (major.before.as_deref(), major.after.as_deref()),
        (Some("2.3.0"), Some("1.26.4"))
    );
}

#[test]
fn edits_of_notebooks_data_kernels_config_and_extensions_are_classified() {
    let s = scratch("diff-files");
    let root = scratch_env(&s, "env");
    let before = inventory(&root).unwrap();

    let nb = root.join(ANALYSIS_NB);
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(&nb).unwrap()).unwrap();
    doc["cells"].as_array_mut().unwrap().push(serde_json::json!(
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null, "source": ["print(1)\n"]}
    ));
    fs::write(&nb, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    fs::write(
        root.join("home/new.ipynb"),
        notebook(&[("code", "import json\n")], KERNEL),
    )
    .unwrap();
    fs::write(root.join("home/data/measurements.csv"), "a,b\n1,2\n3,5\n").unwrap();
    fs::write(root.join("home/data/extra.parquet"), b"PAR1").unwrap();
    fs::remove_file(root.join("home/data/empty.bin")).unwrap();
    let spec = root.join(format!("jupyter/data/kernels/{KERNEL}/kernel.json"));
    let text = fs::read_to_string(&spec)
        .unwrap()
        .replace("Fixture Python", "Renamed Python");
    fs::write(&spec, text).unwrap();
    fs::write(
        root.join("jupyter/config/jupyter_server_config.json"),
        "{\"ServerApp\": {\"jpserver_extensions\": {\"westtek_demo\": false}}}\n",
    )
    .unwrap();
    let pkg = root.join("jupyter/data/labextensions/@westtek/fake-ext/package.json");
    fs::write(
        &pkg,
        "{\"name\": \"@westtek/fake-ext\", \"version\": \"2.0.0\"}\n",
    )
    .unwrap();
    fs::write(
        root.join("jupyter/config/lab/workspaces/default-37a8.jupyterlab-workspace"),
        "{\"moved\": 1}",
    )
    .unwrap();

    let f = diff(&before, &inventory(&root).unwrap());
    let summary: Vec<(FindingKind, &str, Severity, Vec<&str>)> = f
        .iter()
        .map(|x| {
            (
                x.kind,
                x.subject.as_str(),
                x.severity,
                x.affected_notebooks.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                FindingKind::KernelChanged,
                KERNEL,
                Severity::Critical,
                vec![ANALYSIS_NB, "home/new.ipynb", UNICODE_NB]
            ),
            (
                FindingKind::ExtensionChanged(Change::Modified),
                "@westtek/fake-ext",
                Severity::Minor,
                vec![]
            ),
            (
                FindingKind::ExtensionChanged(Change::Modified),
                "westtek_demo",
                Severity::Minor,
                vec![]
            ),
            (
                FindingKind::ConfigChanged(Change::Modified),
                "jupyter/config/jupyter_server_config.json",
                Severity::Minor,
                vec![]
            ),
            (
                FindingKind::NotebookAdded,
                "home/new.ipynb",
                Severity::Info,
                vec!["home/new.ipynb"]
            ),
            (
                FindingKind::NotebookChanged,
                ANALYSIS_NB,
                Severity::Info,
                vec![ANALYSIS_NB]
            ),
            (
                FindingKind::DataAdded,
                "home/data/extra.parquet",
                Severity::Info,
                vec![]
            ),
            (
                FindingKind::DataChanged,
                "home/data/measurements.csv",
                Severity::Info,
                vec![ANALYSIS_NB]
            ),
            (
                FindingKind::DataRemoved,
                "home/data/empty.bin",
                Severity::Info,
                vec![]
            ),
        ]
    );
    let ext = f.iter().find(|x| x.subject == "@westtek/fake-ext").unwrap();
    assert_eq!(ext.distance, Some(VersionDistance::Major));
    let kernel = &f[0];
    assert!(kernel.before.as_deref().unwrap().contains("Fixture Python"));
    assert!(kernel.after.as_deref().unwrap().contains("Renamed Python"));
}

/// An installed interpreter whose version differs from the fixture's, as
/// uv sees them (or `WESTTEK_TEST_PYTHON_OTHER`).
fn other_python(fixture_version: &str) -> Option<(String, String)> {
    if let Ok(p) = std::env::var("WESTTEK_TEST_PYTHON_OTHER") {
        return Some((p, String::new()));
    }
    let list = run(uv().args([
        "python",
        "list",
        "--only-installed",
        "--output-format",
        "json",
    ]));
    let list: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    list.iter()
        .filter(|p| p["version"].as_str() != Some(fixture_version))
        .filter(|p| !p["path"].as_str().unwrap_or_default().contains("/shims/"))
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .next()
}

#[test]
fn a_different_interpreter_version_is_critical() {
    let s = scratch("diff-python");
    let fixture_inv = inventory(&fixture().root).unwrap();
    let fixture_version = fixture_inv.python.version.clone().unwrap();
    let Some((other, other_version)) = other_python(&fixture_version) else {
        eprintln!("no second interpreter installed; only the unit test covers PythonChanged");
        return;
    };
    let root = s.dir.join("other");
    run(uv()
        .args(["venv", "-q", "--python", &other])
        .arg(root.join("venv")));
    copy_tree(&fixture().root.join("home"), &root.join("home"), &|_| true);
    let mut before = fixture_inv;
    before.packages.clear();
    let after = inventory(&root).unwrap();
    let f = diff(&before, &after);
    let changed = f
        .iter()
        .find(|x| x.kind == FindingKind::PythonChanged)
        .unwrap();
    assert_eq!(changed.severity, Severity::Critical);
    assert_eq!(
        changed.before.as_deref().unwrap().split(' ').nth(1),
        Some(fixture_version.as_str())
    );
    if !other_version.is_empty() {
        assert!(changed.after.as_deref().unwrap().contains(&other_version));
    }
    assert_eq!(changed.affected_notebooks, both_notebooks());
}
