//! The S3 adapter over the wire against moto's server: the storage port's
//! contract, multipart uploads, whole vaults on S3 (round trip, incremental,
//! verify, gc), a vault folder copied into a bucket, and an archived pack
//! thawed through RestoreObject.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::types::StorageClass;
use westtek_vault::*;
use westtek_vault_aws::testing::Moto;
use westtek_vault_aws::{
    client_for_endpoint, kms_client_for_endpoint, runtime, KmsWrapper, S3Options, S3Storage,
    ThawState,
};

fn options() -> S3Options {
    S3Options {
        // Small, so tests exercise multipart (S3's minimum part is 5 MiB).
        multipart_threshold: 6 << 20,
        part_size: 5 << 20,
        ..S3Options::default()
    }
}

/// A bucket on `moto` and the storage over `prefix` in it.
fn storage(moto: &Moto, bucket: &str, prefix: &str, opts: S3Options) -> Arc<S3Storage> {
    let rt = runtime().unwrap();
    let client = client_for_endpoint(&moto.endpoint(), "test", "test");
    if let Err(e) = rt.block_on(client.create_bucket().bucket(bucket).send()) {
        assert!(
            format!("{e:?}").contains("BucketAlreadyOwnedByYou"),
            "{e:?}"
        );
    }
    Arc::new(S3Storage::with_client(client, bucket, prefix, opts, rt))
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn key() -> KeySource {
    KeySource::Password("correct horse battery staple".into())
}

fn init_options() -> InitOptions {
    InitOptions {
        zstd_level: 3,
        pack_target: 8 << 20,
        argon2: Argon2Params {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        },
    }
}

fn layer(root: &Path) -> LayerSource {
    LayerSource {
        name: "env".into(),
        root: root.to_path_buf(),
        exclude: vec![],
        include: vec![],
    }
}

fn snap(v: &Vault, root: &Path, parent: Option<SnapshotId>) -> SnapshotSummary {
    v.snapshot(
        &SnapshotRequest {
            layers: vec![layer(root)],
            parent,
            metadata: serde_json::json!({"by": "s3 test"}),
            changed_hint: None,
        },
        Arc::new(NoProgress),
    )
    .unwrap()
}

fn restore(v: &Vault, id: &SnapshotId, to: &Path) -> Result<RestoreReport> {
    v.restore(
        id,
        &RestoreRequest {
            targets: vec![("env".into(), to.to_path_buf())],
            verify: true,
        },
        Arc::new(NoProgress),
    )
}

/// Every entry's kind, mode, mtime, content hash or link target.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir(root) {
        let rel = e.strip_prefix(root).unwrap().display().to_string();
        let m = fs::symlink_metadata(&e).unwrap();
        let what = if m.file_type().is_symlink() {
            format!("link {}", fs::read_link(&e).unwrap().display())
        } else if m.is_dir() {
            format!("dir {:o}", m.mode() & 0o7777)
        } else {
            let data = fs::read(&e).unwrap();
            format!(
                "file {:o} {} {} {:x}",
                m.mode() & 0o7777,
                m.mtime(),
                data.len(),
                data.iter()
                    .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(*b)))
            )
        };
        out.insert(rel, what);
    }
    out
}

fn walkdir(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("venv/lib/site-packages/pkg")).unwrap();
    fs::create_dir_all(root.join("home/data")).unwrap();
    fs::write(
        root.join("venv/lib/site-packages/pkg/__init__.py"),
        "VALUE = 1\n",
    )
    .unwrap();
    fs::write(root.join("home/data/big.bin"), noise(20 << 20, 7)).unwrap();
    fs::write(root.join("home/notes é.txt"), "unicode name\n").unwrap();
    fs::write(root.join("home/empty"), "").unwrap();
    std::os::unix::fs::symlink("data/big.bin", root.join("home/link")).unwrap();
    fs::hard_link(root.join("home/notes é.txt"), root.join("home/hard")).unwrap();
}

#[test]
fn the_storage_contract_holds_on_s3() {
    let moto = Moto::start();
    let s = storage(&moto, "contract", "vaults/a", options());
    assert_eq!(s.location(), "s3://contract/vaults/a");
    s.put("config", b"hello").unwrap();
    assert!(matches!(
        s.put("config", b"other"),
        Err(StorageError::AlreadyExists(_))
    ));
    assert_eq!(s.get("config").unwrap(), b"hello", "never overwritten");
    assert!(matches!(s.get("missing"), Err(StorageError::NotFound(_))));
    assert!(matches!(
        s.put("Bad/Key", b"x"),
        Err(StorageError::InvalidKey(_))
    ));
    assert!(s.exists("config").unwrap());
    assert!(!s.exists("nope").unwrap());

    // Ranges, and a range past the end is a truncated object.
    let data = noise(1000, 1);
    s.put("data/00/pack1", &data).unwrap();
    assert_eq!(s.get_range("data/00/pack1", 10, 20).unwrap(), &data[10..30]);
    assert_eq!(s.get_range("data/00/pack1", 0, 0).unwrap(), b"");
    let err = s.get_range("data/00/pack1", 990, 20).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    // Multipart above the threshold, with the same create-only rule.
    let big = noise(13 << 20, 2);
    s.put("data/01/big", &big).unwrap();
    assert_eq!(s.get("data/01/big").unwrap(), big);
    assert!(matches!(
        s.put("data/01/big", &big),
        Err(StorageError::AlreadyExists(_))
    ));
    let uploads = s_list_uploads(&moto, "contract");
    assert_eq!(uploads, 0, "no multipart upload left open");

    // Listing is relative to the prefix and sees nothing outside it.
    let other = storage(&moto, "contract", "vaults/b", options());
    other.put("config", b"b").unwrap();
    let mut keys: Vec<(String, u64)> = s
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            ("config".into(), 5),
            ("data/00/pack1".into(), 1000),
            ("data/01/big".into(), 13 << 20)
        ]
    );
    assert_eq!(s.list("data/00/").unwrap().len(), 1);
    s.delete("data/00/pack1").unwrap();
    s.delete("data/00/pack1").unwrap(); // deleting a missing object is fine
    assert!(!s.exists("data/00/pack1").unwrap());
    assert_eq!(other.get("config").unwrap(), b"b");
}

fn s_list_uploads(moto: &Moto, bucket: &str) -> usize {
    let rt = runtime().unwrap();
    let client = client_for_endpoint(&moto.endpoint(), "test", "test");
    let out = rt
        .block_on(client.list_multipart_uploads().bucket(bucket).send())
        .unwrap();
    out.uploads().len()
}

#[test]
fn a_vault_on_s3_round_trips_increments_verifies_and_collects_garbage() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    sample_tree(&src);
    let s = storage(&moto, "lab-vault", "envs", options());
    let v = Vault::init_with(s.clone(), &key(), init_options()).unwrap();
    let first = snap(&v, &src, None);
    assert!(first.stored_bytes_added > 20 << 20);

    // Reopened from the bucket alone, it restores the tree exactly.
    let v = Vault::open(s.clone(), &key()).unwrap();
    let out = dir.path().join("out");
    restore(&v, &first.id, &out).unwrap();
    assert_eq!(tree(&out), tree(&src));
    assert_eq!(
        fs::metadata(out.join("home/hard")).unwrap().ino(),
        fs::metadata(out.join("home/notes é.txt")).unwrap().ino()
    );

    // An incremental stores only what changed.
    fs::write(
        src.join("venv/lib/site-packages/pkg/__init__.py"),
        "VALUE = 2\n",
    )
    .unwrap();
    let second = snap(&v, &src, Some(first.id.clone()));
    assert!(
        second.stored_bytes_added < 1 << 20,
        "{}",
        second.stored_bytes_added
    );
    let report = v.verify(true, Arc::new(NoProgress)).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.bytes_read > 20 << 20);

    // Forgetting the first snapshot and collecting keeps the second whole.
    v.delete(&first.id).unwrap();
    fs::remove_file(src.join("home/data/big.bin")).unwrap();
    fs::write(src.join("home/data/big.bin"), noise(7 << 20, 9)).unwrap();
    let third = snap(&v, &src, Some(second.id.clone()));
    v.delete(&second.id).unwrap();
    let gc = v.gc(Arc::new(NoProgress)).unwrap();
    assert!(gc.bytes_freed > 10 << 20, "{gc:?}");
    let out3 = dir.path().join("out3");
    restore(&v, &third.id, &out3).unwrap();
    assert_eq!(tree(&out3), tree(&src));
    assert!(Vault::open(s, &KeySource::Password("wrong".into())).is_err());
}

#[test]
fn a_vault_folder_copied_into_a_bucket_is_the_same_vault() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    sample_tree(&src);
    let folder = dir.path().join("vault");
    let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(&folder));
    let v = Vault::init_with(local.clone(), &key(), init_options()).unwrap();
    let id = snap(&v, &src, None).id;
    // `aws s3 sync vault/ s3://copy/lab/`, object by object.
    let s = storage(&moto, "copy", "lab", options());
    for o in local.list("").unwrap() {
        s.put(&o.key, &local.get(&o.key).unwrap()).unwrap();
    }
    let v = Vault::open(s, &key()).unwrap();
    assert_eq!(v.list().unwrap().len(), 1);
    let out = dir.path().join("out");
    restore(&v, &id, &out).unwrap();
    assert_eq!(tree(&out), tree(&src));
}

#[test]
fn an_archived_pack_is_thawed_on_first_read_and_restores_afterwards() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    sample_tree(&src);
    let s = storage(&moto, "archive", "v", options());
    let v = Vault::init_with(s.clone(), &key(), init_options()).unwrap();
    let id = snap(&v, &src, None).id;
    // What an S3 lifecycle rule does a year later: packs to Deep Archive.
    let rt = runtime().unwrap();
    let client = client_for_endpoint(&moto.endpoint(), "test", "test");
    let packs: Vec<String> = s
        .list("data/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(!packs.is_empty());
    for p in &packs {
        rt.block_on(
            client
                .copy_object()
                .bucket("archive")
                .key(format!("v/{p}"))
                .copy_source(format!("archive/v/{p}"))
                .storage_class(StorageClass::DeepArchive)
                .send(),
        )
        .unwrap();
        assert_eq!(s.thaw_state(p).unwrap(), ThawState::Archived);
    }
    // The restore cannot read them: it says so, and a thaw is requested.
    let v = Vault::open(s.clone(), &key()).unwrap();
    let err = restore(&v, &id, &dir.path().join("early")).unwrap_err();
    assert!(err.to_string().contains("archived"), "{err}");
    let states: Vec<ThawState> = packs.iter().map(|p| s.thaw_state(p).unwrap()).collect();
    assert!(
        states
            .iter()
            .any(|t| matches!(t, ThawState::Thawing | ThawState::Thawed)),
        "{states:?}"
    );
    // Once S3 has thawed every pack (moto does it at once), it restores.
    for p in &packs {
        s.request_thaw(p).unwrap();
    }
    let out = dir.path().join("out");
    restore(&v, &id, &out).unwrap();
    assert_eq!(tree(&out), tree(&src));
}

#[test]
fn a_kms_wrapped_vault_opens_only_with_its_key_and_is_shredded_with_it() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    sample_tree(&src);
    let rt = runtime().unwrap();
    let kms = kms_client_for_endpoint(&moto.endpoint(), "test", "test");
    let new_key = || {
        rt.block_on(kms.create_key().description("lab key").send())
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string()
    };
    let (lab_a, lab_b) = (new_key(), new_key());
    let wrapper = |key: &str| KmsWrapper::with_client(kms.clone(), key, runtime().unwrap());

    let s = storage(&moto, "kms-vaults", "lab-a", options());
    let v = Vault::init_with_wrapper(s.clone(), &wrapper(&lab_a), init_options()).unwrap();
    let id = snap(&v, &src, None).id;
    // The key object holds KMS ciphertext, not the key.
    let keys = s.list("keys/").unwrap();
    assert_eq!(keys.len(), 1);
    let obj: serde_json::Value = serde_json::from_slice(&s.get(&keys[0].key).unwrap()).unwrap();
    assert_eq!(obj["wrapper"], "aws-kms");
    assert!(obj["body"]["ciphertext"].as_str().unwrap().len() > 40);
    assert!(obj["body"]["key_id"].as_str().unwrap().contains(&lab_a));

    // Reopened through KMS, it restores.
    let v = Vault::open_with_wrapper(s.clone(), &wrapper(&lab_a)).unwrap();
    let out = dir.path().join("out");
    restore(&v, &id, &out).unwrap();
    assert_eq!(tree(&out), tree(&src));
    // A passphrase does not open it.
    assert!(Vault::open(s.clone(), &key()).is_err());

    // The ciphertext is bound to its vault: copied into lab B's vault it
    // does not open it.
    let sb = storage(&moto, "kms-vaults", "lab-b", options());
    Vault::init_with_wrapper(sb.clone(), &wrapper(&lab_b), init_options()).unwrap();
    for k in sb.list("keys/").unwrap() {
        sb.delete(&k.key).unwrap();
    }
    sb.put(&keys[0].key, &s.get(&keys[0].key).unwrap()).unwrap();
    let err = Vault::open_with_wrapper(sb, &wrapper(&lab_a))
        .err()
        .unwrap();
    assert!(matches!(err, VaultError::WrongKey), "{err}");

    // Crypto-shredding (moto does not refuse Decrypt for disabled or
    // deleted keys, so that is checked on the SDK's mock client below).
    rt.block_on(kms.disable_key().key_id(&lab_a).send())
        .unwrap();
    rt.block_on(kms.enable_key().key_id(&lab_a).send()).unwrap();
    assert!(Vault::open_with_wrapper(s, &wrapper(&lab_a)).is_ok());
}

/// KMS's answers for a disabled key and a key pending deletion, on the SDK's
/// mock client with the modeled error shapes (moto does not produce them).
#[test]
fn a_shredded_lab_key_is_named_as_the_reason_the_vault_does_not_open() {
    use aws_sdk_kms::operation::decrypt::DecryptError;
    use aws_sdk_kms::types::error::{DisabledException, KmsInvalidStateException};
    use aws_smithy_mocks::{mock, mock_client};
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
    // A vault whose key object is KMS ciphertext (made by a mock Encrypt).
    let encrypt = mock!(aws_sdk_kms::Client::encrypt).then_output(|| {
        aws_sdk_kms::operation::encrypt::EncryptOutput::builder()
            .key_id("arn:aws:kms:eu-west-1:111122223333:key/lab-a")
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(vec![7u8; 64]))
            .build()
    });
    let client = mock_client!(aws_sdk_kms, [&encrypt]);
    let w = KmsWrapper::with_client(client, "alias/lab-a", runtime().unwrap());
    Vault::init_with_wrapper(local.clone(), &w, init_options()).unwrap();
    let disabled = mock!(aws_sdk_kms::Client::decrypt).then_error(|| {
        DecryptError::DisabledException(
            DisabledException::builder()
                .message("arn:aws:kms:eu-west-1:111122223333:key/lab-a is disabled.")
                .build(),
        )
    });
    let deleted = mock!(aws_sdk_kms::Client::decrypt).then_error(|| {
        DecryptError::KmsInvalidStateException(
            KmsInvalidStateException::builder()
                .message("key/lab-a is pending deletion.")
                .build(),
        )
    });
    for (rule, words) in [(&disabled, "is disabled"), (&deleted, "pending deletion")] {
        let client = mock_client!(aws_sdk_kms, [rule]);
        let w = KmsWrapper::with_client(client, "alias/lab-a", runtime().unwrap());
        let err = Vault::open_with_wrapper(local.clone(), &w).err().unwrap();
        let text = err.to_string();
        assert!(text.contains(words), "{text}");
        assert!(
            text.contains("arn:aws:kms:eu-west-1:111122223333:key/lab-a"),
            "{text}"
        );
        assert!(!matches!(err, VaultError::WrongKey));
    }
}
