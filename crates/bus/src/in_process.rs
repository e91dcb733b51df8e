//! The in-process event bus: the default of `westtek up`, where every
//! service runs in one process.
//!
//! Semantics match a consumer-group bus within one process:
//!
//! - A group comes into being on its first `subscribe` and sees only events
//!   published after that. It then lives as long as the bus, so a group whose
//!   members all left keeps queueing events for the next member.
//! - Every group gets every event once; the members of one group share one
//!   queue, so each event goes to exactly one of them (whichever asks next).
//! - Publishing never waits for subscribers, and publishing with no group at
//!   all is fine (the event goes nowhere).
//! - `ack` is a no-op: an event handed to a member is done, and there is no
//!   redelivery. Use the Redis Streams adapter when you need at-least-once
//!   across crashes.
//!
//! Overflow policy: each group's queue holds at most `capacity` events
//! ([`DEFAULT_QUEUE_CAPACITY`] unless set). When a slow group's queue is full,
//! publishing drops the group's **oldest** queued event, counts it (see
//! [`InProcessBus::dropped`]) and logs a warning on the 1st, 2nd, 4th, 8th, …
//! drop of that group, so a stuck consumer shows up in the logs without
//! flooding them and never blocks publishers or other groups.

use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;
use westtek_domain::ports::{Ack, Delivery, EventBus, EventStream};
use westtek_domain::{DomainError, DomainEvent, Result};

/// Events a group may have queued before the oldest is dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// An event bus inside one process with bounded, drop-oldest group queues.
///
/// Cheap to clone; clones share the same groups.
#[derive(Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    groups: Mutex<HashMap<String, Arc<GroupQueue>>>,
}

/// The queue one group's members share.
struct GroupQueue {
    name: String,
    capacity: usize,
    events: Mutex<VecDeque<DomainEvent>>,
    /// One permit per published event wakes one waiting member.
    ready: Notify,
    dropped: AtomicU64,
}

/// Locks a mutex, carrying on after a panic elsewhere: the data behind these
/// locks (queues, maps) stays consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InProcessBus {
    /// A bus whose groups queue up to [`DEFAULT_QUEUE_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_QUEUE_CAPACITY)
    }

    /// A bus whose groups queue up to `capacity` events (at least 1) before
    /// dropping the oldest.
    pub fn with_capacity(capacity: usize) -> Self {
        InProcessBus {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                groups: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How many events group `group` has lost to overflow so far (0 for an
    /// unknown group).
    pub fn dropped(&self, group: &str) -> u64 {
        lock(&self.inner.groups)
            .get(group)
            .map_or(0, |q| q.dropped.load(Ordering::Relaxed))
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = lock(&self.inner.groups).keys().cloned().collect();
        f.debug_struct("InProcessBus")
            .field("capacity", &self.inner.capacity)
            .field("groups", &groups)
            .finish()
    }
}

impl GroupQueue {
    fn push(&self, event: DomainEvent) {
        let overflowed = {
            let mut events = lock(&self.events);
            let overflowed = if events.len() >= self.capacity {
                events.pop_front()
            } else {
                None
            };
            events.push_back(event);
            overflowed
        };
        if let Some(lost) = overflowed {
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if total.is_power_of_two() {
                tracing::warn!(
                    group = %self.name,
                    capacity = self.capacity,
                    dropped_total = total,
                    lost_event_id = %lost.id,
                    lost_event_type = %lost.event_type,
                    "event queue of a slow consumer group is full; dropped its oldest event"
                );
            }
        }
        self.ready.notify_one();
    }

    async fn pop(&self) -> DomainEvent {
        loop {
            if let Some(event) = lock(&self.events).pop_front() {
                return event;
            }
            // A push between the check above and this wait leaves a permit,
            // so the wait returns at once and the loop checks again.
            self.ready.notified().await;
        }
    }
}

/// In-process deliveries need no acknowledgement.
struct NoopAck;

#[async_trait]
impl Ack for NoopAck {
    async fn ack(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &DomainEvent) -> Result<()> {
        let queues: Vec<Arc<GroupQueue>> = lock(&self.inner.groups).values().cloned().collect();
        if queues.is_empty() {
            tracing::debug!(event_id = %event.id, event_type = %event.event_type, "published with no subscribers");
        }
        for queue in queues {
            queue.push(event.clone());
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str) -> Result<EventStream> {
        if group.is_empty() {
            return Err(DomainError::invalid("group", "must not be empty"));
        }
        let queue = lock(&self.inner.groups)
            .entry(group.to_string())
            .or_insert_with(|| {
                Arc::new(GroupQueue {
                    name: group.to_string(),
                    capacity: self.inner.capacity,
                    events: Mutex::new(VecDeque::new()),
                    ready: Notify::new(),
                    dropped: AtomicU64::new(0),
                })
            })
            .clone();
        let stream = futures::stream::unfold(queue, |queue| async move {
            let event = queue.pop().await;
            let delivery = Delivery {
                event,
                ack: Box::new(NoopAck),
            };
            Some((delivery, queue))
        });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::conformance;
    use std::time::Duration;

    #[tokio::test]
    async fn every_group_gets_each_event_once_and_one_member_of_a_group_gets_it() {
        conformance::every_group_gets_each_event_once_and_one_member_of_a_group_gets_it(
            &InProcessBus::new(),
        )
        .await;
    }

    #[tokio::test]
    async fn the_envelope_round_trips_exactly() {
        conformance::the_envelope_round_trips_exactly(&InProcessBus::new()).await;
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_fine() {
        conformance::publishing_without_subscribers_is_fine(&InProcessBus::new()).await;
    }

    #[tokio::test]
    async fn a_group_sees_only_events_published_after_it_first_subscribed() {
        conformance::a_group_sees_only_events_published_after_it_first_subscribed(
            &InProcessBus::new(),
        )
        .await;
    }

    #[tokio::test]
    async fn an_acked_event_is_not_delivered_again_to_a_later_subscriber() {
        conformance::an_acked_event_is_not_delivered_again_to_a_later_subscriber(
            &InProcessBus::new(),
        )
        .await;
    }

    #[tokio::test]
    async fn an_empty_group_name_is_rejected() {
        conformance::an_empty_group_name_is_rejected(&InProcessBus::new()).await;
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_event_and_counts_it() {
        let bus = InProcessBus::with_capacity(3);
        let mut slow = bus.subscribe("slow").await.unwrap();
        let events: Vec<_> = (0..5).map(conformance::event).collect();
        for e in &events {
            // Publishing never waits, however slow the group.
            tokio::time::timeout(Duration::from_secs(1), bus.publish(e))
                .await
                .expect("publish blocked")
                .unwrap();
        }
        assert_eq!(bus.dropped("slow"), 2);
        assert_eq!(bus.dropped("unknown"), 0);
        for expected in &events[2..] {
            let got = conformance::next(&mut slow).await;
            assert_eq!(&got.event, expected);
        }
        conformance::assert_quiet(&mut slow).await;
    }

    #[tokio::test]
    async fn a_slow_group_does_not_hold_back_another_group() {
        let bus = InProcessBus::with_capacity(2);
        let _slow = bus.subscribe("slow").await.unwrap();
        let mut fast = bus.subscribe("fast").await.unwrap();
        for i in 0..10 {
            let e = conformance::event(i);
            bus.publish(&e).await.unwrap();
            assert_eq!(conformance::next(&mut fast).await.event, e);
        }
        assert_eq!(bus.dropped("slow"), 8);
        assert_eq!(bus.dropped("fast"), 0);
    }

    #[tokio::test]
    async fn a_group_keeps_queueing_while_it_has_no_member() {
        let bus = InProcessBus::new();
        drop(bus.subscribe("g").await.unwrap());
        let e = conformance::event(1);
        bus.publish(&e).await.unwrap();
        let mut again = bus.subscribe("g").await.unwrap();
        assert_eq!(conformance::next(&mut again).await.event, e);
    }

    #[tokio::test]
    async fn a_waiting_member_wakes_for_an_event_published_later() {
        let bus = InProcessBus::new();
        let mut sub = bus.subscribe("g").await.unwrap();
        let e = conformance::event(7);
        let publisher = {
            let bus = bus.clone();
            let e = e.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                bus.publish(&e).await.unwrap();
            })
        };
        assert_eq!(conformance::next(&mut sub).await.event, e);
        publisher.await.unwrap();
    }
}
