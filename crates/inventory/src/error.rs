//! The crate's error type. Only problems with the root itself are errors;
//! an unreadable file inside an environment becomes a warning in the
//! inventory, because a drift sweep over a live environment must not fail
//! because one file vanished while it was being read.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder the operation was about.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The path given as an environment root is not one.
    #[error("{} is not an environment root: {reason}", path.display())]
    NotAnEnvironment {
        /// The path given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A path cannot be used (not UTF-8, relative, or containing characters
    /// that no script or config file could quote).
    #[error("unusable path {}: {reason}", path.display())]
    UnusablePath {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A stored inventory was written by a newer, incompatible format.
    #[error("inventory format {found} is newer than the supported {supported}")]
    UnsupportedFormat {
        /// `format_version` found in the document.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A stored inventory is not valid JSON of the expected shape.
    #[error("inventory JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach the path an I/O error is about.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
