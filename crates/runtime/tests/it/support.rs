//! Shared fixtures: the one built environment, a progress recorder, and
//! guards that kill servers a failing test leaves behind.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{MutexGuard, OnceCell};
use westtek_domain::ports::{BuildOutcome, BuildSpec, EnvironmentBuilder, ProgressSink};
use westtek_domain::{EnvironmentId, LabId, PackageSpec};
use westtek_runtime::{find_uv, process_alive, RuntimeConfig, UvBuilder};

/// The Python the tests build with (pyenv's global on the dev machine).
pub const PYTHON: &str = "3.11";

/// The environment built once for the whole run.
pub struct Shared {
    pub cfg: RuntimeConfig,
    pub lab: LabId,
    pub env: EnvironmentId,
    pub outcome: BuildOutcome,
    pub progress: Vec<(f32, String)>,
    pub took: Duration,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();
static JUPYTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A folder for this run under cargo's target tmp dir; folders of earlier
/// runs (whose process is gone) are removed.
fn run_dir() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("westtek-runtime-it");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let stale = e
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|pid| !process_alive(pid));
            if stale {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn uv() -> PathBuf {
    find_uv(None).expect("uv must be on PATH for these tests")
}

/// A config rooted in `dir`.
pub fn config_in(dir: &Path) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::new(dir.join("envs"), dir.join("logs"), uv());
    cfg.start_timeout = Duration::from_secs(90);
    cfg
}

pub fn spec(env: EnvironmentId, packages: &[&str]) -> BuildSpec {
    BuildSpec {
        env_id: env,
        lab_id: LabId::new(),
        python_version: PYTHON.into(),
        packages: packages
            .iter()
            .map(|p| PackageSpec::parse(p).unwrap())
            .collect(),
    }
}

/// Records every progress update.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<(f32, String)>>);

impl ProgressSink for Recorder {
    fn update(&self, fraction: f32, message: &str) {
        self.0.lock().unwrap().push((fraction, message.to_string()));
    }
}

/// The environment with `numpy`, built on first use.
pub async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let cfg = config_in(&run_dir());
            let env = EnvironmentId::new();
            let spec = spec(env, &["numpy"]);
            let recorder = Arc::new(Recorder::default());
            let began = Instant::now();
            let outcome = UvBuilder::new(cfg.clone())
                .build(&spec, recorder.clone())
                .await
                .expect("the shared environment builds");
            let took = began.elapsed();
            eprintln!("[timing] shared build (jupyterlab, ipykernel, numpy): {took:?}");
            let progress = recorder.0.lock().unwrap().clone();
            Shared {
                cfg,
                lab: spec.lab_id,
                env,
                outcome,
                progress,
                took,
            }
        })
        .await
}

/// Jupyter tests take turns on the shared environment.
pub async fn jupyter_turn() -> MutexGuard<'static, ()> {
    JUPYTER.lock().await
}

/// Kills the process group recorded in a pid file when dropped, so a
/// failing test leaves no server running.
pub struct KillOnDrop(pub PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = std::fs::read(&self.0)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("pid").and_then(|p| p.as_i64()));
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Polls `check` every 50 ms until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}
