//! A real SMTP server for the email tests: Python's `aiosmtpd` with its
//! `Mailbox` handler, which writes every message it accepts into a Maildir.
//!
//! `aiosmtpd` lives in a private venv, `$WESTTEK_TOOLS_DIR/smtp-venv`
//! (default `~/.cache/westtek/tools/smtp-venv`; `WESTTEK_SMTPD_PYTHON`
//! points at another interpreter that has it). The first test that needs it
//! creates the venv with `uv venv` and installs it with `uv pip install`
//! (`uv` from `WESTTEK_UV`, `PATH`, or `$WESTTEK_TOOLS_DIR/bin/uv`;
//! `UV_PYTHON_DOWNLOADS=never`), holding a file lock so parallel tests and
//! test binaries never install at once; later runs find it in place.
//! Every server gets its own port and Maildir, and is killed on drop.

use std::fs::{self, File};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

use crate::support::closed_port;

fn tools_dir() -> PathBuf {
    match std::env::var_os("WESTTEK_TOOLS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is not set"))
            .join(".cache/westtek/tools"),
    }
}

fn uv() -> PathBuf {
    if let Some(uv) = std::env::var_os("WESTTEK_UV") {
        return uv.into();
    }
    let on_path = Command::new("uv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        "uv".into()
    } else {
        tools_dir().join("bin/uv")
    }
}

fn has_aiosmtpd(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Python with `aiosmtpd` importable, installed on first use.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("WESTTEK_SMTPD_PYTHON") {
                return p.into();
            }
            let tools = tools_dir();
            let venv = tools.join("smtp-venv");
            let python = venv.join("bin/python");
            if has_aiosmtpd(&python) {
                return python;
            }
            fs::create_dir_all(&tools).unwrap();
            // Another test binary may be installing right now: wait for it,
            // then look again before doing anything.
            let lock = File::create(tools.join("smtp-venv.lock")).unwrap();
            lock.lock().unwrap();
            if !has_aiosmtpd(&python) {
                let uv = uv();
                if !python.exists() {
                    run(Command::new(&uv)
                        .args(["venv", "--clear", "--quiet"])
                        .arg(&venv)
                        .env("UV_PYTHON_DOWNLOADS", "never")
                        .env_remove("VIRTUAL_ENV"));
                }
                run(Command::new(&uv)
                    .args(["pip", "install", "--quiet", "--python"])
                    .arg(&python)
                    .arg("aiosmtpd")
                    .env("UV_PYTHON_DOWNLOADS", "never")
                    .env_remove("VIRTUAL_ENV"));
                assert!(
                    has_aiosmtpd(&python),
                    "aiosmtpd still not importable after installing it"
                );
            }
            drop(lock);
            python
        })
        .clone()
}

/// A running `aiosmtpd` writing into its own Maildir.
pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
    _dir: TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// Starts a server on a free port and waits until it accepts
    /// connections. Blocking: call it before starting anything that needs
    /// the runtime, or from `spawn_blocking`.
    pub fn start() -> SmtpServer {
        let python = python();
        let mut last = String::new();
        // The free port is only free until someone else takes it: retry.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("westtek-smtpd-")
                .tempdir()
                .unwrap();
            let maildir = dir.path().join("maildir");
            let port = closed_port();
            let log = File::create(dir.path().join("smtpd.log")).unwrap();
            let mut child = Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return SmtpServer {
                        port,
                        maildir,
                        child,
                        _dir: dir,
                    };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    last = format!(
                        "aiosmtpd exited ({status}): {}",
                        fs::read_to_string(dir.path().join("smtpd.log")).unwrap_or_default()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = "aiosmtpd did not accept connections within 60 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("cannot start aiosmtpd: {last}");
    }

    /// The messages delivered so far, raw, in no particular order.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| fs::read_to_string(e.path()).unwrap())
            .collect()
    }

    /// Waits up to `within` until at least `n` messages arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{} message(s) arrived, expected {n}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A received message: unfolded headers and the decoded text body.
#[derive(Debug)]
pub struct Mail {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Mail {
    pub fn parse(raw: &str) -> Mail {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = headers.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut mail = Mail {
            headers,
            body: String::new(),
        };
        let encoding = mail
            .header("content-transfer-encoding")
            .to_ascii_lowercase();
        mail.body = match encoding.as_str() {
            "quoted-printable" => quoted_printable(body),
            "base64" => {
                let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap();
                String::from_utf8(bytes).unwrap()
            }
            _ => body.to_string(),
        };
        mail
    }

    /// The first header of that name ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

fn quoted_printable(s: &str) -> String {
    let s = s.replace("=\n", "");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
