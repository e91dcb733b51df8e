//! End-to-end tests across the services, through a real `westtek` platform
//! on port 0 (real SQLite, real uv, real Jupyter).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod drift;
mod isolation;
mod isolation_auth;
mod jupyter;
mod knowledge;
mod lifecycle;
mod snapshots;

/// For the SMTP harness shared with the alerts crate's tests.
mod support {
    /// A port nothing listens on (yet).
    pub fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }
}

/// A real SMTP server (Python's aiosmtpd) writing a maildir.
#[path = "../../crates/alerts/tests/it/smtpd.rs"]
#[allow(dead_code)]
mod smtpd;
