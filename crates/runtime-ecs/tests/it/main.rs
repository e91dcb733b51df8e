//! The ECS runtime over the wire: moto's ECS and EFS, with the harness
//! (`westtek_runtime_ecs::testing`) running what the runtime asked ECS to
//! run as local processes — a real JupyterLab from a venv on the
//! environment's "EBS volume" folder, and a stand-in agent that proves the
//! mounts and its environment. Each test has its own moto, harness and
//! folders, so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod errors;
mod lifecycle;
mod mocked;
mod support;
