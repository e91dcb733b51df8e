//! `RedisStreamsBus` against a real `redis-server`: the shared conformance
//! bodies plus what only a durable bus promises (redelivery of unacked
//! events, claiming from dead consumers, skipping malformed entries,
//! surviving a Redis restart, trimming).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::conformance::{self, assert_quiet, event, next, EXPECT_WITHIN};
use crate::redis_server::RedisServer;
use futures::StreamExt;
use redis::Value;
use std::time::Duration;
use westtek_bus::{RedisBusConfig, RedisStreamsBus};
use westtek_domain::ports::EventBus;
use westtek_domain::DomainError;

const STREAM: &str = "westtek-events";

async fn bus(server: &RedisServer, config: RedisBusConfig) -> RedisStreamsBus {
    RedisStreamsBus::connect_with(&server.url(), STREAM, config)
        .await
        .unwrap()
}

/// Settings of a process whose consumers give up entries quickly.
fn process(id: &str, min_idle: Duration) -> RedisBusConfig {
    RedisBusConfig {
        consumer_id: Some(id.into()),
        min_idle,
        claim_interval: Duration::from_millis(50),
        retry_min: Duration::from_millis(50),
        ..RedisBusConfig::default()
    }
}

/// How many entries of `group` are delivered but not acked.
async fn pending_count(server: &RedisServer, group: &str) -> i64 {
    let mut conn = server.connection().await;
    let summary: Value = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(group)
        .query_async(&mut conn)
        .await
        .unwrap();
    match summary {
        Value::Array(parts) => match parts.first() {
            Some(Value::Int(n)) => *n,
            other => panic!("unexpected XPENDING count {other:?}"),
        },
        other => panic!("unexpected XPENDING reply {other:?}"),
    }
}

#[tokio::test]
async fn every_group_gets_each_event_once_and_one_member_of_a_group_gets_it() {
    let server = RedisServer::start().await;
    let bus = bus(&server, RedisBusConfig::default()).await;
    conformance::every_group_gets_each_event_once_and_one_member_of_a_group_gets_it(&bus).await;
    assert_eq!(pending_count(&server, "shared").await, 0);
    assert_eq!(pending_count(&server, "alone").await, 0);
}

#[tokio::test]
async fn the_envelope_round_trips_exactly() {
    let server = RedisServer::start().await;
    conformance::the_envelope_round_trips_exactly(&bus(&server, RedisBusConfig::default()).await)
        .await;
}

#[tokio::test]
async fn publishing_without_subscribers_is_fine() {
    let server = RedisServer::start().await;
    conformance::publishing_without_subscribers_is_fine(
        &bus(&server, RedisBusConfig::default()).await,
    )
    .await;
}

#[tokio::test]
async fn a_group_sees_only_events_published_after_it_first_subscribed() {
    let server = RedisServer::start().await;
    conformance::a_group_sees_only_events_published_after_it_first_subscribed(
        &bus(&server, RedisBusConfig::default()).await,
    )
    .await;
}

#[tokio::test]
async fn an_acked_event_is_not_delivered_again_to_a_later_subscriber() {
    let server = RedisServer::start().await;
    conformance::an_acked_event_is_not_delivered_again_to_a_later_subscriber(
        &bus(&server, RedisBusConfig::default()).await,
    )
    .await;
}

#[tokio::test]
async fn an_empty_group_name_is_rejected() {
    let server = RedisServer::start().await;
    conformance::an_empty_group_name_is_rejected(&bus(&server, RedisBusConfig::default()).await)
        .await;
}

#[tokio::test]
async fn an_unacked_event_is_delivered_again_to_the_next_subscriber_of_its_group() {
    let server = RedisServer::start().await;
    let bus = bus(&server, RedisBusConfig::default()).await;
    let mut first = bus.subscribe("g").await.unwrap();
    let acked = event(1);
    let unacked = event(2);
    bus.publish(&acked).await.unwrap();
    bus.publish(&unacked).await.unwrap();

    let d = next(&mut first).await;
    assert_eq!(d.event, acked);
    d.ack.ack().await.unwrap();
    let d = next(&mut first).await;
    assert_eq!(d.event, unacked);
    drop(d); // handling failed: no ack
    drop(first);

    let mut second = bus.subscribe("g").await.unwrap();
    let again = next(&mut second).await;
    assert_eq!(again.event, unacked);
    again.ack.ack().await.unwrap();
    assert_quiet(&mut second).await;
    drop(second);

    assert_eq!(pending_count(&server, "g").await, 0);
    let mut third = bus.subscribe("g").await.unwrap();
    assert_quiet(&mut third).await;
}

#[tokio::test]
async fn an_event_a_dead_process_left_unacked_is_claimed_once_it_is_idle_long_enough() {
    let server = RedisServer::start().await;
    let dead = bus(&server, process("dead", Duration::from_millis(200))).await;
    let mut sub = dead.subscribe("g").await.unwrap();
    let e = event(1);
    dead.publish(&e).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, e);
    drop((d, sub, dead));

    // A process with a long min-idle leaves the entry alone…
    let patient = bus(&server, process("patient", Duration::from_secs(60))).await;
    let mut waiting = patient.subscribe("g").await.unwrap();
    assert_quiet(&mut waiting).await;
    drop(waiting);

    // …one with a short min-idle claims it.
    let alive = bus(&server, process("alive", Duration::from_millis(200))).await;
    let mut sub = alive.subscribe("g").await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, e);
    d.ack.ack().await.unwrap();
    assert_quiet(&mut sub).await;
    assert_eq!(pending_count(&server, "g").await, 0);
}

#[tokio::test]
async fn malformed_stream_entries_are_acked_and_skipped() {
    let server = RedisServer::start().await;
    let bus = bus(&server, RedisBusConfig::default()).await;
    let mut sub = bus.subscribe("g").await.unwrap();

    let mut raw = server.connection().await;
    for fields in [
        vec![("other", "x")],
        vec![("event", "{not json")],
        vec![("event", r#"{"id": 1, "type": "x"}"#)],
        vec![("event", "")],
    ] {
        let _: String = redis::cmd("XADD")
            .arg(STREAM)
            .arg("*")
            .arg(&fields)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let good = event(1);
    bus.publish(&good).await.unwrap();

    let d = next(&mut sub).await;
    assert_eq!(d.event, good);
    d.ack.ack().await.unwrap();
    assert_quiet(&mut sub).await;
    assert_eq!(pending_count(&server, "g").await, 0);

    // The stream keeps working afterwards.
    let later = event(2);
    bus.publish(&later).await.unwrap();
    assert_eq!(next(&mut sub).await.event, later);
}

#[tokio::test]
async fn a_subscription_carries_on_after_redis_restarts() {
    let mut server = RedisServer::start().await;
    let bus = bus(&server, process("p", Duration::from_secs(60))).await;
    let mut sub = bus.subscribe("g").await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        while let Some(d) = sub.next().await {
            let event = d.event.clone();
            d.ack.ack().await.unwrap();
            if tx.send(event).is_err() {
                break;
            }
        }
    });

    let before = event(1);
    bus.publish(&before).await.unwrap();
    assert_eq!(
        tokio::time::timeout(EXPECT_WITHIN, rx.recv())
            .await
            .unwrap(),
        Some(before)
    );

    server.restart().await; // empty: stream and groups are gone
    let after = event(2);
    bus.publish(&after).await.unwrap();
    assert_eq!(
        tokio::time::timeout(EXPECT_WITHIN, rx.recv())
            .await
            .unwrap(),
        Some(after)
    );
    pump.abort();
}

#[tokio::test]
async fn publishing_while_redis_is_down_fails_as_unavailable() {
    let mut server = RedisServer::start().await;
    let bus = bus(&server, process("p", Duration::from_secs(60))).await;
    server.kill();
    let outcome = tokio::time::timeout(Duration::from_secs(30), bus.publish(&event(1)))
        .await
        .expect("publish hung while Redis was down");
    match outcome {
        Err(DomainError::Upstream { code, .. }) => assert_eq!(code, "event_bus_unavailable"),
        other => panic!("expected event_bus_unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn the_stream_is_trimmed_to_about_its_cap() {
    let server = RedisServer::start().await;
    let config = RedisBusConfig {
        max_len: 10,
        ..RedisBusConfig::default()
    };
    let bus = bus(&server, config).await;
    for n in 0..600 {
        bus.publish(&event(n)).await.unwrap();
    }
    let mut raw = server.connection().await;
    let len: u64 = redis::cmd("XLEN")
        .arg(STREAM)
        .query_async(&mut raw)
        .await
        .unwrap();
    // `MAXLEN ~` trims whole radix-tree nodes (100 entries by default).
    assert!((10..=200).contains(&len), "stream length {len}");
}

#[tokio::test]
async fn a_malformed_url_is_rejected() {
    match RedisStreamsBus::connect("definitely not a url", STREAM).await {
        Err(DomainError::Validation { field, .. }) => assert_eq!(field, "redis_url"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_event_published_after_a_subscription_was_dropped_goes_to_the_next_one_at_once() {
    let server = RedisServer::start().await;
    let bus = bus(&server, RedisBusConfig::default()).await;
    let mut first = bus.subscribe("g").await.unwrap();
    assert_quiet(&mut first).await; // leaves a blocking read in flight
    drop(first);
    let mut second = bus.subscribe("g").await.unwrap();
    assert_quiet(&mut second).await;
    let e = event(1);
    bus.publish(&e).await.unwrap();
    assert_eq!(next(&mut second).await.event, e);
}
