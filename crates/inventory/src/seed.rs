//! The inventory-derived fields of the seed's Snapshot metadata.

use serde::{Deserialize, Serialize};

use crate::model::Inventory;

/// Snapshot metadata fields filled from an inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedMetadata {
    /// JupyterLab's version, else jupyter_server's, else the classic
    /// notebook's; `None` in an environment with only a kernel.
    pub jupyter_version: Option<String>,
    /// `name==version` of every distribution, names normalised, sorted.
    pub installed_packages: Vec<String>,
    /// Notebooks under `home/`.
    pub notebook_count: usize,
    /// Root-relative paths of the Jupyter and IPython configuration files, sorted.
    pub configuration_files: Vec<String>,
}

/// The seed fields of `inv`.
pub fn seed_metadata(inv: &Inventory) -> SeedMetadata {
    let jupyter_version = ["jupyterlab", "jupyter-server", "notebook"]
        .iter()
        .find_map(|n| inv.package(n).map(|p| p.version.clone()));
    let mut installed_packages: Vec<String> = inv
        .packages
        .iter()
        .map(|p| format!("{}=={}", p.name, p.version))
        .collect();
    installed_packages.sort();
    installed_packages.dedup();
    let mut configuration_files: Vec<String> =
        inv.config_files.iter().map(|c| c.path.clone()).collect();
    configuration_files.sort();
    SeedMetadata {
        jupyter_version,
        installed_packages,
        notebook_count: inv.notebooks.len(),
        configuration_files,
    }
}
