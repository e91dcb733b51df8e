//! Names of the table's attributes and indexes, the key of each item type
//! (the layout is documented in the crate docs), and attribute helpers.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use westtek_domain::audit::format_time;
use westtek_domain::{DomainError, Result};

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const GSI1PK: &str = "gsi1pk";
pub(crate) const GSI1SK: &str = "gsi1sk";
pub(crate) const GSI2PK: &str = "gsi2pk";
pub(crate) const GSI2SK: &str = "gsi2sk";
/// The lab/time index (events of a lab; every state).
pub const GSI1: &str = "gsi1";
/// The environment/time index (events of an environment).
pub const GSI2: &str = "gsi2";
/// The TTL attribute (epoch seconds), set on drift events.
pub const TTL_ATTRIBUTE: &str = "expires_at";
pub(crate) const DOC: &str = "doc";
pub(crate) const SEQ: &str = "seq";
pub(crate) const FINGERPRINT: &str = "fingerprint";
pub(crate) const COUNTER_VALUE: &str = "n";
pub(crate) const WEBHOOK_ID: &str = "id";

/// `seq`s per event partition.
pub(crate) const SEQS_PER_PARTITION: u64 = 1000;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A `seq` as a sort key: 20 digits, so string order is numeric order.
pub(crate) fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// The partition of the event with `seq`.
pub(crate) fn events_pk(partition: u64) -> String {
    format!("EVENTS#{partition}")
}

pub(crate) fn partition_of(seq: u64) -> u64 {
    seq / SEQS_PER_PARTITION
}

/// The key of an item.
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

pub(crate) fn counter_key() -> Item {
    key("COUNTER", "drift_seq")
}

pub(crate) fn event_key(seq: u64) -> Item {
    key(events_pk(partition_of(seq)), seq_key(seq))
}

pub(crate) fn event_id_key(id: impl std::fmt::Display) -> Item {
    key(format!("EVENT#{id}"), "EVENT")
}

pub(crate) fn state_key(env: impl std::fmt::Display) -> Item {
    key(format!("STATE#{env}"), "STATE")
}

pub(crate) fn webhook_key(id: impl std::fmt::Display) -> Item {
    key(format!("WEBHOOK#{id}"), "WEBHOOK")
}

pub(crate) fn lab_webhooks_pk(lab: impl std::fmt::Display) -> String {
    format!("WEBHOOKS#{lab}")
}

/// The claim of `url` among a lab's webhooks. Keyed by the URL's BLAKE3
/// digest: a sort key holds at most 1024 bytes, a webhook URL up to 2048.
pub(crate) fn lab_webhook_key(lab: impl std::fmt::Display, url: &str) -> Item {
    key(
        lab_webhooks_pk(lab),
        format!("URL#{}", blake3::hash(url.as_bytes()).to_hex()),
    )
}

pub(crate) fn dead_letters_pk(lab: impl std::fmt::Display) -> String {
    format!("DEADLETTERS#{lab}")
}

pub(crate) fn recommendations_pk(env: impl std::fmt::Display) -> String {
    format!("RECS#{env}")
}

/// `<time>#<id>`: sorts by time, then id.
pub(crate) fn time_id(at: DateTime<Utc>, id: impl std::fmt::Display) -> String {
    format!("{}#{id}", format_time(at))
}

/// `<time>#<seq>` of an event in the time indexes.
pub(crate) fn time_seq(at: DateTime<Utc>, seq: u64) -> String {
    format!("{}#{}", format_time(at), seq_key(seq))
}

/// `value` as a JSON document attribute.
pub(crate) fn doc<T: Serialize>(value: &T) -> Result<AttributeValue> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| DomainError::internal(format!("encoding a drift document: {e}")))
}

/// The document of `item`.
pub(crate) fn from_doc<T: DeserializeOwned>(table: &str, item: &Item) -> Result<T> {
    let text = string(item, DOC).ok_or_else(|| {
        DomainError::internal(format!(
            "DynamoDB table {table}: item {:?} has no `doc` attribute (not written by this adapter?)",
            item.get(PK)
        ))
    })?;
    serde_json::from_str(text).map_err(|e| {
        DomainError::internal(format!(
            "DynamoDB table {table}: the document of item {:?} does not decode: {e}",
            item.get(PK)
        ))
    })
}

pub(crate) fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// Whether `item` has passed its TTL at `now` (items without one never do).
pub(crate) fn expired(item: &Item, now: DateTime<Utc>) -> bool {
    item.get(TTL_ATTRIBUTE)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|at| at <= now.timestamp())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_webhook_url_of_any_length_makes_a_short_distinct_key() {
        let long = format!("https://hooks.example/{}", "a".repeat(2048));
        let k = lab_webhook_key("lab", &long);
        assert!(string(&k, SK).unwrap().len() < 100);
        assert_ne!(k, lab_webhook_key("lab", &format!("{long}b")));
        assert_eq!(k, lab_webhook_key("lab", &long));
    }

    #[test]
    fn seq_keys_sort_as_numbers() {
        let mut keys: Vec<_> = [10u64, 9, 100, 1, u64::MAX].map(seq_key).to_vec();
        keys.sort();
        assert_eq!(keys, [1u64, 9, 10, 100, u64::MAX].map(seq_key).to_vec());
    }

    #[test]
    fn an_events_index_key_sorts_after_its_time_and_before_the_next_microsecond() {
        let t = westtek_domain::audit::truncate_micros(Utc::now());
        let key = time_seq(t, 42);
        assert!(format_time(t) < key);
        assert!(key < format_time(t + chrono::TimeDelta::microseconds(1)));
    }

    #[test]
    fn an_item_without_ttl_never_expires_and_one_with_a_past_ttl_has() {
        let now = Utc::now();
        let mut item = key("a", "b");
        assert!(!expired(&item, now));
        item.insert(TTL_ATTRIBUTE.into(), n(now.timestamp() - 1));
        assert!(expired(&item, now));
        item.insert(TTL_ATTRIBUTE.into(), n(now.timestamp() + 60));
        assert!(!expired(&item, now));
    }
}
