//! From an action-group event to a call on the tool ports and back to the
//! reply Bedrock expects.
//!
//! [`handle`] reads the event ([`ActionEvent::parse`]), resolves the action
//! ([`crate::catalog`]), takes the scope from the session
//! ([`SessionScope`]), decodes the arguments ([`Params`]), calls
//! [`DriftTools`] or [`KnowledgeTools`], and maps the result or error onto
//! the reply ([`reply`]). It never panics; every error becomes a reply
//! with a message that says what failed and what to do:
//!
//! | failure | `responseState` | status |
//! |---|---|---|
//! | missing or invalid argument | REPROMPT | 400 |
//! | a `lab_id` argument naming another lab | REPROMPT | 403 |
//! | environment or snapshot not found in the lab (or another lab's) | REPROMPT | 404 |
//! | the actor may not (not a member of the lab, see [`crate::gate`]) | REPROMPT | 403 |
//! | unknown `apiPath` or `function` | FAILURE | 404 |
//! | no `lab_id` in the session, or a malformed one | FAILURE | 403 |
//! | an action of the other agent than the session's `agent` | FAILURE | 403 |
//! | the agent's tools are not served here | FAILURE | 501 |
//! | the tool failed (database, storage) | FAILURE | 500 (detail logged, not sent) |

use crate::catalog::{resolve, Action};
use crate::event::{reply, ActionEvent, ActionFailure, EventError, Outcome};
use crate::knowledge::{KnowledgeAction, KnowledgeScope, KnowledgeTools};
use crate::params::Params;
use crate::scope::SessionScope;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use westtek_assist::{DriftAction, DriftTools, ToolError, ToolScope};
use westtek_domain::{EnvironmentId, LabId, SnapshotId};

/// The tools behind the actions. An agent whose tools are `None` is not
/// served by this handler (its actions answer FAILURE).
#[derive(Clone, Default)]
pub struct Tools {
    /// The Drift Analyzer's (the drift service's `ServiceTools`).
    pub drift: Option<Arc<dyn DriftTools>>,
    /// The Knowledge Transfer agent's.
    pub knowledge: Option<Arc<dyn KnowledgeTools>>,
}

/// The reply to one raw event.
///
/// # Errors
/// [`EventError`] when `event` is not an action-group event (nothing to
/// reply to); every other failure is a reply.
pub async fn handle(tools: &Tools, event: &Value) -> Result<Value, EventError> {
    let event = ActionEvent::parse(event)?;
    let outcome = run(tools, &event).await;
    match &outcome {
        Outcome::Ok(_) => tracing::info!(
            agent = %event.agent.name, action_group = %event.action_group,
            operation = %event.operation(), "action done"
        ),
        Outcome::Err(f) => tracing::warn!(
            agent = %event.agent.name, action_group = %event.action_group,
            operation = %event.operation(), code = f.code, message = %f.message, "action refused"
        ),
    }
    Ok(reply(&event, &outcome))
}

/// The outcome of one well-formed event.
pub async fn run(tools: &Tools, event: &ActionEvent) -> Outcome {
    match call(tools, event).await {
        Ok(v) => Outcome::Ok(v),
        Err(f) => Outcome::Err(f),
    }
}

async fn call(tools: &Tools, event: &ActionEvent) -> Result<Value, ActionFailure> {
    let action =
        resolve(&event.invocation).map_err(|m| ActionFailure::failure(404, "unknown_action", m))?;
    let scope = SessionScope::of(event)?;
    if scope.agent.is_some_and(|a| a != action.group()) {
        return Err(ActionFailure::failure(
            403,
            "wrong_agent",
            format!("{} is not an action of the agent this session was opened for; attach each action group to its own agent", action.name()),
        ));
    }
    let params = Params::of(event)?;
    if let Some(lab) = params.opt("lab_id") {
        if LabId::parse(lab).ok() != Some(scope.lab_id) {
            return Err(ActionFailure::reprompt(
                403,
                "other_lab",
                "this conversation is scoped to the caller's lab by the platform; another lab cannot be read or changed (leave `lab_id` out)",
            ));
        }
    }
    match action {
        Action::Drift(a) => {
            let tools = tools
                .drift
                .as_ref()
                .ok_or_else(|| not_served("Drift Analyzer"))?;
            drift(tools.as_ref(), a, &scope, &params).await
        }
        Action::Knowledge(a) => {
            let tools = tools
                .knowledge
                .as_ref()
                .ok_or_else(|| not_served("Knowledge Transfer"))?;
            knowledge(tools.as_ref(), a, &scope, &params).await
        }
    }
}

fn not_served(agent: &str) -> ActionFailure {
    ActionFailure::failure(
        501,
        "not_served",
        format!("the {agent} actions are not served by this endpoint; attach the action group to the agent it belongs to"),
    )
}

fn json<T: Serialize>(v: T) -> Result<Value, ActionFailure> {
    serde_json::to_value(v).map_err(|e| {
        tracing::error!(error = %e, "could not encode an action's result");
        ActionFailure::failure(
            500,
            "tool_failed",
            "the action's result could not be encoded; try again later",
        )
    })
}

/// A tool error as a reply; internal detail is logged, never sent.
fn tool_failure(e: ToolError) -> ActionFailure {
    match e {
        ToolError::NotFound(what) => ActionFailure::reprompt(
            404,
            "not_found",
            format!("{what} not found in the caller's lab; check the id (list the environment's snapshots with the configuration action)"),
        ),
        ToolError::Forbidden => ActionFailure::reprompt(
            403,
            "forbidden",
            "the user this conversation is for may not do this (only a member of the lab can record a recommendation); say so instead",
        ),
        ToolError::Invalid(m) => ActionFailure::reprompt(400, "invalid_argument", m),
        ToolError::Failed(source) => {
            tracing::error!(error = %source, "tool failed");
            ActionFailure::failure(500, "tool_failed", "the platform could not complete the action; try again later")
        }
    }
}

/// The environment an action is about: the argument, else the session's.
fn environment(scope: &SessionScope, params: &Params) -> Result<EnvironmentId, ActionFailure> {
    params
        .opt_id::<EnvironmentId>("environment_id")?
        .or(scope.environment_id)
        .ok_or_else(|| {
            ActionFailure::reprompt(
                400,
                "invalid_argument",
                "`environment_id` is required: this conversation is not about one environment",
            )
        })
}

async fn drift(
    t: &dyn DriftTools,
    action: DriftAction,
    session: &SessionScope,
    p: &Params,
) -> Result<Value, ActionFailure> {
    let scope = ToolScope {
        lab_id: session.lab_id,
        actor: session.user_id,
    };
    let s = &scope;
    match action {
        DriftAction::GetDriftEvents => {
            let env = environment(session, p)?;
            let (since, until) = (p.opt_time("since")?, p.opt_time("until")?);
            json(
                t.get_drift_events(s, env, since, until)
                    .await
                    .map_err(tool_failure)?,
            )
        }
        DriftAction::GetPackageChangelog => {
            let env = environment(session, p)?;
            let package = p.req("package")?;
            let r = t
                .get_package_changelog(s, env, package, p.opt("old_version"), p.opt("new_version"))
                .await;
            json(r.map_err(tool_failure)?)
        }
        DriftAction::GetEnvironmentNotebooks => {
            let env = environment(session, p)?;
            json(
                t.get_environment_notebooks(s, env)
                    .await
                    .map_err(tool_failure)?,
            )
        }
        DriftAction::GetSnapshotComparison => {
            let before: SnapshotId = p.req_id("before")?;
            let after: SnapshotId = p.req_id("after")?;
            json(
                t.get_snapshot_comparison(s, before, after)
                    .await
                    .map_err(tool_failure)?,
            )
        }
        DriftAction::GetEnvironmentConfig => {
            let env = environment(session, p)?;
            json(
                t.get_environment_config(s, env)
                    .await
                    .map_err(tool_failure)?,
            )
        }
        DriftAction::CreateSnapshotRecommendation => {
            let env = environment(session, p)?;
            let reason = p.req("reason")?;
            json(
                t.create_snapshot_recommendation(s, env, reason)
                    .await
                    .map_err(tool_failure)?,
            )
        }
        DriftAction::CreateRollbackRecommendation => {
            let env = environment(session, p)?;
            let target: SnapshotId = p.req_id("target_snapshot_id")?;
            let reason = p
                .opt("reason")
                .unwrap_or("Restore the environment to a known-good snapshot.");
            json(
                t.create_rollback_recommendation(s, env, target, reason)
                    .await
                    .map_err(tool_failure)?,
            )
        }
    }
}

async fn knowledge(
    t: &dyn KnowledgeTools,
    action: KnowledgeAction,
    session: &SessionScope,
    p: &Params,
) -> Result<Value, ActionFailure> {
    let environment_id = session.environment_id.ok_or_else(|| {
        ActionFailure::failure(
            403,
            "no_scope",
            "the agent session has no `environment_id` attribute: the Knowledge Transfer agent answers about the environment the platform opened the chat for",
        )
    })?;
    if let Some(asked) = p.opt_id::<EnvironmentId>("environment_id")? {
        if asked != environment_id {
            return Err(tool_failure(ToolError::NotFound("environment".into())));
        }
    }
    let scope = KnowledgeScope {
        lab_id: session.lab_id,
        environment_id,
        actor: session.user_id,
    };
    let s = &scope;
    match action {
        KnowledgeAction::GetEnvironmentDetails => {
            json(t.get_environment_details(s).await.map_err(tool_failure)?)
        }
        KnowledgeAction::GetSnapshotHistory => {
            json(t.get_snapshot_history(s).await.map_err(tool_failure)?)
        }
        KnowledgeAction::GetDriftHistory => {
            let (since, until) = (p.opt_time("since")?, p.opt_time("until")?);
            json(
                t.get_drift_history(s, since, until)
                    .await
                    .map_err(tool_failure)?,
            )
        }
        KnowledgeAction::GetResearcherProfile => {
            json(t.get_researcher_profile(s).await.map_err(tool_failure)?)
        }
        KnowledgeAction::GetPackageInstallHistory => {
            let package = p.req("package")?;
            json(
                t.get_package_install_history(s, package)
                    .await
                    .map_err(tool_failure)?,
            )
        }
        KnowledgeAction::GetTransferPackage => {
            json(t.get_transfer_package(s).await.map_err(tool_failure)?)
        }
        KnowledgeAction::GetOnboardingChecklist => {
            json(t.get_onboarding_checklist(s).await.map_err(tool_failure)?)
        }
    }
}
