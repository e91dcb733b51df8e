//! `westtek agent adopt` end to end (issue 15): a venv made outside the
//! platform (uv, JupyterLab, a notebook importing tabulate) is adopted
//! from "a lab machine" (this host, another process) into a running
//! `westtek up`: it appears in the lab as adopted, its baseline snapshot
//! is in the vault, an install in it is drift the platform records from
//! the agent's report, the agent's credential opens nothing but its agent
//! API and stops at once when revoked, and the snapshot restores into a
//! platform environment whose kernel runs the notebook.

use super::drift::{lines_of, up, wait_line, Proc};
use super::text;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOTEBOOK: &str = r#"{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
  "source": ["import tabulate\n", "print('table:', tabulate.__version__, tabulate.tabulate([[1, 2]]))\n"]}],
 "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
 "nbformat": 4, "nbformat_minor": 5}"#;

/// One HTTP request; returns the status.
fn http(method: &str, url: &str, token: &str, body: Option<serde_json::Value>) -> u16 {
    fetch(method, url, token, body).0
}

/// One HTTP request; returns the status and the JSON body (`null` if none).
fn fetch(
    method: &str,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    })
}

fn uv() -> String {
    std::env::var("WESTTEK_UV").unwrap_or_else(|_| "uv".into())
}

fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{what}: {}", text(&o));
    o
}

fn uv_install(venv: &Path, specs: &[&str]) {
    run_ok(
        Command::new(uv())
            .args(["pip", "install", "-q", "--python"])
            .arg(venv.join("bin/python"))
            .args(specs)
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env_remove("VIRTUAL_ENV"),
        &format!("uv pip install {specs:?}"),
    );
}

#[test]
fn an_adopted_venv_is_watched_for_drift_and_restores_into_a_platform_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config_home = dir.path().join("config");
    let cache_home = dir.path().join("cache");
    let (_platform, url, link) = up(&data, 0, &dir.path().join("up.log"));
    let cli = |args: &[&str]| -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_westtek"));
        c.args(args)
            .env("XDG_CONFIG_HOME", &config_home)
            .env("XDG_CACHE_HOME", &cache_home)
            .env_remove("WESTTEK_TOKEN")
            .env_remove("WESTTEK_URL")
            .env_remove("WESTTEK_LAB")
            .env("RUST_LOG", "warn");
        c
    };
    let ok = |args: &[&str]| -> String {
        let o = run_ok(&mut cli(args), &format!("westtek {args:?}"));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let json = |args: &[&str]| -> serde_json::Value { serde_json::from_str(&ok(args)).unwrap() };
    ok(&["login", "--url", &url, "--token", &link.unwrap()]);

    // A researcher's project on "their machine": a uv venv with JupyterLab
    // and tabulate, and a notebook beside it.
    let proj = dir.path().join("workstation/proj");
    std::fs::create_dir_all(&proj).unwrap();
    let venv = proj.join(".venv");
    run_ok(
        Command::new(uv())
            .args(["venv", "-q", "--python", "3.11"])
            .arg(&venv)
            .env("UV_PYTHON_DOWNLOADS", "never"),
        "uv venv",
    );
    uv_install(&venv, &["jupyterlab", "tabulate==0.8.10"]);
    std::fs::write(proj.join("analysis.ipynb"), NOTEBOOK).unwrap();
    std::fs::write(proj.join("data.csv"), "a,b\n1,2\n").unwrap();

    // A venv straight in a home folder: the whole home (keys, the agent's
    // own credential) is not taken for notebooks without being named.
    let refused = cli(&["agent", "adopt", venv.to_str().unwrap(), "--name", "x"])
        .env("HOME", &proj)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("--notebooks DIR"),
        "{}",
        text(&refused)
    );

    // Adopt, keep watching (quick looks every second).
    let mut agent = cli(&[
        "agent",
        "adopt",
        venv.to_str().unwrap(),
        "--name",
        "adopted-it",
        "--poll-secs",
        "1",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let lines = lines_of(&mut agent);
    let agent = Proc(agent);
    let adopted = wait_line(&lines, "out", Duration::from_secs(60), |l| {
        l.starts_with("adopted adopted-it as environment ")
    });
    let id = adopted.split_whitespace().nth(4).unwrap().to_string();
    wait_line(&lines, "out", Duration::from_secs(300), |l| {
        l.starts_with("baseline snapshot ") && l.contains(" complete: ")
    });
    wait_line(&lines, "out", Duration::from_secs(30), |l| {
        l.starts_with("watching adopted-it")
    });

    // Listed in the lab, marked adopted, with its host and paths.
    let list = json(&["env", "list", "--json"]);
    let env = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed: {list}"))
        .clone();
    assert_eq!(env["name"], "adopted-it");
    assert_eq!(env["status"], "ready");
    assert_eq!(
        env["adopted"]["venv_path"],
        venv.canonicalize().unwrap().to_str().unwrap(),
        "{env}"
    );
    assert_eq!(
        env["adopted"]["notebooks_path"],
        proj.canonicalize().unwrap().to_str().unwrap()
    );
    assert!(env["adopted"]["host"]
        .as_str()
        .is_some_and(|h| !h.is_empty()));
    let session: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(config_home.join("westtek/credentials.json")).unwrap(),
    )
    .unwrap();
    let user_token = session["access_token"].as_str().unwrap().to_string();
    let (code, full) = fetch(
        "GET",
        &format!("{url}/api/environments/{id}"),
        &user_token,
        None,
    );
    assert_eq!(code, 200);
    assert!(full["agent_credential"]["id"].is_string(), "{full}");
    assert!(
        !full.to_string().contains("wtagent_"),
        "the credential is never shown again"
    );
    assert!(full["metadata"]["jupyter_packages"]
        .to_string()
        .contains("tabulate==0.8.10"));

    // Its baseline snapshot holds the environment: tabulate 0.8.10, the
    // notebook and its data, the venv's files (not the venv as data).
    let snaps = json(&["snapshot", "list", "--environment", &id, "--json"]);
    let snap = snaps[0].clone();
    let snap_id = snap["id"].as_str().unwrap().to_string();
    assert_eq!(snap["status"], "complete");
    let pkgs = snap["metadata"]["installed_packages"].to_string();
    assert!(pkgs.contains("tabulate==0.8.10"), "{pkgs}");
    assert_eq!(snap["metadata"]["notebook_count"], 1);
    assert!(snap["size_bytes"].as_u64().unwrap() > 10_000_000, "{snap}");

    // The platform watches it through its agent: STABLE, then the install
    // the researcher makes on their machine is CRITICAL drift (the
    // notebook imports tabulate).
    let status = |id: &str| json(&["drift", "status", id, "--json"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&id)["status"] != "STABLE" || status(&id)["baseline_snapshot_id"].is_null() {
        assert!(Instant::now() < deadline, "never STABLE: {}", status(&id));
        std::thread::sleep(Duration::from_millis(300));
    }
    uv_install(&venv, &["tabulate==0.9.0"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(&id);
        if s["status"] == "CRITICAL_DRIFT" {
            assert!(s.to_string().contains("tabulate"), "{s}");
            break;
        }
        assert!(Instant::now() < deadline, "no drift recorded: {s}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let events = json(&["drift", "events", "--env", &id, "--json"]);
    let first = &events[0];
    assert_eq!(first["severity"], "CRITICAL", "{events}");
    assert!(first["findings"].to_string().contains("0.9.0"), "{first}");

    // The platform cannot start Jupyter or snapshot it itself: its agent does.
    let o = cli(&["env", "launch", &id]).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("adopted from"), "{}", text(&o));
    let o = cli(&["snapshot", "create", &id]).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("westtek agent snapshot"), "{}", text(&o));

    // The agent's credential opens its agent API and nothing else.
    let state_file = config_home.join(format!("westtek/agents/{id}.json"));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the agent's state file is private");
    }
    let token = state["agent_token"].as_str().unwrap().to_string();
    for path in [
        "/api/environments".to_string(),
        format!("/api/environments/{id}"),
        format!("/api/snapshots/{snap_id}"),
        "/api/labs".to_string(),
        "/api/admin/overview".to_string(),
        "/api/audit".to_string(),
        format!("/jupyter/{id}/api/status"),
    ] {
        assert_eq!(
            http("GET", &format!("{url}{path}"), &token, None),
            401,
            "{path} answered the agent's credential"
        );
    }
    assert_eq!(
        http(
            "POST",
            &format!("{url}/api/environments/snapshot"),
            &token,
            Some(serde_json::json!({ "environment_id": id }))
        ),
        401
    );

    // Restore the baseline into a platform environment: its venv works at
    // its new path and its kernel runs the notebook (tabulate 0.8.10).
    ok(&[
        "snapshot",
        "restore",
        &snap_id,
        "--name",
        "adopted-restored",
    ]);
    let list = json(&["env", "list", "--json"]);
    let restored = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "adopted-restored")
        .unwrap_or_else(|| panic!("no restored environment: {list}"))
        .clone();
    assert!(restored.get("adopted").is_none(), "{restored}");
    let root: PathBuf = data.join("envs").join(restored["id"].as_str().unwrap());
    let shebang = std::fs::read_to_string(root.join("venv/bin/jupyter")).unwrap();
    let first_line = shebang.lines().next().unwrap_or_default().to_string();
    assert!(
        first_line.contains(root.join("venv").to_str().unwrap()),
        "console script not relocated: {first_line}"
    );
    assert!(root.join("home/analysis.ipynb").is_file());
    assert!(root.join("home/data.csv").is_file());
    assert!(
        !root.join("home/.venv").exists(),
        "the nested venv is the env layer, not data"
    );
    let out = dir.path().join("executed.ipynb");
    run_ok(
        Command::new(root.join("venv/bin/jupyter"))
            .args(["nbconvert", "--to", "notebook", "--execute", "--output"])
            .arg(&out)
            .arg(root.join("home/analysis.ipynb"))
            .env("HOME", root.join("home"))
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONPATH"),
        "the restored environment runs the notebook",
    );
    let executed = std::fs::read_to_string(&out).unwrap();
    assert!(executed.contains("table: 0.8.10"), "{executed}");
    // The platform can run Jupyter for the restored environment.
    let launched = json(&["env", "launch", restored["id"].as_str().unwrap(), "--json"]);
    assert_eq!(launched["jupyter_status"], "running", "{launched}");
    ok(&["env", "stop", restored["id"].as_str().unwrap()]);

    // Revoking the credential stops the agent at its next report.
    assert_eq!(
        http(
            "DELETE",
            &format!("{url}/api/environments/{id}/agent-credential"),
            &user_token,
            None
        ),
        204
    );
    std::fs::write(proj.join("more.ipynb"), NOTEBOOK).unwrap();
    let mut agent = agent;
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = agent.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the agent kept running after its credential was revoked"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!code.success());
    wait_line(&lines, "err", Duration::from_secs(5), |l| {
        l.contains("refused this agent")
    });
    assert_eq!(
        http(
            "POST",
            &format!("{url}/api/agent/v1/inventory"),
            &token,
            Some(serde_json::json!({ "inventory": {}, "reason": "sweep" }))
        ),
        401
    );
}
