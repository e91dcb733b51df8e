//! Severity routing: which alert goes where, delivered off the caller's path.
//!
//! Policy (the product seed, issue 5):
//! - every alert is logged (`tracing`: `warn` for critical, `info` otherwise);
//!   the dashboard is fed elsewhere, over SSE;
//! - a webhook target gets every alert its `min_severity` admits — so by
//!   default (critical) only critical ones, and all of them when it asks for
//!   `Info`;
//! - email goes out for **critical** alerts only, when the lab has SMTP;
//! - every other channel the lab has ([`TargetSource::channels_for`]: SES
//!   e-mail, SNS SMS) gets what its [`RoutedChannel::min_severity`] admits
//!   (the adapters default to critical: e-mail and SMS for critical drift,
//!   as the product seed says), retried with the same policy and
//!   dead-lettered the same way as webhooks and SMTP.
//!
//! [`AlertRouter::dispatch`] never waits: it puts the alert on a bounded
//! queue and returns. When the queue is full (or the router is closed) the
//! alert becomes a dead letter (`queue full` / `router closed`) instead of
//! slowing detection down. A worker task takes alerts off the queue, up to
//! [`RouterConfig::max_in_flight`] at a time, and delivers each to all of
//! its targets concurrently, each target with its own retries; whatever
//! fails lands in the [`DeadLetterSink`].
//!
//! Shutdown: [`AlertRouter::close`] stops taking alerts, lets queued and
//! in-flight deliveries finish within a grace period, then abandons the rest
//! (each becomes a dead letter). Dropping every handle without closing
//! lets the worker finish what was queued in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::future::join_all;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use westtek_domain::LabId;
use westtek_inventory::Severity;

use crate::alert::admits;
use crate::email::EMAIL_TARGET_ID;
use crate::{
    Alert, Channel, DeadLetter, DeadLetterSink, Error, Notifier, Result, RetryPolicy, SmtpConfig,
    SmtpNotifier, WebhookNotifier, WebhookTarget,
};

/// The id router-level dead letters carry.
pub const ROUTER_TARGET_ID: &str = "router";

/// How long abandoned deliveries get to file their dead letters at shutdown.
const ABANDON_GRACE: Duration = Duration::from_secs(5);

/// Where a lab's alerts go (the lead backs it with the database).
#[async_trait]
pub trait TargetSource: Send + Sync {
    /// The lab's webhook targets (all of them; the router filters by
    /// severity).
    ///
    /// # Errors
    /// When they cannot be read; the alert is then dead-lettered for the
    /// webhooks (see [`Error::backend`]).
    async fn webhooks_for(&self, lab: LabId) -> Result<Vec<WebhookTarget>>;

    /// The lab's SMTP settings, `None` when it has no email alerts.
    ///
    /// # Errors
    /// When they cannot be read; the alert is then dead-lettered for email.
    async fn smtp_for(&self, lab: LabId) -> Result<Option<SmtpConfig>>;

    /// The lab's other channels (SES e-mail, SNS SMS, …); none by default.
    /// The router filters them by their [`RoutedChannel::min_severity`].
    ///
    /// # Errors
    /// When they cannot be read; the alert is then dead-lettered (channel
    /// [`Channel::Router`]).
    async fn channels_for(&self, lab: LabId) -> Result<Vec<Arc<dyn RoutedChannel>>> {
        let _ = lab;
        Ok(Vec::new())
    }
}

/// A delivery channel from another crate (Amazon SES e-mail and Amazon SNS
/// SMS in `westtek-alerts-aws`), routed, retried and dead-lettered like
/// webhooks and SMTP.
pub trait RoutedChannel: Send + Sync {
    /// Names the channel in delivery reports and dead letters (`ses`,
    /// `sms:+15555550100`, `sns:arn:aws:sns:…`).
    fn target_id(&self) -> String;

    /// Which way it delivers (the dead letters' [`Channel`]).
    fn channel(&self) -> Channel;

    /// The least severe alert it wants.
    fn min_severity(&self) -> Severity;

    /// A notifier for one delivery, retrying per `retry` (the router's
    /// policy) and abandoning (as a dead letter) when `cancel` fires.
    fn notifier(&self, retry: RetryPolicy, cancel: CancellationToken) -> Box<dyn Notifier>;
}

/// A [`TargetSource`] with fixed channels added for every lab: how
/// platform-wide SES/SNS settings join the lab's own targets.
pub struct WithChannels {
    targets: Arc<dyn TargetSource>,
    channels: Vec<Arc<dyn RoutedChannel>>,
}

impl WithChannels {
    /// `targets` plus `channels` for every lab.
    pub fn new(targets: Arc<dyn TargetSource>, channels: Vec<Arc<dyn RoutedChannel>>) -> Self {
        Self { targets, channels }
    }
}

#[async_trait]
impl TargetSource for WithChannels {
    async fn webhooks_for(&self, lab: LabId) -> Result<Vec<WebhookTarget>> {
        self.targets.webhooks_for(lab).await
    }

    async fn smtp_for(&self, lab: LabId) -> Result<Option<SmtpConfig>> {
        self.targets.smtp_for(lab).await
    }

    async fn channels_for(&self, lab: LabId) -> Result<Vec<Arc<dyn RoutedChannel>>> {
        let mut all = self.targets.channels_for(lab).await?;
        all.extend(self.channels.iter().cloned());
        Ok(all)
    }
}

/// The router's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Alerts waiting for delivery before [`AlertRouter::dispatch`]
    /// dead-letters new ones. Default 256.
    pub queue_capacity: usize,
    /// Alerts being delivered at once (each to all its targets). Default 16.
    pub max_in_flight: usize,
    /// Retries of every webhook and email delivery.
    pub retry: RetryPolicy,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_in_flight: 16,
            retry: RetryPolicy::default(),
        }
    }
}

/// What [`AlertRouter::dispatch`] did with an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Queued for delivery.
    Queued,
    /// The queue was full: dead-lettered as `queue full`.
    QueueFull,
    /// The router was closed: dead-lettered as `router closed`.
    Closed,
}

/// How [`AlertRouter::close`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// Every queued and in-flight delivery finished within the grace period.
    Drained,
    /// Some were still running and were abandoned (and dead-lettered).
    Abandoned,
}

/// Routes alerts by severity to logs, webhooks and email, in the
/// background. Cheap to clone; all clones share one queue and worker.
#[derive(Clone)]
pub struct AlertRouter {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Alert>,
    stop: CancellationToken,
    abandon: CancellationToken,
    tracker: TaskTracker,
    worker: Mutex<Option<JoinHandle<()>>>,
    sink: Arc<dyn DeadLetterSink>,
    runtime: tokio::runtime::Handle,
}

/// What every delivery task needs.
#[derive(Clone)]
struct Ctx {
    client: reqwest::Client,
    targets: Arc<dyn TargetSource>,
    sink: Arc<dyn DeadLetterSink>,
    retry: RetryPolicy,
    abandon: CancellationToken,
}

impl AlertRouter {
    /// Starts the router's worker on the current Tokio runtime. `client` is
    /// the shared HTTP client ([`crate::http_client`]).
    ///
    /// # Errors
    /// [`Error::Runtime`] when called outside a Tokio runtime.
    pub fn start(
        config: RouterConfig,
        client: reqwest::Client,
        targets: Arc<dyn TargetSource>,
        dead_letters: Arc<dyn DeadLetterSink>,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::Runtime(format!("AlertRouter::start needs a Tokio runtime: {e}"))
        })?;
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stop = CancellationToken::new();
        let abandon = CancellationToken::new();
        let tracker = TaskTracker::new();
        let ctx = Ctx {
            client,
            targets,
            sink: dead_letters.clone(),
            retry: config.retry,
            abandon: abandon.clone(),
        };
        let worker = runtime.spawn(work(
            rx,
            ctx,
            stop.clone(),
            tracker.clone(),
            config.max_in_flight.max(1),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                stop,
                abandon,
                tracker,
                worker: Mutex::new(Some(worker)),
                sink: dead_letters,
                runtime,
            }),
        })
    }

    /// Queues `alert` for delivery and returns at once. A full queue or a
    /// closed router dead-letters the alert (in the background) instead.
    pub fn dispatch(&self, alert: Alert) -> Dispatch {
        let (alert, outcome, reason) = match self.inner.tx.try_send(alert) {
            Ok(()) => return Dispatch::Queued,
            Err(TrySendError::Full(a)) => (a, Dispatch::QueueFull, "queue full"),
            Err(TrySendError::Closed(a)) => (a, Dispatch::Closed, "router closed"),
        };
        tracing::warn!(
            event_id = %alert.event_id,
            lab_id = %alert.lab_id,
            reason,
            "drift alert not queued"
        );
        let letter = router_letter(&alert, reason.to_string());
        let sink = self.inner.sink.clone();
        self.inner
            .tracker
            .spawn_on(record(sink, letter), &self.inner.runtime);
        outcome
    }

    /// Stops taking alerts (later ones are dead-lettered as `router closed`),
    /// waits up to `grace` for queued and in-flight deliveries, then
    /// abandons what is left: each abandoned delivery files a dead letter
    /// (given a few more seconds to do so). Calling it again waits again.
    pub async fn close(&self, grace: Duration) -> Shutdown {
        self.inner.stop.cancel();
        let worker = match self.inner.worker.lock() {
            Ok(mut w) => w.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let tracker = self.inner.tracker.clone();
        let drained = tokio::time::timeout(grace, async {
            if let Some(w) = worker {
                let _ = w.await;
            }
            tracker.close();
            tracker.wait().await;
        })
        .await
        .is_ok();
        if drained {
            return Shutdown::Drained;
        }
        self.inner.tracker.close();
        self.inner.abandon.cancel();
        if tokio::time::timeout(ABANDON_GRACE, self.inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::error!("alert deliveries still running after being abandoned");
        }
        Shutdown::Abandoned
    }
}

/// The worker: takes alerts off the queue and starts their deliveries, at
/// most `max_in_flight` at once; on stop, starts what is still queued and
/// ends.
async fn work(
    mut rx: mpsc::Receiver<Alert>,
    ctx: Ctx,
    stop: CancellationToken,
    tracker: TaskTracker,
    max_in_flight: usize,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    loop {
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let alert = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            a = rx.recv() => match a {
                Some(a) => a,
                None => break,
            },
        };
        tracker.spawn(deliver(ctx.clone(), alert, Some(permit)));
    }
    rx.close();
    while let Ok(alert) = rx.try_recv() {
        tracker.spawn(deliver(ctx.clone(), alert, None));
    }
}

fn log_alert(alert: &Alert) {
    let summary = alert.summary();
    if alert.severity == Severity::Critical {
        tracing::warn!(
            event_id = %alert.event_id,
            lab_id = %alert.lab_id,
            environment_id = %alert.environment_id,
            severity = "CRITICAL",
            "drift alert: {summary}"
        );
    } else {
        tracing::info!(
            event_id = %alert.event_id,
            lab_id = %alert.lab_id,
            environment_id = %alert.environment_id,
            severity = crate::alert::severity_label(alert.severity),
            "drift alert: {summary}"
        );
    }
}

/// Delivers one alert to every target its severity reaches, concurrently.
async fn deliver(ctx: Ctx, alert: Alert, _slot: Option<OwnedSemaphorePermit>) {
    log_alert(&alert);
    let lookup = ctx.retry.attempt_timeout;
    let webhooks = match tokio::time::timeout(lookup, ctx.targets.webhooks_for(alert.lab_id)).await
    {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => {
            let why = format!("webhook targets could not be read: {e}");
            record(ctx.sink.clone(), router_letter(&alert, why)).await;
            Vec::new()
        }
        Err(_) => {
            let why = "webhook targets could not be read: timed out".to_string();
            record(ctx.sink.clone(), router_letter(&alert, why)).await;
            Vec::new()
        }
    };
    let mut notifiers: Vec<Box<dyn Notifier>> = webhooks
        .into_iter()
        .filter(|t| admits(t.min_severity, alert.severity))
        .map(|t| {
            Box::new(
                WebhookNotifier::new(ctx.client.clone(), t, ctx.retry)
                    .with_cancellation(ctx.abandon.clone()),
            ) as Box<dyn Notifier>
        })
        .collect();
    if alert.severity == Severity::Critical {
        let smtp = match tokio::time::timeout(lookup, ctx.targets.smtp_for(alert.lab_id)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let why = format!("SMTP settings could not be read: {e}");
                record(ctx.sink.clone(), email_letter(&alert, why)).await;
                None
            }
            Err(_) => {
                let why = "SMTP settings could not be read: timed out".to_string();
                record(ctx.sink.clone(), email_letter(&alert, why)).await;
                None
            }
        };
        if let Some(config) = smtp {
            match SmtpNotifier::new(config, ctx.retry) {
                Ok(n) => notifiers.push(Box::new(n.with_cancellation(ctx.abandon.clone()))),
                Err(e) => record(ctx.sink.clone(), email_letter(&alert, e.to_string())).await,
            }
        }
    }
    let channels = match tokio::time::timeout(lookup, ctx.targets.channels_for(alert.lab_id)).await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let why = format!("alert channels could not be read: {e}");
            record(ctx.sink.clone(), router_letter(&alert, why)).await;
            Vec::new()
        }
        Err(_) => {
            let why = "alert channels could not be read: timed out".to_string();
            record(ctx.sink.clone(), router_letter(&alert, why)).await;
            Vec::new()
        }
    };
    notifiers.extend(
        channels
            .iter()
            .filter(|c| admits(c.min_severity(), alert.severity))
            .map(|c| c.notifier(ctx.retry, ctx.abandon.clone())),
    );
    let alert = &alert;
    join_all(notifiers.iter().map(|n| {
        let sink = ctx.sink.clone();
        async move {
            match n.notify(alert).await {
                Ok(report) => tracing::info!(
                    event_id = %alert.event_id,
                    target_id = %report.target_id,
                    attempts = report.attempts,
                    "drift alert delivered"
                ),
                Err(Error::Undelivered(letter)) => record(sink, *letter).await,
                Err(other) => record(sink, router_letter(alert, other.to_string())).await,
            }
        }
    }))
    .await;
}

fn router_letter(alert: &Alert, reason: String) -> DeadLetter {
    DeadLetter {
        target_id: ROUTER_TARGET_ID.into(),
        channel: Channel::Router,
        event_id: alert.event_id,
        lab_id: alert.lab_id,
        attempts: 0,
        last_error: reason,
        last_status: None,
        payload: serde_json::to_value(alert).unwrap_or_default(),
        at: Utc::now(),
    }
}

fn email_letter(alert: &Alert, reason: String) -> DeadLetter {
    DeadLetter {
        target_id: EMAIL_TARGET_ID.into(),
        channel: Channel::Email,
        ..router_letter(alert, reason)
    }
}

/// Hands `letter` to the sink; a sink that fails gets the letter logged in
/// full so it is not lost.
async fn record(sink: Arc<dyn DeadLetterSink>, letter: DeadLetter) {
    tracing::warn!(
        event_id = %letter.event_id,
        target_id = %letter.target_id,
        attempts = letter.attempts,
        last_error = %letter.last_error,
        "drift alert dead-lettered"
    );
    let json = serde_json::to_string(&letter).unwrap_or_default();
    if let Err(e) = sink.record(letter).await {
        tracing::error!(error = %e, letter = %json, "dead letter could not be stored");
    }
}
