//! The behaviour every `EventBus` adapter promises, as one generic test body
//! per promise. The integration binary runs them against Redis Streams and
//! the crate's unit tests run them against the in-process bus (this file is
//! included there with `#[path]`), so both adapters are held to the same
//! contract.
//!
//! Timing policy: waiting for an expected delivery gives up after
//! [`EXPECT_WITHIN`] and fails; checking that nothing more arrives waits
//! [`QUIET_FOR`], which is short because every adapter delivers an
//! already-published event in milliseconds.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;
use westtek_domain::event::types;
use westtek_domain::ports::{Delivery, EventBus, EventStream};
use westtek_domain::{DomainError, DomainEvent, LabId};

/// How long an expected delivery may take.
pub const EXPECT_WITHIN: Duration = Duration::from_secs(10);
/// How long to watch for a delivery that must not come.
pub const QUIET_FOR: Duration = Duration::from_millis(300);

/// A distinct, simple event tagged with `n` in its data.
pub fn event(n: u32) -> DomainEvent {
    DomainEvent::new(
        types::ENVIRONMENT_CREATED,
        "conformance",
        LabId::new(),
        Utc::now(),
        serde_json::json!({ "n": n }),
    )
}

/// The next delivery, or a test failure after [`EXPECT_WITHIN`].
pub async fn next(stream: &mut EventStream) -> Delivery {
    tokio::time::timeout(EXPECT_WITHIN, stream.next())
        .await
        .expect("no delivery in time")
        .expect("the event stream ended")
}

/// Fails when anything arrives within [`QUIET_FOR`].
pub async fn assert_quiet(stream: &mut EventStream) {
    if let Ok(Some(d)) = tokio::time::timeout(QUIET_FOR, stream.next()).await {
        panic!("unexpected delivery of {:?}", d.event);
    }
}

pub async fn every_group_gets_each_event_once_and_one_member_of_a_group_gets_it(
    bus: &dyn EventBus,
) {
    let member_a = bus.subscribe("shared").await.unwrap();
    let member_b = bus.subscribe("shared").await.unwrap();
    let mut alone = bus.subscribe("alone").await.unwrap();

    let events: Vec<DomainEvent> = (0..10).map(event).collect();
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    let all: BTreeSet<String> = events.iter().map(|e| e.id.to_string()).collect();

    // The single-member group sees all of them, each once, in order.
    for e in &events {
        let d = next(&mut alone).await;
        assert_eq!(&d.event, e);
        d.ack.ack().await.unwrap();
    }
    assert_quiet(&mut alone).await;

    // The two members of the shared group split them: none twice, none lost.
    let mut shared =
        futures::stream::select(member_a.map(|d| ("a", d)), member_b.map(|d| ("b", d))).boxed();
    let mut seen = BTreeSet::new();
    for _ in 0..events.len() {
        let (_, d) = tokio::time::timeout(EXPECT_WITHIN, shared.next())
            .await
            .expect("no delivery in time")
            .expect("the event stream ended");
        assert!(
            seen.insert(d.event.id.to_string()),
            "event {} reached the group twice",
            d.event.id
        );
        d.ack.ack().await.unwrap();
    }
    assert_eq!(seen, all);
    if let Ok(Some((member, d))) = tokio::time::timeout(QUIET_FOR, shared.next()).await {
        panic!("member {member} got an extra delivery of {}", d.event.id);
    }
}

pub async fn the_envelope_round_trips_exactly(bus: &dyn EventBus) {
    let mut sub = bus.subscribe("roundtrip").await.unwrap();
    let mut e = DomainEvent::new(
        types::ENVIRONMENT_BUILD_FAILED,
        "env-manager",
        LabId::new(),
        Utc.timestamp_opt(1_718_000_000, 123_456_789).unwrap(),
        serde_json::json!({
            "text": "Übergröße \"quoted\" \n newline ✓",
            "int": -42,
            "big": u64::MAX,
            "float": 0.1,
            "null": null,
            "list": [1, "two", {"three": [3]}],
            "nested": {"empty": {}, "flag": true}
        }),
    );
    e.version = 7;
    bus.publish(&e).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, e);
    assert_eq!(
        serde_json::to_string(&d.event).unwrap(),
        serde_json::to_string(&e).unwrap()
    );
    d.ack.ack().await.unwrap();
}

pub async fn publishing_without_subscribers_is_fine(bus: &dyn EventBus) {
    for n in 0..3 {
        bus.publish(&event(n)).await.unwrap();
    }
}

pub async fn a_group_sees_only_events_published_after_it_first_subscribed(bus: &dyn EventBus) {
    bus.publish(&event(0)).await.unwrap();
    let mut sub = bus.subscribe("late").await.unwrap();
    let after = event(1);
    bus.publish(&after).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, after);
    d.ack.ack().await.unwrap();
    assert_quiet(&mut sub).await;
}

pub async fn an_acked_event_is_not_delivered_again_to_a_later_subscriber(bus: &dyn EventBus) {
    let mut first = bus.subscribe("acking").await.unwrap();
    let e = event(1);
    bus.publish(&e).await.unwrap();
    let d = next(&mut first).await;
    assert_eq!(d.event, e);
    d.ack.ack().await.unwrap();
    drop(first);

    let mut second = bus.subscribe("acking").await.unwrap();
    assert_quiet(&mut second).await;
    // The group still works for new events.
    let later = event(2);
    bus.publish(&later).await.unwrap();
    assert_eq!(next(&mut second).await.event, later);
}

pub async fn an_empty_group_name_is_rejected(bus: &dyn EventBus) {
    match bus.subscribe("").await {
        Err(DomainError::Validation { field, .. }) => assert_eq!(field, "group"),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("an empty group name was accepted"),
    }
}
