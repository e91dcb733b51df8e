//! Trying several token verifiers in turn (platform-signed tokens, then
//! Cognito).
//!
//! Policy: the first verifier that accepts the token wins. When none does,
//! a failure other than `Unauthenticated` (an identity provider that could
//! not be reached) is reported in preference, because the token may be
//! valid and the client should retry rather than sign in again; otherwise
//! the last `Unauthenticated` error is returned.

use async_trait::async_trait;
use std::sync::Arc;
use westtek_domain::ports::TokenVerifier;
use westtek_domain::{DomainError, Principal, Result};

/// Accepts a token when any of its verifiers does, trying them in order.
#[derive(Clone)]
pub struct FirstOf(pub Vec<Arc<dyn TokenVerifier>>);

impl std::fmt::Debug for FirstOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("FirstOf").field(&self.0.len()).finish()
    }
}

#[async_trait]
impl TokenVerifier for FirstOf {
    async fn verify(&self, token: &str) -> Result<Principal> {
        let mut last_unauthenticated = None;
        let mut other = None;
        for v in &self.0 {
            match v.verify(token).await {
                Ok(p) => return Ok(p),
                Err(e @ DomainError::Unauthenticated(_)) => last_unauthenticated = Some(e),
                Err(e) => other = Some(e),
            }
        }
        Err(other.or(last_unauthenticated).unwrap_or_else(|| {
            DomainError::Unauthenticated("no token verifier is configured".to_owned())
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use westtek_domain::UserId;

    struct Fixed(Result<Principal>);

    #[async_trait]
    impl TokenVerifier for Fixed {
        async fn verify(&self, _token: &str) -> Result<Principal> {
            self.0.clone()
        }
    }

    fn principal(name: &str) -> Principal {
        Principal {
            user_id: UserId::new(),
            username: name.into(),
            it_admin: false,
            memberships: vec![],
        }
    }

    fn no(msg: &str) -> Arc<dyn TokenVerifier> {
        Arc::new(Fixed(Err(DomainError::Unauthenticated(msg.into()))))
    }

    fn yes(p: &Principal) -> Arc<dyn TokenVerifier> {
        Arc::new(Fixed(Ok(p.clone())))
    }

    #[tokio::test]
    async fn the_first_verifier_that_accepts_wins() {
        let a = principal("a");
        let b = principal("b");
        let v = FirstOf(vec![no("x"), yes(&a), yes(&b)]);
        assert_eq!(v.verify("t").await.unwrap(), a);
    }

    #[tokio::test]
    async fn when_all_reject_the_last_rejection_is_returned() {
        let v = FirstOf(vec![no("first"), no("last")]);
        assert_eq!(
            v.verify("t").await.unwrap_err(),
            DomainError::Unauthenticated("last".into())
        );
    }

    #[tokio::test]
    async fn an_unreachable_identity_provider_is_not_reported_as_bad_credentials() {
        let down = DomainError::Upstream {
            code: "identity_provider_unavailable",
            message: "down".into(),
        };
        let v = FirstOf(vec![Arc::new(Fixed(Err(down.clone()))), no("last")]);
        assert_eq!(v.verify("t").await.unwrap_err(), down);
    }

    #[tokio::test]
    async fn no_verifiers_reject_everything() {
        assert!(matches!(
            FirstOf(vec![]).verify("t").await,
            Err(DomainError::Unauthenticated(_))
        ));
    }
}
