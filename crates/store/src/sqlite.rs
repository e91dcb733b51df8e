//! SQLite adapter of the metadata store: one file in the data dir, WAL mode,
//! every unit of work in a `BEGIN IMMEDIATE` transaction (so concurrent
//! writers from several processes queue on the busy timeout instead of
//! failing), audit entries appended in the same transaction as the change.
//!
//! `drift` implements the `DriftStore` port on the same database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use westtek_domain::audit::{format_time, AuditHead, GENESIS_HASH};
use westtek_domain::ports::{AuditLog, Clock, MetadataStore, Write};
use westtek_domain::{
    AuditDraft, AuditEntry, AuditFilter, AuditId, DomainError, Environment, EnvironmentFilter,
    EnvironmentId, Handover, HandoverFilter, HandoverId, Invitation, InvitationFilter,
    InvitationId, Job, JobId, JobStatus, Lab, LabId, Membership, Page, Result, Role, Share,
    ShareFilter, ShareId, Snapshot, SnapshotFilter, SnapshotId, StoredToken, Template, TemplateId,
    TokenKind, User, UserCredentials, UserId,
};

mod collab;
mod drift;
mod invitations;

/// The embedded metadata store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    /// Bumped after every commit of this instance (see `generation`).
    generation: Arc<AtomicU64>,
    /// Bumped after every commit of this instance that changed users or
    /// memberships (see `access_generation`).
    access_generation: Arc<AtomicU64>,
}

fn internal(e: impl std::fmt::Display) -> DomainError {
    DomainError::internal(format!("sqlite: {e}"))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Changes one user's document inside `tx`; `NotFound` when there is no
/// such user.
async fn update_user(
    tx: &mut Transaction<'_, Sqlite>,
    id: UserId,
    change: impl FnOnce(&mut User),
) -> Result<()> {
    let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM users WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(internal)?;
    let mut user: User = from_doc(&doc.ok_or(DomainError::NotFound { kind: "user" })?)?;
    change(&mut user);
    sqlx::query("UPDATE users SET doc = ? WHERE id = ?")
        .bind(to_doc(&user)?)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(internal)?;
    Ok(())
}

fn to_doc<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(internal)
}

fn from_doc<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| internal(format!("corrupt document: {e}")))
}

fn enum_name<T: serde::Serialize>(v: &T) -> Result<String> {
    match serde_json::to_value(v).map_err(internal)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(internal(format!("not a unit enum: {other}"))),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    ///
    /// # Errors
    /// `Internal` when the file cannot be opened or migrated.
    pub async fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(15))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await
            .map_err(internal)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(internal)?;
        Ok(SqliteStore {
            pool,
            clock,
            generation: Arc::new(AtomicU64::new(1)),
            access_generation: Arc::new(AtomicU64::new(1)),
        })
    }

    /// Closes the pool (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn apply(&self, tx: &mut Transaction<'_, Sqlite>, w: Write) -> Result<()> {
        match w {
            Write::InsertLab(lab) => {
                let r = sqlx::query("INSERT INTO labs (id, name, doc) VALUES (?, ?, ?)")
                    .bind(lab.id.to_string())
                    .bind(lab.name.as_str())
                    .bind(to_doc(&lab)?)
                    .execute(&mut **tx)
                    .await;
                match r {
                    Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                        "a lab named '{}' already exists",
                        lab.name
                    ))),
                    r => r.map(|_| ()).map_err(internal),
                }
            }
            Write::UpdateLab(lab) => {
                let r = sqlx::query("UPDATE labs SET name = ?, doc = ? WHERE id = ?")
                    .bind(lab.name.as_str())
                    .bind(to_doc(&lab)?)
                    .bind(lab.id.to_string())
                    .execute(&mut **tx)
                    .await;
                match r {
                    Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                        "a lab named '{}' already exists",
                        lab.name
                    ))),
                    Ok(done) if done.rows_affected() == 0 => {
                        Err(DomainError::NotFound { kind: "lab" })
                    }
                    r => r.map(|_| ()).map_err(internal),
                }
            }
            Write::InsertUser {
                user,
                password_hash,
            } => {
                let r = sqlx::query(
                    "INSERT INTO users (id, username, password_hash, doc) VALUES (?, ?, ?, ?)",
                )
                .bind(user.id.to_string())
                .bind(user.username.as_str())
                .bind(password_hash)
                .bind(to_doc(&user)?)
                .execute(&mut **tx)
                .await;
                match r {
                    Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                        "a user named '{}' already exists",
                        user.username
                    ))),
                    r => r.map(|_| ()).map_err(internal),
                }
            }
            Write::SetPassword {
                user_id,
                password_hash,
            } => {
                let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                    .bind(password_hash)
                    .bind(user_id.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                if done.rows_affected() == 0 {
                    return Err(DomainError::NotFound { kind: "user" });
                }
                Ok(())
            }
            Write::SetUserDisabled { user_id, disabled } => {
                update_user(tx, user_id, |u| u.disabled = disabled).await
            }
            Write::SetItAdmin { user_id, it_admin } => {
                update_user(tx, user_id, |u| u.it_admin = it_admin).await
            }
            Write::PutMembership(m) => {
                // A new membership goes last in the user's join order; a
                // role change keeps its place.
                let r = sqlx::query(
                    "INSERT INTO memberships (lab_id, user_id, role, joined_seq) VALUES (?, ?, ?,
                         (SELECT COALESCE(MAX(joined_seq), 0) + 1 FROM memberships WHERE user_id = ?))
                     ON CONFLICT (lab_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(m.lab_id.to_string())
                .bind(m.user_id.to_string())
                .bind(m.role.as_str())
                .bind(m.user_id.to_string())
                .execute(&mut **tx)
                .await;
                match r {
                    Err(e)
                        if e.as_database_error()
                            .is_some_and(|d| d.is_foreign_key_violation()) =>
                    {
                        Err(DomainError::NotFound {
                            kind: "lab or user",
                        })
                    }
                    r => r.map(|_| ()).map_err(internal),
                }
            }
            Write::DeleteMembership { lab_id, user_id } => {
                let done = sqlx::query("DELETE FROM memberships WHERE lab_id = ? AND user_id = ?")
                    .bind(lab_id.to_string())
                    .bind(user_id.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                if done.rows_affected() == 0 {
                    return Err(DomainError::NotFound { kind: "membership" });
                }
                Ok(())
            }
            Write::InsertToken(t) => {
                sqlx::query("INSERT INTO tokens (hash, kind, user_id, expires_at, doc) VALUES (?, ?, ?, ?, ?)")
                    .bind(&t.hash)
                    .bind(t.kind.as_str())
                    .bind(t.user_id.to_string())
                    .bind(format_time(t.expires_at))
                    .bind(to_doc(&t)?)
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                Ok(())
            }
            Write::DeleteToken { hash } => {
                let done = sqlx::query("DELETE FROM tokens WHERE hash = ?")
                    .bind(&hash)
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                if done.rows_affected() == 0 {
                    return Err(DomainError::NotFound { kind: "token" });
                }
                Ok(())
            }
            Write::InsertEnvironment { env, max_in_lab } => {
                if let Some(max) = max_in_lab {
                    let n: i64 =
                        sqlx::query_scalar("SELECT COUNT(*) FROM environments WHERE lab_id = ?")
                            .bind(env.lab_id.to_string())
                            .fetch_one(&mut **tx)
                            .await
                            .map_err(internal)?;
                    if n >= i64::from(max) {
                        return Err(DomainError::QuotaExceeded(format!(
                            "the lab already has {n} of its {max} environments"
                        )));
                    }
                }
                let r = bind_env(
                    sqlx::query(
                        "INSERT INTO environments (lab_id, name, researcher_id, status, jupyter_status,
                         drift_status, created_at, version, doc, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ),
                    &env,
                )?
                .execute(&mut **tx)
                .await;
                match r {
                    Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                        "an environment named '{}' already exists in this lab",
                        env.name
                    ))),
                    Err(e)
                        if e.as_database_error()
                            .is_some_and(|d| d.is_foreign_key_violation()) =>
                    {
                        Err(DomainError::NotFound { kind: "lab" })
                    }
                    r => r.map(|_| ()).map_err(internal),
                }
            }
            Write::UpdateEnvironment(env) => {
                let read_version = env.version;
                let mut next = env.clone();
                next.version = read_version + 1;
                let r = bind_env(
                    sqlx::query(
                        "UPDATE environments SET lab_id = ?, name = ?, researcher_id = ?, status = ?,
                         jupyter_status = ?, drift_status = ?, created_at = ?, version = ?, doc = ?
                         WHERE id = ? AND version = ?",
                    ),
                    &next,
                )?
                .bind(read_version as i64)
                .execute(&mut **tx)
                .await;
                match r {
                    Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                        "an environment named '{}' already exists in this lab",
                        env.name
                    ))),
                    Ok(done) if done.rows_affected() == 0 => {
                        let exists: Option<i64> =
                            sqlx::query_scalar("SELECT version FROM environments WHERE id = ?")
                                .bind(env.id.to_string())
                                .fetch_optional(&mut **tx)
                                .await
                                .map_err(internal)?;
                        match exists {
                            None => Err(DomainError::NotFound {
                                kind: "environment",
                            }),
                            Some(_) => Err(DomainError::Conflict(
                                "the environment was changed by someone else; reload and retry"
                                    .into(),
                            )),
                        }
                    }
                    r => r.map(|_| ()).map_err(internal),
                }
            }
            Write::DeleteEnvironment(id) => {
                let done = sqlx::query("DELETE FROM environments WHERE id = ?")
                    .bind(id.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                if done.rows_affected() == 0 {
                    return Err(DomainError::NotFound {
                        kind: "environment",
                    });
                }
                Ok(())
            }
            Write::InsertJob(job) => {
                sqlx::query("INSERT INTO jobs (id, lab_id, status, doc) VALUES (?, ?, ?, ?)")
                    .bind(job.id.to_string())
                    .bind(job.lab_id.to_string())
                    .bind(enum_name(&job.status)?)
                    .bind(to_doc(&job)?)
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                Ok(())
            }
            Write::UpdateJob(job) => {
                let done = sqlx::query("UPDATE jobs SET status = ?, doc = ? WHERE id = ?")
                    .bind(enum_name(&job.status)?)
                    .bind(to_doc(&job)?)
                    .bind(job.id.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                if done.rows_affected() == 0 {
                    return Err(DomainError::NotFound { kind: "job" });
                }
                Ok(())
            }
            Write::InsertSnapshot(snap) => {
                let r = sqlx::query(
                    "INSERT INTO snapshots (status, stored_bytes, doc, lab_id, environment_id, created_at, id)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(enum_name(&snap.status)?)
                .bind(snap.stored_bytes_added as i64)
                .bind(to_doc(&snap)?)
                .bind(snap.lab_id.to_string())
                .bind(snap.environment_id.to_string())
                .bind(format_time(snap.timestamp))
                .bind(snap.id.to_string())
                .execute(&mut **tx)
                .await;
                match r {
                    Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                        "a snapshot with id {} already exists",
                        snap.id
                    ))),
                    r => r.map(|_| ()).map_err(internal),
                }
            }
            Write::UpdateSnapshot(snap) => {
                let done = sqlx::query(
                    "UPDATE snapshots SET status = ?, stored_bytes = ?, doc = ? WHERE id = ?",
                )
                .bind(enum_name(&snap.status)?)
                .bind(snap.stored_bytes_added as i64)
                .bind(to_doc(&snap)?)
                .bind(snap.id.to_string())
                .execute(&mut **tx)
                .await
                .map_err(internal)?;
                if done.rows_affected() == 0 {
                    return Err(DomainError::NotFound { kind: "snapshot" });
                }
                Ok(())
            }
            Write::DeleteSnapshot(id) => {
                let done = sqlx::query("DELETE FROM snapshots WHERE id = ?")
                    .bind(id.to_string())
                    .execute(&mut **tx)
                    .await
                    .map_err(internal)?;
                if done.rows_affected() == 0 {
                    return Err(DomainError::NotFound { kind: "snapshot" });
                }
                Ok(())
            }
            Write::PutShare(share) => Self::put_share(tx, &share).await,
            Write::PutTemplate(t) => Self::put_template(tx, &t).await,
            Write::PutHandover(h) => Self::put_handover(tx, &h).await,
            Write::InsertInvitation(i) => Self::insert_invitation(tx, &i).await,
            Write::CloseInvitation { id, state, at, by } => {
                Self::close_invitation(tx, id, state, at, by).await
            }
            Write::MarkEventHandled { consumer, event_id } => {
                let r = sqlx::query(
                    "INSERT INTO handled_events (consumer, event_id, handled_at) VALUES (?, ?, ?)",
                )
                .bind(&consumer)
                .bind(&event_id)
                .bind(format_time(self.clock.now()))
                .execute(&mut **tx)
                .await;
                match r {
                    Err(e) if is_unique_violation(&e) => Err(DomainError::Conflict(format!(
                        "event {event_id} was already handled by {consumer}"
                    ))),
                    r => r.map(|_| ()).map_err(internal),
                }
            }
        }
    }

    async fn append_in(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        drafts: Vec<AuditDraft>,
    ) -> Result<Vec<AuditEntry>> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&mut **tx)
                .await
                .map_err(internal)?;
        let (mut seq, mut prev) = head.unwrap_or((0, GENESIS_HASH.to_string()));
        let now = self.clock.now();
        let mut out = Vec::with_capacity(drafts.len());
        for d in &drafts {
            seq += 1;
            let e = AuditEntry::seal(d, seq, now, &prev);
            sqlx::query(
                "INSERT INTO audit (seq, id, time, actor_id, actor_name, lab_id, action, target_kind,
                 target_id, request_id, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.seq)
            .bind(e.id.to_string())
            .bind(format_time(e.time))
            .bind(e.actor_id.map(|u| u.to_string()))
            .bind(&e.actor_name)
            .bind(e.lab_id.map(|l| l.to_string()))
            .bind(&e.action)
            .bind(&e.target_kind)
            .bind(&e.target_id)
            .bind(&e.request_id)
            .bind(e.details.to_string())
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
            prev = e.hash.clone();
            out.push(e);
        }
        sqlx::query(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(seq)
        .bind(&prev)
        .execute(&mut **tx)
        .await
        .map_err(internal)?;
        Ok(out)
    }
}

fn bind_env<'q>(
    q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    env: &Environment,
) -> Result<sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>> {
    Ok(q.bind(env.lab_id.to_string())
        .bind(env.name.as_str().to_string())
        .bind(env.researcher_id.to_string())
        .bind(enum_name(&env.status)?)
        .bind(enum_name(&env.jupyter_status)?)
        .bind(env.drift_status.as_str())
        .bind(format_time(env.created_at))
        .bind(env.version as i64)
        .bind(to_doc(env)?)
        .bind(env.id.to_string()))
}

/// Reads an audit row. A row whose fields no longer parse (hand-edited) is
/// still returned, with an empty hash, so verification names it as edited
/// instead of failing as a whole.
fn audit_row(r: &SqliteRow) -> Result<AuditEntry> {
    let mut damaged = false;
    // Any column may have been edited to NULL or another type by hand.
    let mut text = |c: &str| -> String {
        match r.try_get::<Option<String>, _>(c) {
            Ok(Some(s)) => s,
            _ => {
                damaged = true;
                String::new()
            }
        }
    };
    let id_text = text("id");
    let time_text = text("time");
    let actor_name = text("actor_name");
    let action = text("action");
    let target_kind = text("target_kind");
    let target_id = text("target_id");
    let request_id = text("request_id");
    let details_text = text("details");
    let prev_hash = text("prev_hash");
    let hash = text("hash");
    let opt = |c: &str| -> std::result::Result<Option<String>, ()> {
        r.try_get::<Option<String>, _>(c).map_err(|_| ())
    };
    let id = AuditId::parse(&id_text).unwrap_or_else(|_| {
        damaged = true;
        AuditId::from_uuid(uuid_nil())
    });
    let time = DateTime::parse_from_rfc3339(&time_text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| {
            damaged = true;
            DateTime::<Utc>::UNIX_EPOCH
        });
    let actor_id = match opt("actor_id") {
        Ok(None) => None,
        Ok(Some(s)) => UserId::parse(&s).map(Some).unwrap_or_else(|_| {
            damaged = true;
            None
        }),
        Err(()) => {
            damaged = true;
            None
        }
    };
    let lab_id = match opt("lab_id") {
        Ok(None) => None,
        Ok(Some(s)) => LabId::parse(&s).map(Some).unwrap_or_else(|_| {
            damaged = true;
            None
        }),
        Err(()) => {
            damaged = true;
            None
        }
    };
    let details = serde_json::from_str(&details_text).unwrap_or_else(|_| {
        damaged = true;
        serde_json::Value::Null
    });
    // `seq` is the primary key (an integer rowid) and cannot be damaged.
    Ok(AuditEntry {
        seq: r.try_get("seq").map_err(internal)?,
        id,
        time,
        actor_id,
        actor_name,
        lab_id,
        action,
        target_kind,
        target_id,
        request_id,
        details,
        prev_hash,
        hash: if damaged { String::new() } else { hash },
    })
}

fn uuid_nil() -> uuid::Uuid {
    uuid::Uuid::nil()
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> {
        self.commit(Vec::new(), drafts).await
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Page<AuditEntry>> {
        fn filtered<'a>(qb: &mut QueryBuilder<'a, Sqlite>, f: &'a AuditFilter) {
            qb.push(" WHERE 1 = 1");
            if let Some(l) = f.lab_id {
                qb.push(" AND lab_id = ").push_bind(l.to_string());
            }
            if let Some(a) = &f.actor_name {
                qb.push(" AND actor_name = ").push_bind(a);
            }
            if let Some(a) = &f.action {
                qb.push(" AND action = ").push_bind(a);
            }
            if let Some(t) = &f.target_id {
                qb.push(" AND target_id = ").push_bind(t);
            }
            if let Some(s) = f.since {
                qb.push(" AND time >= ").push_bind(format_time(s));
            }
            if let Some(u) = f.until {
                qb.push(" AND time < ").push_bind(format_time(u));
            }
        }
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM audit");
        filtered(&mut count, f);
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?;
        let mut qb = QueryBuilder::new("SELECT * FROM audit");
        filtered(&mut qb, f);
        qb.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(f.limit))
            .push(" OFFSET ")
            .push_bind(i64::from(f.offset));
        let rows = qb.build().fetch_all(&self.pool).await.map_err(internal)?;
        Ok(Page {
            items: rows.iter().map(audit_row).collect::<Result<_>>()?,
            total: total as u64,
            limit: f.limit,
            offset: f.offset,
        })
    }

    async fn audit_chain(&self) -> Result<(Vec<AuditEntry>, Option<AuditHead>)> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        let entries = rows.iter().map(audit_row).collect::<Result<Vec<_>>>()?;
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
        Ok((entries, head.map(|(seq, hash)| AuditHead { seq, hash })))
    }
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(internal)?;
        let changes_access = writes.iter().any(Write::changes_access);
        for w in writes {
            self.apply(&mut tx, w).await?;
        }
        let entries = self.append_in(&mut tx, audit).await?;
        tx.commit().await.map_err(internal)?;
        // After the commit: a reader that saw the old number may have read
        // either state, and its cache entry is superseded by the new number.
        self.generation.fetch_add(1, Ordering::Release);
        if changes_access {
            self.access_generation.fetch_add(1, Ordering::Release);
        }
        Ok(entries)
    }

    async fn get_lab(&self, id: LabId) -> Result<Lab> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM labs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "lab" })?)
    }

    async fn find_lab_by_name(&self, name: &str) -> Result<Option<Lab>> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM labs WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        doc.map(|d| from_doc(&d)).transpose()
    }

    async fn list_labs(&self) -> Result<Vec<Lab>> {
        let docs: Vec<String> = sqlx::query_scalar("SELECT doc FROM labs ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn get_user(&self, id: UserId) -> Result<User> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "user" })?)
    }

    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserCredentials>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT doc, password_hash FROM users WHERE username = ?")
                .bind(username)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
        row.map(|(doc, password_hash)| {
            Ok(UserCredentials {
                user: from_doc(&doc)?,
                password_hash,
            })
        })
        .transpose()
    }

    async fn list_users(&self, lab: Option<LabId>) -> Result<Vec<User>> {
        let docs: Vec<String> = match lab {
            Some(l) => {
                sqlx::query_scalar(
                    "SELECT u.doc FROM users u JOIN memberships m ON m.user_id = u.id
                 WHERE m.lab_id = ? ORDER BY u.username",
                )
                .bind(l.to_string())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query_scalar("SELECT doc FROM users ORDER BY username")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT lab_id, role FROM memberships WHERE user_id = ? ORDER BY joined_seq, lab_id",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?;
        rows.into_iter()
            .map(|(lab, role)| {
                Ok(Membership {
                    lab_id: LabId::parse(&lab).map_err(internal)?,
                    user_id: user,
                    role: Role::parse(&role).map_err(internal)?,
                })
            })
            .collect()
    }

    async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?;
        Ok(n as u64)
    }

    async fn get_token(&self, hash: &str, kind: TokenKind) -> Result<Option<StoredToken>> {
        let doc: Option<String> =
            sqlx::query_scalar("SELECT doc FROM tokens WHERE hash = ? AND kind = ?")
                .bind(hash)
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
        doc.map(|d| from_doc(&d)).transpose()
    }

    async fn get_environment(&self, id: EnvironmentId) -> Result<Environment> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM environments WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound {
            kind: "environment",
        })?)
    }

    async fn list_environments(&self, f: &EnvironmentFilter) -> Result<Page<Environment>> {
        fn filtered(qb: &mut QueryBuilder<'_, Sqlite>, f: &EnvironmentFilter) -> Result<()> {
            qb.push(" WHERE 1 = 1");
            if let Some(l) = f.lab_id {
                qb.push(" AND lab_id = ").push_bind(l.to_string());
            }
            if let Some(r) = f.researcher_id {
                qb.push(" AND researcher_id = ").push_bind(r.to_string());
            }
            if let Some(d) = f.drift_status {
                qb.push(" AND drift_status = ").push_bind(d.as_str());
            }
            if let Some(s) = f.status {
                qb.push(" AND status = ").push_bind(enum_name(&s)?);
            }
            if let Some(j) = f.jupyter_status {
                qb.push(" AND jupyter_status = ").push_bind(enum_name(&j)?);
            }
            if let Some(n) = &f.name_contains {
                qb.push(" AND instr(lower(name), ")
                    .push_bind(n.to_lowercase())
                    .push(") > 0");
            }
            Ok(())
        }
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM environments");
        filtered(&mut count, f)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?;
        let mut qb = QueryBuilder::new("SELECT doc FROM environments");
        filtered(&mut qb, f)?;
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(f.limit))
            .push(" OFFSET ")
            .push_bind(i64::from(f.offset));
        let docs: Vec<String> = qb
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        Ok(Page {
            items: docs.iter().map(|d| from_doc(d)).collect::<Result<_>>()?,
            total: total as u64,
            limit: f.limit,
            offset: f.offset,
        })
    }

    /// Only this instance's commits are counted: the embedded profile has
    /// one serving process per data dir (operator commands change labs and
    /// users, which are not cached).
    fn generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::Acquire))
    }

    fn access_generation(&self) -> Option<u64> {
        Some(self.access_generation.load(Ordering::Acquire))
    }

    async fn get_job(&self, id: JobId) -> Result<Job> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM jobs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "job" })?)
    }

    async fn get_snapshot(&self, id: SnapshotId) -> Result<Snapshot> {
        let doc: Option<String> = sqlx::query_scalar("SELECT doc FROM snapshots WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(internal)?;
        from_doc(&doc.ok_or(DomainError::NotFound { kind: "snapshot" })?)
    }

    async fn list_snapshots(&self, f: &SnapshotFilter) -> Result<Page<Snapshot>> {
        fn filtered(qb: &mut QueryBuilder<'_, Sqlite>, f: &SnapshotFilter) -> Result<()> {
            qb.push(" WHERE 1 = 1");
            if let Some(l) = f.lab_id {
                qb.push(" AND lab_id = ").push_bind(l.to_string());
            }
            if let Some(e) = f.environment_id {
                qb.push(" AND environment_id = ").push_bind(e.to_string());
            }
            if let Some(s) = f.status {
                qb.push(" AND status = ").push_bind(enum_name(&s)?);
            }
            Ok(())
        }
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM snapshots");
        filtered(&mut count, f)?;
        let total: i64 = count
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(internal)?;
        let mut qb = QueryBuilder::new("SELECT doc FROM snapshots");
        filtered(&mut qb, f)?;
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(f.limit))
            .push(" OFFSET ")
            .push_bind(i64::from(f.offset));
        let docs: Vec<String> = qb
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        Ok(Page {
            items: docs.iter().map(|d| from_doc(d)).collect::<Result<_>>()?,
            total: total as u64,
            limit: f.limit,
            offset: f.offset,
        })
    }

    async fn lab_storage_bytes(&self, lab: LabId) -> Result<u64> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT SUM(stored_bytes) FROM snapshots WHERE lab_id = ? AND status != 'failed'",
        )
        .bind(lab.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(internal)?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn list_jobs(&self, status: Option<JobStatus>) -> Result<Vec<Job>> {
        let docs: Vec<String> = match status {
            Some(s) => {
                sqlx::query_scalar("SELECT doc FROM jobs WHERE status = ?")
                    .bind(enum_name(&s)?)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query_scalar("SELECT doc FROM jobs")
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(internal)?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn get_share(&self, id: ShareId) -> Result<Share> {
        self.get_share_impl(id).await
    }

    async fn list_shares(&self, filter: &ShareFilter) -> Result<Vec<Share>> {
        self.list_shares_impl(filter).await
    }

    async fn get_template(&self, id: TemplateId) -> Result<Template> {
        self.get_template_impl(id).await
    }

    async fn list_templates(
        &self,
        lab: Option<LabId>,
        snapshot: Option<SnapshotId>,
        include_withdrawn: bool,
    ) -> Result<Vec<Template>> {
        self.list_templates_impl(lab, snapshot, include_withdrawn)
            .await
    }

    async fn get_handover(&self, id: HandoverId) -> Result<Handover> {
        self.get_handover_impl(id).await
    }

    async fn list_handovers(&self, filter: &HandoverFilter) -> Result<Vec<Handover>> {
        self.list_handovers_impl(filter).await
    }

    async fn get_invitation(&self, id: InvitationId) -> Result<Invitation> {
        self.get_invitation_impl(id).await
    }

    async fn list_invitations(&self, filter: &InvitationFilter) -> Result<Vec<Invitation>> {
        self.list_invitations_impl(filter).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use westtek_domain::ports::SystemClock;

    #[tokio::test]
    async fn the_sqlite_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.db"), Arc::new(SystemClock))
            .await
            .unwrap();
        crate::conformance::run_all(Arc::new(store)).await;
    }

    // Several worker threads, so the drift races really run in parallel.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_sqlite_store_passes_the_drift_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.db"), Arc::new(SystemClock))
            .await
            .unwrap();
        crate::conformance::run_drift(Arc::new(store)).await;
    }
}
