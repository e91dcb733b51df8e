//! Key objects: the master key wrapped by a secret.
//!
//! A vault holds one or more `keys/<uuid>` objects (plaintext JSON). Each
//! wraps the same master key; opening tries them in turn. How a key object
//! is wrapped is the [`KeyWrapper`] port: the local profile derives a
//! wrapping key from a password or key file with argon2id
//! ([`PassphraseWrapper`]); a KMS data-key wrapper can be added later as
//! another implementation with its own `wrapper` name.

use crate::crypto::{open_with, seal_with, MasterKey, NONCE_LEN};
use crate::error::{Result, VaultError};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Where the secret that unlocks a vault comes from.
#[derive(Clone)]
pub enum KeySource {
    /// A password (UTF-8 bytes are fed to argon2id).
    Password(String),
    /// A key file; its whole content is fed to argon2id.
    KeyFile(PathBuf),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Password(_) => f.write_str("KeySource::Password(..)"),
            KeySource::KeyFile(p) => write!(f, "KeySource::KeyFile({})", p.display()),
        }
    }
}

/// Wraps and unwraps the master key for a key object.
pub trait KeyWrapper: Send + Sync {
    /// The `wrapper` name stored in key objects this wrapper makes.
    fn kind(&self) -> &str;

    /// Wraps the master key; the result is the key object's `body`.
    ///
    /// # Errors
    /// When the wrapping service fails.
    fn wrap(&self, vault_id: &str, master: &MasterKey) -> Result<serde_json::Value>;

    /// Unwraps a key object's `body`.
    ///
    /// # Errors
    /// [`VaultError::WrongKey`] when this secret does not open the body,
    /// [`VaultError::Corrupt`] when the body is malformed.
    fn unwrap_key(&self, vault_id: &str, body: &serde_json::Value) -> Result<MasterKey>;
}

/// The JSON of a `keys/<uuid>` object.
#[derive(Serialize, Deserialize)]
pub(crate) struct KeyObject {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub wrapper: String,
    pub body: serde_json::Value,
}

pub(crate) const KEY_FORMAT: &str = "westtek-vault-key";

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for Argon2Params {
    /// 19 MiB, 2 passes, 1 lane: OWASP's recommended argon2id
    /// configuration (~30 ms on the reference machine, which matters
    /// because every CLI call opens the vault). Stronger costs can be set
    /// per key object with [`PassphraseWrapper::with_params`].
    fn default() -> Self {
        Argon2Params {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PassphraseBody {
    kdf: String,
    argon2_version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    nonce: String,
    wrapped_key: String,
}

/// argon2id(password or key-file bytes, salt) → wrapping key; the master key
/// is sealed with XChaCha20-Poly1305 under it (associated data
/// `"westtek-vault v1 key " ‖ vault id`).
pub struct PassphraseWrapper {
    secret: Zeroizing<Vec<u8>>,
    params: Argon2Params,
}

impl PassphraseWrapper {
    /// The wrapper's name in key objects.
    pub const KIND: &'static str = "argon2id-xchacha20poly1305";

    /// From a key source (reads the key file).
    ///
    /// # Errors
    /// When the key file cannot be read or is empty.
    pub fn from_source(source: &KeySource) -> Result<Self> {
        let secret = match source {
            KeySource::Password(p) => Zeroizing::new(p.as_bytes().to_vec()),
            KeySource::KeyFile(path) => {
                let b =
                    std::fs::read(path).map_err(|e| VaultError::io("read key file", path, e))?;
                if b.is_empty() {
                    return Err(VaultError::InvalidRequest(format!(
                        "key file {} is empty",
                        path.display()
                    )));
                }
                Zeroizing::new(b)
            }
        };
        Ok(PassphraseWrapper {
            secret,
            params: Argon2Params::default(),
        })
    }

    /// Uses these argon2id costs for new key objects (existing ones carry
    /// their own).
    pub fn with_params(mut self, params: Argon2Params) -> Self {
        self.params = params;
        self
    }

    fn derive(&self, params: &Argon2Params, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let p = argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
            .map_err(|e| VaultError::corrupt("key object", format!("argon2 parameters: {e}")))?;
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
        let mut out = Zeroizing::new([0u8; 32]);
        a.hash_password_into(&self.secret, salt, &mut out[..])
            .map_err(|e| VaultError::corrupt("key object", format!("argon2: {e}")))?;
        Ok(out)
    }
}

fn key_aad(vault_id: &str) -> Vec<u8> {
    let mut v = b"westtek-vault v1 key ".to_vec();
    v.extend_from_slice(vault_id.as_bytes());
    v
}

impl KeyWrapper for PassphraseWrapper {
    fn kind(&self) -> &str {
        Self::KIND
    }

    fn wrap(&self, vault_id: &str, master: &MasterKey) -> Result<serde_json::Value> {
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let kek = self.derive(&self.params, &salt)?;
        let wrapped = seal_with(&kek, &nonce, &key_aad(vault_id), master.as_bytes());
        let body = PassphraseBody {
            kdf: "argon2id".into(),
            argon2_version: 0x13,
            m_cost_kib: self.params.m_cost_kib,
            t_cost: self.params.t_cost,
            p_cost: self.params.p_cost,
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            wrapped_key: hex::encode(wrapped),
        };
        serde_json::to_value(body).map_err(|e| VaultError::Internal(format!("key body: {e}")))
    }

    fn unwrap_key(&self, vault_id: &str, body: &serde_json::Value) -> Result<MasterKey> {
        let bad = |d: &str| VaultError::corrupt("key object", d.to_string());
        let b: PassphraseBody =
            serde_json::from_value(body.clone()).map_err(|e| bad(&e.to_string()))?;
        if b.kdf != "argon2id" || b.argon2_version != 0x13 {
            return Err(bad("unsupported key derivation"));
        }
        let salt = hex::decode(&b.salt).map_err(|_| bad("salt is not hex"))?;
        let nonce: [u8; NONCE_LEN] = hex::decode(&b.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| bad("nonce"))?;
        let wrapped = hex::decode(&b.wrapped_key).map_err(|_| bad("wrapped key is not hex"))?;
        let params = Argon2Params {
            m_cost_kib: b.m_cost_kib,
            t_cost: b.t_cost,
            p_cost: b.p_cost,
        };
        let kek = self.derive(&params, &salt)?;
        let pt =
            open_with(&kek, &nonce, &key_aad(vault_id), &wrapped).ok_or(VaultError::WrongKey)?;
        let key: [u8; 32] = pt
            .as_slice()
            .try_into()
            .map_err(|_| bad("wrapped key length"))?;
        Ok(MasterKey::from_bytes(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(source: KeySource) -> PassphraseWrapper {
        PassphraseWrapper::from_source(&source)
            .unwrap()
            .with_params(Argon2Params {
                m_cost_kib: 64,
                t_cost: 1,
                p_cost: 1,
            })
    }

    #[test]
    fn the_right_password_unwraps_and_a_wrong_one_is_wrong_key() {
        let m = MasterKey::generate();
        let w = cheap(KeySource::Password("hunter2".into()));
        let body = w.wrap("vault-1", &m).unwrap();
        assert_eq!(
            w.unwrap_key("vault-1", &body).unwrap().as_bytes(),
            m.as_bytes()
        );
        let wrong = cheap(KeySource::Password("hunter3".into()));
        assert!(matches!(
            wrong.unwrap_key("vault-1", &body),
            Err(VaultError::WrongKey)
        ));
        // The same password does not open the key object of another vault.
        assert!(matches!(
            w.unwrap_key("vault-2", &body),
            Err(VaultError::WrongKey)
        ));
    }

    #[test]
    fn a_key_file_works_like_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let kf = dir.path().join("key");
        std::fs::write(&kf, b"some random key file bytes").unwrap();
        let m = MasterKey::generate();
        let w = cheap(KeySource::KeyFile(kf.clone()));
        let body = w.wrap("v", &m).unwrap();
        let again = cheap(KeySource::KeyFile(kf));
        assert_eq!(
            again.unwrap_key("v", &body).unwrap().as_bytes(),
            m.as_bytes()
        );
    }
}
