use westtek_knowledge::{DocPath, DocumentStore, Error, LocalFolderStore};

fn path(p: &str) -> DocPath {
    DocPath::parse(p).unwrap()
}

/// The behaviour every `DocumentStore` adapter must have.
async fn conformance(store: &dyn DocumentStore) {
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

#[tokio::test]
async fn the_local_folder_store_passes_the_conformance_body() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFolderStore::new(dir.path().join("kb")).unwrap();
    conformance(&store).await;
}

#[tokio::test]
async fn documents_are_plain_files_under_the_root_and_no_temporary_files_remain() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFolderStore::new(dir.path()).unwrap();
    let p = path("package-manifests/e1/s1.txt");
    store
        .put(&p, b"pandas==2.2.1\n", "text/plain")
        .await
        .unwrap();
    store
        .put(&p, b"pandas==2.2.2\n", "text/plain")
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("package-manifests/e1/s1.txt")).unwrap(),
        b"pandas==2.2.2\n"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path().join("package-manifests/e1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["s1.txt"]);
}

#[tokio::test]
async fn a_document_without_metadata_gets_a_content_type_from_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFolderStore::new(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path().join("environment-docs/e1")).unwrap();
    std::fs::write(dir.path().join("environment-docs/e1/summary.md"), "# hi").unwrap();
    let doc = store
        .get(&path("environment-docs/e1/summary.md"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc.content_type, "text/markdown; charset=utf-8");
}

#[tokio::test]
async fn listing_never_follows_links_out_of_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "s").unwrap();
    let store = LocalFolderStore::new(dir.path().join("kb")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("kb/notebooks")).unwrap();
    assert!(store.list("").await.unwrap().is_empty());
    assert!(store.list("notebooks/").await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_writers_of_one_path_leave_one_whole_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LocalFolderStore::new(dir.path()).unwrap());
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
