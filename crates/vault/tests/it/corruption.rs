//! Damaged vault data: every kind gives a clear error naming what is
//! affected, and never spreads to other snapshots.

use crate::helpers::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use westtek_vault::*;

struct Fixture {
    _t: tempfile::TempDir,
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    vault: Vault,
    a: SnapshotSummary,
    b: SnapshotSummary,
    tree_b: PathBuf,
    /// The data pack holding snapshot a's file contents.
    pack_a: String,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("vault");
    let (storage, vault) = local_vault(&dir);
    let tree_a = t.path().join("a");
    let tree_b = t.path().join("b");
    write(&tree_a.join("a.bin"), &noise(600_000, 1));
    write(&tree_a.join("notes.txt"), b"hello");
    write(&tree_b.join("b.bin"), &noise(600_000, 2));
    let before = list_keys(storage.as_ref(), "data/");
    let a = snap(&vault, vec![layer("home", &tree_a)], None);
    let mut added: Vec<(u64, String)> = storage
        .list("data/")
        .unwrap()
        .into_iter()
        .filter(|o| !before.contains(&o.key))
        .map(|o| (o.size, o.key))
        .collect();
    added.sort();
    let pack_a = added.last().unwrap().1.clone();
    let b = snap(&vault, vec![layer("home", &tree_b)], None);
    Fixture {
        _t: t,
        dir,
        storage,
        vault,
        a,
        b,
        tree_b,
        pack_a,
    }
}

impl Fixture {
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    fn b_still_restores(&self) {
        let out = tempfile::tempdir().unwrap();
        restore_to(&self.vault, &self.b.id, vec![("home", out.path())]).unwrap();
        assert_eq!(image(out.path()), image(&self.tree_b));
    }

    fn restore_a_fails_naming(&self, file: &str) -> String {
        let out = tempfile::tempdir().unwrap();
        let err = restore_to(&self.vault, &self.a.id, vec![("home", out.path())]).unwrap_err();
        match &err {
            VaultError::Damaged {
                snapshot, files, ..
            } => {
                assert_eq!(snapshot, self.a.id.as_str());
                assert!(
                    files
                        .iter()
                        .any(|f| f.layer == "home" && f.path == Path::new(file)),
                    "{err}"
                );
                assert!(
                    !out.path().join(file).exists(),
                    "a damaged file is not left behind"
                );
            }
            other => panic!("expected Damaged, got {other}"),
        }
        err.to_string()
    }

    fn verify_names_a(&self, read_data: bool, file: &str) -> VerifyReport {
        let rep = self.vault.verify(read_data, progress()).unwrap();
        assert!(!rep.is_ok());
        assert_eq!(rep.damaged_snapshots.len(), 1, "{rep:#?}");
        let d = &rep.damaged_snapshots[0];
        assert_eq!(d.id, self.a.id);
        assert!(
            d.files.iter().any(|f| f.path == Path::new(file)),
            "{rep:#?}"
        );
        rep
    }
}

#[test]
fn a_truncated_pack_is_named_by_verify_and_restore_and_spares_other_snapshots() {
    let f = fixture();
    let p = f.path(&f.pack_a);
    let len = fs::metadata(&p).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let rep = f.verify_names_a(false, "a.bin");
    assert!(
        rep.errors
            .iter()
            .any(|e| e.contains(&f.pack_a) && e.contains("truncated")),
        "{:?}",
        rep.errors
    );
    let msg = f.restore_a_fails_naming("a.bin");
    assert!(msg.contains(&f.pack_a), "{msg}");
    f.b_still_restores();
}

#[test]
fn a_flipped_bit_in_a_pack_is_found_by_reading_the_data() {
    let f = fixture();
    let p = f.path(&f.pack_a);
    let mut bytes = fs::read(&p).unwrap();
    bytes[300_000] ^= 0x10;
    fs::write(&p, &bytes).unwrap();
    // The structure is intact; only reading the data finds it.
    assert!(f.vault.verify(false, progress()).unwrap().is_ok());
    let rep = f.verify_names_a(true, "a.bin");
    assert!(
        rep.errors
            .iter()
            .any(|e| e.contains("does not match its name")),
        "{:?}",
        rep.errors
    );
    let msg = f.restore_a_fails_naming("a.bin");
    assert!(msg.contains("does not authenticate"), "{msg}");
    f.b_still_restores();
}

#[test]
fn a_missing_pack_is_named_and_spares_other_snapshots() {
    let f = fixture();
    fs::remove_file(f.path(&f.pack_a)).unwrap();
    let rep = f.verify_names_a(false, "a.bin");
    assert!(
        rep.errors
            .iter()
            .any(|e| e.contains(&f.pack_a) && e.contains("missing")),
        "{:?}",
        rep.errors
    );
    let msg = f.restore_a_fails_naming("a.bin");
    assert!(msg.contains("missing"), "{msg}");
    f.b_still_restores();
    // gc keeps what it cannot account for and says so.
    let gc = f.vault.gc(progress()).unwrap();
    assert!(gc.warnings.iter().any(|w| w.contains("missing")), "{gc:#?}");
    f.b_still_restores();
}

#[test]
fn a_damaged_snapshot_object_is_named_and_hidden_from_the_listing() {
    let f = fixture();
    let key = format!("snapshots/{}", f.a.id);
    let mut bytes = fs::read(f.path(&key)).unwrap();
    bytes[40] ^= 1;
    fs::write(f.path(&key), &bytes).unwrap();
    let ids: Vec<_> = f.vault.list().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![f.b.id.clone()]);
    let err = f.vault.get(&f.a.id).unwrap_err();
    assert!(
        matches!(&err, VaultError::Corrupt { object, .. } if object == &key),
        "{err}"
    );
    let rep = f.vault.verify(false, progress()).unwrap();
    assert_eq!(rep.damaged_snapshots.len(), 1);
    assert_eq!(rep.damaged_snapshots[0].id, f.a.id);
    // gc refuses to guess what the unreadable snapshot needs.
    let packs = list_keys(f.storage.as_ref(), "data/");
    assert!(matches!(
        f.vault.gc(progress()),
        Err(VaultError::Corrupt { .. })
    ));
    assert_eq!(list_keys(f.storage.as_ref(), "data/"), packs);
    f.b_still_restores();
}

#[test]
fn a_damaged_index_object_stops_gc_from_deleting_anything() {
    let f = fixture();
    let idx = list_keys(f.storage.as_ref(), "index/");
    let mut bytes = fs::read(f.path(&idx[0])).unwrap();
    bytes[30] ^= 1;
    fs::write(f.path(&idx[0]), &bytes).unwrap();
    let packs = list_keys(f.storage.as_ref(), "data/");
    let err = f.vault.gc(progress()).unwrap_err();
    assert!(err.to_string().contains(&idx[0]), "{err}");
    assert_eq!(list_keys(f.storage.as_ref(), "data/"), packs);
    assert!(!f.vault.verify(false, progress()).unwrap().is_ok());
}

#[test]
fn a_wrong_password_is_a_clear_wrong_key_error() {
    let f = fixture();
    let err =
        Vault::open(Arc::clone(&f.storage), &KeySource::Password("wrong".into())).unwrap_err();
    assert!(matches!(err, VaultError::WrongKey));
    assert!(err.to_string().contains("wrong password"));
    // A second key (a key file) opens the same vault.
    let kf = f.dir.parent().unwrap().join("keyfile");
    fs::write(&kf, noise(64, 5)).unwrap();
    let w = PassphraseWrapper::from_source(&KeySource::KeyFile(kf.clone()))
        .unwrap()
        .with_params(options().argon2);
    f.vault.add_key(&w).unwrap();
    let v2 = Vault::open(Arc::clone(&f.storage), &KeySource::KeyFile(kf)).unwrap();
    assert_eq!(v2.list().unwrap().len(), 2);
}

#[test]
fn opening_something_that_is_not_a_vault_says_so() {
    let t = tempfile::tempdir().unwrap();
    let err = Vault::open_local(t.path(), &key()).unwrap_err();
    assert!(matches!(err, VaultError::NotAVault { .. }), "{err}");
    let (_, _v) = local_vault(&t.path().join("v"));
    let again = Vault::init_with(
        Arc::new(LocalStorage::new(t.path().join("v"))),
        &key(),
        options(),
    );
    assert!(matches!(again, Err(VaultError::AlreadyExists(_))));
}
