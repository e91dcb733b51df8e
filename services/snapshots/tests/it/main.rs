//! The snapshot engine with the change journal: which captures read only the
//! journaled paths, which walk, and what the snapshot's record says.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use westtek_domain::ports::{CaptureRequest, ProgressSink, SnapshotEngine};
use westtek_domain::{EnvironmentId, LabId};
use westtek_journal::{Journal, JournalConfig};
use westtek_snapshots::engine::LocalSnapshotEngine;
use westtek_vault::SnapshotId;

struct Quiet;
impl ProgressSink for Quiet {
    fn update(&self, _: f32, _: &str) {}
}

fn engine(data: &Path) -> LocalSnapshotEngine {
    LocalSnapshotEngine::open_or_init(
        &data.join("vault"),
        &data.join("keys/vault.key"),
        data.join("envs"),
        data.join("scratch"),
    )
    .unwrap()
    .with_journal(Arc::new(Journal::new(JournalConfig::default()).unwrap()))
}

async fn capture(
    e: &LocalSnapshotEngine,
    env: EnvironmentId,
    parent: Option<&str>,
) -> (String, serde_json::Value) {
    let out = e
        .capture(
            &CaptureRequest {
                env_id: env,
                lab_id: LabId::new(),
                parent: parent.map(str::to_string),
                notes: None,
                staged: None,
            },
            Arc::new(Quiet),
        )
        .await
        .unwrap();
    let meta = e
        .vault()
        .metadata(&SnapshotId::parse(&out.engine_id).unwrap())
        .unwrap();
    (out.engine_id, meta["change_detection"].clone())
}

#[tokio::test]
async fn captures_read_the_journal_after_the_first_and_walk_after_a_restart() {
    let t = tempfile::tempdir().unwrap();
    let env = EnvironmentId::new();
    let root = t.path().join("envs").join(env.to_string());
    fs::create_dir_all(root.join("venv/lib")).unwrap();
    fs::create_dir_all(root.join("home/data")).unwrap();
    fs::write(root.join("venv/lib/a.py"), b"a = 1\n").unwrap();
    fs::write(root.join("home/nb.ipynb"), b"{\"cells\": []}").unwrap();

    let e = engine(t.path());
    let (s1, d1) = capture(&e, env, None).await;
    assert_eq!(d1["mode"], "full walk");
    fs::write(root.join("home/data/new.csv"), b"x,y\n1,2\n").unwrap();
    let (s2, d2) = capture(&e, env, Some(&s1)).await;
    assert_eq!(d2["mode"], "journal", "{d2}");
    assert_eq!(d2["changed_paths"], 1);
    let restored = t.path().join("restored");
    let v = e.vault();
    let id = SnapshotId::parse(&s2).unwrap();
    let summary = v.get(&id).unwrap();
    assert!(
        summary.files_reused >= 2,
        "the unchanged files were not read"
    );
    let req = westtek_vault::RestoreRequest {
        targets: vec![("home".into(), restored.clone())],
        verify: true,
    };
    v.restore(&id, &req, Arc::new(Quiet)).unwrap();
    assert_eq!(
        fs::read(restored.join("data/new.csv")).unwrap(),
        b"x,y\n1,2\n"
    );

    // The platform restarts: a new engine and journal know nothing since s2.
    drop(e);
    let e = engine(t.path());
    fs::write(root.join("venv/lib/b.py"), b"b = 2\n").unwrap();
    let (s3, d3) = capture(&e, env, Some(&s2)).await;
    assert_eq!(d3["mode"], "full walk");
    assert!(
        d3["reason"]
            .as_str()
            .unwrap()
            .contains("not journaled since"),
        "{d3}"
    );
    let (_, d4) = capture(&e, env, Some(&s3)).await;
    assert_eq!(d4["mode"], "journal", "{d4}");
    assert_eq!(d4["changed_paths"], 0);
}
