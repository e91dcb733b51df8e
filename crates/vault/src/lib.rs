//! The West Tek vault: a deduplicating, encrypted, crash-safe snapshot store
//! for whole Jupyter environments, usable without the server.
//!
//! A snapshot is a set of layers (`base`, `env`, `home`), each a tree
//! manifest whose files point to content-defined chunks. Chunks are
//! identified by keyed BLAKE3, compressed with zstd when that pays, encrypted
//! with XChaCha20-Poly1305 and grouped into ~32 MiB packs on a [`Storage`]
//! (a local folder now, S3 later). The on-disk format is specified in
//! `docs/VAULT-FORMAT.md`.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use westtek_vault::*;
//! # fn main() -> Result<()> {
//! let key = KeySource::Password("correct horse".into());
//! let vault = Vault::init_local("/srv/vault", &key)?;
//! let summary = vault.snapshot(
//!     &SnapshotRequest {
//!         layers: vec![LayerSource { name: "home".into(), root: "/home/ada".into(), exclude: vec!["__pycache__".into()], include: vec![] }],
//!         parent: None,
//!         metadata: serde_json::json!({"notes": "before upgrade"}),
//!         changed_hint: None,
//!     },
//!     Arc::new(NoProgress),
//! )?;
//! vault.restore(
//!     &summary.id,
//!     &RestoreRequest { targets: vec![("home".into(), "/tmp/ada".into())], verify: false },
//!     Arc::new(NoProgress),
//! )?;
//! # Ok(()) }
//! ```

mod blob;
mod chunker;
mod codec;
mod crypto;
mod diff;
mod error;
mod gc;
mod keys;
mod lock;
mod manifest;
mod objects;
mod pack;
mod restore;
mod snapshot;
mod storage;
#[doc(hidden)]
pub mod synth;
mod types;
mod vault;
mod verify;
mod walk;

pub use chunker::ChunkerParams;
pub use crypto::MasterKey;
pub use error::{AffectedFile, Result, StorageError, VaultError};
pub use keys::{Argon2Params, KeySource, KeyWrapper, PassphraseWrapper};
pub use objects::FORMAT_VERSION;
pub use storage::{validate_key, LocalStorage, ObjectInfo, Storage};
pub use types::*;
pub use vault::{InitOptions, Vault};
pub use westtek_domain::ports::ProgressSink;

/// A progress sink that ignores updates.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn update(&self, _fraction: f32, _message: &str) {}
}
