//! Integration tests of the knowledge adapters for AWS:
//!
//! - [`store`]: the S3 document store over the wire on moto (its own
//!   `moto_server` per test), running the same behaviour bodies as the local
//!   folder store (`crates/knowledge/tests/it/store_conformance.rs`, included
//!   with `#[path]`) plus the S3-specific layout, metadata, lab scoping and
//!   provisioning;
//! - [`ingest`] and [`agent`]: Bedrock is not in moto, so these run on the
//!   SDK's mock client (`aws-smithy-mocks`) with Bedrock's response shapes;
//!   InvokeAgent's responses are real event-stream frames decoded by the SDK.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod ingest;
mod store;
#[path = "../../../knowledge/tests/it/store_conformance.rs"]
mod store_conformance;
