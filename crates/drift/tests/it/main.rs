//! Integration tests of the drift watcher and evaluation against a real uv
//! environment (no mocks): one venv is built per test binary and each test
//! works on its own `cp -a` copy of it, laid out like an environment root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
mod watcher;
