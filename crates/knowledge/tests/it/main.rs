//! Integration tests of the knowledge crate through its public API: the
//! local document store (conformance body an S3 adapter can reuse), the
//! lab-scoped index, and the whole notebook → redact → store → index →
//! cite pipeline. Every test works in its own temporary folder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod index;
mod pipeline;
mod store;
mod store_conformance;
