//! Text messages by Amazon SNS: the alert's one-line summary, published to
//! a phone number or to a topic.
//!
//! Two kinds of [`SmsDestination`]:
//! - a phone number in E.164 (`+15555550100`): `Publish` with
//!   `PhoneNumber`, the direct way (in the SMS sandbox, only verified
//!   numbers receive);
//! - a topic ARN: `Publish` with `TopicArn`; the topic's `sms`
//!   subscriptions (managed by the CDK app or [`crate::provision_sns`]) get
//!   the text, and whoever else subscribes (e-mail, a chat bridge) too.
//!   This is the production choice: who is paged changes without a
//!   restart.
//!
//! One notifier per destination, so a failing number never repeats a
//! message to one that succeeded. Messages are marked `Transactional`
//! (`AWS.SNS.SMS.SMSType`: delivered with the higher reliability alerts
//! need). The text is [`sms_text`]: "[West Tek] " and [`Alert::summary`],
//! with "->" for arrows (so it fits GSM-7), cut to [`SMS_MAX_CHARS`], then
//! the portal link.
//!
//! Retries follow the router's [`RetryPolicy`] (the `sdk` module says what is retried); a
//! refusal (`NotFound` topic, `InvalidParameter` number, `AuthorizationError`)
//! is permanent and ends in a dead letter with SNS's own message.

use std::fmt;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;
use chrono::Utc;
use serde_json::json;
use westtek_alerts::retry::{self, Outcome};
use westtek_alerts::{
    Alert, CancellationToken, Channel, DeadLetter, DeliveryReport, Error, Notifier, Result,
    RetryPolicy, RoutedChannel, Severity,
};

use crate::sdk::one_line;

/// The longest summary sent, in characters, before the link (two GSM-7
/// segments of a concatenated SMS).
pub const SMS_MAX_CHARS: usize = 300;

/// Where an SMS alert goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SmsDestination {
    /// A phone number in E.164 form (`+` and up to 15 digits).
    Phone(String),
    /// An SNS topic's ARN.
    Topic(String),
}

impl SmsDestination {
    /// `+15555550100` → a phone; `arn:aws:sns:…` (any partition) → a topic.
    ///
    /// # Errors
    /// [`Error::Config`] for anything else, saying what is expected.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(digits) = s.strip_prefix('+') {
            let ok = (2..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            return if ok {
                Ok(Self::Phone(s.to_owned()))
            } else {
                Err(Error::Config(format!(
                    "SMS destination {s:?} is not an E.164 phone number (+ and 2 to 15 digits, e.g. +15555550100)"
                )))
            };
        }
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "sns"
            && parts.iter().skip(3).all(|p| !p.is_empty())
        {
            return Ok(Self::Topic(s.to_owned()));
        }
        Err(Error::Config(format!(
            "SMS destination {s:?} is neither an E.164 phone number (+15555550100) nor an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
        )))
    }

    /// `sms:+15555550100` or `sns:<topic arn>`: the id in reports and dead
    /// letters.
    pub fn target_id(&self) -> String {
        match self {
            Self::Phone(p) => format!("sms:{p}"),
            Self::Topic(t) => format!("sns:{t}"),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Phone(s) | Self::Topic(s) => s,
        }
    }
}

/// Where and how SNS sends alert texts.
#[derive(Clone, Debug)]
pub struct SnsConfig {
    /// The phone number or topic.
    pub destination: SmsDestination,
    /// An SMS sender id (`AWS.SNS.SMS.SenderID`, up to 11 letters and
    /// digits), where the destination country supports one.
    pub sender_id: Option<String>,
    /// The least severe alert texted; the seed's policy is critical only.
    pub min_severity: Severity,
}

impl SnsConfig {
    /// Critical alerts to `destination`, no sender id.
    pub fn new(destination: SmsDestination) -> Self {
        Self {
            destination,
            sender_id: None,
            min_severity: Severity::Critical,
        }
    }
}

/// The text of `alert`'s SMS: "[West Tek] CRITICAL drift in 'demo': numpy
/// upgraded 1.26.4 -> 2.1.0 (major); affects analysis.ipynb", cut to
/// [`SMS_MAX_CHARS`] with "…", then " Review: <link>" when the alert has one.
pub fn sms_text(alert: &Alert) -> String {
    let summary = format!("[West Tek] {}", alert.summary()).replace('→', "->");
    let mut text: String = if summary.chars().count() > SMS_MAX_CHARS {
        let mut cut: String = summary.chars().take(SMS_MAX_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        summary
    };
    if let Some(link) = &alert.link {
        text.push_str(" Review: ");
        text.push_str(&one_line(link));
    }
    one_line(&text)
}

/// Delivers alerts by text message through Amazon SNS to one destination.
/// Cheap to clone (the SDK client is shared).
#[derive(Clone)]
pub struct SnsNotifier {
    client: Client,
    destination: SmsDestination,
    sender_id: Option<String>,
    min_severity: Severity,
    policy: RetryPolicy,
    cancel: CancellationToken,
}

impl fmt::Debug for SnsNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsNotifier")
            .field("destination", &self.destination)
            .field("min_severity", &self.min_severity)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SnsNotifier {
    /// A notifier on the shared SDK configuration `sdk`, with the default
    /// [`RetryPolicy`]. The SDK's own retries are turned off: the policy's
    /// are the only ones.
    ///
    /// # Errors
    /// [`Error::Config`] when the sender id is not 1 to 11 letters and
    /// digits (with at least one letter).
    pub fn with_config(sdk: &SdkConfig, config: SnsConfig) -> Result<Self> {
        if let Some(id) = &config.sender_id {
            let ok = (1..=11).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric())
                && id.bytes().any(|b| b.is_ascii_alphabetic());
            if !ok {
                return Err(Error::Config(format!(
                    "SMS sender id {id:?} must be 1 to 11 letters and digits, at least one a letter"
                )));
            }
        }
        let client = Client::from_conf(
            aws_sdk_sns::config::Builder::from(sdk)
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        Ok(Self {
            client,
            destination: config.destination,
            sender_id: config.sender_id,
            min_severity: config.min_severity,
            policy: RetryPolicy::default(),
            cancel: CancellationToken::new(),
        })
    }

    /// A notifier from the standard AWS environment (credentials chain,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SNS`).
    ///
    /// # Errors
    /// As [`SnsNotifier::with_config`].
    pub async fn from_env(config: SnsConfig) -> Result<Self> {
        Self::with_config(&westtek_aws::shared_config(1).await, config)
    }

    /// One notifier per destination (`+15555550100` or a topic ARN), all
    /// for critical alerts: what a comma-separated setting becomes.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first destination that does not parse.
    pub fn for_destinations<S: AsRef<str>>(
        sdk: &SdkConfig,
        destinations: &[S],
    ) -> Result<Vec<Self>> {
        destinations
            .iter()
            .map(|d| {
                let destination = SmsDestination::parse(d.as_ref())?;
                Self::with_config(sdk, SnsConfig::new(destination))
            })
            .collect()
    }

    /// The same notifier retrying per `policy`.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same notifier, abandoning its delivery (as a dead letter) when
    /// `token` is cancelled.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Where it delivers.
    pub fn destination(&self) -> &SmsDestination {
        &self.destination
    }

    fn attribute(value: &str) -> Option<MessageAttributeValue> {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .ok()
    }

    async fn attempt(&self, text: &str) -> Outcome {
        let mut req = self.client.publish().message(text);
        req = match &self.destination {
            SmsDestination::Phone(p) => req.phone_number(p),
            SmsDestination::Topic(t) => req.topic_arn(t),
        };
        if let Some(v) = Self::attribute("Transactional") {
            req = req.message_attributes("AWS.SNS.SMS.SMSType", v);
        }
        if let Some(v) = self.sender_id.as_deref().and_then(Self::attribute) {
            req = req.message_attributes("AWS.SNS.SMS.SenderID", v);
        }
        match req.send().await {
            Ok(out) => {
                tracing::debug!(message_id = ?out.message_id(), "SNS accepted the alert text");
                Outcome::Delivered { status: Some(200) }
            }
            Err(e) => crate::sdk::outcome("SNS Publish", &e, sns_hint),
        }
    }

    fn dead_letter(
        &self,
        alert: &Alert,
        text: &str,
        attempts: u32,
        error: &str,
        status: Option<u16>,
    ) -> Error {
        Error::Undelivered(Box::new(DeadLetter {
            target_id: self.destination.target_id(),
            channel: Channel::Sms,
            event_id: alert.event_id,
            lab_id: alert.lab_id,
            attempts,
            last_error: one_line(error),
            last_status: status,
            payload: json!({ "to": self.destination.as_str(), "message": text }),
            at: Utc::now(),
        }))
    }
}

/// Advice for SNS's refusals.
fn sns_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "NotFound" => {
            "the topic does not exist in this account and region: check the configured ARN \
             (the CDK app's output, or westtek_alerts_aws::provision_sns for dev)"
        }
        "AuthorizationError" => "this identity needs sns:Publish on the topic (or on SMS)",
        "InvalidParameter" | "InvalidParameterValue" => {
            "check the phone number (E.164) and the SMS attributes"
        }
        "OptedOut" => "the phone number has opted out of SMS from this account",
        _ => return None,
    })
}

#[async_trait]
impl Notifier for SnsNotifier {
    #[tracing::instrument(skip_all, fields(target_id = %self.destination.target_id(), event_id = %alert.event_id))]
    async fn notify(&self, alert: &Alert) -> Result<DeliveryReport> {
        let text = sms_text(alert);
        let target_id = self.destination.target_id();
        let result = retry::run(&self.policy, &self.cancel, &target_id, |_| {
            self.attempt(&text)
        })
        .await;
        match result {
            Ok(done) => Ok(DeliveryReport {
                target_id,
                attempts: done.attempts,
                status: done.status,
            }),
            Err(f) => Err(self.dead_letter(alert, &text, f.attempts, &f.error, f.status)),
        }
    }
}

impl RoutedChannel for SnsNotifier {
    fn target_id(&self) -> String {
        self.destination.target_id()
    }

    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn min_severity(&self) -> Severity {
        self.min_severity
    }

    fn notifier(&self, retry: RetryPolicy, cancel: CancellationToken) -> Box<dyn Notifier> {
        Box::new(self.clone().with_policy(retry).with_cancellation(cancel))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use westtek_alerts::{Finding, FindingKind};
    use westtek_domain::{EnvironmentId, EventId, LabId};

    fn alert(name: &str, notebooks: usize) -> Alert {
        Alert::from_findings(
            EventId::new(),
            LabId::new(),
            EnvironmentId::new(),
            name,
            vec![Finding {
                kind: FindingKind::PackageUpgraded,
                subject: "numpy".into(),
                before: Some("1.26.4".into()),
                after: Some("2.1.0".into()),
                distance: None,
                severity: Severity::Critical,
                affected_notebooks: (0..notebooks).map(|i| format!("home/n{i}.ipynb")).collect(),
            }],
            Utc::now(),
        )
    }

    #[test]
    fn the_text_is_the_summary_in_gsm_friendly_words_with_the_link() {
        let a = alert("demo", 1).with_link("https://westtek.example/e/1");
        assert_eq!(
            sms_text(&a),
            "[West Tek] CRITICAL drift in 'demo': numpy upgraded 1.26.4 -> 2.1.0; affects n0.ipynb Review: https://westtek.example/e/1"
        );
    }

    #[test]
    fn a_long_summary_is_cut_but_the_link_is_kept_whole() {
        let a = alert(&"x".repeat(1000), 2).with_link("https://westtek.example/e/1");
        let text = sms_text(&a);
        let (summary, link) = text.split_once(" Review: ").unwrap();
        assert_eq!(summary.chars().count(), SMS_MAX_CHARS);
        assert!(summary.ends_with('…'));
        assert_eq!(link, "https://westtek.example/e/1");
        let a = alert("demo\nline two", 1);
        assert!(!sms_text(&a).contains('\n'));
    }

    #[test]
    fn destinations_are_phone_numbers_or_topic_arns() {
        assert_eq!(
            SmsDestination::parse(" +15555550100 ").unwrap(),
            SmsDestination::Phone("+15555550100".into())
        );
        let arn = "arn:aws:sns:eu-west-1:123456789012:westtek-alerts";
        assert_eq!(
            SmsDestination::parse(arn).unwrap(),
            SmsDestination::Topic(arn.into())
        );
        assert_eq!(
            SmsDestination::parse(arn).unwrap().target_id(),
            format!("sns:{arn}")
        );
        for bad in [
            "15555550100",
            "+",
            "+0555",
            "+1555555010012345",
            "+1-555-555",
            "arn:aws:sqs:eu-west-1:1:q",
            "arn:aws:sns:eu-west-1::t",
            "",
        ] {
            let e = SmsDestination::parse(bad).unwrap_err();
            assert!(e.to_string().contains("E.164"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_sender_id_must_be_short_and_alphanumeric() {
        let sdk = westtek_aws::config_for_endpoint("http://127.0.0.1:9", "k", "s");
        let phone = SmsDestination::Phone("+15555550100".into());
        let with = |id: &str| SnsConfig {
            sender_id: Some(id.into()),
            ..SnsConfig::new(phone.clone())
        };
        assert!(SnsNotifier::with_config(&sdk, with("WestTek")).is_ok());
        for bad in ["", "WestTekAlerts1", "West Tek", "12345"] {
            assert!(SnsNotifier::with_config(&sdk, with(bad)).is_err(), "{bad}");
        }
    }
}
