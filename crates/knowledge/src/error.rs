//! The crate's error type.
//!
//! One enum for the whole crate, so a caller that converts, stores and
//! indexes a document has one `?` to write. Variants never carry document
//! contents (a redacted value must not come back in an error message).

use std::path::PathBuf;

/// What can go wrong while converting, storing or indexing knowledge documents.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes given as a notebook are not a Jupyter notebook.
    #[error("not a Jupyter notebook: {0}")]
    NotANotebook(String),
    /// A document path was refused (traversal, absolute, backslash, NUL, …).
    #[error("invalid document path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given (escaped by `Debug`, so control characters are visible).
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A content type given to a document store is not a media type.
    #[error("invalid content type {0:?}: expected type/subtype in printable ASCII")]
    InvalidContentType(String),
    /// A filesystem operation of the local document store or the index folder failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done ("writing", "reading", …).
        context: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A document store backend failed for a reason of its own (for adapters
    /// other than the local folder, e.g. S3).
    #[error("document store: {0}")]
    Backend(String),
    /// The search index failed (corrupt segment, schema of an older version, lock held, …).
    #[error("search index: {context}: {source}")]
    Index {
        /// What was being done.
        context: &'static str,
        /// tantivy's error.
        #[source]
        source: tantivy::TantivyError,
    },
    /// A blocking task (filesystem or index work moved off the async runtime) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn index(context: &'static str) -> impl FnOnce(tantivy::TantivyError) -> Self {
        move |source| Error::Index { context, source }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
