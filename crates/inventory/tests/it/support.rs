//! A real environment, built once per test binary with uv, and the helpers
//! tests use around it: a `cp -a`-like copy, a tree fingerprint to prove
//! which files changed, and command runners.
//!
//! The fixture is read-only; a test that changes an environment works on
//! its own copy ([`scratch_env`]), which is itself a relocation (copy to a
//! new root + `relocate`), the way a restore produces one.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use filetime::FileTime;

pub struct Fixture {
    pub root: PathBuf,
    /// The base interpreter's prefix (`sys.base_prefix` of the venv).
    pub base_prefix: PathBuf,
    work: PathBuf,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();
static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The shared environment (built on first use).
pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(build_fixture)
}

/// A fresh folder for one test, removed when the guard drops.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("WESTTEK_KEEP_TEST_DIRS").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn scratch(tag: &str) -> Scratch {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = fixture().work.join(format!("{tag}-{n}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    Scratch { dir }
}

/// A private, writable copy of the fixture at `<scratch>/<name>`, relocated.
pub fn scratch_env(s: &Scratch, name: &str) -> PathBuf {
    let root = s.dir.join(name);
    copy_tree(&fixture().root, &root, &|_| true);
    westtek_inventory::relocate(&root, &fixture().root, None).unwrap();
    root
}

fn work_dir() -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inventory-it");
    fs::create_dir_all(&base).unwrap();
    // Leftovers of earlier runs whose process is gone.
    for e in fs::read_dir(&base).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("run-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(format!("run-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

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

pub fn uv_pip(root: &Path, args: &[&str]) -> String {
    let python = root.join("venv/bin/python");
    let mut c = uv();
    c.arg("pip")
        .arg(args[0])
        .arg("--python")
        .arg(&python)
        .args(&args[1..]);
    run(&mut c)
}

pub const ANALYSIS_NB: &str = "home/analysis.ipynb";
pub const UNICODE_NB: &str = "home/sub dir/é notebook.ipynb";
pub const KERNEL: &str = "westtek-fixture";

pub fn notebook(cells: &[(&str, &str)], kernel: &str) -> String {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|(kind, src)| {
            let lines: Vec<String> = src.split_inclusive('\n').map(str::to_string).collect();
            let mut cell = serde_json::json!({"cell_type": kind, "metadata": {}, "source": lines});
            if *kind == "code" {
                cell["outputs"] = serde_json::json!([]);
                cell["execution_count"] = serde_json::Value::Null;
            }
            cell
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": kernel, "display_name": "Fixture Python", "language": "python"},
            "language_info": {"name": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5
    }))
    .unwrap()
}

fn write(path: &Path, content: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn build_fixture() -> Fixture {
    let work = work_dir();
    let root = work.join("fixture").join("env");
    for d in [
        "home",
        "jupyter/config",
        "jupyter/data",
        "jupyter/runtime",
        "ipython",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let python = std::env::var("WESTTEK_TEST_PYTHON").unwrap_or_else(|_| "3.11".into());
    run(uv()
        .args(["venv", "-q", "--python", &python])
        .arg(root.join("venv")));

    // A local package installed editable from the home folder: its .pth
    // and direct_url.json hold absolute paths under the root.
    let demo = root.join("home/src/westtek_demo");
    write(
        &demo.join("pyproject.toml"),
        "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n\n[project]\nname = \"westtek-demo\"\nversion = \"0.1.0\"\n",
    );
    write(&demo.join("src/westtek_demo/__init__.py"), "VALUE = 42\n");
    uv_pip(&root, &["install", "-q", "numpy", "ipykernel", "pyyaml"]);
    uv_pip(&root, &["install", "-q", "-e", demo.to_str().unwrap()]);

    // A kernelspec in JUPYTER_DATA_DIR whose argv is the venv's python by
    // absolute path, as `ipykernel install --user` writes it.
    run(Command::new(root.join("venv/bin/python"))
        .args([
            "-m",
            "ipykernel",
            "install",
            "--user",
            "--name",
            KERNEL,
            "--display-name",
            "Fixture Python",
        ])
        .env("JUPYTER_DATA_DIR", root.join("jupyter/data"))
        .env("PYTHONDONTWRITEBYTECODE", "1"));

    write(
        &root.join(ANALYSIS_NB),
        notebook(
            &[
                ("markdown", "# Analysis\nimport nothing_from_markdown\n"),
                ("code", "!pip install seaborn\n%pip install scipy\nimport numpy as np\nimport os, sys as system\n"),
                ("code", "from yaml import safe_load\nfrom . import sibling\nfrom .helpers import x  # relative\n"),
                ("code", "s = \"import not_a_module\"\ndf = np.loadtxt('data/measurements.csv', delimiter=',')\nimport westtek_demo\n"),
            ],
            KERNEL,
        ),
    );
    write(
        &root.join(UNICODE_NB),
        notebook(
            &[("code", "import numpy.linalg as la\nfrom yaml import dump\n")],
            KERNEL,
        ),
    );
    write(
        &root.join("home/.ipynb_checkpoints/analysis-checkpoint.ipynb"),
        notebook(&[("code", "import checkpoint_only\n")], KERNEL),
    );
    write(&root.join("home/helpers.py"), "x = 1\n");
    write(
        &root.join("home/__pycache__/helpers.cpython-311.pyc"),
        b"\x00bytecode",
    );
    write(&root.join("home/stale.pyc"), b"\x00bytecode");
    write(&root.join("home/data/measurements.csv"), "a,b\n1,2\n3,4\n");
    write(&root.join("home/data/empty.bin"), b"");
    write(&root.join("home/data/données é.txt"), "unicode name\n");
    let script = root.join("home/run.sh");
    write(&script, "#!/bin/sh\necho run\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("data/measurements.csv", root.join("home/latest.csv")).unwrap();
    std::os::unix::fs::symlink(
        root.join("home/data/measurements.csv"),
        root.join("home/absolute-link.csv"),
    )
    .unwrap();

    write(
        &root.join("jupyter/config/jupyter_server_config.json"),
        "{\n  \"ServerApp\": {\n    \"jpserver_extensions\": {\"westtek_demo\": true}\n  }\n}\n",
    );
    write(
        &root.join("jupyter/config/labconfig/page_config.json"),
        "{\"disabledExtensions\": {\"@westtek/disabled-ext\": true}}\n",
    );
    write(
        &root.join("jupyter/config/lab/workspaces/default-37a8.jupyterlab-workspace"),
        "{}\n",
    );
    write(&root.join("jupyter/config/lab/user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings"), "{\"theme\": \"JupyterLab Dark\"}\n");
    for (name, version) in [("fake-ext", "1.2.3"), ("disabled-ext", "0.0.1")] {
        write(
            &root.join(format!(
                "jupyter/data/labextensions/@westtek/{name}/package.json"
            )),
            format!("{{\"name\": \"@westtek/{name}\", \"version\": \"{version}\"}}\n"),
        );
    }
    write(
        &root.join("ipython/profile_default/ipython_config.py"),
        "c = get_config()\n",
    );
    write(
        &root.join("ipython/profile_default/startup/00-init.py"),
        "import os\n",
    );
    write(
        &root.join("ipython/profile_default/history.sqlite"),
        b"state, not config",
    );
    write(&root.join("jupyter/runtime/jpserver-1.json"), "{}\n");

    let cfg = fs::read_to_string(root.join("venv/pyvenv.cfg")).unwrap();
    let home = cfg
        .lines()
        .find_map(|l| l.strip_prefix("home = "))
        .expect("pyvenv.cfg has home");
    let base_prefix = Path::new(home).parent().unwrap().to_path_buf();
    Fixture {
        root,
        base_prefix,
        work,
    }
}

/// Copy `src` to `dst` like `cp -a`: symlinks as symlinks, modes, mtimes
/// (ns) of files, links and folders, hard links within the tree. `keep`
/// decides per source path whether to copy it (and what is below it).
pub fn copy_tree(src: &Path, dst: &Path, keep: &dyn Fn(&Path) -> bool) {
    let mut dirs = Vec::new();
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let walker = walkdir::WalkDir::new(src)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| keep(e.path()));
    for entry in walker {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(src).unwrap();
        // `src` may be a single file or link: then `dst` is its copy.
        let target = if rel.as_os_str().is_empty() {
            dst.to_path_buf()
        } else {
            dst.join(rel)
        };
        let meta = entry.path().symlink_metadata().unwrap();
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&target).unwrap();
            dirs.push((target, meta));
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
            filetime::set_symlink_file_times(
                &target,
                FileTime::from_last_access_time(&meta),
                FileTime::from_last_modification_time(&meta),
            )
            .unwrap();
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = inodes.get(&key) {
                    fs::hard_link(first, &target).unwrap();
                    continue;
                }
                inodes.insert(key, target.clone());
            }
            fs::copy(entry.path(), &target).unwrap();
            fs::set_permissions(&target, meta.permissions()).unwrap();
            filetime::set_file_times(
                &target,
                FileTime::from_last_access_time(&meta),
                FileTime::from_last_modification_time(&meta),
            )
            .unwrap();
        }
    }
    for (dir, meta) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, meta.permissions()).unwrap();
        filetime::set_file_times(
            &dir,
            FileTime::from_last_access_time(&meta),
            FileTime::from_last_modification_time(&meta),
        )
        .unwrap();
    }
}

/// What a snapshot would compare for one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryState {
    pub kind: char,
    pub mode: u32,
    pub mtime_ns: i128,
    /// BLAKE3 of a file, target of a symlink.
    pub content: String,
}

/// Every entry under `root` by relative path (the root itself as "").
pub fn tree_state(root: &Path) -> BTreeMap<String, EntryState> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = entry.path().symlink_metadata().unwrap();
        let ft = meta.file_type();
        let (kind, content) = if ft.is_dir() {
            ('d', String::new())
        } else if ft.is_symlink() {
            (
                'l',
                fs::read_link(entry.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            )
        } else {
            (
                'f',
                blake3::hash(&fs::read(entry.path()).unwrap())
                    .to_hex()
                    .to_string(),
            )
        };
        out.insert(
            rel,
            EntryState {
                kind,
                mode: meta.mode(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                content,
            },
        );
    }
    out
}

/// Whether `bytes` contain `needle`.
pub fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}
