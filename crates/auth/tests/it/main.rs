//! Integration tests of `westtek-auth`: Cognito verification against a JWKS
//! served from a local HTTP server and against a real user pool on moto
//! (`cognito_moto`), and the combined verifier.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cognito;
mod cognito_moto;
mod combined;
mod support;
