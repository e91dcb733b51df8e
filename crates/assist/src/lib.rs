//! Agents that answer researchers' questions about their environments, with
//! citations: the agent port, the Drift Analyzer's tools, and the Drift
//! Analyzer's local engine.
//!
//! - [`port`]: what every agent is — a request in, a stream of
//!   [`AgentChunk`]s out (answer text, citations, tool trace,
//!   recommendations), shaped after Bedrock's `InvokeAgent` response so a
//!   Bedrock adapter can implement the same [`Agent`] trait and the portal
//!   can render both the same way (the chunks are SSE-ready JSON).
//! - [`session`]: a bounded in-memory store of chat sessions, so a follow-up
//!   question can say "it" for the package the previous answer was about.
//! - [`drift_tools`]: the seed's Drift Analyzer action groups as a port
//!   ([`DriftTools`]); the service implements it over its database.
//! - [`changelog`]: what an installed package's own metadata says about it,
//!   read offline from its `*.dist-info/METADATA`.
//! - [`drift_analyzer`]: [`LocalDriftAnalyzer`], a deterministic rule-based
//!   Drift Analyzer over [`DriftTools`] (no model, no network).
//!
//! Policy: every sentence that states a fact carries a citation to where the
//! fact came from (drift event, snapshot, package metadata, notebook,
//! configuration); failures reach the caller as a stable code and a generic
//! message, never internal error text.

pub mod changelog;
pub mod compose;
pub mod drift_analyzer;
pub mod drift_tools;
mod error;
pub mod port;
pub mod session;

pub use changelog::{changelog_for, read_package_metadata, PackageChange, PackageChangelog};
pub use compose::Composer;
pub use drift_analyzer::LocalDriftAnalyzer;
pub use drift_tools::{
    DriftAction, DriftEventView, DriftTools, EnvironmentConfigView, NotebookView, Recommendation,
    RecommendationKind, SnapshotSummary, ToolError, ToolScope,
};
pub use error::{AssistError, Result};
pub use port::{
    Agent, AgentChunk, AgentKind, AgentRequest, CallerRef, ChatRequest, SourceKind, SourceRef,
};
pub use session::{SessionKey, SessionState, SessionStore, Turn};
