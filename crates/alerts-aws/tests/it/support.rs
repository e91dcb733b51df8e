//! Shared fixtures: alerts, fast retry policies, moto's record of what was
//! sent, an in-memory dead-letter sink, a router over fixed channels, and a
//! small MIME reader.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::Utc;
use serde_json::Value;
use tokio::sync::watch;
use westtek_alerts::{
    http_client, Alert, AlertRouter, DeadLetter, DeadLetterSink, Finding, FindingKind, Result,
    RetryPolicy, RoutedChannel, RouterConfig, Severity, SmtpConfig, TargetSource, WebhookTarget,
    WithChannels,
};
use westtek_aws::testing::Moto;
use westtek_domain::{EnvironmentId, EventId, LabId};

/// Generous bound for things that should take milliseconds.
pub const SOON: Duration = Duration::from_secs(20);

/// A moto server of this test's own (started off the async threads).
pub async fn moto() -> Moto {
    tokio::task::spawn_blocking(Moto::start).await.unwrap()
}

/// A drift alert of `severity` in environment "demo" of `lab`.
pub fn alert(lab: LabId, severity: Severity) -> Alert {
    let finding = match severity {
        Severity::Critical => Finding {
            kind: FindingKind::PackageUpgraded,
            subject: "numpy".into(),
            before: Some("1.26.4".into()),
            after: Some("2.1.0".into()),
            distance: None,
            severity,
            affected_notebooks: vec!["home/analysis.ipynb".into()],
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

/// A lab with neither webhooks nor SMTP.
pub struct NoTargets;

#[async_trait]
impl TargetSource for NoTargets {
    async fn webhooks_for(&self, _lab: LabId) -> Result<Vec<WebhookTarget>> {
        Ok(Vec::new())
    }

    async fn smtp_for(&self, _lab: LabId) -> Result<Option<SmtpConfig>> {
        Ok(None)
    }
}

/// A router whose only targets are `channels`, retrying `attempts` times.
pub fn router(
    channels: Vec<Arc<dyn RoutedChannel>>,
    sink: Arc<MemorySink>,
    attempts: u32,
) -> AlertRouter {
    AlertRouter::start(
        RouterConfig {
            retry: fast_policy(attempts, Duration::from_secs(10)),
            ..RouterConfig::default()
        },
        http_client().unwrap(),
        Arc::new(WithChannels::new(Arc::new(NoTargets), channels)),
        sink,
    )
    .unwrap()
}

/// Moto's state: every model instance of every service, by service and
/// class name.
pub async fn moto_state(moto: &Moto) -> Value {
    let url = format!("{}/moto-api/data.json", moto.endpoint());
    let resp = reqwest::get(&url).await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.unwrap()
}

/// The instances of `service`'s model `class` moto holds (empty when none).
pub async fn recorded(moto: &Moto, service: &str, class: &str) -> Vec<Value> {
    moto_state(moto).await[service][class]
        .as_array()
        .cloned()
        .unwrap_or_default()
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

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// An e-mail message: unfolded headers and the decoded text body.
#[derive(Debug)]
pub struct Mail {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Mail {
    pub fn parse(raw: &str) -> Mail {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = headers.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut mail = Mail {
            headers,
            body: String::new(),
        };
        let encoding = mail
            .header("content-transfer-encoding")
            .to_ascii_lowercase();
        mail.body = match encoding.as_str() {
            "quoted-printable" => quoted_printable(body),
            "base64" => {
                let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap();
                String::from_utf8(bytes).unwrap()
            }
            _ => body.to_string(),
        };
        mail
    }

    /// The first header of that name ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
