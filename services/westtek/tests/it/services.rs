//! The services as separate processes (`westtek serve env-manager`,
//! `snapshots`, `knowledge` and two `drift` replicas) over one data dir: a
//! shared SQLite file stands in for DocumentDB on this one host. The same
//! flow runs twice: with Redis Streams as the bus and everything else
//! local, and on the aws profile with every AWS-backed port on moto (S3
//! vault with a KMS-wrapped key, DynamoDB drift store, EventBridge + SQS,
//! S3 knowledge documents; the Bedrock Knowledge Base, which moto lacks, is
//! a stand-in HTTP server answering with Bedrock's response shapes).
//! Nothing passes between the processes in memory: a snapshot
//! taken by the snapshots process makes the drift processes watch (bus) and
//! the knowledge process sync (bus); a drift event reaches the live stream
//! of both drift replicas, so at least one of them got it from the other
//! process through the store; a restore in the snapshots process gives a
//! new environment bit for bit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const NOTEBOOK: &str = r##"{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Quarterly yield table\n", "Prints the heliotrope yield table with tabulate.\n"]},
 {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null,
  "source": ["import tabulate\n", "print(tabulate.tabulate([[1, 2]]))\n"]}],
 "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
 "nbformat": 4, "nbformat_minor": 5}"##;

/// A child killed and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `westtek serve SERVICE` on `port` with `env`; its stdout lines.
fn serve(
    service: &str,
    port: u16,
    data: &Path,
    env: &[(String, String)],
    log: &Path,
) -> (Proc, Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_westtek"));
    cmd.args(["serve", service, "--port", &port.to_string()])
        .args(["--jupyter-idle-timeout", "0"])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .env_remove("WESTTEK_WEB_DIR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (Proc(child), rx)
}

/// Waits for the process's start-up lines; returns the sign-in link if
/// it printed one.
fn started(rx: &Receiver<String>, log: &Path) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut link = None;
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(k) = l.strip_prefix("Sign in once with: ") {
            link = Some(k.trim().to_string());
        } else if l.starts_with("API docs:") {
            return link;
        }
    }
    panic!(
        "{} did not start: {}",
        log.display(),
        std::fs::read_to_string(log).unwrap_or_default()
    )
}

struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut r = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    async fn get(&self, url: String) -> serde_json::Value {
        let (s, v) = self.call(reqwest::Method::GET, url.clone(), None).await;
        assert_eq!(s, 200, "GET {url}: {v}");
        v
    }

    /// Waits for a job (read from `base`, any service) to end successfully.
    async fn job_succeeds(&self, base: &str, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let job = self.get(format!("{base}/api/jobs/{id}")).await;
            match job["status"].as_str() {
                Some("succeeded") => return job,
                Some("failed") => panic!("job {id} failed: {job}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "job {id} did not end: {job}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The `drift` events of a live stream, as JSON, sent to a channel.
async fn live_drift(
    api: &Api,
    url: String,
) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
    use futures::StreamExt;
    let resp = api
        .http
        .get(&url)
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut body = resp.bytes_stream();
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                if !frame.lines().any(|l| l == "event: drift") {
                    continue;
                }
                let data: String = frame
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if let Ok(v) = serde_json::from_str(&data) {
                    let _ = tx.send(v);
                }
            }
        }
    });
    rx
}

/// Every regular file under `root` (relative path → BLAKE3 and mode),
/// skipping `skip` (paths relative to `root`).
fn tree(root: &Path, skip: &[&str]) -> BTreeMap<PathBuf, (String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if skip.iter().any(|s| rel == Path::new(s)) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                let hash = blake3::hash(&std::fs::read(&p).unwrap())
                    .to_hex()
                    .to_string();
                out.insert(rel, (hash, meta.permissions().mode()));
            }
        }
    }
    out
}

/// What the flow made.
struct Made {
    env_id: String,
    lab_id: String,
}

/// The flow, with `env(service)` the settings of each process beyond the
/// public URL.
async fn flow(dir: &Path, env: impl Fn(&str) -> Vec<(String, String)>) -> Made {
    let data = dir.join("data");
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let public = url(0);
    let log = |name: &str| dir.join(format!("{name}.log"));
    let env_of = |service: &str| {
        let mut e = env(service);
        e.push(("WESTTEK_PUBLIC_URL".into(), public.clone()));
        e
    };

    // The env-manager first (it makes the data dir's first lab and admin),
    // then the others at once.
    let (_env_manager, rx) = serve(
        "env-manager",
        ports[0],
        &data,
        &env_of("env-manager"),
        &log("env-manager"),
    );
    let link = started(&rx, &log("env-manager")).expect("the env-manager prints the sign-in link");
    let mut procs = Vec::new();
    for (i, name) in [
        (1, "snapshots"),
        (2, "drift"),
        (3, "drift"),
        (4, "knowledge"),
    ] {
        let l = log(&format!("{name}-{i}"));
        let (p, rx) = serve(name, ports[i], &data, &env_of(name), &l);
        procs.push((p, rx, l));
    }
    for (_, rx, l) in &procs {
        assert!(
            started(rx, l).is_none(),
            "only the env-manager makes the first admin"
        );
    }
    // A second snapshots process on the same data dir is refused.
    let (mut twin, _twin_rx) = serve(
        "snapshots",
        free_port(),
        &data,
        &env_of("snapshots"),
        &log("twin"),
    );
    let status = twin.0.wait().unwrap();
    assert!(!status.success());
    let twin_log = std::fs::read_to_string(log("twin")).unwrap();
    assert!(twin_log.contains("for the snapshots service"), "{twin_log}");

    // Sign in at the env-manager; every service accepts the token.
    let http = reqwest::Client::new();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let t: serde_json::Value = http
        .post(format!("{}/api/auth/token", url(0)))
        .json(&serde_json::json!({"grant_type": "one_time_token", "token": token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api = Api {
        http,
        token: t["access_token"].as_str().unwrap().to_string(),
    };
    let lab_id = t["user"]["labs"][0]["lab_id"].as_str().unwrap().to_string();
    for i in 0..5 {
        assert_eq!(
            api.get(format!("{}/api/me", url(i))).await["username"],
            "admin"
        );
        let ready = reqwest::get(format!("{}/readyz", url(i))).await.unwrap();
        assert_eq!(ready.status().as_u16(), 200);
    }

    // Build (env-manager).
    let (s, acc) = api
        .call(
            reqwest::Method::POST,
            format!("{}/api/environments", url(0)),
            Some(serde_json::json!({"name": "services-it", "packages": ["tabulate==0.8.10"]})),
        )
        .await;
    assert_eq!(s, 202, "{acc}");
    api.job_succeeds(&url(0), acc["job_id"].as_str().unwrap())
        .await;
    let env_id = acc["environment_id"].as_str().unwrap().to_string();
    let root = data.join("envs").join(&env_id);
    std::fs::write(root.join("home/yield.ipynb"), NOTEBOOK).unwrap();

    // Snapshot (snapshots process); its job is readable at the env-manager too.
    let (s, acc) = api
        .call(
            reqwest::Method::POST,
            format!("{}/api/environments/snapshot", url(1)),
            Some(serde_json::json!({"environment_id": env_id, "notes": "baseline"})),
        )
        .await;
    assert_eq!(s, 202, "{acc}");
    api.job_succeeds(&url(0), acc["job_id"].as_str().unwrap())
        .await;
    let snap_id = acc["snapshot_id"].as_str().unwrap().to_string();
    let packages_at_snapshot = tree(&root.join("venv/lib"), &[]);

    // The drift replicas hear of the snapshot over the bus (one of them
    // watches), the knowledge process syncs the notebook.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = api
            .get(format!("{}/api/environments/{env_id}/drift", url(2)))
            .await;
        let b = api
            .get(format!("{}/api/environments/{env_id}/drift", url(3)))
            .await;
        if a["watched"] == true || b["watched"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no drift replica watches: {a} {b}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hits = api
            .get(format!("{}/api/knowledge/search?q=heliotrope", url(4)))
            .await;
        if hits["items"].as_array().is_some_and(|h| !h.is_empty())
            || hits.as_array().is_some_and(|h| !h.is_empty())
        {
            assert!(hits.to_string().contains("yield.ipynb"), "{hits}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot never synced knowledge: {hits}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Both replicas' live streams see the install's drift event.
    let stream = |i: usize| format!("{}/api/drift/stream?environment_id={env_id}", url(i));
    let mut live_a = live_drift(&api, stream(2)).await;
    let mut live_b = live_drift(&api, stream(3)).await;
    let venv_python = root.join("venv/bin/python");
    let o = Command::new(std::env::var("WESTTEK_UV").unwrap_or_else(|_| "uv".into()))
        .args(["pip", "install", "-q", "--python"])
        .arg(&venv_python)
        .arg("tabulate==0.9.0")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env_remove("VIRTUAL_ENV")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (name, live) in [("a", &mut live_a), ("b", &mut live_b)] {
        let ev = tokio::time::timeout(Duration::from_secs(60), live.recv())
            .await
            .unwrap_or_else(|_| panic!("drift replica {name} streamed no event"))
            .unwrap();
        assert_eq!(ev["environment_id"], env_id.as_str(), "{ev}");
        assert_eq!(ev["status"], "CRITICAL_DRIFT", "{ev}");
        assert!(ev.to_string().contains("tabulate"), "{ev}");
    }

    // Knowledge sync on demand (knowledge process).
    let (s, sync) = api
        .call(
            reqwest::Method::POST,
            format!("{}/api/knowledge/sync/{env_id}", url(4)),
            None,
        )
        .await;
    assert_eq!(s, 200, "{sync}");
    assert!(
        sync["documents"].to_string().contains("/yield.md"),
        "{sync}"
    );

    // Restore the baseline into a new environment (snapshots process): the
    // venv's packages are the snapshot's, bit for bit (tabulate 0.8.10).
    let (s, acc) = api
        .call(
            reqwest::Method::POST,
            format!("{}/api/snapshots/{snap_id}/restore", url(1)),
            Some(serde_json::json!({"name": "services-it-restored"})),
        )
        .await;
    assert_eq!(s, 202, "{acc}");
    api.job_succeeds(&url(1), acc["job_id"].as_str().unwrap())
        .await;
    let restored = data
        .join("envs")
        .join(acc["environment_id"].as_str().unwrap());
    assert_eq!(packages_at_snapshot, tree(&restored.join("venv/lib"), &[]));
    let out = Command::new(restored.join("venv/bin/python"))
        .args(["-c", "import tabulate; print(tabulate.__version__)"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0.8.10",
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(root.join("home/yield.ipynb")).unwrap(),
        std::fs::read(restored.join("home/yield.ipynb")).unwrap()
    );
    // The live venv moved on (0.9.0) since.
    assert_ne!(packages_at_snapshot, tree(&root.join("venv/lib"), &[]));
    Made { env_id, lab_id }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_service_processes_share_work_through_the_store_and_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let redis = westtek_bus::testing::Redis::start();
    flow(dir.path(), |_| {
        vec![("WESTTEK_REDIS_URL".to_string(), redis.url())]
    })
    .await;
    // The local vault's key file is where the local profile keeps it.
    assert!(dir.path().join("data/keys/vault.key").is_file());
}

/// A stand-in for the Bedrock Knowledge Base's ingestion API (moto has no
/// Bedrock): answers StartIngestionJob and GetIngestionJob with Bedrock's
/// response shapes (the job completes at once) and records the calls.
async fn fake_bedrock_agent() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::Request;
    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&calls);
    let app = axum::Router::new().fallback(move |req: Request| {
        let seen = std::sync::Arc::clone(&seen);
        async move {
            let path = req.uri().path().to_string();
            seen.lock()
                .unwrap()
                .push(format!("{} {path}", req.method()));
            // /knowledgebases/{kb}/datasources/{ds}/ingestionjobs[/{id}]
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            let (kb, ds) = (
                parts.get(1).copied().unwrap_or(""),
                parts.get(3).copied().unwrap_or(""),
            );
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let status = if parts.len() > 5 {
                "COMPLETE"
            } else {
                "STARTING"
            };
            axum::Json(serde_json::json!({ "ingestionJob": {
                "knowledgeBaseId": kb, "dataSourceId": ds, "ingestionJobId": "JOB0000001",
                "status": status, "startedAt": now, "updatedAt": now,
                "statistics": { "numberOfDocumentsScanned": 3, "numberOfNewDocumentsIndexed": 3 }
            }}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_aws_profile_runs_the_same_flow_with_every_aws_port_on_moto() {
    use westtek_domain::DriftStore;
    let dir = tempfile::tempdir().unwrap();
    let moto = westtek_aws::testing::Moto::start();
    let sdk = moto.config();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("vault").send().await.unwrap();
    westtek_knowledge_aws::provision(&sdk, "knowledge")
        .await
        .unwrap();
    let key = aws_sdk_kms::Client::new(&sdk)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    westtek_drift_dynamodb::provision(&aws_sdk_dynamodb::Client::new(&sdk), "drift")
        .await
        .unwrap();
    let bus = westtek_bus_aws::provision(
        &sdk,
        "westtek",
        &["drift", "knowledge"],
        &Default::default(),
    )
    .await
    .unwrap();
    let queue = |g: &str| bus.groups[g].queue_url.clone();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
    let pool = cognito
        .create_user_pool()
        .pool_name("researchers")
        .send()
        .await
        .unwrap()
        .user_pool
        .unwrap()
        .id
        .unwrap();
    let client = cognito
        .create_user_pool_client()
        .user_pool_id(&pool)
        .client_name("portal")
        .send()
        .await
        .unwrap()
        .user_pool_client
        .unwrap()
        .client_id
        .unwrap();
    let (bedrock, ingestions) = fake_bedrock_agent().await;

    let made = flow(dir.path(), |service| {
        let mut e: Vec<(String, String)> = [
            ("WESTTEK_PROFILE", "aws".to_string()),
            ("WESTTEK_METADATA_IN_SQLITE", "true".into()),
            ("WESTTEK_VAULT_URL", "s3://vault/westtek".into()),
            ("WESTTEK_VAULT_KMS_KEY_ID", key.clone()),
            ("WESTTEK_DRIFT_TABLE", "drift".into()),
            ("WESTTEK_EVENT_BUS", "westtek".into()),
            (
                "WESTTEK_COGNITO_ISSUER",
                format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}"),
            ),
            (
                "WESTTEK_COGNITO_JWKS_URL",
                format!("{}/{pool}/.well-known/jwks.json", moto.endpoint()),
            ),
            ("WESTTEK_COGNITO_CLIENT_ID", client.clone()),
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("AWS_ENDPOINT_URL_BEDROCK_AGENT", bedrock.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        match service {
            "drift" => e.push((
                "WESTTEK_BUS_QUEUES".into(),
                format!("drift={}", queue("drift")),
            )),
            "knowledge" => {
                e.push((
                    "WESTTEK_BUS_QUEUES".into(),
                    format!("knowledge={}", queue("knowledge")),
                ));
                e.push(("WESTTEK_KNOWLEDGE_URL".into(), "s3://knowledge/".into()));
                e.push(("WESTTEK_KNOWLEDGE_BASE_ID".into(), "KB12345678".into()));
                e.push((
                    "WESTTEK_KNOWLEDGE_DATA_SOURCE_ID".into(),
                    "DS12345678".into(),
                ));
            }
            _ => {}
        }
        e
    })
    .await;

    // The vault is in the bucket, encrypted, its key wrapped by KMS.
    assert!(!dir.path().join("data/vault").exists());
    assert!(!dir.path().join("data/keys/vault.key").exists());
    let objects = s3
        .list_objects_v2()
        .bucket("vault")
        .prefix("westtek/")
        .send()
        .await
        .unwrap()
        .contents
        .unwrap_or_default();
    let packs: Vec<String> = objects
        .iter()
        .filter_map(|o| o.key.clone())
        .filter(|k| k.contains("/packs/") || k.contains("/data/"))
        .collect();
    assert!(!packs.is_empty(), "no packs in the bucket: {objects:?}");
    for k in &packs {
        let body = s3.get_object().bucket("vault").key(k).send().await.unwrap();
        let bytes = body.body.collect().await.unwrap().into_bytes();
        assert!(
            !bytes.windows(10).any(|w| w == b"heliotrope"),
            "{k} holds the notebook in clear"
        );
    }
    // The drift event is in DynamoDB.
    let drift = westtek_drift_dynamodb::DynamoDriftStore::with_config(&sdk, "drift");
    let events = drift
        .list_drift_events(&westtek_domain::DriftEventFilter {
            environment_id: Some(westtek_domain::EnvironmentId::parse(&made.env_id).unwrap()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.status == westtek_domain::DriftStatus::CriticalDrift),
        "{:?}",
        events.items
    );
    // The notebook is in the knowledge bucket in the seed's layout, and the
    // Knowledge Base was asked to ingest it.
    let docs: Vec<String> = s3
        .list_objects_v2()
        .bucket("knowledge")
        .prefix(format!("notebooks/{}/", made.lab_id))
        .send()
        .await
        .unwrap()
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect();
    assert!(docs.iter().any(|k| k.ends_with("/yield.md")), "{docs:?}");
    let calls = ingestions.lock().unwrap().clone();
    assert!(
        calls.iter().any(|c| c
            .starts_with("PUT /knowledgebases/KB12345678/datasources/DS12345678/ingestionjobs")),
        "{calls:?}"
    );
}
