//! The agent port: one request in, a stream of chunks out.
//!
//! Shaped after Bedrock Agents' `InvokeAgent` so the local engines and a
//! Bedrock adapter are interchangeable behind [`Agent`]:
//!
//! | here | InvokeAgent |
//! |---|---|
//! | [`AgentChunk::Text`] | `chunk.bytes` |
//! | [`AgentChunk::Citation`] | `chunk.attribution.citations[]` (`generatedResponsePart.textResponsePart.span` + `retrievedReferences[]`) |
//! | [`AgentChunk::ToolCall`] / [`AgentChunk::ToolResult`] | `trace` (orchestration: invocation input / observation) |
//! | [`AgentChunk::Recommendation`] | an action group's result surfaced to the client |
//! | [`AgentChunk::Done`] | end of the event stream |
//! | [`AgentChunk::Error`] | an exception event in the stream |
//!
//! Policy: the answer is the concatenation of every [`AgentChunk::Text`] in
//! order; a citation's `text_span` is a byte range (UTF-8, end exclusive) of
//! that answer and only refers to text already sent. A stream ends with
//! exactly one [`AgentChunk::Done`] or [`AgentChunk::Error`].

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use westtek_domain::{EnvironmentId, LabId, UserId};

use crate::drift_tools::Recommendation;
use crate::Result;

/// Which agent a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Explains drift and recommends what to do about it.
    DriftAnalyzer,
    /// Answers questions about an environment for a successor (issue 6).
    KnowledgeTransfer,
}

/// Who is asking, for session scoping and for the audit of what the agent
/// does on their behalf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerRef {
    /// The authenticated user.
    pub user_id: UserId,
    /// Their display name, for addressing them in answers.
    pub display_name: String,
}

/// One question to an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRequest {
    /// The agent to ask.
    pub agent: AgentKind,
    /// The conversation this question belongs to (InvokeAgent's `sessionId`:
    /// 2–100 of `[0-9a-zA-Z._:-]`). Follow-ups reuse it.
    pub session_id: String,
    /// The lab the caller acts in; every tool call is scoped to it.
    pub lab_id: LabId,
    /// The environment the question is about; a follow-up may leave it out
    /// and the session's environment is used.
    pub environment_id: Option<EnvironmentId>,
    /// The question, in the researcher's words.
    pub input_text: String,
    /// Who is asking.
    pub caller: CallerRef,
}

/// What a citation points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A recorded drift event (id: the event id).
    DriftEvent,
    /// A snapshot (id: the snapshot id).
    Snapshot,
    /// An installed package's metadata (id: the `METADATA` path, or
    /// `name==version` when no file was read).
    PackageMetadata,
    /// A notebook (id: its root-relative path).
    Notebook,
    /// Configuration: the environment's record (id: the environment id) or
    /// a configuration file (id: its root-relative path).
    Config,
    /// A knowledge-base document (id: its key).
    Document,
}

/// The source a citation points at (InvokeAgent's `retrievedReferences[]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub struct SourceRef {
    /// What kind of thing it is.
    pub kind: SourceKind,
    /// Its id or path (see [`SourceKind`]).
    pub id: String,
    /// A byte range within the source, when the claim rests on part of it.
    #[schema(value_type = Option<Vec<u64>>)]
    pub span: Option<(usize, usize)>,
    /// A short human title for the portal to show.
    pub title: String,
}

/// One piece of an agent's streamed answer. Serialised as
/// `{"type": "text", "text": "…"}` and so on: one SSE event each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentChunk {
    /// The next piece of the answer.
    Text {
        /// Appended to the answer as is.
        text: String,
    },
    /// Part of the answer rests on a source.
    Citation {
        /// Footnote number, from 1; every citation of the same source has
        /// the same number.
        index: usize,
        /// Where the claim comes from.
        source: SourceRef,
        /// Byte range (end exclusive) of the claim in the answer so far.
        #[schema(value_type = Vec<u64>)]
        text_span: (usize, usize),
    },
    /// The agent called a tool (trace).
    ToolCall {
        /// The tool's name (`GetDriftEvents`, …).
        name: String,
        /// Its arguments.
        #[schema(value_type = Object)]
        input: serde_json::Value,
    },
    /// What a tool returned, in a line (trace).
    ToolResult {
        /// The tool's name.
        name: String,
        /// A one-line summary of the result.
        summary: String,
    },
    /// The agent recorded a recommendation.
    Recommendation {
        /// What it recommends.
        recommendation: Recommendation,
    },
    /// The answer is complete.
    Done {
        /// The session to continue with a follow-up.
        session_id: String,
    },
    /// The answer could not be completed; nothing follows.
    Error {
        /// Stable machine-readable code.
        code: String,
        /// A message for the user (never internal error text).
        message: String,
    },
}

impl AgentChunk {
    /// The answer text of a sequence of chunks: every [`AgentChunk::Text`]
    /// concatenated in order.
    pub fn answer_text<'a>(chunks: impl IntoIterator<Item = &'a AgentChunk>) -> String {
        chunks
            .into_iter()
            .filter_map(|c| match c {
                AgentChunk::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// A question to an agent as the chat endpoints take it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The environment the question is about.
    pub environment_id: String,
    /// The question.
    pub message: String,
    /// Keep it for follow-up questions (generated when absent).
    pub session_id: Option<String>,
}

impl ChatRequest {
    /// The agent request for `agent`, in `lab_id`, about `environment_id`
    /// (already resolved and checked by the caller), asked by `caller`.
    pub fn into_agent_request(
        self,
        agent: AgentKind,
        lab_id: LabId,
        environment_id: EnvironmentId,
        caller: CallerRef,
    ) -> AgentRequest {
        AgentRequest {
            agent,
            session_id: self
                .session_id
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            lab_id,
            environment_id: Some(environment_id),
            input_text: self.message,
            caller,
        }
    }
}

/// Longest question accepted, in characters (InvokeAgent's `inputText` limit).
pub const MAX_INPUT_CHARS: usize = 25_000;

/// InvokeAgent's rule for session ids: 2–100 of `[0-9a-zA-Z._:-]`.
pub fn valid_session_id(id: &str) -> bool {
    (2..=100).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// The checks every agent makes before starting: the right agent, a valid
/// session id, a question that is neither empty nor longer than
/// [`MAX_INPUT_CHARS`].
///
/// # Errors
/// The [`crate::AssistError`] naming the first check that fails.
pub fn validate_request(req: &AgentRequest, served: AgentKind) -> Result<()> {
    if req.agent != served {
        return Err(crate::AssistError::WrongAgent {
            served,
            requested: req.agent,
        });
    }
    if !valid_session_id(&req.session_id) {
        return Err(crate::AssistError::InvalidSessionId);
    }
    if req.input_text.trim().is_empty() {
        return Err(crate::AssistError::EmptyInput);
    }
    if req.input_text.chars().count() > MAX_INPUT_CHARS {
        return Err(crate::AssistError::InputTooLong {
            max: MAX_INPUT_CHARS,
        });
    }
    Ok(())
}

/// An agent: the local engines and the Bedrock adapter implement this.
#[async_trait]
pub trait Agent: Send + Sync {
    /// Starts answering `req`. The stream does the work as it is polled;
    /// dropping it abandons the answer.
    ///
    /// # Errors
    /// [`crate::AssistError`] when the request is refused before any work
    /// starts (wrong agent, bad session id, empty or oversized question, no
    /// environment); failures while answering arrive as
    /// [`AgentChunk::Error`].
    async fn invoke(&self, req: AgentRequest) -> Result<BoxStream<'static, AgentChunk>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_serialise_as_tagged_sse_events() {
        let text = serde_json::to_value(AgentChunk::Text { text: "hi".into() }).unwrap();
        assert_eq!(text, serde_json::json!({"type": "text", "text": "hi"}));
        let citation = serde_json::to_value(AgentChunk::Citation {
            index: 1,
            source: SourceRef {
                kind: SourceKind::DriftEvent,
                id: "e1".into(),
                span: None,
                title: "Drift".into(),
            },
            text_span: (0, 2),
        })
        .unwrap();
        assert_eq!(citation["type"], "citation");
        assert_eq!(citation["source"]["kind"], "drift_event");
        assert_eq!(citation["text_span"], serde_json::json!([0, 2]));
        let done = serde_json::to_value(AgentChunk::Done {
            session_id: "s1".into(),
        })
        .unwrap();
        assert_eq!(
            done,
            serde_json::json!({"type": "done", "session_id": "s1"})
        );
    }

    #[test]
    fn session_ids_follow_invoke_agents_rule() {
        assert!(valid_session_id("chat-2025:01_a.b"));
        assert!(!valid_session_id("x"));
        assert!(!valid_session_id("has space"));
        assert!(!valid_session_id(&"a".repeat(101)));
    }

    #[test]
    fn the_answer_is_the_text_chunks_in_order() {
        let chunks = [
            AgentChunk::Text { text: "a ".into() },
            AgentChunk::ToolResult {
                name: "x".into(),
                summary: "y".into(),
            },
            AgentChunk::Text { text: "b".into() },
        ];
        assert_eq!(AgentChunk::answer_text(&chunks), "a b");
    }
}
