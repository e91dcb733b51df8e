//! Shared fixtures: alerts, fast retry policies, a real HTTP receiver, an
//! in-memory dead-letter sink and a fixed target source.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use serde_json::Value;
use tokio::sync::watch;
use westtek_alerts::{
    Alert, DeadLetter, DeadLetterSink, Finding, FindingKind, Result, RetryPolicy, Severity,
    SmtpConfig, TargetSource, WebhookFormat, WebhookTarget, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use westtek_domain::{EnvironmentId, EventId, LabId};

/// The notebook every critical test alert names.
pub const NOTEBOOK: &str = "home/analysis.ipynb";

/// Generous bound for things that should take milliseconds.
pub const SOON: Duration = Duration::from_secs(20);

/// A drift alert of `severity` in environment "demo" of `lab`.
pub fn alert(lab: LabId, severity: Severity) -> Alert {
    let finding = match severity {
        Severity::Critical => Finding {
            kind: FindingKind::PackageUpgraded,
            subject: "numpy".into(),
            before: Some("1.26.4".into()),
            after: Some("2.1.0".into()),
            distance: Some(westtek_inventory::VersionDistance::Major),
            severity,
            affected_notebooks: vec![NOTEBOOK.into()],
        },
        Severity::Minor => Finding {
            kind: FindingKind::PackageAdded,
            subject: "tqdm".into(),
            before: None,
            after: Some("4.66.0".into()),
            distance: None,
            severity,
            affected_notebooks: vec![],
        },
        Severity::Info => Finding {
            kind: FindingKind::NotebookChanged,
            subject: "home/notes.ipynb".into(),
            before: Some("a".into()),
            after: Some("b".into()),
            distance: None,
            severity,
            affected_notebooks: vec!["home/notes.ipynb".into()],
        },
    };
    Alert::from_findings(
        EventId::new(),
        lab,
        EnvironmentId::new(),
        "demo",
        vec![finding],
        Utc::now(),
    )
    .with_link("https://westtek.example/labs/x/environments/y")
}

/// Millisecond retries; `attempts` tries of at most `timeout` each.
pub fn fast_policy(attempts: u32, timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        attempt_timeout: timeout,
    }
}

pub fn target(
    id: &str,
    url: &str,
    secret: &str,
    format: WebhookFormat,
    min: Severity,
) -> WebhookTarget {
    WebhookTarget {
        id: id.into(),
        url: url.into(),
        secret: secret.into(),
        format,
        min_severity: min,
    }
}

/// How a receiver answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// These statuses in order; the last one repeats.
    Statuses(Vec<u16>),
    /// Never answers.
    Hang,
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the signature verified with the receiver's secret.
    pub verified: bool,
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

struct ReceiverState {
    secret: String,
    behaviour: Behaviour,
    received: Mutex<Vec<Received>>,
    count: watch::Sender<usize>,
    answered: AtomicUsize,
}

/// A real HTTP server on 127.0.0.1:0 that verifies the West Tek signature
/// with its secret and records every request.
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn hook(State(s): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let get = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let verified = westtek_alerts::verify_signature(
        &s.secret,
        &get(TIMESTAMP_HEADER),
        &body,
        &get(SIGNATURE_HEADER),
    );
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.received.lock().unwrap().push(Received {
        headers: headers.clone(),
        body,
        verified,
        json,
    });
    s.count.send_modify(|c| *c += 1);
    let n = s.answered.fetch_add(1, Ordering::SeqCst);
    match &s.behaviour {
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Statuses(list) => {
            let code = list.get(n).or(list.last()).copied().unwrap_or(200);
            StatusCode::from_u16(code).unwrap()
        }
    }
}

impl Receiver {
    pub async fn start(secret: &str, behaviour: Behaviour) -> Receiver {
        let state = Arc::new(ReceiverState {
            secret: secret.into(),
            behaviour,
            received: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            answered: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state, server }
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits (up to [`SOON`]) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut rx = self.state.count.subscribe();
        tokio::time::timeout(SOON, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} got {} request(s), expected {n}",
                    self.url,
                    self.received().len()
                )
            })
            .unwrap();
        self.received()
    }
}

/// Dead letters kept in memory, with a way to wait for them.
#[derive(Default)]
pub struct MemorySink {
    letters: Mutex<Vec<DeadLetter>>,
    count: watch::Sender<usize>,
}

impl MemorySink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn letters(&self) -> Vec<DeadLetter> {
        self.letters.lock().unwrap().clone()
    }

    /// Waits up to `within` until at least `n` letters were recorded.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<DeadLetter> {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(within, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} dead letter(s), expected {n}: {:#?}",
                    self.letters().len(),
                    self.letters()
                )
            })
            .unwrap();
        self.letters()
    }
}

#[async_trait]
impl DeadLetterSink for MemorySink {
    async fn record(&self, letter: DeadLetter) -> Result<()> {
        self.letters.lock().unwrap().push(letter);
        self.count.send_modify(|c| *c += 1);
        Ok(())
    }
}

/// Targets fixed per lab.
#[derive(Default)]
pub struct StaticTargets {
    pub webhooks: HashMap<LabId, Vec<WebhookTarget>>,
    pub smtp: HashMap<LabId, SmtpConfig>,
}

#[async_trait]
impl TargetSource for StaticTargets {
    async fn webhooks_for(&self, lab: LabId) -> Result<Vec<WebhookTarget>> {
        Ok(self.webhooks.get(&lab).cloned().unwrap_or_default())
    }

    async fn smtp_for(&self, lab: LabId) -> Result<Option<SmtpConfig>> {
        Ok(self.smtp.get(&lab).cloned())
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
