//! Small file-system helpers shared by the scanner and the relocator.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Files at least this big are hashed with both cores.
const PARALLEL_HASH_MIN: u64 = 8 << 20;
const BUF: usize = 1 << 20;

/// BLAKE3 of a file's content, hex, and the number of bytes read.
pub(crate) fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    if len >= PARALLEL_HASH_MIN {
        let mut buf = vec![0u8; BUF];
        loop {
            let n = read_full(&mut file, &mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update_rayon(&buf[..n]);
            total += n as u64;
        }
    } else {
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
        file.read_to_end(&mut buf)?;
        hasher.update(&buf);
        total = buf.len() as u64;
    }
    Ok((hasher.finalize().to_hex().to_string(), total))
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// BLAKE3 of bytes in memory, hex.
pub(crate) fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Modification time in ns since the epoch.
pub(crate) fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// `path` relative to `root`, `/`-separated; the full path if it is not
/// under `root`.
pub(crate) fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Bytecode never counts: `__pycache__` folders and `*.pyc`/`*.pyo` files.
pub(crate) fn is_bytecode(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name == b"__pycache__" || name.ends_with(b".pyc") || name.ends_with(b".pyo")
}

/// Sorted entries of a folder; an absent folder is empty.
pub(crate) fn sorted_dir(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd.collect::<std::io::Result<Vec<_>>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

/// The venv's `lib/python*/site-packages` folders, sorted. `lib64` is a
/// symlink to `lib` in uv venvs and is not looked at.
pub(crate) fn site_packages(venv: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in sorted_dir(&venv.join("lib"))? {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("python") {
            let sp = entry.path().join("site-packages");
            if sp.is_dir() {
                out.push(sp);
            }
        }
    }
    Ok(out)
}
