//! Translation of MongoDB driver errors into `DomainError`.
//!
//! Policy: a duplicate-key error (code 11000, the only uniqueness failure the
//! store can hit) becomes `Conflict`; every other driver failure becomes
//! `Internal("mongodb: …")`, whose text is for logs only. Call sites that
//! know which unique index was hit replace the generic conflict message with
//! one naming the taken value, as the SQLite adapter does.

use mongodb::error::{Error, ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR};
use westtek_domain::DomainError;

/// The server's code for a unique-index violation.
pub(crate) const DUPLICATE_KEY: i32 = 11000;
/// Legacy duplicate-key code some servers still return for updates.
const DUPLICATE_KEY_LEGACY: i32 = 11001;
/// `createCollection` on a collection that exists.
pub(crate) const NAMESPACE_EXISTS: i32 = 48;
/// A concurrent transaction changed a document this one wrote.
const WRITE_CONFLICT: i32 = 112;

/// An internal error carrying a loggable cause.
pub(crate) fn internal(e: impl std::fmt::Display) -> DomainError {
    DomainError::internal(format!("mongodb: {e}"))
}

/// Every server error code the error carries (command, write or per-insert
/// errors, and those of its sources).
pub(crate) fn error_codes(e: &Error) -> Vec<i32> {
    let mut codes = match e.kind.as_ref() {
        ErrorKind::Command(c) => vec![c.code],
        ErrorKind::Write(WriteFailure::WriteError(w)) => vec![w.code],
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => vec![w.code],
        ErrorKind::InsertMany(m) => m
            .write_errors
            .iter()
            .flatten()
            .map(|w| w.code)
            .chain(m.write_concern_error.iter().map(|w| w.code))
            .collect(),
        _ => Vec::new(),
    };
    if let Some(source) = std::error::Error::source(e) {
        // The driver keeps its cause boxed; accept either shape.
        let inner = source
            .downcast_ref::<Error>()
            .or_else(|| source.downcast_ref::<Box<Error>>().map(AsRef::as_ref));
        if let Some(inner) = inner {
            codes.extend(error_codes(inner));
        }
    }
    codes
}

/// Whether the error is a unique-index violation.
pub(crate) fn is_duplicate_key(e: &Error) -> bool {
    error_codes(e)
        .iter()
        .any(|c| matches!(*c, DUPLICATE_KEY | DUPLICATE_KEY_LEGACY))
}

/// Whether retrying the whole transaction may succeed (a write conflict with
/// a concurrent transaction, a primary step-down, a dropped connection).
pub(crate) fn is_transient(e: &Error) -> bool {
    e.contains_label(TRANSIENT_TRANSACTION_ERROR) || error_codes(e).contains(&WRITE_CONFLICT)
}

/// The generic mapping: duplicate key → `Conflict`, anything else →
/// `Internal`.
pub(crate) fn map_mongo(e: Error) -> DomainError {
    if is_duplicate_key(&e) {
        DomainError::Conflict("a record with the same unique key already exists".into())
    } else {
        internal(e)
    }
}

/// Maps a duplicate-key error to `Conflict(message())` and anything else as
/// [`map_mongo`] does.
pub(crate) fn conflict_on_duplicate(e: Error, message: impl FnOnce() -> String) -> DomainError {
    if is_duplicate_key(&e) {
        DomainError::Conflict(message())
    } else {
        map_mongo(e)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use mongodb::bson::{doc, from_document};
    use mongodb::error::{CommandError, WriteError};

    fn write_error(code: i32, name: &str) -> Error {
        let w: WriteError = from_document(doc! {
            "code": code,
            "codeName": name,
            "errmsg": format!("E{code} collection: westtek.labs index: labs_name dup key: {{ name: \"alpha\" }}"),
        })
        .unwrap();
        Error::from(ErrorKind::Write(WriteFailure::WriteError(w)))
    }

    fn command_error(code: i32, name: &str) -> Error {
        let c: CommandError = from_document(doc! {
            "code": code,
            "codeName": name,
            "errmsg": "boom",
        })
        .unwrap();
        Error::from(ErrorKind::Command(c))
    }

    #[test]
    fn a_duplicate_key_write_error_becomes_a_conflict() {
        let e = write_error(DUPLICATE_KEY, "DuplicateKey");
        assert!(is_duplicate_key(&e));
        assert!(matches!(map_mongo(e.clone()), DomainError::Conflict(_)));
        assert_eq!(
            conflict_on_duplicate(e, || "a lab named 'alpha' already exists".into()),
            DomainError::Conflict("a lab named 'alpha' already exists".into())
        );
    }

    #[test]
    fn a_duplicate_key_command_error_becomes_a_conflict_too() {
        // DocumentDB and transactions may report it as a command error.
        let e = command_error(DUPLICATE_KEY, "DuplicateKey");
        assert!(matches!(map_mongo(e), DomainError::Conflict(_)));
    }

    #[test]
    fn any_other_driver_error_becomes_an_internal_error_naming_mongodb() {
        let e = write_error(121, "DocumentValidationFailure");
        assert!(!is_duplicate_key(&e));
        match map_mongo(e) {
            DomainError::Internal(msg) => assert!(msg.starts_with("mongodb: "), "{msg}"),
            other => panic!("expected Internal, got {other:?}"),
        }
        let io = Error::from(ErrorKind::Io(std::sync::Arc::new(std::io::Error::other(
            "reset",
        ))));
        assert!(matches!(map_mongo(io), DomainError::Internal(_)));
    }

    #[test]
    fn a_message_for_duplicates_is_not_used_for_other_errors() {
        let e = command_error(13, "Unauthorized");
        let mapped = conflict_on_duplicate(e, || unreachable!("not a duplicate"));
        assert!(matches!(mapped, DomainError::Internal(_)));
    }

    #[test]
    fn a_write_conflict_is_transient_and_a_duplicate_is_not() {
        assert!(is_transient(&command_error(
            WRITE_CONFLICT,
            "WriteConflict"
        )));
        assert!(!is_transient(&write_error(DUPLICATE_KEY, "DuplicateKey")));
    }
}
