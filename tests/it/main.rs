//! End-to-end tests across the services, through a real `westtek` platform
//! on port 0 (real SQLite, real uv, real Jupyter).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod jupyter;
mod lifecycle;
mod snapshots;
