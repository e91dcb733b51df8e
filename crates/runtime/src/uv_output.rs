//! Reading uv's stderr: build progress from its status lines, and failures
//! sorted into the stable error codes of `EnvironmentBuilder::build`.
//!
//! uv writes plain status lines when stderr is not a terminal (`Resolved 92
//! packages in 513ms`, `Downloading numpy (16.1MiB)`, …) and, on failure,
//! `error: …` followed by `cause: Because …` explanation lines (older uv
//! releases drew the same text with `×` and `╰─▶`; both are understood).
//! Messages built here are shown to users, so absolute paths of the machine
//! are replaced by `<path>`.

use westtek_domain::DomainError;

/// The uv step that produced the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `uv venv`.
    Venv,
    /// `uv pip install`.
    Install,
    /// `uv pip freeze` or reading the interpreter version.
    Record,
}

/// What a failed uv step means for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Packages that do not exist in the index; `explanation` is uv's.
    PackageNotFound {
        names: Vec<String>,
        explanation: Vec<String>,
    },
    /// The requirements cannot be satisfied together.
    Conflict { explanation: Vec<String> },
    /// The requested interpreter is not installed.
    PythonUnavailable,
    /// Anything else: the last lines of stderr.
    Other { step: Step, tail: Vec<String> },
}

/// Lines of stderr kept for an `install_failed` message.
const TAIL_LINES: usize = 8;

/// Sorts a failed step's stderr into a [`Failure`].
pub(crate) fn classify(step: Step, stderr: &[String]) -> Failure {
    let cleaned: Vec<String> = stderr.iter().map(|l| strip_decoration(l)).collect();
    if step == Step::Venv && cleaned.iter().any(|l| is_python_missing(l)) {
        return Failure::PythonUnavailable;
    }
    let no_solution = cleaned
        .iter()
        .any(|l| l.contains("No solution found when resolving dependencies"));
    let explanation = explanation(stderr);
    let explained = explanation.iter().any(|l| l.starts_with("Because "));
    if no_solution || explained {
        let names = missing_packages(&explanation);
        if !names.is_empty() {
            return Failure::PackageNotFound { names, explanation };
        }
        if explained {
            return Failure::Conflict { explanation };
        }
    }
    let tail: Vec<String> = cleaned
        .iter()
        .map(|l| scrub_paths(l.trim()))
        .filter(|l| !l.is_empty())
        .collect();
    let skip = tail.len().saturating_sub(TAIL_LINES);
    Failure::Other {
        step,
        tail: tail.into_iter().skip(skip).collect(),
    }
}

impl Failure {
    /// The user-safe error. `python` is the requested version, `available`
    /// the interpreter versions uv can see, `requested` the names the user
    /// asked for (to tell a typo from a missing dependency of a package).
    pub(crate) fn into_error(
        self,
        python: &str,
        available: &[String],
        requested: &[String],
    ) -> DomainError {
        match self {
            Failure::PackageNotFound { names, explanation } => {
                let listed = names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut message = if names.len() == 1 {
                    format!("package {listed} was not found in the package index")
                } else {
                    format!("packages {listed} were not found in the package index")
                };
                let all_direct = names
                    .iter()
                    .all(|n| requested.iter().any(|r| normalize(r) == normalize(n)));
                if !all_direct {
                    message.push_str(":\n");
                    message.push_str(&explanation.join("\n"));
                }
                DomainError::Upstream {
                    code: "package_not_found",
                    message,
                }
            }
            Failure::Conflict { explanation } => DomainError::Upstream {
                code: "dependency_conflict",
                message: format!(
                    "the requested packages cannot be installed together:\n{}",
                    explanation.join("\n")
                ),
            },
            Failure::PythonUnavailable => {
                let mut message = format!("Python {python} is not available on this host");
                if !available.is_empty() {
                    message.push_str(&format!("; available: {}", available.join(", ")));
                }
                DomainError::Upstream {
                    code: "python_unavailable",
                    message,
                }
            }
            Failure::Other { step, tail } => {
                let what = match step {
                    Step::Venv => "creating the virtual environment failed",
                    Step::Install => "installing the packages failed",
                    Step::Record => "recording the installed packages failed",
                };
                let message = if tail.is_empty() {
                    what.to_string()
                } else {
                    format!("{what}:\n{}", tail.join("\n"))
                };
                DomainError::Upstream {
                    code: "install_failed",
                    message,
                }
            }
        }
    }
}

/// PEP 503 normalisation, for comparing what was asked with what uv says.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

fn is_python_missing(line: &str) -> bool {
    [
        "No interpreter found",
        "Failed to inspect Python interpreter",
        "No Python at",
        "in managed installations or search path",
        "No download found for request",
    ]
    .iter()
    .any(|m| line.contains(m))
}

/// Removes uv's report decoration (`error:`, `cause:`, `×`, `╰─▶`, `│`).
fn strip_decoration(line: &str) -> String {
    let mut s = line.trim();
    loop {
        let before = s;
        for prefix in ["error:", "cause:", "×", "╰─▶", "├─▶", "│", "help:"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.trim_start();
            }
        }
        if s == before {
            break;
        }
    }
    s.trim_end().to_string()
}

/// uv's "Because …" explanation (with its continuation lines) and hints.
fn explanation(stderr: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for raw in stderr {
        let line = strip_decoration(raw);
        if line.starts_with("hint:") {
            inside = false;
            out.push(scrub_paths(&line));
            continue;
        }
        if line.starts_with("Because ") {
            inside = true;
        }
        if inside {
            if line.is_empty() {
                inside = false;
            } else {
                out.push(scrub_paths(&line));
            }
        }
    }
    out
}

/// Names uv reports as absent from the index.
fn missing_packages(explanation: &[String]) -> Vec<String> {
    const MARKERS: [&str; 2] = [
        " was not found in the package registry",
        " was not found in the provided package locations",
    ];
    let mut names: Vec<String> = Vec::new();
    for line in explanation {
        for marker in MARKERS {
            let mut rest = line.as_str();
            while let Some(at) = rest.find(marker) {
                let before = &rest[..at];
                if let Some(word) = before.split_whitespace().last() {
                    let name = word.trim_matches(|c| matches!(c, '`' | '\'' | '"' | ','));
                    if !name.is_empty() && !names.iter().any(|n| n == name) {
                        names.push(name.to_string());
                    }
                }
                rest = &rest[at + marker.len()..];
            }
        }
    }
    names
}

/// Replaces absolute paths (a `/` starting a word) with `<path>`.
pub(crate) fn scrub_paths(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        let word_start = prev
            .is_none_or(|p| p.is_whitespace() || matches!(p, '`' | '\'' | '"' | '(' | '=' | '['));
        if c == '/' && word_start {
            while let Some(&n) = chars.peek() {
                if n.is_whitespace() || matches!(n, '`' | '\'' | '"' | ')' | ']' | ',') {
                    break;
                }
                chars.next();
            }
            out.push_str("<path>");
            prev = Some('>');
            continue;
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// Turns `uv pip install` status lines into progress between 0.10 and 0.90.
#[derive(Debug, Default)]
pub(crate) struct InstallProgress {
    downloads_started: u32,
    downloads_done: u32,
    last: f32,
}

/// Progress once resolution has finished.
const RESOLVED: f32 = 0.40;
/// Progress once every distribution is downloaded and built.
const PREPARED: f32 = 0.75;
/// Progress once everything is installed into the venv.
const INSTALLED: f32 = 0.90;

impl InstallProgress {
    /// The progress a status line reports, if it reports any.
    pub(crate) fn line(&mut self, raw: &str) -> Option<(f32, String)> {
        let line = raw.trim();
        let (fraction, message) =
            if line.starts_with("Using Python") || line.starts_with("Using CPython") {
                (0.10, "resolving dependencies".to_string())
            } else if line.starts_with("Resolved ") {
                (RESOLVED, summary(line))
            } else if let Some(rest) = line.strip_prefix("Downloading ") {
                self.downloads_started += 1;
                (self.download_fraction(), format!("downloading {rest}"))
            } else if let Some(rest) = line.strip_prefix("Downloaded ") {
                self.downloads_done += 1;
                (self.download_fraction(), format!("downloaded {rest}"))
            } else if let Some(rest) = line.strip_prefix("Building ") {
                (self.last, format!("building {rest}"))
            } else if let Some(rest) = line.strip_prefix("Built ") {
                (self.last, format!("built {rest}"))
            } else if line.starts_with("Prepared ") {
                (PREPARED, summary(line))
            } else if line.starts_with("Installed ") || line.starts_with("Audited ") {
                (INSTALLED, summary(line))
            } else {
                return None;
            };
        self.last = self.last.max(fraction);
        Some((self.last, message))
    }

    fn download_fraction(&self) -> f32 {
        let started = self.downloads_started.max(1) as f32;
        let done = self.downloads_done.min(self.downloads_started) as f32;
        RESOLVED + (PREPARED - RESOLVED) * (done / started) * 0.95
    }
}

/// `Resolved 92 packages in 513ms` → `resolved 92 packages`.
fn summary(line: &str) -> String {
    let head = line.rsplit_once(" in ").map_or(line, |(h, _)| h);
    let mut chars = head.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    // Captured from uv 0.13.9 with stderr not a terminal.
    const UNKNOWN: &str = "Using Python 3.11.7 environment at: /srv/westtek/envs/0193/venv
error: No solution found when resolving dependencies
  cause: Because westtek-no-such-package-xyz was not found in the package registry and you require westtek-no-such-package-xyz, we can conclude that your requirements are unsatisfiable.";

    const PINS: &str = "Using Python 3.11.7 environment at: /srv/westtek/envs/0193/venv
error: No solution found when resolving dependencies
  cause: Because you require numpy==1.26.4 and numpy==2.0.0, we can conclude that your requirements are unsatisfiable.";

    const TRANSITIVE: &str = "Using Python 3.11.7 environment at: /srv/westtek/envs/0193/venv
error: No solution found when resolving dependencies
  cause: Because pandas==2.2.0 depends on numpy{python_full_version < '3.12'}>=1.23.2,<2 and you require pandas==2.2.0, we can conclude that you require numpy>=1.23.2,<2.
         And because you require numpy<1.20, we can conclude that your requirements are unsatisfiable.";

    const NO_PYTHON: &str = "error: No interpreter found for Python 3.11.9 in managed installations or search path

hint: A managed Python download is available for Python 3.11.9, but Python downloads are set to 'never'";

    const SHIM: &str = "error: Failed to inspect Python interpreter from search path at `/root/.pyenv/shims/python3.12`
  cause: Querying Python at `/root/.pyenv/shims/python3.12` failed with exit status exit status: 127";

    // The same report as drawn by older uv releases.
    const OLD_STYLE: &str = "  × No solution found when resolving dependencies:
  ╰─▶ Because there is no version of numpy==0.0.1 and you require numpy==0.0.1, we can conclude that
      your requirements are unsatisfiable.";

    fn code_and_message(e: DomainError) -> (&'static str, String) {
        match e {
            DomainError::Upstream { code, message } => (code, message),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_unknown_package_is_named() {
        let f = classify(Step::Install, &lines(UNKNOWN));
        let requested = vec!["westtek-no-such-package-xyz".to_string()];
        let (code, message) = code_and_message(f.into_error("3.11", &[], &requested));
        assert_eq!(code, "package_not_found");
        assert_eq!(
            message,
            "package 'westtek-no-such-package-xyz' was not found in the package index"
        );
    }

    #[test]
    fn a_missing_dependency_of_a_requested_package_carries_uvs_reason() {
        let stderr = lines(
            "error: No solution found when resolving dependencies\n  cause: Because foo==1.0 depends on ghost-pkg and ghost-pkg was not found in the package registry, we can conclude that foo==1.0 cannot be used.",
        );
        let (code, message) = code_and_message(classify(Step::Install, &stderr).into_error(
            "3.11",
            &[],
            &["foo".into()],
        ));
        assert_eq!(code, "package_not_found");
        assert!(
            message.starts_with("package 'ghost-pkg' was not found"),
            "{message}"
        );
        assert!(
            message.contains("Because foo==1.0 depends on ghost-pkg"),
            "{message}"
        );
    }

    #[test]
    fn conflicting_pins_are_explained_without_paths() {
        let (code, message) =
            code_and_message(classify(Step::Install, &lines(PINS)).into_error("3.11", &[], &[]));
        assert_eq!(code, "dependency_conflict");
        assert_eq!(
            message,
            "the requested packages cannot be installed together:\nBecause you require numpy==1.26.4 and numpy==2.0.0, we can conclude that your requirements are unsatisfiable."
        );
        assert!(!message.contains("/srv"));
    }

    #[test]
    fn a_transitive_conflict_keeps_every_explanation_line() {
        let f = classify(Step::Install, &lines(TRANSITIVE));
        let Failure::Conflict { explanation } = f else {
            panic!("not a conflict: {f:?}")
        };
        assert_eq!(explanation.len(), 2);
        assert!(explanation[0].starts_with("Because pandas==2.2.0 depends on numpy"));
        assert_eq!(
            explanation[1],
            "And because you require numpy<1.20, we can conclude that your requirements are unsatisfiable."
        );
    }

    #[test]
    fn the_old_report_style_is_understood() {
        let f = classify(Step::Install, &lines(OLD_STYLE));
        assert_eq!(
            f,
            Failure::Conflict {
                explanation: vec![
                    "Because there is no version of numpy==0.0.1 and you require numpy==0.0.1, we can conclude that"
                        .into(),
                    "your requirements are unsatisfiable.".into()
                ]
            }
        );
    }

    #[test]
    fn a_missing_interpreter_lists_what_is_available() {
        for fixture in [NO_PYTHON, SHIM] {
            let f = classify(Step::Venv, &lines(fixture));
            assert_eq!(f, Failure::PythonUnavailable);
            let available = vec!["3.11.2".to_string(), "3.11.7".to_string()];
            let (code, message) = code_and_message(f.into_error("3.12", &available, &[]));
            assert_eq!(code, "python_unavailable");
            assert_eq!(
                message,
                "Python 3.12 is not available on this host; available: 3.11.2, 3.11.7"
            );
        }
    }

    #[test]
    fn anything_else_reports_the_last_lines_without_paths() {
        let stderr = lines(
            "Using Python 3.11.7 environment at: /srv/envs/x/venv\nResolved 3 packages in 10ms\nerror: Failed to install: foo-1.0-py3-none-any.whl (foo==1.0)\n  Caused by: failed to create directory `/srv/envs/x/venv/lib/python3.11/site-packages/foo`: No space left on device (os error 28)",
        );
        let (code, message) =
            code_and_message(classify(Step::Install, &stderr).into_error("3.11", &[], &[]));
        assert_eq!(code, "install_failed");
        assert!(
            message.starts_with("installing the packages failed:\n"),
            "{message}"
        );
        assert!(message.contains("No space left on device"));
        assert!(!message.contains("/srv"), "{message}");
    }

    #[test]
    fn paths_are_scrubbed_but_specifiers_and_urls_kept() {
        assert_eq!(
            scrub_paths("at `/root/.pyenv/shims/python3.12` failed (see /tmp/x) numpy>=1.2,<2 https://pypi.org/simple/"),
            "at `<path>` failed (see <path>) numpy>=1.2,<2 https://pypi.org/simple/"
        );
    }

    #[test]
    fn names_compare_after_normalisation() {
        assert_eq!(normalize("Westtek_No..Such"), "westtek-no-such");
    }

    #[test]
    fn install_progress_follows_uvs_phases_and_never_goes_back() {
        // Captured from uv 0.13.9 installing jupyterlab, ipykernel and numpy
        // with a cold cache (the ` + name==version` lines omitted but one).
        let out = "Using Python 3.11.7 environment at: v7
Resolved 92 packages in 1.29s
Downloading jupyterlab (16.5MiB)
Downloading babel (9.7MiB)
 Downloaded babel
Downloading numpy (16.1MiB)
 Downloaded numpy
 Downloaded jupyterlab
Prepared 92 packages in 742ms
Installed 92 packages in 249ms
 + anyio==4.16.0";
        let mut p = InstallProgress::default();
        let updates: Vec<(f32, String)> = out.lines().filter_map(|l| p.line(l)).collect();
        let messages: Vec<&str> = updates.iter().map(|(_, m)| m.as_str()).collect();
        assert_eq!(
            messages,
            [
                "resolving dependencies",
                "resolved 92 packages",
                "downloading jupyterlab (16.5MiB)",
                "downloading babel (9.7MiB)",
                "downloaded babel",
                "downloading numpy (16.1MiB)",
                "downloaded numpy",
                "downloaded jupyterlab",
                "prepared 92 packages",
                "installed 92 packages",
            ]
        );
        let fractions: Vec<f32> = updates.iter().map(|(f, _)| *f).collect();
        assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "{fractions:?}");
        assert_eq!(fractions[1], RESOLVED);
        assert!(fractions[7] < PREPARED && fractions[7] > RESOLVED);
        assert_eq!(*fractions.last().unwrap(), INSTALLED);
    }

    #[test]
    fn a_warm_install_goes_straight_from_resolved_to_installed() {
        let mut p = InstallProgress::default();
        assert_eq!(
            p.line("Resolved 1 package in 3ms"),
            Some((RESOLVED, "resolved 1 package".into()))
        );
        assert_eq!(
            p.line("Audited 1 package in 0.5ms"),
            Some((INSTALLED, "audited 1 package".into()))
        );
        assert_eq!(p.line(" + numpy==2.4.6"), None);
    }
}
