//! Who is in a lab: invitations, role changes, removals (the use cases
//! behind `/api/labs/{id}/members`, `/api/labs/{id}/invitations` and
//! `/api/me/invitations`).
//!
//! Policy (issue 12, point 7):
//! - Nobody is put into a lab behind their back. A lab admin invites a
//!   username; the membership exists only once that user accepts. Only IT
//!   admins add a member directly.
//! - Inviting answers the same (`202`, same body) whether or not the
//!   username exists, and writes the same audit entry; an invitation record
//!   exists only for a real user. A lab admin's `PUT` on a non-member takes
//!   the invitation path and answers exactly like it, so no endpoint of a
//!   lab admin tells an existing username from a made-up one (`DELETE` on a
//!   non-member answers "membership not found" either way).
//! - Accepting adds the membership last in the user's join order, so the
//!   user's default lab (their first) never changes behind their back.
//! - Decisions race safely: closing an invitation fails when it is no
//!   longer pending, in the same commit as the membership.
//! - The labs and roles of a user provisioned from the identity provider
//!   (`idp_managed`) come from its groups (`crate::provision`): adding,
//!   changing or removing such a member here, or accepting an invitation
//!   as one, is refused (`Conflict`) with where to change it, rather than
//!   silently undone by the user's next token. Only where the answer
//!   already tells that the user exists (an IT admin's direct add, a
//!   member's role change or removal, the user's own decision).
//! - Every state change is audited: `lab.invitation_create`,
//!   `lab.invitation_accept`, `lab.invitation_decline`,
//!   `lab.invitation_revoke`, `lab.member_add`, `lab.member_role`,
//!   `lab.member_remove`.

use crate::auth::{Caller, WriteScope};
use crate::dto::{InvitationResponse, InvitationSentResponse};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use westtek_domain::invitation::{lab_role, INVITATION_TTL};
use westtek_domain::ports::Write;
use westtek_domain::{
    DomainError, Invitation, InvitationFilter, InvitationId, InvitationState, LabId, Membership,
    Role, Slug, User, UserId,
};

/// Refuses a membership change of a user whose memberships come from the
/// identity provider.
fn not_idp_managed(user: &User) -> ApiResult<()> {
    if user.idp_managed {
        return Err(DomainError::Conflict(format!(
            "the labs and roles of '{}' come from the identity provider: change the user's groups in Cognito (<lab id>:researcher, <lab id>:lab_admin); the change applies at the user's next sign-in",
            user.username
        ))
        .into());
    }
    Ok(())
}

/// What a `PUT /api/labs/{id}/members/{user}` did.
#[derive(Debug)]
pub enum PutMemberOutcome {
    /// An IT admin added the user, or the member's role changed.
    Member(User),
    /// A lab admin named a non-member: handled as an invitation.
    Invited(InvitationSentResponse),
}

/// The caller's right to manage the lab's members.
fn admin_scope(caller: &Caller, lab: LabId) -> ApiResult<WriteScope> {
    let scope = caller.write_scope_for(lab)?;
    if !scope.is_lab_admin() {
        return Err(ApiError::forbidden("only lab admins manage members"));
    }
    Ok(scope)
}

/// A user named by id or username, if one exists.
async fn find_user(state: &AppState, raw: &str) -> ApiResult<Option<User>> {
    Ok(match UserId::parse(raw) {
        Ok(id) => match state.store.get_user(id).await {
            Ok(u) => Some(u),
            Err(DomainError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => state
            .store
            .find_user_by_username(raw)
            .await?
            .map(|c| c.user),
    })
}

async fn role_in(state: &AppState, user: UserId, lab: LabId) -> ApiResult<Option<Role>> {
    Ok(state
        .store
        .memberships_of(user)
        .await?
        .into_iter()
        .find(|m| m.lab_id == lab)
        .map(|m| m.role))
}

/// Invites `username` into the lab with `role` (lab admins; IT admins
/// acting in the lab). The answer is the same whether or not the user
/// exists.
///
/// # Errors
/// `Forbidden`/`NotFound` without the right to manage the lab's members;
/// `Validation` for a malformed username or a role that is not a lab role;
/// `Conflict` when the user is already a member of the lab (its members
/// are visible to its admins anyway).
pub async fn invite(
    state: &AppState,
    caller: &Caller,
    lab: LabId,
    username: &str,
    role: &str,
) -> ApiResult<InvitationSentResponse> {
    admin_scope(caller, lab)?;
    let role = lab_role(Role::parse(role)?)?;
    Slug::parse_field(username, "username")?;
    let target = state
        .store
        .find_user_by_username(username)
        .await?
        .map(|c| c.user);
    send_invitation(state, caller, lab, username, target.as_ref(), role).await
}

/// The invitation path shared by `invite` and a lab admin's `PUT` on a
/// non-member: one commit with one audit entry, whether or not `target`
/// exists.
async fn send_invitation(
    state: &AppState,
    caller: &Caller,
    lab: LabId,
    named: &str,
    target: Option<&User>,
    role: Role,
) -> ApiResult<InvitationSentResponse> {
    let now = state.clock.now();
    let mut writes = Vec::new();
    let mut id = InvitationId::new();
    if let Some(user) = target {
        if role_in(state, user.id, lab).await?.is_some() {
            return Err(DomainError::Conflict(
                "already a member of this lab; change their role with PUT /api/labs/{id}/members/{user}".into(),
            )
            .into());
        }
        // Earlier open invitations stay as they are: closing them here
        // would be a change only real users get, visible in the audit
        // trail. Accepting one closes the others.
        let inv = Invitation::new(lab, user.id, role, caller.principal.user_id, now)?;
        id = inv.id;
        writes.push(Write::InsertInvitation(inv));
    }
    // The same entry either way: the lab's audit trail must not tell real
    // usernames from made-up ones.
    let audit = caller.audit(
        Some(lab),
        "lab.invitation_create",
        "invitation",
        id,
        serde_json::json!({ "username": named, "role": role.as_str() }),
    );
    state.store.commit(writes, vec![audit]).await?;
    Ok(InvitationSentResponse {
        lab_id: lab.to_string(),
        username: named.to_string(),
        role: role.as_str().to_string(),
        expires_in: INVITATION_TTL.num_seconds(),
        detail: "If this user exists, they are invited and join the lab once they accept. \
                 The invitation expires unless accepted in time."
            .into(),
    })
}

/// Puts a user into the lab or changes their role. IT admins (members of
/// the lab or acting in it) add anyone directly; a lab admin changes the
/// role of a member, and naming anyone else sends them an invitation
/// (answered exactly like `invite`).
///
/// # Errors
/// As `invite`; `NotFound` for an unknown user (IT admins only);
/// `Conflict` when the lab's last lab admin would be demoted.
pub async fn put_member(
    state: &AppState,
    caller: &Caller,
    lab: LabId,
    raw_user: &str,
    role: &str,
) -> ApiResult<PutMemberOutcome> {
    let scope = admin_scope(caller, lab)?;
    let role = lab_role(Role::parse(role)?)?;
    let user = find_user(state, raw_user).await?;
    let was = match &user {
        Some(u) => role_in(state, u.id, lab).await?,
        None => None,
    };
    // IT admins add anyone directly; a lab admin only changes the role of
    // a member, anything else is an invitation.
    let direct = caller.principal.it_admin || scope.acting_it_admin;
    let user = match user {
        Some(u) if direct || was.is_some() => u,
        None if direct => return Err(ApiError::not_found("user")),
        target => {
            return send_invitation(state, caller, lab, raw_user, target.as_ref(), role)
                .await
                .map(PutMemberOutcome::Invited);
        }
    };
    not_idp_managed(&user)?;
    if was == Some(Role::LabAdmin) && role != Role::LabAdmin {
        last_admin_guard(state, lab, user.id).await?;
    }
    let audit = caller.audit(
        Some(lab),
        if was.is_some() {
            "lab.member_role"
        } else {
            "lab.member_add"
        },
        "user",
        user.id,
        serde_json::json!({ "role": role.as_str(), "previous_role": was.map(|r| r.as_str()) }),
    );
    state
        .store
        .commit(
            vec![Write::PutMembership(Membership {
                lab_id: lab,
                user_id: user.id,
                role,
            })],
            vec![audit],
        )
        .await?;
    Ok(PutMemberOutcome::Member(user))
}

/// Removes a member from the lab (lab admins; IT admins acting in the lab).
///
/// # Errors
/// `NotFound` ("membership") for a non-member, existing or not; `Conflict`
/// for the lab's last lab admin.
pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    lab: LabId,
    raw_user: &str,
) -> ApiResult<()> {
    admin_scope(caller, lab)?;
    let not_member = || ApiError::not_found("membership");
    let user = find_user(state, raw_user).await?.ok_or_else(not_member)?;
    let role = role_in(state, user.id, lab).await?.ok_or_else(not_member)?;
    not_idp_managed(&user)?;
    if role == Role::LabAdmin {
        last_admin_guard(state, lab, user.id).await?;
    }
    // Open invitations of the removed user into this lab go with the
    // membership: an old one must not bring them back.
    let now = state.clock.now();
    let open = state
        .store
        .list_invitations(&InvitationFilter {
            lab_id: Some(lab),
            user_id: Some(user.id),
            open_at: Some(now),
        })
        .await?;
    let audit = caller.audit(
        Some(lab),
        "lab.member_remove",
        "user",
        user.id,
        serde_json::json!({
            "role": role.as_str(),
            "invitations_revoked": open.iter().map(|i| i.id.to_string()).collect::<Vec<_>>(),
        }),
    );
    let mut writes = vec![Write::DeleteMembership {
        lab_id: lab,
        user_id: user.id,
    }];
    writes.extend(open.iter().map(|i| Write::CloseInvitation {
        id: i.id,
        state: InvitationState::Revoked,
        at: now,
        by: caller.principal.user_id,
    }));
    state.store.commit(writes, vec![audit]).await?;
    Ok(())
}

/// A lab keeps at least one lab admin.
async fn last_admin_guard(state: &AppState, lab: LabId, leaving: UserId) -> ApiResult<()> {
    let mut admins = 0;
    for u in state.store.list_users(Some(lab)).await? {
        if u.id == leaving {
            continue;
        }
        if role_in(state, u.id, lab).await? == Some(Role::LabAdmin) {
            admins += 1;
        }
    }
    if admins == 0 {
        return Err(DomainError::Conflict(
            "the lab's last lab admin cannot leave or be demoted".into(),
        )
        .into());
    }
    Ok(())
}

/// An invitation as the API shows it.
async fn view(state: &AppState, i: Invitation) -> InvitationResponse {
    let now = state.clock.now();
    let name = |u: UserId| async move {
        state
            .store
            .get_user(u)
            .await
            .ok()
            .map(|u| u.username.to_string())
    };
    let state_name = if i.is_expired(now) {
        "expired"
    } else {
        i.state.as_str()
    };
    InvitationResponse {
        id: i.id.to_string(),
        lab_id: i.lab_id.to_string(),
        lab_name: state
            .store
            .get_lab(i.lab_id)
            .await
            .ok()
            .map(|l| l.name.to_string()),
        user_id: i.user_id.to_string(),
        username: name(i.user_id).await,
        role: i.role.as_str().into(),
        invited_by: name(i.invited_by).await,
        state: state_name.into(),
        created_at: i.created_at,
        expires_at: i.expires_at,
        closed_at: i.closed_at,
    }
}

async fn views(state: &AppState, list: Vec<Invitation>) -> Vec<InvitationResponse> {
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        out.push(view(state, i).await);
    }
    out
}

/// The lab's open invitations (its lab admins; IT admins).
///
/// # Errors
/// `NotFound` for a lab the caller cannot see; `Forbidden` for researchers.
pub async fn lab_invitations(
    state: &AppState,
    caller: &Caller,
    lab: LabId,
) -> ApiResult<Vec<InvitationResponse>> {
    if !caller.can_read(lab) {
        return Err(ApiError::not_found("lab"));
    }
    if !caller.principal.it_admin && caller.principal.role_in(lab) != Some(Role::LabAdmin) {
        return Err(ApiError::forbidden(
            "only lab admins see the lab's invitations",
        ));
    }
    let list = state
        .store
        .list_invitations(&InvitationFilter {
            lab_id: Some(lab),
            open_at: Some(state.clock.now()),
            ..Default::default()
        })
        .await?;
    Ok(views(state, list).await)
}

/// Withdraws an open invitation of the lab (lab admins; IT admins acting).
///
/// # Errors
/// `NotFound` for an invitation of another lab; `Conflict` when it is no
/// longer open.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    lab: LabId,
    id: InvitationId,
) -> ApiResult<()> {
    admin_scope(caller, lab)?;
    let inv = match state.store.get_invitation(id).await {
        Ok(i) if i.lab_id == lab => i,
        Ok(_) | Err(DomainError::NotFound { .. }) => return Err(ApiError::not_found("invitation")),
        Err(e) => return Err(e.into()),
    };
    close(state, caller, inv, InvitationState::Revoked).await
}

/// The caller's open invitations.
///
/// # Errors
/// Store failures.
pub async fn my_invitations(
    state: &AppState,
    caller: &Caller,
) -> ApiResult<Vec<InvitationResponse>> {
    let list = state
        .store
        .list_invitations(&InvitationFilter {
            user_id: Some(caller.principal.user_id),
            open_at: Some(state.clock.now()),
            ..Default::default()
        })
        .await?;
    Ok(views(state, list).await)
}

/// Accepts or declines one of the caller's invitations. Accepting adds the
/// membership (last in the caller's join order: their default lab stays);
/// a caller who is already a member keeps their role.
///
/// # Errors
/// `NotFound` for an invitation that is not the caller's; `Conflict` when
/// it expired or was already decided or revoked.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: InvitationId,
    accept: bool,
) -> ApiResult<InvitationResponse> {
    let inv = match state.store.get_invitation(id).await {
        Ok(i) if i.user_id == caller.principal.user_id => i,
        Ok(_) | Err(DomainError::NotFound { .. }) => return Err(ApiError::not_found("invitation")),
        Err(e) => return Err(e.into()),
    };
    let to = if accept {
        InvitationState::Accepted
    } else {
        InvitationState::Declined
    };
    close(state, caller, inv.clone(), to).await?;
    Ok(view(state, state.store.get_invitation(inv.id).await?).await)
}

/// Closes an open invitation as `to`, with its audit entry (and, when
/// accepted, the membership in the same commit).
async fn close(
    state: &AppState,
    caller: &Caller,
    inv: Invitation,
    to: InvitationState,
) -> ApiResult<()> {
    let now = state.clock.now();
    if inv.is_expired(now) {
        return Err(DomainError::Conflict(
            "the invitation has expired; ask the lab admin for a new one".into(),
        )
        .into());
    }
    if inv.state != InvitationState::Pending {
        return Err(DomainError::Conflict(format!(
            "the invitation was already {}",
            inv.state.as_str()
        ))
        .into());
    }
    let mut writes = vec![Write::CloseInvitation {
        id: inv.id,
        state: to,
        at: now,
        by: caller.principal.user_id,
    }];
    let mut details = serde_json::json!({
        "role": inv.role.as_str(),
        "user_id": inv.user_id.to_string(),
    });
    if to == InvitationState::Accepted {
        not_idp_managed(&state.store.get_user(inv.user_id).await?)?;
        // The invitation grants what its sender may grant now, not when it
        // was sent: a lab admin removed since cannot let themselves (or a
        // second account) back in through an invitation sent earlier.
        let sender_may = match state.store.get_user(inv.invited_by).await {
            Ok(u) => u.it_admin || role_in(state, u.id, inv.lab_id).await? == Some(Role::LabAdmin),
            Err(DomainError::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !sender_may {
            return Err(DomainError::Conflict(
                "the invitation is no longer valid: whoever sent it no longer manages this lab; ask a lab admin for a new one".into(),
            )
            .into());
        }
        let already = role_in(state, inv.user_id, inv.lab_id).await?;
        if already.is_none() {
            writes.push(Write::PutMembership(Membership {
                lab_id: inv.lab_id,
                user_id: inv.user_id,
                role: inv.role,
            }));
        }
        details["already_member"] = serde_json::Value::Bool(already.is_some());
        // Other open invitations into the same lab are done with too.
        let mut others = Vec::new();
        for other in state
            .store
            .list_invitations(&InvitationFilter {
                lab_id: Some(inv.lab_id),
                user_id: Some(inv.user_id),
                open_at: Some(now),
            })
            .await?
        {
            if other.id != inv.id {
                others.push(serde_json::Value::String(other.id.to_string()));
                writes.push(Write::CloseInvitation {
                    id: other.id,
                    state: InvitationState::Accepted,
                    at: now,
                    by: caller.principal.user_id,
                });
            }
        }
        details["also_closed"] = serde_json::Value::Array(others);
    }
    let action = match to {
        InvitationState::Accepted => "lab.invitation_accept",
        InvitationState::Declined => "lab.invitation_decline",
        InvitationState::Revoked | InvitationState::Pending => "lab.invitation_revoke",
    };
    let audit = caller.audit(Some(inv.lab_id), action, "invitation", inv.id, details);
    state.store.commit(writes, vec![audit]).await?;
    Ok(())
}

/// IT admins disable a user (refused on every request from then on, an
/// identity provider's valid token included) or enable them again. Works
/// for local and identity-provider users alike; nobody disables themselves.
///
/// # Errors
/// `forbidden` for anyone but an IT admin, `not_found` for an unknown user,
/// `conflict` for the caller's own account.
pub async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    raw_user: &str,
    disabled: bool,
) -> ApiResult<User> {
    caller.require_it_admin("disable or enable users")?;
    let mut user = find_user(state, raw_user)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if user.id == caller.principal.user_id {
        return Err(DomainError::Conflict(
            "you cannot disable your own account; ask another IT admin".into(),
        )
        .into());
    }
    if user.disabled == disabled {
        return Ok(user);
    }
    let audit = caller.audit(
        None,
        if disabled {
            "user.disable"
        } else {
            "user.enable"
        },
        "user",
        user.id,
        serde_json::json!({ "username": user.username.to_string() }),
    );
    state
        .store
        .commit(
            vec![Write::SetUserDisabled {
                user_id: user.id,
                disabled,
            }],
            vec![audit],
        )
        .await?;
    user.disabled = disabled;
    Ok(user)
}
