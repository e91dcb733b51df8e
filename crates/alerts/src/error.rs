//! The crate's error type.
//!
//! A failed delivery is not an exceptional condition here: it is an
//! [`Error::Undelivered`] carrying the [`DeadLetter`] the caller records, so
//! nothing that could not be delivered is lost silently.

use crate::DeadLetter;

/// Everything that can go wrong in alert delivery.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every attempt failed, a failure was permanent (a 4xx answer, an SMTP
    /// 5xx reply, an invalid address), or the delivery was abandoned at
    /// shutdown. The dead letter says which target, how often and why.
    #[error("alert {} not delivered to {} after {} attempt(s): {}", .0.event_id, .0.target_id, .0.attempts, .0.last_error)]
    Undelivered(Box<DeadLetter>),
    /// A [`crate::TargetSource`] or [`crate::DeadLetterSink`] implementation
    /// failed (typically its database).
    #[error("{context}: {source}")]
    Backend {
        /// What was being done.
        context: String,
        /// The implementation's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A target's configuration cannot work (an unparsable email address,
    /// no recipient).
    #[error("invalid alert target configuration: {0}")]
    Config(String),
    /// The router was started outside a Tokio runtime.
    #[error("{0}")]
    Runtime(String),
    /// The HTTP client could not be built (TLS roots unavailable).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

impl Error {
    /// Wraps an implementation's error (a database error in a
    /// [`crate::DeadLetterSink`] or [`crate::TargetSource`]), with `context`
    /// saying what was being done.
    pub fn backend(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
