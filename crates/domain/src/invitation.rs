//! Invitations into a lab (issue 12, point 7).
//!
//! Policy: nobody is put into a lab behind their back. A lab admin invites a
//! user; the membership exists only once that user accepts. An invitation is
//! open while it is pending and not expired; accepting, declining and
//! revoking close it for good (a store write that closes an invitation
//! fails when it is no longer pending, so an accept racing a revoke cannot
//! both succeed). Roles offered are lab roles only (`researcher`,
//! `lab_admin`), never `it_admin`.

use crate::{DomainError, InvitationId, LabId, Result, Role, UserId};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// How long an invitation stays open.
pub const INVITATION_TTL: TimeDelta = TimeDelta::days(7);

/// Where an invitation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    /// Waiting for the invitee (until `expires_at`).
    Pending,
    /// The invitee accepted: they became a member.
    Accepted,
    /// The invitee declined.
    Declined,
    /// A lab admin withdrew it, or a newer invitation replaced it.
    Revoked,
}

impl InvitationState {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Accepted => "accepted",
            InvitationState::Declined => "declined",
            InvitationState::Revoked => "revoked",
        }
    }
}

/// An offer of a role in a lab to one existing user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: InvitationId,
    pub lab_id: LabId,
    /// The invitee.
    pub user_id: UserId,
    /// `researcher` or `lab_admin`.
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: InvitationState,
    /// When it was accepted, declined or revoked.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who closed it (the invitee, or the admin who revoked it).
    pub closed_by: Option<UserId>,
}

impl Invitation {
    /// A new pending invitation, open for [`INVITATION_TTL`] from `now`.
    ///
    /// # Errors
    /// `Validation` when `role` is not a lab role.
    pub fn new(
        lab_id: LabId,
        user_id: UserId,
        role: Role,
        invited_by: UserId,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        lab_role(role)?;
        Ok(Invitation {
            id: InvitationId::new(),
            lab_id,
            user_id,
            role,
            invited_by,
            created_at: now,
            expires_at: now + INVITATION_TTL,
            state: InvitationState::Pending,
            closed_at: None,
            closed_by: None,
        })
    }

    /// Whether the invitee can still accept or decline it at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.state == InvitationState::Pending && now < self.expires_at
    }

    /// Whether it is pending but past its expiry at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.state == InvitationState::Pending && now >= self.expires_at
    }
}

/// Refuses roles that are not lab roles.
///
/// # Errors
/// `Validation` on field `role` for `it_admin`.
pub fn lab_role(role: Role) -> Result<Role> {
    match role {
        Role::Researcher | Role::LabAdmin => Ok(role),
        Role::ItAdmin => Err(DomainError::invalid(
            "role",
            "must be researcher or lab_admin (IT admins are made by IT admins, not in a lab)",
        )),
    }
}

/// Filter for listing invitations.
#[derive(Clone, Debug, Default)]
pub struct InvitationFilter {
    pub lab_id: Option<LabId>,
    pub user_id: Option<UserId>,
    /// Only invitations open (pending, not expired) at this time.
    pub open_at: Option<DateTime<Utc>>,
}

impl InvitationFilter {
    /// Whether `i` passes the filter.
    pub fn matches(&self, i: &Invitation) -> bool {
        self.lab_id.is_none_or(|l| l == i.lab_id)
            && self.user_id.is_none_or(|u| u == i.user_id)
            && self.open_at.is_none_or(|t| i.is_open(t))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_invitation_is_open_until_it_expires_or_is_closed() {
        let now = Utc::now();
        let mut i = Invitation::new(
            LabId::new(),
            UserId::new(),
            Role::Researcher,
            UserId::new(),
            now,
        )
        .unwrap();
        assert!(i.is_open(now));
        assert!(!i.is_open(now + INVITATION_TTL));
        assert!(i.is_expired(now + INVITATION_TTL));
        i.state = InvitationState::Declined;
        assert!(!i.is_open(now));
        assert!(!i.is_expired(now + INVITATION_TTL));
    }

    #[test]
    fn an_invitation_never_offers_it_admin() {
        let r = Invitation::new(
            LabId::new(),
            UserId::new(),
            Role::ItAdmin,
            UserId::new(),
            Utc::now(),
        );
        assert!(matches!(r, Err(DomainError::Validation { .. })));
    }
}
