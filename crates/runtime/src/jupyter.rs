//! Runs one JupyterLab process per environment, in the environment's
//! sandbox (see `sandbox`), listening on a Unix socket.
//!
//! Policy:
//! - Jupyter listens on `jupyter/runtime/jupyter.sock` inside its
//!   environment (no TCP port: another environment has nothing to connect
//!   to, and the socket's folder exists only in this environment's
//!   sandbox), behind `base_url`, with a random 256-bit token the gateway
//!   injects. Kernels talk to it over IPC sockets in the same folder. The
//!   token reaches Jupyter through a 0600 file named by `JUPYTER_TOKEN_FILE`
//!   that is deleted once the server answers, so it is on no command line
//!   (`ps`) and in no environment variable a notebook could print.
//! - The process gets a clean environment: an allow-list of locale, proxy
//!   and certificate variables plus its own dirs; the platform's settings
//!   and secrets never reach user code.
//! - Each server runs as the leader of its own process group and is owned by
//!   one supervisor task, the only code that waits on it, restarts it
//!   (same port and token, with backoff, at most `max_restarts` in ten
//!   minutes) and stops it (SIGTERM to the group, SIGKILL after 5 s).
//! - `upstream` answers once a server is ready and keeps answering while a
//!   crashed server is being restarted (requests fail until it is back);
//!   `running` also lists servers still starting.
//! - A server that ends on its own — restart budget spent, shut down from
//!   inside JupyterLab (exit status 0), idle-culled — is reported once by
//!   `take_exited`; one stopped through `stop` is not.
//! - A pid file in `jupyter/runtime/` lets `reconcile_orphans` find servers
//!   left running by an earlier process of the platform.

use crate::config::RuntimeConfig;
use crate::layout::EnvLayout;
use crate::process::{
    cmdline, log_tail, process_alive, process_group_of, read_pid_file, remove_file_quietly,
    signal_group, signal_process, terminate_group, write_pid_file, PidRecord,
};
use crate::sandbox::{trusted_prefixes, var, SandboxSpec};
use crate::uv_output::scrub_paths;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use rand::RngCore;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use westtek_domain::ports::{
    JupyterRuntime, JupyterUpstream, LaunchSpec, ResourceLimits, ServerInfo, UpstreamAddr,
};
use westtek_domain::{DomainError, EnvironmentId, JupyterExit, LabId, Result};

/// Jupyter's socket in the environment's runtime dir.
const SOCKET_FILE: &str = "jupyter.sock";
/// Where a sandboxed server sees its runtime dir.
const SANDBOX_RUNTIME_DIR: &str = "/run/jupyter";
/// Where a sandboxed server finds the platform's tools (`uv`).
const SANDBOX_TOOLS_DIR: &str = "/opt/westtek/bin";
/// Code of every start failure.
const START_FAILED: &str = "jupyter_start_failed";
/// How often readiness is probed while a server starts.
const READY_POLL: Duration = Duration::from_millis(50);
/// SIGTERM grace before SIGKILL when stopping.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The window `max_restarts` counts restarts in.
const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// Log lines quoted in a start failure.
const FAILURE_LOG_LINES: usize = 12;
/// Variables passed on from the platform's environment to Jupyter.
const PASS_ENV: [&str; 17] = [
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "SHELL",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The platform's locale, proxy and certificate variables ([`PASS_ENV`] and
/// `LC_*`), for a sandboxed process; never `PATH`, which each sets itself.
pub(crate) fn passed_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os()
        .filter(|(key, _)| {
            key.to_str()
                .is_some_and(|k| k != "PATH" && (PASS_ENV.contains(&k) || k.starts_with("LC_")))
        })
        .collect()
}

/// Runs Jupyter servers as local child processes. Cheap to clone.
#[derive(Clone)]
pub struct LocalJupyterRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: RuntimeConfig,
    servers: Mutex<HashMap<EnvironmentId, Arc<Server>>>,
    exited: Mutex<Vec<(EnvironmentId, JupyterExit)>>,
    culler_started: AtomicBool,
    as_root: bool,
    /// Set by `abandon`: supervisors stop without touching anything.
    abandoned: AtomicBool,
}

/// A running server's socket held open (`O_PATH`, no symlink followed, checked
/// to be a socket): the platform connects to `/proc/self/fd/<it>`, so code in
/// the sandbox cannot swap `jupyter.sock` for a symlink to another socket of
/// the host and have the platform (root) talk to that.
struct Pinned {
    _fd: std::fs::File,
    path: PathBuf,
    http: reqwest::Client,
}

/// Opens the socket a server just answered on, without following symlinks.
fn pin_socket(rt: &Path, uid: Option<u32>) -> std::io::Result<Pinned> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(rt.join(SOCKET_FILE))?;
    let meta = fd.metadata()?;
    if !meta.file_type().is_socket() || uid.is_some_and(|u| meta.uid() != u) {
        return Err(std::io::Error::other(
            "jupyter.sock is not the server's own socket",
        ));
    }
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let http = reqwest::Client::builder()
        .no_proxy()
        .unix_socket(path.clone())
        .connect_timeout(Duration::from_secs(1))
        .build()
        .map_err(std::io::Error::other)?;
    Ok(Pinned {
        _fd: fd,
        path,
        http,
    })
}

/// One server, shared by the runtime's map and its supervisor task.
struct Server {
    env_id: EnvironmentId,
    lab_id: LabId,
    base_url: String,
    token: String,
    /// The environment's runtime dir, held open: the platform connects to
    /// `/proc/self/fd/<it>/jupyter.sock`, a path short enough for a socket
    /// however deep the data dir is.
    runtime_dir: Arc<std::fs::File>,
    /// `/proc/self/fd/<runtime dir>`: the platform's own file operations in
    /// the runtime dir go through the held fd, never through the
    /// environment's path, which code in the sandbox can turn into a
    /// symlink while the server runs.
    rt: PathBuf,
    /// HTTP over the runtime dir's `jupyter.sock`, for the readiness probe.
    http: reqwest::Client,
    /// The socket of the running launch, pinned once it answered (see
    /// [`Pinned`]).
    pinned: Mutex<Option<Arc<Pinned>>>,
    limits: ResourceLimits,
    started_at: DateTime<Utc>,
    last_activity_ms: AtomicI64,
    /// The current process (and group) id; 0 while none runs.
    pid: AtomicU32,
    /// Answered once; stays true across restarts.
    ready: AtomicBool,
    /// Set to ask the supervisor to stop the server.
    stop: watch::Sender<bool>,
    /// Set by the supervisor when the server is gone and forgotten.
    done: watch::Sender<bool>,
    /// Where the current launch's lines start in the log.
    log_offset: std::sync::atomic::AtomicU64,
}

impl Server {
    /// The origin of URLs sent over the socket (Jupyter accepts `localhost`
    /// as a local Host).
    fn origin(&self) -> &'static str {
        "http://localhost"
    }

    fn info(&self) -> ServerInfo {
        let pid = self.pid.load(Ordering::SeqCst);
        ServerInfo {
            env_id: self.env_id,
            lab_id: self.lab_id,
            started_at: self.started_at,
            last_activity: DateTime::from_timestamp_millis(
                self.last_activity_ms.load(Ordering::Relaxed),
            )
            .unwrap_or(self.started_at),
            pid: (pid != 0).then_some(pid),
        }
    }

    /// The client of the pinned socket (the probe's before it is pinned).
    fn client(&self) -> reqwest::Client {
        lock(&self.pinned)
            .as_ref()
            .map_or_else(|| self.http.clone(), |p| p.http.clone())
    }

    fn touch(&self) {
        self.last_activity_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Resolves when a stop is requested (or can no longer be).
async fn stop_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Why a launch did not produce a ready server.
enum LaunchError {
    /// A stop was requested meanwhile.
    Stopped,
    Failed(DomainError),
}

/// How a supervised server's life ended.
enum Restart {
    Running(Child),
    Stopped,
    GaveUp,
}

impl LocalJupyterRuntime {
    /// A runtime with no servers.
    pub fn new(cfg: RuntimeConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg: cfg.absolutized(),
                servers: Mutex::new(HashMap::new()),
                exited: Mutex::new(Vec::new()),
                culler_started: AtomicBool::new(false),
                abandoned: AtomicBool::new(false),
                as_root: nix::unistd::geteuid().is_root(),
            }),
        }
    }

    /// The paths of an environment.
    pub fn layout(&self, env: EnvironmentId) -> EnvLayout {
        EnvLayout::new(&self.inner.cfg.envs_dir, env)
    }

    /// Where the server of `env` logs.
    pub fn log_path(&self, env: EnvironmentId) -> PathBuf {
        self.inner.cfg.logs_dir.join(format!("jupyter-{env}.log"))
    }

    /// Finds servers an earlier process of the platform left behind (their
    /// pid files under `envs_dir`), stops those still running, removes the
    /// pid files and returns their environments, sorted. Servers of this
    /// runtime are left alone. Call it at start-up.
    pub async fn reconcile_orphans(&self) -> Vec<EnvironmentId> {
        let envs_dir = self.inner.cfg.envs_dir.clone();
        let found = tokio::task::spawn_blocking(move || scan_pid_files(&envs_dir))
            .await
            .unwrap_or_default();
        let own: HashSet<EnvironmentId> = lock(&self.inner.servers).keys().copied().collect();
        let mut tasks = JoinSet::new();
        for (env, layout) in found.into_iter().filter(|(env, _)| !own.contains(env)) {
            tasks.spawn(async move {
                if let Some(record) = read_pid_file(&layout.pid_file()) {
                    let ours = cmdline(record.pid)
                        .is_some_and(|c| c.contains("jupyter") && c.contains(&env.to_string()));
                    if ours && process_alive(record.pid) {
                        tracing::warn!(%env, pid = record.pid, "stopping a Jupyter server left behind by an earlier run");
                        if process_group_of(record.pid) == Some(record.pid) {
                            terminate_group(record.pid, STOP_GRACE).await;
                        } else {
                            // Not a group leader: signal just the process.
                            signal_process(record.pid, Signal::SIGKILL);
                        }
                    }
                    if runtime_dir_is_real(&layout) {
                        remove_server_files(&layout.jupyter_runtime(), record.pid);
                    }
                }
                if runtime_dir_is_real(&layout) {
                    remove_file_quietly(&layout.pid_file());
                }
                env
            });
        }
        let mut envs: Vec<EnvironmentId> = tasks.join_all().await;
        envs.sort();
        envs
    }

    /// Stops supervising, the way a crash of the platform would: servers are
    /// neither stopped nor restarted, files are left as they are. For tests
    /// of the start-up reconcile, which run a second platform in the same
    /// process.
    pub fn abandon(&self) {
        self.inner.abandoned.store(true, Ordering::SeqCst);
    }

    fn ensure_culler(&self) {
        let Some(idle) = self.inner.cfg.idle_timeout else {
            return;
        };
        if self.inner.culler_started.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(cull_loop(Arc::downgrade(&self.inner), idle));
    }
}

/// `(env, layout)` of every environment under `envs_dir` with a pid file.
fn scan_pid_files(envs_dir: &Path) -> Vec<(EnvironmentId, EnvLayout)> {
    let Ok(entries) = std::fs::read_dir(envs_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let env = EnvironmentId::parse(e.file_name().to_str()?).ok()?;
            let layout = EnvLayout::new(envs_dir, env);
            layout.pid_file().exists().then_some((env, layout))
        })
        .collect()
}

/// Files a killed Jupyter leaves in its runtime dir: its socket, server
/// info (holding its token; inside a sandbox it is named for the pid there,
/// not `pid`), and its kernels' connection files and IPC sockets.
fn remove_server_files(dir: &Path, pid: u32) {
    remove_file_quietly(&dir.join(SOCKET_FILE));
    remove_file_quietly(&dir.join(format!("jpserver-{pid}.json")));
    remove_file_quietly(&dir.join(format!("jpserver-{pid}-open.html")));
    remove_file_quietly(&dir.join(crate::layout::TOKEN_FILE));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("jpserver-") || name.starts_with("kernel-") {
                remove_file_quietly(&dir.join(e.file_name()));
            }
        }
    }
}

/// Whether the environment's `jupyter/` and `jupyter/runtime/` are real
/// folders, not symlinks code in the sandbox planted.
fn runtime_dir_is_real(layout: &EnvLayout) -> bool {
    let real = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    let jupyter = layout.root().join("jupyter");
    real(&jupyter) && real(&layout.jupyter_runtime())
}

/// Opens the environment's runtime dir for the platform, after making sure
/// `jupyter/` and `jupyter/runtime/` are real folders (a symlink there,
/// planted by code in the sandbox, is removed: bwrap would otherwise mount
/// whatever it points at into the next sandbox). Nothing of the
/// environment runs while this happens.
fn open_runtime_dir(layout: &EnvLayout) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    for dir in [layout.root().join("jupyter"), layout.jupyter_runtime()] {
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                tracing::warn!(path = %dir.display(), "replacing a non-folder planted in an environment's Jupyter dirs");
                std::fs::remove_file(&dir)?;
                std::fs::create_dir(&dir)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&dir)?,
            Err(e) => return Err(e),
        }
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(layout.jupyter_runtime())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `/…/` made of URL-safe characters only.
fn valid_base_url(b: &str) -> bool {
    b.starts_with('/')
        && b.ends_with('/')
        && !b.contains("//")
        && !b.contains("..")
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
}

/// The start-failure error, quoting the log without machine paths.
fn start_failed(what: &str, tail: &[String], layout: &EnvLayout, token: &str) -> DomainError {
    let root = layout.root().to_string_lossy().into_owned();
    let lines: Vec<String> = tail
        .iter()
        .map(|l| scrub_paths(&l.replace(&root, "<env>").replace(token, "<token>")))
        .collect();
    let message = if lines.is_empty() {
        what.to_string()
    } else {
        format!("{what}; last log lines:\n{}", lines.join("\n"))
    };
    DomainError::Upstream {
        code: START_FAILED,
        message,
    }
}

impl Inner {
    fn log_path(&self, env: EnvironmentId) -> PathBuf {
        self.cfg.logs_dir.join(format!("jupyter-{env}.log"))
    }

    /// Opens the log for appending, writes a header, returns the file and
    /// the offset this launch's lines start at.
    fn open_log(&self, env: EnvironmentId) -> std::io::Result<(std::fs::File, u64)> {
        std::fs::create_dir_all(&self.cfg.logs_dir)?;
        // Snapshots do not capture the runtime dir (sockets, pid files): an
        // environment restored from one starts without it.
        std::fs::create_dir_all(EnvLayout::new(&self.cfg.envs_dir, env).jupyter_runtime())?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.log_path(env))?;
        let offset = file.metadata()?.len();
        writeln!(
            file,
            "[westtek {}] starting jupyter lab ({})",
            Utc::now().to_rfc3339(),
            if self.cfg.sandbox.enforced() {
                "sandboxed"
            } else {
                "NOT sandboxed: --insecure-no-sandbox"
            }
        )?;
        Ok((file, offset))
    }

    fn command(&self, server: &Server, layout: &EnvLayout, token_file: &Path) -> Result<Command> {
        let venv_bin = layout.venv().join("bin");
        let sandboxed = self.cfg.sandbox.enforced();
        let mut path = std::ffi::OsString::from(&venv_bin);
        if sandboxed {
            path.push(":");
            path.push(SANDBOX_TOOLS_DIR);
        }
        path.push(":/usr/local/bin:/usr/bin:/bin");
        // Inside the sandbox the runtime dir is also at a short path, so
        // the server's and the kernels' socket paths fit in 107 bytes.
        let runtime_dir = if sandboxed {
            PathBuf::from(SANDBOX_RUNTIME_DIR)
        } else {
            layout.jupyter_runtime()
        };
        let mut args: Vec<std::ffi::OsString> = vec![
            "lab".into(),
            "--no-browser".into(),
            format!(
                "--ServerApp.sock={}",
                runtime_dir.join(SOCKET_FILE).display()
            )
            .into(),
            "--ServerApp.sock_mode=0600".into(),
            format!("--ServerApp.base_url={}", server.base_url).into(),
            format!("--ServerApp.root_dir={}", layout.home().display()).into(),
            "--ServerApp.open_browser=False".into(),
        ];
        if sandboxed {
            // Kernels listen on IPC sockets in the runtime dir, not on
            // loopback ports another environment could reach.
            args.push("--KernelManager.transport=ipc".into());
        }
        if self.as_root && !self.cfg.sandbox.enforced() {
            args.push("--allow-root".into());
        }
        let mut env_vars = passed_env();
        env_vars.extend([
            var("PATH", &path),
            var("HOME", layout.home()),
            var("USER", "researcher"),
            var("LOGNAME", "researcher"),
            var("VIRTUAL_ENV", layout.venv()),
            var("JUPYTER_CONFIG_DIR", layout.jupyter_config()),
            var("JUPYTER_DATA_DIR", layout.jupyter_data()),
            var("JUPYTER_RUNTIME_DIR", &runtime_dir),
            var("IPYTHONDIR", layout.ipython()),
            var("JUPYTER_TOKEN_FILE", token_file),
            var("PYTHONUNBUFFERED", "1"),
        ]);
        if sandboxed {
            // `uv pip install` from a notebook or terminal installs into this
            // venv (VIRTUAL_ENV), caches in the private /tmp, never fetches
            // an interpreter.
            env_vars.extend([
                var("UV_CACHE_DIR", "/tmp/uv-cache"),
                var("UV_LINK_MODE", "copy"),
                var("UV_PYTHON_DOWNLOADS", "never"),
                var("PIP_CACHE_DIR", "/tmp/pip-cache"),
            ]);
        }
        let spec = SandboxSpec {
            env: server.env_id,
            env_root: layout.root().to_path_buf(),
            read_only: trusted_prefixes(&layout.venv(), &self.cfg.data_dir()),
            hidden: Vec::new(),
            files: vec![(self.cfg.uv.clone(), Path::new(SANDBOX_TOOLS_DIR).join("uv"))],
            aliases: vec![(
                server.runtime_dir.clone(),
                PathBuf::from(SANDBOX_RUNTIME_DIR),
            )],
            program: venv_bin.join("jupyter"),
            args,
            env_vars,
            cwd: layout.home(),
            limits: server.limits,
        };
        let mut cmd = self.cfg.sandbox.command(&spec)?;
        cmd.stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(false);
        Ok(cmd)
    }

    /// Polls `api/status` with the token until it answers 200.
    async fn wait_ready(&self, server: &Server) {
        let url = format!("{}{}api/status", server.origin(), server.base_url);
        let auth = format!("token {}", server.token);
        loop {
            let answered = server
                .http
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, &auth)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
            if answered {
                return;
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Gives the environment's files to its uid, writes the token file
    /// (readable by that uid only) and clears a stale socket.
    async fn prepare(&self, server: &Server, layout: &EnvLayout) -> Result<()> {
        let sandbox = self.cfg.sandbox.clone();
        let root = layout.root().to_path_buf();
        let token_file = server.rt.join(crate::layout::TOKEN_FILE);
        let socket = server.rt.join(SOCKET_FILE);
        let token = server.token.clone();
        let env = server.env_id;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            remove_file_quietly(&socket);
            sandbox.hand_over(&root, env)?;
            write_token_file(&token_file, &token)?;
            sandbox.hand_over(&token_file, env)
        })
        .await
        .map_err(DomainError::internal)?
        .map_err(DomainError::internal)
    }

    /// Spawns Jupyter and waits until it answers.
    async fn launch(
        &self,
        server: &Server,
        layout: &EnvLayout,
        stop: &mut watch::Receiver<bool>,
    ) -> std::result::Result<Child, LaunchError> {
        *lock(&server.pinned) = None;
        let token_file = server.rt.join(crate::layout::TOKEN_FILE);
        let (log, offset) = self
            .open_log(server.env_id)
            .map_err(|e| LaunchError::Failed(DomainError::internal(e)))?;
        server.log_offset.store(offset, Ordering::SeqCst);
        self.prepare(server, layout)
            .await
            .map_err(LaunchError::Failed)?;
        let log_err = log
            .try_clone()
            .map_err(|e| LaunchError::Failed(DomainError::internal(e)))?;
        let began = Instant::now();
        let mut cmd = match self.command(server, layout, &layout.token_file()) {
            Ok(cmd) => cmd,
            Err(e) => {
                remove_file_quietly(&token_file);
                return Err(LaunchError::Failed(e));
            }
        };
        let mut child = cmd
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| {
                remove_file_quietly(&token_file);
                tracing::warn!(env = %server.env_id, error = %e, "cannot spawn jupyter");
                LaunchError::Failed(DomainError::Upstream {
                    code: START_FAILED,
                    message: "the environment has no runnable Jupyter (venv/bin/jupyter)".into(),
                })
            })?;
        let pid = child.id().unwrap_or(0);
        server.pid.store(pid, Ordering::SeqCst);

        enum Outcome {
            Ready,
            Exited(std::io::Result<ExitStatus>),
            Stopped,
            TimedOut,
        }
        let outcome = tokio::select! {
            () = self.wait_ready(server) => Outcome::Ready,
            status = child.wait() => Outcome::Exited(status),
            () = stop_requested(stop) => Outcome::Stopped,
            () = tokio::time::sleep(self.cfg.start_timeout) => Outcome::TimedOut,
        };
        // Jupyter has read the token by the time it answers (or never will).
        remove_file_quietly(&token_file);
        let log_path = self.log_path(server.env_id);
        match outcome {
            Outcome::Ready => {
                let uid = self.cfg.sandbox.uid_of(server.env_id);
                match pin_socket(&server.rt, uid) {
                    Ok(p) => *lock(&server.pinned) = Some(Arc::new(p)),
                    Err(e) => {
                        tracing::warn!(env = %server.env_id, error = %e, "refusing a server whose socket is not its own");
                        kill_now(&mut child, pid).await;
                        server.pid.store(0, Ordering::SeqCst);
                        remove_server_files(&server.rt, pid);
                        return Err(LaunchError::Failed(DomainError::Upstream {
                            code: START_FAILED,
                            message:
                                "Jupyter's socket was replaced by something else; it was stopped"
                                    .into(),
                        }));
                    }
                }
                let record = PidRecord {
                    pid,
                    started_at: Utc::now(),
                };
                if let Err(e) = write_pid_file(&server.rt.join(crate::layout::PID_FILE), &record) {
                    tracing::warn!(env = %server.env_id, error = %e, "cannot write the pid file");
                }
                tracing::info!(env = %server.env_id, pid, ready_ms = began.elapsed().as_millis() as u64, "Jupyter is ready");
                Ok(child)
            }
            Outcome::Exited(status) => {
                server.pid.store(0, Ordering::SeqCst);
                signal_group(pid, Signal::SIGKILL);
                remove_server_files(&server.rt, pid);
                let tail = log_tail(&log_path, offset, FAILURE_LOG_LINES);
                let what = match status {
                    Ok(s) => format!("Jupyter exited ({s}) before it answered"),
                    Err(_) => "Jupyter exited before it answered".to_string(),
                };
                tracing::warn!(env = %server.env_id, "{what}");
                // The limit's own error may sit deep in a chained traceback.
                if let Some(hit) = limit_hit(&log_tail(&log_path, offset, 400)) {
                    return Err(LaunchError::Failed(DomainError::Upstream {
                        code: hit.code(),
                        message: hit.message(&server.limits, "could not start"),
                    }));
                }
                Err(LaunchError::Failed(start_failed(
                    &what,
                    &tail,
                    layout,
                    &server.token,
                )))
            }
            Outcome::Stopped => {
                kill_now(&mut child, pid).await;
                server.pid.store(0, Ordering::SeqCst);
                remove_server_files(&server.rt, pid);
                Err(LaunchError::Stopped)
            }
            Outcome::TimedOut => {
                kill_now(&mut child, pid).await;
                server.pid.store(0, Ordering::SeqCst);
                remove_server_files(&server.rt, pid);
                let tail = log_tail(&log_path, offset, FAILURE_LOG_LINES);
                let what = format!(
                    "Jupyter did not answer within {} s",
                    self.cfg.start_timeout.as_secs_f32()
                );
                tracing::warn!(env = %server.env_id, "{what}");
                Err(LaunchError::Failed(start_failed(
                    &what,
                    &tail,
                    layout,
                    &server.token,
                )))
            }
        }
    }

    /// After a crash: restarts with backoff until running, stopped, or the
    /// restart budget is spent.
    async fn restart(
        &self,
        server: &Server,
        layout: &EnvLayout,
        stop: &mut watch::Receiver<bool>,
        restarts: &mut VecDeque<Instant>,
    ) -> Restart {
        loop {
            let now = Instant::now();
            while restarts
                .front()
                .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
            {
                restarts.pop_front();
            }
            if restarts.len() >= self.cfg.max_restarts as usize {
                tracing::error!(env = %server.env_id, restarts = restarts.len(), "Jupyter keeps exiting; giving up");
                return Restart::GaveUp;
            }
            let exponent = u32::try_from(restarts.len()).unwrap_or(u32::MAX).min(6);
            let delay = Duration::from_millis(500) * 2u32.pow(exponent);
            restarts.push_back(now);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop_requested(stop) => return Restart::Stopped,
            }
            tracing::info!(env = %server.env_id, attempt = restarts.len(), "restarting Jupyter");
            match self.launch(server, layout, stop).await {
                Ok(child) => return Restart::Running(child),
                Err(LaunchError::Stopped) => return Restart::Stopped,
                Err(LaunchError::Failed(e)) => {
                    tracing::warn!(env = %server.env_id, error = %e, "restart failed");
                }
            }
        }
    }

    /// Forgets a server whose process is gone; reports how it ended when
    /// `report` holds one.
    fn finish(&self, server: &Arc<Server>, layout: &EnvLayout, report: Option<JupyterExit>) {
        let _ = layout;
        remove_file_quietly(&server.rt.join(crate::layout::PID_FILE));
        remove_file_quietly(&server.rt.join(crate::layout::TOKEN_FILE));
        {
            let mut servers = lock(&self.servers);
            if servers
                .get(&server.env_id)
                .is_some_and(|s| Arc::ptr_eq(s, server))
            {
                servers.remove(&server.env_id);
            }
        }
        if let Some(exit) = report {
            lock(&self.exited).push((server.env_id, exit));
        }
        server.done.send_replace(true);
    }
}

fn write_token_file(path: &Path, token: &str) -> std::io::Result<()> {
    remove_file_quietly(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // Jupyter reads the file verbatim: no trailing newline.
    f.write_all(token.as_bytes())
}

/// SIGKILL to the group and reap the leader.
async fn kill_now(child: &mut Child, pgid: u32) {
    signal_group(pgid, Signal::SIGKILL);
    let _ = child.wait().await;
}

/// Asks Jupyter to shut down (its kernels end cleanly), then SIGTERM to the
/// group, SIGKILL after the grace period, then whatever of the group
/// outlived its leader. A sandbox's processes all end with it.
async fn terminate(server: &Server, child: &mut Child, pgid: u32) {
    let asked = server
        .client()
        .post(format!(
            "{}{}api/shutdown",
            server.origin(),
            server.base_url
        ))
        .header(
            reqwest::header::AUTHORIZATION,
            format!("token {}", server.token),
        )
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if asked && tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok() {
        signal_group(pgid, Signal::SIGKILL);
        return;
    }
    signal_group(pgid, Signal::SIGTERM);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            pgid,
            "Jupyter ignored SIGTERM for {} s; killing it",
            STOP_GRACE.as_secs()
        );
        signal_group(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    signal_group(pgid, Signal::SIGKILL);
}

/// Owns one server's process from spawn to exit.
async fn supervise(
    inner: Arc<Inner>,
    server: Arc<Server>,
    layout: EnvLayout,
    ready: oneshot::Sender<Result<()>>,
) {
    let mut stop = server.stop.subscribe();
    let mut child = match inner.launch(&server, &layout, &mut stop).await {
        Ok(child) => child,
        Err(e) => {
            inner.finish(&server, &layout, None);
            let e = match e {
                LaunchError::Stopped => {
                    DomainError::Conflict("the server was stopped while starting".into())
                }
                LaunchError::Failed(e) => e,
            };
            let _ = ready.send(Err(e));
            return;
        }
    };
    server.ready.store(true, Ordering::SeqCst);
    server.touch();
    let _ = ready.send(Ok(()));

    let mut restarts = VecDeque::new();
    let report = loop {
        let pid = server.pid.load(Ordering::SeqCst);
        let status = tokio::select! {
            status = child.wait() => status,
            () = stop_requested(&mut stop) => {
                terminate(&server, &mut child, pid).await;
                server.pid.store(0, Ordering::SeqCst);
                remove_server_files(&server.rt, pid);
                break None;
            }
        };
        if inner.abandoned.load(Ordering::SeqCst) {
            return;
        }
        server.pid.store(0, Ordering::SeqCst);
        // Whatever it spawned in its group goes with it.
        signal_group(pid, Signal::SIGKILL);
        remove_server_files(&server.rt, pid);
        if let Ok(s) = &status {
            if s.success() {
                tracing::info!(env = %server.env_id, "Jupyter shut down from inside");
                break Some(exit_now(
                    "shut_down",
                    "Jupyter was shut down from inside JupyterLab.",
                ));
            }
        }
        // Read before a restart appends to the log.
        let tail = log_tail(
            &inner.log_path(server.env_id),
            server.log_offset.load(Ordering::SeqCst),
            400,
        );
        let hit = limit_hit(&tail);
        tracing::warn!(env = %server.env_id, ?status, limit = hit.map(LimitHit::code), "Jupyter exited unexpectedly");
        match inner
            .restart(&server, &layout, &mut stop, &mut restarts)
            .await
        {
            Restart::Running(c) => child = c,
            Restart::Stopped => break None,
            Restart::GaveUp => {
                break Some(match hit {
                    Some(hit) => exit_now(hit.code(), &hit.message(&server.limits, "was stopped")),
                    None => exit_now(
                        "crashed",
                        "Jupyter kept exiting and was not restarted again; its log is in the platform's logs folder.",
                    ),
                })
            }
        }
    };
    inner.finish(&server, &layout, report);
}

/// Stops servers without traffic for `idle`, until the runtime is dropped.
async fn cull_loop(inner: Weak<Inner>, idle: Duration) {
    let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = Utc::now().timestamp_millis();
        let candidates: Vec<Arc<Server>> = lock(&inner.servers)
            .values()
            .filter(|s| {
                s.ready.load(Ordering::SeqCst)
                    && s.pid.load(Ordering::SeqCst) != 0
                    && now - s.last_activity_ms.load(Ordering::Relaxed) >= idle_ms
            })
            .cloned()
            .collect();
        for server in candidates {
            if busy_inside(&server, idle_ms).await {
                continue;
            }
            tracing::info!(env = %server.env_id, idle_s = idle.as_secs(), "stopping an idle Jupyter server");
            let runtime = LocalJupyterRuntime {
                inner: inner.clone(),
            };
            if runtime.stop(server.env_id).await.is_ok() {
                let idle_min = idle.as_secs() / 60;
                lock(&inner.exited).push((
                    server.env_id,
                    exit_now(
                        "idle",
                        &format!("Jupyter was stopped after {idle_min} minutes without activity."),
                    ),
                ));
            }
        }
    }
}

/// Whether Jupyter itself saw activity the gateway did not (a kernel
/// computing, terminal output): its `last_activity` is recent or a kernel is
/// busy. Moves the server's last activity forward when so.
async fn busy_inside(server: &Server, idle_ms: i64) -> bool {
    let base = format!("{}{}", server.origin(), server.base_url);
    match crate::activity::recent_activity(&server.client(), &base, &server.token, idle_ms).await {
        Some(at) => {
            server.last_activity_ms.fetch_max(at, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// A limit of the sandbox a server ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LimitHit {
    Memory,
    Processes,
}

impl LimitHit {
    fn code(self) -> &'static str {
        match self {
            LimitHit::Memory => "memory_limit",
            LimitHit::Processes => "process_limit",
        }
    }

    fn message(self, limits: &ResourceLimits, what: &str) -> String {
        match self {
            LimitHit::Memory => format!(
                "Jupyter {what}: it ran out of memory at the lab's limit of {} MiB per process. Free memory in your notebooks, or ask a lab admin to raise the limit.",
                limits.memory_bytes / (1024 * 1024)
            ),
            LimitHit::Processes => format!(
                "Jupyter {what}: the environment reached the lab's limit of {} processes and threads. Stop runaway processes, or ask a lab admin to raise the limit.",
                limits.max_processes
            ),
        }
    }
}

/// Which limit, if any, the log of a server that ended shows it hit.
fn limit_hit(log: &[String]) -> Option<LimitHit> {
    let any = |needles: &[&str]| log.iter().any(|l| needles.iter().any(|n| l.contains(n)));
    if any(&[
        "MemoryError",
        "Cannot allocate memory",
        "cannot allocate memory",
        // The loader's words when mapping a library fails under the limit.
        "failed to map segment",
        "std::bad_alloc",
        "out of memory",
    ]) {
        Some(LimitHit::Memory)
    } else if any(&[
        "can't start new thread",
        "Resource temporarily unavailable",
        "fork: retry",
        "BlockingIOError",
    ]) {
        Some(LimitHit::Processes)
    } else {
        None
    }
}

fn exit_now(reason: &str, message: &str) -> JupyterExit {
    JupyterExit {
        at: Utc::now(),
        reason: reason.into(),
        message: message.into(),
    }
}

/// Clears the start-up reservation when `start`'s future is dropped.
struct CancelStart(Option<Arc<Server>>);

impl Drop for CancelStart {
    fn drop(&mut self) {
        if let Some(server) = self.0.take() {
            server.stop.send_replace(true);
        }
    }
}

#[async_trait]
impl JupyterRuntime for LocalJupyterRuntime {
    #[tracing::instrument(skip(self, spec), fields(env = %spec.env_id))]
    async fn start(&self, spec: &LaunchSpec) -> Result<ServerInfo> {
        if !valid_base_url(&spec.base_url) {
            return Err(DomainError::invalid(
                "base_url",
                "must be a path like /jupyter/{id}/",
            ));
        }
        let layout = self.layout(spec.env_id);
        if !layout.venv_bin("jupyter").is_file() || !layout.home().is_dir() {
            return Err(DomainError::Upstream {
                code: START_FAILED,
                message: "the environment is not built (no Jupyter in its venv)".into(),
            });
        }
        self.ensure_culler();
        let now = Utc::now();
        let socket = layout.jupyter_runtime().join(SOCKET_FILE);
        let sandboxed = self.inner.cfg.sandbox.enforced();
        // sun_path holds 108 bytes with its terminating NUL; a sandboxed
        // Jupyter binds a short alias of its runtime dir.
        if !sandboxed && socket.as_os_str().len() > 107 {
            return Err(DomainError::Upstream {
                code: START_FAILED,
                message: "the data dir's path is too long for Jupyter's socket (keep it under 40 characters)".into(),
            });
        }
        let runtime_dir = {
            let layout = layout.clone();
            tokio::task::spawn_blocking(move || open_runtime_dir(&layout))
                .await
                .map_err(DomainError::internal)?
                .map_err(DomainError::internal)?
        };
        let rt = {
            use std::os::fd::AsRawFd;
            PathBuf::from(format!("/proc/self/fd/{}", runtime_dir.as_raw_fd()))
        };
        let connect_path = rt.join(SOCKET_FILE);
        let http = reqwest::Client::builder()
            .no_proxy()
            .unix_socket(connect_path.clone())
            .connect_timeout(Duration::from_secs(1))
            .build()
            .map_err(DomainError::internal)?;
        let server = Arc::new(Server {
            env_id: spec.env_id,
            lab_id: spec.lab_id,
            base_url: spec.base_url.clone(),
            token: random_token(),
            runtime_dir: Arc::new(runtime_dir),
            rt,
            http,
            pinned: Mutex::new(None),
            limits: spec.limits,
            started_at: now,
            last_activity_ms: AtomicI64::new(now.timestamp_millis()),
            pid: AtomicU32::new(0),
            ready: AtomicBool::new(false),
            stop: watch::channel(false).0,
            done: watch::channel(false).0,
            log_offset: std::sync::atomic::AtomicU64::new(0),
        });
        {
            let mut servers = lock(&self.inner.servers);
            if servers.contains_key(&spec.env_id) {
                return Err(DomainError::Conflict(
                    "a Jupyter server is already running for this environment".into(),
                ));
            }
            servers.insert(spec.env_id, server.clone());
        }
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut cancel = CancelStart(Some(server.clone()));
        tokio::spawn(supervise(
            self.inner.clone(),
            server.clone(),
            layout,
            ready_tx,
        ));
        let result = ready_rx.await;
        cancel.0 = None;
        match result {
            Ok(Ok(())) => Ok(server.info()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DomainError::internal(
                "the Jupyter supervisor ended unexpectedly",
            )),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn stop(&self, env: EnvironmentId) -> Result<()> {
        let Some(server) = lock(&self.inner.servers).get(&env).cloned() else {
            return Ok(());
        };
        let mut done = server.done.subscribe();
        server.stop.send_replace(true);
        let waited = tokio::time::timeout(STOP_GRACE * 3, done.wait_for(|d| *d)).await;
        if waited.is_err() {
            // The supervisor is stuck or gone: clean up without it.
            tracing::error!(%env, "the Jupyter supervisor did not stop the server; killing it");
            let pid = server.pid.swap(0, Ordering::SeqCst);
            signal_group(pid, Signal::SIGKILL);
            self.inner.finish(&server, &self.layout(env), None);
        }
        Ok(())
    }

    async fn upstream(&self, env: EnvironmentId) -> Option<JupyterUpstream> {
        let servers = lock(&self.inner.servers);
        let server = servers
            .get(&env)
            .filter(|s| s.ready.load(Ordering::SeqCst))?;
        let pinned = lock(&server.pinned).clone()?;
        Some(JupyterUpstream {
            addr: UpstreamAddr::Unix(pinned.path.clone()),
            token: server.token.clone(),
        })
    }

    fn touch(&self, env: EnvironmentId) {
        if let Some(server) = lock(&self.inner.servers).get(&env) {
            server.touch();
        }
    }

    async fn running(&self) -> Vec<ServerInfo> {
        let mut infos: Vec<ServerInfo> = lock(&self.inner.servers)
            .values()
            .map(|s| s.info())
            .collect();
        infos.sort_by_key(|i| i.env_id);
        infos
    }

    async fn take_exited(&self) -> Vec<(EnvironmentId, JupyterExit)> {
        let mut exited = std::mem::take(&mut *lock(&self.inner.exited));
        exited.sort_by_key(|(env, _)| *env);
        exited.dedup_by_key(|(env, _)| *env);
        exited
    }

    async fn stop_all(&self) {
        let envs: Vec<EnvironmentId> = lock(&self.inner.servers).keys().copied().collect();
        let mut tasks = JoinSet::new();
        for env in envs {
            let runtime = self.clone();
            tasks.spawn(async move { runtime.stop(env).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "stopping a Jupyter server failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_says_which_limit_a_server_hit() {
        let log = |l: &str| vec!["[I] starting".to_string(), l.to_string()];
        for memory in [
            "MemoryError",
            "bwrap: error while loading shared libraries: libselinux.so.1: failed to map segment from shared object",
            "OSError: [Errno 12] Cannot allocate memory",
        ] {
            assert_eq!(limit_hit(&log(memory)), Some(LimitHit::Memory), "{memory}");
        }
        assert_eq!(
            limit_hit(&log("RuntimeError: can't start new thread")),
            Some(LimitHit::Processes)
        );
        assert_eq!(
            limit_hit(&log("ModuleNotFoundError: No module named 'x'")),
            None
        );
    }

    #[test]
    fn base_urls_are_plain_paths() {
        assert!(valid_base_url(
            "/jupyter/0193a2b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b/"
        ));
        assert!(!valid_base_url("/jupyter/x"));
        assert!(!valid_base_url("jupyter/x/"));
        assert!(!valid_base_url("/a/../b/"));
        assert!(!valid_base_url("/a b/"));
        assert!(!valid_base_url("//evil.example/"));
    }

    #[test]
    fn tokens_are_256_random_bits_in_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_start_failure_quotes_the_log_without_paths_or_token() {
        let layout = EnvLayout::new(Path::new("/srv/westtek/envs"), EnvironmentId::new());
        let root = layout.root().display().to_string();
        let tail = vec![
            format!("[E] Bad config in {root}/jupyter/config/jupyter_server_config.py"),
            "Traceback: File \"/root/.pyenv/versions/3.11.7/lib/python3.11/x.py\", token abc123"
                .into(),
        ];
        let e = start_failed(
            "Jupyter exited (exit status: 1) before it answered",
            &tail,
            &layout,
            "abc123",
        );
        let DomainError::Upstream { code, message } = e else {
            panic!("not upstream")
        };
        assert_eq!(code, START_FAILED);
        assert!(
            message.contains("<env>/jupyter/config/jupyter_server_config.py"),
            "{message}"
        );
        assert!(
            !message.contains("/root/") && !message.contains("/srv/"),
            "{message}"
        );
        assert!(!message.contains("abc123"), "{message}");
    }

    #[tokio::test]
    async fn starting_an_unbuilt_environment_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let rt = LocalJupyterRuntime::new(RuntimeConfig::new(
            dir.path().join("envs"),
            dir.path().join("logs"),
            PathBuf::from("uv"),
        ));
        let env = EnvironmentId::new();
        let spec = LaunchSpec {
            env_id: env,
            lab_id: LabId::new(),
            researcher_id: westtek_domain::UserId::new(),
            base_url: format!("/jupyter/{env}/"),
            limits: Default::default(),
        };
        let err = rt.start(&spec).await.unwrap_err();
        assert!(
            matches!(
                err,
                DomainError::Upstream {
                    code: START_FAILED,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(rt.running().await.is_empty());
        rt.stop(env).await.unwrap();
        assert!(rt.reconcile_orphans().await.is_empty());
    }
}
