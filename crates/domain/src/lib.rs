//! The West Tek domain: identifiers, data models, domain events, errors and
//! the ports (traits) every adapter implements.
//!
//! Policy: no I/O and no framework in this crate. Everything here is plain
//! data plus validation, so services, adapters and tests share one vocabulary.

pub mod audit;
pub mod collab;
pub mod drift;
pub mod error;
pub mod event;
pub mod ids;
pub mod invitation;
pub mod model;
pub mod ports;

pub use audit::{AuditDraft, AuditEntry, AuditFilter, AuditHead, ChainProblem};
pub use collab::{
    ChecklistItem, Handover, HandoverFilter, Share, ShareFilter, SharePermission, ShareResource,
    Template,
};
pub use drift::{
    DeadLetterRecord, DriftEvent, DriftEventFilter, DriftSource, DriftStateRecord, DriftStore,
    RecommendationRecord, RecordOutcome, Webhook, WebhookFormat,
};
pub use error::{DomainError, Result};
pub use event::DomainEvent;
pub use ids::*;
pub use invitation::{Invitation, InvitationFilter, InvitationState};
pub use model::*;
