//! Errors an agent reports before it starts streaming. Failures while
//! streaming arrive as [`crate::AgentChunk::Error`] instead.

use crate::port::AgentKind;

/// Why an agent refused a request.
#[derive(Debug, thiserror::Error)]
pub enum AssistError {
    /// The request was sent to an agent of another kind.
    #[error("this agent is the {served:?}, not the {requested:?}")]
    WrongAgent {
        /// The kind this agent is.
        served: AgentKind,
        /// The kind the request named.
        requested: AgentKind,
    },
    /// The session id is not 2–100 characters of letters, digits, `.`, `_`,
    /// `:` or `-` (InvokeAgent's rule, kept so sessions port to Bedrock).
    #[error("session_id must be 2-100 letters, digits, '.', '_', ':' or '-'")]
    InvalidSessionId,
    /// The question is longer than the agent accepts.
    #[error("input_text is longer than {max} characters")]
    InputTooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// The question is empty.
    #[error("input_text is empty")]
    EmptyInput,
    /// Neither the request nor its session names an environment.
    #[error("the request names no environment and its session has none")]
    MissingEnvironment,
}

impl AssistError {
    /// A stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            AssistError::WrongAgent { .. } => "wrong_agent",
            AssistError::InvalidSessionId => "invalid_session_id",
            AssistError::InputTooLong { .. } => "input_too_long",
            AssistError::EmptyInput => "empty_input",
            AssistError::MissingEnvironment => "missing_environment",
        }
    }
}

/// Result with [`AssistError`].
pub type Result<T, E = AssistError> = std::result::Result<T, E>;
