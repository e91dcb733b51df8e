//! `westtek agent`: the environment agent on a lab machine (issue 15).
//!
//! - `westtek agent adopt VENV [--notebooks DIR]` (signed in with `westtek
//!   login`): records the venv as an environment of the lab, keeps the
//!   agent's credential in `~/.config/westtek/agents/<environment id>.json`
//!   (mode 0600, never inside the environment, so no snapshot carries it),
//!   uploads a baseline snapshot and, unless `--no-watch`, keeps watching.
//! - `westtek agent run --state FILE`: watches the environment and reports
//!   its inventory to the platform, which judges drift against the
//!   baseline (events, alerts, the portal's live stream).
//! - `westtek agent snapshot --state FILE`: uploads a snapshot now.
//!
//! How it watches: the environment layout the inventory reads is a small
//! folder of symlinks (`venv` → the venv, `home` → the notebooks), and the
//! agent takes the same inventory the platform takes of its own
//! environments: on every burst the drift watcher sees in site-packages,
//! on a short poll (stat only: unchanged files are not read again; it
//! catches notebook and data edits) and on a full re-read every sweep. It
//! reports only when the inventory changed. The agent never holds the
//! vault's key: snapshots go to the platform as one zstd-compressed tar,
//! which the platform stores in the vault.

use crate::client::{problem_error, Api};
use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use westtek_domain::EnvironmentId;

/// `westtek agent …`.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Adopt an existing venv on this machine into a lab (sign in first
    /// with `westtek login`): inventory, a baseline snapshot, then drift
    /// watching until stopped.
    Adopt {
        /// The venv (a folder with `pyvenv.cfg`).
        venv: PathBuf,
        /// The notebooks and data (default: the venv's parent folder; venvs
        /// inside it are left out).
        #[arg(long)]
        notebooks: Option<PathBuf>,
        /// The environment's name in the lab (default: the notebooks
        /// folder's name).
        #[arg(long)]
        name: Option<String>,
        /// The platform's URL (default: the signed-in session's).
        #[arg(long, env = "WESTTEK_URL")]
        server: Option<String>,
        /// The lab to adopt into (id; default: your first lab).
        #[arg(long, env = "WESTTEK_LAB")]
        lab: Option<String>,
        /// Stop after the baseline snapshot instead of watching.
        #[arg(long)]
        no_watch: bool,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Watch an adopted environment and report drift (until stopped).
    Run {
        /// The agent's state file `adopt` wrote.
        #[arg(long)]
        state: PathBuf,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Upload a snapshot of an adopted environment now.
    Snapshot {
        /// The agent's state file `adopt` wrote.
        #[arg(long)]
        state: PathBuf,
        /// Why the snapshot is taken.
        #[arg(long)]
        notes: Option<String>,
    },
}

/// How often the agent looks.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Seconds between quick looks (stat only) at the environment.
    #[arg(long, default_value_t = 5)]
    pub poll_secs: u64,
    /// Seconds between full re-reads (every file hashed again).
    #[arg(long, default_value_t = 300)]
    pub sweep_secs: u64,
}

/// What `adopt` leaves for `run` and `snapshot` (mode 0600).
#[derive(Debug, Serialize, Deserialize)]
pub struct AgentState {
    pub server: String,
    pub environment_id: EnvironmentId,
    pub lab_id: String,
    pub name: String,
    /// `wtagent_…`.
    pub agent_token: String,
    pub venv: PathBuf,
    pub notebooks: PathBuf,
}

fn config_dir() -> anyhow::Result<PathBuf> {
    if let Ok(x) = std::env::var("XDG_CONFIG_HOME") {
        if !x.is_empty() {
            return Ok(PathBuf::from(x).join("westtek"));
        }
    }
    let home = std::env::var("HOME").map_err(|_| anyhow!("HOME is not set"))?;
    Ok(PathBuf::from(home).join(".config").join("westtek"))
}

/// `~/.cache/westtek/agent`: the agents' private folder (mode 0700).
fn cache_root() -> anyhow::Result<PathBuf> {
    let base = match std::env::var("XDG_CACHE_HOME") {
        Ok(x) if !x.is_empty() => PathBuf::from(x),
        _ => {
            let home = std::env::var("HOME").map_err(|_| anyhow!("HOME is not set"))?;
            PathBuf::from(home).join(".cache")
        }
    };
    Ok(base.join("westtek").join("agent"))
}

fn cache_dir(env: EnvironmentId) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let root = cache_root()?;
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
    Ok(root.join(env.to_string()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn load_state(path: &Path) -> anyhow::Result<AgentState> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the agent's state file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not an agent state file", path.display()))
}

/// The environment layout the inventory and the watcher read: symlinks to
/// the real folders, rebuilt on every start.
fn view(state: &AgentState) -> anyhow::Result<PathBuf> {
    let dir = cache_dir(state.environment_id)?.join("view");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, target) in [("venv", &state.venv), ("home", &state.notebooks)] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link)
            .with_context(|| format!("linking {} to {}", link.display(), target.display()))?;
    }
    Ok(dir)
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{} does not exist", p.display()))
}

/// Runs an agent command.
///
/// # Errors
/// A message saying what failed (no session, a refused credential, a
/// folder that is not a venv, the platform unreachable).
pub async fn run(cmd: AgentCommand) -> anyhow::Result<()> {
    match cmd {
        AgentCommand::Adopt {
            venv,
            notebooks,
            name,
            server,
            lab,
            no_watch,
            watch,
        } => {
            let state = adopt(venv, notebooks, name, server, lab).await?;
            if no_watch {
                return Ok(());
            }
            watch_loop(&state, &watch).await
        }
        AgentCommand::Run { state, watch } => watch_loop(&load_state(&state)?, &watch).await,
        AgentCommand::Snapshot { state, notes } => {
            let state = load_state(&state)?;
            let snap = upload(&state, notes.as_deref()).await?;
            println!(
                "snapshot {} complete: {} bytes",
                snap["id"].as_str().unwrap_or("?"),
                snap["size_bytes"]
            );
            Ok(())
        }
    }
}

async fn adopt(
    venv: PathBuf,
    notebooks: Option<PathBuf>,
    name: Option<String>,
    server: Option<String>,
    lab: Option<String>,
) -> anyhow::Result<AgentState> {
    let venv = absolute(&venv)?;
    if !venv.join("pyvenv.cfg").is_file() {
        bail!(
            "{} is not a venv (it has no pyvenv.cfg); give the venv's folder",
            venv.display()
        );
    }
    let notebooks = match notebooks {
        Some(n) => absolute(&n)?,
        None => {
            let parent = venv
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| anyhow!("the venv has no parent folder; give --notebooks DIR"))?;
            let home = std::env::var_os("HOME").map(PathBuf::from);
            if parent == Path::new("/") || Some(&parent) == home.as_ref() {
                bail!(
                    "the venv's parent folder is {}: give the notebooks folder with --notebooks DIR (a whole home folder holds keys and credentials that do not belong in a snapshot)",
                    parent.display()
                );
            }
            parent
        }
    };
    if notebooks == Path::new("/") {
        bail!("--notebooks / is not a notebooks folder");
    }
    if !notebooks.is_dir() {
        bail!("{} is not a folder", notebooks.display());
    }
    let name = match name {
        Some(n) => n,
        None => notebooks
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "adopted".into()),
    };
    let api = Api::connect().await?;
    if let Some(s) = &server {
        if s.trim_end_matches('/') != api.base() {
            bail!(
                "--server {s} but you are signed in to {}; run `westtek login --url {s}` first",
                api.base()
            );
        }
    }
    // The interpreter version from the venv itself.
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg"))?;
    let python_version = cfg
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| matches!(k.trim(), "version_info" | "version"))
        .map(|(_, v)| v.trim().split('.').take(3).collect::<Vec<_>>().join("."))
        .ok_or_else(|| anyhow!("{}/pyvenv.cfg names no Python version", venv.display()))?;
    let host = hostname();
    let mut req = api
        .req(reqwest::Method::POST, "/api/environments/adopt")
        .json(&serde_json::json!({
            "name": name,
            "host": host,
            "venv_path": venv,
            "notebooks_path": notebooks,
            "python_version": python_version,
        }));
    if let Some(l) = &lab {
        req = req.header("x-westtek-lab", l);
    }
    let adopted = api.send(req).await.context("adopting the environment")?;
    let env_id = adopted["environment"]["id"]
        .as_str()
        .and_then(|s| EnvironmentId::parse(s).ok())
        .ok_or_else(|| anyhow!("the platform's answer has no environment id"))?;
    let state = AgentState {
        server: api.base().to_string(),
        environment_id: env_id,
        lab_id: adopted["environment"]["lab_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        name: name.clone(),
        agent_token: adopted["agent_token"]
            .as_str()
            .ok_or_else(|| anyhow!("the platform's answer has no agent credential"))?
            .to_string(),
        venv,
        notebooks,
    };
    let path = config_dir()?.join("agents").join(format!("{env_id}.json"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::app::write_private_file(&path, &serde_json::to_string_pretty(&state)?)
        .with_context(|| format!("saving the agent's state to {}", path.display()))?;
    println!("adopted {name} as environment {env_id} on {host}");
    println!("agent state: {} (keep it private)", path.display());
    let snap = upload(&state, Some("baseline: adopted by westtek agent")).await?;
    println!(
        "baseline snapshot {} complete: {} bytes",
        snap["id"].as_str().unwrap_or("?"),
        snap["size_bytes"]
    );
    Ok(state)
}

fn agent_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()?)
}

/// Takes the inventory, packs the environment and uploads it; returns the
/// snapshot the platform recorded.
async fn upload(state: &AgentState, notes: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let view = view(state)?;
    let cache = cache_dir(state.environment_id)?;
    std::fs::create_dir_all(&cache)?;
    // Private (0600), unique, removed however this ends.
    let tmp = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(".tar.zst")
        .tempfile_in(&cache)
        .context("creating the upload file")?;
    let file = tmp.path().to_path_buf();
    let (venv, home, out) = (state.venv.clone(), state.notebooks.clone(), file.clone());
    eprintln!("packing {} and {} …", venv.display(), home.display());
    let packed = tokio::task::spawn_blocking(move || pack(&view, &venv, &home, &out))
        .await
        .map_err(|e| anyhow!("packing: {e}"))??;
    eprintln!(
        "uploading {} files ({} bytes, {} compressed) …",
        packed.files, packed.bytes, packed.compressed
    );
    let body = tokio::fs::File::open(&file).await?;
    let stream = tokio_util::io::ReaderStream::new(body);
    let mut url = reqwest::Url::parse(&format!("{}/api/agent/v1/snapshots", state.server))?;
    if let Some(n) = notes {
        url.query_pairs_mut().append_pair("notes", n);
    }
    let resp = agent_client()?
        .post(url)
        .bearer_auth(&state.agent_token)
        .header(reqwest::header::CONTENT_TYPE, "application/zstd")
        .header(reqwest::header::CONTENT_LENGTH, packed.compressed)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .with_context(|| format!("cannot reach {}", state.server))?;
    drop(tmp);
    if !resp.status().is_success() {
        return Err(problem_error(resp).await);
    }
    Ok(resp.json().await?)
}

struct Packed {
    files: u64,
    bytes: u64,
    compressed: u64,
}

/// Writes the upload (see `westtek_snapshots::staged`) to `out`.
fn pack(view: &Path, venv: &Path, home: &Path, out: &Path) -> anyhow::Result<Packed> {
    let inv = westtek_inventory::inventory(view).context("taking the inventory")?;
    let closure = match (inv.python.home.as_deref(), inv.python.version.as_deref()) {
        (Some(h), Some(v)) => {
            let mm: String = v.split('.').take(2).collect::<Vec<_>>().join(".");
            match westtek_inventory::interpreter_closure(Path::new(h), &mm) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("warning: the interpreter's files are not uploaded ({e}); a restore elsewhere needs the same interpreter at {h}");
                    None
                }
            }
        }
        _ => None,
    };
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    let enc = zstd::stream::write::Encoder::new(f, 3)?;
    let mut tar = tar::Builder::new(enc);
    tar.follow_symlinks(false);
    // The platform takes files, folders and symlinks only (no GNU sparse
    // entries).
    tar.sparse(false);
    let mut n = Packed {
        files: 0,
        bytes: 0,
        compressed: 0,
    };
    let json = serde_json::to_vec(&inv)?;
    append_bytes(&mut tar, "inventory.json", &json)?;
    // Never the agent's own state (its credential, the CLI's session) or
    // its cache (the upload being written).
    let mut skip = vec![venv.to_path_buf()];
    skip.extend(config_dir().ok());
    skip.extend(cache_root().ok());
    append_tree(&mut tar, venv, Path::new("env/venv"), &skip, &mut n)?;
    append_tree(&mut tar, home, Path::new("env/home"), &skip, &mut n)?;
    if let Some(c) = &closure {
        append_bytes(&mut tar, "closure.json", &serde_json::to_vec(c)?)?;
        for p in &c.paths {
            let rel = Path::new("base").join(p.strip_prefix("/").unwrap_or(p));
            append_tree(&mut tar, p, &rel, &c.exclude, &mut n)?;
        }
    }
    let enc = tar.into_inner()?;
    enc.finish()?;
    n.compressed = std::fs::metadata(out)?.len();
    Ok(n)
}

fn append_bytes<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> anyhow::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)?;
    Ok(())
}

/// Appends one regular file with the size it had when opened: a file that
/// grows or shrinks meanwhile (an autosave) is cut or padded with zeros,
/// never a broken archive. Returns the bytes stored.
fn append_file<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
) -> anyhow::Result<u64> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    let size = meta.len();
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    let data = f.take(size).chain(std::io::repeat(0)).take(size);
    tar.append_data(&mut h, name, data)?;
    Ok(size)
}

/// Appends `src` (a file, symlink or folder with everything below it) as
/// `dest`, leaving out `skip` and any venv nested in a notebooks folder.
fn append_tree<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    src: &Path,
    dest: &Path,
    skip: &[PathBuf],
    n: &mut Packed,
) -> anyhow::Result<()> {
    let walker = walkdir::WalkDir::new(src)
        .follow_links(false)
        .follow_root_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !skip.iter().any(|s| e.path() == s));
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                eprintln!("warning: skipped: {e}");
                continue;
            }
        };
        let rel = entry.path().strip_prefix(src).unwrap_or(Path::new(""));
        let name = if rel.as_os_str().is_empty() {
            dest.to_path_buf()
        } else {
            dest.join(rel)
        };
        let ft = entry.file_type();
        if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
            continue; // sockets, fifos, devices: never part of an environment
        }
        if ft.is_file() {
            n.bytes += append_file(tar, entry.path(), &name)
                .with_context(|| format!("packing {}", entry.path().display()))?;
            n.files += 1;
        } else {
            tar.append_path_with_name(entry.path(), &name)
                .with_context(|| format!("packing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Watches and reports until the platform refuses the credential.
async fn watch_loop(state: &AgentState, args: &WatchArgs) -> anyhow::Result<()> {
    let view = view(state)?;
    let (watcher, mut batches) =
        match westtek_drift::DriftWatcher::new(westtek_drift::WatchConfig::default()) {
            Ok((w, rx)) => (Some(w), Some(rx)),
            Err(e) => {
                eprintln!(
                    "warning: no file watcher ({e}); looking every {} s",
                    args.poll_secs
                );
                (None, None)
            }
        };
    if let Some(w) = &watcher {
        if let Err(e) = w.watch(state.environment_id, &view) {
            eprintln!(
                "warning: cannot watch {} ({e}); looking every {} s",
                view.display(),
                args.poll_secs
            );
        }
    }
    let client = agent_client()?;
    let mut last_sent: Option<serde_json::Value> = None;
    let mut previous: Option<westtek_inventory::Inventory> = None;
    let mut reason = "startup";
    let mut last_sweep = Instant::now();
    // Seconds to wait after a failed report (doubles up to 5 minutes).
    let mut backoff: Option<u64> = None;
    let mut baseline_tried = false;
    println!(
        "watching {} ({}) for drift; reporting to {}",
        state.name, state.environment_id, state.server
    );
    loop {
        let (v, prev) = (view.clone(), previous.take());
        let full = reason != "change" && reason != "poll";
        let inv = tokio::task::spawn_blocking(move || match (&prev, full) {
            (Some(p), false) => westtek_inventory::inventory_reusing(&v, p),
            _ => westtek_inventory::inventory(&v),
        })
        .await
        .map_err(|e| anyhow!("inventory: {e}"))?;
        match inv {
            Ok(inv) => {
                let value = serde_json::to_value(&inv)?;
                if last_sent.as_ref() != Some(&value) || reason == "sweep" {
                    let wire = if reason == "poll" { "change" } else { reason };
                    match report(&client, state, &value, wire).await {
                        Ok(status) => {
                            if last_sent.is_some() || reason != "sweep" {
                                println!("reported ({wire}): {status}");
                            }
                            last_sent = Some(value);
                            backoff = None;
                            // No baseline (the adopt's upload failed): take one.
                            if status == NO_BASELINE && !baseline_tried {
                                baseline_tried = true;
                                match upload(state, Some("baseline: taken by westtek agent")).await
                                {
                                    Ok(s) => println!(
                                        "baseline snapshot {} complete: {} bytes",
                                        s["id"].as_str().unwrap_or("?"),
                                        s["size_bytes"]
                                    ),
                                    Err(e) => eprintln!("warning: no baseline snapshot: {e:#}"),
                                }
                            }
                        }
                        Err(ReportError::Refused(msg)) => bail!("{msg}"),
                        Err(ReportError::Retry(msg)) => {
                            let wait = backoff.map_or(args.poll_secs.max(1), |b| (b * 2).min(300));
                            backoff = Some(wait);
                            eprintln!("warning: {msg}; retrying in {wait} s");
                            tokio::time::sleep(Duration::from_secs(wait)).await;
                        }
                    }
                }
                previous = Some(inv);
            }
            Err(e) => eprintln!("warning: cannot take the inventory: {e}"),
        }
        // Wait for a burst, the next poll or the next sweep.
        let poll = Duration::from_secs(args.poll_secs.max(1));
        reason = match batches.as_mut() {
            Some(rx) => tokio::select! {
                b = rx.recv() => match b {
                    Some(_) => "change",
                    None => {
                        // The watcher stopped: quick looks only from now on.
                        eprintln!("warning: the file watcher stopped; looking every {} s", args.poll_secs);
                        batches = None;
                        "poll"
                    }
                },
                _ = tokio::time::sleep(poll) => "poll",
            },
            None => {
                tokio::time::sleep(poll).await;
                "poll"
            }
        };
        if last_sweep.elapsed() >= Duration::from_secs(args.sweep_secs.max(10)) {
            last_sweep = Instant::now();
            reason = "sweep";
        }
    }
}

/// What a report answers while the environment has no baseline snapshot.
const NO_BASELINE: &str = "no baseline yet";

enum ReportError {
    /// The credential was refused: stop.
    Refused(String),
    /// Anything else: try again later.
    Retry(String),
}

async fn report(
    client: &reqwest::Client,
    state: &AgentState,
    inventory: &serde_json::Value,
    reason: &str,
) -> Result<String, ReportError> {
    let resp = client
        .post(format!("{}/api/agent/v1/inventory", state.server))
        .bearer_auth(&state.agent_token)
        .timeout(Duration::from_secs(60))
        .json(&serde_json::json!({ "inventory": inventory, "reason": reason }))
        .send()
        .await
        .map_err(|e| ReportError::Retry(format!("cannot reach {}: {e}", state.server)))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ReportError::Refused(format!(
            "the platform refused this agent: {}",
            problem_error(resp).await
        )));
    }
    if !status.is_success() {
        return Err(ReportError::Retry(problem_error(resp).await.to_string()));
    }
    let body: serde_json::Value = resp
        .json()
        .await
        .map_err(|e| ReportError::Retry(e.to_string()))?;
    Ok(body["drift_status"]
        .as_str()
        .unwrap_or(NO_BASELINE)
        .to_string())
}
