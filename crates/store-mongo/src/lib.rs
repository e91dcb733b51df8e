//! MongoDB adapter of the metadata store port (`MetadataStore` and
//! `AuditLog`), for MongoDB replica sets and Amazon DocumentDB.
//!
//! It mirrors the SQLite adapter in `westtek-store` exactly (the same errors
//! for the same situations, the same orderings and filters, the same audit
//! chain) and is held to it by the shared conformance suite, which the
//! integration test runs when `WESTTEK_TEST_MONGO_URL` names a server.
//!
//! `store` holds the adapter and its transaction handling, `codec` the
//! document and filter shapes, `error` the mapping of driver errors.

mod codec;
mod error;
mod store;

pub use store::MongoStore;
