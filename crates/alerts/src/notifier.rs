//! The delivery port: [`Notifier`] delivers one [`Alert`] to one target;
//! what could not be delivered becomes a [`DeadLetter`] for a
//! [`DeadLetterSink`].
//!
//! Policy: a notifier retries on its own ([`crate::RetryPolicy`]) and
//! returns only when the alert was delivered or given up on. Giving up is
//! [`crate::Error::Undelivered`] with the dead letter inside; the caller (the
//! [`crate::AlertRouter`]) hands it to the sink, so a notifier never needs
//! the database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use westtek_domain::{EventId, LabId};

use crate::{Alert, Result};

/// How one alert reached one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Which target: a webhook target's id, `email`, or a
    /// [`crate::RoutedChannel`]'s id.
    pub target_id: String,
    /// How many attempts it took (1 when the first succeeded).
    pub attempts: u32,
    /// The HTTP status (webhooks) or SMTP reply code (email) of the
    /// successful attempt, when there was one.
    pub status: Option<u16>,
}

/// Delivers alerts to one target.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers `alert`, retrying per the notifier's policy.
    ///
    /// # Errors
    /// [`crate::Error::Undelivered`] carrying the [`DeadLetter`] when every
    /// attempt failed, a failure was permanent, or the delivery was abandoned
    /// at shutdown. The caller records it in a [`DeadLetterSink`].
    async fn notify(&self, alert: &Alert) -> Result<DeliveryReport>;
}

/// Which way a dead letter was to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A webhook target.
    Webhook,
    /// Email to the lab's recipients (SMTP or Amazon SES).
    Email,
    /// A text message (Amazon SNS: a phone number or a topic).
    Sms,
    /// Never left the router: its queue was full, it was closed, or the
    /// lab's targets could not be looked up.
    Router,
}

/// An alert that could not be delivered to one target, with enough to
/// diagnose and replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The webhook target's id, `email`, `router` (see [`Channel`]), or
    /// the id of a [`crate::RoutedChannel`] (`ses`, `sms:+15555550100`, …).
    pub target_id: String,
    /// Which way it was to go.
    pub channel: Channel,
    /// The drift event's id.
    pub event_id: EventId,
    /// The lab the alert belongs to.
    pub lab_id: LabId,
    /// Attempts made (0 when none could be: queue full, invalid address).
    pub attempts: u32,
    /// Why the last attempt failed, in words.
    pub last_error: String,
    /// The last HTTP status or SMTP reply code, when the target answered.
    pub last_status: Option<u16>,
    /// What was to be sent: the exact webhook JSON; `{"to", "subject",
    /// "body"}` for email; `{"to", "message"}` for SMS; the alert itself
    /// when nothing was built (every
    /// [`Channel::Router`] letter, and email whose settings were unusable).
    pub payload: serde_json::Value,
    /// When it was given up on.
    pub at: DateTime<Utc>,
}

/// Where dead letters go (the lead's database table; a log; a test's
/// memory).
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Stores one dead letter.
    ///
    /// # Errors
    /// When it cannot be stored; the router then logs the letter in full
    /// (see [`crate::Error::backend`]).
    async fn record(&self, letter: DeadLetter) -> Result<()>;
}
