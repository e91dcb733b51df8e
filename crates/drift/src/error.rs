//! The crate's error type.

use std::path::PathBuf;
use westtek_domain::EnvironmentId;

/// What can go wrong while watching or evaluating an environment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Taking the inventory of the root failed (the root is gone or unreadable).
    #[error(transparent)]
    Inventory(#[from] westtek_inventory::Error),
    /// The root to watch is missing or not a folder.
    #[error("{path}: not an environment root: {reason}")]
    NotAnEnvironment {
        /// The root given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The environment is already watched (call `unwatch` first).
    #[error("environment {0} is already watched")]
    AlreadyWatched(EnvironmentId),
    /// inotify refused a watch (e.g. `max_user_watches` reached) or could not start.
    #[error("watching {path}: {source}")]
    Watch {
        /// The folder that could not be watched (empty when starting the watcher).
        path: PathBuf,
        /// notify's error.
        #[source]
        source: notify::Error,
    },
    /// The debouncing thread could not be started.
    #[error("starting the drift watcher thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
