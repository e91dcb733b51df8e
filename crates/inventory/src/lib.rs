//! What a Jupyter environment root holds, how two of those differ, and how to
//! make a restored root work at its new path.
//!
//! An environment root (see `westtek-runtime`'s `layout.rs`) is
//! `<root>/venv` (a uv venv whose `bin/python` links to an interpreter outside
//! it), `<root>/home` (notebooks and data), `<root>/jupyter/{config,data,runtime}`
//! and `<root>/ipython`. Three entry points:
//!
//! - [`inventory`] reads the root straight from its files — `*.dist-info`,
//!   `kernel.json`, `package.json`, config files, notebooks — without starting
//!   Python, so it is cheap enough to run on every drift event. The result is
//!   stored with every snapshot as JSON ([`Inventory::to_json`]).
//! - [`diff`] turns two inventories into drift [`Finding`]s with a severity and
//!   the notebooks each one affects.
//! - [`relocate`] rewrites the few files that hard-code the root (or the base
//!   interpreter's prefix) after a snapshot was restored somewhere else.
//!
//! Policy shared by all three: bytecode (`__pycache__`, `*.pyc`) is never part
//! of an inventory, never drift, and never rewritten; `jupyter/runtime` is
//! per-process state and is ignored.

mod closure;
mod diff;
mod error;
mod fsutil;
mod imports;
mod metadata;
mod model;
mod notebook;
mod relocate;
mod scan;
mod seed;
mod text;
mod version;

pub use closure::{interpreter_closure, HostRequirements, InterpreterClosure, SharedLibrary};
pub use diff::{diff, drift_status, Change, DriftStatus, Finding, FindingKind, Severity};
pub use error::{Error, Result};
pub use imports::{imports_in_source, scan_source, SourceScan};
pub use metadata::{normalize_name, parse_headers, Headers as MetadataHeaders};
pub use model::{
    CellCounts, ConfigFile, DataFile, DirectUrl, Extension, ExtensionKind, Inventory, KernelSource,
    Kernelspec, Notebook, Package, ProjectUrl, PythonInfo, FORMAT_VERSION,
};
pub use relocate::{relocate, relocate_mapped, RelocationReport};
pub use scan::{inventory, inventory_reusing};
pub use seed::{seed_metadata, SeedMetadata};
pub use version::{version_distance, version_order, VersionDistance};
