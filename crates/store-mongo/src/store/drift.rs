//! The [`DriftStore`] port on MongoDB, with the SQLite adapter's semantics.
//!
//! Policy: `record_drift` is one multi-document transaction, retried like a
//! `commit`: it reads the environment's state, and only when its fingerprint
//! is the expected one takes the next `seq` from a counter document
//! (`$inc`, upserted), inserts the event and writes the state. The state
//! write is itself conditional (inserted when no state was expected, so the
//! `_id` — the environment id — is the uniqueness; otherwise replaced only
//! while it still holds the expected fingerprint), so even apart from the
//! transaction's write-conflict detection two racing callers cannot both
//! win: the loser's next attempt re-reads the state and reports `Stale`.
//!
//! Every recording writes the one counter document, so recordings conflict
//! with each other and commit one at a time, in `seq` order: a stream that
//! resumes after `n` never misses a smaller `seq` committed later. A
//! counter increment rolls back with its transaction, and the counter never
//! goes down, so no `seq` is handed out twice.
//!
//! Everything else is a single-document operation outside transactions.
//! Listing limits are clamped to `1..=1000` (0 means the default, 50).

use super::{
    abort_in, backoff, commit_in, page_of, MongoStore, TxError, COUNTERS, DEAD_LETTERS,
    DRIFT_EVENTS, DRIFT_STATE, MAX_ATTEMPTS, RECOMMENDATIONS, WEBHOOKS,
};
use crate::codec::drift::{self as codec, DRIFT_SEQ_COUNTER};
use crate::codec::{found, from_doc};
use crate::error::{conflict_on_duplicate, internal, is_duplicate_key, map_mongo};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::{ReturnDocument, WriteConcern};
use mongodb::ClientSession;
use tracing::instrument;
use westtek_domain::{
    DeadLetterRecord, DomainError, DriftEvent, DriftEventFilter, DriftEventId, DriftStateRecord,
    DriftStore, EnvironmentId, LabId, Page, RecommendationRecord, RecordOutcome, Result, Webhook,
    WebhookId,
};

/// Page size when the caller asks for 0.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size served.
const MAX_LIMIT: u32 = 1000;

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

/// Whether a duplicate-key error names the index `index` (the server puts
/// the index name in its message).
fn hit_index(e: &mongodb::error::Error, index: &str) -> bool {
    is_duplicate_key(e) && e.to_string().contains(index)
}

impl MongoStore {
    /// One attempt of `record_drift`: start, compare, write, commit.
    async fn record_attempt(
        &self,
        s: &mut ClientSession,
        event: &DriftEvent,
        expected: Option<&str>,
    ) -> Result<RecordOutcome, TxError> {
        s.start_transaction()
            .write_concern(WriteConcern::majority())
            .await?;
        match self.record_in(s, event, expected).await {
            Ok(RecordOutcome::Recorded(stored)) => {
                commit_in(s).await?;
                Ok(RecordOutcome::Recorded(stored))
            }
            // Nothing was written; the read-only transaction is dropped.
            Ok(stale) => {
                abort_in(s).await;
                Ok(stale)
            }
            Err(e) => {
                abort_in(s).await;
                Err(e)
            }
        }
    }

    /// The body of `record_drift`, inside the session's transaction.
    async fn record_in(
        &self,
        s: &mut ClientSession,
        event: &DriftEvent,
        expected: Option<&str>,
    ) -> Result<RecordOutcome, TxError> {
        let env_id = event.environment_id.to_string();
        let current = self
            .coll(DRIFT_STATE)
            .find_one(doc! { "_id": &env_id })
            .session(&mut *s)
            .await?
            .map(from_doc::<DriftStateRecord>)
            .transpose()?;
        if current.as_ref().map(|c| c.fingerprint.as_str()) != expected {
            return Ok(RecordOutcome::Stale(current));
        }

        let counter = self
            .coll(COUNTERS)
            .find_one_and_update(
                doc! { "_id": DRIFT_SEQ_COUNTER },
                doc! { "$inc": { "seq": 1_i64 } },
            )
            .upsert(true)
            .return_document(ReturnDocument::After)
            .session(&mut *s)
            .await
            .map_err(|e| {
                // Two first-ever recordings both creating the counter.
                if is_duplicate_key(&e) {
                    TxError::Raced("drift event counter")
                } else {
                    TxError::Mongo(e)
                }
            })?;
        let seq = match counter.as_ref().and_then(|c| c.get("seq")) {
            Some(Bson::Int64(n)) => u64::try_from(*n).ok(),
            Some(Bson::Int32(n)) => u64::try_from(*n).ok(),
            _ => None,
        }
        .ok_or_else(|| internal("corrupt drift event counter"))?;
        let stored = DriftEvent {
            seq,
            ..event.clone()
        };
        self.coll(DRIFT_EVENTS)
            .insert_one(codec::drift_event_doc(&stored)?)
            .session(&mut *s)
            .await
            .map_err(|e| {
                if hit_index(&e, "drift_events_seq") {
                    TxError::Domain(internal(
                        "the drift event counter is behind the stored events",
                    ))
                } else if is_duplicate_key(&e) {
                    TxError::Domain(DomainError::Conflict(format!(
                        "a drift event with id {} already exists",
                        event.id
                    )))
                } else {
                    TxError::Mongo(e)
                }
            })?;

        let next = codec::drift_state_doc(&state_after(&stored))?;
        match expected {
            None => {
                self.coll(DRIFT_STATE)
                    .insert_one(next)
                    .session(&mut *s)
                    .await
                    .map_err(|e| {
                        if is_duplicate_key(&e) {
                            TxError::Raced("drift state")
                        } else {
                            TxError::Mongo(e)
                        }
                    })?;
            }
            Some(fingerprint) => {
                let done = self
                    .coll(DRIFT_STATE)
                    .replace_one(doc! { "_id": &env_id, "fingerprint": fingerprint }, next)
                    .session(&mut *s)
                    .await?;
                if done.matched_count == 0 {
                    return Err(TxError::Raced("drift state"));
                }
            }
        }
        Ok(RecordOutcome::Recorded(stored))
    }

    /// Up to `limit` documents of `coll` matching `filter`, in `sort` order.
    async fn find_limited(
        &self,
        coll: &str,
        filter: Document,
        sort: Document,
        limit: u32,
    ) -> Result<Vec<Document>> {
        self.coll(coll)
            .find(filter)
            .sort(sort)
            .limit(i64::from(limit))
            .await
            .map_err(internal)?
            .try_collect()
            .await
            .map_err(internal)
    }
}

#[async_trait]
impl DriftStore for MongoStore {
    #[instrument(level = "debug", skip_all, fields(environment_id = %event.environment_id))]
    async fn record_drift(
        &self,
        event: DriftEvent,
        expected_fingerprint: Option<String>,
    ) -> Result<RecordOutcome> {
        let mut session = self.client.start_session().await.map_err(internal)?;
        let mut attempt = 1;
        loop {
            match self
                .record_attempt(&mut session, &event, expected_fingerprint.as_deref())
                .await
            {
                Ok(outcome) => return Ok(outcome),
                Err(e) if e.retryable() && attempt < MAX_ATTEMPTS => {
                    let wait = backoff(attempt);
                    tracing::debug!(attempt, ?wait, "drift record conflicted; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into_domain()),
            }
        }
    }

    #[instrument(level = "debug", skip_all, fields(environment_id = %state.environment_id))]
    async fn put_drift_state(&self, state: DriftStateRecord) -> Result<()> {
        self.coll(DRIFT_STATE)
            .replace_one(
                doc! { "_id": state.environment_id.to_string() },
                codec::drift_state_doc(&state)?,
            )
            .upsert(true)
            .await
            .map_err(map_mongo)?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_drift_state(&self, env: EnvironmentId) -> Result<Option<DriftStateRecord>> {
        self.find_by_id(DRIFT_STATE, &env.to_string())
            .await?
            .map(from_doc)
            .transpose()
    }

    /// Ordered by environment id.
    #[instrument(level = "debug", skip(self))]
    async fn list_drift_states(&self, lab: Option<LabId>) -> Result<Vec<DriftStateRecord>> {
        let filter = match lab {
            Some(l) => doc! { "lab_id": l.to_string() },
            None => doc! {},
        };
        self.find_all(DRIFT_STATE, filter, doc! { "_id": 1 })
            .await?
            .into_iter()
            .map(from_doc)
            .collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete_drift_state(&self, env: EnvironmentId) -> Result<()> {
        self.coll(DRIFT_STATE)
            .delete_one(doc! { "_id": env.to_string() })
            .await
            .map_err(internal)?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_drift_event(&self, id: DriftEventId) -> Result<DriftEvent> {
        codec::drift_event_from_doc(found(
            self.find_by_id(DRIFT_EVENTS, &id.to_string()).await?,
            "drift event",
        )?)
    }

    /// `total` counts every event matching the filter, `after_seq`
    /// included (for a resumed stream: how many are still to come).
    #[instrument(level = "debug", skip_all)]
    async fn list_drift_events(&self, f: &DriftEventFilter) -> Result<Page<DriftEvent>> {
        let limit = page_limit(f.limit);
        let sort = if f.after_seq.is_some() {
            doc! { "seq": 1 }
        } else {
            doc! { "seq": -1 }
        };
        let (total, docs) = page_of(
            self.coll(DRIFT_EVENTS),
            codec::drift_event_filter(f),
            sort,
            limit,
            f.offset,
        )
        .await?;
        Ok(Page {
            items: docs
                .into_iter()
                .map(codec::drift_event_from_doc)
                .collect::<Result<_>>()?,
            total,
            limit,
            offset: f.offset,
        })
    }

    #[instrument(level = "debug", skip_all, fields(lab_id = %hook.lab_id))]
    async fn insert_webhook(&self, hook: Webhook) -> Result<()> {
        self.coll(WEBHOOKS)
            .insert_one(codec::webhook_doc(&hook)?)
            .await
            .map_err(|e| {
                let url_taken = hit_index(&e, "webhooks_lab_url");
                conflict_on_duplicate(e, || {
                    if url_taken {
                        format!("the lab already has a webhook to {}", hook.url)
                    } else {
                        format!("a webhook with id {} already exists", hook.id)
                    }
                })
            })?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        let done = self
            .coll(WEBHOOKS)
            .delete_one(doc! { "_id": id.to_string() })
            .await
            .map_err(internal)?;
        if done.deleted_count == 0 {
            return Err(DomainError::NotFound { kind: "webhook" });
        }
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_webhook(&self, id: WebhookId) -> Result<Webhook> {
        from_doc(found(
            self.find_by_id(WEBHOOKS, &id.to_string()).await?,
            "webhook",
        )?)
    }

    /// Oldest first (by `created_at`, then id).
    #[instrument(level = "debug", skip(self))]
    async fn list_webhooks(&self, lab: LabId) -> Result<Vec<Webhook>> {
        self.find_all(
            WEBHOOKS,
            doc! { "lab_id": lab.to_string() },
            doc! { "created_key": 1, "_id": 1 },
        )
        .await?
        .into_iter()
        .map(from_doc)
        .collect()
    }

    #[instrument(level = "debug", skip_all, fields(lab_id = %letter.lab_id))]
    async fn insert_dead_letter(&self, letter: DeadLetterRecord) -> Result<()> {
        self.coll(DEAD_LETTERS)
            .insert_one(codec::dead_letter_doc(&letter)?)
            .await
            .map_err(|e| {
                conflict_on_duplicate(e, || {
                    format!("a dead letter with id {} already exists", letter.id)
                })
            })?;
        Ok(())
    }

    /// `limit` is clamped as for events (0: 50; at most 1000).
    #[instrument(level = "debug", skip(self))]
    async fn list_dead_letters(&self, lab: LabId, limit: u32) -> Result<Vec<DeadLetterRecord>> {
        self.find_limited(
            DEAD_LETTERS,
            doc! { "lab_id": lab.to_string() },
            doc! { "at_key": -1, "_id": -1 },
            page_limit(limit),
        )
        .await?
        .into_iter()
        .map(codec::dead_letter_from_doc)
        .collect()
    }

    #[instrument(level = "debug", skip_all, fields(environment_id = %rec.environment_id))]
    async fn insert_recommendation(&self, rec: RecommendationRecord) -> Result<()> {
        self.coll(RECOMMENDATIONS)
            .insert_one(codec::recommendation_doc(&rec)?)
            .await
            .map_err(|e| {
                conflict_on_duplicate(e, || {
                    format!("a recommendation with id {} already exists", rec.id)
                })
            })?;
        Ok(())
    }

    /// `limit` is clamped as for events (0: 50; at most 1000).
    #[instrument(level = "debug", skip(self))]
    async fn list_recommendations(
        &self,
        env: EnvironmentId,
        limit: u32,
    ) -> Result<Vec<RecommendationRecord>> {
        self.find_limited(
            RECOMMENDATIONS,
            doc! { "environment_id": env.to_string() },
            doc! { "created_key": -1, "_id": -1 },
            page_limit(limit),
        )
        .await?
        .into_iter()
        .map(codec::recommendation_from_doc)
        .collect()
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
}
