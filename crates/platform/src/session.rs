//! Sign-in with the platform's own identity (local profile): password or
//! one-time token in, a short-lived access token and a refresh token out.
//! Secrets are stored only as BLAKE3 hashes; one-time tokens die on first
//! use (the delete is part of the same transaction as the new session).

use crate::state::AppState;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use westtek_auth::local::IssuedToken;
use westtek_auth::{password, secret};
use westtek_domain::ports::{Clock, MetadataStore, Write};
use westtek_domain::{
    AuditDraft, DomainError, LabRole, Principal, Result, StoredToken, TokenKind, User, UserId,
};

/// A signed-in session.
#[derive(Clone, Debug)]
pub struct Session {
    pub access: IssuedToken,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub principal: Principal,
}

const WRONG_CREDENTIALS: &str = "wrong username or password";

fn chrono_ttl(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// The principal a user's token speaks for.
///
/// # Errors
/// Store failures.
pub async fn principal_for(store: &dyn MetadataStore, user: &User) -> Result<Principal> {
    let memberships = store.memberships_of(user.id).await?;
    Ok(Principal {
        user_id: user.id,
        username: user.username.to_string(),
        it_admin: user.it_admin,
        memberships: memberships
            .into_iter()
            .map(|m| LabRole {
                lab_id: m.lab_id,
                role: m.role,
            })
            .collect(),
    })
}

/// A new one-time sign-in token for `user`: the secret to hand out and the
/// write that stores its hash.
pub fn one_time_token(
    clock: &dyn Clock,
    user: UserId,
    ttl: std::time::Duration,
) -> (String, Write) {
    let s = secret::random_secret();
    let now = clock.now();
    let w = Write::InsertToken(StoredToken {
        hash: secret::secret_hash(&s),
        kind: TokenKind::OneTimeLogin,
        user_id: user,
        expires_at: now + chrono_ttl(ttl),
        created_at: now,
    });
    (s, w)
}

fn issuer(state: &AppState) -> Result<&westtek_auth::local::LocalTokenIssuer> {
    state.issuer.as_ref().ok_or_else(|| {
        DomainError::Forbidden(
            "sign-in is handled by the identity provider (Cognito) in this deployment".into(),
        )
    })
}

async fn open_session(
    state: &AppState,
    user: &User,
    mut writes: Vec<Write>,
    method: &str,
    request_id: &str,
) -> Result<Session> {
    let principal = principal_for(&*state.store, user).await?;
    let now = state.clock.now();
    let access = issuer(state)?.issue_access(&principal, now)?;
    let refresh = secret::random_secret();
    let refresh_expires_at = now + chrono_ttl(state.config.refresh_ttl);
    writes.push(Write::InsertToken(StoredToken {
        hash: secret::secret_hash(&refresh),
        kind: TokenKind::Refresh,
        user_id: user.id,
        expires_at: refresh_expires_at,
        created_at: now,
    }));
    let audit = AuditDraft {
        actor_id: Some(user.id),
        actor_name: user.username.to_string(),
        lab_id: principal.memberships.first().map(|m| m.lab_id),
        action: "auth.sign_in".into(),
        target_kind: "user".into(),
        target_id: user.id.to_string(),
        request_id: request_id.to_string(),
        details: serde_json::json!({ "method": method }),
    };
    state.store.commit(writes, vec![audit]).await?;
    Ok(Session {
        access,
        refresh_token: refresh,
        refresh_expires_at,
        principal,
    })
}

/// Signs in with username and password.
///
/// # Errors
/// `Unauthenticated` for an unknown user or a wrong password (same message).
pub async fn sign_in_password(
    state: &AppState,
    username: &str,
    pw: &str,
    request_id: &str,
) -> Result<Session> {
    issuer(state)?;
    let creds = state.store.find_user_by_username(username).await?;
    let (user, hash) = match creds {
        Some(c) => (Some(c.user), c.password_hash),
        None => (None, None),
    };
    // Always run one argon2 verification so timing does not reveal which
    // usernames exist.
    let hash = match hash {
        Some(h) => h,
        None => dummy_hash().await?,
    };
    let pw = pw.to_string();
    let ok = tokio::task::spawn_blocking(move || password::verify_password(&pw, &hash))
        .await
        .map_err(DomainError::internal)?;
    match (ok, user) {
        (true, Some(u)) => open_session(state, &u, vec![], "password", request_id).await,
        _ => Err(DomainError::Unauthenticated(WRONG_CREDENTIALS.into())),
    }
}

/// An argon2 hash of a random password nobody knows, made once.
async fn dummy_hash() -> Result<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            tokio::task::spawn_blocking(|| password::hash_password(&secret::random_secret()))
                .await
                .map_err(DomainError::internal)?
        })
        .await
        .cloned()
}

async fn valid_token(state: &AppState, s: &str, kind: TokenKind) -> Result<(StoredToken, User)> {
    let what = match kind {
        TokenKind::OneTimeLogin => {
            "this sign-in link is invalid, used or expired; ask an admin for a new one"
        }
        TokenKind::Refresh => "your session has expired; sign in again",
    };
    let t = state
        .store
        .get_token(&secret::secret_hash(s), kind)
        .await?
        .ok_or_else(|| DomainError::Unauthenticated(what.into()))?;
    if t.expires_at <= state.clock.now() {
        return Err(DomainError::Unauthenticated(what.into()));
    }
    let user = state.store.get_user(t.user_id).await?;
    Ok((t, user))
}

/// Signs in with a one-time token, which is spent.
///
/// # Errors
/// `Unauthenticated` when the token is unknown, expired or already used.
pub async fn sign_in_one_time(state: &AppState, token: &str, request_id: &str) -> Result<Session> {
    issuer(state)?;
    let (t, user) = valid_token(state, token, TokenKind::OneTimeLogin).await?;
    open_session(
        state,
        &user,
        vec![Write::DeleteToken { hash: t.hash }],
        "one_time_token",
        request_id,
    )
    .await
    .map_err(|e| match e {
        DomainError::NotFound { .. } => DomainError::Unauthenticated(
            "this sign-in link is invalid, used or expired; ask an admin for a new one".into(),
        ),
        e => e,
    })
}

/// Exchanges a refresh token for a new session, revoking the old token.
///
/// # Errors
/// `Unauthenticated` when the refresh token is unknown or expired.
pub async fn refresh_session(state: &AppState, refresh: &str, request_id: &str) -> Result<Session> {
    issuer(state)?;
    let (t, user) = valid_token(state, refresh, TokenKind::Refresh).await?;
    open_session(
        state,
        &user,
        vec![Write::DeleteToken { hash: t.hash }],
        "refresh_token",
        request_id,
    )
    .await
    .map_err(|e| match e {
        DomainError::NotFound { .. } => {
            DomainError::Unauthenticated("your session has expired; sign in again".into())
        }
        e => e,
    })
}

/// A fresh access token for a browser whose access cookie expired, without
/// rotating its refresh token.
///
/// # Errors
/// `Unauthenticated` when the refresh token is unknown or expired.
pub async fn access_from_refresh(
    state: &AppState,
    refresh: &str,
) -> Result<(IssuedToken, Principal)> {
    let (_, user) = valid_token(state, refresh, TokenKind::Refresh).await?;
    let principal = principal_for(&*state.store, &user).await?;
    let issued = issuer(state)?.issue_access(&principal, state.clock.now())?;
    Ok((issued, principal))
}

/// Signs out: the refresh token stops working.
///
/// # Errors
/// Store failures.
pub async fn sign_out(
    state: &AppState,
    principal: &Principal,
    refresh: Option<&str>,
    request_id: &str,
) -> Result<()> {
    let mut writes = vec![];
    if let Some(r) = refresh {
        if state
            .store
            .get_token(&secret::secret_hash(r), TokenKind::Refresh)
            .await?
            .is_some()
        {
            writes.push(Write::DeleteToken {
                hash: secret::secret_hash(r),
            });
        }
    }
    let audit = AuditDraft {
        actor_id: Some(principal.user_id),
        actor_name: principal.username.clone(),
        lab_id: principal.memberships.first().map(|m| m.lab_id),
        action: "auth.sign_out".into(),
        target_kind: "user".into(),
        target_id: principal.user_id.to_string(),
        request_id: request_id.to_string(),
        details: serde_json::json!({}),
    };
    state.store.commit(writes, vec![audit]).await.map(|_| ())
}
