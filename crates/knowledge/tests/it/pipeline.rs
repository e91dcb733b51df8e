use serde_json::json;
use westtek_domain::{LabId, UserId};
use westtek_knowledge::{
    notebook_to_markdown, CellKind, DocPath, DocumentStore, IndexDocument, KnowledgeIndex,
    LocalFolderStore, NotebookOptions, RedactionKind,
};

fn notebook() -> Vec<u8> {
    json!({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
        "cells": [
            {"cell_type": "markdown", "source": ["# Cell viability\n", "\n", "Questions to ada.lovelace@example.org."]},
            {"cell_type": "code", "execution_count": 1, "source": [
                "import boto3\n",
                "s3 = boto3.client('s3', aws_access_key_id='AKIAIOSFODNN7EXAMPLE',\n",
                "    aws_secret_access_key='wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY')\n",
                "plates = load_plates('hepatocyte_viability.csv')"
            ], "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["loaded 96 plates\n"]}
            ]},
            {"cell_type": "code", "execution_count": 2, "source": "plates.describe()", "outputs": [
                {"output_type": "execute_result", "execution_count": 2, "metadata": {},
                 "data": {"text/plain": "count 96\nmean 0.83"}}
            ]}
        ]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_notebook_term_is_found_and_its_citation_resolves_to_the_stored_cell() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFolderStore::new(dir.path().join("kb")).unwrap();
    let index = KnowledgeIndex::open(dir.path().join("index")).unwrap();
    let (lab, researcher) = (LabId::new(), UserId::new());

    let md = notebook_to_markdown(&notebook(), &NotebookOptions::default()).unwrap();
    let (md, report) = md.redacted();
    let kinds: Vec<RedactionKind> = report.redactions().iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            RedactionKind::Email,
            RedactionKind::AwsAccessKeyId,
            RedactionKind::AwsSecretAccessKey
        ]
    );
    assert!(
        !md.text.contains("ada.lovelace")
            && !md.text.contains("AKIA")
            && !md.text.contains("wJalr")
    );

    let path = DocPath::notebook(lab, researcher, "viability.md").unwrap();
    store
        .put(&path, md.text.as_bytes(), "text/markdown; charset=utf-8")
        .await
        .unwrap();
    index
        .index_document(&IndexDocument {
            lab_id: lab,
            path: &path,
            title: None,
            text: &md.text,
        })
        .unwrap();

    let hits = index.search(lab, "hepatocyte", 5).unwrap();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.citation.path, path);
    assert_eq!(hit.title, "Cell viability");

    // The citation resolves in the stored document, not only in memory.
    let stored = store.get(&hit.citation.path).await.unwrap().unwrap();
    let stored = String::from_utf8(stored.bytes).unwrap();
    let cited = hit.citation.resolve(&stored).unwrap();
    assert!(cited.contains("hepatocyte"));

    // …and points back to the code cell that loads the plates.
    let offset = hit.citation.start + cited.find("hepatocyte").unwrap();
    let cell = md.source_map.at_byte(&stored, offset).unwrap();
    assert_eq!((cell.cell_index, cell.kind), (1, CellKind::Code));

    // Redacted values are not searchable.
    assert!(index.search(lab, "lovelace", 5).unwrap().is_empty());
    assert!(index
        .search(lab, "AKIAIOSFODNN7EXAMPLE", 5)
        .unwrap()
        .is_empty());
}
