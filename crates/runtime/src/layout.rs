//! The files of one environment, all under `<envs_dir>/<env_id>/`.
//!
//! Everything an environment owns lives under its root so a snapshot of the
//! root captures it whole: the venv, the Jupyter root dir (`home/`), and
//! Jupyter's and IPython's config, data and runtime dirs. `jupyter/runtime`
//! holds per-process state (server info files, the pid file) that snapshots
//! should skip.

use std::path::{Path, PathBuf};
use westtek_domain::EnvironmentId;

/// Name of the pid file the runtime writes into `jupyter/runtime/`.
pub const PID_FILE: &str = "westtek-server.json";
/// Name of the file handing Jupyter its token while it starts.
pub const TOKEN_FILE: &str = "westtek-token";

/// Paths of one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvLayout {
    root: PathBuf,
}

impl EnvLayout {
    /// The layout of `env` inside `envs_dir`.
    pub fn new(envs_dir: &Path, env: EnvironmentId) -> Self {
        Self {
            root: envs_dir.join(env.to_string()),
        }
    }

    /// `<envs_dir>/<env_id>`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The uv venv.
    pub fn venv(&self) -> PathBuf {
        self.root.join("venv")
    }

    /// A program in the venv's `bin/`.
    pub fn venv_bin(&self, name: &str) -> PathBuf {
        self.venv().join("bin").join(name)
    }

    /// The venv's interpreter.
    pub fn python(&self) -> PathBuf {
        self.venv_bin("python")
    }

    /// Jupyter's root dir and the server's `HOME`: notebooks and data.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// `JUPYTER_CONFIG_DIR`.
    pub fn jupyter_config(&self) -> PathBuf {
        self.root.join("jupyter").join("config")
    }

    /// `JUPYTER_DATA_DIR`.
    pub fn jupyter_data(&self) -> PathBuf {
        self.root.join("jupyter").join("data")
    }

    /// `JUPYTER_RUNTIME_DIR`.
    pub fn jupyter_runtime(&self) -> PathBuf {
        self.root.join("jupyter").join("runtime")
    }

    /// `IPYTHONDIR`.
    pub fn ipython(&self) -> PathBuf {
        self.root.join("ipython")
    }

    /// The runtime's pid file for the environment's server.
    pub fn pid_file(&self) -> PathBuf {
        self.jupyter_runtime().join(PID_FILE)
    }

    /// The token file Jupyter reads at start-up (deleted once it answers).
    pub fn token_file(&self) -> PathBuf {
        self.jupyter_runtime().join(TOKEN_FILE)
    }

    /// The folders a built environment has besides its venv.
    pub fn skeleton(&self) -> [PathBuf; 5] {
        [
            self.home(),
            self.jupyter_config(),
            self.jupyter_data(),
            self.jupyter_runtime(),
            self.ipython(),
        ]
    }
}
