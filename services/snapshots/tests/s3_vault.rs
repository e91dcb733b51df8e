//! The snapshot engine over a vault in S3 (moto's server) with its key
//! wrapped by KMS: an environment captured into the bucket (encrypted) and
//! restored into a new environment, as the AWS profile runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use westtek_domain::ports::{CaptureRequest, ProgressSink, SnapshotEngine};
use westtek_domain::{EnvironmentId, LabId};
use westtek_snapshots::engine::LocalSnapshotEngine;
use westtek_vault::Storage;
use westtek_vault_aws::testing::Moto;
use westtek_vault_aws::{
    client_for_endpoint, kms_client_for_endpoint, runtime, KmsWrapper, S3Options, S3Storage,
};

struct Quiet;
impl ProgressSink for Quiet {
    fn update(&self, _: f32, _: &str) {}
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// A small environment root (no interpreter of its own: no base layer).
fn environment(root: &Path) {
    write(
        &root.join("venv/pyvenv.cfg"),
        b"home = /nonexistent-python/bin\nversion_info = 3.11.7\n",
    );
    write(
        &root.join("venv/lib/python3.11/site-packages/tabulate-0.9.0.dist-info/METADATA"),
        b"Metadata-Version: 2.1\nName: tabulate\nVersion: 0.9.0\n",
    );
    write(
        &root.join("venv/lib/python3.11/site-packages/tabulate/__init__.py"),
        b"def tabulate(rows): return str(rows)\n",
    );
    write(
        &root.join("home/analysis.ipynb"),
        br#"{"cells": [{"cell_type": "code", "execution_count": null, "id": "a", "metadata": {}, "outputs": [], "source": ["import tabulate"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#,
    );
    write(
        &root.join("home/data/secret-results.csv"),
        &b"trial,result\n1,0.93\n".repeat(2000),
    );
    for d in ["jupyter/config", "jupyter/data", "ipython"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
}

#[test]
fn an_environment_goes_to_an_s3_vault_under_a_kms_key_and_comes_back() {
    // The engine's async API on a runtime of the test's; the AWS clients
    // block on their own runtimes from the engine's blocking threads.
    let platform = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::start();
    let rt = runtime().unwrap();
    let s3 = client_for_endpoint(&moto.endpoint(), "test", "test");
    rt.block_on(s3.create_bucket().bucket("lab-vault").send())
        .unwrap();
    let kms = kms_client_for_endpoint(&moto.endpoint(), "test", "test");
    let key_id = rt
        .block_on(kms.create_key().send())
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let envs = dir.path().join("envs");
    let env = EnvironmentId::new();
    environment(&envs.join(env.to_string()));

    let storage = Arc::new(S3Storage::with_client(
        s3.clone(),
        "lab-vault",
        "platform",
        S3Options::default(),
        runtime().unwrap(),
    ));
    let wrapper = KmsWrapper::with_client(kms.clone(), &key_id, runtime().unwrap());
    let engine = LocalSnapshotEngine::open_or_init_in(
        storage.clone(),
        &wrapper,
        envs.clone(),
        dir.path().join("scratch"),
    )
    .unwrap();
    let captured = platform
        .block_on(engine.capture(
            &CaptureRequest {
                env_id: env,
                lab_id: LabId::new(),
                parent: None,
                notes: Some("before the conference".into()),
                staged: None,
            },
            Arc::new(Quiet),
        ))
        .unwrap();
    assert!(
        captured.location.starts_with("s3://lab-vault/platform#"),
        "{}",
        captured.location
    );
    assert_eq!(captured.metadata.installed_packages.len(), 1);

    // What landed in the bucket: packs, an index, the snapshot, the key
    // object; no plaintext of the environment anywhere.
    let objects = storage.list("").unwrap();
    assert!(
        objects.iter().any(|o| o.key.starts_with("data/")),
        "{objects:?}"
    );
    assert!(objects.iter().any(|o| o.key.starts_with("snapshots/")));
    for o in &objects {
        let bytes = storage.get(&o.key).unwrap();
        for needle in [
            &b"trial,result"[..],
            b"tabulate(rows)",
            b"before the conference",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext",
                o.key
            );
        }
    }

    // A second engine (another process, another day) opens the same vault
    // through KMS and restores into a new environment, byte for byte.
    let wrapper = KmsWrapper::with_client(kms, &key_id, runtime().unwrap());
    let engine = LocalSnapshotEngine::open_or_init_in(
        storage,
        &wrapper,
        envs.clone(),
        dir.path().join("scratch"),
    )
    .unwrap();
    let target = EnvironmentId::new();
    platform
        .block_on(engine.restore(&captured.engine_id, env, target, Arc::new(Quiet)))
        .unwrap();
    for f in [
        "home/analysis.ipynb",
        "home/data/secret-results.csv",
        "venv/lib/python3.11/site-packages/tabulate/__init__.py",
    ] {
        assert_eq!(
            std::fs::read(envs.join(target.to_string()).join(f)).unwrap(),
            std::fs::read(envs.join(env.to_string()).join(f)).unwrap(),
            "{f}"
        );
    }
}
