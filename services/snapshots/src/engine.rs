//! The local snapshot engine: an environment root captured into the vault
//! as three layers — `base` (the interpreter's closure: executable,
//! standard library, `libpython`, headers and the shared libraries they
//! load, at their absolute paths; see `westtek_inventory::interpreter_closure`),
//! `env` (the venv, Jupyter config/data dirs, IPython profile; not the
//! runtime dir with its sockets) and `home` (notebooks and data) — with the
//! inventory and the closure's host requirements stored beside them.
//!
//! Restores go layer by layer (env, then home, then base when needed) so a
//! layer nested in another is never cleared by it. On a host where a file of
//! the original interpreter's closure is gone (and in every drill), the
//! `base` layer is restored into `<root>/base` — the interpreter that was at
//! `/usr/bin/python3.11` lands at `<root>/base/usr/bin/python3.11` — and the
//! venv is relocated to it, so the environment needs nothing outside its
//! own folder but the host's C library. Snapshots taken before the closure
//! (their base layer is the whole tree at `sys.base_prefix`) restore as
//! before, into `<root>/base` itself.

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use westtek_domain::ports::{
    CaptureOutcome, CaptureRequest, ProgressSink, RestoreOutcome, SnapshotEngine,
};
use westtek_domain::{DomainError, DrillResult, EnvironmentId, Result, SnapshotMetadata};
use westtek_inventory::{InterpreterClosure, Inventory};
use westtek_runtime::sandbox::var;
use westtek_runtime::EnvLayout;
use westtek_vault::{
    KeySource, LayerSource, RestoreRequest, SnapshotId, SnapshotRequest, Vault, VaultError,
};

/// Version of the metadata document stored with each snapshot.
const META_VERSION: u32 = 1;

/// The engine over one vault.
#[derive(Clone)]
pub struct LocalSnapshotEngine {
    vault: Arc<Vault>,
    envs_dir: PathBuf,
    scratch_dir: PathBuf,
    /// Where restored code runs (drills import the restored packages).
    sandbox: westtek_runtime::Sandbox,
    /// Changes since each environment's last capture; without it (or when
    /// it cannot vouch for them) every capture walks the whole tree.
    journal: Option<Arc<westtek_journal::Journal>>,
}

fn vault_error(e: VaultError) -> DomainError {
    match e {
        VaultError::SnapshotNotFound(id) => DomainError::Upstream {
            code: "snapshot_missing",
            message: format!("the vault has no snapshot {id}"),
        },
        VaultError::Damaged { .. } | VaultError::Corrupt { .. } => DomainError::Upstream {
            code: "vault_damaged",
            message: e.to_string(),
        },
        VaultError::WrongKey => DomainError::Upstream {
            code: "vault_key",
            message: e.to_string(),
        },
        other => DomainError::internal(format!("vault: {other}")),
    }
}

fn blocking_error(e: tokio::task::JoinError) -> DomainError {
    DomainError::internal(format!("snapshot task: {e}"))
}

/// Scales progress of one step into a slice of the whole.
struct Slice {
    inner: Arc<dyn ProgressSink>,
    from: f32,
    to: f32,
    label: &'static str,
}

impl ProgressSink for Slice {
    fn update(&self, fraction: f32, message: &str) {
        let f = self.from + (self.to - self.from) * fraction.clamp(0.0, 1.0);
        self.inner.update(f, &format!("{}: {message}", self.label));
    }
}

fn slice(
    inner: &Arc<dyn ProgressSink>,
    from: f32,
    to: f32,
    label: &'static str,
) -> Arc<dyn ProgressSink> {
    Arc::new(Slice {
        inner: inner.clone(),
        from,
        to,
        label,
    })
}

/// The document stored with every snapshot.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotMeta {
    westtek_meta_version: u32,
    environment_id: String,
    env_root: String,
    base_prefix: Option<String>,
    /// The base layer's closure (absent in snapshots whose base layer is
    /// the whole prefix tree, taken before closures existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base_closure: Option<InterpreterClosure>,
    notes: Option<String>,
    inventory: Inventory,
    /// How the capture found what changed: `journal` (only the journaled
    /// paths were read) or `full walk` with the reason. Absent before
    /// issue 13.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    change_detection: Option<ChangeDetection>,
    /// Where the files were, for a snapshot an adopted environment's agent
    /// uploaded (its venv and notebooks were not under `env_root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<westtek_domain::AdoptedFrom>,
}

/// See [`SnapshotMeta::change_detection`].
#[derive(serde::Serialize, serde::Deserialize)]
struct ChangeDetection {
    /// `journal` or `full walk`.
    mode: String,
    /// Why a full walk (first capture, restart, overflow…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// Paths handed to the vault as changed (journal mode).
    #[serde(default)]
    changed_paths: usize,
}

/// Whether a package install is running in the environment.
fn install_running(venv: &Path) -> bool {
    let needle = venv.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            return false;
        };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        cmd.contains(&needle)
            && (cmd.contains("pip install")
                || cmd.contains("pip uninstall")
                || cmd.contains("pip sync"))
    })
}

impl LocalSnapshotEngine {
    /// Opens the vault at `vault_dir` with `key_file` (both created on first
    /// use; the key file holds 32 random bytes, mode 0600).
    ///
    /// # Errors
    /// When the vault cannot be opened with the key.
    pub fn open_or_init(
        vault_dir: &Path,
        key_file: &Path,
        envs_dir: PathBuf,
        scratch_dir: PathBuf,
    ) -> Result<Self> {
        if !key_file.exists() {
            write_key_file(key_file)
                .map_err(|e| DomainError::internal(format!("vault key file: {e}")))?;
        }
        let key = KeySource::KeyFile(key_file.to_path_buf());
        let vault = if vault_dir.join("config").exists() || vault_dir.join("keys").exists() {
            Vault::open_local(vault_dir, &key)
        } else {
            std::fs::create_dir_all(vault_dir).map_err(DomainError::internal)?;
            match Vault::init_local(vault_dir, &key) {
                Err(VaultError::AlreadyExists(_)) => Vault::open_local(vault_dir, &key),
                other => other,
            }
        }
        .map_err(vault_error)?;
        Ok(Self::over(vault, envs_dir, scratch_dir))
    }

    /// Opens, or creates on first use, the vault in `storage` (e.g. an S3
    /// bucket) whose master key `wrapper` unwraps (a key file's passphrase
    /// wrapper, or KMS).
    ///
    /// # Errors
    /// When the storage cannot be reached or the key does not open the vault.
    pub fn open_or_init_in(
        storage: Arc<dyn westtek_vault::Storage>,
        wrapper: &dyn westtek_vault::KeyWrapper,
        envs_dir: PathBuf,
        scratch_dir: PathBuf,
    ) -> Result<Self> {
        let exists = storage
            .exists("config")
            .map_err(|e| vault_error(VaultError::Storage(e)))?;
        let vault = if exists {
            Vault::open_with_wrapper(storage, wrapper)
        } else {
            match Vault::init_with_wrapper(
                storage.clone(),
                wrapper,
                westtek_vault::InitOptions::default(),
            ) {
                Err(VaultError::AlreadyExists(_)) => Vault::open_with_wrapper(storage, wrapper),
                other => other,
            }
        }
        .map_err(vault_error)?;
        Ok(Self::over(vault, envs_dir, scratch_dir))
    }

    fn over(vault: Vault, envs_dir: PathBuf, scratch_dir: PathBuf) -> Self {
        LocalSnapshotEngine {
            vault: Arc::new(vault),
            envs_dir,
            scratch_dir,
            sandbox: westtek_runtime::Sandbox::host(),
            journal: None,
        }
    }

    /// The key file's wrapper (for [`Self::open_or_init_in`] with a key
    /// file), creating the key file on first use.
    ///
    /// # Errors
    /// When the key file cannot be written or read.
    pub fn key_file_wrapper(key_file: &Path) -> Result<westtek_vault::PassphraseWrapper> {
        if !key_file.exists() {
            write_key_file(key_file)
                .map_err(|e| DomainError::internal(format!("vault key file: {e}")))?;
        }
        westtek_vault::PassphraseWrapper::from_source(&KeySource::KeyFile(key_file.to_path_buf()))
            .map_err(vault_error)
    }

    /// The same engine taking incremental captures from `journal`: only the
    /// paths it saw change since the parent are read (see `westtek-journal`
    /// for when it falls back to the full walk).
    pub fn with_journal(mut self, journal: Arc<westtek_journal::Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The same engine running drills in `sandbox` (e.g. the disabled one
    /// of `--insecure-no-sandbox`).
    pub fn with_sandbox(mut self, sandbox: westtek_runtime::Sandbox) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// The vault (for gc and verify).
    pub fn vault(&self) -> Arc<Vault> {
        self.vault.clone()
    }

    fn layout(&self, env: EnvironmentId) -> EnvLayout {
        EnvLayout::new(&self.envs_dir, env)
    }

    fn meta(&self, id: &SnapshotId) -> Result<SnapshotMeta> {
        let v = self.vault.metadata(id).map_err(vault_error)?;
        serde_json::from_value(v)
            .map_err(|e| DomainError::internal(format!("snapshot metadata: {e}")))
    }
}

fn write_key_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let key: [u8; 32] = rand::random();
    f.write_all(hex::encode(key).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Layers of an environment root: `env` and `home`, and `base` when given.
fn layers(layout: &EnvLayout, base: Option<LayerSource>) -> Vec<LayerSource> {
    let mut l = vec![
        LayerSource {
            name: "env".into(),
            root: layout.root().to_path_buf(),
            // `home/*`: the home layer holds it (the empty dir stays here);
            // the runtime dir holds sockets and pid files of a live server.
            exclude: vec!["home/*".into(), "jupyter/runtime".into()],
            include: vec![],
        },
        LayerSource {
            name: "home".into(),
            root: layout.home(),
            exclude: vec![],
            include: vec![],
        },
    ];
    if let Some(b) = base {
        l.insert(0, b);
    }
    l
}

/// `3.11` from `3.11.7`.
fn major_minor(version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    (major.chars().all(|c| c.is_ascii_digit()) && minor.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{major}.{minor}"))
}

/// What identifies an interpreter install for the closure cache: its
/// executable's inode, size and times (an upgrade in place changes them).
fn closure_stamp(home: &Path, mm: &str) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(home.join(format!("python{mm}"))).ok()?;
    Some((m.ino(), m.size(), m.mtime(), m.ctime()))
}

type ClosureCache = std::sync::Mutex<
    std::collections::HashMap<(PathBuf, String), ((u64, u64, i64, i64), InterpreterClosure)>,
>;

/// The closure of the interpreter the inventory's venv names, computed once
/// per interpreter install and reused.
///
/// Only a real interpreter installation outside the data dir counts: the
/// venv's `pyvenv.cfg` names it, and code in the environment can rewrite
/// that file to name any folder the platform (root) can read.
fn base_closure(inv: &Inventory, data_dir: &Path) -> Option<InterpreterClosure> {
    static CACHE: std::sync::OnceLock<ClosureCache> = std::sync::OnceLock::new();
    let prefix = inv.python.base_prefix.as_deref()?;
    if !westtek_runtime::sandbox::is_interpreter_prefix(Path::new(prefix), data_dir) {
        tracing::warn!(base_prefix = %prefix, "the venv names a base prefix that is not an interpreter installation; no base layer captured");
        return None;
    }
    let home = PathBuf::from(inv.python.home.as_deref()?);
    if home.parent() != Some(Path::new(prefix)) {
        return None;
    }
    let mm = major_minor(inv.python.version.as_deref()?)?;
    let stamp = closure_stamp(&home, &mm)?;
    let cache = CACHE.get_or_init(Default::default);
    let key = (home.clone(), mm.clone());
    if let Ok(c) = cache.lock() {
        if let Some((s, closure)) = c.get(&key) {
            if *s == stamp {
                return Some(closure.clone());
            }
        }
    }
    let closure = match westtek_inventory::interpreter_closure(&home, &mm) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "the interpreter's closure could not be computed; no base layer captured");
            return None;
        }
    };
    if let Ok(mut c) = cache.lock() {
        c.insert(key, (stamp, closure.clone()));
    }
    Some(closure)
}

/// The `base` layer of a closure: the file-system root, only its paths.
pub(crate) fn closure_layer(c: &InterpreterClosure) -> LayerSource {
    let rel = |p: &PathBuf| p.to_string_lossy().trim_start_matches('/').to_string();
    LayerSource {
        name: "base".into(),
        root: PathBuf::from("/"),
        exclude: c.exclude.iter().map(rel).collect(),
        include: c.paths.iter().map(rel).collect(),
    }
}

/// Whether every file of the closure is still where it was (a folder of
/// it, like the standard library, is not empty).
fn closure_present(c: &InterpreterClosure) -> bool {
    c.paths.iter().all(|p| match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some()),
        Ok(_) => true,
        Err(_) => false,
    })
}

/// The interpreter's own files in a closure (not the shared libraries it
/// borrows from the system): what a drill hides.
fn interpreter_files(c: &InterpreterClosure) -> Vec<PathBuf> {
    let libs: std::collections::HashSet<PathBuf> = c
        .libraries
        .iter()
        .flat_map(|l| {
            [
                l.path.clone(),
                std::fs::canonicalize(&l.path).unwrap_or_default(),
            ]
        })
        .collect();
    c.paths
        .iter()
        .filter(|p| !libs.contains(*p) && !c.exclude.contains(p))
        .cloned()
        .collect()
}

fn python_identifier(m: &str) -> bool {
    m.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const DRILL_SCRIPT: &str = r#"
import json, sys
from jupyter_client.manager import start_new_kernel
mods = json.loads(sys.argv[1])
expect_prefix = sys.argv[2]
out = {"failures": [], "prefix": None}
km, kc = start_new_kernel(kernel_name="python3", startup_timeout=90)
try:
    seen = []
    def hook(msg):
        if msg["msg_type"] == "stream":
            seen.append(msg["content"]["text"])
    kc.execute_interactive("import sys; print(sys.prefix)", timeout=60, output_hook=hook)
    out["prefix"] = "".join(seen).strip()
    if not out["prefix"].startswith(expect_prefix):
        out["failures"].append("the kernel runs from " + out["prefix"] + ", not from the restored environment")
    for m in mods:
        r = kc.execute_interactive("import " + m, timeout=120, output_hook=lambda msg: None)
        c = r["content"]
        if c["status"] != "ok":
            out["failures"].append("import %s: %s: %s" % (m, c.get("ename"), c.get("evalue")))
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("WESTTEK-DRILL " + json.dumps(out))
"#;

#[async_trait]
impl SnapshotEngine for LocalSnapshotEngine {
    async fn capture(
        &self,
        req: &CaptureRequest,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<CaptureOutcome> {
        let layout = match &req.staged {
            Some(st) => EnvLayout::new(&st.dir, req.env_id),
            None => self.layout(req.env_id),
        };
        let (exists, busy) = {
            let (root, venv) = (layout.root().to_path_buf(), layout.venv());
            tokio::task::spawn_blocking(move || (root.is_dir(), install_running(&venv)))
                .await
                .map_err(blocking_error)?
        };
        if !exists {
            return Err(DomainError::NotFound {
                kind: "environment files",
            });
        }
        if busy {
            return Err(DomainError::Conflict(
                "a package install is running in this environment; snapshot it when the install has finished".into(),
            ));
        }
        let me = self.clone();
        let req = req.clone();
        tokio::task::spawn_blocking(move || {
            progress.update(0.01, "taking the inventory");
            let (inv, closure, base) = match &req.staged {
                Some(st) => {
                    let inv: Inventory = serde_json::from_value(st.inventory.clone()).map_err(
                        |e| DomainError::invalid("inventory", format!("not an inventory: {e}")),
                    )?;
                    let (closure, base) = crate::staged::base_of(&st.dir, st.closure.as_ref())?;
                    (inv, closure, base)
                }
                None => {
                    let inv = westtek_inventory::inventory(layout.root())
                        .map_err(|e| DomainError::internal(format!("inventory: {e}")))?;
                    progress.update(0.03, "finding the interpreter's files");
                    let closure =
                        base_closure(&inv, me.envs_dir.parent().unwrap_or(&me.envs_dir));
                    let base = closure.as_ref().map(closure_layer);
                    (inv, closure, base)
                }
            };
            let seed = westtek_inventory::seed_metadata(&inv);
            let base_prefix = inv.python.base_prefix.clone();
            let parent = req
                .parent
                .as_deref()
                .and_then(|p| SnapshotId::parse(p).ok());
            let sources = layers(&layout, base);
            // The mark: changes from here on belong to the next capture
            // (uploads have no journal: the vault compares them whole).
            let ticket = match req.staged {
                Some(_) => None,
                None => me.journal.as_ref().map(|j| j.begin(req.env_id, layout.root())),
            };
            let roots: Vec<PathBuf> = sources.iter().map(|l| l.root.clone()).collect();
            let hints = match &ticket {
                Some(t) => t.hints_for(parent.as_ref().map(SnapshotId::as_str), &roots),
                None => Err("no change journal on this host".to_string()),
            };
            let detection = match &hints {
                Ok(h) => ChangeDetection {
                    mode: "journal".into(),
                    reason: None,
                    changed_paths: h.len(),
                },
                Err(why) => ChangeDetection {
                    mode: "full walk".into(),
                    reason: Some(why.clone()),
                    changed_paths: 0,
                },
            };
            tracing::info!(env = %req.env_id, mode = %detection.mode, reason = detection.reason.as_deref().unwrap_or(""), changed_paths = detection.changed_paths, "capture");
            progress.update(
                0.04,
                &match &detection.reason {
                    None => format!("journal: {} changed paths", detection.changed_paths),
                    Some(why) => format!("full walk: {why}"),
                },
            );
            let meta = SnapshotMeta {
                westtek_meta_version: META_VERSION,
                environment_id: req.env_id.to_string(),
                env_root: layout.root().to_string_lossy().to_string(),
                base_prefix: base_prefix.clone(),
                base_closure: closure,
                notes: req.notes.clone(),
                inventory: inv,
                change_detection: Some(detection),
                origin: req.staged.as_ref().map(|s| s.origin.clone()),
            };
            let metadata = serde_json::to_value(&meta).map_err(DomainError::internal)?;
            let full_walk = hints.is_err();
            let sreq = SnapshotRequest {
                layers: sources,
                parent,
                metadata,
                changed_hint: hints.ok(),
            };
            let summary = me
                .vault
                .snapshot(&sreq, slice(&progress, 0.05, 1.0, "snapshot"));
            if let (Some(j), Some(t)) = (&me.journal, ticket) {
                match &summary {
                    Ok(s) => j.commit(t, s.id.as_str(), full_walk),
                    Err(_) => j.abort(t),
                }
            }
            let summary = summary.map_err(vault_error)?;
            Ok(CaptureOutcome {
                engine_id: summary.id.to_string(),
                location: format!("{}#{}", me.vault.location(), summary.id),
                checksum: summary.root_hash.clone(),
                size_bytes: summary.logical_bytes,
                stored_bytes_added: summary.stored_bytes_added,
                metadata: SnapshotMetadata {
                    jupyter_version: seed.jupyter_version,
                    installed_packages: seed.installed_packages,
                    notebook_count: u32::try_from(seed.notebook_count).unwrap_or(u32::MAX),
                    configuration_files: seed.configuration_files,
                    notes: req.notes.clone(),
                },
                changed_during_read: summary
                    .changed_during_read
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                skipped: summary
                    .skipped
                    .iter()
                    .map(|(p, why)| format!("{}: {why}", p.display()))
                    .collect(),
            })
        })
        .await
        .map_err(blocking_error)?
    }

    async fn restore(
        &self,
        engine_id: &str,
        _source: EnvironmentId,
        target: EnvironmentId,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<RestoreOutcome> {
        let id = SnapshotId::parse(engine_id).map_err(vault_error)?;
        let me = self.clone();
        let layout = self.layout(target);
        tokio::task::spawn_blocking(move || {
            restore_into(&me, &id, &layout, progress, false).map(|(o, _)| o)
        })
        .await
        .map_err(blocking_error)?
    }

    async fn inventory(&self, engine_id: &str) -> Result<serde_json::Value> {
        let id = SnapshotId::parse(engine_id).map_err(vault_error)?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let meta = me.meta(&id)?;
            serde_json::to_value(meta.inventory).map_err(DomainError::internal)
        })
        .await
        .map_err(blocking_error)?
    }

    async fn diff(&self, a: &str, b: &str) -> Result<serde_json::Value> {
        let a = SnapshotId::parse(a).map_err(vault_error)?;
        let b = SnapshotId::parse(b).map_err(vault_error)?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let (ma, mb) = (me.meta(&a)?, me.meta(&b)?);
            let findings = westtek_inventory::diff(&ma.inventory, &mb.inventory);
            let tree = me.vault.diff(&a, &b).map_err(vault_error)?;
            let mut files = Vec::new();
            for l in &tree.layers {
                for e in &l.added {
                    files.push(serde_json::json!({ "layer": l.layer, "path": e.path, "change": "added", "kind": e.kind, "size": e.size }));
                }
                for e in &l.removed {
                    files.push(serde_json::json!({ "layer": l.layer, "path": e.path, "change": "removed", "kind": e.kind, "size": e.size }));
                }
                for e in &l.changed {
                    files.push(serde_json::json!({
                        "layer": l.layer, "path": e.path, "change": "changed", "kind": e.new_kind,
                        "size": e.new_size, "old_size": e.old_size,
                        "content_changed": e.content_changed, "metadata_changed": e.metadata_changed,
                    }));
                }
            }
            Ok(serde_json::json!({
                "drift_status": westtek_inventory::drift_status(&findings),
                "findings": findings,
                "files": files,
            }))
        })
        .await
        .map_err(blocking_error)?
    }

    async fn delete(&self, engine_id: &str) -> Result<()> {
        let id = SnapshotId::parse(engine_id).map_err(vault_error)?;
        let vault = self.vault.clone();
        tokio::task::spawn_blocking(move || match vault.delete(&id) {
            Ok(()) | Err(VaultError::SnapshotNotFound(_)) => Ok(()),
            Err(e) => Err(vault_error(e)),
        })
        .await
        .map_err(blocking_error)?
    }

    async fn gc(&self) -> Result<serde_json::Value> {
        let vault = self.vault.clone();
        tokio::task::spawn_blocking(move || {
            let r = vault
                .gc(Arc::new(westtek_vault::NoProgress))
                .map_err(vault_error)?;
            serde_json::to_value(r).map_err(DomainError::internal)
        })
        .await
        .map_err(blocking_error)?
    }

    async fn verify(&self, read_data: bool) -> Result<serde_json::Value> {
        let vault = self.vault.clone();
        tokio::task::spawn_blocking(move || {
            let r = vault
                .verify(read_data, Arc::new(westtek_vault::NoProgress))
                .map_err(vault_error)?;
            serde_json::to_value(r).map_err(DomainError::internal)
        })
        .await
        .map_err(blocking_error)?
    }

    async fn forget_environment(&self, env: EnvironmentId) {
        if let Some(j) = &self.journal {
            let j = Arc::clone(j);
            let _ = tokio::task::spawn_blocking(move || j.unwatch(env)).await;
        }
    }

    async fn drill(&self, engine_id: &str, progress: Arc<dyn ProgressSink>) -> Result<DrillResult> {
        let id = SnapshotId::parse(engine_id).map_err(vault_error)?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || drill(&me, &id, progress))
            .await
            .map_err(blocking_error)?
    }
}

/// Restores snapshot `id` into `layout`'s root; `force_base` restores the
/// interpreter too even when the original one still exists (drills).
/// Returns the outcome and the snapshot's metadata.
fn restore_into(
    me: &LocalSnapshotEngine,
    id: &SnapshotId,
    layout: &EnvLayout,
    progress: Arc<dyn ProgressSink>,
    force_base: bool,
) -> Result<(RestoreOutcome, SnapshotMeta)> {
    let meta = me.meta(id)?;
    let summary = me.vault.get(id).map_err(vault_error)?;
    let has_base = summary.layers.iter().any(|l| l.name == "base");
    let root = layout.root().to_path_buf();
    std::fs::create_dir_all(&root).map_err(DomainError::internal)?;
    let original_base_ok = match &meta.base_closure {
        Some(c) => closure_present(c),
        None => meta
            .base_prefix
            .as_deref()
            .is_some_and(|b| Path::new(b).join("bin").is_dir()),
    };
    // An adopted environment's closure names the lab machine's paths: a
    // file at the same path here is not that interpreter.
    let restore_base = has_base && (force_base || meta.origin.is_some() || !original_base_ok);
    let base_target = root.join("base");
    // Where the interpreter's prefix lands: a closure keeps absolute paths
    // below the layer's root; an old-style base layer is the prefix itself.
    let base_prefix_new = match (&meta.base_closure, meta.base_prefix.as_deref()) {
        (Some(_), Some(prefix)) => base_target.join(prefix.trim_start_matches('/')),
        _ => base_target.clone(),
    };
    let mut steps: Vec<(&str, PathBuf)> = vec![("env", root.clone()), ("home", layout.home())];
    if restore_base {
        steps.push(("base", base_target.clone()));
    }
    let n = steps.len() as f32;
    let mut outcome = RestoreOutcome::default();
    for (i, (layer, target)) in steps.iter().enumerate() {
        // A layer restored before may have put a symlink where the next
        // one goes (`base` → `/`): never restore through it.
        if std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(DomainError::Upstream {
                code: "vault_damaged",
                message: format!(
                    "the snapshot puts a symlink at {}, where its {layer} layer goes; not restoring through it",
                    target.display()
                ),
            });
        }
        let req = RestoreRequest {
            targets: vec![((*layer).to_string(), target.clone())],
            verify: false,
        };
        let sink = slice(
            &progress,
            i as f32 / n * 0.95,
            (i as f32 + 1.0) / n * 0.95,
            "restore",
        );
        let report = me.vault.restore(id, &req, sink).map_err(vault_error)?;
        outcome.files += report.files;
        outcome.bytes += report.bytes_written;
    }
    let old_root = PathBuf::from(&meta.env_root);
    if old_root != root || restore_base || meta.origin.is_some() {
        progress.update(0.96, "relocating the environment to its new path");
        let extra: Vec<(PathBuf, PathBuf)> = match &meta.origin {
            Some(o) => vec![
                (PathBuf::from(&o.venv_path), layout.venv()),
                (PathBuf::from(&o.notebooks_path), layout.home()),
            ],
            None => Vec::new(),
        };
        let report = westtek_inventory::relocate_mapped(
            &root,
            &old_root,
            restore_base.then_some(base_prefix_new.as_path()),
            &extra,
        )
        .map_err(|e| DomainError::internal(format!("relocate: {e}")))?;
        outcome.relocated = report
            .rewritten
            .iter()
            .chain(report.relinked.iter())
            .map(|p| p.display().to_string())
            .collect();
    }
    progress.update(1.0, "restored");
    Ok((outcome, meta))
}

fn drill(
    me: &LocalSnapshotEngine,
    id: &SnapshotId,
    progress: Arc<dyn ProgressSink>,
) -> Result<DrillResult> {
    let started = Instant::now();
    std::fs::create_dir_all(&me.scratch_dir).map_err(DomainError::internal)?;
    let scratch = tempfile::Builder::new()
        .prefix("drill-")
        .tempdir_in(&me.scratch_dir)
        .map_err(DomainError::internal)?;
    let env = EnvironmentId::new();
    let layout = EnvLayout::new(scratch.path(), env);
    let (_, meta) = restore_into(me, id, &layout, slice(&progress, 0.0, 0.7, "drill"), true)?;
    let mut modules: Vec<String> = meta
        .inventory
        .notebooks
        .iter()
        .flat_map(|n| n.imports.iter().cloned())
        .map(|m| m.split('.').next().unwrap_or("").to_string())
        .filter(|m| python_identifier(m))
        .collect();
    modules.sort();
    modules.dedup();
    progress.update(
        0.75,
        &format!(
            "starting the restored kernel and importing {} modules",
            modules.len()
        ),
    );
    let python = layout.venv().join("bin").join("python");
    let home = layout.home();
    let root = layout.root();
    let runtime = scratch.path().join("runtime");
    let out = (|| -> Result<std::process::Output> {
        // The drill runs the restored packages' code: in a sandbox that
        // sees only the drill's scratch folder, as its own uid.
        std::fs::create_dir_all(&runtime).map_err(DomainError::internal)?;
        me.sandbox
            .hand_over(scratch.path(), env)
            .map_err(DomainError::internal)?;
        let spec = westtek_runtime::sandbox::SandboxSpec {
            env,
            env_root: scratch.path().to_path_buf(),
            // The drill restored the interpreter into its own folder; the
            // snapshot's pyvenv.cfg names nothing else to mount, and the
            // original interpreter is hidden (the sandbox shows /usr, where
            // the distribution's Python lives), so a pass proves the
            // restored one runs on its own.
            read_only: Vec::new(),
            hidden: meta
                .base_closure
                .as_ref()
                .map(interpreter_files)
                .unwrap_or_default(),
            files: Vec::new(),
            aliases: Vec::new(),
            program: python.clone(),
            args: vec![
                "-c".into(),
                DRILL_SCRIPT.into(),
                serde_json::to_string(&modules)
                    .map_err(DomainError::internal)?
                    .into(),
                root.as_os_str().to_owned(),
            ],
            env_vars: vec![
                var(
                    "PATH",
                    format!("{}:/usr/bin:/bin", layout.venv().join("bin").display()),
                ),
                var("HOME", &home),
                var("JUPYTER_CONFIG_DIR", root.join("jupyter/config")),
                var("JUPYTER_DATA_DIR", root.join("jupyter/data")),
                var("JUPYTER_RUNTIME_DIR", &runtime),
                var("IPYTHONDIR", root.join("ipython")),
            ],
            cwd: home.clone(),
            limits: westtek_domain::ports::ResourceLimits::default(),
        };
        me.sandbox
            .std_command(&spec)?
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(DomainError::internal)
    })();
    let mut failures = Vec::new();
    match out {
        Err(e) => failures.push(format!("the restored interpreter did not start: {e}")),
        Ok(o) => {
            let stdout = String::from_utf8_lossy(&o.stdout);
            match stdout
                .lines()
                .find_map(|l| l.strip_prefix("WESTTEK-DRILL "))
            {
                Some(json) => match serde_json::from_str::<serde_json::Value>(json) {
                    Ok(v) => failures.extend(
                        v["failures"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|f| f.as_str().map(str::to_string)),
                    ),
                    Err(e) => failures.push(format!("unreadable drill report: {e}")),
                },
                None => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    let tail: Vec<&str> = err.lines().rev().take(5).collect();
                    failures.push(format!(
                        "the restored kernel did not run: {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    ));
                }
            }
        }
    }
    progress.update(
        1.0,
        if failures.is_empty() {
            "drill passed"
        } else {
            "drill failed"
        },
    );
    Ok(DrillResult {
        passed: failures.is_empty(),
        at: chrono::Utc::now(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        modules_checked: modules,
        failures,
    })
}
