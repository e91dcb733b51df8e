//! The walking skeleton end to end: a researcher builds an environment with
//! numpy, launches JupyterLab, and runs a cell through the gateway with a
//! Jupyter client speaking the kernel WebSocket protocol; another lab sees
//! nothing; the Jupyter token never reaches the client.

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use westtek_tests::{assert_problem, spawn_app};

/// Follows the job's SSE stream to its end; returns every job state seen.
pub(crate) async fn follow_sse(http: &reqwest::Client, url: &str, token: &str) -> Vec<Value> {
    let resp = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut seen = Vec::new();
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let ev: String = buf.drain(..end + 2).collect();
            let data: String = ev
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                seen.push(serde_json::from_str(&data).unwrap());
            }
        }
        if seen
            .last()
            .is_some_and(|j: &Value| j["status"] == "succeeded" || j["status"] == "failed")
        {
            break;
        }
    }
    seen
}

/// Runs `code` in a kernel over the Jupyter WebSocket protocol (v5 JSON
/// messages on `/api/kernels/{id}/channels`); returns the `text/plain`
/// result.
pub(crate) async fn execute(ws_url: &str, bearer: &str, code: &str) -> String {
    let mut req = ws_url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket through the gateway");
    let msg_id = uuid::Uuid::new_v4().to_string();
    let session = uuid::Uuid::new_v4().to_string();
    let request = json!({
        "header": {"msg_id": msg_id, "username": "e2e", "session": session, "msg_type": "execute_request",
                   "version": "5.3", "date": chrono::Utc::now().to_rfc3339()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": false, "store_history": true, "user_expressions": {},
                    "allow_stdin": false, "stop_on_error": true},
    });
    ws.send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    let mut result = None;
    let mut reply_ok = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while result.is_none() || !reply_ok {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("kernel answered in time");
        let Some(Ok(Message::Text(t))) = next else {
            continue;
        };
        let m: Value = serde_json::from_str(&t).unwrap();
        if m["parent_header"]["msg_id"] != msg_id.as_str() {
            continue;
        }
        match m["header"]["msg_type"].as_str() {
            Some("execute_result") => {
                result = m["content"]["data"]["text/plain"]
                    .as_str()
                    .map(str::to_string)
            }
            Some("error") => panic!("cell failed: {}", m["content"]),
            Some("execute_reply") => {
                assert_eq!(m["content"]["status"], "ok", "{m}");
                reply_ok = true;
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    result.unwrap()
}

#[tokio::test]
async fn a_researcher_runs_numpy_in_jupyter_through_the_gateway_and_other_labs_see_nothing() {
    let app = spawn_app().await;
    let genomics = app.create_lab("genomics").await;
    let physics = app.create_lab("physics").await;
    let alice = app.create_user(&genomics, "alice", "researcher").await;
    let bob = app.create_user(&physics, "bob", "researcher").await;
    let mut bodies: Vec<String> = Vec::new();

    // Create: 202 + Location, then follow the build live over SSE.
    let r = app
        .req(Method::POST, "/api/environments", &alice)
        .json(
            &json!({"name": "numpy-env", "python_version": "3.11", "packages": ["numpy"],
                      "metadata": {"experiment_id": "EXP-1", "criticality": "high"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let accepted: Value = r.json().await.unwrap();
    let job_id = accepted["job_id"].as_str().unwrap();
    let env_id = accepted["environment_id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/api/jobs/{job_id}"));
    let states = follow_sse(
        &app.http,
        &format!("{}/api/jobs/{job_id}/events", app.url),
        &alice,
    )
    .await;
    let last = states.last().unwrap();
    assert_eq!(last["status"], "succeeded", "{last}");
    assert!(
        states.len() >= 3,
        "progress was reported along the way: {states:?}"
    );
    let progress: Vec<f64> = states
        .iter()
        .map(|s| s["progress"].as_f64().unwrap())
        .collect();
    assert!(
        progress.windows(2).all(|w| w[1] >= w[0]),
        "progress never goes back: {progress:?}"
    );

    let (s, env) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env_id}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(env["status"], "ready");
    assert_eq!(env["drift_status"], "STABLE");
    assert_eq!(env["metadata"]["experiment_id"], "EXP-1");
    assert_eq!(env["configuration_hash"].as_str().unwrap().len(), 64);
    let numpy_pin = env["metadata"]["jupyter_packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .find(|p| p.starts_with("numpy=="))
        .expect("numpy installed")
        .to_string();
    let numpy_version = numpy_pin.trim_start_matches("numpy==").to_string();

    // Launch through the seed path.
    let (s, launched) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            &alice,
            Some(json!({"environment_id": env_id})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{launched}");
    let lab_url = launched["jupyter_url"].as_str().unwrap().to_string();
    assert_eq!(lab_url, format!("{}/jupyter/{env_id}/lab", app.url));
    bodies.push(launched.to_string());
    let upstream = app
        .app
        .state
        .runtime
        .upstream(westtek_domain::EnvironmentId::parse(&env_id).unwrap())
        .await
        .unwrap();
    let jupyter_token = upstream.token.clone();

    // JupyterLab's page loads through the gateway.
    let page = app
        .req(Method::GET, &format!("/jupyter/{env_id}/lab"), &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = format!("{:?}", page.headers());
    let html = page.text().await.unwrap();
    assert!(html.contains("jupyter-config-data"), "a JupyterLab page");
    bodies.push(headers);
    bodies.push(html);

    // Start a kernel and execute a cell over the kernel WebSocket protocol.
    let (s, kernel) = app
        .call(
            Method::POST,
            &format!("/jupyter/{env_id}/api/kernels"),
            &alice,
            Some(json!({"name": "python3"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{kernel}");
    bodies.push(kernel.to_string());
    let kernel_id = kernel["id"].as_str().unwrap();
    let ws_base = app.url.replacen("http", "ws", 1);
    let channels = format!(
        "{ws_base}/jupyter/{env_id}/api/kernels/{kernel_id}/channels?session_id={}",
        uuid::Uuid::new_v4()
    );
    let out = execute(&channels, &alice, "import numpy; numpy.__version__").await;
    assert_eq!(out, format!("'{numpy_version}'"));
    bodies.push(out);
    for path in [
        "api/status",
        "api/kernels",
        "api/sessions",
        "api/kernelspecs",
        "lab/api/settings",
        "api/contents",
    ] {
        let r = app
            .req(Method::GET, &format!("/jupyter/{env_id}/{path}"), &alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        bodies.push(format!("{:?}", r.headers()));
        bodies.push(r.text().await.unwrap());
    }

    // A cross-site page cannot open the kernel socket with the user's credentials.
    let mut req = channels.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {alice}").parse().unwrap());
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!(
            "cross-origin websocket was not refused: {:?}",
            other.map(|_| ())
        ),
    }

    // A browser session (cookie) works through the gateway, but changes it
    // carries must come from this site.
    let signed = app.http.post(format!("{}/api/auth/token", app.url))
        .json(&json!({"grant_type": "password", "username": "alice", "password": "correct horse battery staple"}))
        .send().await.unwrap();
    let cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    let r = app
        .http
        .get(format!("{}/jupyter/{env_id}/api/status", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let kernels = format!("{}/jupyter/{env_id}/api/kernels", app.url);
    let r = app
        .http
        .post(&kernels)
        .header("cookie", &cookie)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "cross_origin_request").await;
    let r = app
        .http
        .post(&kernels)
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "cross_origin_request").await;
    let r = app
        .http
        .post(&kernels)
        .header("cookie", &cookie)
        .header("origin", &app.url)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    bodies.push(r.text().await.unwrap());

    // Bob, in another lab, finds nothing: not the environment, not its Jupyter.
    assert_problem(
        app.req(Method::GET, &format!("/api/environments/{env_id}"), &bob)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.req(Method::GET, &format!("/jupyter/{env_id}/lab"), &bob)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.req(Method::GET, &format!("/jupyter/{env_id}/api/kernels"), &bob)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = app
        .req(Method::POST, "/api/environments/jupyter", &bob)
        .json(&json!({"environment_id": env_id}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let mut req = channels.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {bob}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 404),
        other => panic!(
            "another lab's websocket was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    let (_, bobs) = app.call(Method::GET, "/api/environments", &bob, None).await;
    assert_eq!(bobs["total"], 0);
    // No credentials at all: 401 on the gateway too.
    let r = app
        .http
        .get(format!("{}/jupyter/{env_id}/lab", app.url))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // The list shows it running; stop it; the gateway then says so.
    let (_, list) = app
        .call(
            Method::GET,
            "/api/environments?jupyter_status=running",
            &alice,
            None,
        )
        .await;
    assert_eq!(list["total"], 1);
    bodies.push(list.to_string());
    let (s, stopped) = app
        .call(
            Method::DELETE,
            &format!("/api/environments/{env_id}/jupyter"),
            &alice,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stopped["jupyter_status"], "stopped");
    assert_problem(
        app.req(
            Method::GET,
            &format!("/jupyter/{env_id}/api/status"),
            &alice,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "jupyter_not_running",
    )
    .await;

    // Jupyter's token never reached the client.
    for b in &bodies {
        assert!(
            !b.contains(&jupyter_token),
            "the Jupyter token leaked in: {}",
            &b[..b.len().min(300)]
        );
    }

    // Every step is on the lab's audit trail.
    let (_, audit) = app
        .call(
            Method::GET,
            &format!("/api/audit?target_id={env_id}"),
            &alice,
            None,
        )
        .await;
    let mut actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        vec![
            "environment.create",
            "environment.ready",
            "environment.launch",
            "environment.stop"
        ]
    );
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["lab_id"] == genomics.as_str()));
    app.stop().await;
}
