//! agent-actions: the action groups of the platform's two Bedrock agents
//! (Drift Analyzer, Knowledge Transfer), served by one Lambda.
//!
//! Bedrock calls an action group's Lambda with an event
//! ([`event::ActionEvent`]) in one of two shapes (OpenAPI: `apiPath`,
//! `httpMethod`, `parameters`, `requestBody`; function details: `function`,
//! `parameters`) and expects a reply of the same shape, `messageVersion`
//! 1.0. [`handle`] maps an event onto a call on the platform's tool ports,
//! [`westtek_assist::DriftTools`] (implemented by the drift service) and
//! [`KnowledgeTools`] (implemented over the knowledge documents by
//! [`DocumentKnowledgeTools`]), scoped to the lab and environment the
//! platform put in the agent session ([`scope`]), and maps the result or
//! the error onto the reply ([`handler`] has the error table).
//!
//! The Lambda binary (`agent-actions`, on the official `lambda_runtime`)
//! is a thin [`Forwarder`]: the services serve [`router`] and run the tools
//! themselves, the same code as their HTTP API and local agents; [`remote`]
//! says why and how, and [`gate`] who may record a recommendation.
//!
//! What the CDK app attaches to the agents: the OpenAPI schemas
//! `schemas/drift-analyzer.json` and `schemas/knowledge-transfer.json`
//! (`apiSchema`), or the same actions as function details
//! `schemas/*.functions.json` (`functionSchema.functions`: the action names
//! of [`catalog`] as function names, the same parameters). Tests run every
//! operation and function of both through the handler.
//!
//! Settings of the Lambda (environment): `WESTTEK_AGENT_ACTIONS_DRIFT_URL`,
//! `WESTTEK_AGENT_ACTIONS_KNOWLEDGE_URL` (the services' internal base URLs;
//! at least one), `WESTTEK_AGENT_ACTIONS_TOKEN` (shared with the services),
//! `WESTTEK_AGENT_ACTIONS_TIMEOUT_SECS` (default 25).

pub mod catalog;
pub mod event;
pub mod gate;
pub mod handler;
pub mod knowledge;
pub mod params;
pub mod remote;
pub mod scope;

pub use catalog::{Action, AgentGroup, Operation, OPERATIONS};
pub use event::{ActionEvent, ActionFailure, EventError, Invocation, Outcome, ResponseState};
pub use gate::{Memberships, RecordingGate, StoreMemberships};
pub use handler::{handle, Tools};
pub use knowledge::{
    CitedLine, DocumentKnowledgeTools, Excerpt, KnowledgeAction, KnowledgeScope, KnowledgeTools,
};
pub use remote::{router, Forwarder, ForwarderError, Targets, PATH};
pub use scope::SessionScope;
