//! Issue 12, points 6 and 7: a token is worth only what its subject holds in
//! the store now, and no lab admin enlists anyone across labs.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use westtek_domain::{LabId, LabRole, Principal, Role, UserId};
use westtek_tests::{assert_problem, spawn_app, TestApp};

/// A token signed with the platform's own key, claiming whatever `p` says.
fn forge(app: &TestApp, p: &Principal) -> String {
    app.app
        .state
        .issuer
        .as_ref()
        .unwrap()
        .issue_access(p, chrono::Utc::now())
        .unwrap()
        .token
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let (s, me) = app.call(Method::GET, "/api/me", token, None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    me["user_id"].as_str().unwrap().to_string()
}

/// `GET path` with the token: its status.
async fn status(app: &TestApp, token: &str, path: &str, lab: Option<&str>) -> StatusCode {
    let mut r = app.req(Method::GET, path, token);
    if let Some(l) = lab {
        r = r.header("x-westtek-lab", l);
    }
    r.send().await.unwrap().status()
}

#[tokio::test]
async fn a_token_signed_for_a_user_that_does_not_exist_is_refused() {
    let app = spawn_app().await;
    let ghost = Principal {
        user_id: UserId::new(),
        username: "ghost".into(),
        it_admin: true,
        memberships: vec![LabRole {
            lab_id: LabId::parse(&app.lab_id).unwrap(),
            role: Role::LabAdmin,
        }],
    };
    let token = forge(&app, &ghost);
    let env = uuid::Uuid::new_v4();
    for path in [
        "/api/admin/overview".to_string(),
        "/api/environments".to_string(),
        "/api/me".to_string(),
        format!("/jupyter/{env}/"),
        format!("/jupyter/{env}/api/kernels"),
    ] {
        let r = app.req(Method::GET, &path, &token).send().await.unwrap();
        let p = assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            !detail.contains(&ghost.user_id.to_string()) && !detail.contains("ghost"),
            "{path}: {detail}"
        );
    }
    // The same token as the browser's cookie.
    let r = app
        .http
        .get(format!("{}/api/environments", app.url))
        .header("cookie", format!("westtek_access={token}"))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // A change, too.
    let r = app
        .req(Method::POST, "/api/labs", &token)
        .json(&json!({"name": "ghost-lab"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.stop().await;
}

#[tokio::test]
async fn a_token_for_a_real_user_grants_only_what_the_store_holds() {
    let app = spawn_app().await;
    let physics = app.create_lab("physics").await;
    let rita = app.create_user(&physics, "rita", "researcher").await;
    let rita_id = user_id(&app, &rita).await;
    // Rita's real id, claiming IT admin and lab admin of the first lab.
    let claims = Principal {
        user_id: UserId::parse(&rita_id).unwrap(),
        username: "admin".into(),
        it_admin: true,
        memberships: vec![
            LabRole {
                lab_id: LabId::parse(&app.lab_id).unwrap(),
                role: Role::LabAdmin,
            },
            LabRole {
                lab_id: LabId::parse(&physics).unwrap(),
                role: Role::LabAdmin,
            },
        ],
    };
    let forged = forge(&app, &claims);
    let (s, me) = app.call(Method::GET, "/api/me", &forged, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["username"], "rita");
    assert_eq!(me["it_admin"], false);
    assert_eq!(
        me["labs"],
        json!([{"lab_id": physics, "lab_name": "physics", "role": "researcher"}])
    );
    let (s, overview) = app
        .call(Method::GET, "/api/admin/overview", &forged, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let labs = overview["labs"].as_array().unwrap();
    assert_eq!(labs.len(), 1, "{overview}");
    assert_eq!(labs[0]["lab"]["id"], physics.as_str());
    for (path, lab) in [
        (format!("/api/labs/{}", app.lab_id), None),
        ("/api/environments".to_string(), Some(app.lab_id.as_str())),
        (format!("/api/labs/{}/invitations", app.lab_id), None),
    ] {
        assert_eq!(
            status(&app, &forged, &path, lab).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Not an IT admin, not a lab admin of physics.
    let r = app
        .req(Method::POST, "/api/labs", &forged)
        .json(&json!({"name": "rita-lab"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .req(
            Method::POST,
            &format!("/api/labs/{physics}/invitations"),
            &forged,
        )
        .json(&json!({"username": "admin", "role": "researcher"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    app.stop().await;
}

#[tokio::test]
async fn a_removal_or_downgrade_applies_on_the_next_request_without_signing_in_again() {
    let app = spawn_app().await;
    let chem = app.create_lab("chem").await;
    let lara = app.create_user(&chem, "lara", "lab_admin").await;
    app.create_user(&chem, "liam", "lab_admin").await;
    assert_eq!(
        status(&app, &lara, &format!("/api/labs/{chem}/invitations"), None).await,
        StatusCode::OK
    );
    // Warm every cache with her token first.
    for _ in 0..3 {
        assert_eq!(
            status(&app, &lara, "/api/environments", None).await,
            StatusCode::OK
        );
    }

    // Downgraded by the IT admin: the same token is a researcher's now.
    let r = app
        .req(
            Method::PUT,
            &format!("/api/labs/{chem}/members/lara"),
            &app.admin_token,
        )
        .header("x-westtek-acting-lab", &chem)
        .json(&json!({"role": "researcher"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .req(Method::GET, &format!("/api/labs/{chem}/invitations"), &lara)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let (_, me) = app.call(Method::GET, "/api/me", &lara, None).await;
    assert_eq!(me["labs"][0]["role"], "researcher");

    // Removed: the same token reaches nothing of the lab.
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/labs/{chem}/members/lara"),
            &app.admin_token,
        )
        .header("x-westtek-acting-lab", &chem)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status(&app, &lara, &format!("/api/labs/{chem}"), None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(&app, &lara, "/api/environments", Some(&chem)).await,
        StatusCode::NOT_FOUND
    );
    assert_ne!(
        status(&app, &lara, "/api/environments", None).await,
        StatusCode::OK,
        "in no lab any more"
    );
    let (_, me) = app.call(Method::GET, "/api/me", &lara, None).await;
    assert_eq!(me["labs"], json!([]));
    app.stop().await;
}

/// POSTs an invitation; returns status and body.
async fn invite(app: &TestApp, token: &str, lab: &str, username: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        &format!("/api/labs/{lab}/invitations"),
        token,
        Some(json!({"username": username, "role": "researcher"})),
    )
    .await
}

/// The body without the echoed name, for comparing answers.
fn without_username(mut v: Value) -> Value {
    v["username"] = Value::Null;
    v
}

async fn audit_count(app: &TestApp, lab: &str, action: &str) -> usize {
    let (s, a) = app
        .call(
            Method::GET,
            &format!("/api/audit?lab_id={lab}&action={action}&limit=100"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    a["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_lab_admin_invites_and_only_the_invitees_acceptance_adds_them() {
    let app = spawn_app().await;
    // The attacker's lab is older than the victim's, so an id-ordered
    // membership list would put it first.
    let attack = app.create_lab("attack").await;
    let home = app.create_lab("home").await;
    let mallory = app.create_user(&attack, "mallory", "lab_admin").await;
    let victor = app.create_user(&home, "victor", "researcher").await;
    let victor_id = user_id(&app, &victor).await;
    let mallory_id = user_id(&app, &mallory).await;
    let is_member = |labs: &Value| {
        labs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["lab_id"] == attack.as_str())
    };

    // The same answer for a real and a made-up username.
    let (s1, real) = invite(&app, &mallory, &attack, "victor").await;
    let (s2, fake) = invite(&app, &mallory, &attack, "nobody-here").await;
    assert_eq!((s1, s2), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(real["username"], "victor");
    assert_eq!(without_username(real.clone()), without_username(fake));
    // PUT members answers exactly like the invitation path for non-members.
    let put = |who: &'static str| {
        let app = &app;
        let mallory = mallory.clone();
        let attack = attack.clone();
        async move {
            app.call(
                Method::PUT,
                &format!("/api/labs/{attack}/members/{who}"),
                &mallory,
                Some(json!({"role": "researcher"})),
            )
            .await
        }
    };
    let (s3, put_real) = put("victor").await;
    let (s4, put_fake) = put("nobody-here").await;
    assert_eq!((s3, s4), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(without_username(put_real.clone()), without_username(real));
    assert_eq!(without_username(put_real), without_username(put_fake));
    // DELETE of a non-member: the same 404 either way.
    let del = |who: &'static str| {
        app.req(
            Method::DELETE,
            &format!("/api/labs/{attack}/members/{who}"),
            &mallory,
        )
        .send()
    };
    let d1 = assert_problem(
        del("victor").await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let d2 = assert_problem(
        del("nobody-here").await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(d1, d2);

    // Nothing changed for Victor until he accepts.
    let (_, me) = app.call(Method::GET, "/api/me", &victor, None).await;
    assert!(!is_member(&me["labs"]), "{me}");
    assert_eq!(
        status(&app, &victor, &format!("/api/labs/{attack}"), None).await,
        StatusCode::NOT_FOUND
    );
    let (_, users) = app
        .call(
            Method::GET,
            &format!("/api/labs/{attack}/users"),
            &mallory,
            None,
        )
        .await;
    assert!(!users.to_string().contains("victor"), "{users}");

    // Victor sees both invitations (POST and PUT) and declines the first.
    let (s, mine) = app
        .call(Method::GET, "/api/me/invitations", &victor, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let mine = mine.as_array().unwrap().clone();
    assert_eq!(mine.len(), 2, "{mine:?}");
    for i in &mine {
        assert_eq!(i["lab_name"], "attack");
        assert_eq!(i["invited_by"], "mallory");
        assert_eq!(i["state"], "pending");
    }
    let first = mine[1]["id"].as_str().unwrap().to_string();
    let second = mine[0]["id"].as_str().unwrap().to_string();
    let (s, declined) = app
        .call(
            Method::POST,
            &format!("/api/me/invitations/{first}/decline"),
            &victor,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{declined}");
    assert_eq!(declined["state"], "declined");
    let r = app
        .req(
            Method::POST,
            &format!("/api/me/invitations/{first}/accept"),
            &victor,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;

    // The lab admin sees the other one still open and revokes it.
    let (s, pending) = app
        .call(
            Method::GET,
            &format!("/api/labs/{attack}/invitations"),
            &mallory,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pending}");
    let pending = pending.as_array().unwrap().clone();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["username"], "victor");
    assert_eq!(pending[0]["id"], second.as_str());
    // Another user cannot accept it.
    let r = app
        .req(
            Method::POST,
            &format!("/api/me/invitations/{second}/accept"),
            &mallory,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/labs/{attack}/invitations/{second}"),
            &mallory,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .req(
            Method::POST,
            &format!("/api/me/invitations/{second}/accept"),
            &victor,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;

    // An expired invitation is not listed and cannot be accepted.
    let old = westtek_domain::Invitation::new(
        LabId::parse(&attack).unwrap(),
        UserId::parse(&victor_id).unwrap(),
        Role::LabAdmin,
        UserId::parse(&mallory_id).unwrap(),
        chrono::Utc::now() - chrono::Duration::days(8),
    )
    .unwrap();
    app.app
        .state
        .store
        .commit(
            vec![westtek_domain::ports::Write::InsertInvitation(old.clone())],
            vec![],
        )
        .await
        .unwrap();
    let (_, mine) = app
        .call(Method::GET, "/api/me/invitations", &victor, None)
        .await;
    assert_eq!(mine, json!([]));
    let r = app
        .req(
            Method::POST,
            &format!("/api/me/invitations/{}/accept", old.id),
            &victor,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    let (_, me) = app.call(Method::GET, "/api/me", &victor, None).await;
    assert!(!is_member(&me["labs"]), "declined, revoked, expired: {me}");

    // Accepted: Victor is a member, and his default lab stays his own.
    invite(&app, &mallory, &attack, "victor").await;
    let (_, mine) = app
        .call(Method::GET, "/api/me/invitations", &victor, None)
        .await;
    let third = mine[0]["id"].as_str().unwrap().to_string();
    let (s, accepted) = app
        .call(
            Method::POST,
            &format!("/api/me/invitations/{third}/accept"),
            &victor,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["state"], "accepted");
    assert_eq!(
        status(&app, &victor, &format!("/api/labs/{attack}"), None).await,
        StatusCode::OK,
        "the same token sees the lab at once"
    );
    let (_, me) = app.call(Method::GET, "/api/me", &victor, None).await;
    assert_eq!(me["labs"][0]["lab_id"], home.as_str(), "{me}");
    assert_eq!(me["labs"][1]["lab_id"], attack.as_str(), "{me}");
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments",
            &victor,
            Some(json!({"name": "after-accepting", "packages": []})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let env = acc["environment_id"].as_str().unwrap();
    let (_, e) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env}"),
            &victor,
            None,
        )
        .await;
    assert_eq!(
        e["lab_id"],
        home.as_str(),
        "the new environment is in his own lab"
    );
    app.wait_job(acc["job_id"].as_str().unwrap(), &victor).await;

    // An IT admin still adds a member directly, also without changing the
    // default lab.
    let walt = app.create_user(&home, "walt", "researcher").await;
    let r = app
        .req(
            Method::PUT,
            &format!("/api/labs/{attack}/members/walt"),
            &app.admin_token,
        )
        .header("x-westtek-acting-lab", &attack)
        .json(&json!({"role": "researcher"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, me) = app.call(Method::GET, "/api/me", &walt, None).await;
    assert_eq!(me["labs"][0]["lab_id"], home.as_str(), "{me}");
    assert_eq!(me["labs"].as_array().unwrap().len(), 2);
    // And roles offered are lab roles only.
    let r = app
        .req(
            Method::POST,
            &format!("/api/labs/{attack}/invitations"),
            &mallory,
        )
        .json(&json!({"username": "victor", "role": "it_admin"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // Every step is audited; made-up usernames exactly like real ones.
    assert_eq!(audit_count(&app, &attack, "lab.invitation_create").await, 5);
    assert_eq!(
        audit_count(&app, &attack, "lab.invitation_decline").await,
        1
    );
    assert_eq!(audit_count(&app, &attack, "lab.invitation_revoke").await, 1);
    assert_eq!(audit_count(&app, &attack, "lab.invitation_accept").await, 1);
    assert_eq!(audit_count(&app, &attack, "lab.member_add").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_invitation_grants_only_what_its_sender_still_may_and_removal_revokes_open_ones() {
    let app = spawn_app().await;
    let lab = app.create_lab("chem").await;
    let home = app.create_lab("home").await;
    let carol = app.create_user(&lab, "carol", "lab_admin").await;
    let _dave = app.create_user(&lab, "dave", "lab_admin").await;
    let alt = app.create_user(&home, "carol-alt", "researcher").await;
    let erin = app.create_user(&home, "erin", "researcher").await;

    // Carol invites her second account, then is removed from the lab: the
    // old invitation no longer brings anyone in.
    let (s, _) = invite(&app, &carol, &lab, "carol-alt").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let acting = |method: Method, who: &str| {
        app.req(
            method,
            &format!("/api/labs/{lab}/members/{who}"),
            &app.admin_token,
        )
        .header("x-westtek-acting-lab", lab.as_str())
        .json(&json!({"role": "researcher"}))
    };
    let r = acting(Method::DELETE, "carol").send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (_, mine) = app
        .call(Method::GET, "/api/me/invitations", &alt, None)
        .await;
    let id = mine[0]["id"].as_str().unwrap().to_string();
    let r = app
        .req(
            Method::POST,
            &format!("/api/me/invitations/{id}/accept"),
            &alt,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    // Other labs answer 404, like everything of theirs.
    assert_eq!(
        status(&app, &alt, "/api/environments", Some(&lab)).await,
        StatusCode::NOT_FOUND,
        "no way into the lab"
    );

    // Erin, invited and then added and removed by an IT admin, cannot use
    // the old invitation to come back: removal revoked it.
    let dave = westtek_tests::token_exchange(
        &app.http,
        &app.url,
        json!({"grant_type": "password", "username": "dave", "password": "correct horse battery staple"}),
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = invite(&app, &dave, &lab, "erin").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, mine) = app
        .call(Method::GET, "/api/me/invitations", &erin, None)
        .await;
    let erin_inv = mine[0]["id"].as_str().unwrap().to_string();
    for method in [Method::PUT, Method::DELETE] {
        let r = acting(method, "erin").send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let r = app
        .req(
            Method::POST,
            &format!("/api/me/invitations/{erin_inv}/accept"),
            &erin,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(
        status(&app, &erin, "/api/environments", Some(&lab)).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_it_admin_disables_a_user_whose_token_is_refused_at_once_and_enables_them_again() {
    let app = spawn_app().await;
    let lab = app.lab_id.clone();
    let dana = app.create_user(&lab, "dana", "lab_admin").await;
    let (s, me) = app.call(Method::GET, "/api/me", &dana, None).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let dana_id = me["user_id"].as_str().unwrap().to_string();

    // Only IT admins, never themselves.
    let r = app
        .req(Method::PUT, "/api/admin/users/dana/disabled", &dana)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let (_, admin_me) = app
        .call(Method::GET, "/api/me", &app.admin_token, None)
        .await;
    let admin_name = admin_me["username"].as_str().unwrap().to_string();
    let r = app
        .req(
            Method::PUT,
            &format!("/api/admin/users/{admin_name}/disabled"),
            &app.admin_token,
        )
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    let r = app
        .req(
            Method::PUT,
            "/api/admin/users/nobody-here/disabled",
            &app.admin_token,
        )
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;

    // Disabled: the token she holds is refused on her next request.
    let (s, u) = app
        .call(
            Method::PUT,
            &format!("/api/admin/users/{dana_id}/disabled"),
            &app.admin_token,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["disabled"], true);
    assert_eq!(u["idp_managed"], false);
    let r = app
        .req(Method::GET, "/api/environments", &dana)
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(p.to_string().contains("disabled"), "{p}");
    let (_, users) = app
        .call(
            Method::GET,
            &format!("/api/labs/{lab}/users"),
            &app.admin_token,
            None,
        )
        .await;
    assert!(users.to_string().contains("\"disabled\":true"), "{users}");

    // Enabled again: the same token works.
    let (s, u) = app
        .call(
            Method::PUT,
            "/api/admin/users/dana/disabled",
            &app.admin_token,
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["disabled"], false);
    assert_eq!(
        status(&app, &dana, "/api/environments", None).await,
        StatusCode::OK
    );
    let (_, audit) = app
        .call(Method::GET, "/api/audit?limit=200", &app.admin_token, None)
        .await;
    let text = audit.to_string();
    assert!(
        text.contains("user.disable") && text.contains("user.enable"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_agent_credential_stops_when_its_issuer_loses_access_to_the_lab() {
    let app = spawn_app().await;
    let lab = app.lab_id.clone();
    let rita = app.create_user(&lab, "rita", "researcher").await;
    let (s, adopted) = app
        .call(
            Method::POST,
            "/api/environments/adopt",
            &rita,
            Some(json!({
                "name": "ws-proj", "host": "lab-ws-3", "venv_path": "/srv/proj/.venv",
                "notebooks_path": "/srv/proj", "python_version": "3.11.7"
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{adopted}");
    let token = adopted["agent_token"].as_str().unwrap().to_string();
    let report = |t: &str| {
        app.req(Method::POST, "/api/agent/v1/inventory", t)
            .json(&json!({"inventory": {"not": "an inventory"}, "reason": "sweep"}))
            .send()
    };
    // Accepted as the agent (the body is then judged, and refused).
    let r = report(&token).await.unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Its issuer disabled: the credential is refused.
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/admin/users/rita/disabled",
            &app.admin_token,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = report(&token).await.unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // Enabled again but removed from the lab: still refused.
    let (s, _) = app
        .call(
            Method::PUT,
            "/api/admin/users/rita/disabled",
            &app.admin_token,
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        report(&token).await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/labs/{lab}/members/rita"),
            &app.admin_token,
        )
        .header("x-westtek-acting-lab", &lab)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = report(&token).await.unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.stop().await;
}
