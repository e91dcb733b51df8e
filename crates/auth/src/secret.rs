//! Random secrets for one-time and refresh tokens, and the hash they are
//! stored under.
//!
//! Policy: a secret is 32 bytes from the OS random source, encoded as
//! unpadded base64url so it is safe in URLs and headers. Only its BLAKE3
//! hash is ever stored; the secret itself is shown to its holder once. A
//! fast hash is enough here (unlike passwords) because the input carries
//! 256 bits of entropy and cannot be guessed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

/// A fresh random secret: 32 bytes, base64url without padding (43 chars).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The BLAKE3 hash of `s` as 64 lowercase hex chars: the form a secret is
/// stored and looked up under.
pub fn secret_hash(s: &str) -> String {
    blake3::hash(s.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_43_url_safe_chars() {
        let s = random_secret();
        assert_eq!(s.len(), 43);
        assert!(s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn two_secrets_differ() {
        assert_ne!(random_secret(), random_secret());
    }

    #[test]
    fn a_secret_hash_is_stable_hex_and_differs_from_the_secret() {
        let s = random_secret();
        let h = secret_hash(&s);
        assert_eq!(h, secret_hash(&s));
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(h, secret_hash(&random_secret()));
    }
}
