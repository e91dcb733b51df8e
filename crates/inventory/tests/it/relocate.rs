//! `relocate` on real environments copied to new roots (with the original
//! deleted), and with the base interpreter restored next to them.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use westtek_inventory::{
    diff, interpreter_closure, inventory, relocate, Error, FindingKind, Severity,
};

use crate::support::*;

/// Root-relative paths of the regular files under `root` whose bytes
/// contain `needle` (computed independently of the relocator).
fn files_mentioning(root: &Path, needle: &str) -> BTreeSet<String> {
    walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .filter(|e| contains(&fs::read(e.path()).unwrap(), needle))
        .map(|e| {
            e.path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn relative(root: &Path, paths: &[PathBuf]) -> BTreeSet<String> {
    paths
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap_or_else(|_| panic!("{} outside {}", p.display(), root.display()))
        })
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

/// Paths whose content or link target differs; asserts that nothing else
/// (set of entries, kinds, modes, mtimes) differs.
fn changed_entries(before: &Path, after: &Path) -> BTreeSet<String> {
    let (b, a) = (tree_state(before), tree_state(after));
    assert_eq!(
        b.keys().collect::<Vec<_>>(),
        a.keys().collect::<Vec<_>>(),
        "same entries"
    );
    let mut changed = BTreeSet::new();
    for (path, old) in &b {
        let new = &a[path];
        assert_eq!(
            (old.kind, old.mode),
            (new.kind, new.mode),
            "{path}: kind and mode kept"
        );
        if path.is_empty() {
            continue; // the root folder itself is the copy's, made by the test
        }
        assert_eq!(old.mtime_ns, new.mtime_ns, "{path}: mtime kept");
        if old.content != new.content {
            changed.insert(path.clone());
        }
    }
    changed
}

fn python_in(root: &Path) -> Command {
    let mut c = Command::new(root.join("venv/bin/python"));
    c.env("PATH", "/usr/bin:/bin")
        .env_remove("PYENV_VERSION")
        .env_remove("VIRTUAL_ENV");
    c
}

#[test]
fn a_copied_environment_works_at_a_path_with_a_space_and_unicode_once_the_original_is_gone() {
    let s = scratch("relocate");
    let old = scratch_env(&s, "old-root");
    let old_str = old.to_str().unwrap().to_string();
    let inventory_before = inventory(&old).unwrap();
    let mentioning_old = files_mentioning(&old, &old_str);
    let frozen = s.dir.join("frozen");
    copy_tree(&old, &frozen, &|_| true);

    let new = s.dir.join("new root é/ünïcode env");
    copy_tree(&old, &new, &|_| true);
    fs::remove_dir_all(&old).unwrap();
    let report = relocate(&new, &old, None).unwrap();

    // Exactly the files that mentioned the old root were rewritten, and
    // nothing else changed: not a byte, mode or mtime (folders included).
    let rewritten = relative(&new, &report.rewritten);
    assert_eq!(rewritten, mentioning_old);
    for must in [
        "venv/bin/activate",
        "venv/bin/activate.fish",
        "venv/bin/jupyter",
        "venv/bin/ipython",
        "jupyter/data/kernels/westtek-fixture/kernel.json",
        "venv/lib/python3.11/site-packages/_editable_impl_westtek_demo.pth",
        "venv/lib/python3.11/site-packages/westtek_demo-0.1.0.dist-info/direct_url.json",
    ] {
        assert!(rewritten.contains(must), "{must} not in {rewritten:#?}");
    }
    assert_eq!(
        relative(&new, &report.relinked),
        BTreeSet::from(["home/absolute-link.csv".to_string()])
    );
    assert_eq!(report.skipped, vec![]);
    let changed = changed_entries(&frozen, &new);
    let listed: BTreeSet<String> = rewritten
        .union(&relative(&new, &report.relinked))
        .cloned()
        .collect();
    assert_eq!(changed, listed);
    assert!(
        files_mentioning(&new, &old_str).is_empty(),
        "no file names the old root"
    );

    // Script headers: the new path has a space, so uv's /bin/sh trampoline.
    let jupyter = fs::read_to_string(new.join("venv/bin/jupyter")).unwrap();
    let python = new.join("venv/bin/python");
    assert!(jupyter.starts_with(&format!(
        "#!/bin/sh\n'''exec' '{}' \"$0\" \"$@\"\n' '''\n",
        python.display()
    )));
    let frozen_jupyter = fs::read_to_string(frozen.join("venv/bin/jupyter")).unwrap();
    let body = |s: &str| {
        s.split_once("# -*- coding")
            .map(|(_, b)| b.to_string())
            .unwrap()
    };
    assert_eq!(
        body(&jupyter),
        body(&frozen_jupyter),
        "the script body is byte-identical"
    );

    // It works.
    let numpy = inventory_before.package("numpy").unwrap().version.clone();
    let out = run(python_in(&new).args([
        "-c",
        "import numpy, yaml, westtek_demo; print(numpy.__version__); print(westtek_demo.__file__)",
    ]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(numpy.as_str()));
    assert!(
        lines.next().unwrap().starts_with(new.to_str().unwrap()),
        "editable package found at its new path"
    );

    let specs = run(Command::new(new.join("venv/bin/jupyter"))
        .args(["kernelspec", "list", "--json"])
        .env("PATH", "/usr/bin:/bin")
        .env("JUPYTER_DATA_DIR", new.join("jupyter/data")));
    let specs: serde_json::Value = serde_json::from_str(&specs).unwrap();
    let spec = &specs["kernelspecs"][KERNEL];
    assert!(spec["resource_dir"]
        .as_str()
        .unwrap()
        .starts_with(new.to_str().unwrap()));
    let argv0 = spec["spec"]["argv"][0].as_str().unwrap();
    assert_eq!(argv0, python.to_str().unwrap());
    let prefix = run(Command::new(argv0).args(["-c", "import ipykernel, sys; print(sys.prefix)"]));
    assert_eq!(prefix.trim(), new.join("venv").to_str().unwrap());

    run(Command::new(new.join("venv/bin/ipython"))
        .arg("--version")
        .env("PATH", "/usr/bin:/bin"));
    let activated = run(Command::new("sh")
        .args(["-c", ". \"$1/venv/bin/activate\" && printf '%s\\n%s' \"$VIRTUAL_ENV\" \"$(command -v python)\"", "sh"])
        .arg(&new)
        .env("PATH", "/usr/bin:/bin"));
    assert_eq!(
        activated,
        format!("{}\n{}", new.join("venv").display(), python.display())
    );

    // The same environment as far as drift is concerned.
    assert_eq!(diff(&inventory_before, &inventory(&new).unwrap()), vec![]);
    // Running it again finds nothing left to do.
    let again = relocate(&new, &old, None).unwrap();
    assert!(
        again.rewritten.is_empty() && again.relinked.is_empty(),
        "{again:#?}"
    );
}

#[test]
fn quotes_in_the_new_path_are_escaped_where_uv_escapes_them() {
    let s = scratch("relocate-quote");
    let old = scratch_env(&s, "old");
    let new = s.dir.join("q'uote\"d");
    copy_tree(&old, &new, &|_| true);
    fs::remove_dir_all(&old).unwrap();
    let report = relocate(&new, &old, None).unwrap();
    assert_eq!(
        report
            .skipped
            .iter()
            .map(|(p, _)| p.strip_prefix(&new).unwrap().to_path_buf())
            .collect::<Vec<_>>(),
        vec![PathBuf::from("venv/bin/activate.bat")],
        "a Windows batch file cannot hold the quotes; reported, not broken"
    );
    let activated = run(Command::new("sh")
        .args([
            "-c",
            ". \"$1/venv/bin/activate\" && printf '%s' \"$VIRTUAL_ENV\"",
            "sh",
        ])
        .arg(&new)
        .env("PATH", "/usr/bin:/bin"));
    assert_eq!(activated, new.join("venv").to_str().unwrap());
    run(Command::new(new.join("venv/bin/jupyter"))
        .args(["kernelspec", "list"])
        .env("PATH", "/usr/bin:/bin")
        .env("JUPYTER_DATA_DIR", new.join("jupyter/data")));
    run(python_in(&new).args(["-c", "import numpy, yaml, westtek_demo"]));
}

#[test]
fn the_venv_runs_from_a_relocated_base_interpreter_with_the_original_hidden() {
    let s = scratch("relocate-base");
    let old = scratch_env(&s, "old");
    let orig_base = fixture().base_prefix.clone();
    let new = s.dir.join("new home é/env");
    let inventory_before = inventory(&old).unwrap();
    let version = inventory_before.python.version.clone().unwrap();
    let mm: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    // The base layer as the snapshot engine takes it: the interpreter's
    // closure at its absolute paths below `<new>/base` (whether the fixture
    // was built on pyenv's, uv's or the distribution's Python in /usr).
    let home = inventory_before.python.home.clone().unwrap();
    let closure = interpreter_closure(Path::new(&home), &mm).unwrap();
    let sysroot = new.join("base");
    for p in &closure.paths {
        let dst = sysroot.join(p.strip_prefix("/").unwrap());
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        copy_tree(p, &dst, &|q| !closure.exclude.iter().any(|x| q == x));
    }
    let new_base = sysroot.join(orig_base.strip_prefix("/").unwrap());
    let frozen_base = s.dir.join("frozen-base");
    copy_tree(&new_base, &frozen_base, &|_| true);
    copy_tree(&old, &new, &|_| true);
    fs::remove_dir_all(&old).unwrap();

    let report = relocate(&new, &old, Some(&new_base)).unwrap();

    let link = fs::read_link(new.join("venv/bin/python")).unwrap();
    assert_eq!(link, new_base.join(format!("bin/python{mm}")));
    let cfg = fs::read_to_string(new.join("venv/pyvenv.cfg")).unwrap();
    assert!(
        cfg.contains(&format!("home = {}/bin\n", new_base.display())),
        "{cfg}"
    );
    let rewritten = relative(&new, &report.rewritten);
    let relinked = relative(&new, &report.relinked);
    assert!(relinked.contains("venv/bin/python"), "{relinked:?}");
    assert!(rewritten.contains("venv/pyvenv.cfg"));
    let in_new_base = format!("{}/", new_base.strip_prefix(&new).unwrap().display());
    if orig_base
        .join(format!("lib/libpython{mm}.so.1.0"))
        .is_file()
    {
        // A shared-libpython build (pyenv, uv, conda) finds it by RUNPATH.
        assert!(
            rewritten.contains(&format!("{in_new_base}bin/python{mm}")),
            "the interpreter's RUNPATH"
        );
        assert!(rewritten.contains(&format!("{in_new_base}lib/libpython{mm}.so.1.0")));
    }
    // In the base, exactly the listed files changed.
    let in_base = |set: &BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .filter_map(|p| p.strip_prefix(&in_new_base))
            .map(str::to_string)
            .collect()
    };
    let listed: BTreeSet<String> = in_base(&rewritten)
        .union(&in_base(&relinked))
        .cloned()
        .collect();
    assert_eq!(changed_entries(&frozen_base, &new_base), listed);
    assert!(report.skipped.is_empty(), "{:#?}", report.skipped);

    // Run the venv's python with the original interpreter hidden under empty
    // tmpfs mounts (a private mount namespace) and without pyenv on PATH: its
    // standard library and headers, or its whole prefix when that is its own.
    let mut hide: Vec<PathBuf> = closure
        .paths
        .iter()
        .filter(|p| p.is_dir() && !p.starts_with(&sysroot))
        .cloned()
        .collect();
    if !orig_base.starts_with("/usr") {
        hide.push(orig_base.clone());
    }
    let hide_list = hide
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let mut originals: Vec<String> = hide.iter().map(|p| p.display().to_string()).collect();
    originals.push(
        fs::canonicalize(PathBuf::from(&home).join(format!("python{mm}")))
            .unwrap()
            .display()
            .to_string(),
    );
    let code = "import sys, ssl, ctypes, numpy, yaml\n\
                rows = [l.split(None, 5) for l in open('/proc/self/maps').read().splitlines()]\n\
                files = [r[5] for r in rows if len(r) == 6 and r[5].startswith('/')]\n\
                print(sys.base_prefix); print([f for f in files if 'python' in f][0])\n\
                print(any(f == o or f.startswith(o + '/') for f in files for o in sys.argv[1:]))";
    let python = new.join("venv/bin/python");
    let hidden_run = |program: &Path, args: &[&str], extra: &[String]| {
        Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                "IFS=:; for d in $WESTTEK_HIDE; do mount -t tmpfs -o ro none \"$d\" || exit 90; done; unset IFS; exec \"$0\" \"$@\"",
            ])
            .arg(program)
            .args(args)
            .args(extra)
            .env("WESTTEK_HIDE", &hide_list)
            .env("PATH", "/usr/bin:/bin")
            .env("JUPYTER_DATA_DIR", new.join("jupyter/data"))
            .env_remove("PYENV_VERSION")
            .output()
            .unwrap()
    };
    let hidden = hidden_run(&python, &["-c", code], &originals);
    let out = if hidden.status.success() {
        String::from_utf8(hidden.stdout).unwrap()
    } else {
        eprintln!(
            "unshare -m not permitted here ({}); checking the loaded files instead",
            String::from_utf8_lossy(&hidden.stderr)
        );
        run(python_in(&new).args(["-c", code]).args(&originals))
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], new_base.to_str().unwrap(), "sys.base_prefix");
    assert!(
        lines[1].starts_with(new_base.to_str().unwrap()),
        "the interpreter's code mapped from {}",
        lines[1]
    );
    assert_eq!(
        lines[2], "False",
        "nothing mapped from the original interpreter"
    );

    let specs = hidden_run(&new.join("venv/bin/jupyter"), &["kernelspec", "list"], &[]);
    if hidden.status.success() {
        assert!(
            specs.status.success(),
            "{}",
            String::from_utf8_lossy(&specs.stderr)
        );
        assert!(String::from_utf8_lossy(&specs.stdout).contains(KERNEL));
    }

    // Drift sees only that the interpreter moved, not that it changed.
    let after = inventory(&new).unwrap();
    assert_eq!(after.python.base_prefix.as_deref(), new_base.to_str());
    let f = diff(&inventory_before, &after);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].kind, f[0].severity),
        (FindingKind::PythonChanged, Severity::Minor)
    );
}

#[test]
fn relocating_to_the_same_root_changes_nothing() {
    let root = &fixture().root;
    let before = tree_state(root);
    let report = relocate(root, root, None).unwrap();
    assert_eq!(report, Default::default());
    assert_eq!(tree_state(root), before);
}

#[test]
fn unusable_roots_are_refused_with_a_reason() {
    let s = scratch("relocate-refuse");
    let err = relocate(&s.dir, Path::new("/old"), None).unwrap_err();
    assert!(matches!(err, Error::NotAnEnvironment { .. }), "{err}");
    let root = &fixture().root;
    for bad in ["relative/old", "/", "/a/../b", "/with\nnewline"] {
        let err = relocate(root, Path::new(bad), None).unwrap_err();
        assert!(matches!(err, Error::UnusablePath { .. }), "{bad}: {err}");
    }
}
