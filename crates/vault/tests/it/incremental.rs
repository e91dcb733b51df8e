//! Deduplication, incremental snapshots, change hints, diff.

use crate::helpers::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use westtek_vault::*;

/// A venv-like tree: many small files, a few bigger ones.
fn env_tree(root: &Path) {
    for p in 0..8 {
        for f in 0..25 {
            let body = format!("# package {p} module {f}\n").repeat(40 + f);
            write(
                &root.join(format!("lib/site-packages/pkg{p}/mod{f}.py")),
                body.as_bytes(),
            );
        }
        write(
            &root.join(format!("lib/site-packages/pkg{p}/_native.so")),
            &noise(300_000 + p * 1000, p as u64),
        );
    }
    write(&root.join("data/blob.bin"), &noise(2_500_000, 99));
    // Timestamps must be older than the racy-write window for reuse.
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn snapshotting_an_unchanged_tree_twice_adds_less_than_one_percent() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("env");
    env_tree(&src);
    let (_, v) = local_vault(&t.path().join("vault"));
    let first = snap(&v, vec![layer("env", &src)], None);
    // Without a parent everything is read again, and still nothing is stored twice.
    let second = snap(&v, vec![layer("env", &src)], None);
    assert!(
        second.stored_bytes_added * 100 < first.logical_bytes,
        "second snapshot added {} bytes for {} logical",
        second.stored_bytes_added,
        first.logical_bytes
    );
    assert_eq!(
        first.root_hash, second.root_hash,
        "same tree, same checksum"
    );
}

#[test]
fn an_incremental_snapshot_reads_only_the_changed_files() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("env");
    env_tree(&src);
    let (_, v) = local_vault(&t.path().join("vault"));
    let first = snap(&v, vec![layer("env", &src)], None);
    assert_eq!(first.files_read, first.files);
    let changed = src.join("lib/site-packages/pkg3/mod7.py");
    write(&changed, b"edited = True\n");
    let second = snap(&v, vec![layer("env", &src)], Some(first.id.clone()));
    assert_eq!(second.files_read, 1, "only the edited file is opened");
    assert_eq!(second.bytes_read, 14);
    assert_eq!(second.files_reused, first.files - 1);
    let out = t.path().join("out");
    restore_to(&v, &second.id, vec![("env", &out)]).unwrap();
    assert_eq!(image(&out), image(&src));
}

#[test]
fn a_change_hint_limits_the_snapshot_to_the_hinted_paths_with_the_same_result_as_a_full_walk() {
    let t = tempfile::tempdir().unwrap();
    let env = t.path().join("env");
    let home = t.path().join("home");
    env_tree(&env);
    write(&home.join("nb.ipynb"), b"{\"cells\": []}");
    let (_, v) = local_vault(&t.path().join("vault"));
    let layers = || vec![layer("env", &env), layer("home", &home)];
    let first = snap(&v, layers(), None);

    // "uv pip install tqdm": a new package dir + dist-info; a notebook edit;
    // a removed module.
    write(
        &env.join("lib/site-packages/tqdm/__init__.py"),
        b"__version__ = '4.67'\n",
    );
    write(
        &env.join("lib/site-packages/tqdm-4.67.dist-info/METADATA"),
        b"Name: tqdm\n",
    );
    let edited = b"{\"cells\": [{\"source\": \"import tqdm\"}]}";
    write(&home.join("nb.ipynb"), edited);
    fs::remove_file(env.join("lib/site-packages/pkg0/mod0.py")).unwrap();
    let hint: Vec<PathBuf> = vec![
        env.join("lib/site-packages/tqdm/__init__.py"),
        env.join("lib/site-packages/tqdm-4.67.dist-info"),
        PathBuf::from("nb.ipynb"),
        env.join("lib/site-packages/pkg0/mod0.py"),
    ];
    let mut req = request(layers(), Some(first.id.clone()));
    req.changed_hint = Some(hint);
    let hinted = v.snapshot(&req, progress()).unwrap();
    assert_eq!(hinted.files_read, 3, "two new files and the notebook");
    let full = snap(&v, layers(), Some(first.id.clone()));
    let d = v.diff(&hinted.id, &full.id).unwrap();
    for l in &d.layers {
        assert!(
            l.added.is_empty() && l.removed.is_empty() && l.changed.is_empty(),
            "{l:#?}"
        );
    }
    assert_eq!(hinted.root_hash, full.root_hash);

    let d = v.diff(&first.id, &hinted.id).unwrap();
    let env_diff = &d.layers[0];
    let added: Vec<_> = env_diff
        .added
        .iter()
        .map(|e| e.path.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        added,
        [
            "lib/site-packages/tqdm",
            "lib/site-packages/tqdm/__init__.py",
            "lib/site-packages/tqdm-4.67.dist-info",
            "lib/site-packages/tqdm-4.67.dist-info/METADATA"
        ]
    );
    assert_eq!(env_diff.removed.len(), 1);
    assert_eq!(env_diff.removed[0].kind, EntryType::File);
    let home_diff = &d.layers[1];
    assert_eq!(home_diff.changed.len(), 1);
    assert!(home_diff.changed[0].content_changed);
    assert_eq!(home_diff.changed[0].new_size, edited.len() as u64);
}

#[test]
fn a_file_that_keeps_changing_while_read_is_reported() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("home");
    write(&src.join("log.txt"), &noise(8_000_000, 3));
    write(&src.join("quiet.txt"), b"calm");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, path) = (Arc::clone(&stop), src.join("log.txt"));
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(b"tick\n").unwrap();
                std::thread::yield_now();
            }
        })
    };
    let (_, v) = local_vault(&t.path().join("vault"));
    // Each snapshot reads the file three times; only if the writer thread
    // was starved through all three reads (a loaded machine) did the file
    // really not change, so a few snapshots make the test deterministic
    // in practice.
    let mut s = snap(&v, vec![layer("home", &src)], None);
    for _ in 0..4 {
        if !s.changed_during_read.is_empty() {
            break;
        }
        s = snap(&v, vec![layer("home", &src)], None);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(s.changed_during_read, vec![src.join("log.txt")]);
    // What was stored is self-consistent and restores.
    let out = t.path().join("out");
    restore_to(&v, &s.id, vec![("home", &out)]).unwrap();
    assert_eq!(fs::read(out.join("quiet.txt")).unwrap(), b"calm");
    let log = fs::read(out.join("log.txt")).unwrap();
    assert_eq!(&log[..8_000_000], &noise(8_000_000, 3)[..]);
    assert!(log[8_000_000..].chunks(5).all(|c| c == b"tick\n"));
}

#[test]
fn delete_and_gc_free_the_space_and_keep_other_snapshots_whole() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    let b = t.path().join("b");
    write(&a.join("only-a.bin"), &noise(3_000_000, 10));
    write(&a.join("shared.bin"), &noise(1_500_000, 11));
    write(&b.join("only-b.bin"), &noise(2_000_000, 12));
    fs::copy(a.join("shared.bin"), b.join("shared.bin")).unwrap();
    let (s, v) = local_vault(&t.path().join("vault"));
    let sa = snap(&v, vec![layer("home", &a)], None);
    let sb = snap(&v, vec![layer("home", &b)], None);
    let before = v.stats().unwrap();
    assert_eq!(before.snapshots, 2);
    let ua = before
        .per_snapshot
        .iter()
        .find(|u| u.id == sa.id)
        .unwrap()
        .unique_stored_bytes;
    assert!(ua > 2_900_000 && ua < 3_200_000, "unique bytes of a: {ua}");
    v.delete(&sa.id).unwrap();
    assert!(matches!(
        v.delete(&sa.id),
        Err(VaultError::SnapshotNotFound(_))
    ));
    let rep = v.gc(progress()).unwrap();
    assert!(rep.bytes_freed > 2_500_000, "{rep:#?}");
    let after = v.stats().unwrap();
    assert!(after.pack_bytes + 2_500_000 < before.pack_bytes);
    // Chunk boundaries depend on the vault's random key, so a pack may mix
    // dead and live chunks; gc repacks a pack once a quarter of it is dead
    // and leaves the rest, so what stays unreferenced is under that bound.
    assert!(
        after.unreferenced_bytes * 4 < after.pack_bytes,
        "{after:#?}"
    );
    assert_eq!(list_keys(s.as_ref(), "index/").len(), 1);
    assert!(v.verify(true, progress()).unwrap().is_ok());
    let out = t.path().join("out");
    restore_to(&v, &sb.id, vec![("home", &out)]).unwrap();
    assert_eq!(image(&out), image(&b));
    // A second gc has nothing to do.
    let again = v.gc(progress()).unwrap();
    assert_eq!(
        (
            again.packs_deleted,
            again.packs_written,
            again.index_objects_replaced
        ),
        (0, 0, 0)
    );
}

#[test]
fn a_hard_link_written_through_one_name_is_current_under_every_name_with_a_hint_of_that_name() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("env");
    write(&src.join("a/one.txt"), b"first version\n");
    fs::create_dir_all(src.join("b")).unwrap();
    fs::hard_link(src.join("a/one.txt"), src.join("b/two.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let (_, v) = local_vault(&t.path().join("vault"));
    let first = snap(&v, vec![layer("env", &src)], None);
    // Written (and chmod-ed) through `a/one.txt`: only that name is hinted,
    // as inotify reports only the path written.
    fs::write(src.join("a/one.txt"), b"second version, longer\n").unwrap();
    mode(&src.join("a/one.txt"), 0o600);
    let mut req = request(vec![layer("env", &src)], Some(first.id.clone()));
    req.changed_hint = Some(vec![src.join("a/one.txt")]);
    let hinted = v.snapshot(&req, progress()).unwrap();
    let full = snap(&v, vec![layer("env", &src)], None);
    assert_eq!(hinted.root_hash, full.root_hash, "hinted = full walk");
    let out = t.path().join("out");
    restore_to(&v, &hinted.id, vec![("env", &out)]).unwrap();
    assert_eq!(image(&out), image(&src));
    assert_eq!(
        fs::read(out.join("b/two.txt")).unwrap(),
        b"second version, longer\n"
    );
}

#[test]
fn a_hard_link_across_layers_written_through_one_name_makes_the_hinted_snapshot_walk_everything() {
    let t = tempfile::tempdir().unwrap();
    let env = t.path().join("env");
    let home = t.path().join("home");
    write(&env.join("lib/shared.py"), b"x = 1\n");
    fs::create_dir_all(&home).unwrap();
    fs::hard_link(env.join("lib/shared.py"), home.join("shared.py")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let (_, v) = local_vault(&t.path().join("vault"));
    let layers = || vec![layer("env", &env), layer("home", &home)];
    let first = snap(&v, layers(), None);
    fs::write(
        home.join("shared.py"),
        b"x = 2  # edited in the home layer\n",
    )
    .unwrap();
    let mut req = request(layers(), Some(first.id.clone()));
    req.changed_hint = Some(vec![home.join("shared.py")]);
    let hinted = v.snapshot(&req, progress()).unwrap();
    let full = snap(&v, layers(), None);
    assert_eq!(hinted.root_hash, full.root_hash, "hinted = full walk");
}

#[test]
fn a_file_written_through_an_excluded_hard_link_name_is_current_in_the_hinted_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("env");
    write(&src.join("lib/kept.py"), b"old\n");
    fs::create_dir_all(src.join("runtime")).unwrap();
    fs::hard_link(src.join("lib/kept.py"), src.join("runtime/alias.py")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let (_, v) = local_vault(&t.path().join("vault"));
    let mut env = layer("env", &src);
    env.exclude = vec!["runtime".into()];
    let first = snap(&v, vec![env.clone()], None);
    fs::write(
        src.join("runtime/alias.py"),
        b"new, through the excluded name\n",
    )
    .unwrap();
    let mut req = request(vec![env.clone()], Some(first.id.clone()));
    req.changed_hint = Some(vec![src.join("runtime/alias.py")]);
    let hinted = v.snapshot(&req, progress()).unwrap();
    let full = snap(&v, vec![env], None);
    assert_eq!(hinted.root_hash, full.root_hash, "hinted = full walk");
}

#[test]
fn a_hinted_excluded_folder_holding_a_changed_hard_link_makes_the_snapshot_walk_everything() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("env");
    write(&src.join("lib/kept.py"), b"old\n");
    fs::create_dir_all(src.join("runtime/deep")).unwrap();
    fs::hard_link(src.join("lib/kept.py"), src.join("runtime/deep/alias.py")).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let (_, v) = local_vault(&t.path().join("vault"));
    let mut env = layer("env", &src);
    env.exclude = vec!["runtime".into()];
    let first = snap(&v, vec![env.clone()], None);
    fs::write(
        src.join("runtime/deep/alias.py"),
        b"new, through the excluded name\n",
    )
    .unwrap();
    // The hint names the folder (as a journal does when the folder itself changed).
    let mut req = request(vec![env.clone()], Some(first.id.clone()));
    req.changed_hint = Some(vec![src.join("runtime")]);
    let hinted = v.snapshot(&req, progress()).unwrap();
    let full = snap(&v, vec![env], None);
    assert_eq!(hinted.root_hash, full.root_hash, "hinted = full walk");
}
