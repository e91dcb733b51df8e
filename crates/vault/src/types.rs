//! The public request and report types of the vault.

use crate::error::{AffectedFile, Result, VaultError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A snapshot's id: a UUID (v7, so ids sort by creation time) as a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SnapshotId(String);

impl SnapshotId {
    /// A new, time-ordered id.
    pub fn new() -> Self {
        SnapshotId(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    /// Parses a UUID string (any case, with hyphens).
    ///
    /// # Errors
    /// [`VaultError::InvalidRequest`] when it is not a UUID.
    pub fn parse(s: &str) -> Result<Self> {
        let u = uuid::Uuid::parse_str(s.trim())
            .map_err(|_| VaultError::InvalidRequest(format!("{s:?} is not a snapshot id")))?;
        Ok(SnapshotId(u.hyphenated().to_string()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SnapshotId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SnapshotId {
    type Err = VaultError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SnapshotId {
    type Error = VaultError;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<SnapshotId> for String {
    fn from(id: SnapshotId) -> String {
        id.0
    }
}

impl AsRef<str> for SnapshotId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One tree to snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSource {
    /// Layer name: `base`, `env` or `home` on the platform; any non-empty
    /// name without `/`, unique within the snapshot.
    pub name: String,
    /// The tree's root directory (followed if it is a symlink).
    pub root: PathBuf,
    /// Exclusion patterns, matched against paths relative to `root` with
    /// `/` separators: a pattern without `/` matches an entry's name at any
    /// depth (`__pycache__`, `*.pyc`); a pattern with `/` matches the whole
    /// relative path, where `**` stands for any number of components
    /// (`**/__pycache__`, `data/tmp`, `lib/*/site-packages/foo`). `*` and `?`
    /// match within one name. An excluded directory is skipped with
    /// everything below it.
    pub exclude: Vec<String>,
    /// When not empty, only these paths (relative to `root`, `/`-separated,
    /// no `.`/`..`) are captured, each with everything below it, plus the
    /// directories leading to them (so a restore recreates them with their
    /// modes and times). The platform's `base` layer is the interpreter's
    /// closure this way: the root is `/` and the paths are the interpreter,
    /// its standard library and the shared libraries it loads. A path that
    /// does not exist is left out; one below a symlinked directory is
    /// skipped and reported. `changed_hint` does not apply to such a layer.
    pub include: Vec<String>,
}

/// What to snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotRequest {
    pub layers: Vec<LayerSource>,
    /// Files whose size, mtime, ctime and inode match this snapshot's entry
    /// reuse its chunks without being read.
    pub parent: Option<SnapshotId>,
    /// Opaque JSON stored with the snapshot (the platform's inventory).
    pub metadata: serde_json::Value,
    /// Paths known to have changed since `parent` (absolute, or relative to
    /// a layer root). With a parent, only these paths (and their parent
    /// directories) are looked at; every other entry is taken from the
    /// parent as it was. A directory in the hint is rescanned with
    /// everything below it; a path that no longer exists is removed. The
    /// caller guarantees completeness (the platform's drift watcher does).
    /// Ignored without a parent.
    pub changed_hint: Option<Vec<PathBuf>>,
}

/// Per-layer figures of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSummary {
    pub name: String,
    /// The root the layer was taken from (restore to "original paths" uses it).
    pub root: PathBuf,
    /// Not empty for a partial layer: only these paths below `root` were
    /// captured, and a restore touches nothing else in its target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Files that are members of a hard-link group (inside this layer).
    pub hardlinked: u64,
    /// Sum of file sizes.
    pub logical_bytes: u64,
    /// Hash of the layer's tree (what a restore reproduces; hex). Two
    /// snapshots of an identical tree have the same tree hash.
    pub tree_hash: String,
    /// BLAKE3 of the layer's stored manifest bytes (hex).
    pub manifest_hash: String,
    /// Size of the encoded manifest.
    pub manifest_bytes: u64,
}

/// A snapshot as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub id: SnapshotId,
    pub created_at: DateTime<Utc>,
    pub parent: Option<SnapshotId>,
    /// Merkle root over the layers' tree hashes (hex): the snapshot's
    /// checksum. It covers every path, type, mode, owner, mtime, symlink
    /// target, hard-link group and chunk id (and so every byte).
    pub root_hash: String,
    /// Sum of file sizes over all layers.
    pub logical_bytes: u64,
    /// Bytes of packs and index this snapshot added to the vault.
    pub stored_bytes_added: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinked: u64,
    /// Entries not stored, with the reason (sockets, FIFOs, devices,
    /// unreadable files, files that vanished while the snapshot ran).
    pub skipped: Vec<(PathBuf, String)>,
    /// Files that kept changing while they were read (stored as last read).
    pub changed_during_read: Vec<PathBuf>,
    pub layers: Vec<LayerSummary>,
    /// Files whose content was read (the rest reused the parent's chunks).
    pub files_read: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Files taken from the parent without reading them.
    pub files_reused: u64,
    /// Wall-clock duration of the snapshot in milliseconds.
    pub duration_ms: u64,
}

/// What to restore where.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RestoreRequest {
    /// `(layer name, target root)`. Layers not named are not restored.
    pub targets: Vec<(String, PathBuf)>,
    /// Re-read every restored file afterwards and check it against the
    /// manifest (content hashes, size, mode, mtime). Every chunk is
    /// verified while restoring regardless.
    pub verify: bool,
}

/// Per-layer figures of a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRestore {
    pub layer: String,
    pub target: PathBuf,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Extra names created as hard links.
    pub hardlinks: u64,
    pub bytes: u64,
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    pub snapshot: SnapshotId,
    pub layers: Vec<LayerRestore>,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub bytes_written: u64,
    /// Paths in a target that were not in the snapshot (or had another
    /// type) and were removed; a removed directory is listed once.
    pub removed: Vec<PathBuf>,
    /// Files and symlinks that existed and were replaced.
    pub overwritten: Vec<PathBuf>,
    /// Whether the restored files were re-read and checked (`verify`).
    pub verified: bool,
    /// Whether owners (uid/gid) were restored (only when running as root).
    pub ownership_restored: bool,
    pub duration_ms: u64,
}

/// An entry's type as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Dir,
    Symlink,
}

/// An entry present on one side of a diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffEntry {
    pub path: PathBuf,
    pub kind: EntryType,
    pub size: u64,
}

/// An entry present on both sides that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedEntry {
    pub path: PathBuf,
    pub old_kind: EntryType,
    pub new_kind: EntryType,
    pub old_size: u64,
    pub new_size: u64,
    /// Content (chunks) or symlink target differs.
    pub content_changed: bool,
    /// Mode, owner, or (for files and symlinks) mtime differs. Directory
    /// mtimes alone are not reported: they change whenever a child does.
    pub metadata_changed: bool,
}

/// Differences within one layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LayerDiff {
    pub layer: String,
    pub added: Vec<DiffEntry>,
    pub removed: Vec<DiffEntry>,
    pub changed: Vec<ChangedEntry>,
}

/// Differences from snapshot `from` to snapshot `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeDiff {
    pub from: SnapshotId,
    pub to: SnapshotId,
    pub layers: Vec<LayerDiff>,
}

/// A snapshot affected by damage found by verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedSnapshot {
    pub id: SnapshotId,
    /// Why: unreadable snapshot object or manifest, root-hash mismatch, or
    /// damaged/missing data.
    pub reasons: Vec<String>,
    /// Files whose data is damaged or missing.
    pub files: Vec<AffectedFile>,
}

/// What verify found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VerifyReport {
    pub snapshots_checked: u64,
    pub packs_checked: u64,
    pub blobs_checked: u64,
    /// Bytes of pack data read and decrypted (`read_data` only).
    pub bytes_read: u64,
    /// Whether every byte was read (`read_data`).
    pub read_data: bool,
    /// Problems, each naming the object (`data/…`, `index/…`, `snapshots/…`).
    pub errors: Vec<String>,
    /// Harmless findings (leftovers that `gc` removes).
    pub warnings: Vec<String>,
    pub damaged_snapshots: Vec<DamagedSnapshot>,
}

impl VerifyReport {
    /// No errors and no damaged snapshot.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty() && self.damaged_snapshots.is_empty()
    }
}

/// What garbage collection did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GcReport {
    pub snapshots_kept: u64,
    pub packs_deleted: u64,
    pub packs_repacked: u64,
    pub packs_written: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub index_objects_replaced: u64,
    pub stale_locks_removed: u64,
    pub temp_files_removed: u64,
    /// Problems that made gc keep data it would otherwise have removed.
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

/// Space used by one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotUsage {
    pub id: SnapshotId,
    pub logical_bytes: u64,
    /// Stored bytes of blobs no other snapshot references (what deleting it
    /// and running gc would free, at most).
    pub unique_stored_bytes: u64,
}

/// Vault-wide storage figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VaultStats {
    pub snapshots: u64,
    pub packs: u64,
    pub blobs: u64,
    /// Bytes of every object (packs, indexes, snapshots, keys, config, locks).
    pub total_stored_bytes: u64,
    pub pack_bytes: u64,
    /// Stored bytes of blobs no snapshot references (gc reclaims them).
    pub unreferenced_bytes: u64,
    pub per_snapshot: Vec<SnapshotUsage>,
}
