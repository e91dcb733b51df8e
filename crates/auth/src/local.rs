//! The platform's own access tokens, for running without Cognito.
//!
//! Policy: tokens are JWTs signed with one Ed25519 key (`alg: EdDSA`) that
//! lives as a PKCS#8 PEM file readable only by its owner (mode 0600). The
//! file is created on first start, written atomically (temporary file in
//! the same directory, fsync, rename, fsync of the directory) so a crash
//! never leaves a half-written key, and reused on every later start so
//! tokens survive restarts. Access tokens are short-lived and carry the
//! caller's memberships as of signing; the platform honours only the
//! subject and reads the user's current rights from the store on every
//! request (`westtek_platform::live`), so a removed membership or a deleted
//! user stops working at once. Refresh tokens, stored hashed, are the
//! revocable part of a session.
//!
//! Verification checks the signature, `iss`, `exp` (with a few seconds of
//! leeway, against the caller's clock so tests need not sleep) and
//! `token_use == "access"`.

use crate::{jwt_error, unauthenticated, LEEWAY_SECS, MAX_TOKEN_LEN};
use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Arc;
use westtek_domain::ports::TokenVerifier;
use westtek_domain::{DomainError, LabRole, Principal, Result, UserId};

/// The `token_use` claim of an access token.
const ACCESS: &str = "access";

/// A freshly signed token and when it stops being accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT to hand to the client.
    pub token: String,
    /// The token's `exp`, to the second.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The claims of a platform access token.
#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    /// The user id.
    sub: String,
    /// The username.
    name: String,
    it_admin: bool,
    labs: Vec<LabRole>,
    iat: i64,
    exp: i64,
    jti: String,
    token_use: String,
}

/// Issues and verifies platform access tokens. Cheap to clone: clones share
/// one key.
#[derive(Clone)]
pub struct LocalTokenIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    access_ttl: TimeDelta,
    /// Short fingerprint of the public key, sent as `kid` so a future key
    /// rotation can tell keys apart.
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for LocalTokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTokenIssuer")
            .field("issuer", &self.inner.issuer)
            .field("kid", &self.inner.kid)
            .field("access_ttl", &self.inner.access_ttl)
            .finish_non_exhaustive()
    }
}

impl LocalTokenIssuer {
    /// Loads the Ed25519 signing key from `key_path`, creating it (mode
    /// 0600, written atomically, parent directories created) when the file
    /// does not exist.
    ///
    /// # Errors
    /// `Validation` when `issuer` is empty or `access_ttl` is zero or out of
    /// range; `Internal` when the key file cannot be read, written or
    /// parsed.
    pub fn load_or_create(
        key_path: &Path,
        issuer: &str,
        access_ttl: std::time::Duration,
    ) -> Result<Self> {
        if issuer.is_empty() {
            return Err(DomainError::invalid("issuer", "must not be empty"));
        }
        let access_ttl = TimeDelta::from_std(access_ttl)
            .ok()
            .filter(|d| *d >= TimeDelta::seconds(1) && *d <= TimeDelta::days(366))
            .ok_or_else(|| {
                DomainError::invalid("access_ttl", "must be between 1 second and 366 days")
            })?;
        let signing = load_or_create_key(key_path)?;
        Self::from_signing_key(&signing, issuer, access_ttl)
    }

    fn from_signing_key(signing: &SigningKey, issuer: &str, access_ttl: TimeDelta) -> Result<Self> {
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| DomainError::internal(format!("encoding the signing key: {e}")))?;
        let public = signing.verifying_key();
        let kid = blake3::hash(public.as_bytes()).to_hex()[..16].to_owned();

        let mut validation = Validation::new(Algorithm::EdDSA);
        // `exp` is checked against the caller's `now` in `verify_at`, and
        // every claim we rely on is a required field of `AccessClaims`.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();

        Ok(LocalTokenIssuer {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                access_ttl,
                kid,
                encoding: EncodingKey::from_ed_der(der.as_bytes()),
                decoding: DecodingKey::from_ed_der(public.as_bytes()),
                validation,
            }),
        })
    }

    /// The `iss` this issuer signs and accepts.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// How long an access token lives.
    pub fn access_ttl(&self) -> TimeDelta {
        self.inner.access_ttl
    }

    /// Signs an access token for `p`, valid from `now` for the access TTL.
    ///
    /// # Errors
    /// `Internal` when signing fails or the expiry is out of range.
    pub fn issue_access(&self, p: &Principal, now: DateTime<Utc>) -> Result<IssuedToken> {
        let iat = now.timestamp();
        let exp = iat
            .checked_add(self.inner.access_ttl.num_seconds())
            .ok_or_else(|| DomainError::internal("token expiry out of range"))?;
        let expires_at = DateTime::<Utc>::from_timestamp(exp, 0)
            .ok_or_else(|| DomainError::internal("token expiry out of range"))?;
        let claims = AccessClaims {
            iss: self.inner.issuer.clone(),
            sub: p.user_id.to_string(),
            name: p.username.clone(),
            it_admin: p.it_admin,
            labs: p.memberships.clone(),
            iat,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            token_use: ACCESS.to_owned(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.inner.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.inner.encoding)
            .map_err(|e| DomainError::internal(format!("signing an access token: {e}")))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Verifies `token` as of `now`: signature, issuer, expiry (with
    /// leeway) and `token_use`, and returns the principal it carries.
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed, expired, foreign or non-access
    /// token.
    pub fn verify_at(&self, token: &str, now: DateTime<Utc>) -> Result<Principal> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(unauthenticated("token is malformed"));
        }
        let data = jsonwebtoken::decode::<AccessClaims>(
            token,
            &self.inner.decoding,
            &self.inner.validation,
        )
        .map_err(|e| jwt_error(&e))?;
        let c = data.claims;
        if c.iss != self.inner.issuer {
            return Err(unauthenticated("token is not from a trusted issuer"));
        }
        if c.token_use != ACCESS {
            return Err(unauthenticated("token is not an access token"));
        }
        if now.timestamp() > c.exp.saturating_add(LEEWAY_SECS) {
            return Err(unauthenticated("token has expired"));
        }
        let user_id = UserId::parse(&c.sub)
            .map_err(|_| unauthenticated("token subject is not a valid user id"))?;
        Ok(Principal {
            user_id,
            username: c.name,
            it_admin: c.it_admin,
            memberships: c.labs,
        })
    }
}

#[async_trait]
impl TokenVerifier for LocalTokenIssuer {
    async fn verify(&self, token: &str) -> Result<Principal> {
        self.verify_at(token, Utc::now())
    }
}

fn load_or_create_key(path: &Path) -> Result<SigningKey> {
    match fs::read_to_string(path) {
        Ok(pem) => {
            warn_if_readable_by_others(path);
            SigningKey::from_pkcs8_pem(&pem).map_err(|e| {
                DomainError::internal(format!(
                    "signing key {} is not a PKCS#8 Ed25519 PEM: {e}",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let pem = key
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(|e| DomainError::internal(format!("encoding a new signing key: {e}")))?;
            write_private_file_atomically(path, pem.as_bytes()).map_err(|e| {
                DomainError::internal(format!("writing signing key {}: {e}", path.display()))
            })?;
            tracing::info!(path = %path.display(), "created a new token signing key");
            Ok(key)
        }
        Err(e) => Err(DomainError::internal(format!(
            "reading signing key {}: {e}",
            path.display()
        ))),
    }
}

/// Writes `contents` to `path` so that readers see either no file or the
/// whole file, never part of it, with mode 0600 from the start.
fn write_private_file_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));

    let write = || -> io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    };
    let result = write();
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless but untidy.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "token signing key is readable by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use std::time::Duration;
    use westtek_domain::{LabId, Role};

    const ISS: &str = "https://westtek.local";
    const TTL: Duration = Duration::from_secs(900);

    fn principal() -> Principal {
        Principal {
            user_id: UserId::new(),
            username: "ada".into(),
            it_admin: false,
            memberships: vec![
                LabRole {
                    lab_id: LabId::new(),
                    role: Role::Researcher,
                },
                LabRole {
                    lab_id: LabId::new(),
                    role: Role::LabAdmin,
                },
            ],
        }
    }

    fn issuer(dir: &tempfile::TempDir) -> LocalTokenIssuer {
        LocalTokenIssuer::load_or_create(&dir.path().join("keys/signing.pem"), ISS, TTL).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(Utc::now().timestamp(), 0).unwrap()
    }

    #[test]
    fn an_issued_token_verifies_to_the_same_principal() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir);
        let p = principal();
        let t = iss.issue_access(&p, now()).unwrap();
        assert_eq!(t.expires_at, now() + TimeDelta::seconds(900));
        assert_eq!(iss.verify_at(&t.token, now()).unwrap(), p);
    }

    #[tokio::test]
    async fn the_port_verifies_a_fresh_token_against_the_system_clock() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir);
        let p = principal();
        let t = iss.issue_access(&p, Utc::now()).unwrap();
        let v: Arc<dyn TokenVerifier> = Arc::new(iss.clone());
        assert_eq!(v.verify(&t.token).await.unwrap(), p);
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir);
        let t = iss.issue_access(&principal(), now()).unwrap();
        // Within the leeway it still passes; past it, it does not.
        let at_leeway = t.expires_at + TimeDelta::seconds(LEEWAY_SECS);
        assert!(iss.verify_at(&t.token, at_leeway).is_ok());
        let err = iss
            .verify_at(&t.token, at_leeway + TimeDelta::seconds(1))
            .unwrap_err();
        assert_eq!(
            err,
            DomainError::Unauthenticated("token has expired".into())
        );
    }

    #[test]
    fn a_token_signed_by_another_key_is_rejected() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let t = issuer(&a).issue_access(&principal(), now()).unwrap();
        let err = issuer(&b).verify_at(&t.token, now()).unwrap_err();
        assert!(matches!(err, DomainError::Unauthenticated(_)));
    }

    #[test]
    fn a_token_from_another_issuer_name_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let a = LocalTokenIssuer::load_or_create(&path, ISS, TTL).unwrap();
        let b = LocalTokenIssuer::load_or_create(&path, "https://other", TTL).unwrap();
        let t = a.issue_access(&principal(), now()).unwrap();
        let err = b.verify_at(&t.token, now()).unwrap_err();
        assert_eq!(
            err,
            DomainError::Unauthenticated("token is not from a trusted issuer".into())
        );
    }

    #[test]
    fn a_tampered_payload_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir);
        let t = iss.issue_access(&principal(), now()).unwrap();
        let parts: Vec<&str> = t.token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["it_admin"] = serde_json::Value::Bool(true);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        let err = iss.verify_at(&forged, now()).unwrap_err();
        assert_eq!(
            err,
            DomainError::Unauthenticated("token signature is invalid".into())
        );
    }

    #[test]
    fn garbage_and_oversized_tokens_are_rejected_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir);
        for bad in [
            "",
            "secret-garbage",
            "a.b.c",
            &"x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            let err = iss.verify_at(bad, now()).unwrap_err();
            assert!(matches!(err, DomainError::Unauthenticated(_)));
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad));
            }
        }
    }

    #[test]
    fn a_non_access_token_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let iss = issuer(&dir);
        let p = principal();
        let claims = AccessClaims {
            iss: ISS.into(),
            sub: p.user_id.to_string(),
            name: p.username.clone(),
            it_admin: false,
            labs: vec![],
            iat: now().timestamp(),
            exp: now().timestamp() + 60,
            jti: "j".into(),
            token_use: "refresh".into(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &iss.inner.encoding)
                .unwrap();
        let err = iss.verify_at(&token, now()).unwrap_err();
        assert_eq!(
            err,
            DomainError::Unauthenticated("token is not an access token".into())
        );
    }

    #[test]
    fn the_key_is_persisted_and_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pem");
        let first = LocalTokenIssuer::load_or_create(&path, ISS, TTL).unwrap();
        let pem = fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let t = first.issue_access(&principal(), now()).unwrap();
        drop(first);

        let second = LocalTokenIssuer::load_or_create(&path, ISS, TTL).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), pem);
        assert!(second.verify_at(&t.token, now()).is_ok());
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_readable_only_by_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        LocalTokenIssuer::load_or_create(&path, ISS, TTL).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode was {mode:o}");
    }

    #[test]
    fn a_corrupt_key_file_is_an_internal_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        fs::write(&path, "not a key").unwrap();
        let err = LocalTokenIssuer::load_or_create(&path, ISS, TTL).unwrap_err();
        assert!(matches!(err, DomainError::Internal(_)));
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a key");
    }

    #[test]
    fn a_zero_ttl_or_empty_issuer_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        assert!(matches!(
            LocalTokenIssuer::load_or_create(&path, ISS, Duration::ZERO),
            Err(DomainError::Validation { .. })
        ));
        assert!(matches!(
            LocalTokenIssuer::load_or_create(&path, "", TTL),
            Err(DomainError::Validation { .. })
        ));
    }

    #[test]
    fn the_debug_form_of_an_issued_token_hides_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let t = issuer(&dir).issue_access(&principal(), now()).unwrap();
        assert!(!format!("{t:?}").contains(&t.token));
    }
}
