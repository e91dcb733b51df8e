//! Integration tests of the platform router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cognito_moto;
mod cognito_provisioning;
mod support;
