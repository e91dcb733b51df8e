//! Document shapes of the collaboration records (shares, templates,
//! handovers).
//!
//! Policy: as for the other entities, a record is its own serde
//! serialisation with `_id` set to its id (so times, nanoseconds included,
//! and `None`s read back exactly), plus fixed-width time keys for sorting
//! and range filters in the form `format_time` gives, as the SQLite columns
//! hold them: `created_key` (shares, handovers), `published_key`
//! (templates) and a share's `expires_key` (null when it never expires).
//! The filters name the same conditions as the SQLite adapter's `WHERE`.

use super::{entity, enum_name};
use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, Document};
use westtek_domain::audit::format_time;
use westtek_domain::{
    Handover, HandoverFilter, LabId, Result, Share, ShareFilter, SnapshotId, Template,
};

/// A share as stored.
pub(crate) fn share_doc(s: &Share) -> Result<Document> {
    let mut d = entity(s.id.to_string(), s)?;
    d.insert("created_key", format_time(s.created_at));
    d.insert(
        "expires_key",
        s.expires_at
            .map_or(Bson::Null, |e| Bson::String(format_time(e))),
    );
    Ok(d)
}

/// The query for a share listing.
///
/// With `active_at` it narrows to shares that may be active then (not
/// revoked; no expiry, or an expiry key not before the time's key). Keys
/// hold whole microseconds, so this is a superset of the active shares:
/// the caller still applies `Share::is_active` for the exact answer.
pub(crate) fn share_filter(f: &ShareFilter) -> Result<Document> {
    let mut q = Document::new();
    if let Some(l) = f.owner_lab {
        q.insert("owner_lab", l.to_string());
    }
    if let Some(l) = f.target_lab {
        q.insert("target_lab", l.to_string());
    }
    if let Some(r) = &f.resource {
        q.insert("resource", enum_name(r)?);
    }
    if let Some(r) = &f.resource_id {
        q.insert("resource_id", r.as_str());
    }
    if let Some(t) = f.active_at {
        q.insert("revoked_at", Bson::Null);
        q.insert("$or", active_expiry(t));
    }
    Ok(q)
}

/// Conditions of which one holds for every share not expired at `t`.
fn active_expiry(t: DateTime<Utc>) -> Vec<Bson> {
    vec![
        Bson::Document(doc! { "expires_key": Bson::Null }),
        Bson::Document(doc! { "expires_key": { "$gte": format_time(t) } }),
    ]
}

/// Newest first, ties by id, as the SQLite adapter orders shares and
/// handovers.
pub(crate) fn created_sort() -> Document {
    doc! { "created_key": -1, "_id": -1 }
}

/// A template as stored.
pub(crate) fn template_doc(t: &Template) -> Result<Document> {
    let mut d = entity(t.id.to_string(), t)?;
    d.insert("published_key", format_time(t.published_at));
    Ok(d)
}

/// The query for a template listing; withdrawn ones (a set `withdrawn_at`)
/// only when asked for.
pub(crate) fn template_filter(
    lab: Option<LabId>,
    snapshot: Option<SnapshotId>,
    include_withdrawn: bool,
) -> Document {
    let mut q = Document::new();
    if let Some(l) = lab {
        q.insert("lab_id", l.to_string());
    }
    if let Some(s) = snapshot {
        q.insert("snapshot_id", s.to_string());
    }
    if !include_withdrawn {
        // Matches a null or a missing field.
        q.insert("withdrawn_at", Bson::Null);
    }
    q
}

/// Newest first, ties by id, as the SQLite adapter orders templates.
pub(crate) fn template_sort() -> Document {
    doc! { "published_key": -1, "_id": -1 }
}

/// A handover as stored.
pub(crate) fn handover_doc(h: &Handover) -> Result<Document> {
    let mut d = entity(h.id.to_string(), h)?;
    d.insert("created_key", format_time(h.created_at));
    Ok(d)
}

/// The query for a handover listing; `user` matches either end.
pub(crate) fn handover_filter(f: &HandoverFilter) -> Document {
    let mut q = Document::new();
    if let Some(l) = f.lab_id {
        q.insert("lab_id", l.to_string());
    }
    if let Some(e) = f.environment_id {
        q.insert("environment_id", e.to_string());
    }
    if let Some(u) = f.user {
        let u = u.to_string();
        q.insert(
            "$or",
            vec![
                Bson::Document(doc! { "from_user": &u }),
                Bson::Document(doc! { "to_user": &u }),
            ],
        );
    }
    q
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::from_doc;
    use super::*;
    use chrono::{TimeDelta, TimeZone};
    use mongodb::bson;
    use westtek_domain::*;

    /// Through the wire format, not only the in-memory document.
    fn over_the_wire(d: &Document) -> Document {
        let bytes = bson::to_vec(d).unwrap();
        bson::from_slice(&bytes).unwrap()
    }

    /// A time with nanoseconds, which must survive the round trip.
    fn t0() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap()
    }

    fn share() -> Share {
        Share {
            id: ShareId::new(),
            owner_lab: LabId::new(),
            target_lab: LabId::new(),
            resource: ShareResource::Snapshot,
            resource_id: SnapshotId::new().to_string(),
            permission: SharePermission::Clone,
            created_by: UserId::new(),
            created_at: t0(),
            expires_at: None,
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn a_share_survives_a_bson_round_trip_exactly() {
        let open = share();
        let d = share_doc(&open).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), open.id.to_string());
        assert_eq!(d.get_str("owner_lab").unwrap(), open.owner_lab.to_string());
        assert_eq!(
            d.get_str("target_lab").unwrap(),
            open.target_lab.to_string()
        );
        assert_eq!(d.get_str("resource").unwrap(), "snapshot");
        assert_eq!(d.get_str("resource_id").unwrap(), open.resource_id);
        assert_eq!(
            d.get_str("created_key").unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(d.get("expires_key"), Some(&Bson::Null));
        assert_eq!(d.get("revoked_at"), Some(&Bson::Null));
        assert_eq!(from_doc::<Share>(over_the_wire(&d)).unwrap(), open);

        let mut closed = share();
        closed.expires_at = Some(t0() + TimeDelta::hours(1));
        closed.revoked_at = Some(t0());
        closed.revoked_by = Some(UserId::new());
        let d = share_doc(&closed).unwrap();
        assert_eq!(
            d.get_str("expires_key").unwrap(),
            "2023-11-14T23:13:20.123456Z"
        );
        assert_eq!(from_doc::<Share>(over_the_wire(&d)).unwrap(), closed);
    }

    #[test]
    fn a_share_filter_names_every_condition() {
        assert_eq!(share_filter(&ShareFilter::default()).unwrap(), doc! {});
        let owner = LabId::new();
        let target = LabId::new();
        let at = Utc.timestamp_opt(1_700_000_000, 5_000).unwrap();
        let f = ShareFilter {
            owner_lab: Some(owner),
            target_lab: Some(target),
            resource: Some(ShareResource::Environment),
            resource_id: Some("e1".into()),
            active_at: Some(at),
        };
        assert_eq!(
            share_filter(&f).unwrap(),
            doc! {
                "owner_lab": owner.to_string(),
                "target_lab": target.to_string(),
                "resource": "environment",
                "resource_id": "e1",
                "revoked_at": Bson::Null,
                "$or": [
                    { "expires_key": Bson::Null },
                    { "expires_key": { "$gte": "2023-11-14T22:13:20.000005Z" } },
                ],
            }
        );
    }

    #[test]
    fn the_active_prefilter_keeps_every_share_active_at_the_time() {
        // An expiry within the same microsecond as the time asked about,
        // but after it: the keys are equal, the share is still active.
        let at = Utc.timestamp_opt(1_700_000_000, 100).unwrap();
        let mut s = share();
        s.expires_at = Some(Utc.timestamp_opt(1_700_000_000, 900).unwrap());
        assert!(s.is_active(at));
        let d = share_doc(&s).unwrap();
        let key = d.get_str("expires_key").unwrap();
        assert!(key >= format_time(at).as_str());
    }

    #[test]
    fn a_template_survives_a_bson_round_trip_exactly() {
        let mut t = Template {
            id: TemplateId::new(),
            lab_id: LabId::new(),
            snapshot_id: SnapshotId::new(),
            environment_id: EnvironmentId::new(),
            name: "baseline-ml".into(),
            description: "numpy + pandas".into(),
            python_version: "3.11.7".into(),
            packages: vec!["numpy==2.0.0".into(), "pandas==2.2.2".into()],
            published_by: UserId::new(),
            published_at: t0(),
            withdrawn_at: None,
        };
        let d = template_doc(&t).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), t.id.to_string());
        assert_eq!(d.get_str("lab_id").unwrap(), t.lab_id.to_string());
        assert_eq!(d.get_str("snapshot_id").unwrap(), t.snapshot_id.to_string());
        assert_eq!(
            d.get_str("published_key").unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        // What the "not withdrawn" condition matches.
        assert_eq!(d.get("withdrawn_at"), Some(&Bson::Null));
        assert_eq!(from_doc::<Template>(over_the_wire(&d)).unwrap(), t);
        t.withdrawn_at = Some(t0());
        let d = template_doc(&t).unwrap();
        assert_eq!(from_doc::<Template>(over_the_wire(&d)).unwrap(), t);
    }

    #[test]
    fn a_template_filter_names_every_condition() {
        assert_eq!(template_filter(None, None, true), doc! {});
        assert_eq!(
            template_filter(None, None, false),
            doc! { "withdrawn_at": Bson::Null }
        );
        let lab = LabId::new();
        let snap = SnapshotId::new();
        assert_eq!(
            template_filter(Some(lab), Some(snap), false),
            doc! {
                "lab_id": lab.to_string(),
                "snapshot_id": snap.to_string(),
                "withdrawn_at": Bson::Null,
            }
        );
    }

    #[test]
    fn a_handover_survives_a_bson_round_trip_exactly() {
        let from = UserId::new();
        let h = Handover {
            id: HandoverId::new(),
            lab_id: LabId::new(),
            environment_id: EnvironmentId::new(),
            from_user: from,
            to_user: UserId::new(),
            note: "leaving in May".into(),
            read_until: t0() + TimeDelta::days(30),
            created_by: from,
            created_at: t0(),
            checklist: vec![
                ChecklistItem {
                    key: "restore".into(),
                    text: "Restore the snapshot".into(),
                    source: Some("environment-docs/x/summary.md".into()),
                    done_at: Some(t0()),
                    done_by: Some(from),
                },
                ChecklistItem {
                    key: "launch".into(),
                    text: "Launch Jupyter".into(),
                    source: None,
                    done_at: None,
                    done_by: None,
                },
            ],
        };
        let d = handover_doc(&h).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), h.id.to_string());
        assert_eq!(d.get_str("from_user").unwrap(), from.to_string());
        assert_eq!(d.get_str("to_user").unwrap(), h.to_user.to_string());
        assert_eq!(
            d.get_str("environment_id").unwrap(),
            h.environment_id.to_string()
        );
        assert_eq!(
            d.get_str("created_key").unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(from_doc::<Handover>(over_the_wire(&d)).unwrap(), h);
    }

    #[test]
    fn a_handover_filter_matches_either_user() {
        assert_eq!(handover_filter(&HandoverFilter::default()), doc! {});
        let lab = LabId::new();
        let env = EnvironmentId::new();
        let who = UserId::new();
        assert_eq!(
            handover_filter(&HandoverFilter {
                lab_id: Some(lab),
                environment_id: Some(env),
                user: Some(who),
            }),
            doc! {
                "lab_id": lab.to_string(),
                "environment_id": env.to_string(),
                "$or": [
                    { "from_user": who.to_string() },
                    { "to_user": who.to_string() },
                ],
            }
        );
    }
}
