//! Packs and indexes.
//!
//! A pack is `header ‖ blob frames ‖ pack-index frame ‖ trailer`; each blob
//! is its own encrypted frame (so a single blob can be fetched with a ranged
//! read), the pack index lists the blobs and makes a pack self-describing,
//! and the pack's name is the BLAKE3 hash of its bytes. Index objects
//! (`index/…`) repeat the pack indexes of many packs so opening a vault
//! reads a few small objects instead of the tail of every pack.

use crate::codec::{put_uvarint, DResult, DecodeError, Reader};
use crate::crypto::{aad, BlobId, Keys};
use crate::error::{Result, StorageError, VaultError};
use crate::storage::Storage;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub(crate) const PACK_MAGIC: &[u8; 4] = b"WTPK";
pub(crate) const PACK_VERSION: u8 = 1;
pub(crate) const PACK_HEADER_LEN: usize = 8;
pub(crate) const PACK_TRAILER_MAGIC: &[u8; 4] = b"WTPI";
pub(crate) const PACK_TRAILER_LEN: usize = 8;
const PACK_INDEX_MAGIC: &[u8; 4] = b"WTPX";
const INDEX_MAGIC: &[u8; 4] = b"WTIX";
const INDEX_VERSION: u8 = 1;

/// Codec byte at the start of a blob's plaintext.
pub(crate) const CODEC_RAW: u8 = 0;
pub(crate) const CODEC_ZSTD: u8 = 1;

/// What a blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BlobKind {
    /// File content.
    Data,
    /// A piece of a manifest.
    Tree,
}

impl BlobKind {
    fn code(self) -> u8 {
        match self {
            BlobKind::Data => 0,
            BlobKind::Tree => 1,
        }
    }
    fn from_code(c: u8) -> DResult<Self> {
        match c {
            0 => Ok(BlobKind::Data),
            1 => Ok(BlobKind::Tree),
            c => Err(DecodeError(format!("unknown blob type {c}"))),
        }
    }
}

/// One blob in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub id: BlobId,
    pub kind: BlobKind,
    /// Offset of the blob's frame in the pack.
    pub offset: u64,
    /// Length of the frame (nonce + ciphertext + tag).
    pub len: u32,
    /// Length of the plaintext content (after decompression).
    pub raw_len: u32,
}

pub(crate) fn pack_key(id: &[u8; 32]) -> String {
    let h = hex::encode(id);
    format!("data/{}/{}", &h[..2], h)
}

/// The pack id named by a `data/xx/<hex>` key.
pub(crate) fn pack_id_of_key(key: &str) -> Option<[u8; 32]> {
    let name = key.strip_prefix("data/")?.split('/').nth(1)?;
    let v = hex::decode(name).ok()?;
    v.try_into().ok()
}

fn put_entries(out: &mut Vec<u8>, entries: &[IndexEntry]) {
    put_uvarint(out, entries.len() as u64);
    for e in entries {
        out.extend_from_slice(&e.id);
        out.push(e.kind.code());
        put_uvarint(out, e.offset);
        put_uvarint(out, u64::from(e.len));
        put_uvarint(out, u64::from(e.raw_len));
    }
}

fn read_entries(r: &mut Reader<'_>) -> DResult<Vec<IndexEntry>> {
    let n = r.count(36)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(IndexEntry {
            id: r.array32()?,
            kind: BlobKind::from_code(r.u8()?)?,
            offset: r.uvarint()?,
            len: r.u32v()?,
            raw_len: r.u32v()?,
        });
    }
    Ok(v)
}

/// Builds one pack in memory.
pub(crate) struct PackWriter {
    buf: Vec<u8>,
    entries: Vec<IndexEntry>,
}

/// A finished pack, ready to store.
pub(crate) struct FinishedPack {
    pub id: [u8; 32],
    pub bytes: Vec<u8>,
    pub entries: Vec<IndexEntry>,
}

impl PackWriter {
    pub(crate) fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(PACK_MAGIC);
        buf.extend_from_slice(&[PACK_VERSION, 0, 0, 0]);
        PackWriter {
            buf,
            entries: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends an encrypted blob frame.
    pub(crate) fn add(&mut self, id: BlobId, kind: BlobKind, frame: &[u8], raw_len: u32) {
        self.entries.push(IndexEntry {
            id,
            kind,
            offset: self.buf.len() as u64,
            len: frame.len() as u32,
            raw_len,
        });
        self.buf.extend_from_slice(frame);
    }

    pub(crate) fn finish(mut self, keys: &Keys) -> FinishedPack {
        let mut idx = Vec::with_capacity(self.entries.len() * 48 + 8);
        idx.extend_from_slice(PACK_INDEX_MAGIC);
        idx.push(PACK_VERSION);
        put_entries(&mut idx, &self.entries);
        let frame = keys.seal(aad::PACK_INDEX, &[&idx]);
        self.buf.extend_from_slice(&frame);
        self.buf
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(PACK_TRAILER_MAGIC);
        FinishedPack {
            id: *blake3::hash(&self.buf).as_bytes(),
            bytes: self.buf,
            entries: self.entries,
        }
    }
}

/// Decodes the pack index from a pack's tail frame.
pub(crate) fn decode_pack_index(keys: &Keys, frame: &[u8]) -> DResult<Vec<IndexEntry>> {
    let pt = keys
        .open(aad::PACK_INDEX, frame)
        .ok_or_else(|| DecodeError("pack index does not authenticate".into()))?;
    let mut r = Reader::new(&pt);
    if r.take(4)? != PACK_INDEX_MAGIC || r.u8()? != PACK_VERSION {
        return Err(DecodeError("bad pack index header".into()));
    }
    let v = read_entries(&mut r)?;
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes in pack index".into()));
    }
    Ok(v)
}

/// Reads a pack's own index with two ranged reads (trailer, then frame).
pub(crate) fn read_pack_trailer(
    storage: &dyn Storage,
    keys: &Keys,
    key: &str,
    size: u64,
) -> Result<Vec<IndexEntry>> {
    let bad = |d: String| VaultError::corrupt(format!("pack {key}"), d);
    if size < (PACK_HEADER_LEN + PACK_TRAILER_LEN) as u64 {
        return Err(bad(format!("only {size} bytes (truncated)")));
    }
    let t = storage.get_range(key, size - PACK_TRAILER_LEN as u64, PACK_TRAILER_LEN as u64)?;
    if &t[4..8] != PACK_TRAILER_MAGIC {
        return Err(bad("no pack trailer (truncated or overwritten)".into()));
    }
    let flen = u64::from(u32::from_le_bytes([t[0], t[1], t[2], t[3]]));
    if flen + (PACK_HEADER_LEN + PACK_TRAILER_LEN) as u64 > size {
        return Err(bad("pack index length exceeds the pack".into()));
    }
    let frame = storage.get_range(key, size - PACK_TRAILER_LEN as u64 - flen, flen)?;
    decode_pack_index(keys, &frame).map_err(|e| bad(e.0))
}

/// Encodes an index object's plaintext.
pub(crate) fn encode_index(packs: &[(&[u8; 32], &[IndexEntry])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(INDEX_MAGIC);
    out.push(INDEX_VERSION);
    put_uvarint(&mut out, packs.len() as u64);
    for (id, entries) in packs {
        out.extend_from_slice(*id);
        put_entries(&mut out, entries);
    }
    out
}

type IndexPacks = Vec<([u8; 32], Vec<IndexEntry>)>;

pub(crate) fn decode_index(pt: &[u8]) -> DResult<IndexPacks> {
    let mut r = Reader::new(pt);
    if r.take(4)? != INDEX_MAGIC {
        return Err(DecodeError("not an index (bad magic)".into()));
    }
    let v = r.u8()?;
    if v != INDEX_VERSION {
        return Err(DecodeError(format!("unsupported index version {v}")));
    }
    let n = r.count(33)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.array32()?;
        out.push((id, read_entries(&mut r)?));
    }
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes in index".into()));
    }
    Ok(out)
}

/// Hashes blob ids by their first 8 bytes: ids are keyed BLAKE3 outputs,
/// uniformly distributed and not chosen by an attacker without the key.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its bytes (arrays hash without a length prefix).
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

pub(crate) type IdMap<V> = HashMap<BlobId, V, BuildHasherDefault<IdHasher>>;

/// Where a blob is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlobLoc {
    pub pack: u32,
    pub offset: u64,
    pub len: u32,
    pub raw_len: u32,
}

/// All index objects of a vault, merged.
#[derive(Default)]
pub(crate) struct Index {
    pub packs: Vec<[u8; 32]>,
    pub pack_entries: Vec<Vec<IndexEntry>>,
    pack_pos: HashMap<[u8; 32], u32>,
    pub blobs: IdMap<BlobLoc>,
    /// Keys of the index objects this was loaded from.
    pub objects: Vec<String>,
    /// Index objects that could not be read, with the reason.
    pub problems: Vec<(String, String)>,
}

impl Index {
    /// Adds a pack's entries; a blob already known elsewhere keeps its first
    /// location (both copies are valid).
    pub(crate) fn add_pack(&mut self, id: [u8; 32], entries: Vec<IndexEntry>) {
        if self.pack_pos.contains_key(&id) {
            return;
        }
        let pos = self.packs.len() as u32;
        self.packs.push(id);
        self.pack_pos.insert(id, pos);
        for e in &entries {
            self.blobs.entry(e.id).or_insert(BlobLoc {
                pack: pos,
                offset: e.offset,
                len: e.len,
                raw_len: e.raw_len,
            });
        }
        self.pack_entries.push(entries);
    }

    pub(crate) fn has_pack(&self, id: &[u8; 32]) -> bool {
        self.pack_pos.contains_key(id)
    }

    /// Loads every `index/` object.
    pub(crate) fn load(storage: &dyn Storage, keys: &Keys) -> Result<Index> {
        let mut objs = storage.list("index/")?;
        objs.sort_by(|a, b| a.key.cmp(&b.key));
        let loaded: Vec<_> = {
            use rayon::prelude::*;
            objs.par_iter()
                .map(|o| (o.key.clone(), read_index_object(storage, keys, &o.key)))
                .collect()
        };
        let mut idx = Index::default();
        for (key, res) in loaded {
            match res {
                Ok(packs) => {
                    for (id, entries) in packs {
                        idx.add_pack(id, entries);
                    }
                    idx.objects.push(key);
                }
                // Deleted by a concurrent garbage collection after listing:
                // its packs are in the new index that was written before.
                Err(VaultError::Storage(StorageError::NotFound(_))) => {}
                Err(e) => idx.problems.push((key, e.to_string())),
            }
        }
        Ok(idx)
    }
}

pub(crate) fn read_index_object(
    storage: &dyn Storage,
    keys: &Keys,
    key: &str,
) -> Result<IndexPacks> {
    let raw = storage.get(key)?;
    let pt = keys
        .open(aad::INDEX, &raw)
        .ok_or_else(|| VaultError::corrupt(key, "does not authenticate (damaged or foreign)"))?;
    decode_index(&pt).map_err(|e| VaultError::corrupt(key, e.0))
}

/// Writes an index object for these packs; returns its key and size.
pub(crate) fn write_index(
    storage: &dyn Storage,
    keys: &Keys,
    packs: &[(&[u8; 32], &[IndexEntry])],
) -> Result<(String, u64)> {
    let frame = keys.seal(aad::INDEX, &[&encode_index(packs)]);
    let key = format!("index/{}", hex::encode(blake3::hash(&frame).as_bytes()));
    storage.put(&key, &frame)?;
    Ok((key, frame.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    #[test]
    fn a_pack_describes_itself_in_its_trailer() {
        let keys = Keys::derive(&MasterKey::generate());
        let mut w = PackWriter::new(1024);
        let f1 = keys.seal(aad::BLOB, &[&[CODEC_RAW], b"abc"]);
        w.add([1; 32], BlobKind::Data, &f1, 3);
        w.add([2; 32], BlobKind::Tree, &f1, 3);
        let p = w.finish(&keys);
        let dir = tempfile::tempdir().unwrap();
        let s = crate::storage::LocalStorage::new(dir.path());
        let key = pack_key(&p.id);
        s.put(&key, &p.bytes).unwrap();
        let back = read_pack_trailer(&s, &keys, &key, p.bytes.len() as u64).unwrap();
        assert_eq!(back, p.entries);
        assert_eq!(pack_id_of_key(&key), Some(p.id));
        assert_eq!(back[1].offset, (PACK_HEADER_LEN + f1.len()) as u64);
    }

    #[test]
    fn an_index_round_trips() {
        let e = IndexEntry {
            id: [9; 32],
            kind: BlobKind::Tree,
            offset: 8,
            len: 100,
            raw_len: 60,
        };
        let enc = encode_index(&[(&[5; 32], &[e][..])]);
        assert_eq!(decode_index(&enc).unwrap(), vec![([5; 32], vec![e])]);
        for n in 0..enc.len() {
            assert!(decode_index(&enc[..n]).is_err());
        }
    }
}
