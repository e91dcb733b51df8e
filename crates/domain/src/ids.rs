//! Validated identifiers.
//!
//! Every entity id is a UUID carried in a newtype so a `LabId` can never be
//! passed where an `EnvironmentId` is expected. Parsing rejects anything that
//! is not a canonical UUID, which keeps path traversal and injection out of
//! every layer below the HTTP edge.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (time-ordered) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses a canonical hyphenated UUID.
            ///
            /// # Errors
            /// `Validation` when the text is not a UUID.
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                if s.len() != 36 {
                    return Err(DomainError::invalid($kind, "must be a UUID"));
                }
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| DomainError::invalid($kind, "must be a UUID"))
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = DomainError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// A lab (tenant). Every request is scoped to one.
    LabId, "lab_id");
id_type!(
    /// A platform user (researcher, lab admin or IT admin).
    UserId, "user_id");
id_type!(
    /// A Jupyter environment.
    EnvironmentId, "environment_id");
id_type!(
    /// A background job (environment build, snapshot, restore).
    JobId, "job_id");
id_type!(
    /// One audit trail entry.
    AuditId, "audit_id");
id_type!(
    /// One domain event.
    EventId, "event_id");
id_type!(
    /// A snapshot of an environment.
    SnapshotId, "snapshot_id");

/// A short human name (lab name, username, environment name): 1–64 chars of
/// letters, digits, `-`, `_` and `.`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Validates a slug; `field` names it in the error.
    ///
    /// # Errors
    /// `Validation` when empty, too long or containing other characters.
    pub fn parse_field(s: &str, field: &str) -> Result<Self, DomainError> {
        let ok_len = (1..=64).contains(&s.len());
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok_len && ok_first && ok_chars {
            Ok(Self(s.to_string()))
        } else {
            Err(DomainError::invalid(
                field,
                "must be 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit",
            ))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Slug::parse_field(&s, "name")
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> String {
        s.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_id_with_a_slash_is_rejected() {
        assert!(LabId::parse("../../etc/passwd").is_err());
        assert!(LabId::parse("0193b0a4-1c2d-7e3f-8a9b-0c1d2e3f4a5").is_err());
    }

    #[test]
    fn an_id_round_trips_through_text() {
        let id = EnvironmentId::new();
        assert_eq!(EnvironmentId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn a_slug_rejects_spaces_and_leading_punctuation() {
        assert!(Slug::parse_field("my lab", "name").is_err());
        assert!(Slug::parse_field("-lab", "name").is_err());
        assert!(Slug::parse_field("", "name").is_err());
        assert!(Slug::parse_field("genomics-lab_2.0", "name").is_ok());
    }
}
id_type!(
    /// A drift event (one change of an environment's findings).
    DriftEventId, "drift_event_id");
id_type!(
    /// A webhook target of a lab.
    WebhookId, "webhook_id");
id_type!(
    /// A recommendation made by an agent.
    RecommendationId, "recommendation_id");
id_type!(
    /// A share of an environment, snapshot or template with another lab.
    ShareId, "share_id");
id_type!(
    /// A snapshot published as a read-only template.
    TemplateId, "template_id");
id_type!(
    /// The handover of an environment from one researcher to another.
    HandoverId, "handover_id");
id_type!(
    /// An invitation of a user into a lab.
    InvitationId, "invitation_id");
