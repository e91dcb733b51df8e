//! The closure of a Python interpreter: exactly the files a venv built on it
//! needs from outside itself.
//!
//! A venv's `sys.base_prefix` is often a shared prefix — `/usr` for the
//! distribution's Python, `/opt/conda` for conda — so "the tree at the base
//! prefix" is gigabytes of unrelated software. The closure is:
//!
//! - the interpreter executable and the `python`, `python3`, `pythonX.Y`
//!   links to it in the venv's `home` folder;
//! - the standard library (`lib/pythonX.Y`, and `lib64/pythonX.Y` where the
//!   distribution splits it) without `site-packages`/`dist-packages`, which
//!   a venv without system site packages never reads; `lib-dynload` is in it;
//! - `libpythonX.Y*.so*` and the headers (`include/pythonX.Y`) when present,
//!   so C extensions still build against a restored interpreter;
//! - every shared library these load, found the way the dynamic loader finds
//!   it (`DT_RPATH`/`DT_RUNPATH` with `$ORIGIN`, then `/etc/ld.so.conf` and
//!   the default folders), transitively — except the C library family and the
//!   loader, which must match the host's kernel interface and are recorded as
//!   [`HostRequirements`] instead (with the newest `GLIBC_x.y` symbol version
//!   the closure needs).
//!
//! Paths are absolute. A path's folders are resolved (a library found as
//! `/lib/x86_64-linux-gnu/libz.so.1` on a merged-`/usr` system is listed as
//! `/usr/lib/x86_64-linux-gnu/libz.so.1`); its last component is kept, so a
//! soname link is listed with the file it points to.

use goblin::elf::Elf;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

/// What [`interpreter_closure`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterpreterClosure {
    /// The interpreter's prefix (`sys.base_prefix`), as the venv names it.
    pub prefix: PathBuf,
    /// Files, links and folders (each with everything below it) to capture.
    pub paths: Vec<PathBuf>,
    /// Folders below `paths` to leave out (`site-packages`, `dist-packages`).
    pub exclude: Vec<PathBuf>,
    /// Shared libraries in the closure, by the name they are loaded as.
    pub libraries: Vec<SharedLibrary>,
    /// What the host has to provide.
    pub host: HostRequirements,
}

/// A shared library and where it was found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SharedLibrary {
    pub soname: String,
    pub path: PathBuf,
}

/// The parts of the system a restored interpreter takes from its host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRequirements {
    /// The program interpreter (`PT_INTERP`), e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub loader: Option<String>,
    /// The C library family members loaded (`libc.so.6`, `libm.so.6`, …).
    pub libc: Vec<SharedLibrary>,
    /// The C library's version on the host the closure was taken on.
    pub libc_version: Option<String>,
    /// The newest `GLIBC_x.y` symbol version the closure asks for: a host
    /// with an older C library cannot run it.
    pub glibc_min: Option<String>,
    /// Libraries a file asks for that the loader would not find either.
    pub unresolved: Vec<String>,
}

/// Sonames of the C library family (glibc, musl) and the loaders: the host's.
fn is_libc_family(soname: &str) -> bool {
    const GLIBC: &[&str] = &[
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libnsl.so.1",
        "libanl.so.1",
        "libmvec.so.1",
        "libBrokenLocale.so.1",
        "libthread_db.so.1",
        "libc_malloc_debug.so.0",
    ];
    GLIBC.contains(&soname)
        || soname.starts_with("ld-linux")
        || soname.starts_with("ld-musl")
        || soname.starts_with("libc.musl")
        || soname.starts_with("libnss_")
}

/// The closure of the interpreter a venv's `pyvenv.cfg` names: `home` is
/// its `home` value (the folder holding `python`), `major_minor` the
/// version (`3.11`).
///
/// # Errors
/// [`crate::Error::Io`] when the interpreter executable cannot be read.
pub fn interpreter_closure(home: &Path, major_minor: &str) -> Result<InterpreterClosure> {
    let home = home.components().collect::<PathBuf>();
    let prefix = if home.ends_with("bin") {
        home.parent()
            .map_or_else(|| home.clone(), Path::to_path_buf)
    } else {
        home.clone()
    };
    let mut c = Collector::default();
    let exe_names = [
        format!("python{major_minor}"),
        "python3".to_string(),
        "python".to_string(),
    ];
    let mut found_exe = false;
    for name in &exe_names {
        let p = home.join(name);
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        let target = if meta.file_type().is_symlink() {
            match fs::canonicalize(&p) {
                Ok(t) => t,
                Err(_) => continue, // a dangling link is not the interpreter
            }
        } else {
            p.clone()
        };
        if !is_elf(&target) {
            continue;
        }
        c.add(&p);
        c.add(&target);
        c.roots.push(resolved(&target));
        found_exe = true;
    }
    if !found_exe {
        // The error names the executable the venv needs.
        let p = home.join(&exe_names[0]);
        fs::metadata(&p).at(&p)?;
    }
    for lib in ["lib", "lib64"] {
        let std_dir = prefix.join(lib).join(format!("python{major_minor}"));
        if !std_dir.join("os.py").is_file() && !std_dir.join("lib-dynload").is_dir() {
            continue;
        }
        c.add(&std_dir);
        for sub in ["site-packages", "dist-packages"] {
            c.exclude.insert(resolved(&std_dir.join(sub)));
        }
        if let Ok(rd) = fs::read_dir(std_dir.join("lib-dynload")) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "so") && is_elf(&p) {
                    c.roots.push(resolved(&p));
                }
            }
        }
        if let Ok(rd) = fs::read_dir(prefix.join(lib)) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("libpython{major_minor}")) && name.contains(".so") {
                    let p = e.path();
                    c.add(&p);
                    if let Ok(t) = fs::canonicalize(&p) {
                        c.add(&t);
                        if is_elf(&t) {
                            c.roots.push(t);
                        }
                    }
                }
            }
        }
    }
    if let Ok(rd) = fs::read_dir(prefix.join("include")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("python{major_minor}")) && e.path().is_dir() {
                c.add(&e.path());
            }
        }
    }
    c.walk_libraries();
    let mut paths: Vec<PathBuf> = c.paths.into_iter().collect();
    paths.sort();
    let mut exclude: Vec<PathBuf> = c.exclude.into_iter().collect();
    exclude.sort();
    let mut libraries: Vec<SharedLibrary> = c.libraries.into_iter().collect();
    libraries.sort();
    let mut libc: Vec<SharedLibrary> = c.libc.into_iter().collect();
    libc.sort();
    let libc_version = libc
        .iter()
        .find(|l| l.soname == "libc.so.6")
        .and_then(|l| glibc_release(&l.path));
    let mut unresolved: Vec<String> = c.unresolved.into_iter().collect();
    unresolved.sort();
    Ok(InterpreterClosure {
        prefix,
        paths,
        exclude,
        libraries,
        host: HostRequirements {
            loader: c.loader,
            libc,
            libc_version,
            glibc_min: c
                .glibc_min
                .map(|v| v.iter().map(u32::to_string).collect::<Vec<_>>().join(".")),
            unresolved,
        },
    })
}

#[derive(Default)]
struct Collector {
    paths: BTreeSet<PathBuf>,
    exclude: BTreeSet<PathBuf>,
    roots: Vec<PathBuf>,
    libraries: BTreeSet<SharedLibrary>,
    libc: BTreeSet<SharedLibrary>,
    unresolved: BTreeSet<String>,
    loader: Option<String>,
    glibc_min: Option<Vec<u32>>,
}

impl Collector {
    fn add(&mut self, p: &Path) {
        self.paths.insert(resolved(p));
    }

    /// Follows `DT_NEEDED` from every root, breadth first.
    fn walk_libraries(&mut self) {
        let search = default_search_dirs();
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut queue: VecDeque<PathBuf> = self.roots.drain(..).collect();
        while let Some(file) = queue.pop_front() {
            if !seen.insert(file.clone()) {
                continue;
            }
            let Ok(data) = fs::read(&file) else {
                continue;
            };
            let Ok(elf) = Elf::parse(&data) else {
                continue;
            };
            if let Some(interp) = elf.interpreter {
                self.loader.get_or_insert_with(|| interp.to_string());
            }
            self.note_glibc_versions(&elf);
            let origin = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let expand = |list: &[&str]| -> Vec<PathBuf> {
                list.iter()
                    .flat_map(|s| s.split(':'))
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        PathBuf::from(
                            s.replace("$ORIGIN", &origin.to_string_lossy())
                                .replace("${ORIGIN}", &origin.to_string_lossy())
                                .replace("$LIB", "lib")
                                .replace("${LIB}", "lib")
                                .replace("$PLATFORM", std::env::consts::ARCH)
                                .replace("${PLATFORM}", std::env::consts::ARCH),
                        )
                    })
                    .collect()
            };
            let mut dirs = if elf.runpaths.is_empty() {
                expand(&elf.rpaths)
            } else {
                expand(&elf.runpaths)
            };
            dirs.extend(search.iter().cloned());
            let class = (elf.is_64, elf.header.e_machine);
            for needed in &elf.libraries {
                let found = if needed.contains('/') {
                    Some(PathBuf::from(needed))
                        .filter(|p| p.is_file() && elf_class(p) == Some(class))
                } else {
                    dirs.iter()
                        .map(|d| d.join(needed))
                        .find(|p| p.is_file() && elf_class(p) == Some(class))
                };
                let Some(path) = found else {
                    if !is_libc_family(needed) {
                        self.unresolved.insert((*needed).to_string());
                    }
                    continue;
                };
                let lib = SharedLibrary {
                    soname: (*needed).to_string(),
                    path: resolved(&path),
                };
                if is_libc_family(needed) {
                    self.libc.insert(lib);
                    continue;
                }
                self.add(&path);
                if let Ok(target) = fs::canonicalize(&path) {
                    self.add(&target);
                    queue.push_back(target);
                }
                self.libraries.insert(lib);
            }
        }
    }

    /// Keeps the newest `GLIBC_x.y` version any file requires.
    fn note_glibc_versions(&mut self, elf: &Elf<'_>) {
        let Some(verneed) = &elf.verneed else {
            return;
        };
        for need in verneed.iter() {
            for aux in need.iter() {
                let Some(name) = elf.dynstrtab.get_at(aux.vna_name) else {
                    continue;
                };
                let Some(v) = name.strip_prefix("GLIBC_") else {
                    continue;
                };
                let parsed: Option<Vec<u32>> = v.split('.').map(|p| p.parse().ok()).collect();
                if let Some(parsed) = parsed {
                    if self.glibc_min.as_ref().is_none_or(|m| parsed > *m) {
                        self.glibc_min = Some(parsed);
                    }
                }
            }
        }
    }
}

/// `p` with its folders resolved and its last component kept.
fn resolved(p: &Path) -> PathBuf {
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent)
            .unwrap_or_else(|_| parent.to_path_buf())
            .join(name),
        _ => p.to_path_buf(),
    }
}

fn is_elf(p: &Path) -> bool {
    let mut head = [0u8; 4];
    fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == *b"\x7fELF"
}

/// `(is_64, e_machine)` of an ELF file, read from its header.
fn elf_class(p: &Path) -> Option<(bool, u16)> {
    let mut head = [0u8; 20];
    fs::File::open(p).ok()?.read_exact(&mut head).ok()?;
    if head[..4] != *b"\x7fELF" {
        return None;
    }
    let is_64 = head[4] == 2;
    let machine = if head[5] == 2 {
        u16::from_be_bytes([head[18], head[19]])
    } else {
        u16::from_le_bytes([head[18], head[19]])
    };
    Some((is_64, machine))
}

/// The loader's default search folders: `/etc/ld.so.conf` (with its
/// `include`s), then the built-in ones.
fn default_search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    for d in [
        format!("/lib/{triplet}"),
        format!("/usr/lib/{triplet}"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
    ] {
        dirs.push(PathBuf::from(d));
    }
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

fn read_ld_so_conf(path: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    if depth > 8 {
        return;
    }
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include ").map(str::trim) {
            let pattern = if pattern.starts_with('/') {
                PathBuf::from(pattern)
            } else {
                path.parent().unwrap_or(Path::new("/")).join(pattern)
            };
            for f in glob_files(&pattern) {
                read_ld_so_conf(&f, out, depth + 1);
            }
        } else if line.starts_with('/') {
            out.push(PathBuf::from(line));
        }
    }
}

/// Files matching a pattern whose last component may hold one `*`.
fn glob_files(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let Some((pre, post)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post)
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The release a glibc `libc.so.6` announces ("… release version 2.36.").
fn glibc_release(libc: &Path) -> Option<String> {
    let data = fs::read(libc).ok()?;
    let needle = b"release version ";
    let at = data.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let v: String = data[at..]
        .iter()
        .take(16)
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .map(|b| char::from(*b))
        .collect();
    let v = v.trim_end_matches('.').to_string();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_library_family_stays_with_the_host() {
        for s in [
            "libc.so.6",
            "libm.so.6",
            "ld-linux-x86-64.so.2",
            "libpthread.so.0",
        ] {
            assert!(is_libc_family(s), "{s}");
        }
        for s in [
            "libssl.so.3",
            "libpython3.11.so.1.0",
            "libz.so.1",
            "libcrypt.so.1",
        ] {
            assert!(!is_libc_family(s), "{s}");
        }
    }

    #[test]
    fn ld_so_conf_includes_are_followed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("ld.so.conf.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(
            t.path().join("ld.so.conf"),
            "# comment\ninclude ld.so.conf.d/*.conf\n/opt/a/lib\n",
        )
        .unwrap();
        fs::write(d.join("x.conf"), "/opt/x/lib # trailing\n").unwrap();
        fs::write(d.join("ignored.txt"), "/opt/no\n").unwrap();
        let mut out = Vec::new();
        read_ld_so_conf(&t.path().join("ld.so.conf"), &mut out, 0);
        assert_eq!(
            out,
            vec![PathBuf::from("/opt/x/lib"), PathBuf::from("/opt/a/lib")]
        );
    }
}
