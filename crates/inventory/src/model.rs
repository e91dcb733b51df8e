//! The inventory document. It is stored with every snapshot and read back
//! years later, so it is versioned ([`FORMAT_VERSION`]), every list is sorted
//! (two inventories of the same files serialise to the same bytes), paths are
//! relative to the environment root with `/` separators, and fields added
//! later default when absent so old documents keep parsing.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Version of the inventory document written by this build. Bump it when a
/// field changes meaning; adding a defaulted field does not need a bump.
pub const FORMAT_VERSION: u32 = 1;

/// Everything [`crate::inventory`] found in one environment root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// [`FORMAT_VERSION`] of the build that wrote it.
    pub format_version: u32,
    /// The root it was taken from, absolute. Diffs treat paths under it as
    /// equal to the same paths under another inventory's root.
    pub root: String,
    /// The interpreter the venv runs on.
    pub python: PythonInfo,
    /// Installed distributions, by normalised name then `dist_info`.
    #[serde(default)]
    pub packages: Vec<Package>,
    /// Kernelspecs of the venv and of `jupyter/data`, by `path`.
    #[serde(default)]
    pub kernels: Vec<Kernelspec>,
    /// Lab and server extensions, by kind then name.
    #[serde(default)]
    pub extensions: Vec<Extension>,
    /// Jupyter and IPython configuration files, by path.
    #[serde(default)]
    pub config_files: Vec<ConfigFile>,
    /// Notebooks under `home/`, by path.
    #[serde(default)]
    pub notebooks: Vec<Notebook>,
    /// Every other file (and symlink) under `home/`, by path.
    #[serde(default)]
    pub data_files: Vec<DataFile>,
    /// Files that could not be read or parsed, one line each.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Inventory {
    /// The document as stored with a snapshot.
    ///
    /// # Errors
    /// Never in practice (every field serialises); the `Result` is serde's.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec_pretty(self)?)
    }

    /// Read a stored document.
    ///
    /// # Errors
    /// [`Error::Json`] when the bytes are not an inventory,
    /// [`Error::UnsupportedFormat`] when a newer build wrote it.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Probe {
            format_version: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes)?;
        if probe.format_version > FORMAT_VERSION {
            return Err(Error::UnsupportedFormat {
                found: probe.format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The package installed under `name` (any spelling; PEP 503 normalised).
    pub fn package(&self, name: &str) -> Option<&Package> {
        let name = crate::metadata::normalize_name(name);
        self.packages.iter().find(|p| p.name == name)
    }

    /// The notebook at `path` (relative to the root, e.g. `home/a.ipynb`).
    pub fn notebook(&self, path: &str) -> Option<&Notebook> {
        self.notebooks.iter().find(|n| n.path == path)
    }
}

/// The interpreter, from `venv/pyvenv.cfg` and the base install's layout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonInfo {
    /// `3.11.7`: pyvenv.cfg's `version_info`/`version`, else the base's
    /// `patchlevel.h`, else `lib/python3.X`.
    pub version: Option<String>,
    /// `CPython` when pyvenv.cfg says so.
    pub implementation: Option<String>,
    /// pyvenv.cfg's `home`: the folder holding the base interpreter.
    pub home: Option<String>,
    /// The venv's `sys.base_prefix`: `home` without its trailing `bin`.
    pub base_prefix: Option<String>,
    /// The tool that made the venv (`uv 0.13.9`, `virtualenv 20.x`).
    pub venv_creator: Option<String>,
    /// `include-system-site-packages`.
    #[serde(default)]
    pub include_system_site_packages: bool,
}

/// One installed distribution (a `*.dist-info` or `*.egg-info` folder).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// PEP 503 normalised name (`scikit-learn`, `pyyaml`).
    pub name: String,
    /// The name as METADATA spells it (`PyYAML`).
    pub display_name: String,
    /// The version as METADATA spells it.
    pub version: String,
    /// `INSTALLER` (`uv`, `pip`).
    pub installer: Option<String>,
    /// `REQUESTED` exists: the user asked for it, it is not only a dependency.
    pub requested: bool,
    /// `direct_url.json`: installed from a URL, path or VCS, not an index.
    pub direct_url: Option<DirectUrl>,
    /// METADATA `Summary`.
    pub summary: Option<String>,
    /// METADATA `Home-page`.
    pub home_page: Option<String>,
    /// METADATA `Project-URL`s, in file order.
    #[serde(default)]
    pub project_urls: Vec<ProjectUrl>,
    /// METADATA `Requires-Python`.
    pub requires_python: Option<String>,
    /// METADATA `Requires-Dist`, verbatim, in file order.
    #[serde(default)]
    pub requires_dist: Vec<String>,
    /// Import names it provides (`sklearn` for scikit-learn), from
    /// `top_level.txt`, else from `RECORD`. Sorted.
    #[serde(default)]
    pub top_level: Vec<String>,
    /// The metadata folder, relative to the root.
    pub dist_info: String,
}

/// `direct_url.json` (PEP 610), the fields that identify the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectUrl {
    /// Where it was installed from.
    pub url: String,
    /// An editable (development) install.
    #[serde(default)]
    pub editable: bool,
    /// `git`, `hg`, … for VCS installs.
    pub vcs: Option<String>,
    /// The exact revision of a VCS install.
    pub commit_id: Option<String>,
    /// The revision the user asked for (branch, tag).
    pub requested_revision: Option<String>,
    /// `sha256=…` of an archive install.
    pub archive_hash: Option<String>,
}

/// One `Project-URL: label, url` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectUrl {
    /// `Source`, `Documentation`, …
    pub label: String,
    /// The URL.
    pub url: String,
}

/// Where a kernelspec was found. Jupyter looks in `jupyter/data` first, so a
/// spec there shadows one of the same name in the venv.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelSource {
    /// `jupyter/data/kernels` (`JUPYTER_DATA_DIR`).
    JupyterData,
    /// `venv/share/jupyter/kernels` (`sys.prefix`).
    Venv,
}

/// One kernelspec (`kernels/<name>/kernel.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kernelspec {
    /// The folder name, lower-cased as Jupyter does.
    pub name: String,
    /// `display_name`.
    pub display_name: Option<String>,
    /// `language`.
    pub language: Option<String>,
    /// `argv`: the command Jupyter runs.
    #[serde(default)]
    pub argv: Vec<String>,
    /// `env`: extra environment for the kernel.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `interrupt_mode`.
    pub interrupt_mode: Option<String>,
    /// Which kernels folder it is in.
    pub source: KernelSource,
    /// The spec's folder, relative to the root.
    pub path: String,
    /// BLAKE3 of `kernel.json`, hex.
    pub blake3: String,
    /// Why `kernel.json` could not be parsed, if it could not.
    pub error: Option<String>,
}

/// Kind of Jupyter extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionKind {
    /// A prebuilt JupyterLab extension (`labextensions/<name>/package.json`).
    Lab,
    /// A Jupyter server extension (`ServerApp.jpserver_extensions`).
    Server,
}

/// One Jupyter extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// Lab or server.
    pub kind: ExtensionKind,
    /// npm package name (`@jupyter-widgets/jupyterlab-manager`) or Python
    /// module (`jupyterlab`).
    pub name: String,
    /// package.json `version`; for a server extension, the version of the
    /// distribution that provides the module.
    pub version: Option<String>,
    /// Enabled after applying Jupyter's config precedence (lab: not listed
    /// in `labconfig/page_config.json`'s `disabledExtensions`).
    pub enabled: bool,
    /// The file that decided it (package.json or the config file), relative
    /// to the root.
    pub path: String,
}

/// One configuration file, by content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Relative to the root (`jupyter/config/jupyter_server_config.json`).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// BLAKE3 of the content, hex.
    pub blake3: String,
    /// Modification time, ns since the epoch (lets a later inventory skip
    /// re-hashing an unchanged file).
    #[serde(default)]
    pub mtime_ns: i64,
}

/// Cells by type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellCounts {
    /// Code cells.
    pub code: u32,
    /// Markdown cells.
    pub markdown: u32,
    /// Raw cells.
    pub raw: u32,
}

/// One notebook under `home/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notebook {
    /// Relative to the root (`home/analysis/a.ipynb`).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// BLAKE3 of the file, hex.
    pub blake3: String,
    /// Modification time, ns since the epoch.
    #[serde(default)]
    pub mtime_ns: i64,
    /// Cells by type.
    pub cells: CellCounts,
    /// Top-level modules its code cells import (`sklearn`, `yaml`, `os`),
    /// sorted; relative imports, shell and magic lines are left out.
    #[serde(default)]
    pub imports: Vec<String>,
    /// String literals in code cells that look like file paths
    /// (`data/raw.csv`), sorted: how a data-file change is tied to the
    /// notebooks that read it.
    #[serde(default)]
    pub file_refs: Vec<String>,
    /// `metadata.kernelspec.name`.
    pub kernel_name: Option<String>,
    /// `metadata.kernelspec.language` or `metadata.language_info.name`.
    pub language: Option<String>,
    /// Why the notebook could not be parsed, if it could not.
    pub error: Option<String>,
}

/// One non-notebook file or symlink under `home/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Relative to the root (`home/data/raw.csv`).
    pub path: String,
    /// Bytes (of the link itself for a symlink).
    pub size: u64,
    /// BLAKE3 of the content, hex; absent for a symlink.
    pub blake3: Option<String>,
    /// Target of a symlink (not followed).
    pub symlink_target: Option<String>,
    /// Modification time, ns since the epoch.
    #[serde(default)]
    pub mtime_ns: i64,
}
