//! Taking a snapshot.
//!
//! The pipeline, on a pool of one thread per core plus a packer and two
//! uploader threads:
//!
//! ```text
//! walk + lstat (calling thread) ──spawn per file──► read, cut (FastCDC), hash (keyed BLAKE3),
//!   dedup, compress (zstd), encrypt (XChaCha20-Poly1305)   [pool]
//!        ──bounded channel──► packer (fills ~32 MiB packs) ──bounded──► 2 uploaders (put = fsync)
//! ```
//!
//! Files whose size, mtime, ctime and inode match the parent's entry reuse
//! its chunks unread. With a `changed_hint`, only the hinted paths are
//! looked at. A file whose post-read `fstat` differs from the stat it was
//! read with is read again (up to three times), then stored as last read and
//! reported.
//!
//! Commit order (crash safety): all packs durable → index object → snapshot
//! object (the commit point) → read back and check the root hash. A crash
//! before the snapshot object leaves only unreferenced packs/indexes that
//! nothing lists and gc removes.

use crate::blob::seal_blob;
use crate::crypto::{aad, BlobId};
use crate::error::{Result, StorageError, VaultError};
use crate::lock;
use crate::manifest::{self, path_cmp, ChunkRef, Entry, Kind, Time};
use crate::objects::{ChunkDoc, LayerDoc, SnapshotDoc, StatsDoc, FORMAT_VERSION};
use crate::pack::{pack_key, write_index, BlobKind, FinishedPack, Index, IndexEntry, PackWriter};
use crate::types::{SnapshotId, SnapshotRequest, SnapshotSummary};
use crate::vault::Vault;
use crate::walk::{join_rel, scan, Excludes, FileKind, Found, Stat};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use westtek_domain::ports::ProgressSink;

/// Files up to this size are read whole; larger ones are streamed.
const WHOLE_FILE_MAX: u64 = 16 * 1024 * 1024;
/// Segment size when streaming large files.
const SEGMENT: usize = 16 * 1024 * 1024;
/// Files at least this large are read as soon as the walk finds them.
const BIG_FILE: u64 = 1024 * 1024;
/// Attempts to read a file that keeps changing.
const READ_ATTEMPTS: usize = 3;
/// Packs in flight between the packer and the uploaders.
const UPLOADERS: usize = 2;

struct NewBlob {
    id: BlobId,
    kind: BlobKind,
    frame: Vec<u8>,
    raw_len: u32,
}

/// State shared by the workers, uploaders and progress reporter.
#[derive(Default)]
struct Shared {
    abort: AtomicBool,
    error: Mutex<Option<VaultError>>,
    bytes_read: AtomicU64,
    files_read: AtomicU64,
    bytes_to_read: AtomicU64,
    files_seen: AtomicU64,
}

impl Shared {
    fn fail(&self, e: VaultError) {
        self.abort.store(true, Ordering::SeqCst);
        if let Ok(mut slot) = self.error.lock() {
            if slot.is_none() {
                *slot = Some(e);
            }
        }
    }

    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    fn take_error(&self) -> Option<VaultError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

/// What the workers need; dropping it closes the channel to the packer.
struct Ctx<'a> {
    vault: &'a Vault,
    index: &'a Index,
    claimed: Mutex<HashSet<BlobId>>,
    blob_tx: Sender<NewBlob>,
    shared: &'a Shared,
}

impl Ctx<'_> {
    fn aborted(&self) -> bool {
        self.shared.aborted()
    }

    /// Hashes a chunk and, if the vault does not have it yet, compresses,
    /// encrypts and queues it for packing.
    fn store_chunk(&self, data: &[u8], kind: BlobKind) -> ChunkRef {
        let keys = &self.vault.keys;
        let id = keys.blob_id(data);
        let is_new = !self.index.blobs.contains_key(&id)
            && self
                .claimed
                .lock()
                .map(|mut s| s.insert(id))
                .unwrap_or(false);
        if is_new && !self.aborted() {
            let (frame, _) = seal_blob(keys, data, self.vault.config.compression.level);
            let blob = NewBlob {
                id,
                kind,
                frame,
                raw_len: data.len() as u32,
            };
            if self.blob_tx.send(blob).is_err() {
                self.shared
                    .fail(VaultError::Internal("packer stopped".into()));
            }
        }
        ChunkRef {
            id,
            len: data.len() as u32,
        }
    }

    fn store_cuts(&self, data: &[u8], cuts: &[(usize, usize)], kind: BlobKind) -> Vec<ChunkRef> {
        if cuts.len() <= 1 {
            return cuts
                .iter()
                .map(|(o, n)| self.store_chunk(&data[*o..*o + *n], kind))
                .collect();
        }
        use rayon::prelude::*;
        cuts.par_iter()
            .map(|(o, n)| self.store_chunk(&data[*o..*o + *n], kind))
            .collect()
    }
}

/// The result of reading one file.
enum ReadOutcome {
    Stored {
        chunks: Vec<ChunkRef>,
        stat: Stat,
        changed: bool,
        reusable: bool,
    },
    Skipped(String),
}

struct FileDone {
    layer: usize,
    idx: usize,
    abs: PathBuf,
    outcome: ReadOutcome,
}

thread_local! {
    static READ_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

fn now_time() -> Time {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Time {
        sec: d.as_secs() as i64,
        nsec: d.subsec_nanos(),
    }
}

/// Whether a file changed so recently before it was read that a later
/// change could keep the same timestamps (file-system clocks tick
/// coarsely): then the next snapshot must read it again.
fn racy(stat: &Stat, read_started: Time) -> bool {
    // File systems with 1-second timestamps show nsec == 0.
    let margin_ns: i128 = if stat.ctime.nsec == 0 {
        2_000_000_000
    } else {
        100_000_000
    };
    let ns = |t: Time| i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec);
    let newest = ns(stat.ctime).max(ns(stat.mtime));
    newest + margin_ns >= ns(read_started)
}

fn read_and_store(
    ctx: &Ctx<'_>,
    abs: &Path,
    expect_size: u64,
) -> std::io::Result<(Vec<ChunkRef>, Stat, u64)> {
    let mut f = File::open(abs)?;
    let chunker = &ctx.vault.data_chunker;
    if expect_size <= WHOLE_FILE_MAX {
        let mut buf = READ_BUF.with(|b| b.take());
        buf.clear();
        buf.reserve(expect_size as usize);
        // Exactly the expected size (one read for most files, no EOF
        // probe): a file that grew shows in the post-read fstat.
        let res = (&mut f).take(expect_size).read_to_end(&mut buf);
        let out = res.and_then(|n| {
            let post = Stat::from(&f.metadata()?);
            let cuts = chunker.cuts(&buf);
            Ok((ctx.store_cuts(&buf, &cuts, BlobKind::Data), post, n as u64))
        });
        if buf.capacity() <= 2 * WHOLE_FILE_MAX as usize {
            READ_BUF.with(|b| b.set(buf));
        }
        return out;
    }
    let max = chunker.max();
    let mut buf = vec![0u8; SEGMENT + max];
    let (mut len, mut eof, mut total) = (0usize, false, 0u64);
    let mut chunks = Vec::new();
    loop {
        while !eof && len < buf.len() {
            let n = f.read(&mut buf[len..])?;
            if n == 0 {
                eof = true;
            }
            len += n;
            total += n as u64;
        }
        let mut start = 0;
        let mut cuts = Vec::new();
        while start < len && (eof || len - start >= max) {
            let n = chunker.next_len(&buf[start..len]);
            cuts.push((start, n));
            start += n;
        }
        chunks.extend(ctx.store_cuts(&buf[..len], &cuts, BlobKind::Data));
        buf.copy_within(start..len, 0);
        len -= start;
        if ctx.aborted() || (eof && len == 0) {
            break;
        }
    }
    let post = Stat::from(&f.metadata()?);
    Ok((chunks, post, total))
}

fn process_file(ctx: &Ctx<'_>, abs: &Path, stat: Stat) -> ReadOutcome {
    let mut expected = stat;
    for attempt in 0..READ_ATTEMPTS {
        if ctx.aborted() {
            return ReadOutcome::Skipped("snapshot aborted".into());
        }
        let started = now_time();
        match read_and_store(ctx, abs, expected.size) {
            Ok((chunks, post, n)) => {
                ctx.shared.files_read.fetch_add(1, Ordering::Relaxed);
                ctx.shared.bytes_read.fetch_add(n, Ordering::Relaxed);
                let consistent = post.same_file(&expected) && n == post.size;
                if consistent || attempt + 1 == READ_ATTEMPTS {
                    let mut stat = post;
                    stat.size = n;
                    return ReadOutcome::Stored {
                        chunks,
                        stat,
                        changed: !consistent,
                        reusable: consistent && !racy(&post, started),
                    };
                }
                ctx.shared
                    .bytes_to_read
                    .fetch_add(post.size, Ordering::Relaxed);
                expected = post;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return ReadOutcome::Skipped("vanished while the snapshot ran".into())
            }
            Err(e) => return ReadOutcome::Skipped(format!("not readable: {e}")),
        }
    }
    ReadOutcome::Skipped("kept changing".into())
}

/// One layer being built.
struct LayerBuild {
    name: String,
    root: PathBuf,
    /// A partial layer's include starts (empty: the whole tree).
    include: Vec<String>,
    entries: Vec<Entry>,
    /// Entries taken unchanged from the parent in hint mode (merged later).
    kept: Vec<Entry>,
    /// Hard-link members: (member index in `entries`, link target).
    links: Vec<(usize, LinkTo)>,
    /// Per-entry removal marks (skipped files).
    removed: Vec<bool>,
    /// Indexes into `kept` of entries rescanned after all (hard-link
    /// partners of a file changed through another name); dropped from
    /// `kept` once links are resolved.
    promoted: HashSet<usize>,
}

#[derive(Clone, Copy)]
enum LinkTo {
    Scanned(usize),
    Kept(usize),
}

fn entry_from(found: &Found) -> Entry {
    let kind = match found.kind {
        FileKind::Dir => Kind::Dir,
        FileKind::File => Kind::File,
        FileKind::Symlink => Kind::Symlink,
        FileKind::Other(_) => Kind::Special(0),
    };
    let mut e = Entry::new(found.rel.clone(), kind);
    e.mode = found.stat.mode & 0o7777;
    e.uid = found.stat.uid;
    e.gid = found.stat.gid;
    e.mtime = found.stat.mtime;
    if kind == Kind::File {
        e.size = found.stat.size;
        e.ino = found.stat.ino;
        e.ctime = found.stat.ctime;
    }
    e.target.clone_from(&found.target);
    e
}

fn parent_reusable(p: &Entry, stat: &Stat) -> bool {
    p.kind == Kind::File
        && p.reusable
        && p.size == stat.size
        && p.mtime == stat.mtime
        && p.ctime == stat.ctime
        && p.ino == stat.ino
}

/// Relative form of a hint path for a layer root, if it lies in the layer.
fn hint_rel(root: &Path, hint: &Path) -> Option<Vec<u8>> {
    let rel: PathBuf = if hint.is_absolute() {
        hint.strip_prefix(root).ok()?.to_path_buf()
    } else {
        hint.to_path_buf()
    };
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(n.as_bytes());
            }
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// An include path as manifest bytes: relative, normal components only.
fn include_rel(inc: &str) -> Option<Vec<u8>> {
    if inc.is_empty() || inc.starts_with('/') || inc.contains('\0') {
        return None;
    }
    let mut out = Vec::new();
    for c in inc.split('/').filter(|c| !c.is_empty()) {
        if c == "." || c == ".." {
            return None;
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    (!out.is_empty()).then_some(out)
}

/// The starts of an include list (nested ones dropped) and the entries of
/// the directories leading to them, root included. Includes below a
/// symlink or a non-directory are reported in `skipped` and dropped.
fn include_plan(
    root: &Path,
    include: &[String],
    skipped: &mut Vec<(PathBuf, String)>,
) -> (Vec<Vec<u8>>, Vec<Entry>) {
    let mut starts: Vec<Vec<u8>> = include.iter().filter_map(|i| include_rel(i)).collect();
    starts.sort_by(|a, b| path_cmp(a, b));
    starts.dedup();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for s in starts {
        if !kept.iter().any(|o| manifest::is_under(&s, o)) {
            kept.push(s);
        }
    }
    let mut dirs: HashMap<Vec<u8>, Option<Entry>> = HashMap::new();
    let mut out = Vec::new();
    for s in kept {
        let mut ancestors: Vec<&[u8]> = vec![&s[..0]];
        for (i, b) in s.iter().enumerate() {
            if *b == b'/' {
                ancestors.push(&s[..i]);
            }
        }
        let mut ok = true;
        for a in ancestors {
            let entry = dirs.entry(a.to_vec()).or_insert_with(|| {
                let abs = join_rel(root, a);
                let meta = if a.is_empty() {
                    std::fs::metadata(&abs)
                } else {
                    std::fs::symlink_metadata(&abs)
                };
                meta.ok().filter(|m| m.is_dir()).map(|m| {
                    let st = Stat::from(&m);
                    let mut e = Entry::new(a.to_vec(), Kind::Dir);
                    e.mode = st.mode & 0o7777;
                    e.uid = st.uid;
                    e.gid = st.gid;
                    e.mtime = st.mtime;
                    e
                })
            });
            if entry.is_none() {
                ok = false;
                break;
            }
        }
        if ok {
            out.push(s);
        } else {
            let abs = join_rel(root, &s);
            if std::fs::symlink_metadata(&abs).is_ok() {
                skipped.push((abs, "below a symlink or a non-directory".into()));
            }
        }
    }
    let mut entries: Vec<Entry> = dirs.into_values().flatten().collect();
    entries.sort_by(|a, b| path_cmp(&a.path, &b.path));
    (out, entries)
}

fn validate_request(req: &SnapshotRequest) -> Result<()> {
    if req.layers.is_empty() {
        return Err(VaultError::InvalidRequest(
            "a snapshot needs at least one layer".into(),
        ));
    }
    let mut names = HashSet::new();
    for l in &req.layers {
        if l.name.is_empty() || l.name.contains('/') || l.name.len() > 255 {
            return Err(VaultError::InvalidRequest(format!(
                "invalid layer name {:?}",
                l.name
            )));
        }
        if !names.insert(&l.name) {
            return Err(VaultError::InvalidRequest(format!(
                "layer {:?} appears twice",
                l.name
            )));
        }
        for inc in &l.include {
            if include_rel(inc).is_none() {
                return Err(VaultError::InvalidRequest(format!(
                    "layer {}: include path {inc:?} is not a plain relative path",
                    l.name
                )));
            }
        }
        match std::fs::metadata(&l.root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(VaultError::InvalidRequest(format!(
                    "root of layer {} ({}) is not a directory",
                    l.name,
                    l.root.display()
                )))
            }
            Err(e) => return Err(VaultError::io("stat layer root", &l.root, e)),
        }
    }
    Ok(())
}

/// Lists a snapshot run collects besides the manifests.
#[derive(Default)]
struct Accum {
    skipped: Vec<(PathBuf, String)>,
    changed: Vec<PathBuf>,
    files_reused: u64,
}

/// A finished layer: its entries, manifest bytes and manifest chunks.
struct BuiltLayer {
    name: String,
    root: PathBuf,
    include: Vec<String>,
    entries: Vec<Entry>,
    manifest: Vec<u8>,
    chunks: Vec<ChunkRef>,
}

impl BuiltLayer {
    fn doc(&self) -> LayerDoc {
        let mut files = 0;
        let mut dirs = 0;
        let mut symlinks = 0;
        let mut hardlinked = 0;
        let mut logical = 0;
        let mut groups_seen = HashSet::new();
        for e in &self.entries {
            match e.kind {
                Kind::File => {
                    files += 1;
                    if e.hardlink != 0 {
                        hardlinked += 1;
                        if !groups_seen.insert(e.hardlink) {
                            continue;
                        }
                    }
                    logical += e.size;
                }
                Kind::Dir => dirs += 1,
                Kind::Symlink => symlinks += 1,
                Kind::Special(_) => {}
            }
        }
        LayerDoc {
            name: self.name.clone(),
            root: self.root.to_string_lossy().into_owned(),
            include: self.include.clone(),
            tree_hash: hex::encode(manifest::tree_hash(&self.entries)),
            manifest_hash: hex::encode(manifest::manifest_hash(&self.manifest)),
            manifest_bytes: self.manifest.len() as u64,
            manifest_chunks: self
                .chunks
                .iter()
                .map(|c| ChunkDoc {
                    id: hex::encode(c.id),
                    len: c.len,
                })
                .collect(),
            files,
            dirs,
            symlinks,
            hardlinked,
            logical_bytes: logical,
        }
    }
}

/// For hint mode: the subtrees to rescan, or `None` for a full walk. Each
/// hint is widened to its highest ancestor that is not a directory both on
/// disk and in the parent, so new or replaced directories get entries.
fn hint_starts(root: &Path, hints: &[PathBuf], parent: &[Entry]) -> Option<Vec<Vec<u8>>> {
    let parent_dirs: HashSet<&[u8]> = parent
        .iter()
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| e.path.as_slice())
        .collect();
    let mut starts = Vec::new();
    for h in hints {
        let Some(mut rel) = hint_rel(root, h) else {
            continue;
        };
        if rel.is_empty() {
            return None;
        }
        let mut end = 0;
        while let Some(i) = rel[end..].iter().position(|b| *b == b'/') {
            let anc = &rel[..end + i];
            let on_disk = std::fs::symlink_metadata(join_rel(root, anc))
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if !on_disk || !parent_dirs.contains(anc) {
                rel.truncate(end + i);
                break;
            }
            end += i + 1;
        }
        starts.push(rel);
    }
    starts.sort_by(|a, b| path_cmp(a, b));
    starts.dedup();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for s in starts {
        if !out.iter().any(|o| manifest::is_under(&s, o)) {
            out.push(s);
        }
    }
    Some(out)
}

/// Internal: a change hint missed the other names of a changed inode (in
/// another layer, or written through an excluded name); [`Vault::snapshot`]
/// walks every layer instead.
const HINT_TOO_NARROW: &str = "change hint too narrow: a hard-link partner was not rescanned";

/// Entries looked at under hinted paths for multi-link files no layer scans.
const UNSCANNED_SEARCH_MAX: usize = 200_000;

/// Multi-link files under the hinted paths that no layer rescans (excluded,
/// or outside every layer): a write through such a name changes the other
/// names, which may be kept. `None` when there are too many to look at.
fn unscanned_multi_links(
    req: &SnapshotRequest,
    hints: &[PathBuf],
    excludes: &[Excludes],
) -> Option<Vec<Stat>> {
    let scanned = |p: &Path| {
        req.layers
            .iter()
            .zip(excludes)
            .any(|(l, ex)| hint_rel(&l.root, p).is_some_and(|rel| !ex.is_excluded_or_under(&rel)))
    };
    let mut out = Vec::new();
    let mut budget = UNSCANNED_SEARCH_MAX;
    let mut stack: Vec<PathBuf> = hints.to_vec();
    while let Some(p) = stack.pop() {
        budget = budget.checked_sub(1)?;
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            // Descend even into scanned folders: an excluded one may be below.
            if let Ok(rd) = std::fs::read_dir(&p) {
                for e in rd.flatten() {
                    let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                    if is_dir || !scanned(&e.path()) {
                        stack.push(e.path());
                    }
                }
            }
        } else if m.is_file() && !scanned(&p) {
            let st = Stat::from(&m);
            if st.nlink > 1 {
                out.push(st);
            }
        }
    }
    Some(out)
}

/// Whether a multi-link file seen in one layer (or hinted, wherever it is)
/// is kept unread, with other stat data, under another name (a hint names
/// only the path written, which may be excluded or in another layer, and
/// kept entries are per layer).
fn links_changed_across_layers(builds: &[LayerBuild], multi_links: &[(usize, Stat)]) -> bool {
    if multi_links.is_empty() {
        return false;
    }
    for (li, lb) in builds.iter().enumerate() {
        // Promoted entries are rescanned in their own layer already.
        let kept: HashMap<u64, Vec<&Entry>> = lb
            .kept
            .iter()
            .enumerate()
            .filter(|(k, e)| e.kind == Kind::File && !lb.promoted.contains(k))
            .fold(HashMap::new(), |mut m, (_, e)| {
                m.entry(e.ino).or_default().push(e);
                m
            });
        if kept.is_empty() {
            continue;
        }
        for (lj, stat) in multi_links {
            if *lj == li {
                continue;
            }
            if let Some(es) = kept.get(&stat.ino) {
                if es.iter().any(|e| !parent_reusable(e, stat)) {
                    return true;
                }
            }
        }
    }
    false
}

fn copy_file_data(from: &Entry, to: &mut Entry) {
    to.size = from.size;
    to.chunks.clone_from(&from.chunks);
    to.reusable = from.reusable;
    to.ino = from.ino;
    to.ctime = from.ctime;
    to.mtime = from.mtime;
    to.mode = from.mode;
    to.uid = from.uid;
    to.gid = from.gid;
}

/// Numbers hard-link groups 1, 2, … in manifest order; a group left with a
/// single member is no group.
fn renumber_groups(entries: &mut [Entry]) {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for e in entries.iter().filter(|e| e.hardlink != 0) {
        *counts.entry(e.hardlink).or_default() += 1;
    }
    let mut remap: HashMap<u32, u32> = HashMap::new();
    let mut next = 1;
    for e in entries.iter_mut().filter(|e| e.hardlink != 0) {
        if counts.get(&e.hardlink).copied().unwrap_or(0) < 2 {
            e.hardlink = 0;
        } else {
            e.hardlink = *remap.entry(e.hardlink).or_insert_with(|| {
                next += 1;
                next - 1
            });
        }
    }
}

fn upload_loop(
    storage: &dyn crate::storage::Storage,
    rx: Receiver<FinishedPack>,
    written: &Mutex<Vec<(FinishedPack, u64)>>,
    shared: &Shared,
) {
    for p in rx {
        if shared.aborted() {
            continue;
        }
        let size = p.bytes.len() as u64;
        match storage.put(&pack_key(&p.id), &p.bytes) {
            // Same name = same bytes: the pack is already there.
            Ok(()) | Err(StorageError::AlreadyExists(_)) => {
                if let Ok(mut w) = written.lock() {
                    w.push((
                        FinishedPack {
                            id: p.id,
                            bytes: Vec::new(),
                            entries: p.entries,
                        },
                        size,
                    ));
                }
            }
            Err(e) => shared.fail(e.into()),
        }
    }
}

impl Vault {
    /// Takes a snapshot of the request's layers.
    ///
    /// # Errors
    /// [`VaultError::InvalidRequest`] (bad layer names or roots, unknown
    /// parent), [`VaultError::Locked`] (gc running past the lock timeout),
    /// storage errors (disk full…), [`VaultError::ReadBack`]. On any error
    /// no snapshot is listed and existing snapshots are untouched.
    pub fn snapshot(
        &self,
        req: &SnapshotRequest,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<SnapshotSummary> {
        match self.snapshot_once(req, Arc::clone(&progress)) {
            Err(VaultError::Internal(m)) if m == HINT_TOO_NARROW => {
                tracing::info!(
                    "a hard link across layers changed: walking every layer instead of the hint"
                );
                let mut full = req.clone();
                full.changed_hint = None;
                self.snapshot_once(&full, progress)
            }
            other => other,
        }
    }

    fn snapshot_once(
        &self,
        req: &SnapshotRequest,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<SnapshotSummary> {
        let started = Instant::now();
        let created_at = chrono::Utc::now();
        validate_request(req)?;
        let excludes = req
            .layers
            .iter()
            .map(|l| Excludes::new(&l.exclude))
            .collect::<Result<Vec<_>>>()?;
        progress.update(0.0, "opening vault");
        let _lock = lock::acquire(
            &self.storage,
            lock::LockKind::Shared,
            "snapshot",
            self.lock_timeout,
        )?;
        let index = self.load_index()?;

        let mut parent_layers: HashMap<String, Vec<Entry>> = HashMap::new();
        if let Some(pid) = &req.parent {
            let pdoc = self.read_doc(pid).map_err(|e| match e {
                VaultError::SnapshotNotFound(id) => {
                    VaultError::InvalidRequest(format!("parent snapshot {id} not found"))
                }
                e => e,
            })?;
            for l in &pdoc.layers {
                if req.layers.iter().any(|r| r.name == l.name) {
                    parent_layers.insert(l.name.clone(), self.read_manifest(&index, &pdoc, l)?);
                }
            }
        }

        let shared = Shared::default();
        let written: Mutex<Vec<(FinishedPack, u64)>> = Mutex::new(Vec::new());
        let (done_tx, done_rx) = bounded::<()>(0);
        let mut acc = Accum::default();
        let built = std::thread::scope(|ts| {
            let (blob_tx, blob_rx) = bounded::<NewBlob>(32);
            let (up_tx, up_rx) = bounded::<FinishedPack>(0);
            let keys = &*self.keys;
            let target = self.config.pack_target as usize;
            let packer = ts.spawn(move || packer_loop(keys, target, blob_rx, up_tx));
            for _ in 0..UPLOADERS {
                let rx = up_rx.clone();
                let (st, written, shared) = (self.storage.as_ref(), &written, &shared);
                ts.spawn(move || upload_loop(st, rx, written, shared));
            }
            drop(up_rx);
            {
                let (shared, done, prog) = (&shared, &done_rx, Arc::clone(&progress));
                ts.spawn(move || report_progress(shared, done, prog.as_ref()));
            }
            let ctx = Ctx {
                vault: self,
                index: &index,
                claimed: Mutex::new(HashSet::new()),
                blob_tx,
                shared: &shared,
            };
            let res = self.build_layers(req, &excludes, &parent_layers, &ctx, &mut acc);
            if res.is_err() {
                shared.abort.store(true, Ordering::SeqCst);
            }
            drop(ctx);
            drop(done_tx);
            if packer.join().is_err() {
                shared.fail(VaultError::Internal("packer thread panicked".into()));
            }
            res
        });
        if let Some(e) = shared.take_error() {
            return Err(e);
        }
        let built = built?;

        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "packs stored"
        );
        progress.update(0.92, "committing");
        let packs = written.into_inner().unwrap_or_default();
        let mut stored_added: u64 = packs.iter().map(|(_, s)| *s).sum();
        if !packs.is_empty() {
            let refs: Vec<(&[u8; 32], &[IndexEntry])> = packs
                .iter()
                .map(|(p, _)| (&p.id, p.entries.as_slice()))
                .collect();
            let (_, isize) = write_index(self.storage.as_ref(), &self.keys, &refs)?;
            stored_added += isize;
        }
        let layer_docs: Vec<LayerDoc> = built.iter().map(BuiltLayer::doc).collect();
        let root = manifest::root_hash(
            built
                .iter()
                .map(|b| (b.name.as_str(), manifest::tree_hash(&b.entries))),
        );
        let stats = StatsDoc {
            logical_bytes: layer_docs.iter().map(|l| l.logical_bytes).sum(),
            stored_bytes_added: stored_added,
            files: layer_docs.iter().map(|l| l.files).sum(),
            dirs: layer_docs.iter().map(|l| l.dirs).sum(),
            symlinks: layer_docs.iter().map(|l| l.symlinks).sum(),
            hardlinked: layer_docs.iter().map(|l| l.hardlinked).sum(),
            files_read: shared.files_read.load(Ordering::Relaxed),
            bytes_read: shared.bytes_read.load(Ordering::Relaxed),
            files_reused: acc.files_reused,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let doc = SnapshotDoc {
            version: FORMAT_VERSION,
            id: SnapshotId::new(),
            created_at,
            parent: req.parent.clone(),
            hostname: lock::hostname(),
            root_hash: hex::encode(root),
            layers: layer_docs,
            stats,
            skipped: acc
                .skipped
                .iter()
                .map(|(p, r)| (p.to_string_lossy().into_owned(), r.clone()))
                .collect(),
            changed_during_read: acc
                .changed
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            metadata: req.metadata.clone(),
        };
        let json = serde_json::to_vec(&doc)
            .map_err(|e| VaultError::Internal(format!("snapshot object: {e}")))?;
        let key = format!("snapshots/{}", doc.id);
        // The commit point: after this put the snapshot exists.
        self.storage
            .put(&key, &self.keys.seal(aad::SNAPSHOT, &[&json]))?;
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot committed"
        );
        progress.update(0.96, "reading the snapshot back");
        if let Err(e) = self.read_back(&doc, &built) {
            let _ = self.storage.delete(&key);
            return Err(e);
        }
        progress.update(1.0, "snapshot complete");
        let mut summary = doc.summary();
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// Reads the committed snapshot from storage and checks it against what
    /// was written: the object, every manifest's bytes and hash, the root
    /// hash, and that every chunk is in an index.
    fn read_back(&self, doc: &SnapshotDoc, built: &[BuiltLayer]) -> Result<()> {
        let fail = |d: String| VaultError::ReadBack {
            snapshot: doc.id.to_string(),
            detail: d,
        };
        let back = self.read_doc(&doc.id).map_err(|e| fail(e.to_string()))?;
        if back != *doc {
            return Err(fail("snapshot object differs from what was written".into()));
        }
        let index = self.load_index()?;
        let mut hashes = Vec::new();
        for (l, b) in back.layers.iter().zip(built) {
            let bytes = self
                .read_manifest_bytes(&index, &back, l)
                .map_err(|e| fail(e.to_string()))?;
            if bytes != b.manifest {
                return Err(fail(format!("manifest of layer {} differs", l.name)));
            }
            let entries = manifest::decode(&bytes).map_err(|e| fail(e.0))?;
            if hex::encode(manifest::tree_hash(&entries)) != l.tree_hash {
                return Err(fail(format!("tree hash of layer {} differs", l.name)));
            }
            hashes.push((l.name.as_str(), manifest::tree_hash(&entries)));
            for e in &b.entries {
                if let Some(c) = e.chunks.iter().find(|c| !index.blobs.contains_key(&c.id)) {
                    return Err(fail(format!(
                        "chunk {} of {}:{} is in no index",
                        hex::encode(c.id),
                        l.name,
                        String::from_utf8_lossy(&e.path)
                    )));
                }
            }
        }
        if hex::encode(manifest::root_hash(hashes)) != back.root_hash {
            return Err(fail("root hash mismatch".into()));
        }
        Ok(())
    }

    fn build_layers(
        &self,
        req: &SnapshotRequest,
        excludes: &[Excludes],
        parent_layers: &HashMap<String, Vec<Entry>>,
        ctx: &Ctx<'_>,
        acc: &mut Accum,
    ) -> Result<Vec<BuiltLayer>> {
        let (done_tx, done_rx) = unbounded::<FileDone>();
        let mut builds: Vec<LayerBuild> = Vec::new();
        let mut hint_mode = Vec::new();
        // First-seen names of multi-link files: (layer, stat). Hinted
        // multi-link files count for every layer (`usize::MAX`): the name
        // written may be excluded, or in another layer.
        let mut multi_links: Vec<(usize, Stat)> = Vec::new();
        if let Some(hints) = req.changed_hint.as_ref().filter(|_| req.parent.is_some()) {
            match unscanned_multi_links(req, hints, excludes) {
                Some(found) => multi_links.extend(found.into_iter().map(|st| (usize::MAX, st))),
                None => return Err(VaultError::Internal(HINT_TOO_NARROW.into())),
            }
        }
        let scanned: Result<()> = self.pool.in_place_scope(|s| {
            // Large files start as soon as they are found; small ones wait
            // for the end of the walk, so the long sequential parts of big
            // files (read, cut) overlap with everything else instead of
            // forming a single-threaded tail.
            let spawn = |layer: usize, idx: usize, abs: PathBuf, stat: Stat| {
                let tx = done_tx.clone();
                s.spawn(move |_| {
                    let outcome = process_file(ctx, &abs, stat);
                    let _ = tx.send(FileDone {
                        layer,
                        idx,
                        abs,
                        outcome,
                    });
                });
            };
            let mut small: Vec<(usize, usize, PathBuf, Stat)> = Vec::new();
            for (li, src) in req.layers.iter().enumerate() {
                let parent = parent_layers.get(&src.name);
                let mut lb = LayerBuild {
                    name: src.name.clone(),
                    root: src.root.clone(),
                    include: Vec::new(),
                    entries: Vec::new(),
                    kept: Vec::new(),
                    links: Vec::new(),
                    removed: Vec::new(),
                    promoted: HashSet::new(),
                };
                let mut included = None;
                if !src.include.is_empty() {
                    let (starts, dirs) = include_plan(&src.root, &src.include, &mut acc.skipped);
                    lb.entries = dirs;
                    lb.include = starts
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect();
                    included = Some(starts);
                }
                let starts = match (&req.changed_hint, parent, &included) {
                    (_, _, Some(_)) => None,
                    (Some(h), Some(p), None) => hint_starts(&src.root, h, p),
                    _ => None,
                };
                let mut kept_inodes: HashMap<u64, Vec<usize>> = HashMap::new();
                if let (Some(starts), Some(p)) = (&starts, parent) {
                    lb.kept = p
                        .iter()
                        .filter(|e| !starts.iter().any(|s| manifest::is_under(&e.path, s)))
                        .cloned()
                        .collect();
                    acc.files_reused +=
                        lb.kept.iter().filter(|e| e.kind == Kind::File).count() as u64;
                    for (k, e) in lb.kept.iter_mut().enumerate() {
                        if e.kind == Kind::File {
                            kept_inodes.entry(e.ino).or_default().push(k);
                        }
                        // Directories above a rescanned path: fresh metadata.
                        if e.kind == Kind::Dir
                            && starts.iter().any(|s| manifest::is_under(s, &e.path))
                        {
                            let abs = join_rel(&src.root, &e.path);
                            let m = if e.path.is_empty() {
                                std::fs::metadata(&abs)
                            } else {
                                std::fs::symlink_metadata(&abs)
                            };
                            if let Ok(m) = m {
                                let st = Stat::from(&m);
                                e.mode = st.mode & 0o7777;
                                e.uid = st.uid;
                                e.gid = st.gid;
                                e.mtime = st.mtime;
                            }
                        }
                    }
                }
                hint_mode.push(starts.is_some() || included.is_some());
                let starts = included.or(starts).unwrap_or_else(|| vec![Vec::new()]);
                let parent_map: HashMap<&[u8], &Entry> = parent
                    .map(|p| p.iter().map(|e| (e.path.as_slice(), e)).collect())
                    .unwrap_or_default();
                let mut inodes: HashMap<(u64, u64), usize> = HashMap::new();
                let mut specials: Vec<(PathBuf, String)> = Vec::new();
                let mut scan_skips: Vec<(PathBuf, String)> = Vec::new();
                let mut queue: std::collections::VecDeque<Vec<u8>> = starts.into();
                while let Some(start) = queue.pop_front() {
                    if excludes[li].is_excluded_or_under(&start) {
                        continue;
                    }
                    let found = self.walk_pool.install(|| {
                        let mut v = Vec::new();
                        scan(
                            &src.root,
                            &start,
                            &excludes[li],
                            &mut scan_skips,
                            &mut |f| v.push(f),
                        )
                        .map(|()| v)
                    })?;
                    for f in found {
                        ctx.shared.files_seen.fetch_add(1, Ordering::Relaxed);
                        if let FileKind::Other(reason) = f.kind {
                            specials.push((f.abs, reason.to_string()));
                            continue;
                        }
                        let idx = lb.entries.len();
                        lb.entries.push(entry_from(&f));
                        if f.kind != FileKind::File {
                            continue;
                        }
                        if f.stat.nlink > 1 {
                            if let Some(&first) = inodes.get(&(f.stat.dev, f.stat.ino)) {
                                lb.links.push((idx, LinkTo::Scanned(first)));
                                continue;
                            }
                            if let Some(ks) = kept_inodes.get(&f.stat.ino) {
                                let k = ks[0];
                                if !lb.promoted.contains(&k)
                                    && parent_reusable(&lb.kept[k], &f.stat)
                                {
                                    lb.links.push((idx, LinkTo::Kept(k)));
                                    continue;
                                }
                                // Changed through this name (a hint names only
                                // the path written): the other names of the
                                // inode are stale too, so rescan them.
                                for &j in ks {
                                    if lb.promoted.insert(j) {
                                        queue.push_back(lb.kept[j].path.clone());
                                    }
                                }
                            }
                            inodes.insert((f.stat.dev, f.stat.ino), idx);
                            multi_links.push((li, f.stat));
                        }
                        if let Some(p) = parent_map
                            .get(f.rel.as_slice())
                            .filter(|p| parent_reusable(p, &f.stat))
                        {
                            let e = &mut lb.entries[idx];
                            e.chunks.clone_from(&p.chunks);
                            e.reusable = true;
                            acc.files_reused += 1;
                            continue;
                        }
                        ctx.shared
                            .bytes_to_read
                            .fetch_add(f.stat.size, Ordering::Relaxed);
                        if f.stat.size >= BIG_FILE {
                            spawn(li, idx, f.abs, f.stat);
                        } else {
                            small.push((li, idx, f.abs, f.stat));
                        }
                    }
                }
                acc.skipped.extend(scan_skips);
                acc.skipped.extend(specials);
                builds.push(lb);
            }
            tracing::debug!("walk finished");
            for (li, idx, abs, stat) in small {
                spawn(li, idx, abs, stat);
            }
            Ok(())
        });
        drop(done_tx);
        tracing::debug!("files read");
        scanned?;
        if hint_mode.iter().any(|h| *h) && links_changed_across_layers(&builds, &multi_links) {
            return Err(VaultError::Internal(HINT_TOO_NARROW.into()));
        }
        if ctx.aborted() {
            return Err(VaultError::Internal("snapshot aborted".into()));
        }
        for lb in &mut builds {
            lb.removed = vec![false; lb.entries.len()];
        }
        for d in done_rx.try_iter() {
            let lb = &mut builds[d.layer];
            match d.outcome {
                ReadOutcome::Stored {
                    chunks,
                    stat,
                    changed,
                    reusable,
                } => {
                    let e = &mut lb.entries[d.idx];
                    e.chunks = chunks;
                    e.size = stat.size;
                    e.mtime = stat.mtime;
                    e.ctime = stat.ctime;
                    e.ino = stat.ino;
                    e.mode = stat.mode & 0o7777;
                    e.uid = stat.uid;
                    e.gid = stat.gid;
                    e.reusable = reusable;
                    if changed {
                        acc.changed.push(d.abs);
                    }
                }
                ReadOutcome::Skipped(reason) => {
                    lb.removed[d.idx] = true;
                    acc.skipped.push((d.abs, reason));
                }
            }
        }

        let mut out = Vec::new();
        for (lb, hinted) in builds.into_iter().zip(hint_mode) {
            let LayerBuild {
                name,
                root,
                include,
                mut entries,
                mut kept,
                links,
                mut removed,
                promoted,
            } = lb;
            let mut next_group = kept.iter().map(|e| e.hardlink).max().unwrap_or(0) + 1;
            for (member, to) in links {
                let src = match to {
                    LinkTo::Scanned(first) => {
                        if removed[first] {
                            removed[member] = true;
                            acc.skipped.push((
                                join_rel(&root, &entries[member].path),
                                "hard-link partner could not be read".into(),
                            ));
                            continue;
                        }
                        if entries[first].hardlink == 0 {
                            entries[first].hardlink = next_group;
                            next_group += 1;
                        }
                        entries[first].clone()
                    }
                    LinkTo::Kept(k) => {
                        if kept[k].hardlink == 0 {
                            kept[k].hardlink = next_group;
                            next_group += 1;
                        }
                        kept[k].clone()
                    }
                };
                let m = &mut entries[member];
                copy_file_data(&src, m);
                m.hardlink = src.hardlink;
            }
            let mut i = 0;
            entries.retain(|_| {
                i += 1;
                !removed[i - 1]
            });
            if !promoted.is_empty() {
                acc.files_reused = acc.files_reused.saturating_sub(promoted.len() as u64);
                let mut j = 0;
                kept.retain(|_| {
                    j += 1;
                    !promoted.contains(&(j - 1))
                });
            }
            if hinted {
                entries.append(&mut kept);
                entries.sort_by(|a, b| path_cmp(&a.path, &b.path));
                entries.dedup_by(|a, b| a.path == b.path);
            }
            renumber_groups(&mut entries);
            let bytes = manifest::encode(&entries);
            let cuts = self.tree_chunker.cuts(&bytes);
            let chunks = ctx.store_cuts(&bytes, &cuts, BlobKind::Tree);
            out.push(BuiltLayer {
                name,
                root,
                include,
                entries,
                manifest: bytes,
                chunks,
            });
        }
        Ok(out)
    }
}
fn packer_loop(
    keys: &crate::crypto::Keys,
    target: usize,
    rx: Receiver<NewBlob>,
    tx: Sender<FinishedPack>,
) {
    let mut data = PackWriter::new(target + 4 * 1024 * 1024);
    let mut tree = PackWriter::new(1024 * 1024);
    for b in rx {
        let w = match b.kind {
            BlobKind::Data => &mut data,
            BlobKind::Tree => &mut tree,
        };
        w.add(b.id, b.kind, &b.frame, b.raw_len);
        if w.len() >= target {
            let cap = if b.kind == BlobKind::Data {
                target + 4 * 1024 * 1024
            } else {
                1024 * 1024
            };
            let full = std::mem::replace(w, PackWriter::new(cap));
            if tx.send(full.finish(keys)).is_err() {
                return;
            }
        }
    }
    // Manifests stay in packs of their own even when small: a damaged data
    // pack then still leaves the manifest to say which files it affects.
    for w in [data, tree] {
        if !w.is_empty() && tx.send(w.finish(keys)).is_err() {
            return;
        }
    }
}

fn report_progress(ctx: &Shared, done: &Receiver<()>, progress: &dyn ProgressSink) {
    // Wakes every 200 ms, and at once when the sender is dropped.
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        done.recv_timeout(Duration::from_millis(200))
    {
        let total = ctx.bytes_to_read.load(Ordering::Relaxed).max(1);
        let read = ctx.bytes_read.load(Ordering::Relaxed);
        let frac = 0.9 * (read as f32 / total as f32).min(1.0);
        progress.update(
            frac,
            &format!(
                "{} entries scanned, read {} of {} MiB",
                ctx.files_seen.load(Ordering::Relaxed),
                read >> 20,
                total >> 20
            ),
        );
    }
}
