//! Sign-in with the platform's own identity (local profile): password or
//! one-time token in, a short-lived access token and a refresh token out.
//! Secrets are stored only as BLAKE3 hashes; one-time tokens die on first
//! use (the delete is part of the same transaction as the new session).
//! A disabled user cannot sign in or refresh a session.

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
    one_time_token_from(clock, user, ttl, secret::random_secret())
}

/// `one_time_token` with a secret made beforehand (first run writes it to
/// disk before committing, so a crash never leaves an admin without a link).
pub fn one_time_token_from(
    clock: &dyn Clock,
    user: UserId,
    ttl: std::time::Duration,
    s: String,
) -> (String, Write) {
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
    if user.disabled {
        return Err(crate::live::disabled());
    }
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
    let now = state.clock.now();
    state.sign_in_failures.check(username, now)?;
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
    let ok = argon2(move || password::verify_password(&pw, &hash)).await?;
    match (ok, user) {
        (true, Some(u)) => {
            state.sign_in_failures.clear(username);
            open_session(state, &u, vec![], "password", request_id).await
        }
        _ => {
            state.sign_in_failures.record(username, now);
            Err(DomainError::Unauthenticated(WRONG_CREDENTIALS.into()))
        }
    }
}

/// Runs an argon2 computation on the blocking pool, at most two at a time:
/// each takes ~19 MiB and tens of milliseconds of a core, so unbounded
/// concurrency would let unauthenticated requests exhaust memory and CPU.
///
/// # Errors
/// `Internal` when the task panicked.
pub async fn argon2<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _permit = SLOTS.acquire().await.map_err(DomainError::internal)?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(DomainError::internal)
}

/// Failed password sign-ins per username: after `MAX_FAILURES` within
/// `WINDOW`, further attempts are refused until the window has passed.
#[derive(Clone, Default)]
pub struct SignInLimiter {
    inner: std::sync::Arc<std::sync::Mutex<Failures>>,
}

/// Username → (failures, window start).
type Failures = std::collections::HashMap<String, (u32, DateTime<Utc>)>;

const MAX_FAILURES: u32 = 10;
const WINDOW_SECS: i64 = 15 * 60;

impl SignInLimiter {
    fn check(&self, username: &str, now: DateTime<Utc>) -> Result<()> {
        let Ok(map) = self.inner.lock() else {
            return Ok(());
        };
        match map.get(username) {
            Some((n, since)) if *n >= MAX_FAILURES && now - *since < ChronoDuration::seconds(WINDOW_SECS) => {
                Err(DomainError::RateLimited(
                    "too many failed sign-ins for this user; wait 15 minutes or ask an admin for a sign-in link".into(),
                ))
            }
            _ => Ok(()),
        }
    }

    fn record(&self, username: &str, now: DateTime<Utc>) {
        if let Ok(mut map) = self.inner.lock() {
            if map.len() > 100_000 {
                map.clear();
            }
            let e = map.entry(username.to_string()).or_insert((0, now));
            if now - e.1 >= ChronoDuration::seconds(WINDOW_SECS) {
                *e = (0, now);
            }
            e.0 += 1;
        }
    }

    fn clear(&self, username: &str) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(username);
        }
    }
}

/// An argon2 hash of a random password nobody knows, made once.
async fn dummy_hash() -> Result<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            argon2(|| password::hash_password(&secret::random_secret())).await?
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
    if user.disabled {
        return Err(crate::live::disabled());
    }
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
