//! Verified bearer tokens remembered until they expire, so the hot path of
//! an API under load does not repeat signature checks for the same token.
//!
//! Policy: only tokens that verified are cached, keyed by their full text;
//! an entry lives until the token's own `exp` (read from its already
//! verified payload) or five minutes, whichever is sooner. The map is
//! bounded and emptied when full.

use base64::Engine;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use westtek_domain::Principal;

const CAPACITY: usize = 10_000;
const MAX_AGE_SECS: i64 = 300;

/// Token text → (principal, usable until).
type Entries = HashMap<String, (Principal, DateTime<Utc>)>;

/// Cache of verified tokens.
#[derive(Clone, Default)]
pub struct TokenCache {
    inner: Arc<Mutex<Entries>>,
}

/// The `exp` claim of a JWT, without checking anything (the caller verified
/// the token already).
fn expiry(token: &str) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}

impl TokenCache {
    /// The principal of a cached, unexpired token.
    pub fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Principal> {
        let map = self.inner.lock().ok()?;
        map.get(token)
            .filter(|(_, until)| *until > now)
            .map(|(p, _)| p.clone())
    }

    /// Remembers a token that just verified.
    pub fn put(&self, token: &str, principal: &Principal, now: DateTime<Utc>) {
        let Some(exp) = expiry(token) else { return };
        let until = exp.min(now + chrono::Duration::seconds(MAX_AGE_SECS));
        if until <= now {
            return;
        }
        if let Ok(mut map) = self.inner.lock() {
            if map.len() >= CAPACITY {
                map.retain(|_, (_, u)| *u > now);
                if map.len() >= CAPACITY {
                    map.clear();
                }
            }
            map.insert(token.to_string(), (principal.clone(), until));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use westtek_domain::UserId;

    fn jwt(exp: i64) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(b"{}"),
            e.encode(format!("{{\"exp\":{exp}}}"))
        )
    }

    fn principal() -> Principal {
        Principal {
            user_id: UserId::new(),
            username: "u".into(),
            it_admin: false,
            memberships: vec![],
        }
    }

    #[test]
    fn a_cached_token_stops_working_when_it_expires() {
        let c = TokenCache::default();
        let now = Utc::now();
        let t = jwt(now.timestamp() + 60);
        c.put(&t, &principal(), now);
        assert!(c.get(&t, now).is_some());
        assert!(c.get(&t, now + chrono::Duration::seconds(61)).is_none());
    }

    #[test]
    fn an_expired_or_unreadable_token_is_not_cached() {
        let c = TokenCache::default();
        let now = Utc::now();
        let t = jwt(now.timestamp() - 1);
        c.put(&t, &principal(), now);
        assert!(c.get(&t, now).is_none());
        c.put("not-a-jwt", &principal(), now);
        assert!(c.get("not-a-jwt", now).is_none());
    }
}
