//! Integration tests of `westtek-auth`: Cognito verification against a JWKS
//! served from a local HTTP server, and the combined verifier.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cognito;
mod combined;
mod support;
