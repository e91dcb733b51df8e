//! The journal against the vault: journaled snapshots must equal full walks.
//! Test helpers outside `#[test]` functions unwrap too: a failure is a test
//! failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fallback;
mod helpers;
mod random;
