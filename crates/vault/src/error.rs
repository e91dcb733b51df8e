//! Errors of the vault. Every variant says what is affected (object, snapshot,
//! file) so a caller can show it to a person without further context.

use std::fmt::Write as _;
use std::path::PathBuf;

/// What a [`crate::Storage`] adapter can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object {0} not found")]
    NotFound(String),
    /// `put` of an object that already exists (objects are immutable).
    #[error("object {0} already exists")]
    AlreadyExists(String),
    /// The key is not a valid object key (`a-z0-9._-` segments joined by `/`).
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// An I/O error of the backend (disk full, permission, truncated object…).
    #[error("storage I/O on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// The object is in an archive tier (S3 Glacier Deep Archive) and
    /// cannot be read until it is thawed; the adapter has asked for that.
    /// Thawing takes hours; reading again afterwards succeeds.
    #[error("object {0} is archived; a thaw was requested and takes hours (Glacier Deep Archive: up to 12 h standard, 48 h bulk)")]
    Archived(String),
    /// Any other backend failure (for remote adapters).
    #[error("storage backend: {0}")]
    Backend(String),
}

impl StorageError {
    pub(crate) fn io(key: &str, source: std::io::Error) -> Self {
        StorageError::Io {
            key: key.to_string(),
            source,
        }
    }
}

/// A file of a snapshot that is affected by damage, as `layer` + path inside the layer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AffectedFile {
    pub layer: String,
    pub path: PathBuf,
}

/// Errors of vault operations.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The password or key file does not unlock any key object of the vault.
    #[error("wrong password or key file: none of the vault's keys can be unlocked with it")]
    WrongKey,
    /// There is no (readable) vault at this location.
    #[error("no vault at {location}: {detail}")]
    NotAVault { location: String, detail: String },
    /// `init` on a location that already holds a vault.
    #[error("a vault already exists at {0}")]
    AlreadyExists(String),
    /// The vault was written by a newer format version.
    #[error(
        "vault format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    /// No snapshot with this id.
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    /// The request itself is invalid (unknown layer, missing root…).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A local file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A vault object failed authentication or decoding.
    #[error("corrupt {object}: {detail}")]
    Corrupt { object: String, detail: String },
    /// Data a snapshot needs is damaged or missing; names the files it affects.
    #[error("{}", damaged_message(snapshot, files, detail))]
    Damaged {
        snapshot: String,
        files: Vec<AffectedFile>,
        detail: String,
    },
    /// A manifest entry that would write outside the restore target, or a
    /// device file, FIFO or socket.
    #[error("refusing entry {path:?} of layer {layer} in snapshot {snapshot}: {reason}")]
    UnsafeEntry {
        snapshot: String,
        layer: String,
        path: String,
        reason: String,
    },
    /// Another process holds a conflicting lock (garbage collection or a
    /// running snapshot) for longer than the lock timeout.
    #[error("vault is locked: {0}")]
    Locked(String),
    /// The committed snapshot did not read back identically.
    #[error("snapshot {snapshot} failed its read-back check: {detail}")]
    ReadBack { snapshot: String, detail: String },
    /// A bug or an impossible state; the message says where.
    #[error("internal error: {0}")]
    Internal(String),
}

fn damaged_message(snapshot: &str, files: &[AffectedFile], detail: &str) -> String {
    let mut s = format!(
        "snapshot {snapshot}: {} file(s) affected by damaged or missing vault data ({detail})",
        files.len()
    );
    for f in files.iter().take(5) {
        let _ = write!(s, "; {}:{}", f.layer, f.path.display());
    }
    if files.len() > 5 {
        let _ = write!(s, "; …");
    }
    s
}

impl VaultError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VaultError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(object: impl Into<String>, detail: impl Into<String>) -> Self {
        VaultError::Corrupt {
            object: object.into(),
            detail: detail.into(),
        }
    }
}

/// Result of vault operations.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;
