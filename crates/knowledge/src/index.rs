//! The lab-scoped search index: BM25 over hierarchical chunks, with tantivy.
//!
//! Each document is cut by [`chunk_document`] into parents (≈ 1500 tokens)
//! and children (≈ 300 tokens). Children are indexed (body, section heading,
//! document title) with their lab, document path, parent and byte span;
//! parents are stored beside them, not searched, and returned as the context
//! of a hit. A [`Citation`] is the document path and the child's byte span,
//! so `&stored_document[start..end]` is exactly the text that matched.
//!
//! Policy:
//!
//! - **Lab isolation in the query.** Every search is a boolean query whose
//!   required clauses include a term filter on the lab id; results of another
//!   lab are never scored, let alone filtered out afterwards.
//! - **Re-indexing replaces.** A document is identified by (lab, path);
//!   indexing it deletes every chunk under that key in the same commit, so
//!   indexing the same text twice leaves the same chunks.
//! - **Analysis.** Words (letters and digits) are lower-cased and stemmed
//!   (English Snowball); a short list of English stop words is dropped;
//!   tokens longer than 40 bytes (hashes, base64) are dropped. Query text is
//!   analysed the same way and its terms OR-ed (body weight 1, section and
//!   title 0.5), never parsed as query syntax, so any question is a valid
//!   query.
//! - **Blocking.** The index is synchronous (tantivy is); async callers run
//!   it with `tokio::task::spawn_blocking`. One [`KnowledgeIndex`] per folder
//!   per process: tantivy holds a writer lock file in the folder.

use crate::chunk::{chunk_document, ChunkConfig};
use crate::error::{Error, Result};
use crate::store::DocPath;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value,
    STORED, STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use westtek_domain::LabId;

/// Name under which the analyzer is registered (tokenizers are not persisted
/// with the index, so it is registered again on every open).
const ANALYZER: &str = "westtek_en";
/// The indexer's memory budget: one thread (2-core machines), 50 MB.
const WRITER_MEMORY: usize = 50_000_000;
/// At most this many distinct query terms are used (a pasted page is still a query).
const MAX_QUERY_TERMS: usize = 64;
/// Weight of the section heading and document title relative to the body.
const HEADING_BOOST: f32 = 0.5;

/// Frequent English words that carry no meaning for retrieval.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "did", "do", "does", "for", "from",
    "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "of", "on", "or",
    "our", "so", "than", "that", "the", "their", "then", "there", "these", "this", "to", "was",
    "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "you", "your",
];

const KIND_CHILD: &str = "child";
const KIND_PARENT: &str = "parent";

/// One document to index: the text must be exactly the bytes kept in the
/// document store under `path`, so citations resolve.
#[derive(Clone, Copy, Debug)]
pub struct IndexDocument<'a> {
    /// The lab that owns the document; only its searches see it.
    pub lab_id: LabId,
    /// Where the document is stored.
    pub path: &'a DocPath,
    /// A title; when `None`, the first `# heading` of a Markdown document or the file name.
    pub title: Option<&'a str>,
    /// The document's text.
    pub text: &'a str,
}

/// Where a hit's text is: a document and a byte span in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Citation {
    /// The document.
    pub path: DocPath,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

impl Citation {
    /// The cited text in the stored document, or `None` if the span does not
    /// fit it (the document changed since it was indexed).
    pub fn resolve<'d>(&self, document: &'d str) -> Option<&'d str> {
        document.get(self.start..self.end)
    }
}

/// The parent chunk of a hit, for context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParentContext {
    /// Byte offset of the parent's first byte in the document.
    pub start: usize,
    /// Byte offset one past its last byte.
    pub end: usize,
    /// The parent's text.
    pub text: String,
}

/// One matching child chunk.
#[derive(Clone, Debug, Serialize)]
pub struct SearchHit {
    /// BM25 score (higher is better; comparable within one search only).
    pub score: f32,
    /// The document and span to cite.
    pub citation: Citation,
    /// The document's title.
    pub title: String,
    /// The nearest Markdown heading before the chunk.
    pub section: Option<String>,
    /// The child chunk's text (`citation` sliced from the document).
    pub text: String,
    /// The parent chunk around it.
    pub parent: ParentContext,
}

#[derive(Clone, Copy)]
struct Fields {
    lab: Field,
    path: Field,
    doc_key: Field,
    kind: Field,
    parent_key: Field,
    start: Field,
    end: Field,
    parent_start: Field,
    parent_end: Field,
    title: Field,
    section: Field,
    body: Field,
    parent_text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let analyzed = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
        .set_stored();
    let stored_u64 = NumericOptions::default().set_stored();
    let fields = Fields {
        lab: b.add_text_field("lab_id", STRING | STORED),
        path: b.add_text_field("path", STRING | STORED),
        doc_key: b.add_text_field("doc_key", STRING),
        kind: b.add_text_field("kind", STRING),
        parent_key: b.add_text_field("parent_key", STRING | STORED),
        start: b.add_u64_field("start", stored_u64.clone()),
        end: b.add_u64_field("end", stored_u64.clone()),
        parent_start: b.add_u64_field("parent_start", stored_u64.clone()),
        parent_end: b.add_u64_field("parent_end", stored_u64),
        title: b.add_text_field("title", analyzed.clone()),
        section: b.add_text_field("section", analyzed.clone()),
        body: b.add_text_field("body", analyzed),
        parent_text: b.add_text_field("parent_text", STORED),
    };
    (b.build(), fields)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// A search index in a folder, shared by all labs and filtered by lab on every query.
pub struct KnowledgeIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    chunking: ChunkConfig,
}

impl std::fmt::Debug for KnowledgeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeIndex")
            .field("chunking", &self.chunking)
            .finish_non_exhaustive()
    }
}

impl KnowledgeIndex {
    /// Opens the index in `dir`, creating the folder and an empty index if
    /// needed, with the seed's chunk sizes.
    ///
    /// # Errors
    /// [`Error::Io`] if the folder cannot be created; [`Error::Index`] if it
    /// holds an index of another schema or another process holds its writer lock.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, ChunkConfig::default())
    }

    /// [`KnowledgeIndex::open`] with other chunk sizes (tests, benchmarks).
    ///
    /// # Errors
    /// As [`KnowledgeIndex::open`].
    pub fn open_with(dir: impl AsRef<Path>, chunking: ChunkConfig) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        let directory = MmapDirectory::open(dir).map_err(|e| Error::Index {
            context: "opening the index folder",
            source: e.into(),
        })?;
        let (schema, fields) = schema();
        let index =
            Index::open_or_create(directory, schema).map_err(Error::index("opening the index"))?;
        index.tokenizers().register(ANALYZER, analyzer());
        let writer = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(Error::index("taking the index writer"))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(Error::index("opening the index reader"))?;
        Ok(KnowledgeIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            chunking,
        })
    }

    /// Indexes one document, replacing what was indexed before under the
    /// same lab and path, and commits. Returns the number of child chunks.
    ///
    /// # Errors
    /// [`Error::Index`] when tantivy fails to write or commit.
    pub fn index_document(&self, doc: &IndexDocument<'_>) -> Result<usize> {
        self.index_documents(std::slice::from_ref(doc))
    }

    /// Indexes several documents in one commit (much faster than one commit
    /// each). Returns the number of child chunks.
    ///
    /// # Errors
    /// [`Error::Index`] when tantivy fails to write or commit.
    #[tracing::instrument(skip(self, docs), fields(documents = docs.len()))]
    pub fn index_documents(&self, docs: &[IndexDocument<'_>]) -> Result<usize> {
        let f = self.fields;
        let mut writer = self.writer()?;
        let mut children = 0;
        for doc in docs {
            let key = doc_key(doc.lab_id, doc.path);
            writer.delete_term(Term::from_field_text(f.doc_key, &key));
            let markdown = doc.path.as_str().ends_with(".md");
            let chunks = chunk_document(doc.text, &self.chunking, markdown);
            let title = doc
                .title
                .map(str::to_string)
                .or(chunks.title)
                .unwrap_or_else(|| doc.path.file_name().to_string());
            let lab = doc.lab_id.to_string();
            for parent in &chunks.parents {
                let parent_key = format!("{key}#{}", parent.index);
                let mut p = TantivyDocument::default();
                p.add_text(f.lab, &lab);
                p.add_text(f.path, doc.path.as_str());
                p.add_text(f.doc_key, &key);
                p.add_text(f.kind, KIND_PARENT);
                p.add_text(f.parent_key, &parent_key);
                p.add_u64(f.start, as_u64(parent.start));
                p.add_u64(f.end, as_u64(parent.end));
                p.add_text(f.parent_text, &doc.text[parent.start..parent.end]);
                writer
                    .add_document(p)
                    .map_err(Error::index("adding a parent chunk"))?;
                for child in &parent.children {
                    let mut c = TantivyDocument::default();
                    c.add_text(f.lab, &lab);
                    c.add_text(f.path, doc.path.as_str());
                    c.add_text(f.doc_key, &key);
                    c.add_text(f.kind, KIND_CHILD);
                    c.add_text(f.parent_key, &parent_key);
                    c.add_u64(f.start, as_u64(child.start));
                    c.add_u64(f.end, as_u64(child.end));
                    c.add_u64(f.parent_start, as_u64(parent.start));
                    c.add_u64(f.parent_end, as_u64(parent.end));
                    c.add_text(f.title, &title);
                    if let Some(section) = &child.section {
                        c.add_text(f.section, section);
                    }
                    c.add_text(f.body, &doc.text[child.start..child.end]);
                    writer
                        .add_document(c)
                        .map_err(Error::index("adding a chunk"))?;
                    children += 1;
                }
            }
        }
        self.commit(&mut writer)?;
        Ok(children)
    }

    /// Removes a document's chunks (nothing happens if it was not indexed).
    ///
    /// # Errors
    /// [`Error::Index`] when the commit fails.
    pub fn remove_document(&self, lab_id: LabId, path: &DocPath) -> Result<()> {
        let mut writer = self.writer()?;
        writer.delete_term(Term::from_field_text(
            self.fields.doc_key,
            &doc_key(lab_id, path),
        ));
        self.commit(&mut writer)
    }

    /// Number of child chunks the lab has in the index.
    ///
    /// # Errors
    /// [`Error::Index`] when the search fails.
    pub fn chunk_count(&self, lab_id: LabId) -> Result<usize> {
        let query = self.lab_children(lab_id, None);
        self.reader
            .searcher()
            .search(&query, &Count)
            .map_err(Error::index("counting chunks"))
    }

    /// The lab's `limit` best child chunks for `query`, best first, each with
    /// its parent and citation. An empty query (or one of stop words only)
    /// finds nothing.
    ///
    /// # Errors
    /// [`Error::Index`] when the search or reading a stored chunk fails.
    #[tracing::instrument(skip(self, query), fields(lab_id = %lab_id, query_len = query.len()))]
    pub fn search(&self, lab_id: LabId, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let f = self.fields;
        let terms = self.query_terms(query)?;
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for term in &terms {
            for (field, boost) in [
                (f.body, 1.0),
                (f.section, HEADING_BOOST),
                (f.title, HEADING_BOOST),
            ] {
                let q = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                should.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), boost))));
            }
        }
        let text_query = BooleanQuery::new(should);
        let query = self.lab_children(lab_id, Some(Box::new(text_query)));

        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(Error::index("searching"))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher
                .doc(address)
                .map_err(Error::index("reading a chunk"))?;
            let text_of = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_str().map(str::to_string))
            };
            let num_of = |field: Field| {
                doc.get_first(field)
                    .and_then(|v| v.as_u64())
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(0)
            };
            let Some(path) = text_of(f.path).and_then(|p| DocPath::parse(&p).ok()) else {
                continue;
            };
            let parent_text = match text_of(f.parent_key) {
                Some(key) => self.parent_text(&searcher, &key)?,
                None => String::new(),
            };
            hits.push(SearchHit {
                score,
                citation: Citation {
                    path,
                    start: num_of(f.start),
                    end: num_of(f.end),
                },
                title: text_of(f.title).unwrap_or_default(),
                section: text_of(f.section),
                text: text_of(f.body).unwrap_or_default(),
                parent: ParentContext {
                    start: num_of(f.parent_start),
                    end: num_of(f.parent_end),
                    text: parent_text,
                },
            });
        }
        Ok(hits)
    }

    /// Child chunks of the lab (term filters, no score), and the text query if any.
    fn lab_children(&self, lab_id: LabId, text: Option<Box<dyn Query>>) -> BooleanQuery {
        let f = self.fields;
        let filter = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(field, value),
                    IndexRecordOption::Basic,
                )),
                0.0,
            ))
        };
        let mut clauses = vec![
            (Occur::Must, filter(f.lab, &lab_id.to_string())),
            (Occur::Must, filter(f.kind, KIND_CHILD)),
        ];
        if let Some(text) = text {
            clauses.push((Occur::Must, text));
        }
        BooleanQuery::new(clauses)
    }

    fn parent_text(&self, searcher: &tantivy::Searcher, parent_key: &str) -> Result<String> {
        let f = self.fields;
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.parent_key, parent_key),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, KIND_PARENT),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let top = searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())
            .map_err(Error::index("finding a parent chunk"))?;
        let Some((_, address)) = top.first() else {
            return Ok(String::new());
        };
        let doc: TantivyDocument = searcher
            .doc(*address)
            .map_err(Error::index("reading a parent chunk"))?;
        Ok(doc
            .get_first(f.parent_text)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default())
    }

    /// The distinct analysed terms of a query, in a stable order.
    fn query_terms(&self, query: &str) -> Result<Vec<String>> {
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.fields.body)
            .map_err(Error::index("loading the analyzer"))?;
        let mut stream = analyzer.token_stream(query);
        let mut terms = BTreeSet::new();
        while stream.advance() {
            terms.insert(stream.token().text.clone());
            if terms.len() >= MAX_QUERY_TERMS {
                break;
            }
        }
        Ok(terms.into_iter().collect())
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>> {
        self.writer
            .lock()
            .map_err(|_| Error::Task("the index writer lock was poisoned by a panic".into()))
    }

    fn commit(&self, writer: &mut IndexWriter) -> Result<()> {
        writer.commit().map_err(Error::index("committing"))?;
        self.reader
            .reload()
            .map_err(Error::index("reloading the reader"))
    }
}

/// One term per (lab, document): what a re-index deletes.
fn doc_key(lab_id: LabId, path: &DocPath) -> String {
    format!("{lab_id}/{}", path.as_str())
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<KnowledgeIndex>();
    }

    #[test]
    fn the_analyzer_stems_lowercases_and_drops_stop_words() {
        let dir = tempfile::tempdir().unwrap();
        let index = KnowledgeIndex::open(dir.path()).unwrap();
        let terms = index
            .query_terms("Why was Pandas upgraded in March? pandas UPGRADES")
            .unwrap();
        assert_eq!(terms, vec!["march", "panda", "upgrad"]);
        assert!(index.query_terms("the and of").unwrap().is_empty());
    }

    #[test]
    fn a_query_without_terms_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let index = KnowledgeIndex::open(dir.path()).unwrap();
        let lab = LabId::new();
        let path = DocPath::parse("environment-docs/e/summary.md").unwrap();
        index
            .index_document(&IndexDocument {
                lab_id: lab,
                path: &path,
                title: None,
                text: "the summary",
            })
            .unwrap();
        assert!(index.search(lab, "   ?! the", 5).unwrap().is_empty());
        assert!(index.search(lab, "summary", 0).unwrap().is_empty());
        assert_eq!(index.search(lab, "summary", 5).unwrap().len(), 1);
    }
}
