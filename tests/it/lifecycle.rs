//! Environment lifecycle beyond the happy path: roles within a lab, change
//! and delete, the running-server quota, crash recovery, probes.

use reqwest::{Method, StatusCode};
use serde_json::json;
use westtek_tests::{assert_problem, build_env, restart_app, spawn_app};

#[tokio::test]
async fn researchers_manage_their_own_environments_and_lab_admins_any_within_quota() {
    let app = spawn_app().await;
    let lab = app.create_lab("imaging").await;
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/api/labs/{lab}"),
            &app.admin_token,
            Some(json!({"quotas": {"max_environments": 5, "max_running_servers": 1}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ann = app.create_user(&lab, "ann", "researcher").await;
    let ben = app.create_user(&lab, "ben", "researcher").await;
    let lea = app.create_user(&lab, "lea", "lab_admin").await;
    let a = build_env(&app, &ann, "ann-env", json!([])).await;
    let b = build_env(&app, &ben, "ben-env", json!([])).await;

    // Same lab: Ben sees Ann's environment but may not change or run it.
    let (s, _) = app
        .call(Method::GET, &format!("/api/environments/{a}"), &ben, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    for (m, path, body) in [
        (
            Method::PATCH,
            format!("/api/environments/{a}"),
            Some(json!({"name": "mine-now"})),
        ),
        (Method::DELETE, format!("/api/environments/{a}"), None),
        (
            Method::POST,
            "/api/environments/jupyter".to_string(),
            Some(json!({"environment_id": a})),
        ),
    ] {
        let mut r = app.req(m, &path, &ben);
        if let Some(b) = body {
            r = r.json(&b);
        }
        assert_problem(r.send().await.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;
    }

    // Ann renames hers; a duplicate name is a conflict; bad metadata is refused.
    let (s, env) = app.call(Method::PATCH, &format!("/api/environments/{a}"), &ann,
        Some(json!({"name": "ann-renamed", "metadata": {"funding_source": "NIH R01", "criticality": "critical"}}))).await;
    assert_eq!(s, StatusCode::OK, "{env}");
    assert_eq!(env["name"], "ann-renamed");
    assert_eq!(env["metadata"]["criticality"], "critical");
    let r = app
        .req(Method::PATCH, &format!("/api/environments/{a}"), &ann)
        .json(&json!({"name": "ben-env"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    let r = app
        .req(Method::PATCH, &format!("/api/environments/{a}"), &ann)
        .json(&json!({"metadata": {"criticality": "extreme"}}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    // Listing: filters and paging.
    let (_, page) = app
        .call(Method::GET, "/api/environments?limit=1", &lea, None)
        .await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    assert_eq!(page["items"][0]["id"], b.as_str(), "newest first");
    let (_, page) = app
        .call(Method::GET, "/api/environments?q=RENAMED", &lea, None)
        .await;
    assert_eq!(page["total"], 1);
    let (_, page) = app
        .call(
            Method::GET,
            "/api/environments?drift_status=STABLE&status=ready",
            &lea,
            None,
        )
        .await;
    assert_eq!(page["total"], 2);
    assert_problem(
        app.req(Method::GET, "/api/environments?drift_status=WOBBLY", &lea)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // One running server allowed: the second launch is over quota.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            &ann,
            Some(json!({"environment_id": a})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, again) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            &ann,
            Some(json!({"environment_id": a})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "launching a running server returns it: {again}"
    );
    let r = app
        .req(Method::POST, "/api/environments/jupyter", &ben)
        .json(&json!({"environment_id": b}))
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, StatusCode::FORBIDDEN, "quota_exceeded").await;
    assert!(p["detail"].as_str().unwrap().contains("1 of its 1"));

    // The lab admin deletes Ann's environment while it runs: server stopped, files gone.
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/environments/{a}"),
            &lea,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(!app.data_dir.path().join("data/envs").join(&a).exists());
    let (s, _) = app
        .call(Method::GET, &format!("/api/environments/{a}"), &ann, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(app.app.state.runtime.running().await.is_empty());
    // Now Ben's fits the quota.
    let (s, _) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            &ben,
            Some(json!({"environment_id": b})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn after_a_crash_the_platform_reconciles_servers_and_interrupted_builds() {
    let app = spawn_app().await;
    let t = app.admin_token.clone();
    let env = build_env(&app, &t, "survivor", json!([])).await;
    let (s, _) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            &t,
            Some(json!({"environment_id": env})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let pid_file = app
        .data_dir
        .path()
        .join("data/envs")
        .join(&env)
        .join("jupyter/runtime/westtek-server.json");
    let pid =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&pid_file).unwrap())
            .unwrap()["pid"]
            .as_i64()
            .unwrap();
    // A build is under way when the process dies.
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments",
            &t,
            Some(json!({"name": "half-built", "packages": ["pandas"]})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let half = acc["environment_id"].as_str().unwrap().to_string();
    let job_id = acc["job_id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (lab, dir) = (app.lab_id.clone(), app.data_dir);
    app.app.abort().await;

    let app = restart_app(dir, lab).await;
    // The orphaned Jupyter is gone and recorded as stopped.
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "orphan Jupyter {pid} still running"
    );
    let (_, e) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env}"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(e["jupyter_status"], "stopped", "{e}");
    assert_eq!(e["status"], "ready");
    // The interrupted build failed with a reason and left nothing.
    let (_, job) = app
        .call(
            Method::GET,
            &format!("/api/jobs/{job_id}"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "interrupted");
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/environments/{half}"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!app.data_dir.path().join("data/envs").join(&half).exists());
    // The trail is intact across the crash and records the reconcile.
    let (_, v) = app
        .call(Method::GET, "/api/audit/verify", &app.admin_token, None)
        .await;
    assert_eq!(v["ok"], true, "{v}");
    let (_, a) = app
        .call(
            Method::GET,
            &format!("/api/audit?target_id={env}"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(a["items"][0]["action"], "environment.jupyter_reconciled");
    // And the survivor launches again.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            &app.admin_token,
            Some(json!({"environment_id": env})),
        )
        .await;
    let log = std::fs::read_to_string(
        app.data_dir
            .path()
            .join(format!("data/logs/jupyter-{env}.log")),
    )
    .unwrap_or_default();
    assert_eq!(s, StatusCode::OK, "{b}\n{log}");
    app.stop().await;
}

#[tokio::test]
async fn probes_and_metrics_answer_without_credentials() {
    let app = spawn_app().await;
    for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let r = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), want);
    }
    let _ = app
        .call(Method::GET, "/api/environments", &app.admin_token, None)
        .await;
    let m = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("westtek_http_requests_total"), "{m}");
    assert!(m.contains("path=\"/api/environments\""), "{m}");
    let r = app
        .http
        .get(format!("{}/api/openapi.json", app.url))
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["paths"]["/api/environments/jupyter"].is_object());
    let r = app
        .http
        .get(format!("{}/api/docs/", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let id = r
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        id.is_some_and(|i| i.len() == 36),
        "every response carries a request id"
    );
    app.stop().await;
}

#[tokio::test]
async fn with_redis_configured_domain_events_travel_over_redis_streams() {
    use futures::StreamExt;
    use westtek_domain::ports::EventBus;
    let redis = westtek_bus::testing::Redis::start();
    let app = westtek_tests::spawn_app_with(|cfg| cfg.redis_url = Some(redis.url())).await;
    // A consumer in another process would do exactly this.
    let bus = westtek_bus::RedisStreamsBus::connect(&redis.url(), "westtek-events")
        .await
        .unwrap();
    let mut events = bus.subscribe("e2e-consumer").await.unwrap();
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments",
            &app.admin_token,
            Some(json!({"name": "evented", "packages": ["westtek-no-such-package-xyz"]})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let mut types = Vec::new();
    while types.len() < 2 {
        let d = tokio::time::timeout(std::time::Duration::from_secs(60), events.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.event.data["environment_id"], acc["environment_id"]);
        assert_eq!(d.event.lab_id.to_string(), app.lab_id);
        assert_eq!(d.event.source, "env-manager");
        types.push(d.event.event_type.clone());
        d.ack.ack().await.unwrap();
    }
    assert_eq!(
        types,
        vec!["environment.created", "environment.build_failed"]
    );
    app.stop().await;
}
