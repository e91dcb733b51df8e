//! Scale check of the drift library: many synthetic environment roots
//! watched by one [`DriftWatcher`], a full [`evaluate`] sweep of all of them,
//! and the batch latency of a few real changes. Prints one JSON object on
//! stdout (progress on stderr); `bench/drift` runs it.
//!
//! ```text
//! cargo run --release -p westtek-drift --example scale -- --envs 1000 --root DIR \
//!     [--packages 5] [--modify 10] [--parallel 2]
//! ```
//!
//! Each root is laid out like a real one (`venv/pyvenv.cfg`,
//! `venv/lib/python3.11/site-packages` with `--packages` `*.dist-info`
//! folders (numpy, tabulate, six, idna, certifi, then synthetic ones) and
//! their packages, `home/` with a notebook and a CSV, `jupyter/`,
//! `ipython/`); existing roots under DIR are reset to that state and reused.
//! The baselines are `westtek_inventory::inventory` of each root at start.
//! The sweep runs `--parallel` evaluations at once, like the drift service
//! (`DriftConfig::max_parallel`, default 2), and the watcher uses the
//! service's debounce (300 ms quiet). A change is the downgrade `uv pip
//! install tabulate==0.8.10` makes: the 0.9.0 `dist-info` replaced by a
//! 0.8.10 one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use westtek_domain::EnvironmentId;
use westtek_drift::{evaluate, DriftWatcher, FindingKind, Inventory, WatchConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

const PACKAGES: &[(&str, &str, &str)] = &[
    ("numpy", "1.26.4", "numpy"),
    ("tabulate", "0.9.0", "tabulate"),
    ("six", "1.16.0", "six"),
    ("idna", "3.6", "idna"),
    ("certifi", "2024.2.2", "certifi"),
];

const NOTEBOOK: &str = r#"{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
  "source": ["import numpy as np\n", "from tabulate import tabulate\n", "print(tabulate([[np.pi]]))\n"]}],
 "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
 "nbformat": 4, "nbformat_minor": 5}"#;

struct Args {
    envs: usize,
    root: PathBuf,
    packages: usize,
    modify: usize,
    parallel: usize,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        envs: 1000,
        root: PathBuf::new(),
        packages: PACKAGES.len(),
        modify: 10,
        parallel: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--envs" => args.envs = value()?.parse()?,
            "--root" => args.root = PathBuf::from(value()?),
            "--packages" => args.packages = value()?.parse()?,
            "--modify" => args.modify = value()?.parse()?,
            "--parallel" => args.parallel = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.root.as_os_str().is_empty() {
        return Err("--root DIR is required".into());
    }
    if args.envs == 0 || args.modify > args.envs || args.parallel == 0 {
        return Err("need --envs ≥ 1, --modify ≤ --envs, --parallel ≥ 1".into());
    }
    if args.packages < PACKAGES.len() {
        return Err(format!("--packages must be at least {}", PACKAGES.len()).into());
    }
    Ok(args)
}

fn site_packages(root: &Path) -> PathBuf {
    root.join("venv/lib/python3.11/site-packages")
}

/// A `*.dist-info` folder; with `with_module`, the package's module too
/// (the synthetic filler distributions go without: the inventory never
/// reads module files, and a million extra inodes only slow the set-up).
fn write_dist(
    sp: &Path,
    name: &str,
    version: &str,
    module: &str,
    with_module: bool,
) -> Result<(), Error> {
    let dist = sp.join(format!("{name}-{version}.dist-info"));
    std::fs::create_dir_all(&dist)?;
    std::fs::write(
        dist.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name} (synthetic)\n\n"),
    )?;
    std::fs::write(dist.join("INSTALLER"), "uv\n")?;
    std::fs::write(dist.join("top_level.txt"), format!("{module}\n"))?;
    std::fs::write(
        dist.join("RECORD"),
        format!("{module}/__init__.py,,\n{name}-{version}.dist-info/METADATA,,\n"),
    )?;
    if !with_module {
        return Ok(());
    }
    let pkg = sp.join(module);
    std::fs::create_dir_all(&pkg)?;
    std::fs::write(
        pkg.join("__init__.py"),
        format!("__version__ = '{version}'\n"),
    )?;
    Ok(())
}

/// Lays out (or resets) one synthetic environment root.
fn write_env(root: &Path, i: usize, packages: usize) -> Result<(), Error> {
    let sp = site_packages(root);
    std::fs::create_dir_all(&sp)?;
    for d in [
        "home",
        "jupyter/config",
        "jupyter/data",
        "jupyter/runtime",
        "ipython/profile_default",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::write(
        root.join("venv/pyvenv.cfg"),
        "home = /usr/bin\nimplementation = CPython\nuv = 0.13.9\nversion_info = 3.11.7\ninclude-system-site-packages = false\n",
    )?;
    // A reused root may still hold the change of an earlier run.
    let changed = sp.join("tabulate-0.8.10.dist-info");
    if changed.exists() {
        std::fs::remove_dir_all(changed)?;
    }
    for (name, version, module) in PACKAGES {
        write_dist(&sp, name, version, module, true)?;
    }
    for k in PACKAGES.len()..packages {
        write_dist(
            &sp,
            &format!("synthpkg-{k:03}"),
            &format!("1.0.{k}"),
            &format!("synthpkg_{k:03}"),
            false,
        )?;
    }
    std::fs::write(root.join("home/analysis.ipynb"), NOTEBOOK)?;
    std::fs::write(
        root.join("home/measurements.csv"),
        format!("sample,value\n{i},{}\n", i * 7),
    )?;
    std::fs::write(
        root.join("ipython/profile_default/ipython_config.py"),
        "c = get_config()\n",
    )?;
    Ok(())
}

/// What `uv pip install tabulate==0.8.10` does to site-packages.
fn downgrade_tabulate(root: &Path) -> Result<(), Error> {
    let sp = site_packages(root);
    write_dist(&sp, "tabulate", "0.8.10", "tabulate", true)?;
    std::fs::remove_dir_all(sp.join("tabulate-0.9.0.dist-info"))?;
    Ok(())
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory_kib() -> Result<(u64, u64), Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// inotify watches this process holds (from `/proc/self/fdinfo`).
fn inotify_watches() -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    fds.flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().contains("inotify"))
        })
        .map(|fd| {
            std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(fd.file_name()))
                .map(|info| {
                    info.lines()
                        .filter(|l| l.starts_with("inotify wd:"))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// Evaluates every root against its baseline with `parallel` workers;
/// returns the wall time and the new inventories.
fn sweep(
    roots: &[PathBuf],
    baselines: &[Inventory],
    previous: Option<&[Inventory]>,
    parallel: usize,
) -> Result<(Duration, Vec<Inventory>), Error> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<Result<Vec<(usize, Inventory)>, Error>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..parallel)
            .map(|_| {
                s.spawn(|| -> Result<Vec<(usize, Inventory)>, Error> {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(root) = roots.get(i) else {
                            return Ok(out);
                        };
                        let e = evaluate(&baselines[i], root, previous.map(|p| &p[i]))?;
                        if !e.findings.is_empty() {
                            return Err(format!(
                                "{} drifted before any change: {:?}",
                                root.display(),
                                e.findings
                            )
                            .into());
                        }
                        out.push((i, e.current));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("a sweep worker panicked".into()))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut all: Vec<(usize, Inventory)> = Vec::with_capacity(roots.len());
    for r in results {
        all.extend(r?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok((elapsed, all.into_iter().map(|(_, inv)| inv).collect()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn stats(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    serde_json::json!({
        "n": ms.len(),
        "p50": percentile(&ms, 50.0),
        "p99": percentile(&ms, 99.0),
        "max": ms.last().copied().unwrap_or(0.0),
        "all": ms,
    })
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;

    let started = Instant::now();
    std::fs::create_dir_all(&args.root)?;
    let mut roots = Vec::with_capacity(args.envs);
    for i in 0..args.envs {
        let root = args.root.join(format!("env-{i:04}"));
        write_env(&root, i, args.packages)?;
        roots.push(root.canonicalize()?);
    }
    let create_s = started.elapsed().as_secs_f64();
    eprintln!("[scale] {} roots ready in {create_s:.1} s", roots.len());

    let started = Instant::now();
    let baselines = roots
        .iter()
        .map(|r| westtek_inventory::inventory(r))
        .collect::<Result<Vec<_>, _>>()?;
    let baseline_s = started.elapsed().as_secs_f64();
    eprintln!("[scale] baseline inventories in {baseline_s:.1} s");

    let config = WatchConfig {
        quiet: Duration::from_millis(300),
        ..WatchConfig::default()
    };
    let (quiet_ms, max_delay_ms) = (config.quiet.as_millis(), config.max_delay.as_millis());
    let (watcher, mut batches) = DriftWatcher::new(config)?;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(roots.len());
    for root in &roots {
        let id = EnvironmentId::new();
        watcher.watch(id, root)?;
        ids.push(id);
    }
    let watch_s = started.elapsed().as_secs_f64();
    let watched = watcher.watched().len();
    let watches = inotify_watches();
    eprintln!(
        "[scale] {watched} environments watched ({watches} inotify watches) in {watch_s:.2} s"
    );

    let (full, current) = sweep(&roots, &baselines, None, args.parallel)?;
    eprintln!(
        "[scale] full sweep (nothing reused): {:.2} s",
        full.as_secs_f64()
    );
    let (reusing, current) = sweep(&roots, &baselines, Some(&current), args.parallel)?;
    eprintln!(
        "[scale] sweep reusing the previous inventories: {:.2} s",
        reusing.as_secs_f64()
    );

    // Anything the sweeps stirred up (nothing should) is not a change.
    let stray = rt.block_on(async {
        let mut n = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(800), batches.recv()).await
        {
            n += 1;
        }
        n
    });

    // Change `modify` environments spread over the set, one after another.
    let step = (args.envs / args.modify.max(1)).max(1);
    let chosen: Vec<usize> = (0..args.modify).map(|k| k * step).collect();
    let mut changed_at: BTreeMap<EnvironmentId, (usize, Instant)> = BTreeMap::new();
    for &i in &chosen {
        downgrade_tabulate(&roots[i])?;
        changed_at.insert(ids[i], (i, Instant::now()));
    }
    let mut batch_ms = Vec::new();
    let mut detect_ms = Vec::new();
    let mut unexpected = 0usize;
    let mut detected = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while detected.len() < changed_at.len() && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(batch) = rt
            .block_on(async { tokio::time::timeout(left, batches.recv()).await })
            .ok()
            .flatten()
        else {
            break;
        };
        let Some(&(i, at)) = changed_at.get(&batch.env_id) else {
            unexpected += 1;
            continue;
        };
        batch_ms.push(at.elapsed().as_secs_f64() * 1e3);
        // The verdict, as the service takes it on a batch.
        let e = evaluate(&baselines[i], &roots[i], Some(&current[i]))?;
        let ok = e.findings.iter().any(|f| {
            f.kind == FindingKind::PackageDowngraded
                && f.subject == "tabulate"
                && f.affected_notebooks == ["home/analysis.ipynb"]
        });
        if !ok {
            return Err(format!(
                "{}: unexpected findings {:?}",
                roots[i].display(),
                e.findings
            )
            .into());
        }
        detect_ms.push(at.elapsed().as_secs_f64() * 1e3);
        detected.insert(batch.env_id);
    }
    if detected.len() < changed_at.len() {
        return Err(format!(
            "only {} of {} changed environments were reported within 30 s",
            detected.len(),
            changed_at.len()
        )
        .into());
    }
    let (rss, hwm) = memory_kib()?;
    eprintln!(
        "[scale] {} changes detected; RSS {:.0} MiB (peak {:.0} MiB)",
        detected.len(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(watcher);
    let out = serde_json::json!({
        "envs": args.envs,
        "packages_per_env": args.packages,
        "watched_envs": watched,
        "inotify_watches": watches,
        "inventory_entries_per_env": baselines.first().map_or(0, |b| b.packages.len() + b.notebooks.len() + b.data_files.len() + b.config_files.len()),
        "create_s": create_s,
        "baseline_inventory_s": baseline_s,
        "watch_s": watch_s,
        "sweep_parallel": args.parallel,
        "sweep_full_s": full.as_secs_f64(),
        "sweep_reusing_s": reusing.as_secs_f64(),
        "quiet_ms": quiet_ms,
        "max_delay_ms": max_delay_ms,
        "modified": chosen.len(),
        "stray_batches_after_sweeps": stray,
        "unexpected_batches": unexpected,
        "batch_latency_ms": stats(batch_ms),
        "detect_latency_ms": stats(detect_ms),
        "rss_mib": rss as f64 / 1024.0,
        "hwm_mib": hwm as f64 / 1024.0,
    });
    println!("{out}");
    Ok(())
}
