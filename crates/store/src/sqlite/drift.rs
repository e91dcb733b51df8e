//! The [`DriftStore`] port on SQLite (tables of `0003_drift.sql`).
//!
//! Policy: `record_drift` is one `BEGIN IMMEDIATE` transaction, so the
//! compare of the stored fingerprint and the writes that follow it cannot
//! interleave with another writer (concurrent callers queue on the busy
//! timeout, and the one that comes second sees the first one's state).
//! Because writers are serialised and `seq` is an `AUTOINCREMENT` key
//! assigned inside that transaction, events become visible in `seq` order:
//! a stream that resumes after `n` never misses a smaller `seq` committed
//! later. The `seq` column is authoritative; the document's copy is kept in
//! step with it.
//!
//! Listing limits are clamped to `1..=1000` (0 means the default, 50).

use super::{from_doc, internal, is_unique_violation, to_doc, SqliteStore};
use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};
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

/// The page size actually served for a requested `limit`.
fn page_limit(limit: u32) -> u32 {
    match limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    }
}

/// A `seq` as the SQLite column holds it (beyond `i64::MAX` nothing exists,
/// so saturating keeps "greater than" meaningful).
fn seq_column(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Reads an event row: the document, with `seq` taken from its column.
fn event_of(seq: i64, doc: &str) -> Result<DriftEvent> {
    let mut event: DriftEvent = from_doc(doc)?;
    event.seq = u64::try_from(seq).map_err(|_| internal(format!("negative drift seq {seq}")))?;
    Ok(event)
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

/// Inserts or replaces an environment's state row.
async fn upsert_state<'e, E>(executor: E, state: &DriftStateRecord) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO drift_state (environment_id, lab_id, fingerprint, doc) VALUES (?, ?, ?, ?)
         ON CONFLICT (environment_id) DO UPDATE SET lab_id = excluded.lab_id,
         fingerprint = excluded.fingerprint, doc = excluded.doc",
    )
    .bind(state.environment_id.to_string())
    .bind(state.lab_id.to_string())
    .bind(&state.fingerprint)
    .bind(to_doc(state)?)
    .execute(executor)
    .await
    .map_err(internal)?;
    Ok(())
}

#[async_trait]
impl DriftStore for SqliteStore {
    async fn record_drift(
        &self,
        mut event: DriftEvent,
        expected_fingerprint: Option<String>,
    ) -> Result<RecordOutcome> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(internal)?;
        let current: Option<(String, String)> =
            sqlx::query_as("SELECT fingerprint, doc FROM drift_state WHERE environment_id = ?")
                .bind(event.environment_id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
        let current_fingerprint = current.as_ref().map(|(fp, _)| fp.as_str());
        if current_fingerprint != expected_fingerprint.as_deref() {
            let state = current.map(|(_, doc)| from_doc(&doc)).transpose()?;
            tx.rollback().await.map_err(internal)?;
            return Ok(RecordOutcome::Stale(state));
        }

        // The document is written once `seq` is known (it is assigned by
        // the insert).
        let inserted = sqlx::query(
            "INSERT INTO drift_events (id, lab_id, environment_id, detected_at, doc)
             VALUES (?, ?, ?, ?, '{}')",
        )
        .bind(event.id.to_string())
        .bind(event.lab_id.to_string())
        .bind(event.environment_id.to_string())
        .bind(format_time(event.detected_at))
        .execute(&mut *tx)
        .await;
        let seq = match inserted {
            Ok(done) => done.last_insert_rowid(),
            Err(e) if is_unique_violation(&e) => {
                return Err(DomainError::Conflict(format!(
                    "a drift event with id {} already exists",
                    event.id
                )))
            }
            Err(e) => return Err(internal(e)),
        };
        event.seq =
            u64::try_from(seq).map_err(|_| internal(format!("negative drift seq {seq}")))?;
        sqlx::query("UPDATE drift_events SET doc = ? WHERE seq = ?")
            .bind(to_doc(&event)?)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        upsert_state(&mut *tx, &state_after(&event)).await?;
        tx.commit().await.map_err(internal)?;
        Ok(RecordOutcome::Recorded(event))
    }

    async fn put_drift_state(&self, state: DriftStateRecord) -> Result<()> {
        upsert_state(&self.pool, &state).await
    }

    async fn get_drift_state(&self, env: EnvironmentId) -> Result<Option<DriftStateRecord>> {
        let doc: Option<String> =
            sqlx::query_scalar("SELECT doc FROM drift_state WHERE environment_id = ?")
                .bind(env.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
        doc.map(|d| from_doc(&d)).transpose()
    }

    /// Ordered by environment id.
    async fn list_drift_states(&self, lab: Option<LabId>) -> Result<Vec<DriftStateRecord>> {
        let docs: Vec<String> = match lab {
            Some(l) => {
                sqlx::query_scalar(
                    "SELECT doc FROM drift_state WHERE lab_id = ? ORDER BY environment_id",
                )
                .bind(l.to_string())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query_scalar("SELECT doc FROM drift_state ORDER BY environment_id")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn delete_drift_state(&self, env: EnvironmentId) -> Result<()> {
        sqlx::query("DELETE FROM drift_state WHERE environment_id = ?")
            .bind(env.to_string())
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn get_drift_event(&self, id: DriftEventId) -> Result<DriftEvent> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, doc FROM drift_events WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
        let (seq, doc) = row.ok_or(DomainError::NotFound {
            kind: "drift event",
        })?;
        event_of(seq, &doc)
    }

    /// `total` counts every event matching the filter, `after_seq`
    /// included (for a resumed stream: how many are still to come).
    async fn list_drift_events(&self, f: &DriftEventFilter) -> Result<Page<DriftEvent>> {
        fn filtered(qb: &mut QueryBuilder<'_, Sqlite>, f: &DriftEventFilter) {
            qb.push(" WHERE 1 = 1");
            if let Some(l) = f.lab_id {
                qb.push(" AND lab_id = ").push_bind(l.to_string());
            }
            if let Some(e) = f.environment_id {
                qb.push(" AND environment_id = ").push_bind(e.to_string());
            }
            if let Some(s) = f.since {
                qb.push(" AND detected_at >= ").push_bind(format_time(s));
            }
            if let Some(u) = f.until {
                qb.push(" AND detected_at < ").push_bind(format_time(u));
            }
            if let Some(n) = f.after_seq {
                qb.push(" AND seq > ").push_bind(seq_column(n));
            }
        }
        let limit = page_limit(f.limit);
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM drift_events");
        filtered(&mut count, f);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?;
        let mut qb = QueryBuilder::new("SELECT seq, doc FROM drift_events");
        filtered(&mut qb, f);
        qb.push(if f.after_seq.is_some() {
            " ORDER BY seq ASC LIMIT "
        } else {
            " ORDER BY seq DESC LIMIT "
        })
        .push_bind(i64::from(limit))
        .push(" OFFSET ")
        .push_bind(i64::from(f.offset));
        let rows: Vec<(i64, String)> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        Ok(Page {
            items: rows
                .iter()
                .map(|(seq, doc)| event_of(*seq, doc))
                .collect::<Result<_>>()?,
            total: u64::try_from(total).unwrap_or(0),
            limit,
            offset: f.offset,
        })
    }

    async fn insert_webhook(&self, hook: Webhook) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO webhooks (id, lab_id, url, created_at, doc) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(hook.id.to_string())
        .bind(hook.lab_id.to_string())
        .bind(&hook.url)
        .bind(format_time(hook.created_at))
        .bind(to_doc(&hook)?)
        .execute(&self.pool)
        .await;
        match r {
            Err(e) if is_unique_violation(&e) => {
                // SQLite names the constraint's columns in the message.
                let url_taken = e
                    .as_database_error()
                    .is_some_and(|d| d.message().contains("webhooks.url"));
                Err(DomainError::Conflict(if url_taken {
                    format!("the lab already has a webhook to {}", hook.url)
                } else {
                    format!("a webhook with id {} already exists", hook.id)
                }))
            }
            r => r.map(|_| ()).map_err(internal),
        }
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<()> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(internal)?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound { kind: "webhook" });
        }
        Ok(())
    }

    async fn get_webhook(&self, id: WebhookId) -> Result<Webhook> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM webhooks WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "webhook" })?)
    }

    /// Oldest first (by `created_at`, then id).
    async fn list_webhooks(&self, lab: LabId) -> Result<Vec<Webhook>> {
        let docs: Vec<String> =
            sqlx::query_scalar("SELECT doc FROM webhooks WHERE lab_id = ? ORDER BY created_at, id")
                .bind(lab.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn insert_dead_letter(&self, letter: DeadLetterRecord) -> Result<()> {
        let r = sqlx::query("INSERT INTO dead_letters (id, lab_id, at, doc) VALUES (?, ?, ?, ?)")
            .bind(letter.id.to_string())
            .bind(letter.lab_id.to_string())
            .bind(format_time(letter.at))
            .bind(to_doc(&letter)?)
            .execute(&self.pool)
            .await;
        match r {
            Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                "a dead letter with id {} already exists",
                letter.id
            ))),
            r => r.map(|_| ()).map_err(internal),
        }
    }

    /// `limit` is clamped as for events (0: 50; at most 1000).
    async fn list_dead_letters(&self, lab: LabId, limit: u32) -> Result<Vec<DeadLetterRecord>> {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM dead_letters WHERE lab_id = ? ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(lab.to_string())
        .bind(i64::from(page_limit(limit)))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn insert_recommendation(&self, rec: RecommendationRecord) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO recommendations (id, environment_id, created_at, doc) VALUES (?, ?, ?, ?)",
        )
        .bind(rec.id.to_string())
        .bind(rec.environment_id.to_string())
        .bind(format_time(rec.created_at))
        .bind(to_doc(&rec)?)
        .execute(&self.pool)
        .await;
        match r {
            Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                "a recommendation with id {} already exists",
                rec.id
            ))),
            r => r.map(|_| ()).map_err(internal),
        }
    }

    /// `limit` is clamped as for events (0: 50; at most 1000).
    async fn list_recommendations(
        &self,
        env: EnvironmentId,
        limit: u32,
    ) -> Result<Vec<RecommendationRecord>> {
        let docs: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM recommendations WHERE environment_id = ?
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(env.to_string())
        .bind(i64::from(page_limit(limit)))
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::sync::Arc;
    use westtek_domain::ports::SystemClock;

    #[test]
    fn a_page_limit_of_zero_means_the_default_and_large_ones_are_capped() {
        assert_eq!(page_limit(0), 50);
        assert_eq!(page_limit(1), 1);
        assert_eq!(page_limit(1000), 1000);
        assert_eq!(page_limit(u32::MAX), 1000);
    }

    #[tokio::test]
    async fn a_seq_is_never_handed_out_again_after_the_newest_event_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.db"), Arc::new(SystemClock))
            .await
            .unwrap();
        let lab = LabId::new();
        let first = crate::conformance::drift_event(lab, EnvironmentId::new(), "a");
        let RecordOutcome::Recorded(first) = store.record_drift(first, None).await.unwrap() else {
            panic!("first record was stale");
        };
        // Operators may prune old events by hand; the order must survive it.
        sqlx::query("DELETE FROM drift_events")
            .execute(&store.pool)
            .await
            .unwrap();
        let second = crate::conformance::drift_event(lab, EnvironmentId::new(), "b");
        let RecordOutcome::Recorded(second) = store.record_drift(second, None).await.unwrap()
        else {
            panic!("second record was stale");
        };
        assert!(
            second.seq > first.seq,
            "{} reused {}",
            second.seq,
            first.seq
        );
        assert_eq!(store.get_drift_event(second.id).await.unwrap(), second);
    }
}
