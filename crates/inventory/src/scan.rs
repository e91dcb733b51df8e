//! Taking the inventory of an environment root from its files.
//!
//! What is read: `venv/pyvenv.cfg`; every `venv/lib/python*/site-packages/
//! *.dist-info` (and legacy `*.egg-info`) — METADATA's header block,
//! INSTALLER, REQUESTED, direct_url.json, top_level.txt or else RECORD;
//! `kernel.json` under `venv/share/jupyter/kernels` and `jupyter/data/kernels`;
//! lab extensions' `package.json` under both `labextensions` folders and the
//! server-extension switches in `jupyter_server_config{.d/*,}.json`; config
//! files under `jupyter/config` (except `lab/workspaces`, which is UI layout
//! state rewritten as the user clicks), `venv/etc/jupyter` and the IPython
//! profiles' `*_config.{py,json}` and `startup/`; and everything under `home/`
//! except `.ipynb_checkpoints`, `__pycache__`, `*.pyc` and the environment's
//! own venv when it sits inside `home/` (an adopted project's `.venv`). Nothing else in
//! the venv is opened, which is what keeps a 20k-file venv cheap.
//!
//! Content hashing (notebooks, data, config) runs on all cores. An unreadable
//! or vanished file becomes a warning, not an error.

use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{hash_bytes, hash_file, is_bytecode, mtime_ns, rel, site_packages, sorted_dir};
use crate::metadata::{
    editable_hooks, finder_mapping_names, names_in_path_dir, normalize_name, parse_direct_url,
    parse_headers, split_dist_info_name, top_level_from_record, top_level_from_txt,
};
use crate::model::{
    ConfigFile, DataFile, Extension, ExtensionKind, Inventory, KernelSource, Kernelspec, Notebook,
    Package, PythonInfo, FORMAT_VERSION,
};
use crate::notebook;

/// Take the inventory of the environment at `root`.
///
/// # Errors
/// Only when `root` itself cannot be read or is not a folder; problems with
/// single files inside it are listed in [`Inventory::warnings`].
pub fn inventory(root: &Path) -> Result<Inventory> {
    scan(root, None)
}

/// Like [`inventory`], but a notebook, data or config file whose path, size
/// and mtime equal its entry in `previous` is taken from there instead of
/// being read and hashed again (the same stat shortcut backup tools use).
/// This is what a drift watcher calls on every event.
///
/// # Errors
/// As [`inventory`].
pub fn inventory_reusing(root: &Path, previous: &Inventory) -> Result<Inventory> {
    scan(root, Some(previous))
}

fn scan(root: &Path, previous: Option<&Inventory>) -> Result<Inventory> {
    let root = std::path::absolute(root).at(root)?;
    let meta = fs::metadata(&root).at(&root)?;
    if !meta.is_dir() {
        return Err(Error::NotAnEnvironment {
            path: root,
            reason: "not a folder".into(),
        });
    }
    let venv = root.join("venv");
    let mut warnings = Vec::new();
    let python = python_info(&venv, &mut warnings);

    let (
        (packages, package_warnings),
        ((notebooks, data_files, home_warnings), (config_files, config_warnings)),
    ) = rayon::join(
        || packages(&root, &venv),
        || rayon::join(|| home(&root, previous), || config_files(&root, previous)),
    );
    warnings.extend(package_warnings);
    warnings.extend(home_warnings);
    warnings.extend(config_warnings);

    let kernels = kernels(&root, &venv, &mut warnings);
    let extensions = extensions(&root, &venv, &packages, &mut warnings);
    warnings.sort();

    Ok(Inventory {
        format_version: FORMAT_VERSION,
        root: root.to_string_lossy().into_owned(),
        python,
        packages,
        kernels,
        extensions,
        config_files,
        notebooks,
        data_files,
        warnings,
    })
}

/// `key = value` lines of `pyvenv.cfg`, keys lower-cased.
pub(crate) fn parse_pyvenv_cfg(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// `3.11.7.final.0` → `3.11.7`.
fn normalize_python_version(v: &str) -> Option<String> {
    let parts: Vec<&str> = v
        .trim()
        .split('.')
        .take_while(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .take(3)
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

fn python_info(venv: &Path, warnings: &mut Vec<String>) -> PythonInfo {
    let cfg_path = venv.join("pyvenv.cfg");
    let cfg = match fs::read_to_string(&cfg_path) {
        Ok(text) => parse_pyvenv_cfg(&text),
        Err(e) => {
            warnings.push(format!("venv/pyvenv.cfg: {e}"));
            BTreeMap::new()
        }
    };
    let home = cfg.get("home").cloned();
    let base_prefix = home.as_deref().map(|h| {
        let p = Path::new(h);
        match p.file_name() {
            Some(name) if name == "bin" => p.parent().unwrap_or(p).to_string_lossy().into_owned(),
            _ => h.to_string(),
        }
    });
    let mut version = cfg
        .get("version_info")
        .or_else(|| cfg.get("version"))
        .and_then(|v| normalize_python_version(v));
    if version.is_none() {
        version = base_prefix
            .as_deref()
            .and_then(|b| version_from_patchlevel(Path::new(b)))
            .or_else(|| version_from_lib_dir(venv));
    }
    let venv_creator = if let Some(v) = cfg.get("uv") {
        Some(format!("uv {v}"))
    } else if let Some(v) = cfg.get("virtualenv") {
        Some(format!("virtualenv {v}"))
    } else if cfg.contains_key("command") {
        Some("venv".to_string())
    } else {
        None
    };
    PythonInfo {
        version,
        implementation: cfg.get("implementation").cloned(),
        home,
        base_prefix,
        venv_creator,
        include_system_site_packages: cfg
            .get("include-system-site-packages")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }
}

/// `PY_VERSION` from the base install's `include/python3.X/patchlevel.h`.
fn version_from_patchlevel(base: &Path) -> Option<String> {
    for entry in sorted_dir(&base.join("include")).ok()? {
        let text = fs::read_to_string(entry.path().join("patchlevel.h")).ok();
        if let Some(text) = text {
            for line in text.lines() {
                if let Some(rest) = line.trim().strip_prefix("#define PY_VERSION") {
                    let v = rest.trim().trim_matches('"');
                    return normalize_python_version(v.trim_end_matches('+'));
                }
            }
        }
    }
    None
}

/// `3.11` from `venv/lib/python3.11`.
fn version_from_lib_dir(venv: &Path) -> Option<String> {
    sorted_dir(&venv.join("lib"))
        .ok()?
        .iter()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("python")
                .map(str::to_string)
        })
        .find_map(|v| normalize_python_version(&v))
}

fn packages(root: &Path, venv: &Path) -> (Vec<Package>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut dirs = Vec::new();
    match site_packages(venv) {
        Ok(sps) => {
            for sp in sps {
                match sorted_dir(&sp) {
                    Ok(entries) => dirs.extend(
                        entries
                            .into_iter()
                            .filter(|e| {
                                let n = e.file_name();
                                let n = n.to_string_lossy();
                                (n.ends_with(".dist-info") || n.ends_with(".egg-info"))
                                    && e.file_type().is_ok_and(|t| t.is_dir())
                            })
                            .map(|e| e.path()),
                    ),
                    Err(e) => warnings.push(format!("{}: {e}", rel(root, &sp))),
                }
            }
        }
        Err(e) => warnings.push(format!("venv/lib: {e}")),
    }
    let results: Vec<std::result::Result<Package, String>> =
        dirs.par_iter().map(|d| read_dist(root, d)).collect();
    let mut packages = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(p) => packages.push(p),
            Err(w) => warnings.push(w),
        }
    }
    packages.sort_by(|a, b| (&a.name, &a.dist_info).cmp(&(&b.name, &b.dist_info)));
    for pair in packages.windows(2) {
        if pair[0].name == pair[1].name {
            warnings.push(format!(
                "{} is installed twice ({} and {})",
                pair[0].name, pair[0].dist_info, pair[1].dist_info
            ));
        }
    }
    (packages, warnings)
}

fn read_dist(root: &Path, dir: &Path) -> std::result::Result<Package, String> {
    let dir_rel = rel(root, dir);
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_egg = dir_name.ends_with(".egg-info");
    let meta_path = dir.join(if is_egg { "PKG-INFO" } else { "METADATA" });
    let headers = fs::File::open(&meta_path)
        .and_then(|f| parse_headers(BufReader::new(f)))
        .map_err(|e| format!("{}: {e}", rel(root, &meta_path)))?;
    let (fallback_name, fallback_version) = split_dist_info_name(&dir_name);
    let display_name = headers.name.unwrap_or(fallback_name);
    let read_trimmed = |name: &str| {
        fs::read_to_string(dir.join(name))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let top_level = match fs::read_to_string(dir.join("top_level.txt")) {
        Ok(text) => top_level_from_txt(&text),
        Err(_) => match fs::read_to_string(dir.join("RECORD")) {
            Ok(record) => {
                let mut names = top_level_from_record(&record);
                if names.is_empty() {
                    names = editable_names(dir, &record);
                }
                names
            }
            Err(_) => Vec::new(),
        },
    };
    Ok(Package {
        name: normalize_name(&display_name),
        display_name,
        version: headers.version.unwrap_or(fallback_version),
        installer: read_trimmed("INSTALLER"),
        requested: dir.join("REQUESTED").exists(),
        direct_url: fs::read(dir.join("direct_url.json"))
            .ok()
            .and_then(|b| parse_direct_url(&b)),
        summary: headers.summary,
        home_page: headers.home_page,
        project_urls: headers.project_urls,
        requires_python: headers.requires_python,
        requires_dist: headers.requires_dist,
        top_level,
        dist_info: dir_rel,
    })
}

/// Import names of an editable install, whose RECORD lists only the hook
/// that points at the source tree: the folders its `.pth` lines add to
/// `sys.path`, or the names its setuptools finder maps.
fn editable_names(dist_info: &Path, record: &str) -> Vec<String> {
    let Some(site_packages) = dist_info.parent() else {
        return Vec::new();
    };
    let (pth_files, finders) = editable_hooks(record);
    let mut names = Vec::new();
    for pth in pth_files {
        let Ok(text) = fs::read_to_string(site_packages.join(&pth)) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with("import") {
                continue;
            }
            names.extend(names_in_path_dir(&site_packages.join(line)));
        }
    }
    for finder in finders {
        if let Ok(source) = fs::read_to_string(site_packages.join(&finder)) {
            names.extend(finder_mapping_names(&source));
        }
    }
    names.sort();
    names.dedup();
    names
}

enum HomeEntry {
    Notebook(Notebook),
    Data(DataFile),
}

fn home(root: &Path, previous: Option<&Inventory>) -> (Vec<Notebook>, Vec<DataFile>, Vec<String>) {
    let home = root.join("home");
    let mut warnings = Vec::new();
    let mut jobs: Vec<(PathBuf, fs::Metadata)> = Vec::new();
    // The environment's own venv inside its notebooks folder (an adopted
    // project's `.venv`) is the environment, not data.
    let own_venv = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(root.join("venv"))
            .ok()
            .map(|m| (m.dev(), m.ino()))
    };
    let own_venv = own_venv.as_ref();
    if home.exists() {
        let walker = WalkDir::new(&home)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir()
                    && (e.file_name() == ".ipynb_checkpoints"
                        || is_bytecode(e.file_name())
                        || own_venv.is_some_and(|v| same_file(e, v))))
            });
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_dir() || is_bytecode(e.file_name()) => {}
                Ok(e) => match e.metadata() {
                    Ok(m) => jobs.push((e.into_path(), m)),
                    Err(err) => warnings.push(format!("{}: {err}", rel(root, e.path()))),
                },
                Err(err) => warnings.push(format!("home: {err}")),
            }
        }
    }
    let prev_nb: HashMap<&str, &Notebook> = previous
        .map(|p| p.notebooks.iter().map(|n| (n.path.as_str(), n)).collect())
        .unwrap_or_default();
    let prev_data: HashMap<&str, &DataFile> = previous
        .map(|p| p.data_files.iter().map(|d| (d.path.as_str(), d)).collect())
        .unwrap_or_default();

    let results: Vec<std::result::Result<Option<HomeEntry>, String>> = jobs
        .par_iter()
        .map(|(path, meta)| home_entry(root, path, meta, &prev_nb, &prev_data))
        .collect();
    let (mut notebooks, mut data) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(Some(HomeEntry::Notebook(n))) => notebooks.push(n),
            Ok(Some(HomeEntry::Data(d))) => data.push(d),
            Ok(None) => {}
            Err(w) => warnings.push(w),
        }
    }
    notebooks.sort_by(|a, b| a.path.cmp(&b.path));
    data.sort_by(|a, b| a.path.cmp(&b.path));
    (notebooks, data, warnings)
}

/// Whether the walked entry is the file `(dev, ino)` names.
fn same_file(e: &walkdir::DirEntry, id: &(u64, u64)) -> bool {
    use std::os::unix::fs::MetadataExt;
    e.metadata().is_ok_and(|m| (m.dev(), m.ino()) == *id)
}

fn home_entry(
    root: &Path,
    path: &Path,
    meta: &fs::Metadata,
    prev_nb: &HashMap<&str, &Notebook>,
    prev_data: &HashMap<&str, &DataFile>,
) -> std::result::Result<Option<HomeEntry>, String> {
    let rel_path = rel(root, path);
    let mtime = mtime_ns(meta);
    let fail = |e: std::io::Error| format!("{rel_path}: {e}");
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(fail)?;
        return Ok(Some(HomeEntry::Data(DataFile {
            path: rel_path.clone(),
            size: meta.len(),
            blake3: None,
            symlink_target: Some(target.to_string_lossy().into_owned()),
            mtime_ns: mtime,
        })));
    }
    if !meta.is_file() {
        return Ok(None);
    }
    let is_notebook = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ipynb"));
    if is_notebook {
        if let Some(prev) = prev_nb.get(rel_path.as_str()) {
            if prev.size == meta.len() && prev.mtime_ns == mtime {
                return Ok(Some(HomeEntry::Notebook((*prev).clone())));
            }
        }
        let bytes = fs::read(path).map_err(fail)?;
        let (cells, scan, kernel_name, language, error) = match notebook::parse(&bytes) {
            Ok(p) => (p.cells, p.scan, p.kernel_name, p.language, None),
            Err(e) => (Default::default(), Default::default(), None, None, Some(e)),
        };
        return Ok(Some(HomeEntry::Notebook(Notebook {
            path: rel_path,
            size: bytes.len() as u64,
            blake3: hash_bytes(&bytes),
            mtime_ns: mtime,
            cells,
            imports: scan.imports.into_iter().collect(),
            file_refs: scan.file_refs.into_iter().collect(),
            kernel_name,
            language,
            error,
        })));
    }
    if let Some(prev) = prev_data.get(rel_path.as_str()) {
        if prev.size == meta.len() && prev.mtime_ns == mtime && prev.blake3.is_some() {
            return Ok(Some(HomeEntry::Data((*prev).clone())));
        }
    }
    let (hash, size) = hash_file(path).map_err(fail)?;
    Ok(Some(HomeEntry::Data(DataFile {
        path: rel_path,
        size,
        blake3: Some(hash),
        symlink_target: None,
        mtime_ns: mtime,
    })))
}

fn config_files(root: &Path, previous: Option<&Inventory>) -> (Vec<ConfigFile>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let jupyter_config = root.join("jupyter").join("config");
    let workspaces = jupyter_config.join("lab").join("workspaces");
    for dir in [
        jupyter_config.clone(),
        root.join("venv").join("etc").join("jupyter"),
    ] {
        collect_files(
            &dir,
            &[workspaces.as_path()],
            &mut files,
            &mut warnings,
            root,
        );
    }
    // IPython profiles: their config files and startup scripts run in every
    // kernel; history, logs and security files are state, not config.
    if let Ok(profiles) = sorted_dir(&root.join("ipython")) {
        for profile in profiles {
            if !profile
                .file_name()
                .to_string_lossy()
                .starts_with("profile_")
            {
                continue;
            }
            if let Ok(entries) = sorted_dir(&profile.path()) {
                for e in entries {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let is_file = e.path().is_file();
                    if is_file && (name.ends_with("_config.py") || name.ends_with("_config.json")) {
                        files.push(e.path());
                    }
                }
            }
            collect_files(
                &profile.path().join("startup"),
                &[],
                &mut files,
                &mut warnings,
                root,
            );
        }
    }
    let prev: HashMap<&str, &ConfigFile> = previous
        .map(|p| {
            p.config_files
                .iter()
                .map(|c| (c.path.as_str(), c))
                .collect()
        })
        .unwrap_or_default();
    let results: Vec<std::result::Result<ConfigFile, String>> = files
        .par_iter()
        .map(|path| {
            let rel_path = rel(root, path);
            let meta = fs::metadata(path).map_err(|e| format!("{rel_path}: {e}"))?;
            let mtime = mtime_ns(&meta);
            if let Some(p) = prev.get(rel_path.as_str()) {
                if p.size == meta.len() && p.mtime_ns == mtime {
                    return Ok((*p).clone());
                }
            }
            let (blake3, size) = hash_file(path).map_err(|e| format!("{rel_path}: {e}"))?;
            Ok(ConfigFile {
                path: rel_path,
                size,
                blake3,
                mtime_ns: mtime,
            })
        })
        .collect();
    let mut out = Vec::new();
    for r in results {
        match r {
            Ok(c) => out.push(c),
            Err(w) => warnings.push(w),
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    (out, warnings)
}

/// Regular files (and symlinks to them) under `dir`, minus `skip` folders and bytecode.
fn collect_files(
    dir: &Path,
    skip: &[&Path],
    out: &mut Vec<PathBuf>,
    warnings: &mut Vec<String>,
    root: &Path,
) {
    if !dir.exists() {
        return;
    }
    let walker = WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !is_bytecode(e.file_name()) && !skip.contains(&e.path()));
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => out.push(e.into_path()),
            Ok(e) if e.file_type().is_symlink() && e.path().is_file() => out.push(e.into_path()),
            Ok(_) => {}
            Err(err) => warnings.push(format!("{}: {err}", rel(root, dir))),
        }
    }
}

fn kernels(root: &Path, venv: &Path, warnings: &mut Vec<String>) -> Vec<Kernelspec> {
    let mut out = Vec::new();
    let sources = [
        (
            KernelSource::JupyterData,
            root.join("jupyter").join("data").join("kernels"),
        ),
        (
            KernelSource::Venv,
            venv.join("share").join("jupyter").join("kernels"),
        ),
    ];
    for (source, dir) in sources {
        let entries = match sorted_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                warnings.push(format!("{}: {e}", rel(root, &dir)));
                continue;
            }
        };
        for entry in entries {
            let spec_file = entry.path().join("kernel.json");
            let bytes = match fs::read(&spec_file) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    warnings.push(format!("{}: {e}", rel(root, &spec_file)));
                    continue;
                }
            };
            let mut spec = Kernelspec {
                name: entry.file_name().to_string_lossy().to_lowercase(),
                display_name: None,
                language: None,
                argv: Vec::new(),
                env: BTreeMap::new(),
                interrupt_mode: None,
                source,
                path: rel(root, &entry.path()),
                blake3: hash_bytes(&bytes),
                error: None,
            };
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(v) => {
                    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                    spec.display_name = s("display_name");
                    spec.language = s("language");
                    spec.interrupt_mode = s("interrupt_mode");
                    spec.argv = v
                        .get("argv")
                        .and_then(|a| a.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(env) = v.get("env").and_then(|e| e.as_object()) {
                        spec.env = env
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                                )
                            })
                            .collect();
                    }
                    if spec.argv.is_empty() {
                        spec.error = Some("kernel.json has no argv".into());
                    }
                }
                Err(e) => spec.error = Some(format!("kernel.json: {e}")),
            }
            out.push(spec);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn extensions(
    root: &Path,
    venv: &Path,
    packages: &[Package],
    warnings: &mut Vec<String>,
) -> Vec<Extension> {
    // Config folders from lowest to highest precedence: the env's, then the user's.
    let config_dirs = [
        venv.join("etc").join("jupyter"),
        root.join("jupyter").join("config"),
    ];
    let mut disabled: BTreeMap<String, bool> = BTreeMap::new();
    for dir in &config_dirs {
        let Some(v) = read_json(&dir.join("labconfig").join("page_config.json")) else {
            continue;
        };
        match v.get("disabledExtensions") {
            Some(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    disabled.insert(k.clone(), v.as_bool().unwrap_or(true));
                }
            }
            Some(serde_json::Value::Array(list)) => {
                for k in list.iter().filter_map(|x| x.as_str()) {
                    disabled.insert(k.to_string(), true);
                }
            }
            _ => {}
        }
    }

    let mut lab: BTreeMap<String, Extension> = BTreeMap::new();
    // Jupyter's data path looks in JUPYTER_DATA_DIR first, so it is applied last here.
    for dir in [
        venv.join("share").join("jupyter").join("labextensions"),
        root.join("jupyter").join("data").join("labextensions"),
    ] {
        let mut ext_dirs = Vec::new();
        for e in sorted_dir(&dir).unwrap_or_default() {
            if e.file_name().to_string_lossy().starts_with('@') {
                ext_dirs.extend(
                    sorted_dir(&e.path())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| c.path()),
                );
            } else {
                ext_dirs.push(e.path());
            }
        }
        for ext_dir in ext_dirs {
            let pkg_path = ext_dir.join("package.json");
            if !pkg_path.is_file() {
                continue;
            }
            let fallback = rel(&dir, &ext_dir);
            let (name, version) = match read_json(&pkg_path) {
                Some(v) => (
                    v.get("name")
                        .and_then(|n| n.as_str())
                        .map_or(fallback, str::to_string),
                    v.get("version")
                        .and_then(|n| n.as_str())
                        .map(str::to_string),
                ),
                None => {
                    warnings.push(format!("{}: not valid JSON", rel(root, &pkg_path)));
                    (fallback, None)
                }
            };
            let enabled = !disabled.get(&name).copied().unwrap_or(false);
            lab.insert(
                name.clone(),
                Extension {
                    kind: ExtensionKind::Lab,
                    name,
                    version,
                    enabled,
                    path: rel(root, &pkg_path),
                },
            );
        }
    }

    let module_versions: HashMap<&str, &str> = packages
        .iter()
        .flat_map(|p| {
            p.top_level
                .iter()
                .map(move |m| (m.as_str(), p.version.as_str()))
        })
        .collect();
    let mut server: BTreeMap<String, (bool, String)> = BTreeMap::new();
    for dir in &config_dirs {
        let mut files: Vec<PathBuf> = sorted_dir(&dir.join("jupyter_server_config.d"))
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.push(dir.join("jupyter_server_config.json"));
        for file in files {
            if !file.is_file() {
                continue;
            }
            let Some(v) = read_json(&file) else {
                warnings.push(format!("{}: not valid JSON", rel(root, &file)));
                continue;
            };
            let Some(map) = v
                .get("ServerApp")
                .and_then(|s| s.get("jpserver_extensions"))
                .and_then(|x| x.as_object())
            else {
                continue;
            };
            for (name, on) in map {
                server.insert(
                    name.clone(),
                    (on.as_bool().unwrap_or(false), rel(root, &file)),
                );
            }
        }
    }

    let mut out: Vec<Extension> = lab.into_values().collect();
    out.extend(server.into_iter().map(|(name, (enabled, path))| {
        let module = name.split('.').next().unwrap_or(&name);
        Extension {
            kind: ExtensionKind::Server,
            version: module_versions.get(module).map(|v| v.to_string()),
            name,
            enabled,
            path,
        }
    }));
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_versions_are_cut_to_three_numeric_parts() {
        assert_eq!(
            normalize_python_version("3.11.7").as_deref(),
            Some("3.11.7")
        );
        assert_eq!(
            normalize_python_version("3.11.7.final.0").as_deref(),
            Some("3.11.7")
        );
        assert_eq!(normalize_python_version("3.13").as_deref(), Some("3.13"));
        assert_eq!(normalize_python_version("x"), None);
    }

    #[test]
    fn pyvenv_cfg_keys_are_case_insensitive_and_trimmed() {
        let cfg = parse_pyvenv_cfg(
            "home = /opt/py/bin\nversion_info = 3.11.7\nInclude-System-Site-Packages = false\n",
        );
        assert_eq!(cfg["home"], "/opt/py/bin");
        assert_eq!(cfg["include-system-site-packages"], "false");
    }
}
