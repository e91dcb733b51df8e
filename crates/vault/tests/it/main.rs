//! Integration tests of the vault (one binary, see STYLE.md). Test helpers
//! outside `#[test]` functions unwrap too: a failure is a test failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corruption;
mod crash;
mod failure;
mod golden;
mod helpers;
mod incremental;
mod roundtrip;
