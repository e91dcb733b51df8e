//! Drift alert delivery (issue 5, item 4): who hears about drift, and how.
//!
//! - [`Alert`] is one drift event in deliverable form, with a plain-language
//!   [`Alert::summary`] and [`Alert::text_body`].
//! - [`Notifier`] is the port: deliver one alert to one target, retrying per
//!   a [`RetryPolicy`]. Two adapters: [`WebhookNotifier`] (signed JSON, generic
//!   or Slack; the signing scheme is documented in [`webhook`]) and
//!   [`SmtpNotifier`] (plain-text email, built by [`AlertEmail`]). Channels
//!   from other crates (SES e-mail and SNS SMS in `westtek-alerts-aws`) plug
//!   into the router as [`RoutedChannel`]s.
//! - What cannot be delivered becomes a [`DeadLetter`] for a
//!   [`DeadLetterSink`] (the database, in the platform).
//! - [`AlertRouter`] routes by severity — every alert is logged, webhooks get
//!   what their `min_severity` admits, email goes out for critical alerts,
//!   other channels get what their own minimum severity admits —
//!   on a bounded queue and a background worker, so detection never waits
//!   for delivery. A [`TargetSource`] says where each lab's alerts go.
//!
//! Policy: delivery is at-least-once (a retry after a lost response repeats
//! an event; receivers drop duplicates by event id), nothing undelivered is
//! dropped silently, and secrets never reach logs or `Debug` output.

mod alert;
pub mod email;
mod error;
mod notifier;
pub mod retry;
mod router;
pub mod webhook;

pub use alert::{admits, describe, Alert};
pub use email::{AlertEmail, SmtpConfig, SmtpNotifier, SmtpTls, EMAIL_TARGET_ID};
pub use error::{Error, Result};
pub use notifier::{Channel, DeadLetter, DeadLetterSink, DeliveryReport, Notifier};
pub use retry::RetryPolicy;
pub use router::{
    AlertRouter, Dispatch, RoutedChannel, RouterConfig, Shutdown, TargetSource, WithChannels,
    ROUTER_TARGET_ID,
};
pub use webhook::{
    http_client, payload, sign, verify_signature, WebhookFormat, WebhookNotifier, WebhookTarget,
    EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

pub use tokio_util::sync::CancellationToken;
pub use westtek_inventory::{DriftStatus, Finding, FindingKind, Severity};
