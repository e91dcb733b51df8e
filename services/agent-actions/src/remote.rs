//! How the Lambda reaches the platform: it forwards each event to the
//! service that owns the agent's tools, which runs [`handle`] over the same
//! tool implementations its HTTP API and local agents use.
//!
//! Why not construct the tools inside the Lambda over the AWS adapters:
//! the Drift Analyzer's tools (`services/drift`'s `ServiceTools`) read the
//! environment's live file system (installed packages' metadata, notebooks
//! and their imports), its last evaluated inventory kept in the drift
//! service's memory, and snapshot inventories out of the encrypted vault;
//! building them in a Lambda would mean the whole drift service (metadata
//! store, drift store, vault with its KMS key, environment volumes) in a
//! function that cannot mount the environments' volumes at all. So the
//! Lambda is a thin, stateless forwarder, and the services serve
//! [`router`] on their internal listener:
//!
//! | side | what |
//! |---|---|
//! | drift service | `router(Tools { drift: Some(RecordingGate::new(ServiceTools::new(hub, true), StoreMemberships(store))), .. }, token)` (only lab members record, see [`crate::gate`]) |
//! | knowledge service | `router(Tools { knowledge: Some(DocumentKnowledgeTools::new(store)), .. }, token)` |
//! | Lambda | [`Forwarder`]: `POST {service}/internal/agent-actions` with the event as is |
//!
//! The forwarder resolves the action first (an unknown `apiPath` or
//! `function` is answered without a round trip) and sends the event to the
//! service of the action's agent. The route takes `Authorization: Bearer
//! <WESTTEK_AGENT_ACTIONS_TOKEN>`, a secret shared by the Lambda and the
//! services (Secrets Manager in production), compared in constant time;
//! it belongs on the services' internal listener (the Lambda runs in the
//! VPC), never behind the public API.
//!
//! Policy: a service that cannot be reached, refuses the token or answers
//! something that is not a reply becomes a FAILURE reply saying which
//! service failed (the detail is logged); the Lambda never returns an
//! error for that, so the agent ends the turn cleanly.

use crate::catalog::{resolve, AgentGroup};
use crate::event::{reply, ActionEvent, ActionFailure, EventError, Outcome};
use crate::handler::{handle, Tools};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The route the services serve and the Lambda calls.
pub const PATH: &str = "/internal/agent-actions";

#[derive(Clone)]
struct RouteState {
    tools: Tools,
    token: Arc<blake3::Hash>,
}

/// The internal route running [`handle`] over `tools`, for requests that
/// carry `token`.
pub fn router(tools: Tools, token: &SecretString) -> Router {
    let state = RouteState {
        tools,
        token: Arc::new(blake3::hash(token.expose_secret().as_bytes())),
    };
    Router::new().route(PATH, post(serve)).with_state(state)
}

fn problem(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

async fn serve(State(s): State<RouteState>, headers: HeaderMap, body: Bytes) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| blake3::hash(t.as_bytes()));
    // blake3::Hash compares in constant time.
    if presented.as_ref() != Some(s.token.as_ref()) {
        return problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this route takes `Authorization: Bearer <WESTTEK_AGENT_ACTIONS_TOKEN>`",
        );
    }
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "malformed_event",
                &format!("the body is not JSON: {e}"),
            )
        }
    };
    match handle(&s.tools, &event).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => problem(StatusCode::BAD_REQUEST, "malformed_event", &e.to_string()),
    }
}

/// Where the Lambda forwards each agent's actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// Base URL of the drift service's internal listener
    /// (`http://drift.westtek.internal:8080`), if the Lambda serves the
    /// Drift Analyzer.
    pub drift: Option<String>,
    /// Base URL of the knowledge service's, if it serves the Knowledge
    /// Transfer agent.
    pub knowledge: Option<String>,
}

/// The Lambda's side: forwards events to the services.
#[derive(Clone)]
pub struct Forwarder {
    client: reqwest::Client,
    targets: Targets,
    token: SecretString,
}

/// Why a [`Forwarder`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ForwarderError {
    /// Neither service is set.
    #[error("no service to forward to: set WESTTEK_AGENT_ACTIONS_DRIFT_URL and/or WESTTEK_AGENT_ACTIONS_KNOWLEDGE_URL (the services' internal base URLs)")]
    NoTargets,
    /// A base URL is not an http(s) URL.
    #[error("{name} must be an http(s) base URL, got {value:?}")]
    BadUrl {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The HTTP client could not be built (TLS roots).
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Forwarder {
    /// A forwarder to `targets`, presenting `token`, giving up on a service
    /// after `timeout` (keep it under the Lambda's own timeout).
    ///
    /// # Errors
    /// [`ForwarderError`] naming the setting at fault.
    pub fn new(
        targets: Targets,
        token: SecretString,
        timeout: Duration,
    ) -> Result<Self, ForwarderError> {
        if targets.drift.is_none() && targets.knowledge.is_none() {
            return Err(ForwarderError::NoTargets);
        }
        for (name, v) in [
            ("WESTTEK_AGENT_ACTIONS_DRIFT_URL", &targets.drift),
            ("WESTTEK_AGENT_ACTIONS_KNOWLEDGE_URL", &targets.knowledge),
        ] {
            if let Some(v) = v {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(ForwarderError::BadUrl {
                        name,
                        value: v.clone(),
                    });
                }
            }
        }
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Forwarder {
            client,
            targets,
            token,
        })
    }

    /// The reply to one raw event.
    ///
    /// # Errors
    /// [`EventError`] when `event` is not an action-group event; every
    /// other failure (unknown action, service unreachable) is a reply.
    pub async fn handle(&self, event: &Value) -> Result<Value, EventError> {
        let parsed = ActionEvent::parse(event)?;
        let action = match resolve(&parsed.invocation) {
            Ok(a) => a,
            Err(m) => {
                let f = ActionFailure::failure(404, "unknown_action", m);
                tracing::warn!(operation = %parsed.operation(), message = %f.message, "unknown action");
                return Ok(reply(&parsed, &Outcome::Err(f)));
            }
        };
        let (service, base) = match action.group() {
            AgentGroup::DriftAnalyzer => ("drift", &self.targets.drift),
            AgentGroup::KnowledgeTransfer => ("knowledge", &self.targets.knowledge),
        };
        let Some(base) = base else {
            let f = ActionFailure::failure(
                501,
                "not_served",
                format!("this Lambda does not forward to the {service} service (its URL is not set); attach the action group to the agent it belongs to"),
            );
            return Ok(reply(&parsed, &Outcome::Err(f)));
        };
        let url = format!("{}{PATH}", base.trim_end_matches('/'));
        match self.forward(&url, event).await {
            Ok(r) => Ok(r),
            Err(detail) => {
                tracing::error!(service, %url, error = %detail, operation = %parsed.operation(), "forwarding failed");
                let f = ActionFailure::failure(
                    502,
                    "service_unavailable",
                    format!("the platform's {service} service did not answer the action; try again later"),
                );
                Ok(reply(&parsed, &Outcome::Err(f)))
            }
        }
    }

    async fn forward(&self, url: &str, event: &Value) -> Result<Value, String> {
        let res = self
            .client
            .post(url)
            .bearer_auth(self.token.expose_secret())
            .json(event)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = res.status();
        let body: Value = res
            .json()
            .await
            .map_err(|e| format!("{status}: the answer is not JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!("{status}: {body}"));
        }
        if body.get("messageVersion").is_none() || body.get("response").is_none() {
            return Err(format!(
                "{status}: the answer is not an action-group reply: {body}"
            ));
        }
        Ok(body)
    }
}
