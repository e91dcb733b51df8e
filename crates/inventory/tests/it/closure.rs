//! The closure of real interpreters on this host: the distribution's Python
//! under `/usr` and the one the fixture environment was built on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use westtek_inventory::{interpreter_closure, InterpreterClosure};

use crate::support::fixture;

/// Bytes under the closure's paths (files counted once, excluded folders
/// left out), computed independently of the code under test.
fn closure_bytes(c: &InterpreterClosure) -> u64 {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for p in &c.paths {
        for e in walkdir::WalkDir::new(p).follow_links(false) {
            let e = e.unwrap();
            if c.exclude.iter().any(|x| e.path().starts_with(x)) {
                continue;
            }
            let m = e.path().symlink_metadata().unwrap();
            if m.is_file() && seen.insert(e.path().to_path_buf()) {
                total += m.len();
            }
        }
    }
    total
}

fn python_version(python: &Path) -> String {
    let out = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_distribution_python_closure_is_the_interpreter_not_all_of_usr() {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.exists(),
        "Debian's python3 is part of the base system"
    );
    let mm = python_version(python);
    let c = interpreter_closure(Path::new("/usr/bin"), &mm).unwrap();
    assert_eq!(c.prefix, Path::new("/usr"));
    let has = |p: &str| c.paths.contains(&PathBuf::from(p));
    assert!(has(&format!("/usr/bin/python{mm}")), "{:#?}", c.paths);
    assert!(has("/usr/bin/python3"), "the link the venv may name");
    assert!(has(&format!("/usr/lib/python{mm}")), "{:#?}", c.paths);
    assert!(c
        .exclude
        .contains(&PathBuf::from(format!("/usr/lib/python{mm}/dist-packages"))));
    // Nothing of the rest of /usr, and nothing of the C library.
    for p in &c.paths {
        let s = p.to_string_lossy();
        assert!(
            s.starts_with("/usr/bin/python")
                || s.starts_with(&format!("/usr/lib/python{mm}"))
                || s.starts_with(&format!("/usr/include/python{mm}"))
                || (s.contains(".so") && s.starts_with("/usr/lib/")),
            "{s} is not part of the interpreter"
        );
        assert!(!s.contains("/libc.so") && !s.contains("ld-linux"), "{s}");
        assert!(!s.contains("dist-packages"), "{s}");
    }
    // The modules' libraries are in: ssl, sqlite3, ctypes, lzma, zlib.
    let sonames: BTreeSet<&str> = c.libraries.iter().map(|l| l.soname.as_str()).collect();
    for lib in [
        "libssl.so.3",
        "libcrypto.so.3",
        "libsqlite3.so.0",
        "libffi.so.8",
        "liblzma.so.5",
        "libz.so.1",
    ] {
        assert!(sonames.contains(lib), "{lib} missing from {sonames:?}");
    }
    for l in &c.libraries {
        assert!(
            has(&l.path.to_string_lossy()),
            "{} listed",
            l.path.display()
        );
        let real = std::fs::canonicalize(&l.path).unwrap();
        assert!(has(&real.to_string_lossy()), "{} listed", real.display());
    }
    // The host keeps the loader and the C library; what they must be is
    // recorded.
    assert!(c
        .host
        .loader
        .as_deref()
        .is_some_and(|l| l.contains("ld-linux")));
    assert!(c.host.libc.iter().any(|l| l.soname == "libc.so.6"));
    let version = c.host.libc_version.clone().unwrap();
    let min = c.host.glibc_min.clone().unwrap();
    let num = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        num(&min) <= num(&version),
        "needs {min}, host has {version}"
    );
    assert!(c.host.unresolved.is_empty(), "{:?}", c.host.unresolved);
    let bytes = closure_bytes(&c);
    eprintln!(
        "[closure] /usr python {mm}: {} paths, {} MB",
        c.paths.len(),
        bytes >> 20
    );
    assert!(bytes < 100 << 20, "{} MB", bytes >> 20);
    assert!(
        bytes > 10 << 20,
        "{} MB: the standard library is in",
        bytes >> 20
    );
}

#[test]
fn the_fixture_interpreter_closure_holds_its_standard_library_and_libpython() {
    let base = &fixture().base_prefix;
    let cfg = std::fs::read_to_string(fixture().root.join("venv/pyvenv.cfg")).unwrap();
    let home = cfg
        .lines()
        .find_map(|l| l.strip_prefix("home = "))
        .unwrap()
        .trim();
    let mm = python_version(&fixture().root.join("venv/bin/python"));
    let c = interpreter_closure(Path::new(home), &mm).unwrap();
    assert_eq!(&c.prefix, base);
    let std_dir = std::fs::canonicalize(base)
        .unwrap()
        .join(format!("lib/python{mm}"));
    assert!(c.paths.contains(&std_dir), "{:#?}", c.paths);
    assert!(std_dir.join("os.py").is_file());
    assert!(c.exclude.contains(&std_dir.join("site-packages")));
    assert!(c.host.unresolved.is_empty(), "{:?}", c.host.unresolved);
    // Asking twice gives the same answer (it is computed once per
    // interpreter and reused).
    assert_eq!(interpreter_closure(Path::new(home), &mm).unwrap(), c);
    // An interpreter that is not there is an error naming it.
    let err = interpreter_closure(Path::new("/nonexistent/bin"), &mm).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/bin/python"), "{err}");
}
