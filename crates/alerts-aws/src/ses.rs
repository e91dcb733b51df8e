//! E-mail by Amazon SES: the alert e-mail the SMTP notifier sends, handed to
//! SES v2 `SendEmail` as raw content.
//!
//! The message is built by [`westtek_alerts::AlertEmail`] — the same
//! subject, `text/plain` body, sender, recipients and per-event Message-ID
//! as SMTP delivery — and sent as a raw MIME message, so an alert reads the
//! same whichever way it went. The envelope's recipients are given
//! explicitly (`Destination.ToAddresses`).
//!
//! Retries follow the router's [`RetryPolicy`] (the `sdk` module says what
//! is retried); an SES refusal (`MessageRejected` for an unverified sender,
//! a paused account, a denied permission) is permanent and ends in a dead
//! letter carrying SES's own message.

use std::fmt;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use aws_sdk_sesv2::Client;
use westtek_alerts::retry::{self, Outcome};
use westtek_alerts::{
    Alert, AlertEmail, CancellationToken, Channel, DeliveryReport, Error, Notifier, Result,
    RetryPolicy, RoutedChannel, Severity,
};

/// The id SES deliveries carry in reports and dead letters.
pub const SES_TARGET_ID: &str = "ses";

/// Where and to whom SES sends alert e-mail.
#[derive(Clone, Debug)]
pub struct SesConfig {
    /// The sender, `alerts@lab.example` or `West Tek <alerts@lab.example>`;
    /// its address or domain must be a verified SES identity.
    pub from: String,
    /// The recipients (in the SES sandbox, each must be verified too).
    pub to: Vec<String>,
    /// An SES configuration set (event publishing, dedicated IPs), if any.
    pub configuration_set: Option<String>,
    /// The least severe alert e-mailed; the seed's policy is critical only.
    pub min_severity: Severity,
}

impl SesConfig {
    /// Critical alerts from `from` to `to`, no configuration set.
    pub fn new(from: impl Into<String>, to: Vec<String>) -> Self {
        Self {
            from: from.into(),
            to,
            configuration_set: None,
            min_severity: Severity::Critical,
        }
    }
}

/// Delivers alerts by e-mail through Amazon SES. Cheap to clone (the SDK
/// client is shared).
#[derive(Clone)]
pub struct SesNotifier {
    client: Client,
    email: AlertEmail,
    configuration_set: Option<String>,
    min_severity: Severity,
    policy: RetryPolicy,
    cancel: CancellationToken,
}

impl fmt::Debug for SesNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SesNotifier")
            .field("from", &self.email.from())
            .field("to", &self.email.recipients().len())
            .field("configuration_set", &self.configuration_set)
            .field("min_severity", &self.min_severity)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SesNotifier {
    /// A notifier on the shared SDK configuration `sdk` (region,
    /// credentials, endpoint), with the default [`RetryPolicy`]. The SDK's
    /// own retries are turned off: the policy's are the only ones.
    ///
    /// # Errors
    /// [`Error::Config`] when the sender or a recipient does not parse, or
    /// there is no recipient.
    pub fn with_config(sdk: &SdkConfig, config: SesConfig) -> Result<Self> {
        let email = AlertEmail::new(&config.from, &config.to)
            .map_err(|e| Error::Config(format!("SES alert e-mail: {e}")))?;
        let client = Client::from_conf(
            aws_sdk_sesv2::config::Builder::from(sdk)
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        Ok(Self {
            client,
            email,
            configuration_set: config.configuration_set,
            min_severity: config.min_severity,
            policy: RetryPolicy::default(),
            cancel: CancellationToken::new(),
        })
    }

    /// A notifier from the standard AWS environment (credentials chain,
    /// `AWS_REGION`, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SESV2`).
    ///
    /// # Errors
    /// As [`SesNotifier::with_config`].
    pub async fn from_env(config: SesConfig) -> Result<Self> {
        Self::with_config(&westtek_aws::shared_config(1).await, config)
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

    async fn attempt(&self, raw: &[u8]) -> Outcome {
        let content = match RawMessage::builder().data(Blob::new(raw)).build() {
            Ok(r) => EmailContent::builder().raw(r).build(),
            Err(e) => {
                return Outcome::Permanent {
                    error: format!("SES SendEmail: the raw message could not be built: {e}"),
                    status: None,
                }
            }
        };
        let sent = self
            .client
            .send_email()
            .from_email_address(self.email.from())
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(self.email.recipients()))
                    .build(),
            )
            .content(content)
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await;
        match sent {
            Ok(out) => {
                tracing::debug!(message_id = ?out.message_id(), "SES accepted the alert e-mail");
                Outcome::Delivered { status: Some(200) }
            }
            Err(e) => crate::sdk::outcome("SES SendEmail", &e, ses_hint),
        }
    }
}

/// Advice for SES's refusals.
fn ses_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "MessageRejected" | "MailFromDomainNotVerifiedException" => {
            "verify the sender's address or domain as an SES identity (the CDK app, or \
             westtek_alerts_aws::provision_ses for dev); in the SES sandbox verify every \
             recipient too, or request production access"
        }
        "SendingPausedException" | "AccountSuspendedException" => {
            "sending is paused for this account or configuration set; see the SES console's \
             reputation dashboard"
        }
        "AccessDeniedException" | "AccessDenied" => {
            "this identity needs ses:SendEmail (and ses:SendRawEmail) on the sender's identity"
        }
        "NotFoundException" => "check the SES configuration set's name",
        _ => return None,
    })
}

#[async_trait]
impl Notifier for SesNotifier {
    #[tracing::instrument(skip_all, fields(channel = SES_TARGET_ID, event_id = %alert.event_id))]
    async fn notify(&self, alert: &Alert) -> Result<DeliveryReport> {
        let undelivered = |attempts: u32, error: &str, status: Option<u16>| {
            Error::Undelivered(Box::new(self.email.dead_letter(
                SES_TARGET_ID,
                alert,
                attempts,
                error,
                status,
            )))
        };
        let raw = match self.email.formatted(alert) {
            Ok(r) => r,
            Err(error) => return Err(undelivered(0, &error, None)),
        };
        let result = retry::run(&self.policy, &self.cancel, SES_TARGET_ID, |_| {
            self.attempt(&raw)
        })
        .await;
        match result {
            Ok(done) => Ok(DeliveryReport {
                target_id: SES_TARGET_ID.into(),
                attempts: done.attempts,
                status: done.status,
            }),
            Err(f) => Err(undelivered(f.attempts, &f.error, f.status)),
        }
    }
}

impl RoutedChannel for SesNotifier {
    fn target_id(&self) -> String {
        SES_TARGET_ID.into()
    }

    fn channel(&self) -> Channel {
        Channel::Email
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

    fn sdk() -> SdkConfig {
        westtek_aws::config_for_endpoint("http://127.0.0.1:9", "k", "s")
    }

    #[test]
    fn an_unparsable_sender_or_no_recipient_is_a_configuration_error() {
        let e = SesNotifier::with_config(
            &sdk(),
            SesConfig::new("not an address", vec!["ops@lab.example".into()]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not an address"), "{e}");
        let e = SesNotifier::with_config(&sdk(), SesConfig::new("alerts@lab.example", vec![]))
            .unwrap_err();
        assert!(e.to_string().contains("no recipient"), "{e}");
    }

    #[test]
    fn ses_e_mail_is_for_critical_alerts_unless_configured_otherwise() {
        let n = SesNotifier::with_config(
            &sdk(),
            SesConfig::new("alerts@lab.example", vec!["ops@lab.example".into()]),
        )
        .unwrap();
        assert_eq!(RoutedChannel::min_severity(&n), Severity::Critical);
        assert_eq!(RoutedChannel::channel(&n), Channel::Email);
        assert_eq!(RoutedChannel::target_id(&n), "ses");
    }
}
