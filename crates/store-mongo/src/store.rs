//! The MongoDB (DocumentDB-compatible) adapter of the metadata store.
//!
//! Policy: every `commit` is one multi-document transaction (replica sets
//! and DocumentDB support them), so a unit of work and its audit entries are
//! applied together or not at all. Uniqueness lives in unique indexes created
//! at connect time; the rules the SQLite schema enforces with foreign keys
//! and `BEGIN IMMEDIATE` are enforced here inside the transaction:
//!
//! - a membership or token must name an existing lab and user;
//! - inserting an environment first bumps a guard counter on its lab's
//!   document, so concurrent inserts into one lab conflict on that document
//!   and the quota count cannot be raced (snapshot isolation alone would let
//!   two commits both see room for one more);
//! - the audit chain's head document is read and then updated on the
//!   condition that it still holds what was read, so two appends can never
//!   link to the same predecessor.
//!
//! A transaction that fails with a transient error (a write conflict with a
//! concurrent one, a step-down) or loses the race for the head is retried a
//! few times with jittered backoff; a commit whose outcome is unknown is
//! re-committed. Reads run outside transactions, as in the SQLite adapter.
//!
//! `drift` implements the `DriftStore` port on the same database, with the
//! same transaction handling for `record_drift`; `collab` holds the shares,
//! templates and handovers (their writes are `commit` writes);
//! `invitations` the invitations into labs. A membership carries the
//! user's join order (`joined_seq`), so the first lab joined stays first.

mod collab;
mod drift;
mod invitations;

use crate::codec::{self, found, HEAD_ID};
use crate::error::{
    conflict_on_duplicate, error_codes, internal, is_transient, map_mongo, NAMESPACE_EXISTS,
};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT;
use mongodb::options::{ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use std::sync::Arc;
use std::time::Duration;
use tracing::instrument;
use westtek_domain::audit::{AuditHead, GENESIS_HASH};
use westtek_domain::ports::{AuditLog, Clock, MetadataStore, Write};
use westtek_domain::{
    AuditDraft, AuditEntry, AuditFilter, DomainError, Environment, EnvironmentFilter,
    EnvironmentId, Handover, HandoverFilter, HandoverId, Invitation, InvitationFilter,
    InvitationId, Job, JobId, JobStatus, Lab, LabId, Membership, Page, Result, Share, ShareFilter,
    ShareId, Snapshot, SnapshotFilter, SnapshotId, StoredToken, Template, TemplateId, TokenKind,
    User, UserCredentials, UserId,
};

const LABS: &str = "labs";
const USERS: &str = "users";
const MEMBERSHIPS: &str = "memberships";
const TOKENS: &str = "tokens";
const ENVIRONMENTS: &str = "environments";
const JOBS: &str = "jobs";
const AUDIT: &str = "audit";
const AUDIT_HEAD: &str = "audit_head";
const HANDLED_EVENTS: &str = "handled_events";
const SNAPSHOTS: &str = "snapshots";
const DRIFT_EVENTS: &str = "drift_events";
const DRIFT_STATE: &str = "drift_state";
const WEBHOOKS: &str = "webhooks";
const DEAD_LETTERS: &str = "dead_letters";
const RECOMMENDATIONS: &str = "recommendations";
const SHARES: &str = "shares";
const TEMPLATES: &str = "templates";
const HANDOVERS: &str = "handovers";
const INVITATIONS: &str = "invitations";
/// Sequence counters (one document per sequence, `{ _id, seq }`).
const COUNTERS: &str = "counters";

/// Every collection the store uses; created up front because some servers
/// cannot create a collection inside a transaction.
const COLLECTIONS: [&str; 20] = [
    LABS,
    USERS,
    MEMBERSHIPS,
    TOKENS,
    ENVIRONMENTS,
    JOBS,
    AUDIT,
    AUDIT_HEAD,
    HANDLED_EVENTS,
    SNAPSHOTS,
    DRIFT_EVENTS,
    DRIFT_STATE,
    WEBHOOKS,
    DEAD_LETTERS,
    RECOMMENDATIONS,
    SHARES,
    TEMPLATES,
    HANDOVERS,
    INVITATIONS,
    COUNTERS,
];

/// How many times a unit of work is attempted before a transient failure is
/// reported.
const MAX_ATTEMPTS: u32 = 8;
/// How many times a commit whose outcome is unknown is re-sent.
const MAX_COMMIT_RETRIES: u32 = 3;

/// The metadata store on MongoDB or Amazon DocumentDB.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    clock: Arc<dyn Clock>,
    /// Bumped after every commit of this instance that changed users or
    /// memberships (see `access_generation`).
    access_generation: Arc<std::sync::atomic::AtomicU64>,
}

/// Why one attempt of a unit of work failed.
enum TxError {
    /// A definite answer: report it.
    Domain(DomainError),
    /// A driver error: retried when transient, reported otherwise.
    Mongo(mongodb::error::Error),
    /// Another commit moved the audit head between our read and our update.
    HeadMoved,
    /// A concurrent writer changed the named record between our read and
    /// our write (a drift state); the next attempt re-reads it.
    Raced(&'static str),
}

impl From<DomainError> for TxError {
    fn from(e: DomainError) -> Self {
        TxError::Domain(e)
    }
}

impl From<mongodb::error::Error> for TxError {
    fn from(e: mongodb::error::Error) -> Self {
        TxError::Mongo(e)
    }
}

impl TxError {
    fn retryable(&self) -> bool {
        match self {
            TxError::Domain(_) => false,
            TxError::Mongo(e) => is_transient(e),
            TxError::HeadMoved | TxError::Raced(_) => true,
        }
    }

    fn into_domain(self) -> DomainError {
        match self {
            TxError::Domain(e) => e,
            TxError::Mongo(e) => map_mongo(e),
            TxError::HeadMoved => internal("the audit head kept moving under concurrent commits"),
            TxError::Raced(what) => {
                internal(format!("the {what} kept changing under concurrent writes"))
            }
        }
    }
}

/// A driver error as an attempt failure, naming the conflict when it is a
/// duplicate key.
fn dup(e: mongodb::error::Error, message: impl FnOnce() -> String) -> TxError {
    if crate::error::is_duplicate_key(&e) {
        TxError::Domain(conflict_on_duplicate(e, message))
    } else {
        TxError::Mongo(e)
    }
}

/// Jittered exponential backoff before attempt `attempt + 1`.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(base)) as u64;
    Duration::from_millis(base + jitter)
}

impl MongoStore {
    /// Connects to `url` (a `mongodb://` or `mongodb+srv://` URL; for
    /// DocumentDB include `tls=true&retryWrites=false`), uses `database`,
    /// and creates the collections and indexes if missing.
    ///
    /// # Errors
    /// `Internal` when the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str, database: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let mut opts = ClientOptions::parse(url).await.map_err(internal)?;
        if opts.app_name.is_none() {
            opts.app_name = Some("westtek".into());
        }
        let client = Client::with_options(opts).map_err(internal)?;
        let db = client.database(database);
        let store = MongoStore {
            client,
            db,
            clock,
            access_generation: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        };
        store.ensure_indexes().await?;
        Ok(store)
    }

    /// The database the store uses (for tests and operational tooling).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Creates every collection and index the store relies on; safe to run
    /// again (existing ones are kept).
    ///
    /// # Errors
    /// `Internal` when the server refuses or cannot be reached.
    pub async fn ensure_indexes(&self) -> Result<()> {
        for name in COLLECTIONS {
            match self.db.create_collection(name).await {
                Ok(()) => {}
                Err(e) if error_codes(&e).contains(&NAMESPACE_EXISTS) => {}
                Err(e) => return Err(internal(e)),
            }
        }
        let index = |keys: Document, name: &str, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_string())
                        .unique(unique)
                        .build(),
                )
                .build()
        };
        let wanted = [
            (LABS, index(doc! { "name": 1 }, "labs_name", true)),
            (USERS, index(doc! { "username": 1 }, "users_username", true)),
            (
                MEMBERSHIPS,
                index(
                    doc! { "lab_id": 1, "user_id": 1 },
                    "memberships_lab_user",
                    true,
                ),
            ),
            (
                MEMBERSHIPS,
                index(doc! { "user_id": 1 }, "memberships_user", false),
            ),
            (TOKENS, index(doc! { "user_id": 1 }, "tokens_user", false)),
            (
                ENVIRONMENTS,
                index(
                    doc! { "lab_id": 1, "name": 1 },
                    "environments_lab_name",
                    true,
                ),
            ),
            (
                ENVIRONMENTS,
                index(
                    doc! { "lab_id": 1, "created_key": -1, "_id": -1 },
                    "environments_lab_created",
                    false,
                ),
            ),
            (JOBS, index(doc! { "status": 1 }, "jobs_status", false)),
            (
                SNAPSHOTS,
                index(
                    doc! { "environment_id": 1, "created_key": -1 },
                    "snapshots_env_created",
                    false,
                ),
            ),
            (
                SNAPSHOTS,
                index(
                    doc! { "lab_id": 1, "created_key": -1 },
                    "snapshots_lab_created",
                    false,
                ),
            ),
            (AUDIT, index(doc! { "seq": 1 }, "audit_seq", true)),
            (
                AUDIT,
                index(doc! { "lab_id": 1, "seq": -1 }, "audit_lab_seq", false),
            ),
            (
                HANDLED_EVENTS,
                index(
                    doc! { "consumer": 1, "event_id": 1 },
                    "handled_events_key",
                    true,
                ),
            ),
            (
                DRIFT_EVENTS,
                index(doc! { "seq": 1 }, "drift_events_seq", true),
            ),
            (
                DRIFT_EVENTS,
                index(
                    doc! { "environment_id": 1, "detected_key": 1 },
                    "drift_events_env_detected",
                    false,
                ),
            ),
            (
                DRIFT_EVENTS,
                index(
                    doc! { "lab_id": 1, "seq": 1 },
                    "drift_events_lab_seq",
                    false,
                ),
            ),
            (
                DRIFT_STATE,
                index(doc! { "lab_id": 1 }, "drift_state_lab", false),
            ),
            (
                WEBHOOKS,
                index(doc! { "lab_id": 1, "url": 1 }, "webhooks_lab_url", true),
            ),
            (
                WEBHOOKS,
                index(
                    doc! { "lab_id": 1, "created_key": 1 },
                    "webhooks_lab_created",
                    false,
                ),
            ),
            (
                DEAD_LETTERS,
                index(
                    doc! { "lab_id": 1, "at_key": -1 },
                    "dead_letters_lab_at",
                    false,
                ),
            ),
            (
                RECOMMENDATIONS,
                index(
                    doc! { "environment_id": 1, "created_key": -1 },
                    "recommendations_env_created",
                    false,
                ),
            ),
            (
                SHARES,
                index(
                    doc! { "owner_lab": 1, "created_key": -1 },
                    "shares_owner_created",
                    false,
                ),
            ),
            (
                SHARES,
                index(
                    doc! { "target_lab": 1, "created_key": -1 },
                    "shares_target_created",
                    false,
                ),
            ),
            (
                SHARES,
                index(doc! { "resource_id": 1 }, "shares_resource", false),
            ),
            (
                TEMPLATES,
                index(
                    doc! { "lab_id": 1, "published_key": -1 },
                    "templates_lab_published",
                    false,
                ),
            ),
            (
                TEMPLATES,
                index(doc! { "snapshot_id": 1 }, "templates_snapshot", false),
            ),
            (
                HANDOVERS,
                index(
                    doc! { "environment_id": 1, "created_key": -1 },
                    "handovers_env_created",
                    false,
                ),
            ),
            (
                HANDOVERS,
                index(doc! { "from_user": 1 }, "handovers_from", false),
            ),
            (
                INVITATIONS,
                index(
                    doc! { "lab_id": 1, "created_key": -1 },
                    "invitations_lab_created",
                    false,
                ),
            ),
            (
                INVITATIONS,
                index(
                    doc! { "user_id": 1, "created_key": -1 },
                    "invitations_user_created",
                    false,
                ),
            ),
            (
                HANDOVERS,
                index(doc! { "to_user": 1 }, "handovers_to", false),
            ),
        ];
        for (coll, model) in wanted {
            self.coll(coll)
                .create_index(model)
                .await
                .map_err(internal)?;
        }
        Ok(())
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// Sets one boolean field of a user document; `NotFound` when there is
    /// no such user.
    async fn set_user_field(
        &self,
        s: &mut ClientSession,
        user: UserId,
        field: &str,
        value: bool,
    ) -> Result<(), TxError> {
        let done = self
            .coll(USERS)
            .update_one(
                doc! { "_id": user.to_string() },
                doc! { "$set": { field: value } },
            )
            .session(&mut *s)
            .await?;
        if done.matched_count == 0 {
            return Err(DomainError::NotFound { kind: "user" }.into());
        }
        Ok(())
    }

    async fn exists(&self, s: &mut ClientSession, coll: &str, id: &str) -> Result<bool, TxError> {
        Ok(self
            .coll(coll)
            .find_one(doc! { "_id": id })
            .projection(doc! { "_id": 1 })
            .session(&mut *s)
            .await?
            .is_some())
    }

    /// Applies one write inside the session's transaction.
    async fn apply(&self, s: &mut ClientSession, w: &Write) -> Result<(), TxError> {
        match w {
            Write::InsertLab(lab) => {
                let lab_taken = || format!("a lab named '{}' already exists", lab.name);
                self.coll(LABS)
                    .insert_one(codec::lab_doc(lab)?)
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, lab_taken))?;
            }
            Write::UpdateLab(lab) => {
                let lab_taken = || format!("a lab named '{}' already exists", lab.name);
                let done = self
                    .coll(LABS)
                    .replace_one(doc! { "_id": lab.id.to_string() }, codec::lab_doc(lab)?)
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, lab_taken))?;
                if done.matched_count == 0 {
                    return Err(DomainError::NotFound { kind: "lab" }.into());
                }
            }
            Write::InsertUser {
                user,
                password_hash,
            } => {
                let user_taken = || format!("a user named '{}' already exists", user.username);
                self.coll(USERS)
                    .insert_one(codec::user_doc(user, password_hash.as_deref())?)
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, user_taken))?;
            }
            Write::SetPassword {
                user_id,
                password_hash,
            } => {
                let done = self
                    .coll(USERS)
                    .update_one(
                        doc! { "_id": user_id.to_string() },
                        doc! { "$set": { "password_hash": password_hash } },
                    )
                    .session(&mut *s)
                    .await?;
                if done.matched_count == 0 {
                    return Err(DomainError::NotFound { kind: "user" }.into());
                }
            }
            Write::SetUserDisabled { user_id, disabled } => {
                self.set_user_field(s, *user_id, "disabled", *disabled)
                    .await?;
            }
            Write::SetItAdmin { user_id, it_admin } => {
                self.set_user_field(s, *user_id, "it_admin", *it_admin)
                    .await?;
            }
            Write::PutMembership(m) => {
                // The SQLite schema's foreign keys, checked by hand.
                if !self.exists(s, LABS, &m.lab_id.to_string()).await?
                    || !self.exists(s, USERS, &m.user_id.to_string()).await?
                {
                    return Err(DomainError::NotFound {
                        kind: "lab or user",
                    }
                    .into());
                }
                let id = codec::membership_id(m.lab_id, m.user_id);
                let changed = self
                    .coll(MEMBERSHIPS)
                    .update_one(
                        doc! { "_id": &id },
                        doc! { "$set": { "role": codec::enum_name(&m.role)? } },
                    )
                    .session(&mut *s)
                    .await?;
                if changed.matched_count == 0 {
                    // New: last in the user's join order (a role change
                    // above keeps the place).
                    let last = self
                        .coll(MEMBERSHIPS)
                        .find_one(doc! { "user_id": m.user_id.to_string() })
                        .sort(doc! { "joined_seq": -1 })
                        .session(&mut *s)
                        .await?
                        .and_then(|d| d.get_i64("joined_seq").ok())
                        .unwrap_or(0);
                    let mut d = codec::membership_doc(m)?;
                    d.insert("joined_seq", last + 1);
                    self.coll(MEMBERSHIPS)
                        .insert_one(d)
                        .session(&mut *s)
                        .await
                        .map_err(|e| {
                            if crate::error::is_duplicate_key(&e) {
                                TxError::Raced("membership")
                            } else {
                                TxError::Mongo(e)
                            }
                        })?;
                }
            }
            Write::DeleteMembership { lab_id, user_id } => {
                let r = self
                    .coll(MEMBERSHIPS)
                    .delete_one(doc! { "_id": codec::membership_id(*lab_id, *user_id) })
                    .session(&mut *s)
                    .await?;
                if r.deleted_count == 0 {
                    return Err(DomainError::NotFound { kind: "membership" }.into());
                }
            }
            Write::InsertToken(t) => {
                if !self.exists(s, USERS, &t.user_id.to_string()).await? {
                    return Err(DomainError::NotFound { kind: "user" }.into());
                }
                self.coll(TOKENS)
                    .insert_one(codec::token_doc(t)?)
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, || "a token with this hash already exists".into()))?;
            }
            Write::DeleteToken { hash } => {
                let done = self
                    .coll(TOKENS)
                    .delete_one(doc! { "_id": hash })
                    .session(&mut *s)
                    .await?;
                if done.deleted_count == 0 {
                    return Err(DomainError::NotFound { kind: "token" }.into());
                }
            }
            Write::InsertEnvironment { env, max_in_lab } => {
                let lab_id = env.lab_id.to_string();
                // Touching the lab both checks it exists and serialises
                // concurrent inserts into it (see the module docs).
                let guard = self
                    .coll(LABS)
                    .update_one(
                        doc! { "_id": &lab_id },
                        doc! { "$inc": { "env_guard": 1_i64 } },
                    )
                    .session(&mut *s)
                    .await?;
                if guard.matched_count == 0 {
                    return Err(DomainError::NotFound { kind: "lab" }.into());
                }
                if let Some(max) = max_in_lab {
                    let n = self
                        .coll(ENVIRONMENTS)
                        .count_documents(doc! { "lab_id": &lab_id })
                        .session(&mut *s)
                        .await?;
                    if n >= u64::from(*max) {
                        return Err(DomainError::QuotaExceeded(format!(
                            "the lab already has {n} of its {max} environments"
                        ))
                        .into());
                    }
                }
                let env_taken = || {
                    format!(
                        "an environment named '{}' already exists in this lab",
                        env.name
                    )
                };
                self.coll(ENVIRONMENTS)
                    .insert_one(codec::environment_doc(env)?)
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, env_taken))?;
            }
            Write::UpdateEnvironment(env) => {
                let mut next = env.clone();
                next.version = env.version + 1;
                let env_taken = || {
                    format!(
                        "an environment named '{}' already exists in this lab",
                        env.name
                    )
                };
                let done = self
                    .coll(ENVIRONMENTS)
                    .replace_one(
                        doc! {
                            "_id": env.id.to_string(),
                            "version": codec::version_bson(env.version)?,
                        },
                        codec::environment_doc(&next)?,
                    )
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, env_taken))?;
                if done.matched_count == 0 {
                    return Err(
                        if self.exists(s, ENVIRONMENTS, &env.id.to_string()).await? {
                            DomainError::Conflict(
                                "the environment was changed by someone else; reload and retry"
                                    .into(),
                            )
                        } else {
                            DomainError::NotFound {
                                kind: "environment",
                            }
                        }
                        .into(),
                    );
                }
            }
            Write::DeleteEnvironment(id) => {
                let done = self
                    .coll(ENVIRONMENTS)
                    .delete_one(doc! { "_id": id.to_string() })
                    .session(&mut *s)
                    .await?;
                if done.deleted_count == 0 {
                    return Err(DomainError::NotFound {
                        kind: "environment",
                    }
                    .into());
                }
            }
            Write::InsertJob(job) => {
                self.coll(JOBS)
                    .insert_one(codec::job_doc(job)?)
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, || format!("a job with id {} already exists", job.id)))?;
            }
            Write::UpdateJob(job) => {
                let done = self
                    .coll(JOBS)
                    .replace_one(doc! { "_id": job.id.to_string() }, codec::job_doc(job)?)
                    .session(&mut *s)
                    .await?;
                if done.matched_count == 0 {
                    return Err(DomainError::NotFound { kind: "job" }.into());
                }
            }
            Write::InsertSnapshot(snap) => {
                self.coll(SNAPSHOTS)
                    .insert_one(codec::snapshot_doc(snap)?)
                    .session(&mut *s)
                    .await
                    .map_err(|e| {
                        dup(e, || {
                            format!("a snapshot with id {} already exists", snap.id)
                        })
                    })?;
            }
            Write::UpdateSnapshot(snap) => {
                let done = self
                    .coll(SNAPSHOTS)
                    .replace_one(
                        doc! { "_id": snap.id.to_string() },
                        codec::snapshot_doc(snap)?,
                    )
                    .session(&mut *s)
                    .await?;
                if done.matched_count == 0 {
                    return Err(DomainError::NotFound { kind: "snapshot" }.into());
                }
            }
            Write::DeleteSnapshot(id) => {
                let done = self
                    .coll(SNAPSHOTS)
                    .delete_one(doc! { "_id": id.to_string() })
                    .session(&mut *s)
                    .await?;
                if done.deleted_count == 0 {
                    return Err(DomainError::NotFound { kind: "snapshot" }.into());
                }
            }
            Write::PutShare(share) => self.put_share(s, share).await?,
            Write::PutTemplate(t) => self.put_template(s, t).await?,
            Write::PutHandover(h) => self.put_handover(s, h).await?,
            Write::InsertInvitation(i) => self.insert_invitation(s, i).await?,
            Write::CloseInvitation { id, state, at, by } => {
                self.close_invitation(s, *id, *state, *at, *by).await?
            }
            Write::MarkEventHandled { consumer, event_id } => {
                let handled = || format!("event {event_id} was already handled by {consumer}");
                self.coll(HANDLED_EVENTS)
                    .insert_one(codec::handled_event_doc(
                        consumer,
                        event_id,
                        self.clock.now(),
                    ))
                    .session(&mut *s)
                    .await
                    .map_err(|e| dup(e, handled))?;
            }
        }
        Ok(())
    }

    /// Seals and inserts the drafts after the current head and moves the
    /// head, inside the session's transaction.
    async fn append_in(
        &self,
        s: &mut ClientSession,
        drafts: &[AuditDraft],
    ) -> Result<Vec<AuditEntry>, TxError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let head = self
            .coll(AUDIT_HEAD)
            .find_one(doc! { "_id": HEAD_ID })
            .session(&mut *s)
            .await?
            .map(|d| codec::head_from_doc(&d))
            .transpose()?;
        let (mut seq, mut prev) = head
            .as_ref()
            .map_or((0, GENESIS_HASH.to_string()), |h| (h.seq, h.hash.clone()));
        let now = self.clock.now();
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            seq += 1;
            let e = AuditEntry::seal(d, seq, now, &prev);
            self.coll(AUDIT)
                .insert_one(codec::audit_doc(&e))
                .session(&mut *s)
                .await
                .map_err(|err| {
                    // A taken `seq` means another commit appended first.
                    if crate::error::is_duplicate_key(&err) {
                        TxError::HeadMoved
                    } else {
                        TxError::Mongo(err)
                    }
                })?;
            prev = e.hash.clone();
            out.push(e);
        }
        let next = codec::head_doc(&AuditHead { seq, hash: prev });
        match head {
            Some(h) => {
                let done = self
                    .coll(AUDIT_HEAD)
                    .replace_one(doc! { "_id": HEAD_ID, "seq": h.seq, "hash": &h.hash }, next)
                    .session(&mut *s)
                    .await?;
                if done.matched_count == 0 {
                    return Err(TxError::HeadMoved);
                }
            }
            None => {
                self.coll(AUDIT_HEAD)
                    .insert_one(next)
                    .session(&mut *s)
                    .await
                    .map_err(|err| {
                        if crate::error::is_duplicate_key(&err) {
                            TxError::HeadMoved
                        } else {
                            TxError::Mongo(err)
                        }
                    })?;
            }
        }
        Ok(out)
    }

    /// One attempt: start, apply everything, commit.
    async fn attempt(
        &self,
        s: &mut ClientSession,
        writes: &[Write],
        audit: &[AuditDraft],
    ) -> Result<Vec<AuditEntry>, TxError> {
        s.start_transaction()
            .write_concern(WriteConcern::majority())
            .await?;
        let applied = async {
            for w in writes {
                self.apply(s, w).await?;
            }
            self.append_in(s, audit).await
        }
        .await;
        match applied {
            Ok(entries) => {
                commit_in(s).await?;
                Ok(entries)
            }
            Err(e) => {
                abort_in(s).await;
                Err(e)
            }
        }
    }

    async fn find_all(
        &self,
        coll: &str,
        filter: Document,
        sort: Document,
    ) -> Result<Vec<Document>> {
        self.coll(coll)
            .find(filter)
            .sort(sort)
            .await
            .map_err(internal)?
            .try_collect()
            .await
            .map_err(internal)
    }

    async fn find_by_id(&self, coll: &str, id: &str) -> Result<Option<Document>> {
        self.coll(coll)
            .find_one(doc! { "_id": id })
            .await
            .map_err(internal)
    }

    async fn read_head(&self) -> Result<Option<AuditHead>> {
        self.find_by_id(AUDIT_HEAD, HEAD_ID)
            .await?
            .map(|d| codec::head_from_doc(&d))
            .transpose()
    }
}

/// Commits the session's transaction, re-sending the commit when its
/// outcome is unknown (the commit is idempotent).
async fn commit_in(s: &mut ClientSession) -> Result<(), TxError> {
    let mut retries = 0;
    loop {
        match s.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e)
                if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                    && retries < MAX_COMMIT_RETRIES =>
            {
                retries += 1;
                tracing::debug!(error = %e, retries, "commit outcome unknown; re-committing");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Aborts the session's transaction; a failure to abort is only logged (the
/// server drops the transaction when it times out anyway).
async fn abort_in(s: &mut ClientSession) {
    if let Err(abort) = s.abort_transaction().await {
        tracing::debug!(error = %abort, "aborting a failed transaction failed");
    }
}

/// `total` and the page of `coll` matching `filter`, in `sort` order.
/// A limit of 0 yields no items, as SQL's `LIMIT 0` does (MongoDB reads 0 as
/// "no limit").
async fn page_of(
    coll: Collection<Document>,
    filter: Document,
    sort: Document,
    limit: u32,
    offset: u32,
) -> Result<(u64, Vec<Document>)> {
    let total = coll
        .count_documents(filter.clone())
        .await
        .map_err(internal)?;
    if limit == 0 {
        return Ok((total, Vec::new()));
    }
    let docs = coll
        .find(filter)
        .sort(sort)
        .skip(u64::from(offset))
        .limit(i64::from(limit))
        .await
        .map_err(internal)?
        .try_collect()
        .await
        .map_err(internal)?;
    Ok((total, docs))
}

#[async_trait]
impl AuditLog for MongoStore {
    #[instrument(level = "debug", skip_all, fields(drafts = drafts.len()))]
    async fn append(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> {
        self.commit(Vec::new(), drafts).await
    }

    #[instrument(level = "debug", skip_all)]
    async fn list_audit(&self, f: &AuditFilter) -> Result<Page<AuditEntry>> {
        let (total, docs) = page_of(
            self.coll(AUDIT),
            codec::audit_filter(f),
            doc! { "seq": -1 },
            f.limit,
            f.offset,
        )
        .await?;
        Ok(Page {
            items: docs
                .iter()
                .map(codec::audit_from_doc)
                .collect::<Result<_>>()?,
            total,
            limit: f.limit,
            offset: f.offset,
        })
    }

    #[instrument(level = "debug", skip_all)]
    async fn audit_chain(&self) -> Result<(Vec<AuditEntry>, Option<AuditHead>)> {
        let docs = self.find_all(AUDIT, doc! {}, doc! { "seq": 1 }).await?;
        let entries = docs
            .iter()
            .map(codec::audit_from_doc)
            .collect::<Result<Vec<_>>>()?;
        Ok((entries, self.read_head().await?))
    }
}

#[async_trait]
impl MetadataStore for MongoStore {
    #[instrument(level = "debug", skip_all, fields(writes = writes.len(), audit = audit.len()))]
    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditDraft>) -> Result<Vec<AuditEntry>> {
        let mut session = self.client.start_session().await.map_err(internal)?;
        let mut attempt = 1;
        let changes_access = writes.iter().any(Write::changes_access);
        loop {
            match self.attempt(&mut session, &writes, &audit).await {
                Ok(entries) => {
                    if changes_access {
                        self.access_generation
                            .fetch_add(1, std::sync::atomic::Ordering::Release);
                    }
                    return Ok(entries);
                }
                Err(e) if e.retryable() && attempt < MAX_ATTEMPTS => {
                    let wait = backoff(attempt);
                    tracing::debug!(attempt, ?wait, "transaction conflicted; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into_domain()),
            }
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_lab(&self, id: LabId) -> Result<Lab> {
        codec::from_doc(found(self.find_by_id(LABS, &id.to_string()).await?, "lab")?)
    }

    #[instrument(level = "debug", skip(self))]
    async fn find_lab_by_name(&self, name: &str) -> Result<Option<Lab>> {
        self.coll(LABS)
            .find_one(doc! { "name": name })
            .await
            .map_err(internal)?
            .map(codec::from_doc)
            .transpose()
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_labs(&self) -> Result<Vec<Lab>> {
        self.find_all(LABS, doc! {}, doc! { "name": 1 })
            .await?
            .into_iter()
            .map(codec::from_doc)
            .collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_user(&self, id: UserId) -> Result<User> {
        codec::from_doc(found(
            self.find_by_id(USERS, &id.to_string()).await?,
            "user",
        )?)
    }

    #[instrument(level = "debug", skip(self))]
    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserCredentials>> {
        let doc = self
            .coll(USERS)
            .find_one(doc! { "username": username })
            .await
            .map_err(internal)?;
        doc.map(|d| {
            let password_hash = codec::password_hash_of(&d);
            Ok(UserCredentials {
                user: codec::from_doc(d)?,
                password_hash,
            })
        })
        .transpose()
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_users(&self, lab: Option<LabId>) -> Result<Vec<User>> {
        let filter = match lab {
            Some(l) => {
                let members = self
                    .find_all(
                        MEMBERSHIPS,
                        doc! { "lab_id": l.to_string() },
                        doc! { "user_id": 1 },
                    )
                    .await?;
                let ids: Vec<Bson> = members
                    .iter()
                    .filter_map(|m| m.get_str("user_id").ok())
                    .map(|u| Bson::String(u.to_string()))
                    .collect();
                doc! { "_id": { "$in": ids } }
            }
            None => doc! {},
        };
        self.find_all(USERS, filter, doc! { "username": 1 })
            .await?
            .into_iter()
            .map(codec::from_doc)
            .collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>> {
        self.find_all(
            MEMBERSHIPS,
            doc! { "user_id": user.to_string() },
            // Memberships from before `joined_seq` have none: they sort
            // first, by lab id, as they always did.
            doc! { "joined_seq": 1, "lab_id": 1 },
        )
        .await?
        .into_iter()
        .map(codec::from_doc)
        .collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn count_users(&self) -> Result<u64> {
        self.coll(USERS)
            .count_documents(doc! {})
            .await
            .map_err(internal)
    }

    #[instrument(level = "debug", skip(self, hash))]
    async fn get_token(&self, hash: &str, kind: TokenKind) -> Result<Option<StoredToken>> {
        self.coll(TOKENS)
            .find_one(doc! { "_id": hash, "kind": kind.as_str() })
            .await
            .map_err(internal)?
            .map(codec::from_doc)
            .transpose()
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_environment(&self, id: EnvironmentId) -> Result<Environment> {
        codec::from_doc(found(
            self.find_by_id(ENVIRONMENTS, &id.to_string()).await?,
            "environment",
        )?)
    }

    #[instrument(level = "debug", skip_all)]
    async fn list_environments(&self, f: &EnvironmentFilter) -> Result<Page<Environment>> {
        let (total, docs) = page_of(
            self.coll(ENVIRONMENTS),
            codec::environment_filter(f)?,
            codec::environment_sort(),
            f.limit,
            f.offset,
        )
        .await?;
        Ok(Page {
            items: docs
                .into_iter()
                .map(codec::from_doc)
                .collect::<Result<_>>()?,
            total,
            limit: f.limit,
            offset: f.offset,
        })
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_job(&self, id: JobId) -> Result<Job> {
        codec::from_doc(found(self.find_by_id(JOBS, &id.to_string()).await?, "job")?)
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_snapshot(&self, id: SnapshotId) -> Result<Snapshot> {
        codec::from_doc(found(
            self.find_by_id(SNAPSHOTS, &id.to_string()).await?,
            "snapshot",
        )?)
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_snapshots(&self, f: &SnapshotFilter) -> Result<Page<Snapshot>> {
        let (total, docs) = page_of(
            self.coll(SNAPSHOTS),
            codec::snapshot_filter(f)?,
            doc! { "created_key": -1, "_id": -1 },
            f.limit,
            f.offset,
        )
        .await?;
        Ok(Page {
            items: docs
                .into_iter()
                .map(codec::from_doc)
                .collect::<Result<_>>()?,
            total,
            limit: f.limit,
            offset: f.offset,
        })
    }

    #[instrument(level = "debug", skip(self))]
    async fn lab_storage_bytes(&self, lab: LabId) -> Result<u64> {
        let docs = self
            .find_all(
                SNAPSHOTS,
                doc! { "lab_id": lab.to_string(), "status": { "$ne": "failed" } },
                doc! { "_id": 1 },
            )
            .await?;
        let snaps = docs
            .into_iter()
            .map(codec::from_doc::<Snapshot>)
            .collect::<Result<Vec<_>>>()?;
        Ok(snaps.iter().map(|s| s.stored_bytes_added).sum())
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_jobs(&self, status: Option<JobStatus>) -> Result<Vec<Job>> {
        let filter = match status {
            Some(s) => doc! { "status": codec::enum_name(&s)? },
            None => doc! {},
        };
        // Job ids are time-ordered (UUIDv7), so this is creation order.
        self.find_all(JOBS, filter, doc! { "_id": 1 })
            .await?
            .into_iter()
            .map(codec::from_doc)
            .collect()
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_share(&self, id: ShareId) -> Result<Share> {
        self.get_share_impl(id).await
    }

    #[instrument(level = "debug", skip_all)]
    async fn list_shares(&self, filter: &ShareFilter) -> Result<Vec<Share>> {
        self.list_shares_impl(filter).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_template(&self, id: TemplateId) -> Result<Template> {
        self.get_template_impl(id).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_templates(
        &self,
        lab: Option<LabId>,
        snapshot: Option<SnapshotId>,
        include_withdrawn: bool,
    ) -> Result<Vec<Template>> {
        self.list_templates_impl(lab, snapshot, include_withdrawn)
            .await
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_handover(&self, id: HandoverId) -> Result<Handover> {
        self.get_handover_impl(id).await
    }

    #[instrument(level = "debug", skip_all)]
    async fn list_handovers(&self, filter: &HandoverFilter) -> Result<Vec<Handover>> {
        self.list_handovers_impl(filter).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn get_invitation(&self, id: InvitationId) -> Result<Invitation> {
        self.get_invitation_impl(id).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn list_invitations(&self, filter: &InvitationFilter) -> Result<Vec<Invitation>> {
        self.list_invitations_impl(filter).await
    }

    fn access_generation(&self) -> Option<u64> {
        Some(
            self.access_generation
                .load(std::sync::atomic::Ordering::Acquire),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..MAX_ATTEMPTS {
            let base = 5u64 << attempt.min(6);
            let d = backoff(attempt).as_millis() as u64;
            assert!((base..2 * base).contains(&d), "attempt {attempt}: {d} ms");
        }
        assert!(backoff(30) < Duration::from_secs(1));
    }

    #[test]
    fn only_conflicts_and_a_moved_head_are_retried() {
        assert!(TxError::HeadMoved.retryable());
        assert!(TxError::Raced("drift state").retryable());
        assert!(matches!(
            TxError::Raced("drift state").into_domain(),
            DomainError::Internal(_)
        ));
        assert!(!TxError::Domain(DomainError::Conflict("taken".into())).retryable());
        assert!(matches!(
            TxError::HeadMoved.into_domain(),
            DomainError::Internal(_)
        ));
    }
}
