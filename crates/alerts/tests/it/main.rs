//! Integration tests of alert delivery against real servers, no mocks of
//! HTTP or SMTP: axum receivers on 127.0.0.1:0 that verify the signature and
//! record what they got (or fail, or hang, on purpose), and Python's
//! `aiosmtpd` writing to a Maildir (installed into a private venv on first
//! use, see `smtpd.rs`). Every test starts its own servers on fresh ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod email;
mod routing;
mod smtpd;
mod support;
mod webhooks;
