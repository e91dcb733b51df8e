//! The `agent-actions` binary under the Lambda runtime: a stand-in for the
//! Lambda Runtime API on a loopback port hands it events the way Lambda
//! does (`GET /2018-06-01/runtime/invocation/next`) and records what it
//! posts back (`…/{id}/response`, `…/{id}/error`).

use crate::fakes::World;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use westtek_agent_actions::{router, Tools};

#[derive(Clone)]
struct RuntimeApi {
    events: Arc<Mutex<VecDeque<Value>>>,
    posted: mpsc::UnboundedSender<Posted>,
}

async fn next(State(api): State<RuntimeApi>) -> (HeaderMap, Json<Value>) {
    let event = api.events.lock().unwrap().pop_front();
    let Some(event) = event else {
        // No more work: Lambda would freeze the process here.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let n = api.events.lock().unwrap().len();
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(30);
    let mut h = HeaderMap::new();
    h.insert(
        "lambda-runtime-aws-request-id",
        format!("req-{n}").parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-deadline-ms",
        deadline.as_millis().to_string().parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:agent-actions"
            .parse()
            .unwrap(),
    );
    h.insert(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793".parse().unwrap(),
    );
    (h, Json(event))
}

async fn posted(
    State(api): State<RuntimeApi>,
    Path((id, kind)): Path<(String, String)>,
    body: axum::body::Bytes,
) {
    // The runtime posts JSON without a JSON content type.
    let body = serde_json::from_slice(&body).unwrap();
    api.posted.send((kind, id, body)).unwrap();
}

/// A Runtime API serving `events`; what the function posts arrives on the receiver.
async fn runtime_api(
    events: Vec<Value>,
) -> (String, mpsc::UnboundedReceiver<(String, String, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let api = RuntimeApi {
        events: Arc::new(Mutex::new(events.into())),
        posted: tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(posted))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr.to_string(), rx)
}

fn lambda(runtime_api: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_agent-actions"));
    c.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "agent-actions")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("WESTTEK_AGENT_ACTIONS_TOKEN", "s3cret")
        .kill_on_drop(true);
    c
}

type Posted = (String, String, Value);

async fn wait(rx: &mut mpsc::UnboundedReceiver<Posted>) -> Posted {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the function posted nothing within 20 s")
        .unwrap()
}

#[tokio::test]
async fn the_binary_answers_lambda_invocations_through_the_drift_service() {
    let w = World::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let drift_url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(
        Tools {
            drift: w.tools.drift.clone(),
            knowledge: None,
        },
        &secrecy::SecretString::from("s3cret".to_string()),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let good = w.event("openapi-get-drift-events.json");
    let malformed = json!({"messageVersion": "1.0", "function": "GetDriftEvents"});
    let (api, mut posted) = runtime_api(vec![good, malformed]).await;
    let mut child = lambda(&api)
        .env("WESTTEK_AGENT_ACTIONS_DRIFT_URL", &drift_url)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Ok(status) = tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        let mut err = String::new();
        use tokio::io::AsyncReadExt;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        panic!("the function exited ({status:?}): {err}");
    }

    let (kind, id, reply) = wait(&mut posted).await;
    assert_eq!((kind.as_str(), id.as_str()), ("response", "req-1"));
    assert_eq!(reply["messageVersion"], "1.0");
    assert_eq!(reply["response"]["httpStatusCode"], 200, "{reply}");
    assert_eq!(w.drift.calls()[0].1.lab_id, w.lab);

    let (kind, id, error) = wait(&mut posted).await;
    assert_eq!((kind.as_str(), id.as_str()), ("error", "req-0"));
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("`actionGroup` is missing"), "{error}");
}

#[tokio::test]
async fn the_binary_refuses_to_start_without_a_service_to_forward_to() {
    let out = lambda("127.0.0.1:9").output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WESTTEK_AGENT_ACTIONS_DRIFT_URL"),
        "{stderr}"
    );
}
