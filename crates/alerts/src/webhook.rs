//! Webhooks: an alert POSTed as JSON to a lab's URL, signed so the receiver
//! can tell it came from West Tek.
//!
//! # Payloads
//!
//! - [`WebhookFormat::Generic`]: the [`Alert`] as JSON plus
//!   `"type": "drift.detected"`, `"version": 1` and a one-line `"summary"`.
//!   New fields may be added within a version; a changed meaning bumps it.
//! - [`WebhookFormat::Slack`]: `{"text": …, "blocks": […]}` for a Slack
//!   incoming webhook (header, findings, context, and a "Review" button when
//!   the alert has a portal link).
//!
//! # Signing
//!
//! Every request carries three headers:
//!
//! ```text
//! X-WestTek-Timestamp: 1717171717                 (unix seconds, per attempt)
//! X-WestTek-Event-Id:  0190f5c4-…                 (the same on every retry)
//! X-WestTek-Signature: sha256=<hex>
//! ```
//!
//! where `<hex>` is the lower-case hex HMAC-SHA256, keyed with the target's
//! secret, of `"<timestamp>.<raw body>"` (the timestamp header's text, a dot,
//! then the body bytes exactly as received, before any JSON parsing). A
//! receiver recomputes it and compares in constant time
//! ([`verify_signature`] does both), rejects timestamps more than a few
//! minutes from its clock (replay), and drops event ids it has already
//! processed (retries after a lost response deliver the same event again).
//!
//! # Delivery
//!
//! A 2xx answer is delivered. 408, 429, 5xx, timeouts and connection errors
//! are retried per the [`RetryPolicy`] (a `Retry-After: <seconds>` header is
//! honoured up to the policy's cap); every other status (other 4xx, and 3xx:
//! redirects are not followed, so a webhook cannot be bounced elsewhere) is
//! permanent. One shared [`reqwest::Client`] ([`http_client`]) serves all
//! targets.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use westtek_inventory::Severity;

use crate::alert::{describe, display_path, one_line, severity_label};
use crate::retry::{self, Outcome};
use crate::{Alert, Channel, DeadLetter, DeliveryReport, Error, Notifier, Result, RetryPolicy};

/// Header with the unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-WestTek-Timestamp";
/// Header with the drift event's id.
pub const EVENT_ID_HEADER: &str = "X-WestTek-Event-Id";
/// Header with `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-WestTek-Signature";
/// The generic payload's `type`.
pub const EVENT_TYPE: &str = "drift.detected";
/// The generic payload's `version`.
pub const PAYLOAD_VERSION: u32 = 1;

/// Findings listed in a Slack message before "and N more" (Slack allows
/// 3000 characters per section).
const SLACK_FINDINGS: usize = 10;
const SLACK_SECTION_MAX: usize = 2900;
const SLACK_HEADER_MAX: usize = 150;
/// How much of an error response's body goes into the dead letter.
const ERROR_BODY_MAX: usize = 256;

/// What a webhook target expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The alert as JSON with `type` and `version` (see the module docs).
    Generic,
    /// A Slack incoming-webhook message.
    Slack,
}

/// One webhook a lab configured.
#[derive(Clone, Debug)]
pub struct WebhookTarget {
    /// Stable id (the database row's); names the target in dead letters.
    pub id: String,
    /// Where to POST (`http` or `https`).
    pub url: String,
    /// The HMAC key; never logged.
    pub secret: SecretString,
    /// Payload shape.
    pub format: WebhookFormat,
    /// The least severe alert it wants: `Critical` for critical only,
    /// `Info` for everything.
    pub min_severity: Severity,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The [`SIGNATURE_HEADER`] value for `body` signed at `timestamp`:
/// `sha256=<hex>`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Whether `header` (the [`SIGNATURE_HEADER`] value) is the signature of
/// `body` at `timestamp` (the [`TIMESTAMP_HEADER`] value) under `secret`.
/// The comparison is constant-time. Checking the timestamp's age is the
/// receiver's business (see the module docs).
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&sig).is_ok()
}

/// The HTTP client to share between all webhook deliveries: rustls, no
/// redirects, a West Tek user agent. Timeouts are per attempt (the
/// [`RetryPolicy`]), not per client.
///
/// # Errors
/// [`Error::HttpClient`] when the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("WestTek-Alerts/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(Error::HttpClient)
}

/// The JSON body `alert` is sent as in `format`.
pub fn payload(alert: &Alert, format: WebhookFormat) -> Value {
    match format {
        WebhookFormat::Generic => generic_payload(alert),
        WebhookFormat::Slack => slack_payload(alert),
    }
}

fn generic_payload(alert: &Alert) -> Value {
    #[derive(Serialize)]
    struct Generic<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        version: u32,
        summary: String,
        #[serde(flatten)]
        alert: &'a Alert,
    }
    let body = Generic {
        kind: EVENT_TYPE,
        version: PAYLOAD_VERSION,
        summary: alert.summary(),
        alert,
    };
    // Serialising plain data with string keys cannot fail; fall back to the
    // essentials rather than panic if it ever did.
    serde_json::to_value(&body).unwrap_or_else(|_| {
        json!({
            "type": EVENT_TYPE,
            "version": PAYLOAD_VERSION,
            "summary": alert.summary(),
            "event_id": alert.event_id,
            "lab_id": alert.lab_id,
        })
    })
}

/// Slack's mrkdwn needs only `&`, `<` and `>` escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn slack_payload(alert: &Alert) -> Value {
    let icon = match alert.severity {
        Severity::Critical => "🔴",
        Severity::Minor => "🟡",
        Severity::Info => "🔵",
    };
    let mut lines = Vec::new();
    for f in alert.findings.iter().take(SLACK_FINDINGS) {
        let mut line = format!(
            "• *{}* {}",
            severity_label(f.severity),
            slack_escape(&describe(f))
        );
        if !f.affected_notebooks.is_empty() {
            let names: Vec<String> = f
                .affected_notebooks
                .iter()
                .map(|n| format!("`{}`", slack_escape(&one_line(display_path(n)))))
                .collect();
            line.push_str(&format!(" — affects {}", names.join(", ")));
        }
        lines.push(line);
    }
    if alert.findings.len() > SLACK_FINDINGS {
        lines.push(format!(
            "…and {} more",
            alert.findings.len() - SLACK_FINDINGS
        ));
    }
    if lines.is_empty() {
        lines.push("No changes.".into());
    }
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(&format!("{icon} {}", alert.title()), SLACK_HEADER_MAX),
                "emoji": true,
            }
        }),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&lines.join("\n"), SLACK_SECTION_MAX)}
        }),
        json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": format!(
                    "Environment *{}* · detected {} · event `{}`",
                    slack_escape(&one_line(&alert.environment_name)),
                    alert.occurred_at.format("%Y-%m-%d %H:%M UTC"),
                    alert.event_id,
                ),
            }]
        }),
    ];
    if let Some(link) = alert.link.as_deref().filter(|l| is_http_url(l)) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Review in West Tek"},
                "url": link,
            }]
        }));
    }
    json!({ "text": alert.summary(), "blocks": blocks })
}

fn is_http_url(s: &str) -> bool {
    Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Delivers alerts to one [`WebhookTarget`].
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    target: WebhookTarget,
    policy: RetryPolicy,
    cancel: CancellationToken,
}

impl WebhookNotifier {
    /// A notifier for `target` over the shared `client` ([`http_client`]).
    pub fn new(client: reqwest::Client, target: WebhookTarget, policy: RetryPolicy) -> Self {
        Self {
            client,
            target,
            policy,
            cancel: CancellationToken::new(),
        }
    }

    /// The same notifier, abandoning its delivery (as a dead letter) when
    /// `token` is cancelled.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The target it delivers to.
    pub fn target(&self) -> &WebhookTarget {
        &self.target
    }

    async fn attempt(&self, url: &Url, alert: &Alert, body: &[u8]) -> Outcome {
        let timestamp = Utc::now().timestamp().to_string();
        let signature = sign(self.target.secret.expose_secret(), &timestamp, body);
        let sent = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(EVENT_ID_HEADER, alert.event_id.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    return Outcome::Delivered {
                        status: Some(status.as_u16()),
                    };
                }
                let headers = resp.headers().clone();
                let text = error_body(resp).await;
                classify(status, &headers, &text)
            }
            Err(e) if e.is_builder() => Outcome::Permanent {
                error: format!("cannot build the request: {}", error_chain(&e)),
                status: None,
            },
            Err(e) => Outcome::Retry {
                error: error_chain(&e),
                status: None,
                retry_after: None,
            },
        }
    }

    fn dead_letter(
        &self,
        alert: &Alert,
        payload: Value,
        attempts: u32,
        error: String,
        status: Option<u16>,
    ) -> Error {
        Error::Undelivered(Box::new(DeadLetter {
            target_id: self.target.id.clone(),
            channel: Channel::Webhook,
            event_id: alert.event_id,
            lab_id: alert.lab_id,
            attempts,
            last_error: error,
            last_status: status,
            payload,
            at: Utc::now(),
        }))
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    #[tracing::instrument(skip_all, fields(target_id = %self.target.id, event_id = %alert.event_id))]
    async fn notify(&self, alert: &Alert) -> Result<DeliveryReport> {
        let payload = payload(alert, self.target.format);
        let url = match Url::parse(&self.target.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                let error = format!("unsupported URL scheme {:?}", u.scheme());
                return Err(self.dead_letter(alert, payload, 0, error, None));
            }
            Err(e) => {
                let error = format!("invalid URL: {e}");
                return Err(self.dead_letter(alert, payload, 0, error, None));
            }
        };
        let body = payload.to_string().into_bytes();
        let result = retry::run(&self.policy, &self.cancel, &self.target.id, |_| {
            self.attempt(&url, alert, &body)
        })
        .await;
        match result {
            Ok(done) => Ok(DeliveryReport {
                target_id: self.target.id.clone(),
                attempts: done.attempts,
                status: done.status,
            }),
            Err(f) => Err(self.dead_letter(alert, payload, f.attempts, f.error, f.status)),
        }
    }
}

/// What a non-2xx answer means for the next attempt.
fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> Outcome {
    let code = status.as_u16();
    let mut error = format!("HTTP {status}");
    if !body.is_empty() {
        error.push_str(&format!(": {body}"));
    }
    let transient = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    if transient {
        return Outcome::Retry {
            error,
            status: Some(code),
            retry_after: retry_after(headers),
        };
    }
    if status.is_redirection() {
        let to = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        error = format!("HTTP {status} to {to}: redirects are not followed");
    }
    Outcome::Permanent {
        error,
        status: Some(code),
    }
}

/// `Retry-After: <seconds>` (the HTTP-date form is ignored: backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The start of an error response's body, on one line, for the dead letter.
async fn error_body(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < ERROR_BODY_MAX {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    buf.truncate(ERROR_BODY_MAX);
    one_line(String::from_utf8_lossy(&buf).trim())
}

/// An error and its causes, "a: b: c" (reqwest's own message hides the
/// cause, such as "connection refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use westtek_domain::{EnvironmentId, EventId, LabId};
    use westtek_inventory::{Finding, FindingKind};

    fn alert() -> Alert {
        Alert::from_findings(
            EventId::new(),
            LabId::new(),
            EnvironmentId::new(),
            "demo",
            vec![Finding {
                kind: FindingKind::PackageRemoved,
                subject: "opencv-python".into(),
                before: Some("4.9".into()),
                after: None,
                distance: None,
                severity: Severity::Critical,
                affected_notebooks: vec!["home/<cv>.ipynb".into()],
            }],
            Utc::now(),
        )
        .with_link("https://westtek.example/e/1")
    }

    #[test]
    fn a_signature_verifies_with_its_secret_only() {
        let sig = sign("s3cret", "1700000000", b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert!(verify_signature("s3cret", "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify_signature("other", "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify_signature(
            "s3cret",
            "1700000001",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            b"{\"a\":2}",
            &sig
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            "sha256=zz"
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            &sig[7..]
        ));
    }

    #[test]
    fn the_signature_matches_a_known_vector() {
        // Python: hmac.new(b"key", b"1.body", hashlib.sha256).hexdigest()
        assert_eq!(
            sign("key", "1", b"body"),
            "sha256=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }

    #[test]
    fn the_generic_payload_is_the_alert_with_type_and_version() {
        let a = alert();
        let p = payload(&a, WebhookFormat::Generic);
        assert_eq!(p["type"], EVENT_TYPE);
        assert_eq!(p["version"], PAYLOAD_VERSION);
        assert_eq!(p["event_id"], a.event_id.to_string());
        assert_eq!(p["severity"], "CRITICAL");
        assert_eq!(p["findings"][0]["affected_notebooks"][0], "home/<cv>.ipynb");
        let back: Alert = serde_json::from_value(p).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn the_slack_payload_has_text_blocks_escaping_and_a_button() {
        let p = payload(&alert(), WebhookFormat::Slack);
        assert!(p["text"]
            .as_str()
            .unwrap()
            .starts_with("CRITICAL drift in 'demo'"));
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        let section = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(section.contains("`&lt;cv&gt;.ipynb`"), "{section}");
        assert_eq!(
            blocks.last().unwrap()["elements"][0]["url"],
            "https://westtek.example/e/1"
        );
    }

    #[test]
    fn statuses_are_classified_as_the_module_docs_say() {
        let none = HeaderMap::new();
        let retry = |s: u16| {
            matches!(
                classify(StatusCode::from_u16(s).unwrap(), &none, ""),
                Outcome::Retry { .. }
            )
        };
        assert!(retry(500) && retry(502) && retry(503) && retry(408) && retry(429));
        assert!(!retry(400) && !retry(401) && !retry(404) && !retry(410) && !retry(301));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        match classify(StatusCode::TOO_MANY_REQUESTS, &h, "slow down") {
            Outcome::Retry {
                retry_after, error, ..
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert!(error.contains("slow down"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_target_never_shows_its_secret_in_debug_output() {
        let t = WebhookTarget {
            id: "t".into(),
            url: "http://x".into(),
            secret: "hunter2".into(),
            format: WebhookFormat::Generic,
            min_severity: Severity::Critical,
        };
        assert!(!format!("{t:?}").contains("hunter2"));
    }
}
