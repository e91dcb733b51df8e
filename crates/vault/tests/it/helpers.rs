//! Shared test helpers: vaults with cheap key derivation, tree builders,
//! exact tree comparison, and storage wrappers that inject failures.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use westtek_vault::*;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn key() -> KeySource {
    KeySource::Password(PASSWORD.into())
}

/// Small packs so tests get several of them; cheap argon2 so tests are fast.
pub fn options() -> InitOptions {
    InitOptions {
        zstd_level: 3,
        pack_target: 1024 * 1024,
        argon2: Argon2Params {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        },
    }
}

pub fn new_vault(storage: Arc<dyn Storage>) -> Vault {
    let mut v = Vault::init_with(storage, &key(), options()).unwrap();
    v.set_lock_timeout(std::time::Duration::from_secs(5));
    v
}

pub fn local_vault(dir: &Path) -> (Arc<dyn Storage>, Vault) {
    let s: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir));
    let v = new_vault(Arc::clone(&s));
    (s, v)
}

pub fn reopen(storage: Arc<dyn Storage>) -> Vault {
    let mut v = Vault::open(storage, &key()).unwrap();
    v.set_lock_timeout(std::time::Duration::from_secs(5));
    v
}

pub fn progress() -> Arc<dyn ProgressSink> {
    Arc::new(NoProgress)
}

pub fn layer(name: &str, root: &Path) -> LayerSource {
    LayerSource {
        name: name.into(),
        root: root.to_path_buf(),
        exclude: vec![],
        include: vec![],
    }
}

pub fn request(layers: Vec<LayerSource>, parent: Option<SnapshotId>) -> SnapshotRequest {
    SnapshotRequest {
        layers,
        parent,
        metadata: serde_json::json!({"test": true}),
        changed_hint: None,
    }
}

pub fn snap(v: &Vault, layers: Vec<LayerSource>, parent: Option<SnapshotId>) -> SnapshotSummary {
    v.snapshot(&request(layers, parent), progress()).unwrap()
}

pub fn restore_to(
    v: &Vault,
    id: &SnapshotId,
    targets: Vec<(&str, &Path)>,
) -> Result<RestoreReport> {
    v.restore(
        id,
        &RestoreRequest {
            targets: targets
                .into_iter()
                .map(|(l, p)| (l.to_string(), p.to_path_buf()))
                .collect(),
            verify: true,
        },
        progress(),
    )
}

/// Deterministic pseudo-random bytes (incompressible).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap();
}

pub fn set_mtime(path: &Path, sec: i64, nsec: u32) {
    filetime::set_symlink_file_times(
        path,
        filetime::FileTime::from_unix_time(sec, nsec),
        filetime::FileTime::from_unix_time(sec, nsec),
    )
    .unwrap();
}

/// Everything about a tree that a restore must reproduce, keyed by
/// relative path: type, mode, mtime (ns), size, content hash, symlink
/// target, and which paths share an inode.
#[derive(Debug, PartialEq, Eq)]
pub struct TreeImage {
    pub entries: BTreeMap<PathBuf, String>,
    pub link_groups: Vec<Vec<PathBuf>>,
}

pub fn image(root: &Path) -> TreeImage {
    image_opts(root, true)
}

pub fn image_opts(root: &Path, with_dir_mtimes: bool) -> TreeImage {
    let mut entries = BTreeMap::new();
    let mut inodes: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for ent in fs::read_dir(&dir).unwrap() {
            let ent = ent.unwrap();
            let p = ent.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m = fs::symlink_metadata(&p).unwrap();
            let mtime = format!("{}.{:09}", m.mtime(), m.mtime_nsec());
            let desc = if m.file_type().is_symlink() {
                format!(
                    "symlink -> {} mtime {mtime}",
                    fs::read_link(&p).unwrap().display()
                )
            } else if m.is_dir() {
                stack.push(p.clone());
                if with_dir_mtimes {
                    format!("dir {:o} mtime {mtime}", m.mode() & 0o7777)
                } else {
                    format!("dir {:o}", m.mode() & 0o7777)
                }
            } else {
                if m.nlink() > 1 {
                    inodes.entry(m.ino()).or_default().push(rel.clone());
                }
                let data = fs::read(&p).unwrap();
                format!(
                    "file {:o} size {} mtime {mtime} blake3 {}",
                    m.mode() & 0o7777,
                    data.len(),
                    blake3::hash(&data).to_hex()
                )
            };
            entries.insert(rel, desc);
        }
    }
    let mut link_groups: Vec<Vec<PathBuf>> = inodes
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    link_groups.sort();
    TreeImage {
        entries,
        link_groups,
    }
}

pub fn mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn list_keys(s: &dyn Storage, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = s.list(prefix).unwrap().into_iter().map(|o| o.key).collect();
    v.sort();
    v
}

/// Storage that fails every `put` once `budget` bytes have been written
/// (a disk filling up), with ENOSPC.
pub struct FullDisk {
    pub inner: Arc<dyn Storage>,
    pub budget: AtomicI64,
}

impl Storage for FullDisk {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, key: &str, data: &[u8]) -> std::result::Result<(), StorageError> {
        if self.budget.fetch_sub(data.len() as i64, Ordering::SeqCst) < data.len() as i64 {
            return Err(StorageError::Io {
                key: key.into(),
                source: io::Error::from_raw_os_error(28),
            });
        }
        self.inner.put(key, data)
    }
    fn get(&self, key: &str) -> std::result::Result<Vec<u8>, StorageError> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &str, o: u64, l: u64) -> std::result::Result<Vec<u8>, StorageError> {
        self.inner.get_range(key, o, l)
    }
    fn list(&self, p: &str) -> std::result::Result<Vec<ObjectInfo>, StorageError> {
        self.inner.list(p)
    }
    fn delete(&self, key: &str) -> std::result::Result<(), StorageError> {
        self.inner.delete(key)
    }
    fn exists(&self, key: &str) -> std::result::Result<bool, StorageError> {
        self.inner.exists(key)
    }
}

/// Storage that "crashes" after `allowed` mutating operations: from then
/// on every operation fails, so nothing the process does afterwards
/// (cleanup included) reaches the storage — what kill -9 leaves behind.
pub struct CrashAfter {
    pub inner: Arc<dyn Storage>,
    pub allowed: AtomicI64,
    pub mutations: AtomicU64,
}

impl CrashAfter {
    pub fn new(inner: Arc<dyn Storage>, allowed: i64) -> Self {
        CrashAfter {
            inner,
            allowed: AtomicI64::new(allowed),
            mutations: AtomicU64::new(0),
        }
    }
    fn alive(&self) -> std::result::Result<(), StorageError> {
        if self.allowed.load(Ordering::SeqCst) < 0 {
            Err(StorageError::Backend("crashed".into()))
        } else {
            Ok(())
        }
    }
    fn mutate(&self) -> std::result::Result<(), StorageError> {
        self.mutations.fetch_add(1, Ordering::SeqCst);
        if self.allowed.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.allowed.store(-1, Ordering::SeqCst);
            return Err(StorageError::Backend("crashed".into()));
        }
        Ok(())
    }
}

impl Storage for CrashAfter {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn put(&self, key: &str, data: &[u8]) -> std::result::Result<(), StorageError> {
        self.mutate()?;
        self.inner.put(key, data)
    }
    fn get(&self, key: &str) -> std::result::Result<Vec<u8>, StorageError> {
        self.alive()?;
        self.inner.get(key)
    }
    fn get_range(&self, key: &str, o: u64, l: u64) -> std::result::Result<Vec<u8>, StorageError> {
        self.alive()?;
        self.inner.get_range(key, o, l)
    }
    fn list(&self, p: &str) -> std::result::Result<Vec<ObjectInfo>, StorageError> {
        self.alive()?;
        self.inner.list(p)
    }
    fn delete(&self, key: &str) -> std::result::Result<(), StorageError> {
        self.mutate()?;
        self.inner.delete(key)
    }
    fn exists(&self, key: &str) -> std::result::Result<bool, StorageError> {
        self.alive()?;
        self.inner.exists(key)
    }
}

/// Checks what must hold after any crash: the listed snapshots are exactly
/// `expected`, verify with read_data passes, each restores exactly.
pub fn assert_consistent(storage: Arc<dyn Storage>, expected: &[(SnapshotId, PathBuf)]) {
    let v = reopen(storage);
    let mut ids: Vec<SnapshotId> = v.list().unwrap().into_iter().map(|s| s.id).collect();
    ids.sort();
    let mut want: Vec<SnapshotId> = expected.iter().map(|(i, _)| i.clone()).collect();
    want.sort();
    assert_eq!(ids, want, "listed snapshots");
    let rep = v.verify(true, progress()).unwrap();
    assert!(rep.is_ok(), "verify after crash: {rep:#?}");
    for (id, tree) in expected {
        let out = tempfile::tempdir().unwrap();
        restore_to(&v, id, vec![("home", out.path())]).unwrap();
        assert_eq!(image(out.path()), image(tree));
    }
}
