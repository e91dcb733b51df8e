//! Drift end to end: a real environment with a baseline snapshot and a
//! notebook importing `requests` and `urllib3`; real `uv pip install`s are
//! detected by the watcher and arrive on the SSE stream with the right
//! severity; a webhook receiver gets signed payloads, a real SMTP server the
//! CRITICAL e-mail only; the analyzer explains; rollback returns the
//! environment to its baseline; changes made while the platform was stopped
//! are reported at start-up.

use crate::smtpd::SmtpServer;
use axum::body::Bytes;
use axum::http::HeaderMap;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use westtek_tests::{build_env, restart_app, spawn_app_with, uv_install, TestApp};

/// Reads `GET /api/drift/stream` in the background; each `drift` event's
/// JSON arrives on the channel.
fn follow_stream(app: &TestApp, token: &str) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    let req = app.req(Method::GET, "/api/drift/stream", token);
    tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { return };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if block.lines().any(|l| l == "event: drift") && !data.is_empty() {
                    let _ = tx.send(serde_json::from_str::<Value>(&data).unwrap());
                }
            }
        }
    });
    rx
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<Value>, what: &str) -> Value {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no drift event for {what} within 60 s"))
        .unwrap()
}

fn freeze(venv_python: &Path) -> String {
    let out = std::process::Command::new("uv")
        .args(["pip", "freeze", "--python"])
        .arg(venv_python)
        .output()
        .expect("uv runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn notebook(imports: &str) -> String {
    json!({
        "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
                   "source": [imports]}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5
    })
    .to_string()
}

fn kinds(ev: &Value) -> Vec<(String, String)> {
    ev["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"]["type"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn webhook_receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn drift_is_detected_alerted_explained_and_rolled_back() {
    let smtp = SmtpServer::start();
    let smtp_port = smtp.port;
    let app = spawn_app_with(move |c| {
        c.drift.smtp = Some(westtek_alerts::SmtpConfig {
            host: "127.0.0.1".into(),
            port: smtp_port,
            tls: westtek_alerts::SmtpTls::None,
            username: None,
            password: None,
            from: "westtek@lab.example".into(),
            to: vec!["it-admin@lab.example".into()],
        });
    })
    .await;
    let t = app.admin_token.clone();
    let env_id = build_env(&app, &t, "drifty", json!(["requests"])).await;
    let root = app.data_dir.path().join("data/envs").join(&env_id);
    let python = root.join("venv/bin/python");
    std::fs::write(
        root.join("home/analysis.ipynb"),
        notebook("import requests\nimport urllib3\n"),
    )
    .unwrap();
    std::fs::write(root.join("home/other.ipynb"), notebook("import json\n")).unwrap();
    let baseline_freeze = freeze(&python);

    // The baseline.
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            &t,
            Some(json!({"environment_id": env_id})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let baseline_id = acc["snapshot_id"].as_str().unwrap().to_string();

    // A lab webhook for MINOR and above.
    let (s, hook) = app
        .call(
            Method::POST,
            &format!("/api/labs/{}/webhooks", app.lab_id),
            &t,
            Some(json!({"url": webhook_url_placeholder(), "min_severity": "MINOR"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a URL that is not http(s) is refused: {hook}"
    );
    let (hook_url, received) = webhook_receiver().await;
    let (s, hook) = app
        .call(
            Method::POST,
            &format!("/api/labs/{}/webhooks", app.lab_id),
            &t,
            Some(json!({"url": hook_url, "min_severity": "MINOR"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();

    // Watched once the baseline is known.
    let mut watched = false;
    for _ in 0..120 {
        let (_, d) = app
            .call(
                Method::GET,
                &format!("/api/environments/{env_id}/drift"),
                &t,
                None,
            )
            .await;
        if d["watched"] == true {
            assert_eq!(d["status"], "STABLE", "{d}");
            assert_eq!(d["baseline_snapshot_id"], baseline_id.as_str(), "{d}");
            watched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        watched,
        "the environment is watched after its first snapshot"
    );
    let mut stream = follow_stream(&app, &t);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // An unrelated package: MINOR.
    uv_install(&python, &["tabulate"]);
    let minor = next_event(&mut stream, "installing tabulate").await;
    assert_eq!(minor["severity"], "MINOR", "{minor}");
    assert_eq!(minor["status"], "MINOR_DRIFT", "{minor}");
    assert_eq!(minor["environment_id"], env_id.as_str());
    assert!(
        kinds(&minor).contains(&("package_added".into(), "tabulate".into())),
        "{minor}"
    );

    // A notebook edit: INFO (the environment stays MINOR_DRIFT).
    std::fs::write(
        root.join("home/other.ipynb"),
        notebook("import json\nprint('edited')\n"),
    )
    .unwrap();
    let info = next_event(&mut stream, "editing a notebook").await;
    assert_eq!(info["severity"], "INFO", "{info}");
    assert_eq!(info["status"], "MINOR_DRIFT", "{info}");
    assert!(
        kinds(&info).contains(&("notebook_changed".into(), "home/other.ipynb".into())),
        "{info}"
    );

    // Another major version of a module the notebook imports: CRITICAL,
    // naming the notebook.
    uv_install(&python, &["urllib3<2"]);
    let critical = next_event(&mut stream, "downgrading urllib3").await;
    assert_eq!(critical["severity"], "CRITICAL", "{critical}");
    assert_eq!(critical["status"], "CRITICAL_DRIFT", "{critical}");
    let urllib3 = critical["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "urllib3")
        .cloned()
        .unwrap_or_else(|| panic!("urllib3 is a finding: {critical}"));
    assert_eq!(urllib3["kind"]["type"], "package_downgraded", "{urllib3}");
    assert_eq!(urllib3["severity"], "CRITICAL", "{urllib3}");
    assert_eq!(
        urllib3["affected_notebooks"],
        json!(["home/analysis.ipynb"]),
        "{urllib3}"
    );
    assert!(critical["affected_notebooks"]
        .as_array()
        .unwrap()
        .contains(&json!("home/analysis.ipynb")));

    // E-mail for CRITICAL only: exactly one message, naming the notebook.
    let mails = smtp.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(mails.len(), 1, "one e-mail, for the CRITICAL event only");
    assert!(mails[0].contains("CRITICAL"), "{}", mails[0]);
    assert!(mails[0].contains("analysis.ipynb"), "{}", mails[0]);

    // The webhook got the MINOR and the CRITICAL event, signed.
    let mut hooks = Vec::new();
    for _ in 0..240 {
        hooks = received.lock().unwrap().clone();
        if hooks.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        hooks.len(),
        2,
        "MINOR and CRITICAL reach a MINOR webhook, INFO does not"
    );
    for (headers, body) in &hooks {
        let ts = headers[westtek_alerts::TIMESTAMP_HEADER].to_str().unwrap();
        let sig = headers[westtek_alerts::SIGNATURE_HEADER].to_str().unwrap();
        assert!(westtek_alerts::verify_signature(&secret, ts, body, sig));
        assert!(!westtek_alerts::verify_signature(
            "another-secret-0000",
            ts,
            body,
            sig
        ));
    }
    let last: Value = serde_json::from_slice(&hooks[1].1).unwrap();
    assert_eq!(last["severity"], "CRITICAL", "{last}");

    // The analyzer explained the CRITICAL drift and recommended a rollback.
    let mut analysis = Value::Null;
    for _ in 0..120 {
        let (_, d) = app
            .call(
                Method::GET,
                &format!("/api/environments/{env_id}/drift"),
                &t,
                None,
            )
            .await;
        if !d["latest_analysis"].is_null() {
            analysis = d;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(analysis["status"], "CRITICAL_DRIFT", "{analysis}");
    let text = analysis["latest_analysis"]["analysis"].as_str().unwrap();
    assert!(
        text.contains("urllib3") && text.contains("analysis.ipynb"),
        "{text}"
    );
    let rec = analysis["latest_analysis"]["recommendation"].to_string();
    assert!(
        rec.contains("rollback") && rec.contains(&baseline_id),
        "a rollback to the baseline is recommended: {rec}"
    );

    // On demand, streamed.
    let resp = app
        .req(Method::POST, "/api/agents/drift/chat", &t)
        .json(&json!({"environment_id": env_id, "message": "why did this environment drift?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    assert!(body.contains("event: text"), "{body}");
    assert!(body.contains("event: citation"), "{body}");
    assert!(body.contains("event: done"), "{body}");
    assert!(body.contains("urllib3"), "{body}");

    // Rollback: the baseline comes back, the status returns to STABLE.
    let (s, rb) = app
        .call(
            Method::POST,
            &format!("/api/environments/{env_id}/drift/rollback"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{rb}");
    let job = app.wait_job(rb["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let mut stable = Value::Null;
    for _ in 0..4 {
        let ev = next_event(&mut stream, "the rollback").await;
        if ev["status"] == "STABLE" {
            stable = ev;
            break;
        }
    }
    assert_eq!(stable["status"], "STABLE", "{stable}");
    let (_, d) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env_id}/drift"),
            &t,
            None,
        )
        .await;
    assert_eq!(d["status"], "STABLE", "{d}");
    assert_eq!(d["baseline_snapshot_id"], baseline_id.as_str(), "{d}");
    assert_eq!(
        freeze(&python),
        baseline_freeze,
        "the package set is the baseline's again"
    );

    // Events are queryable by environment and time range.
    let (_, all) = app
        .call(
            Method::GET,
            &format!("/api/drift/events?environment_id={env_id}"),
            &t,
            None,
        )
        .await;
    assert!(all["total"].as_u64().unwrap() >= 4, "{all}");
    let (_, none) = app
        .call(
            Method::GET,
            &format!("/api/drift/events?environment_id={env_id}&until=2000-01-01T00:00:00Z"),
            &t,
            None,
        )
        .await;
    assert_eq!(none["total"], 0, "{none}");

    // Changes made while the platform is stopped are reported at start-up.
    let lab = app.lab_id.clone();
    let data_dir = {
        let TestApp {
            app: running,
            data_dir,
            ..
        } = app;
        running.shutdown().await.unwrap();
        data_dir
    };
    uv_install(&python, &["tabulate"]);
    let app = restart_app(data_dir, lab).await;
    let t = app.admin_token.clone();
    let mut startup = Value::Null;
    for _ in 0..240 {
        let (_, evs) = app
            .call(
                Method::GET,
                &format!("/api/drift/events?environment_id={env_id}&limit=1"),
                &t,
                None,
            )
            .await;
        if evs["items"][0]["source"] == "startup" {
            startup = evs["items"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(startup["severity"], "MINOR", "{startup}");
    assert!(
        kinds(&startup).contains(&("package_added".into(), "tabulate".into())),
        "{startup}"
    );
    app.stop().await;
}

fn webhook_url_placeholder() -> &'static str {
    "ftp://example.invalid/hook"
}

/// Bad input to the drift endpoints gets problem+json with a stable code and
/// changes nothing; other labs and plain researchers are kept out.
#[tokio::test]
async fn drift_endpoints_refuse_bad_input_and_other_labs() {
    use westtek_tests::assert_problem;
    let app = westtek_tests::spawn_app().await;
    let t = app.admin_token.clone();
    let r = app
        .req(Method::GET, "/api/drift/events?since=yesterday", &t)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_query").await;
    let r = app
        .req(
            Method::GET,
            "/api/drift/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            &t,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .req(Method::GET, "/api/drift/stream", &t)
        .header("last-event-id", "not-a-number")
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let missing = uuid::Uuid::now_v7();
    let r = app
        .req(
            Method::GET,
            &format!("/api/environments/{missing}/drift"),
            &t,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .req(
            Method::POST,
            &format!("/api/environments/{missing}/drift/rollback"),
            &t,
        )
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .req(Method::POST, "/api/agents/drift/chat", &t)
        .json(&json!({"environment_id": missing.to_string(), "message": "why?"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;

    // Webhooks: validated, lab admins only, secret shown once.
    let hooks = format!("/api/labs/{}/webhooks", app.lab_id);
    for (body, field) in [
        (
            json!({"url": "http://x.example/h", "secret": "short"}),
            "secret",
        ),
        (
            json!({"url": "http://x.example/h", "format": "teams"}),
            "format",
        ),
        (
            json!({"url": "http://x.example/h", "min_severity": "LOW"}),
            "min_severity",
        ),
        (json!({"url": "javascript:alert(1)"}), "url"),
    ] {
        let (s, p) = app.call(Method::POST, &hooks, &t, Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], field, "{p}");
    }
    let (s, created) = app
        .call(
            Method::POST,
            &hooks,
            &t,
            Some(json!({"url": "http://x.example/h"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["secret"].as_str().unwrap().len(), 64);
    let (s, dup) = app
        .call(
            Method::POST,
            &hooks,
            &t,
            Some(json!({"url": "http://x.example/h"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    let (_, listed) = app.call(Method::GET, &hooks, &t, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        listed[0].get("secret").is_none(),
        "secrets are not listed: {listed}"
    );

    let researcher = app.create_user(&app.lab_id, "rita", "researcher").await;
    let r = app
        .req(Method::GET, &hooks, &researcher)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let other = app.create_lab("other-lab").await;
    let outsider = app.create_user(&other, "olga", "lab_admin").await;
    let r = app
        .req(Method::GET, &hooks, &outsider)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(r.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "another lab's admin cannot see this lab's webhooks"
    );
    let (_, audit) = app
        .call(Method::GET, "/api/audit?action=webhook.create", &t, None)
        .await;
    assert_eq!(audit["total"], 1, "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn accepting_drift_moves_a_pinned_baseline_to_the_accepted_snapshot() {
    let app = westtek_tests::spawn_app().await;
    let t = app.admin_token.clone();
    let env = build_env(&app, &t, "pinned", json!([])).await;
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            &t,
            Some(json!({"environment_id": env})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let first = acc["snapshot_id"].as_str().unwrap().to_string();
    let (s, pinned) = app
        .call(
            Method::PUT,
            &format!("/api/environments/{env}/drift/baseline"),
            &t,
            Some(json!({"snapshot_id": first})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pinned}");
    let (s, acc) = app
        .call(
            Method::POST,
            &format!("/api/environments/{env}/drift/accept"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let accepted = acc["snapshot_id"].as_str().unwrap().to_string();
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let mut drift = Value::Null;
    for _ in 0..100 {
        let (_, d) = app
            .call(
                Method::GET,
                &format!("/api/environments/{env}/drift"),
                &t,
                None,
            )
            .await;
        if d["baseline_snapshot_id"] == accepted.as_str() {
            drift = d;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        drift["baseline_pinned"], true,
        "the pin moved to the accepted snapshot: {drift}"
    );
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/audit?action=drift.baseline_pinned",
            &t,
            None,
        )
        .await;
    assert_eq!(
        audit["items"].as_array().unwrap().len(),
        2,
        "pinned by hand, then moved: {audit}"
    );
    app.stop().await;
}
