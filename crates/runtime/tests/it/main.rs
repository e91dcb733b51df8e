//! Integration tests of the runtime crate against real uv and real
//! JupyterLab (no mocks): builds, failed builds, and the server lifecycle.
//!
//! One environment is built once per test run and shared by the Jupyter
//! tests, which take turns on it (`support::jupyter_turn`); every other test
//! has its own temporary folders. Ports are always picked free.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod build;
mod jupyter;
mod support;
