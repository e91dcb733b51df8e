//! Email: the alert as a plain-text message to a lab's recipients over SMTP
//! (`lettre`, rustls for TLS).
//!
//! Subject "[West Tek] CRITICAL drift in demo"; the body is
//! [`Alert::text_body`]: the summary, every finding with the notebooks it
//! affects, the portal link and the ids. Retries follow the same
//! [`RetryPolicy`] as webhooks: an SMTP 5xx reply is permanent, anything else
//! (4xx, connection, TLS, timeout) is retried. A configuration that cannot
//! work (an unparsable address, a TLS host name that is not a DNS name) is
//! refused by [`SmtpNotifier::new`].
//!
//! The message itself — headers, subject, body, Message-ID — is built by
//! [`AlertEmail`], which every e-mail channel shares: the SMTP notifier here
//! and the SES notifier of `westtek-alerts-aws` (which hands SES the very
//! same MIME message), so an alert reads the same whichever way it went.

use std::fmt;

use async_trait::async_trait;
use chrono::Utc;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::alert::one_line;
use crate::retry::{self, Outcome};
use crate::webhook::error_chain;
use crate::{Alert, Channel, DeadLetter, DeliveryReport, Error, Notifier, Result, RetryPolicy};

/// The id email deliveries carry in [`DeliveryReport`]s and dead letters.
pub const EMAIL_TARGET_ID: &str = "email";

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text (a relay on localhost or a trusted network only).
    None,
    /// Plain connection upgraded with STARTTLS, which is then required
    /// (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Where and how to send a lab's alert email.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// The SMTP server's host name (the TLS certificate must match it).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// User name for SMTP AUTH, when the server wants it.
    pub username: Option<String>,
    /// Password for SMTP AUTH; never logged.
    pub password: Option<SecretString>,
    /// Sender, `alerts@lab.example` or `West Tek <alerts@lab.example>`.
    pub from: String,
    /// Recipients, in the same forms.
    pub to: Vec<String>,
}

/// An alert e-mail's sender and recipients, and the message built for an
/// alert: the one definition of what alert e-mail looks like, shared by
/// every e-mail channel (SMTP here, SES in `westtek-alerts-aws`).
///
/// Subject "[West Tek] CRITICAL drift in demo", a `text/plain` body
/// ([`Alert::text_body`]), and one Message-ID per drift event
/// (`<drift-<event id>@<sender's domain>>`), the same on every retry, so a
/// message the server took but whose reply was lost is recognisably a
/// duplicate.
#[derive(Clone, Debug)]
pub struct AlertEmail {
    from: Mailbox,
    to: Vec<Mailbox>,
}

fn mailbox(field: &str, s: &str) -> Result<Mailbox> {
    s.trim()
        .parse()
        .map_err(|e| Error::Config(format!("e-mail {field} address {s:?} is invalid: {e}")))
}

impl AlertEmail {
    /// The sender `from` and the recipients `to`, each `alerts@lab.example`
    /// or `West Tek <alerts@lab.example>`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the address that does not parse, or saying
    /// there is no recipient.
    pub fn new(from: &str, to: &[String]) -> Result<Self> {
        let from = mailbox("from", from)?;
        let to = to
            .iter()
            .map(|t| mailbox("to", t))
            .collect::<Result<Vec<_>>>()?;
        if to.is_empty() {
            return Err(Error::Config("alert e-mail has no recipient".into()));
        }
        Ok(Self { from, to })
    }

    /// The subject line: "[West Tek] CRITICAL drift in demo".
    pub fn subject(alert: &Alert) -> String {
        format!("[West Tek] {}", alert.title())
    }

    /// The sender as given (`West Tek <alerts@lab.example>`).
    pub fn from(&self) -> String {
        self.from.to_string()
    }

    /// The recipients' bare addresses (the envelope's `RCPT TO`).
    pub fn recipients(&self) -> Vec<String> {
        self.to.iter().map(|m| m.email.to_string()).collect()
    }

    /// The Message-ID of `alert`'s e-mail: `<drift-<event id>@<domain>>`.
    pub fn message_id(&self, alert: &Alert) -> String {
        format!("<drift-{}@{}>", alert.event_id, self.from.email.domain())
    }

    pub(crate) fn message(&self, alert: &Alert) -> Result<Message, String> {
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(Self::subject(alert))
            .message_id(Some(self.message_id(alert)))
            .user_agent(concat!("WestTek-Alerts/", env!("CARGO_PKG_VERSION")).to_string())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            b = b.to(to.clone());
        }
        b.body(alert.text_body())
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    /// `alert`'s e-mail as an RFC 5322 message (the bytes an SMTP server
    /// receives after `DATA`, or SES's raw content).
    ///
    /// # Errors
    /// The message cannot be built (it always can from a parsed sender and
    /// recipients; the error says why if not).
    pub fn formatted(&self, alert: &Alert) -> Result<Vec<u8>, String> {
        self.message(alert).map(|m| m.formatted())
    }

    /// The dead letter of `alert`'s e-mail given up on after `attempts`
    /// (`target_id`: [`EMAIL_TARGET_ID`] for SMTP, the channel's own id
    /// otherwise). Its payload is `{"to", "subject", "body"}`.
    pub fn dead_letter(
        &self,
        target_id: &str,
        alert: &Alert,
        attempts: u32,
        error: &str,
        status: Option<u16>,
    ) -> DeadLetter {
        let to: Vec<String> = self.to.iter().map(ToString::to_string).collect();
        DeadLetter {
            target_id: target_id.into(),
            channel: Channel::Email,
            event_id: alert.event_id,
            lab_id: alert.lab_id,
            attempts,
            last_error: one_line(error),
            last_status: status,
            payload: json!({
                "to": to,
                "subject": Self::subject(alert),
                "body": alert.text_body(),
            }),
            at: Utc::now(),
        }
    }
}

/// Delivers alerts by email to one [`SmtpConfig`]'s recipients.
#[derive(Clone)]
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    email: AlertEmail,
    server: String,
    policy: RetryPolicy,
    cancel: CancellationToken,
}

impl fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("server", &self.server)
            .field("from", &self.email.from())
            .field("to", &self.email.to.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// A notifier for `config`, retrying per `policy` (each attempt, the
    /// whole SMTP dialogue, is bounded by its `attempt_timeout`).
    ///
    /// # Errors
    /// [`Error::Config`] when an address does not parse, there is no
    /// recipient, a password comes without a user name, or a TLS host is not
    /// a valid name.
    pub fn new(config: SmtpConfig, policy: RetryPolicy) -> Result<Self> {
        let email = AlertEmail::new(&config.from, &config.to)?;
        let tls_error = |e: lettre::transport::smtp::Error| {
            Error::Config(format!("SMTP host {:?}: {e}", config.host))
        };
        let builder = match config.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                .map_err(tls_error)?,
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).map_err(tls_error)?
            }
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(policy.attempt_timeout));
        match (&config.username, &config.password) {
            (Some(user), password) => {
                let password = password
                    .as_ref()
                    .map(|p| p.expose_secret().to_string())
                    .unwrap_or_default();
                builder = builder.credentials(Credentials::new(user.clone(), password));
            }
            (None, Some(_)) => {
                return Err(Error::Config(
                    "SMTP password given without a user name".into(),
                ))
            }
            (None, None) => {}
        }
        Ok(Self {
            transport: builder.build(),
            email,
            server: format!("{}:{}", config.host, config.port),
            policy,
            cancel: CancellationToken::new(),
        })
    }

    /// The same notifier, abandoning its delivery (as a dead letter) when
    /// `token` is cancelled.
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The subject line: "[West Tek] CRITICAL drift in demo" (see
    /// [`AlertEmail::subject`]).
    pub fn subject(alert: &Alert) -> String {
        AlertEmail::subject(alert)
    }

    fn dead_letter(
        &self,
        alert: &Alert,
        attempts: u32,
        error: String,
        status: Option<u16>,
    ) -> Error {
        Error::Undelivered(Box::new(self.email.dead_letter(
            EMAIL_TARGET_ID,
            alert,
            attempts,
            &error,
            status,
        )))
    }

    async fn attempt(&self, message: &Message) -> Outcome {
        match self.transport.send(message.clone()).await {
            Ok(resp) => Outcome::Delivered {
                status: Some(u16::from(resp.code())),
            },
            Err(e) => {
                let status = e.status().map(u16::from);
                let error = format!("SMTP {}: {}", self.server, error_chain(&e));
                if e.is_permanent() || e.is_client() {
                    Outcome::Permanent { error, status }
                } else {
                    Outcome::Retry {
                        error,
                        status,
                        retry_after: None,
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    #[tracing::instrument(skip_all, fields(server = %self.server, event_id = %alert.event_id))]
    async fn notify(&self, alert: &Alert) -> Result<DeliveryReport> {
        let message = match self.email.message(alert) {
            Ok(m) => m,
            Err(error) => return Err(self.dead_letter(alert, 0, error, None)),
        };
        let result = retry::run(&self.policy, &self.cancel, EMAIL_TARGET_ID, |_| {
            self.attempt(&message)
        })
        .await;
        match result {
            Ok(done) => Ok(DeliveryReport {
                target_id: EMAIL_TARGET_ID.into(),
                attempts: done.attempts,
                status: done.status,
            }),
            Err(f) => Err(self.dead_letter(alert, f.attempts, f.error, f.status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "localhost".into(),
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "West Tek <alerts@westtek.example>".into(),
            to: vec!["ops@lab.example".into()],
        }
    }

    #[test]
    fn a_valid_configuration_builds_a_notifier() {
        SmtpNotifier::new(config(), RetryPolicy::default()).unwrap();
        let tls = SmtpConfig {
            tls: SmtpTls::StartTls,
            username: Some("u".into()),
            password: Some("p".into()),
            ..config()
        };
        SmtpNotifier::new(tls, RetryPolicy::default()).unwrap();
    }

    #[test]
    fn an_unparsable_address_is_a_configuration_error_naming_it() {
        let bad = SmtpConfig {
            to: vec!["not an address".into()],
            ..config()
        };
        let e = SmtpNotifier::new(bad, RetryPolicy::default()).unwrap_err();
        assert!(e.to_string().contains("not an address"), "{e}");
        let none = SmtpConfig {
            to: vec![],
            ..config()
        };
        assert!(SmtpNotifier::new(none, RetryPolicy::default()).is_err());
        let orphan = SmtpConfig {
            password: Some("p".into()),
            ..config()
        };
        assert!(SmtpNotifier::new(orphan, RetryPolicy::default()).is_err());
    }

    #[test]
    fn the_debug_output_never_shows_the_password() {
        let c = SmtpConfig {
            username: Some("u".into()),
            password: Some("hunter2".into()),
            ..config()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let n = SmtpNotifier::new(c, RetryPolicy::default()).unwrap();
        assert!(!format!("{n:?}").contains("hunter2"));
    }
}
