//! Reply shapes, malformed events, unknown operations, session scoping.

use crate::fakes::{api_body, function_body, World};
use serde_json::json;
use westtek_agent_actions::handle;
use westtek_domain::LabId;

#[tokio::test]
async fn an_openapi_reply_has_the_shape_bedrock_expects_and_echoes_the_session() {
    let w = World::new().await;
    let event = w.event("openapi-get-drift-events.json");
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["messageVersion"], "1.0");
    let r = &reply["response"];
    assert_eq!(r["actionGroup"], "drift-analyzer-actions");
    assert_eq!(r["apiPath"], "/drift-events");
    assert_eq!(r["httpMethod"], "GET");
    assert_eq!(r["httpStatusCode"], 200);
    assert!(
        r.get("responseState").is_none(),
        "no responseState on success: {r}"
    );
    assert!(r["responseBody"]["application/json"]["body"].is_string());
    assert_eq!(reply["sessionAttributes"], event["sessionAttributes"]);
    assert_eq!(reply["promptSessionAttributes"], json!({}));
    let events = api_body(&reply);
    assert_eq!(events[0]["severity"], "CRITICAL");
    assert_eq!(events[0]["environment_id"], w.env.to_string());
}

#[tokio::test]
async fn a_function_reply_has_the_shape_bedrock_expects() {
    let w = World::new().await;
    let event = w.event("function-get-package-install-history.json");
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["messageVersion"], "1.0");
    let r = &reply["response"];
    assert_eq!(r["actionGroup"], "knowledge-transfer-functions");
    assert_eq!(r["function"], "GetPackageInstallHistory");
    assert!(r.get("apiPath").is_none());
    assert!(r["functionResponse"].get("responseState").is_none());
    let body = function_body(&reply);
    assert_eq!(
        body["path"],
        format!("installation-history/{}/history.jsonl", w.env)
    );
    assert_eq!(reply["sessionAttributes"], event["sessionAttributes"]);
}

#[tokio::test]
async fn an_unknown_api_path_is_a_failure_naming_the_paths() {
    let w = World::new().await;
    let reply = handle(&w.tools, &w.api("GET", "/drop-tables", &[], &[]))
        .await
        .unwrap();
    let r = &reply["response"];
    assert_eq!(r["responseState"], "FAILURE");
    assert_eq!(r["httpStatusCode"], 404);
    assert_eq!(r["apiPath"], "/drop-tables");
    let body = api_body(&reply);
    assert_eq!(body["error"], "unknown_action");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("/drop-tables") && message.contains("/drift-events"),
        "{message}"
    );
    assert!(w.drift.calls().is_empty());
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_says_which_method() {
    let w = World::new().await;
    let reply = handle(&w.tools, &w.api("DELETE", "/drift-events", &[], &[]))
        .await
        .unwrap();
    assert_eq!(reply["response"]["responseState"], "FAILURE");
    let message = api_body(&reply)["message"].as_str().unwrap().to_string();
    assert!(message.contains("use GET /drift-events"), "{message}");
}

#[tokio::test]
async fn an_unknown_function_is_a_failure_in_the_function_shape() {
    let w = World::new().await;
    let reply = handle(&w.tools, &w.function("DropTables", &[]))
        .await
        .unwrap();
    let fr = &reply["response"]["functionResponse"];
    assert_eq!(fr["responseState"], "FAILURE");
    assert_eq!(reply["response"]["function"], "DropTables");
    let body = function_body(&reply);
    assert_eq!(body["error"], "unknown_action");
    assert!(body["message"].as_str().unwrap().contains("GetDriftEvents"));
}

#[tokio::test]
async fn malformed_events_are_refused_with_what_is_wrong() {
    let w = World::new().await;
    let cases = [
        (json!("hello"), "not a Bedrock action-group event"),
        (
            json!({"messageVersion": "1.0", "apiPath": "/drift-events", "httpMethod": "GET"}),
            "`actionGroup` is missing",
        ),
        (
            json!({"actionGroup": "a", "function": "GetDriftEvents"}),
            "`messageVersion` is missing",
        ),
        (
            json!({"messageVersion": "2.0", "actionGroup": "a", "function": "GetDriftEvents"}),
            "unsupported messageVersion \"2.0\"",
        ),
        (
            json!({"messageVersion": "1.0", "actionGroup": "a"}),
            "neither `apiPath`",
        ),
        (
            json!({"messageVersion": "1.0", "actionGroup": "a", "apiPath": "/x", "httpMethod": "GET", "function": "F"}),
            "both `apiPath`",
        ),
        (
            json!({"messageVersion": "1.0", "actionGroup": "a", "apiPath": "/drift-events"}),
            "`httpMethod` is missing",
        ),
        (
            json!({"messageVersion": "1.0", "actionGroup": "a", "function": "GetDriftEvents", "parameters": "since=1"}),
            "not a Bedrock action-group event",
        ),
    ];
    for (event, expected) in cases {
        let err = handle(&w.tools, &event).await.unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{event}: {err:?} should say {expected:?}"
        );
    }
    assert!(w.drift.calls().is_empty());
}

#[tokio::test]
async fn the_lab_comes_from_the_session_and_a_model_given_lab_is_refused() {
    let w = World::new().await;
    // The model tries another lab: refused, nothing called.
    let other = LabId::new().to_string();
    let event = w.api("GET", "/environment-config", &[("lab_id", other)], &[]);
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["response"]["responseState"], "REPROMPT");
    assert_eq!(reply["response"]["httpStatusCode"], 403);
    assert_eq!(api_body(&reply)["error"], "other_lab");
    assert!(w.drift.calls().is_empty());
    // Its own lab, repeated: harmless; the scope is the session's.
    let event = w.api(
        "GET",
        "/environment-config",
        &[("lab_id", w.lab.to_string())],
        &[],
    );
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["response"]["httpStatusCode"], 200);
    let calls = w.drift.calls();
    assert_eq!(calls[0].1.lab_id, w.lab);
    assert_eq!(calls[0].1.actor, Some(w.user));
}

#[tokio::test]
async fn a_session_of_another_lab_finds_nothing_of_this_one() {
    let w = World::new().await;
    let mut event = w.api(
        "GET",
        "/environment-config",
        &[("environment_id", w.env.to_string())],
        &[],
    );
    event["sessionAttributes"]["lab_id"] = json!(LabId::new().to_string());
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["response"]["responseState"], "REPROMPT");
    assert_eq!(reply["response"]["httpStatusCode"], 404);
    assert_eq!(api_body(&reply)["error"], "not_found");
}

#[tokio::test]
async fn a_session_without_a_lab_is_a_failure_and_calls_nothing() {
    let w = World::new().await;
    for attrs in [
        json!({}),
        json!({"lab_id": ""}),
        json!({"lab_id": "genomics"}),
    ] {
        let mut event = w.function(
            "GetEnvironmentConfig",
            &[("environment_id", w.env.to_string())],
        );
        event["sessionAttributes"] = attrs.clone();
        let reply = handle(&w.tools, &event).await.unwrap();
        let fr = &reply["response"]["functionResponse"];
        assert_eq!(fr["responseState"], "FAILURE", "{attrs}");
        let body = function_body(&reply);
        assert!(
            body["message"].as_str().unwrap().contains("lab_id"),
            "{body}"
        );
    }
    // No session attributes at all (null), as a hand-made test event has.
    let mut event = w.function("GetEnvironmentConfig", &[]);
    event["sessionAttributes"] = json!(null);
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(
        reply["response"]["functionResponse"]["responseState"],
        "FAILURE"
    );
    assert!(w.drift.calls().is_empty());
}

#[tokio::test]
async fn prompt_session_attributes_fill_in_but_cannot_contradict_the_session() {
    let w = World::new().await;
    // Only in the prompt attributes: used.
    let mut event = w.function("GetEnvironmentConfig", &[]);
    event["promptSessionAttributes"] = event["sessionAttributes"].clone();
    event["sessionAttributes"] = json!({});
    let reply = handle(&w.tools, &event).await.unwrap();
    assert!(
        reply["response"]["functionResponse"]
            .get("responseState")
            .is_none(),
        "{reply}"
    );
    assert_eq!(w.drift.calls()[0].1.lab_id, w.lab);
    // A different lab in the prompt attributes: refused.
    let mut event = w.function("GetEnvironmentConfig", &[]);
    event["promptSessionAttributes"] = json!({"lab_id": LabId::new().to_string()});
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(
        reply["response"]["functionResponse"]["responseState"],
        "FAILURE"
    );
    assert_eq!(function_body(&reply)["error"], "scope_conflict");
    assert_eq!(w.drift.calls().len(), 1);
}

#[tokio::test]
async fn an_internal_tool_failure_is_a_failure_without_its_detail() {
    let mut w = World::new().await;
    let mut broken = crate::fakes::FakeDrift::new(w.lab, w.env);
    broken.broken = true;
    w.tools.drift = Some(std::sync::Arc::new(broken));
    let reply = handle(&w.tools, &w.api("GET", "/environment-config", &[], &[]))
        .await
        .unwrap();
    assert_eq!(reply["response"]["responseState"], "FAILURE");
    assert_eq!(reply["response"]["httpStatusCode"], 500);
    let text = reply.to_string();
    assert!(
        !text.contains("mongodb") && !text.contains("27017"),
        "{text}"
    );
    assert_eq!(api_body(&reply)["error"], "tool_failed");
}

#[tokio::test]
async fn an_agent_not_served_here_is_a_failure() {
    let mut w = World::new().await;
    w.tools.knowledge = None;
    let reply = handle(&w.tools, &w.function("GetOnboardingChecklist", &[]))
        .await
        .unwrap();
    assert_eq!(
        reply["response"]["functionResponse"]["responseState"],
        "FAILURE"
    );
    assert_eq!(function_body(&reply)["error"], "not_served");
}

#[tokio::test]
async fn an_action_of_the_other_agent_than_the_session_s_is_a_failure() {
    let w = World::new().await;
    // A Knowledge Transfer session calling a Drift Analyzer action.
    let mut event = w.event("openapi-post-rollback.json");
    event["sessionAttributes"]["agent"] = json!("KnowledgeTransfer");
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["response"]["responseState"], "FAILURE");
    assert_eq!(api_body(&reply)["error"], "wrong_agent");
    assert!(w.drift.calls().is_empty());
    // The adapter's own value for the right agent passes.
    event["sessionAttributes"]["agent"] = json!("DriftAnalyzer");
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(reply["response"]["httpStatusCode"], 200);
    // An agent the platform does not have.
    event["sessionAttributes"]["agent"] = json!("Mallory");
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(api_body(&reply)["error"], "invalid_session");
}
