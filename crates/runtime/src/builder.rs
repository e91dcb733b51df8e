//! Builds environments as uv venvs: `uv venv`, then `uv pip install
//! jupyterlab ipykernel <packages>`, then `uv pip freeze` for the record.
//!
//! Policy:
//! - uv never downloads an interpreter (`--no-python-downloads`); only
//!   interpreters already on the host are used.
//! - Requirements reach uv as separate arguments after `--`, never through a
//!   shell, and are validated again here.
//! - A build either finishes or leaves nothing: on failure, and when the
//!   build future is dropped, uv's process group is killed and the whole
//!   environment root removed.
//! - Failures are sorted by uv's stderr into stable, user-safe codes (see
//!   `uv_output`).

use crate::config::RuntimeConfig;
use crate::layout::EnvLayout;
use crate::process::signal_group;
use crate::sandbox::{trusted_prefixes, var, SandboxSpec};
use crate::uv_output::{classify, Failure, InstallProgress, Step};
use async_trait::async_trait;
use nix::sys::signal::Signal;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use westtek_domain::ports::{
    BuildOutcome, BuildSpec, EnvironmentBuilder, ProgressSink, ResourceLimits,
};
use westtek_domain::{validate_python_version, DomainError, EnvironmentId, PackageSpec, Result};

/// Packages every environment gets.
const BASE_PACKAGES: [&str; 2] = ["jupyterlab", "ipykernel"];

/// stderr lines kept per uv step (the report that matters comes last).
const MAX_STDERR_LINES: usize = 2000;

/// The BLAKE3 configuration hash of an interpreter version and an installed
/// set (`name==version`, sorted): hex of `python_version` and the installed
/// lines, newline-joined.
pub fn configuration_hash(python_version: &str, installed: &[String]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(python_version.as_bytes());
    for line in installed {
        hasher.update(b"\n");
        hasher.update(line.as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

/// Builds environments with uv.
#[derive(Clone, Debug)]
pub struct UvBuilder {
    cfg: Arc<RuntimeConfig>,
}

impl UvBuilder {
    /// A builder putting environments into `cfg.envs_dir`.
    pub fn new(cfg: RuntimeConfig) -> Self {
        Self {
            cfg: Arc::new(cfg.absolutized()),
        }
    }

    /// The paths of an environment.
    pub fn layout(&self, env: EnvironmentId) -> EnvLayout {
        EnvLayout::new(&self.cfg.envs_dir, env)
    }

    async fn build_in(
        &self,
        layout: &EnvLayout,
        spec: &BuildSpec,
        requirements: &[String],
        progress: &dyn ProgressSink,
        child: &AtomicU32,
    ) -> Result<BuildOutcome> {
        let started = Instant::now();
        for dir in layout.skeleton() {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(DomainError::internal)?;
        }

        progress.update(
            0.02,
            &format!(
                "creating the virtual environment (Python {})",
                spec.python_version
            ),
        );
        let mut venv_args: Vec<OsString> = ["venv", "--python", spec.python_version.as_str()]
            .iter()
            .map(OsString::from)
            .collect();
        venv_args.extend(common_flags());
        venv_args.push(layout.venv().into_os_string());
        // Making the venv runs no package code: the platform does it.
        let venv = self.uv(&venv_args, layout, None, child, |_| {}).await?;
        if !venv.success {
            let failure = classify(Step::Venv, &venv.stderr);
            let available = if failure == Failure::PythonUnavailable {
                self.available_pythons().await
            } else {
                Vec::new()
            };
            return Err(failure.into_error(&spec.python_version, &available, &[]));
        }
        progress.update(0.05, "virtual environment created");
        // From here on, package code runs (build scripts of source
        // distributions): in the environment's sandbox, as its uid.
        let sandbox = self.cfg.sandbox.clone();
        let root = layout.root().to_path_buf();
        let env_id = spec.env_id;
        tokio::task::spawn_blocking(move || sandbox.hand_over(&root, env_id))
            .await
            .map_err(DomainError::internal)?
            .map_err(DomainError::internal)?;
        let venv_done = started.elapsed();

        let mut install_args: Vec<OsString> =
            vec!["pip".into(), "install".into(), "--python".into()];
        install_args.push(layout.python().into_os_string());
        install_args.extend(common_flags());
        install_args.push("--".into());
        install_args.extend(BASE_PACKAGES.iter().map(OsString::from));
        install_args.extend(requirements.iter().map(OsString::from));
        let mut parser = InstallProgress::default();
        let install = self
            .uv(&install_args, layout, Some(spec.env_id), child, |line| {
                if let Some((fraction, message)) = parser.line(line) {
                    progress.update(fraction, &message);
                }
            })
            .await?;
        if !install.success {
            let requested: Vec<String> = spec.packages.iter().map(|p| p.name.clone()).collect();
            return Err(classify(Step::Install, &install.stderr).into_error(
                &spec.python_version,
                &[],
                &requested,
            ));
        }
        let install_done = started.elapsed();

        progress.update(0.95, "recording installed packages");
        let mut freeze_args: Vec<OsString> = vec!["pip".into(), "freeze".into(), "--python".into()];
        freeze_args.push(layout.python().into_os_string());
        freeze_args.extend(common_flags());
        let freeze = self
            .uv(&freeze_args, layout, Some(spec.env_id), child, |_| {})
            .await?;
        remove_build_cache(layout).await;
        if !freeze.success {
            return Err(classify(Step::Record, &freeze.stderr).into_error(
                &spec.python_version,
                &[],
                &[],
            ));
        }
        let mut installed: Vec<String> = freeze
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        installed.sort_by_key(|l| l.to_ascii_lowercase());
        let python_version = interpreter_version(&layout.venv())?;
        let configuration_hash = configuration_hash(&python_version, &installed);
        tracing::info!(
            venv_ms = venv_done.as_millis() as u64,
            install_ms = (install_done - venv_done).as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            packages = installed.len(),
            %python_version,
            "environment built"
        );
        progress.update(
            1.0,
            &format!(
                "built: {} packages on Python {python_version}",
                installed.len()
            ),
        );
        Ok(BuildOutcome {
            python_version,
            installed,
            configuration_hash,
        })
    }

    /// Runs uv in its own process group, feeding stderr lines to `on_line`;
    /// in the sandbox of `sandboxed` when given (and the host sandboxes),
    /// with a cache of its own inside the environment's root.
    async fn uv(
        &self,
        args: &[OsString],
        layout: &EnvLayout,
        sandboxed: Option<EnvironmentId>,
        child_pgid: &AtomicU32,
        mut on_line: impl FnMut(&str),
    ) -> Result<UvOutput> {
        let cwd = layout.root();
        let mut cmd = match sandboxed.filter(|_| self.cfg.sandbox.enforced()) {
            Some(env) => {
                let mut env_vars = vec![
                    var("PATH", "/usr/local/bin:/usr/bin:/bin"),
                    var("HOME", layout.home()),
                    var("UV_CACHE_DIR", layout.root().join(BUILD_CACHE)),
                    var("UV_PYTHON_DOWNLOADS", "never"),
                    var("UV_NO_PROGRESS", "1"),
                    var("NO_COLOR", "1"),
                ];
                env_vars.extend(crate::jupyter::passed_env());
                let spec = SandboxSpec {
                    env,
                    env_root: layout.root().to_path_buf(),
                    read_only: trusted_prefixes(&layout.venv(), &self.cfg.data_dir()),
                    hidden: Vec::new(),
                    files: vec![(self.cfg.uv.clone(), PathBuf::from(SANDBOXED_UV))],
                    aliases: Vec::new(),
                    program: PathBuf::from(SANDBOXED_UV),
                    args: args.to_vec(),
                    env_vars,
                    cwd: cwd.to_path_buf(),
                    limits: ResourceLimits::default(),
                };
                let mut cmd = self.cfg.sandbox.command(&spec)?;
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .process_group(0)
                    .kill_on_drop(true);
                cmd
            }
            None => self.plain_uv(args, cwd),
        };
        self.run_uv(&mut cmd, child_pgid, &mut on_line).await
    }

    /// uv as the platform runs it itself (making the venv; everything when
    /// the sandbox is disabled).
    fn plain_uv(&self, args: &[OsString], cwd: &Path) -> Command {
        let mut cmd = Command::new(&self.cfg.uv);
        cmd.args(args)
            .current_dir(cwd)
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env_remove("VIRTUAL_ENV")
            .env_remove("CONDA_PREFIX")
            .env_remove("UV_SYSTEM_PYTHON")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cache) = &self.cfg.uv_cache_dir {
            cmd.env("UV_CACHE_DIR", cache);
        }
        cmd
    }

    async fn run_uv(
        &self,
        cmd: &mut Command,
        child_pgid: &AtomicU32,
        on_line: &mut impl FnMut(&str),
    ) -> Result<UvOutput> {
        let mut child = cmd.spawn().map_err(|e| {
            DomainError::internal(format!("cannot run uv at {}: {e}", self.cfg.uv.display()))
        })?;
        child_pgid.store(child.id().unwrap_or(0), Ordering::SeqCst);
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(DomainError::internal("uv's output pipes are missing"));
        };
        let read_stdout = async move {
            let mut out = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_to_string(&mut out).await;
            out
        };
        let read_stderr = async {
            let mut kept = VecDeque::new();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                on_line(&line);
                if kept.len() == MAX_STDERR_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
            Vec::from(kept)
        };
        let (stdout, stderr) = tokio::join!(read_stdout, read_stderr);
        let status = child.wait().await.map_err(DomainError::internal)?;
        child_pgid.store(0, Ordering::SeqCst);
        if !status.success() {
            tracing::debug!(?status, stderr = %stderr.join("\n"), "uv failed");
        }
        Ok(UvOutput {
            success: status.success(),
            stdout,
            stderr,
        })
    }

    /// Interpreter versions uv can see, for `python_unavailable` messages.
    async fn available_pythons(&self) -> Vec<String> {
        let mut cmd = Command::new(&self.cfg.uv);
        cmd.args([
            "python",
            "list",
            "--only-installed",
            "--output-format",
            "json",
        ])
        .args(common_flags())
        .env("UV_PYTHON_DOWNLOADS", "never")
        .stdin(Stdio::null())
        .kill_on_drop(true);
        let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(10), cmd.output()).await else {
            return Vec::new();
        };
        let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout) else {
            return Vec::new();
        };
        let mut versions: Vec<String> = list
            .iter()
            .filter_map(|v| {
                v.get("version")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .collect();
        let key = |v: &String| {
            v.split('.')
                .map(|p| p.parse::<u32>().unwrap_or(0))
                .collect::<Vec<_>>()
        };
        versions.sort_by_key(key);
        versions.dedup();
        versions
    }
}

/// Flags every uv call gets.
fn common_flags() -> [OsString; 4] {
    ["--no-python-downloads", "--no-progress", "--color", "never"].map(OsString::from)
}

/// What one uv step produced.
struct UvOutput {
    success: bool,
    stdout: String,
    stderr: Vec<String>,
}

/// `X.Y.Z` of the venv's interpreter, from `pyvenv.cfg` (written when the
/// venv was made, before any package code ran; the platform never executes
/// the venv's interpreter outside the sandbox).
fn interpreter_version(venv: &Path) -> Result<String> {
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).unwrap_or_default();
    cfg.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| matches!(k.trim(), "version_info" | "version"))
        .map(|(_, v)| v.trim().to_string())
        .find(|v| {
            v.split('.').count() >= 2
                && v.split('.')
                    .all(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        })
        .ok_or_else(|| DomainError::Upstream {
            code: "install_failed",
            message: "the new environment has no readable interpreter version (pyvenv.cfg)".into(),
        })
}

/// The private uv cache a sandboxed build uses, inside the environment's root.
const BUILD_CACHE: &str = ".build-cache";
/// Where a sandboxed build finds uv.
const SANDBOXED_UV: &str = "/opt/westtek/bin/uv";

/// Removes a build's private cache (it is not part of the environment).
async fn remove_build_cache(layout: &EnvLayout) {
    let cache = layout.root().join(BUILD_CACHE);
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(cache)).await;
}

/// Removes a directory tree; a missing one is fine.
/// Removes an environment root. Processes still writing into it (an
/// installer orphaned by a crash) are killed first, and the removal is
/// retried briefly while their last writes drain.
fn remove_tree(path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let mut attempt = 0;
    loop {
        crate::process::kill_processes_mentioning(path);
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if attempt < 20 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Removes a half-made environment root unless disarmed, killing the uv
/// process group still writing into it (the build future was dropped).
struct RootGuard {
    root: PathBuf,
    child_pgid: AtomicU32,
    armed: bool,
}

impl RootGuard {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            child_pgid: AtomicU32::new(0),
            armed: true,
        }
    }

    /// Removes the root off the async threads (the failure path).
    async fn cleanup(mut self) {
        self.kill_child();
        let root = self.root.clone();
        let removed = tokio::task::spawn_blocking(move || remove_tree(&root)).await;
        if let Ok(Ok(())) = removed {
            self.armed = false;
        }
        // Otherwise `drop` retries synchronously.
    }

    fn kill_child(&self) {
        let pgid = self.child_pgid.swap(0, Ordering::SeqCst);
        if pgid != 0 {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for RootGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.kill_child();
        // A killed uv may still be finishing a write; retry briefly.
        for attempt in 0..10 {
            match remove_tree(&self.root) {
                Ok(()) => return,
                Err(e) if attempt == 9 => {
                    tracing::error!(root = %self.root.display(), error = %e, "could not remove a half-built environment");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

#[async_trait]
impl EnvironmentBuilder for UvBuilder {
    #[tracing::instrument(skip(self, spec, progress), fields(env = %spec.env_id, python = %spec.python_version))]
    async fn build(
        &self,
        spec: &BuildSpec,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<BuildOutcome> {
        // The caller validated these; checking again keeps anything that
        // could read as an option away from uv even for hand-built specs.
        validate_python_version(&spec.python_version)?;
        let requirements = spec
            .packages
            .iter()
            .map(|p| PackageSpec::new(&p.name, p.version.as_deref()).map(|p| p.requirement()))
            .collect::<Result<Vec<_>>>()?;

        let layout = self.layout(spec.env_id);
        tokio::fs::create_dir_all(&self.cfg.envs_dir)
            .await
            .map_err(DomainError::internal)?;
        match tokio::fs::create_dir(layout.root()).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(DomainError::Conflict(
                    "the environment's files already exist".into(),
                ));
            }
            Err(e) => return Err(DomainError::internal(e)),
        }
        let mut guard = RootGuard::new(layout.root().to_path_buf());
        match self
            .build_in(
                &layout,
                spec,
                &requirements,
                progress.as_ref(),
                &guard.child_pgid,
            )
            .await
        {
            Ok(outcome) => {
                guard.armed = false;
                Ok(outcome)
            }
            Err(e) => {
                tracing::info!(error = %e, "build failed; removing the environment root");
                guard.cleanup().await;
                Err(e)
            }
        }
    }

    async fn remove(&self, env: EnvironmentId) -> Result<()> {
        let root = self.layout(env).root().to_path_buf();
        tokio::task::spawn_blocking(move || remove_tree(&root))
            .await
            .map_err(DomainError::internal)?
            .map_err(DomainError::internal)
    }

    fn root(&self, env: EnvironmentId) -> PathBuf {
        self.layout(env).root().to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_python_and_every_package() {
        let a = configuration_hash("3.11.7", &["numpy==2.0.0".into()]);
        assert_eq!(a, configuration_hash("3.11.7", &["numpy==2.0.0".into()]));
        assert_ne!(a, configuration_hash("3.11.8", &["numpy==2.0.0".into()]));
        assert_ne!(a, configuration_hash("3.11.7", &["numpy==2.0.1".into()]));
        assert_eq!(a.len(), 64);
        // Same bytes as hashing the newline-joined text.
        assert_eq!(
            a,
            blake3::hash(b"3.11.7\nnumpy==2.0.0").to_hex().to_string()
        );
    }

    #[test]
    fn a_dropped_guard_removes_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("env");
        std::fs::create_dir_all(root.join("venv/lib")).unwrap();
        std::fs::write(root.join("venv/lib/x"), "x").unwrap();
        drop(RootGuard::new(root.clone()));
        assert!(!root.exists());
    }
}
