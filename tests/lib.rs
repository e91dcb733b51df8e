//! Helpers for the end-to-end tests: `spawn_app()` starts the whole platform
//! on port 0 with a fresh temp data dir, signs in the first-run admin and
//! offers small API shortcuts. Every test gets its own app, port and folder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use westtek::app::{self, RunningApp, UpConfig};

/// A running platform for one test.
pub struct TestApp {
    pub app: RunningApp,
    pub url: String,
    pub http: reqwest::Client,
    /// Access token of the first-run IT admin (also lab admin of `lab_id`).
    pub admin_token: String,
    /// The first-run lab.
    pub lab_id: String,
    pub data_dir: tempfile::TempDir,
}

/// Starts the platform like `westtek up` does, on a free port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// `spawn_app` with a change to the configuration.
pub async fn spawn_app_with(change: impl FnOnce(&mut UpConfig)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut cfg = UpConfig::new(data_dir.path().join("data"));
    cfg.port = 0;
    cfg.web_dir = None;
    change(&mut cfg);
    let app = app::start(cfg)
        .await
        .expect("the platform starts (is uv installed? run scripts/test)");
    let url = app.url.clone();
    let http = reqwest::Client::new();
    let first = app
        .first_login
        .clone()
        .expect("first run prints a sign-in link");
    let t = token_exchange(
        &http,
        &url,
        json!({"grant_type": "one_time_token", "token": first.token}),
    )
    .await;
    let admin_token = t["access_token"].as_str().unwrap().to_string();
    let lab_id = t["user"]["labs"][0]["lab_id"].as_str().unwrap().to_string();
    TestApp {
        app,
        url,
        http,
        admin_token,
        lab_id,
        data_dir,
    }
}

/// POST /api/auth/token, asserting success.
pub async fn token_exchange(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let r = http
        .post(format!("{url}/api/auth/token"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "token exchange failed: {}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

impl TestApp {
    /// A request with a bearer token.
    pub fn req(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(token)
    }

    /// Sends and returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.req(method, path, token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a lab as the IT admin; returns its id.
    pub async fn create_lab(&self, name: &str) -> String {
        let (s, b) = self
            .call(
                Method::POST,
                "/api/labs",
                &self.admin_token,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    /// Creates a user in a lab (the admin acting in it) with a password;
    /// returns the user's access token.
    pub async fn create_user(&self, lab_id: &str, username: &str, role: &str) -> String {
        let resp = self
            .req(Method::POST, &format!("/api/labs/{lab_id}/users"), &self.admin_token)
            .header("x-westtek-acting-lab", lab_id)
            .json(&json!({"username": username, "role": role, "password": "correct horse battery staple"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{}",
            resp.text().await.unwrap()
        );
        let t = token_exchange(
            &self.http,
            &self.url,
            json!({"grant_type": "password", "username": username, "password": "correct horse battery staple"}),
        )
        .await;
        t["access_token"].as_str().unwrap().to_string()
    }

    /// Waits for a job to end; returns it.
    pub async fn wait_job(&self, job_id: &str, token: &str) -> Value {
        for _ in 0..1200 {
            let (s, job) = self
                .call(Method::GET, &format!("/api/jobs/{job_id}"), token, None)
                .await;
            assert_eq!(s, StatusCode::OK, "{job}");
            if job["status"] == "succeeded" || job["status"] == "failed" {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        panic!("job {job_id} did not end in 5 minutes");
    }

    /// Stops the platform (and its Jupyter servers).
    pub async fn stop(self) {
        self.app.shutdown().await.unwrap();
    }
}

/// Asserts a problem+json response with `code`.
pub async fn assert_problem(resp: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status);
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/problem+json"),
        "content type {ct}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    body
}

/// Starts the platform again on an existing data dir (after `stop` or
/// `abort`), signing in as `username` through a token minted by the
/// platform's own issuer.
pub async fn restart_app(data_dir: tempfile::TempDir, lab_id: String) -> TestApp {
    let mut cfg = UpConfig::new(data_dir.path().join("data"));
    cfg.port = 0;
    cfg.web_dir = None;
    let app = app::start(cfg).await.expect("the platform restarts");
    let url = app.url.clone();
    let admin = app
        .state
        .store
        .find_user_by_username("admin")
        .await
        .unwrap()
        .unwrap()
        .user;
    let principal = westtek_platform_principal(&app, &admin).await;
    let token = app
        .state
        .issuer
        .as_ref()
        .unwrap()
        .issue_access(&principal, chrono::Utc::now())
        .unwrap()
        .token;
    TestApp {
        app,
        url,
        http: reqwest::Client::new(),
        admin_token: token,
        lab_id,
        data_dir,
    }
}

async fn westtek_platform_principal(
    app: &RunningApp,
    user: &westtek_domain::User,
) -> westtek_domain::Principal {
    let ms = app.state.store.memberships_of(user.id).await.unwrap();
    westtek_domain::Principal {
        user_id: user.id,
        username: user.username.to_string(),
        it_admin: user.it_admin,
        memberships: ms
            .into_iter()
            .map(|m| westtek_domain::LabRole {
                lab_id: m.lab_id,
                role: m.role,
            })
            .collect(),
    }
}

/// Creates an environment and waits for its build; returns its id.
pub async fn build_env(app: &TestApp, token: &str, name: &str, packages: Value) -> String {
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments",
            token,
            Some(json!({"name": name, "packages": packages})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), token).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    acc["environment_id"].as_str().unwrap().to_string()
}

/// `uv pip install SPEC…` into the venv of `venv_python` (never downloads an
/// interpreter); panics with uv's stderr when it fails.
pub fn uv_install(venv_python: &std::path::Path, spec: &[&str]) {
    let out = std::process::Command::new("uv")
        .args(["pip", "install", "--python"])
        .arg(venv_python)
        .args(spec)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .expect("uv runs");
    assert!(
        out.status.success(),
        "uv pip install {spec:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
