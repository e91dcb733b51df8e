//! `inventory` and `seed_metadata` on a real uv environment.

use std::collections::BTreeSet;
use std::process::Command;

use westtek_inventory::{diff, inventory, seed_metadata, ExtensionKind, Inventory, KernelSource};

use crate::support::*;

#[test]
fn packages_are_listed_with_versions_installers_and_import_names() {
    let f = fixture();
    let inv = inventory(&f.root).unwrap();
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let numpy = inv.package("numpy").unwrap();
    assert_eq!(numpy.top_level, vec!["numpy"]);
    assert_eq!(numpy.installer.as_deref(), Some("uv"));
    assert!(numpy.summary.is_some());
    let pyyaml = inv.package("PyYAML").unwrap();
    assert_eq!(pyyaml.name, "pyyaml");
    assert_eq!(pyyaml.display_name, "PyYAML");
    assert!(
        pyyaml.top_level.contains(&"yaml".to_string()),
        "{:?}",
        pyyaml.top_level
    );
    assert!(pyyaml
        .project_urls
        .iter()
        .any(|u| u.url.contains("github.com/yaml/pyyaml")));
    assert_eq!(
        inv.package("python-dateutil").unwrap().top_level,
        vec!["dateutil"]
    );
    assert_eq!(inv.package("ipython").unwrap().top_level, vec!["IPython"]);
    let demo = inv.package("westtek-demo").unwrap();
    let direct = demo.direct_url.as_ref().unwrap();
    assert!(direct.editable);
    assert!(direct.url.starts_with("file://"));
    assert_eq!(
        demo.top_level,
        vec!["westtek_demo"],
        "editable install found through its .pth"
    );
    let python = &inv.python;
    assert_eq!(python.implementation.as_deref(), Some("CPython"));
    assert_eq!(
        python.base_prefix.as_deref(),
        Some(f.base_prefix.to_str().unwrap())
    );
    assert!(python.version.as_deref().unwrap().starts_with("3."));
    assert!(python.venv_creator.as_deref().unwrap().starts_with("uv "));
}

#[test]
fn installed_packages_match_what_uv_pip_freeze_reports() {
    let f = fixture();
    let seed = seed_metadata(&inventory(&f.root).unwrap());
    let freeze = uv_pip(&f.root, &["freeze"]);
    let mut expected: Vec<String> = freeze
        .lines()
        .filter(|l| !l.starts_with("-e "))
        .map(|l| {
            let (name, version) = l.split_once("==").unwrap();
            format!("{}=={}", westtek_inventory::normalize_name(name), version)
        })
        .collect();
    expected.push("westtek-demo==0.1.0".into());
    expected.sort();
    assert_eq!(seed.installed_packages, expected);
    assert_eq!(seed.notebook_count, 2);
    assert_eq!(
        seed.jupyter_version, None,
        "no jupyterlab or jupyter_server in the fixture"
    );
    assert!(seed
        .configuration_files
        .contains(&"jupyter/config/jupyter_server_config.json".to_string()));
}

#[test]
fn notebooks_list_the_modules_their_code_cells_import() {
    let inv = inventory(&fixture().root).unwrap();
    let paths: Vec<&str> = inv.notebooks.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![ANALYSIS_NB, UNICODE_NB],
        "checkpoints are not notebooks"
    );
    let analysis = inv.notebook(ANALYSIS_NB).unwrap();
    assert_eq!(
        analysis.imports,
        vec!["numpy", "os", "sys", "westtek_demo", "yaml"]
    );
    assert_eq!((analysis.cells.code, analysis.cells.markdown), (3, 1));
    assert_eq!(analysis.kernel_name.as_deref(), Some(KERNEL));
    assert!(analysis
        .file_refs
        .contains(&"data/measurements.csv".to_string()));
    assert_eq!(analysis.error, None);
    let unicode = inv.notebook(UNICODE_NB).unwrap();
    assert_eq!(unicode.imports, vec!["numpy", "yaml"]);
}

#[test]
fn data_files_are_hashed_and_bytecode_and_runtime_state_never_appear() {
    let f = fixture();
    let inv = inventory(&f.root).unwrap();
    let data: Vec<&str> = inv.data_files.iter().map(|d| d.path.as_str()).collect();
    assert!(data.contains(&"home/data/données é.txt"));
    assert!(data.contains(&"home/data/empty.bin"));
    assert!(data.contains(&"home/helpers.py"));
    let csv = inv
        .data_files
        .iter()
        .find(|d| d.path == "home/data/measurements.csv")
        .unwrap();
    let bytes = std::fs::read(f.root.join("home/data/measurements.csv")).unwrap();
    assert_eq!(
        csv.blake3.as_deref(),
        Some(blake3::hash(&bytes).to_hex().as_str())
    );
    assert_eq!(csv.size, bytes.len() as u64);
    let link = inv
        .data_files
        .iter()
        .find(|d| d.path == "home/latest.csv")
        .unwrap();
    assert_eq!(
        link.symlink_target.as_deref(),
        Some("data/measurements.csv")
    );
    assert_eq!(link.blake3, None);
    let json = String::from_utf8(inv.to_json().unwrap()).unwrap();
    for never in [
        "__pycache__",
        ".pyc",
        ".ipynb_checkpoints",
        "jupyter/runtime",
        "history.sqlite",
        "lab/workspaces",
    ] {
        assert!(!json.contains(never), "{never} appears in the inventory");
    }
}

#[test]
fn kernelspecs_extensions_and_config_files_are_found() {
    let f = fixture();
    let inv = inventory(&f.root).unwrap();
    let fixture_kernel = inv.kernels.iter().find(|k| k.name == KERNEL).unwrap();
    assert_eq!(fixture_kernel.source, KernelSource::JupyterData);
    assert_eq!(
        fixture_kernel.display_name.as_deref(),
        Some("Fixture Python")
    );
    assert_eq!(fixture_kernel.language.as_deref(), Some("python"));
    assert_eq!(
        fixture_kernel.argv[0],
        f.root.join("venv/bin/python").to_str().unwrap()
    );
    assert!(
        fixture_kernel
            .argv
            .iter()
            .any(|a| a == "ipykernel_launcher"),
        "{:?}",
        fixture_kernel.argv
    );
    let venv_kernel = inv.kernels.iter().find(|k| k.name == "python3").unwrap();
    assert_eq!(venv_kernel.source, KernelSource::Venv);
    assert_eq!(venv_kernel.argv[0], "python");

    let lab: Vec<(&str, Option<&str>, bool)> = inv
        .extensions
        .iter()
        .filter(|e| e.kind == ExtensionKind::Lab)
        .map(|e| (e.name.as_str(), e.version.as_deref(), e.enabled))
        .collect();
    assert_eq!(
        lab,
        vec![
            ("@westtek/disabled-ext", Some("0.0.1"), false),
            ("@westtek/fake-ext", Some("1.2.3"), true)
        ]
    );
    let server = inv
        .extensions
        .iter()
        .find(|e| e.kind == ExtensionKind::Server)
        .unwrap();
    assert_eq!(server.name, "westtek_demo");
    assert_eq!(
        server.version.as_deref(),
        Some("0.1.0"),
        "version of the distribution providing the module"
    );
    assert!(server.enabled);

    let config: BTreeSet<&str> = inv.config_files.iter().map(|c| c.path.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "ipython/profile_default/ipython_config.py",
        "ipython/profile_default/startup/00-init.py",
        "jupyter/config/jupyter_server_config.json",
        "jupyter/config/lab/user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings",
        "jupyter/config/labconfig/page_config.json",
    ]
    .into_iter()
    .collect();
    assert_eq!(config, expected);
}

#[test]
fn the_inventory_is_deterministic_and_round_trips_through_json() {
    let root = &fixture().root;
    let a = inventory(root).unwrap();
    let b = inventory(root).unwrap();
    assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
    let back = Inventory::from_json(&a.to_json().unwrap()).unwrap();
    assert_eq!(back, a);
    let reused = westtek_inventory::inventory_reusing(root, &a).unwrap();
    assert_eq!(reused, a);
    let mut future = serde_json::to_value(&a).unwrap();
    future["format_version"] = 99.into();
    let err = Inventory::from_json(&serde_json::to_vec(&future).unwrap()).unwrap_err();
    assert!(err.to_string().contains("99"), "{err}");
}

#[test]
fn bytecode_written_by_running_python_is_not_drift() {
    let s = scratch("bytecode");
    let root = scratch_env(&s, "env");
    let before = inventory(&root).unwrap();
    run(Command::new(root.join("venv/bin/python"))
        .args(["-c", "import numpy, yaml, IPython, westtek_demo, compileall, sys; compileall.compile_dir(sys.argv[1], quiet=1)"])
        .arg(root.join("home"))
        .env_remove("PYTHONDONTWRITEBYTECODE"));
    let dist_info = before.package("pyyaml").unwrap().dist_info.clone();
    let site = root.join(std::path::Path::new(&dist_info).parent().unwrap());
    assert!(
        site.join("yaml/__pycache__").is_dir(),
        "python wrote bytecode"
    );
    let after = inventory(&root).unwrap();
    assert_eq!(diff(&before, &after), vec![]);
}

#[test]
fn a_root_that_does_not_exist_is_an_error_and_an_empty_folder_is_an_empty_inventory() {
    let s = scratch("empty");
    assert!(inventory(&s.dir.join("missing")).is_err());
    let inv = inventory(&s.dir).unwrap();
    assert!(inv.packages.is_empty() && inv.notebooks.is_empty());
    assert_eq!(
        inv.warnings,
        vec!["venv/pyvenv.cfg: No such file or directory (os error 2)"]
    );
}
