//! The event Bedrock sends an action group's Lambda, and the reply it
//! expects (`messageVersion` 1.0), as serde types of our own
//! (`aws_lambda_events` covers only the OpenAPI shape).
//!
//! Two shapes arrive, by how the action group was defined:
//!
//! - OpenAPI schema: `apiPath`, `httpMethod`, `parameters` (path and query
//!   parameters) and `requestBody.content."application/json".properties`;
//!   the reply is `response.{actionGroup, apiPath, httpMethod,
//!   httpStatusCode, responseBody."application/json".body}`.
//! - Function details: `function` and `parameters`; the reply is
//!   `response.{actionGroup, function, functionResponse.responseBody.TEXT.body}`.
//!
//! Every value Bedrock sends is a string (whatever the declared `type`);
//! both shapes carry `sessionAttributes` and `promptSessionAttributes`,
//! which the reply echoes so the session keeps them.
//!
//! Policy: an event that is not one of these shapes (no `actionGroup`,
//! both or neither of `apiPath` and `function`, another `messageVersion`)
//! is refused with an [`EventError`] naming what is wrong; the Lambda
//! returns it as a function error, never a panic.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// The only message version Bedrock sends and accepts.
pub const MESSAGE_VERSION: &str = "1.0";

/// The agent that called the action group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AgentInfo {
    /// The agent's name.
    #[serde(default)]
    pub name: String,
    /// The agent's id.
    #[serde(default)]
    pub id: String,
    /// The alias invoked.
    #[serde(default)]
    pub alias: String,
    /// The agent version.
    #[serde(default)]
    pub version: String,
}

/// One parameter or request-body property: Bedrock sends every value as
/// a string.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Parameter {
    /// Its name in the schema.
    pub name: String,
    /// The type the schema declares (`string`, `integer`, `number`,
    /// `boolean`, `array`).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The value, as text.
    #[serde(default)]
    pub value: String,
}

/// The properties of one media type of a request body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct MediaProperties {
    /// Its properties.
    #[serde(default)]
    pub properties: Vec<Parameter>,
}

/// An OpenAPI operation's request body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct RequestBody {
    /// By media type (`application/json`).
    #[serde(default)]
    pub content: HashMap<String, MediaProperties>,
}

/// The raw event, as Bedrock sends it (both shapes).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    message_version: Option<String>,
    #[serde(default)]
    agent: Option<AgentInfo>,
    #[serde(default)]
    input_text: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    action_group: Option<String>,
    #[serde(default)]
    api_path: Option<String>,
    #[serde(default)]
    http_method: Option<String>,
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    parameters: Option<Vec<Parameter>>,
    #[serde(default)]
    request_body: Option<RequestBody>,
    #[serde(default)]
    session_attributes: Option<HashMap<String, String>>,
    #[serde(default)]
    prompt_session_attributes: Option<HashMap<String, String>>,
}

/// Which kind of action group the event is for, and the operation called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// An OpenAPI action group: the operation's path and method.
    Api {
        /// `apiPath` (`/drift-events`).
        path: String,
        /// `httpMethod`, upper case (`GET`).
        method: String,
    },
    /// A function-details action group: the function's name.
    Function {
        /// `function` (`GetDriftEvents`).
        name: String,
    },
}

/// A well-formed action-group event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionEvent {
    /// The agent that called.
    pub agent: AgentInfo,
    /// The user's input of the turn.
    pub input_text: String,
    /// The agent session.
    pub session_id: String,
    /// The action group's name (echoed in the reply).
    pub action_group: String,
    /// What was called.
    pub invocation: Invocation,
    /// Path and query parameters (OpenAPI) or the function's parameters.
    pub parameters: Vec<Parameter>,
    /// The request body, OpenAPI groups only.
    pub request_body: Option<RequestBody>,
    /// Set by whoever invoked the agent (the platform): trusted.
    pub session_attributes: HashMap<String, String>,
    /// Set by whoever invoked the agent for this turn.
    pub prompt_session_attributes: HashMap<String, String>,
}

/// Why an event is not an action-group event this Lambda can answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// Not JSON of the expected shape.
    #[error("not a Bedrock action-group event: {0}")]
    Shape(String),
    /// A required field is missing.
    #[error("not a Bedrock action-group event: `{0}` is missing")]
    Missing(&'static str),
    /// Another message version.
    #[error("unsupported messageVersion {0:?}: this Lambda speaks {MESSAGE_VERSION}")]
    Version(String),
    /// Both or neither of `apiPath` and `function`.
    #[error("ambiguous action-group event: {0}")]
    Ambiguous(&'static str),
}

impl ActionEvent {
    /// Reads an event.
    ///
    /// # Errors
    /// [`EventError`] naming what is wrong with it (see the module docs).
    pub fn parse(event: &Value) -> Result<Self, EventError> {
        let raw = RawEvent::deserialize(event).map_err(|e| EventError::Shape(e.to_string()))?;
        let version = raw
            .message_version
            .ok_or(EventError::Missing("messageVersion"))?;
        if version != MESSAGE_VERSION {
            return Err(EventError::Version(version));
        }
        let action_group = raw
            .action_group
            .filter(|g| !g.is_empty())
            .ok_or(EventError::Missing("actionGroup"))?;
        let invocation = match (raw.api_path, raw.function) {
            (Some(path), None) => Invocation::Api {
                path,
                method: raw
                    .http_method
                    .ok_or(EventError::Missing("httpMethod"))?
                    .to_ascii_uppercase(),
            },
            (None, Some(name)) => Invocation::Function { name },
            (Some(_), Some(_)) => {
                return Err(EventError::Ambiguous(
                    "it has both `apiPath` (OpenAPI group) and `function` (function-details group)",
                ))
            }
            (None, None) => return Err(EventError::Ambiguous(
                "it has neither `apiPath` (OpenAPI group) nor `function` (function-details group)",
            )),
        };
        Ok(ActionEvent {
            agent: raw.agent.unwrap_or_default(),
            input_text: raw.input_text.unwrap_or_default(),
            session_id: raw.session_id.unwrap_or_default(),
            action_group,
            invocation,
            parameters: raw.parameters.unwrap_or_default(),
            request_body: raw.request_body,
            session_attributes: raw.session_attributes.unwrap_or_default(),
            prompt_session_attributes: raw.prompt_session_attributes.unwrap_or_default(),
        })
    }

    /// The operation as one string for logs and messages
    /// (`GET /drift-events`, `function GetDriftEvents`).
    pub fn operation(&self) -> String {
        match &self.invocation {
            Invocation::Api { path, method } => format!("{method} {path}"),
            Invocation::Function { name } => format!("function {name}"),
        }
    }
}

/// How a failed action should continue (`responseState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResponseState {
    /// The agent stops the turn with a dependency failure: the platform is
    /// misconfigured or failed, the model cannot fix it.
    Failure,
    /// The message goes back to the model, which can ask again differently
    /// (a missing or invalid parameter, something not found).
    Reprompt,
}

/// What an action produced: a JSON result, or an error for the model.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The action's result.
    Ok(Value),
    /// The action failed.
    Err(ActionFailure),
}

/// A failed action: what the reply says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionFailure {
    /// How the agent continues.
    pub state: ResponseState,
    /// The HTTP status of an OpenAPI reply (400, 403, 404, 500, 502).
    pub status: u16,
    /// A stable code (`invalid_argument`, `not_found`, `unknown_action`, …).
    pub code: &'static str,
    /// A sentence for the model: what failed and what to do.
    pub message: String,
}

impl ActionFailure {
    /// A failure the model can correct (REPROMPT).
    pub fn reprompt(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ActionFailure {
            state: ResponseState::Reprompt,
            status,
            code,
            message: message.into(),
        }
    }

    /// A failure that ends the turn (FAILURE).
    pub fn failure(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ActionFailure {
            state: ResponseState::Failure,
            status,
            code,
            message: message.into(),
        }
    }
}

/// Longest result body, in bytes. Bedrock limits the size of what an
/// action group returns to the agent, and every byte of it goes into the
/// model's prompt; results are cut to fit (see [`fit`]).
pub const MAX_BODY_BYTES: usize = 20_000;

/// `result` cut to at most `max` bytes of JSON, keeping its shape: an
/// array keeps its leading items (results are listed most relevant first:
/// the newest drift events), an excerpt (`lines`) its leading lines with a
/// `note` saying how many were left out. Anything else is returned whole
/// (and logged), as no result of the tools grows without bound otherwise.
pub fn fit(result: Value, max: usize) -> Value {
    let len = |v: &Value| v.to_string().len();
    if len(&result) <= max {
        return result;
    }
    let mut v = result;
    let lines_total = v.get("lines").and_then(Value::as_array).map(Vec::len);
    match (&mut v, lines_total) {
        (Value::Array(items), _) => {
            let total = items.len();
            while !items.is_empty() && len(&Value::Array(items.clone())) > max {
                items.truncate(items.len() * 3 / 4);
            }
            tracing::warn!(
                total,
                kept = items.len(),
                "action result cut to fit the reply"
            );
        }
        (Value::Object(o), Some(total)) => {
            let mut keep = total;
            loop {
                keep = keep * 3 / 4;
                if let Some(Value::Array(lines)) = o.get_mut("lines") {
                    lines.truncate(keep);
                }
                o.insert(
                    "note".into(),
                    Value::String(format!(
                        "only the first {keep} of {total} lines fit in the answer; ask about something narrower (a package, a time range)"
                    )),
                );
                if keep == 0 || len(&Value::Object(o.clone())) <= max {
                    break;
                }
            }
        }
        _ => tracing::warn!(
            bytes = len(&v),
            "action result over the reply limit, sent whole"
        ),
    }
    v
}

/// The reply to `event` carrying `outcome`, in the shape of its kind of
/// action group, echoing the session's attributes; a result is cut to
/// [`MAX_BODY_BYTES`] by [`fit`].
pub fn reply(event: &ActionEvent, outcome: &Outcome) -> Value {
    let (body, failure) = match outcome {
        Outcome::Ok(v) => (fit(v.clone(), MAX_BODY_BYTES).to_string(), None),
        Outcome::Err(f) => (
            serde_json::json!({ "error": f.code, "message": f.message }).to_string(),
            Some(f),
        ),
    };
    let response = match &event.invocation {
        Invocation::Api { path, method } => {
            let mut r = serde_json::json!({
                "actionGroup": event.action_group,
                "apiPath": path,
                "httpMethod": method,
                "httpStatusCode": failure.map_or(200, |f| f.status),
                "responseBody": { "application/json": { "body": body } },
            });
            if let (Some(f), Some(o)) = (failure, r.as_object_mut()) {
                o.insert("responseState".into(), serde_json::json!(f.state));
            }
            r
        }
        Invocation::Function { name } => {
            let mut fr = serde_json::json!({ "responseBody": { "TEXT": { "body": body } } });
            if let (Some(f), Some(o)) = (failure, fr.as_object_mut()) {
                o.insert("responseState".into(), serde_json::json!(f.state));
            }
            serde_json::json!({
                "actionGroup": event.action_group,
                "function": name,
                "functionResponse": fr,
            })
        }
    };
    serde_json::json!({
        "messageVersion": MESSAGE_VERSION,
        "response": response,
        "sessionAttributes": event.session_attributes,
        "promptSessionAttributes": event.prompt_session_attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_long_array_keeps_its_leading_items_within_the_limit() {
        let items: Vec<Value> = (0..1000)
            .map(|i| json!({"n": i, "pad": "x".repeat(50)}))
            .collect();
        let cut = fit(Value::Array(items), 5_000);
        let kept = cut.as_array().unwrap();
        assert!(cut.to_string().len() <= 5_000);
        assert!(kept.len() > 10);
        assert!(kept.iter().enumerate().all(|(i, v)| v["n"] == i));
    }

    #[test]
    fn a_long_excerpt_keeps_its_leading_lines_and_says_so() {
        let lines: Vec<Value> = (0..1000)
            .map(|i| json!({"text": format!("line {i} {}", "y".repeat(40)), "start": i, "end": i}))
            .collect();
        let cut = fit(json!({"path": "p", "lines": lines}), 5_000);
        assert!(cut.to_string().len() <= 5_000);
        let kept = cut["lines"].as_array().unwrap().len();
        assert!(kept > 10 && kept < 1000);
        assert!(cut["note"]
            .as_str()
            .unwrap()
            .contains(&format!("first {kept} of 1000 lines")));
        // A small result is untouched.
        let small = json!({"path": "p", "lines": []});
        assert_eq!(fit(small.clone(), 5_000), small);
    }
}
