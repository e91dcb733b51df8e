//! `CognitoVerifier` against real RS256 tokens and a local JWKS server.

use crate::support::{access_claims, id_claims, keys, now, JwksServer, CLIENT_ID, ISSUER};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::Duration;
use westtek_auth::cognito::{CognitoConfig, CognitoVerifier};
use westtek_domain::ports::TokenVerifier;
use westtek_domain::{DomainError, LabId, LabRole, Role, UserId};

const LONG: Duration = Duration::from_secs(300);

fn unauthenticated(r: westtek_domain::Result<westtek_domain::Principal>) -> String {
    match r {
        Err(DomainError::Unauthenticated(m)) => m,
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_access_token_yields_its_user_and_group_roles() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let user = UserId::new();
    let (lab1, lab2) = (LabId::new(), LabId::new());
    let token = a.sign(&access_claims(
        &user.to_string(),
        &[
            format!("{lab1}:researcher"),
            format!("{lab2}:lab_admin"),
            "it_admin".to_owned(),
            "some-other-group".to_owned(),
        ],
    ));

    let p = v.verify(&token).await.unwrap();

    assert_eq!(p.user_id, user);
    assert_eq!(p.username, "ada");
    assert!(p.it_admin);
    assert_eq!(p.role_in(lab1), Some(Role::Researcher));
    assert_eq!(p.role_in(lab2), Some(Role::LabAdmin));
    assert_eq!(p.memberships.len(), 2);
    assert_eq!(server.hits(), 1);

    // A second token is checked against the cached key.
    v.verify(&token).await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_user_without_groups_has_no_roles() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let mut claims = access_claims(&UserId::new().to_string(), &[]);
    claims.as_object_mut().unwrap().remove("cognito:groups");
    let p = v.verify(&a.sign(&claims)).await.unwrap();
    assert!(!p.it_admin);
    assert_eq!(p.memberships, Vec::<LabRole>::new());
}

#[tokio::test]
async fn an_id_token_for_this_client_verifies_and_one_for_another_does_not() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access", "id"], LONG);
    let user = UserId::new();

    let p = v
        .verify(&a.sign(&id_claims(&user.to_string())))
        .await
        .unwrap();
    assert_eq!(p.user_id, user);
    assert_eq!(p.username, "grace");

    let mut other = id_claims(&user.to_string());
    other["aud"] = json!("another-client");
    assert_eq!(
        unauthenticated(v.verify(&a.sign(&other)).await),
        "token was issued for another client"
    );
}

#[tokio::test]
async fn the_username_falls_back_to_the_subject() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let user = UserId::new().to_string();
    let mut claims = access_claims(&user, &[]);
    claims.as_object_mut().unwrap().remove("username");
    assert_eq!(v.verify(&a.sign(&claims)).await.unwrap().username, user);
}

#[tokio::test]
async fn a_token_from_another_issuer_is_rejected() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let mut claims = access_claims(&UserId::new().to_string(), &[]);
    claims["iss"] = json!("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other");
    assert_eq!(
        unauthenticated(v.verify(&a.sign(&claims)).await),
        "token is not from a trusted issuer"
    );
}

#[tokio::test]
async fn an_expired_token_is_rejected() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let mut claims = access_claims(&UserId::new().to_string(), &[]);
    claims["iat"] = json!(now() - 7200);
    claims["exp"] = json!(now() - 3600);
    let token = a.sign(&claims);
    assert_eq!(unauthenticated(v.verify(&token).await), "token has expired");

    // The same token was fine while it was valid.
    let then = chrono::DateTime::from_timestamp(now() - 3601, 0).unwrap();
    assert!(v.verify_at(&token, then).await.is_ok());
}

#[tokio::test]
async fn a_token_of_a_use_not_accepted_is_rejected() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let user = UserId::new().to_string();
    assert_eq!(
        unauthenticated(v.verify(&a.sign(&id_claims(&user))).await),
        "token use is not accepted"
    );
    let mut claims = access_claims(&user, &[]);
    claims["token_use"] = json!("refresh");
    assert_eq!(
        unauthenticated(v.verify(&a.sign(&claims)).await),
        "token use is not accepted"
    );
}

#[tokio::test]
async fn an_access_token_for_another_client_is_rejected() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let mut claims = access_claims(&UserId::new().to_string(), &[]);
    claims["client_id"] = json!("another-client");
    assert_eq!(
        unauthenticated(v.verify(&a.sign(&claims)).await),
        "token was issued for another client"
    );
    claims.as_object_mut().unwrap().remove("client_id");
    assert_eq!(
        unauthenticated(v.verify(&a.sign(&claims)).await),
        "token was issued for another client"
    );
}

#[tokio::test]
async fn without_a_configured_client_any_client_of_the_pool_is_accepted() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = CognitoVerifier::new(
        CognitoConfig {
            issuer: ISSUER.to_owned(),
            jwks_url: server.jwks_url(),
            client_id: None,
            accepted_token_use: vec!["access".into()],
            jwks_refresh_min_interval: LONG,
        },
        reqwest::Client::new(),
    );
    let mut claims = access_claims(&UserId::new().to_string(), &[]);
    claims["client_id"] = json!("another-client");
    assert!(v.verify(&a.sign(&claims)).await.is_ok());
}

#[tokio::test]
async fn hs256_and_none_tokens_are_rejected_without_fetching_keys() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let claims = access_claims(&UserId::new().to_string(), &[]);

    // The classic confusion attack: HMAC keyed with the public key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(a.kid.to_owned());
    let public = serde_json::to_vec(&a.jwk).unwrap();
    let hs = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).unwrap();
    assert_eq!(
        unauthenticated(v.verify(&hs).await),
        "token algorithm is not accepted"
    );

    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": a.kid})),
        b64(&claims)
    );
    unauthenticated(v.verify(&none).await);

    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_token_without_a_key_id_is_rejected() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &access_claims(&UserId::new().to_string(), &[]),
        &a.encoding,
    )
    .unwrap();
    assert_eq!(
        unauthenticated(v.verify(&token).await),
        "token has no key id"
    );
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_a_trusted_key_id_is_rejected() {
    let (a, b) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let token = b.sign_as(a.kid, &access_claims(&UserId::new().to_string(), &[]));
    assert_eq!(
        unauthenticated(v.verify(&token).await),
        "token signature is invalid"
    );
}

#[tokio::test]
async fn a_subject_that_is_not_a_uuid_is_rejected() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let token = a.sign(&access_claims("not-a-uuid", &[]));
    assert_eq!(
        unauthenticated(v.verify(&token).await),
        "token subject is not a valid user id"
    );
}

#[tokio::test]
async fn errors_never_echo_the_token() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], LONG);
    let mut claims = access_claims(&UserId::new().to_string(), &[]);
    claims["exp"] = json!(now() - 3600);
    let token = a.sign(&claims);
    for bad in [
        token.as_str(),
        "garbage-secret-value",
        &token[..token.len() - 3],
    ] {
        let msg = unauthenticated(v.verify(bad).await);
        assert!(!msg.contains(bad));
        assert!(!msg.contains(&token[..20]));
    }
}

#[tokio::test]
async fn an_unreachable_jwks_is_an_upstream_error_not_bad_credentials() {
    let (a, _) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = CognitoVerifier::new(
        CognitoConfig {
            issuer: ISSUER.to_owned(),
            jwks_url: format!("{}/broken/.well-known/jwks.json", server.base),
            client_id: Some(CLIENT_ID.to_owned()),
            accepted_token_use: vec!["access".into()],
            jwks_refresh_min_interval: LONG,
        },
        reqwest::Client::new(),
    );
    let token = a.sign(&access_claims(&UserId::new().to_string(), &[]));
    for _ in 0..2 {
        assert!(matches!(
            v.verify(&token).await,
            Err(DomainError::Upstream {
                code: "identity_provider_unavailable",
                ..
            })
        ));
    }
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_unknown_key_ids_refetch_at_most_once_per_interval() {
    let interval = Duration::from_secs(2);
    let pause = interval + Duration::from_millis(200);
    let (a, b) = keys();
    let server = JwksServer::start(&[a]).await;
    let v = server.verifier(&["access"], interval);
    let user = UserId::new().to_string();

    // First use fetches the JWKS.
    v.verify(&a.sign(&access_claims(&user, &[]))).await.unwrap();
    assert_eq!(server.hits(), 1);

    // A flood of made-up key ids, some concurrent, causes one refetch.
    tokio::time::sleep(pause).await;
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..20 {
        let v = v.clone();
        let token = a.sign_as(&format!("bogus-{i}"), &access_claims(&user, &[]));
        flood.spawn(async move { v.verify(&token).await });
    }
    while let Some(r) = flood.join_next().await {
        assert_eq!(
            unauthenticated(r.unwrap()),
            "token signing key is not trusted"
        );
    }
    assert_eq!(server.hits(), 2);

    // The pool rotates to key B; within the interval B is not yet known.
    server.serve(&[a, b]);
    let rotated = b.sign(&access_claims(&user, &[]));
    unauthenticated(v.verify(&rotated).await);
    assert_eq!(server.hits(), 2);

    // After the interval, the unknown kid triggers a refetch and verifies.
    tokio::time::sleep(pause).await;
    v.verify(&rotated).await.unwrap();
    assert_eq!(server.hits(), 3);

    // Both keys are now cached.
    v.verify(&rotated).await.unwrap();
    v.verify(&a.sign(&access_claims(&user, &[]))).await.unwrap();
    assert_eq!(server.hits(), 3);
}
