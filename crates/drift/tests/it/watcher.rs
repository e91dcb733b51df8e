//! `DriftWatcher` batches and `evaluate` on real changes: `uv pip install`,
//! notebook edits, bytecode writes by the venv's own Python.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use westtek_domain::EnvironmentId;
use westtek_drift::{
    evaluate, DriftState, DriftStatus, DriftWatcher, FindingKind, Severity, WatchConfig,
};

use crate::support::{env, next_batch, notebook, run, uv_pip_install, NOTEBOOK};

/// Longer than the default quiet window plus scheduling noise: a batch that
/// was going to come would have come by then.
const SILENCE: Duration = Duration::from_millis(1500);
const WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn an_install_of_two_packages_is_exactly_one_batch_naming_their_dist_infos() {
    let env = env();
    let (watcher, mut rx) = DriftWatcher::new(WatchConfig::default()).unwrap();
    let id = EnvironmentId::new();
    watcher.watch(id, &env.root).unwrap();

    uv_pip_install(&env.root, &["toolz", "tabulate"]);
    let installed = Instant::now();
    let batch = next_batch(&mut rx, WITHIN).await.expect("a batch");
    let latency = installed.elapsed();
    eprintln!("install → batch: {latency:?}");
    assert!(latency < Duration::from_secs(3), "{latency:?}");
    assert_eq!(batch.env_id, id);
    assert!(!batch.overflow);
    let names: Vec<String> = batch
        .paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    for pkg in ["toolz-", "tabulate-"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(pkg) && n.ends_with(".dist-info")),
            "{pkg}*.dist-info missing from {names:?}"
        );
    }
    // Only site-packages' top level was reported, not the files inside.
    let site = env.root.join("venv/lib");
    for p in &batch.paths {
        let rel = p.strip_prefix(&site).unwrap();
        assert_eq!(rel.components().count(), 3, "{}", p.display());
    }
    assert!(
        next_batch(&mut rx, SILENCE).await.is_none(),
        "a second batch"
    );
}

#[tokio::test]
async fn editing_a_notebook_is_a_batch_naming_it() {
    let env = env();
    let (watcher, mut rx) = DriftWatcher::new(WatchConfig::default()).unwrap();
    let id = EnvironmentId::new();
    watcher.watch(id, &env.root).unwrap();

    let nb = env.root.join(NOTEBOOK);
    fs::write(&nb, notebook("import json\nprint(1)\n")).unwrap();
    let written = Instant::now();
    let batch = next_batch(&mut rx, WITHIN).await.expect("a batch");
    eprintln!("notebook edit → batch: {:?}", written.elapsed());
    assert_eq!(batch.env_id, id);
    assert!(batch.paths.contains(&nb), "{:?}", batch.paths);
    assert!(!batch.overflow);
}

#[tokio::test]
async fn bytecode_written_by_python_alone_is_no_batch_and_no_finding() {
    let env = env();
    let baseline = westtek_inventory::inventory(&env.root).unwrap();
    let (watcher, mut rx) = DriftWatcher::new(WatchConfig::default()).unwrap();
    watcher.watch(EnvironmentId::new(), &env.root).unwrap();

    // A user's Python writes bytecode on first import: site-packages'
    // packages and modules in home/.
    run(Command::new(env.root.join("venv/bin/python"))
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .current_dir(env.root.join("home"))
        .args([
            "-c",
            "import sys; sys.path.insert(0, '.'); import helpers, iniconfig, json, email.mime.text",
        ]));
    assert!(
        env.root.join("home/__pycache__").is_dir(),
        "python wrote no bytecode in home"
    );
    let site_cache = fs::read_dir(env.root.join("venv/lib"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages/iniconfig/__pycache__"))
        .any(|p| p.is_dir());
    assert!(site_cache, "python wrote no bytecode in site-packages");
    fs::write(
        env.root.join("home/__pycache__/extra.cpython-311.pyc"),
        b"\0pyc",
    )
    .unwrap();
    fs::write(env.root.join("home/stray.pyc"), b"\0pyc").unwrap();

    assert!(
        next_batch(&mut rx, SILENCE).await.is_none(),
        "bytecode made a batch"
    );
    let eval = evaluate(&baseline, &env.root, Some(&baseline)).unwrap();
    assert!(eval.findings.is_empty(), "{:?}", eval.findings);
    assert_eq!(eval.status, DriftStatus::Stable);
    assert_eq!(eval.fingerprint, westtek_drift::fingerprint(&[]));
}

#[tokio::test]
async fn evaluate_after_an_install_lists_minor_package_added_findings_with_a_stable_fingerprint() {
    let env = env();
    let baseline = westtek_inventory::inventory(&env.root).unwrap();
    let mut state = DriftState::at_baseline();
    assert!(
        !state
            .observe(&evaluate(&baseline, &env.root, None).unwrap())
            .emit
    );

    uv_pip_install(&env.root, &["toolz", "tabulate"]);
    let started = Instant::now();
    let watched = evaluate(&baseline, &env.root, Some(&baseline)).unwrap();
    eprintln!("evaluate (reusing): {:?}", started.elapsed());
    let added: Vec<&str> = watched
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::PackageAdded)
        .map(|f| f.subject.as_str())
        .collect();
    assert_eq!(added, ["tabulate", "toolz"], "{:?}", watched.findings);
    assert!(watched
        .findings
        .iter()
        .all(|f| f.severity == Severity::Minor));
    assert_eq!(watched.status, DriftStatus::MinorDrift);

    // The same state seen again, by a full sweep this time: same fingerprint, one event.
    let swept = evaluate(&baseline, &env.root, None).unwrap();
    assert_eq!(swept.fingerprint, watched.fingerprint);
    let first = state.observe(&watched);
    assert!(first.emit);
    assert_eq!(first.status, DriftStatus::MinorDrift);
    assert!(!state.observe(&swept).emit);

    // Another change: another fingerprint, another event.
    fs::write(env.root.join(NOTEBOOK), notebook("import toolz\n")).unwrap();
    let edited = evaluate(&baseline, &env.root, Some(&swept.current)).unwrap();
    assert_ne!(edited.fingerprint, swept.fingerprint);
    assert!(state.observe(&edited).emit);
}

#[tokio::test]
async fn unwatch_stops_batches() {
    let env = env();
    let (watcher, mut rx) = DriftWatcher::new(WatchConfig::default()).unwrap();
    let id = EnvironmentId::new();
    watcher.watch(id, &env.root).unwrap();
    assert_eq!(watcher.watched(), vec![id]);
    assert!(watcher.watch(id, &env.root).is_err(), "watched twice");

    assert!(watcher.unwatch(id));
    assert!(watcher.watched().is_empty());
    assert!(!watcher.unwatch(id));
    fs::write(env.root.join(NOTEBOOK), notebook("print(2)\n")).unwrap();
    fs::write(env.root.join("home/new.csv"), "a\n1\n").unwrap();
    assert!(
        next_batch(&mut rx, SILENCE).await.is_none(),
        "batch after unwatch"
    );
}

#[tokio::test]
async fn a_kernel_folder_created_after_watch_starts_is_watched_too() {
    let env = env();
    let (watcher, mut rx) = DriftWatcher::new(WatchConfig::default()).unwrap();
    watcher.watch(EnvironmentId::new(), &env.root).unwrap();

    let kernels = env.root.join("jupyter/data/kernels");
    fs::create_dir_all(kernels.join("k")).unwrap();
    let batch = next_batch(&mut rx, WITHIN).await.expect("a batch");
    assert!(batch.paths.contains(&kernels), "{:?}", batch.paths);

    // Written after the folder appeared: only seen if the watches were re-armed.
    let spec = kernels.join("k/kernel.json");
    fs::write(
        &spec,
        r#"{"argv": ["python"], "display_name": "K", "language": "python"}"#,
    )
    .unwrap();
    let batch = next_batch(&mut rx, WITHIN).await.expect("a second batch");
    assert!(batch.paths.contains(&spec), "{:?}", batch.paths);
}

#[tokio::test]
async fn a_flood_of_files_is_one_overflowing_batch_with_bounded_paths() {
    let env = env();
    let config = WatchConfig {
        max_paths: 50,
        ..WatchConfig::default()
    };
    let (watcher, mut rx) = DriftWatcher::new(config).unwrap();
    watcher.watch(EnvironmentId::new(), &env.root).unwrap();

    let data = env.root.join("home/data");
    fs::create_dir_all(&data).unwrap();
    for i in 0..500 {
        fs::write(data.join(format!("{i}.csv")), "a\n").unwrap();
    }
    let batch = next_batch(&mut rx, WITHIN).await.expect("a batch");
    assert!(batch.overflow);
    assert!(batch.paths.len() <= 50);
    assert!(
        next_batch(&mut rx, SILENCE).await.is_none(),
        "a second batch"
    );
}
