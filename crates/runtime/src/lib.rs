//! Local adapters of the environment ports: [`UvBuilder`] builds each
//! environment as a uv venv with JupyterLab, and [`LocalJupyterRuntime`] runs
//! one JupyterLab process per environment on a loopback port.
//!
//! Both keep everything an environment owns under `<envs_dir>/<env_id>/`
//! (see [`EnvLayout`]) so later snapshots capture it whole.

mod activity;
mod builder;
mod config;
mod jupyter;
mod layout;
mod process;
pub mod sandbox;
mod uv_output;

pub use activity::recent_activity;
pub use builder::{configuration_hash, UvBuilder};
pub use config::{find_uv, RuntimeConfig};
pub use jupyter::LocalJupyterRuntime;
pub use layout::{EnvLayout, PID_FILE, TOKEN_FILE};
pub use process::{group_alive, process_alive};
pub use sandbox::{Sandbox, SandboxStatus};
