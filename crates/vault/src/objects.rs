//! The JSON objects of the format: `config` (plaintext) and the snapshot
//! object (encrypted JSON). Kept apart from the public API types so the
//! stored format changes only on purpose.

use crate::chunker::ChunkerParams;
use crate::crypto::BlobId;
use crate::error::{Result, VaultError};
use crate::manifest::ChunkRef;
use crate::types::{LayerSummary, SnapshotId, SnapshotSummary};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub(crate) const FORMAT_NAME: &str = "westtek-vault";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Compression {
    pub algorithm: String,
    pub level: i32,
}

/// The plaintext `config` object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Config {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub chunker: ChunkerParams,
    pub tree_chunker: ChunkerParams,
    pub pack_target: u64,
    pub compression: Compression,
}

impl Config {
    pub(crate) fn validate(&self, location: &str) -> Result<()> {
        if self.format != FORMAT_NAME {
            return Err(VaultError::NotAVault {
                location: location.into(),
                detail: format!("config names format {:?}", self.format),
            });
        }
        if self.version > FORMAT_VERSION || self.version == 0 {
            return Err(VaultError::UnsupportedVersion {
                found: self.version,
                supported: FORMAT_VERSION,
            });
        }
        let ok = self.chunker.is_valid()
            && self.tree_chunker.is_valid()
            && (1 << 20..=1 << 30).contains(&self.pack_target)
            && self.compression.algorithm == "zstd"
            && (1..=19).contains(&self.compression.level);
        if !ok {
            return Err(VaultError::corrupt("config", "parameters out of range"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct ChunkDoc {
    pub id: String,
    pub len: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct LayerDoc {
    pub name: String,
    pub root: String,
    /// The include list of a partial layer (see `LayerSource::include`):
    /// a restore changes nothing outside these paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    pub tree_hash: String,
    pub manifest_hash: String,
    pub manifest_bytes: u64,
    pub manifest_chunks: Vec<ChunkDoc>,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinked: u64,
    pub logical_bytes: u64,
}

impl LayerDoc {
    pub(crate) fn chunk_refs(&self, snapshot: &str) -> Result<Vec<ChunkRef>> {
        self.manifest_chunks
            .iter()
            .map(|c| {
                let id: BlobId = hex::decode(&c.id)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| {
                        VaultError::corrupt(
                            format!("snapshots/{snapshot}"),
                            "bad manifest chunk id",
                        )
                    })?;
                Ok(ChunkRef { id, len: c.len })
            })
            .collect()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct StatsDoc {
    pub logical_bytes: u64,
    pub stored_bytes_added: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinked: u64,
    pub files_read: u64,
    pub bytes_read: u64,
    pub files_reused: u64,
    pub duration_ms: u64,
}

/// The decrypted content of a `snapshots/<id>` object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct SnapshotDoc {
    pub version: u32,
    pub id: SnapshotId,
    pub created_at: DateTime<Utc>,
    pub parent: Option<SnapshotId>,
    pub hostname: String,
    pub root_hash: String,
    pub layers: Vec<LayerDoc>,
    pub stats: StatsDoc,
    pub skipped: Vec<(String, String)>,
    pub changed_during_read: Vec<String>,
    pub metadata: serde_json::Value,
}

impl SnapshotDoc {
    pub(crate) fn summary(&self) -> SnapshotSummary {
        let s = &self.stats;
        SnapshotSummary {
            id: self.id.clone(),
            created_at: self.created_at,
            parent: self.parent.clone(),
            root_hash: self.root_hash.clone(),
            logical_bytes: s.logical_bytes,
            stored_bytes_added: s.stored_bytes_added,
            files: s.files,
            dirs: s.dirs,
            symlinks: s.symlinks,
            hardlinked: s.hardlinked,
            skipped: self
                .skipped
                .iter()
                .map(|(p, r)| (PathBuf::from(p), r.clone()))
                .collect(),
            changed_during_read: self.changed_during_read.iter().map(PathBuf::from).collect(),
            layers: self
                .layers
                .iter()
                .map(|l| LayerSummary {
                    name: l.name.clone(),
                    root: PathBuf::from(&l.root),
                    include: l.include.clone(),
                    files: l.files,
                    dirs: l.dirs,
                    symlinks: l.symlinks,
                    hardlinked: l.hardlinked,
                    logical_bytes: l.logical_bytes,
                    tree_hash: l.tree_hash.clone(),
                    manifest_hash: l.manifest_hash.clone(),
                    manifest_bytes: l.manifest_bytes,
                })
                .collect(),
            files_read: s.files_read,
            bytes_read: s.bytes_read,
            files_reused: s.files_reused,
            duration_ms: s.duration_ms,
        }
    }
}
