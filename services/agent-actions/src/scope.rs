//! Who an action runs for: the lab, environment and user the platform put
//! in the agent session.
//!
//! The Bedrock agent adapter (`westtek-knowledge-aws`) invokes an agent with
//! the caller's `lab_id`, `user_id` and, for an environment's chat,
//! `environment_id` as session attributes, after the platform authorised
//! the caller. Those are the only source of the lab: a `lab_id` the model
//! puts in an action's parameters is never used, and one that names
//! another lab is refused (the model cannot widen its own scope).
//!
//! `sessionAttributes` are read first; `promptSessionAttributes` (also set
//! by the invoker, for one turn) fill in what the session lacks, and a
//! lab that differs between the two is refused as misconfigured.

use crate::catalog::AgentGroup;
use crate::event::{ActionEvent, ActionFailure};
use std::collections::HashMap;
use westtek_domain::{EnvironmentId, LabId, UserId};

/// Session attribute naming the caller's lab (required).
pub const LAB_ID: &str = "lab_id";
/// Session attribute naming the environment the chat is about (optional).
pub const ENVIRONMENT_ID: &str = "environment_id";
/// Session attribute naming the user the agent acts for (optional).
pub const USER_ID: &str = "user_id";
/// Session attribute naming the agent the session was opened for
/// (`DriftAnalyzer`, `KnowledgeTransfer`, as the Bedrock adapter writes
/// `AgentKind`), optional: when present, an action of the other agent is
/// refused (an action group attached to the wrong agent).
pub const AGENT: &str = "agent";

/// The scope of one action, from the agent session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionScope {
    /// The caller's lab: every lookup is confined to it.
    pub lab_id: LabId,
    /// The environment the conversation is about, if any.
    pub environment_id: Option<EnvironmentId>,
    /// The user on whose behalf the agent acts, if known.
    pub user_id: Option<UserId>,
    /// The agent the platform opened the session for, if it said.
    pub agent: Option<AgentGroup>,
}

fn attribute<'a>(event: &'a ActionEvent, name: &str) -> Result<Option<&'a str>, ActionFailure> {
    let get =
        |m: &'a HashMap<String, String>| m.get(name).map(String::as_str).filter(|v| !v.is_empty());
    match (get(&event.session_attributes), get(&event.prompt_session_attributes)) {
        (Some(s), Some(p)) if s != p => Err(ActionFailure::failure(
            403,
            "scope_conflict",
            format!("the agent session's `{name}` differs between sessionAttributes and promptSessionAttributes; the platform must send one scope"),
        )),
        (Some(s), _) => Ok(Some(s)),
        (None, p) => Ok(p),
    }
}

impl SessionScope {
    /// The scope of `event`.
    ///
    /// # Errors
    /// A FAILURE reply (the model cannot fix the session): no `lab_id`, an
    /// attribute that is not a UUID, or a conflict between the session and
    /// prompt attributes.
    pub fn of(event: &ActionEvent) -> Result<Self, ActionFailure> {
        let bad = |name: &str| {
            ActionFailure::failure(
                403,
                "invalid_session",
                format!("the agent session's `{name}` attribute is not a UUID; the platform sets it when it invokes the agent"),
            )
        };
        let lab = attribute(event, LAB_ID)?.ok_or_else(|| {
            ActionFailure::failure(
                403,
                "no_scope",
                "the agent session has no `lab_id` attribute: invoke the agent through the platform, which scopes every session to the caller's lab",
            )
        })?;
        let lab_id = LabId::parse(lab).map_err(|_| bad(LAB_ID))?;
        let environment_id = attribute(event, ENVIRONMENT_ID)?
            .map(|e| EnvironmentId::parse(e).map_err(|_| bad(ENVIRONMENT_ID)))
            .transpose()?;
        let user_id = attribute(event, USER_ID)?
            .map(|u| UserId::parse(u).map_err(|_| bad(USER_ID)))
            .transpose()?;
        let agent = match attribute(event, AGENT)? {
            None => None,
            Some("DriftAnalyzer" | "drift_analyzer") => Some(AgentGroup::DriftAnalyzer),
            Some("KnowledgeTransfer" | "knowledge_transfer") => Some(AgentGroup::KnowledgeTransfer),
            Some(_) => {
                return Err(ActionFailure::failure(
                    403,
                    "invalid_session",
                    "the agent session's `agent` attribute names no agent of the platform (DriftAnalyzer, KnowledgeTransfer)",
                ))
            }
        };
        Ok(SessionScope {
            lab_id,
            environment_id,
            user_id,
            agent,
        })
    }
}
