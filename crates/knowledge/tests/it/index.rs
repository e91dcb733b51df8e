use westtek_domain::LabId;
use westtek_knowledge::{ChunkConfig, DocPath, IndexDocument, KnowledgeIndex};

fn path(p: &str) -> DocPath {
    DocPath::parse(p).unwrap()
}

fn index_one(index: &KnowledgeIndex, lab: LabId, p: &DocPath, text: &str) -> usize {
    index
        .index_document(&IndexDocument {
            lab_id: lab,
            path: p,
            title: None,
            text,
        })
        .unwrap()
}

/// Filler prose that never mentions the test's terms.
fn filler(words: usize, seed: usize) -> String {
    const WORDS: &[&str] = &[
        "environment",
        "researcher",
        "kernel",
        "analysis",
        "dataset",
        "figure",
        "result",
        "method",
        "sample",
        "measure",
        "config",
        "cluster",
        "model",
        "series",
        "report",
    ];
    (0..words)
        .map(|i| WORDS[(i * 7 + seed) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn two_labs_never_see_each_others_documents() {
    let dir = tempfile::tempdir().unwrap();
    let index = KnowledgeIndex::open(dir.path()).unwrap();
    let (lab_a, lab_b) = (LabId::new(), LabId::new());
    // The same path and words in both labs, plus a term only lab A has.
    let shared = path("environment-docs/e1/summary.md");
    index_one(
        &index,
        lab_a,
        &shared,
        "# Summary\n\nCRISPR screen with scanpy. Only in A: zebrafish.",
    );
    index_one(
        &index,
        lab_b,
        &shared,
        "# Summary\n\nCRISPR screen with scanpy.",
    );
    index_one(
        &index,
        lab_b,
        &path("notebooks/b/r/x.md"),
        "Lab B's own notebook about proteomics.",
    );

    let a = index
        .search(lab_a, "crispr scanpy zebrafish proteomics", 50)
        .unwrap();
    let b = index
        .search(lab_b, "crispr scanpy zebrafish proteomics", 50)
        .unwrap();
    assert_eq!(a.len(), 1);
    assert!(a[0].text.contains("zebrafish"));
    assert_eq!(b.len(), 2);
    assert!(b
        .iter()
        .all(|h| !h.text.contains("zebrafish") && !h.parent.text.contains("zebrafish")));
    assert!(index.search(lab_b, "zebrafish", 50).unwrap().is_empty());
    assert!(index.search(lab_a, "proteomics", 50).unwrap().is_empty());
    assert!(index.search(LabId::new(), "crispr", 50).unwrap().is_empty());
    assert_eq!(index.chunk_count(lab_a).unwrap(), 1);
    assert_eq!(index.chunk_count(lab_b).unwrap(), 2);

    // Re-indexing lab A's copy of the shared path leaves lab B's alone.
    index_one(&index, lab_a, &shared, "# Summary\n\nrewritten");
    assert_eq!(index.search(lab_b, "crispr", 50).unwrap().len(), 1);
    index.remove_document(lab_a, &shared).unwrap();
    assert_eq!(index.chunk_count(lab_a).unwrap(), 0);
    assert_eq!(index.chunk_count(lab_b).unwrap(), 2);
}

#[test]
fn reindexing_replaces_the_old_chunks_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let index = KnowledgeIndex::open(dir.path()).unwrap();
    let lab = LabId::new();
    let p = path("environment-docs/e1/summary.md");
    let long = format!("# Summary\n\nUses tensorflow. {}", filler(2000, 1));
    let n = index_one(&index, lab, &p, &long);
    assert!(n > 5, "{n} chunks");
    assert_eq!(index.chunk_count(lab).unwrap(), n);
    // Same text again: same chunks, not twice as many.
    assert_eq!(index_one(&index, lab, &p, &long), n);
    assert_eq!(index.chunk_count(lab).unwrap(), n);
    assert_eq!(index.search(lab, "tensorflow", 10).unwrap().len(), 1);

    index_one(&index, lab, &p, "# Summary\n\nMoved to pytorch.");
    assert_eq!(index.chunk_count(lab).unwrap(), 1);
    assert!(index.search(lab, "tensorflow", 10).unwrap().is_empty());
    let hits = index.search(lab, "pytorch", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].citation.path, p);
    assert_eq!(hits[0].title, "Summary");
}

#[test]
fn a_document_mentioning_the_term_often_ranks_above_one_mentioning_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let index = KnowledgeIndex::open(dir.path()).unwrap();
    let lab = LabId::new();
    let once = path("notebooks/l/r/once.md");
    let often = path("notebooks/l/r/often.md");
    let body_once = format!("{} numpy {}", filler(100, 2), filler(100, 3));
    let body_often = format!(
        "{} numpy numpy arrays; numpy broadcasting and numpy dtypes {}",
        filler(95, 2),
        filler(95, 3)
    );
    // Index the weaker one last so insertion order cannot explain the ranking.
    index_one(&index, lab, &often, &body_often);
    index_one(&index, lab, &once, &body_once);
    let hits = index.search(lab, "numpy", 10).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].citation.path, often);
    assert_eq!(hits[1].citation.path, once);
    assert!(hits[0].score > hits[1].score);
}

#[test]
fn hits_carry_their_parent_and_a_span_that_slices_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let config = ChunkConfig {
        parent_tokens: 200,
        child_tokens: 40,
    };
    let index = KnowledgeIndex::open_with(dir.path(), config).unwrap();
    let lab = LabId::new();
    let p = path("environment-docs/e1/summary.md");
    let text = format!(
        "# Environment\n\n## Packages\n\n{}\n\nThe lab pinned xarray 2024.1 for reproducibility. {}\n\n## Data\n\n{}",
        filler(150, 4),
        filler(150, 5),
        filler(150, 6)
    );
    index_one(&index, lab, &p, &text);
    let hits = index.search(lab, "xarray", 5).unwrap();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    let cited = hit.citation.resolve(&text).unwrap();
    assert_eq!(cited, hit.text);
    assert!(cited.contains("xarray"));
    assert!(cited.split_whitespace().count() < 60);
    assert_eq!(&text[hit.parent.start..hit.parent.end], hit.parent.text);
    assert!(hit.parent.start <= hit.citation.start && hit.citation.end <= hit.parent.end);
    assert!(hit.parent.text.len() > hit.text.len());
    assert_eq!(hit.section.as_deref(), Some("Packages"));
    assert_eq!(hit.title, "Environment");
}

#[test]
fn headings_and_titles_help_but_stemming_matches_word_forms() {
    let dir = tempfile::tempdir().unwrap();
    let index = KnowledgeIndex::open(dir.path()).unwrap();
    let lab = LabId::new();
    index_one(&index, lab, &path("installation-history/e1/history.jsonl"),
        "{\"package\":\"pandas\",\"from\":\"1.5.3\",\"to\":\"2.2.1\",\"reason\":\"upgraded for pyarrow strings\"}\n");
    let hits = index.search(lab, "Why was pandas upgrading?", 5).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].title, "history.jsonl");
}

#[test]
fn the_index_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let lab = LabId::new();
    {
        let index = KnowledgeIndex::open(dir.path()).unwrap();
        index_one(
            &index,
            lab,
            &path("environment-docs/e1/summary.md"),
            "uses snakemake",
        );
    }
    let index = KnowledgeIndex::open(dir.path()).unwrap();
    assert_eq!(index.search(lab, "snakemake", 5).unwrap().len(), 1);
}

#[test]
fn a_second_writer_on_the_same_folder_is_refused_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = KnowledgeIndex::open(dir.path()).unwrap();
    let err = KnowledgeIndex::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("index writer"), "{err}");
}

#[test]
fn batches_of_documents_are_indexed_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let index = KnowledgeIndex::open(dir.path()).unwrap();
    let lab = LabId::new();
    let paths: Vec<DocPath> = (0..50)
        .map(|i| path(&format!("experiment-logs/l/exp-{i}.json")))
        .collect();
    let texts: Vec<String> = (0..50)
        .map(|i| format!("{{\"experiment\": \"exp-{i}\", \"marker\": \"m{i}\"}}"))
        .collect();
    let docs: Vec<IndexDocument<'_>> = paths
        .iter()
        .zip(&texts)
        .map(|(p, t)| IndexDocument {
            lab_id: lab,
            path: p,
            title: None,
            text: t,
        })
        .collect();
    assert_eq!(index.index_documents(&docs).unwrap(), 50);
    let hits = index.search(lab, "m17", 5).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].citation.path.as_str(),
        "experiment-logs/l/exp-17.json"
    );
}
