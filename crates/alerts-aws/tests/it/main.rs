//! Integration tests of the SES and SNS notifiers over the wire, on a
//! throwaway `moto_server` per test: alerts routed by the real
//! `AlertRouter`, and what moto recorded as sent read back from its state
//! (`GET /moto-api/data.json`: SES's `RawMessage`s, SNS's `SMS`es and each
//! `Topic`'s `sent_notifications`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ses;
mod sns;
mod support;

/// The alerts crate's fixtures (alerts, retry policies, dead-letter sink).
#[path = "../../../alerts/tests/it/support.rs"]
#[allow(dead_code)]
mod alerts_support;
/// Its MIME reader and SMTP harness (the SES message is compared with the
/// SMTP one).
#[path = "../../../alerts/tests/it/smtpd.rs"]
#[allow(dead_code)]
mod smtpd;
