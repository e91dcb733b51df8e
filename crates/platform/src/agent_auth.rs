//! The credential of an environment's agent (`westtek agent`, issue 15).
//!
//! Policy:
//! - An agent credential is `wtagent_<environment id>_<secret>`: 32 random
//!   bytes shown once to whoever adopted the environment (or issued a new
//!   one); the environment's record keeps only the secret's BLAKE3 hash.
//! - It opens the agent API (`/api/agent/v1/…`) and nothing else: every
//!   user route answers 401 to it, and the agent API takes the environment
//!   from the credential, never from the request, so an agent cannot name
//!   another environment. It carries no user, lab-wide or admin right.
//! - It is checked against the store on every request: issuing a new
//!   credential, revoking it, deleting the environment, or the issuer
//!   losing access to the lab (disabled, removed) stops it at once.
//! - What an agent changes is audited with the actor `agent:<credential
//!   id>@<host>`.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use westtek_auth::secret::{random_secret, secret_hash};
use westtek_domain::{
    AgentCredential, AuditDraft, DomainError, Environment, EnvironmentId, EnvironmentStatus, UserId,
};

/// Prefix of every agent credential.
pub const AGENT_TOKEN_PREFIX: &str = "wtagent_";

/// A new credential for `env`: the token to hand over once, and what the
/// environment's record keeps.
pub fn mint(env: EnvironmentId, by: UserId, now: DateTime<Utc>) -> (String, AgentCredential) {
    let secret = random_secret();
    let cred = AgentCredential {
        id: secret_hash(&format!("id:{secret}"))[..12].to_string(),
        secret_hash: secret_hash(&secret),
        issued_at: now,
        issued_by: by,
    };
    (format!("{AGENT_TOKEN_PREFIX}{env}_{secret}"), cred)
}

/// The environment and secret an agent token names (syntax only).
pub fn parse(token: &str) -> Option<(EnvironmentId, &str)> {
    let rest = token.strip_prefix(AGENT_TOKEN_PREFIX)?;
    let (env, secret) = rest.split_once('_')?;
    let env = EnvironmentId::parse(env).ok()?;
    (secret.len() == 43).then_some((env, secret))
}

/// Whether `token` looks like an agent credential (the user middleware
/// refuses those without asking the identity provider).
pub fn is_agent_token(token: &str) -> bool {
    token.starts_with(AGENT_TOKEN_PREFIX)
}

/// Whether `secret` is the one `cred` was issued with (constant time).
fn matches(cred: &AgentCredential, secret: &str) -> bool {
    match blake3::Hash::from_hex(&cred.secret_hash) {
        Ok(stored) => stored == blake3::hash(secret.as_bytes()),
        Err(_) => false,
    }
}

/// An authenticated agent: the one environment its credential opens.
#[derive(Clone, Debug)]
pub struct AgentCaller {
    /// The environment as stored when the request arrived.
    pub env: Environment,
    pub credential_id: String,
    pub request_id: String,
}

fn refused() -> ApiError {
    DomainError::Unauthenticated(
        "this agent credential is not valid: it was revoked or replaced, or its environment was deleted; adopt the environment again or ask for a new credential".into(),
    )
    .into()
}

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = crate::auth::bearer(&parts.headers).ok_or_else(|| {
            ApiError::from(DomainError::Unauthenticated(
                "the agent API needs the agent's credential: Authorization: Bearer wtagent_…"
                    .into(),
            ))
        })?;
        let (env_id, secret) = parse(token).ok_or_else(refused)?;
        let env = match state.store.get_environment(env_id).await {
            Ok(e) => e,
            Err(DomainError::NotFound { .. }) => return Err(refused()),
            Err(e) => return Err(e.into()),
        };
        let cred = env.agent_credential.as_ref().ok_or_else(refused)?;
        if !matches(cred, secret) || env.status == EnvironmentStatus::Deleting {
            return Err(refused());
        }
        // The credential speaks for whoever issued it: it stops with their
        // access to the lab (disabled, or no longer a member).
        let issuer_ok = match state.store.get_user(cred.issued_by).await {
            Ok(u) if !u.disabled => {
                u.it_admin
                    || state
                        .store
                        .memberships_of(u.id)
                        .await?
                        .iter()
                        .any(|m| m.lab_id == env.lab_id)
            }
            Ok(_) | Err(DomainError::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !issuer_ok {
            return Err(DomainError::Unauthenticated(
                "this agent credential was issued by someone who no longer has access to the lab; a member of the lab must issue a new one".into(),
            )
            .into());
        }
        let request_id = crate::auth::request_id(&parts.headers);
        tracing::Span::current().record("lab", tracing::field::display(env.lab_id));
        Ok(AgentCaller {
            credential_id: cred.id.clone(),
            env,
            request_id,
        })
    }
}

impl AgentCaller {
    /// The audit actor name of this agent.
    pub fn actor_name(&self) -> String {
        match &self.env.adopted {
            Some(a) => format!("agent:{}@{}", self.credential_id, a.host),
            None => format!("agent:{}", self.credential_id),
        }
    }

    /// An audit entry for something this agent did.
    pub fn audit(
        &self,
        action: &str,
        target_kind: &str,
        target_id: impl ToString,
        details: serde_json::Value,
    ) -> AuditDraft {
        AuditDraft {
            actor_id: None,
            actor_name: self.actor_name(),
            lab_id: Some(self.env.lab_id),
            action: action.to_string(),
            target_kind: target_kind.to_string(),
            target_id: target_id.to_string(),
            request_id: self.request_id.clone(),
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_parses_back_to_its_environment_and_matches_only_its_secret() {
        let env = EnvironmentId::new();
        let (token, cred) = mint(env, UserId::new(), Utc::now());
        let (parsed, secret) = parse(&token).unwrap();
        assert_eq!(parsed, env);
        assert!(matches(&cred, secret));
        let (other, _) = mint(env, UserId::new(), Utc::now());
        let (_, other_secret) = parse(&other).unwrap();
        assert!(!matches(&cred, other_secret));
        assert!(!token.contains(&cred.secret_hash));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let env = EnvironmentId::new();
        for t in [
            "wtagent_".to_string(),
            format!("wtagent_{env}"),
            format!("wtagent_{env}_short"),
            format!("wtagent_not-a-uuid_{}", "a".repeat(43)),
            format!("eyJ{env}_{}", "a".repeat(43)),
        ] {
            assert!(parse(&t).is_none(), "{t}");
        }
    }
}
