//! Checking a vault.
//!
//! Structure (always): every snapshot object decrypts, every manifest reads
//! back with its recorded hash and the root hash matches; every referenced
//! chunk is in an index; every indexed pack exists, is long enough, and
//! its own trailer index agrees with the index objects. With `read_data`,
//! every pack is read whole, its BLAKE3 compared with its name, and every
//! blob decrypted, decompressed and checked against its keyed hash.
//!
//! Damage is mapped back to the snapshots and files it affects.

use crate::blob::open_blob;
use crate::crypto::BlobId;
use crate::error::{AffectedFile, Result};
use crate::manifest::{self, Entry};
use crate::pack::{
    pack_id_of_key, pack_key, read_pack_trailer, IdMap, PACK_HEADER_LEN, PACK_TRAILER_LEN,
};
use crate::types::{DamagedSnapshot, VerifyReport};
use crate::vault::Vault;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use westtek_domain::ports::ProgressSink;

/// A layer's name and decoded manifest.
type LayerEntries = (String, Vec<Entry>);

impl Vault {
    /// Checks the vault; see the module docs for what is checked.
    ///
    /// # Errors
    /// Only when the check itself cannot run (storage unreachable, lock
    /// timeout); damage is reported in the [`VerifyReport`].
    pub fn verify(&self, read_data: bool, progress: Arc<dyn ProgressSink>) -> Result<VerifyReport> {
        progress.update(0.0, "loading indexes and snapshots");
        let _lock = self.shared_lock("verify")?;
        let mut rep = VerifyReport {
            read_data,
            ..VerifyReport::default()
        };
        let index = self.load_index()?;
        for (k, e) in &index.problems {
            rep.errors.push(format!("{k}: {e}"));
        }
        let mut damaged: Vec<DamagedSnapshot> = Vec::new();
        let (docs, bad) = self.read_docs()?;
        for (id, e) in bad {
            rep.errors.push(format!("snapshots/{id}: {e}"));
            damaged.push(DamagedSnapshot {
                id,
                reasons: vec![e.to_string()],
                files: Vec::new(),
            });
        }

        // Manifests and root hashes.
        let mut manifests: Vec<(usize, Vec<LayerEntries>)> = Vec::new();
        for (di, d) in docs.iter().enumerate() {
            let mut reasons = Vec::new();
            let mut layers = Vec::new();
            let mut hashes = Vec::new();
            for l in &d.layers {
                match self.read_manifest_bytes(&index, d, l) {
                    Ok(bytes) => match manifest::decode(&bytes) {
                        Ok(entries) => {
                            let th = manifest::tree_hash(&entries);
                            if hex::encode(th) != l.tree_hash {
                                reasons
                                    .push(format!("tree hash of layer {} does not match", l.name));
                            }
                            hashes.push((l.name.as_str(), th));
                            layers.push((l.name.clone(), entries));
                        }
                        Err(e) => reasons.push(format!("manifest of layer {}: {}", l.name, e.0)),
                    },
                    Err(e) => reasons.push(e.to_string()),
                }
            }
            if hashes.len() == d.layers.len()
                && hex::encode(manifest::root_hash(hashes)) != d.root_hash
            {
                reasons.push("root hash does not match the manifests".into());
            }
            if !reasons.is_empty() {
                for r in &reasons {
                    rep.errors.push(format!("snapshots/{}: {r}", d.id));
                }
                damaged.push(DamagedSnapshot {
                    id: d.id.clone(),
                    reasons,
                    files: Vec::new(),
                });
            }
            manifests.push((di, layers));
        }
        rep.snapshots_checked = docs.len() as u64;
        progress.update(0.1, "checking packs");

        // Packs: existence, size, trailer index.
        let mut bad_blobs: IdMap<String> = IdMap::default();
        let mut listed: HashMap<[u8; 32], u64> = HashMap::new();
        for o in self.storage.list("data/")? {
            match pack_id_of_key(&o.key) {
                Some(id) if pack_key(&id) == o.key => {
                    listed.insert(id, o.size);
                }
                _ => rep.warnings.push(format!("{}: not a pack name", o.key)),
            }
        }
        for (id, _) in listed.iter().filter(|(id, _)| !index.has_pack(id)) {
            rep.warnings.push(format!(
                "{}: in no index (left by an interrupted snapshot or gc; gc removes it)",
                pack_key(id)
            ));
        }
        let primary = |pi: usize, e: &crate::pack::IndexEntry| {
            index
                .blobs
                .get(&e.id)
                .is_some_and(|l| l.pack as usize == pi)
        };
        for (pi, id) in index.packs.iter().enumerate() {
            let key = pack_key(id);
            let entries = &index.pack_entries[pi];
            let Some(&size) = listed.get(id) else {
                rep.errors
                    .push(format!("{key}: missing ({} blobs lost)", entries.len()));
                for e in entries.iter().filter(|e| primary(pi, e)) {
                    bad_blobs.insert(e.id, format!("pack {key} is missing"));
                }
                continue;
            };
            let data_end = size.saturating_sub(PACK_TRAILER_LEN as u64);
            let mut truncated = false;
            for e in entries.iter().filter(|e| primary(pi, e)) {
                if e.offset < PACK_HEADER_LEN as u64 || e.offset + u64::from(e.len) > data_end {
                    truncated = true;
                    bad_blobs.insert(e.id, format!("pack {key} is truncated"));
                }
            }
            if truncated {
                rep.errors.push(format!("{key}: truncated ({size} bytes)"));
                continue;
            }
            match read_pack_trailer(self.storage.as_ref(), &self.keys, &key, size) {
                Ok(mut own) => {
                    let mut theirs = entries.clone();
                    own.sort_by_key(|e| e.offset);
                    theirs.sort_by_key(|e| e.offset);
                    if own != theirs {
                        rep.errors.push(format!(
                            "{key}: its own index disagrees with the index objects"
                        ));
                    }
                }
                Err(e) => rep.errors.push(format!("{key}: {e}")),
            }
        }
        rep.packs_checked = index.packs.len() as u64;

        // Every referenced chunk must be indexed.
        for (_, layers) in &manifests {
            for (_, entries) in layers {
                for c in entries.iter().flat_map(|e| e.chunks.iter()) {
                    if !index.blobs.contains_key(&c.id) {
                        bad_blobs.insert(c.id, "chunk is in no index".into());
                    }
                }
            }
        }

        if read_data {
            let total = listed.values().sum::<u64>().max(1);
            let read = AtomicU64::new(0);
            let checked = AtomicU64::new(0);
            let found: Mutex<Vec<(BlobId, String)>> = Mutex::new(Vec::new());
            let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
            let work: Vec<usize> = (0..index.packs.len())
                .filter(|pi| listed.contains_key(&index.packs[*pi]))
                .collect();
            self.pool.install(|| {
                use rayon::prelude::*;
                work.par_iter().with_max_len(1).for_each(|&pi| {
                    let id = index.packs[pi];
                    let key = pack_key(&id);
                    let mut local = Vec::new();
                    match self.storage.get(&key) {
                        Err(e) => {
                            for e2 in index.pack_entries[pi].iter().filter(|e| primary(pi, e)) {
                                local.push((e2.id, format!("pack {key}: {e}")));
                            }
                        }
                        Ok(bytes) => {
                            if *blake3::hash(&bytes).as_bytes() != id {
                                if let Ok(mut er) = errors.lock() {
                                    er.push(format!(
                                        "{key}: content does not match its name (damaged)"
                                    ));
                                }
                            }
                            for e in index.pack_entries[pi].iter().filter(|e| primary(pi, e)) {
                                let lo = e.offset as usize;
                                let res = bytes
                                    .get(lo..lo + e.len as usize)
                                    .ok_or_else(|| "truncated".to_string())
                                    .and_then(|f| {
                                        open_blob(&self.keys, &e.id, f, e.raw_len).map(|_| ())
                                    });
                                checked.fetch_add(1, Ordering::Relaxed);
                                if let Err(why) = res {
                                    local.push((e.id, format!("pack {key}: {why}")));
                                }
                            }
                            let done = read.fetch_add(bytes.len() as u64, Ordering::Relaxed)
                                + bytes.len() as u64;
                            progress.update(
                                0.1 + 0.85 * (done as f32 / total as f32).min(1.0),
                                &format!("read {} of {} MiB", done >> 20, total >> 20),
                            );
                        }
                    }
                    if let Ok(mut f) = found.lock() {
                        f.extend(local);
                    }
                });
            });
            rep.bytes_read = read.load(Ordering::Relaxed);
            rep.blobs_checked = checked.load(Ordering::Relaxed);
            rep.errors.extend(errors.into_inner().unwrap_or_default());
            for (id, why) in found.into_inner().unwrap_or_default() {
                rep.errors.push(format!("blob {}: {why}", hex::encode(id)));
                bad_blobs.insert(id, why);
            }
        } else {
            rep.blobs_checked = index.blobs.len() as u64;
        }

        // Map damaged blobs to snapshots and files.
        if !bad_blobs.is_empty() {
            for (di, layers) in &manifests {
                let d = &docs[*di];
                let mut files = Vec::new();
                let mut reasons: HashSet<String> = HashSet::new();
                for (layer, entries) in layers {
                    for e in entries {
                        if let Some(why) = e.chunks.iter().find_map(|c| bad_blobs.get(&c.id)) {
                            reasons.insert(why.clone());
                            files.push(AffectedFile {
                                layer: layer.clone(),
                                path: PathBuf::from(OsStr::from_bytes(&e.path)),
                            });
                        }
                    }
                }
                if files.is_empty() {
                    continue;
                }
                let mut reasons: Vec<String> = reasons.into_iter().collect();
                reasons.sort();
                match damaged.iter_mut().find(|x| x.id == d.id) {
                    Some(x) => {
                        x.reasons.extend(reasons);
                        x.files.extend(files);
                    }
                    None => damaged.push(DamagedSnapshot {
                        id: d.id.clone(),
                        reasons,
                        files,
                    }),
                }
            }
        }
        rep.damaged_snapshots = damaged;
        progress.update(
            1.0,
            if rep.is_ok() {
                "vault is healthy"
            } else {
                "vault has damage"
            },
        );
        Ok(rep)
    }
}
