//! The object-storage port of the vault and its local-folder adapter.
//!
//! A vault is a handful of kinds of immutable objects (see
//! `docs/VAULT-FORMAT.md`): few and large (packs of ~32 MiB), written once
//! and never modified, which suits S3 as well as a folder.
//!
//! The port is synchronous: the vault's work is CPU- and file-bound and runs
//! on its own threads (callers in async code use `spawn_blocking`). An async
//! adapter such as S3 implements this trait by holding a
//! `tokio::runtime::Handle` and calling `handle.block_on(...)` inside each
//! method; the vault never calls the storage from a runtime thread.

use crate::error::StorageError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// One object as listed: its key and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
}

/// Object storage for a vault.
///
/// Keys are `/`-separated segments of `a-z`, `0-9`, `.`, `_`, `-` (for
/// example `data/3f/3f2a…`, `snapshots/0193…`). Objects are immutable.
pub trait Storage: Send + Sync {
    /// Where the objects live, for people and for the platform's
    /// `s3_location` (e.g. `file:///srv/vault`, `s3://bucket/prefix`).
    fn location(&self) -> String;

    /// Stores an object atomically and durably: after `Ok` it survives a
    /// crash or power loss, and no reader ever sees a partial object.
    ///
    /// # Errors
    /// [`StorageError::AlreadyExists`] when the key exists (it is never
    /// overwritten), I/O errors (disk full) otherwise.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;

    /// Reads a whole object.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] when it does not exist.
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;

    /// Reads `len` bytes at `offset`.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], or an I/O error when the object is shorter
    /// than `offset + len` (a truncated object).
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError>;

    /// Every object whose key starts with `prefix`, in no particular order.
    ///
    /// # Errors
    /// Backend failures; a prefix with no objects is an empty list.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;

    /// Removes an object. Removing a missing object is not an error.
    ///
    /// # Errors
    /// Backend failures.
    fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Whether the object exists.
    ///
    /// # Errors
    /// Backend failures.
    fn exists(&self, key: &str) -> Result<bool, StorageError>;

    /// Stores a short-lived object (a lock) atomically but without the
    /// durability of [`Storage::put`]: after a crash it may be gone, which
    /// for a lock is what should happen anyway. Defaults to `put`.
    ///
    /// # Errors
    /// As [`Storage::put`].
    fn put_ephemeral(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.put(key, data)
    }

    /// Removes a short-lived object without waiting for durability.
    /// Defaults to `delete`.
    ///
    /// # Errors
    /// As [`Storage::delete`].
    fn delete_ephemeral(&self, key: &str) -> Result<(), StorageError> {
        self.delete(key)
    }

    /// Removes leftovers of interrupted `put`s older than `older_than`
    /// (temporary files); returns how many were removed. Backends without
    /// such leftovers keep the default.
    ///
    /// # Errors
    /// Backend failures.
    fn cleanup(&self, older_than: Duration) -> Result<u64, StorageError> {
        let _ = older_than;
        Ok(0)
    }
}

/// Checks a key: non-empty segments of `[a-z0-9._-]`, no `.`/`..` segments.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        });
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidKey(key.to_string()))
    }
}

/// Objects as files under a directory; `put` is temp file + fsync + rename
/// without replacement + directory fsync.
#[derive(Clone, Debug)]
pub struct LocalStorage {
    root: PathBuf,
}

const TMP_DIR: &str = "tmp";

impl LocalStorage {
    /// A vault folder. Nothing is created until the first `put`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalStorage { root: dir.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn put_inner(&self, key: &str, data: &[u8], durable: bool) -> Result<(), StorageError> {
        let dest = self.path_of(key)?;
        let tmp = self.write_temp(key, data, durable)?;
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        let mut res = rename_noreplace(&tmp, &dest);
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::NotFound) {
            res = create_dirs(&parent).and_then(|()| rename_noreplace(&tmp, &dest));
        }
        match res {
            Ok(()) if durable => fsync_dir(&parent).map_err(|e| StorageError::io(key, e)),
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Err(StorageError::AlreadyExists(key.to_string()))
                } else {
                    Err(StorageError::io(key, e))
                }
            }
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        if key == TMP_DIR || key.starts_with("tmp/") {
            return Err(StorageError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(key))
    }

    fn write_temp(&self, key: &str, data: &[u8], durable: bool) -> Result<PathBuf, StorageError> {
        let tmp_dir = self.root.join(TMP_DIR);
        let name = format!("{}.tmp", hex::encode(rand::random::<[u8; 12]>()));
        let tmp = tmp_dir.join(name);
        let open = |p: &Path| OpenOptions::new().write(true).create_new(true).open(p);
        let mut f = match open(&tmp) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                create_dirs(&tmp_dir).map_err(|e| StorageError::io(key, e))?;
                open(&tmp).map_err(|e| StorageError::io(key, e))?
            }
            Err(e) => return Err(StorageError::io(key, e)),
        };
        let res = f
            .write_all(data)
            .and_then(|()| if durable { f.sync_data() } else { Ok(()) });
        if let Err(e) = res {
            drop(f);
            let _ = fs::remove_file(&tmp);
            return Err(StorageError::io(key, e));
        }
        Ok(tmp)
    }
}

/// `create_dir_all` that also fsyncs the parent of every directory it made,
/// so the new directory entries are durable.
fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(c) = cur {
        if c.as_os_str().is_empty() || c.exists() {
            break;
        }
        missing.push(c.to_path_buf());
        cur = c.parent();
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {
                if let Some(p) = d.parent() {
                    fsync_dir(p)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// Renames without replacing an existing target (`renameat2(RENAME_NOREPLACE)`
/// where available, else link + unlink, which is equally atomic).
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{renameat2, RenameFlags};
        match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.put_inner(key, data, true)
    }

    fn put_ephemeral(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.put_inner(key, data, false)
    }

    fn delete_ephemeral(&self, key: &str) -> Result<(), StorageError> {
        match fs::remove_file(self.path_of(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(key, e)),
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.path_of(key)?;
        fs::read(&path).map_err(|e| not_found_or_io(key, e))
    }
    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        let path = self.path_of(key)?;
        let f = File::open(&path).map_err(|e| not_found_or_io(key, e))?;
        let len = usize::try_from(len).map_err(|_| {
            StorageError::io(
                key,
                io::Error::new(io::ErrorKind::InvalidInput, "range too large"),
            )
        })?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                StorageError::io(
                    key,
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "object is shorter than {} bytes (truncated)",
                            offset + len as u64
                        ),
                    ),
                )
            } else {
                StorageError::io(key, e)
            }
        })?;
        Ok(buf)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        // Walk the deepest directory the prefix names, then filter.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir_part)
        };
        let mut out = Vec::new();
        let mut stack = vec![(start, dir_part.to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io(prefix, e)),
            };
            for ent in rd {
                let ent = ent.map_err(|e| StorageError::io(prefix, e))?;
                let Some(name) = ent.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if key == TMP_DIR {
                    continue;
                }
                let ft = ent.file_type().map_err(|e| StorageError::io(&key, e))?;
                if ft.is_dir() {
                    if prefix.starts_with(&format!("{key}/")) || key.starts_with(prefix) {
                        stack.push((ent.path(), key));
                    }
                } else if ft.is_file() && key.starts_with(prefix) && validate_key(&key).is_ok() {
                    let size = ent.metadata().map_err(|e| StorageError::io(&key, e))?.len();
                    out.push(ObjectInfo { key, size });
                }
            }
        }
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io(key, e)),
        }
        if let Some(p) = path.parent() {
            fsync_dir(p).map_err(|e| StorageError::io(key, e))?;
        }
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path_of(key)?;
        match fs::symlink_metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io(key, e)),
        }
    }

    fn cleanup(&self, older_than: Duration) -> Result<u64, StorageError> {
        let dir = self.root.join(TMP_DIR);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StorageError::io(TMP_DIR, e)),
        };
        let now = SystemTime::now();
        let mut n = 0;
        for ent in rd.flatten() {
            let old = ent
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= older_than)
                .unwrap_or(false);
            if old && fs::remove_file(ent.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

fn not_found_or_io(key: &str, e: io::Error) -> StorageError {
    if e.kind() == io::ErrorKind::NotFound {
        StorageError::NotFound(key.to_string())
    } else {
        StorageError::io(key, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_never_overwrites_an_existing_object() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().join("v"));
        s.put("data/ab/abc", b"one").unwrap();
        let err = s.put("data/ab/abc", b"two").unwrap_err();
        assert!(matches!(err, StorageError::AlreadyExists(_)));
        assert_eq!(s.get("data/ab/abc").unwrap(), b"one");
        assert!(fs::read_dir(dir.path().join("v/tmp"))
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn list_finds_nested_objects_by_prefix_and_skips_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.put("data/ab/abc", b"1").unwrap();
        s.put("data/cd/cde", b"22").unwrap();
        s.put("snapshots/x", b"333").unwrap();
        fs::write(dir.path().join("tmp/junk.tmp"), b"x").unwrap();
        let mut keys: Vec<_> = s
            .list("data/")
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        keys.sort();
        assert_eq!(keys, ["data/ab/abc", "data/cd/cde"]);
        assert_eq!(s.list("snapshots/").unwrap()[0].size, 3);
        assert_eq!(s.list("").unwrap().len(), 3);
        assert!(s.list("index/").unwrap().is_empty());
    }

    #[test]
    fn a_ranged_read_past_the_end_reports_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.put("data/aa/p", b"0123456789").unwrap();
        assert_eq!(s.get_range("data/aa/p", 2, 3).unwrap(), b"234");
        let err = s.get_range("data/aa/p", 8, 5).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn keys_with_dot_dot_or_capitals_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        for k in ["../x", "a//b", "A", "/abs", "tmp/x", ""] {
            assert!(s.put(k, b"").is_err(), "{k}");
        }
    }

    #[test]
    fn deleting_a_missing_object_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path());
        s.delete("snapshots/none").unwrap();
        assert!(!s.exists("snapshots/none").unwrap());
    }
}
