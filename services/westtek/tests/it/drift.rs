//! `westtek drift …` against a running `westtek up` with one real
//! environment (built by the platform with uv): `status`, `events`, `watch`
//! (including its reconnect with `Last-Event-ID` across a crash and restart
//! of the platform), `accept` and `ask`.
//!
//! The platform runs as a child process here, not in-process: only a real
//! process exit drops the watch's open connection (in-process, the
//! connection tasks outlive the server), and that drop is what `watch` must
//! survive.

use super::text;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const NOTEBOOK: &str = r#"{"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
  "source": ["import tabulate\n", "print(tabulate.tabulate([[1, 2]]))\n"]}],
 "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
 "nbformat": 4, "nbformat_minor": 5}"#;

/// A child process killed (SIGKILL) and reaped on drop, so a failing test
/// leaves nothing running.
pub(super) struct Proc(pub(super) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines a child prints, tagged `out` or `err`, read on their own threads.
pub(super) fn lines_of(child: &mut Child) -> Receiver<(&'static str, String)> {
    let (tx, rx) = channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let t = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = t.send(("out", l));
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(("err", l));
        }
    });
    rx
}

/// The first line (from `stream`) that `pred` accepts, within `within`.
pub(super) fn wait_line(
    rx: &Receiver<(&'static str, String)>,
    stream: &str,
    within: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((s, l)) if s == stream && pred(&l) => return l,
            Ok((s, l)) => seen.push(format!("{s}: {l}")),
            Err(_) => panic!(
                "no matching line on {stream} within {within:?}; saw:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// `westtek up` on `data` (port 0: any free port); returns it, its URL and
/// the first-run sign-in link (on later starts: none).
pub(super) fn up(data: &Path, port: u16, log: &Path) -> (Proc, String, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_westtek"))
        .args([
            "up",
            "--port",
            &port.to_string(),
            "--jupyter-idle-timeout",
            "0",
        ])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .env_remove("WESTTEK_WEB_DIR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let proc = Proc(child);
    let mut url = None;
    let mut link = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(u) = l.strip_prefix("West Tek is up at ") {
            url = Some(u.trim().to_string());
        } else if let Some(k) = l.strip_prefix("Sign in once with: ") {
            link = Some(k.trim().to_string());
        } else if l.starts_with("API docs:") {
            break;
        }
    }
    let url = url.unwrap_or_else(|| {
        panic!(
            "westtek up did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    (proc, url, link)
}

fn uv_install(root: &Path, spec: &str) {
    let o = Command::new(std::env::var("WESTTEK_UV").unwrap_or_else(|_| "uv".into()))
        .args(["pip", "install", "-q", "--python"])
        .arg(root.join("venv/bin/python"))
        .arg(spec)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    assert!(o.status.success(), "uv pip install {spec}: {}", text(&o));
}

/// The row of `out` (a table the CLI printed) whose first cells after the
/// time are `cells`, split on whitespace.
fn has_row(out: &str, cells: &[&str]) -> bool {
    out.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.len() > cells.len() && words[1..=cells.len()] == *cells
    })
}

#[test]
fn drift_status_events_and_watch_follow_a_real_install_across_a_platform_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config_home = dir.path().join("config");
    let (platform, url, link) = up(&data, 0, &dir.path().join("up-1.log"));
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let cli = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_westtek"))
            .args(args)
            .env("XDG_CONFIG_HOME", &config_home)
            .env_remove("WESTTEK_TOKEN")
            .env_remove("WESTTEK_URL")
            .env_remove("WESTTEK_LAB")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| -> String {
        let o = cli(args);
        assert!(o.status.success(), "westtek {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let drift_json = |id: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&["drift", "status", id, "--json"])).unwrap()
    };
    ok(&["login", "--url", &url, "--token", &link.unwrap()]);

    // Nothing yet.
    let out = ok(&["drift", "status"]);
    assert!(out.contains("(0 environment(s), 0 drifted)"), "{out}");

    // One small environment, a notebook that imports tabulate, a baseline.
    let env: serde_json::Value = serde_json::from_str(&ok(&[
        "env",
        "create",
        "drift-it",
        "-p",
        "tabulate==0.8.10",
        "--json",
    ]))
    .unwrap();
    let id = env["id"].as_str().unwrap().to_string();
    let root: PathBuf = data.join("envs").join(&id);
    std::fs::write(root.join("home/analysis.ipynb"), NOTEBOOK).unwrap();
    let out = ok(&["drift", "status", &id]);
    assert!(out.contains("none: no snapshot yet"), "{out}");
    let snap: serde_json::Value =
        serde_json::from_str(&ok(&["snapshot", "create", &id, "--json"])).unwrap();
    let snap_id = snap["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while drift_json(&id)["watched"] != true {
        assert!(
            Instant::now() < deadline,
            "never watched: {}",
            drift_json(&id)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = ok(&["drift", "status", &id]);
    assert!(out.contains("drift        STABLE"), "{out}");
    assert!(
        out.contains("no findings: the environment matches its baseline"),
        "{out}"
    );

    // Watch live, then upgrade tabulate under the notebook: CRITICAL.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_westtek"))
        .args(["drift", "watch", "--env", &id])
        .env("XDG_CONFIG_HOME", &config_home)
        .env_remove("WESTTEK_TOKEN")
        .env_remove("WESTTEK_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watch_lines = lines_of(&mut watch);
    let watch = Proc(watch);
    wait_line(&watch_lines, "err", Duration::from_secs(30), |l| {
        l.starts_with("watching drift events of drift-it")
    });
    uv_install(&root, "tabulate==0.9.0");
    let line = wait_line(&watch_lines, "out", Duration::from_secs(30), |l| {
        l.contains("tabulate")
    });
    for part in [
        "#1 ",
        "drift-it",
        "STABLE → CRITICAL_DRIFT",
        "CRITICAL",
        "tabulate 0.8.10 → 0.9.0",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }

    // The analyzer runs on CRITICAL drift in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    while drift_json(&id)["latest_analysis"].is_null() {
        assert!(
            Instant::now() < deadline,
            "no analysis: {}",
            drift_json(&id)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // status: the lab's table …
    let out = ok(&["drift", "status"]);
    let row = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}:\n{out}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..6],
        [
            id.as_str(),
            "drift-it",
            "ready",
            "CRITICAL_DRIFT",
            "latest",
            "snapshot"
        ],
        "{out}"
    );
    assert!(out.starts_with("ID "), "{out}");
    assert!(out.contains("(1 environment(s), 1 drifted)"), "{out}");
    // … and one environment in detail.
    let out = ok(&["drift", "status", &id]);
    for part in [
        "environment  drift-it (".to_string(),
        "drift        CRITICAL_DRIFT".into(),
        format!("baseline     snapshot {snap_id} (follows snapshots and restores)"),
        "pinned       no".into(),
        "watched      yes".into(),
        "last event   #1 at ".into(),
        "findings (1):".into(),
        "latest analysis (drift_analyzer, ".into(),
        format!("recommendation: roll back to snapshot {snap_id}"),
    ] {
        assert!(out.contains(&part), "{part:?} missing from:\n{out}");
    }
    let finding = out
        .lines()
        .find(|l| l.starts_with("CRITICAL "))
        .unwrap_or_else(|| panic!("no finding row:\n{out}"));
    assert_eq!(
        finding.split_whitespace().collect::<Vec<_>>(),
        [
            "CRITICAL",
            "package_upgraded",
            "tabulate",
            "0.8.10",
            "→",
            "0.9.0",
            "home/analysis.ipynb"
        ],
        "{out}"
    );
    let analysis = out.split("latest analysis").nth(1).unwrap();
    assert!(
        analysis.contains("tabulate was upgraded from 0.8.10 to 0.9.0"),
        "{out}"
    );

    // events: the table, filters, bad input.
    let out = ok(&["drift", "events", "--env", &id]);
    assert!(
        out.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            == [
                "TIME",
                "ENVIRONMENT",
                "STATUS",
                "SEVERITY",
                "FINDINGS",
                "NOTEBOOKS"
            ],
        "{out}"
    );
    assert!(
        has_row(
            &out,
            &[
                "drift-it",
                "CRITICAL_DRIFT",
                "CRITICAL",
                "1",
                "home/analysis.ipynb"
            ]
        ),
        "{out}"
    );
    assert!(out.contains("(1 of 1 event(s))"), "{out}");
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let out = ok(&["drift", "events", "--since", &future]);
    assert!(out.contains("(0 of 0 event(s))"), "{out}");
    let out = ok(&["drift", "events", "--until", &future, "--limit", "1"]);
    assert!(out.contains("(1 of 1 event(s))"), "{out}");
    let o = cli(&["drift", "events", "--since", "yesterday"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("is not an RFC 3339 time"), "{}", text(&o));
    let o = cli(&["drift", "status", "not-an-id"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("'not-an-id' is not an environment id"),
        "{}",
        text(&o)
    );
    let o = cli(&["drift", "status", "01a2033a-6572-7566-9559-30e168b1af7a"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("(not_found, HTTP 404)"), "{}", text(&o));

    // ask: the answer streams, then its sources and the recommendation.
    let out = ok(&["drift", "ask", &id, "Why did this environment drift?"]);
    assert!(out.contains("tabulate"), "{out}");
    let sources = out
        .split("\nSources:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no sources:\n{out}"));
    assert!(sources.starts_with("[1] drift_event: "), "{out}");
    assert!(
        out.contains(&format!("- roll back to snapshot {snap_id}")),
        "{out}"
    );

    // transfer: the package as a zip (atomic write, no silent overwrite),
    // and the Knowledge Transfer agent with its sources.
    let zip_path = dir.path().join("handover.zip");
    let zip_arg = zip_path.to_str().unwrap();
    let out = ok(&["transfer", "export", &id, "-o", zip_arg]);
    assert!(out.starts_with(&format!("wrote {zip_arg} (")), "{out}");
    let bytes = std::fs::read(&zip_path).unwrap();
    assert!(bytes.starts_with(b"PK"), "a zip file");
    let o = cli(&["transfer", "export", &id, "-o", zip_arg]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("exists; pass --force to replace it"),
        "{}",
        text(&o)
    );
    ok(&["transfer", "export", &id, "-o", zip_arg, "--force"]);
    let o = cli(&["transfer", "export", "not-an-id", "-o", zip_arg]);
    assert!(!o.status.success(), "a bad id is refused");
    let out = ok(&[
        "transfer",
        "ask",
        &id,
        "Which version of tabulate is installed?",
    ]);
    assert!(out.contains("tabulate 0.8.10"), "{out}");
    assert!(
        out.contains("\nSources:\n[1] document: pip freeze of the snapshot of "),
        "{out}"
    );
    assert!(
        out.contains(&format!("(package-manifests/{id}/{snap_id}.txt)")),
        "{out}"
    );

    // accept: a snapshot job followed to the end; the new baseline.
    let out = ok(&["drift", "accept", &id]);
    let accepted = out
        .lines()
        .find_map(|l| l.strip_prefix("accepted: snapshot "))
        .unwrap_or_else(|| panic!("{out}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_ne!(accepted, snap_id);
    let line = wait_line(&watch_lines, "out", Duration::from_secs(30), |l| {
        l.contains("#2 ")
    });
    assert!(
        line.contains("CRITICAL_DRIFT → STABLE") && line.contains("back at the baseline"),
        "{line}"
    );
    assert_eq!(
        drift_json(&id)["baseline_snapshot_id"],
        accepted.as_str(),
        "accept moved the baseline"
    );

    // The platform crashes; tabulate is downgraded while it is down; it
    // comes back on the same port. The watch reconnects, resumes after
    // event #2 and shows what the start-up check found.
    drop(platform);
    let line = wait_line(&watch_lines, "err", Duration::from_secs(60), |l| {
        l.contains("reconnecting in")
    });
    assert!(line.contains("resuming after event #2"), "{line}");
    uv_install(&root, "tabulate==0.8.10");
    let (platform, url2, _) = up(&data, port, &dir.path().join("up-2.log"));
    assert_eq!(url2, url);
    wait_line(&watch_lines, "err", Duration::from_secs(60), |l| {
        l == "reconnected"
    });
    let line = wait_line(&watch_lines, "out", Duration::from_secs(60), |l| {
        l.contains("#3 ")
    });
    for part in [
        "STABLE → CRITICAL_DRIFT",
        "CRITICAL",
        "tabulate 0.9.0 → 0.8.10",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    let out = ok(&["drift", "events", "--env", &id]);
    assert!(out.contains("(3 of 3 event(s))"), "{out}");

    // Ctrl-C ends the watch with success.
    let mut watch = watch;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(watch.0.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = watch.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "watch ignored Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "watch exited with {status}");
    drop(platform);
}
