//! Reading a `*.dist-info` (or legacy `*.egg-info`) folder: the METADATA
//! header block, `top_level.txt` / `RECORD` for import names, and
//! `direct_url.json`. Only the header block of METADATA is read: the long
//! description after it can be hundreds of kilobytes and says nothing we use.

use std::io::BufRead;

use crate::model::{DirectUrl, ProjectUrl};

/// PEP 503 normalisation: lower case, every run of `-`, `_`, `.` becomes `-`
/// (`PyYAML` → `pyyaml`, `Jupyter_Server` → `jupyter-server`).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    out
}

/// The header fields of METADATA / PKG-INFO we keep.
/// The header fields of a distribution's `METADATA` that the platform uses
/// (`UNKNOWN` and empty values are left out).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// `Name`.
    pub name: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `Summary`.
    pub summary: Option<String>,
    /// `Home-page`.
    pub home_page: Option<String>,
    /// `Project-URL` entries (`label, url`).
    pub project_urls: Vec<ProjectUrl>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// `Requires-Dist` entries, as written.
    pub requires_dist: Vec<String>,
}

/// Parse the RFC 822 style header block of a `METADATA` file, stopping at
/// the first empty line; continuation lines join the previous field.
///
/// # Errors
/// The reader's I/O errors.
pub fn parse_headers(mut reader: impl BufRead) -> std::io::Result<Headers> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            break;
        }
        if text.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(text.trim());
            }
            continue;
        }
        if let Some((key, value)) = text.split_once(':') {
            fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut h = Headers::default();
    for (key, value) in fields {
        let set = |slot: &mut Option<String>| {
            if slot.is_none() && !value.is_empty() && value != "UNKNOWN" {
                *slot = Some(value.clone());
            }
        };
        match key.as_str() {
            "name" => set(&mut h.name),
            "version" => set(&mut h.version),
            "summary" => set(&mut h.summary),
            "home-page" => set(&mut h.home_page),
            "requires-python" => set(&mut h.requires_python),
            "requires-dist" if !value.is_empty() => h.requires_dist.push(value),
            "project-url" => {
                let (label, url) = match value.split_once(',') {
                    Some((l, u)) => (l.trim().to_string(), u.trim().to_string()),
                    None => (String::new(), value.trim().to_string()),
                };
                if !url.is_empty() {
                    h.project_urls.push(ProjectUrl { label, url });
                }
            }
            _ => {}
        }
    }
    Ok(h)
}

/// A Python identifier (ASCII or Unicode letters, digits, `_`; no leading
/// digit): what an importable top-level name must be.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Import names listed in `top_level.txt` (one per line; a nested entry
/// `a/b` counts as `a`).
pub(crate) fn top_level_from_txt(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().split(['/', '\\', '.']).next())
        .filter(|n| is_identifier(n))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Import names derived from `RECORD`: the first component of every
/// installed path inside site-packages — a package folder, a `name.py`
/// module, or an extension module `name.cpython-311-….so`. Metadata folders,
/// scripts (`../../bin/…`), `*.pth`, `*.libs` and bytecode are not modules.
pub(crate) fn top_level_from_record(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines() {
        let path = record_path(line);
        if path.is_empty() || path.starts_with("..") || path.starts_with('/') {
            continue;
        }
        let (first, nested) = match path.split_once('/') {
            Some((first, _)) => (first, true),
            None => (path, false),
        };
        let name = if nested {
            if first == "__pycache__" {
                continue;
            }
            first
        } else if first.starts_with("__editable__") {
            // setuptools' editable finder, not an importable name of the project.
            continue;
        } else if let Some(stem) = first.strip_suffix(".py") {
            stem
        } else if first.ends_with(".so") || first.ends_with(".pyd") {
            first.split('.').next().unwrap_or_default()
        } else {
            continue;
        };
        if is_identifier(name) && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names.sort();
    names
}

/// Top-level files in `RECORD` that make an editable install importable:
/// `*.pth` files (paths added to `sys.path`) and setuptools'
/// `__editable___*_finder.py` modules (a name → folder `MAPPING`).
pub(crate) fn editable_hooks(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut pth, mut finders) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let path = record_path(line);
        if path.contains('/') {
            continue;
        }
        if path.ends_with(".pth") {
            pth.push(path.to_string());
        } else if path.starts_with("__editable__") && path.ends_with("_finder.py") {
            finders.push(path.to_string());
        }
    }
    (pth, finders)
}

/// The keys of `MAPPING = {'pkg': '/src/pkg', ...}` in a setuptools
/// editable finder.
pub(crate) fn finder_mapping_names(source: &str) -> Vec<String> {
    let Some(start) = source.find("MAPPING") else {
        return Vec::new();
    };
    let rest = &source[start..];
    let (Some(open), Some(close)) = (rest.find('{'), rest.find('}')) else {
        return Vec::new();
    };
    if close < open {
        return Vec::new();
    }
    rest[open + 1..close]
        .split(',')
        .filter_map(|item| item.split_once(':'))
        .map(|(k, _)| k.trim().trim_matches(['\'', '"']).to_string())
        .filter(|k| is_identifier(k))
        .collect()
}

/// Importable names in a folder that a `.pth` line puts on `sys.path`:
/// sub-folders named like identifiers and `*.py` modules.
pub(crate) fn names_in_path_dir(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(std::result::Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let name = if is_dir {
                name
            } else {
                name.strip_suffix(".py")?.to_string()
            };
            (is_identifier(&name) && name != "__pycache__").then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// The first CSV field of a RECORD line (quoted when the path has a comma).
fn record_path(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('"') {
        // Doubled quotes inside are rare enough in paths to not unescape;
        // the first component is all that is used.
        return rest.split('"').next().unwrap_or_default();
    }
    line.split(',').next().unwrap_or_default()
}

/// `direct_url.json` → the identifying fields; `None` if it is not valid.
pub(crate) fn parse_direct_url(bytes: &[u8]) -> Option<DirectUrl> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let url = v.get("url")?.as_str()?.to_string();
    let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let archive = v.get("archive_info");
    let archive_hash = s(archive.and_then(|a| a.get("hash"))).or_else(|| {
        let hashes = archive?.get("hashes")?.as_object()?;
        let (algo, value) = hashes.iter().next()?;
        Some(format!("{algo}={}", value.as_str()?))
    });
    Some(DirectUrl {
        url,
        editable: v
            .get("dir_info")
            .and_then(|d| d.get("editable"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        vcs: s(v.get("vcs_info").and_then(|x| x.get("vcs"))),
        commit_id: s(v.get("vcs_info").and_then(|x| x.get("commit_id"))),
        requested_revision: s(v.get("vcs_info").and_then(|x| x.get("requested_revision"))),
        archive_hash,
    })
}

/// Split `name-version.dist-info` into its parts (the fallback when METADATA
/// is missing a field).
pub(crate) fn split_dist_info_name(dir: &str) -> (String, String) {
    let stem = dir
        .strip_suffix(".dist-info")
        .or_else(|| dir.strip_suffix(".egg-info"))
        .unwrap_or(dir);
    match stem.split_once('-') {
        Some((n, v)) => (n.to_string(), v.split('-').next().unwrap_or(v).to_string()),
        None => (stem.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_per_pep_503() {
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
        assert_eq!(normalize_name("scikit_learn"), "scikit-learn");
        assert_eq!(normalize_name("Jupyter__Server.-x"), "jupyter-server-x");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
    }

    #[test]
    fn the_header_block_is_read_up_to_the_description() {
        let text = "Metadata-Version: 2.4\nName: PyYAML\nVersion: 6.0.3\nSummary: YAML parser\n  and emitter\nHome-page: https://pyyaml.org/\nProject-URL: Source Code, https://github.com/yaml/pyyaml\nProject-URL: Docs, https://pyyaml.org/wiki\nRequires-Python: >=3.8\nRequires-Dist: numpy>=1.0; extra == \"np\"\n\nName: NotAHeader\n";
        let h = parse_headers(text.as_bytes()).unwrap();
        assert_eq!(h.name.as_deref(), Some("PyYAML"));
        assert_eq!(h.version.as_deref(), Some("6.0.3"));
        assert_eq!(h.summary.as_deref(), Some("YAML parser and emitter"));
        assert_eq!(h.home_page.as_deref(), Some("https://pyyaml.org/"));
        assert_eq!(h.project_urls.len(), 2);
        assert_eq!(h.project_urls[0].label, "Source Code");
        assert_eq!(h.project_urls[0].url, "https://github.com/yaml/pyyaml");
        assert_eq!(h.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(h.requires_dist, vec!["numpy>=1.0; extra == \"np\""]);
    }

    #[test]
    fn record_yields_packages_modules_and_extension_modules() {
        let record = "\
../../../bin/f2py,sha256=x,310
numpy/__init__.py,sha256=x,1
numpy/core/_multiarray.cpython-311-x86_64-linux-gnu.so,sha256=x,1
numpy-2.4.6.dist-info/RECORD,,
numpy.libs/libgfortran.so.5,sha256=x,1
six.py,sha256=x,1
_cffi_backend.cpython-311-x86_64-linux-gnu.so,sha256=x,1
__pycache__/six.cpython-311.pyc,,
distutils-precedence.pth,sha256=x,1
\"weird,name/__init__.py\",sha256=x,1
";
        assert_eq!(
            top_level_from_record(record),
            vec!["_cffi_backend", "numpy", "six"]
        );
    }

    #[test]
    fn editable_installs_are_found_through_their_hooks() {
        let record = "_editable_impl_demo.pth,sha256=x,1\n__editable___demo_0_1_finder.py,sha256=x,1\ndemo-0.1.dist-info/RECORD,,\n";
        let (pth, finders) = editable_hooks(record);
        assert_eq!(pth, vec!["_editable_impl_demo.pth"]);
        assert_eq!(finders, vec!["__editable___demo_0_1_finder.py"]);
        assert!(top_level_from_record(record).is_empty());
        let finder =
            "MAPPING: dict[str, str] = {'demo': '/src/demo', \"other\": '/x'}\nNAMESPACES = {}";
        assert_eq!(finder_mapping_names(finder), vec!["demo", "other"]);
    }

    #[test]
    fn top_level_txt_lists_import_names() {
        assert_eq!(top_level_from_txt("_yaml\nyaml\n\n"), vec!["_yaml", "yaml"]);
        assert_eq!(top_level_from_txt("google/protobuf\n"), vec!["google"]);
    }

    #[test]
    fn identifiers_may_be_unicode_but_not_start_with_a_digit() {
        assert!(is_identifier("données"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("numpy.libs"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn direct_url_keeps_the_identifying_fields() {
        let vcs = br#"{"url":"https://github.com/a/b","vcs_info":{"vcs":"git","commit_id":"abc","requested_revision":"main"}}"#;
        let d = parse_direct_url(vcs).unwrap();
        assert_eq!(d.vcs.as_deref(), Some("git"));
        assert_eq!(d.commit_id.as_deref(), Some("abc"));
        let editable = br#"{"url":"file:///src/pkg","dir_info":{"editable":true}}"#;
        assert!(parse_direct_url(editable).unwrap().editable);
        let archive = br#"{"url":"https://x/p.whl","archive_info":{"hashes":{"sha256":"ff"}}}"#;
        assert_eq!(
            parse_direct_url(archive).unwrap().archive_hash.as_deref(),
            Some("sha256=ff")
        );
        assert!(parse_direct_url(b"{").is_none());
    }

    #[test]
    fn a_dist_info_folder_name_splits_into_name_and_version() {
        assert_eq!(
            split_dist_info_name("numpy-2.4.6.dist-info"),
            ("numpy".to_string(), "2.4.6".to_string())
        );
    }
}
