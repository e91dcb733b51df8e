//! Drift alerts by Amazon SES (e-mail) and Amazon SNS (SMS) behind the
//! `Notifier` port of `westtek-alerts`.
//!
//! - [`SesNotifier`]: the alert e-mail the SMTP notifier sends (built by
//!   [`westtek_alerts::AlertEmail`]: same subject, body and Message-ID),
//!   handed to SES v2 `SendEmail` as raw MIME.
//! - [`SnsNotifier`]: the alert's one-line summary ([`sms_text`]) by SNS
//!   `Publish`, to a phone number or to a topic ([`SmsDestination`]).
//!
//! Both are [`westtek_alerts::RoutedChannel`]s: the [`westtek_alerts::AlertRouter`]
//! routes them by severity (critical only by default, the product seed's
//! "critical: also e-mail + SMS"), retries them with its
//! [`westtek_alerts::RetryPolicy`] and files what cannot be delivered as a
//! [`westtek_alerts::DeadLetter`] (channel `email` or `sms`), exactly as for
//! webhooks and SMTP. Platform-wide settings join a lab's own targets with
//! [`westtek_alerts::WithChannels`]:
//!
//! ```no_run
//! # async fn wire(targets: std::sync::Arc<dyn westtek_alerts::TargetSource>) -> westtek_alerts::Result<()> {
//! use std::sync::Arc;
//! use westtek_alerts::{RoutedChannel, WithChannels};
//! use westtek_alerts_aws::{SesConfig, SesNotifier, SnsNotifier};
//!
//! let sdk = westtek_aws::shared_config(1).await;
//! let mut channels: Vec<Arc<dyn RoutedChannel>> = vec![Arc::new(SesNotifier::with_config(
//!     &sdk,
//!     SesConfig::new("West Tek <alerts@lab.example>", vec!["ops@lab.example".into()]),
//! )?)];
//! for sms in SnsNotifier::for_destinations(&sdk, &["arn:aws:sns:eu-west-1:123456789012:westtek-alerts"])? {
//!     channels.push(Arc::new(sms));
//! }
//! let targets = Arc::new(WithChannels::new(targets, channels));
//! # let _ = targets; Ok(()) }
//! ```
//!
//! # Resources (what the CDK app creates; [`provision_ses`] and
//! [`provision_sns`] for dev and tests)
//!
//! | resource | shape | the notifier's setting |
//! |---|---|---|
//! | SES identity | the sender's address or (better) domain, verified (DKIM); out of the SES sandbox in production | [`SesConfig::from`] |
//! | SES configuration set (optional) | event destinations for bounces and complaints | [`SesConfig::configuration_set`] |
//! | SNS topic | standard (not FIFO) topic, e.g. `westtek-alerts`, with `sms` subscriptions (E.164 numbers) and any others | [`SmsDestination::Topic`] |
//! | — | or a phone number published to directly | [`SmsDestination::Phone`] |
//!
//! IAM: `ses:SendEmail` + `ses:SendRawEmail` on the identity (and the
//! configuration set); `sns:Publish` on the topic (or `*` for direct SMS).
//!
//! # Policy
//!
//! The SDK's own retries are turned off in these clients: the router's
//! policy decides, so a dead letter's attempt count is the real one.
//! Throttling, 5xx, timeouts and connection failures are retried; a
//! refusal by the service is permanent and its dead letter
//! carries the service's code and message plus how to fix the usual
//! causes. Delivery is at-least-once, like every other channel.

mod provision;
mod sdk;
mod ses;
mod sns;

pub use provision::{provision_ses, provision_sns};
pub use ses::{SesConfig, SesNotifier, SES_TARGET_ID};
pub use sns::{sms_text, SmsDestination, SnsConfig, SnsNotifier, SMS_MAX_CHARS};
