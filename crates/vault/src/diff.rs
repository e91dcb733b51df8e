//! Differences between two snapshots, per layer, from their manifests
//! (no file data is read).

use crate::error::Result;
use crate::manifest::{path_cmp, Entry, Kind};
use crate::types::{ChangedEntry, DiffEntry, EntryType, LayerDiff, SnapshotId, TreeDiff};
use crate::vault::Vault;
use std::cmp::Ordering;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

fn entry_type(k: Kind) -> EntryType {
    match k {
        Kind::Dir => EntryType::Dir,
        Kind::Symlink => EntryType::Symlink,
        Kind::File | Kind::Special(_) => EntryType::File,
    }
}

fn path(e: &Entry) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(&e.path))
}

fn side(e: &Entry) -> DiffEntry {
    DiffEntry {
        path: path(e),
        kind: entry_type(e.kind),
        size: e.size,
    }
}

/// The differences between two manifests of one layer.
pub(crate) fn diff_entries(layer: &str, a: &[Entry], b: &[Entry]) -> LayerDiff {
    let mut d = LayerDiff {
        layer: layer.to_string(),
        ..LayerDiff::default()
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let ord = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => path_cmp(&x.path, &y.path),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match ord {
            Ordering::Less => {
                if !a[i].path.is_empty() {
                    d.removed.push(side(&a[i]));
                }
                i += 1;
            }
            Ordering::Greater => {
                if !b[j].path.is_empty() {
                    d.added.push(side(&b[j]));
                }
                j += 1;
            }
            Ordering::Equal => {
                let (x, y) = (&a[i], &b[j]);
                let content = x.kind != y.kind || x.chunks != y.chunks || x.target != y.target;
                let meta = x.mode != y.mode
                    || x.uid != y.uid
                    || x.gid != y.gid
                    || (x.kind != Kind::Dir && x.mtime != y.mtime);
                if content || meta {
                    d.changed.push(ChangedEntry {
                        path: path(y),
                        old_kind: entry_type(x.kind),
                        new_kind: entry_type(y.kind),
                        old_size: x.size,
                        new_size: y.size,
                        content_changed: content,
                        metadata_changed: meta,
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    d
}

impl Vault {
    /// What changed from snapshot `a` to snapshot `b`, per layer (a layer in
    /// only one of them shows as entirely added or removed).
    ///
    /// # Errors
    /// [`crate::VaultError::SnapshotNotFound`], unreadable manifests.
    pub fn diff(&self, a: &SnapshotId, b: &SnapshotId) -> Result<TreeDiff> {
        let da = self.read_doc(a)?;
        let db = self.read_doc(b)?;
        let index = self.load_index()?;
        let mut names: Vec<&str> = da.layers.iter().map(|l| l.name.as_str()).collect();
        for l in &db.layers {
            if !names.contains(&l.name.as_str()) {
                names.push(&l.name);
            }
        }
        let mut layers = Vec::new();
        for name in names {
            let ma = match da.layers.iter().find(|l| l.name == name) {
                Some(l) => self.read_manifest(&index, &da, l)?,
                None => Vec::new(),
            };
            let mb = match db.layers.iter().find(|l| l.name == name) {
                Some(l) => self.read_manifest(&index, &db, l)?,
                None => Vec::new(),
            };
            layers.push(diff_entries(name, &ma, &mb));
        }
        Ok(TreeDiff {
            from: a.clone(),
            to: b.clone(),
            layers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ChunkRef;

    fn file(p: &str, id: u8, size: u64) -> Entry {
        let mut e = Entry::new(p.as_bytes().to_vec(), Kind::File);
        e.size = size;
        e.chunks = vec![ChunkRef {
            id: [id; 32],
            len: size as u32,
        }];
        e
    }

    #[test]
    fn added_removed_and_changed_files_are_found_with_sizes() {
        let root = Entry::new(vec![], Kind::Dir);
        let a = vec![root.clone(), file("a", 1, 10), file("b", 2, 20)];
        let mut root_b = root.clone();
        root_b.mtime.sec = 99;
        let b = vec![root_b, file("b", 3, 25), file("c", 4, 5)];
        let d = diff_entries("home", &a, &b);
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].path, PathBuf::from("a"));
        assert_eq!(d.added[0].size, 5);
        assert_eq!(
            d.changed.len(),
            1,
            "a directory mtime alone is not a change"
        );
        assert_eq!((d.changed[0].old_size, d.changed[0].new_size), (20, 25));
        assert!(d.changed[0].content_changed);
    }
}
