//! Tree manifests: one per layer, a sorted list of entries (path, type,
//! metadata, content chunks), encoded in a compact binary form that
//! `docs/VAULT-FORMAT.md` specifies byte for byte. The manifest bytes are
//! hashed with BLAKE3; the snapshot's root hash combines the layers' hashes.

use crate::codec::{put_bytes, put_ivarint, put_uvarint, DResult, DecodeError, Reader};
use crate::crypto::BlobId;
use std::cmp::Ordering;

pub(crate) const MANIFEST_MAGIC: &[u8; 4] = b"WTMF";
pub(crate) const MANIFEST_VERSION: u8 = 1;
const MAX_PATH: usize = 64 * 1024;

/// The type of an entry as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    /// Codes 4–7 (FIFO, character device, block device, socket) are
    /// reserved: never written, refused by restore.
    Special(u8),
}

impl Kind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::Dir => 1,
            Kind::File => 2,
            Kind::Symlink => 3,
            Kind::Special(c) => c,
        }
    }
}

/// A chunk of a file: its id and plaintext length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkRef {
    pub id: BlobId,
    pub len: u32,
}

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord)]
pub(crate) struct Time {
    pub sec: i64,
    pub nsec: u32,
}

/// One manifest entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Relative path, `/`-separated raw bytes; empty for the layer root.
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Time,
    /// Files: size in bytes.
    pub size: u64,
    /// Files: whether `ino`/`ctime` may be trusted to detect changes (false
    /// when the file changed too close to the moment it was read).
    pub reusable: bool,
    pub ino: u64,
    pub ctime: Time,
    /// Files: hard-link group within the layer (0 = none).
    pub hardlink: u32,
    pub chunks: Vec<ChunkRef>,
    /// Symlinks: the target, raw bytes.
    pub target: Vec<u8>,
}

impl Entry {
    pub(crate) fn new(path: Vec<u8>, kind: Kind) -> Self {
        Entry {
            path,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: Time::default(),
            size: 0,
            reusable: false,
            ino: 0,
            ctime: Time::default(),
            hardlink: 0,
            chunks: Vec::new(),
            target: Vec::new(),
        }
    }
}

/// Orders paths component by component (a parent before its children,
/// siblings by name bytes): byte order with `/` sorting lowest.
pub(crate) fn path_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let key = |c: u8| if c == b'/' { 0u8 } else { c };
    for (x, y) in a.iter().zip(b.iter()) {
        let (x, y) = (key(*x), key(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Whether `path` is `dir` or inside it.
pub(crate) fn is_under(path: &[u8], dir: &[u8]) -> bool {
    dir.is_empty()
        || (path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/'))
}

/// Encodes entries (already sorted by [`path_cmp`]).
pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
    encode_inner(entries, true)
}

/// The tree hash of a layer: BLAKE3 (derive-key mode, context
/// `"westtek-vault v1 tree"`) of the manifest encoding *without* the
/// change-detection fields (`flags`, `ino`, `ctime`), so it depends only on
/// what a restore reproduces.
pub(crate) fn tree_hash(entries: &[Entry]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("westtek-vault v1 tree");
    h.update(&encode_inner(entries, false));
    *h.finalize().as_bytes()
}

fn encode_inner(entries: &[Entry], fingerprint: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 96 + 16);
    out.extend_from_slice(MANIFEST_MAGIC);
    out.push(MANIFEST_VERSION);
    put_uvarint(&mut out, entries.len() as u64);
    for e in entries {
        out.push(e.kind.code());
        put_bytes(&mut out, &e.path);
        put_uvarint(&mut out, u64::from(e.mode));
        put_uvarint(&mut out, u64::from(e.uid));
        put_uvarint(&mut out, u64::from(e.gid));
        put_ivarint(&mut out, e.mtime.sec);
        put_uvarint(&mut out, u64::from(e.mtime.nsec));
        match e.kind {
            Kind::File => {
                put_uvarint(&mut out, e.size);
                if fingerprint {
                    put_uvarint(&mut out, u64::from(e.reusable));
                    put_uvarint(&mut out, e.ino);
                    put_ivarint(&mut out, e.ctime.sec);
                    put_uvarint(&mut out, u64::from(e.ctime.nsec));
                }
                put_uvarint(&mut out, u64::from(e.hardlink));
                put_uvarint(&mut out, e.chunks.len() as u64);
                for c in &e.chunks {
                    out.extend_from_slice(&c.id);
                    put_uvarint(&mut out, u64::from(c.len));
                }
            }
            Kind::Symlink => put_bytes(&mut out, &e.target),
            Kind::Dir | Kind::Special(_) => {}
        }
    }
    out
}

/// Decodes a manifest. Structural checks only (lengths, known type codes,
/// chunk lengths adding up to the size); path safety is checked by restore.
pub(crate) fn decode(buf: &[u8]) -> DResult<Vec<Entry>> {
    let mut r = Reader::new(buf);
    if r.take(4)? != MANIFEST_MAGIC {
        return Err(DecodeError("not a manifest (bad magic)".into()));
    }
    let v = r.u8()?;
    if v != MANIFEST_VERSION {
        return Err(DecodeError(format!("unsupported manifest version {v}")));
    }
    let n = r.count(8)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let code = r.u8()?;
        let kind = match code {
            1 => Kind::Dir,
            2 => Kind::File,
            3 => Kind::Symlink,
            4..=7 => Kind::Special(code),
            c => return Err(DecodeError(format!("unknown entry type {c}"))),
        };
        let mut e = Entry::new(r.bytes(MAX_PATH)?.to_vec(), kind);
        e.mode = r.u32v()?;
        e.uid = r.u32v()?;
        e.gid = r.u32v()?;
        e.mtime = Time {
            sec: r.ivarint()?,
            nsec: r.u32v()?,
        };
        match kind {
            Kind::File => {
                e.size = r.uvarint()?;
                e.reusable = r.uvarint()? & 1 == 1;
                e.ino = r.uvarint()?;
                e.ctime = Time {
                    sec: r.ivarint()?,
                    nsec: r.u32v()?,
                };
                e.hardlink = r.u32v()?;
                let nc = r.count(33)?;
                e.chunks.reserve_exact(nc);
                let mut total: u64 = 0;
                for _ in 0..nc {
                    let id = r.array32()?;
                    let len = r.u32v()?;
                    total += u64::from(len);
                    e.chunks.push(ChunkRef { id, len });
                }
                if total != e.size {
                    return Err(DecodeError(format!(
                        "entry {:?}: chunks add up to {total} bytes, size says {}",
                        String::from_utf8_lossy(&e.path),
                        e.size
                    )));
                }
            }
            Kind::Symlink => e.target = r.bytes(MAX_PATH)?.to_vec(),
            Kind::Dir | Kind::Special(_) => {}
        }
        entries.push(e);
    }
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes after the last entry".into()));
    }
    Ok(entries)
}

/// The hash of a layer's manifest bytes.
pub(crate) fn manifest_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// The Merkle root of a snapshot: each layer's leaf is
/// `BLAKE3-derive_key("westtek-vault v1 layer", len(name) u32 LE ‖ name ‖ tree hash)`;
/// the root is `BLAKE3-derive_key("westtek-vault v1 root", leaf₁ ‖ leaf₂ ‖ …)`
/// over the layers in snapshot order.
pub(crate) fn root_hash<'a>(layers: impl IntoIterator<Item = (&'a str, [u8; 32])>) -> [u8; 32] {
    let mut root = blake3::Hasher::new_derive_key("westtek-vault v1 root");
    for (name, mh) in layers {
        let mut leaf = blake3::Hasher::new_derive_key("westtek-vault v1 layer");
        leaf.update(&(name.len() as u32).to_le_bytes());
        leaf.update(name.as_bytes());
        leaf.update(&mh);
        root.update(leaf.finalize().as_bytes());
    }
    *root.finalize().as_bytes()
}

/// Why a path may not be restored, if it may not.
pub(crate) fn unsafe_path_reason(path: &[u8]) -> Option<&'static str> {
    if path.is_empty() {
        return None;
    }
    if path[0] == b'/' {
        return Some("absolute path");
    }
    if path.contains(&0) {
        return Some("NUL byte in path");
    }
    for comp in path.split(|b| *b == b'/') {
        match comp {
            b"" => return Some("empty path component"),
            b"." => return Some("`.` path component"),
            b".." => return Some("`..` path component escapes the target"),
            _ => {}
        }
    }
    None
}

/// The parent of a non-empty relative path (`""` for top-level entries).
pub(crate) fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        let mut root = Entry::new(vec![], Kind::Dir);
        root.mode = 0o755;
        let mut f = Entry::new(b"a b/\xc3\xa9t\xc3\xa9.txt".to_vec(), Kind::File);
        f.size = 5;
        f.mtime = Time {
            sec: -5,
            nsec: 999_999_999,
        };
        f.chunks = vec![ChunkRef {
            id: [7; 32],
            len: 5,
        }];
        f.hardlink = 3;
        f.reusable = true;
        let mut l = Entry::new(b"link".to_vec(), Kind::Symlink);
        l.target = b"/abs/target".to_vec();
        vec![root, f, l]
    }

    #[test]
    fn a_manifest_round_trips() {
        let m = sample();
        assert_eq!(decode(&encode(&m)).unwrap(), m);
    }

    #[test]
    fn the_tree_hash_ignores_change_detection_fields_only() {
        let m = sample();
        let mut n = m.clone();
        n[1].ino = 99;
        n[1].reusable = false;
        n[1].ctime.sec = 42;
        assert_eq!(tree_hash(&m), tree_hash(&n));
        assert_ne!(manifest_hash(&encode(&m)), manifest_hash(&encode(&n)));
        n[1].mtime.nsec = 1;
        assert_ne!(tree_hash(&m), tree_hash(&n));
    }

    #[test]
    fn chunks_that_do_not_add_up_to_the_size_are_corrupt() {
        let mut m = sample();
        m[1].size = 6;
        assert!(decode(&encode(&m)).is_err());
    }

    #[test]
    fn every_truncation_of_a_manifest_is_an_error() {
        let b = encode(&sample());
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn paths_sort_parents_first_then_children_by_name() {
        let mut v: Vec<&[u8]> = vec![b"a-c", b"a/b", b"a", b"", b"a/b/c", b"b"];
        v.sort_by(|x, y| path_cmp(x, y));
        assert_eq!(v, vec![&b""[..], b"a", b"a/b", b"a/b/c", b"a-c", b"b"]);
    }

    #[test]
    fn escaping_paths_are_named() {
        assert!(unsafe_path_reason(b"../x").is_some());
        assert!(unsafe_path_reason(b"a/../../x").is_some());
        assert!(unsafe_path_reason(b"/etc/passwd").is_some());
        assert!(unsafe_path_reason(b"a//b").is_some());
        assert!(unsafe_path_reason(b"a/./b").is_some());
        assert!(unsafe_path_reason(b"a/..b/c").is_none());
    }

    #[test]
    fn the_root_hash_depends_on_layer_names_order_and_manifests() {
        let a = root_hash([("env", [1; 32]), ("home", [2; 32])]);
        assert_ne!(a, root_hash([("home", [2; 32]), ("env", [1; 32])]));
        assert_ne!(a, root_hash([("env", [1; 32]), ("home", [3; 32])]));
        assert_ne!(a, root_hash([("en", [1; 32]), ("vhome", [2; 32])]));
        assert_eq!(a, root_hash([("env", [1; 32]), ("home", [2; 32])]));
    }
}
