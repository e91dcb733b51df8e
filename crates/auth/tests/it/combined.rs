//! `FirstOf` over the platform's own tokens and Cognito's.

use crate::support::{access_claims, keys, JwksServer};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use westtek_auth::combined::FirstOf;
use westtek_auth::local::LocalTokenIssuer;
use westtek_domain::ports::TokenVerifier;
use westtek_domain::{DomainError, Principal, UserId};

#[tokio::test]
async fn local_and_cognito_tokens_both_verify_through_first_of() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let dir = tempfile::tempdir().unwrap();
    let local = LocalTokenIssuer::load_or_create(
        &dir.path().join("signing.pem"),
        "https://westtek.local",
        Duration::from_secs(600),
    )
    .unwrap();
    let v = FirstOf(vec![
        Arc::new(local.clone()) as Arc<dyn TokenVerifier>,
        Arc::new(server.verifier(&["access"], Duration::from_secs(300))),
    ]);

    let p = Principal {
        user_id: UserId::new(),
        username: "ada".into(),
        it_admin: true,
        memberships: vec![],
    };
    let local_token = local.issue_access(&p, Utc::now()).unwrap().token;
    assert_eq!(v.verify(&local_token).await.unwrap(), p);

    let cognito_user = UserId::new();
    let cognito_token = a.sign(&access_claims(&cognito_user.to_string(), &[]));
    assert_eq!(
        v.verify(&cognito_token).await.unwrap().user_id,
        cognito_user
    );

    assert!(matches!(
        v.verify("nonsense").await,
        Err(DomainError::Unauthenticated(_))
    ));
}
