//! Publishing against the SDK's mock EventBridge client, for the answers
//! moto never gives: moto accepts every well-formed entry, so a
//! `FailedEntryCount` > 0 (throttled or internally failed entries) and a
//! permanently refused entry are produced here, on the SDK's own
//! `PutEventsOutput` / `PutEventsResultEntry` shapes. Also the batching
//! limits (entries and bytes per call) and the size check, which must not
//! reach AWS at all.

use crate::conformance::event;
use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use westtek_bus_aws::{BusConfig, EventBridgeBus, MAX_EVENT_BYTES};
use westtek_domain::ports::EventBus;
use westtek_domain::{DomainError, DomainEvent};

/// The event ids of each `PutEvents` call, in call order.
type Calls = Arc<Mutex<Vec<Vec<String>>>>;

fn ids(input: &PutEventsInput) -> Vec<String> {
    input
        .entries()
        .iter()
        .map(|e| {
            let detail: serde_json::Value = serde_json::from_str(e.detail().unwrap()).unwrap();
            detail["id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn ok() -> PutEventsResultEntry {
    PutEventsResultEntry::builder().event_id("eb-id").build()
}

fn failed(code: &str) -> PutEventsResultEntry {
    PutEventsResultEntry::builder()
        .error_code(code)
        .error_message(format!("{code} (mock)"))
        .build()
}

/// A bus whose EventBridge answers each call with `answer(call number,
/// entry count)` and records the calls. Its SQS client is never used.
fn bus_answering(
    answer: impl Fn(usize, usize) -> Vec<PutEventsResultEntry> + Send + Sync + 'static,
    tune: impl FnOnce(&mut BusConfig),
) -> (EventBridgeBus, Calls) {
    let calls: Calls = Arc::default();
    let recorded = calls.clone();
    let rule = mock!(aws_sdk_eventbridge::Client::put_events).then_compute_output(move |input| {
        let mut calls = recorded.lock().unwrap();
        calls.push(ids(input));
        let results = answer(calls.len(), input.entries().len());
        let failed_count = results.iter().filter(|r| r.error_code().is_some()).count();
        PutEventsOutput::builder()
            .failed_entry_count(i32::try_from(failed_count).unwrap())
            .set_entries(Some(results))
            .build()
    });
    let events = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]);
    let sqs = aws_sdk_sqs::Client::new(&westtek_aws::config_for_endpoint(
        "http://127.0.0.1:9",
        "test",
        "test",
    ));
    let mut config = BusConfig::new("westtek");
    config.retry_min = Duration::from_millis(10);
    tune(&mut config);
    (
        EventBridgeBus::with_clients(events, sqs, config).unwrap(),
        calls,
    )
}

fn id(e: &DomainEvent) -> String {
    e.id.to_string()
}

#[tokio::test]
async fn entries_eventbridge_failed_are_sent_again_alone_until_accepted() {
    // Call 1 throttles the 2nd entry and fails the 3rd internally; call 2
    // throttles the 3rd again; call 3 accepts it.
    let (bus, calls) = bus_answering(
        |call, n| match call {
            1 => vec![
                ok(),
                failed("ThrottlingException"),
                failed("InternalFailure"),
            ],
            2 => vec![ok(), failed("ThrottlingException")],
            _ => vec![ok(); n],
        },
        |_| {},
    );
    let events: Vec<_> = (0..3).map(event).collect();
    bus.publish_all(&events).await.unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            vec![id(&events[0]), id(&events[1]), id(&events[2])],
            vec![id(&events[1]), id(&events[2])],
            vec![id(&events[2])],
        ]
    );
}

#[tokio::test]
async fn an_entry_that_keeps_failing_fails_its_publish_after_the_configured_attempts() {
    let (bus, calls) = bus_answering(
        |_, _| vec![failed("ThrottlingException")],
        |c| c.publish_attempts = 3,
    );
    let e = event(1);
    match bus.publish(&e).await {
        Err(DomainError::Upstream { code, message }) => {
            assert_eq!(code, "event_bus_unavailable");
            assert!(message.contains(&id(&e)), "{message}");
            assert!(message.contains("in 3 attempts"), "{message}");
            assert!(message.contains("ThrottlingException"), "{message}");
        }
        other => panic!("expected event_bus_unavailable, got {other:?}"),
    }
    assert_eq!(calls.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_entry_refused_for_good_fails_at_once_and_the_others_of_its_call_succeed() {
    let (bus, calls) = bus_answering(|_, _| vec![ok(), failed("MalformedDetail")], |_| {});
    let (good, bad) = (event(1), event(2));
    // Two publishes at once share one call.
    let (a, b) = tokio::join!(bus.publish(&good), bus.publish(&bad));
    a.unwrap();
    match b {
        Err(DomainError::Upstream { code, message }) => {
            assert_eq!(code, "event_bus_rejected");
            assert!(message.contains("MalformedDetail"), "{message}");
            assert!(message.contains(&id(&bad)), "{message}");
        }
        other => panic!("expected event_bus_rejected, got {other:?}"),
    }
    assert_eq!(calls.lock().unwrap().clone(), [vec![id(&good), id(&bad)]]);
}

#[tokio::test]
async fn publishes_are_coalesced_into_calls_of_at_most_ten_entries() {
    let (bus, calls) = bus_answering(|_, n| vec![ok(); n], |_| {});
    let events: Vec<_> = (0..25).map(event).collect();
    bus.publish_all(&events).await.unwrap();
    let calls = calls.lock().unwrap().clone();
    let sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|&n| n <= 10), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 25);
    // All were queued before the first call: full batches.
    assert_eq!(sizes, [10, 10, 5]);
    let sent: Vec<String> = calls.concat();
    assert_eq!(sent, events.iter().map(id).collect::<Vec<_>>());
}

/// An event whose entry is `MAX_EVENT_BYTES - slack` bytes.
fn event_of_entry_size(slack: usize) -> DomainEvent {
    let mut e = event(1);
    e.data = serde_json::json!({ "pad": "" });
    let base = 14 + "westtek".len() + e.event_type.len() + serde_json::to_string(&e).unwrap().len();
    e.data = serde_json::json!({ "pad": "x".repeat(MAX_EVENT_BYTES - slack - base) });
    e
}

#[tokio::test]
async fn calls_stay_within_256_kib_together() {
    let (bus, calls) = bus_answering(|_, n| vec![ok(); n], |_| {});
    // Each about 100 KiB: two fit in one call, not three.
    let events: Vec<_> = (0..3)
        .map(|_| event_of_entry_size(MAX_EVENT_BYTES - 100 * 1024))
        .collect();
    bus.publish_all(&events).await.unwrap();
    let sizes: Vec<usize> = calls.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 1]);
}

#[tokio::test]
async fn an_oversized_event_is_refused_before_calling_aws() {
    let (bus, calls) = bus_answering(|_, n| vec![ok(); n], |_| {});
    let at_limit = event_of_entry_size(0);
    bus.publish(&at_limit).await.unwrap();
    let over = event_of_entry_size(0);
    let mut over = over;
    over.data = serde_json::json!({ "pad": format!("{}x", over.data["pad"].as_str().unwrap()) });
    match bus.publish(&over).await {
        Err(DomainError::Validation { field, message }) => {
            assert_eq!(field, "event");
            assert!(message.contains(&id(&over)), "{message}");
            assert!(
                message.contains(&format!("is {} bytes", MAX_EVENT_BYTES + 1)),
                "{message}"
            );
            assert!(message.contains("publish a reference"), "{message}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    // Only the event at the limit reached EventBridge.
    assert_eq!(calls.lock().unwrap().clone(), [vec![id(&at_limit)]]);
}
