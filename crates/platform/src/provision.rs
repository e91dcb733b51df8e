//! Users from an external identity provider (Cognito): created in the store
//! on their first request, their memberships kept in step with the
//! provider's groups afterwards (the seed's automated provisioning).
//!
//! Policy:
//! - A verified token that the platform did not sign, whose subject has no
//!   user record, creates one: id = the token's `sub` (Cognito's `sub` is a
//!   UUID, which is what a `UserId` holds; the verifier refuses any other),
//!   username from the token (made a valid slug; suffixed with the start of
//!   the id when a local user already has that name: a name never links an
//!   identity to an existing account), display name from `name` or `email`
//!   when the token has one, `it_admin` from the `it_admin` group, and one
//!   membership per `<lab id>:<role>` group whose lab exists (groups naming
//!   a lab that does not exist are ignored and logged). The user, the
//!   memberships and a `user.provisioned` audit entry are one commit.
//! - Two first requests at once create one user: requests of one process
//!   wait for each other (striped locks); a second process's insert fails
//!   with `Conflict` on the id, after which the stored user is used.
//! - A provisioned user is marked `idp_managed`: the provider stays the
//!   truth for their memberships and IT admin flag. Each newly verified
//!   token whose groups differ from the store re-syncs them in one commit
//!   audited as `user.memberships_synced`, so a group change applies on the
//!   user's next token. Users created locally keep the store as the truth:
//!   their tokens' groups are ignored.
//! - A disabled user stays refused, provisioned or not, with a valid token
//!   or not: provisioning never re-enables anyone and never syncs a
//!   disabled user.

use crate::live::Record;
use crate::state::AppState;
use std::collections::BTreeMap;
use westtek_domain::ports::Write;
use westtek_domain::{
    AuditDraft, DomainError, LabId, LabRole, Membership, Principal, Result, Role, Slug, User,
    UserId,
};

/// What an identity provider's token says about its subject, beyond the
/// principal its verifier made of it.
#[derive(Clone, Debug, Default)]
pub struct TokenProfile {
    /// `name`, else `email`, when the token carries one.
    pub display_name: Option<String>,
}

impl TokenProfile {
    /// The profile in a token that already verified.
    pub fn of_token(token: &str) -> Self {
        let claims = crate::token_cache::claims(token);
        let text = |k: &str| {
            claims
                .as_ref()
                .and_then(|c| c.get(k))
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        TokenProfile {
            display_name: text("name").or_else(|| text("email")),
        }
    }
}

/// The subject of `claimed` (verified, not platform-signed) as the store
/// holds it, provisioning it on its first request and re-syncing an
/// `idp_managed` user's memberships when `fresh` (the token was verified
/// now, not taken from the token cache).
///
/// # Errors
/// `Forbidden` for a disabled user; store failures.
pub async fn external_subject(
    state: &AppState,
    claimed: &Principal,
    profile: &TokenProfile,
    fresh: bool,
    request_id: &str,
) -> Result<Principal> {
    let now = state.clock.now();
    let record = state
        .access
        .record(&*state.store, claimed.user_id, now)
        .await?;
    let record = match record {
        None => provision(state, claimed, profile, request_id).await?,
        Some(r) if fresh && r.idp_managed && !r.disabled && !in_step(claimed, &r) => {
            sync(state, claimed, request_id).await?
        }
        Some(r) => r,
    };
    record.principal(claimed.user_id)
}

/// Whether the store already holds what the token says (before dropping
/// groups of unknown labs: a token naming one costs a lab lookup).
fn in_step(claimed: &Principal, r: &Record) -> bool {
    claimed.it_admin == r.it_admin && sorted(&claimed.memberships) == sorted(&r.memberships)
}

fn sorted(m: &[LabRole]) -> Vec<(LabId, Role)> {
    let mut v: Vec<_> = m.iter().map(|m| (m.lab_id, m.role)).collect();
    v.sort();
    v
}

/// The claimed memberships whose lab exists, and the lab ids that do not.
async fn existing_labs(
    state: &AppState,
    claimed: &Principal,
) -> Result<(Vec<LabRole>, Vec<LabId>)> {
    let mut kept = vec![];
    let mut unknown = vec![];
    for m in &claimed.memberships {
        match state.store.get_lab(m.lab_id).await {
            Ok(_) => kept.push(*m),
            Err(DomainError::NotFound { .. }) => unknown.push(m.lab_id),
            Err(e) => return Err(e),
        }
    }
    if !unknown.is_empty() {
        tracing::warn!(
            user = %claimed.user_id,
            labs = ?unknown.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "identity provider groups name labs that do not exist; ignored"
        );
    }
    Ok((kept, unknown))
}

/// A valid username made of what the token calls the user: characters a
/// slug cannot hold become `-`, leading punctuation is dropped, at most 64
/// characters; the id when nothing is left.
fn username_from(claimed: &str, id: UserId) -> String {
    let mapped: String = claimed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    if mapped.is_empty() {
        id.to_string()
    } else {
        mapped
    }
}

/// `base` with the first 8 hex digits of the id appended (for a name a
/// local user already holds).
fn disambiguated(base: &str, id: UserId) -> String {
    let tag: String = id.as_uuid().simple().to_string().chars().take(8).collect();
    let head: String = base.chars().take(64 - tag.len() - 1).collect();
    format!("{head}-{tag}")
}

fn record_of(user: &User, memberships: Vec<LabRole>) -> Record {
    Record {
        username: user.username.to_string(),
        it_admin: user.it_admin,
        memberships,
        idp_managed: user.idp_managed,
        disabled: user.disabled,
    }
}

/// What the store holds for `user`, read now (not from the cache).
async fn stored(state: &AppState, user: UserId) -> Result<Option<Record>> {
    match state.store.get_user(user).await {
        Ok(u) => {
            let m = state
                .store
                .memberships_of(user)
                .await?
                .into_iter()
                .map(|m| LabRole {
                    lab_id: m.lab_id,
                    role: m.role,
                })
                .collect();
            Ok(Some(record_of(&u, m)))
        }
        Err(DomainError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the user `claimed` names, with its memberships, in one commit.
async fn provision(
    state: &AppState,
    claimed: &Principal,
    profile: &TokenProfile,
    request_id: &str,
) -> Result<Record> {
    let id = claimed.user_id;
    let _serial = state.access.provisioning(id).await;
    // Another request may have provisioned the user while this one waited.
    if let Some(r) = stored(state, id).await? {
        return Ok(r);
    }
    let (memberships, unknown) = existing_labs(state, claimed).await?;
    let base = username_from(&claimed.username, id);
    let display_name: String = profile
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(&claimed.username)
        .chars()
        .take(200)
        .collect();
    let mut names = vec![base.clone(), disambiguated(&base, id)];
    names.dedup();
    for name in names {
        let user = User {
            id,
            username: Slug::parse_field(&name, "username")?,
            display_name: display_name.clone(),
            it_admin: claimed.it_admin,
            created_at: state.clock.now(),
            idp_managed: true,
            disabled: false,
        };
        let mut writes = vec![Write::InsertUser {
            user: user.clone(),
            password_hash: None,
        }];
        writes.extend(memberships.iter().map(|m| {
            Write::PutMembership(Membership {
                lab_id: m.lab_id,
                user_id: id,
                role: m.role,
            })
        }));
        let audit = AuditDraft {
            actor_id: Some(id),
            actor_name: user.username.to_string(),
            lab_id: memberships.first().map(|m| m.lab_id),
            action: "user.provisioned".into(),
            target_kind: "user".into(),
            target_id: id.to_string(),
            request_id: request_id.to_string(),
            details: serde_json::json!({
                "source": "identity_provider",
                "username": user.username,
                "claimed_username": claimed.username,
                "it_admin": user.it_admin,
                "memberships": memberships,
                "ignored_labs": unknown,
            }),
        };
        match state.store.commit(writes, vec![audit]).await {
            Ok(_) => {
                tracing::info!(user = %id, username = %user.username, memberships = memberships.len(), "provisioned a user from the identity provider");
                return Ok(record_of(&user, memberships));
            }
            Err(DomainError::Conflict(why)) => {
                // Another process made this user first, or a different
                // user holds the name: try the next name.
                if let Some(r) = stored(state, id).await? {
                    return Ok(r);
                }
                tracing::debug!(user = %id, %why, "username taken; trying a disambiguated one");
            }
            Err(e) => return Err(e),
        }
    }
    Err(DomainError::Conflict(format!(
        "cannot create the user for '{}': its username is taken; ask an IT admin to rename the local user",
        claimed.username
    )))
}

/// Brings an `idp_managed` user's memberships and IT admin flag in step
/// with the token, in one audited commit. Retried once when a concurrent
/// change made the commit fail.
async fn sync(state: &AppState, claimed: &Principal, request_id: &str) -> Result<Record> {
    let id = claimed.user_id;
    let _serial = state.access.provisioning(id).await;
    let (wanted, unknown) = existing_labs(state, claimed).await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(current) = stored(state, id).await? else {
            // Gone meanwhile: the next request provisions it again.
            return Err(crate::live::no_longer_valid());
        };
        if current.disabled || !current.idp_managed {
            return Ok(current);
        }
        let have: BTreeMap<LabId, Role> = current
            .memberships
            .iter()
            .map(|m| (m.lab_id, m.role))
            .collect();
        let want: BTreeMap<LabId, Role> = wanted.iter().map(|m| (m.lab_id, m.role)).collect();
        let mut writes = vec![];
        let (mut added, mut changed, mut removed) = (vec![], vec![], vec![]);
        for (lab, role) in &want {
            match have.get(lab) {
                Some(r) if r == role => {}
                Some(r) => changed.push(serde_json::json!({"lab_id": lab, "from": r, "to": role})),
                None => added.push(serde_json::json!({"lab_id": lab, "role": role})),
            }
            if have.get(lab) != Some(role) {
                writes.push(Write::PutMembership(Membership {
                    lab_id: *lab,
                    user_id: id,
                    role: *role,
                }));
            }
        }
        for (lab, role) in &have {
            if !want.contains_key(lab) {
                removed.push(serde_json::json!({"lab_id": lab, "role": role}));
                writes.push(Write::DeleteMembership {
                    lab_id: *lab,
                    user_id: id,
                });
            }
        }
        if claimed.it_admin != current.it_admin {
            writes.push(Write::SetItAdmin {
                user_id: id,
                it_admin: claimed.it_admin,
            });
        }
        if writes.is_empty() {
            return Ok(current);
        }
        let audit = AuditDraft {
            actor_id: Some(id),
            actor_name: current.username.clone(),
            lab_id: wanted
                .first()
                .or(current.memberships.first())
                .map(|m| m.lab_id),
            action: "user.memberships_synced".into(),
            target_kind: "user".into(),
            target_id: id.to_string(),
            request_id: request_id.to_string(),
            details: serde_json::json!({
                "source": "identity_provider",
                "added": added,
                "changed": changed,
                "removed": removed,
                "it_admin": { "before": current.it_admin, "after": claimed.it_admin },
                "ignored_labs": unknown,
            }),
        };
        match state.store.commit(writes, vec![audit]).await {
            Ok(_) => {
                tracing::info!(user = %id, added = added.len(), changed = changed.len(), removed = removed.len(), "re-synced a user's memberships from the identity provider");
                return match stored(state, id).await? {
                    Some(r) => Ok(r),
                    None => Err(crate::live::no_longer_valid()),
                };
            }
            Err(e @ (DomainError::NotFound { .. } | DomainError::Conflict(_))) if attempt < 2 => {
                tracing::debug!(user = %id, error = %e, "membership sync raced another change; retrying");
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_that_is_not_a_slug_is_made_one() {
        let id = UserId::new();
        assert_eq!(username_from("rita", id), "rita");
        assert_eq!(
            username_from("Ada.Lovelace@lab.example", id),
            "Ada.Lovelace-lab.example"
        );
        assert_eq!(username_from("__x y", id), "x-y");
        assert_eq!(username_from("@@@", id), id.to_string());
        assert_eq!(username_from(&"a".repeat(100), id).len(), 64);
        let d = disambiguated(&"a".repeat(64), id);
        assert_eq!(d.len(), 64);
        assert!(Slug::parse_field(&d, "username").is_ok());
        assert!(d.ends_with(&id.as_uuid().simple().to_string()[..8]));
    }
}
