//! Integration tests of the vault (one binary, see STYLE.md).

mod corruption;
mod crash;
mod failure;
mod golden;
mod helpers;
mod incremental;
mod roundtrip;
