//! Verified bearer tokens remembered until they expire, so the hot path of
//! an API under load does not repeat signature checks for the same token.
//! What a token's subject may do is not decided here: `live` checks the
//! store on every request (briefly cached there).
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

/// A token that verified: the principal its claims name, and whether the
/// platform signed it (rather than an external identity provider).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    pub platform_issued: bool,
}

/// Token text → (what verified, usable until).
type Entries = HashMap<String, (Verified, DateTime<Utc>)>;

/// Cache of verified tokens.
#[derive(Clone, Default)]
pub struct TokenCache {
    inner: Arc<Mutex<Entries>>,
}

/// The claims of a JWT, without checking anything (the caller verified the
/// token already).
pub(crate) fn claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `exp` claim of a verified JWT.
fn expiry(token: &str) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(claims(token)?.get("exp")?.as_i64()?, 0)
}

/// The `iss` claim of a JWT that already verified (every verifier checks
/// `iss` against the issuer it trusts, so it tells which one accepted it).
pub fn issuer_of(token: &str) -> Option<String> {
    claims(token)?.get("iss")?.as_str().map(str::to_string)
}

impl TokenCache {
    /// What a cached, unexpired token verified as.
    pub fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Verified> {
        let map = self.inner.lock().ok()?;
        map.get(token)
            .filter(|(_, until)| *until > now)
            .map(|(p, _)| p.clone())
    }

    /// Remembers a token that just verified.
    pub fn put(&self, token: &str, verified: &Verified, now: DateTime<Utc>) {
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
            map.insert(token.to_string(), (verified.clone(), until));
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

    fn principal() -> Verified {
        Verified {
            principal: Principal {
                user_id: UserId::new(),
                username: "u".into(),
                it_admin: false,
                memberships: vec![],
            },
            platform_issued: true,
        }
    }

    #[test]
    fn the_issuer_of_a_token_is_read_from_its_claims() {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let t = format!("{}.{}.sig", e.encode(b"{}"), e.encode(br#"{"iss":"me"}"#));
        assert_eq!(issuer_of(&t).as_deref(), Some("me"));
        assert_eq!(issuer_of("garbage"), None);
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
