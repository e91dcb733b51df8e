//! [`EventBridgeBus`]: publishing through a coalescing `PutEvents` task,
//! subscribing by long-polling a group's SQS queue (see the crate docs for
//! the policy).

use crate::errors::{self, REJECTED};
use crate::provision::{self, ProvisionSettings};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, Message, QueueAttributeName};
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use westtek_domain::ports::{Ack, Delivery, EventBus, EventStream};
use westtek_domain::{DomainError, DomainEvent, Result};

/// Entries in one `PutEvents` call (EventBridge's limit).
pub const MAX_BATCH_ENTRIES: usize = 10;
/// EventBridge's limit on one entry and on one `PutEvents` call: 256 KiB.
const PUT_EVENTS_MAX_BYTES: usize = 256 * 1024;
/// The largest event entry accepted: 256 KiB less 1 KiB kept for the
/// envelope (id, account, region, time, …) that the SQS message carries
/// around `detail`, so a delivered event still fits SQS's 256 KiB message.
pub const MAX_EVENT_BYTES: usize = PUT_EVENTS_MAX_BYTES - 1024;
/// What EventBridge counts for an entry's `Time`.
const TIME_BYTES: usize = 14;
/// `PutEvents` calls in flight at once per bus.
const PUT_CONCURRENCY: usize = 4;
/// Publishes waiting for the publishing task.
const PUBLISH_QUEUE: usize = 1024;
/// Longest pause between failed receives.
const RECEIVE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Settings of an [`EventBridgeBus`]; start from [`BusConfig::new`].
#[derive(Clone, Debug)]
pub struct BusConfig {
    /// The EventBridge bus events are published to: its name or ARN
    /// (`WESTTEK_EVENT_BUS`).
    pub bus: String,
    /// The `Source` of every entry; each group's rule matches it. Default
    /// `westtek`.
    pub source: String,
    /// Consumer group → URL of its SQS queue (`WESTTEK_BUS_QUEUES`, see
    /// [`parse_queue_map`]). Only processes that subscribe need entries.
    pub queues: HashMap<String, String>,
    /// How long one `ReceiveMessage` waits for a message (long polling;
    /// whole seconds, at most 20). A message arriving ends the wait at once.
    /// Default 20 s.
    pub wait_time: Duration,
    /// Messages fetched per `ReceiveMessage`, 1–10. Default 10.
    pub max_messages: i32,
    /// Visibility timeout asked for on each receive (whole seconds); `None`
    /// keeps the queue's own (60 s as provisioned). Default `None`.
    pub visibility_timeout: Option<Duration>,
    /// Tries of an entry EventBridge reported failed for a transient reason.
    /// Default 5.
    pub publish_attempts: u32,
    /// First pause before sending failed entries again; doubles up to
    /// `retry_max`. Default 100 ms.
    pub retry_min: Duration,
    /// Longest pause between tries. Default 5 s.
    pub retry_max: Duration,
}

impl BusConfig {
    /// Defaults for bus `bus` (name or ARN) with no consumer groups.
    pub fn new(bus: impl Into<String>) -> Self {
        BusConfig {
            bus: bus.into(),
            source: "westtek".into(),
            queues: HashMap::new(),
            wait_time: Duration::from_secs(20),
            max_messages: 10,
            visibility_timeout: None,
            publish_attempts: 5,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }

    /// The same settings with consumer group → queue URL `queues`.
    #[must_use]
    pub fn with_queues(mut self, queues: HashMap<String, String>) -> Self {
        self.queues = queues;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.bus.is_empty() {
            return Err(DomainError::invalid(
                "event_bus",
                "the EventBridge bus name or ARN must not be empty (WESTTEK_EVENT_BUS)",
            ));
        }
        if self.source.is_empty() {
            return Err(DomainError::invalid("source", "must not be empty"));
        }
        if !(1..=10).contains(&self.max_messages) {
            return Err(DomainError::invalid(
                "max_messages",
                format!("must be 1 to 10 (SQS's limit), not {}", self.max_messages),
            ));
        }
        if self.wait_time > Duration::from_secs(20) {
            return Err(DomainError::invalid(
                "wait_time",
                "SQS long polling waits at most 20 s",
            ));
        }
        if self.publish_attempts == 0 {
            return Err(DomainError::invalid(
                "publish_attempts",
                "must be at least 1",
            ));
        }
        for (group, url) in &self.queues {
            if group.is_empty() || url.is_empty() {
                return Err(DomainError::invalid(
                    "queues",
                    format!("group `{group}` → `{url}`: neither may be empty"),
                ));
            }
        }
        Ok(())
    }
}

/// Parses consumer group → queue URL pairs written `group=url`, separated
/// by commas or whitespace (the form of `WESTTEK_BUS_QUEUES`), e.g.
/// `drift=https://sqs.eu-west-1.amazonaws.com/1111/westtek-drift`.
///
/// # Errors
/// `Validation` on field `queues` for a pair without `=`, an empty group or
/// URL, or a group given twice.
pub fn parse_queue_map(text: &str) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for pair in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let Some((group, url)) = pair.split_once('=') else {
            return Err(DomainError::invalid(
                "queues",
                format!("`{pair}` is not group=queue-url"),
            ));
        };
        if group.is_empty() || url.is_empty() {
            return Err(DomainError::invalid(
                "queues",
                format!("`{pair}`: the group and the queue URL must not be empty"),
            ));
        }
        if map.insert(group.to_string(), url.to_string()).is_some() {
            return Err(DomainError::invalid(
                "queues",
                format!("group `{group}` is given twice"),
            ));
        }
    }
    Ok(map)
}

/// The event bus on EventBridge with one SQS queue per consumer group.
///
/// Cheap to clone; clones share the clients, the queue map and the
/// publishing task.
#[derive(Clone)]
pub struct EventBridgeBus {
    inner: Arc<Inner>,
}

struct Inner {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    config: BusConfig,
    queues: RwLock<HashMap<String, String>>,
    /// Set by [`EventBridgeBus::with_auto_provision`] (dev and tests).
    auto_provision: Option<ProvisionSettings>,
    /// Serialises auto-provisioning, so one group is created once.
    provisioning: tokio::sync::Mutex<()>,
    /// The publishing task's queue; started on the first publish and again
    /// if the runtime it ran on went away.
    publisher: Mutex<Option<mpsc::Sender<Pending>>>,
}

impl fmt::Debug for EventBridgeBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBridgeBus")
            .field("config", &self.inner.config)
            .field("auto_provision", &self.inner.auto_provision.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventBridgeBus {
    /// Clients from the standard AWS environment (credentials chain,
    /// region, `AWS_ENDPOINT_URL`), see [`westtek_aws::shared_config`].
    ///
    /// # Errors
    /// `Validation` for invalid settings (empty bus, `max_messages` out of
    /// 1–10, an empty group or URL).
    pub async fn from_env(config: BusConfig) -> Result<Self> {
        let sdk = westtek_aws::shared_config(5).await;
        Self::with_config(&sdk, config)
    }

    /// Clients from an SDK configuration the caller made (moto, tests).
    ///
    /// # Errors
    /// As [`EventBridgeBus::from_env`].
    pub fn with_config(sdk: &SdkConfig, config: BusConfig) -> Result<Self> {
        Self::with_clients(
            aws_sdk_eventbridge::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            config,
        )
    }

    /// Over clients the caller made (e.g. the SDK's mock clients).
    ///
    /// # Errors
    /// As [`EventBridgeBus::from_env`].
    pub fn with_clients(
        events: aws_sdk_eventbridge::Client,
        sqs: aws_sdk_sqs::Client,
        config: BusConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(EventBridgeBus {
            inner: Arc::new(Inner {
                events,
                sqs,
                queues: RwLock::new(config.queues.clone()),
                config,
                auto_provision: None,
                provisioning: tokio::sync::Mutex::new(()),
                publisher: Mutex::new(None),
            }),
        })
    }

    /// For dev and tests: a group with no configured queue gets one on its
    /// first `subscribe`, with its DLQ, rule and target (the resources
    /// [`crate::provision()`] makes for a group; the bus too if it is
    /// missing), so it sees the events published from then on. Call before
    /// cloning the bus (clones made earlier keep failing on unknown groups).
    /// The rules match the bus's [`BusConfig::source`], whatever
    /// `settings.source` says.
    #[must_use]
    pub fn with_auto_provision(self, mut settings: ProvisionSettings) -> Self {
        let inner = &self.inner;
        settings.source.clone_from(&inner.config.source);
        let queues = inner
            .queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        EventBridgeBus {
            inner: Arc::new(Inner {
                events: inner.events.clone(),
                sqs: inner.sqs.clone(),
                config: inner.config.clone(),
                queues: RwLock::new(queues),
                auto_provision: Some(settings),
                provisioning: tokio::sync::Mutex::new(()),
                publisher: Mutex::new(None),
            }),
        }
    }

    /// The settings the bus was made with.
    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    /// Publishes `events` and returns once EventBridge accepted all of them
    /// (in `PutEvents` calls of up to 10 entries, coalesced with concurrent
    /// publishes).
    ///
    /// # Errors
    /// As [`EventBus::publish`], for the first event that failed; the others
    /// may have been published.
    pub async fn publish_all(&self, events: &[DomainEvent]) -> Result<()> {
        let mut waiting = Vec::with_capacity(events.len());
        for event in events {
            waiting.push(self.enqueue(event).await?);
        }
        for done in waiting {
            done.await.map_err(|_| publisher_gone())??;
        }
        Ok(())
    }

    /// The entry of `event` and its size as EventBridge counts it.
    fn entry(&self, event: &DomainEvent) -> Result<(PutEventsRequestEntry, usize)> {
        if event.event_type.is_empty() {
            return Err(DomainError::invalid(
                "event",
                format!(
                    "event {} has an empty type (EventBridge's DetailType)",
                    event.id
                ),
            ));
        }
        let detail = serde_json::to_string(event).map_err(DomainError::internal)?;
        let config = &self.inner.config;
        let size = TIME_BYTES + config.source.len() + event.event_type.len() + detail.len();
        if size > MAX_EVENT_BYTES {
            return Err(DomainError::invalid(
                "event",
                format!(
                    "event {} ({}) is {size} bytes as an EventBridge entry, over the {MAX_EVENT_BYTES}-byte limit \
                     (EventBridge's 256 KiB less 1 KiB for the envelope SQS delivers); \
                     put large data in a store and publish a reference to it",
                    event.id, event.event_type
                ),
            ));
        }
        let time = AwsDateTime::from_secs_and_nanos(
            event.time.timestamp(),
            event.time.timestamp_subsec_nanos(),
        );
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&config.bus)
            .source(&config.source)
            .detail_type(&event.event_type)
            .detail(detail)
            .time(time)
            .build();
        Ok((entry, size))
    }

    /// Hands `event` to the publishing task; the receiver answers once
    /// EventBridge accepted or refused it.
    async fn enqueue(&self, event: &DomainEvent) -> Result<oneshot::Receiver<Result<()>>> {
        let (entry, size) = self.entry(event)?;
        let (done, answer) = oneshot::channel();
        let mut pending = Pending {
            event_id: event.id.to_string(),
            entry,
            size,
            done,
        };
        // A second try covers a task that ended with the runtime it ran on.
        for _ in 0..2 {
            let sender = self.publisher();
            match sender.send(pending).await {
                Ok(()) => return Ok(answer),
                Err(mpsc::error::SendError(back)) => {
                    pending = back;
                    let mut slot = lock(&self.inner.publisher);
                    if slot.as_ref().is_some_and(|s| s.same_channel(&sender)) {
                        *slot = None;
                    }
                }
            }
        }
        Err(publisher_gone())
    }

    /// The publishing task's queue, starting the task if needed.
    fn publisher(&self) -> mpsc::Sender<Pending> {
        let mut slot = lock(&self.inner.publisher);
        if let Some(sender) = slot.as_ref().filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        let (sender, receiver) = mpsc::channel(PUBLISH_QUEUE);
        let putter = Arc::new(Putter {
            client: self.inner.events.clone(),
            bus: self.inner.config.bus.clone(),
            attempts: self.inner.config.publish_attempts,
            retry_min: self.inner.config.retry_min,
            retry_max: self.inner.config.retry_max,
        });
        tokio::spawn(run_publisher(putter, receiver));
        *slot = Some(sender.clone());
        sender
    }

    /// The queue URL of `group`: configured, provisioned now (auto mode),
    /// or a `Validation` error naming the configured groups.
    async fn queue_url(&self, group: &str) -> Result<String> {
        if let Some(url) = self.known_queue(group) {
            return Ok(url);
        }
        let Some(settings) = &self.inner.auto_provision else {
            let mut known: Vec<String> = self.known_groups();
            known.sort();
            return Err(DomainError::invalid(
                "group",
                format!(
                    "no SQS queue is configured for consumer group `{group}` (configured: {}); \
                     add `{group}=<queue URL>` to the bus's queue map (WESTTEK_BUS_QUEUES)",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        let _one_at_a_time = self.inner.provisioning.lock().await;
        if let Some(url) = self.known_queue(group) {
            return Ok(url);
        }
        let bus_arn = provision::ensure_bus(&self.inner.events, &self.inner.config.bus).await?;
        let made = provision::provision_group(
            &self.inner.events,
            &self.inner.sqs,
            &self.inner.config.bus,
            &bus_arn,
            group,
            settings,
        )
        .await?;
        tracing::info!(group, queue_url = %made.queue_url, "provisioned the consumer group's queue");
        self.inner
            .queues
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(group.to_string(), made.queue_url.clone());
        Ok(made.queue_url)
    }

    fn known_queue(&self, group: &str) -> Option<String> {
        self.inner
            .queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
            .cloned()
    }

    fn known_groups(&self) -> Vec<String> {
        self.inner
            .queues
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

fn publisher_gone() -> DomainError {
    DomainError::internal("the event bus's publishing task stopped before answering")
}

#[async_trait]
impl EventBus for EventBridgeBus {
    /// The bus exists and answers, and so does each configured queue.
    async fn check(&self) -> Result<()> {
        let bus = &self.inner.config.bus;
        self.inner
            .events
            .describe_event_bus()
            .name(bus)
            .send()
            .await
            .map_err(|e| {
                DomainError::internal(format!(
                    "EventBridge bus {bus} does not answer: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                ))
            })?;
        let queues: Vec<String> = match self.inner.queues.read() {
            Ok(q) => q.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        for url in queues {
            self.inner
                .sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| {
                    DomainError::internal(format!(
                        "SQS queue {url} does not answer: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    ))
                })?;
        }
        Ok(())
    }

    /// Returns once EventBridge accepted the event.
    ///
    /// # Errors
    /// `Validation` (field `event`) for an event over [`MAX_EVENT_BYTES`] or
    /// with an empty type, before any call to AWS; `Upstream` code
    /// `event_bus_rejected` when EventBridge refused the entry for good
    /// (its code and message included); `Upstream` code
    /// `event_bus_unavailable` when the call failed (bus missing, access
    /// denied, network) or the entry still failed after
    /// [`BusConfig::publish_attempts`].
    #[tracing::instrument(skip_all, fields(bus = %self.inner.config.bus, event_id = %event.id, event_type = %event.event_type))]
    async fn publish(&self, event: &DomainEvent) -> Result<()> {
        let answer = self.enqueue(event).await?;
        answer.await.map_err(|_| publisher_gone())?
    }

    /// Starts receiving from `group`'s queue.
    ///
    /// # Errors
    /// `Validation` (field `group`) for an empty group or one with no
    /// configured queue (unless auto-provisioning); `Upstream` code
    /// `event_bus_unavailable` when the queue cannot be reached (it does
    /// not exist, access denied) or provisioning it failed.
    #[tracing::instrument(skip_all, fields(bus = %self.inner.config.bus, group = %group))]
    async fn subscribe(&self, group: &str) -> Result<EventStream> {
        if group.is_empty() {
            return Err(DomainError::invalid("group", "must not be empty"));
        }
        let queue_url = self.queue_url(group).await?;
        // Fail now, with the reason, when the queue cannot be used.
        self.inner
            .sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| errors::sqs("GetQueueAttributes", &queue_url, &e))?;
        let config = &self.inner.config;
        let receiver = Receiver {
            sqs: self.inner.sqs.clone(),
            queue_url: queue_url.into(),
            group: group.into(),
            wait_seconds: i32::try_from(config.wait_time.as_secs()).unwrap_or(20),
            max_messages: config.max_messages,
            visibility_seconds: config
                .visibility_timeout
                .map(|v| i32::try_from(v.as_secs()).unwrap_or(i32::MAX)),
            retry_min: config.retry_min,
        };
        let (sender, deliveries) = mpsc::channel(1);
        tokio::spawn(receiver.run(sender));
        tracing::info!("subscribed");
        let stream = futures::stream::unfold(deliveries, |mut deliveries| async move {
            deliveries.recv().await.map(|d| (d, deliveries))
        });
        Ok(stream.boxed())
    }
}

// ---------------------------------------------------------------------------
// Publishing

/// One publish waiting for EventBridge.
struct Pending {
    event_id: String,
    entry: PutEventsRequestEntry,
    size: usize,
    done: oneshot::Sender<Result<()>>,
}

/// What the publishing task needs (not the bus itself, so dropping the
/// last clone of the bus ends the task).
struct Putter {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    attempts: u32,
    retry_min: Duration,
    retry_max: Duration,
}

/// Drains publishes into `PutEvents` calls of up to 10 entries and
/// 256 KiB, up to [`PUT_CONCURRENCY`] calls at once; while all are in
/// flight, publishes queue up and the next call carries more of them.
async fn run_publisher(putter: Arc<Putter>, mut queue: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(PUT_CONCURRENCY));
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(p) => p,
            None => match queue.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut total = first.size;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_ENTRIES {
            match queue.try_recv() {
                Ok(p) if total + p.size <= PUT_EVENTS_MAX_BYTES => {
                    total += p.size;
                    batch.push(p);
                }
                Ok(p) => {
                    carried = Some(p);
                    break;
                }
                Err(_) => break,
            }
        }
        let putter = putter.clone();
        tokio::spawn(async move {
            putter.put(batch).await;
            drop(slot);
        });
    }
}

/// Entry error codes that sending again cannot cure.
fn is_permanent(code: &str) -> bool {
    matches!(
        code,
        "InvalidArgument"
            | "MalformedDetail"
            | "ValidationException"
            | "AccessDeniedException"
            | "NotAuthorizedForSourceException"
            | "NotAuthorizedForDetailTypeException"
    )
}

impl Putter {
    /// Sends `batch`, then again its transiently failed entries with
    /// backoff, answering every publish.
    async fn put(&self, mut batch: Vec<Pending>) {
        let mut delay = self.retry_min;
        let mut attempt = 1;
        loop {
            let entries: Vec<PutEventsRequestEntry> =
                batch.iter().map(|p| p.entry.clone()).collect();
            let output = match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => output,
                Err(e) => {
                    let error = errors::events("PutEvents", &self.bus, &e);
                    for p in batch {
                        let _ = p.done.send(Err(error.clone()));
                    }
                    return;
                }
            };
            let results = output.entries();
            if output.failed_entry_count() == 0 && results.len() == batch.len() {
                for p in batch {
                    let _ = p.done.send(Ok(()));
                }
                return;
            }
            let mut again = Vec::new();
            for (i, p) in batch.into_iter().enumerate() {
                let (code, message) = match results.get(i) {
                    Some(r) if r.error_code().is_none() => {
                        let _ = p.done.send(Ok(()));
                        continue;
                    }
                    Some(r) => (
                        r.error_code().unwrap_or_default().to_string(),
                        r.error_message().unwrap_or("no message").to_string(),
                    ),
                    None => (
                        "MissingResult".to_string(),
                        format!(
                            "EventBridge answered {} results for a call of more entries",
                            results.len()
                        ),
                    ),
                };
                if is_permanent(&code) {
                    let _ = p.done.send(Err(DomainError::Upstream {
                        code: REJECTED,
                        message: format!(
                            "EventBridge refused event {} on bus {}: {code}: {message}",
                            p.event_id, self.bus
                        ),
                    }));
                } else if attempt >= self.attempts {
                    let _ = p.done.send(Err(errors::unavailable(format!(
                        "EventBridge did not accept event {} on bus {} in {attempt} attempts: {code}: {message}",
                        p.event_id, self.bus
                    ))));
                } else {
                    tracing::warn!(event_id = %p.event_id, code, message, attempt, retry_in = ?delay, "EventBridge failed an entry; sending it again");
                    again.push(p);
                }
            }
            if again.is_empty() {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.retry_max);
            attempt += 1;
            batch = again;
        }
    }
}

// ---------------------------------------------------------------------------
// Receiving

/// One subscription's receiving task.
struct Receiver {
    sqs: aws_sdk_sqs::Client,
    queue_url: Arc<str>,
    group: Arc<str>,
    wait_seconds: i32,
    max_messages: i32,
    visibility_seconds: Option<i32>,
    retry_min: Duration,
}

impl Receiver {
    /// Receives while the subscription lives and wants deliveries.
    async fn run(self, deliveries: mpsc::Sender<Delivery>) {
        let mut backoff = self.retry_min;
        loop {
            // Receive only when the consumer has room for a delivery.
            let Ok(permit) = deliveries.reserve().await else {
                return;
            };
            // Not cancelled when the subscription is dropped meanwhile:
            // what it receives is released below.
            let received = self
                .sqs
                .receive_message()
                .queue_url(&*self.queue_url)
                .max_number_of_messages(self.max_messages)
                .wait_time_seconds(self.wait_seconds)
                .set_visibility_timeout(self.visibility_seconds)
                .send()
                .await;
            let messages = match received {
                Ok(output) => {
                    backoff = self.retry_min;
                    output.messages.unwrap_or_default()
                }
                Err(e) => {
                    drop(permit);
                    let error = errors::sqs("ReceiveMessage", &self.queue_url, &e);
                    tracing::warn!(group = %self.group, error = %error, retry_in = ?backoff, "receiving failed; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = deliveries.closed() => return,
                    }
                    backoff = (backoff * 2).min(RECEIVE_RETRY_MAX);
                    continue;
                }
            };
            let mut permit = Some(permit);
            let mut messages: VecDeque<Message> = messages.into();
            while let Some(message) = messages.pop_front() {
                let Some(receipt) = message.receipt_handle.clone() else {
                    continue;
                };
                let event = match parse_body(message.body()) {
                    Ok(event) => event,
                    Err(why) => {
                        tracing::warn!(
                            group = %self.group,
                            message_id = message.message_id().unwrap_or("?"),
                            why,
                            "a message on the group's queue is not a platform event; left unacked for the dead-letter queue"
                        );
                        continue;
                    }
                };
                let slot = match permit.take() {
                    Some(p) => Ok(p),
                    None => deliveries.reserve().await,
                };
                // A permit taken before the subscription was dropped still
                // "sends", into nothing: check.
                let Some(slot) = slot.ok().filter(|_| !deliveries.is_closed()) else {
                    messages.push_front(message);
                    self.release(messages).await;
                    return;
                };
                slot.send(Delivery {
                    event,
                    ack: Box::new(SqsAck {
                        sqs: self.sqs.clone(),
                        queue_url: self.queue_url.clone(),
                        receipt,
                    }),
                });
            }
        }
    }

    /// Makes messages this subscription will not hand out visible again at
    /// once, for the group's other members.
    async fn release(&self, messages: VecDeque<Message>) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        let count = entries.len();
        match self
            .sqs
            .change_message_visibility_batch()
            .queue_url(&*self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) if out.failed().is_empty() => {
                tracing::debug!(group = %self.group, count, "released messages of a dropped subscription");
            }
            Ok(out) => {
                tracing::warn!(group = %self.group, failed = out.failed().len(), "some messages of a dropped subscription could not be released; they come back after the visibility timeout");
            }
            Err(e) => {
                let error = errors::sqs("ChangeMessageVisibilityBatch", &self.queue_url, &e);
                tracing::warn!(group = %self.group, error = %error, "messages of a dropped subscription come back after the visibility timeout");
            }
        }
    }
}

/// The platform event in an SQS message: EventBridge's envelope with the
/// event in `detail` or, from a target with an input path of `$.detail`,
/// the event itself.
pub(crate) fn parse_body(body: Option<&str>) -> std::result::Result<DomainEvent, String> {
    let body = body.ok_or("the message has no body")?;
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let event = match value.get_mut("detail") {
        Some(detail) => detail.take(),
        None => value,
    };
    serde_json::from_value(event).map_err(|e| format!("not a platform event: {e}"))
}

/// Acknowledges by deleting the message from the group's queue.
struct SqsAck {
    sqs: aws_sdk_sqs::Client,
    queue_url: Arc<str>,
    receipt: String,
}

#[async_trait]
impl Ack for SqsAck {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.sqs
            .delete_message()
            .queue_url(&*self.queue_url)
            .receipt_handle(&self.receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| errors::sqs("DeleteMessage", &self.queue_url, &e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::Utc;
    use westtek_domain::LabId;

    fn event(data: serde_json::Value) -> DomainEvent {
        DomainEvent::new(
            "environment.created",
            "test",
            LabId::new(),
            Utc::now(),
            data,
        )
    }

    #[test]
    fn a_queue_map_is_read_from_pairs_separated_by_commas_or_spaces() {
        let map =
            parse_queue_map("drift=https://q/1, knowledge=https://q/2\nsnapshots=https://q/3")
                .unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map["knowledge"], "https://q/2");
        assert!(parse_queue_map("").unwrap().is_empty());
    }

    #[test]
    fn a_malformed_queue_map_names_the_bad_pair() {
        for (text, words) in [
            ("drift", "`drift` is not group=queue-url"),
            ("=https://q", "must not be empty"),
            ("a=1,a=2", "`a` is given twice"),
        ] {
            match parse_queue_map(text) {
                Err(DomainError::Validation { field, message }) => {
                    assert_eq!(field, "queues");
                    assert!(message.contains(words), "{message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_body_is_read_from_the_envelope_or_as_the_bare_event() {
        let e = event(serde_json::json!({"n": 1}));
        let envelope = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "environment.created",
            "source": "westtek", "detail": e,
        });
        assert_eq!(parse_body(Some(&envelope.to_string())).unwrap(), e);
        assert_eq!(
            parse_body(Some(&serde_json::to_string(&e).unwrap())).unwrap(),
            e
        );
        assert!(parse_body(Some("{not json"))
            .unwrap_err()
            .contains("not JSON"));
        assert!(parse_body(Some(r#"{"detail": {"id": 1}}"#))
            .unwrap_err()
            .contains("not a platform event"));
        assert!(parse_body(None).is_err());
    }

    #[test]
    fn settings_out_of_range_are_refused_with_the_setting_named() {
        let mut c = BusConfig::new("b");
        c.max_messages = 11;
        assert!(
            matches!(c.validate(), Err(DomainError::Validation { field, .. }) if field == "max_messages")
        );
        let c = BusConfig::new("");
        assert!(
            matches!(c.validate(), Err(DomainError::Validation { field, .. }) if field == "event_bus")
        );
        let mut c = BusConfig::new("b");
        c.wait_time = Duration::from_secs(21);
        assert!(
            matches!(c.validate(), Err(DomainError::Validation { field, .. }) if field == "wait_time")
        );
    }
}
