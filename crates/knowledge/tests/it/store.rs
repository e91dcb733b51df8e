use crate::store_conformance::{self as conformance, path};
use std::sync::Arc;
use westtek_knowledge::{DocumentStore, LocalFolderStore};

#[tokio::test]
async fn the_local_folder_store_passes_the_conformance_body() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFolderStore::new(dir.path().join("kb")).unwrap();
    conformance::conformance(&store).await;
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
    let store = Arc::new(LocalFolderStore::new(dir.path()).unwrap());
    conformance::concurrent_writers_leave_one_whole_document(store).await;
}

#[tokio::test]
async fn a_reader_sees_the_old_or_the_new_document_never_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalFolderStore::new(dir.path()).unwrap());
    conformance::readers_see_the_old_or_the_new_document(store).await;
}
