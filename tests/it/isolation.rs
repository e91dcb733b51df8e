//! Issue 12: code a researcher runs reaches nothing beyond its own
//! environment. Two labs, two real environments, two real JupyterLabs
//! through the gateway; lab A's kernel and lab A's JupyterLab terminal try
//! what an attacker would (the platform's keys and database, the vault, lab
//! B's files and Jupyter, the platform process), and each attempt fails;
//! normal work (numpy, its own home, `uv pip install` into its own venv,
//! outbound network, snapshot, drift, restore, drill) still works; runaway
//! memory and process counts end at the lab's limits while the platform and
//! lab B keep answering.

use crate::jupyter::execute;
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use westtek_tests::{build_env, spawn_app, TestApp};

/// Launches the environment's Jupyter and opens a kernel; returns the
/// kernel's channels WebSocket URL.
async fn kernel(app: &TestApp, token: &str, env: &str) -> String {
    let (s, b) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            token,
            Some(json!({"environment_id": env})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, k) = app
        .call(
            Method::POST,
            &format!("/jupyter/{env}/api/kernels"),
            token,
            Some(json!({"name": "python3"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    format!(
        "{}/jupyter/{env}/api/kernels/{}/channels",
        app.url.replacen("http", "ws", 1),
        k["id"].as_str().unwrap()
    )
}

/// Stops the environment's Jupyter through the API; the answer's status.
async fn stop_jupyter(app: &TestApp, token: &str, env: &str) -> StatusCode {
    app.call(
        Method::DELETE,
        &format!("/api/environments/{env}/jupyter"),
        token,
        None,
    )
    .await
    .0
}

/// Runs `command` in a new JupyterLab terminal of `env` through the
/// gateway; returns what it printed.
async fn terminal(app: &TestApp, token: &str, env: &str, command: &str) -> String {
    let (s, t) = app
        .call(
            Method::POST,
            &format!("/jupyter/{env}/api/terminals"),
            token,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let url = format!(
        "{}/jupyter/{env}/terminals/websocket/{}",
        app.url.replacen("http", "ws", 1),
        t["name"].as_str().unwrap()
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    // The marker is split in the typed line so only the output matches.
    let line = format!("{command}; echo '__END''_OF_OUTPUT__'\r");
    ws.send(Message::Text(json!(["stdin", line]).to_string().into()))
        .await
        .unwrap();
    let mut out = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !out.contains("__END_OF_OUTPUT__") {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("the terminal answered in time: {out}"));
        let Some(Ok(Message::Text(m))) = next else {
            continue;
        };
        let v: Value = serde_json::from_str(&m).unwrap();
        if v[0] == "stdout" {
            out.push_str(v[1].as_str().unwrap_or(""));
        }
    }
    let _ = ws.close(None).await;
    out
}

/// Python evaluating to a dict: probe name → what happened (the
/// exception's class name when refused).
fn probes(data: &str, other_env: &str, platform_pid: u32) -> String {
    format!(
        r#"
import os, socket, signal, json
data = {data:?}
other = os.path.join(data, "envs", {other_env:?})
def attempt(f):
    try:
        return "ALLOWED: " + repr(f())[:80]
    except BaseException as e:
        return type(e).__name__
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def checked(rc):
    if rc == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc
def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return "connected"
r = {{
  "signing key": attempt(lambda: open(os.path.join(data, "keys/signing-key.pem")).read()),
  "vault key": attempt(lambda: open(os.path.join(data, "keys/vault.key")).read()),
  "meta.db": attempt(lambda: open(os.path.join(data, "meta.db"), "rb").read(16)),
  "data dir": sorted(os.listdir(data)),
  "envs": sorted(os.listdir(os.path.join(data, "envs"))),
  "vault": attempt(lambda: os.listdir(os.path.join(data, "vault"))),
  "other home": attempt(lambda: os.listdir(os.path.join(other, "home"))),
  "other venv write": attempt(lambda: open(os.path.join(other, "venv/lib/evil.pth"), "w").write("import os")),
  "other runtime": attempt(lambda: os.listdir(os.path.join(other, "jupyter/runtime"))),
  "other socket": attempt(lambda: connect(os.path.join(other, "jupyter/runtime/jupyter.sock"))),
  "signal platform": attempt(lambda: os.kill({platform_pid}, signal.SIGTERM)),
  "platform environ": attempt(lambda: open("/proc/{platform_pid}/environ", "rb").read()),
  "ptrace": attempt(lambda: checked(libc.ptrace(16, 1, 0, 0))),
  "new user namespace": attempt(lambda: checked(libc.unshare(0x10000000))),
  "mount": attempt(lambda: checked(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))),
  "uid": os.getuid(),
  "processes seen": len([p for p in os.listdir("/proc") if p.isdigit()]),
}}
json.dumps(r).encode().hex()
"#
    )
}

/// The loopback TCP ports this machine listens on (from the host's view,
/// which a notebook shares: its network is the host's).
fn listening_ports() -> Vec<u16> {
    let mut ports = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(t) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in t.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 3 && cols[3] == "0A" {
                if let Some(p) = cols[1].rsplit(':').next() {
                    if let Ok(port) = u16::from_str_radix(p, 16) {
                        ports.push(port);
                    }
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

async fn drift_status(app: &TestApp, token: &str, env: &str) -> String {
    let (s, d) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env}/drift"),
            token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    d["status"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notebook_reaches_nothing_beyond_its_environment_and_its_limits_hold() {
    let app = spawn_app().await;
    assert_eq!(
        app.app.state.config.sandbox.mode, "enforced",
        "this host must sandbox (bubblewrap installed?): {:?}",
        app.app.state.config.sandbox
    );
    let lab_a = app.create_lab("lab-a").await;
    let lab_b = app.create_lab("lab-b").await;
    let alice = app.create_user(&lab_a, "alice", "researcher").await;
    let bob = app.create_user(&lab_b, "bob", "researcher").await;
    let env_a = build_env(&app, &alice, "a-env", json!(["numpy"])).await;
    let env_b = build_env(&app, &bob, "b-env", json!([])).await;
    let data = app.data_dir.path().join("data");
    let data_s = data.to_str().unwrap();

    let ws_b = kernel(&app, &bob, &env_b).await;
    assert_eq!(execute(&ws_b, &bob, "6*7").await, "42");
    let ws_a = kernel(&app, &alice, &env_a).await;

    // Every probe from lab A's kernel is refused.
    let raw = execute(&ws_a, &alice, &probes(data_s, &env_b, std::process::id())).await;
    let r: Value = serde_json::from_slice(&hex::decode(raw.trim_matches('\'')).unwrap()).unwrap();
    for (probe, outcome) in r.as_object().unwrap() {
        if ["uid", "processes seen", "data dir", "envs"].contains(&probe.as_str()) {
            continue;
        }
        assert!(
            !outcome.as_str().unwrap_or("ALLOWED").starts_with("ALLOWED"),
            "{probe}: {outcome} (all: {r})"
        );
    }
    assert_ne!(r["uid"], 0, "the kernel does not run as root: {r}");
    // Of the data dir, only the way to its own root exists.
    assert_eq!(r["data dir"], json!(["envs"]), "{r}");
    assert_eq!(r["envs"], json!([env_a]), "{r}");
    assert!(
        r["processes seen"].as_u64().unwrap() < 20,
        "the kernel sees only its own sandbox's processes: {r}"
    );
    assert!(
        !data
            .join("envs")
            .join(&env_b)
            .join("venv/lib/evil.pth")
            .exists(),
        "nothing was written into lab B's venv"
    );

    // No loopback port leads to lab B's Jupyter: every listening port is
    // asked for B's API as B's Jupyter would serve it, and none is Jupyter
    // (Tornado) answering.
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for port in listening_ports() {
        let Ok(resp) = http
            .get(format!(
                "http://127.0.0.1:{port}/jupyter/{env_b}/api/status"
            ))
            .send()
            .await
        else {
            continue;
        };
        let server = resp
            .headers()
            .get("server")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        assert!(
            !server.contains("Tornado"),
            "port {port} is a Jupyter server reachable without the gateway"
        );
        if port.to_string() == app.url.rsplit(':').next().unwrap() {
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "the gateway wants a sign-in"
            );
        }
    }

    // Planting a symlink where the platform mounts or writes (the runtime
    // dir, aliased into the next sandbox) gets nothing: the next launch
    // replaces it with a real folder, and nothing of the data dir appears.
    let keys = data.join("keys");
    let planted = execute(
        &ws_a,
        &alice,
        &format!(
            "import os\nrt = os.path.join({root:?}, 'jupyter', 'runtime')\nos.rename(rt, rt + '.moved')\nos.symlink({keys:?}, rt)\nos.path.islink(rt)",
            root = data.join("envs").join(&env_a).display().to_string(),
            keys = keys.display().to_string(),
        ),
    )
    .await;
    assert_eq!(planted, "True");
    let keys_before: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(stop_jupyter(&app, &alice, &env_a).await, StatusCode::OK);
    let ws_a = kernel(&app, &alice, &env_a).await;
    let seen = execute(
        &ws_a,
        &alice,
        "import os; sorted(n for n in os.listdir('/run/jupyter') if not n.startswith(('kernel-', 'jpserver-', 'jupyter', 'westtek-')))",
    )
    .await;
    assert_eq!(seen, "[]", "the runtime dir holds nothing of the data dir");
    let keys_after: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        keys_before, keys_after,
        "the platform wrote or removed nothing in the planted target"
    );
    assert!(
        !std::fs::symlink_metadata(data.join("envs").join(&env_a).join("jupyter/runtime"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // The same from a JupyterLab terminal.
    let out = terminal(
        &app,
        &alice,
        &env_a,
        &format!(
            "id -u; cat {data_s}/keys/signing-key.pem; ls {data_s}/envs/{env_b}/home; kill -TERM {}; ls /proc | grep -c '^[0-9]'",
            std::process::id()
        ),
    )
    .await;
    assert!(!out.contains("PRIVATE KEY"), "{out}");
    assert!(out.contains("No such file or directory"), "{out}");
    assert!(out.contains("No such process"), "{out}");
    assert!(!out.lines().any(|l| l.trim() == "0"), "not root: {out}");

    // Normal work still works: numpy, its own home, uv pip install into its
    // own venv (from PyPI: outbound network), and a download.
    let own = execute(
        &ws_a,
        &alice,
        "import numpy, os; open('results.txt','w').write('ok'); '%d|%s|%s' % (numpy.arange(5).sum(), open('results.txt').read(), os.getcwd())",
    )
    .await;
    assert_eq!(
        own,
        format!(
            "'10|ok|{}'",
            data.join("envs").join(&env_a).join("home").display()
        )
    );
    assert!(data
        .join("envs")
        .join(&env_a)
        .join("home/results.txt")
        .is_file());
    let installed = execute(
        &ws_a,
        &alice,
        "import subprocess; p = subprocess.run(['uv', 'pip', 'install', 'tabulate==0.9.0'], capture_output=True, text=True); '%d %s' % (p.returncode, p.stderr[-300:].replace(chr(10), ' '))",
    )
    .await;
    assert!(installed.starts_with("'0 "), "{installed}");
    assert_eq!(
        execute(&ws_a, &alice, "import tabulate; tabulate.__version__").await,
        "'0.9.0'"
    );
    let download = execute(
        &ws_a,
        &alice,
        "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/tabulate/', timeout=30).status",
    )
    .await;
    assert_eq!(download, "200");

    // The platform still snapshots, watches, restores and drills it.
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            &alice,
            Some(json!({"environment_id": env_a, "notes": "sandboxed"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), &alice).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let snap = acc["snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(drift_status(&app, &alice, &env_a).await, "STABLE");
    let installed = execute(
        &ws_a,
        &alice,
        "import subprocess; subprocess.run(['uv', 'pip', 'install', 'tabulate==0.8.10'], capture_output=True).returncode",
    )
    .await;
    assert_eq!(installed, "0");
    let began = Instant::now();
    while drift_status(&app, &alice, &env_a).await == "STABLE" {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the install inside the sandbox was never seen as drift"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, racc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{snap}/restore"),
            &alice,
            Some(json!({"mode": "new_environment", "name": "restored-a"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{racc}");
    let rjob = app.wait_job(racc["job_id"].as_str().unwrap(), &alice).await;
    assert_eq!(rjob["status"], "succeeded", "{rjob}");
    let copy = racc["environment_id"].as_str().unwrap().to_string();
    let ws_copy = kernel(&app, &alice, &copy).await;
    assert_eq!(
        execute(&ws_copy, &alice, "import tabulate; tabulate.__version__").await,
        "'0.9.0'"
    );
    let (s, dacc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{snap}/drill"),
            &alice,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{dacc}");
    let djob = app.wait_job(dacc["job_id"].as_str().unwrap(), &alice).await;
    assert_eq!(djob["status"], "succeeded", "{djob}");
    stop_jupyter(&app, &alice, &copy).await;

    // Limits: lab A gets 1 GiB per process and 96 processes; relaunch.
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/api/labs/{lab_a}"),
            &app.admin_token,
            Some(json!({"quotas": {"max_environments": 50, "max_running_servers": 10, "max_memory_mb": 1024, "max_processes": 96}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["quotas"]["max_memory_mb"], 1024);
    stop_jupyter(&app, &alice, &env_a).await;
    let ws_a = kernel(&app, &alice, &env_a).await;
    let hog = execute(
        &ws_a,
        &alice,
        "held = []\ntry:\n    while True:\n        held.append(bytearray(64 * 2**20))\nexcept MemoryError:\n    pass\nn = len(held); held.clear(); n",
    )
    .await;
    let chunks: u64 = hog.parse().unwrap();
    assert!(
        (1..16).contains(&chunks),
        "allocation stopped below 1 GiB (the address space also holds the interpreter, numpy and thread stacks), at {chunks} × 64 MiB"
    );
    let bomb = execute(
        &ws_a,
        &alice,
        // In a process of its own: children forked from the kernel itself
        // would inherit its output channels.
        "import subprocess, sys\nbomb = 'import os, time\\nn = 0\\nerr = None\\ntry:\\n    while n < 10000:\\n        if os.fork() == 0:\\n            time.sleep(3)\\n            os._exit(0)\\n        n += 1\\nexcept OSError as e:\\n    err = e.errno\\nprint(n, err)'\nsubprocess.run([sys.executable, '-c', bomb], capture_output=True, text=True).stdout.strip()",
    )
    .await;
    let (forked, errno) = bomb.trim_matches('\'').split_once(' ').unwrap();
    assert_eq!(errno, "11", "fork failed with EAGAIN: {bomb}");
    assert!(forked.parse::<u32>().unwrap() < 96, "{bomb}");
    // While lab A's processes are at their limit, the platform and lab B
    // answer.
    let r = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(execute(&ws_b, &bob, "1+1").await, "2");
    // And once its children are gone, lab A works again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(execute(&ws_a, &alice, "2+2").await, "4");

    for (env, t) in [(&env_a, &alice), (&env_b, &bob)] {
        stop_jupyter(&app, t, env).await;
    }
    let _ = lab_b;
    app.stop().await;
}
