//! The one error type of the domain and its ports.
//!
//! Each variant maps to one HTTP status and one stable problem `code` in the
//! HTTP kit; adapters translate their own failures into these variants and
//! keep internal detail (SQL, paths) in `Internal`, which is logged but never
//! shown to clients.

use thiserror::Error;

/// Result alias used by every port.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// Input failed validation; `field` names the offending field.
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    /// The thing does not exist, or exists in a lab the caller cannot see.
    #[error("{kind} not found")]
    NotFound { kind: &'static str },
    /// The request conflicts with current state (duplicate name, wrong state).
    #[error("{0}")]
    Conflict(String),
    /// A per-lab quota would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Too many attempts; try again later.
    #[error("{0}")]
    RateLimited(String),
    /// Credentials are missing, malformed, expired or revoked.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// An external component (uv, Jupyter, Redis) failed in a way the user
    /// can understand; `message` is safe to show.
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// Anything else; the text is for logs only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// Shorthand for a validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for an internal error carrying a loggable cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        DomainError::Internal(cause.to_string())
    }
}
