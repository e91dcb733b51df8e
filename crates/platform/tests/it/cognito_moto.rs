//! Provisioning with moto's own tokens: a user pool, groups named after
//! labs and a user made with the AWS SDK on moto, the user signed in with
//! `InitiateAuth`; the first request with the ID token creates the user
//! and memberships from `cognito:groups`;
//! after the directory moves the user between groups, the next sign-in's
//! access token brings the store in step.

use crate::support::app_for;
use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
};
use aws_sdk_cognitoidentityprovider::Client;
use axum::http::StatusCode;
use std::time::Duration;
use westtek_auth::cognito::CognitoConfig;
use westtek_aws::testing::Moto;
use westtek_domain::{Role, UserId};

const PASSWORD: &str = "Correct-Horse-9-Battery";

async fn group(idp: &Client, pool: &str, name: &str) {
    idp.create_group()
        .user_pool_id(pool)
        .group_name(name)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moto_user_is_provisioned_on_first_sign_in_and_follows_group_changes() {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let idp = Client::new(&moto.config());
    let pool = idp
        .create_user_pool()
        .pool_name("westtek-lab-users")
        .send()
        .await
        .unwrap();
    let pool_id = pool.user_pool().unwrap().id().unwrap().to_owned();
    let client_id = idp
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("westtek-portal")
        .generate_secret(false)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .send()
        .await
        .unwrap()
        .user_pool_client()
        .unwrap()
        .client_id()
        .unwrap()
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let app = app_for(
        &dir.path().join("meta.db"),
        CognitoConfig {
            issuer: format!("https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"),
            jwks_url: format!("{}/{pool_id}/.well-known/jwks.json", moto.endpoint()),
            client_id: Some(client_id.clone()),
            accepted_token_use: vec!["access".into(), "id".into()],
            jwks_refresh_min_interval: Duration::from_secs(60),
        },
    )
    .await;
    let (a, b) = (app.lab("alpha").await, app.lab("beta").await);
    let (ga, gb) = (format!("{a}:researcher"), format!("{b}:lab_admin"));
    for g in [&ga, &gb, &"it_admin".to_string()] {
        group(&idp, &pool_id, g).await;
    }
    idp.admin_create_user()
        .user_pool_id(&pool_id)
        .username("ada")
        .temporary_password("Temporary-Pass-1")
        .message_action(MessageActionType::Suppress)
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value("ada@lab.example")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    idp.admin_set_user_password()
        .user_pool_id(&pool_id)
        .username("ada")
        .password(PASSWORD)
        .permanent(true)
        .send()
        .await
        .unwrap();
    let add = |g: String| {
        idp.admin_add_user_to_group()
            .user_pool_id(&pool_id)
            .username("ada")
            .group_name(g)
            .send()
    };
    add(ga.clone()).await.unwrap();
    add("it_admin".into()).await.unwrap();
    let sign_in = || async {
        idp.initiate_auth()
            .client_id(&client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", "ada")
            .auth_parameters("PASSWORD", PASSWORD)
            .send()
            .await
            .unwrap()
            .authentication_result()
            .cloned()
            .unwrap()
    };

    let first = sign_in().await;
    let (status, me) = app.get("/api/me", first.id_token().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "ada");
    assert_eq!(me["it_admin"], true);
    let sub = UserId::parse(me["user_id"].as_str().unwrap()).unwrap();
    let u = app.store.get_user(sub).await.unwrap();
    assert!(u.idp_managed, "{u:?}");
    // moto's ID tokens carry no `email` (real Cognito's do; the `name` /
    // `email` display name is tested with signed tokens): the username.
    assert_eq!(u.display_name, "ada");
    let m = app.store.memberships_of(sub).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].lab_id, m[0].role), (a, Role::Researcher));
    assert_eq!(app.audits("user.provisioned").await.len(), 1);

    // The directory moves the user: out of a and of IT admins, into b.
    idp.admin_remove_user_from_group()
        .user_pool_id(&pool_id)
        .username("ada")
        .group_name(&ga)
        .send()
        .await
        .unwrap();
    idp.admin_remove_user_from_group()
        .user_pool_id(&pool_id)
        .username("ada")
        .group_name("it_admin")
        .send()
        .await
        .unwrap();
    add(gb.clone()).await.unwrap();
    // The first token is still valid; the store changes with the next one.
    let next = sign_in().await;
    let (status, me) = app.get("/api/me", next.access_token().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["it_admin"], false);
    let m = app.store.memberships_of(sub).await.unwrap();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!((m[0].lab_id, m[0].role), (b, Role::LabAdmin));
    assert_eq!(app.audits("user.memberships_synced").await.len(), 1);
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}
