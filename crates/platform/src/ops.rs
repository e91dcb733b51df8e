//! Administrative operations shared by the HTTP API and the `westtek admin`
//! commands, so both validate and audit the same way.

use crate::session;
use chrono::{DateTime, Utc};
use westtek_auth::password;
use westtek_domain::ports::{Clock, MetadataStore, Write};
use westtek_domain::{
    AuditDraft, DomainError, Lab, LabId, LabQuotas, Membership, Result, Role, Slug, User, UserId,
};

/// Who performs an administrative operation.
#[derive(Clone, Debug)]
pub struct Actor {
    pub id: Option<UserId>,
    pub name: String,
    pub request_id: String,
    /// An IT admin acting explicitly in a lab they are not a member of.
    pub acting_it_admin: bool,
}

impl Actor {
    /// The operator at the machine, using the CLI on the data dir.
    pub fn local_operator() -> Self {
        let who = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        Actor {
            id: None,
            name: format!("{who} (westtek cli)"),
            request_id: format!("cli-{}", westtek_domain::EventId::new()),
            acting_it_admin: false,
        }
    }

    fn audit(
        &self,
        lab: Option<LabId>,
        action: &str,
        kind: &str,
        target: String,
        mut details: serde_json::Value,
    ) -> AuditDraft {
        if let (true, serde_json::Value::Object(map)) = (self.acting_it_admin, &mut details) {
            map.insert("acting_it_admin".into(), serde_json::Value::Bool(true));
        }
        AuditDraft {
            actor_id: self.id,
            actor_name: self.name.clone(),
            lab_id: lab,
            action: action.into(),
            target_kind: kind.into(),
            target_id: target,
            request_id: self.request_id.clone(),
            details,
        }
    }
}

/// Creates a lab.
///
/// # Errors
/// `Validation` for a bad name, `Conflict` when the name is taken.
pub async fn create_lab(
    store: &dyn MetadataStore,
    clock: &dyn Clock,
    actor: &Actor,
    name: &str,
    display_name: Option<&str>,
    quotas: Option<LabQuotas>,
) -> Result<Lab> {
    let lab = Lab {
        id: LabId::new(),
        name: Slug::parse_field(name, "name")?,
        display_name: display_name
            .unwrap_or(name)
            .trim()
            .chars()
            .take(200)
            .collect(),
        created_at: clock.now(),
        quotas: quotas.unwrap_or_default(),
    };
    let audit = actor.audit(
        Some(lab.id),
        "lab.create",
        "lab",
        lab.id.to_string(),
        serde_json::json!({ "name": lab.name, "quotas": lab.quotas }),
    );
    store
        .commit(vec![Write::InsertLab(lab.clone())], vec![audit])
        .await?;
    Ok(lab)
}

/// Changes a lab's quotas.
///
/// # Errors
/// `NotFound` for an unknown lab.
pub async fn set_lab_quotas(
    store: &dyn MetadataStore,
    actor: &Actor,
    lab: LabId,
    quotas: LabQuotas,
) -> Result<Lab> {
    let mut l = store.get_lab(lab).await?;
    let before = l.quotas;
    l.quotas = quotas;
    let audit = actor.audit(
        Some(lab),
        "lab.update_quotas",
        "lab",
        lab.to_string(),
        serde_json::json!({ "before": before, "after": quotas }),
    );
    store
        .commit(vec![Write::UpdateLab(l.clone())], vec![audit])
        .await?;
    Ok(l)
}

/// What `create_user` made.
#[derive(Clone, Debug)]
pub struct CreatedUser {
    pub user: User,
    /// A one-time sign-in token when no password was given.
    pub one_time_token: Option<String>,
    pub one_time_expires_at: Option<DateTime<Utc>>,
}

/// What to create.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: Option<&'a str>,
    /// The lab and role (`researcher` or `lab_admin`), if any.
    pub membership: Option<(LabId, Role)>,
    pub it_admin: bool,
    pub password: Option<&'a str>,
    pub one_time_ttl: std::time::Duration,
    /// The one-time secret to issue (default: a fresh random one).
    pub one_time_secret: Option<String>,
}

/// Creates a user, optionally in a lab; without a password a one-time
/// sign-in token is issued instead.
///
/// # Errors
/// `Validation` for a bad username or role, `NotFound` for an unknown lab,
/// `Conflict` for a taken username.
pub async fn create_user(
    store: &dyn MetadataStore,
    clock: &dyn Clock,
    actor: &Actor,
    new: NewUser<'_>,
) -> Result<CreatedUser> {
    let user = User {
        id: UserId::new(),
        username: Slug::parse_field(new.username, "username")?,
        display_name: new
            .display_name
            .unwrap_or(new.username)
            .trim()
            .chars()
            .take(200)
            .collect(),
        it_admin: new.it_admin,
        created_at: clock.now(),
        idp_managed: false,
        disabled: false,
    };
    if let Some((lab, role)) = new.membership {
        if role == Role::ItAdmin {
            return Err(DomainError::invalid(
                "role",
                "it_admin is a platform role, not a lab role; use researcher or lab_admin",
            ));
        }
        store.get_lab(lab).await?;
    }
    let password_hash = match new.password {
        Some(pw) => {
            let pw = pw.to_string();
            Some(crate::session::argon2(move || password::hash_password(&pw)).await??)
        }
        None => None,
    };
    let mut writes = vec![Write::InsertUser {
        user: user.clone(),
        password_hash: password_hash.clone(),
    }];
    if let Some((lab_id, role)) = new.membership {
        writes.push(Write::PutMembership(Membership {
            lab_id,
            user_id: user.id,
            role,
        }));
    }
    let mut one_time = None;
    if password_hash.is_none() {
        let (secret, w) = match new.one_time_secret.clone() {
            Some(s) => session::one_time_token_from(clock, user.id, new.one_time_ttl, s),
            None => session::one_time_token(clock, user.id, new.one_time_ttl),
        };
        writes.push(w);
        one_time = Some(secret);
    }
    let audit = actor.audit(
        new.membership.map(|m| m.0),
        "user.create",
        "user",
        user.id.to_string(),
        serde_json::json!({
            "username": user.username,
            "role": new.membership.map(|m| m.1.as_str()),
            "it_admin": user.it_admin,
            "one_time_token_issued": one_time.is_some(),
        }),
    );
    store.commit(writes, vec![audit]).await?;
    Ok(CreatedUser {
        user,
        one_time_expires_at: one_time.as_ref().map(|_| {
            clock.now()
                + chrono::Duration::from_std(new.one_time_ttl).unwrap_or(chrono::Duration::MAX)
        }),
        one_time_token: one_time,
    })
}

/// Disables a user (refused on every request, whatever token they bring,
/// an identity provider's included) or enables them again. Audited as
/// `user.disable` / `user.enable`; setting the state a user already has
/// changes nothing and writes no entry.
///
/// # Errors
/// `NotFound` for an unknown user.
pub async fn set_user_disabled(
    store: &dyn MetadataStore,
    actor: &Actor,
    user: UserId,
    disabled: bool,
) -> Result<User> {
    let mut u = store.get_user(user).await?;
    if u.disabled == disabled {
        return Ok(u);
    }
    let lab = store.memberships_of(user).await?.first().map(|m| m.lab_id);
    let audit = actor.audit(
        lab,
        if disabled {
            "user.disable"
        } else {
            "user.enable"
        },
        "user",
        u.id.to_string(),
        serde_json::json!({ "username": u.username, "idp_managed": u.idp_managed }),
    );
    store
        .commit(
            vec![Write::SetUserDisabled {
                user_id: user,
                disabled,
            }],
            vec![audit],
        )
        .await?;
    u.disabled = disabled;
    Ok(u)
}

/// Issues a new one-time sign-in token for an existing user.
///
/// # Errors
/// `NotFound` for an unknown user.
pub async fn issue_sign_in_token(
    store: &dyn MetadataStore,
    clock: &dyn Clock,
    actor: &Actor,
    user: UserId,
    ttl: std::time::Duration,
) -> Result<String> {
    let u = store.get_user(user).await?;
    let lab = store.memberships_of(user).await?.first().map(|m| m.lab_id);
    let (secret, w) = session::one_time_token(clock, user, ttl);
    let audit = actor.audit(
        lab,
        "user.issue_sign_in_token",
        "user",
        u.id.to_string(),
        serde_json::json!({ "username": u.username }),
    );
    store.commit(vec![w], vec![audit]).await?;
    Ok(secret)
}
