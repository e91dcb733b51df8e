//! Document shapes of the drift records.
//!
//! Policy: as for the other entities, a record is its own serde
//! serialisation with `_id` set to its id, plus a fixed-width time key for
//! sorting and range filters (`detected_key`, `created_key`, `at_key`, in
//! the form `format_time` gives, as the SQLite columns hold them). The
//! free-form JSON fields (an event's `findings`, a dead letter's `payload`,
//! a recommendation's `body`) are stored as JSON text, for the reason audit
//! details are: arbitrary JSON (keys with `$` or `.`, integers beyond `i64`)
//! does not survive BSON unchanged.

use super::{entity, from_doc, internal};
use mongodb::bson::{Bson, Document};
use westtek_domain::audit::format_time;
use westtek_domain::{
    DeadLetterRecord, DriftEvent, DriftEventFilter, DriftStateRecord, RecommendationRecord, Result,
    Webhook,
};

/// The `_id` of the counter document that hands out drift event `seq`s.
pub(crate) const DRIFT_SEQ_COUNTER: &str = "drift_events";

/// `value` as the JSON text a document stores.
fn json_text(value: &serde_json::Value) -> Bson {
    Bson::String(value.to_string())
}

/// Takes the JSON text stored under `key` out of `d` (leaving null, which
/// reads as `Value::Null`) and parses it.
fn take_json(d: &mut Document, key: &str) -> Result<serde_json::Value> {
    let text = match d.insert(key, Bson::Null) {
        Some(Bson::String(s)) => s,
        _ => {
            return Err(internal(format!(
                "corrupt document: {key} is not JSON text"
            )))
        }
    };
    serde_json::from_str(&text).map_err(|e| internal(format!("corrupt document: {key}: {e}")))
}

/// An event as stored (its `seq` must already be assigned).
pub(crate) fn drift_event_doc(e: &DriftEvent) -> Result<Document> {
    let shell = DriftEvent {
        findings: serde_json::Value::Null,
        ..e.clone()
    };
    let mut d = entity(e.id.to_string(), &shell)?;
    d.insert("findings", json_text(&e.findings));
    d.insert("detected_key", format_time(e.detected_at));
    Ok(d)
}

/// Reads a stored event.
///
/// # Errors
/// `Internal` when the document is not an event.
pub(crate) fn drift_event_from_doc(mut d: Document) -> Result<DriftEvent> {
    let findings = take_json(&mut d, "findings")?;
    let mut e: DriftEvent = from_doc(d)?;
    e.findings = findings;
    Ok(e)
}

/// An environment's state as stored: one document per environment, whose
/// `_id` is the environment id.
pub(crate) fn drift_state_doc(s: &DriftStateRecord) -> Result<Document> {
    entity(s.environment_id.to_string(), s)
}

/// The query for an event listing (the same conditions as the SQLite
/// adapter's `WHERE`; times compare as their fixed-width text).
pub(crate) fn drift_event_filter(f: &DriftEventFilter) -> Document {
    let mut q = Document::new();
    if let Some(l) = f.lab_id {
        q.insert("lab_id", l.to_string());
    }
    if let Some(e) = f.environment_id {
        q.insert("environment_id", e.to_string());
    }
    let mut time = Document::new();
    if let Some(s) = f.since {
        time.insert("$gte", format_time(s));
    }
    if let Some(u) = f.until {
        time.insert("$lt", format_time(u));
    }
    if !time.is_empty() {
        q.insert("detected_key", time);
    }
    if let Some(n) = f.after_seq {
        // Beyond `i64::MAX` nothing is stored, so saturating keeps the
        // meaning of "greater than".
        q.insert(
            "seq",
            mongodb::bson::doc! { "$gt": i64::try_from(n).unwrap_or(i64::MAX) },
        );
    }
    q
}

/// A webhook as stored.
pub(crate) fn webhook_doc(h: &Webhook) -> Result<Document> {
    let mut d = entity(h.id.to_string(), h)?;
    d.insert("created_key", format_time(h.created_at));
    Ok(d)
}

/// A dead letter as stored.
pub(crate) fn dead_letter_doc(l: &DeadLetterRecord) -> Result<Document> {
    let shell = DeadLetterRecord {
        payload: serde_json::Value::Null,
        ..l.clone()
    };
    let mut d = entity(l.id.to_string(), &shell)?;
    d.insert("payload", json_text(&l.payload));
    d.insert("at_key", format_time(l.at));
    Ok(d)
}

/// Reads a stored dead letter.
///
/// # Errors
/// `Internal` when the document is not a dead letter.
pub(crate) fn dead_letter_from_doc(mut d: Document) -> Result<DeadLetterRecord> {
    let payload = take_json(&mut d, "payload")?;
    let mut l: DeadLetterRecord = from_doc(d)?;
    l.payload = payload;
    Ok(l)
}

/// A recommendation as stored.
pub(crate) fn recommendation_doc(r: &RecommendationRecord) -> Result<Document> {
    let shell = RecommendationRecord {
        body: serde_json::Value::Null,
        ..r.clone()
    };
    let mut d = entity(r.id.to_string(), &shell)?;
    d.insert("body", json_text(&r.body));
    d.insert("created_key", format_time(r.created_at));
    Ok(d)
}

/// Reads a stored recommendation.
///
/// # Errors
/// `Internal` when the document is not a recommendation.
pub(crate) fn recommendation_from_doc(mut d: Document) -> Result<RecommendationRecord> {
    let body = take_json(&mut d, "body")?;
    let mut r: RecommendationRecord = from_doc(d)?;
    r.body = body;
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use chrono::{TimeZone, Utc};
    use mongodb::bson::{self, doc};
    use westtek_domain::*;

    /// Through the wire format, not only the in-memory document.
    fn over_the_wire(d: &Document) -> Document {
        let bytes = bson::to_vec(d).unwrap();
        bson::from_slice(&bytes).unwrap()
    }

    /// JSON that BSON cannot hold as-is.
    fn awkward_json() -> serde_json::Value {
        serde_json::json!({
            "$where": "not an operator here",
            "big": u64::MAX,
            "float": 1.0,
            "nested": { "a.b": [1, null, true] },
        })
    }

    #[test]
    fn a_drift_event_survives_a_bson_round_trip_exactly() {
        let mut e =
            westtek_store::conformance::drift_event(LabId::new(), EnvironmentId::new(), "fp");
        e.seq = 42;
        e.detected_at = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        e.findings = awkward_json();
        let d = drift_event_doc(&e).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), e.id.to_string());
        assert_eq!(d.get_i64("seq").unwrap(), 42);
        assert_eq!(d.get_str("status").unwrap(), "MINOR_DRIFT");
        assert_eq!(
            d.get_str("detected_key").unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert!(d.get_str("findings").is_ok(), "findings are JSON text");
        assert_eq!(drift_event_from_doc(over_the_wire(&d)).unwrap(), e);
    }

    #[test]
    fn a_drift_event_with_damaged_findings_is_an_internal_error() {
        let mut e =
            westtek_store::conformance::drift_event(LabId::new(), EnvironmentId::new(), "fp");
        e.seq = 1;
        let mut d = drift_event_doc(&e).unwrap();
        d.insert("findings", "{not json");
        assert!(matches!(
            drift_event_from_doc(d.clone()),
            Err(DomainError::Internal(_))
        ));
        d.insert("findings", doc! { "kind": "x" });
        assert!(matches!(
            drift_event_from_doc(d),
            Err(DomainError::Internal(_))
        ));
    }

    #[test]
    fn the_other_drift_records_survive_a_bson_round_trip() {
        let state = DriftStateRecord {
            environment_id: EnvironmentId::new(),
            lab_id: LabId::new(),
            status: DriftStatus::CriticalDrift,
            fingerprint: "fp".into(),
            baseline_snapshot_id: None,
            last_event_id: Some(DriftEventId::new()),
            updated_at: Utc::now(),
        };
        let d = drift_state_doc(&state).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), state.environment_id.to_string());
        assert_eq!(d.get_str("fingerprint").unwrap(), "fp");
        assert_eq!(
            from_doc::<DriftStateRecord>(over_the_wire(&d)).unwrap(),
            state
        );

        let hook = Webhook {
            id: WebhookId::new(),
            lab_id: LabId::new(),
            url: "https://hooks.example/a".into(),
            secret: "s".into(),
            format: WebhookFormat::Generic,
            min_severity: "INFO".into(),
            created_by: UserId::new(),
            created_at: Utc::now(),
        };
        let d = webhook_doc(&hook).unwrap();
        assert_eq!(d.get_str("url").unwrap(), hook.url);
        assert_eq!(d.get_str("lab_id").unwrap(), hook.lab_id.to_string());
        assert_eq!(from_doc::<Webhook>(over_the_wire(&d)).unwrap(), hook);

        let letter = DeadLetterRecord {
            id: uuid::Uuid::now_v7(),
            lab_id: LabId::new(),
            channel: "email".into(),
            target: "ops@example.org".into(),
            event_id: DriftEventId::new().to_string(),
            attempts: 5,
            last_error: "timeout".into(),
            last_status: None,
            payload: awkward_json(),
            at: Utc::now(),
        };
        let d = dead_letter_doc(&letter).unwrap();
        assert_eq!(d.get_str("_id").unwrap(), letter.id.to_string());
        assert_eq!(d.get_str("at_key").unwrap(), format_time(letter.at));
        assert_eq!(dead_letter_from_doc(over_the_wire(&d)).unwrap(), letter);

        let rec = RecommendationRecord {
            id: RecommendationId::new(),
            lab_id: LabId::new(),
            environment_id: EnvironmentId::new(),
            agent: "drift_analyzer".into(),
            body: awkward_json(),
            analysis: Some("why".into()),
            drift_event_id: None,
            created_by: Some(UserId::new()),
            created_at: Utc::now(),
        };
        let d = recommendation_doc(&rec).unwrap();
        assert_eq!(
            d.get_str("environment_id").unwrap(),
            rec.environment_id.to_string()
        );
        assert_eq!(recommendation_from_doc(over_the_wire(&d)).unwrap(), rec);
    }

    #[test]
    fn a_drift_event_filter_names_every_condition() {
        assert_eq!(drift_event_filter(&DriftEventFilter::default()), doc! {});
        let lab = LabId::new();
        let env = EnvironmentId::new();
        let since = Utc.timestamp_opt(1_700_000_000, 5_000).unwrap();
        let until = Utc.timestamp_opt(1_700_000_100, 0).unwrap();
        let f = DriftEventFilter {
            lab_id: Some(lab),
            environment_id: Some(env),
            since: Some(since),
            until: Some(until),
            after_seq: Some(7),
            limit: 10,
            offset: 0,
        };
        assert_eq!(
            drift_event_filter(&f),
            doc! {
                "lab_id": lab.to_string(),
                "environment_id": env.to_string(),
                "detected_key": {
                    "$gte": "2023-11-14T22:13:20.000005Z",
                    "$lt": "2023-11-14T22:15:00.000000Z",
                },
                "seq": { "$gt": 7_i64 },
            }
        );
        let beyond = DriftEventFilter {
            after_seq: Some(u64::MAX),
            ..Default::default()
        };
        assert_eq!(
            drift_event_filter(&beyond),
            doc! { "seq": { "$gt": i64::MAX } }
        );
    }
}
