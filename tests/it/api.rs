//! The API's contract at the edge: sign-in, lab isolation, roles, bad
//! input, quotas, audit. No Jupyter needed here except the failed build.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use westtek_tests::{assert_problem, spawn_app, spawn_app_with, token_exchange};

#[tokio::test]
async fn first_run_creates_a_lab_and_an_admin_whose_link_works_only_once() {
    let app = spawn_app().await;
    let first = app.app.first_login.clone().unwrap();
    assert!(first.url.starts_with(&app.url) && first.url.contains("/api/auth/login?token="));
    let file = app.data_dir.path().join("data/first-login");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let (s, me) = app
        .call(Method::GET, "/api/me", &app.admin_token, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["it_admin"], true);
    assert_eq!(me["labs"][0]["role"], "lab_admin");
    assert_eq!(me["labs"][0]["lab_name"], "my-lab");

    // The link was spent by spawn_app.
    let again = app
        .http
        .post(format!("{}/api/auth/token", app.url))
        .json(&json!({"grant_type": "one_time_token", "token": first.token}))
        .send()
        .await
        .unwrap();
    assert_problem(again, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_problem_json_with_a_stable_code_and_stores_nothing() {
    let app = spawn_app().await;
    let t = app.admin_token.clone();
    let post = |body: &'static str| {
        app.req(Method::POST, "/api/environments", &t)
            .header("content-type", "application/json")
            .body(body)
    };
    assert_problem(
        post("{\"name\": ").send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_problem(
        post(r#"{"name": "x", "colour": "red"}"#)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_problem(
        post(r#"{"name": 42}"#).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    let p = assert_problem(
        post(r#"{"name": "x", "packages": ["--index-url=http://evil"]}"#)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(p["field"], "packages");
    assert_problem(
        post(r#"{"name": "../etc"}"#).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        post(r#"{"name": "ok", "python_version": "2.7"}"#)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let r = app
        .req(Method::POST, "/api/environments", &t)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let r = app
        .req(Method::POST, "/api/environments", &t)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_problem(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    assert_problem(
        app.req(Method::GET, "/api/environments/not-a-uuid", &t)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_id",
    )
    .await;
    let missing = format!("/api/environments/{}", uuid::Uuid::new_v4());
    assert_problem(
        app.req(Method::GET, &missing, &t).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.req(Method::GET, "/api/environments?limit=0", &t)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.req(Method::GET, "/api/environments?bogus=1", &t)
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_problem(
        app.req(Method::GET, "/api/no-such-thing", &t)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "route_not_found",
    )
    .await;
    assert_problem(
        app.req(Method::PUT, "/api/environments", &t)
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;

    // Missing, garbage and foreign-signed credentials.
    let r = app
        .http
        .get(format!("{}/api/environments", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_problem(
        app.req(Method::GET, "/api/environments", "garbage")
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Nothing was stored, and nothing was audited as created.
    let (_, page) = app.call(Method::GET, "/api/environments", &t, None).await;
    assert_eq!(page["total"], 0);
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/audit?action=environment.create",
            &t,
            None,
        )
        .await;
    assert_eq!(audit["total"], 0);
    // Internal detail never leaks.
    let body = app
        .req(Method::POST, "/api/environments", &t)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !body.to_lowercase().contains("sqlite") && !body.contains("/tmp"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_rejected_but_a_refresh_token_renews_the_session() {
    let app = spawn_app().await;
    let (_, me) = app
        .call(Method::GET, "/api/me", &app.admin_token, None)
        .await;
    let principal = westtek_domain::Principal {
        user_id: westtek_domain::UserId::parse(me["user_id"].as_str().unwrap()).unwrap(),
        username: "admin".into(),
        it_admin: true,
        memberships: vec![],
    };
    let issuer = app.app.state.issuer.clone().unwrap();
    let old = issuer
        .issue_access(&principal, chrono_now_minus_hours(2))
        .unwrap();
    let r = app
        .req(Method::GET, "/api/me", &old.token)
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(!p["detail"].as_str().unwrap().contains(&old.token));

    // A password session's refresh token rotates: the old one dies.
    app.create_user(&app.lab_id, "carol", "researcher").await;
    let s = token_exchange(&app.http, &app.url, json!({"grant_type": "password", "username": "carol", "password": "correct horse battery staple"})).await;
    let refresh = s["refresh_token"].as_str().unwrap();
    let renewed = token_exchange(
        &app.http,
        &app.url,
        json!({"grant_type": "refresh_token", "token": refresh}),
    )
    .await;
    assert_ne!(renewed["refresh_token"], s["refresh_token"]);
    let reuse = app
        .http
        .post(format!("{}/api/auth/token", app.url))
        .json(&json!({"grant_type": "refresh_token", "token": refresh}))
        .send()
        .await
        .unwrap();
    assert_problem(reuse, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let wrong = app
        .http
        .post(format!("{}/api/auth/token", app.url))
        .json(&json!({"grant_type": "password", "username": "carol", "password": "nope"}))
        .send()
        .await
        .unwrap();
    let p = assert_problem(wrong, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(p["detail"], "wrong username or password");
    app.stop().await;
}

fn chrono_now_minus_hours(h: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::hours(h)
}

#[tokio::test]
async fn a_browser_signs_in_with_the_link_and_its_cookie_session_renews_itself() {
    let app = spawn_app().await;
    let (s, created) = app
        .call(
            Method::POST,
            &format!("/api/labs/{}/users", app.lab_id),
            &app.admin_token,
            Some(json!({"username": "dana", "role": "researcher"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let link = created["sign_in_url"].as_str().unwrap();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Opening the link (as a mail scanner would) shows a page and spends nothing.
    for _ in 0..2 {
        let page = no_redirect
            .get(format!("{link}&next=//evil.example"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page
            .text()
            .await
            .unwrap()
            .contains("<form method=post action=/api/auth/login>"));
    }
    let form = [("token", token.as_str()), ("next", "//evil.example")];
    // Another site cannot submit it for the visitor.
    let r = no_redirect
        .post(format!("{}/api/auth/login", app.url))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = no_redirect
        .post(format!("{}/api/auth/login", app.url))
        .header("origin", &app.url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/", "no open redirect");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies.iter().all(|c| c.contains("HttpOnly")),
        "{cookies:?}"
    );
    let pick = |name: &str| {
        cookies
            .iter()
            .find(|c| c.starts_with(name))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let (access, refresh) = (pick("westtek_access="), pick("westtek_refresh="));

    let me = no_redirect
        .get(format!("{}/api/me", app.url))
        .header("cookie", &access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // Only the refresh cookie left (access expired): a new access cookie comes back.
    let me = no_redirect
        .get(format!("{}/api/me", app.url))
        .header("cookie", &refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    assert!(me
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("westtek_access=")));
    // The link is spent.
    let r = no_redirect
        .post(format!("{}/api/auth/login", app.url))
        .header("origin", &app.url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.stop().await;
}

#[tokio::test]
async fn labs_are_isolated_and_it_admins_change_another_lab_only_when_acting() {
    let app = spawn_app().await;
    let physics = app.create_lab("physics").await;
    let bob = app.create_user(&physics, "bob", "lab_admin").await;

    // Bob cannot see or change the first lab.
    assert_problem(
        app.req(Method::GET, &format!("/api/labs/{}", app.lab_id), &bob)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = app
        .req(
            Method::POST,
            &format!("/api/labs/{}/users", app.lab_id),
            &bob,
        )
        .json(&json!({"username": "mallory", "role": "lab_admin"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .req(Method::GET, "/api/environments", &bob)
        .header("x-westtek-lab", &app.lab_id)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let (_, labs) = app.call(Method::GET, "/api/labs", &bob, None).await;
    assert_eq!(labs.as_array().unwrap().len(), 1);
    // Bob's audit view holds only his lab's entries.
    let (_, audit) = app.call(Method::GET, "/api/audit", &bob, None).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["lab_id"] == physics.as_str()),
        "{audit}"
    );
    assert!(audit["total"].as_u64().unwrap() >= 2);

    // A researcher cannot add users.
    let rita = app.create_user(&physics, "rita", "researcher").await;
    let r = app
        .req(Method::POST, &format!("/api/labs/{physics}/users"), &rita)
        .json(&json!({"username": "x", "role": "researcher"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .req(Method::POST, "/api/labs", &bob)
        .json(&json!({"name": "bobs-own"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    // The IT admin reads physics but changes it only when acting explicitly.
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/labs/{physics}/users"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = app
        .req(
            Method::POST,
            &format!("/api/labs/{physics}/users"),
            &app.admin_token,
        )
        .json(&json!({"username": "eve", "role": "researcher"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    app.create_user(&physics, "frank", "researcher").await; // acts via the header
    let (_, audit) = app
        .call(
            Method::GET,
            &format!("/api/audit?lab_id={physics}&action=user.create"),
            &app.admin_token,
            None,
        )
        .await;
    let frank = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"]["username"] == "frank")
        .unwrap();
    assert_eq!(frank["details"]["acting_it_admin"], true);
    assert_eq!(frank["actor_name"], "admin");
    let (_, all) = app
        .call(Method::GET, "/api/audit?limit=1000", &app.admin_token, None)
        .await;
    let labs_seen: std::collections::HashSet<_> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["lab_id"].as_str())
        .collect();
    assert!(labs_seen.contains(physics.as_str()) && labs_seen.contains(app.lab_id.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn quotas_are_enforced_and_the_audit_trail_exports_and_verifies() {
    let app = spawn_app().await;
    let r = app
        .req(
            Method::PATCH,
            &format!("/api/labs/{}", app.lab_id),
            &app.admin_token,
        )
        .json(&json!({"quotas": {"max_environments": 0, "max_running_servers": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .req(Method::POST, "/api/environments", &app.admin_token)
        .json(&json!({"name": "one"}))
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, StatusCode::FORBIDDEN, "quota_exceeded").await;
    assert!(p["detail"].as_str().unwrap().contains("0 of its 0"));

    let csv = app
        .req(
            Method::GET,
            "/api/audit/export?format=csv",
            &app.admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("seq,id,time,actor_id,actor_name,lab_id,action"));
    assert!(text.contains("lab.update_quotas"));
    let (s, json_export) = app
        .call(
            Method::GET,
            "/api/audit/export?format=json",
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let entries = json_export.as_array().unwrap();
    assert!(
        entries
            .windows(2)
            .all(|w| w[1]["seq"].as_i64() > w[0]["seq"].as_i64()),
        "oldest first"
    );
    assert!(
        entries
            .windows(2)
            .all(|w| w[1]["prev_hash"] == w[0]["hash"]),
        "a chain"
    );
    assert_problem(
        app.req(
            Method::GET,
            "/api/audit/export?format=xml",
            &app.admin_token,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let (s, v) = app
        .call(Method::GET, "/api/audit/verify", &app.admin_token, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], true, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn a_build_with_an_unknown_package_fails_clearly_and_leaves_nothing_behind() {
    let app = spawn_app().await;
    let t = app.admin_token.clone();
    let (s, accepted) = app
        .call(
            Method::POST,
            "/api/environments",
            &t,
            Some(json!({"name": "broken", "packages": ["westtek-no-such-package-xyz"]})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{accepted}");
    let job = app.wait_job(accepted["job_id"].as_str().unwrap(), &t).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "package_not_found", "{job}");
    assert!(job["error"]["message"]
        .as_str()
        .unwrap()
        .contains("westtek-no-such-package-xyz"));
    let env_id = accepted["environment_id"].as_str().unwrap();
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env_id}"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        !app.data_dir.path().join("data/envs").join(env_id).exists(),
        "partial venv left behind"
    );
    let (_, audit) = app
        .call(
            Method::GET,
            &format!("/api/audit?target_id={env_id}"),
            &t,
            None,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["environment.build_failed", "environment.create"]
    );
    let _: Value = job;
    app.stop().await;
}

#[tokio::test]
async fn edge_cases_sign_in_limits_request_ids_ids_in_bodies_and_logout() {
    let app = spawn_app().await;
    app.create_user(&app.lab_id, "erin", "researcher").await;
    // Ten wrong passwords, then the user is locked out for a while (even
    // with the right one), with a clear answer.
    for _ in 0..10 {
        let r = app
            .http
            .post(format!("{}/api/auth/token", app.url))
            .json(&json!({"grant_type": "password", "username": "erin", "password": "wrong"}))
            .send()
            .await
            .unwrap();
        assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let r = app.http.post(format!("{}/api/auth/token", app.url))
        .json(&json!({"grant_type": "password", "username": "erin", "password": "correct horse battery staple"})).send().await.unwrap();
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // A client's request id is kept when sane, replaced when not.
    let r = app
        .req(Method::GET, "/api/me", &app.admin_token)
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    let r = app
        .req(Method::GET, "/api/me", &app.admin_token)
        .header("x-request-id", "=cmd|' /C calc'!A0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 36);

    // Ids in bodies, queries and headers are checked like ids in paths.
    let r = app
        .req(Method::POST, "/api/environments/jupyter", &app.admin_token)
        .json(&json!({"environment_id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_id").await;
    let r = app
        .req(
            Method::GET,
            "/api/environments?lab_id=nope",
            &app.admin_token,
        )
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_id").await;
    let r = app
        .req(Method::GET, "/api/environments", &app.admin_token)
        .header("x-westtek-lab", "nope")
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_id").await;

    // An API client signs out with its refresh token in the body.
    let s = token_exchange(
        &app.http,
        &app.url,
        json!({"grant_type": "one_time_token", "token": issue_link(&app, "erin").await}),
    )
    .await;
    let access = s["access_token"].as_str().unwrap();
    let r = app
        .req(Method::POST, "/api/auth/logout", access)
        .json(&json!({"refresh_token": s["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .http
        .post(format!("{}/api/auth/token", app.url))
        .json(&json!({"grant_type": "refresh_token", "token": s["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let (_, audit) = app
        .call(
            Method::GET,
            "/api/audit?action=auth.sign_out",
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(audit["total"], 1);
    app.stop().await;
}

async fn issue_link(app: &westtek_tests::TestApp, username: &str) -> String {
    let user = app
        .app
        .state
        .store
        .find_user_by_username(username)
        .await
        .unwrap()
        .unwrap()
        .user;
    let actor = westtek_platform::ops::Actor {
        id: None,
        name: "test".into(),
        request_id: "t".into(),
        acting_it_admin: false,
    };
    westtek_platform::ops::issue_sign_in_token(
        &*app.app.state.store,
        &*app.app.state.clock,
        &actor,
        user.id,
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_second_platform_on_the_same_data_dir_is_refused() {
    let app = spawn_app().await;
    let mut cfg = westtek::app::UpConfig::new(app.data_dir.path().join("data"));
    cfg.port = 0;
    let second = westtek::app::start(cfg).await;
    let err = second
        .err()
        .expect("a second platform must not start")
        .to_string();
    assert!(err.contains("is using the data dir"), "{err}");
    // The first one is untouched.
    let (s, _) = app
        .call(Method::GET, "/api/me", &app.admin_token, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

/// A change carried by the session cookie alone must come from this site
/// (another site's page would send the cookie too); reads and bearer-token
/// calls need no proof. The sign-in page no longer makes Chromium send
/// `Origin: null`, and `Origin: null` with `Sec-Fetch-Site: same-origin` passes.
#[tokio::test]
async fn cookie_carried_changes_need_a_same_origin_proof() {
    let app = spawn_app().await;
    let cookie = format!(
        "{}={}",
        westtek_platform::auth::ACCESS_COOKIE,
        app.admin_token
    );
    let host = app.url.trim_start_matches("http://").to_string();
    // Invalid on purpose: 422 shows the request got past authentication
    // without starting a build.
    let body = json!({"name": "bad name!", "packages": []});
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut r = app
            .http
            .post(format!("{}/api/environments", app.url))
            .header("cookie", &cookie)
            .json(&body);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(s) = site {
            r = r.header("sec-fetch-site", s);
        }
        r.send()
    };
    let r = post(None, None).await.unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = post(Some("http://evil.example"), Some("cross-site"))
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = post(Some("null"), Some("cross-site")).await.unwrap();
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = post(Some("null"), Some("same-origin")).await.unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Reads need no proof; the same origin is accepted.
    let r = app
        .http
        .get(format!("{}/api/environments", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .http
        .post(format!("{}/api/environments", app.url))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .json(&json!({"name": "bad name!", "packages": []}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // The sign-in page's referrer policy keeps the real Origin on its form.
    let r = app
        .http
        .get(format!("{}/api/auth/login?token=abc", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    app.stop().await;
}

#[tokio::test]
async fn the_lab_secure_browser_portal_is_named_to_users_when_configured() {
    let app = spawn_app().await;
    let (s, me) = app
        .call(Method::GET, "/api/me", &app.admin_token, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(me.get("secure_browser_url").is_none(), "{me}");
    app.stop().await;

    let app = spawn_app_with(|c| {
        c.secure_browser_url = Some("https://abcd1234.workspaces-web.com".into());
    })
    .await;
    let (s, me) = app
        .call(Method::GET, "/api/me", &app.admin_token, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        me["secure_browser_url"],
        "https://abcd1234.workspaces-web.com"
    );
    app.stop().await;
}
