//! Drift: two inventories in, findings out.
//!
//! Severity (the Drift model of ARCHITECTURE.md, issue 5):
//! - **Critical**: a package providing a module some notebook imports moved
//!   beyond patch level (major, minor, pre-release, other build) or its
//!   module vanished; the interpreter's version changed; a kernel changed or
//!   was removed.
//! - **Minor**: every other package, kernel-added, extension or config change.
//! - **Info**: notebook and data file edits.
//!
//! Which notebooks a finding affects: a package → the notebooks importing
//! one of its import names (`top_level`: `sklearn` links to `scikit-learn`);
//! the interpreter → all; a kernel → the notebooks whose metadata names it
//! (no kernel metadata counts as `python3`); an IPython profile file → the
//! Python notebooks; a data file → the notebooks whose code names it; a
//! notebook → itself.
//!
//! Paths under each inventory's own root are compared root-relative, so an
//! environment restored at another path (and relocated) shows no drift.
//! Findings are sorted by severity, kind, subject: the same two inventories
//! always give the same list.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    Extension, ExtensionKind, Inventory, KernelSource, Kernelspec, Notebook, Package,
};
use crate::text::PathMap;
use crate::version::{compare, VersionChange, VersionDistance};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Notebooks may now compute different results or not run.
    Critical,
    /// The environment changed, but nothing a notebook depends on directly.
    Minor,
    /// Users' own files changed.
    Info,
}

/// An environment's overall state against its baseline (the domain's).
pub use westtek_domain::DriftStatus;

/// What happened to an extension or config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It appeared.
    Added,
    /// It disappeared.
    Removed,
    /// Its content, version or enabled state changed.
    Modified,
}

/// What a finding is about. Serialised as `{"type": "package_added"}` or,
/// for the two kinds that carry a [`Change`],
/// `{"type": "config_changed", "change": "modified"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "change", rename_all = "snake_case")]
pub enum FindingKind {
    /// The interpreter's version, implementation or location changed.
    PythonChanged,
    /// A distribution appeared.
    PackageAdded,
    /// A distribution disappeared.
    PackageRemoved,
    /// A distribution's version went up.
    PackageUpgraded,
    /// A distribution's version went down.
    PackageDowngraded,
    /// Same version, different source (`direct_url.json`: another VCS
    /// commit, archive or path), or versions that PEP 440 cannot order.
    PackageChanged,
    /// A kernel name appeared.
    KernelAdded,
    /// A kernel name disappeared.
    KernelRemoved,
    /// The spec that a kernel name resolves to changed.
    KernelChanged,
    /// A lab or server extension appeared, disappeared, or changed version
    /// or enabled state.
    ExtensionChanged(Change),
    /// A config file appeared, disappeared or changed content.
    ConfigChanged(Change),
    /// A notebook appeared.
    NotebookAdded,
    /// A notebook's content changed.
    NotebookChanged,
    /// A notebook disappeared.
    NotebookRemoved,
    /// A data file appeared.
    DataAdded,
    /// A data file's content (or symlink target) changed.
    DataChanged,
    /// A data file disappeared.
    DataRemoved,
}

/// One difference between a baseline and the present.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What changed.
    pub kind: FindingKind,
    /// Normalised package name, kernel name, extension name, or root-relative path.
    pub subject: String,
    /// The old value (version, spec summary, hash), if there was one.
    pub before: Option<String>,
    /// The new value, if there is one.
    pub after: Option<String>,
    /// For package version changes: how far the version moved.
    pub distance: Option<VersionDistance>,
    /// How much it matters.
    pub severity: Severity,
    /// Root-relative paths of the notebooks it affects, sorted.
    pub affected_notebooks: Vec<String>,
}

/// The findings between `before` (the baseline) and `after` (now), sorted by
/// severity, kind and subject.
pub fn diff(before: &Inventory, after: &Inventory) -> Vec<Finding> {
    let ctx = Ctx::new(before, after);
    let mut out = Vec::new();
    python(&ctx, &mut out);
    packages(&ctx, &mut out);
    kernels(&ctx, &mut out);
    extensions(&ctx, &mut out);
    config(&ctx, &mut out);
    notebooks(&ctx, &mut out);
    data(&ctx, &mut out);
    out.sort_by(|a, b| (a.severity, a.kind, &a.subject).cmp(&(b.severity, b.kind, &b.subject)));
    out
}

/// The overall status implied by `findings`.
pub fn drift_status(findings: &[Finding]) -> DriftStatus {
    if findings.iter().any(|f| f.severity == Severity::Critical) {
        DriftStatus::CriticalDrift
    } else if findings.iter().any(|f| f.severity == Severity::Minor) {
        DriftStatus::MinorDrift
    } else {
        DriftStatus::Stable
    }
}

/// Placeholder a root is replaced with before comparing paths.
const ROOT: &str = "${ENV_ROOT}";

struct Ctx<'a> {
    before: &'a Inventory,
    after: &'a Inventory,
    before_root: PathMap,
    after_root: PathMap,
    /// module → notebooks (of `after`) importing it.
    importers: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Modules some package of `after` provides.
    provided_after: BTreeSet<&'a str>,
}

impl<'a> Ctx<'a> {
    fn new(before: &'a Inventory, after: &'a Inventory) -> Self {
        let mut importers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for nb in &after.notebooks {
            for m in &nb.imports {
                importers
                    .entry(m.as_str())
                    .or_default()
                    .insert(nb.path.as_str());
            }
        }
        Ctx {
            before,
            after,
            before_root: PathMap::single(&before.root, ROOT),
            after_root: PathMap::single(&after.root, ROOT),
            importers,
            provided_after: after
                .packages
                .iter()
                .flat_map(|p| p.top_level.iter().map(String::as_str))
                .collect(),
        }
    }

    fn importers_of<'m>(&self, modules: impl IntoIterator<Item = &'m String>) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        for m in modules {
            if let Some(nbs) = self.importers.get(m.as_str()) {
                out.extend(nbs.iter().copied());
            }
        }
        out
    }

    fn all_notebooks(&self) -> Vec<String> {
        self.after
            .notebooks
            .iter()
            .map(|n| n.path.clone())
            .collect()
    }

    fn python_notebooks(&self) -> Vec<String> {
        self.after
            .notebooks
            .iter()
            .filter(|n| {
                n.language
                    .as_deref()
                    .is_none_or(|l| l.eq_ignore_ascii_case("python"))
            })
            .map(|n| n.path.clone())
            .collect()
    }

    fn kernel_users(&self, kernel: &str) -> Vec<String> {
        self.after
            .notebooks
            .iter()
            .filter(|n| match &n.kernel_name {
                Some(k) => k.eq_ignore_ascii_case(kernel),
                None => kernel == "python3",
            })
            .map(|n| n.path.clone())
            .collect()
    }
}

fn owned(set: BTreeSet<&str>) -> Vec<String> {
    set.into_iter().map(str::to_string).collect()
}

fn python(ctx: &Ctx, out: &mut Vec<Finding>) {
    let (b, a) = (&ctx.before.python, &ctx.after.python);
    let describe = |p: &crate::model::PythonInfo, m: &PathMap| {
        let version = p.version.clone().unwrap_or_else(|| "unknown".into());
        let implementation = p.implementation.clone().unwrap_or_default();
        let prefix = p
            .base_prefix
            .as_deref()
            .map(|x| m.replace_str(x).unwrap_or_else(|| x.to_string()));
        (version, implementation, prefix)
    };
    let (bv, bi, bp) = describe(b, &ctx.before_root);
    let (av, ai, ap) = describe(a, &ctx.after_root);
    if (&bv, &bi, &bp) == (&av, &ai, &ap) {
        return;
    }
    let text = |v: &str, i: &str, p: &Option<String>, raw: &Option<String>| {
        let mut s = if i.is_empty() {
            v.to_string()
        } else {
            format!("{i} {v}")
        };
        if let (Some(_), Some(raw)) = (p, raw) {
            s.push_str(&format!(" at {raw}"));
        }
        s
    };
    let version_changed = bv != av || bi != ai;
    out.push(Finding {
        kind: FindingKind::PythonChanged,
        subject: "python".into(),
        before: Some(text(&bv, &bi, &bp, &b.base_prefix)),
        after: Some(text(&av, &ai, &ap, &a.base_prefix)),
        distance: if bv != av {
            crate::version::version_distance(&bv, &av)
        } else {
            None
        },
        severity: if version_changed {
            Severity::Critical
        } else {
            Severity::Minor
        },
        affected_notebooks: ctx.all_notebooks(),
    });
}

fn by_name(packages: &[Package]) -> BTreeMap<&str, &Package> {
    let mut map = BTreeMap::new();
    for p in packages {
        map.entry(p.name.as_str()).or_insert(p);
    }
    map
}

fn packages(ctx: &Ctx, out: &mut Vec<Finding>) {
    let before = by_name(&ctx.before.packages);
    let after = by_name(&ctx.after.packages);
    let names: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for name in names {
        let finding = |kind,
                       b: Option<&Package>,
                       a: Option<&Package>,
                       distance,
                       critical: bool,
                       users: BTreeSet<&str>| Finding {
            kind,
            subject: name.to_string(),
            before: b.map(|p| p.version.clone()),
            after: a.map(|p| p.version.clone()),
            distance,
            severity: if critical {
                Severity::Critical
            } else {
                Severity::Minor
            },
            affected_notebooks: owned(users),
        };
        match (before.get(name).copied(), after.get(name).copied()) {
            (None, Some(a)) => {
                let users = ctx.importers_of(&a.top_level);
                out.push(finding(
                    FindingKind::PackageAdded,
                    None,
                    Some(a),
                    None,
                    false,
                    users,
                ));
            }
            (Some(b), None) => {
                let users = ctx.importers_of(&b.top_level);
                // Critical when a module a notebook imports is now gone, not
                // when another distribution still provides it.
                let vanished = b.top_level.iter().any(|m| {
                    ctx.importers.contains_key(m.as_str())
                        && !ctx.provided_after.contains(m.as_str())
                });
                out.push(finding(
                    FindingKind::PackageRemoved,
                    Some(b),
                    None,
                    None,
                    vanished,
                    users,
                ));
            }
            (Some(b), Some(a)) => {
                let modules: Vec<String> =
                    b.top_level.iter().chain(&a.top_level).cloned().collect();
                let users = ctx.importers_of(&modules);
                let imported = !users.is_empty();
                match compare(&b.version, &a.version) {
                    VersionChange::Same => {
                        if b.direct_url != a.direct_url && !same_source(ctx, b, a) {
                            let critical = imported;
                            out.push(Finding {
                                before: Some(source_of(b)),
                                after: Some(source_of(a)),
                                ..finding(
                                    FindingKind::PackageChanged,
                                    Some(b),
                                    Some(a),
                                    Some(VersionDistance::Other),
                                    critical,
                                    users,
                                )
                            });
                        }
                    }
                    VersionChange::Upgrade(d) => out.push(finding(
                        FindingKind::PackageUpgraded,
                        Some(b),
                        Some(a),
                        Some(d),
                        imported && d.beyond_patch(),
                        users,
                    )),
                    VersionChange::Downgrade(d) => out.push(finding(
                        FindingKind::PackageDowngraded,
                        Some(b),
                        Some(a),
                        Some(d),
                        imported && d.beyond_patch(),
                        users,
                    )),
                    VersionChange::Unordered => out.push(finding(
                        FindingKind::PackageChanged,
                        Some(b),
                        Some(a),
                        Some(VersionDistance::Other),
                        imported,
                        users,
                    )),
                }
            }
            (None, None) => {}
        }
    }
}

/// Same `direct_url.json` once each root is factored out (an editable
/// install inside the environment, restored elsewhere, is the same source).
fn same_source(ctx: &Ctx, b: &Package, a: &Package) -> bool {
    match (&b.direct_url, &a.direct_url) {
        (Some(x), Some(y)) => {
            let norm = |u: &str, m: &PathMap| {
                m.map_file_url(u)
                    .or_else(|| m.replace_str(u))
                    .unwrap_or_else(|| u.to_string())
            };
            let mut x = x.clone();
            let mut y = y.clone();
            x.url = norm(&x.url, &ctx.before_root);
            y.url = norm(&y.url, &ctx.after_root);
            x == y
        }
        _ => false,
    }
}

fn source_of(p: &Package) -> String {
    match &p.direct_url {
        None => format!("{} from an index", p.version),
        Some(d) => {
            let mut s = format!("{} from {}", p.version, d.url);
            if let Some(c) = &d.commit_id {
                s.push_str(&format!("@{c}"));
            }
            if let Some(h) = &d.archive_hash {
                s.push_str(&format!(" ({h})"));
            }
            s
        }
    }
}

/// The spec each kernel name resolves to: `jupyter/data` shadows the venv.
fn effective_kernels(inv: &Inventory) -> BTreeMap<&str, &Kernelspec> {
    let mut map: BTreeMap<&str, &Kernelspec> = BTreeMap::new();
    for k in &inv.kernels {
        match map.get(k.name.as_str()) {
            Some(existing) if existing.source == KernelSource::JupyterData => {}
            _ => {
                map.insert(k.name.as_str(), k);
            }
        }
    }
    map
}

/// What a kernelspec does, with the root factored out of its paths.
fn kernel_summary(k: &Kernelspec, m: &PathMap) -> String {
    let norm = |s: &str| m.replace_str(s).unwrap_or_else(|| s.to_string());
    let mut s = format!(
        "{} [{}] argv={:?}",
        k.display_name.as_deref().unwrap_or("?"),
        k.language.as_deref().unwrap_or("?"),
        k.argv.iter().map(|a| norm(a)).collect::<Vec<_>>()
    );
    if !k.env.is_empty() {
        let env: BTreeMap<&String, String> = k.env.iter().map(|(key, v)| (key, norm(v))).collect();
        s.push_str(&format!(" env={env:?}"));
    }
    if let Some(i) = &k.interrupt_mode {
        s.push_str(&format!(" interrupt_mode={i}"));
    }
    if let Some(e) = &k.error {
        s.push_str(&format!(" error={e}"));
    }
    s.push_str(&format!(" from {}", k.path));
    s
}

fn kernels(ctx: &Ctx, out: &mut Vec<Finding>) {
    let before = effective_kernels(ctx.before);
    let after = effective_kernels(ctx.after);
    let names: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for name in names {
        let b = before
            .get(name)
            .map(|k| kernel_summary(k, &ctx.before_root));
        let a = after.get(name).map(|k| kernel_summary(k, &ctx.after_root));
        let (kind, severity) = match (&b, &a) {
            (None, Some(_)) => (FindingKind::KernelAdded, Severity::Minor),
            (Some(_), None) => (FindingKind::KernelRemoved, Severity::Critical),
            (Some(x), Some(y)) if x != y => (FindingKind::KernelChanged, Severity::Critical),
            _ => continue,
        };
        out.push(Finding {
            kind,
            subject: name.to_string(),
            before: b,
            after: a,
            distance: None,
            severity,
            affected_notebooks: ctx.kernel_users(name),
        });
    }
}

fn extensions(ctx: &Ctx, out: &mut Vec<Finding>) {
    let key = |e: &Extension| (e.kind, e.name.clone());
    let before: BTreeMap<(ExtensionKind, String), &Extension> =
        ctx.before.extensions.iter().map(|e| (key(e), e)).collect();
    let after: BTreeMap<(ExtensionKind, String), &Extension> =
        ctx.after.extensions.iter().map(|e| (key(e), e)).collect();
    let keys: BTreeSet<&(ExtensionKind, String)> = before.keys().chain(after.keys()).collect();
    let describe = |e: &Extension| {
        format!(
            "{} {}{}",
            match e.kind {
                ExtensionKind::Lab => "lab",
                ExtensionKind::Server => "server",
            },
            e.version.as_deref().unwrap_or("?"),
            if e.enabled { "" } else { " (disabled)" }
        )
    };
    for k in keys {
        let b = before.get(k).copied();
        let a = after.get(k).copied();
        let change = match (b, a) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(x), Some(y)) if x.version != y.version || x.enabled != y.enabled => {
                Change::Modified
            }
            _ => continue,
        };
        out.push(Finding {
            kind: FindingKind::ExtensionChanged(change),
            subject: k.1.clone(),
            before: b.map(describe),
            after: a.map(describe),
            distance: match (
                b.and_then(|x| x.version.as_deref()),
                a.and_then(|x| x.version.as_deref()),
            ) {
                (Some(x), Some(y)) => crate::version::version_distance(x, y),
                _ => None,
            },
            severity: Severity::Minor,
            affected_notebooks: Vec::new(),
        });
    }
}

fn config(ctx: &Ctx, out: &mut Vec<Finding>) {
    let before: BTreeMap<&str, &str> = ctx
        .before
        .config_files
        .iter()
        .map(|c| (c.path.as_str(), c.blake3.as_str()))
        .collect();
    let after: BTreeMap<&str, &str> = ctx
        .after
        .config_files
        .iter()
        .map(|c| (c.path.as_str(), c.blake3.as_str()))
        .collect();
    let paths: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for path in paths {
        let (b, a) = (before.get(path).copied(), after.get(path).copied());
        let change = match (b, a) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(x), Some(y)) if x != y => Change::Modified,
            _ => continue,
        };
        out.push(Finding {
            kind: FindingKind::ConfigChanged(change),
            subject: path.to_string(),
            before: b.map(str::to_string),
            after: a.map(str::to_string),
            distance: None,
            severity: Severity::Minor,
            affected_notebooks: if path.starts_with("ipython/") {
                ctx.python_notebooks()
            } else {
                Vec::new()
            },
        });
    }
}

fn notebooks(ctx: &Ctx, out: &mut Vec<Finding>) {
    let before: BTreeMap<&str, &Notebook> = ctx
        .before
        .notebooks
        .iter()
        .map(|n| (n.path.as_str(), n))
        .collect();
    let after: BTreeMap<&str, &Notebook> = ctx
        .after
        .notebooks
        .iter()
        .map(|n| (n.path.as_str(), n))
        .collect();
    let paths: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for path in paths {
        let (b, a) = (before.get(path), after.get(path));
        let kind = match (b, a) {
            (None, Some(_)) => FindingKind::NotebookAdded,
            (Some(_), None) => FindingKind::NotebookRemoved,
            (Some(x), Some(y)) if x.blake3 != y.blake3 => FindingKind::NotebookChanged,
            _ => continue,
        };
        out.push(Finding {
            kind,
            subject: path.to_string(),
            before: b.map(|n| n.blake3.clone()),
            after: a.map(|n| n.blake3.clone()),
            distance: None,
            severity: Severity::Info,
            affected_notebooks: vec![path.to_string()],
        });
    }
}

/// Notebooks whose code names the data file at `path` (`home/data/raw.csv`):
/// by its path below `home/`, below the notebook's folder, or its file name.
fn data_users(ctx: &Ctx, path: &str) -> Vec<String> {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let under_home = path.strip_prefix("home/").unwrap_or(path);
    ctx.after
        .notebooks
        .iter()
        .filter(|nb| {
            let nb_dir = nb.path.rsplit_once('/').map_or("", |(d, _)| d);
            nb.file_refs.iter().any(|r| {
                let r_name = r.rsplit('/').next().unwrap_or(r);
                r == under_home
                    || (!nb_dir.is_empty() && format!("{nb_dir}/{r}") == path)
                    || r.ends_with(&format!("/{under_home}"))
                    || r_name == file_name
            })
        })
        .map(|nb| nb.path.clone())
        .collect()
}

fn data(ctx: &Ctx, out: &mut Vec<Finding>) {
    let value = |d: &crate::model::DataFile, m: &PathMap| match (&d.blake3, &d.symlink_target) {
        (Some(h), _) => h.clone(),
        (None, Some(t)) => format!("-> {}", m.replace_str(t).unwrap_or_else(|| t.clone())),
        (None, None) => String::new(),
    };
    let before: BTreeMap<&str, String> = ctx
        .before
        .data_files
        .iter()
        .map(|d| (d.path.as_str(), value(d, &ctx.before_root)))
        .collect();
    let after: BTreeMap<&str, String> = ctx
        .after
        .data_files
        .iter()
        .map(|d| (d.path.as_str(), value(d, &ctx.after_root)))
        .collect();
    let paths: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for path in paths {
        let (b, a) = (before.get(path), after.get(path));
        let kind = match (b, a) {
            (None, Some(_)) => FindingKind::DataAdded,
            (Some(_), None) => FindingKind::DataRemoved,
            (Some(x), Some(y)) if x != y => FindingKind::DataChanged,
            _ => continue,
        };
        out.push(Finding {
            kind,
            subject: path.to_string(),
            before: b.cloned(),
            after: a.cloned(),
            distance: None,
            severity: Severity::Info,
            affected_notebooks: data_users(ctx, path),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CellCounts, DataFile, PythonInfo, FORMAT_VERSION};

    fn inv(root: &str) -> Inventory {
        Inventory {
            format_version: FORMAT_VERSION,
            root: root.into(),
            python: PythonInfo {
                version: Some("3.11.7".into()),
                implementation: Some("CPython".into()),
                home: Some("/opt/py/bin".into()),
                base_prefix: Some("/opt/py".into()),
                ..PythonInfo::default()
            },
            packages: vec![],
            kernels: vec![],
            extensions: vec![],
            config_files: vec![],
            notebooks: vec![],
            data_files: vec![],
            warnings: vec![],
        }
    }

    fn pkg(name: &str, version: &str, top: &[&str]) -> Package {
        Package {
            name: name.into(),
            display_name: name.into(),
            version: version.into(),
            installer: Some("uv".into()),
            requested: true,
            direct_url: None,
            summary: None,
            home_page: None,
            project_urls: vec![],
            requires_python: None,
            requires_dist: vec![],
            top_level: top.iter().map(|s| s.to_string()).collect(),
            dist_info: format!("venv/lib/python3.11/site-packages/{name}-{version}.dist-info"),
        }
    }

    fn nb(path: &str, imports: &[&str], refs: &[&str]) -> Notebook {
        Notebook {
            path: path.into(),
            size: 1,
            blake3: "h".into(),
            mtime_ns: 0,
            cells: CellCounts::default(),
            imports: imports.iter().map(|s| s.to_string()).collect(),
            file_refs: refs.iter().map(|s| s.to_string()).collect(),
            kernel_name: Some("python3".into()),
            language: Some("python".into()),
            error: None,
        }
    }

    fn kernel(name: &str, argv0: &str, source: KernelSource) -> Kernelspec {
        Kernelspec {
            name: name.into(),
            display_name: Some("Python 3".into()),
            language: Some("python".into()),
            argv: vec![argv0.into(), "-m".into(), "ipykernel_launcher".into()],
            env: BTreeMap::new(),
            interrupt_mode: None,
            source,
            path: match source {
                KernelSource::JupyterData => format!("jupyter/data/kernels/{name}"),
                KernelSource::Venv => format!("venv/share/jupyter/kernels/{name}"),
            },
            blake3: argv0.into(),
            error: None,
        }
    }

    #[test]
    fn a_minor_upgrade_of_an_imported_package_is_critical_and_names_the_notebook() {
        let mut b = inv("/r");
        b.packages = vec![pkg("scikit-learn", "1.4.2", &["sklearn"])];
        b.notebooks = vec![
            nb("home/fit.ipynb", &["sklearn"], &[]),
            nb("home/other.ipynb", &["os"], &[]),
        ];
        let mut a = b.clone();
        a.packages = vec![pkg("scikit-learn", "1.5.0", &["sklearn"])];
        let f = diff(&b, &a);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::PackageUpgraded);
        assert_eq!(f[0].distance, Some(VersionDistance::Minor));
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].affected_notebooks, vec!["home/fit.ipynb"]);
        assert_eq!(drift_status(&f), DriftStatus::CriticalDrift);
    }

    #[test]
    fn a_patch_of_an_imported_package_is_minor_but_still_names_the_notebook() {
        let mut b = inv("/r");
        b.packages = vec![pkg("pyyaml", "6.0.1", &["_yaml", "yaml"])];
        b.notebooks = vec![nb("home/a.ipynb", &["yaml"], &[])];
        let mut a = b.clone();
        a.packages = vec![pkg("pyyaml", "6.0.2", &["_yaml", "yaml"])];
        let f = diff(&b, &a);
        assert_eq!(f[0].distance, Some(VersionDistance::Patch));
        assert_eq!(f[0].severity, Severity::Minor);
        assert_eq!(f[0].affected_notebooks, vec!["home/a.ipynb"]);
    }

    #[test]
    fn a_major_change_of_a_package_no_notebook_imports_is_minor() {
        let mut b = inv("/r");
        b.packages = vec![pkg("tqdm", "3.0", &["tqdm"])];
        let mut a = b.clone();
        a.packages = vec![pkg("tqdm", "4.0", &["tqdm"])];
        let f = diff(&b, &a);
        assert_eq!(f[0].severity, Severity::Minor);
        assert!(f[0].affected_notebooks.is_empty());
    }

    #[test]
    fn removing_an_imported_module_is_critical_unless_another_package_still_provides_it() {
        let mut b = inv("/r");
        b.packages = vec![
            pkg("opencv-python", "4.9", &["cv2"]),
            pkg("numpy", "1.0", &["numpy"]),
        ];
        b.notebooks = vec![nb("home/a.ipynb", &["cv2", "numpy"], &[])];
        let mut swapped = b.clone();
        swapped.packages = vec![
            pkg("numpy", "1.0", &["numpy"]),
            pkg("opencv-python-headless", "4.9", &["cv2"]),
        ];
        let f = diff(&b, &swapped);
        let removed = f
            .iter()
            .find(|x| x.kind == FindingKind::PackageRemoved)
            .unwrap();
        assert_eq!(removed.severity, Severity::Minor);
        let mut gone = b.clone();
        gone.packages = vec![pkg("numpy", "1.0", &["numpy"])];
        let f = diff(&b, &gone);
        assert_eq!(f[0].kind, FindingKind::PackageRemoved);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].affected_notebooks, vec!["home/a.ipynb"]);
    }

    #[test]
    fn a_new_python_version_is_critical_for_every_notebook() {
        let mut b = inv("/r");
        b.notebooks = vec![nb("home/a.ipynb", &[], &[]), nb("home/b.ipynb", &[], &[])];
        let mut a = b.clone();
        a.python.version = Some("3.12.1".into());
        let f = diff(&b, &a);
        assert_eq!(f[0].kind, FindingKind::PythonChanged);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].distance, Some(VersionDistance::Minor));
        assert_eq!(f[0].affected_notebooks.len(), 2);
    }

    #[test]
    fn an_environment_restored_at_another_root_shows_no_drift() {
        let mut b = inv("/envs/a");
        b.kernels = vec![kernel(
            "py",
            "/envs/a/venv/bin/python",
            KernelSource::JupyterData,
        )];
        b.python.base_prefix = Some("/envs/a/base".into());
        b.data_files = vec![DataFile {
            path: "home/link".into(),
            size: 1,
            blake3: None,
            symlink_target: Some("/envs/a/home/x".into()),
            mtime_ns: 0,
        }];
        let mut a = b.clone();
        a.root = "/restored/a b".into();
        a.kernels = vec![kernel(
            "py",
            "/restored/a b/venv/bin/python",
            KernelSource::JupyterData,
        )];
        a.python.base_prefix = Some("/restored/a b/base".into());
        a.data_files[0].symlink_target = Some("/restored/a b/home/x".into());
        assert_eq!(diff(&b, &a), vec![]);
    }

    #[test]
    fn a_user_kernel_shadowing_the_venv_kernel_is_a_critical_kernel_change() {
        let mut b = inv("/r");
        b.kernels = vec![kernel("python3", "python", KernelSource::Venv)];
        b.notebooks = vec![nb("home/a.ipynb", &[], &[])];
        let mut a = b.clone();
        a.kernels.push(kernel(
            "python3",
            "/other/python",
            KernelSource::JupyterData,
        ));
        let f = diff(&b, &a);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::KernelChanged);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].affected_notebooks, vec!["home/a.ipynb"]);
    }

    #[test]
    fn a_data_change_names_the_notebooks_that_read_it() {
        let mut b = inv("/r");
        let file = |h: &str| DataFile {
            path: "home/data/raw.csv".into(),
            size: 1,
            blake3: Some(h.into()),
            symlink_target: None,
            mtime_ns: 0,
        };
        b.data_files = vec![file("1")];
        b.notebooks = vec![
            nb("home/load.ipynb", &[], &["data/raw.csv"]),
            nb("home/other.ipynb", &[], &["other.csv"]),
        ];
        let mut a = b.clone();
        a.data_files = vec![file("2")];
        let f = diff(&b, &a);
        assert_eq!(f[0].kind, FindingKind::DataChanged);
        assert_eq!(f[0].severity, Severity::Info);
        assert_eq!(f[0].affected_notebooks, vec!["home/load.ipynb"]);
        assert_eq!(drift_status(&f), DriftStatus::Stable);
    }

    #[test]
    fn findings_are_ordered_by_severity_then_kind_then_subject() {
        let mut b = inv("/r");
        b.packages = vec![
            pkg("numpy", "1.26.4", &["numpy"]),
            pkg("zzz", "1", &["zzz"]),
        ];
        b.notebooks = vec![nb("home/a.ipynb", &["numpy"], &[])];
        let mut a = b.clone();
        a.packages = vec![pkg("aaa", "1", &["aaa"]), pkg("numpy", "2.0.0", &["numpy"])];
        a.notebooks[0].blake3 = "changed".into();
        let f = diff(&b, &a);
        let order: Vec<(Severity, &str)> =
            f.iter().map(|x| (x.severity, x.subject.as_str())).collect();
        assert_eq!(
            order,
            vec![
                (Severity::Critical, "numpy"),
                (Severity::Minor, "aaa"),
                (Severity::Minor, "zzz"),
                (Severity::Info, "home/a.ipynb")
            ]
        );
        assert_eq!(diff(&b, &a), f);
    }

    #[test]
    fn finding_kinds_serialise_with_a_type_tag() {
        let k = serde_json::to_value(FindingKind::ConfigChanged(Change::Modified)).unwrap();
        assert_eq!(
            k,
            serde_json::json!({"type": "config_changed", "change": "modified"})
        );
        let k = serde_json::to_value(FindingKind::PackageAdded).unwrap();
        assert_eq!(k, serde_json::json!({"type": "package_added"}));
        assert_eq!(
            serde_json::to_value(Severity::Critical).unwrap(),
            "CRITICAL"
        );
    }
}
