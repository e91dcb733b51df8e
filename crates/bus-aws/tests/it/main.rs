//! `EventBridgeBus` over the wire on moto (each test starts its own
//! `moto_server`): every body of the bus conformance suite, plus what only
//! this adapter promises (configured groups, redelivery after the visibility
//! timeout, release by a dropped subscription, malformed messages to the DLQ,
//! the provisioned resources). EventBridge answers moto never gives (failed
//! entries) are tested on the SDK's mock client (`mock_publisher`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../bus/tests/it/conformance.rs"]
mod conformance;
mod mock_publisher;

use aws_sdk_sqs::types::QueueAttributeName;
use conformance::{assert_quiet, event, next, EXPECT_WITHIN};
use futures::StreamExt;
use std::time::{Duration, Instant};
use westtek_aws::testing::Moto;
use westtek_bus_aws::{provision, BusConfig, EventBridgeBus, ProvisionSettings};
use westtek_domain::ports::EventBus;
use westtek_domain::DomainError;

const BUS: &str = "westtek";

/// A bus on `moto` that creates a group's queue on its first subscription
/// (the conformance suite's "a group sees events published after it first
/// subscribed"), with the production defaults otherwise.
async fn auto_bus(moto: &Moto, tune: impl FnOnce(&mut BusConfig)) -> EventBridgeBus {
    auto_bus_with(moto, tune, ProvisionSettings::default()).await
}

async fn auto_bus_with(
    moto: &Moto,
    tune: impl FnOnce(&mut BusConfig),
    settings: ProvisionSettings,
) -> EventBridgeBus {
    let sdk = moto.config();
    provision(&sdk, BUS, &[], &settings).await.unwrap();
    let mut config = BusConfig::new(BUS);
    tune(&mut config);
    EventBridgeBus::with_config(&sdk, config)
        .unwrap()
        .with_auto_provision(settings)
}

#[tokio::test]
async fn every_group_gets_each_event_once_and_one_member_of_a_group_gets_it() {
    let moto = Moto::start();
    conformance::every_group_gets_each_event_once_and_one_member_of_a_group_gets_it(
        &auto_bus(&moto, |_| {}).await,
    )
    .await;
}

#[tokio::test]
async fn the_envelope_round_trips_exactly() {
    let moto = Moto::start();
    conformance::the_envelope_round_trips_exactly(&auto_bus(&moto, |_| {}).await).await;
}

#[tokio::test]
async fn publishing_without_subscribers_is_fine() {
    let moto = Moto::start();
    conformance::publishing_without_subscribers_is_fine(&auto_bus(&moto, |_| {}).await).await;
}

#[tokio::test]
async fn a_group_sees_only_events_published_after_it_first_subscribed() {
    let moto = Moto::start();
    conformance::a_group_sees_only_events_published_after_it_first_subscribed(
        &auto_bus(&moto, |_| {}).await,
    )
    .await;
}

#[tokio::test]
async fn an_acked_event_is_not_delivered_again_to_a_later_subscriber() {
    let moto = Moto::start();
    conformance::an_acked_event_is_not_delivered_again_to_a_later_subscriber(
        &auto_bus(&moto, |_| {}).await,
    )
    .await;
}

#[tokio::test]
async fn an_empty_group_name_is_rejected() {
    let moto = Moto::start();
    conformance::an_empty_group_name_is_rejected(&auto_bus(&moto, |_| {}).await).await;
}

/// The production set-up: resources provisioned ahead (as the CDK app
/// does) and the group → queue map given to the bus.
#[tokio::test]
async fn a_configured_group_holds_the_events_published_before_its_first_subscriber() {
    let moto = Moto::start();
    let sdk = moto.config();
    let made = provision(
        &sdk,
        BUS,
        &["drift", "knowledge"],
        &ProvisionSettings::default(),
    )
    .await
    .unwrap();
    let bus = EventBridgeBus::with_config(&sdk, BusConfig::new(BUS).with_queues(made.queue_map()))
        .unwrap();
    let early = event(1);
    bus.publish(&early).await.unwrap();
    for group in ["drift", "knowledge"] {
        let mut sub = bus.subscribe(group).await.unwrap();
        let d = next(&mut sub).await;
        assert_eq!(d.event, early, "group {group}");
        d.ack.ack().await.unwrap();
        assert_quiet(&mut sub).await;
    }
    match bus.subscribe("snapshots").await {
        Err(DomainError::Validation { field, message }) => {
            assert_eq!(field, "group");
            assert!(message.contains("`snapshots`"), "{message}");
            assert!(
                message.contains("configured: drift, knowledge"),
                "{message}"
            );
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a group with no queue was accepted"),
    }
}

/// Services as separate processes: each has its own bus (own clients, own
/// publishing task); a group's members in two processes share its queue.
#[tokio::test]
async fn an_event_published_in_one_process_reaches_one_member_of_each_group_in_others() {
    let moto = Moto::start();
    let sdk = moto.config();
    let made = provision(
        &sdk,
        BUS,
        &["drift", "knowledge"],
        &ProvisionSettings::default(),
    )
    .await
    .unwrap();
    let process = || {
        EventBridgeBus::with_config(
            &moto.config(),
            BusConfig::new(BUS).with_queues(made.queue_map()),
        )
        .unwrap()
    };
    let (env_manager, drift_a, drift_b, knowledge) = (process(), process(), process(), process());
    let drift = futures::stream::select(
        drift_a.subscribe("drift").await.unwrap(),
        drift_b.subscribe("drift").await.unwrap(),
    );
    let mut drift = drift.boxed();
    let mut knowledge = knowledge.subscribe("knowledge").await.unwrap();
    let e = event(1);
    env_manager.publish(&e).await.unwrap();
    for sub in [&mut drift, &mut knowledge] {
        let d = next(sub).await;
        assert_eq!(d.event, e);
        d.ack.ack().await.unwrap();
        assert_quiet(sub).await;
    }
}

/// The resources the crate docs promise the CDK app will create.
#[tokio::test]
async fn provisioning_creates_the_documented_resources_and_can_run_again() {
    let moto = Moto::start();
    let sdk = moto.config();
    let settings = ProvisionSettings::default();
    let first = provision(&sdk, BUS, &["drift"], &settings).await.unwrap();
    let again = provision(&sdk, BUS, &["drift"], &settings).await.unwrap();
    assert_eq!(first, again);
    let drift = &first.groups["drift"];
    assert!(
        drift.queue_arn.ends_with(":westtek-drift"),
        "{}",
        drift.queue_arn
    );
    assert!(
        drift.dlq_arn.ends_with(":westtek-drift-dlq"),
        "{}",
        drift.dlq_arn
    );

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&drift.queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap();
    let attrs = attrs.attributes().unwrap();
    let redrive: serde_json::Value =
        serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], drift.dlq_arn.as_str());
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
    assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], "60");
    let policy: serde_json::Value =
        serde_json::from_str(&attrs[&QueueAttributeName::Policy]).unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(statement["Action"], "sqs:SendMessage");
    assert_eq!(
        statement["Condition"]["ArnEquals"]["aws:SourceArn"],
        drift.rule_arn.as_str()
    );

    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let rule = events
        .describe_rule()
        .name(&drift.rule_name)
        .event_bus_name(BUS)
        .send()
        .await
        .unwrap();
    let pattern: serde_json::Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(pattern, serde_json::json!({"source": ["westtek"]}));
    let targets = events
        .list_targets_by_rule()
        .rule(&drift.rule_name)
        .event_bus_name(BUS)
        .send()
        .await
        .unwrap();
    let targets = targets.targets();
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0].arn(), drift.queue_arn);
    assert_eq!(
        targets[0].dead_letter_config().and_then(|d| d.arn()),
        Some(drift.dlq_arn.as_str())
    );
}

#[tokio::test]
async fn an_unacked_delivery_is_delivered_again_after_the_visibility_timeout() {
    let moto = Moto::start();
    let bus = auto_bus(&moto, |c| {
        c.visibility_timeout = Some(Duration::from_secs(2))
    })
    .await;
    let mut sub = bus.subscribe("g").await.unwrap();
    let e = event(1);
    bus.publish(&e).await.unwrap();
    let d = next(&mut sub).await;
    let received = Instant::now();
    assert_eq!(d.event, e);
    drop(d); // handling failed: no ack

    // Hidden while the timeout runs…
    assert_quiet(&mut sub).await;
    // …then back, to the same group.
    let again = next(&mut sub).await;
    assert_eq!(again.event, e);
    assert!(
        received.elapsed() >= Duration::from_millis(1500),
        "came back after {:?}, before the 2 s visibility timeout",
        received.elapsed()
    );
    again.ack.ack().await.unwrap();
    // Acked: gone for good, also after another timeout.
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_secs(3), sub.next()).await {
        panic!("an acked event came back: {:?}", d.event);
    }
}

/// With the queue's 60 s visibility timeout, only the release by the
/// dropped subscription can bring the event back within the test's wait.
#[tokio::test]
async fn messages_a_dropped_subscription_received_go_to_the_next_member_at_once() {
    let moto = Moto::start();
    let bus = auto_bus(&moto, |_| {}).await;
    let mut first = bus.subscribe("g").await.unwrap();
    assert_quiet(&mut first).await; // leaves a long poll in flight
    drop(first);
    let e = event(1);
    bus.publish(&e).await.unwrap();
    // The dropped subscription's long poll has it by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second = bus.subscribe("g").await.unwrap();
    let started = Instant::now();
    let d = next(&mut second).await;
    assert_eq!(d.event, e);
    assert!(started.elapsed() < EXPECT_WITHIN);
    d.ack.ack().await.unwrap();
}

#[tokio::test]
async fn a_malformed_message_is_skipped_and_moves_to_the_dead_letter_queue() {
    let moto = Moto::start();
    let settings = ProvisionSettings {
        max_receive_count: 2,
        ..ProvisionSettings::default()
    };
    let bus = auto_bus_with(
        &moto,
        |c| c.visibility_timeout = Some(Duration::from_secs(1)),
        settings.clone(),
    )
    .await;
    let mut sub = bus.subscribe("g").await.unwrap();
    let made = provision(&moto.config(), BUS, &["g"], &settings)
        .await
        .unwrap();
    let queues = &made.groups["g"];
    let sqs = aws_sdk_sqs::Client::new(&moto.config());
    for body in ["{not json", r#"{"detail": {"id": 1}}"#] {
        sqs.send_message()
            .queue_url(&queues.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let good = event(1);
    bus.publish(&good).await.unwrap();
    let d = next(&mut sub).await;
    assert_eq!(d.event, good);
    d.ack.ack().await.unwrap();

    // Received twice without an ack, the two bad messages move to the DLQ.
    let deadline = Instant::now() + EXPECT_WITHIN;
    let mut dead = Vec::new();
    while dead.len() < 2 {
        assert!(Instant::now() < deadline, "only {dead:?} reached the DLQ");
        let out = sqs
            .receive_message()
            .queue_url(&queues.dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        dead.extend(
            out.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_string)),
        );
    }
    dead.sort();
    assert_eq!(dead, [r#"{"detail": {"id": 1}}"#, "{not json"]);
    // The subscription carries on.
    let later = event(2);
    bus.publish(&later).await.unwrap();
    assert_eq!(next(&mut sub).await.event, later);
}

#[tokio::test]
async fn concurrent_publishes_all_arrive_once() {
    let moto = Moto::start();
    let bus = auto_bus(&moto, |_| {}).await;
    let mut sub = bus.subscribe("g").await.unwrap();
    let events: Vec<_> = (0..25).map(event).collect();
    let results = futures::future::join_all(events.iter().map(|e| bus.publish(e))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    bus.publish_all(&[event(100), event(101)]).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..27 {
        let d = next(&mut sub).await;
        assert!(seen.insert(d.event.id.to_string()), "{} twice", d.event.id);
        d.ack.ack().await.unwrap();
    }
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn publishing_to_a_bus_that_does_not_exist_says_so() {
    let moto = Moto::start();
    let bus = EventBridgeBus::with_config(&moto.config(), BusConfig::new("nope")).unwrap();
    match bus.publish(&event(1)).await {
        Err(DomainError::Upstream { code, message }) => {
            assert_eq!(code, "event_bus_unavailable");
            assert!(message.contains("bus nope"), "{message}");
            assert!(message.contains("ResourceNotFoundException"), "{message}");
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("expected event_bus_unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribing_to_a_configured_queue_that_does_not_exist_says_so() {
    let moto = Moto::start();
    let sdk = moto.config();
    provision(&sdk, BUS, &[], &ProvisionSettings::default())
        .await
        .unwrap();
    let url = format!("{}/123456789012/westtek-gone", moto.endpoint());
    let queues = [("gone".to_string(), url.clone())].into_iter().collect();
    let bus = EventBridgeBus::with_config(&sdk, BusConfig::new(BUS).with_queues(queues)).unwrap();
    match bus.subscribe("gone").await {
        Err(DomainError::Upstream { code, message }) => {
            assert_eq!(code, "event_bus_unavailable");
            assert!(message.contains(&url), "{message}");
            assert!(message.contains("queue does not exist"), "{message}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("subscribed to a queue that does not exist"),
    }
}
