//! Verification of Amazon Cognito user-pool tokens.
//!
//! Policy: only RS256 with a `kid` is accepted (`none`, HMAC and every other
//! algorithm are refused before any key is looked at). Signing keys come
//! from the pool's JWKS, fetched over HTTP from a URL configured apart from
//! the issuer (moto serves it elsewhere than the real `iss`) and cached by
//! `kid`. An unknown `kid` triggers one refetch, so key rotation needs no
//! restart, but refetches are at most one per `jwks_refresh_min_interval`
//! and concurrent misses share one fetch, so a flood of tokens with made-up
//! key ids cannot hammer the JWKS endpoint.
//!
//! After the signature: `iss` must equal the configured issuer, `exp` must
//! not have passed (a few seconds of leeway), `token_use` must be one of the
//! accepted uses, and when a client id is configured an ID token's `aud`,
//! or an access token's `client_id`, must equal it. Groups in
//! `cognito:groups` become roles: `it_admin`, and `<lab uuid>:researcher` /
//! `<lab uuid>:lab_admin` memberships; other groups are ignored. The
//! subject's `sub` (a UUID in Cognito) is the platform user id; any other
//! `sub` is refused. The platform then applies its live check
//! (`westtek_platform::live`, `westtek_platform::provision`): a subject
//! without a user record is provisioned from these groups on its first
//! request; a provisioned user's memberships follow the groups of each new
//! token; a user created locally keeps the store's rights.
//!
//! A JWKS endpoint that cannot be reached is `Upstream`, not
//! `Unauthenticated`: the token may well be valid, and the client should
//! retry rather than sign in again.

use crate::{jwt_error, unauthenticated, LEEWAY_SECS, MAX_TOKEN_LEN};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};
use westtek_domain::ports::TokenVerifier;
use westtek_domain::{DomainError, LabId, LabRole, Principal, Result, Role, UserId};

/// Longest a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS document accepted; Cognito's is about 1 KiB.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Longest `kid` looked up.
const MAX_KID_LEN: usize = 256;

/// Where a user pool's tokens come from and which ones to accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CognitoConfig {
    /// The exact `iss` of the pool's tokens,
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    pub issuer: String,
    /// Where the pool's JWKS is served; normally
    /// `<issuer>/.well-known/jwks.json`, elsewhere under moto.
    pub jwks_url: String,
    /// The app client whose tokens are accepted; `None` accepts any client
    /// of the pool.
    pub client_id: Option<String>,
    /// Accepted `token_use` values: `access`, `id` or both. Other values
    /// never verify.
    pub accepted_token_use: Vec<String>,
    /// Least time between two JWKS fetches triggered by unknown key ids.
    pub jwks_refresh_min_interval: Duration,
}

impl CognitoConfig {
    /// The usual settings for a pool: JWKS under the issuer, access tokens
    /// only, refetch at most once a minute.
    pub fn for_issuer(issuer: &str, client_id: Option<String>) -> Self {
        let issuer = issuer.trim_end_matches('/');
        CognitoConfig {
            issuer: issuer.to_owned(),
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            client_id,
            accepted_token_use: vec!["access".to_owned()],
            jwks_refresh_min_interval: Duration::from_secs(60),
        }
    }
}

/// Verifies Cognito tokens against the pool's JWKS. Cheap to clone: clones
/// share the key cache.
#[derive(Clone)]
pub struct CognitoVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: CognitoConfig,
    http: reqwest::Client,
    validation: Validation,
    keys: RwLock<HashMap<String, Arc<DecodingKey>>>,
    /// Held across a fetch, so concurrent misses wait for one fetch.
    fetch: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_failed: bool,
}

impl fmt::Debug for CognitoVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CognitoVerifier")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// The claims read from a Cognito token.
#[derive(Debug, Deserialize)]
struct CognitoClaims {
    sub: String,
    iss: String,
    exp: i64,
    token_use: String,
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(rename = "cognito:username", default)]
    cognito_username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, s: &str) -> bool {
        match self {
            OneOrMany::One(a) => a == s,
            OneOrMany::Many(v) => v.iter().any(|a| a == s),
        }
    }
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

/// One JWKS entry, read leniently: entries that are not RS256 signing keys
/// are skipped rather than failing the whole set.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(rename = "use", default)]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl CognitoVerifier {
    /// A verifier for `cfg` that fetches the JWKS with `http` on first use.
    pub fn new(cfg: CognitoConfig, http: reqwest::Client) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        // Every claim is checked in `check_claims`, `exp` against the
        // caller's clock.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        CognitoVerifier {
            inner: Arc::new(Inner {
                cfg,
                http,
                validation,
                keys: RwLock::new(HashMap::new()),
                fetch: Mutex::new(FetchState::default()),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CognitoConfig {
        &self.inner.cfg
    }

    /// Verifies `token` with `now` as the current time.
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed, expired or untrusted token;
    /// `Upstream` when the JWKS is needed and cannot be fetched.
    pub async fn verify_at(&self, token: &str, now: DateTime<Utc>) -> Result<Principal> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(unauthenticated("token is malformed"));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| jwt_error(&e))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthenticated("token algorithm is not accepted"));
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty() && k.len() <= MAX_KID_LEN)
            .ok_or_else(|| unauthenticated("token has no key id"))?;
        let key = self.key_for(&kid).await?;
        let data = jsonwebtoken::decode::<CognitoClaims>(token, &key, &self.inner.validation)
            .map_err(|e| jwt_error(&e))?;
        self.check_claims(data.claims, now)
    }

    fn check_claims(&self, c: CognitoClaims, now: DateTime<Utc>) -> Result<Principal> {
        let cfg = &self.inner.cfg;
        if c.iss != cfg.issuer {
            return Err(unauthenticated("token is not from a trusted issuer"));
        }
        if now.timestamp() > c.exp.saturating_add(LEEWAY_SECS) {
            return Err(unauthenticated("token has expired"));
        }
        if !cfg.accepted_token_use.contains(&c.token_use) {
            return Err(unauthenticated("token use is not accepted"));
        }
        let for_client = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(unauthenticated("token was issued for another client"))
            }
        };
        let username = match c.token_use.as_str() {
            "access" => {
                if let Some(want) = &cfg.client_id {
                    for_client(c.client_id.as_deref() == Some(want.as_str()))?;
                }
                c.username
            }
            "id" => {
                if let Some(want) = &cfg.client_id {
                    for_client(c.aud.as_ref().is_some_and(|a| a.contains(want)))?;
                }
                c.cognito_username
            }
            _ => return Err(unauthenticated("token use is not accepted")),
        };
        let user_id = UserId::parse(&c.sub)
            .map_err(|_| unauthenticated("token subject is not a valid user id"))?;
        let (it_admin, memberships) = roles_from_groups(&c.groups);
        Ok(Principal {
            user_id,
            username: username.filter(|u| !u.is_empty()).unwrap_or(c.sub),
            it_admin,
            memberships,
        })
    }

    /// The key for `kid`, refetching the JWKS once if it is unknown and the
    /// last fetch is old enough.
    async fn key_for(&self, kid: &str) -> Result<Arc<DecodingKey>> {
        if let Some(k) = self.inner.keys.read().await.get(kid) {
            return Ok(Arc::clone(k));
        }
        let mut state = self.inner.fetch.lock().await;
        // Someone else may have fetched while this request waited.
        if let Some(k) = self.inner.keys.read().await.get(kid) {
            return Ok(Arc::clone(k));
        }
        let min = self.inner.cfg.jwks_refresh_min_interval;
        if let Some(at) = state.last_attempt {
            if at.elapsed() < min {
                tracing::debug!("unknown token key id; JWKS refetch skipped (too soon)");
                return Err(if state.last_failed {
                    jwks_unavailable()
                } else {
                    unauthenticated("token signing key is not trusted")
                });
            }
        }
        state.last_attempt = Some(Instant::now());
        match self.fetch_jwks().await {
            Ok(fresh) => {
                state.last_failed = false;
                let found = fresh.get(kid).cloned();
                *self.inner.keys.write().await = fresh;
                found.ok_or_else(|| unauthenticated("token signing key is not trusted"))
            }
            Err(e) => {
                state.last_failed = true;
                tracing::warn!(url = %self.inner.cfg.jwks_url, error = %e, "fetching the Cognito JWKS failed");
                Err(jwks_unavailable())
            }
        }
    }

    /// Fetches and parses the JWKS; the error text is for logs.
    #[tracing::instrument(skip(self), fields(url = %self.inner.cfg.jwks_url))]
    async fn fetch_jwks(&self) -> std::result::Result<HashMap<String, Arc<DecodingKey>>, String> {
        let mut resp = self
            .inner
            .http
            .get(&self.inner.cfg.jwks_url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("JWKS larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: RawJwkSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let keys: HashMap<_, _> = set
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<RawJwk>(v).ok())
            .filter_map(rs256_key)
            .collect();
        if keys.is_empty() {
            // Keep the old keys rather than trust an empty answer.
            return Err("JWKS holds no RS256 signing keys".to_owned());
        }
        tracing::debug!(keys = keys.len(), "fetched the Cognito JWKS");
        Ok(keys)
    }
}

#[async_trait]
impl TokenVerifier for CognitoVerifier {
    async fn verify(&self, token: &str) -> Result<Principal> {
        self.verify_at(token, Utc::now()).await
    }
}

fn jwks_unavailable() -> DomainError {
    DomainError::Upstream {
        code: "identity_provider_unavailable",
        message: "the identity provider's signing keys could not be fetched; try again shortly"
            .to_owned(),
    }
}

fn rs256_key(k: RawJwk) -> Option<(String, Arc<DecodingKey>)> {
    if k.kty != "RSA"
        || k.alg.as_deref().is_some_and(|a| a != "RS256")
        || k.use_.as_deref().is_some_and(|u| u != "sig")
    {
        return None;
    }
    let kid = k.kid.filter(|k| !k.is_empty())?;
    let key = DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?;
    Some((kid, Arc::new(key)))
}

/// Reads roles from Cognito group names. A lab appearing with both roles
/// gets the stronger one; memberships come out ordered by lab id.
fn roles_from_groups(groups: &[String]) -> (bool, Vec<LabRole>) {
    let mut it_admin = false;
    let mut labs: BTreeMap<LabId, Role> = BTreeMap::new();
    for g in groups {
        if g == "it_admin" {
            it_admin = true;
            continue;
        }
        let Some((lab, role)) = g.split_once(':') else {
            continue;
        };
        let role = match role {
            "researcher" => Role::Researcher,
            "lab_admin" => Role::LabAdmin,
            _ => continue,
        };
        let Ok(lab_id) = LabId::parse(lab) else {
            continue;
        };
        let slot = labs.entry(lab_id).or_insert(role);
        *slot = (*slot).max(role);
    }
    let memberships = labs
        .into_iter()
        .map(|(lab_id, role)| LabRole { lab_id, role })
        .collect();
    (it_admin, memberships)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn lab_groups_become_memberships_and_it_admin_becomes_the_flag() {
        let a = LabId::new();
        let b = LabId::new();
        let (it, mut m) = roles_from_groups(&groups(&[
            &format!("{a}:researcher"),
            "it_admin",
            &format!("{b}:lab_admin"),
        ]));
        assert!(it);
        m.sort_by_key(|r| r.lab_id);
        let mut want = vec![
            LabRole {
                lab_id: a,
                role: Role::Researcher,
            },
            LabRole {
                lab_id: b,
                role: Role::LabAdmin,
            },
        ];
        want.sort_by_key(|r| r.lab_id);
        assert_eq!(m, want);
    }

    #[test]
    fn unknown_and_malformed_groups_are_ignored() {
        let a = LabId::new();
        let (it, m) = roles_from_groups(&groups(&[
            "admins",
            "it_admin:researcher",
            &format!("{a}:it_admin"),
            &format!("{a}:owner"),
            "not-a-uuid:researcher",
            &format!("{a}:researcher:extra"),
            &format!("{}:researcher", a.as_uuid().simple()),
        ]));
        assert!(!it);
        assert!(m.is_empty(), "{m:?}");
    }

    #[test]
    fn a_lab_with_both_roles_gets_the_stronger_one() {
        let a = LabId::new();
        let (_, m) = roles_from_groups(&groups(&[
            &format!("{a}:lab_admin"),
            &format!("{a}:researcher"),
        ]));
        assert_eq!(
            m,
            vec![LabRole {
                lab_id: a,
                role: Role::LabAdmin
            }]
        );
    }

    #[test]
    fn the_default_jwks_url_sits_under_the_issuer() {
        let c = CognitoConfig::for_issuer(
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/",
            None,
        );
        assert_eq!(
            c.jwks_url,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json"
        );
        assert_eq!(
            c.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
    }

    #[test]
    fn jwks_entries_that_are_not_rs256_signing_keys_are_skipped() {
        let parse = |v: serde_json::Value| rs256_key(serde_json::from_value(v).unwrap());
        let ok = serde_json::json!({"kty":"RSA","kid":"k","alg":"RS256","use":"sig","n":"AQAB","e":"AQAB"});
        assert!(parse(ok).is_some());
        for bad in [
            serde_json::json!({"kty":"EC","kid":"k","crv":"P-256","x":"AA","y":"AA"}),
            serde_json::json!({"kty":"RSA","kid":"k","alg":"RS512","n":"AQAB","e":"AQAB"}),
            serde_json::json!({"kty":"RSA","kid":"k","use":"enc","n":"AQAB","e":"AQAB"}),
            serde_json::json!({"kty":"RSA","n":"AQAB","e":"AQAB"}),
            serde_json::json!({"kty":"RSA","kid":"k","n":"!!","e":"AQAB"}),
        ] {
            assert!(parse(bad).is_none());
        }
    }
}
