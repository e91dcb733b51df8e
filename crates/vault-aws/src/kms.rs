//! The vault's master key wrapped by AWS KMS.
//!
//! A key object made by [`KmsWrapper`] holds the master key encrypted under a
//! KMS key (`Encrypt`), bound to the vault by the encryption context
//! `{"westtek-vault": <vault id>}`: the ciphertext of one vault does not open
//! another. Opening the vault calls `Decrypt`, which needs `kms:Decrypt` on
//! that key — so access to a lab's snapshots is an IAM decision, logged by
//! CloudTrail, and one KMS key per lab lets a lab be crypto-shredded:
//! disabling or deleting its key makes every snapshot of the lab unreadable,
//! wherever its packs were copied.

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use westtek_vault::{KeyWrapper, MasterKey, Result, VaultError};

/// Wraps vault master keys with one KMS key.
pub struct KmsWrapper {
    client: Client,
    key_id: String,
    rt: crate::OwnRuntime,
}

#[derive(Serialize, Deserialize)]
struct KmsBody {
    /// The key's ARN as KMS reported it when wrapping.
    key_id: String,
    /// The `CiphertextBlob`, base64.
    ciphertext: String,
}

const CONTEXT_KEY: &str = "westtek-vault";

/// A KMS client for an explicit endpoint and static credentials (moto).
pub fn kms_client_for_endpoint(endpoint: &str, access_key: &str, secret: &str) -> Client {
    Client::new(&westtek_aws::config_for_endpoint(
        endpoint, access_key, secret,
    ))
}

impl KmsWrapper {
    /// Wraps with `key_id` (a key id, ARN or `alias/…`), credentials and
    /// region from the standard AWS environment.
    ///
    /// # Errors
    /// When the client's runtime cannot start.
    pub fn from_env(key_id: &str) -> Result<Self> {
        let rt = crate::runtime().map_err(|e| VaultError::Internal(e.to_string()))?;
        let shared = rt.block_on(crate::shared_config(5));
        Ok(Self::with_client(Client::new(&shared), key_id, rt))
    }

    /// Over a client configured by the caller.
    pub fn with_client(client: Client, key_id: &str, rt: tokio::runtime::Runtime) -> Self {
        KmsWrapper {
            client,
            key_id: key_id.to_string(),
            rt: crate::OwnRuntime::new(rt),
        }
    }
}

/// Maps a KMS error: a key that no longer opens anything is named with the
/// reason and how to recover; other failures are the service's.
fn kms_error<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
>(
    op: &str,
    key_id: &str,
    e: SdkError<E, R>,
) -> VaultError {
    let code = e.code().map(str::to_string);
    kms_error_by_code(op, key_id, code.as_deref(), &e)
}

fn kms_error_by_code(
    op: &str,
    key_id: &str,
    code: Option<&str>,
    e: &(dyn std::error::Error + 'static),
) -> VaultError {
    match code {
        Some("DisabledException") => VaultError::Internal(format!(
            "KMS key {key_id} is disabled: the vault's key cannot be unwrapped (re-enable the key; if it was disabled on purpose, the lab's snapshots are shredded)"
        )),
        Some("KMSInvalidStateException") => VaultError::Internal(format!(
            "KMS key {key_id} is pending deletion or unusable: the vault's key cannot be unwrapped (cancel the deletion to recover the lab's snapshots)"
        )),
        Some("InvalidCiphertextException" | "IncorrectKeyException") => VaultError::WrongKey,
        Some("AccessDeniedException") => VaultError::Internal(format!(
            "KMS {op} with key {key_id} was denied: this identity needs kms:{op} on it"
        )),
        Some("NotFoundException") => {
            VaultError::Internal(format!("KMS key {key_id} does not exist"))
        }
        code => {
            let mut message = e.to_string();
            let mut src = e.source();
            while let Some(c) = src {
                message.push_str(": ");
                message.push_str(&c.to_string());
                src = c.source();
            }
            VaultError::Internal(format!(
                "KMS {op} with key {key_id}: {}{message}",
                code.map(|c| format!("{c}: ")).unwrap_or_default()
            ))
        }
    }
}

/// `Decrypt`'s errors, by their modeled kind first (the code string is
/// only a fallback).
fn decrypt_error<R: std::fmt::Debug + 'static>(
    key_id: &str,
    e: SdkError<DecryptError, R>,
) -> VaultError {
    let code = match e.as_service_error() {
        Some(DecryptError::DisabledException(_)) => Some("DisabledException"),
        Some(DecryptError::KmsInvalidStateException(_)) => Some("KMSInvalidStateException"),
        Some(DecryptError::InvalidCiphertextException(_)) => Some("InvalidCiphertextException"),
        Some(DecryptError::IncorrectKeyException(_)) => Some("IncorrectKeyException"),
        Some(DecryptError::NotFoundException(_)) => Some("NotFoundException"),
        _ => None,
    };
    match code {
        Some(c) => kms_error_by_code("Decrypt", key_id, Some(c), &e),
        None => kms_error("Decrypt", key_id, e),
    }
}

impl KeyWrapper for KmsWrapper {
    fn kind(&self) -> &str {
        "aws-kms"
    }

    fn wrap(&self, vault_id: &str, master: &MasterKey) -> Result<serde_json::Value> {
        let out = self
            .rt
            .block_on(
                self.client
                    .encrypt()
                    .key_id(&self.key_id)
                    .plaintext(Blob::new(master.as_bytes().to_vec()))
                    .encryption_context(CONTEXT_KEY, vault_id)
                    .send(),
            )
            .map_err(|e| kms_error("Encrypt", &self.key_id, e))?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| VaultError::Internal("KMS Encrypt returned no ciphertext".into()))?;
        let body = KmsBody {
            key_id: out.key_id().unwrap_or(&self.key_id).to_string(),
            ciphertext: base64::engine::general_purpose::STANDARD.encode(blob.as_ref()),
        };
        serde_json::to_value(body).map_err(|e| VaultError::Internal(format!("key body: {e}")))
    }

    fn unwrap_key(&self, vault_id: &str, body: &serde_json::Value) -> Result<MasterKey> {
        let bad = |d: &str| VaultError::Corrupt {
            object: "key object".into(),
            detail: d.to_string(),
        };
        let b: KmsBody = serde_json::from_value(body.clone()).map_err(|e| bad(&e.to_string()))?;
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(&b.ciphertext)
            .map_err(|_| bad("ciphertext is not base64"))?;
        let out = self
            .rt
            .block_on(
                self.client
                    .decrypt()
                    .key_id(&b.key_id)
                    .ciphertext_blob(Blob::new(ciphertext))
                    .encryption_context(CONTEXT_KEY, vault_id)
                    .send(),
            )
            .map_err(|e| decrypt_error(&b.key_id, e))?;
        let plain = out.plaintext().ok_or(VaultError::WrongKey)?;
        let bytes: [u8; 32] = plain
            .as_ref()
            .try_into()
            .map_err(|_| bad("the unwrapped key is not 32 bytes"))?;
        Ok(MasterKey::from_bytes(bytes))
    }
}
