//! Garbage collection.
//!
//! Runs under the exclusive lock, so no snapshot, restore or verify is in
//! flight (they hold shared locks; gc waits for them up to the lock timeout
//! and they wait for gc). It refuses to delete anything when a snapshot,
//! manifest or index object cannot be read, since their packs would look
//! like garbage.
//!
//! Policy: a pack none of whose blobs is referenced is deleted. A pack with
//! at least 25 % unreferenced bytes is repacked (its live blobs are checked
//! and copied, still encrypted, into new packs). Small packs (under 1/8 of
//! the pack target, typical of incremental snapshots) are merged once there
//! are 8 or more. Anything else is left as it is: rewriting a mostly-live
//! 32 MiB pack to save a few MiB costs more than it saves.
//!
//! Crash safety — order of writes: new packs → one new index object
//! covering every remaining pack → old index objects deleted → dead packs
//! deleted. A crash at any point leaves every live blob reachable through
//! some index; leftovers (unindexed packs, duplicate index entries) are
//! harmless and removed by the next gc.

use crate::blob::open_blob;
use crate::crypto::BlobId;
use crate::error::{Result, VaultError};
use crate::lock::{self, LockKind};
use crate::pack::{
    pack_id_of_key, pack_key, write_index, BlobKind, FinishedPack, IndexEntry, PackWriter,
};
use crate::types::GcReport;
use crate::vault::Vault;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use westtek_domain::ports::ProgressSink;

const REPACK_UNUSED_FRACTION: f64 = 0.25;
const SMALL_PACK_DIVISOR: u64 = 8;
const SMALL_PACKS_TO_MERGE: usize = 8;
/// Temporary files of interrupted `put`s older than this are removed.
const TEMP_AGE: Duration = Duration::from_secs(600);

impl Vault {
    /// Removes data no snapshot references; see the module docs.
    ///
    /// # Errors
    /// [`VaultError::Locked`] when snapshots keep running past the lock
    /// timeout; [`VaultError::Corrupt`] when an object gc depends on is
    /// unreadable (nothing is deleted then); storage errors.
    pub fn gc(&self, progress: Arc<dyn ProgressSink>) -> Result<GcReport> {
        let started = Instant::now();
        progress.update(0.0, "waiting for the exclusive lock");
        let (_, stale) = lock::live_locks(self.storage.as_ref(), None)?;
        let _lock = lock::acquire(&self.storage, LockKind::Exclusive, "gc", self.lock_timeout)?;
        let mut rep = GcReport {
            stale_locks_removed: stale,
            ..GcReport::default()
        };
        rep.temp_files_removed = self.storage.cleanup(TEMP_AGE)?;

        progress.update(0.05, "finding live data");
        let index = self.load_index()?;
        if let Some((k, e)) = index.problems.first() {
            return Err(VaultError::corrupt(
                k,
                format!("{e}; gc refuses to run while an index object is unreadable"),
            ));
        }
        let (docs, bad) = self.read_docs()?;
        if let Some((id, e)) = bad.first() {
            return Err(VaultError::corrupt(
                format!("snapshots/{id}"),
                format!("{e}; gc refuses to run while a snapshot is unreadable"),
            ));
        }
        let mut live: HashSet<BlobId> = HashSet::new();
        for d in &docs {
            for l in &d.layers {
                live.extend(l.chunk_refs(d.id.as_str())?.iter().map(|c| c.id));
                for e in self.read_manifest(&index, d, l)? {
                    live.extend(e.chunks.iter().map(|c| c.id));
                }
            }
        }
        rep.snapshots_kept = docs.len() as u64;

        let listed: HashMap<[u8; 32], u64> = self
            .storage
            .list("data/")?
            .into_iter()
            .filter_map(|o| pack_id_of_key(&o.key).map(|id| (id, o.size)))
            .collect();
        let target = self.config.pack_target;
        let mut delete: Vec<usize> = Vec::new();
        let mut repack: Vec<usize> = Vec::new();
        let mut small: Vec<usize> = Vec::new();
        let mut keep: Vec<usize> = Vec::new();
        for (pi, id) in index.packs.iter().enumerate() {
            let entries = &index.pack_entries[pi];
            let (used, dead) = entries.iter().fold((0u64, 0u64), |(u, d), e| {
                let primary = index
                    .blobs
                    .get(&e.id)
                    .is_some_and(|l| l.pack as usize == pi);
                if live.contains(&e.id) && primary {
                    (u + u64::from(e.len), d)
                } else {
                    (u, d + u64::from(e.len))
                }
            });
            let has_used = used > 0;
            let Some(&size) = listed.get(id) else {
                if has_used {
                    rep.warnings.push(format!(
                        "{} is missing but referenced (run verify)",
                        pack_key(id)
                    ));
                    keep.push(pi);
                }
                continue;
            };
            if !has_used {
                delete.push(pi);
            } else if dead as f64 >= REPACK_UNUSED_FRACTION * size as f64 {
                repack.push(pi);
            } else if size < target / SMALL_PACK_DIVISOR {
                small.push(pi);
            } else {
                keep.push(pi);
            }
        }
        if small.len() >= SMALL_PACKS_TO_MERGE {
            repack.append(&mut small);
        } else {
            keep.append(&mut small);
        }

        // Repack: copy live blobs (checked first) into new packs.
        progress.update(0.3, "repacking");
        let mut new_packs: Vec<FinishedPack> = Vec::new();
        let mut repacked: Vec<usize> = Vec::new();
        let mut writers: HashMap<BlobKind, PackWriter> = HashMap::new();
        let mut copied: HashSet<BlobId> = HashSet::new();
        for (n, &pi) in repack.iter().enumerate() {
            let key = pack_key(&index.packs[pi]);
            let bytes = match self.storage.get(&key) {
                Ok(b) => b,
                Err(e) => {
                    rep.warnings.push(format!("{key}: {e}; kept"));
                    keep.push(pi);
                    continue;
                }
            };
            let wanted: Vec<&IndexEntry> = index.pack_entries[pi]
                .iter()
                .filter(|e| live.contains(&e.id) && !copied.contains(&e.id))
                .collect();
            let mut frames = Vec::with_capacity(wanted.len());
            let mut ok = true;
            for e in &wanted {
                let lo = e.offset as usize;
                match bytes.get(lo..lo + e.len as usize) {
                    Some(f) if open_blob(&self.keys, &e.id, f, e.raw_len).is_ok() => {
                        frames.push((*e, f))
                    }
                    _ => {
                        rep.warnings.push(format!(
                            "{key}: blob {} is damaged; pack kept (run verify)",
                            hex::encode(e.id)
                        ));
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                keep.push(pi);
                continue;
            }
            for (e, f) in frames {
                copied.insert(e.id);
                let w = writers
                    .entry(e.kind)
                    .or_insert_with(|| PackWriter::new(target as usize + (1 << 20)));
                w.add(e.id, e.kind, f, e.raw_len);
                if w.len() as u64 >= target {
                    let full = std::mem::replace(w, PackWriter::new(target as usize + (1 << 20)));
                    new_packs.push(self.put_pack(full)?);
                    rep.packs_written += 1;
                }
            }
            repacked.push(pi);
            progress.update(
                0.3 + 0.4 * (n + 1) as f32 / repack.len() as f32,
                "repacking",
            );
        }
        for (_, w) in writers {
            if !w.is_empty() {
                new_packs.push(self.put_pack(w)?);
                rep.packs_written += 1;
            }
        }

        // One index for everything that stays.
        progress.update(0.75, "writing the index");
        let index_changed = !delete.is_empty() || !repacked.is_empty() || index.objects.len() > 1;
        if index_changed {
            let mut all: Vec<(&[u8; 32], &[IndexEntry])> = keep
                .iter()
                .map(|&pi| (&index.packs[pi], index.pack_entries[pi].as_slice()))
                .collect();
            all.extend(new_packs.iter().map(|p| (&p.id, p.entries.as_slice())));
            let new_key = if all.is_empty() {
                None
            } else {
                Some(write_index(self.storage.as_ref(), &self.keys, &all)?.0)
            };
            for k in &index.objects {
                if Some(k) != new_key.as_ref() {
                    self.storage.delete(k)?;
                    rep.index_objects_replaced += 1;
                }
            }
        }

        // Dead packs, then packs no index knows (interrupted runs).
        progress.update(0.85, "deleting unused packs");
        let mut freed: u64 = 0;
        for &pi in delete.iter().chain(repacked.iter()) {
            let id = index.packs[pi];
            self.storage.delete(&pack_key(&id))?;
            freed += listed.get(&id).copied().unwrap_or(0);
            rep.blobs_removed += index.pack_entries[pi]
                .iter()
                .filter(|e| !copied.contains(&e.id))
                .count() as u64;
        }
        rep.packs_deleted = delete.len() as u64;
        rep.packs_repacked = repacked.len() as u64;
        let new_ids: HashSet<[u8; 32]> = new_packs.iter().map(|p| p.id).collect();
        for (id, size) in &listed {
            if !index.has_pack(id) && !new_ids.contains(id) {
                self.storage.delete(&pack_key(id))?;
                freed += size;
                rep.packs_deleted += 1;
            }
        }
        let written: u64 = new_packs.iter().map(|p| p.bytes.len() as u64).sum();
        rep.bytes_freed = freed.saturating_sub(written);
        rep.duration_ms = started.elapsed().as_millis() as u64;
        progress.update(1.0, "gc complete");
        Ok(rep)
    }

    fn put_pack(&self, w: PackWriter) -> Result<FinishedPack> {
        let p = w.finish(&self.keys);
        match self.storage.put(&pack_key(&p.id), &p.bytes) {
            Ok(()) | Err(crate::error::StorageError::AlreadyExists(_)) => Ok(p),
            Err(e) => Err(e.into()),
        }
    }
}
