//! A tiny command line over the vault, for measuring and poking at it
//! without the platform (the real CLI is `westtek vault`).
//!
//! ```text
//! WESTTEK_VAULT_PASSWORD=… cargo run --release -p westtek-vault --example vault -- REPO init
//! … REPO snapshot NAME=PATH… [--hint FILE] [--exclude PATTERN]…
//! … REPO ls | show ID | diff A B | verify [--read-data] | gc | stats
//! … REPO restore ID NAME=TARGET… [--verify]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use westtek_vault::*;

struct Print;

impl ProgressSink for Print {
    fn update(&self, fraction: f32, message: &str) {
        if std::env::var_os("VAULT_PROGRESS").is_some() {
            eprintln!("[{:5.1}%] {message}", fraction * 100.0);
        }
    }
}

fn pairs(args: &[String]) -> Vec<(String, PathBuf)> {
    args.iter()
        .filter(|a| !a.starts_with("--"))
        .filter_map(|a| {
            a.split_once('=')
                .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
        })
        .collect()
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (repo, cmd, rest) = match args.as_slice() {
        [repo, cmd, rest @ ..] => (repo, cmd.as_str(), rest),
        _ => {
            eprintln!("usage: vault REPO init|snapshot|ls|show|restore|diff|verify|gc|stats …");
            std::process::exit(2);
        }
    };
    let key = KeySource::Password(
        std::env::var("WESTTEK_VAULT_PASSWORD").unwrap_or_else(|_| "bench".into()),
    );
    let t = Instant::now();
    let progress: Arc<dyn ProgressSink> = Arc::new(Print);
    let flag = |f: &str| rest.iter().any(|a| a == f);
    let opt = |f: &str| {
        rest.iter()
            .position(|a| a == f)
            .and_then(|i| rest.get(i + 1))
            .cloned()
    };
    match cmd {
        "init" => {
            let mut o = InitOptions::default();
            if let Some(l) = opt("--level").and_then(|l| l.parse().ok()) {
                o.zstd_level = l;
            }
            let v = Vault::init_with(Arc::new(LocalStorage::new(repo)), &key, o)?;
            println!("initialised vault {} at {}", v.id(), v.location());
        }
        "snapshot" => {
            let v = Vault::open_local(repo, &key)?;
            let excludes: Vec<String> = rest
                .windows(2)
                .filter(|w| w[0] == "--exclude")
                .map(|w| w[1].clone())
                .collect();
            let layers: Vec<LayerSource> = pairs(rest)
                .into_iter()
                .map(|(name, root)| LayerSource {
                    name,
                    root,
                    exclude: excludes.clone(),
                    include: vec![],
                })
                .collect();
            let parent = if flag("--no-parent") {
                None
            } else {
                v.find_parent(&layers)?
            };
            let changed_hint = opt("--hint").map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from)
                    .collect()
            });
            let s = v.snapshot(
                &SnapshotRequest {
                    layers,
                    parent,
                    metadata: serde_json::json!({}),
                    changed_hint,
                },
                progress,
            )?;
            println!(
                "snapshot {} root {}: {} files, {} dirs, {} symlinks, {:.1} MB logical, {:.1} MB added, read {} files / {:.1} MB, reused {}, skipped {}, changed {}",
                s.id,
                &s.root_hash[..16],
                s.files,
                s.dirs,
                s.symlinks,
                s.logical_bytes as f64 / 1e6,
                s.stored_bytes_added as f64 / 1e6,
                s.files_read,
                s.bytes_read as f64 / 1e6,
                s.files_reused,
                s.skipped.len(),
                s.changed_during_read.len()
            );
        }
        "ls" => {
            let v = Vault::open_local(repo, &key)?;
            for s in v.list()? {
                println!(
                    "{} {} {} files {:.1} MB",
                    s.id,
                    s.created_at.to_rfc3339(),
                    s.files,
                    s.logical_bytes as f64 / 1e6
                );
            }
        }
        "show" => {
            let v = Vault::open_local(repo, &key)?;
            let s = v.get(&SnapshotId::parse(&rest[0])?)?;
            println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
        }
        "restore" => {
            let v = Vault::open_local(repo, &key)?;
            let id = SnapshotId::parse(&rest[0])?;
            let r = v.restore(
                &id,
                &RestoreRequest {
                    targets: pairs(&rest[1..]),
                    verify: flag("--verify"),
                },
                progress,
            )?;
            println!(
                "restored {} files, {} dirs, {} symlinks, {} hard links, {:.1} MB; removed {}, overwritten {}",
                r.files,
                r.dirs,
                r.symlinks,
                r.hardlinks,
                r.bytes_written as f64 / 1e6,
                r.removed.len(),
                r.overwritten.len()
            );
        }
        "diff" => {
            let v = Vault::open_local(repo, &key)?;
            let d = v.diff(&SnapshotId::parse(&rest[0])?, &SnapshotId::parse(&rest[1])?)?;
            for l in d.layers {
                println!(
                    "{}: +{} -{} ~{}",
                    l.layer,
                    l.added.len(),
                    l.removed.len(),
                    l.changed.len()
                );
            }
        }
        "verify" => {
            let v = Vault::open_local(repo, &key)?;
            let r = v.verify(flag("--read-data"), progress)?;
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        }
        "gc" => {
            let v = Vault::open_local(repo, &key)?;
            let r = v.gc(progress)?;
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        }
        "stats" => {
            let v = Vault::open_local(repo, &key)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&v.stats()?).unwrap_or_default()
            );
        }
        other => {
            eprintln!("unknown command {other}");
            std::process::exit(2);
        }
    }
    eprintln!("{cmd}: {:.3} s", t.elapsed().as_secs_f64());
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
