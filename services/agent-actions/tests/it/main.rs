//! The action-group handler on real Bedrock event JSON (both action-group
//! kinds), over in-memory tool ports and a knowledge folder; the OpenAPI
//! schemas against the handler; the Lambda's forwarder against the
//! services' route on a loopback port; the binary under a stand-in Lambda
//! Runtime API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod drift;
mod fakes;
mod knowledge;
mod remote;
mod runtime;
mod schemas;
mod shapes;
