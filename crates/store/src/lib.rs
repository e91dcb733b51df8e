//! Metadata store adapters for the `MetadataStore` port.
//!
//! `sqlite` is the embedded default. `conformance` holds the one generic test
//! body every adapter must pass (the MongoDB adapter runs it too).

pub mod conformance;
pub mod sqlite;

pub use sqlite::SqliteStore;
