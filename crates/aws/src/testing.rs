//! A throwaway `moto_server` (AWS services emulated over real HTTP) per
//! test: a free port, killed when dropped.
//!
//! Policy: a missing moto fails the test with a message saying how to
//! install it (the project's test command does); it never turns into a
//! silent pass. Test support only (feature `testing`).
//!
//! Start one per test (about a second): moto keeps all state in memory, so
//! separate servers keep tests independent when they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
}

/// `moto_server`: `WESTTEK_MOTO_SERVER`, else the test command's venv.
fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("WESTTEK_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("WESTTEK_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/westtek/tools")))
        .unwrap_or_default();
    tools.join("moto-venv/bin/moto_server")
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bin = moto_server();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "could not start {} ({e}); the AWS adapter tests need moto's server \
                     (scripts/test installs it: uv venv $WESTTEK_TOOLS_DIR/moto-venv && \
                     uv pip install 'moto[server]')",
                    bin.display()
                )
            });
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The SDK configuration for this server (static test credentials,
    /// `us-east-1`). S3 clients also need `force_path_style(true)`.
    pub fn config(&self) -> aws_config::SdkConfig {
        crate::config_for_endpoint(&self.endpoint(), "test", "test")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
