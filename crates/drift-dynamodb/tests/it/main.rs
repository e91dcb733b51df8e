//! The DynamoDB drift store over the wire on moto (one server per test):
//! the shared conformance suite, then what the adapter itself promises
//! (races across separate clients, lab isolation, TTL filtered on read, the
//! stream's cap at the counter, provisioning, errors naming the table).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use chrono::{TimeDelta, Utc};
use std::sync::Arc;
use std::time::Duration;
use westtek_aws::testing::Moto;
use westtek_domain::{
    DomainError, DriftEventFilter, DriftStore, EnvironmentId, LabId, RecordOutcome,
};
use westtek_drift_dynamodb::{provision, DynamoDriftStore, GSI1, GSI2, TTL_ATTRIBUTE};
use westtek_store::conformance::drift_event;

const TABLE: &str = "westtek-drift";

/// A provisioned drift table on `moto` and a store on it.
async fn store(moto: &Moto) -> DynamoDriftStore {
    let store = DynamoDriftStore::with_config(&moto.config(), TABLE);
    provision(store.client(), TABLE).await.unwrap();
    store
}

// Several worker threads, so the drift races really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dynamodb_store_passes_the_drift_conformance_suite() {
    let moto = Moto::start();
    westtek_store::conformance::run_drift(Arc::new(store(&moto).await)).await;
}

/// Two processes (two clients) racing to record the same change from the
/// same stored fingerprint: the conditional transaction lets one through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_records_with_the_same_expected_fingerprint_store_one_event() {
    let moto = Moto::start();
    let one = store(&moto).await;
    let other = DynamoDriftStore::with_config(&moto.config(), TABLE);
    let lab = LabId::new();
    for round in 0..5 {
        let env = EnvironmentId::new();
        one.record_drift(drift_event(lab, env, "base"), None)
            .await
            .unwrap();
        let (a, b) = (drift_event(lab, env, "next"), drift_event(lab, env, "next"));
        let (ra, rb) = tokio::join!(
            one.record_drift(a.clone(), Some("base".into())),
            other.record_drift(b.clone(), Some("base".into())),
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let winners: Vec<_> = outcomes
            .iter()
            .filter_map(|o| match o {
                RecordOutcome::Recorded(e) => Some(e.id),
                RecordOutcome::Stale(_) => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let loser = if winners[0] == a.id { b.id } else { a.id };
        assert!(
            matches!(
                one.get_drift_event(loser).await,
                Err(DomainError::NotFound { .. })
            ),
            "round {round}: the loser's event was stored"
        );
        let page = other
            .list_drift_events(&DriftEventFilter {
                environment_id: Some(env),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, 2, "round {round}: base + one winner");
        let state = one.get_drift_state(env).await.unwrap().unwrap();
        assert_eq!(state.last_event_id, Some(winners[0]));
        assert_eq!(state.fingerprint, "next");
    }
}

#[tokio::test]
async fn a_labs_listing_never_returns_another_labs_events() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let (mine, theirs) = (LabId::new(), LabId::new());
    let (my_env, their_env) = (EnvironmentId::new(), EnvironmentId::new());
    let at = Utc::now() - TimeDelta::minutes(30);
    let mut expected = None;
    let mut their_expected = None;
    // Interleaved, some at the very same instant.
    for i in 0..6 {
        let mut e = drift_event(mine, my_env, &format!("m{i}"));
        e.detected_at = at + TimeDelta::minutes(i);
        store.record_drift(e, expected.take()).await.unwrap();
        expected = Some(format!("m{i}"));
        let mut t = drift_event(theirs, their_env, &format!("t{i}"));
        t.detected_at = at + TimeDelta::minutes(i);
        store.record_drift(t, their_expected.take()).await.unwrap();
        their_expected = Some(format!("t{i}"));
    }
    let filters = [
        DriftEventFilter::default(),
        DriftEventFilter {
            since: Some(at),
            until: Some(at + TimeDelta::minutes(4)),
            ..Default::default()
        },
        DriftEventFilter {
            after_seq: Some(0),
            ..Default::default()
        },
        DriftEventFilter {
            limit: 2,
            offset: 1,
            ..Default::default()
        },
    ];
    for f in filters {
        let page = store
            .list_drift_events(&DriftEventFilter {
                lab_id: Some(mine),
                ..f.clone()
            })
            .await
            .unwrap();
        assert!(!page.items.is_empty(), "{f:?}");
        assert!(
            page.items.iter().all(|e| e.lab_id == mine),
            "{f:?}: {:?}",
            page.items
        );
    }
    let all = store
        .list_drift_events(&DriftEventFilter {
            lab_id: Some(mine),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.total, 6);
    // Another lab's environment under my lab: nothing.
    let cross = store
        .list_drift_events(&DriftEventFilter {
            lab_id: Some(mine),
            environment_id: Some(their_env),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((cross.total, cross.items.len()), (0, 0));
    let states = store.list_drift_states(Some(mine)).await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].environment_id, my_env);
}

/// moto stores the TTL setting but never deletes an item: the store hides
/// expired events itself (DynamoDB deletes them up to days late).
#[tokio::test]
async fn an_expired_event_is_not_returned() {
    let moto = Moto::start();
    let store = store(&moto)
        .await
        .with_event_retention(Some(Duration::from_secs(3600)));
    let lab = LabId::new();
    let env = EnvironmentId::new();
    let mut old = drift_event(lab, env, "old");
    old.detected_at = Utc::now() - TimeDelta::hours(2);
    let RecordOutcome::Recorded(old) = store.record_drift(old, None).await.unwrap() else {
        panic!("stale");
    };
    let RecordOutcome::Recorded(fresh) = store
        .record_drift(drift_event(lab, env, "fresh"), Some("old".into()))
        .await
        .unwrap()
    else {
        panic!("stale");
    };

    // Still in the table, with its TTL in the past.
    let raw = store
        .client()
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S(format!("EVENT#{}", old.id)))
        .key("sk", AttributeValue::S("EVENT".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("moto keeps expired items");
    let ttl: i64 = raw[TTL_ATTRIBUTE].as_n().unwrap().parse().unwrap();
    assert!(ttl < Utc::now().timestamp());

    assert!(matches!(
        store.get_drift_event(old.id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(store.get_drift_event(fresh.id).await.unwrap(), fresh);
    for f in [
        DriftEventFilter {
            lab_id: Some(lab),
            ..Default::default()
        },
        DriftEventFilter {
            environment_id: Some(env),
            ..Default::default()
        },
        DriftEventFilter {
            after_seq: Some(0),
            ..Default::default()
        },
        DriftEventFilter::default(),
    ] {
        let page = store.list_drift_events(&f).await.unwrap();
        assert_eq!(page.items, vec![fresh.clone()], "{f:?}");
        assert_eq!(page.total, 1, "{f:?}");
    }
}

/// An event whose `seq` is beyond the counter read at the start of a
/// listing (a recording that committed while the listing ran) is left for
/// the next poll: every event returned has all smaller seqs committed.
#[tokio::test]
async fn a_resumed_listing_stops_at_the_counter() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let lab = LabId::new();
    let RecordOutcome::Recorded(first) = store
        .record_drift(drift_event(lab, EnvironmentId::new(), "a"), None)
        .await
        .unwrap()
    else {
        panic!("stale");
    };
    // A later event's item as its transaction writes it, before the
    // counter shows it (written here by hand: seq + 2, the counter at seq).
    let mut ahead = drift_event(lab, EnvironmentId::new(), "b");
    ahead.seq = first.seq + 2;
    let seq_key = format!("{:020}", ahead.seq);
    store
        .client()
        .put_item()
        .table_name(TABLE)
        .item(
            "pk",
            AttributeValue::S(format!("EVENTS#{}", ahead.seq / 1000)),
        )
        .item("sk", AttributeValue::S(seq_key))
        .item("seq", AttributeValue::N(ahead.seq.to_string()))
        .item(
            "doc",
            AttributeValue::S(serde_json::to_string(&ahead).unwrap()),
        )
        .send()
        .await
        .unwrap();
    let page = store
        .list_drift_events(&DriftEventFilter {
            after_seq: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items, vec![first.clone()]);
    assert_eq!(page.total, 1);
    // The next recording moves the counter past it (seq + 1), still short.
    let RecordOutcome::Recorded(second) = store
        .record_drift(drift_event(lab, EnvironmentId::new(), "c"), None)
        .await
        .unwrap()
    else {
        panic!("stale");
    };
    assert_eq!(second.seq, first.seq + 1);
    let after_first = store
        .list_drift_events(&DriftEventFilter {
            after_seq: Some(first.seq),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after_first.items, vec![second]);
}

#[tokio::test]
async fn provisioning_twice_keeps_the_table_with_its_indexes_and_ttl() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let lab = LabId::new();
    let env = EnvironmentId::new();
    store
        .record_drift(drift_event(lab, env, "a"), None)
        .await
        .unwrap();
    provision(store.client(), TABLE).await.unwrap();
    assert!(store.get_drift_state(env).await.unwrap().is_some());

    let table = store
        .client()
        .describe_table()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let mut indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| i.index_name().unwrap().to_string())
        .collect();
    indexes.sort();
    assert_eq!(indexes, vec![GSI1.to_string(), GSI2.to_string()]);
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(TABLE)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
}

#[tokio::test]
async fn a_missing_table_gives_an_error_naming_the_table_and_the_fix() {
    let moto = Moto::start();
    let store = DynamoDriftStore::with_config(&moto.config(), "no-such-drift-table");
    let env = EnvironmentId::new();
    let errors = [
        store.get_drift_state(env).await.unwrap_err(),
        store
            .record_drift(drift_event(LabId::new(), env, "a"), None)
            .await
            .unwrap_err(),
        store
            .list_drift_events(&DriftEventFilter {
                lab_id: Some(LabId::new()),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    ];
    for e in errors {
        let DomainError::Internal(text) = &e else {
            panic!("not internal: {e:?}");
        };
        assert!(text.contains("no-such-drift-table"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
        assert!(text.contains("provision"), "{text}");
    }
}

/// Tests on the SDK's mock client, replaying DynamoDB's responses
/// (`TransactionCanceledException` with one `CancellationReason` per
/// write): what moto cannot show, since its transactions are not isolated
/// from concurrent requests and it reports other reason codes.
mod mocked {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

    /// GetItem of the seq counter, answering `n`.
    fn counter(n: u64) -> Rule {
        let n = n.to_string();
        mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.key()
                    .and_then(|k| k.get("pk"))
                    .is_some_and(|pk| pk.as_s().is_ok_and(|s| s == "COUNTER"))
            })
            .then_output(move || {
                GetItemOutput::builder()
                    .item("pk", AttributeValue::S("COUNTER".into()))
                    .item("sk", AttributeValue::S("drift_seq".into()))
                    .item("n", AttributeValue::N(n.clone()))
                    .build()
            })
    }

    /// A transaction cancelled with these reasons (state, id claim,
    /// counter, event).
    fn cancelled(codes: [&'static str; 4]) -> Rule {
        mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(move || {
            let mut e = TransactionCanceledException::builder().message(format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                codes.join(", ")
            ));
            for code in codes {
                e = e.cancellation_reasons(CancellationReason::builder().code(code).build());
            }
            TransactWriteItemsError::TransactionCanceledException(e.build())
        })
    }

    /// The counter condition of a transaction (`:v` of its third write).
    fn counter_condition(r: &TransactWriteItemsInput) -> Option<String> {
        r.transact_items()
            .get(2)?
            .put()?
            .expression_attribute_values()?
            .get(":v")?
            .as_n()
            .ok()
            .cloned()
    }

    /// Another process moving the counter, holding an item in its own
    /// transaction, or the table throttled, between this process's read
    /// and its transaction: the recording reads the counter again and
    /// commits with the next seq.
    #[tokio::test]
    async fn a_recording_that_loses_the_counter_to_another_process_retries_with_the_next_seq() {
        let commit = mock!(aws_sdk_dynamodb::Client::transact_write_items)
            .match_requests(|r| counter_condition(r).as_deref() == Some("7"))
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let rules = [
            counter(5),
            // Another process's transaction holds the state item.
            cancelled(["TransactionConflict", "None", "None", "None"]),
            counter(6),
            // Another process took seq 7 meanwhile.
            cancelled(["None", "None", "ConditionalCheckFailed", "None"]),
            counter(7),
            // On-demand capacity catching up.
            cancelled(["None", "None", "None", "ThrottlingError"]),
            counter(7),
            commit,
        ];
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &rules);
        let store = DynamoDriftStore::with_client(client, "mocked-drift-table");
        let event = drift_event(LabId::new(), EnvironmentId::new(), "fp");
        let outcome = store.record_drift(event.clone(), None).await.unwrap();
        let RecordOutcome::Recorded(stored) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(stored.seq, 8);
        assert_eq!(stored.id, event.id);
        assert!(
            rules.iter().all(|r| r.num_calls() == 1),
            "every response was used once"
        );
    }

    /// DynamoDB cancels a transaction whose event item is over 400 KB with
    /// reason `ValidationError`: not retried, reported with the table.
    #[tokio::test]
    async fn a_transaction_cancelled_for_another_reason_fails_without_retrying() {
        let rules = [
            counter(3),
            cancelled(["None", "None", "None", "ValidationError"]),
        ];
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, &rules);
        let store = DynamoDriftStore::with_client(client, "mocked-drift-table-2");
        let e = store
            .record_drift(drift_event(LabId::new(), EnvironmentId::new(), "fp"), None)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("mocked-drift-table-2"), "{text}");
        assert!(text.contains("ValidationError"), "{text}");
        assert!(rules.iter().all(|r| r.num_calls() == 1));
    }
}

/// DynamoDB holds at most 400 KB an item: a bigger event fails as a whole
/// and leaves the environment's state as it was.
#[tokio::test]
async fn an_event_too_big_for_an_item_fails_and_writes_nothing() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let lab = LabId::new();
    let env = EnvironmentId::new();
    let mut big = drift_event(lab, env, "big");
    big.findings = serde_json::json!([{ "details": "x".repeat(500 * 1024) }]);
    let e = store.record_drift(big.clone(), None).await.unwrap_err();
    let DomainError::Internal(text) = &e else {
        panic!("not internal: {e:?}");
    };
    assert!(text.contains(TABLE), "{text}");
    assert_eq!(store.get_drift_state(env).await.unwrap(), None);
    assert!(matches!(
        store.get_drift_event(big.id).await,
        Err(DomainError::NotFound { .. })
    ));
    // The counter did not move: the next event takes the first seq.
    let RecordOutcome::Recorded(next) = store
        .record_drift(drift_event(lab, env, "small"), None)
        .await
        .unwrap()
    else {
        panic!("stale");
    };
    assert_eq!(next.seq, 1);
}

/// A table made by hand (or an outdated stack) without the indexes: the
/// error names the table and the missing index.
#[tokio::test]
async fn a_table_without_the_indexes_gives_an_error_naming_the_index() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let moto = Moto::start();
    let store = DynamoDriftStore::with_config(&moto.config(), "bare-drift-table");
    let mut create = store
        .client()
        .create_table()
        .table_name("bare-drift-table")
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in [("pk", KeyType::Hash), ("sk", KeyType::Range)] {
        create = create
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
                    .unwrap(),
            );
    }
    create.send().await.unwrap();
    let e = store
        .list_drift_events(&DriftEventFilter {
            environment_id: Some(EnvironmentId::new()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("bare-drift-table"), "{text}");
    assert!(text.contains(GSI2), "{text}");
    // The start-up check says so before any request does.
    let text = store.check().await.unwrap_err().to_string();
    assert!(text.contains("bare-drift-table"), "{text}");
    assert!(text.contains(&format!("{GSI1}, {GSI2}")), "{text}");
    assert!(text.contains("provision"), "{text}");
}

#[tokio::test]
async fn the_start_up_check_passes_on_a_provisioned_table_and_names_a_missing_one() {
    let moto = Moto::start();
    store(&moto).await.check().await.unwrap();
    let missing = DynamoDriftStore::with_config(&moto.config(), "no-such-drift-table");
    let text = missing.check().await.unwrap_err().to_string();
    assert!(text.contains("no-such-drift-table"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
}

/// The drift service accepts webhook URLs up to 2048 characters; a sort key
/// holds 1024 bytes, so the lab's claim on a URL is keyed by its digest.
#[tokio::test]
async fn a_long_webhook_url_is_unique_per_lab_too() {
    use westtek_domain::{UserId, Webhook, WebhookFormat, WebhookId};
    let moto = Moto::start();
    let store = store(&moto).await;
    let lab = LabId::new();
    let url = format!("https://hooks.example/{}", "x".repeat(2000));
    let hook = |lab| Webhook {
        id: WebhookId::new(),
        lab_id: lab,
        url: url.clone(),
        secret: "s".into(),
        format: WebhookFormat::Generic,
        min_severity: "INFO".into(),
        created_by: UserId::new(),
        created_at: Utc::now(),
    };
    let first = hook(lab);
    store.insert_webhook(first.clone()).await.unwrap();
    assert!(matches!(
        store.insert_webhook(hook(lab)).await,
        Err(DomainError::Conflict(_))
    ));
    store.insert_webhook(hook(LabId::new())).await.unwrap();
    assert_eq!(store.list_webhooks(lab).await.unwrap(), vec![first.clone()]);
    store.delete_webhook(first.id).await.unwrap();
    store.insert_webhook(hook(lab)).await.unwrap();
}
