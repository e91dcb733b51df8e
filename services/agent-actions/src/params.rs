//! An action's arguments: the event's parameters and, for OpenAPI groups,
//! the `application/json` request body's properties, by name.
//!
//! Policy: every getter names the parameter and says what it must be, so a
//! REPROMPT reply lets the model call again correctly. A name given twice
//! with different values (a parameter and a body property) is refused.

use crate::event::{ActionEvent, ActionFailure};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::str::FromStr;

/// The JSON media type whose request-body properties are read.
pub const JSON: &str = "application/json";

/// An action's arguments by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

fn invalid(message: String) -> ActionFailure {
    ActionFailure::reprompt(400, "invalid_argument", message)
}

impl Params {
    /// The arguments of `event`.
    ///
    /// # Errors
    /// A REPROMPT reply when one name has two different values.
    pub fn of(event: &ActionEvent) -> Result<Self, ActionFailure> {
        let body = event
            .request_body
            .as_ref()
            .and_then(|b| b.content.get(JSON))
            .map(|m| m.properties.as_slice())
            .unwrap_or_default();
        let mut out = BTreeMap::new();
        for p in event.parameters.iter().chain(body) {
            match out.get(&p.name) {
                Some(v) if v != &p.value => {
                    return Err(invalid(format!(
                        "`{}` is given twice with different values; give it once",
                        p.name
                    )))
                }
                _ => {
                    out.insert(p.name.clone(), p.value.clone());
                }
            }
        }
        Ok(Params(out))
    }

    /// The value of `name`, if given and not empty (models send `""` and
    /// `null` for "none").
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && *v != "null" && *v != "None")
    }

    /// The value of `name`.
    ///
    /// # Errors
    /// A REPROMPT reply saying it is required.
    pub fn req(&self, name: &str) -> Result<&str, ActionFailure> {
        self.opt(name)
            .ok_or_else(|| invalid(format!("`{name}` is required")))
    }

    /// `name` parsed as `T` (an id), if given.
    ///
    /// # Errors
    /// A REPROMPT reply when it does not parse.
    pub fn opt_id<T: FromStr>(&self, name: &str) -> Result<Option<T>, ActionFailure> {
        self.opt(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| invalid(format!("`{name}` must be a UUID, got {v:?}")))
            })
            .transpose()
    }

    /// `name` parsed as `T` (an id).
    ///
    /// # Errors
    /// A REPROMPT reply when it is missing or does not parse.
    pub fn req_id<T: FromStr>(&self, name: &str) -> Result<T, ActionFailure> {
        self.opt_id(name)?
            .ok_or_else(|| invalid(format!("`{name}` is required (a UUID)")))
    }

    /// `name` as an instant: RFC 3339 (`2026-03-01T00:00:00Z`) or a date
    /// (`2026-03-01`, its midnight UTC), if given.
    ///
    /// # Errors
    /// A REPROMPT reply when it is neither.
    pub fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ActionFailure> {
        let Some(v) = self.opt(name) else {
            return Ok(None);
        };
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Some(t.and_utc()))
            .ok_or_else(|| {
                invalid(format!(
                    "`{name}` must be an RFC 3339 time (2026-03-01T00:00:00Z) or a date (2026-03-01), got {v:?}"
                ))
            })
    }
}
