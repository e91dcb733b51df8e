//! An environment on the distribution's Python (`/usr/bin/python3`, whose
//! `sys.base_prefix` is all of `/usr`): its base layer is the interpreter's
//! closure, not `/usr`; a drill passes with the original interpreter hidden;
//! and a restore to a new path made while `/usr/lib/python3*` is hidden (a
//! private mount namespace) brings its own interpreter and runs the
//! environment's console scripts and a kernel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use westtek_domain::ports::{CaptureRequest, ProgressSink, SnapshotEngine};
use westtek_domain::{EnvironmentId, LabId};
use westtek_snapshots::engine::LocalSnapshotEngine;
use westtek_vault::SnapshotId;

struct Quiet;
impl ProgressSink for Quiet {
    fn update(&self, _: f32, _: &str) {}
}

fn uv() -> Command {
    let uv = westtek_runtime::find_uv(
        std::env::var_os("WESTTEK_TOOLS_DIR")
            .map(PathBuf::from)
            .as_deref(),
    )
    .expect("uv is installed by the test command");
    Command::new(uv)
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn engine(data: &Path) -> LocalSnapshotEngine {
    LocalSnapshotEngine::open_or_init(
        &data.join("vault"),
        &data.join("keys/vault.key"),
        data.join("envs"),
        data.join("scratch"),
    )
    .unwrap()
}

/// What the restore-side check gets from the test that captured.
const CHILD: &str = "WESTTEK_CLOSURE_CHILD";

/// Checks made on the restored environment, printed for the parent.
const CHECK: &str = r#"
import json, sys, ssl, sqlite3, ctypes, lzma, yaml
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3", startup_timeout=90)
seen = []
def hook(msg):
    if msg["msg_type"] == "stream":
        seen.append(msg["content"]["text"])
try:
    r = kc.execute_interactive("import sys, yaml; print(sys.base_prefix); print(yaml.safe_dump({'a': 1}).strip())", timeout=60, output_hook=hook)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print("CHECK " + json.dumps({"base_prefix": sys.base_prefix, "kernel": "".join(seen).split(), "status": r["content"]["status"]}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_on_the_distribution_python_carries_its_interpreter_closure() {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.exists(),
        "Debian's python3 is part of the base system"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let env = EnvironmentId::new();
    let root = data.join("envs").join(env.to_string());
    for d in [
        "home",
        "jupyter/config",
        "jupyter/data",
        "jupyter/runtime",
        "ipython",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    run(uv()
        .args(["venv", "-q", "--python"])
        .arg(python)
        .arg(root.join("venv")));
    run(uv()
        .args(["pip", "install", "-q", "--python"])
        .arg(root.join("venv/bin/python"))
        .args(["ipykernel", "pyyaml"]));
    std::fs::write(
        root.join("home/analysis.ipynb"),
        r#"{"cells": [{"cell_type": "code", "execution_count": null, "id": "a1", "metadata": {}, "outputs": [], "source": ["import yaml\n", "import json"]}], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}"#,
    )
    .unwrap();
    let cfg = std::fs::read_to_string(root.join("venv/pyvenv.cfg")).unwrap();
    assert!(cfg.contains("home = /usr/bin"), "{cfg}");

    let e = engine(&data);
    let progress: Arc<dyn ProgressSink> = Arc::new(Quiet);
    let captured = e
        .capture(
            &CaptureRequest {
                env_id: env,
                lab_id: LabId::new(),
                parent: None,
                notes: None,
                staged: None,
            },
            progress.clone(),
        )
        .await
        .unwrap();
    let id = SnapshotId::parse(&captured.engine_id).unwrap();
    let summary = e.vault().get(&id).unwrap();
    let base = summary.layers.iter().find(|l| l.name == "base").unwrap();
    eprintln!(
        "[closure] base layer: {} files, {} MB ({} MB stored for the whole first snapshot)",
        base.files,
        base.logical_bytes >> 20,
        captured.stored_bytes_added >> 20
    );
    assert!(
        base.logical_bytes < 100 << 20,
        "{} MB",
        base.logical_bytes >> 20
    );
    assert!(
        base.logical_bytes > 10 << 20,
        "the standard library is in it"
    );
    let meta = e.vault().metadata(&id).unwrap();
    let closure = &meta["base_closure"];
    assert_eq!(closure["prefix"], "/usr");
    assert!(closure["host"]["libc_version"].is_string(), "{closure}");
    assert!(closure["host"]["loader"].is_string(), "{closure}");

    // The drill restores everything and imports the notebook's modules in a
    // kernel while the original interpreter is hidden.
    let drill = e
        .drill(&captured.engine_id, progress.clone())
        .await
        .unwrap();
    assert!(drill.passed, "{:?}", drill.failures);
    assert_eq!(drill.modules_checked, vec!["json", "yaml"]);

    // The restore and everything after it happen with /usr/lib/python3*
    // hidden, in a child of this test inside its own mount namespace.
    let target = EnvironmentId::new();
    let out = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "for d in /usr/lib/python3*; do mount -t tmpfs -o ro none \"$d\" || exit 90; done; exec \"$0\" \"$@\"",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "restored_with_the_original_interpreter_hidden",
            "--ignored",
            "--nocapture",
        ])
        .env(
            CHILD,
            serde_json::json!({
                "data": data,
                "snapshot": captured.engine_id,
                "source": env.to_string(),
                "target": target.to_string(),
            })
            .to_string(),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
    assert!(stderr.contains("[child] checked"), "{stdout}\n{stderr}");
}

/// Runs only as the child of the test above (inside a mount namespace
/// where `/usr/lib/python3*` are empty).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by an_environment_on_the_distribution_python_carries_its_interpreter_closure"]
async fn restored_with_the_original_interpreter_hidden() {
    let args: serde_json::Value = serde_json::from_str(&std::env::var(CHILD).unwrap()).unwrap();
    let data = PathBuf::from(args["data"].as_str().unwrap());
    // The original interpreter cannot run here.
    let original = Command::new("/usr/bin/python3")
        .args(["-c", "pass"])
        .output()
        .unwrap();
    assert!(!original.status.success(), "the original python still runs");

    let e = engine(&data);
    let source: EnvironmentId = args["source"].as_str().unwrap().parse().unwrap();
    let target: EnvironmentId = args["target"].as_str().unwrap().parse().unwrap();
    let restored = e
        .restore(
            args["snapshot"].as_str().unwrap(),
            source,
            target,
            Arc::new(Quiet),
        )
        .await
        .unwrap();
    let root = data.join("envs").join(target.to_string());
    let base = root.join("base/usr");
    assert!(base.join("bin/python3.11").is_file() || base.join("bin").is_dir());
    assert!(
        restored
            .relocated
            .iter()
            .any(|p| p.ends_with("venv/pyvenv.cfg")),
        "{:?}",
        restored.relocated
    );
    let path = format!("{}:/usr/bin:/bin", root.join("venv/bin").display());
    let with_env = |c: &mut Command| {
        c.env_clear()
            .env("PATH", &path)
            .env("HOME", root.join("home"))
            .env("JUPYTER_CONFIG_DIR", root.join("jupyter/config"))
            .env("JUPYTER_DATA_DIR", root.join("jupyter/data"))
            .env("JUPYTER_RUNTIME_DIR", root.join("jupyter/runtime"))
            .env("IPYTHONDIR", root.join("ipython"));
    };
    // Console scripts: their shebangs were rewritten to the new venv.
    let mut ipython = Command::new(root.join("venv/bin/ipython"));
    with_env(&mut ipython);
    let out = run(ipython.args([
        "--quick",
        "-c",
        "import sys, yaml; print('IPY', sys.base_prefix, yaml.__version__)",
    ]));
    let line = out
        .lines()
        .find(|l| l.starts_with("IPY "))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with(&format!("IPY {}", base.display())),
        "{out}"
    );
    let mut jupyter = Command::new(root.join("venv/bin/jupyter"));
    with_env(&mut jupyter);
    let specs = run(jupyter.args(["kernelspec", "list"]));
    assert!(specs.contains("python3"), "{specs}");
    // A kernel starts from the restored venv and runs code.
    let mut py = Command::new(root.join("venv/bin/python"));
    with_env(&mut py);
    let out = run(py.args(["-c", CHECK]));
    let report: serde_json::Value = serde_json::from_str(
        out.lines()
            .find_map(|l| l.strip_prefix("CHECK "))
            .unwrap_or("null"),
    )
    .unwrap();
    assert_eq!(report["status"], "ok", "{out}");
    assert_eq!(report["base_prefix"], base.to_str().unwrap(), "{out}");
    assert_eq!(report["kernel"][0], base.to_str().unwrap(), "{out}");
    assert_eq!(report["kernel"][1], "a:", "{out}");
    eprintln!("[child] checked: {report}");
}
