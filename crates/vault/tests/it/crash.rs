//! Crashes: at every storage operation of a snapshot and of gc (in
//! process, deterministic), and a real `kill -9` of a child process in the
//! middle of a snapshot and of gc.

use crate::helpers::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use westtek_vault::*;

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for ent in fs::read_dir(from).unwrap() {
        let ent = ent.unwrap();
        let dest = to.join(ent.file_name());
        if ent.file_type().unwrap().is_dir() {
            copy_dir(&ent.path(), &dest);
        } else {
            fs::copy(ent.path(), &dest).unwrap();
        }
    }
}

fn tree(root: &Path, seed: u64, big: usize) -> PathBuf {
    write(&root.join("big.bin"), &noise(big, seed));
    write(
        &root.join("nb.ipynb"),
        format!("{{\"seed\": {seed}}}").as_bytes(),
    );
    write(
        &root.join("pkg/mod.py"),
        "import os\n".repeat(200).as_bytes(),
    );
    root.to_path_buf()
}

/// Mutating storage operations of one run of `op` on a copy of `base`.
fn count_mutations(base: &Path, scratch: &Path, op: &dyn Fn(&Vault) -> Result<()>) -> u64 {
    copy_dir(base, scratch);
    let crash = Arc::new(CrashAfter::new(
        Arc::new(LocalStorage::new(scratch)),
        i64::MAX,
    ));
    let v = reopen(Arc::clone(&crash) as Arc<dyn Storage>);
    op(&v).unwrap();
    crash.mutations.load(Ordering::SeqCst)
}

#[test]
fn a_crash_at_any_storage_operation_of_a_snapshot_leaves_the_vault_consistent() {
    let t = tempfile::tempdir().unwrap();
    let t1 = tree(&t.path().join("t1"), 1, 300_000);
    let t2 = tree(&t.path().join("t2"), 2, 2_500_000);
    let base = t.path().join("base");
    let (_, v) = local_vault(&base);
    let s1 = snap(&v, vec![layer("home", &t1)], None);
    drop(v);
    let op = |v: &Vault| {
        v.snapshot(&request(vec![layer("home", &t2)], None), progress())
            .map(|_| ())
    };
    let n = count_mutations(&base, &t.path().join("count"), &op);
    assert!(n >= 6, "lock, packs, index, snapshot, unlock: {n}");
    for allowed in 0..n as i64 {
        let dir = t.path().join(format!("crash-{allowed}"));
        copy_dir(&base, &dir);
        let inner: Arc<dyn Storage> = Arc::new(LocalStorage::new(&dir));
        let crash = Arc::new(CrashAfter::new(Arc::clone(&inner), allowed));
        let v = reopen(Arc::clone(&crash) as Arc<dyn Storage>);
        let _ = op(&v);
        drop(v);
        // The snapshot counts as made only once its object was written.
        let listed: Vec<SnapshotId> = reopen(Arc::clone(&inner))
            .list()
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        let mut expected = vec![(s1.id.clone(), t1.clone())];
        expected.extend(
            listed
                .iter()
                .filter(|id| **id != s1.id)
                .map(|id| (id.clone(), t2.clone())),
        );
        assert!(expected.len() <= 2, "crash after {allowed}: {listed:?}");
        assert_consistent(Arc::clone(&inner), &expected);
        let after = reopen(Arc::clone(&inner));
        after.gc(progress()).unwrap();
        assert_consistent(inner, &expected);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_crash_at_any_storage_operation_of_gc_leaves_the_vault_consistent() {
    let t = tempfile::tempdir().unwrap();
    let t1 = tree(&t.path().join("t1"), 1, 1_500_000);
    let t2 = tree(&t.path().join("t2"), 2, 1_500_000);
    let t3 = t.path().join("t3");
    copy_dir(&t2, &t3);
    write(&t3.join("extra.bin"), &noise(400_000, 3));
    let base = t.path().join("base");
    let (_, v) = local_vault(&base);
    let s1 = snap(&v, vec![layer("home", &t1)], None);
    let s2 = snap(&v, vec![layer("home", &t2)], None);
    let s3 = snap(&v, vec![layer("home", &t3)], None);
    v.delete(&s1.id).unwrap();
    v.delete(&s2.id).unwrap();
    drop(v);
    let op = |v: &Vault| v.gc(progress()).map(|_| ());
    let n = count_mutations(&base, &t.path().join("count"), &op);
    assert!(n >= 5, "gc should have work to do: {n}");
    let expected = vec![(s3.id.clone(), t3.clone())];
    for allowed in 0..n as i64 {
        let dir = t.path().join(format!("crash-{allowed}"));
        copy_dir(&base, &dir);
        let inner: Arc<dyn Storage> = Arc::new(LocalStorage::new(&dir));
        let crash = Arc::new(CrashAfter::new(Arc::clone(&inner), allowed));
        let v = reopen(Arc::clone(&crash) as Arc<dyn Storage>);
        // The last operation is removing the lock, which gc ignores failing.
        assert!(op(&v).is_err() || allowed + 1 == n as i64);
        drop(v);
        assert_consistent(Arc::clone(&inner), &expected);
        reopen(Arc::clone(&inner)).gc(progress()).unwrap();
        assert_consistent(inner, &expected);
        fs::remove_dir_all(&dir).unwrap();
    }
}

// ----- kill -9 of a real process -----

const CHILD_ENV: &str = "WESTTEK_VAULT_TEST_CHILD";

/// Storage that sleeps before each write or delete, so a kill lands in
/// the middle of the work.
struct Slow(LocalStorage);

impl Storage for Slow {
    fn location(&self) -> String {
        self.0.location()
    }
    fn put(&self, key: &str, data: &[u8]) -> std::result::Result<(), StorageError> {
        std::thread::sleep(Duration::from_millis(25));
        self.0.put(key, data)
    }
    fn get(&self, key: &str) -> std::result::Result<Vec<u8>, StorageError> {
        self.0.get(key)
    }
    fn get_range(&self, key: &str, o: u64, l: u64) -> std::result::Result<Vec<u8>, StorageError> {
        self.0.get_range(key, o, l)
    }
    fn list(&self, p: &str) -> std::result::Result<Vec<ObjectInfo>, StorageError> {
        self.0.list(p)
    }
    fn delete(&self, key: &str) -> std::result::Result<(), StorageError> {
        std::thread::sleep(Duration::from_millis(25));
        self.0.delete(key)
    }
    fn exists(&self, key: &str) -> std::result::Result<bool, StorageError> {
        self.0.exists(key)
    }
}

/// Not a test of its own: the body of the child process the kill -9 tests
/// start (this same test binary, re-executed with `--ignored --exact`).
#[test]
#[ignore = "runs only as the child process of the kill -9 tests"]
fn child_process_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, '|');
    let (mode, vault, tree) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap_or(""),
    );
    let v = reopen(Arc::new(Slow(LocalStorage::new(vault))));
    match mode {
        "snapshot" => loop {
            let mut req = request(vec![layer("home", Path::new(tree))], None);
            req.metadata = serde_json::json!({"tree": tree});
            v.snapshot(&req, progress()).unwrap();
        },
        "gc" => {
            v.gc(progress()).unwrap();
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(mode: &str, vault: &Path, tree: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::child_process_entry",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{mode}|{}|{}", vault.display(), tree.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `cond` holds or the child has exited (then there is nothing
/// left to interrupt, and the checks after the kill still apply).
fn wait_for(child: &mut Child, what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() && child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child never got to: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill_9(mut child: Child) {
    // The child may have finished already; the kill then finds a zombie or
    // nothing, which is fine.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    // Reap it so its pid is really gone (a zombie still "exists").
    child.wait().unwrap();
}

/// Every listed snapshot restores to the tree its metadata names, and
/// verify with read_data passes.
fn check_after_kill(
    storage: Arc<dyn Storage>,
    known: &[(SnapshotId, PathBuf)],
) -> Vec<(SnapshotId, PathBuf)> {
    let v = reopen(Arc::clone(&storage));
    let mut expected: Vec<(SnapshotId, PathBuf)> = Vec::new();
    for s in v.list().unwrap() {
        let tree = match known.iter().find(|(id, _)| *id == s.id) {
            Some((_, t)) => t.clone(),
            None => PathBuf::from(v.metadata(&s.id).unwrap()["tree"].as_str().unwrap()),
        };
        expected.push((s.id, tree));
    }
    for k in known {
        assert!(
            expected.iter().any(|(id, _)| *id == k.0),
            "snapshot {} lost",
            k.0
        );
    }
    assert_consistent(storage, &expected);
    expected
}

#[test]
fn kill_9_in_the_middle_of_a_snapshot_leaves_the_vault_consistent() {
    let t = tempfile::tempdir().unwrap();
    let t1 = tree(&t.path().join("t1"), 1, 200_000);
    let dir = t.path().join("vault");
    let (storage, v) = local_vault(&dir);
    let s1 = snap(&v, vec![layer("home", &t1)], None);
    let mut known = vec![(s1.id.clone(), t1.clone())];
    for (round, delay_ms) in [20u64, 80, 200].into_iter().enumerate() {
        let tn = tree(
            &t.path().join(format!("t-{round}")),
            10 + round as u64,
            3_000_000,
        );
        let mut child = spawn_child("snapshot", &dir, &tn);
        let packs_before = list_keys(storage.as_ref(), "data/").len();
        wait_for(&mut child, "writing packs", || {
            list_keys(storage.as_ref(), "data/").len() > packs_before
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_9(child);
        eprintln!(
            "killed snapshot after {delay_ms} ms: {} packs (from {packs_before}), {} snapshots",
            list_keys(storage.as_ref(), "data/").len(),
            list_keys(storage.as_ref(), "snapshots/").len()
        );
        known = check_after_kill(Arc::clone(&storage), &known);
    }
    let gc = v.gc(progress()).unwrap();
    let rep = v.verify(true, progress()).unwrap();
    assert!(rep.is_ok() && rep.warnings.is_empty(), "{gc:#?} {rep:#?}");
}

#[test]
fn kill_9_in_the_middle_of_gc_leaves_the_vault_consistent() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("vault");
    let (storage, v) = local_vault(&dir);
    let mut keep = Vec::new();
    // Kill points: just after gc took its lock; once its new index exists
    // (while old indexes are being deleted); once packs start to go.
    for (round, delay_ms) in [10u64, 0, 0].into_iter().enumerate() {
        // Garbage for gc: snapshots that are deleted again.
        for i in 0..3u64 {
            let tr = tree(
                &t.path().join(format!("r{round}-{i}")),
                100 * round as u64 + i,
                1_200_000,
            );
            let s = snap(&v, vec![layer("home", &tr)], None);
            if i == 1 {
                v.delete(&s.id).unwrap();
            } else {
                keep.push((s.id, tr));
            }
        }
        let before: Vec<SnapshotId> = v.list().unwrap().into_iter().map(|s| s.id).collect();
        let indexes = list_keys(storage.as_ref(), "index/");
        let packs = list_keys(storage.as_ref(), "data/").len();
        let mut child = spawn_child("gc", &dir, Path::new(""));
        wait_for(&mut child, "taking the gc lock", || {
            !list_keys(storage.as_ref(), "locks/").is_empty()
        });
        match round {
            0 => {}
            1 => wait_for(&mut child, "writing the new index", || {
                list_keys(storage.as_ref(), "index/")
                    .iter()
                    .any(|k| !indexes.contains(k))
            }),
            _ => wait_for(&mut child, "deleting packs", || {
                list_keys(storage.as_ref(), "data/").len() < packs
            }),
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_9(child);
        eprintln!(
            "killed gc after {delay_ms} ms: {} index objects, {} packs, locks {:?}",
            list_keys(storage.as_ref(), "index/").len(),
            list_keys(storage.as_ref(), "data/").len(),
            list_keys(storage.as_ref(), "locks/")
        );
        let after: Vec<SnapshotId> = v.list().unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(after, before, "gc never changes the set of snapshots");
        assert_eq!(after.len(), keep.len());
        assert_consistent(Arc::clone(&storage), &keep);
    }
    v.gc(progress()).unwrap();
    let rep = v.verify(true, progress()).unwrap();
    assert!(rep.is_ok() && rep.warnings.is_empty(), "{rep:#?}");
}
