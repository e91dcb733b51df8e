//! Settings shared by the builder and the Jupyter runtime, and locating `uv`.
//!
//! Policy: everything the adapters need is passed in here once; nothing below
//! reads environment variables for its own configuration.

use crate::sandbox::Sandbox;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where environments and logs live and how servers are run.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// One folder per environment, named by its id.
    pub envs_dir: PathBuf,
    /// Jupyter server logs (`jupyter-<env_id>.log`).
    pub logs_dir: PathBuf,
    /// The `uv` binary.
    pub uv: PathBuf,
    /// uv's cache (`--cache-dir`); uv's default when `None`.
    pub uv_cache_dir: Option<PathBuf>,
    /// How long a server may take to answer `api/status` after spawning.
    pub start_timeout: Duration,
    /// Stop servers with no traffic for this long; never when `None`.
    pub idle_timeout: Option<Duration>,
    /// Restarts of a crashed server allowed within ten minutes before the
    /// runtime gives up and reports it exited.
    pub max_restarts: u32,
    /// Where researcher processes run (this host's sandbox by default).
    pub sandbox: Sandbox,
}

impl RuntimeConfig {
    /// Defaults: uv's own cache, 60 s to start, no idle culling, 3 restarts,
    /// this host's sandbox (probed once per process).
    pub fn new(envs_dir: PathBuf, logs_dir: PathBuf, uv: PathBuf) -> Self {
        Self {
            envs_dir,
            logs_dir,
            uv,
            uv_cache_dir: None,
            start_timeout: Duration::from_secs(60),
            idle_timeout: None,
            max_restarts: 3,
            sandbox: Sandbox::host(),
        }
    }

    /// The platform's data dir (the parent of `envs_dir`): nothing in it is
    /// ever mounted into a sandbox but the environment's own root.
    pub fn data_dir(&self) -> PathBuf {
        self.envs_dir
            .parent()
            .map_or_else(|| self.envs_dir.clone(), Path::to_path_buf)
    }

    /// The same settings with `envs_dir` and `logs_dir` made absolute, so
    /// that child processes running elsewhere see the same folders.
    pub(crate) fn absolutized(mut self) -> Self {
        if let Ok(p) = std::path::absolute(&self.envs_dir) {
            self.envs_dir = p;
        }
        if let Ok(p) = std::path::absolute(&self.logs_dir) {
            self.logs_dir = p;
        }
        self
    }
}

/// Finds `uv`: first on `PATH`, then at `<tools_dir>/bin/uv`.
///
/// A version-manager shim on `PATH` (pyenv, asdf: `…/shims/uv`) is resolved
/// to the binary behind it, because each call through the shim's shell
/// script costs ~150 ms and a build calls uv three times.
pub fn find_uv(tools_dir: Option<&Path>) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("uv"))
            .find(|candidate| is_executable(candidate))
    });
    on_path
        .map(|uv| resolve_shim(&uv).unwrap_or(uv))
        .or_else(|| {
            tools_dir
                .map(|t| t.join("bin").join("uv"))
                .filter(|candidate| is_executable(candidate))
        })
}

/// The real binary behind a `shims/uv` of pyenv or asdf, if any.
fn resolve_shim(uv: &Path) -> Option<PathBuf> {
    if uv.parent()?.file_name()? != "shims" {
        return None;
    }
    ["pyenv", "asdf"].iter().find_map(|manager| {
        let out = std::process::Command::new(manager)
            .args(["which", "uv"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        (out.status.success() && path.is_absolute() && is_executable(&path)).then_some(path)
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uv_is_found_in_the_tools_dir_when_not_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        let uv = dir.path().join("bin").join("uv");
        std::fs::write(&uv, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&uv, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = find_uv(Some(dir.path())).unwrap();
        // PATH wins when uv is installed there (as on the dev machine).
        assert!(found == uv || found.ends_with("uv"));
    }

    #[test]
    fn only_a_shims_dir_is_resolved() {
        assert_eq!(resolve_shim(Path::new("/usr/local/bin/uv")), None);
    }

    #[test]
    fn a_non_executable_file_is_not_uv() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("uv");
        std::fs::write(&f, "").unwrap();
        assert!(!is_executable(&f));
        assert!(!is_executable(dir.path()));
    }
}
