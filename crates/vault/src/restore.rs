//! Restoring a snapshot.
//!
//! Order: validate every manifest entry of every requested layer (nothing is
//! written if one is unsafe) → make each target match the snapshot's tree
//! shape (entries not in the snapshot, or of another type, are removed;
//! existing files and symlinks are unlinked, never written through, so a
//! file hard-linked elsewhere — e.g. into uv's cache — is never modified) →
//! create directories → write file contents pack by pack in parallel (each
//! pack read once; every chunk authenticated, decompressed and checked
//! against its keyed hash; files get mode, owner when root, and mtime as
//! their last chunk lands) → hard links → symlinks → directory modes and
//! mtimes, deepest first.
//!
//! Safety: entries must be relative, free of `.`/`..`/empty components,
//! sorted, and have a directory entry as parent (so nothing is ever written
//! below a symlink); FIFOs, devices and sockets are refused. Files are
//! created with `O_EXCL|O_NOFOLLOW`.
//!
//! Damaged or missing data does not stop the restore: everything else is
//! restored, the affected files are removed, and the error names them.

use crate::error::{AffectedFile, Result, VaultError};
use crate::manifest::{self, is_under, parent_of, path_cmp, unsafe_path_reason, Entry, Kind};
use crate::pack::{pack_key, Index};
use crate::types::{LayerRestore, RestoreReport, RestoreRequest, SnapshotId, SnapshotSummary};
use crate::vault::Vault;
use crate::walk::join_rel;
use filetime::FileTime;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use westtek_domain::ports::ProgressSink;

thread_local! {
    /// Decompression buffer reused across blobs.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Reads ranges of a pack instead of the whole pack when less than this
/// fraction of it is needed.
const WHOLE_PACK_FRACTION: f64 = 0.5;
/// Neighbouring blobs closer than this are fetched in one ranged read.
const RANGE_GAP: u64 = 256 * 1024;

impl RestoreRequest {
    /// Every layer of a snapshot back to the root it was taken from.
    pub fn to_original_roots(summary: &SnapshotSummary, verify: bool) -> Self {
        RestoreRequest {
            targets: summary
                .layers
                .iter()
                .map(|l| (l.name.clone(), l.root.clone()))
                .collect(),
            verify,
        }
    }
}

fn unsafe_entry(
    snapshot: &SnapshotId,
    layer: &str,
    path: &[u8],
    reason: impl Into<String>,
) -> VaultError {
    VaultError::UnsafeEntry {
        snapshot: snapshot.to_string(),
        layer: layer.to_string(),
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// Refuses manifests that could write outside the target or create special
/// files.
pub(crate) fn validate_entries(
    snapshot: &SnapshotId,
    layer: &str,
    entries: &[Entry],
) -> Result<()> {
    let Some(first) = entries.first() else {
        return Err(unsafe_entry(
            snapshot,
            layer,
            b"",
            "manifest has no root directory",
        ));
    };
    if !first.path.is_empty() || first.kind != Kind::Dir {
        return Err(unsafe_entry(
            snapshot,
            layer,
            &first.path,
            "manifest does not start with the root directory",
        ));
    }
    let mut dirs: HashSet<&[u8]> = HashSet::from([&b""[..]]);
    let mut symlinks: Vec<&[u8]> = Vec::new();
    let mut groups: HashMap<u32, &Entry> = HashMap::new();
    let mut prev: &[u8] = b"";
    for e in &entries[1..] {
        let p = e.path.as_slice();
        if p.is_empty() {
            return Err(unsafe_entry(snapshot, layer, p, "second root entry"));
        }
        if let Some(r) = unsafe_path_reason(p) {
            return Err(unsafe_entry(snapshot, layer, p, r));
        }
        if path_cmp(prev, p) != std::cmp::Ordering::Less {
            return Err(unsafe_entry(
                snapshot,
                layer,
                p,
                "entries out of order or duplicated",
            ));
        }
        prev = p;
        if !dirs.contains(parent_of(p)) {
            if let Some(s) = symlinks.iter().find(|s| is_under(p, s)) {
                return Err(unsafe_entry(
                    snapshot,
                    layer,
                    p,
                    format!(
                        "would be written through the symlink {:?}",
                        String::from_utf8_lossy(s)
                    ),
                ));
            }
            return Err(unsafe_entry(
                snapshot,
                layer,
                p,
                "its parent directory is not in the manifest",
            ));
        }
        match e.kind {
            Kind::Special(_) => {
                return Err(unsafe_entry(
                    snapshot,
                    layer,
                    p,
                    "device files, FIFOs and sockets are never restored",
                ))
            }
            Kind::Dir => {
                dirs.insert(p);
            }
            Kind::Symlink => {
                if e.target.is_empty() || e.target.contains(&0) {
                    return Err(unsafe_entry(snapshot, layer, p, "invalid symlink target"));
                }
                symlinks.push(p);
            }
            Kind::File => {
                if e.hardlink != 0 {
                    if let Some(f) = groups.get(&e.hardlink) {
                        if f.chunks != e.chunks {
                            return Err(unsafe_entry(
                                snapshot,
                                layer,
                                p,
                                "hard-link group members differ in content",
                            ));
                        }
                    } else {
                        groups.insert(e.hardlink, e);
                    }
                }
            }
        }
    }
    Ok(())
}

fn remove_any(path: &Path, is_dir: bool) -> std::io::Result<()> {
    if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Makes `target` hold only names the manifest has, with matching types;
/// unlinks files and symlinks that will be rewritten. For a partial layer
/// (`include` not empty) only the included subtrees are made to match:
/// nothing else in the folders leading to them is touched (restoring an
/// interpreter's closure to `/` must not remove the rest of the system).
fn prune(
    target: &Path,
    entries: &[Entry],
    include: &[Vec<u8>],
    other_roots: &[PathBuf],
    removed: &mut Vec<PathBuf>,
    overwritten: &mut Vec<PathBuf>,
) -> Result<()> {
    match fs::metadata(target) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(VaultError::InvalidRequest(format!(
                "restore target {} exists and is not a directory",
                target.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(target)
                .map_err(|e| VaultError::io("create directory", target, e))?;
            return Ok(());
        }
        Err(e) => return Err(VaultError::io("stat", target, e)),
    }
    let kinds: HashMap<&[u8], Kind> = entries
        .iter()
        .map(|e| (e.path.as_slice(), e.kind))
        .collect();
    let mut stack: Vec<(Vec<u8>, PathBuf)> = vec![(Vec::new(), target.to_path_buf())];
    while let Some((rel, abs)) = stack.pop() {
        let rd = fs::read_dir(&abs).map_err(|e| VaultError::io("list", &abs, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| VaultError::io("list", &abs, e))?;
            let cabs = ent.path();
            if other_roots.iter().any(|r| r == &cabs) {
                continue;
            }
            let mut crel = rel.clone();
            if !crel.is_empty() {
                crel.push(b'/');
            }
            crel.extend_from_slice(ent.file_name().as_bytes());
            let ft = ent
                .file_type()
                .map_err(|e| VaultError::io("stat", &cabs, e))?;
            let is_dir = ft.is_dir();
            let in_scope = include.is_empty() || include.iter().any(|i| is_under(&crel, i));
            if !in_scope && !kinds.contains_key(crel.as_slice()) {
                continue; // outside a partial layer's paths: not ours
            }
            match kinds.get(crel.as_slice()) {
                Some(Kind::Dir) if is_dir => {
                    // Keep it, writable for us until modes are set at the end.
                    let m = fs::symlink_metadata(&cabs)
                        .map_err(|e| VaultError::io("stat", &cabs, e))?;
                    if m.permissions().mode() & 0o700 != 0o700 {
                        fs::set_permissions(&cabs, fs::Permissions::from_mode(0o700))
                            .map_err(|e| VaultError::io("chmod", &cabs, e))?;
                    }
                    stack.push((crel, cabs));
                }
                Some(Kind::File | Kind::Symlink) if !is_dir => {
                    fs::remove_file(&cabs).map_err(|e| VaultError::io("remove", &cabs, e))?;
                    overwritten.push(cabs);
                }
                _ => {
                    remove_any(&cabs, is_dir).map_err(|e| VaultError::io("remove", &cabs, e))?;
                    removed.push(cabs);
                }
            }
        }
    }
    Ok(())
}

/// One regular file to write (the first member of a hard-link group, or a
/// file without links).
struct FileTask {
    layer: usize,
    entry: usize,
    abs: PathBuf,
    remaining: AtomicU32,
    /// Whether the file has been created (guards creation and writes).
    created: Mutex<bool>,
}

/// One blob to fetch and where its content goes.
struct PlannedBlob {
    id: [u8; 32],
    offset: u64,
    len: u32,
    raw_len: u32,
    targets: Vec<(usize, u64)>,
}

struct Restorer<'a> {
    vault: &'a Vault,
    manifests: &'a [Vec<Entry>],
    tasks: Vec<FileTask>,
    as_root: bool,
    bytes_done: AtomicU64,
    bytes_total: u64,
    damaged: Mutex<Vec<(usize, String)>>,
    progress: &'a dyn ProgressSink,
}

fn ft(t: manifest::Time) -> FileTime {
    FileTime::from_unix_time(t.sec, t.nsec)
}

impl Restorer<'_> {
    fn entry(&self, task: &FileTask) -> &Entry {
        &self.manifests[task.layer][task.entry]
    }

    fn mark_damaged(&self, task: usize, why: String) {
        if let Ok(mut d) = self.damaged.lock() {
            d.push((task, why));
        }
    }

    fn finalize_file(&self, f: &File, e: &Entry) -> std::io::Result<()> {
        if self.as_root {
            std::os::unix::fs::fchown(f, Some(e.uid), Some(e.gid))?;
        }
        f.set_permissions(fs::Permissions::from_mode(e.mode & 0o7777))?;
        filetime::set_file_handle_times(f, None, Some(ft(e.mtime)))
    }

    fn write_chunk(&self, ti: usize, data: &[u8], off: u64) -> std::io::Result<()> {
        let task = &self.tasks[ti];
        let mut created = task
            .created
            .lock()
            .map_err(|_| std::io::Error::other("poisoned file lock"))?;
        let mut opts = OpenOptions::new();
        opts.write(true).custom_flags(nix::libc::O_NOFOLLOW);
        if !*created {
            opts.create_new(true).mode(0o600);
        }
        let f = opts.open(&task.abs)?;
        *created = true;
        f.write_all_at(data, off)?;
        if task.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finalize_file(&f, self.entry(task))?;
        }
        Ok(())
    }

    fn create_empty(&self, ti: usize) -> std::io::Result<()> {
        let task = &self.tasks[ti];
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&task.abs)?;
        self.finalize_file(&f, self.entry(task))
    }

    fn restore_pack(&self, pack_key: &str, pack_size: Option<u64>, blobs: &[PlannedBlob]) {
        let fail_all = |why: String| {
            for b in blobs {
                for (t, _) in &b.targets {
                    self.mark_damaged(*t, why.clone());
                }
            }
        };
        let needed: u64 = blobs.iter().map(|b| u64::from(b.len)).sum();
        let whole = pack_size.is_some_and(|s| needed as f64 >= s as f64 * WHOLE_PACK_FRACTION);
        // Groups of blobs fetched together: (start, end, blob range).
        let mut groups: Vec<(u64, u64, std::ops::Range<usize>)> = Vec::new();
        if whole {
            groups.push((0, pack_size.unwrap_or(0), 0..blobs.len()));
        } else {
            let mut i = 0;
            while i < blobs.len() {
                let start = blobs[i].offset;
                let mut end = start + u64::from(blobs[i].len);
                let mut j = i + 1;
                while j < blobs.len() && blobs[j].offset <= end + RANGE_GAP {
                    end = end.max(blobs[j].offset + u64::from(blobs[j].len));
                    j += 1;
                }
                groups.push((start, end, i..j));
                i = j;
            }
        }
        for (start, end, range) in groups {
            let mut bytes = match self.vault.storage.get_range(pack_key, start, end - start) {
                Ok(b) => b,
                Err(crate::error::StorageError::NotFound(_)) => {
                    fail_all(format!("pack {pack_key} is missing"));
                    return;
                }
                Err(e) => {
                    for b in &blobs[range] {
                        for (t, _) in &b.targets {
                            self.mark_damaged(*t, format!("pack {pack_key}: {e}"));
                        }
                    }
                    continue;
                }
            };
            // Split the buffer into the blobs' frames (sorted, disjoint) so
            // they decrypt in place, in parallel.
            let mut frames: Vec<(&PlannedBlob, Option<&mut [u8]>)> =
                Vec::with_capacity(range.len());
            let mut rest: &mut [u8] = &mut bytes;
            let mut pos = start;
            for b in &blobs[range] {
                let skip = (b.offset.saturating_sub(pos)) as usize;
                let len = b.len as usize;
                if b.offset < pos || rest.len() < skip + len {
                    frames.push((b, None));
                    continue;
                }
                let (_, tail) = std::mem::take(&mut rest).split_at_mut(skip);
                let (frame, tail) = tail.split_at_mut(len);
                rest = tail;
                pos = b.offset + len as u64;
                frames.push((b, Some(frame)));
            }
            use rayon::prelude::*;
            frames
                .into_par_iter()
                .with_min_len(8)
                .for_each(|(b, frame)| {
                    let Some(frame) = frame else {
                        for (t, _) in &b.targets {
                            self.mark_damaged(*t, format!("pack {pack_key} is truncated"));
                        }
                        return;
                    };
                    let mut scratch = SCRATCH.with(|c| c.take());
                    match crate::blob::open_blob_in_place(
                        &self.vault.keys,
                        &b.id,
                        frame,
                        b.raw_len,
                        &mut scratch,
                    ) {
                        Ok(data) => {
                            for (t, off) in &b.targets {
                                if let Err(e) = self.write_chunk(*t, data, *off) {
                                    self.mark_damaged(
                                        *t,
                                        format!("writing {}: {e}", self.tasks[*t].abs.display()),
                                    );
                                }
                            }
                            let n = data.len() as u64 * b.targets.len() as u64;
                            let done = self.bytes_done.fetch_add(n, Ordering::Relaxed);
                            let frac = 0.05 + 0.85 * (done as f32 / self.bytes_total.max(1) as f32);
                            if done >> 24 != (done + n) >> 24 {
                                self.progress
                                    .update(frac.min(0.9), &format!("restored {} MiB", done >> 20));
                            }
                        }
                        Err(why) => {
                            for (t, _) in &b.targets {
                                self.mark_damaged(*t, format!("pack {pack_key}: {why}"));
                            }
                        }
                    }
                    SCRATCH.with(|c| c.set(scratch));
                });
        }
    }
}

impl Vault {
    /// Restores layers of a snapshot into target directories.
    ///
    /// A target ends up holding exactly the layer's tree: entries that are
    /// not in the snapshot are removed (another requested target nested
    /// inside is left alone), existing files and symlinks are replaced; the
    /// report lists both. Works offline: it needs only the vault.
    ///
    /// # Errors
    /// [`VaultError::SnapshotNotFound`], [`VaultError::InvalidRequest`]
    /// (unknown layer, target not a directory), [`VaultError::UnsafeEntry`]
    /// (before anything is written), [`VaultError::Damaged`] naming the
    /// files whose data is damaged or missing (everything else is restored),
    /// I/O errors.
    pub fn restore(
        &self,
        id: &SnapshotId,
        req: &RestoreRequest,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<RestoreReport> {
        let started = Instant::now();
        progress.update(0.0, "reading snapshot");
        let doc = self.read_doc(id)?;
        if req.targets.is_empty() {
            return Err(VaultError::InvalidRequest(
                "restore needs at least one (layer, target)".into(),
            ));
        }
        let mut layers = Vec::new();
        for (name, target) in &req.targets {
            let l = doc.layers.iter().find(|l| &l.name == name).ok_or_else(|| {
                VaultError::InvalidRequest(format!("snapshot {id} has no layer {name:?}"))
            })?;
            if layers.iter().any(|(n, _, _): &(&String, _, _)| *n == name) {
                return Err(VaultError::InvalidRequest(format!(
                    "layer {name:?} named twice"
                )));
            }
            if target.as_os_str().is_empty() {
                return Err(VaultError::InvalidRequest(format!(
                    "empty target for layer {name}"
                )));
            }
            layers.push((name, target.clone(), l));
        }
        let _lock = self.shared_lock("restore")?;
        let index = self.load_index()?;
        let manifests: Vec<Vec<Entry>> = layers
            .iter()
            .map(|(_, _, l)| self.read_manifest(&index, &doc, l))
            .collect::<Result<_>>()?;
        for ((name, _, _), m) in layers.iter().zip(&manifests) {
            validate_entries(id, name, m)?;
        }

        // Shape every target.
        progress.update(0.02, "preparing targets");
        let includes: Vec<Vec<Vec<u8>>> = layers
            .iter()
            .map(|(_, _, l)| l.include.iter().map(|i| i.as_bytes().to_vec()).collect())
            .collect();
        // Folders leading to a partial layer's paths that already exist keep
        // their owner, mode and times.
        let mut existing_ancestors: Vec<HashSet<Vec<u8>>> = Vec::new();
        for (li, (_, target, _)) in layers.iter().enumerate() {
            let mut set = HashSet::new();
            if !includes[li].is_empty() {
                for e in manifests[li].iter().filter(|e| e.kind == Kind::Dir) {
                    let ancestor_only = !includes[li].iter().any(|i| is_under(&e.path, i));
                    if ancestor_only && join_rel(target, &e.path).is_dir() {
                        set.insert(e.path.clone());
                    }
                }
            }
            existing_ancestors.push(set);
        }
        let roots: Vec<PathBuf> = layers.iter().map(|(_, t, _)| t.clone()).collect();
        let mut removed = Vec::new();
        let mut overwritten = Vec::new();
        for (li, (_, target, _)) in layers.iter().enumerate() {
            let others: Vec<PathBuf> = roots
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != li)
                .map(|(_, r)| r.clone())
                .collect();
            prune(
                target,
                &manifests[li],
                &includes[li],
                &others,
                &mut removed,
                &mut overwritten,
            )?;
            let mut db = fs::DirBuilder::new();
            db.mode(0o700);
            for e in manifests[li]
                .iter()
                .filter(|e| e.kind == Kind::Dir && !e.path.is_empty())
            {
                let abs = join_rel(target, &e.path);
                match db.create(&abs) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(err) => return Err(VaultError::io("create directory", abs, err)),
                }
            }
        }

        // Plan file contents.
        let as_root = nix::unistd::geteuid().is_root();
        let mut tasks = Vec::new();
        let mut links: Vec<(usize, usize, usize)> = Vec::new(); // (layer, entry, first task)
        let mut empty = Vec::new();
        let mut by_pack: HashMap<u32, Vec<PlannedBlob>> = HashMap::new();
        let mut blob_slot: HashMap<[u8; 32], (u32, usize)> = HashMap::new();
        let mut missing: Vec<(usize, String)> = Vec::new();
        let mut bytes_total = 0u64;
        for (li, (_, target, _)) in layers.iter().enumerate() {
            let mut group_first: HashMap<u32, usize> = HashMap::new();
            for (ei, e) in manifests[li].iter().enumerate() {
                if e.kind != Kind::File {
                    continue;
                }
                if e.hardlink != 0 {
                    if let Some(&t) = group_first.get(&e.hardlink) {
                        links.push((li, ei, t));
                        continue;
                    }
                    group_first.insert(e.hardlink, tasks.len());
                }
                let ti = tasks.len();
                tasks.push(FileTask {
                    layer: li,
                    entry: ei,
                    abs: join_rel(target, &e.path),
                    remaining: AtomicU32::new(e.chunks.len() as u32),
                    created: Mutex::new(false),
                });
                bytes_total += e.size;
                if e.chunks.is_empty() {
                    empty.push(ti);
                }
                let mut off = 0u64;
                for c in &e.chunks {
                    match index.blobs.get(&c.id) {
                        None => missing.push((ti, "chunk is in no index (missing)".into())),
                        Some(loc) => {
                            let (pack, pos) = *blob_slot.entry(c.id).or_insert_with(|| {
                                let v = by_pack.entry(loc.pack).or_default();
                                v.push(PlannedBlob {
                                    id: c.id,
                                    offset: loc.offset,
                                    len: loc.len,
                                    raw_len: loc.raw_len,
                                    targets: Vec::new(),
                                });
                                (loc.pack, v.len() - 1)
                            });
                            if let Some(v) = by_pack.get_mut(&pack) {
                                v[pos].targets.push((ti, off));
                            }
                        }
                    }
                    off += u64::from(c.len);
                }
            }
        }
        let restorer = Restorer {
            vault: self,
            manifests: &manifests,
            tasks,
            as_root,
            bytes_done: AtomicU64::new(0),
            bytes_total,
            damaged: Mutex::new(missing),
            progress: progress.as_ref(),
        };
        for ti in empty {
            if let Err(e) = restorer.create_empty(ti) {
                restorer.mark_damaged(
                    ti,
                    format!("creating {}: {e}", restorer.tasks[ti].abs.display()),
                );
            }
        }
        let pack_sizes = pack_sizes(self, &index)?;
        let mut packs: Vec<(u32, Vec<PlannedBlob>)> = by_pack.into_iter().collect();
        for (_, blobs) in &mut packs {
            blobs.sort_by_key(|b| b.offset);
        }
        // Bigger packs first keeps both threads busy until the end.
        packs.sort_by_key(|(p, blobs)| (std::cmp::Reverse(blobs.len()), *p));
        self.pool.install(|| {
            use rayon::prelude::*;
            packs.par_iter().with_max_len(1).for_each(|(p, blobs)| {
                let id = index.packs[*p as usize];
                restorer.restore_pack(&pack_key(&id), pack_sizes.get(&id).copied(), blobs);
            });
        });

        // Hard links, symlinks, directory metadata.
        progress.update(0.92, "links and directory metadata");
        let damaged_tasks: HashSet<usize> = restorer
            .damaged
            .lock()
            .map(|d| d.iter().map(|(t, _)| *t).collect())
            .unwrap_or_default();
        let mut report_layers: Vec<LayerRestore> = layers
            .iter()
            .map(|(name, target, _)| LayerRestore {
                layer: (*name).clone(),
                target: target.clone(),
                files: 0,
                dirs: 0,
                symlinks: 0,
                hardlinks: 0,
                bytes: 0,
            })
            .collect();
        let mut link_damage = Vec::new();
        for (li, ei, first) in &links {
            let abs = join_rel(&layers[*li].1, &manifests[*li][*ei].path);
            if damaged_tasks.contains(first) {
                link_damage.push((
                    *li,
                    manifests[*li][*ei].path.clone(),
                    "hard-link partner damaged".to_string(),
                ));
                continue;
            }
            fs::hard_link(&restorer.tasks[*first].abs, &abs)
                .map_err(|e| VaultError::io("hard link", &abs, e))?;
            report_layers[*li].hardlinks += 1;
        }
        for (li, (_, target, _)) in layers.iter().enumerate() {
            let rl = &mut report_layers[li];
            for e in &manifests[li] {
                let abs = join_rel(target, &e.path);
                match e.kind {
                    Kind::Symlink => {
                        std::os::unix::fs::symlink(OsStr::from_bytes(&e.target), &abs)
                            .map_err(|err| VaultError::io("create symlink", &abs, err))?;
                        if as_root {
                            std::os::unix::fs::lchown(&abs, Some(e.uid), Some(e.gid))
                                .map_err(|err| VaultError::io("chown", &abs, err))?;
                        }
                        filetime::set_symlink_file_times(&abs, ft(e.mtime), ft(e.mtime))
                            .map_err(|err| VaultError::io("set times", &abs, err))?;
                        rl.symlinks += 1;
                    }
                    Kind::File => {
                        rl.files += 1;
                        rl.bytes += e.size;
                    }
                    Kind::Dir => rl.dirs += 1,
                    Kind::Special(_) => {}
                }
            }
            for e in manifests[li]
                .iter()
                .rev()
                .filter(|e| e.kind == Kind::Dir && !existing_ancestors[li].contains(&e.path))
            {
                let abs = join_rel(target, &e.path);
                if as_root {
                    std::os::unix::fs::lchown(&abs, Some(e.uid), Some(e.gid))
                        .map_err(|err| VaultError::io("chown", &abs, err))?;
                }
                fs::set_permissions(&abs, fs::Permissions::from_mode(e.mode & 0o7777))
                    .map_err(|err| VaultError::io("chmod", &abs, err))?;
                filetime::set_file_mtime(&abs, ft(e.mtime))
                    .map_err(|err| VaultError::io("set times", &abs, err))?;
            }
        }

        // Damage: remove the affected files, name them.
        let damaged = restorer.damaged.into_inner().unwrap_or_default();
        if !damaged.is_empty() || !link_damage.is_empty() {
            let mut files: Vec<AffectedFile> = Vec::new();
            let mut seen = HashSet::new();
            let mut reasons: Vec<String> = Vec::new();
            for (t, why) in &damaged {
                let task = &restorer.tasks[*t];
                if seen.insert(*t) {
                    let _ = fs::remove_file(&task.abs);
                    files.push(AffectedFile {
                        layer: layers[task.layer].0.clone(),
                        path: PathBuf::from(OsStr::from_bytes(
                            &manifests[task.layer][task.entry].path,
                        )),
                    });
                }
                if !reasons.contains(why) {
                    reasons.push(why.clone());
                }
            }
            for (li, path, _) in link_damage {
                files.push(AffectedFile {
                    layer: layers[li].0.clone(),
                    path: PathBuf::from(OsStr::from_bytes(&path)),
                });
            }
            let mut detail = reasons
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            if reasons.len() > 3 {
                detail.push_str(&format!("; and {} more", reasons.len() - 3));
            }
            return Err(VaultError::Damaged {
                snapshot: id.to_string(),
                files,
                detail,
            });
        }

        if req.verify {
            progress.update(0.95, "verifying restored files");
            // Folders that led to a partial layer's paths and were there
            // before keep their own metadata: not checked.
            let checked: Vec<Vec<Entry>> = manifests
                .iter()
                .zip(&existing_ancestors)
                .map(|(m, keep)| {
                    m.iter()
                        .filter(|e| !keep.contains(&e.path))
                        .cloned()
                        .collect()
                })
                .collect();
            self.verify_restored(
                id,
                &layers
                    .iter()
                    .map(|(n, t, _)| ((*n).clone(), t.clone()))
                    .collect::<Vec<_>>(),
                &checked,
            )?;
        }
        progress.update(1.0, "restore complete");
        let sum = |f: fn(&LayerRestore) -> u64| report_layers.iter().map(f).sum::<u64>();
        Ok(RestoreReport {
            snapshot: id.clone(),
            files: sum(|l| l.files),
            dirs: sum(|l| l.dirs),
            symlinks: sum(|l| l.symlinks),
            hardlinks: sum(|l| l.hardlinks),
            bytes_written: restorer.bytes_done.load(Ordering::Relaxed),
            layers: report_layers,
            removed,
            overwritten,
            verified: req.verify,
            ownership_restored: as_root,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }

    /// Re-reads restored trees and checks them against the manifests.
    fn verify_restored(
        &self,
        id: &SnapshotId,
        targets: &[(String, PathBuf)],
        manifests: &[Vec<Entry>],
    ) -> Result<()> {
        use rayon::prelude::*;
        let bad: Vec<(String, Vec<u8>, String)> = self.pool.install(|| {
            targets
                .par_iter()
                .zip(manifests.par_iter())
                .flat_map(|((layer, target), entries)| {
                    entries
                        .par_iter()
                        .filter_map(|e| {
                            check_restored(self, target, e)
                                .err()
                                .map(|why| (layer.clone(), e.path.clone(), why))
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        });
        if bad.is_empty() {
            return Ok(());
        }
        Err(VaultError::Damaged {
            snapshot: id.to_string(),
            detail: format!("restored tree does not match the snapshot: {}", bad[0].2),
            files: bad
                .into_iter()
                .map(|(layer, p, _)| AffectedFile {
                    layer,
                    path: PathBuf::from(OsStr::from_bytes(&p)),
                })
                .collect(),
        })
    }
}

fn check_restored(vault: &Vault, target: &Path, e: &Entry) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let abs = join_rel(target, &e.path);
    let m = fs::symlink_metadata(&abs).map_err(|err| format!("{}: {err}", abs.display()))?;
    let mtime = manifest::Time {
        sec: m.mtime(),
        nsec: m.mtime_nsec() as u32,
    };
    match e.kind {
        Kind::Symlink => {
            let t = fs::read_link(&abs).map_err(|err| err.to_string())?;
            if t.as_os_str().as_bytes() != e.target.as_slice() {
                return Err(format!("{}: symlink target differs", abs.display()));
            }
        }
        Kind::Dir => {
            if !m.is_dir() || m.mode() & 0o7777 != e.mode {
                return Err(format!("{}: directory type or mode differs", abs.display()));
            }
        }
        Kind::File => {
            if !m.is_file() || m.len() != e.size || m.mode() & 0o7777 != e.mode || mtime != e.mtime
            {
                return Err(format!("{}: size, mode or mtime differs", abs.display()));
            }
            let mut f = File::open(&abs).map_err(|err| err.to_string())?;
            let mut buf = Vec::new();
            for c in &e.chunks {
                buf.resize(c.len as usize, 0);
                f.read_exact(&mut buf)
                    .map_err(|err| format!("{}: {err}", abs.display()))?;
                if vault.keys.blob_id(&buf) != c.id {
                    return Err(format!("{}: content differs", abs.display()));
                }
            }
        }
        Kind::Special(_) => {}
    }
    Ok(())
}

fn pack_sizes(vault: &Vault, index: &Index) -> Result<HashMap<[u8; 32], u64>> {
    let listed = vault.storage.list("data/")?;
    let mut out = HashMap::with_capacity(listed.len());
    for o in listed {
        if let Some(id) = crate::pack::pack_id_of_key(&o.key) {
            if index.has_pack(&id) {
                out.insert(id, o.size);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(p: &str) -> Entry {
        Entry::new(p.as_bytes().to_vec(), Kind::Dir)
    }

    fn check(entries: Vec<Entry>) -> std::result::Result<(), String> {
        validate_entries(&SnapshotId::new(), "env", &entries).map_err(|e| e.to_string())
    }

    #[test]
    fn an_entry_below_a_symlink_is_refused() {
        let mut l = Entry::new(b"lib".to_vec(), Kind::Symlink);
        l.target = b"/etc".to_vec();
        let f = Entry::new(b"lib/passwd".to_vec(), Kind::File);
        let err = check(vec![dir(""), l, f]).unwrap_err();
        assert!(err.contains("through the symlink"), "{err}");
    }

    #[test]
    fn dot_dot_absolute_and_device_entries_are_refused() {
        assert!(
            check(vec![dir(""), Entry::new(b"../x".to_vec(), Kind::File)])
                .unwrap_err()
                .contains("..")
        );
        assert!(
            check(vec![dir(""), Entry::new(b"/etc/x".to_vec(), Kind::File)])
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            check(vec![dir(""), Entry::new(b"dev".to_vec(), Kind::Special(5))])
                .unwrap_err()
                .contains("device")
        );
    }

    #[test]
    fn an_entry_without_its_parent_directory_is_refused() {
        let err = check(vec![dir(""), Entry::new(b"a/b".to_vec(), Kind::File)]).unwrap_err();
        assert!(err.contains("parent directory"), "{err}");
    }

    #[test]
    fn a_well_formed_manifest_passes() {
        let mut l = Entry::new(b"a/link".to_vec(), Kind::Symlink);
        l.target = b"../../outside/is/fine/as/a/target".to_vec();
        check(vec![
            dir(""),
            dir("a"),
            l,
            Entry::new(b"a/x".to_vec(), Kind::File),
        ])
        .unwrap();
    }
}

#[cfg(test)]
mod malicious_manifest_tests {
    //! Hand-crafted manifests, committed straight into a vault, that try to
    //! write outside the restore target.
    use super::*;
    use crate::blob::seal_blob;
    use crate::crypto::aad;
    use crate::keys::Argon2Params;
    use crate::manifest::{encode, tree_hash, ChunkRef};
    use crate::objects::{ChunkDoc, LayerDoc, SnapshotDoc, StatsDoc};
    use crate::pack::{write_index, BlobKind, PackWriter};
    use crate::storage::LocalStorage;
    use crate::types::RestoreRequest;
    use crate::vault::InitOptions;
    use crate::{KeySource, NoProgress};

    fn vault(dir: &Path) -> Vault {
        let opts = InitOptions {
            argon2: Argon2Params {
                m_cost_kib: 256,
                t_cost: 1,
                p_cost: 1,
            },
            ..InitOptions::default()
        };
        Vault::init_with(
            Arc::new(LocalStorage::new(dir)),
            &KeySource::Password("p".into()),
            opts,
        )
        .unwrap()
    }

    /// Stores `content` as a blob and returns its chunk ref (in `w`).
    fn blob(v: &Vault, w: &mut PackWriter, kind: BlobKind, content: &[u8]) -> ChunkRef {
        let id = v.keys.blob_id(content);
        let (frame, _) = seal_blob(&v.keys, content, 3);
        w.add(id, kind, &frame, content.len() as u32);
        ChunkRef {
            id,
            len: content.len() as u32,
        }
    }

    fn file(path: &str, v: &Vault, w: &mut PackWriter, content: &[u8]) -> Entry {
        let mut e = Entry::new(path.as_bytes().to_vec(), Kind::File);
        e.mode = 0o644;
        e.size = content.len() as u64;
        e.chunks = vec![blob(v, w, BlobKind::Data, content)];
        e
    }

    fn dir(path: &str) -> Entry {
        let mut e = Entry::new(path.as_bytes().to_vec(), Kind::Dir);
        e.mode = 0o755;
        e
    }

    fn symlink(path: &str, target: &str) -> Entry {
        let mut e = Entry::new(path.as_bytes().to_vec(), Kind::Symlink);
        e.target = target.as_bytes().to_vec();
        e
    }

    /// Commits a snapshot whose "home" layer is exactly `entries`.
    fn commit(v: &Vault, mut w: PackWriter, entries: Vec<Entry>) -> SnapshotId {
        let bytes = encode(&entries);
        let mref = blob(v, &mut w, BlobKind::Tree, &bytes);
        let p = w.finish(&v.keys);
        v.storage.put(&pack_key(&p.id), &p.bytes).unwrap();
        write_index(v.storage.as_ref(), &v.keys, &[(&p.id, &p.entries)]).unwrap();
        let th = tree_hash(&entries);
        let doc = SnapshotDoc {
            version: 1,
            id: SnapshotId::new(),
            created_at: chrono::Utc::now(),
            parent: None,
            hostname: "attacker".into(),
            root_hash: hex::encode(manifest::root_hash([("home", th)])),
            layers: vec![LayerDoc {
                name: "home".into(),
                root: "/home/x".into(),
                include: vec![],
                tree_hash: hex::encode(th),
                manifest_hash: hex::encode(manifest::manifest_hash(&bytes)),
                manifest_bytes: bytes.len() as u64,
                manifest_chunks: vec![ChunkDoc {
                    id: hex::encode(mref.id),
                    len: mref.len,
                }],
                files: 0,
                dirs: 0,
                symlinks: 0,
                hardlinked: 0,
                logical_bytes: 0,
            }],
            stats: StatsDoc::default(),
            skipped: vec![],
            changed_during_read: vec![],
            metadata: serde_json::Value::Null,
        };
        let json = serde_json::to_vec(&doc).unwrap();
        v.storage
            .put(
                &format!("snapshots/{}", doc.id),
                &v.keys.seal(aad::SNAPSHOT, &[&json]),
            )
            .unwrap();
        doc.id
    }

    fn restore(v: &Vault, id: &SnapshotId, target: &Path) -> Result<RestoreReport> {
        v.restore(
            id,
            &RestoreRequest {
                targets: vec![("home".into(), target.to_path_buf())],
                verify: false,
            },
            Arc::new(NoProgress),
        )
    }

    fn refused(entries: impl FnOnce(&Vault, &mut PackWriter, &Path) -> Vec<Entry>, expect: &str) {
        let t = tempfile::tempdir().unwrap();
        let v = vault(&t.path().join("vault"));
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let mut w = PackWriter::new(1 << 20);
        let e = entries(&v, &mut w, &outside);
        let id = commit(&v, w, e);
        let target = t.path().join("target");
        let err = restore(&v, &id, &target).unwrap_err();
        assert!(matches!(err, VaultError::UnsafeEntry { .. }), "{err}");
        assert!(err.to_string().contains(expect), "{err}");
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing written outside"
        );
        assert!(!target.exists(), "nothing written at all");
    }

    #[test]
    fn a_dot_dot_entry_is_refused_before_anything_is_written() {
        refused(
            |v, w, _| vec![dir(""), file("../outside/evil", v, w, b"x")],
            "`..`",
        );
    }

    #[test]
    fn an_absolute_entry_is_refused() {
        refused(
            |v, w, out| {
                vec![
                    dir(""),
                    file(&format!("{}/evil", out.display()), v, w, b"x"),
                ]
            },
            "absolute",
        );
    }

    #[test]
    fn a_file_below_a_symlink_to_outside_is_refused() {
        refused(
            |v, w, out| {
                vec![
                    dir(""),
                    symlink("lib", &out.display().to_string()),
                    file("lib/evil", v, w, b"x"),
                ]
            },
            "through the symlink",
        );
    }

    #[test]
    fn a_device_entry_is_refused() {
        refused(
            |_, _, _| vec![dir(""), Entry::new(b"sda".to_vec(), Kind::Special(6))],
            "device",
        );
    }

    #[test]
    fn hard_link_members_with_different_content_are_refused() {
        refused(
            |v, w, _| {
                let mut a = file("a", v, w, b"one");
                let mut b = file("b", v, w, b"two");
                a.hardlink = 1;
                b.hardlink = 1;
                vec![dir(""), a, b]
            },
            "hard-link",
        );
    }

    #[test]
    fn a_symlink_already_in_the_target_is_replaced_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let v = vault(&t.path().join("vault"));
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let mut w = PackWriter::new(1 << 20);
        let e = vec![dir(""), dir("lib"), file("lib/x", &v, &mut w, b"inside")];
        let id = commit(&v, w, e);
        let target = t.path().join("target");
        fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("lib")).unwrap();
        let rep = restore(&v, &id, &target).unwrap();
        assert!(fs::read_dir(&outside).unwrap().next().is_none());
        assert_eq!(fs::read(target.join("lib/x")).unwrap(), b"inside");
        assert_eq!(rep.removed, vec![target.join("lib")]);
    }
}
