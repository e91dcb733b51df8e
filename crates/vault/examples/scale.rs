//! Scale simulation of the vault (issue 13, part 4): a synthetic vault of
//! many environments × snapshots in the real format (see `synth`), then the
//! operations the platform runs on it, timed.
//!
//! ```text
//! cargo run --release -p westtek-vault --example scale -- gen DIR [--envs 1000] [--snapshots 30]
//! cargo run --release -p westtek-vault --example scale -- measure DIR
//! ```
//! `bench/scale` runs both (measure in a fresh process, so its memory
//! figures are the operations' own) and prints the table.
//!
//! The population: 3 interpreters (1,500 files each) shared by all
//! environments; a pool of 400 packages of 60–240 files, each environment
//! holding 40 of them; a home of 150 files (notebooks, a few MiB-sized data
//! files) per environment. Between two snapshots of an environment 5 home
//! files change; every 5th snapshot upgrades a package, every 10th adds one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use westtek_vault::synth::{SynthFile, SynthLayer, Synthesizer};
use westtek_vault::*;

const INTERPRETERS: u64 = 3;
const BASE_FILES: u64 = 1500;
const PACKAGES: u64 = 400;
const PACKAGES_PER_ENV: u64 = 40;
const HOME_FILES: u64 = 150;
const HOME_CHANGES: u64 = 5;

/// splitmix64: a deterministic stream of numbers from a seed.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn seed(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED, |h, p| mix(h ^ p))
}

/// A small file's length: 200 B – 60 KiB, most under 8 KiB.
fn small_len(s: u64) -> u32 {
    let r = mix(s);
    let max = [2_000u64, 8_000, 8_000, 20_000, 60_000][(r % 5) as usize];
    200 + (mix(r) % max) as u32
}

fn file(path: String, seeds: &[u64], len: impl Fn(u64) -> u32, mtime: i64) -> SynthFile {
    SynthFile {
        path,
        chunks: seeds.iter().map(|s| (*s, len(*s))).collect(),
        mtime,
    }
}

fn base_layer(interp: u64) -> Vec<SynthFile> {
    (0..BASE_FILES)
        .map(|i| {
            let s = seed(&[1, interp, i]);
            file(
                format!("lib/python3.{}/m{:02}/f{i}.py", 10 + interp, i % 40),
                &[s],
                small_len,
                1_600_000_000,
            )
        })
        .collect()
}

fn package_files(pkg: u64, version: u64) -> Vec<SynthFile> {
    let n = 60 + mix(seed(&[2, pkg])) % 181;
    (0..n)
        .map(|i| {
            // An upgrade changes 70 % of a package's files.
            let v = if mix(seed(&[3, pkg, i])) % 10 < 3 {
                0
            } else {
                version
            };
            let s = seed(&[4, pkg, v, i]);
            file(
                format!(
                    "venv/lib/python3.11/site-packages/pkg{pkg:03}/sub{}/f{i}.py",
                    i % 8
                ),
                &[s],
                small_len,
                1_650_000_000 + v as i64,
            )
        })
        .collect()
}

/// One environment's state between snapshots.
struct Env {
    interp: u64,
    /// Package -> version.
    packages: Vec<(u64, u64)>,
    /// Home file -> revision.
    home: Vec<u64>,
    parent: Option<SnapshotId>,
}

/// Adds a package unless the environment has it already.
fn add_package(packages: &mut Vec<(u64, u64)>, pkg: u64) {
    if !packages.iter().any(|(p, _)| *p == pkg) {
        packages.push((pkg, 0));
    }
}

fn home_files(env: u64, revs: &[u64]) -> Vec<SynthFile> {
    revs.iter()
        .enumerate()
        .map(|(i, rev)| {
            let i = i as u64;
            let s = seed(&[5, env, i, *rev]);
            if i < 8 {
                // Data files: 1–12 MiB in 1 MiB chunks.
                let chunks = 1 + mix(s) % 12;
                let seeds: Vec<u64> = (0..chunks).map(|c| seed(&[6, env, i, *rev, c])).collect();
                file(
                    format!("home/data/d{i}.bin"),
                    &seeds,
                    |_| 1 << 20,
                    1_700_000_000 + *rev as i64,
                )
            } else {
                file(
                    format!("home/notebooks/n{i}.ipynb"),
                    &[s],
                    small_len,
                    1_700_000_000 + *rev as i64,
                )
            }
        })
        .collect()
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn key() -> KeySource {
    KeySource::Password("scale-bench".into())
}

fn generate(dir: &str, envs: u64, snapshots: u64) -> Result<()> {
    let t0 = Instant::now();
    let vault = Vault::init_local(dir, &key())?;
    let mut synth = Synthesizer::new(&vault)?;
    let bases: Vec<Vec<SynthFile>> = (0..INTERPRETERS).map(base_layer).collect();
    let mut pkg_cache: HashMap<(u64, u64), Vec<SynthFile>> = HashMap::new();
    let mut state: Vec<Env> = (0..envs)
        .map(|e| Env {
            interp: e % INTERPRETERS,
            packages: {
                let mut p: Vec<(u64, u64)> = Vec::new();
                let mut k = 0;
                while (p.len() as u64) < PACKAGES_PER_ENV {
                    add_package(&mut p, mix(seed(&[7, e, k])) % PACKAGES);
                    k += 1;
                }
                p
            },
            home: vec![0; HOME_FILES as usize],
            parent: None,
        })
        .collect();
    let start = chrono::Utc::now() - chrono::Duration::days(365);
    let mut written = 0u64;
    let mut files = 0u64;
    for s in 0..snapshots {
        for (e, env) in state.iter_mut().enumerate() {
            let e = e as u64;
            if s > 0 {
                for k in 0..HOME_CHANGES {
                    let i = (mix(seed(&[8, e, s, k])) % HOME_FILES) as usize;
                    env.home[i] += 1;
                }
                if s.is_multiple_of(5) {
                    let k = (mix(seed(&[9, e, s])) % PACKAGES_PER_ENV) as usize;
                    env.packages[k].1 += 1;
                }
                if s.is_multiple_of(10) {
                    add_package(&mut env.packages, mix(seed(&[10, e, s])) % PACKAGES);
                }
            }
            let mut venv = Vec::new();
            for (p, v) in &env.packages {
                let fs = pkg_cache
                    .entry((*p, *v))
                    .or_insert_with(|| package_files(*p, *v));
                venv.extend(fs.iter().cloned());
            }
            let layers = vec![
                SynthLayer {
                    name: "base".into(),
                    root: format!("/opt/python/3.{}", 10 + env.interp),
                    files: bases[env.interp as usize].clone(),
                },
                SynthLayer {
                    name: "env".into(),
                    root: format!("/srv/westtek/envs/env-{e:04}"),
                    files: venv,
                },
                SynthLayer {
                    name: "home".into(),
                    root: format!("/srv/westtek/envs/env-{e:04}/home"),
                    files: home_files(e, &env.home),
                },
            ];
            files += layers.iter().map(|l| l.files.len() as u64).sum::<u64>();
            let at = start + chrono::Duration::hours((s * 24 * 365 / snapshots.max(1)) as i64);
            let id = synth.snapshot(
                &layers,
                env.parent.take(),
                serde_json::json!({"environment_id": format!("env-{e:04}"), "round": s}),
                at,
            )?;
            env.parent = Some(id);
            written += 1;
            // One index object per 1,000 snapshots: the platform writes one
            // per snapshot and gc merges them; this is the state between.
            if written.is_multiple_of(1000) {
                synth.flush()?;
                eprintln!(
                    "[scale] {written} snapshots written ({:.0} s)",
                    t0.elapsed().as_secs_f64()
                );
            }
        }
    }
    synth.flush()?;
    println!(
        "generated {written} snapshots of {envs} environments ({} files per snapshot on average) in {:.1} s",
        files / written.max(1),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let v = f()?;
    Ok((v, t.elapsed().as_secs_f64()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn dir_size(dir: &std::path::Path) -> (u64, u64) {
    let mut n = 0;
    let mut bytes = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_dir() {
                    let (a, b) = dir_size(&e.path());
                    n += a;
                    bytes += b;
                } else {
                    n += 1;
                    bytes += m.len();
                }
            }
        }
    }
    (n, bytes)
}

fn measure(dir: &str) -> Result<()> {
    let rows: &mut Vec<(String, String)> = &mut Vec::new();
    let base = std::path::Path::new(dir);
    for sub in ["snapshots", "index", "data"] {
        let (n, b) = dir_size(&base.join(sub));
        rows.push((
            format!("`{sub}/` objects"),
            format!("{n} ({:.1} MB)", b as f64 / 1e6),
        ));
    }
    let rss0 = rss_kib("VmRSS:");
    let (vault, t_open) = timed(|| Vault::open_local(dir, &key()))?;
    rows.push(("open (key derivation)".into(), format!("{t_open:.2} s")));
    let ((blobs, packs, rss_held), t_index) =
        timed(|| vault.with_index(|b, p| (b, p, rss_kib("VmRSS:"))))?;
    let index_kib = rss_held.saturating_sub(rss0);
    rows.push((
        "index load".into(),
        format!(
            "{t_index:.2} s; {blobs} blobs in {packs} packs; +{:.0} MB RSS ({:.0} B a blob)",
            index_kib as f64 / 1024.0,
            index_kib as f64 * 1024.0 / blobs.max(1) as f64
        ),
    ));
    let (list, t_ls) = timed(|| vault.list())?;
    rows.push((
        format!("`ls` ({} snapshots)", list.len()),
        format!("{t_ls:.2} s"),
    ));
    // The newest snapshot of one environment, and its parent.
    let newest = list
        .iter()
        .filter(|s| s.parent.is_some())
        .max_by_key(|s| s.created_at)
        .cloned();
    let Some(newest) = newest else {
        println!("no snapshots with parents; run gen first");
        return Ok(());
    };
    let parent = newest.parent.clone().unwrap_or_else(|| newest.id.clone());
    let mut show = Vec::new();
    for _ in 0..5 {
        let (_, t) = timed(|| {
            vault.get(&newest.id)?;
            vault.metadata(&newest.id)
        })?;
        show.push(t);
    }
    rows.push((
        "`show` one snapshot".into(),
        format!("{:.3} s", median(show)),
    ));
    let mut diffs = Vec::new();
    let mut changed = 0;
    for _ in 0..3 {
        let (d, t) = timed(|| vault.diff(&parent, &newest.id))?;
        changed = d
            .layers
            .iter()
            .map(|l| l.added.len() + l.removed.len() + l.changed.len())
            .sum::<usize>();
        diffs.push(t);
    }
    rows.push((
        format!(
            "`diff` two snapshots of one env ({} files, {changed} changes)",
            newest.files
        ),
        format!("{:.2} s", median(diffs)),
    ));
    let mut plans = Vec::new();
    let mut plan = None;
    for _ in 0..3 {
        let (p, t) = timed(|| vault.plan_restore(&newest.id))?;
        plan = Some(p);
        plans.push(t);
    }
    if let Some(p) = plan {
        rows.push((
            format!(
                "restore planning ({} entries, {} chunks in {} packs, {:.2} GB)",
                p.entries,
                p.unique_chunks,
                p.packs,
                p.logical_bytes as f64 / 1e9
            ),
            format!("{:.2} s", median(plans)),
        ));
    }
    // Retention expires the oldest snapshot of every environment, then gc.
    let mut oldest: HashMap<String, &SnapshotSummary> = HashMap::new();
    let metas: Vec<(String, &SnapshotSummary)> = list
        .iter()
        .map(|s| {
            let env = s
                .layers
                .iter()
                .find(|l| l.name == "env")
                .map(|l| l.root.display().to_string())
                .unwrap_or_default();
            (env, s)
        })
        .collect();
    for (env, s) in metas {
        let e = oldest.entry(env).or_insert(s);
        if s.created_at < e.created_at {
            *e = s;
        }
    }
    let victims: Vec<SnapshotId> = oldest.values().map(|s| s.id.clone()).collect();
    let (_, t_del) = timed(|| victims.iter().try_for_each(|id| vault.delete(id)))?;
    rows.push((
        format!("delete {} snapshots (one per env)", victims.len()),
        format!("{t_del:.2} s"),
    ));
    let hwm_before = rss_kib("VmHWM:");
    let (report, t_gc) = timed(|| vault.gc(Arc::new(NoProgress)))?;
    rows.push((
        "gc".into(),
        format!(
            "{t_gc:.1} s; {} snapshots kept, {} blobs removed, {} packs deleted, {} repacked, {} written; peak RSS {:.0} MB (before gc {:.0} MB)",
            report.snapshots_kept,
            report.blobs_removed,
            report.packs_deleted,
            report.packs_repacked,
            report.packs_written,
            rss_kib("VmHWM:") as f64 / 1024.0,
            hwm_before as f64 / 1024.0
        ),
    ));
    let ((_, _, _), t_index2) = timed(|| vault.with_index(|b, p| (b, p, 0)))?;
    rows.push(("index load after gc".into(), format!("{t_index2:.2} s")));
    let w = rows.iter().map(|(a, _)| a.len()).max().unwrap_or(10);
    println!("| {:w$} | measured |", "operation");
    println!("|{}|----------|", "-".repeat(w + 2));
    for (a, b) in rows.iter() {
        println!("| {a:w$} | {b} |");
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.as_slice() {
        [cmd, dir, rest @ ..] if cmd == "gen" => {
            generate(dir, arg(rest, "--envs", 1000), arg(rest, "--snapshots", 30))
        }
        [cmd, dir, ..] if cmd == "measure" => measure(dir),
        _ => {
            eprintln!("usage: scale gen DIR [--envs N] [--snapshots N] | scale measure DIR");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("scale: {e}");
        std::process::exit(1);
    }
}
