//! Every Drift Analyzer action reachable through both action-group kinds,
//! with its parameters decoded.

use crate::fakes::{api_body, function_body, World};
use serde_json::{json, Value};
use westtek_agent_actions::handle;
use westtek_domain::{EnvironmentId, SnapshotId};

/// Arguments as (name, value) pairs.
type Args = Vec<(&'static str, String)>;

/// One action: (function, method, path, query params, body props, the
/// arguments the tool must receive).
type Case = (&'static str, &'static str, &'static str, Args, Args, Value);

fn cases(w: &World) -> Vec<Case> {
    let env = w.env.to_string();
    let [s0, s1] = w.drift.snapshots.map(|s| s.to_string());
    vec![
        (
            "GetDriftEvents",
            "GET",
            "/drift-events",
            vec![
                ("environment_id", env.clone()),
                ("since", "2026-03-01".into()),
                ("until", "2026-03-31T12:00:00+02:00".into()),
            ],
            vec![],
            json!({"environment_id": env, "since": "2026-03-01T00:00:00Z", "until": "2026-03-31T10:00:00Z"}),
        ),
        (
            "GetPackageChangelog",
            "GET",
            "/package-changelog",
            vec![
                ("package", "numpy".into()),
                ("old_version", "1.26.4".into()),
                ("new_version", "2.0.1".into()),
            ],
            vec![],
            json!({"environment_id": env, "package": "numpy", "old_version": "1.26.4", "new_version": "2.0.1"}),
        ),
        (
            "GetEnvironmentNotebooks",
            "GET",
            "/environment-notebooks",
            vec![("environment_id", env.clone())],
            vec![],
            json!({"environment_id": env}),
        ),
        (
            "GetSnapshotComparison",
            "GET",
            "/snapshot-comparison",
            vec![("before", s0.clone()), ("after", s1.clone())],
            vec![],
            json!({"before": s0, "after": s1}),
        ),
        (
            "GetEnvironmentConfig",
            "GET",
            "/environment-config",
            vec![],
            vec![],
            json!({"environment_id": env}),
        ),
        (
            "CreateSnapshotRecommendation",
            "POST",
            "/snapshot-recommendations",
            vec![],
            vec![
                ("environment_id", env.clone()),
                ("reason", "accept the upgrade".into()),
            ],
            json!({"environment_id": env, "reason": "accept the upgrade"}),
        ),
        (
            "CreateRollbackRecommendation",
            "POST",
            "/rollback-recommendations",
            vec![],
            vec![
                ("target_snapshot_id", s0.clone()),
                ("reason", "numpy 2 breaks growth".into()),
            ],
            json!({"environment_id": env, "target_snapshot_id": s0, "reason": "numpy 2 breaks growth"}),
        ),
    ]
}

#[tokio::test]
async fn every_drift_action_is_reachable_through_an_openapi_group() {
    let w = World::new().await;
    for (name, method, path, params, props, expected) in cases(&w) {
        let reply = handle(&w.tools, &w.api(method, path, &params, &props))
            .await
            .unwrap();
        assert_eq!(reply["response"]["httpStatusCode"], 200, "{name}: {reply}");
        let (called, scope, args) = w.drift.calls().pop().unwrap();
        assert_eq!(called, name);
        assert_eq!(scope.lab_id, w.lab);
        assert_eq!(scope.actor, Some(w.user));
        assert_eq!(args, expected, "{name}");
        assert!(!api_body(&reply).is_null());
    }
    assert_eq!(w.drift.calls().len(), 7);
}

#[tokio::test]
async fn every_drift_action_is_reachable_through_a_function_group() {
    let w = World::new().await;
    for (name, _, _, params, props, expected) in cases(&w) {
        // A function group has no body: its parameters carry everything.
        let all: Vec<(&str, String)> = params.into_iter().chain(props).collect();
        let reply = handle(&w.tools, &w.function(name, &all)).await.unwrap();
        assert!(
            reply["response"]["functionResponse"]
                .get("responseState")
                .is_none(),
            "{name}: {reply}"
        );
        let (called, scope, args) = w.drift.calls().pop().unwrap();
        assert_eq!(called, name);
        assert_eq!(scope.lab_id, w.lab);
        assert_eq!(args, expected, "{name}");
        assert!(!function_body(&reply).is_null());
    }
}

#[tokio::test]
async fn a_request_body_s_properties_are_decoded() {
    let w = World::new().await;
    let event = w.event("openapi-post-rollback.json");
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["response"]["httpStatusCode"], 200, "{reply}");
    assert_eq!(reply["promptSessionAttributes"], json!({"turn": "3"}));
    let rec = api_body(&reply);
    assert_eq!(
        rec["kind"],
        json!({"type": "rollback", "target_snapshot_id": w.drift.snapshots[0].to_string()})
    );
    assert_eq!(rec["reason"], "numpy 2 breaks the growth notebook");
    let (called, _, args) = w.drift.calls().pop().unwrap();
    assert_eq!(called, "CreateRollbackRecommendation");
    assert_eq!(args["environment_id"], w.env.to_string());
}

#[tokio::test]
async fn missing_or_invalid_arguments_reprompt_the_model_with_what_to_fix() {
    let w = World::new().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            w.api("GET", "/package-changelog", &[], &[]),
            "`package` is required",
        ),
        (
            w.api(
                "GET",
                "/snapshot-comparison",
                &[("before", SnapshotId::new().to_string())],
                &[],
            ),
            "`after` is required",
        ),
        (
            w.api(
                "GET",
                "/environment-config",
                &[("environment_id", "growth".into())],
                &[],
            ),
            "`environment_id` must be a UUID",
        ),
        (
            w.api(
                "GET",
                "/drift-events",
                &[("since", "last tuesday".into())],
                &[],
            ),
            "`since` must be an RFC 3339 time",
        ),
        (
            w.api(
                "POST",
                "/snapshot-recommendations",
                &[],
                &[("reason", "".into())],
            ),
            "`reason` is required",
        ),
        (
            w.api(
                "POST",
                "/rollback-recommendations",
                &[("reason", "a".into())],
                &[("reason", "b".into())],
            ),
            "`reason` is given twice",
        ),
    ];
    for (event, expected) in cases {
        let reply = handle(&w.tools, &event).await.unwrap();
        assert_eq!(reply["response"]["responseState"], "REPROMPT", "{reply}");
        assert_eq!(reply["response"]["httpStatusCode"], 400);
        let message = api_body(&reply)["message"].as_str().unwrap().to_string();
        assert!(
            message.contains(expected),
            "{message:?} should say {expected:?}"
        );
    }
    assert!(w.drift.calls().is_empty());
}

#[tokio::test]
async fn without_an_environment_in_the_session_one_must_be_given() {
    let w = World::new().await;
    let mut event = w.function("GetEnvironmentNotebooks", &[]);
    event["sessionAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("environment_id");
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(
        reply["response"]["functionResponse"]["responseState"],
        "REPROMPT"
    );
    assert!(function_body(&reply)["message"]
        .as_str()
        .unwrap()
        .contains("`environment_id` is required"));
    // Another environment (of the lab, as far as the caller knows) is the tools' to judge.
    let other = EnvironmentId::new();
    let reply = handle(
        &w.tools,
        &w.function(
            "GetEnvironmentNotebooks",
            &[("environment_id", other.to_string())],
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        reply["response"]["functionResponse"]["responseState"],
        "REPROMPT"
    );
    assert_eq!(function_body(&reply)["error"], "not_found");
    assert_eq!(w.drift.calls()[0].2["environment_id"], other.to_string());
}

#[tokio::test]
async fn a_result_too_long_for_the_reply_keeps_its_newest_items() {
    let mut w = World::new().await;
    let mut many = crate::fakes::FakeDrift::new(w.lab, w.env);
    many.events = 500;
    w.tools.drift = Some(std::sync::Arc::new(many));
    let reply = handle(&w.tools, &w.event("openapi-get-drift-events.json"))
        .await
        .unwrap();
    assert_eq!(reply["response"]["httpStatusCode"], 200);
    let body = reply["response"]["responseBody"]["application/json"]["body"]
        .as_str()
        .unwrap();
    assert!(
        body.len() <= westtek_agent_actions::event::MAX_BODY_BYTES,
        "{} bytes",
        body.len()
    );
    let events: Vec<Value> = serde_json::from_str(body).unwrap();
    assert!(
        events.len() > 10 && events.len() < 500,
        "{} events",
        events.len()
    );
    // Newest first, as the tools list them: the kept ones are the newest.
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["detected_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|t| t[0] > t[1]));
}

/// Members of the world's lab, for the recording gate.
struct Members(Vec<(westtek_domain::UserId, westtek_domain::LabId)>);

#[async_trait::async_trait]
impl westtek_agent_actions::Memberships for Members {
    async fn is_member(
        &self,
        user: westtek_domain::UserId,
        lab: westtek_domain::LabId,
    ) -> Result<bool, westtek_assist::ToolError> {
        Ok(self.0.contains(&(user, lab)))
    }
}

#[tokio::test]
async fn only_a_member_of_the_lab_records_a_recommendation_through_the_gate() {
    let mut w = World::new().await;
    let gate = |members| {
        westtek_agent_actions::RecordingGate::new(
            w.drift.clone(),
            std::sync::Arc::new(Members(members)),
        )
    };
    // The session's user is a member: recorded.
    w.tools.drift = Some(std::sync::Arc::new(gate(vec![(w.user, w.lab)])));
    let reply = handle(&w.tools, &w.event("openapi-post-rollback.json"))
        .await
        .unwrap();
    assert_eq!(reply["response"]["httpStatusCode"], 200, "{reply}");
    assert_eq!(w.drift.calls().len(), 1);
    // A viewer through a share (no membership): forbidden, nothing recorded; reads still work.
    w.tools.drift = Some(std::sync::Arc::new(gate(vec![])));
    let reply = handle(&w.tools, &w.event("openapi-post-rollback.json"))
        .await
        .unwrap();
    assert_eq!(reply["response"]["responseState"], "REPROMPT");
    assert_eq!(reply["response"]["httpStatusCode"], 403);
    assert_eq!(api_body(&reply)["error"], "forbidden");
    assert_eq!(w.drift.calls().len(), 1);
    let reply = handle(&w.tools, &w.event("openapi-get-drift-events.json"))
        .await
        .unwrap();
    assert_eq!(reply["response"]["httpStatusCode"], 200);
    // No user in the session: forbidden too.
    let mut event = w.function("CreateSnapshotRecommendation", &[("reason", "x".into())]);
    event["sessionAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("user_id");
    w.tools.drift = Some(std::sync::Arc::new(gate(vec![(w.user, w.lab)])));
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(function_body(&reply)["error"], "forbidden");
}
