//! How domain values become MongoDB documents and filters, and back.
//!
//! Policy: an entity is stored as its own serde serialisation (so what is
//! read back equals what was written, nanoseconds included) with `_id` set to
//! its id and, where a query needs it, a derived field beside it:
//! `created_key` (the creation time in the fixed-width form `format_time`
//! gives, so it sorts as text like the SQLite column does) and users'
//! `password_hash`. Unknown fields are ignored when reading, so these extras
//! never leak into the domain types.
//!
//! Audit entries are written field by field instead: their time in the
//! hashed text form and `details` as JSON text, because the hash covers the
//! exact JSON and arbitrary JSON (keys starting with `$`, integers beyond
//! `i64`) does not survive BSON unchanged. Reading them is tolerant, as in
//! the SQLite adapter: a hand-edited entry that no longer parses comes back
//! with an empty hash, so chain verification names it instead of the whole
//! read failing.
//!
//! The drift records' shapes are in `drift`, the collaboration records'
//! (shares, templates, handovers) in `collab`.

use crate::error::internal;
use chrono::{DateTime, Utc};
use mongodb::bson::{self, doc, Bson, Document};
use serde::de::DeserializeOwned;
use serde::Serialize;
use westtek_domain::audit::{format_time, AuditHead};
use westtek_domain::{
    AuditEntry, AuditFilter, AuditId, DomainError, Environment, EnvironmentFilter, Job, Lab, LabId,
    Membership, Result, Snapshot, SnapshotFilter, StoredToken, User, UserId,
};

pub(crate) mod collab;
pub(crate) mod drift;

/// The `_id` of the single audit head document.
pub(crate) const HEAD_ID: &str = "head";

/// Serialises a value into a document.
pub(crate) fn to_doc<T: Serialize>(v: &T) -> Result<Document> {
    bson::to_document(v).map_err(internal)
}

/// Deserialises a stored document.
pub(crate) fn from_doc<T: DeserializeOwned>(d: Document) -> Result<T> {
    bson::from_document(d).map_err(|e| internal(format!("corrupt document: {e}")))
}

/// The serde name of a unit enum variant (`running`, `MINOR_DRIFT`, …).
pub(crate) fn enum_name<T: Serialize>(v: &T) -> Result<String> {
    match serde_json::to_value(v).map_err(internal)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(internal(format!("not a unit enum: {other}"))),
    }
}

/// `v` serialised, with `_id` first.
fn entity<T: Serialize>(id: impl Into<Bson>, v: &T) -> Result<Document> {
    let mut d = doc! { "_id": id.into() };
    d.extend(to_doc(v)?);
    Ok(d)
}

pub(crate) fn lab_doc(lab: &Lab) -> Result<Document> {
    entity(lab.id.to_string(), lab)
}

pub(crate) fn user_doc(user: &User, password_hash: Option<&str>) -> Result<Document> {
    let mut d = entity(user.id.to_string(), user)?;
    d.insert(
        "password_hash",
        password_hash.map_or(Bson::Null, |h| Bson::String(h.to_string())),
    );
    Ok(d)
}

/// The stored password hash of a user document (absent or null: none).
pub(crate) fn password_hash_of(d: &Document) -> Option<String> {
    d.get_str("password_hash").ok().map(str::to_string)
}

/// The `_id` of a membership: one per (lab, user) pair.
pub(crate) fn membership_id(lab: LabId, user: UserId) -> String {
    format!("{lab}:{user}")
}

pub(crate) fn membership_doc(m: &Membership) -> Result<Document> {
    entity(membership_id(m.lab_id, m.user_id), m)
}

/// An invitation as stored, with its `created_key` for sorting.
pub(crate) fn invitation_doc(i: &westtek_domain::Invitation) -> Result<Document> {
    let mut d = entity(i.id.to_string(), i)?;
    d.insert("created_key", format_time(i.created_at));
    Ok(d)
}

pub(crate) fn token_doc(t: &StoredToken) -> Result<Document> {
    entity(t.hash.clone(), t)
}

pub(crate) fn environment_doc(env: &Environment) -> Result<Document> {
    let mut d = entity(env.id.to_string(), env)?;
    d.insert("created_key", format_time(env.created_at));
    Ok(d)
}

/// The stored `version` as the filter of a conditional update expects it.
pub(crate) fn version_bson(version: u64) -> Result<Bson> {
    i64::try_from(version)
        .map(Bson::Int64)
        .map_err(|_| internal(format!("environment version {version} out of range")))
}

pub(crate) fn snapshot_doc(snap: &Snapshot) -> Result<Document> {
    let mut d = entity(snap.id.to_string(), snap)?;
    d.insert("created_key", format_time(snap.timestamp));
    Ok(d)
}

pub(crate) fn snapshot_filter(f: &SnapshotFilter) -> Result<Document> {
    let mut d = Document::new();
    if let Some(l) = f.lab_id {
        d.insert("lab_id", l.to_string());
    }
    if let Some(e) = f.environment_id {
        d.insert("environment_id", e.to_string());
    }
    if let Some(s) = f.status {
        d.insert("status", enum_name(&s)?);
    }
    Ok(d)
}

pub(crate) fn job_doc(job: &Job) -> Result<Document> {
    entity(job.id.to_string(), job)
}

pub(crate) fn handled_event_doc(consumer: &str, event_id: &str, at: DateTime<Utc>) -> Document {
    doc! { "consumer": consumer, "event_id": event_id, "handled_at": format_time(at) }
}

fn opt_string(v: Option<String>) -> Bson {
    v.map_or(Bson::Null, Bson::String)
}

/// An audit entry as stored.
pub(crate) fn audit_doc(e: &AuditEntry) -> Document {
    doc! {
        "_id": e.id.to_string(),
        "seq": e.seq,
        "time": format_time(e.time),
        "actor_id": opt_string(e.actor_id.map(|u| u.to_string())),
        "actor_name": &e.actor_name,
        "lab_id": opt_string(e.lab_id.map(|l| l.to_string())),
        "action": &e.action,
        "target_kind": &e.target_kind,
        "target_id": &e.target_id,
        "request_id": &e.request_id,
        "details": e.details.to_string(),
        "prev_hash": &e.prev_hash,
        "hash": &e.hash,
    }
}

/// Reads a stored audit entry; see the module docs for damaged entries.
///
/// # Errors
/// `Internal` only when `seq` is missing, since the entry cannot be placed.
pub(crate) fn audit_from_doc(d: &Document) -> Result<AuditEntry> {
    let seq = match d.get("seq") {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        _ => return Err(internal("corrupt audit entry: no seq")),
    };
    let mut damaged = false;
    let mut text = |key: &str| -> String {
        d.get_str(key).map(str::to_string).unwrap_or_else(|_| {
            damaged = true;
            String::new()
        })
    };
    let id_text = text("_id");
    let time_text = text("time");
    let actor_name = text("actor_name");
    let action = text("action");
    let target_kind = text("target_kind");
    let target_id = text("target_id");
    let request_id = text("request_id");
    let details_text = text("details");
    let prev_hash = text("prev_hash");
    let hash = text("hash");
    let mut optional = |key: &str| -> Option<String> {
        match d.get(key) {
            None | Some(Bson::Null) => None,
            Some(Bson::String(s)) => Some(s.clone()),
            Some(_) => {
                damaged = true;
                None
            }
        }
    };
    let actor_text = optional("actor_id");
    let lab_text = optional("lab_id");

    let id = AuditId::parse(&id_text).unwrap_or_else(|_| {
        damaged = true;
        AuditId::from_uuid(uuid::Uuid::nil())
    });
    let time = DateTime::parse_from_rfc3339(&time_text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| {
            damaged = true;
            DateTime::<Utc>::UNIX_EPOCH
        });
    let actor_id = actor_text.and_then(|s| {
        UserId::parse(&s).map(Some).unwrap_or_else(|_| {
            damaged = true;
            None
        })
    });
    let lab_id = lab_text.and_then(|s| {
        LabId::parse(&s).map(Some).unwrap_or_else(|_| {
            damaged = true;
            None
        })
    });
    let details = serde_json::from_str(&details_text).unwrap_or_else(|_| {
        damaged = true;
        serde_json::Value::Null
    });
    Ok(AuditEntry {
        seq,
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

/// The head document as stored.
pub(crate) fn head_doc(head: &AuditHead) -> Document {
    doc! { "_id": HEAD_ID, "seq": head.seq, "hash": &head.hash }
}

/// Reads the head document.
///
/// # Errors
/// `Internal` when it lacks `seq` or `hash`.
pub(crate) fn head_from_doc(d: &Document) -> Result<AuditHead> {
    let seq = match d.get("seq") {
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Int32(n)) => i64::from(*n),
        _ => return Err(internal("corrupt audit head: no seq")),
    };
    let hash = d
        .get_str("hash")
        .map_err(|_| internal("corrupt audit head: no hash"))?;
    Ok(AuditHead {
        seq,
        hash: hash.to_string(),
    })
}

/// `s` with every regular-expression metacharacter escaped, so it matches
/// itself literally. Only the metacharacters are escaped (not all
/// punctuation) because regex engines differ on escapes like `\_`.
pub(crate) fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The query for an environment listing (the same conditions as the SQLite
/// adapter's `WHERE`).
pub(crate) fn environment_filter(f: &EnvironmentFilter) -> Result<Document> {
    let mut q = Document::new();
    if let Some(l) = f.lab_id {
        q.insert("lab_id", l.to_string());
    }
    if let Some(r) = f.researcher_id {
        q.insert("researcher_id", r.to_string());
    }
    if let Some(d) = f.drift_status {
        q.insert("drift_status", d.as_str());
    }
    if let Some(s) = f.status {
        q.insert("status", enum_name(&s)?);
    }
    if let Some(j) = f.jupyter_status {
        q.insert("jupyter_status", enum_name(&j)?);
    }
    if let Some(n) = &f.name_contains {
        q.insert("name", doc! { "$regex": escape_regex(n), "$options": "i" });
    }
    Ok(q)
}

/// Newest first, ties by id, as the SQLite adapter orders.
pub(crate) fn environment_sort() -> Document {
    doc! { "created_key": -1, "_id": -1 }
}

/// The query for an audit listing (the same conditions as the SQLite
/// adapter's `WHERE`; times compare as their fixed-width text).
pub(crate) fn audit_filter(f: &AuditFilter) -> Document {
    let mut q = Document::new();
    if let Some(l) = f.lab_id {
        q.insert("lab_id", l.to_string());
    }
    if let Some(a) = &f.actor_name {
        q.insert("actor_name", a.as_str());
    }
    if let Some(a) = &f.action {
        q.insert("action", a.as_str());
    }
    if let Some(t) = &f.target_id {
        q.insert("target_id", t.as_str());
    }
    let mut time = Document::new();
    if let Some(s) = f.since {
        time.insert("$gte", format_time(s));
    }
    if let Some(u) = f.until {
        time.insert("$lt", format_time(u));
    }
    if !time.is_empty() {
        q.insert("time", time);
    }
    q
}

/// Maps a missing document to `NotFound { kind }`.
pub(crate) fn found<T>(v: Option<T>, kind: &'static str) -> Result<T> {
    v.ok_or(DomainError::NotFound { kind })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use chrono::TimeZone;
    use westtek_domain::audit::GENESIS_HASH;
    use westtek_domain::*;

    fn environment() -> Environment {
        // A time with nanoseconds, which must survive the round trip.
        let created = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        Environment {
            id: EnvironmentId::new(),
            lab_id: LabId::new(),
            researcher_id: UserId::new(),
            name: Slug::parse_field("genomics", "name").unwrap(),
            python_version: "3.11.7".into(),
            packages: vec![
                PackageSpec::parse("numpy==1.26.4").unwrap(),
                PackageSpec::parse("pandas").unwrap(),
            ],
            status: EnvironmentStatus::Ready,
            jupyter_status: JupyterStatus::Running,
            created_at: created,
            updated_at: Utc::now(),
            last_snapshot: Some(created),
            drift_status: DriftStatus::MinorDrift,
            configuration_hash: Some("ab".repeat(32)),
            container_info: ContainerInfo {
                jupyter_url: Some("http://127.0.0.1:1/".into()),
                ..Default::default()
            },
            metadata: EnvironmentMetadata {
                experiment_id: Some("exp-1".into()),
                funding_source: None,
                criticality: Criticality::High,
                jupyter_packages: vec!["numpy==1.26.4".into()],
            },
            baseline_snapshot_id: Some(westtek_domain::SnapshotId::new()),
            current_baseline_id: None,
            retention: westtek_domain::RetentionPolicy {
                keep_last: Some(5),
                keep_daily: None,
                keep_monthly: Some(12),
            },
            drill_interval_days: Some(30),
            adopted: None,
            agent_credential: None,
            version: 7,
        }
    }

    fn entry(seq: i64, details: serde_json::Value) -> AuditEntry {
        let draft = AuditDraft {
            actor_id: Some(UserId::new()),
            actor_name: "ada".into(),
            lab_id: Some(LabId::new()),
            action: "environment.create".into(),
            target_kind: "environment".into(),
            target_id: "e1".into(),
            request_id: "req-1".into(),
            details,
        };
        AuditEntry::seal(&draft, seq, Utc::now(), GENESIS_HASH)
    }

    #[test]
    fn an_environment_survives_a_bson_round_trip_exactly() {
        let env = environment();
        let d = environment_doc(&env).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), env.id.to_string());
        assert_eq!(d.get_str("lab_id").unwrap(), env.lab_id.to_string());
        assert_eq!(d.get_str("status").unwrap(), "ready");
        assert_eq!(d.get_str("drift_status").unwrap(), "MINOR_DRIFT");
        assert_eq!(d.get_i64("version").unwrap(), 7);
        assert_eq!(
            d.get_str("created_key").unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        // Through the wire format too, not only the in-memory document.
        let bytes = bson::to_vec(&d).unwrap();
        let back: Document = bson::from_slice(&bytes).unwrap();
        assert_eq!(from_doc::<Environment>(back).unwrap(), env);
    }

    #[test]
    fn an_audit_entry_survives_a_bson_round_trip_exactly() {
        let details = serde_json::json!({
            "$where": "not an operator here",
            "big": u64::MAX,
            "float": 1.5,
            "nested": {"a.b": [1, null, true]},
        });
        let e = entry(3, details);
        let bytes = bson::to_vec(&audit_doc(&e)).unwrap();
        let back: Document = bson::from_slice(&bytes).unwrap();
        let read = audit_from_doc(&back).unwrap();
        assert_eq!(read, e);
        assert_eq!(read.compute_hash(), read.hash);
    }

    #[test]
    fn a_platform_audit_entry_without_actor_or_lab_round_trips() {
        let mut e = entry(1, serde_json::Value::Null);
        e.actor_id = None;
        e.lab_id = None;
        e.hash = e.compute_hash();
        let d = audit_doc(&e);
        assert_eq!(d.get("lab_id"), Some(&Bson::Null));
        assert_eq!(audit_from_doc(&d).unwrap(), e);
    }

    #[test]
    fn a_hand_edited_audit_entry_reads_back_with_an_empty_hash() {
        let e = entry(2, serde_json::json!({}));
        let mut d = audit_doc(&e);
        d.insert("time", "yesterday");
        let read = audit_from_doc(&d).unwrap();
        assert_eq!(read.seq, 2);
        assert_eq!(read.hash, "");
        d.remove("seq");
        assert!(matches!(audit_from_doc(&d), Err(DomainError::Internal(_))));
    }

    #[test]
    fn the_other_entities_survive_a_bson_round_trip() {
        let lab = Lab {
            id: LabId::new(),
            name: Slug::parse_field("alpha", "name").unwrap(),
            display_name: "Alpha".into(),
            created_at: Utc::now(),
            quotas: LabQuotas::default(),
        };
        assert_eq!(from_doc::<Lab>(lab_doc(&lab).unwrap()).unwrap(), lab);

        let user = User {
            id: UserId::new(),
            username: Slug::parse_field("ada", "username").unwrap(),
            display_name: "Ada".into(),
            it_admin: true,
            created_at: Utc::now(),
            idp_managed: false,
            disabled: false,
        };
        let d = user_doc(&user, Some("argon2-hash")).unwrap();
        assert_eq!(password_hash_of(&d).as_deref(), Some("argon2-hash"));
        assert_eq!(from_doc::<User>(d).unwrap(), user);
        assert_eq!(password_hash_of(&user_doc(&user, None).unwrap()), None);

        let m = Membership {
            lab_id: lab.id,
            user_id: user.id,
            role: Role::LabAdmin,
        };
        let d = membership_doc(&m).unwrap();
        assert_eq!(d.get_str("role").unwrap(), "lab_admin");
        assert_eq!(from_doc::<Membership>(d).unwrap(), m);

        let t = StoredToken {
            hash: "abc".into(),
            kind: TokenKind::OneTimeLogin,
            user_id: user.id,
            expires_at: Utc::now(),
            created_at: Utc::now(),
        };
        let d = token_doc(&t).unwrap();
        assert_eq!(d.get_str("kind").unwrap(), TokenKind::OneTimeLogin.as_str());
        assert_eq!(from_doc::<StoredToken>(d).unwrap(), t);

        let job = Job {
            id: JobId::new(),
            lab_id: lab.id,
            kind: "environment.create".into(),
            target_id: "x".into(),
            status: JobStatus::Failed,
            progress: 0.3,
            message: "installing".into(),
            error: Some(JobError {
                code: "interrupted".into(),
                message: "restart".into(),
            }),
            created_by: user.id,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let d = job_doc(&job).unwrap();
        assert_eq!(d.get_str("status").unwrap(), "failed");
        assert_eq!(from_doc::<Job>(d).unwrap(), job);
    }

    #[test]
    fn the_head_round_trips() {
        let h = AuditHead {
            seq: 42,
            hash: "ff".repeat(32),
        };
        assert_eq!(head_from_doc(&head_doc(&h)).unwrap(), h);
        assert!(head_from_doc(&doc! { "_id": HEAD_ID }).is_err());
    }

    #[test]
    fn an_empty_environment_filter_matches_everything() {
        assert_eq!(
            environment_filter(&EnvironmentFilter::default()).unwrap(),
            doc! {}
        );
    }

    #[test]
    fn an_environment_filter_names_every_condition() {
        let lab = LabId::new();
        let who = UserId::new();
        let f = EnvironmentFilter {
            lab_id: Some(lab),
            researcher_id: Some(who),
            drift_status: Some(DriftStatus::CriticalDrift),
            status: Some(EnvironmentStatus::Provisioning),
            jupyter_status: Some(JupyterStatus::Starting),
            name_contains: Some("OMICS".into()),
            limit: 10,
            offset: 0,
        };
        assert_eq!(
            environment_filter(&f).unwrap(),
            doc! {
                "lab_id": lab.to_string(),
                "researcher_id": who.to_string(),
                "drift_status": "CRITICAL_DRIFT",
                "status": "provisioning",
                "jupyter_status": "starting",
                "name": { "$regex": "OMICS", "$options": "i" },
            }
        );
    }

    #[test]
    fn a_name_search_is_literal_not_a_pattern() {
        assert_eq!(escape_regex("a.b*c"), r"a\.b\*c");
        assert_eq!(escape_regex(r"x(y)|[z]\$^"), r"x\(y\)\|\[z\]\\\$\^");
        assert_eq!(escape_regex("plain-name_1"), "plain-name_1");
        assert_eq!(escape_regex("größe"), "größe");
    }

    #[test]
    fn an_audit_filter_bounds_time_as_text() {
        let since = Utc.timestamp_opt(1_700_000_000, 5_000).unwrap();
        let until = Utc.timestamp_opt(1_700_000_100, 0).unwrap();
        let lab = LabId::new();
        let f = AuditFilter {
            lab_id: Some(lab),
            actor_name: Some("ada".into()),
            action: Some("auth.login".into()),
            target_id: Some("u1".into()),
            since: Some(since),
            until: Some(until),
            limit: 10,
            offset: 0,
        };
        assert_eq!(
            audit_filter(&f),
            doc! {
                "lab_id": lab.to_string(),
                "actor_name": "ada",
                "action": "auth.login",
                "target_id": "u1",
                "time": { "$gte": "2023-11-14T22:13:20.000005Z", "$lt": "2023-11-14T22:15:00.000000Z" },
            }
        );
        assert_eq!(audit_filter(&AuditFilter::default()), doc! {});
        let only_since = AuditFilter {
            since: Some(since),
            ..Default::default()
        };
        assert_eq!(
            audit_filter(&only_since),
            doc! { "time": { "$gte": format_time(since) } }
        );
    }

    #[test]
    fn a_version_beyond_i64_is_refused_rather_than_wrapped() {
        assert_eq!(version_bson(3).unwrap(), Bson::Int64(3));
        assert!(version_bson(u64::MAX).is_err());
    }
}
