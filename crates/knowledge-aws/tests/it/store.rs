//! The S3 document store over the wire on moto.

use crate::store_conformance::{self as conformance, path};
use async_trait::async_trait;
use std::sync::Arc;
use westtek_aws::testing::Moto;
use westtek_domain::{EnvironmentId, LabId, UserId};
use westtek_knowledge::{DocPath, DocumentStore, Error};
use westtek_knowledge_aws::{provision, s3_client, EnvironmentLabs, S3DocumentStore};

const BUCKET: &str = "westtek-knowledge";

/// A provisioned bucket on `moto` and the store over `prefix` in it.
async fn store(moto: &Moto, prefix: &str) -> S3DocumentStore {
    provision(&moto.config(), BUCKET).await.unwrap();
    S3DocumentStore::with_config(&moto.config(), BUCKET, prefix).unwrap()
}

/// The object at `key`, straight from S3: (bytes, content type).
async fn object(moto: &Moto, key: &str) -> Option<(Vec<u8>, String)> {
    let out = s3_client(&moto.config())
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()?;
    let ct = out.content_type().unwrap_or_default().to_string();
    Some((out.body.collect().await.unwrap().into_bytes().to_vec(), ct))
}

async fn metadata(moto: &Moto, key: &str) -> serde_json::Value {
    let (bytes, _) = object(moto, &format!("{key}.metadata.json"))
        .await
        .unwrap_or_else(|| panic!("no metadata file for {key}"));
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn the_s3_store_passes_the_conformance_body() {
    let moto = Moto::start();
    conformance::conformance(&store(&moto, "").await).await;
}

#[tokio::test]
async fn the_s3_store_under_a_prefix_passes_the_conformance_body() {
    let moto = Moto::start();
    conformance::conformance(&store(&moto, "knowledge/").await).await;
}

#[tokio::test]
async fn concurrent_writers_of_one_path_leave_one_whole_document_on_s3() {
    let moto = Moto::start();
    let s: Arc<dyn DocumentStore> = Arc::new(store(&moto, "kb").await);
    conformance::concurrent_writers_leave_one_whole_document(s).await;
}

#[tokio::test]
async fn a_reader_sees_the_old_or_the_new_document_on_s3() {
    let moto = Moto::start();
    let s: Arc<dyn DocumentStore> = Arc::new(store(&moto, "kb").await);
    conformance::readers_see_the_old_or_the_new_document(s).await;
}

struct Labs(EnvironmentId, LabId);

#[async_trait]
impl EnvironmentLabs for Labs {
    async fn lab_of(&self, env: EnvironmentId) -> Result<Option<LabId>, String> {
        Ok((env == self.0).then_some(self.1))
    }
}

/// The seed's layout, object for object, so the bucket is a Knowledge Base
/// data source; each document's metadata file says whose it is.
#[tokio::test]
async fn documents_are_objects_in_the_seed_layout_with_knowledge_base_metadata() {
    let moto = Moto::start();
    let (lab, user, env) = (LabId::new(), UserId::new(), EnvironmentId::new());
    let s = store(&moto, "knowledge")
        .await
        .with_environment_labs(Arc::new(Labs(env, lab)));
    let notebook = DocPath::notebook(lab, user, &format!("{env}/analysis/growth.md")).unwrap();
    s.put(&notebook, b"# Growth\n", "text/markdown; charset=utf-8")
        .await
        .unwrap();
    let key = format!("knowledge/notebooks/{lab}/{user}/{env}/analysis/growth.md");
    assert_eq!(
        object(&moto, &key).await,
        Some((
            b"# Growth\n".to_vec(),
            "text/markdown; charset=utf-8".into()
        ))
    );
    assert_eq!(
        metadata(&moto, &key).await,
        serde_json::json!({"metadataAttributes": {
            "lab_id": lab.to_string(), "environment_id": env.to_string(),
            "kind": "notebooks", "path": notebook.as_str()}})
    );

    // An environment's document: its lab comes from the environment.
    let snap = westtek_domain::SnapshotId::new();
    let manifest = DocPath::package_manifest(env, snap);
    s.put(&manifest, b"pandas==2.2.2\n", "text/plain")
        .await
        .unwrap();
    let key = format!("knowledge/package-manifests/{env}/{snap}.txt");
    assert_eq!(
        metadata(&moto, &key).await["metadataAttributes"]["lab_id"],
        lab.to_string()
    );
    assert_eq!(s.layout().uri(&manifest), format!("s3://{BUCKET}/{key}"));
    assert_eq!(
        s.layout().path_of_uri(&format!("s3://{BUCKET}/{key}")),
        Some(manifest.clone())
    );

    // Without a resolver (or for an unknown environment) no lab is claimed,
    // so the agents' lab filter never retrieves it.
    let bare = store(&moto, "knowledge").await;
    let other = DocPath::environment_summary(EnvironmentId::new());
    bare.put(&other, b"# x", "text/markdown").await.unwrap();
    let m = metadata(&moto, &format!("knowledge/{other}")).await;
    assert!(m["metadataAttributes"].get("lab_id").is_none(), "{m}");

    // Deleting a document deletes its metadata file too.
    assert!(s.delete(&manifest).await.unwrap());
    assert_eq!(object(&moto, &format!("{key}.metadata.json")).await, None);
}

/// Lab scoping: one lab's listing never contains another lab's documents,
/// and objects that are not documents of the layout are never listed.
#[tokio::test]
async fn a_labs_listing_never_reaches_another_labs_documents_or_foreign_objects() {
    let moto = Moto::start();
    let s = store(&moto, "").await;
    let (a, b, user) = (LabId::new(), LabId::new(), UserId::new());
    let doc_a = DocPath::notebook(a, user, "mine.md").unwrap();
    let doc_b = DocPath::notebook(b, user, "theirs.md").unwrap();
    s.put(&doc_a, b"a", "text/markdown").await.unwrap();
    s.put(&doc_b, b"b", "text/markdown").await.unwrap();
    let log_b = DocPath::experiment_log(b, "exp-1").unwrap();
    s.put(&log_b, b"{}", "application/json").await.unwrap();
    // Objects another tool put in the bucket: not valid document paths.
    let raw = s3_client(&moto.config());
    for key in [
        format!("notebooks/{a}/.hidden.md"),
        format!("notebooks/{a}/x/../y.md"),
    ] {
        raw.put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let listed: Vec<String> = s
        .list(&format!("notebooks/{a}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.path.to_string())
        .collect();
    assert_eq!(listed, vec![doc_a.to_string()]);
    let all = s.list("").await.unwrap();
    assert_eq!(
        all.len(),
        3,
        "metadata files and foreign objects are not documents: {all:?}"
    );
    // A path of lab A is one key: no normalisation can make it lab B's.
    assert_eq!(
        s.get(&DocPath::notebook(a, user, "theirs.md").unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn metadata_file_names_are_reserved() {
    let moto = Moto::start();
    let s = store(&moto, "").await;
    let p = path("environment-docs/e1/summary.md.metadata.json");
    for err in [
        s.put(&p, b"{}", "application/json").await.unwrap_err(),
        s.get(&p).await.unwrap_err(),
        s.delete(&p).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
    }
}

#[tokio::test]
async fn provisioning_makes_a_private_encrypted_bucket_and_is_idempotent() {
    let moto = Moto::start();
    provision(&moto.config(), BUCKET).await.unwrap();
    provision(&moto.config(), BUCKET).await.unwrap();
    let raw = s3_client(&moto.config());
    let block = raw
        .get_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let c = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let enc = raw
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    assert!(provision(&moto.config(), "Not_A_Bucket").await.is_err());
}

#[tokio::test]
async fn a_missing_bucket_is_reported_with_how_to_fix_it() {
    let moto = Moto::start();
    let s = S3DocumentStore::with_config(&moto.config(), "no-such-bucket", "").unwrap();
    let err = s
        .put(
            &path("environment-docs/e1/summary.md"),
            b"x",
            "text/markdown",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("NoSuchBucket") && err.contains("provision"),
        "{err}"
    );
    assert!(S3DocumentStore::with_config(&moto.config(), "x", "").is_err());
}

/// Listing follows S3's pages to the end (pages of 3 keys here, where each
/// document also has its metadata file), sorted by path.
#[tokio::test]
async fn listing_follows_every_page() {
    let moto = Moto::start();
    let s = store(&moto, "kb").await.with_list_page_size(3);
    let mut want = Vec::new();
    for i in (0..11).rev() {
        let p = path(&format!("package-manifests/e1/s{i:02}.txt"));
        s.put(&p, b"x", "text/plain").await.unwrap();
        want.push(p.to_string());
    }
    want.sort();
    let got: Vec<String> = s
        .list("package-manifests/")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.path.to_string())
        .collect();
    assert_eq!(got, want);
}

struct Broken;

#[async_trait]
impl EnvironmentLabs for Broken {
    async fn lab_of(&self, _: EnvironmentId) -> Result<Option<LabId>, String> {
        Err("metadata store unreachable".into())
    }
}

/// A document whose lab cannot be found out is not written (the sync
/// fails and is retried) rather than stored without an owner.
#[tokio::test]
async fn a_document_whose_lab_cannot_be_resolved_is_not_written() {
    let moto = Moto::start();
    let s = store(&moto, "")
        .await
        .with_environment_labs(Arc::new(Broken));
    let p = DocPath::environment_summary(EnvironmentId::new());
    let err = s
        .put(&p, b"# x", "text/markdown")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metadata store unreachable") && err.contains(p.as_str()),
        "{err}"
    );
    assert_eq!(s.get(&p).await.unwrap(), None);
}
