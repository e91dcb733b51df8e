//! Access to another lab's resources, granted only by explicit records
//! (zero trust across labs): an active [`Share`] with a lab the caller is a
//! member of, or a handover's read grant to the environment's previous
//! owner until its `read_until`. Every access through a grant is audited on
//! the trails of both labs (the owner's and the caller's).
//!
//! Services call these only after the caller's own lab membership did not
//! suffice, so the common path costs no extra query.

use crate::auth::Caller;
use crate::AppState;
use westtek_domain::{
    AuditDraft, EnvironmentId, HandoverFilter, LabId, Result, Share, ShareFilter, ShareResource,
};

/// How the caller came to see a resource of another lab.
#[derive(Clone, Debug)]
pub enum Grant {
    /// Through a share with one of the caller's labs.
    Share(Share),
    /// As the environment's previous owner, until the handover's date.
    Handover {
        read_until: chrono::DateTime<chrono::Utc>,
    },
}

/// The active share of `resource`/`id` (owned by `owner`) with a lab the
/// caller belongs to; the caller's selected lab is preferred.
///
/// # Errors
/// Store failures.
pub async fn active_share(
    state: &AppState,
    caller: &Caller,
    owner: LabId,
    resource: ShareResource,
    id: &str,
) -> Result<Option<Share>> {
    let now = state.clock.now();
    let shares = state
        .store
        .list_shares(&ShareFilter {
            owner_lab: Some(owner),
            resource: Some(resource),
            resource_id: Some(id.to_string()),
            active_at: Some(now),
            ..Default::default()
        })
        .await?;
    let mine = |s: &&Share| caller.principal.role_in(s.target_lab).is_some();
    let preferred = caller.selected_lab.or(caller.acting_lab);
    Ok(shares
        .iter()
        .filter(mine)
        .find(|s| Some(s.target_lab) == preferred)
        .or_else(|| shares.iter().find(mine))
        .cloned())
}

/// A grant to read environment `env` of lab `owner`: a share of the
/// environment, else a handover read grant. Audits the access.
///
/// # Errors
/// Store failures.
pub async fn environment_grant(
    state: &AppState,
    caller: &Caller,
    owner: LabId,
    env: EnvironmentId,
) -> Result<Option<Grant>> {
    if let Some(share) = active_share(
        state,
        caller,
        owner,
        ShareResource::Environment,
        &env.to_string(),
    )
    .await?
    {
        audit_access(state, caller, &share, "environment", &env.to_string()).await?;
        return Ok(Some(Grant::Share(share)));
    }
    let now = state.clock.now();
    let handovers = state
        .store
        .list_handovers(&HandoverFilter {
            environment_id: Some(env),
            user: Some(caller.principal.user_id),
            ..Default::default()
        })
        .await?;
    if let Some(h) = handovers
        .iter()
        .find(|h| h.grants_read(caller.principal.user_id, now))
    {
        state
            .store
            .append(vec![caller.audit(
                Some(owner),
                "handover.read_access",
                "environment",
                env,
                serde_json::json!({ "handover_id": h.id.to_string(), "read_until": h.read_until }),
            )])
            .await?;
        return Ok(Some(Grant::Handover {
            read_until: h.read_until,
        }));
    }
    Ok(None)
}

/// Records an access through `share` on both labs' trails.
///
/// # Errors
/// Store failures.
pub async fn audit_access(
    state: &AppState,
    caller: &Caller,
    share: &Share,
    target_kind: &str,
    target_id: &str,
) -> Result<()> {
    state
        .store
        .append(share_audit(
            caller,
            share,
            "share.access",
            target_kind,
            target_id,
        ))
        .await
        .map(|_| ())
}

/// The same entry for the owner's and the target lab's trails.
pub fn share_audit(
    caller: &Caller,
    share: &Share,
    action: &str,
    target_kind: &str,
    target_id: &str,
) -> Vec<AuditDraft> {
    let details = serde_json::json!({
        "share_id": share.id.to_string(),
        "owner_lab": share.owner_lab.to_string(),
        "target_lab": share.target_lab.to_string(),
        "permission": share.permission,
    });
    [share.owner_lab, share.target_lab]
        .into_iter()
        .map(|lab| caller.audit(Some(lab), action, target_kind, target_id, details.clone()))
        .collect()
}
