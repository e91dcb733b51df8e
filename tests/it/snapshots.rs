//! The snapshot engine end to end: a real environment captured into the
//! vault, deleted, restored bit for bit at its own path, restored at a new
//! path where its kernel still imports numpy, drilled, diffed, deduplicated.

use crate::jupyter::execute;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use westtek_tests::{assert_problem, build_env, spawn_app, spawn_app_with};

/// Everything a bit-for-bit restore must reproduce, per path.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    mtime_ns: i128,
    size: u64,
    content: String,
    link_group: Option<usize>,
}

fn tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut inodes: Vec<u64> = Vec::new();
    for e in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if rel.starts_with("jupyter/runtime") {
            continue;
        }
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        let ft = m.file_type();
        let (kind, content) = if ft.is_symlink() {
            (
                "symlink",
                std::fs::read_link(e.path())
                    .unwrap()
                    .to_string_lossy()
                    .to_string(),
            )
        } else if ft.is_dir() {
            ("dir", String::new())
        } else {
            (
                "file",
                blake3::hash(&std::fs::read(e.path()).unwrap())
                    .to_hex()
                    .to_string(),
            )
        };
        // Hard-link groups by first appearance (inode numbers change on restore).
        let link_group = (ft.is_file() && m.nlink() > 1 && rel.starts_with("home")).then(|| {
            match inodes.iter().position(|i| *i == m.ino()) {
                Some(p) => p,
                None => {
                    inodes.push(m.ino());
                    inodes.len() - 1
                }
            }
        });
        let mtime_ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        let mode = m.permissions().mode();
        // A directory's mtime is not compared at the root (the restore made it).
        let mtime_ns = if rel.is_empty() { 0 } else { mtime_ns };
        out.insert(
            rel,
            Entry {
                kind,
                mode,
                mtime_ns,
                size: if ft.is_dir() { 0 } else { m.len() },
                content,
                link_group,
            },
        );
    }
    out
}

fn notebook(imports: &str) -> String {
    json!({
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Résumé of the experiment"]},
            {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": null, "source": [imports]},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5
    })
    .to_string()
}

#[tokio::test]
async fn an_environment_is_restored_bit_for_bit_and_runs_numpy_at_a_new_path() {
    let app = spawn_app().await;
    let t = app.admin_token.clone();
    let env_id = build_env(&app, &t, "vaulted", json!(["numpy"])).await;
    let root = app.data_dir.path().join("data/envs").join(&env_id);
    let home = root.join("home");

    // A home with the awkward cases.
    std::fs::write(
        home.join("analysis.ipynb"),
        notebook("import numpy as np\nnp.arange(3).sum()"),
    )
    .unwrap();
    std::fs::create_dir_all(home.join("données brutes/run 1")).unwrap();
    std::fs::write(
        home.join("données brutes/run 1/mesures été.csv"),
        "t,v\n0,1.5\n1,2.5\n",
    )
    .unwrap();
    std::fs::write(home.join("empty file"), b"").unwrap();
    std::fs::write(home.join("run.sh"), "#!/bin/sh\necho ok\n").unwrap();
    std::fs::set_permissions(home.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(
        "données brutes/run 1/mesures été.csv",
        home.join("latest.csv"),
    )
    .unwrap();
    std::fs::hard_link(home.join("run.sh"), home.join("run-again.sh")).unwrap();

    // Snapshot through the seed path, follow the job live.
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            &t,
            Some(json!({"environment_id": env_id, "notes": "before the rerun"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let snap_id = acc["snapshot_id"].as_str().unwrap().to_string();
    let (_, snap) = app
        .call(Method::GET, &format!("/api/snapshots/{snap_id}"), &t, None)
        .await;
    assert_eq!(snap["status"], "complete", "{snap}");
    assert_eq!(snap["checksum"].as_str().unwrap().len(), 64);
    assert_eq!(snap["metadata"]["notes"], "before the rerun");
    assert_eq!(snap["metadata"]["notebook_count"], 1);
    assert!(snap["metadata"]["installed_packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p.as_str().unwrap().starts_with("numpy==")));
    assert!(snap["metadata"]["jupyter_version"].is_string());
    assert!(snap["s3_location"]
        .as_str()
        .unwrap()
        .contains(snap["checksum"].as_str().map(|_| "#").unwrap()));
    let (_, env) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env_id}"),
            &t,
            None,
        )
        .await;
    assert!(env["last_snapshot"].is_string());

    // Delete everything, restore at the same path: identical, bit for bit.
    let before = tree(&root);
    assert!(before.len() > 1000, "a real venv: {} entries", before.len());
    std::fs::remove_dir_all(&root).unwrap();
    let engine_id = app
        .app
        .state
        .store
        .get_snapshot(snap_id.parse().unwrap())
        .await
        .unwrap()
        .vault_snapshot_id
        .unwrap();
    let eid = westtek_domain::EnvironmentId::parse(&env_id).unwrap();
    let progress: std::sync::Arc<dyn westtek_domain::ports::ProgressSink> =
        std::sync::Arc::new(NoProgress);
    let out = app
        .app
        .state
        .snapshots
        .restore(&engine_id, eid, eid, progress)
        .await
        .unwrap();
    assert!(
        out.relocated.is_empty(),
        "same path, same interpreter: nothing to rewrite: {:?}",
        out.relocated
    );
    let after = tree(&root);
    let differing: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    assert!(
        differing.is_empty(),
        "restored entries differ: {differing:?}"
    );
    assert_eq!(before.len(), after.len(), "entries added or lost");
    assert_eq!(after["home/latest.csv"].kind, "symlink");
    assert_eq!(
        after["home/run.sh"].link_group,
        after["home/run-again.sh"].link_group
    );
    assert!(after["home/run.sh"].link_group.is_some());

    // A second snapshot of the unchanged environment adds < 1%.
    let (_, acc2) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            &t,
            Some(json!({"environment_id": env_id})),
        )
        .await;
    let job2 = app.wait_job(acc2["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job2["status"], "succeeded", "{job2}");
    let (_, snap2) = app
        .call(
            Method::GET,
            &format!("/api/snapshots/{}", acc2["snapshot_id"].as_str().unwrap()),
            &t,
            None,
        )
        .await;
    let (added, size) = (
        snap2["stored_bytes_added"].as_u64().unwrap(),
        snap2["size_bytes"].as_u64().unwrap(),
    );
    assert!(
        added * 100 < size,
        "second snapshot added {added} of {size} bytes"
    );
    assert_eq!(snap2["parent_id"], snap_id.as_str());

    // Restore into a new environment at a new path; its kernel imports numpy.
    let (s, racc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{snap_id}/restore"),
            &t,
            Some(json!({"mode": "new_environment", "name": "vaulted copy"})),
        )
        .await;
    assert_problem_value(
        s,
        &racc,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (s, racc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{snap_id}/restore"),
            &t,
            Some(json!({"mode": "new_environment", "name": "vaulted-copy"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{racc}");
    let rjob = app.wait_job(racc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(rjob["status"], "succeeded", "{rjob}");
    let copy = racc["environment_id"].as_str().unwrap().to_string();
    assert_ne!(copy, env_id);
    let copy_root = app.data_dir.path().join("data/envs").join(&copy);
    assert!(copy_root
        .join("home/données brutes/run 1/mesures été.csv")
        .is_file());
    let (s, launched) = app
        .call(
            Method::POST,
            "/api/environments/jupyter",
            &t,
            Some(json!({"environment_id": copy})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{launched}");
    let (s, kernel) = app
        .call(
            Method::POST,
            &format!("/jupyter/{copy}/api/kernels"),
            &t,
            Some(json!({"name": "python3"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{kernel}");
    let ws = format!(
        "{}/jupyter/{copy}/api/kernels/{}/channels",
        app.url.replacen("http", "ws", 1),
        kernel["id"].as_str().unwrap()
    );
    let prefix = execute(&ws, &t, "import sys, numpy; sys.prefix").await;
    assert!(
        prefix.contains(copy_root.to_str().unwrap()),
        "the kernel runs from the restored copy: {prefix}"
    );
    let _ = app
        .call(
            Method::DELETE,
            &format!("/api/environments/{copy}/jupyter"),
            &t,
            None,
        )
        .await;

    // The restore drill restores everything, interpreter included, and
    // imports what the notebooks import.
    let (s, dacc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{snap_id}/drill"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{dacc}");
    let djob = app.wait_job(dacc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(djob["status"], "succeeded", "{djob}");
    let (_, drilled) = app
        .call(Method::GET, &format!("/api/snapshots/{snap_id}"), &t, None)
        .await;
    assert_eq!(drilled["drill"]["passed"], true, "{drilled}");
    assert!(drilled["drill"]["modules_checked"]
        .as_array()
        .unwrap()
        .contains(&json!("numpy")));

    // A package install shows in the diff with its severity.
    let uv = std::process::Command::new("uv")
        .args([
            "pip",
            "install",
            "--python",
            root.join("venv/bin/python").to_str().unwrap(),
            "tabulate",
        ])
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    assert!(
        uv.status.success(),
        "{}",
        String::from_utf8_lossy(&uv.stderr)
    );
    let (_, acc3) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            &t,
            Some(json!({"environment_id": env_id})),
        )
        .await;
    let job3 = app.wait_job(acc3["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job3["status"], "succeeded", "{job3}");
    let (s, d) = app
        .call(
            Method::GET,
            &format!(
                "/api/snapshots/{snap_id}/diff/{}",
                acc3["snapshot_id"].as_str().unwrap()
            ),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let added: Vec<&Value> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["subject"] == "tabulate")
        .collect();
    assert_eq!(added.len(), 1, "{d}");
    assert!(d["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["path"].as_str().unwrap().contains("tabulate")));

    // Snapshot listing, lab isolation, deletion.
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/api/snapshots?environment_id={env_id}"),
            &t,
            None,
        )
        .await;
    assert_eq!(list["total"], 3);
    let other = app.create_lab("elsewhere").await;
    let stranger = app.create_user(&other, "stranger", "researcher").await;
    assert_problem(
        app.req(Method::GET, &format!("/api/snapshots/{snap_id}"), &stranger)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.req(
            Method::POST,
            &format!("/api/snapshots/{snap_id}/restore"),
            &stranger,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/snapshots/{}", acc2["snapshot_id"].as_str().unwrap()),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/api/snapshots?environment_id={env_id}"),
            &t,
            None,
        )
        .await;
    assert_eq!(list["total"], 2);
    let (_, audit) = app
        .call(Method::GET, "/api/audit?action=snapshot.created", &t, None)
        .await;
    assert_eq!(audit["total"], 3);
    app.stop().await;
}

fn assert_problem_value(s: StatusCode, body: &Value, status: StatusCode, code: &str) {
    assert_eq!(s, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

struct NoProgress;

impl westtek_domain::ports::ProgressSink for NoProgress {
    fn update(&self, _: f32, _: &str) {}
}

#[tokio::test]
async fn retention_expires_old_snapshots_and_the_storage_quota_stops_new_ones() {
    let app = spawn_app().await;
    let t = app.admin_token.clone();
    let env_id = build_env(&app, &t, "kept", json!([])).await;
    let (s, env) = app
        .call(
            Method::PATCH,
            &format!("/api/environments/{env_id}"),
            &t,
            Some(json!({"retention": {"keep_last": 1}, "drill_interval_days": 7})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{env}");
    assert_eq!(env["retention"]["keep_last"], 1);
    assert_eq!(env["drill_interval_days"], 7);
    let r = app
        .req(Method::PATCH, &format!("/api/environments/{env_id}"), &t)
        .json(&json!({"retention": {"keep_last": 0}}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (s, acc) = app
            .call(
                Method::POST,
                "/api/environments/snapshot",
                &t,
                Some(json!({"environment_id": env_id})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
        let job = app.wait_job(acc["job_id"].as_str().unwrap(), &t).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        ids.push(acc["snapshot_id"].as_str().unwrap().to_string());
    }
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/api/snapshots?environment_id={env_id}"),
            &t,
            None,
        )
        .await;
    let left: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        vec![ids[1].as_str()],
        "keep_last 1 keeps only the newest"
    );
    let (_, audit) = app
        .call(
            Method::GET,
            &format!("/api/audit?action=snapshot.expired&target_id={}", ids[0]),
            &t,
            None,
        )
        .await;
    assert_eq!(audit["total"], 1);

    // Restore in place: the current state is snapshotted first, then the
    // snapshot's state comes back.
    let home = app
        .data_dir
        .path()
        .join("data/envs")
        .join(&env_id)
        .join("home");
    std::fs::write(home.join("scratch.txt"), "made after the snapshot").unwrap();
    let (s, racc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{}/restore", ids[1]),
            &t,
            Some(json!({"mode": "in_place"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{racc}");
    let rjob = app.wait_job(racc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(rjob["status"], "succeeded", "{rjob}");
    assert!(
        !home.join("scratch.txt").exists(),
        "the in-place restore brought back the snapshot's home"
    );
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/api/snapshots?environment_id={env_id}"),
            &t,
            None,
        )
        .await;
    let safety = &list["items"][0];
    assert!(
        safety["metadata"]["notes"]
            .as_str()
            .unwrap()
            .starts_with("automatic: state before restoring"),
        "{list}"
    );

    // Storage accounting and quota.
    let (s, storage) = app
        .call(
            Method::GET,
            &format!("/api/labs/{}/storage", app.lab_id),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{storage}");
    assert!(storage["used_bytes"].as_u64().unwrap() > 0);
    let (s, _) = app.call(Method::PATCH, &format!("/api/labs/{}", app.lab_id), &t,
        Some(json!({"quotas": {"max_environments": 50, "max_running_servers": 10, "max_storage_bytes": 1}}))).await;
    assert_eq!(s, StatusCode::OK);
    let r = app
        .req(Method::POST, "/api/environments/snapshot", &t)
        .json(&json!({"environment_id": env_id}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "quota_exceeded").await;

    // Vault maintenance is for IT admins; the vault is intact.
    let (s, v) = app
        .call(Method::GET, "/api/vault/verify?read_data=true", &t, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["errors"], json!([]), "{v}");
    let (s, gc) = app.call(Method::POST, "/api/vault/gc", &t, None).await;
    assert_eq!(s, StatusCode::OK, "{gc}");
    let researcher = app.create_user(&app.lab_id, "rae", "researcher").await;
    assert_problem(
        app.req(Method::POST, "/api/vault/gc", &researcher)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A researcher of the same lab who does not own the environment may not
    // copy it out by restoring its snapshot.
    let r = app
        .req(
            Method::POST,
            &format!("/api/snapshots/{}/restore", ids[1]),
            &researcher,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    // Bad input: an unknown environment, a malformed id, an unknown field.
    let r = app
        .req(Method::POST, "/api/environments/snapshot", &t)
        .json(&json!({"environment_id": uuid::Uuid::new_v4().to_string()}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .req(Method::POST, "/api/environments/snapshot", &t)
        .json(&json!({"environment_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_id").await;
    let r = app
        .req(Method::POST, "/api/environments/snapshot", &t)
        .json(&json!({"environment_id": env_id, "compress": true}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    app.stop().await;
}

/// Races and leftovers around the snapshot lifecycle: concurrent snapshot
/// requests, deleting an environment or a parent snapshot while a snapshot
/// is being taken, using the snapshots of a deleted environment, and a drill
/// that cannot run at all.
#[tokio::test]
async fn snapshot_races_and_snapshots_of_deleted_environments() {
    use westtek_domain::ports::Write;
    use westtek_domain::{SnapshotId, SnapshotStatus};
    let app = spawn_app().await;
    let t = app.admin_token.clone();
    let env_id = build_env(&app, &t, "racy", json!([])).await;

    // Four snapshot requests at once: exactly one is accepted.
    let post = || {
        app.req(Method::POST, "/api/environments/snapshot", &t)
            .json(&json!({"environment_id": env_id}))
            .send()
    };
    let rs = futures::future::join_all([post(), post(), post(), post()]).await;
    let mut accepted = Vec::new();
    for r in rs {
        let r = r.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        match status {
            StatusCode::ACCEPTED => accepted.push(body),
            StatusCode::CONFLICT => assert_eq!(body["code"], "conflict", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(accepted.len(), 1, "one of four concurrent snapshots runs");
    let job = app
        .wait_job(accepted[0]["job_id"].as_str().unwrap(), &t)
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let first_id = accepted[0]["snapshot_id"].as_str().unwrap().to_string();

    // A snapshot being taken (recorded `creating`, based on the first):
    // the environment cannot be deleted, nor the snapshot it builds on.
    let store = app.app.state.store.clone();
    let mut creating = store
        .get_snapshot(SnapshotId::parse(&first_id).unwrap())
        .await
        .unwrap();
    creating.id = SnapshotId::new();
    creating.status = SnapshotStatus::Creating;
    creating.vault_snapshot_id = None;
    creating.parent_id = Some(SnapshotId::parse(&first_id).unwrap());
    store
        .commit(vec![Write::InsertSnapshot(creating.clone())], vec![])
        .await
        .unwrap();
    let r = app
        .req(Method::DELETE, &format!("/api/environments/{env_id}"), &t)
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    assert!(p["detail"].as_str().unwrap().contains("snapshot"), "{p}");
    let (_, env) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env_id}"),
            &t,
            None,
        )
        .await;
    assert_eq!(
        env["status"], "ready",
        "a refused delete gives the environment back"
    );
    let r = app
        .req(Method::DELETE, &format!("/api/snapshots/{first_id}"), &t)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    store
        .commit(vec![Write::DeleteSnapshot(creating.id)], vec![])
        .await
        .unwrap();

    // The environment goes; its snapshot stays usable by its author.
    let r = app
        .req(Method::DELETE, &format!("/api/environments/{env_id}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, racc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{first_id}/restore"),
            &t,
            Some(json!({"mode": "in_place"})),
        )
        .await;
    assert_problem_value(s, &racc, StatusCode::CONFLICT, "conflict");
    let (s, racc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{first_id}/restore"),
            &t,
            Some(json!({"name": "revived"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{racc}");
    let rjob = app.wait_job(racc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(rjob["status"], "succeeded", "{rjob}");
    let revived = racc["environment_id"].as_str().unwrap();
    let (_, env) = app
        .call(
            Method::GET,
            &format!("/api/environments/{revived}"),
            &t,
            None,
        )
        .await;
    assert_eq!(env["status"], "ready", "{env}");
    assert!(
        env["python_version"].as_str().unwrap().starts_with("3."),
        "the interpreter version comes from the snapshot's inventory: {env}"
    );

    // A drill that cannot run (its vault snapshot is gone) is recorded as
    // a failed drill, so the scheduler does not retry it every round.
    let snap = store
        .get_snapshot(SnapshotId::parse(&first_id).unwrap())
        .await
        .unwrap();
    app.app
        .state
        .snapshots
        .delete(snap.vault_snapshot_id.as_deref().unwrap())
        .await
        .unwrap();
    let (s, dacc) = app
        .call(
            Method::POST,
            &format!("/api/snapshots/{first_id}/drill"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{dacc}");
    let djob = app.wait_job(dacc["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(djob["status"], "failed", "{djob}");
    let (_, snap) = app
        .call(Method::GET, &format!("/api/snapshots/{first_id}"), &t, None)
        .await;
    assert_eq!(snap["drill"]["passed"], false, "{snap}");
    assert!(
        snap["drill"]["failures"][0]
            .as_str()
            .unwrap()
            .contains("could not run"),
        "{snap}"
    );

    // And the deleted environment's snapshot can be deleted.
    let r = app
        .req(Method::DELETE, &format!("/api/snapshots/{first_id}"), &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}

#[tokio::test]
async fn snapshots_wait_their_turn_in_the_vault_queue_and_a_full_queue_refuses_before_recording() {
    use westtek_platform::queue::QueueLimits;
    let app = spawn_app_with(|c| {
        c.vault_queue = QueueLimits {
            max_running: 1,
            max_waiting_per_lab: 1,
        }
    })
    .await;
    let t = app.admin_token.clone();
    let first = build_env(&app, &t, "first", json!([])).await;
    let second = build_env(&app, &t, "second", json!([])).await;
    // Another job of the lab holds the only slot.
    let lab = westtek_domain::LabId::parse(&app.lab_id).unwrap();
    let busy = app.app.state.vault_queue.enqueue(lab).unwrap();

    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            &t,
            Some(json!({"environment_id": first})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job_id = acc["job_id"].as_str().unwrap().to_string();
    // The job waits, and says where it stands.
    let mut job = Value::Null;
    for _ in 0..200 {
        job = app
            .call(Method::GET, &format!("/api/jobs/{job_id}"), &t, None)
            .await
            .1;
        if job["message"] == "queued (position 1)" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(job["message"], "queued (position 1)", "{job}");

    // One more waiting job than the lab may have: refused, nothing recorded.
    let r = app
        .req(Method::POST, "/api/environments/snapshot", &t)
        .json(&json!({"environment_id": second}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "queue_full").await;
    let (_, list) = app
        .call(
            Method::GET,
            &format!("/api/snapshots?environment_id={second}"),
            &t,
            None,
        )
        .await;
    assert_eq!(list["total"], 0, "{list}");

    // The slot frees: the waiting snapshot runs and completes.
    drop(busy);
    let job = app.wait_job(&job_id, &t).await;
    assert_eq!(job["status"], "succeeded", "{job}");
}
