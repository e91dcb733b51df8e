//! Password hashing with Argon2id.
//!
//! Policy: hashes are PHC strings (`$argon2id$v=19$...`) with a fresh random
//! salt and the crate's default (OWASP-recommended) parameters; verification
//! reads the parameters from the stored hash, so they can be raised later
//! without invalidating old hashes. Hashing is deliberately slow (tens of
//! milliseconds): call these from `spawn_blocking` in async code.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::rngs::OsRng;
use westtek_domain::{DomainError, Result};

/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Hashes `pw` with Argon2id and a random salt, returning a PHC string.
///
/// # Errors
/// `Validation` when the password is empty or longer than
/// [`MAX_PASSWORD_LEN`] bytes; `Internal` if hashing itself fails.
pub fn hash_password(pw: &str) -> Result<String> {
    if pw.is_empty() {
        return Err(DomainError::invalid("password", "must not be empty"));
    }
    if pw.len() > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DomainError::internal(format!("argon2 hashing failed: {e}")))
}

/// Whether `pw` matches the PHC string `phc`.
///
/// The comparison is constant-time (done by argon2). Returns `false` for a
/// malformed or non-Argon2 hash and for passwords outside the accepted
/// length, never an error, so callers cannot leak which case happened.
pub fn verify_password(pw: &str, phc: &str) -> bool {
    if pw.is_empty() || pw.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(pw.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_hashed_password_verifies() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery staple", &phc));
    }

    #[test]
    fn a_wrong_password_does_not_verify() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(!verify_password("correct horse battery stapler", &phc));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash_password("pw").unwrap(), hash_password("pw").unwrap());
    }

    #[test]
    fn an_empty_or_oversized_password_is_rejected() {
        assert!(matches!(
            hash_password(""),
            Err(DomainError::Validation { .. })
        ));
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert!(matches!(
            hash_password(&long),
            Err(DomainError::Validation { .. })
        ));
        assert!(hash_password(&"x".repeat(MAX_PASSWORD_LEN)).is_ok());
    }

    #[test]
    fn a_malformed_hash_never_verifies() {
        assert!(!verify_password("pw", ""));
        assert!(!verify_password("pw", "not a hash"));
        assert!(!verify_password("pw", "$argon2id$v=19$garbage"));
    }
}
