//! Collaboration and succession records (issue 6): shares of environments,
//! snapshots and templates with other labs, templates (snapshots published
//! read-only), and handovers of an environment from one researcher to the
//! next with the new researcher's onboarding checklist.
//!
//! Policy (zero trust across labs): a lab sees another lab's resource only
//! through a [`Share`] that [`Share::is_active`] at the moment of the
//! request; an expired or revoked share is as if it never existed. A
//! template is immutable: its snapshot cannot be deleted while the template
//! is published.

use crate::{
    DomainError, EnvironmentId, HandoverId, LabId, Result, ShareId, SnapshotId, TemplateId, UserId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a share makes visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareResource {
    /// An environment with its snapshots, drift status and knowledge.
    Environment,
    /// One snapshot (its metadata, inventory and diffs).
    Snapshot,
    /// A published template.
    Template,
}

/// What the target lab may do with a shared resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharePermission {
    /// See it.
    Read,
    /// See it and restore it into a new environment of its own.
    Clone,
}

/// A resource of one lab shared with another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub id: ShareId,
    /// The lab that owns the resource.
    pub owner_lab: LabId,
    /// The lab it is shared with.
    pub target_lab: LabId,
    pub resource: ShareResource,
    /// The environment, snapshot or template id.
    pub resource_id: String,
    pub permission: SharePermission,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    /// `None`: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<UserId>,
}

impl Share {
    /// Whether the share grants anything at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }

    /// Whether the target lab may clone through it.
    pub fn allows_clone(&self) -> bool {
        // Templates exist to be cloned: any share of one allows it.
        self.permission == SharePermission::Clone || self.resource == ShareResource::Template
    }
}

/// Filter for listing shares.
#[derive(Clone, Debug, Default)]
pub struct ShareFilter {
    pub owner_lab: Option<LabId>,
    pub target_lab: Option<LabId>,
    pub resource: Option<ShareResource>,
    pub resource_id: Option<String>,
    /// Only shares active at this time.
    pub active_at: Option<DateTime<Utc>>,
}

/// A snapshot published as a read-only, immutable template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub id: TemplateId,
    pub lab_id: LabId,
    pub snapshot_id: SnapshotId,
    /// The environment the snapshot was taken of.
    pub environment_id: EnvironmentId,
    pub name: String,
    pub description: String,
    /// Interpreter version of the snapshot.
    pub python_version: String,
    /// `name==version` of the packages the snapshot holds.
    pub packages: Vec<String>,
    pub published_by: UserId,
    pub published_at: DateTime<Utc>,
    /// Set when the owner withdraws it; then it is listed nowhere.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// One step of a new researcher's onboarding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// Stable key within the checklist (`restore`, `launch`, `notebook:1`).
    pub key: String,
    /// What to do.
    pub text: String,
    /// Where the step comes from (a knowledge document path).
    pub source: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<UserId>,
}

/// The handover of an environment from one researcher to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub id: HandoverId,
    pub lab_id: LabId,
    pub environment_id: EnvironmentId,
    pub from_user: UserId,
    pub to_user: UserId,
    pub note: String,
    /// The previous owner may read the environment until then, even after
    /// leaving the lab.
    pub read_until: DateTime<Utc>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    /// The onboarding checklist, in order.
    pub checklist: Vec<ChecklistItem>,
}

impl Handover {
    /// Whether the previous owner still has read access at `now`.
    pub fn grants_read(&self, user: UserId, now: DateTime<Utc>) -> bool {
        self.from_user == user && now < self.read_until
    }

    /// Marks checklist item `key` done (or not done) by `user`.
    ///
    /// # Errors
    /// `NotFound` when the checklist has no such item.
    pub fn set_done(
        &mut self,
        key: &str,
        done: bool,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let item =
            self.checklist
                .iter_mut()
                .find(|i| i.key == key)
                .ok_or(DomainError::NotFound {
                    kind: "checklist item",
                })?;
        if done {
            item.done_at = Some(now);
            item.done_by = Some(user);
        } else {
            item.done_at = None;
            item.done_by = None;
        }
        Ok(())
    }

    /// Items done and items in all.
    pub fn progress(&self) -> (usize, usize) {
        let done = self
            .checklist
            .iter()
            .filter(|i| i.done_at.is_some())
            .count();
        (done, self.checklist.len())
    }
}

/// Filter for listing handovers.
#[derive(Clone, Debug, Default)]
pub struct HandoverFilter {
    pub lab_id: Option<LabId>,
    pub environment_id: Option<EnvironmentId>,
    /// Handovers from or to this user.
    pub user: Option<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn share(expires_in: Option<i64>) -> Share {
        let now = Utc::now();
        Share {
            id: ShareId::new(),
            owner_lab: LabId::new(),
            target_lab: LabId::new(),
            resource: ShareResource::Environment,
            resource_id: EnvironmentId::new().to_string(),
            permission: SharePermission::Read,
            created_by: UserId::new(),
            created_at: now,
            expires_at: expires_in.map(|s| now + Duration::seconds(s)),
            revoked_at: None,
            revoked_by: None,
        }
    }

    #[test]
    fn a_share_is_active_until_it_expires_or_is_revoked() {
        let now = Utc::now();
        assert!(share(None).is_active(now));
        let s = share(Some(60));
        assert!(s.is_active(now));
        assert!(!s.is_active(now + Duration::seconds(61)));
        let mut r = share(None);
        r.revoked_at = Some(now);
        assert!(!r.is_active(now));
    }

    #[test]
    fn only_clone_shares_and_templates_allow_cloning() {
        let mut s = share(None);
        assert!(!s.allows_clone());
        s.permission = SharePermission::Clone;
        assert!(s.allows_clone());
        s.permission = SharePermission::Read;
        s.resource = ShareResource::Template;
        assert!(s.allows_clone());
    }

    #[test]
    fn checklist_progress_and_read_grant() {
        let now = Utc::now();
        let from = UserId::new();
        let mut h = Handover {
            id: HandoverId::new(),
            lab_id: LabId::new(),
            environment_id: EnvironmentId::new(),
            from_user: from,
            to_user: UserId::new(),
            note: String::new(),
            read_until: now + Duration::days(1),
            created_by: from,
            created_at: now,
            checklist: vec![ChecklistItem {
                key: "restore".into(),
                text: "Restore".into(),
                source: None,
                done_at: None,
                done_by: None,
            }],
        };
        assert_eq!(h.progress(), (0, 1));
        h.set_done("restore", true, h.to_user, now).unwrap();
        assert_eq!(h.progress(), (1, 1));
        assert!(h.set_done("nope", true, h.to_user, now).is_err());
        assert!(h.grants_read(from, now));
        assert!(!h.grants_read(from, now + Duration::days(2)));
        assert!(!h.grants_read(h.to_user, now));
    }
}
