//! `CognitoVerifier` against a real user pool on moto: a pool, an app
//! client, groups and a user made with the AWS SDK, the user signed in with
//! `AdminInitiateAuth` and `InitiateAuth`, and moto's own RS256 ID and
//! access tokens verified with the JWKS fetched from moto.
//!
//! moto's tokens carry the real AWS issuer
//! (`https://cognito-idp.<region>.amazonaws.com/<pool id>`) while its JWKS
//! is served at `http://<moto>/<pool id>/.well-known/jwks.json`: the
//! verifier's `jwks_url` is configured apart from its `issuer` (see
//! `CognitoConfig`). moto signs every pool's tokens with one key, so a
//! token of another pool is refused here by its `iss` alone (on AWS its
//! signing key would not be in the pool's JWKS either).

use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, AuthenticationResultType, ExplicitAuthFlowsType, MessageActionType,
};
use aws_sdk_cognitoidentityprovider::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{TimeDelta, Utc};
use serde_json::Value;
use std::time::Duration;
use westtek_auth::cognito::{CognitoConfig, CognitoVerifier};
use westtek_aws::testing::Moto;
use westtek_domain::ports::TokenVerifier;
use westtek_domain::{DomainError, LabId, Principal, Role, UserId};

const PASSWORD: &str = "Correct-Horse-9-Battery";

/// A user pool on moto with one app client.
struct Pool {
    /// Kept alive for the pool's lifetime (`None`: a second pool on the
    /// first pool's moto).
    _moto: Option<Moto>,
    endpoint: String,
    idp: Client,
    id: String,
    client_id: String,
}

impl Pool {
    async fn create(moto: Moto) -> Pool {
        let idp = Client::new(&moto.config());
        let (id, client_id) = new_pool(&idp, "westtek-lab-users").await;
        Pool {
            endpoint: moto.endpoint(),
            _moto: Some(moto),
            idp,
            id,
            client_id,
        }
    }

    /// The real AWS issuer moto writes into this pool's tokens.
    fn issuer(&self) -> String {
        format!("https://cognito-idp.us-east-1.amazonaws.com/{}", self.id)
    }

    /// A verifier for this pool's client, accepting ID and access tokens,
    /// with the JWKS from moto.
    fn verifier(&self) -> CognitoVerifier {
        CognitoVerifier::new(
            CognitoConfig {
                issuer: self.issuer(),
                jwks_url: format!("{}/{}/.well-known/jwks.json", self.endpoint, self.id),
                client_id: Some(self.client_id.clone()),
                accepted_token_use: vec!["access".into(), "id".into()],
                jwks_refresh_min_interval: Duration::from_secs(60),
            },
            reqwest::Client::new(),
        )
    }

    /// Makes `username` (confirmed, with a permanent password) a member of
    /// `groups`, creating the groups; returns the user's `sub`.
    async fn user(&self, username: &str, groups: &[String]) -> String {
        for g in groups {
            let exists = self
                .idp
                .get_group()
                .user_pool_id(&self.id)
                .group_name(g)
                .send()
                .await
                .is_ok();
            if !exists {
                self.idp
                    .create_group()
                    .user_pool_id(&self.id)
                    .group_name(g)
                    .send()
                    .await
                    .unwrap();
            }
        }
        self.idp
            .admin_create_user()
            .user_pool_id(&self.id)
            .username(username)
            .temporary_password("Temporary-Pass-1")
            .message_action(MessageActionType::Suppress)
            .user_attributes(
                AttributeType::builder()
                    .name("email")
                    .value(format!("{username}@lab.example"))
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        self.idp
            .admin_set_user_password()
            .user_pool_id(&self.id)
            .username(username)
            .password(PASSWORD)
            .permanent(true)
            .send()
            .await
            .unwrap();
        for g in groups {
            self.idp
                .admin_add_user_to_group()
                .user_pool_id(&self.id)
                .username(username)
                .group_name(g)
                .send()
                .await
                .unwrap();
        }
        let user = self
            .idp
            .admin_get_user()
            .user_pool_id(&self.id)
            .username(username)
            .send()
            .await
            .unwrap();
        user.user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap()
            .to_owned()
    }

    /// Signs `username` in with `AdminInitiateAuth` (as a back end does).
    async fn admin_sign_in(&self, username: &str, client_id: &str) -> AuthenticationResultType {
        self.idp
            .admin_initiate_auth()
            .user_pool_id(&self.id)
            .client_id(client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await
            .unwrap()
            .authentication_result()
            .cloned()
            .unwrap()
    }

    /// Signs `username` in with `InitiateAuth` (as a client app does).
    async fn sign_in(&self, username: &str) -> AuthenticationResultType {
        self.idp
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await
            .unwrap()
            .authentication_result()
            .cloned()
            .unwrap()
    }
}

/// A pool and an app client without a secret that allows password sign-in.
async fn new_pool(idp: &Client, name: &str) -> (String, String) {
    let pool = idp.create_user_pool().pool_name(name).send().await.unwrap();
    let id = pool.user_pool().unwrap().id().unwrap().to_owned();
    let client_id = new_client(idp, &id, "westtek-portal").await;
    (id, client_id)
}

async fn new_client(idp: &Client, pool_id: &str, name: &str) -> String {
    idp.create_user_pool_client()
        .user_pool_id(pool_id)
        .client_name(name)
        .generate_secret(false)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .unwrap()
        .user_pool_client()
        .unwrap()
        .client_id()
        .unwrap()
        .to_owned()
}

async fn moto_pool() -> Pool {
    Pool::create(tokio::task::spawn_blocking(Moto::start).await.unwrap()).await
}

fn unauthenticated(r: westtek_domain::Result<Principal>) -> String {
    match r {
        Err(DomainError::Unauthenticated(m)) => m,
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

/// A JWT's payload as JSON.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// `token` with its payload replaced by `claims`, the signature kept.
fn with_payload(token: &str, claims: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    parts.join(".")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_id_and_access_tokens_verify_with_their_subject_and_groups() {
    let pool = moto_pool().await;
    let (lab1, lab2) = (LabId::new(), LabId::new());
    let sub = pool
        .user(
            "ada",
            &[
                format!("{lab1}:researcher"),
                format!("{lab2}:lab_admin"),
                "it_admin".into(),
                "cognito-only-group".into(),
            ],
        )
        .await;
    let user = UserId::parse(&sub).unwrap();
    let v = pool.verifier();

    let admin = pool.admin_sign_in("ada", &pool.client_id).await;
    let client = pool.sign_in("ada").await;
    for tokens in [&admin, &client] {
        let access = tokens.access_token().unwrap();
        let id = tokens.id_token().unwrap();
        // They really are moto's RS256 tokens for this pool and client.
        assert_eq!(payload(access)["iss"], pool.issuer().as_str());
        assert_eq!(payload(access)["token_use"], "access");
        assert_eq!(payload(access)["client_id"], pool.client_id.as_str());
        assert_eq!(payload(id)["token_use"], "id");
        assert_eq!(payload(id)["aud"], pool.client_id.as_str());

        for token in [access, id] {
            let p = v.verify(token).await.unwrap();
            assert_eq!(p.user_id, user);
            assert_eq!(p.username, "ada");
            assert!(p.it_admin, "the it_admin group");
            assert_eq!(p.role_in(lab1), Some(Role::Researcher));
            assert_eq!(p.role_in(lab2), Some(Role::LabAdmin));
            assert_eq!(p.memberships.len(), 2, "{:?}", p.memberships);
        }
    }

    // A user in no group verifies with no role.
    pool.user("grace", &[]).await;
    let t = pool.admin_sign_in("grace", &pool.client_id).await;
    let p = v.verify(t.access_token().unwrap()).await.unwrap();
    assert_eq!(p.username, "grace");
    assert!(!p.it_admin);
    assert!(p.memberships.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_another_pool_or_another_client_is_refused() {
    let pool = moto_pool().await;
    let lab = LabId::new();
    pool.user("ada", &[format!("{lab}:lab_admin")]).await;
    let v = pool.verifier();
    // The pool's own token verifies (and its JWKS is cached).
    let own = pool.admin_sign_in("ada", &pool.client_id).await;
    v.verify(own.access_token().unwrap()).await.unwrap();

    // Another client of the same pool.
    let other_client = new_client(&pool.idp, &pool.id, "another-app").await;
    let t = pool.admin_sign_in("ada", &other_client).await;
    for token in [t.access_token().unwrap(), t.id_token().unwrap()] {
        assert_eq!(
            unauthenticated(v.verify(token).await),
            "token was issued for another client"
        );
    }

    // Another pool on the same moto, with a user of the same name and
    // groups.
    let (other_pool, other_pool_client) = new_pool(&pool.idp, "another-pool").await;
    let other = Pool {
        _moto: None,
        endpoint: pool.endpoint.clone(),
        idp: pool.idp.clone(),
        id: other_pool,
        client_id: other_pool_client,
    };
    other.user("ada", &[format!("{lab}:lab_admin")]).await;
    let t = other.admin_sign_in("ada", &other.client_id).await;
    for token in [t.access_token().unwrap(), t.id_token().unwrap()] {
        assert_eq!(
            unauthenticated(v.verify(token).await),
            "token is not from a trusted issuer"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_expired_moto_token_is_refused() {
    let pool = moto_pool().await;
    let lab = LabId::new();
    pool.user("ada", &[format!("{lab}:researcher")]).await;
    let v = pool.verifier();
    let t = pool.admin_sign_in("ada", &pool.client_id).await;
    let access = t.access_token().unwrap();
    v.verify(access).await.unwrap();

    // Claims changed after signing: promoted to lab admin and IT admin.
    let mut claims = payload(access);
    claims["cognito:groups"] = serde_json::json!([format!("{lab}:lab_admin"), "it_admin"]);
    let forged = with_payload(access, &claims);
    assert!(unauthenticated(v.verify(&forged).await).contains("signature"));
    // Another subject.
    let mut claims = payload(access);
    claims["sub"] = serde_json::json!(UserId::new().to_string());
    assert!(unauthenticated(v.verify(&with_payload(access, &claims)).await).contains("signature"));
    // A flipped bit in the signature.
    let (head, sig) = access.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[0] ^= 1;
    let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert!(unauthenticated(v.verify(&flipped).await).contains("signature"));

    // Expired: moto's tokens live an hour.
    let exp = payload(access)["exp"].as_i64().unwrap();
    let id = t.id_token().unwrap();
    let just_before = chrono::DateTime::from_timestamp(exp, 0).unwrap();
    v.verify_at(access, just_before).await.unwrap();
    let after = Utc::now() + TimeDelta::hours(1) + TimeDelta::minutes(1);
    for token in [access, id] {
        assert_eq!(
            unauthenticated(v.verify_at(token, after).await),
            "token has expired"
        );
    }
}
