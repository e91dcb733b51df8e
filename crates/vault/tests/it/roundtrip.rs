//! Snapshot and restore reproduce a tree exactly.

use crate::helpers::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;
use westtek_vault::*;

/// A home-like tree with everything a restore must get right.
pub fn rich_tree(root: &Path) {
    write(
        &root.join("notebooks/Analyse des données.ipynb"),
        br#"{"cells": [], "nbformat": 4}"#,
    );
    write(
        &root.join("notebooks/with space/ä ö ü 東京.txt"),
        "unicode ✓\n".as_bytes(),
    );
    write(&root.join("empty"), b"");
    write(&root.join("bin/run.sh"), b"#!/bin/sh\necho hi\n");
    mode(&root.join("bin/run.sh"), 0o755);
    write(&root.join("data/big.bin"), &noise(3 * 1024 * 1024 + 17, 1));
    write(
        &root.join("data/table.csv"),
        "id,value\n1,2\n".repeat(50_000).as_bytes(),
    );
    symlink("../data/table.csv", root.join("bin/relative-link")).unwrap();
    symlink("/usr/bin/env", root.join("bin/absolute-link")).unwrap();
    symlink("does/not/exist", root.join("dangling")).unwrap();
    write(&root.join("links/a"), b"shared content");
    fs::hard_link(root.join("links/a"), root.join("links/b")).unwrap();
    fs::hard_link(root.join("links/a"), root.join("notebooks/c")).unwrap();
    let mut deep = root.join("deep");
    for i in 0..40 {
        deep = deep.join(format!("level-{i}"));
    }
    write(&deep.join("bottom.txt"), b"deep");
    write(&root.join("private/secret"), b"0600");
    mode(&root.join("private/secret"), 0o600);
    mode(&root.join("private"), 0o700);
    write(&root.join("readonly/file"), b"ro");
    mode(&root.join("readonly"), 0o555);
    set_mtime(
        &root.join("notebooks/Analyse des données.ipynb"),
        1_600_000_000,
        123_456_789,
    );
    set_mtime(&root.join("bin/relative-link"), 1_500_000_000, 1);
    set_mtime(&root.join("empty"), -86_400, 5);
}

#[test]
fn a_rich_tree_round_trips_with_bytes_modes_mtimes_links_and_hard_links() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    rich_tree(&src);
    let (_, v) = local_vault(&t.path().join("vault"));
    let s = snap(&v, vec![layer("home", &src)], None);
    assert_eq!(s.hardlinked, 3);
    assert_eq!(s.symlinks, 3);
    assert!(s.skipped.is_empty(), "{:?}", s.skipped);
    let out = t.path().join("out");
    let rep = restore_to(&v, &s.id, vec![("home", &out)]).unwrap();
    assert!(rep.verified);
    assert_eq!(rep.hardlinks, 2);
    assert_eq!(image(&out), image(&src));
    assert_eq!(image(&out).link_groups.len(), 1);
}

#[test]
fn a_hard_link_to_a_file_outside_the_tree_restores_as_a_plain_file() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(
        &t.path().join("cache/pkg.py"),
        b"print('from the uv cache')",
    );
    write(&src.join("lib/placeholder"), b"");
    fs::hard_link(t.path().join("cache/pkg.py"), src.join("lib/pkg.py")).unwrap();
    let (_, v) = local_vault(&t.path().join("vault"));
    let s = snap(&v, vec![layer("env", &src)], None);
    assert_eq!(
        s.hardlinked, 0,
        "a link to outside the snapshot is no group"
    );
    let out = t.path().join("out");
    restore_to(&v, &s.id, vec![("env", &out)]).unwrap();
    let m = fs::metadata(out.join("lib/pkg.py")).unwrap();
    assert_eq!(m.nlink(), 1);
    assert_eq!(
        fs::read(out.join("lib/pkg.py")).unwrap(),
        b"print('from the uv cache')"
    );
}

#[test]
fn restoring_over_an_existing_tree_replaces_removes_and_never_writes_through_hard_links() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("keep.txt"), b"snapshot version");
    write(&src.join("dir/inner.txt"), b"inner");
    let (_, v) = local_vault(&t.path().join("vault"));
    let s = snap(&v, vec![layer("env", &src)], None);

    // The live tree drifted: a changed file hard-linked to a "cache" file
    // outside, an extra file, a directory where a file was, a symlink
    // where a directory was.
    let cache = t.path().join("cache-file");
    write(&cache, b"cache content must survive");
    fs::remove_file(src.join("keep.txt")).unwrap();
    fs::hard_link(&cache, src.join("keep.txt")).unwrap();
    write(&src.join("extra/new.py"), b"installed later");
    fs::remove_dir_all(src.join("dir")).unwrap();
    symlink("/tmp", src.join("dir")).unwrap();

    let rep = restore_to(&v, &s.id, vec![("env", &src)]).unwrap();
    assert_eq!(fs::read(src.join("keep.txt")).unwrap(), b"snapshot version");
    assert_eq!(fs::read(&cache).unwrap(), b"cache content must survive");
    assert!(!src.join("extra").exists());
    assert!(fs::symlink_metadata(src.join("dir")).unwrap().is_dir());
    assert_eq!(fs::read(src.join("dir/inner.txt")).unwrap(), b"inner");
    assert!(
        rep.removed.contains(&src.join("extra")),
        "{:?}",
        rep.removed
    );
    assert!(rep.removed.contains(&src.join("dir")), "{:?}", rep.removed);
    assert!(
        rep.overwritten.contains(&src.join("keep.txt")),
        "{:?}",
        rep.overwritten
    );
}

#[test]
fn restore_to_original_roots_uses_the_recorded_layer_roots() {
    let t = tempfile::tempdir().unwrap();
    let env = t.path().join("env");
    let home = t.path().join("home");
    write(&env.join("pyvenv.cfg"), b"home = /usr\n");
    write(&home.join("nb.ipynb"), b"{}");
    let (_, v) = local_vault(&t.path().join("vault"));
    let s = snap(&v, vec![layer("env", &env), layer("home", &home)], None);
    let before = (image(&env), image(&home));
    fs::remove_dir_all(&env).unwrap();
    fs::remove_dir_all(&home).unwrap();
    let req = RestoreRequest::to_original_roots(&s, true);
    v.restore(&s.id, &req, progress()).unwrap();
    assert_eq!((image(&env), image(&home)), before);
}

#[test]
fn excluded_paths_and_special_files_are_not_stored_and_specials_are_reported() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("pkg/__pycache__/m.cpython-311.pyc"), b"bytecode");
    write(&src.join("pkg/m.py"), b"x = 1");
    write(&src.join("pkg/old.pyc"), b"bytecode");
    write(&src.join("tmp/scratch"), b"scratch");
    nix::unistd::mkfifo(
        &src.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let (_, v) = local_vault(&t.path().join("vault"));
    let mut l = layer("env", &src);
    l.exclude = vec!["__pycache__".into(), "*.pyc".into(), "tmp".into()];
    let s = snap(&v, vec![l], None);
    let reasons: Vec<String> = s
        .skipped
        .iter()
        .map(|(p, r)| format!("{} {r}", p.display()))
        .collect();
    assert_eq!(s.skipped.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("fifo") && r.contains("FIFO")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("sock") && r.contains("socket")),
        "{reasons:?}"
    );
    let out = t.path().join("out");
    restore_to(&v, &s.id, vec![("env", &out)]).unwrap();
    let names: Vec<_> = image(&out).entries.into_keys().collect();
    assert_eq!(
        names,
        vec![
            Path::new("pkg").to_path_buf(),
            Path::new("pkg/m.py").to_path_buf()
        ]
    );
}

#[test]
fn metadata_and_listing_come_back_as_stored() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("a"), b"a");
    let (_, v) = local_vault(&t.path().join("vault"));
    let mut req = request(vec![layer("home", &src)], None);
    req.metadata =
        serde_json::json!({"installed_packages": [{"name": "numpy", "version": "2.1.0"}]});
    let s = v.snapshot(&req, progress()).unwrap();
    assert_eq!(v.metadata(&s.id).unwrap(), req.metadata);
    let listed = v.list().unwrap();
    assert_eq!(
        listed,
        vec![s.clone()]
            .into_iter()
            .map(|mut x| {
                x.duration_ms = listed[0].duration_ms;
                x
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(v.get(&s.id).unwrap().root_hash, s.root_hash);
    assert_eq!(s.root_hash.len(), 64);
    assert!(matches!(
        v.get(&SnapshotId::new()),
        Err(VaultError::SnapshotNotFound(_))
    ));
}

#[test]
fn a_read_only_vault_still_restores_and_verifies() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"archived");
    let dir = t.path().join("vault");
    let (_, v) = local_vault(&dir);
    let s = snap(&v, vec![layer("home", &src)], None);
    drop(v);
    // Storage that refuses every write (EROFS), like an archived copy.
    struct ReadOnly(LocalStorage);
    impl Storage for ReadOnly {
        fn location(&self) -> String {
            self.0.location()
        }
        fn put(&self, key: &str, _: &[u8]) -> std::result::Result<(), StorageError> {
            Err(StorageError::Io {
                key: key.into(),
                source: std::io::Error::from_raw_os_error(30),
            })
        }
        fn get(&self, key: &str) -> std::result::Result<Vec<u8>, StorageError> {
            self.0.get(key)
        }
        fn get_range(
            &self,
            key: &str,
            o: u64,
            l: u64,
        ) -> std::result::Result<Vec<u8>, StorageError> {
            self.0.get_range(key, o, l)
        }
        fn list(&self, p: &str) -> std::result::Result<Vec<ObjectInfo>, StorageError> {
            self.0.list(p)
        }
        fn delete(&self, key: &str) -> std::result::Result<(), StorageError> {
            Err(StorageError::Io {
                key: key.into(),
                source: std::io::Error::from_raw_os_error(30),
            })
        }
        fn exists(&self, key: &str) -> std::result::Result<bool, StorageError> {
            self.0.exists(key)
        }
    }
    let ro = reopen(std::sync::Arc::new(ReadOnly(LocalStorage::new(&dir))));
    let out = t.path().join("out");
    restore_to(&ro, &s.id, vec![("home", &out)]).unwrap();
    assert_eq!(image(&out), image(&src));
    assert!(ro.verify(true, progress()).unwrap().is_ok());
    assert!(ro.gc(progress()).is_err(), "gc needs a writable vault");
}

#[test]
fn an_include_list_captures_only_those_paths_and_the_folders_leading_to_them() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("usr/bin/python3.11"), b"interpreter");
    std::os::unix::fs::symlink("python3.11", src.join("usr/bin/python3")).unwrap();
    write(&src.join("usr/bin/gcc"), b"not part of it");
    write(&src.join("usr/lib/python3.11/os.py"), b"import abc");
    write(&src.join("usr/lib/python3.11/site-packages/big.py"), b"x");
    write(&src.join("usr/lib/x86_64-linux-gnu/libz.so.1"), b"zlib");
    write(&src.join("usr/lib/x86_64-linux-gnu/libother.so"), b"other");
    mode(&src.join("usr/lib"), 0o751);
    set_mtime(&src.join("usr/lib"), 1_600_000_000, 7);
    std::os::unix::fs::symlink("usr/lib", src.join("lib")).unwrap();
    let (_, v) = local_vault(&t.path().join("vault"));
    let mut l = layer("base", &src);
    l.include = vec![
        "usr/bin/python3.11".into(),
        "usr/bin/python3".into(),
        "usr/lib/python3.11".into(),
        "usr/lib/python3.11/os.py".into(), // nested: once
        "usr/lib/x86_64-linux-gnu/libz.so.1".into(),
        "usr/lib/missing.so".into(),             // absent: left out
        "lib/x86_64-linux-gnu/libz.so.1".into(), // below a symlink: reported
    ];
    l.exclude = vec!["usr/lib/python3.11/site-packages".into()];
    // Files changed in the last moments before a read are read again next
    // time (their timestamps cannot be trusted yet).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let s = snap(&v, vec![l.clone()], None);
    assert_eq!(s.skipped.len(), 1, "{:?}", s.skipped);
    assert!(s.skipped[0].0.ends_with("lib/x86_64-linux-gnu/libz.so.1"));
    let out = t.path().join("out");
    restore_to(&v, &s.id, vec![("base", &out)]).unwrap();
    let got = image(&out);
    let names: Vec<String> = got
        .entries
        .keys()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "usr",
            "usr/bin",
            "usr/bin/python3",
            "usr/bin/python3.11",
            "usr/lib",
            "usr/lib/python3.11",
            "usr/lib/python3.11/os.py",
            "usr/lib/x86_64-linux-gnu",
            "usr/lib/x86_64-linux-gnu/libz.so.1",
        ]
    );
    // The folders leading to the paths keep their modes and times.
    let full = image(&src);
    for p in [
        "usr/lib",
        "usr/bin/python3",
        "usr/lib/x86_64-linux-gnu/libz.so.1",
    ] {
        assert_eq!(got.entries[Path::new(p)], full.entries[Path::new(p)], "{p}");
    }
    // Restored over a live tree (as to its original root `/` would be), a
    // partial layer changes only its own paths: everything else in the
    // folders leading to them stays, with their modes and times.
    assert_eq!(s.layers[0].include.len(), 5, "{:?}", s.layers[0].include);
    let live = t.path().join("live");
    write(&live.join("usr/bin/gcc"), b"the system's compiler");
    write(&live.join("usr/bin/python3.11"), b"a newer interpreter");
    write(
        &live.join("usr/lib/python3.11/stale.py"),
        b"not in the snapshot",
    );
    write(&live.join("etc/passwd"), b"root:x:0:0");
    mode(&live.join("usr"), 0o755);
    set_mtime(&live.join("usr"), 1_500_000_000, 0);
    let before_usr = image(&live).entries[Path::new("usr")].clone();
    let rep = restore_to(&v, &s.id, vec![("base", &live)]).unwrap();
    let after = image(&live);
    assert_eq!(
        after.entries[Path::new("usr/bin/python3.11")],
        full.entries[Path::new("usr/bin/python3.11")]
    );
    assert!(after.entries.contains_key(Path::new("usr/bin/gcc")));
    assert!(after.entries.contains_key(Path::new("etc/passwd")));
    assert!(!after
        .entries
        .contains_key(Path::new("usr/lib/python3.11/stale.py")));
    assert_eq!(rep.removed, vec![live.join("usr/lib/python3.11/stale.py")]);
    assert_eq!(after.entries[Path::new("usr")], before_usr);

    // Unchanged files are reused by the next snapshot; bad paths are refused.
    let again = snap(&v, vec![l.clone()], Some(s.id.clone()));
    assert_eq!(again.files_reused, 3);
    for bad in ["/usr/bin", "usr/../etc", ""] {
        let mut b = l.clone();
        b.include = vec![bad.into()];
        let err = v.snapshot(&request(vec![b], None), progress()).unwrap_err();
        assert!(err.to_string().contains("include path"), "{bad}: {err}");
    }
}
