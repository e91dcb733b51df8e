//! Making a restored environment work at its new path.
//!
//! A venv hard-codes where it lives (console-script shebangs, `activate*`,
//! `pyvenv.cfg`, kernelspec `argv`) and where its interpreter lives (the
//! `bin/python` symlink, `pyvenv.cfg`'s `home`). After a snapshot is restored
//! to `root` from `old_root` — and, optionally, its `base` layer to
//! `base_prefix_new` — [`relocate`] rewrites exactly the files that mention
//! either old location, the way `conda-pack` and `uv venv --relocatable`
//! would have avoided it:
//!
//! | what | how |
//! |---|---|
//! | `venv/pyvenv.cfg` | `home` → `<base_prefix_new>/bin`; other values: old paths mapped |
//! | `venv/bin/*` scripts | header only, in the form uv writes for the new path (a `/bin/sh` trampoline when it has a space or is long); the body stays byte-identical |
//! | `venv/bin/activate*` | old paths mapped, quoted as uv quotes them |
//! | `kernel.json` (venv and `jupyter/data`) | string values mapped in place, formatting kept |
//! | `*.pth`, `__editable__*.py`, `*.egg-link`, `direct_url.json` | old paths (and `file://` URLs) mapped |
//! | Jupyter config (`jupyter/config`, `venv/etc/jupyter`) | JSON values mapped; `.py` text mapped |
//! | absolute symlinks (venv, `jupyter`, `ipython`, `home`) | relinked; `venv/bin/python*` to the new base |
//! | base: ELF run paths in `bin`, `lib`, `lib-dynload` | rewritten in place to `$ORIGIN/…` |
//! | base: `bin/*` shebangs, `_sysconfigdata*`, `Makefile`, `*.pc`, `python*-config` | old prefix mapped |
//!
//! A `RECORD` listing absolute old paths is reported, not rewritten. Every
//! write is atomic (temp + rename) and keeps mode, owner and times; folders
//! get their mtimes back. Files that would need a change this cannot make
//! safely are listed in [`RelocationReport::skipped`] with the reason. Running
//! it twice changes nothing the second time.

mod atomic;
mod elf;
mod jsonrw;
mod shebang;

use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use walkdir::WalkDir;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::{is_bytecode, site_packages, sorted_dir};
use crate::scan::parse_pyvenv_cfg;
use crate::text::{escape_single_quoted, PathMap};
use atomic::Writer;

/// Exactly what [`relocate`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelocationReport {
    /// Files whose content was rewritten, sorted.
    pub rewritten: Vec<PathBuf>,
    /// Symlinks pointed somewhere else, sorted.
    pub relinked: Vec<PathBuf>,
    /// Files that mention an old location but were left alone, and why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Largest text file read for rewriting; scripts and configs are far smaller.
const MAX_TEXT: u64 = 64 << 20;

/// Make the environment restored at `root` work there. `old_root` is where
/// it was snapshotted; `base_prefix_new`, when the `base` layer (the
/// interpreter at the venv's old `sys.base_prefix`) was restored too, is
/// where that went.
///
/// # Errors
/// [`Error::NotAnEnvironment`] without `venv/pyvenv.cfg`;
/// [`Error::UnusablePath`] for a path that is relative (`old_root`,
/// `base_prefix_new`), not UTF-8, `/`, or contains a newline or `..`;
/// [`Error::Io`] when a file cannot be read or replaced (files already
/// replaced stay replaced, each one atomically).
pub fn relocate(
    root: &Path,
    old_root: &Path,
    base_prefix_new: Option<&Path>,
) -> Result<RelocationReport> {
    relocate_mapped(root, old_root, base_prefix_new, &[])
}

/// [`relocate`] with more old → new locations to map: an environment
/// adopted from a lab machine had its venv and notebooks elsewhere than
/// `<old_root>/venv` and `<old_root>/home` (e.g. `/srv/proj/.venv` →
/// `<root>/venv`). The longest old prefix wins.
///
/// # Errors
/// As [`relocate`]; [`Error::UnusablePath`] for an unusable pair.
pub fn relocate_mapped(
    root: &Path,
    old_root: &Path,
    base_prefix_new: Option<&Path>,
    extra: &[(PathBuf, PathBuf)],
) -> Result<RelocationReport> {
    let extra = extra
        .iter()
        .map(|(a, b)| Ok((str_of(&usable(a)?), str_of(&usable(b)?))))
        .collect::<Result<Vec<_>>>()?;
    let root = usable(&std::path::absolute(root).at(root)?)?;
    let old_root = usable(old_root)?;
    let base_new = base_prefix_new.map(usable).transpose()?;
    let venv = root.join("venv");
    let cfg_path = venv.join("pyvenv.cfg");
    // Read only a real file: a restored symlink could name any file here.
    if fs::symlink_metadata(&cfg_path).is_ok_and(|m| !m.file_type().is_file()) {
        return Err(Error::NotAnEnvironment {
            path: root,
            reason: "venv/pyvenv.cfg is not a regular file".into(),
        });
    }
    let cfg_text = match fs::read_to_string(&cfg_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotAnEnvironment {
                path: root,
                reason: "no venv/pyvenv.cfg".into(),
            })
        }
        Err(e) => return Err(e).at(&cfg_path),
    };
    let cfg = parse_pyvenv_cfg(&cfg_text);
    let old_base = cfg.get("home").map(|h| {
        let h = h.trim_end_matches('/');
        h.strip_suffix("/bin").unwrap_or(h).to_string()
    });
    let major_minor = cfg
        .get("version_info")
        .or_else(|| cfg.get("version"))
        .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."));

    // A base that was restored inside the old root moved with it, even when
    // the caller did not say so.
    let base_new = base_new.or_else(|| {
        let moved =
            PathMap::single(&str_of(&old_root), &str_of(&root)).map_path(old_base.as_deref()?)?;
        Path::new(&moved).is_dir().then(|| PathBuf::from(moved))
    });
    let mut pairs = vec![(str_of(&old_root), str_of(&root))];
    pairs.extend(extra);
    if let (Some(new), Some(old)) = (&base_new, &old_base) {
        pairs.push((old.clone(), str_of(new)));
    }
    let map = PathMap::new(pairs);
    let mut r = Relocator {
        root: root.clone(),
        venv,
        map,
        base_new,
        old_base,
        major_minor,
        writer: Writer::default(),
        report: RelocationReport::default(),
    };
    let outcome = r.run(&cfg_path, &cfg_text);
    let finished = r.writer.finish();
    outcome?;
    finished?;
    let mut report = r.report;
    report.rewritten.sort();
    report.rewritten.dedup();
    report.relinked.sort();
    report.relinked.dedup();
    report.skipped.sort();
    report.skipped.dedup();
    Ok(report)
}

/// Absolute, normalised, UTF-8, not `/`, no newline or `..`.
fn usable(path: &Path) -> Result<PathBuf> {
    let bad = |reason: &str| Error::UnusablePath {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if !path.is_absolute() {
        return Err(bad("not absolute"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(bad("contains .."));
    }
    let normal: PathBuf = path.components().collect();
    let s = normal.to_str().ok_or_else(|| bad("not UTF-8"))?;
    if s == "/" {
        return Err(bad("the file-system root"));
    }
    if s.contains(['\n', '\r', '\0']) {
        return Err(bad("contains a line break"));
    }
    Ok(normal)
}

fn str_of(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A path that can sit inside a quoted string in Python or shell code
/// without escaping.
fn plain(s: &str) -> bool {
    !s.contains(['\'', '"', '\\', '`', '$', '%'])
}

struct Relocator {
    root: PathBuf,
    venv: PathBuf,
    map: PathMap,
    base_new: Option<PathBuf>,
    old_base: Option<String>,
    major_minor: Option<String>,
    writer: Writer,
    report: RelocationReport,
}

fn read_limited(path: &Path) -> Result<Option<Vec<u8>>> {
    let meta = fs::symlink_metadata(path).at(path)?;
    if !meta.is_file() || meta.len() > MAX_TEXT {
        return Ok(None);
    }
    fs::read(path).at(path).map(Some)
}

/// How much of an ELF file is read to find its run paths.
const ELF_HEAD: u64 = 1 << 20;

/// The first `limit` bytes of a file.
fn read_head(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path)
        .at(path)?
        .take(limit)
        .read_to_end(&mut buf)
        .at(path)?;
    Ok(buf)
}

fn starts_with_bytes(path: &Path, magic: &[u8]) -> Result<bool> {
    let mut buf = vec![0u8; magic.len()];
    let mut f = fs::File::open(path).at(path)?;
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..]).at(path)? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(buf == magic)
}

impl Relocator {
    fn run(&mut self, cfg_path: &Path, cfg_text: &str) -> Result<()> {
        if self.map.is_empty() {
            return Ok(());
        }
        // Each step reads only files no earlier step writes, except the base
        // steps, which commit between passes.
        self.pyvenv_cfg(cfg_path, cfg_text)?;
        self.venv_bin()?;
        self.kernelspecs()?;
        self.site_packages()?;
        self.jupyter_config()?;
        self.writer.commit()?;
        self.symlinks()?;
        self.base_tree()?;
        Ok(())
    }

    fn write(&mut self, path: &Path, contents: &[u8]) -> Result<()> {
        self.writer.replace_file(path, contents)?;
        self.report.rewritten.push(path.to_path_buf());
        Ok(())
    }

    fn skip(&mut self, path: &Path, reason: impl Into<String>) {
        self.report
            .skipped
            .push((path.to_path_buf(), reason.into()));
    }

    fn new_prefixes_plain(&self) -> bool {
        self.map.news().all(plain)
    }

    /// Map a JSON string value: paths in text, and `file://` URLs.
    fn map_json_string(&self, s: &str) -> Option<String> {
        if s.starts_with("file://") {
            return self.map.map_file_url(s);
        }
        self.map.replace_str(s)
    }

    fn rewrite_json(&mut self, path: &Path) -> Result<()> {
        let Some(bytes) = read_limited(path)? else {
            return Ok(());
        };
        if let Some(new) = jsonrw::rewrite_strings(&bytes, |s| self.map_json_string(s)) {
            self.write(path, &new)?;
        } else if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err()
            && self.map.occurs_in(&bytes)
        {
            self.skip(path, "not valid JSON; mentions the old location");
        }
        Ok(())
    }

    fn pyvenv_cfg(&mut self, path: &Path, text: &str) -> Result<()> {
        let mut out = String::with_capacity(text.len() + 64);
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            let ending = &line[body.len()..];
            let new_body = match body.split_once('=') {
                Some((key, value)) => {
                    let lead = &value[..value.len() - value.trim_start().len()];
                    if key.trim().eq_ignore_ascii_case("home") && self.base_new.is_some() {
                        let base = self.base_new.as_deref().map(str_of).unwrap_or_default();
                        format!("{key}={lead}{base}/bin")
                    } else {
                        match self.map.replace_str(value) {
                            Some(v) => format!("{key}={v}"),
                            None => body.to_string(),
                        }
                    }
                }
                None => body.to_string(),
            };
            out.push_str(&new_body);
            out.push_str(ending);
        }
        if out != text {
            self.write(path, out.as_bytes())?;
        }
        Ok(())
    }

    fn venv_bin(&mut self) -> Result<()> {
        let bin = self.venv.join("bin");
        for entry in sorted_dir(&bin).at(&bin)? {
            let path = entry.path();
            let ft = entry.file_type().at(&path)?;
            if !ft.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("activate") || name == "deactivate.bat" || name == "pydoc.bat" {
                self.activate_script(&path, &name)?;
            } else if starts_with_bytes(&path, b"#!")? {
                self.script(&path)?;
            }
        }
        Ok(())
    }

    fn activate_script(&mut self, path: &Path, name: &str) -> Result<()> {
        let Some(content) = read_limited(path)? else {
            return Ok(());
        };
        // uv writes the venv path single-quoted, `'` as `'"'"'`, in the POSIX
        // shell, csh, fish and nushell scripts; verbatim in the others.
        let posix = matches!(
            name,
            "activate" | "activate.csh" | "activate.fish" | "activate.nu"
        );
        let map = if posix {
            self.map.escaped(escape_single_quoted)
        } else {
            self.map.clone()
        };
        let Some(new) = map.replace(&content) else {
            return Ok(());
        };
        if !posix && !self.new_prefixes_plain() {
            self.skip(
                path,
                "the new path has quote or expansion characters this script cannot hold",
            );
            return Ok(());
        }
        self.write(path, &new)
    }

    /// Rewrite a script's header if its interpreter is under an old location.
    fn script(&mut self, path: &Path) -> Result<()> {
        let Some(content) = read_limited(path)? else {
            return Ok(());
        };
        let Some(sb) = shebang::parse(&content) else {
            return Ok(());
        };
        let Some(new_interpreter) = self.map.map_path(&sb.interpreter) else {
            return Ok(());
        };
        let Some(header) = shebang::format(&new_interpreter, &sb.rest) else {
            self.skip(
                path,
                "interpreter arguments cannot be carried into a /bin/sh trampoline",
            );
            return Ok(());
        };
        let mut new = header;
        new.extend_from_slice(&content[sb.header_len..]);
        self.write(path, &new)
    }

    fn kernelspecs(&mut self) -> Result<()> {
        let dirs = [
            self.venv.join("share").join("jupyter").join("kernels"),
            self.root.join("jupyter").join("data").join("kernels"),
        ];
        for dir in dirs {
            for entry in sorted_dir(&dir).at(&dir)? {
                let spec = entry.path().join("kernel.json");
                if spec.is_file() {
                    self.rewrite_json(&spec)?;
                }
            }
        }
        Ok(())
    }

    fn site_packages(&mut self) -> Result<()> {
        for sp in site_packages(&self.venv).at(&self.venv)? {
            for entry in sorted_dir(&sp).at(&sp)? {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let ft = entry.file_type().at(&path)?;
                if ft.is_dir() && name.ends_with(".dist-info") {
                    let direct_url = path.join("direct_url.json");
                    if direct_url.is_file() {
                        self.rewrite_json(&direct_url)?;
                    }
                    let record = path.join("RECORD");
                    if let Some(bytes) = read_limited(&record).ok().flatten() {
                        if self.map.occurs_in(&bytes) {
                            self.skip(
                                &record,
                                "lists absolute paths under the old location; left as recorded",
                            );
                        }
                    }
                } else if ft.is_file() && (name.ends_with(".pth") || name.ends_with(".egg-link")) {
                    self.path_list(&path)?;
                } else if ft.is_file() && name.starts_with("__editable__") && name.ends_with(".py")
                {
                    self.python_text(&path)?;
                }
            }
        }
        Ok(())
    }

    /// A `.pth` / `.egg-link`: path lines, plus `import` lines that are code.
    fn path_list(&mut self, path: &Path) -> Result<()> {
        let Some(content) = read_limited(path)? else {
            return Ok(());
        };
        let Some(new) = self.map.replace(&content) else {
            return Ok(());
        };
        let code_changed = content.split(|&b| b == b'\n').any(|l| {
            (l.starts_with(b"import ") || l.starts_with(b"import\t")) && self.map.occurs_in(l)
        });
        if code_changed && !self.new_prefixes_plain() {
            self.skip(path, "an import line would need the new path quoted");
            return Ok(());
        }
        self.write(path, &new)
    }

    /// Python source holding paths in string literals.
    fn python_text(&mut self, path: &Path) -> Result<()> {
        let Some(content) = read_limited(path)? else {
            return Ok(());
        };
        let Some(new) = self.map.replace(&content) else {
            return Ok(());
        };
        if !self.new_prefixes_plain() {
            self.skip(
                path,
                "the new path would need escaping inside a Python string",
            );
            return Ok(());
        }
        self.write(path, &new)
    }

    fn jupyter_config(&mut self) -> Result<()> {
        let dirs = [
            self.root.join("jupyter").join("config"),
            self.venv.join("etc").join("jupyter"),
        ];
        for dir in dirs {
            if !dir.is_dir() {
                continue;
            }
            let files: Vec<PathBuf> = WalkDir::new(&dir)
                .follow_links(false)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| !is_bytecode(e.file_name()))
                .filter_map(std::result::Result::ok)
                .filter(|e| e.file_type().is_file())
                .map(walkdir::DirEntry::into_path)
                .collect();
            for file in files {
                match file.extension().and_then(|e| e.to_str()) {
                    Some("json") => self.rewrite_json(&file)?,
                    Some("py") => self.python_text(&file)?,
                    _ => {
                        if let Some(bytes) = read_limited(&file)? {
                            if self.map.occurs_in(&bytes) {
                                self.skip(
                                    &file,
                                    "mentions the old location; not a format this rewrites",
                                );
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The target an absolute symlink should have now, if it changes.
    fn new_link_target(&self, link: &Path, target: &str) -> Option<String> {
        if let Some(mapped) = self.map.map_path(target) {
            return Some(mapped);
        }
        // A venv interpreter link that points outside the old base prefix
        // (the venv was made from another interpreter path) still has to
        // reach the restored base.
        let base = self.base_new.as_deref()?;
        let in_venv_bin = link.parent() == Some(self.venv.join("bin").as_path());
        let is_python = link
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("python"));
        if in_venv_bin && is_python && !Path::new(target).starts_with(base) {
            let mm = self.major_minor.as_deref()?;
            return Some(format!("{}/bin/python{mm}", str_of(base)));
        }
        None
    }

    /// Where absolute symlinks can point into an old location: every link
    /// under `jupyter`, `ipython` and `home`; in the venv its top level,
    /// `bin`, the top of each site-packages (`flit install --symlink`),
    /// `share` and `etc`; in a base outside those, `bin` and `lib`. The rest
    /// of the venv (20k files of installed packages) is not walked.
    fn symlink_scopes(&self) -> Result<Vec<(PathBuf, usize)>> {
        let runtime_free = [
            self.root.join("jupyter"),
            self.root.join("ipython"),
            self.root.join("home"),
        ];
        let mut scopes: Vec<(PathBuf, usize)> =
            runtime_free.into_iter().map(|p| (p, usize::MAX)).collect();
        scopes.push((self.venv.clone(), 1));
        scopes.push((self.venv.join("bin"), 1));
        scopes.push((self.venv.join("share"), usize::MAX));
        scopes.push((self.venv.join("etc"), usize::MAX));
        for sp in site_packages(&self.venv).at(&self.venv)? {
            scopes.push((sp, 1));
        }
        if let (Some(base), Some(old)) = (&self.base_new, &self.old_base) {
            let covered = base.starts_with(&self.venv)
                || [
                    self.root.join("jupyter"),
                    self.root.join("ipython"),
                    self.root.join("home"),
                ]
                .iter()
                .any(|t| base.starts_with(t));
            if base.as_path() != Path::new(old) && !covered {
                scopes.push((base.join("bin"), 1));
                scopes.push((base.join("lib"), 1));
            }
        }
        Ok(scopes)
    }

    fn symlinks(&mut self) -> Result<()> {
        let runtime = self.root.join("jupyter").join("runtime");
        let mut links: Vec<PathBuf> = Vec::new();
        for (scope, depth) in self.symlink_scopes()? {
            if !scope.is_dir() {
                continue;
            }
            links.extend(
                WalkDir::new(&scope)
                    .follow_links(false)
                    .min_depth(1)
                    .max_depth(depth)
                    .sort_by_file_name()
                    .into_iter()
                    .filter_entry(|e| e.path() != runtime && !is_bytecode(e.file_name()))
                    .filter_map(std::result::Result::ok)
                    .filter(|e| e.path_is_symlink())
                    .map(walkdir::DirEntry::into_path),
            );
        }
        links.sort();
        links.dedup();
        for link in links {
            let target = fs::read_link(&link).at(&link)?;
            if !target.is_absolute() {
                continue;
            }
            let Some(target) = target.to_str() else {
                continue;
            };
            let Some(new) = self.new_link_target(&link, target) else {
                continue;
            };
            if fs::metadata(&new).is_err() {
                self.skip(&link, format!("would point to {new}, which does not exist"));
                continue;
            }
            self.writer.replace_symlink(&link, Path::new(&new))?;
            self.report.relinked.push(link);
        }
        Ok(())
    }

    /// The restored interpreter tree: ELF run paths, script headers and the
    /// build-configuration text files that name the old prefix.
    fn base_tree(&mut self) -> Result<()> {
        let (Some(base), Some(old_base)) = (self.base_new.clone(), self.old_base.clone()) else {
            return Ok(());
        };
        if Path::new(&old_base) == base || !base.is_dir() {
            return Ok(());
        }
        let base_map = PathMap::single(&old_base, &str_of(&base));
        let mut elf_candidates: Vec<PathBuf> = Vec::new();
        let lib = base.join("lib");
        let bin = base.join("bin");
        for e in sorted_dir(&bin).at(&bin)? {
            elf_candidates.push(e.path());
        }
        for e in sorted_dir(&lib).at(&lib)? {
            if e.file_name().to_string_lossy().contains(".so") {
                elf_candidates.push(e.path());
            }
        }
        let mut stdlib_dirs = Vec::new();
        if let Some(mm) = &self.major_minor {
            stdlib_dirs.push(lib.join(format!("python{mm}")));
        } else {
            for e in sorted_dir(&lib).at(&lib)? {
                if e.file_name().to_string_lossy().starts_with("python") && e.path().is_dir() {
                    stdlib_dirs.push(e.path());
                }
            }
        }
        for std_dir in &stdlib_dirs {
            let dynload = std_dir.join("lib-dynload");
            for e in sorted_dir(&dynload).at(&dynload)? {
                elf_candidates.push(e.path());
            }
        }
        for file in elf_candidates {
            let meta = fs::symlink_metadata(&file).at(&file)?;
            if !meta.is_file() || !starts_with_bytes(&file, b"\x7fELF")? {
                continue;
            }
            // The dynamic section and its strings sit near the start; a 38 MB
            // binary without a run path is not read whole.
            let head = read_head(&file, ELF_HEAD)?;
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let map_entry = |entry: &str| {
                if entry.starts_with("$ORIGIN") {
                    return None;
                }
                let mapped = base_map.map_path(entry)?;
                let mapped = Path::new(&mapped);
                if mapped.starts_with(&base) && dir.starts_with(&base) {
                    let rel = elf::relative(&dir, mapped)?;
                    Some(if rel.is_empty() {
                        "$ORIGIN".into()
                    } else {
                        format!("$ORIGIN/{rel}")
                    })
                } else {
                    Some(str_of(mapped))
                }
            };
            let mut edit = elf::patch_run_paths(&head, map_entry);
            if edit.is_none() && (head.len() as u64) < meta.len() {
                edit = elf::patch_run_paths(&fs::read(&file).at(&file)?, map_entry);
            }
            match edit {
                None | Some(elf::Edit::Unchanged) => {}
                Some(elf::Edit::Patched(patches)) => {
                    let mut data = fs::read(&file).at(&file)?;
                    if elf::Edit::apply(&patches, &mut data) {
                        self.write(&file, &data)?;
                    }
                }
                Some(elf::Edit::Refused(reason)) => self.skip(&file, reason),
            }
        }
        self.writer.commit()?;
        for e in sorted_dir(&bin).at(&bin)? {
            let path = e.path();
            if e.file_type().at(&path)?.is_file() && starts_with_bytes(&path, b"#!")? {
                self.script(&path)?;
            }
        }
        self.writer.commit()?;
        let mut texts: Vec<PathBuf> = Vec::new();
        for std_dir in &stdlib_dirs {
            for e in sorted_dir(std_dir).at(std_dir)? {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("_sysconfigdata") && name.ends_with(".py") {
                    texts.push(e.path());
                }
                if name.starts_with("config-") && e.path().is_dir() {
                    texts.push(e.path().join("Makefile"));
                    texts.push(e.path().join("python-config.py"));
                }
            }
        }
        for e in sorted_dir(&lib.join("pkgconfig")).at(&lib)? {
            if e.file_name().to_string_lossy().ends_with(".pc") {
                texts.push(e.path());
            }
        }
        for e in sorted_dir(&bin).at(&bin)? {
            if e.file_name().to_string_lossy().ends_with("-config") {
                texts.push(e.path());
            }
        }
        for path in texts {
            if !path.is_file()
                || fs::symlink_metadata(&path)
                    .at(&path)?
                    .file_type()
                    .is_symlink()
            {
                continue;
            }
            let Some(content) = read_limited(&path)? else {
                continue;
            };
            let Some(new) = base_map.replace(&content) else {
                continue;
            };
            if !plain(&str_of(&base)) {
                self.skip(
                    &path,
                    "the new base path would need escaping in this build file",
                );
                continue;
            }
            self.write(&path, &new)?;
        }
        Ok(())
    }
}
