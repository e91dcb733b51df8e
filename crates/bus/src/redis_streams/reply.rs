//! Parsing of the raw stream replies (`XREADGROUP`, `XAUTOCLAIM`) and of the
//! envelope inside an entry.
//!
//! Policy: parse by hand from `redis::Value` instead of the crate's typed
//! replies, because an entry can legitimately come back without fields (it
//! was trimmed by `MAXLEN` while pending) and such an entry must be acked and
//! skipped, not fail the whole batch. Both RESP2 (flat arrays) and RESP3
//! (maps) shapes are accepted. A reply that is not shaped like a stream reply
//! at all is an error (the caller retries); an entry whose content is not a
//! valid envelope is [`Entry::event`] `Err` (the caller acks and skips it).

use redis::Value;
use westtek_domain::DomainEvent;

/// The stream field holding the JSON envelope.
pub(crate) const EVENT_FIELD: &str = "event";

/// One stream entry as read.
#[derive(Debug)]
pub(crate) struct Entry {
    pub id: String,
    /// The decoded envelope, or why the entry is not one.
    pub event: Result<DomainEvent, String>,
}

/// What `XAUTOCLAIM` returned.
#[derive(Debug)]
pub(crate) struct Claimed {
    /// Where the next scan starts; `0-0` when the scan is complete.
    pub cursor: String,
    pub entries: Vec<Entry>,
    /// Pending ids whose entries no longer exist (Redis removed them from the
    /// pending list itself).
    pub deleted: Vec<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// Field/value pairs of an entry, from a flat array or a map.
fn pairs(v: &Value) -> Option<Vec<(&Value, &Value)>> {
    match v {
        Value::Array(items) if items.len() % 2 == 0 => {
            Some(items.chunks(2).map(|kv| (&kv[0], &kv[1])).collect())
        }
        Value::Map(kv) => Some(kv.iter().map(|(k, v)| (k, v)).collect()),
        _ => None,
    }
}

fn decode(fields: &Value) -> Result<DomainEvent, String> {
    let fields = match fields {
        Value::Nil => return Err("the entry no longer exists (trimmed)".into()),
        other => pairs(other).ok_or("the entry's fields are not field/value pairs")?,
    };
    let payload = fields
        .iter()
        .find(|(k, _)| bytes(k) == Some(EVENT_FIELD.as_bytes()))
        .map(|(_, v)| *v)
        .ok_or_else(|| format!("the entry has no `{EVENT_FIELD}` field"))?;
    let payload = bytes(payload).ok_or_else(|| format!("`{EVENT_FIELD}` is not a string"))?;
    serde_json::from_slice(payload).map_err(|e| format!("`{EVENT_FIELD}` is not an envelope: {e}"))
}

/// Entries of one stream: `[[id, fields], …]`.
pub(crate) fn parse_entries(v: &Value) -> Result<Vec<Entry>, String> {
    let Value::Array(items) = v else {
        return Err(format!("expected a list of entries, got {v:?}"));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Array(parts) if parts.len() == 2 => {
                let id = text(&parts[0]).ok_or("an entry id is not a string")?;
                Ok(Entry {
                    id,
                    event: decode(&parts[1]),
                })
            }
            other => Err(format!("expected an entry, got {other:?}")),
        })
        .collect()
}

/// An `XREADGROUP` reply for one stream: nil (timed out) or
/// `[[key, entries]]` / `{key: entries}`.
pub(crate) fn parse_read(v: &Value) -> Result<Vec<Entry>, String> {
    let streams: Vec<&Value> = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .iter()
            .map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Ok(&kv[1]),
                other => Err(format!("expected [key, entries], got {other:?}")),
            })
            .collect::<Result<_, _>>()?,
        Value::Map(kv) => kv.iter().map(|(_, entries)| entries).collect(),
        other => return Err(format!("unexpected read reply {other:?}")),
    };
    let mut out = Vec::new();
    for entries in streams {
        out.extend(parse_entries(entries)?);
    }
    Ok(out)
}

/// An `XAUTOCLAIM` reply: `[cursor, entries]` (Redis 6.2) or
/// `[cursor, entries, deleted ids]` (7.0+).
pub(crate) fn parse_autoclaim(v: &Value) -> Result<Claimed, String> {
    let Value::Array(parts) = v else {
        return Err(format!("unexpected XAUTOCLAIM reply {v:?}"));
    };
    let cursor = parts
        .first()
        .and_then(text)
        .ok_or("XAUTOCLAIM reply has no cursor")?;
    let entries = match parts.get(1) {
        Some(entries) => parse_entries(entries)?,
        None => return Err("XAUTOCLAIM reply has no entries".into()),
    };
    let deleted = match parts.get(2) {
        Some(Value::Array(ids)) => ids.iter().filter_map(text).collect(),
        _ => Vec::new(),
    };
    Ok(Claimed {
        cursor,
        entries,
        deleted,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: Value) -> Value {
        Value::Array(vec![bulk(id), fields])
    }

    fn good_event() -> (DomainEvent, String) {
        let e = crate::conformance::event(1);
        let json = serde_json::to_string(&e).unwrap();
        (e, json)
    }

    #[test]
    fn a_timed_out_read_is_no_entries() {
        assert!(parse_read(&Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn a_resp2_read_reply_yields_its_envelopes() {
        let (e, json) = good_event();
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("events"),
            Value::Array(vec![entry(
                "1-0",
                Value::Array(vec![bulk("other"), bulk("x"), bulk("event"), bulk(&json)]),
            )]),
        ])]);
        let entries = parse_read(&reply).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(entries[0].event.as_ref().unwrap(), &e);
    }

    #[test]
    fn a_resp3_read_reply_yields_its_envelopes() {
        let (e, json) = good_event();
        let reply = Value::Map(vec![(
            bulk("events"),
            Value::Array(vec![entry(
                "2-0",
                Value::Map(vec![(bulk("event"), bulk(&json))]),
            )]),
        )]);
        let entries = parse_read(&reply).unwrap();
        assert_eq!(entries[0].event.as_ref().unwrap(), &e);
    }

    #[test]
    fn malformed_entries_are_reported_one_by_one() {
        let reply = Value::Array(vec![
            entry("1-0", Value::Nil),
            entry("2-0", Value::Array(vec![bulk("nope"), bulk("x")])),
            entry("3-0", Value::Array(vec![bulk("event"), bulk("{not json")])),
            entry("4-0", Value::Array(vec![bulk("event"), bulk("{\"id\":1}")])),
            entry("5-0", Value::Array(vec![bulk("event"), Value::Int(3)])),
            entry("6-0", Value::Array(vec![bulk("odd")])),
        ]);
        let entries = parse_entries(&reply).unwrap();
        assert_eq!(entries.len(), 6);
        assert!(entries.iter().all(|e| e.event.is_err()), "{entries:?}");
    }

    #[test]
    fn a_reply_of_the_wrong_shape_is_an_error() {
        assert!(parse_read(&Value::Int(1)).is_err());
        assert!(parse_entries(&Value::Array(vec![bulk("x")])).is_err());
        assert!(parse_autoclaim(&Value::Array(vec![])).is_err());
    }

    #[test]
    fn an_autoclaim_reply_carries_cursor_entries_and_deleted_ids() {
        let (e, json) = good_event();
        let reply = Value::Array(vec![
            bulk("0-0"),
            Value::Array(vec![entry(
                "7-0",
                Value::Array(vec![bulk("event"), bulk(&json)]),
            )]),
            Value::Array(vec![bulk("5-0")]),
        ]);
        let claimed = parse_autoclaim(&reply).unwrap();
        assert_eq!(claimed.cursor, "0-0");
        assert_eq!(claimed.entries[0].event.as_ref().unwrap(), &e);
        assert_eq!(claimed.deleted, vec!["5-0".to_string()]);
    }
}
