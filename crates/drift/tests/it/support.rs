//! The environment built once per test binary, per-test copies of it, and
//! helpers to run uv and wait for batches.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::mpsc::Receiver;
use westtek_drift::ChangeBatch;

pub const NOTEBOOK: &str = "home/analysis.ipynb";

struct Template {
    _dir: TempDir,
    root: PathBuf,
}

static TEMPLATE: OnceLock<Template> = OnceLock::new();

pub fn uv() -> Command {
    let mut c = Command::new(std::env::var("WESTTEK_UV").unwrap_or_else(|_| "uv".into()));
    c.env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_PROGRESS", "1")
        .env_remove("VIRTUAL_ENV");
    c
}

/// Run, assert success, return stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn uv_pip_install(root: &Path, packages: &[&str]) {
    run(uv()
        .args(["pip", "install", "-q", "--python"])
        .arg(root.join("venv/bin/python"))
        .args(packages));
}

pub fn notebook(code: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                   "execution_count": null, "source": [code]}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5
    }))
    .unwrap()
}

fn template() -> &'static Template {
    TEMPLATE.get_or_init(|| {
        let started = Instant::now();
        // The template lives in a static, which is never dropped: keep it
        // under the target dir and clear earlier runs' copies, not /tmp.
        let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("drift-it");
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("template-")
            .tempdir_in(&base)
            .unwrap();
        let root = dir.path().join("env");
        for d in [
            "home",
            "jupyter/config",
            "jupyter/data",
            "jupyter/runtime",
            "ipython/profile_default",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let python = std::env::var("WESTTEK_TEST_PYTHON").unwrap_or_else(|_| "3.11".into());
        run(uv()
            .args(["venv", "-q", "--python", &python])
            .arg(root.join("venv")));
        uv_pip_install(&root, &["iniconfig"]);
        fs::write(root.join(NOTEBOOK), notebook("import json\n")).unwrap();
        fs::write(root.join("home/helpers.py"), "X = 1\n").unwrap();
        fs::write(
            root.join("ipython/profile_default/ipython_config.py"),
            "c = get_config()\n",
        )
        .unwrap();
        eprintln!("fixture venv built in {:?}", started.elapsed());
        Template { _dir: dir, root }
    })
}

/// A private copy of the template environment, removed on drop.
pub struct Env {
    _dir: TempDir,
    pub root: PathBuf,
}

pub fn env() -> Env {
    let template = template();
    let dir = tempfile::Builder::new()
        .prefix("westtek-drift-env-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("env");
    run(Command::new("cp").arg("-a").arg(&template.root).arg(&root));
    // Canonical, as the watcher reports paths under the canonical root.
    let root = root.canonicalize().unwrap();
    Env { _dir: dir, root }
}

/// The next batch, or `None` after `within`.
pub async fn next_batch(rx: &mut Receiver<ChangeBatch>, within: Duration) -> Option<ChangeBatch> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}
