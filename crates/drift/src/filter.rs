//! Which folders of an environment root are watched, and which events in
//! them can be drift.
//!
//! Watched (see [`TARGETS`]): site-packages' top level only (an install or
//! uninstall adds or removes a `*.dist-info` folder there; the thousands of
//! files inside packages are never watched), the kernelspec folders
//! (recursive: `kernel.json` edits), the lab extension folders' top level
//! (an extension shipped by a package also brings a `*.dist-info`), Jupyter's
//! config folders, IPython profiles' config files and `startup/`, and all of
//! `home/` (notebooks and data).
//!
//! Never drift: bytecode (`__pycache__`, `*.pyc`), `.ipynb_checkpoints`,
//! `jupyter/runtime` (per-process state), JupyterLab workspaces (UI layout),
//! IPython's history and other profile state, editor temp and lock files
//! (`*.swp`, `*~`, `.~lock.*`, `.#*`, vim's `4913` probe) and `*.tmp` partial
//! writes (the rename that completes them is reported under the final name).
//!
//! A target folder that does not exist yet (no kernel installed yet) is
//! covered by a non-recursive watch on its nearest existing ancestor; when
//! something appears on the way to it, the environment's watches are
//! re-armed.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// One folder to watch, as path components under the root; `python*`
/// matches the venv's `lib/pythonX.Y`.
pub(crate) struct Target {
    pattern: &'static [&'static str],
    recursive: bool,
}

pub(crate) const TARGETS: &[Target] = &[
    Target {
        pattern: &["venv", "lib", "python*", "site-packages"],
        recursive: false,
    },
    Target {
        pattern: &["venv", "share", "jupyter", "kernels"],
        recursive: true,
    },
    Target {
        pattern: &["venv", "share", "jupyter", "labextensions"],
        recursive: false,
    },
    Target {
        pattern: &["venv", "etc", "jupyter"],
        recursive: true,
    },
    Target {
        pattern: &["jupyter", "config"],
        recursive: true,
    },
    Target {
        pattern: &["jupyter", "data", "kernels"],
        recursive: true,
    },
    Target {
        pattern: &["jupyter", "data", "labextensions"],
        recursive: false,
    },
    Target {
        pattern: &["ipython"],
        recursive: true,
    },
    Target {
        pattern: &["home"],
        recursive: true,
    },
];

/// What an event at a root-relative path means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Relevance {
    /// It can be drift: report it in the batch.
    pub report: bool,
    /// A watched folder or one of its ancestors appeared or vanished: the
    /// environment's watches must be recomputed.
    pub rearm: bool,
}

const IGNORE: Relevance = Relevance {
    report: false,
    rearm: false,
};

fn component_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn names(rel: &Path) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Whether a file or folder name is never drift wherever it is.
pub(crate) fn is_noise_name(name: &str) -> bool {
    name == "__pycache__"
        || name == ".ipynb_checkpoints"
        || name.ends_with(".pyc")
        || name.ends_with(".pyo")
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with('~')
        || name.starts_with(".~lock")
        || name.starts_with(".#")
        || name.ends_with(".tmp")
        || name == "4913"
}

/// IPython: only the profiles' `*_config.{py,json}` and `startup/` are
/// config; history, db, logs, pid and security files are state.
fn ipython_relevant(names: &[String]) -> bool {
    match names {
        [_] | [_, _] => true,
        [_, _, file] => {
            file == "startup" || file.ends_with("_config.py") || file.ends_with("_config.json")
        }
        [_, _, dir, ..] => dir == "startup",
        [] => false,
    }
}

/// What an event on `rel` (relative to the environment root) means.
pub(crate) fn relevance(rel: &Path) -> Relevance {
    let Some(names) = names(rel) else {
        return IGNORE;
    };
    if names.is_empty() || names.iter().any(|n| is_noise_name(n)) {
        return IGNORE;
    }
    if names.starts_with(&["jupyter".into(), "runtime".into()])
        || names.starts_with(&[
            "jupyter".into(),
            "config".into(),
            "lab".into(),
            "workspaces".into(),
        ])
    {
        return IGNORE;
    }
    let mut out = IGNORE;
    for t in TARGETS {
        let shared = t
            .pattern
            .iter()
            .zip(&names)
            .take_while(|(p, n)| component_matches(p, n))
            .count();
        if shared < names.len().min(t.pattern.len()) {
            continue;
        }
        if names.len() <= t.pattern.len() {
            // The target itself or one of its ancestors appeared or vanished.
            out.report = true;
            out.rearm = true;
            continue;
        }
        let depth = names.len() - t.pattern.len();
        let ok = if t.pattern == ["ipython"] {
            ipython_relevant(&names)
        } else {
            t.recursive || depth == 1
        };
        out.report |= ok;
    }
    out
}

/// The folders to watch under `root` now, with whether each is recursive.
/// Targets that do not exist are replaced by their nearest existing
/// ancestor (non-recursive); the root itself is that ancestor at worst.
pub(crate) fn watch_set(root: &Path) -> BTreeMap<PathBuf, bool> {
    let mut out: BTreeMap<PathBuf, bool> = BTreeMap::new();
    let mut add = |path: PathBuf, recursive: bool| {
        let entry = out.entry(path).or_insert(false);
        *entry |= recursive;
    };
    for t in TARGETS {
        // Expand wildcards breadth-first; stop at the first missing level.
        let mut frontier = vec![root.to_path_buf()];
        for (i, comp) in t.pattern.iter().enumerate() {
            let mut next = Vec::new();
            for dir in &frontier {
                if comp.ends_with('*') {
                    if let Ok(entries) = std::fs::read_dir(dir) {
                        for e in entries.flatten() {
                            let name = e.file_name();
                            if component_matches(comp, &name.to_string_lossy())
                                && e.file_type().is_ok_and(|ft| ft.is_dir())
                            {
                                next.push(dir.join(name));
                            }
                        }
                    }
                } else {
                    let p = dir.join(OsStr::new(comp));
                    if p.is_dir() {
                        next.push(p);
                    }
                }
            }
            if next.is_empty() {
                for dir in frontier {
                    add(dir, false);
                }
                break;
            }
            if i + 1 == t.pattern.len() {
                for dir in &next {
                    add(dir.clone(), t.recursive);
                }
            }
            frontier = next;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: &str) -> Relevance {
        relevance(Path::new(p))
    }

    #[test]
    fn a_dist_info_at_the_top_of_site_packages_is_reported() {
        assert!(r("venv/lib/python3.11/site-packages/toolz-1.0.0.dist-info").report);
        assert!(!r("venv/lib/python3.11/site-packages/toolz-1.0.0.dist-info").rearm);
    }

    #[test]
    fn files_inside_packages_are_not_reported() {
        assert!(!r("venv/lib/python3.11/site-packages/toolz/itertoolz.py").report);
        assert!(!r("venv/bin/python").report);
    }

    #[test]
    fn bytecode_checkpoints_and_editor_files_are_never_reported() {
        for p in [
            "home/__pycache__/helpers.cpython-311.pyc",
            "home/__pycache__",
            "home/sub/stale.pyc",
            "home/.ipynb_checkpoints/a-checkpoint.ipynb",
            "home/.a.ipynb.swp",
            "home/a.ipynb~",
            "home/.~lock.data.csv#",
            "home/.#notes.txt",
            "home/data.csv.tmp",
            "venv/lib/python3.11/site-packages/__pycache__",
            "jupyter/runtime/jpserver-1.json",
            "jupyter/config/lab/workspaces/default.jupyterlab-workspace",
            "ipython/profile_default/history.sqlite",
            "ipython/profile_default/security/x.json",
        ] {
            assert_eq!(r(p), IGNORE, "{p}");
        }
    }

    #[test]
    fn notebooks_config_kernels_and_profiles_are_reported() {
        for p in [
            "home/analysis.ipynb",
            "home/deep/er/data.csv",
            "jupyter/config/jupyter_server_config.json",
            "jupyter/data/kernels/k/kernel.json",
            "venv/share/jupyter/kernels/python3/kernel.json",
            "venv/share/jupyter/labextensions/@scope",
            "venv/etc/jupyter/jupyter_server_config.d/x.json",
            "ipython/profile_default/ipython_config.py",
            "ipython/profile_default/startup/00-init.py",
        ] {
            assert!(r(p).report, "{p}");
        }
    }

    #[test]
    fn a_new_folder_on_the_way_to_a_target_rearms() {
        let rel = r("jupyter/data/kernels");
        assert!(rel.report && rel.rearm);
        assert!(r("venv/share").rearm);
        assert!(!r("jupyter/data/nbsignatures.db").report);
    }

    #[test]
    fn missing_targets_fall_back_to_their_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("venv/lib/python3.11/site-packages")).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::create_dir_all(root.join("jupyter/data")).unwrap();
        let set = watch_set(root);
        assert_eq!(
            set.get(&root.join("venv/lib/python3.11/site-packages")),
            Some(&false)
        );
        assert_eq!(set.get(&root.join("home")), Some(&true));
        assert_eq!(set.get(&root.join("jupyter/data")), Some(&false));
        assert_eq!(set.get(&root.join("venv")), Some(&false));
        assert_eq!(set.get(root), Some(&false));
        assert!(!set.contains_key(&root.join("jupyter/runtime")));
    }
}
