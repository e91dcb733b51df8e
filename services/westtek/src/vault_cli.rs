//! `westtek vault …`: the standalone vault, no server needed. Snapshots any
//! folders (each becomes a layer named after it), restores them to where
//! they were or under `--to`, and checks and cleans the vault. The key comes
//! from `WESTTEK_VAULT_PASSWORD` or `--password-file`.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use westtek_vault::{
    InitOptions, KeySource, LayerSource, LocalStorage, ProgressSink, RestoreRequest, SnapshotId,
    SnapshotRequest, SnapshotSummary, Storage, Vault,
};

/// Where the vault is and how to unlock it.
#[derive(Debug, Args)]
pub struct VaultArgs {
    /// The vault: a folder, or `s3://BUCKET/PREFIX` (credentials, region
    /// and endpoint from the standard AWS environment, e.g. `AWS_PROFILE`,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL`).
    #[arg(long, env = "WESTTEK_VAULT_REPO")]
    pub repo: String,
    /// A file whose content is the key (instead of WESTTEK_VAULT_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Wrap the vault's key with this AWS KMS key (id, ARN or alias/NAME)
    /// instead of a password: `init` creates the vault so, and opening it
    /// asks KMS (kms:Decrypt) to unwrap its key.
    #[arg(long, env = "WESTTEK_VAULT_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,
    /// No progress bars.
    #[arg(long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: VaultCommand,
}

/// Vault commands.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Create an empty vault.
    Init,
    /// Snapshot folders (incremental against the latest snapshot of the same folders).
    Snapshot {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Skip entries matching this pattern (repeatable; `__pycache__`, `data/tmp`, `**/*.pyc`).
        #[arg(long)]
        exclude: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Journal folders and snapshot them on demand: each line `snapshot` on
    /// stdin takes one (one JSON line on stdout each); end of input stops.
    /// The first snapshot walks the folders; later ones read only the paths
    /// the change journal saw change, or walk again when it cannot vouch
    /// for them (the JSON says which and why).
    Watch {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Skip entries matching this pattern (as for `snapshot`).
        #[arg(long)]
        exclude: Vec<String>,
    },
    /// List snapshots.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Show one snapshot (`latest` for the newest).
    Show { id: String },
    /// Restore a snapshot (`latest` for the newest) to its original folders,
    /// or each layer under `--to DIR/<layer>`.
    Restore {
        id: String,
        #[arg(long)]
        to: Option<PathBuf>,
        /// Re-read every restored file and check it.
        #[arg(long)]
        verify: bool,
    },
    /// What changed from snapshot A to snapshot B.
    Diff {
        a: String,
        b: String,
        #[arg(long)]
        json: bool,
    },
    /// Check the vault's structure; with --read-data every byte.
    Verify {
        #[arg(long)]
        read_data: bool,
        #[arg(long)]
        json: bool,
    },
    /// Remove data no snapshot uses.
    Gc,
    /// Forget a snapshot (its data goes at the next gc).
    Delete { id: String },
}

/// What unlocks the vault: a password or key file, or a KMS key.
enum Unlock {
    Secret(KeySource),
    Kms(westtek_vault_aws::KmsWrapper),
}

fn unlock(args: &VaultArgs) -> anyhow::Result<Unlock> {
    match &args.kms_key_id {
        Some(id) if args.password_file.is_some() => {
            bail!("--kms-key-id {id} and --password-file exclude each other")
        }
        Some(id) => Ok(Unlock::Kms(
            westtek_vault_aws::KmsWrapper::from_env(id).map_err(|e| anyhow!("{e}"))?,
        )),
        None => key(args).map(Unlock::Secret),
    }
}

fn key(args: &VaultArgs) -> anyhow::Result<KeySource> {
    if let Some(f) = &args.password_file {
        if !f.is_file() {
            bail!("--password-file {} does not exist", f.display());
        }
        return Ok(KeySource::KeyFile(f.clone()));
    }
    match std::env::var("WESTTEK_VAULT_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(KeySource::Password(p)),
        _ => bail!("no vault key: set WESTTEK_VAULT_PASSWORD or pass --password-file FILE"),
    }
}

/// An indicatif bar fed by the vault's progress.
struct Bar(ProgressBar);

impl ProgressSink for Bar {
    fn update(&self, fraction: f32, message: &str) {
        self.0
            .set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        self.0.set_message(message.to_string());
    }
}

fn bar(quiet: bool) -> (ProgressBar, Arc<dyn ProgressSink>) {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1000)
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    (pb.clone(), Arc::new(Bar(pb)))
}

fn resolve(vault: &Vault, id: &str) -> anyhow::Result<SnapshotId> {
    if id == "latest" {
        let mut all = vault.list()?;
        all.sort_by_key(|s| s.created_at);
        return all
            .pop()
            .map(|s| s.id)
            .ok_or_else(|| anyhow!("the vault has no snapshots yet"));
    }
    SnapshotId::parse(id)
        .map_err(|_| anyhow!("'{id}' is not a snapshot id (see `westtek vault ls`)"))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1_048_576.0)
}

fn layer_sources(paths: &[PathBuf], exclude: &[String]) -> anyhow::Result<Vec<LayerSource>> {
    let mut out: Vec<LayerSource> = Vec::new();
    for p in paths {
        let root =
            std::fs::canonicalize(p).with_context(|| format!("{} cannot be read", p.display()))?;
        if !root.is_dir() {
            bail!("{} is not a folder", p.display());
        }
        let base = root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "root".into());
        let mut name = base.clone();
        let mut n = 2;
        while out.iter().any(|l| l.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        out.push(LayerSource {
            name,
            root,
            exclude: exclude.to_vec(),
            include: vec![],
        });
    }
    Ok(out)
}

fn print_summary(s: &SnapshotSummary) {
    println!(
        "snapshot {}  {}  {} files, {}  (+{} stored)  checksum {}",
        s.id,
        s.created_at.format("%Y-%m-%d %H:%M:%S"),
        s.files,
        mib(s.logical_bytes),
        mib(s.stored_bytes_added),
        &s.root_hash
    );
    for l in &s.layers {
        println!(
            "  layer {:<12} {}  ({} files)",
            l.name,
            l.root.display(),
            l.files
        );
    }
}

/// Runs a vault command (blocking work on a blocking thread).
///
/// # Errors
/// Vault errors, worded by the vault.
pub async fn run(args: VaultArgs) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || run_blocking(args))
        .await
        .map_err(|e| anyhow!("vault task: {e}"))?
}

fn run_blocking(args: VaultArgs) -> anyhow::Result<ExitCode> {
    let unlock = unlock(&args)?;
    let repo = args.repo.clone();
    let storage: Arc<dyn Storage> = if repo.starts_with("s3://") {
        Arc::new(
            westtek_vault_aws::S3Storage::from_url(&repo, westtek_vault_aws::S3Options::default())
                .map_err(|e| anyhow!("{e}"))?,
        )
    } else {
        let dir = PathBuf::from(&repo);
        if let VaultCommand::Init = args.command {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        } else if !dir.is_dir() {
            bail!("{repo} is not a vault (run `westtek vault --repo {repo} init`)");
        }
        Arc::new(LocalStorage::new(dir))
    };
    if let VaultCommand::Init = args.command {
        let v = match &unlock {
            Unlock::Secret(key) => Vault::init(storage, key)?,
            Unlock::Kms(w) => Vault::init_with_wrapper(storage, w, InitOptions::default())?,
        };
        println!("created vault {} at {repo}", v.id());
        return Ok(ExitCode::SUCCESS);
    }
    let vault = match &unlock {
        Unlock::Secret(key) => Vault::open(storage, key)?,
        Unlock::Kms(w) => Vault::open_with_wrapper(storage, w)?,
    };
    match args.command {
        VaultCommand::Init => {}
        VaultCommand::Snapshot {
            paths,
            exclude,
            json,
        } => {
            let layers = layer_sources(&paths, &exclude)?;
            let parent = vault.find_parent(&layers)?;
            let (pb, sink) = bar(args.quiet || json);
            let s = vault.snapshot(
                &SnapshotRequest {
                    layers,
                    parent,
                    metadata: serde_json::Value::Null,
                    changed_hint: None,
                },
                sink,
            )?;
            pb.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_summary(&s);
                for (p, why) in &s.skipped {
                    eprintln!("  skipped {}: {why}", p.display());
                }
                for p in &s.changed_during_read {
                    eprintln!(
                        "  changed while read (stored as last seen): {}",
                        p.display()
                    );
                }
            }
        }
        VaultCommand::Watch { paths, exclude } => {
            let layers = layer_sources(&paths, &exclude)?;
            watch(&vault, layers)?;
        }
        VaultCommand::Ls { json } => {
            let mut all = vault.list()?;
            all.sort_by_key(|s| s.created_at);
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|s| serde_json::json!({ "id": s.id.to_string(), "name": s.layers.iter().map(|l| l.name.clone()).collect::<Vec<_>>().join(","), "status": "complete", "created_at": s.created_at, "files": s.files, "logical_bytes": s.logical_bytes, "checksum": s.root_hash }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for s in &all {
                    println!(
                        "{}  {}  {:>8} files  {:>12}  {}",
                        s.id,
                        s.created_at.format("%Y-%m-%d %H:%M:%S"),
                        s.files,
                        mib(s.logical_bytes),
                        s.layers
                            .iter()
                            .map(|l| l.root.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                }
            }
        }
        VaultCommand::Show { id } => {
            let s = vault.get(&resolve(&vault, &id)?)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        VaultCommand::Restore { id, to, verify } => {
            let id = resolve(&vault, &id)?;
            let summary = vault.get(&id)?;
            if let (None, Some(l)) = (
                &to,
                summary.layers.iter().find(|l| l.root == Path::new("/")),
            ) {
                bail!(
                    "layer {} holds files taken at their absolute paths (an interpreter's closure); \
                     restoring it in place would overwrite them in the running system: restore with --to DIR",
                    l.name
                );
            }
            let req = match &to {
                None => RestoreRequest::to_original_roots(&summary, verify),
                Some(dir) => RestoreRequest {
                    targets: summary
                        .layers
                        .iter()
                        .map(|l| (l.name.clone(), dir.join(&l.name)))
                        .collect(),
                    verify,
                },
            };
            return restore(&vault, &id, &req, args.quiet);
        }
        VaultCommand::Diff { a, b, json } => {
            let d = vault.diff(&resolve(&vault, &a)?, &resolve(&vault, &b)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                for l in &d.layers {
                    for e in &l.added {
                        println!("+ {}/{}", l.layer, e.path.display());
                    }
                    for e in &l.removed {
                        println!("- {}/{}", l.layer, e.path.display());
                    }
                    for e in &l.changed {
                        println!("M {}/{}", l.layer, e.path.display());
                    }
                }
            }
        }
        VaultCommand::Verify { read_data, json } => {
            let (pb, sink) = bar(args.quiet || json);
            let r = vault.verify(read_data, sink)?;
            pb.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if r.errors.is_empty() {
                println!(
                    "vault intact: {} snapshots, {} packs, {} blobs{}",
                    r.snapshots_checked,
                    r.packs_checked,
                    r.blobs_checked,
                    if read_data {
                        format!(", {} read and checked", mib(r.bytes_read))
                    } else {
                        String::new()
                    }
                );
            } else {
                eprintln!("vault DAMAGED: {} problem(s)", r.errors.len());
                for e in &r.errors {
                    eprintln!("  - {e}");
                }
                for d in &r.damaged_snapshots {
                    eprintln!("  affected snapshot: {}", serde_json::to_string(d)?);
                }
            }
            for w in &r.warnings {
                eprintln!("  note: {w}");
            }
            return Ok(if r.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        VaultCommand::Gc => {
            let (pb, sink) = bar(args.quiet);
            let r = vault.gc(sink)?;
            pb.finish_and_clear();
            println!(
                "gc: kept {} snapshots, deleted {} packs, repacked {}, freed {}",
                r.snapshots_kept,
                r.packs_deleted,
                r.packs_repacked,
                mib(r.bytes_freed)
            );
            for w in &r.warnings {
                eprintln!("  note: {w}");
            }
        }
        VaultCommand::Delete { id } => {
            let id = resolve(&vault, &id)?;
            vault.delete(&id)?;
            println!("deleted {id} (run `westtek vault gc` to free its data)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `westtek vault watch`: one journaled environment per folder.
fn watch(vault: &Vault, layers: Vec<LayerSource>) -> anyhow::Result<()> {
    use std::io::BufRead;
    use westtek_journal::{Journal, JournalConfig};
    let started = std::time::Instant::now();
    let journal = Journal::new(JournalConfig::default())?;
    let envs: Vec<_> = layers
        .iter()
        .map(|l| {
            let env = westtek_domain::EnvironmentId::new();
            journal.watch(env, &l.root);
            env
        })
        .collect();
    let dirs: usize = envs.iter().map(|e| journal.watched_dirs(*e)).sum();
    println!(
        "{}",
        serde_json::json!({"ready": true, "watched_dirs": dirs, "start_ms": started.elapsed().as_millis() as u64})
    );
    let mut parent = vault.find_parent(&layers)?;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading commands from stdin")?;
        match line.trim() {
            "" => continue,
            "snapshot" => {}
            other => bail!("unknown command {other:?} (expected `snapshot`)"),
        }
        let t0 = std::time::Instant::now();
        let tickets: Vec<_> = envs
            .iter()
            .zip(&layers)
            .map(|(env, l)| journal.begin(*env, &l.root))
            .collect();
        let mut hints = Ok(Vec::new());
        for (t, l) in tickets.iter().zip(&layers) {
            let h = t.hints_for(
                parent.as_ref().map(SnapshotId::as_str),
                std::slice::from_ref(&l.root),
            );
            hints = match (hints, h) {
                (Ok(mut all), Ok(h)) => {
                    all.extend(h);
                    Ok(all)
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        let (mode, reason, changed) = match &hints {
            Ok(h) => ("journal", None, h.len()),
            Err(why) => ("full walk", Some(why.clone()), 0),
        };
        let full_walk = hints.is_err();
        let result = vault.snapshot(
            &SnapshotRequest {
                layers: layers.clone(),
                parent: parent.clone(),
                metadata: serde_json::json!({"change_detection": {"mode": mode, "reason": reason, "changed_paths": changed}}),
                changed_hint: hints.ok(),
            },
            bar(true).1,
        );
        match result {
            Ok(s) => {
                for t in tickets {
                    journal.commit(t, s.id.as_str(), full_walk);
                }
                println!(
                    "{}",
                    serde_json::json!({
                        "id": s.id.to_string(), "mode": mode, "reason": reason,
                        "changed_paths": changed, "files": s.files, "files_read": s.files_read,
                        "files_reused": s.files_reused, "bytes_read": s.bytes_read,
                        "duration_ms": t0.elapsed().as_millis() as u64,
                    })
                );
                parent = Some(s.id);
            }
            Err(e) => {
                for t in tickets {
                    journal.abort(t);
                }
                println!("{}", serde_json::json!({"error": e.to_string()}));
            }
        }
    }
    Ok(())
}

fn restore(
    vault: &Vault,
    id: &SnapshotId,
    req: &RestoreRequest,
    quiet: bool,
) -> anyhow::Result<ExitCode> {
    for (_, target) in &req.targets {
        if target.exists() && !target.is_dir() {
            bail!("{} exists and is not a folder", target.display());
        }
    }
    let (pb, sink) = bar(quiet);
    let r = vault.restore(id, req, sink)?;
    pb.finish_and_clear();
    println!(
        "restored {} files, {} dirs, {} symlinks ({}){}",
        r.files,
        r.dirs,
        r.symlinks,
        mib(r.bytes_written),
        if r.verified { ", verified" } else { "" }
    );
    for (layer, target) in &req.targets {
        println!("  {layer} → {}", target.display());
    }
    if !r.removed.is_empty() {
        println!(
            "  removed {} entries that were not in the snapshot",
            r.removed.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
