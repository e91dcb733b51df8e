//! The `westtek` command and the all-in-one assembly of the platform.
//! `app::start` is what `westtek up`, `westtek serve` and the end-to-end
//! tests run.

pub mod admin;
pub mod agent;
pub mod app;
pub mod cli;
pub mod client;
pub mod telemetry;
pub mod vault_cli;
