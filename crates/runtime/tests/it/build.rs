//! Building environments with real uv: the outcome, its hash, failures
//! sorted by cause, and that a failed or cancelled build leaves nothing.

use crate::support::{config_in, eventually, shared, spec, Recorder};
use std::sync::Arc;
use std::time::{Duration, Instant};
use westtek_domain::ports::EnvironmentBuilder;
use westtek_domain::{DomainError, EnvironmentId};
use westtek_runtime::{configuration_hash, EnvLayout, UvBuilder};

fn upstream(e: DomainError) -> (&'static str, String) {
    match e {
        DomainError::Upstream { code, message } => (code, message),
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_built_environment_lists_numpy_and_jupyterlab_and_imports_numpy() {
    let s = shared().await;
    let installed = &s.outcome.installed;
    assert!(
        installed.iter().any(|p| p.starts_with("numpy==")),
        "{installed:?}"
    );
    assert!(
        installed.iter().any(|p| p.starts_with("jupyterlab==")),
        "{installed:?}"
    );
    assert!(
        installed.iter().any(|p| p.starts_with("ipykernel==")),
        "{installed:?}"
    );
    let mut sorted = installed.clone();
    sorted.sort_by_key(|p| p.to_ascii_lowercase());
    assert_eq!(&sorted, installed);
    assert!(
        s.outcome.python_version.starts_with("3.11."),
        "{}",
        s.outcome.python_version
    );
    assert_eq!(
        s.outcome.configuration_hash,
        configuration_hash(&s.outcome.python_version, installed)
    );

    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    for dir in layout.skeleton() {
        assert!(dir.is_dir(), "{} missing", dir.display());
    }
    // The install ran in the environment's sandbox: on a root host what it
    // wrote belongs to the environment's own uid, and its private cache is
    // gone.
    if let Some(uid) = s.cfg.sandbox.uid_of(s.env) {
        use std::os::unix::fs::MetadataExt;
        let numpy = walkdir::WalkDir::new(layout.venv())
            .into_iter()
            .flatten()
            .find(|e| e.file_name() == "numpy" && e.file_type().is_dir())
            .expect("numpy is installed");
        assert_eq!(numpy.metadata().unwrap().uid(), uid);
    }
    assert!(!layout.root().join(".build-cache").exists());
    let out = std::process::Command::new(layout.python())
        .args(["-c", "import numpy; print(numpy.__version__)"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(installed.contains(&format!("numpy=={version}")));

    let fractions: Vec<f32> = s.progress.iter().map(|(f, _)| *f).collect();
    assert!(
        fractions.windows(2).all(|w| w[0] <= w[1]),
        "{:?}",
        s.progress
    );
    assert_eq!(fractions.last(), Some(&1.0));
    assert!(
        s.progress.iter().any(|(_, m)| m.starts_with("resolved ")),
        "{:?}",
        s.progress
    );
    assert!(s
        .progress
        .iter()
        .any(|(_, m)| m == "recording installed packages"));
    eprintln!("[timing] shared build took {:?}", s.took);
}

#[tokio::test]
async fn the_same_spec_builds_to_the_same_hash_and_remove_deletes_it() {
    let s = shared().await;
    let dir = tempfile::tempdir().unwrap();
    let builder = UvBuilder::new(config_in(dir.path()));
    let env = EnvironmentId::new();
    let began = Instant::now();
    let outcome = builder
        .build(&spec(env, &["numpy"]), Arc::new(Recorder::default()))
        .await
        .unwrap();
    eprintln!(
        "[timing] second build with a warm cache: {:?}",
        began.elapsed()
    );
    assert_eq!(outcome, s.outcome);

    let root = builder.root(env);
    assert!(root.is_dir());
    assert_eq!(
        builder
            .build(&spec(env, &["numpy"]), Arc::new(Recorder::default()))
            .await
            .unwrap_err(),
        DomainError::Conflict("the environment's files already exist".into())
    );
    assert!(
        root.is_dir(),
        "a refused build must not remove the existing files"
    );
    builder.remove(env).await.unwrap();
    assert!(!root.exists());
    builder.remove(env).await.unwrap();
}

#[tokio::test]
async fn an_unknown_package_fails_with_package_not_found_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let builder = UvBuilder::new(config_in(dir.path()));
    let env = EnvironmentId::new();
    let err = builder
        .build(
            &spec(env, &["westtek-no-such-package-xyz"]),
            Arc::new(Recorder::default()),
        )
        .await
        .unwrap_err();
    let (code, message) = upstream(err);
    assert_eq!(code, "package_not_found");
    assert_eq!(
        message,
        "package 'westtek-no-such-package-xyz' was not found in the package index"
    );
    assert!(!builder.root(env).exists());
}

#[tokio::test]
async fn conflicting_pins_fail_with_uvs_explanation_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let builder = UvBuilder::new(config_in(dir.path()));
    let env = EnvironmentId::new();
    let err = builder
        .build(
            &spec(env, &["numpy==1.26.4", "numpy==2.0.0"]),
            Arc::new(Recorder::default()),
        )
        .await
        .unwrap_err();
    let (code, message) = upstream(err);
    assert_eq!(code, "dependency_conflict");
    assert!(
        message.contains("Because you require numpy==1.26.4 and numpy==2.0.0"),
        "{message}"
    );
    assert!(
        !message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(!builder.root(env).exists());
}

#[tokio::test]
async fn a_python_that_is_not_installed_fails_with_python_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let builder = UvBuilder::new(config_in(dir.path()));
    let env = EnvironmentId::new();
    let mut s = spec(env, &[]);
    s.python_version = "3.99".into();
    let (code, message) = upstream(
        builder
            .build(&s, Arc::new(Recorder::default()))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "python_unavailable");
    assert!(
        message.starts_with("Python 3.99 is not available on this host; available: "),
        "{message}"
    );
    assert!(message.contains("3.11."), "{message}");
    assert!(!builder.root(env).exists());
}

#[tokio::test]
async fn a_build_dropped_midway_kills_uv_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let builder = UvBuilder::new(config_in(dir.path()));
    let env = EnvironmentId::new();
    let root = builder.root(env);
    let recorder = Arc::new(Recorder::default());
    let spec = spec(env, &["numpy"]);
    let build = builder.build(&spec, recorder.clone());
    // Long enough for the venv to exist and the install to be under way.
    let cut = tokio::time::timeout(Duration::from_millis(400), build).await;
    assert!(
        cut.is_err(),
        "the build finished before it could be cancelled"
    );
    assert!(!recorder.0.lock().unwrap().is_empty());
    assert!(!root.exists(), "the dropped build left {}", root.display());
    // No uv process is still working on the root.
    // A killed process stays listed until the kernel has torn it down and
    // its parent reaped it: give it a moment, but not forever.
    let needle = root.display().to_string();
    let lingering = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).contains(&needle))
    };
    assert!(
        eventually(Duration::from_secs(10), || !lingering()).await,
        "a uv process is still running for the dropped build"
    );
}

#[tokio::test]
async fn a_venv_naming_a_foreign_prefix_gets_only_real_interpreters_mounted() {
    use westtek_runtime::sandbox::{is_interpreter_prefix, trusted_prefixes};
    let s = shared().await;
    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    let data = s.cfg.data_dir();
    // The shared environment's own interpreter is a real installation.
    let own = trusted_prefixes(&layout.venv(), &data);
    assert_eq!(own.len(), 1, "{own:?}");
    assert!(own[0].join("bin").is_dir());
    // A pyvenv.cfg rewritten by code in the sandbox to name the data dir,
    // another environment, /root or / is not believed.
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    for home in [
        "/root/bin".to_string(),
        "/bin".to_string(),
        format!("{}/bin", data.display()),
        format!("{}/bin", layout.root().display()),
        format!("{}/venv/bin", layout.root().display()),
    ] {
        std::fs::write(venv.join("pyvenv.cfg"), format!("home = {home}\n")).unwrap();
        assert!(trusted_prefixes(&venv, &data).is_empty(), "{home}");
    }
    assert!(is_interpreter_prefix(&own[0], &data));
    assert!(!is_interpreter_prefix(&data, &data));
}
