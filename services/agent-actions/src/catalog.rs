//! Every action the Lambda serves, with its OpenAPI path and method and its
//! function name (the seed's action name), for both agents.
//!
//! The OpenAPI schemas under `schemas/` (what the CDK app attaches to the
//! agents) declare exactly these operations; a test checks that every path
//! in them resolves here and that every action here is in a schema.

use crate::event::Invocation;
use crate::knowledge::KnowledgeAction;
use westtek_assist::DriftAction;

/// Which agent an action belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentGroup {
    /// The Drift Analyzer (served by the drift service's tools).
    DriftAnalyzer,
    /// The Knowledge Transfer agent (served over the knowledge documents).
    KnowledgeTransfer,
}

/// One action of either agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// A Drift Analyzer action.
    Drift(DriftAction),
    /// A Knowledge Transfer action.
    Knowledge(KnowledgeAction),
}

impl Action {
    /// The seed's name, which is also the function name in a
    /// function-details group and the OpenAPI `operationId`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Drift(a) => a.name(),
            Action::Knowledge(a) => a.name(),
        }
    }

    /// The agent it belongs to.
    pub fn group(self) -> AgentGroup {
        match self {
            Action::Drift(_) => AgentGroup::DriftAnalyzer,
            Action::Knowledge(_) => AgentGroup::KnowledgeTransfer,
        }
    }
}

/// An action as an OpenAPI operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The action.
    pub action: Action,
    /// Its `apiPath`.
    pub path: &'static str,
    /// Its `httpMethod`.
    pub method: &'static str,
}

const fn op(action: Action, method: &'static str, path: &'static str) -> Operation {
    Operation {
        action,
        path,
        method,
    }
}

/// Every operation, Drift Analyzer first, in the seed's order.
pub const OPERATIONS: [Operation; 14] = [
    op(
        Action::Drift(DriftAction::GetDriftEvents),
        "GET",
        "/drift-events",
    ),
    op(
        Action::Drift(DriftAction::GetPackageChangelog),
        "GET",
        "/package-changelog",
    ),
    op(
        Action::Drift(DriftAction::GetEnvironmentNotebooks),
        "GET",
        "/environment-notebooks",
    ),
    op(
        Action::Drift(DriftAction::GetSnapshotComparison),
        "GET",
        "/snapshot-comparison",
    ),
    op(
        Action::Drift(DriftAction::GetEnvironmentConfig),
        "GET",
        "/environment-config",
    ),
    op(
        Action::Drift(DriftAction::CreateSnapshotRecommendation),
        "POST",
        "/snapshot-recommendations",
    ),
    op(
        Action::Drift(DriftAction::CreateRollbackRecommendation),
        "POST",
        "/rollback-recommendations",
    ),
    op(
        Action::Knowledge(KnowledgeAction::GetEnvironmentDetails),
        "GET",
        "/environment-details",
    ),
    op(
        Action::Knowledge(KnowledgeAction::GetSnapshotHistory),
        "GET",
        "/snapshot-history",
    ),
    op(
        Action::Knowledge(KnowledgeAction::GetDriftHistory),
        "GET",
        "/drift-history",
    ),
    op(
        Action::Knowledge(KnowledgeAction::GetResearcherProfile),
        "GET",
        "/researcher-profile",
    ),
    op(
        Action::Knowledge(KnowledgeAction::GetPackageInstallHistory),
        "GET",
        "/package-install-history",
    ),
    op(
        Action::Knowledge(KnowledgeAction::GetTransferPackage),
        "GET",
        "/transfer-package",
    ),
    op(
        Action::Knowledge(KnowledgeAction::GetOnboardingChecklist),
        "GET",
        "/onboarding-checklist",
    ),
];

/// The action an invocation calls.
///
/// # Errors
/// A sentence for the reply: the operation is unknown, or the path is
/// known under another method.
pub fn resolve(invocation: &Invocation) -> Result<Action, String> {
    match invocation {
        Invocation::Function { name } => OPERATIONS
            .iter()
            .find(|o| o.action.name() == name)
            .map(|o| o.action)
            .ok_or_else(|| {
                format!(
                    "there is no action named {name:?}; the actions are {}",
                    names()
                )
            }),
        Invocation::Api { path, method } => {
            let same_path: Vec<&Operation> = OPERATIONS.iter().filter(|o| o.path == path).collect();
            if let Some(o) = same_path.iter().find(|o| o.method == method) {
                return Ok(o.action);
            }
            match same_path.first() {
                Some(o) => Err(format!(
                    "{method} {path} is not an operation; use {} {path}",
                    o.method
                )),
                None => Err(format!(
                    "there is no operation at {path:?}; the paths are {}",
                    OPERATIONS
                        .iter()
                        .map(|o| o.path)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
    }
}

fn names() -> String {
    OPERATIONS
        .iter()
        .map(|o| o.action.name())
        .collect::<Vec<_>>()
        .join(", ")
}
