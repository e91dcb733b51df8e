//! A disk that fills up mid-snapshot: the snapshot fails cleanly, nothing
//! partial is listed, existing snapshots stay intact, gc cleans up.

use crate::helpers::*;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use westtek_vault::*;

fn trees(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let a = root.join("a");
    let b = root.join("b");
    write(&a.join("small.txt"), b"existing snapshot");
    write(&a.join("data.bin"), &noise(200_000, 1));
    write(&b.join("big.bin"), &noise(3_000_000, 2));
    for i in 0..20 {
        write(
            &b.join(format!("f{i}.py")),
            format!("x = {i}\n").repeat(100).as_bytes(),
        );
    }
    (a, b)
}

#[test]
fn a_disk_filling_up_at_any_point_of_a_snapshot_leaves_no_partial_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = trees(t.path());
    for budget in [0i64, 300_000, 1_200_000, 2_500_000, 3_000_000] {
        let dir = t.path().join(format!("vault-{budget}"));
        let inner: Arc<dyn Storage> = Arc::new(LocalStorage::new(&dir));
        let disk = Arc::new(FullDisk {
            inner: Arc::clone(&inner),
            budget: AtomicI64::new(i64::MAX),
        });
        let v = new_vault(Arc::clone(&disk) as Arc<dyn Storage>);
        let sa = snap(&v, vec![layer("home", &a)], None);
        disk.budget.store(budget, Ordering::SeqCst);
        let err = v
            .snapshot(&request(vec![layer("home", &b)], None), progress())
            .unwrap_err();
        assert!(
            err.to_string().contains("No space left on device"),
            "budget {budget}: {err}"
        );
        assert_consistent(Arc::clone(&inner), &[(sa.id.clone(), a.clone())]);
        // Space freed: gc removes the leftovers, the snapshot now works.
        disk.budget.store(i64::MAX, Ordering::SeqCst);
        v.gc(progress()).unwrap();
        let rep = v.verify(true, progress()).unwrap();
        assert!(rep.is_ok() && rep.warnings.is_empty(), "{rep:#?}");
        let sb = snap(&v, vec![layer("home", &b)], None);
        assert_consistent(inner, &[(sa.id.clone(), a.clone()), (sb.id, b.clone())]);
    }
}

/// A real small file system: mounts a 2 MiB tmpfs when running as root
/// with the right to mount, and is skipped (with a note) otherwise; the
/// injected-writer test above covers the logic everywhere.
#[test]
fn a_real_full_tmpfs_mid_snapshot_leaves_no_partial_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = nix::unistd::geteuid().is_root()
        && Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let (a, b) = trees(t.path());
    let (storage, v) = local_vault(&mnt.join("vault"));
    let sa = snap(&v, vec![layer("home", &a)], None);
    let err = v
        .snapshot(&request(vec![layer("home", &b)], None), progress())
        .unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_consistent(Arc::clone(&storage), &[(sa.id.clone(), a.clone())]);
    let gc = v.gc(progress()).unwrap();
    assert!(
        v.verify(true, progress()).unwrap().warnings.is_empty(),
        "{gc:#?}"
    );
}
