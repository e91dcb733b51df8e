//! The Redis Streams event bus, for services running as separate processes.
//!
//! Layout: every event is one entry of a single stream (`XADD <stream> MAXLEN
//! ~ <cap> * event <json envelope>`); each subscriber group is a Redis
//! consumer group on that stream.
//!
//! Policy:
//!
//! - **Groups.** `subscribe` creates the group (`XGROUP CREATE … $
//!   MKSTREAM`, `BUSYGROUP` ignored) before it returns, so a group sees every
//!   event published after its first subscription and none before. If the
//!   group later vanishes (Redis restarted without persistence) a subscriber
//!   recreates it at `0`, so events published since the restart are not lost.
//! - **Consumers.** A consumer is named `<group>:<consumer id>:<slot>`: the
//!   consumer id is stable for the bus (random per process unless
//!   [`RedisBusConfig::consumer_id`] pins it, e.g. to a pod name), and the
//!   slot is the lowest number not used by another live subscription of the
//!   same group on this bus. So a re-subscription reuses the name of the one
//!   it replaces and finds its pending entries at once, while concurrent
//!   subscriptions of one group never share a pending list.
//! - **At-least-once.** A subscription first re-delivers its consumer's own
//!   pending entries (`XREADGROUP … 0`), then claims entries that other
//!   consumers left pending for longer than [`RedisBusConfig::min_idle`]
//!   (`XAUTOCLAIM`, also repeated every [`RedisBusConfig::claim_interval`]
//!   while it runs, which also retries deliveries dropped without an ack),
//!   then blocks for new entries (`XREADGROUP … BLOCK … >`). An entry leaves
//!   the pending list only by `Delivery::ack` (`XACK`). Duplicates are
//!   possible (after a reconnect, a claim, or a publish retried after a lost
//!   reply); consumers are idempotent by design.
//! - **Malformed entries** (no `event` field, not an envelope, trimmed while
//!   pending) are logged at `warn`, acked and skipped; they never end or
//!   stall the stream.
//! - **Connection loss.** Connections are [`ConnectionManager`]s, which
//!   reconnect in the background. Each subscription reads on its own
//!   connection (a blocked read would otherwise hold up everything else),
//!   retries failed reads with exponential backoff between
//!   [`RedisBusConfig::retry_min`] and [`RedisBusConfig::retry_max`], and
//!   after a failure starts over at its own pending entries, so nothing
//!   delivered-but-unacked is lost. A publish is retried once on a
//!   connection error (the first command after Redis restarted fails on the
//!   stale connection) and otherwise fails within a few seconds with
//!   `Upstream` code `event_bus_unavailable`; it never waits out an outage.
//! - **The stream never ends** on its own; dropping it ends the
//!   subscription. Entries it had read but not yet handed out stay pending
//!   and come back as above.

mod reply;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};
use reply::{Entry, EVENT_FIELD};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use westtek_domain::ports::{Ack, Delivery, EventBus, EventStream};
use westtek_domain::{DomainError, DomainEvent, Result};

/// Default approximate cap on the stream's length (`MAXLEN ~`).
pub const DEFAULT_MAX_LEN: u64 = 100_000;

/// How many times a publish is tried when the connection fails.
const PUBLISH_ATTEMPTS: u32 = 2;

/// Tunables of [`RedisStreamsBus`]; start from `Default`.
#[derive(Clone, Debug)]
pub struct RedisBusConfig {
    /// Approximate cap on the stream's length; older entries are trimmed
    /// (even if some group has not read them). Default 100 000.
    pub max_len: u64,
    /// An entry pending this long in some consumer is presumed abandoned and
    /// claimed by a live subscriber. Default 60 s.
    pub min_idle: Duration,
    /// How often a running subscription looks for abandoned entries.
    /// Default 30 s.
    pub claim_interval: Duration,
    /// How long one blocking read waits for new entries. Default 5 s.
    pub block: Duration,
    /// Entries fetched per read. Default 32.
    pub batch: usize,
    /// First delay after a failed read or publish; doubles up to
    /// `retry_max`. Default 100 ms.
    pub retry_min: Duration,
    /// Longest delay between retries, also the cap on the connection's own
    /// reconnect delay. Default 5 s.
    pub retry_max: Duration,
    /// This process's part of consumer names. Default: random per bus. Pin
    /// it (to a pod or host name) so a restarted process picks up its own
    /// pending entries at once instead of after `min_idle`.
    pub consumer_id: Option<String>,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        RedisBusConfig {
            max_len: DEFAULT_MAX_LEN,
            min_idle: Duration::from_secs(60),
            claim_interval: Duration::from_secs(30),
            block: Duration::from_secs(5),
            batch: 32,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            consumer_id: None,
        }
    }
}

/// An event bus on one Redis stream with consumer groups.
///
/// Cheap to clone; clones share the connection and consumer id.
#[derive(Clone)]
pub struct RedisStreamsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// Shared, non-blocking commands: publish, ack, group creation.
    conn: ConnectionManager,
    stream: Arc<str>,
    consumer_id: String,
    config: RedisBusConfig,
    slots: Slots,
}

impl fmt::Debug for RedisStreamsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamsBus")
            .field("stream", &self.inner.stream)
            .field("consumer_id", &self.inner.consumer_id)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The failure callers see; the cause goes to the log only.
fn unavailable(action: &str, e: &RedisError) -> DomainError {
    tracing::warn!(error = %e, "event bus {action} failed");
    DomainError::Upstream {
        code: "event_bus_unavailable",
        message: "the event bus is unavailable".into(),
    }
}

/// Errors a new attempt (on a reconnected connection) may cure.
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

fn manager_config(config: &RedisBusConfig, response_timeout: Duration) -> ConnectionManagerConfig {
    // One reconnect attempt right away and one after about a second: a
    // publisher hears about an outage within seconds instead of hanging, and
    // subscriptions keep retrying in their own loop. The first command after
    // a failed reconnect starts a new one.
    ConnectionManagerConfig::new()
        .set_factor(2)
        .set_number_of_retries(1)
        .set_max_delay(u64::try_from(config.retry_max.as_millis()).unwrap_or(u64::MAX))
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(response_timeout)
}

impl RedisStreamsBus {
    /// Connects with default settings; events go to stream `stream_name`.
    ///
    /// # Errors
    /// `Validation` for a malformed URL or empty stream name; `Upstream`
    /// (`event_bus_unavailable`) when Redis cannot be reached.
    pub async fn connect(url: &str, stream_name: &str) -> Result<Self> {
        Self::connect_with(url, stream_name, RedisBusConfig::default()).await
    }

    /// Connects with the given settings.
    ///
    /// # Errors
    /// As [`RedisStreamsBus::connect`].
    pub async fn connect_with(
        url: &str,
        stream_name: &str,
        config: RedisBusConfig,
    ) -> Result<Self> {
        if stream_name.is_empty() {
            return Err(DomainError::invalid("stream", "must not be empty"));
        }
        let client = redis::Client::open(url)
            .map_err(|e| DomainError::invalid("redis_url", format!("not a Redis URL: {e}")))?;
        let conn = ConnectionManager::new_with_config(
            client.clone(),
            manager_config(&config, Duration::from_secs(5)),
        )
        .await
        .map_err(|e| unavailable("connect", &e))?;
        let consumer_id = match &config.consumer_id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        };
        tracing::info!(
            stream = stream_name,
            consumer_id,
            "connected to the Redis event bus"
        );
        Ok(RedisStreamsBus {
            inner: Arc::new(Inner {
                client,
                conn,
                stream: stream_name.into(),
                consumer_id,
                config,
                slots: Slots::default(),
            }),
        })
    }

    /// The stream events go to.
    pub fn stream_name(&self) -> &str {
        &self.inner.stream
    }

    /// This bus's part of consumer names.
    pub fn consumer_id(&self) -> &str {
        &self.inner.consumer_id
    }
}

/// Creates `group` at `start` unless it exists.
async fn ensure_group(
    conn: &mut ConnectionManager,
    stream: &str,
    group: &str,
    start: &str,
) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

#[async_trait]
impl EventBus for RedisStreamsBus {
    async fn check(&self) -> Result<()> {
        let mut conn = self.inner.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| DomainError::internal(format!("Redis does not answer: {e}")))
    }

    #[tracing::instrument(skip_all, fields(stream = %self.inner.stream, event_id = %event.id, event_type = %event.event_type))]
    async fn publish(&self, event: &DomainEvent) -> Result<()> {
        let payload = serde_json::to_string(event).map_err(DomainError::internal)?;
        let mut delay = self.inner.config.retry_min;
        let mut attempt = 1;
        loop {
            let mut conn = self.inner.conn.clone();
            let added: redis::RedisResult<String> = redis::cmd("XADD")
                .arg(&*self.inner.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.inner.config.max_len)
                .arg("*")
                .arg(EVENT_FIELD)
                .arg(&payload)
                .query_async(&mut conn)
                .await;
            match added {
                Ok(entry_id) => {
                    tracing::debug!(entry_id, "event published");
                    return Ok(());
                }
                Err(e) if attempt < PUBLISH_ATTEMPTS && is_transient(&e) => {
                    tracing::warn!(error = %e, attempt, retry_in = ?delay, "publishing failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.inner.config.retry_max);
                    attempt += 1;
                }
                Err(e) => return Err(unavailable("publish", &e)),
            }
        }
    }

    #[tracing::instrument(skip_all, fields(stream = %self.inner.stream, group = %group))]
    async fn subscribe(&self, group: &str) -> Result<EventStream> {
        if group.is_empty() {
            return Err(DomainError::invalid("group", "must not be empty"));
        }
        let inner = &self.inner;
        let mut conn = inner.conn.clone();
        ensure_group(&mut conn, &inner.stream, group, "$")
            .await
            .map_err(|e| unavailable("group creation", &e))?;
        let block = inner.config.block.max(Duration::from_millis(1));
        let reader = inner
            .client
            .get_connection_manager_with_config(manager_config(
                &inner.config,
                block + Duration::from_secs(5),
            ))
            .await
            .map_err(|e| unavailable("subscribe", &e))?;
        let slot = inner.slots.take(group);
        let consumer = format!("{group}:{}:{}", inner.consumer_id, slot.slot);
        tracing::info!(consumer, "subscribed");
        let subscription = Subscription {
            reader,
            acker: inner.conn.clone(),
            stream: inner.stream.clone(),
            group: group.into(),
            consumer,
            config: inner.config.clone(),
            block,
            phase: Phase::Pending { after: "0".into() },
            last_claim: None,
            buffer: VecDeque::new(),
            backoff: inner.config.retry_min,
            _slot: slot,
        };
        let stream = futures::stream::unfold(subscription, |mut s| async move {
            let delivery = s.next_delivery().await;
            Some((delivery, s))
        });
        Ok(stream.boxed())
    }
}

/// Slot numbers in use, per group.
#[derive(Clone, Default)]
struct Slots(Arc<Mutex<HashMap<String, BTreeSet<u32>>>>);

/// Holds a slot; frees it when the subscription is dropped.
struct SlotGuard {
    slots: Slots,
    group: String,
    slot: u32,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, BTreeSet<u32>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, group: &str) -> SlotGuard {
        let mut slots = self.lock();
        let used = slots.entry(group.to_string()).or_default();
        let mut slot = 0;
        while used.contains(&slot) {
            slot += 1;
        }
        used.insert(slot);
        SlotGuard {
            slots: self.clone(),
            group: group.to_string(),
            slot,
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut slots = self.slots.lock();
        if let Some(used) = slots.get_mut(&self.group) {
            used.remove(&self.slot);
            if used.is_empty() {
                slots.remove(&self.group);
            }
        }
    }
}

/// Where a subscription is in its read cycle.
#[derive(Debug)]
enum Phase {
    /// After a failure: make sure the group exists, then `Pending`.
    Recover,
    /// Re-reading this consumer's own pending entries after id `after`.
    Pending { after: String },
    /// Claiming abandoned entries, scan at `cursor`.
    Claim { cursor: String },
    /// Blocking for new entries.
    New,
}

/// One subscription's state, driven by polling its stream.
struct Subscription {
    /// Dedicated connection for blocking reads.
    reader: ConnectionManager,
    /// The bus's shared connection, for acks.
    acker: ConnectionManager,
    stream: Arc<str>,
    group: Arc<str>,
    consumer: String,
    config: RedisBusConfig,
    block: Duration,
    phase: Phase,
    last_claim: Option<Instant>,
    buffer: VecDeque<Delivery>,
    backoff: Duration,
    _slot: SlotGuard,
}

impl Subscription {
    async fn next_delivery(&mut self) -> Delivery {
        loop {
            if let Some(delivery) = self.buffer.pop_front() {
                return delivery;
            }
            match self.step().await {
                Ok(()) => self.backoff = self.config.retry_min,
                Err(e) => {
                    tracing::warn!(
                        group = %self.group,
                        consumer = %self.consumer,
                        error = %e,
                        retry_in = ?self.backoff,
                        "reading events failed; retrying from this consumer's pending entries"
                    );
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(self.config.retry_max);
                    self.phase = Phase::Recover;
                }
            }
        }
    }

    /// One command's worth of progress; fills `buffer` or moves `phase` on.
    /// On failure the caller resets `phase` to `Recover`.
    async fn step(&mut self) -> redis::RedisResult<()> {
        match std::mem::replace(&mut self.phase, Phase::New) {
            Phase::Recover => {
                ensure_group(&mut self.reader, &self.stream, &self.group, "0").await?;
                self.phase = Phase::Pending { after: "0".into() };
            }
            Phase::Pending { after } => {
                let reply = self.read(&after, None).await?;
                let entries = reply::parse_read(&reply).map_err(protocol_error)?;
                self.phase = match entries.last() {
                    Some(last) => Phase::Pending {
                        after: last.id.clone(),
                    },
                    None => Phase::Claim {
                        cursor: "0-0".into(),
                    },
                };
                if !entries.is_empty() {
                    tracing::info!(
                        consumer = %self.consumer,
                        count = entries.len(),
                        "re-delivering this consumer's unacknowledged events"
                    );
                }
                self.accept(entries).await?;
            }
            Phase::Claim { cursor } => {
                let reply: Value = redis::cmd("XAUTOCLAIM")
                    .arg(&*self.stream)
                    .arg(&*self.group)
                    .arg(&self.consumer)
                    .arg(millis(self.config.min_idle))
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(self.config.batch.max(1))
                    .query_async(&mut self.reader)
                    .await?;
                let claimed = reply::parse_autoclaim(&reply).map_err(protocol_error)?;
                if !claimed.entries.is_empty() {
                    tracing::info!(
                        consumer = %self.consumer,
                        count = claimed.entries.len(),
                        min_idle = ?self.config.min_idle,
                        "claimed events left unacknowledged by other consumers"
                    );
                }
                for id in &claimed.deleted {
                    tracing::warn!(group = %self.group, entry_id = %id, "a pending event was trimmed before it was handled");
                }
                self.phase = if claimed.cursor == "0-0" {
                    self.last_claim = Some(Instant::now());
                    Phase::New
                } else {
                    Phase::Claim {
                        cursor: claimed.cursor,
                    }
                };
                self.accept(claimed.entries).await?;
            }
            Phase::New => {
                let until_claim = match self.last_claim {
                    // Clamped so a zero interval cannot spin on XAUTOCLAIM.
                    Some(at) => self
                        .config
                        .claim_interval
                        .max(Duration::from_millis(10))
                        .saturating_sub(at.elapsed()),
                    None => Duration::ZERO,
                };
                if until_claim.is_zero() {
                    self.phase = Phase::Claim {
                        cursor: "0-0".into(),
                    };
                    return Ok(());
                }
                let block = self.block.min(until_claim).max(Duration::from_millis(1));
                let reply = self.read(">", Some(block)).await?;
                let entries = reply::parse_read(&reply).map_err(protocol_error)?;
                self.accept(entries).await?;
            }
        }
        Ok(())
    }

    async fn read(&mut self, from: &str, block: Option<Duration>) -> redis::RedisResult<Value> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&*self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(self.config.batch.max(1));
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(millis(block));
        }
        cmd.arg("STREAMS").arg(&*self.stream).arg(from);
        cmd.query_async(&mut self.reader).await
    }

    /// Acks and skips malformed entries, then queues the rest for delivery.
    /// Queues nothing when the acks fail, so a retry sees the batch again
    /// without duplicates.
    async fn accept(&mut self, entries: Vec<Entry>) -> redis::RedisResult<()> {
        let mut bad = Vec::new();
        let mut good = Vec::new();
        for entry in entries {
            match entry.event {
                Ok(event) => good.push((entry.id, event)),
                Err(reason) => {
                    tracing::warn!(
                        stream = %self.stream,
                        group = %self.group,
                        entry_id = %entry.id,
                        reason,
                        "skipping a stream entry that is not an event envelope"
                    );
                    bad.push(entry.id);
                }
            }
        }
        if !bad.is_empty() {
            redis::cmd("XACK")
                .arg(&*self.stream)
                .arg(&*self.group)
                .arg(&bad)
                .query_async::<i64>(&mut self.acker)
                .await?;
        }
        for (id, event) in good {
            self.buffer.push_back(Delivery {
                event,
                ack: Box::new(RedisAck {
                    conn: self.acker.clone(),
                    stream: self.stream.clone(),
                    group: self.group.clone(),
                    id,
                }),
            });
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn protocol_error(detail: String) -> RedisError {
    RedisError::from((
        redis::ErrorKind::TypeError,
        "unexpected stream reply",
        detail,
    ))
}

/// Acks one entry with `XACK`.
struct RedisAck {
    conn: ConnectionManager,
    stream: Arc<str>,
    group: Arc<str>,
    id: String,
}

#[async_trait]
impl Ack for RedisAck {
    async fn ack(mut self: Box<Self>) -> Result<()> {
        redis::cmd("XACK")
            .arg(&*self.stream)
            .arg(&*self.group)
            .arg(&self.id)
            .query_async::<i64>(&mut self.conn)
            .await
            .map(drop)
            .map_err(|e| unavailable("ack", &e))
    }
}
