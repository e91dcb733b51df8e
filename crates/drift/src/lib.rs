//! Drift detection for one or many environment roots (issue 5, "Drift model"
//! in ARCHITECTURE.md).
//!
//! Two halves, kept apart so each can be driven on its own:
//!
//! - [`DriftWatcher`] watches the few folders of an environment root whose
//!   changes are drift (site-packages' top level, kernelspec and extension
//!   folders, Jupyter and IPython config, `home/`) with inotify, drops what
//!   is never drift (bytecode, checkpoints, editor temp files, runtime
//!   state), and debounces bursts into one [`ChangeBatch`] per environment.
//!   A batch is a hint that something changed, never a verdict.
//! - [`evaluate`] is the verdict: it re-inventories the root (reusing
//!   unchanged files from the previous inventory), diffs it against the
//!   baseline and fingerprints the findings, so the same state seen by the
//!   watcher and by the periodic sweep gives the same [`Evaluation::fingerprint`].
//!   [`DriftState`] turns successive evaluations into "emit a drift event or not".
//!
//! Policy: bytecode (`__pycache__`, `*.pyc`) is never drift; `jupyter/runtime`
//! is per-process state; a watcher that overflows or fails reports a batch
//! with `overflow: true` and the caller sweeps.

mod error;
mod evaluate;
mod filter;
mod state;
mod watcher;

pub use error::{Error, Result};
pub use evaluate::{evaluate, fingerprint, judge, Evaluation};
pub use state::{DriftState, Transition};
pub use watcher::{ChangeBatch, DriftWatcher, WatchConfig};

pub use westtek_inventory::{DriftStatus, Finding, FindingKind, Inventory, Severity};
