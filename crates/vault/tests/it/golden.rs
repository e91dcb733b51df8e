//! The golden vault: written once by `write_the_golden_v1_fixture` into
//! `tests/fixtures/golden-v1/` and committed. Every build must read it,
//! restore it exactly and verify it; a format change that breaks old
//! vaults fails here.
//!
//! Password of the fixture: `golden-v1-password` (argon2id 64 MiB, t=2).

use crate::helpers::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use westtek_vault::*;

const GOLDEN_PASSWORD: &str = "golden-v1-password";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v1")
}

fn golden_tree(root: &Path, edited: bool) {
    write(&root.join("hello.txt"), b"Hello, West Tek!\n");
    write(
        &root.join("donn\u{e9}es/na\u{ef}ve file.txt"),
        "caf\u{e9} \u{2615}\n".as_bytes(),
    );
    write(&root.join("empty"), b"");
    write(
        &root.join("bin/run.sh"),
        b"#!/bin/sh\nexec python3 -m notebook\n",
    );
    mode(&root.join("bin/run.sh"), 0o755);
    write(
        &root.join("data/table.csv"),
        "id,name,value\n1,alpha,0.5\n".repeat(4000).as_bytes(),
    );
    write(&root.join("data/noise.bin"), &noise(700_000, 42));
    write(&root.join("hard-a"), b"linked\n");
    fs::hard_link(root.join("hard-a"), root.join("hard-b")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("/opt/python/bin/python3.11", root.join("bin/python")).unwrap();
    if edited {
        write(&root.join("hello.txt"), b"Hello again, West Tek!\n");
        write(
            &root.join("notebooks/new.ipynb"),
            br#"{"cells": [], "nbformat": 4}"#,
        );
    }
    let t = |p: &str, s: i64, n: u32| set_mtime(&root.join(p), s, n);
    t("hello.txt", 1_700_000_000, 123_456_789);
    t("donn\u{e9}es/na\u{ef}ve file.txt", 1_700_000_001, 1);
    t("empty", 1_600_000_000, 0);
    t("bin/run.sh", 1_700_000_002, 999_999_999);
    t("data/table.csv", 1_700_000_003, 3);
    t("data/noise.bin", 1_700_000_004, 4);
    t("hard-a", 1_700_000_005, 5);
    t("link", 1_700_000_006, 6);
    t("bin/python", 1_700_000_007, 7);
    if edited {
        t("notebooks/new.ipynb", 1_700_000_100, 100);
        t("notebooks", 1_700_000_101, 0);
    }
    for d in ["donn\u{e9}es", "bin", "data"] {
        t(d, 1_690_000_000, 500);
    }
    mode(root, 0o750);
    set_mtime(root, 1_690_000_001, 1);
}

/// Writes the fixture. Run once, on purpose:
/// `WESTTEK_WRITE_GOLDEN=1 cargo test -p westtek-vault --test it golden -- --ignored`
#[test]
#[ignore = "writes the committed fixture; run once on purpose"]
fn write_the_golden_v1_fixture() {
    if std::env::var_os("WESTTEK_WRITE_GOLDEN").is_none() {
        return;
    }
    let dir = fixture_dir();
    assert!(!dir.exists(), "the fixture exists; it is never rewritten");
    let t = tempfile::tempdir().unwrap();
    let (one, two) = (t.path().join("one"), t.path().join("two"));
    golden_tree(&one, false);
    golden_tree(&two, true);
    let opts = InitOptions {
        pack_target: 1024 * 1024,
        ..InitOptions::default()
    };
    let v = Vault::init_with(
        Arc::new(LocalStorage::new(&dir)),
        &KeySource::Password(GOLDEN_PASSWORD.into()),
        opts,
    )
    .unwrap();
    let mut req = request(vec![layer("home", &one)], None);
    req.metadata = serde_json::json!({"fixture": "golden-v1", "snapshot": 1});
    let s1 = v.snapshot(&req, progress()).unwrap();
    let mut req = request(vec![layer("home", &two)], Some(s1.id.clone()));
    req.metadata = serde_json::json!({"fixture": "golden-v1", "snapshot": 2});
    let s2 = v.snapshot(&req, progress()).unwrap();
    for (s, tree) in [(&s1, &one), (&s2, &two)] {
        println!("{} {}", s.id, s.root_hash);
        for (p, d) in image(tree).entries {
            println!("    (\"{}\", \"{d}\"),", p.display());
        }
    }
}

const SNAPSHOT_1: (&str, &str) = (
    "01a202cd-bb5e-7136-b195-96215b32b5be",
    "8c26e6c62231620512a08c2c0fe6f8fabeda7b768ba44c0d61e1e7591869e1bb",
);
const SNAPSHOT_2: (&str, &str) = (
    "01a202cd-bc4a-76ba-bc4d-d7f184b24d04",
    "d6c79bb1ce35d861cba5b8ee45f46e11b89c769f46cd41ae991efa1d781b52ea",
);

const TREE_1: &[(&str, &str)] = &[
    ("bin", "dir 755 mtime 1690000000.000000500"),
    ("bin/python", "symlink -> /opt/python/bin/python3.11 mtime 1700000007.000000007"),
    ("bin/run.sh", "file 755 size 35 mtime 1700000002.999999999 blake3 495bc3c3f2e29b9d9e905478b2306441c7824b082def72cd38ddcfed1a7e4964"),
    ("data", "dir 755 mtime 1690000000.000000500"),
    ("data/noise.bin", "file 644 size 700000 mtime 1700000004.000000004 blake3 ec88fec2790e5d778ce38f9345c39d9fc0fe8bcfcbdb777d1a2dc6b0504908e0"),
    ("data/table.csv", "file 644 size 104000 mtime 1700000003.000000003 blake3 aa986541eb20b3c084746418a8f7127349f041dd061dd968a6f5fe8a2bf7e6ea"),
    ("données", "dir 755 mtime 1690000000.000000500"),
    ("données/naïve file.txt", "file 644 size 10 mtime 1700000001.000000001 blake3 f89d4d7d7ce635dc4066a08d1c6b0586714d644e4d9d9bc0db89d4b80b50fbb4"),
    ("empty", "file 644 size 0 mtime 1600000000.000000000 blake3 af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
    ("hard-a", "file 644 size 7 mtime 1700000005.000000005 blake3 7fde9f117e6999a2648bcaf714caa081b7a32c90baa98a94c43bf34193a893b5"),
    ("hard-b", "file 644 size 7 mtime 1700000005.000000005 blake3 7fde9f117e6999a2648bcaf714caa081b7a32c90baa98a94c43bf34193a893b5"),
    ("hello.txt", "file 644 size 17 mtime 1700000000.123456789 blake3 fd6c859776de2d89ae67adb0f5d5225512ffe459c50f121acac544ec0313e51f"),
    ("link", "symlink -> hello.txt mtime 1700000006.000000006"),
];

const TREE_2: &[(&str, &str)] = &[
    ("bin", "dir 755 mtime 1690000000.000000500"),
    ("bin/python", "symlink -> /opt/python/bin/python3.11 mtime 1700000007.000000007"),
    ("bin/run.sh", "file 755 size 35 mtime 1700000002.999999999 blake3 495bc3c3f2e29b9d9e905478b2306441c7824b082def72cd38ddcfed1a7e4964"),
    ("data", "dir 755 mtime 1690000000.000000500"),
    ("data/noise.bin", "file 644 size 700000 mtime 1700000004.000000004 blake3 ec88fec2790e5d778ce38f9345c39d9fc0fe8bcfcbdb777d1a2dc6b0504908e0"),
    ("data/table.csv", "file 644 size 104000 mtime 1700000003.000000003 blake3 aa986541eb20b3c084746418a8f7127349f041dd061dd968a6f5fe8a2bf7e6ea"),
    ("données", "dir 755 mtime 1690000000.000000500"),
    ("données/naïve file.txt", "file 644 size 10 mtime 1700000001.000000001 blake3 f89d4d7d7ce635dc4066a08d1c6b0586714d644e4d9d9bc0db89d4b80b50fbb4"),
    ("empty", "file 644 size 0 mtime 1600000000.000000000 blake3 af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
    ("hard-a", "file 644 size 7 mtime 1700000005.000000005 blake3 7fde9f117e6999a2648bcaf714caa081b7a32c90baa98a94c43bf34193a893b5"),
    ("hard-b", "file 644 size 7 mtime 1700000005.000000005 blake3 7fde9f117e6999a2648bcaf714caa081b7a32c90baa98a94c43bf34193a893b5"),
    ("hello.txt", "file 644 size 23 mtime 1700000000.123456789 blake3 fdaf20418ac68f2d441bedae20ffad1cf0eecffff84a25e79b5a34a206ff282a"),
    ("link", "symlink -> hello.txt mtime 1700000006.000000006"),
    ("notebooks", "dir 755 mtime 1700000101.000000000"),
    ("notebooks/new.ipynb", "file 644 size 28 mtime 1700000100.000000100 blake3 86d23ae20da7042886a3971bc490a88b482a629776713e136ea8279d97abb92f"),
];

#[test]
fn the_golden_v1_vault_still_opens_verifies_and_restores_exactly() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("vault");
    copy(&fixture_dir(), &dir);
    let v = Vault::open_local(&dir, &KeySource::Password(GOLDEN_PASSWORD.into())).unwrap();
    assert!(matches!(
        Vault::open_local(&dir, &KeySource::Password("not it".into())),
        Err(VaultError::WrongKey)
    ));
    let listed: Vec<(String, String)> = v
        .list()
        .unwrap()
        .into_iter()
        .map(|s| (s.id.to_string(), s.root_hash))
        .collect();
    let want = |(a, b): (&str, &str)| (a.to_string(), b.to_string());
    assert_eq!(listed, vec![want(SNAPSHOT_1), want(SNAPSHOT_2)]);
    let rep = v.verify(true, progress()).unwrap();
    assert!(rep.is_ok() && rep.warnings.is_empty(), "{rep:#?}");
    for ((id, _), tree, n) in [(SNAPSHOT_1, TREE_1, 1), (SNAPSHOT_2, TREE_2, 2)] {
        let id = SnapshotId::parse(id).unwrap();
        assert_eq!(
            v.metadata(&id).unwrap(),
            serde_json::json!({"fixture": "golden-v1", "snapshot": n})
        );
        let out = t.path().join(format!("out-{n}"));
        restore_to(&v, &id, vec![("home", &out)]).unwrap();
        let got: Vec<(String, String)> = image(&out)
            .entries
            .into_iter()
            .map(|(p, d)| (p.display().to_string(), d))
            .collect();
        let expected: Vec<(String, String)> = tree
            .iter()
            .map(|(p, d)| (p.to_string(), d.to_string()))
            .collect();
        assert_eq!(got, expected, "snapshot {n}");
        assert_eq!(
            image(&out).link_groups,
            vec![vec![PathBuf::from("hard-a"), PathBuf::from("hard-b")]]
        );
    }
    let d = v
        .diff(
            &SnapshotId::parse(SNAPSHOT_1.0).unwrap(),
            &SnapshotId::parse(SNAPSHOT_2.0).unwrap(),
        )
        .unwrap();
    assert_eq!(d.layers[0].added.len(), 2);
    assert_eq!(d.layers[0].changed.len(), 1);
}

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for ent in fs::read_dir(from).unwrap() {
        let ent = ent.unwrap();
        if ent.file_type().unwrap().is_dir() {
            copy(&ent.path(), &to.join(ent.file_name()));
        } else {
            fs::copy(ent.path(), to.join(ent.file_name())).unwrap();
        }
    }
}
