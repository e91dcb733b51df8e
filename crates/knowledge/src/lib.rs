//! Knowledge transfer building blocks (issue 6, "Knowledge transfer" in the
//! product spec), with no HTTP in them:
//!
//! - [`notebook_to_markdown`]: Jupyter notebooks (nbformat 4, and 3) to
//!   Markdown with a [`SourceMap`] back to cells;
//! - [`redact`]: e-mail addresses, phone numbers and secrets replaced by
//!   `[REDACTED:kind]`, with a [`RedactionReport`] that never holds a value;
//! - [`DocumentStore`]: the port documents are kept behind, with the
//!   [`LocalFolderStore`] adapter and the seed's path layout ([`DocPath`]);
//! - [`KnowledgeIndex`]: a lab-scoped BM25 index (tantivy) over hierarchical
//!   chunks ([`chunk_document`]), whose hits cite a document path and byte span.
//!
//! The intended pipeline for a notebook: convert, redact, store, index the
//! stored text. Redaction comes before anything is stored or indexed, and
//! the index is fed exactly the stored text, so every [`Citation`] resolves
//! in the stored document.

mod chunk;
mod error;
mod index;
mod notebook;
mod redact;
mod store;

pub use chunk::{approx_tokens, chunk_document, ChildChunk, ChunkConfig, Chunks, ParentChunk};
pub use error::{Error, Result};
pub use index::{Citation, IndexDocument, KnowledgeIndex, ParentContext, SearchHit};
pub use notebook::{
    notebook_to_markdown, CellKind, CellPart, Markdown, NotebookOptions, SourceMap, SourceSpan,
    INLINE_DATA_URI_MIN,
};
pub use redact::{redact, Redaction, RedactionKind, RedactionReport};
pub use store::{
    check_content_type, check_prefix, guess_content_type, DocPath, Document, DocumentInfo,
    DocumentStore, LocalFolderStore, MAX_PATH_LEN,
};
