//! Who a verified token's subject is *now*: the user record and memberships
//! in the store, not the claims the token was signed with.
//!
//! Policy (issue 12):
//! - A platform-signed token is worth only what its subject holds in the
//!   store at the time of the request: the user must exist; `it_admin` and
//!   the lab memberships and roles are the store's, whatever the token
//!   claims. A token whose subject does not exist is refused
//!   (`Unauthenticated`, a message without detail). So a membership removed
//!   or downgraded applies on the very next request, and a token signed
//!   for a made-up user grants nothing.
//! - A token from an external identity provider (Cognito) whose subject has
//!   a local user record is treated the same way (the store is the truth
//!   for that user). A subject without a record is provisioned on its first
//!   request, and the memberships of provisioned (`idp_managed`) users are
//!   re-synced from each new token (`crate::provision`), so the store
//!   always holds who may do what. [`LiveAccess::resolve`] itself, without
//!   provisioning, keeps such a subject's claims.
//! - A disabled user is refused (`Forbidden`), whoever signed the token.
//! - The answer is cached per user for at most [`MAX_AGE_SECS`] seconds and
//!   only while the store's `access_generation` is unchanged, so a change of
//!   users or memberships committed through this process applies at once,
//!   and one made by another process (`westtek admin`, a second service)
//!   within seconds. Adapters that cannot tell their generation get no
//!   cache. The cache is bounded and emptied when full. Concurrent misses
//!   for one user wait for one store read (striped locks), so an expiring
//!   entry under load (hundreds of requests of one user in flight) costs
//!   one read, not hundreds.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use westtek_domain::ports::MetadataStore;
use westtek_domain::{DomainError, LabRole, Principal, Result, UserId};

/// Longest a cached answer is used, in seconds.
pub const MAX_AGE_SECS: i64 = 5;
const CAPACITY: usize = 10_000;
/// Locks that serialise store reads per user (a user always maps to the
/// same stripe).
const STRIPES: usize = 64;

/// What the store holds for a token's subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub username: String,
    pub it_admin: bool,
    /// In join order (the first is the default lab).
    pub memberships: Vec<LabRole>,
    /// Provisioned from an identity provider, which stays the truth for
    /// the memberships and the IT admin flag.
    pub idp_managed: bool,
    /// Refused on every request.
    pub disabled: bool,
}

impl Record {
    /// The principal this record makes of `user`.
    ///
    /// # Errors
    /// `Forbidden` when the user is disabled.
    pub fn principal(self, user: UserId) -> Result<Principal> {
        if self.disabled {
            return Err(disabled());
        }
        Ok(Principal {
            user_id: user,
            username: self.username,
            it_admin: self.it_admin,
            memberships: self.memberships,
        })
    }
}

/// The refusal of a disabled user.
pub fn disabled() -> DomainError {
    DomainError::Forbidden("your account is disabled; ask an IT admin to enable it".into())
}

#[derive(Clone, Debug)]
struct Entry {
    generation: u64,
    at: DateTime<Utc>,
    record: Option<Record>,
}

/// The live access of token subjects, briefly cached.
#[derive(Clone)]
pub struct LiveAccess {
    inner: Arc<Mutex<HashMap<UserId, Entry>>>,
    reading: Arc<[tokio::sync::Mutex<()>]>,
    /// Serialise provisioning and syncing of one user (`crate::provision`).
    provisioning: Arc<[tokio::sync::Mutex<()>]>,
}

impl Default for LiveAccess {
    fn default() -> Self {
        LiveAccess {
            inner: Arc::default(),
            reading: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            provisioning: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

/// What the store holds for `user` now.
async fn read(store: &dyn MetadataStore, user: UserId) -> Result<Option<Record>> {
    match store.get_user(user).await {
        Ok(u) => Ok(Some(Record {
            username: u.username.to_string(),
            it_admin: u.it_admin,
            idp_managed: u.idp_managed,
            disabled: u.disabled,
            memberships: store
                .memberships_of(user)
                .await?
                .into_iter()
                .map(|m| LabRole {
                    lab_id: m.lab_id,
                    role: m.role,
                })
                .collect(),
        })),
        Err(DomainError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The lock stripe of `user`.
fn stripe_of(user: UserId) -> usize {
    (user.as_uuid().as_u128() % STRIPES as u128) as usize
}

/// The refusal of a token whose subject is gone; says nothing more.
pub fn no_longer_valid() -> DomainError {
    DomainError::Unauthenticated("this sign-in is no longer valid; sign in again".into())
}

impl LiveAccess {
    /// The principal `claimed` (from a verified token) as it stands now.
    /// `platform_issued`: the token was signed by the platform itself.
    ///
    /// # Errors
    /// `Unauthenticated` when a platform-signed token's subject does not
    /// exist; `Forbidden` for a disabled user; store failures.
    pub async fn resolve(
        &self,
        store: &dyn MetadataStore,
        now: DateTime<Utc>,
        claimed: Principal,
        platform_issued: bool,
    ) -> Result<Principal> {
        match self.record(store, claimed.user_id, now).await? {
            Some(r) => r.principal(claimed.user_id),
            None if platform_issued => Err(no_longer_valid()),
            None => Ok(claimed),
        }
    }

    /// What the store holds for `user` now (briefly cached, see the module
    /// docs); `None` when there is no such user.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record(
        &self,
        store: &dyn MetadataStore,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Record>> {
        // Read the generation before the store: a change committed while
        // this request reads moves it, and the entry made here is stale at
        // once.
        let generation = store.access_generation();
        let Some(g) = generation else {
            return read(store, user).await;
        };
        if let Some(hit) = self.cached(user, g, now) {
            return Ok(hit);
        }
        let _reading = match self.reading.get(stripe_of(user)) {
            Some(m) => Some(m.lock().await),
            None => None,
        };
        // Someone else may have read it while this request waited.
        let generation = store.access_generation();
        if let Some(hit) = generation.and_then(|g| self.cached(user, g, now)) {
            return Ok(hit);
        }
        let record = read(store, user).await?;
        if let Some(g) = generation {
            self.remember(user, g, now, record.clone());
        }
        Ok(record)
    }

    /// Held while `user` is provisioned or synced, so concurrent first
    /// requests of one process create one user.
    pub async fn provisioning(&self, user: UserId) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.provisioning.get(stripe_of(user)) {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    fn cached(&self, user: UserId, generation: u64, now: DateTime<Utc>) -> Option<Option<Record>> {
        let map = self.inner.lock().ok()?;
        let e = map.get(&user)?;
        let fresh = e.generation == generation
            && e.at <= now
            && now - e.at < TimeDelta::seconds(MAX_AGE_SECS);
        fresh.then(|| e.record.clone())
    }

    fn remember(&self, user: UserId, generation: u64, at: DateTime<Utc>, record: Option<Record>) {
        if let Ok(mut map) = self.inner.lock() {
            if map.len() >= CAPACITY && !map.contains_key(&user) {
                map.clear();
            }
            map.insert(
                user,
                Entry {
                    generation,
                    at,
                    record,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Arc;
    use westtek_domain::ports::{SystemClock, Write};
    use westtek_domain::{Lab, LabId, LabQuotas, Membership, Role, Slug, User};
    use westtek_store::sqlite::SqliteStore;

    async fn store(path: &std::path::Path) -> SqliteStore {
        SqliteStore::open(path, Arc::new(SystemClock))
            .await
            .unwrap()
    }

    fn lab(name: &str) -> Lab {
        Lab {
            id: LabId::new(),
            name: Slug::parse_field(name, "name").unwrap(),
            display_name: name.into(),
            created_at: Utc::now(),
            quotas: LabQuotas::default(),
        }
    }

    fn claims(user: UserId) -> Principal {
        Principal {
            user_id: user,
            username: "claimed".into(),
            it_admin: true,
            memberships: vec![LabRole {
                lab_id: LabId::new(),
                role: Role::LabAdmin,
            }],
        }
    }

    #[tokio::test]
    async fn the_store_not_the_token_says_what_a_subject_may_do() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("meta.db");
        let s = store(&db).await;
        let l = lab("live");
        let u = User {
            id: UserId::new(),
            username: Slug::parse_field("rita", "username").unwrap(),
            display_name: "Rita".into(),
            it_admin: false,
            created_at: Utc::now(),
            idp_managed: false,
            disabled: false,
        };
        let member = |role| {
            Write::PutMembership(Membership {
                lab_id: l.id,
                user_id: u.id,
                role,
            })
        };
        s.commit(
            vec![
                Write::InsertLab(l.clone()),
                Write::InsertUser {
                    user: u.clone(),
                    password_hash: None,
                },
                member(Role::LabAdmin),
            ],
            vec![],
        )
        .await
        .unwrap();
        let live = LiveAccess::default();
        let now = Utc::now();
        let p = live.resolve(&s, now, claims(u.id), true).await.unwrap();
        assert_eq!(p.username, "rita");
        assert!(!p.it_admin, "the claim of it_admin is not honoured");
        assert_eq!(
            p.memberships,
            vec![LabRole {
                lab_id: l.id,
                role: Role::LabAdmin
            }]
        );

        // A change through this store applies at once, cache or not.
        s.commit(vec![member(Role::Researcher)], vec![])
            .await
            .unwrap();
        let p = live.resolve(&s, now, claims(u.id), true).await.unwrap();
        assert_eq!(p.role_in(l.id), Some(Role::Researcher));

        // A change by another process applies within MAX_AGE_SECS.
        let other = store(&db).await;
        other
            .commit(
                vec![Write::DeleteMembership {
                    lab_id: l.id,
                    user_id: u.id,
                }],
                vec![],
            )
            .await
            .unwrap();
        let p = live.resolve(&s, now, claims(u.id), true).await.unwrap();
        assert_eq!(p.role_in(l.id), Some(Role::Researcher), "cached");
        let later = now + TimeDelta::seconds(MAX_AGE_SECS);
        let p = live.resolve(&s, later, claims(u.id), true).await.unwrap();
        assert_eq!(p.role_in(l.id), None);
    }

    #[tokio::test]
    async fn a_subject_without_a_user_record_is_refused_unless_an_identity_provider_vouches() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir.path().join("meta.db")).await;
        let live = LiveAccess::default();
        let ghost = claims(UserId::new());
        let r = live.resolve(&s, Utc::now(), ghost.clone(), true).await;
        assert!(matches!(r, Err(DomainError::Unauthenticated(_))), "{r:?}");
        // Cognito users without a local record keep their groups' roles.
        let p = live
            .resolve(&s, Utc::now(), ghost.clone(), false)
            .await
            .unwrap();
        assert_eq!(p, ghost);
    }
}
