//! Integration tests of the MongoDB store against a real server.
//!
//! They need a MongoDB replica set (transactions do not exist on a
//! standalone server) or DocumentDB, named by `WESTTEK_TEST_MONGO_URL`, e.g.
//! `mongodb://localhost:27017/?replicaSet=rs0`. Without it each test says it
//! was skipped and passes. Every test uses its own randomly named database
//! and drops it afterwards, even when the test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use westtek_domain::audit::verify_chain;
use westtek_domain::ports::{AuditLog, SystemClock};
use westtek_domain::{AuditDraft, DomainError};
use westtek_store_mongo::MongoStore;

const URL_VAR: &str = "WESTTEK_TEST_MONGO_URL";

/// Runs `body` against a store on a fresh database, then drops the database.
async fn with_store<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Arc<MongoStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(url) = std::env::var(URL_VAR) else {
        println!("{test}: skipped, {URL_VAR} is not set (it must name a MongoDB replica set or DocumentDB)");
        return;
    };
    let database = format!("westtek_it_{}", uuid::Uuid::new_v4().simple());
    let store = Arc::new(
        MongoStore::connect(&url, &database, Arc::new(SystemClock))
            .await
            .expect("connect to WESTTEK_TEST_MONGO_URL"),
    );
    let outcome = AssertUnwindSafe(body(store.clone())).catch_unwind().await;
    store
        .database()
        .drop()
        .await
        .expect("drop the test database");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn the_mongo_store_passes_the_conformance_suite() {
    with_store("conformance", |store| async move {
        westtek_store::conformance::run_all(store).await;
    })
    .await;
}

// Several worker threads, so the drift races really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_mongo_store_passes_the_drift_conformance_suite() {
    with_store("drift conformance", |store| async move {
        westtek_store::conformance::run_drift(store).await;
    })
    .await;
}

#[tokio::test]
async fn connecting_twice_to_one_database_keeps_the_indexes() {
    with_store("reconnect", |store| async move {
        store.ensure_indexes().await.unwrap();
        store.ensure_indexes().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_keep_the_audit_chain_intact() {
    with_store("concurrent audit", |store| async move {
        let draft = |i: usize| AuditDraft {
            actor_id: None,
            actor_name: "it".into(),
            lab_id: None,
            action: "test.concurrent".into(),
            target_kind: "test".into(),
            target_id: i.to_string(),
            request_id: format!("req-{i}"),
            details: serde_json::json!({ "i": i }),
        };
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..5 {
                        store.append(vec![draft(t * 10 + i)]).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let (entries, head) = store.audit_chain().await.unwrap();
        assert_eq!(entries.len(), 40);
        assert_eq!(head.as_ref().map(|h| h.seq), Some(40));
        assert_eq!(verify_chain(&entries, head.as_ref()), vec![]);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_an_internal_error() {
    // Nothing listens on port 1; the short selection timeout keeps this fast.
    let url = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200";
    let r = MongoStore::connect(url, "westtek_unreachable", Arc::new(SystemClock)).await;
    match r {
        Err(DomainError::Internal(msg)) => assert!(msg.starts_with("mongodb: "), "{msg}"),
        Err(other) => panic!("expected Internal, got {other:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

#[tokio::test]
async fn a_malformed_url_is_an_internal_error() {
    let r = MongoStore::connect("postgres://nope", "x", Arc::new(SystemClock)).await;
    assert!(matches!(r, Err(DomainError::Internal(_))));
}
