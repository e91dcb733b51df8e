//! The behaviour every `DocumentStore` adapter must have, as test bodies
//! over `Arc<dyn DocumentStore>`: the local folder store runs them here and
//! the S3 adapter (`crates/knowledge-aws`) includes this file with `#[path]`
//! and runs them on moto. Paths are plain strings here (not lab ids), so the
//! bodies also check that listing is a plain string prefix, as S3 has it.

use std::sync::Arc;
use westtek_knowledge::{DocPath, DocumentStore, Error};

pub fn path(p: &str) -> DocPath {
    DocPath::parse(p).unwrap()
}

/// The behaviour every `DocumentStore` adapter must have.
pub async fn conformance(store: &dyn DocumentStore) {
    let summary = path("environment-docs/e1/summary.md");
    assert_eq!(store.get(&summary).await.unwrap(), None);

    store
        .put(&summary, b"# Env 1\n", "text/markdown; charset=utf-8")
        .await
        .unwrap();
    let doc = store.get(&summary).await.unwrap().unwrap();
    assert_eq!(doc.bytes, b"# Env 1\n");
    assert_eq!(doc.content_type, "text/markdown; charset=utf-8");

    // Overwrite replaces bytes and content type.
    store
        .put(&summary, b"{}", "application/json")
        .await
        .unwrap();
    let doc = store.get(&summary).await.unwrap().unwrap();
    assert_eq!(doc.bytes, b"{}");
    assert_eq!(doc.content_type, "application/json");

    for p in [
        "notebooks/lab-a/r1/analysis/growth.md",
        "notebooks/lab-a/r1/intro.md",
        "notebooks/lab-a/r2/x.md",
        "notebooks/lab-ab/r1/y.md",
        "package-manifests/e1/s1.txt",
        "installation-history/e1/history.jsonl",
        "experiment-logs/lab-a/exp-1.json",
    ] {
        store
            .put(&path(p), p.as_bytes(), "text/plain")
            .await
            .unwrap();
    }
    let listed = |prefix: &'static str| async move {
        store
            .list(prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.path.as_str().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed("notebooks/lab-a/").await,
        vec![
            "notebooks/lab-a/r1/analysis/growth.md",
            "notebooks/lab-a/r1/intro.md",
            "notebooks/lab-a/r2/x.md",
        ]
    );
    // A plain string prefix, as S3 has it.
    assert_eq!(
        listed("notebooks/lab-a").await.len(),
        4,
        "lab-a and lab-ab both start with `notebooks/lab-a`"
    );
    assert_eq!(
        listed("notebooks/lab-a/r1/in").await,
        vec!["notebooks/lab-a/r1/intro.md"]
    );
    assert_eq!(listed("nothing/").await, Vec::<String>::new());
    assert_eq!(listed("").await.len(), 8);
    let sizes = store.list("package-manifests/").await.unwrap();
    assert_eq!(sizes[0].size, "package-manifests/e1/s1.txt".len() as u64);

    assert!(store.delete(&summary).await.unwrap());
    assert!(!store.delete(&summary).await.unwrap());
    assert_eq!(store.get(&summary).await.unwrap(), None);
    assert_eq!(listed("environment-docs/").await, Vec::<String>::new());

    // A folder is not a document.
    assert_eq!(store.get(&path("notebooks/lab-a")).await.unwrap(), None);
    assert!(!store.delete(&path("notebooks/lab-a")).await.unwrap());

    for bad in ["../", "/etc", "notebooks/../x", "a\\b", "a\0b"] {
        assert!(matches!(
            store.list(bad).await.unwrap_err(),
            Error::InvalidPath { .. }
        ));
    }
    for bad in ["", "text", "text/plain\r\nX-Evil: 1"] {
        assert!(matches!(
            store.put(&summary, b"x", bad).await.unwrap_err(),
            Error::InvalidContentType(_)
        ));
    }
}

/// Eight writers of one path at once: a reader then sees one writer's whole
/// document, never a mix (writes are atomic from a reader's point of view).
pub async fn concurrent_writers_leave_one_whole_document(store: Arc<dyn DocumentStore>) {
    let p = path("environment-docs/e1/summary.md");
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let store = store.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![b'a' + i; 256 * 1024];
            store.put(&p, &body, "text/markdown").await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let doc = store.get(&p).await.unwrap().unwrap();
    assert_eq!(doc.bytes.len(), 256 * 1024);
    assert!(doc.bytes.iter().all(|b| *b == doc.bytes[0]), "a torn write");
}

/// A reader polling a document while it is rewritten sees only whole
/// versions (the old one or the new one).
pub async fn readers_see_the_old_or_the_new_document(store: Arc<dyn DocumentStore>) {
    let p = path("package-manifests/e1/s1.txt");
    let old = vec![b'o'; 512 * 1024];
    let new = vec![b'n'; 300 * 1024];
    store.put(&p, &old, "text/plain").await.unwrap();
    let writer = {
        let store = store.clone();
        let p = p.clone();
        let new = new.clone();
        tokio::spawn(async move { store.put(&p, &new, "text/plain").await.unwrap() })
    };
    for _ in 0..200 {
        let doc = store.get(&p).await.unwrap().unwrap();
        assert!(
            doc.bytes == old || doc.bytes == new,
            "a torn read of {} bytes",
            doc.bytes.len()
        );
        if doc.bytes == new {
            break;
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert_eq!(store.get(&p).await.unwrap().unwrap().bytes, new);
}
