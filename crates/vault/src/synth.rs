//! Synthetic snapshots for scale benchmarks (`examples/scale.rs`), not for
//! production use: hidden from the docs.
//!
//! A synthetic snapshot is real in every structure the vault's operations
//! read — encrypted snapshot objects, manifests encoded, tree-chunked and
//! stored as blobs, packs with their encrypted trailers, index objects —
//! but its file data is not: each file names chunk *seeds*, and a chunk is
//! stored as a 16-byte blob derived from its seed while the manifest
//! records the length the benchmark says it has. So listing, showing,
//! diffing, gc and restore planning do their real work on a vault of any
//! shape in minutes; restoring file bytes or `verify --read-data` would
//! (rightly) report the data as damaged.

use crate::blob::seal_blob;
use crate::crypto::BlobId;
use crate::error::{Result, VaultError};
use crate::manifest::{self, ChunkRef, Entry, Kind, Time};
use crate::objects::{ChunkDoc, LayerDoc, SnapshotDoc, StatsDoc};
use crate::pack::{pack_key, write_index, BlobKind, FinishedPack, IndexEntry, PackWriter};
use crate::restore::validate_entries;
use crate::storage::Storage;
use crate::types::SnapshotId;
use crate::vault::Vault;
use crate::FORMAT_VERSION;
use std::collections::{BTreeSet, HashMap, HashSet};

/// One file of a synthetic layer.
#[derive(Clone, Debug)]
pub struct SynthFile {
    /// Relative path, `/`-separated.
    pub path: String,
    /// Its chunks: (seed, length). The same seed is the same chunk.
    pub chunks: Vec<(u64, u32)>,
    /// Modification time, seconds.
    pub mtime: i64,
}

/// One layer of a synthetic snapshot.
#[derive(Clone, Debug)]
pub struct SynthLayer {
    pub name: String,
    pub root: String,
    /// Files; directories are derived from their paths.
    pub files: Vec<SynthFile>,
}

/// Writes synthetic snapshots in batches: blobs go into packs, and each
/// [`flush`](Self::flush) writes the packs and one index object.
pub struct Synthesizer<'a> {
    vault: &'a Vault,
    known: HashSet<BlobId>,
    /// Blob ids of chunk seeds already stored (saves re-hashing).
    seeds: HashMap<u64, BlobId>,
    data: PackWriter,
    tree: PackWriter,
    /// Bytes the open data pack would hold with real chunk data: packs
    /// close at the vault's pack target of *those*, so their number and
    /// the blobs in each are as in a real vault.
    data_claimed: u64,
    pending: Vec<FinishedPack>,
}

/// What restoring a snapshot would read: the plan, without the writes.
#[derive(Clone, Debug, Default)]
pub struct RestorePlan {
    pub entries: u64,
    pub files: u64,
    pub chunks: u64,
    pub unique_chunks: u64,
    pub packs: u64,
    pub logical_bytes: u64,
}

impl<'a> Synthesizer<'a> {
    /// A synthesizer over `vault` (its current index says which blobs exist).
    ///
    /// # Errors
    /// Index read errors.
    pub fn new(vault: &'a Vault) -> Result<Self> {
        let index = vault.load_index()?;
        Ok(Synthesizer {
            vault,
            known: index.blobs.keys().copied().collect(),
            seeds: HashMap::new(),
            data: PackWriter::new(1024 * 1024),
            tree: PackWriter::new(1024 * 1024),
            data_claimed: 0,
            pending: Vec::new(),
        })
    }

    /// Stores a blob unless the vault has it; `claimed` is the length it
    /// stands for.
    fn store(&mut self, data: &[u8], kind: BlobKind, claimed: u32) -> BlobId {
        let keys = &self.vault.keys;
        let id = keys.blob_id(data);
        if self.known.insert(id) {
            let (frame, _) = seal_blob(keys, data, self.vault.config.compression.level);
            let target = self.vault.config.pack_target;
            let (w, size) = match kind {
                BlobKind::Data => {
                    self.data_claimed += u64::from(claimed);
                    (&mut self.data, self.data_claimed)
                }
                BlobKind::Tree => (&mut self.tree, 0),
            };
            w.add(id, kind, &frame, data.len() as u32);
            if size.max(w.len() as u64) >= target {
                let full = std::mem::replace(w, PackWriter::new(1024 * 1024));
                self.pending.push(full.finish(keys));
                if kind == BlobKind::Data {
                    self.data_claimed = 0;
                }
            }
        }
        id
    }

    /// Adds one snapshot (committed to storage at once; its blobs are in
    /// storage after the next [`flush`](Self::flush)).
    ///
    /// # Errors
    /// Storage errors.
    pub fn snapshot(
        &mut self,
        layers: &[SynthLayer],
        parent: Option<SnapshotId>,
        metadata: serde_json::Value,
        created_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<SnapshotId> {
        let mut docs = Vec::new();
        let mut hashes = Vec::new();
        let mut files_total = 0;
        let mut dirs_total = 0;
        let mut logical_total = 0;
        for l in layers {
            let mut entries = Vec::with_capacity(l.files.len() * 6 / 5 + 1);
            let mut dirs: BTreeSet<&str> = BTreeSet::new();
            dirs.insert("");
            for f in &l.files {
                let mut p = f.path.as_str();
                while let Some((d, _)) = p.rsplit_once('/') {
                    if !dirs.insert(d) {
                        break;
                    }
                    p = d;
                }
            }
            for d in &dirs {
                let mut e = Entry::new(d.as_bytes().to_vec(), Kind::Dir);
                e.mode = 0o755;
                entries.push(e);
            }
            let mut logical = 0;
            for f in &l.files {
                let mut e = Entry::new(f.path.as_bytes().to_vec(), Kind::File);
                e.mode = 0o644;
                e.mtime = Time {
                    sec: f.mtime,
                    nsec: 0,
                };
                e.ctime = e.mtime;
                e.chunks = f
                    .chunks
                    .iter()
                    .map(|(seed, len)| {
                        let id = match self.seeds.get(seed) {
                            Some(id) => *id,
                            None => {
                                let id = self.store(&chunk_bytes(*seed), BlobKind::Data, *len);
                                self.seeds.insert(*seed, id);
                                id
                            }
                        };
                        ChunkRef { id, len: *len }
                    })
                    .collect();
                e.size = f.chunks.iter().map(|(_, n)| u64::from(*n)).sum();
                logical += e.size;
                entries.push(e);
            }
            entries.sort_by(|a, b| manifest::path_cmp(&a.path, &b.path));
            let bytes = manifest::encode(&entries);
            let cuts = self.vault.tree_chunker.cuts(&bytes);
            let chunks: Vec<ChunkRef> = cuts
                .iter()
                .map(|(o, n)| ChunkRef {
                    id: self.store(&bytes[*o..*o + *n], BlobKind::Tree, *n as u32),
                    len: *n as u32,
                })
                .collect();
            let th = manifest::tree_hash(&entries);
            hashes.push((l.name.clone(), th));
            files_total += l.files.len() as u64;
            dirs_total += dirs.len() as u64;
            logical_total += logical;
            docs.push(LayerDoc {
                name: l.name.clone(),
                root: l.root.clone(),
                include: vec![],
                tree_hash: hex::encode(th),
                manifest_hash: hex::encode(manifest::manifest_hash(&bytes)),
                manifest_bytes: bytes.len() as u64,
                manifest_chunks: chunks
                    .iter()
                    .map(|c| ChunkDoc {
                        id: hex::encode(c.id),
                        len: c.len,
                    })
                    .collect(),
                files: l.files.len() as u64,
                dirs: dirs.len() as u64,
                symlinks: 0,
                hardlinked: 0,
                logical_bytes: logical,
            });
        }
        let root = manifest::root_hash(hashes.iter().map(|(n, h)| (n.as_str(), *h)));
        let doc = SnapshotDoc {
            version: FORMAT_VERSION,
            id: SnapshotId::new(),
            created_at,
            parent,
            hostname: "synthetic".into(),
            root_hash: hex::encode(root),
            layers: docs,
            stats: StatsDoc {
                logical_bytes: logical_total,
                files: files_total,
                dirs: dirs_total,
                ..Default::default()
            },
            skipped: Vec::new(),
            changed_during_read: Vec::new(),
            metadata,
        };
        let json = serde_json::to_vec(&doc)
            .map_err(|e| VaultError::Internal(format!("snapshot object: {e}")))?;
        self.vault.storage.put(
            &format!("snapshots/{}", doc.id),
            &self.vault.keys.seal(crate::crypto::aad::SNAPSHOT, &[&json]),
        )?;
        Ok(doc.id)
    }

    /// Writes every full or partial pack and one index object for them.
    ///
    /// # Errors
    /// Storage errors.
    pub fn flush(&mut self) -> Result<()> {
        let keys = &self.vault.keys;
        for w in [&mut self.data, &mut self.tree] {
            if !w.is_empty() {
                let full = std::mem::replace(w, PackWriter::new(1024 * 1024));
                self.pending.push(full.finish(keys));
            }
        }
        self.data_claimed = 0;
        if self.pending.is_empty() {
            return Ok(());
        }
        let storage: &dyn Storage = self.vault.storage.as_ref();
        for p in &self.pending {
            storage.put(&pack_key(&p.id), &p.bytes)?;
        }
        let refs: Vec<(&[u8; 32], &[IndexEntry])> = self
            .pending
            .iter()
            .map(|p| (&p.id, p.entries.as_slice()))
            .collect();
        write_index(storage, keys, &refs)?;
        self.pending.clear();
        Ok(())
    }
}

fn chunk_bytes(seed: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&seed.to_le_bytes());
    b[8..].copy_from_slice(b"westtek!");
    b
}

impl Vault {
    /// What a restore of `id` reads before it writes anything: the
    /// snapshot object, the index, every manifest (checked like a restore
    /// checks them), and the packs its chunks live in.
    ///
    /// # Errors
    /// Unknown snapshot, unreadable index or manifests.
    #[doc(hidden)]
    pub fn plan_restore(&self, id: &SnapshotId) -> Result<RestorePlan> {
        let doc = self.read_doc(id)?;
        let index = self.load_index()?;
        let mut plan = RestorePlan::default();
        let mut unique: HashSet<BlobId> = HashSet::new();
        let mut packs: HashMap<u32, u64> = HashMap::new();
        for l in &doc.layers {
            let entries = self.read_manifest(&index, &doc, l)?;
            validate_entries(id, &l.name, &entries)?;
            for e in &entries {
                plan.entries += 1;
                if e.kind != Kind::File {
                    continue;
                }
                plan.files += 1;
                plan.logical_bytes += e.size;
                for c in &e.chunks {
                    plan.chunks += 1;
                    if unique.insert(c.id) {
                        let loc = index.blobs.get(&c.id).ok_or_else(|| VaultError::Damaged {
                            snapshot: id.to_string(),
                            files: Vec::new(),
                            detail: format!("chunk {} is in no index", hex::encode(c.id)),
                        })?;
                        *packs.entry(loc.pack).or_default() += u64::from(loc.len);
                    }
                }
            }
        }
        plan.unique_chunks = unique.len() as u64;
        plan.packs = packs.len() as u64;
        Ok(plan)
    }

    /// Loads the index as every operation does and calls `f` with its
    /// blob and pack counts while it is held (to measure its memory).
    ///
    /// # Errors
    /// Index read errors.
    #[doc(hidden)]
    pub fn with_index<R>(&self, f: impl FnOnce(usize, usize) -> R) -> Result<R> {
        let index = self.load_index()?;
        Ok(f(index.blobs.len(), index.packs.len()))
    }
}
