//! Authentication for West Tek: password hashing, random secrets for
//! one-time and refresh tokens, the platform's own signed access tokens, and
//! verification of Cognito tokens on AWS.
//!
//! Policy: every token failure is `DomainError::Unauthenticated` with a short
//! message that is safe to show a client and never echoes the token or its
//! claims; the detail goes to `tracing` at debug level. Verifiers implement
//! the domain's `TokenVerifier` port, so services hold them as
//! `Arc<dyn TokenVerifier>` and never name an adapter.

pub mod cognito;
pub mod combined;
pub mod local;
pub mod password;
pub mod secret;

/// Longest bearer token accepted, in bytes. Real tokens are a few KiB at
/// most; refusing anything larger keeps parsing cheap for garbage input.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Clock skew tolerated when checking `exp`, in seconds.
pub(crate) const LEEWAY_SECS: i64 = 5;

pub(crate) fn unauthenticated(message: &str) -> westtek_domain::DomainError {
    westtek_domain::DomainError::Unauthenticated(message.to_owned())
}

/// Maps a `jsonwebtoken` failure to a safe `Unauthenticated` message; the
/// detail goes to the debug log only.
pub(crate) fn jwt_error(e: &jsonwebtoken::errors::Error) -> westtek_domain::DomainError {
    use jsonwebtoken::errors::ErrorKind;
    tracing::debug!(error = %e, "token rejected");
    let message = match e.kind() {
        ErrorKind::InvalidSignature => "token signature is invalid",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "token algorithm is not accepted"
        }
        ErrorKind::ExpiredSignature => "token has expired",
        ErrorKind::InvalidIssuer => "token is not from a trusted issuer",
        ErrorKind::InvalidAudience => "token was issued for another client",
        _ => "token is malformed",
    };
    unauthenticated(message)
}
