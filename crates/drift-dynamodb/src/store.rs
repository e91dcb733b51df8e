//! The [`DriftStore`] port on the drift table (layout and policy in the
//! crate docs): reads, queries and the conditional writes behind each
//! operation.

use crate::error::dynamo_error;
use crate::keys::{self, *};
use crate::DynamoDriftStore;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tracing::instrument;
use westtek_domain::audit::format_time;
use westtek_domain::{
    DeadLetterRecord, DomainError, DriftEvent, DriftEventFilter, DriftEventId, DriftStateRecord,
    DriftStore, EnvironmentId, LabId, Page, RecommendationRecord, RecordOutcome, Result, Webhook,
    WebhookId,
};

/// Page size when the caller asks for 0.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size served.
const MAX_LIMIT: u32 = 1000;
/// Attempts of `record_drift` while other recordings move the counter.
const MAX_ATTEMPTS: u32 = 100;
/// Event partitions queried at once by a listing.
const PARALLEL_PARTITIONS: usize = 4;

/// The page size actually served for a requested `limit` (as the SQLite
/// adapter serves it).
fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// The state an event moves its environment to.
fn state_after(event: &DriftEvent) -> DriftStateRecord {
    DriftStateRecord {
        environment_id: event.environment_id,
        lab_id: event.lab_id,
        status: event.status,
        fingerprint: event.fingerprint.clone(),
        baseline_snapshot_id: event.baseline_snapshot_id,
        last_event_id: Some(event.id),
        updated_at: event.detected_at,
    }
}

/// Whether `e` passes every filter of `f` (the queries only narrow).
/// Times compare at microseconds, as their keys (and the SQLite adapter's
/// columns) hold them.
fn wanted(f: &DriftEventFilter, e: &DriftEvent) -> bool {
    let at = format_time(e.detected_at);
    f.lab_id.is_none_or(|l| l == e.lab_id)
        && f.environment_id.is_none_or(|v| v == e.environment_id)
        && f.since.is_none_or(|s| at >= format_time(s))
        && f.until.is_none_or(|u| at < format_time(u))
        && f.after_seq.is_none_or(|n| e.seq > n)
}

/// A conditional write's condition.
struct Condition {
    expression: &'static str,
    names: HashMap<String, String>,
    values: Option<HashMap<String, AttributeValue>>,
}

impl Condition {
    /// The item does not exist yet.
    fn absent() -> Self {
        Condition {
            expression: "attribute_not_exists(#pk)",
            names: HashMap::from([("#pk".to_string(), PK.to_string())]),
            values: None,
        }
    }

    /// The item exists.
    fn present() -> Self {
        Condition {
            expression: "attribute_exists(#pk)",
            names: HashMap::from([("#pk".to_string(), PK.to_string())]),
            values: None,
        }
    }

    /// Attribute `name` holds `value`.
    fn equals(name: &str, value: AttributeValue) -> Self {
        Condition {
            expression: "#a = :v",
            names: HashMap::from([("#a".to_string(), name.to_string())]),
            values: Some(HashMap::from([(":v".to_string(), value)])),
        }
    }
}

/// What became of one `record_drift` transaction.
enum Attempt {
    Committed,
    /// The state was not at the expected fingerprint: here it is.
    Stale(Option<DriftStateRecord>),
    /// The event id is taken (and the state still matched).
    IdTaken,
    /// The counter moved, a concurrent transaction held an item, or the
    /// table is throttled: read the counter again and retry.
    Retry,
}

/// Whether a transaction cancelled for `reason` is worth retrying: another
/// transaction held one of its items, or the table is throttled.
fn retried(reason: &str) -> bool {
    matches!(
        reason,
        "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
    )
}

/// A random delay in `0..=max` (jitter spreads the retries of racing
/// recorders).
fn jitter(max: Duration) -> Duration {
    let millis = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    let random = uuid::Uuid::new_v4().as_u128();
    Duration::from_millis(u64::try_from(random % u128::from(millis.saturating_add(1))).unwrap_or(0))
}

/// The queue of `record_drift` calls on `table` in this process.
///
/// Every recording writes the one counter item, so across the table at
/// most one commits at a time whatever the callers do; letting a process's
/// own callers race only buys cancelled transactions (which still consume
/// write capacity) and retries. Across processes, the transaction's
/// conditions keep recordings correct. It also keeps moto usable: moto's
/// `TransactWriteItems` is not isolated from concurrent requests (it
/// snapshots the whole table and restores the snapshot when a transaction
/// is cancelled, wiping writes committed meanwhile).
fn recording_lock(table: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let mut locks = LOCKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(locks.entry(table.to_string()).or_default())
}

impl DynamoDriftStore {
    fn internal_build(&self, what: &str, e: impl std::fmt::Display) -> DomainError {
        DomainError::internal(format!(
            "building a DynamoDB {what} for table {}: {e}",
            self.table
        ))
    }

    /// The item at `key`, strongly consistent.
    async fn get(&self, key: Item) -> Result<Option<Item>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| dynamo_error(&self.table, "GetItem", e))
    }

    /// Every item `query` selects (following `LastEvaluatedKey`), at most
    /// `max` when given.
    async fn query_all(&self, query: QueryFluentBuilder, max: Option<usize>) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = query.clone().table_name(&self.table);
            if let Some(m) = max {
                q = q.limit(i32::try_from(m - items.len()).unwrap_or(i32::MAX));
            }
            let index = q.get_index_name().clone();
            let out = q
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| match index {
                    Some(i) => dynamo_error(&self.table, &format!("Query on index {i}"), e),
                    None => dynamo_error(&self.table, "Query", e),
                })?;
            items.extend(out.items.unwrap_or_default());
            if max.is_some_and(|m| items.len() >= m) {
                items.truncate(max.unwrap_or(usize::MAX));
                return Ok(items);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// A `Put` of `item` under `condition`.
    fn put(&self, item: Item, condition: Option<Condition>) -> Result<Put> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            put = put
                .condition_expression(c.expression)
                .set_expression_attribute_names(Some(c.names))
                .set_expression_attribute_values(c.values);
        }
        put.build().map_err(|e| self.internal_build("Put", e))
    }

    /// A `Delete` of `key` under `condition`.
    fn delete(&self, key: Item, condition: Condition) -> Result<Delete> {
        Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition.expression)
            .set_expression_attribute_names(Some(condition.names))
            .set_expression_attribute_values(condition.values)
            .build()
            .map_err(|e| self.internal_build("Delete", e))
    }

    /// Runs a transaction; `Ok(Err(reasons))` when it was cancelled, with
    /// each write's cancellation code (`None` for those that passed) and
    /// the item it found, when the write asked for it.
    async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
    ) -> Result<std::result::Result<(), Vec<(Option<String>, Option<Item>)>>> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => Ok(Err(c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| {
                        (
                            r.code().filter(|c| *c != "None").map(str::to_string),
                            r.item().cloned(),
                        )
                    })
                    .collect())),
                _ => Err(dynamo_error(&self.table, "TransactWriteItems", e)),
            },
        }
    }

    /// The TTL attribute of an event detected at `at`, if events expire.
    fn expiry(&self, at: DateTime<Utc>) -> Option<AttributeValue> {
        self.retention
            .map(|r| n(at.checked_add_signed(r).map_or(i64::MAX, |t| t.timestamp())))
    }

    fn state_item(&self, state: &DriftStateRecord) -> Result<Item> {
        let mut item = state_key(state.environment_id);
        item.insert(FINGERPRINT.into(), s(state.fingerprint.clone()));
        item.insert(DOC.into(), doc(state)?);
        item.insert(GSI1PK.into(), s("STATES"));
        item.insert(
            GSI1SK.into(),
            s(format!("{}#{}", state.lab_id, state.environment_id)),
        );
        Ok(item)
    }

    fn event_items(&self, event: &DriftEvent) -> Result<(Item, Item)> {
        let mut item = event_key(event.seq);
        item.insert(SEQ.into(), n(event.seq));
        item.insert(DOC.into(), doc(event)?);
        item.insert(GSI1PK.into(), s(format!("LAB#{}", event.lab_id)));
        item.insert(GSI1SK.into(), s(time_seq(event.detected_at, event.seq)));
        item.insert(GSI2PK.into(), s(format!("ENV#{}", event.environment_id)));
        item.insert(GSI2SK.into(), s(time_seq(event.detected_at, event.seq)));
        let mut claim = event_id_key(event.id);
        claim.insert(SEQ.into(), n(event.seq));
        if let Some(ttl) = self.expiry(event.detected_at) {
            item.insert(TTL_ATTRIBUTE.into(), ttl.clone());
            claim.insert(TTL_ATTRIBUTE.into(), ttl);
        }
        Ok((item, claim))
    }

    /// One transaction of `record_drift` with `event.seq` = `last` + 1.
    async fn record_attempt(
        &self,
        event: &DriftEvent,
        expected: Option<&str>,
        last: u64,
    ) -> Result<Attempt> {
        let state_condition = match expected {
            None => Condition::absent(),
            Some(fp) => Condition::equals(FINGERPRINT, s(fp)),
        };
        let mut counter = counter_key();
        counter.insert(COUNTER_VALUE.into(), n(event.seq));
        let counter_condition = if last == 0 {
            Condition::absent()
        } else {
            Condition::equals(COUNTER_VALUE, n(last))
        };
        let (event_item, claim) = self.event_items(event)?;
        let mut state_put =
            self.put(self.state_item(&state_after(event))?, Some(state_condition))?;
        // A stale caller is told the state it lost to without another read.
        state_put.return_values_on_condition_check_failure =
            Some(ReturnValuesOnConditionCheckFailure::AllOld);
        // The order matters: the cancellation reasons come back in it.
        let writes = vec![
            TransactWriteItem::builder().put(state_put).build(),
            TransactWriteItem::builder()
                .put(self.put(claim, Some(Condition::absent()))?)
                .build(),
            TransactWriteItem::builder()
                .put(self.put(counter, Some(counter_condition))?)
                .build(),
            TransactWriteItem::builder()
                .put(self.put(event_item, Some(Condition::absent()))?)
                .build(),
        ];
        let mut reasons = match self.transact(writes).await? {
            Ok(()) => return Ok(Attempt::Committed),
            Err(reasons) => reasons,
        };
        let codes: Vec<Option<&str>> = reasons.iter().map(|(c, _)| c.as_deref()).collect();
        if let Some(other) = codes
            .iter()
            .flatten()
            .find(|c| **c != "ConditionalCheckFailed" && !retried(c))
        {
            return Err(DomainError::internal(format!(
                "DynamoDB TransactWriteItems on table {} (recording drift event {}) was \
                 cancelled: {other} (reasons: {codes:?})",
                self.table, event.id
            )));
        }
        match codes.as_slice() {
            [Some("ConditionalCheckFailed"), ..] => {
                let current = reasons.swap_remove(0).1;
                Ok(Attempt::Stale(
                    current.map(|i| from_doc(&self.table, &i)).transpose()?,
                ))
            }
            [None, Some("ConditionalCheckFailed"), ..] => Ok(Attempt::IdTaken),
            _ => Ok(Attempt::Retry),
        }
    }

    /// The last `seq` handed out (0: none yet), strongly consistent.
    async fn last_seq(&self) -> Result<u64> {
        Ok(self
            .get(counter_key())
            .await?
            .and_then(|i| number(&i, COUNTER_VALUE))
            .unwrap_or(0))
    }

    /// Events decoded from `items`, expired ones dropped.
    fn events_of(&self, items: Vec<Item>, now: DateTime<Utc>) -> Result<Vec<DriftEvent>> {
        items
            .into_iter()
            .filter(|i| !expired(i, now))
            .map(|i| from_doc(&self.table, &i))
            .collect()
    }

    /// Events with `after < seq <= last`, from the base table (strongly
    /// consistent).
    async fn events_between(&self, after: u64, last: u64) -> Result<Vec<Item>> {
        if after >= last {
            return Ok(Vec::new());
        }
        let (low, high) = (seq_key(after + 1), seq_key(last));
        let partitions = partition_of(after + 1)..=partition_of(last);
        let pages: Vec<Vec<Item>> = futures::stream::iter(partitions)
            .map(|p| {
                let query = self
                    .client
                    .query()
                    .consistent_read(true)
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":pk", s(events_pk(p)))
                    .expression_attribute_values(":low", s(low.clone()))
                    .expression_attribute_values(":high", s(high.clone()));
                self.query_all(query, None)
            })
            .buffered(PARALLEL_PARTITIONS)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// Events of a lab or environment index partition in `f`'s window.
    async fn events_in_index(
        &self,
        index: &str,
        pk_name: &str,
        sk_name: &str,
        pk: String,
        f: &DriftEventFilter,
    ) -> Result<Vec<Item>> {
        let mut query = self
            .client
            .query()
            .index_name(index)
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk));
        // `<time>#<seq>` never equals a bare time: `>= since` and `< until`
        // (or `BETWEEN since AND until`) select exactly the events whose
        // time is in `[since, until)`.
        let (since, until) = (f.since.map(format_time), f.until.map(format_time));
        let condition = match (since, until) {
            (Some(since), Some(until)) => {
                if since >= until {
                    return Ok(Vec::new());
                }
                query = query
                    .expression_attribute_values(":low", s(since))
                    .expression_attribute_values(":high", s(until));
                "#pk = :pk AND #sk BETWEEN :low AND :high"
            }
            (Some(since), None) => {
                query = query.expression_attribute_values(":low", s(since));
                "#pk = :pk AND #sk >= :low"
            }
            (None, Some(until)) => {
                query = query.expression_attribute_values(":high", s(until));
                "#pk = :pk AND #sk < :high"
            }
            (None, None) => "#pk = :pk",
        };
        if condition.contains("#sk") {
            query = query.expression_attribute_names("#sk", sk_name);
        }
        self.query_all(query.key_condition_expression(condition), None)
            .await
    }

    /// Newest first (by key, i.e. time then id) documents of partition
    /// `pk`, at most `limit`.
    async fn newest_docs<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        limit: u32,
    ) -> Result<Vec<T>> {
        let query = self
            .client
            .query()
            .consistent_read(true)
            .scan_index_forward(false)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(pk));
        let max = usize::try_from(page_limit(limit)).unwrap_or(usize::MAX);
        self.query_all(query, Some(max))
            .await?
            .iter()
            .map(|i| from_doc(&self.table, i))
            .collect()
    }

    /// Puts `item` unless its key exists; `Conflict(message)` if it does.
    async fn insert(&self, item: Item, message: impl FnOnce() -> String) -> Result<()> {
        let c = Condition::absent();
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(c.expression)
            .set_expression_attribute_names(Some(c.names))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(DomainError::Conflict(message()))
            }
            Err(e) => Err(dynamo_error(&self.table, "PutItem", e)),
        }
    }
}

#[async_trait]
impl DriftStore for DynamoDriftStore {
    #[instrument(skip_all, fields(table = %self.table, event = %event.id, env = %event.environment_id))]
    async fn record_drift(
        &self,
        mut event: DriftEvent,
        expected_fingerprint: Option<String>,
    ) -> Result<RecordOutcome> {
        // Recordings of this process queue here rather than race (see
        // `recording_lock`); other processes are kept out by the conditions.
        let lock = recording_lock(&self.table);
        let _turn = lock.lock().await;
        let mut backoff = Duration::from_millis(5);
        for _ in 0..MAX_ATTEMPTS {
            let last = self.last_seq().await?;
            event.seq = last.checked_add(1).ok_or_else(|| {
                DomainError::internal(format!(
                    "DynamoDB table {}: the drift seq counter is exhausted",
                    self.table
                ))
            })?;
            match self
                .record_attempt(&event, expected_fingerprint.as_deref(), last)
                .await?
            {
                Attempt::Committed => return Ok(RecordOutcome::Recorded(event)),
                Attempt::Stale(state) => return Ok(RecordOutcome::Stale(state)),
                Attempt::IdTaken => {
                    return Err(DomainError::Conflict(format!(
                        "a drift event with id {} already exists",
                        event.id
                    )))
                }
                Attempt::Retry => {
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                }
            }
        }
        Err(DomainError::internal(format!(
            "DynamoDB table {}: recording drift event {} gave up after {MAX_ATTEMPTS} attempts \
             (other recordings kept moving the seq counter or holding the state)",
            self.table, event.id
        )))
    }

    #[instrument(skip_all, fields(table = %self.table, env = %state.environment_id))]
    async fn put_drift_state(&self, state: DriftStateRecord) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.state_item(&state)?))
            .send()
            .await
            .map_err(|e| dynamo_error(&self.table, "PutItem (drift state)", e))?;
        Ok(())
    }

    async fn get_drift_state(&self, env: EnvironmentId) -> Result<Option<DriftStateRecord>> {
        self.get(state_key(env))
            .await?
            .map(|i| from_doc(&self.table, &i))
            .transpose()
    }

    /// Ordered by environment id (from the `gsi1` index: eventually
    /// consistent).
    async fn list_drift_states(&self, lab: Option<LabId>) -> Result<Vec<DriftStateRecord>> {
        let mut query = self
            .client
            .query()
            .index_name(GSI1)
            .expression_attribute_names("#pk", GSI1PK)
            .expression_attribute_values(":pk", s("STATES"));
        query = match lab {
            Some(l) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :lab)")
                .expression_attribute_names("#sk", GSI1SK)
                .expression_attribute_values(":lab", s(format!("{l}#"))),
            None => query.key_condition_expression("#pk = :pk"),
        };
        let mut states: Vec<DriftStateRecord> = self
            .query_all(query, None)
            .await?
            .iter()
            .map(|i| from_doc(&self.table, i))
            .collect::<Result<_>>()?;
        states.sort_by_cached_key(|s| s.environment_id.to_string());
        Ok(states)
    }

    async fn delete_drift_state(&self, env: EnvironmentId) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(state_key(env)))
            .send()
            .await
            .map_err(|e| dynamo_error(&self.table, "DeleteItem (drift state)", e))?;
        Ok(())
    }

    async fn get_drift_event(&self, id: DriftEventId) -> Result<DriftEvent> {
        let now = Utc::now();
        let not_found = || DomainError::NotFound {
            kind: "drift event",
        };
        let claim = self
            .get(event_id_key(id))
            .await?
            .filter(|i| !expired(i, now))
            .ok_or_else(not_found)?;
        let seq = number(&claim, SEQ).ok_or_else(|| {
            DomainError::internal(format!(
                "DynamoDB table {}: the id item of drift event {id} has no seq",
                self.table
            ))
        })?;
        let item = self
            .get(event_key(seq))
            .await?
            .filter(|i| !expired(i, now))
            .ok_or_else(not_found)?;
        from_doc(&self.table, &item)
    }

    /// `total` counts every event matching the filter, `after_seq`
    /// included. With `after_seq`, or with neither lab nor environment,
    /// the base table is read (strongly consistent, capped at the counter);
    /// otherwise the lab or environment index.
    #[instrument(skip_all, fields(table = %self.table))]
    async fn list_drift_events(&self, f: &DriftEventFilter) -> Result<Page<DriftEvent>> {
        let now = Utc::now();
        let limit = page_limit(f.limit);
        let mut events =
            if f.after_seq.is_some() || (f.lab_id.is_none() && f.environment_id.is_none()) {
                let last = self.last_seq().await?;
                let items = self.events_between(f.after_seq.unwrap_or(0), last).await?;
                let mut events = self.events_of(items, now)?;
                events.retain(|e| e.seq <= last);
                events
            } else if let Some(env) = f.environment_id {
                let items = self
                    .events_in_index(GSI2, GSI2PK, GSI2SK, format!("ENV#{env}"), f)
                    .await?;
                self.events_of(items, now)?
            } else {
                let lab = f.lab_id.map(|l| l.to_string()).unwrap_or_default();
                let items = self
                    .events_in_index(GSI1, GSI1PK, GSI1SK, format!("LAB#{lab}"), f)
                    .await?;
                self.events_of(items, now)?
            };
        events.retain(|e| wanted(f, e));
        if f.after_seq.is_some() {
            events.sort_by_key(|e| e.seq);
        } else {
            events.sort_by_key(|e| std::cmp::Reverse(e.seq));
        }
        let total = u64::try_from(events.len()).unwrap_or(u64::MAX);
        let items = events
            .into_iter()
            .skip(usize::try_from(f.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        Ok(Page {
            items,
            total,
            limit,
            offset: f.offset,
        })
    }

    #[instrument(skip_all, fields(table = %self.table, webhook = %hook.id))]
    async fn insert_webhook(&self, hook: Webhook) -> Result<()> {
        let mut by_id = webhook_key(hook.id);
        by_id.insert(DOC.into(), doc(&hook)?);
        let mut of_lab = lab_webhook_key(hook.lab_id, &hook.url);
        of_lab.insert(WEBHOOK_ID.into(), s(hook.id.to_string()));
        of_lab.insert(DOC.into(), doc(&hook)?);
        let writes = vec![
            TransactWriteItem::builder()
                .put(self.put(by_id, Some(Condition::absent()))?)
                .build(),
            TransactWriteItem::builder()
                .put(self.put(of_lab, Some(Condition::absent()))?)
                .build(),
        ];
        match self.transact(writes).await? {
            Ok(()) => Ok(()),
            Err(codes) if codes.get(1).is_some_and(|(c, _)| c.is_some()) => Err(
                DomainError::Conflict(format!("the lab already has a webhook to {}", hook.url)),
            ),
            Err(codes) if codes.first().is_some_and(|(c, _)| c.is_some()) => Err(
                DomainError::Conflict(format!("a webhook with id {} already exists", hook.id)),
            ),
            Err(codes) => Err(DomainError::internal(format!(
                "DynamoDB TransactWriteItems on table {} (inserting webhook {}) was cancelled: \
                 {codes:?}",
                self.table, hook.id
            ))),
        }
    }

    #[instrument(skip_all, fields(table = %self.table, webhook = %id))]
    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        let hook = self.get_webhook(id).await?;
        let writes = vec![
            TransactWriteItem::builder()
                .delete(self.delete(webhook_key(id), Condition::present())?)
                .build(),
            TransactWriteItem::builder()
                .delete(self.delete(
                    lab_webhook_key(hook.lab_id, &hook.url),
                    Condition::equals(WEBHOOK_ID, s(id.to_string())),
                )?)
                .build(),
        ];
        match self.transact(writes).await? {
            Ok(()) => Ok(()),
            // Deleted meanwhile by someone else.
            Err(_) => Err(DomainError::NotFound { kind: "webhook" }),
        }
    }

    async fn get_webhook(&self, id: WebhookId) -> Result<Webhook> {
        let item = self
            .get(webhook_key(id))
            .await?
            .ok_or(DomainError::NotFound { kind: "webhook" })?;
        from_doc(&self.table, &item)
    }

    /// Oldest first (by `created_at`, then id).
    async fn list_webhooks(&self, lab: LabId) -> Result<Vec<Webhook>> {
        let query = self
            .client
            .query()
            .consistent_read(true)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(lab_webhooks_pk(lab)));
        let mut hooks: Vec<Webhook> = self
            .query_all(query, None)
            .await?
            .iter()
            .map(|i| from_doc(&self.table, i))
            .collect::<Result<_>>()?;
        hooks.sort_by_cached_key(|h| time_id(h.created_at, h.id));
        Ok(hooks)
    }

    async fn insert_dead_letter(&self, letter: DeadLetterRecord) -> Result<()> {
        let mut item = keys::key(
            dead_letters_pk(letter.lab_id),
            time_id(letter.at, letter.id),
        );
        item.insert(DOC.into(), doc(&letter)?);
        self.insert(item, || {
            format!("a dead letter with id {} already exists", letter.id)
        })
        .await
    }

    /// `limit` is clamped as for events (0: 50; at most 1000).
    async fn list_dead_letters(&self, lab: LabId, limit: u32) -> Result<Vec<DeadLetterRecord>> {
        self.newest_docs(dead_letters_pk(lab), limit).await
    }

    async fn insert_recommendation(&self, rec: RecommendationRecord) -> Result<()> {
        let mut item = keys::key(
            recommendations_pk(rec.environment_id),
            time_id(rec.created_at, rec.id),
        );
        item.insert(DOC.into(), doc(&rec)?);
        self.insert(item, || {
            format!("a recommendation with id {} already exists", rec.id)
        })
        .await
    }

    /// `limit` is clamped as for events (0: 50; at most 1000).
    async fn list_recommendations(
        &self,
        env: EnvironmentId,
        limit: u32,
    ) -> Result<Vec<RecommendationRecord>> {
        self.newest_docs(recommendations_pk(env), limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_limit_of_zero_means_the_default_and_large_ones_are_capped() {
        assert_eq!(page_limit(0), 50);
        assert_eq!(page_limit(7), 7);
        assert_eq!(page_limit(u32::MAX), 1000);
    }

    #[test]
    fn time_filters_compare_at_microseconds_like_the_sqlite_store() {
        let lab = LabId::new();
        let mut e = westtek_store::conformance::drift_event(lab, EnvironmentId::new(), "fp");
        let micro = westtek_domain::audit::truncate_micros(Utc::now());
        e.detected_at = micro + chrono::TimeDelta::nanoseconds(300);
        let at = |since, until| DriftEventFilter {
            since,
            until,
            ..Default::default()
        };
        let later_in_the_same_micro = micro + chrono::TimeDelta::nanoseconds(600);
        assert!(wanted(&at(Some(later_in_the_same_micro), None), &e));
        assert!(!wanted(&at(None, Some(later_in_the_same_micro)), &e));
        assert!(wanted(
            &at(None, Some(micro + chrono::TimeDelta::microseconds(1))),
            &e
        ));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(20)) <= Duration::from_millis(20));
        }
    }
}
