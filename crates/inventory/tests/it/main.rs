//! Integration tests against real uv environments (no mocks): inventory of a
//! real venv with notebooks and data, diffs after real `uv pip` changes and
//! file edits, and relocation of copied environments (and of the base
//! interpreter) to paths with spaces, unicode and quotes.
//!
//! One environment is built once per test run (`support::fixture`) and only
//! read; a test that changes one works on its own copy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod closure;
mod diff;
mod inventory;
mod relocate;
mod support;
