//! Walking a layer: `lstat` of every entry in manifest order (parents
//! first, siblings by name bytes), exclusion patterns, and the stat
//! fingerprint used to detect unchanged files.

use crate::error::{Result, VaultError};
use crate::manifest::Time;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What `lstat` said about an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: Time,
    pub ctime: Time,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
}

fn time(sec: i64, nsec: i64) -> Time {
    Time {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
    }
}

impl From<&Metadata> for Stat {
    fn from(m: &Metadata) -> Self {
        Stat {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
        }
    }
}

impl Stat {
    /// Same size, mtime, ctime and inode: the content is taken as unchanged.
    pub(crate) fn same_file(&self, other: &Stat) -> bool {
        self.size == other.size
            && self.mtime == other.mtime
            && self.ctime == other.ctime
            && self.ino == other.ino
    }
}

/// The file type from `st_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Dir,
    File,
    Symlink,
    Other(&'static str),
}

pub(crate) fn kind_of(mode: u32) -> FileKind {
    match mode & 0o170000 {
        0o040000 => FileKind::Dir,
        0o100000 => FileKind::File,
        0o120000 => FileKind::Symlink,
        0o010000 => FileKind::Other("FIFO (named pipe) not stored"),
        0o020000 => FileKind::Other("character device not stored"),
        0o060000 => FileKind::Other("block device not stored"),
        0o140000 => FileKind::Other("socket not stored"),
        _ => FileKind::Other("unknown file type not stored"),
    }
}

enum Pattern {
    /// No `/`: matches a name at any depth.
    Name(Vec<u8>),
    /// Components of a path pattern; `**` matches any number of them.
    Path(Vec<Vec<u8>>),
}

/// Compiled exclusion patterns (see `LayerSource::exclude`).
pub(crate) struct Excludes {
    patterns: Vec<Pattern>,
}

impl Excludes {
    pub(crate) fn new(patterns: &[String]) -> Result<Self> {
        let mut out = Vec::new();
        for p in patterns {
            let t = p.trim_matches('/');
            if t.is_empty() {
                return Err(VaultError::InvalidRequest(format!(
                    "empty exclude pattern {p:?}"
                )));
            }
            if t.contains('/') {
                out.push(Pattern::Path(
                    t.split('/')
                        .filter(|c| !c.is_empty())
                        .map(|c| c.as_bytes().to_vec())
                        .collect(),
                ));
            } else {
                out.push(Pattern::Name(t.as_bytes().to_vec()));
            }
        }
        Ok(Excludes { patterns: out })
    }

    /// Whether the relative path `rel` (non-empty) is excluded.
    pub(crate) fn is_excluded(&self, rel: &[u8]) -> bool {
        if self.patterns.is_empty() || rel.is_empty() {
            return false;
        }
        let name = rel.rsplit(|b| *b == b'/').next().unwrap_or(rel);
        let mut comps: Option<Vec<&[u8]>> = None;
        self.patterns.iter().any(|p| match p {
            Pattern::Name(n) => glob(n, name),
            Pattern::Path(pc) => {
                let c = comps.get_or_insert_with(|| rel.split(|b| *b == b'/').collect());
                match_components(pc, c)
            }
        })
    }

    /// Whether `rel` or any of its ancestors is excluded.
    pub(crate) fn is_excluded_or_under(&self, rel: &[u8]) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let mut end = 0;
        loop {
            let next = rel[end..].iter().position(|b| *b == b'/').map(|i| end + i);
            let prefix = &rel[..next.unwrap_or(rel.len())];
            if !prefix.is_empty() && self.is_excluded(prefix) {
                return true;
            }
            match next {
                Some(i) => end = i + 1,
                None => return false,
            }
        }
    }
}

fn match_components(pat: &[Vec<u8>], path: &[&[u8]]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p.as_slice() == b"**" => {
            (0..=path.len()).any(|i| match_components(rest, &path[i..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((c, prest)) => glob(p, c) && match_components(rest, prest),
            None => false,
        },
    }
}

/// `*` (any run) and `?` (one byte) within one name.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|c| *c == b'*')
}

/// One entry found by [`scan`].
pub(crate) struct Found {
    pub rel: Vec<u8>,
    pub abs: PathBuf,
    pub stat: Stat,
    pub kind: FileKind,
    pub target: Vec<u8>,
}

pub(crate) fn join_rel(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

/// Walks `root/start` (start = `""` for the whole tree) in manifest order,
/// calling `visit` for each entry not excluded. The start entry itself is
/// visited (the layer root is `stat`ed, following a symlink). Entries that
/// cannot be listed or stat-ed go to `skipped`. A missing start is not an
/// error (nothing is visited).
///
/// Directories are listed and their entries `lstat`ed in parallel on the
/// current rayon pool; `visit` is called afterwards, in order, on the
/// calling thread.
pub(crate) fn scan(
    root: &Path,
    start: &[u8],
    excludes: &Excludes,
    skipped: &mut Vec<(PathBuf, String)>,
    visit: &mut dyn FnMut(Found),
) -> Result<()> {
    let abs = join_rel(root, start);
    let meta = if start.is_empty() {
        fs::metadata(&abs)
    } else {
        fs::symlink_metadata(&abs)
    };
    let meta = match meta {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !start.is_empty() => return Ok(()),
        Err(e) => return Err(VaultError::io("stat", &abs, e)),
    };
    let mut out = Subtree::default();
    scan_entry(start.to_vec(), abs, Stat::from(&meta), excludes, &mut out);
    skipped.append(&mut out.skipped);
    for f in out.found {
        visit(f);
    }
    Ok(())
}

#[derive(Default)]
struct Subtree {
    found: Vec<Found>,
    skipped: Vec<(PathBuf, String)>,
}

fn scan_entry(rel: Vec<u8>, abs: PathBuf, stat: Stat, excludes: &Excludes, out: &mut Subtree) {
    let kind = kind_of(stat.mode);
    let target = if kind == FileKind::Symlink {
        match fs::read_link(&abs) {
            Ok(t) => t.into_os_string().into_vec_bytes(),
            Err(e) => {
                out.skipped.push((abs, format!("unreadable symlink: {e}")));
                return;
            }
        }
    } else {
        Vec::new()
    };
    if kind != FileKind::Dir {
        out.found.push(Found {
            rel,
            abs,
            stat,
            kind,
            target,
        });
        return;
    }
    let rd = fs::read_dir(&abs);
    out.found.push(Found {
        rel: rel.clone(),
        abs: abs.clone(),
        stat,
        kind,
        target,
    });
    let rd = match rd {
        Ok(rd) => rd,
        Err(e) => {
            out.skipped.push((
                abs,
                format!("directory not readable, contents not stored: {e}"),
            ));
            return;
        }
    };
    let mut children: Vec<(Vec<u8>, PathBuf, Stat)> = Vec::new();
    for ent in rd {
        let ent = match ent {
            Ok(e) => e,
            Err(e) => {
                out.skipped
                    .push((abs.clone(), format!("error while listing: {e}")));
                continue;
            }
        };
        let name = ent.file_name();
        let mut crel = Vec::with_capacity(rel.len() + 1 + name.len());
        if !rel.is_empty() {
            crel.extend_from_slice(&rel);
            crel.push(b'/');
        }
        crel.extend_from_slice(name.as_bytes());
        if excludes.is_excluded(&crel) {
            continue;
        }
        match ent.metadata() {
            Ok(m) => children.push((crel, ent.path(), Stat::from(&m))),
            // Vanished between listing and stat.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => out.skipped.push((ent.path(), format!("cannot stat: {e}"))),
        }
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    let subdirs = children
        .iter()
        .filter(|c| kind_of(c.2.mode) == FileKind::Dir)
        .count();
    if subdirs < 2 {
        for (crel, cabs, cstat) in children {
            scan_entry(crel, cabs, cstat, excludes, out);
        }
        return;
    }
    use rayon::prelude::*;
    let parts: Vec<Subtree> = children
        .into_par_iter()
        .map(|(crel, cabs, cstat)| {
            let mut sub = Subtree::default();
            scan_entry(crel, cabs, cstat, excludes, &mut sub);
            sub
        })
        .collect();
    for mut p in parts {
        out.found.append(&mut p.found);
        out.skipped.append(&mut p.skipped);
    }
}

trait IntoVecBytes {
    fn into_vec_bytes(self) -> Vec<u8>;
}

impl IntoVecBytes for std::ffi::OsString {
    fn into_vec_bytes(self) -> Vec<u8> {
        use std::os::unix::ffi::OsStringExt;
        self.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str]) -> Excludes {
        Excludes::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_name_pattern_matches_at_any_depth() {
        let e = ex(&["__pycache__", "*.pyc"]);
        assert!(e.is_excluded(b"__pycache__"));
        assert!(e.is_excluded(b"lib/python3.11/__pycache__"));
        assert!(e.is_excluded(b"a/b/x.pyc"));
        assert!(!e.is_excluded(b"a/b/x.py"));
        assert!(!e.is_excluded(b"__pycache__x"));
    }

    #[test]
    fn a_path_pattern_matches_from_the_root_with_double_star() {
        let e = ex(&["**/__pycache__", "data/tmp", "lib/*/site-packages/foo"]);
        assert!(e.is_excluded(b"__pycache__"));
        assert!(e.is_excluded(b"a/b/__pycache__"));
        assert!(e.is_excluded(b"data/tmp"));
        assert!(!e.is_excluded(b"x/data/tmp"));
        assert!(e.is_excluded(b"lib/python3.11/site-packages/foo"));
        assert!(!e.is_excluded(b"lib/a/b/site-packages/foo"));
        assert!(e.is_excluded_or_under(b"data/tmp/deep/file"));
        assert!(!e.is_excluded_or_under(b"data/tmpx/file"));
    }

    #[test]
    fn sibling_order_puts_a_directory_before_names_that_extend_it() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        fs::write(d.path().join("a-c"), b"").unwrap();
        fs::write(d.path().join("a/b/f"), b"").unwrap();
        let mut seen = Vec::new();
        let mut skipped = Vec::new();
        scan(d.path(), b"", &ex(&[]), &mut skipped, &mut |f| {
            seen.push(String::from_utf8(f.rel).unwrap())
        })
        .unwrap();
        assert_eq!(seen, ["", "a", "a/b", "a/b/f", "a-c"]);
    }
}
