//! First sign-in of a Cognito user through the router: the user and its
//! memberships are created from `cognito:groups`, once, even under
//! concurrent first requests (in one process and across two processes on
//! one database); a provisioned user's memberships follow the groups of
//! their next token; local users keep the store as the truth; a disabled
//! user is refused whatever valid token they bring.

use crate::support::{app, token};
use axum::http::StatusCode;
use serde_json::{json, Value};
use westtek_domain::ports::Write;
use westtek_domain::{LabId, Membership, Role, UserId};
use westtek_platform::ops::{self, Actor};

fn g(lab: LabId, role: &str) -> String {
    format!("{lab}:{role}")
}

/// `(lab id, role)` of `/api/me`'s labs, sorted.
fn labs_of(me: &Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = me["labs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["lab_id"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(p: &[(LabId, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = p
        .iter()
        .map(|(l, r)| (l.to_string(), (*r).to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_first_request_creates_the_user_its_memberships_and_one_audit_entry() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir.path().join("meta.db")).await;
    let (a, b, ghost) = (app.lab("alpha").await, app.lab("beta").await, LabId::new());
    let sub = UserId::new();
    let t = token(
        sub,
        "Ada.Lovelace@lab.example",
        &[
            g(a, "researcher"),
            g(b, "lab_admin"),
            g(ghost, "researcher"),
            "it_admin".into(),
            "staff".into(),
        ],
        json!({ "name": "Ada Lovelace" }),
    );
    let (status, me) = app.get("/api/me", &t).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user_id"], sub.to_string());
    assert_eq!(me["username"], "Ada.Lovelace-lab.example");
    assert_eq!(me["it_admin"], true);
    assert_eq!(labs_of(&me), pairs(&[(a, "researcher"), (b, "lab_admin")]));

    // The user is in the store: lab user lists show them.
    let u = app.store.get_user(sub).await.unwrap();
    assert!(u.idp_managed && !u.disabled && u.it_admin, "{u:?}");
    assert_eq!(u.display_name, "Ada Lovelace");
    let (status, users) = app.get(&format!("/api/labs/{a}/users"), &t).await;
    assert_eq!(status, StatusCode::OK);
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == sub.to_string() && x["display_name"] == "Ada Lovelace"));

    let entries = app.audits("user.provisioned").await;
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.actor_id, Some(sub));
    assert_eq!(e.target_id, sub.to_string());
    assert_eq!(e.details["ignored_labs"], json!([ghost.to_string()]));

    // The same token again, and a new token with the same groups: nothing
    // more is written.
    assert_eq!(app.get("/api/me", &t).await.0, StatusCode::OK);
    let again = token(
        sub,
        "Ada.Lovelace@lab.example",
        &[g(a, "researcher"), g(b, "lab_admin"), "it_admin".into()],
        json!({}),
    );
    assert_eq!(app.get("/api/me", &again).await.0, StatusCode::OK);
    assert_eq!(app.audits("user.provisioned").await.len(), 1);
    assert!(app.audits("user.memberships_synced").await.is_empty());
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_first_requests_create_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.db");
    // Two processes on one database, each with its own caches and locks.
    let (one, two) = (app(&db).await, app(&db).await);
    let lab = one.lab("gamma").await;
    let sub = UserId::new();
    let groups = [g(lab, "researcher")];
    let tokens: Vec<String> = (0..12)
        .map(|_| token(sub, "grace", &groups, json!({})))
        .collect();
    let calls = tokens.iter().enumerate().map(|(i, t)| {
        let target = if i % 2 == 0 { &one } else { &two };
        target.get("/api/me", t)
    });
    for (status, me) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(labs_of(&me), pairs(&[(lab, "researcher")]));
        assert_eq!(me["username"], "grace");
    }
    assert_eq!(one.store.count_users().await.unwrap(), 1);
    assert_eq!(one.audits("user.provisioned").await.len(), 1);
    assert_eq!(one.store.memberships_of(sub).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_group_change_applies_on_the_next_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir.path().join("meta.db")).await;
    let (a, b) = (app.lab("alpha").await, app.lab("beta").await);
    let sub = UserId::new();
    let first = token(sub, "rita", &[g(a, "researcher")], json!({}));
    let (_, me) = app.get("/api/me", &first).await;
    assert_eq!(labs_of(&me), pairs(&[(a, "researcher")]));
    assert_eq!(me["it_admin"], false);

    // Promoted in a, added to b, made IT admin in the directory.
    let second = token(
        sub,
        "rita",
        &[g(a, "lab_admin"), g(b, "researcher"), "it_admin".into()],
        json!({}),
    );
    let (status, me) = app.get("/api/me", &second).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(labs_of(&me), pairs(&[(a, "lab_admin"), (b, "researcher")]));
    assert_eq!(me["it_admin"], true);
    let synced = app.audits("user.memberships_synced").await;
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0].target_id, sub.to_string());
    assert_eq!(synced[0].details["added"][0]["lab_id"], b.to_string());
    assert_eq!(synced[0].details["changed"][0]["to"], "lab_admin");
    assert_eq!(synced[0].details["it_admin"]["after"], true);

    // Removed from a, and from IT admins; a group of an unknown lab is
    // ignored.
    let ghost = LabId::new();
    let third = token(
        sub,
        "rita",
        &[g(b, "researcher"), g(ghost, "lab_admin")],
        json!({}),
    );
    let (_, me) = app.get("/api/me", &third).await;
    assert_eq!(labs_of(&me), pairs(&[(b, "researcher")]));
    assert_eq!(me["it_admin"], false);
    let synced = app.audits("user.memberships_synced").await;
    assert_eq!(synced.len(), 2);
    assert_eq!(synced[1].details["removed"][0]["lab_id"], a.to_string());
    assert_eq!(
        synced[1].details["ignored_labs"],
        json!([ghost.to_string()])
    );
    // A changed lab is not readable any more.
    let (status, _) = app.get(&format!("/api/labs/{a}/users"), &third).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The same groups again: no further sync.
    let fourth = token(
        sub,
        "rita",
        &[g(b, "researcher"), g(ghost, "lab_admin")],
        json!({}),
    );
    assert_eq!(app.get("/api/me", &fourth).await.0, StatusCode::OK);
    assert_eq!(app.audits("user.memberships_synced").await.len(), 2);
}

#[tokio::test]
async fn a_local_user_keeps_the_store_as_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir.path().join("meta.db")).await;
    let (a, b) = (app.lab("alpha").await, app.lab("beta").await);
    let created = ops::create_user(
        &*app.store,
        &westtek_domain::ports::SystemClock,
        &Actor::local_operator(),
        ops::NewUser {
            username: "lin",
            display_name: None,
            membership: Some((a, Role::Researcher)),
            it_admin: false,
            password: None,
            one_time_ttl: std::time::Duration::from_secs(60),
            one_time_secret: None,
        },
    )
    .await
    .unwrap();
    let t = token(
        created.user.id,
        "lin",
        &[g(b, "lab_admin"), "it_admin".into()],
        json!({}),
    );
    let (status, me) = app.get("/api/me", &t).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(labs_of(&me), pairs(&[(a, "researcher")]));
    assert_eq!(me["it_admin"], false);
    assert!(app.audits("user.memberships_synced").await.is_empty());
    assert!(app.audits("user.provisioned").await.is_empty());
}

#[tokio::test]
async fn a_disabled_provisioned_user_is_refused_with_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir.path().join("meta.db")).await;
    let a = app.lab("alpha").await;
    let sub = UserId::new();
    let t = token(sub, "mallory", &[g(a, "researcher")], json!({}));
    assert_eq!(app.get("/api/me", &t).await.0, StatusCode::OK);

    let u = ops::set_user_disabled(&*app.store, &Actor::local_operator(), sub, true)
        .await
        .unwrap();
    assert!(u.disabled);
    assert_eq!(app.audits("user.disable").await.len(), 1);

    // The token already seen, and a new one with other groups.
    let (status, body) = app.get("/api/me", &t).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("disabled"),
        "{body}"
    );
    let fresh = token(
        sub,
        "mallory",
        &[g(a, "lab_admin"), "it_admin".into()],
        json!({}),
    );
    assert_eq!(app.get("/api/me", &fresh).await.0, StatusCode::FORBIDDEN);
    let u = app.store.get_user(sub).await.unwrap();
    assert!(u.disabled && !u.it_admin, "{u:?}");
    assert!(app.audits("user.memberships_synced").await.is_empty());
    assert_eq!(app.audits("user.provisioned").await.len(), 1);

    // Enabled again: the next token works (and syncs).
    ops::set_user_disabled(&*app.store, &Actor::local_operator(), sub, false)
        .await
        .unwrap();
    let later = token(sub, "mallory", &[g(a, "lab_admin")], json!({}));
    let (status, me) = app.get("/api/me", &later).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(labs_of(&me), pairs(&[(a, "lab_admin")]));
    // A membership added by hand to a provisioned user does not survive
    // the next token: the directory is the truth.
    let b = app.lab("beta").await;
    app.store
        .commit(
            vec![Write::PutMembership(Membership {
                lab_id: b,
                user_id: sub,
                role: Role::Researcher,
            })],
            vec![],
        )
        .await
        .unwrap();
    let next = token(sub, "mallory", &[g(a, "lab_admin")], json!({}));
    let (_, me) = app.get("/api/me", &next).await;
    assert_eq!(labs_of(&me), pairs(&[(a, "lab_admin")]));
}

#[tokio::test]
async fn the_memberships_of_a_provisioned_user_are_changed_in_the_directory_not_here() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir.path().join("meta.db")).await;
    let (a, b) = (app.lab("alpha").await, app.lab("beta").await);
    let sub = UserId::new();
    let t = token(sub, "nora", &[g(a, "researcher")], json!({}));
    assert_eq!(app.get("/api/me", &t).await.0, StatusCode::OK);
    // An IT admin from the same directory, acting in the labs.
    let admin = token(UserId::new(), "it-ops", &["it_admin".into()], json!({}));
    for (lab, method, body) in [
        (b, "PUT", Some(json!({ "role": "researcher" }))),
        (a, "PUT", Some(json!({ "role": "lab_admin" }))),
        (a, "DELETE", None),
    ] {
        let (status, problem) = app
            .send(
                method,
                &format!("/api/labs/{lab}/members/{sub}"),
                &admin,
                &[("x-westtek-acting-lab", lab.to_string())],
                body,
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{method} {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("Cognito"),
            "{problem}"
        );
    }
    let m = app.store.memberships_of(sub).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].lab_id, m[0].role), (a, Role::Researcher));
}
