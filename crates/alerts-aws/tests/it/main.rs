//! Integration tests of the SES and SNS notifiers over the wire, on a
//! throwaway `moto_server` per test: alerts routed by the real
//! `AlertRouter`, and what moto recorded as sent read back from its state
//! (`GET /moto-api/data.json`: SES's `RawMessage`s, SNS's `SMS`es and each
//! `Topic`'s `sent_notifications`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ses;
mod sns;
mod support;
