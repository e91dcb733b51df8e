//! The Lambda's forwarder against the services' route on a loopback port.

use crate::fakes::{api_body, function_body, World};
use secrecy::SecretString;
use std::time::Duration;
use westtek_agent_actions::{router, Forwarder, ForwarderError, Targets, Tools};

async fn serve(tools: Tools, token: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(tools, &SecretString::from(token.to_string()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn forwarder(drift: Option<String>, knowledge: Option<String>, token: &str) -> Forwarder {
    Forwarder::new(
        Targets { drift, knowledge },
        SecretString::from(token.to_string()),
        Duration::from_secs(5),
    )
    .unwrap()
}

#[tokio::test]
async fn events_are_forwarded_to_the_service_of_their_agent() {
    let w = World::new().await;
    // Two services, each serving only its own agent's tools.
    let drift_url = serve(
        Tools {
            drift: w.tools.drift.clone(),
            knowledge: None,
        },
        "s3cret",
    )
    .await;
    let knowledge_url = serve(
        Tools {
            drift: None,
            knowledge: w.tools.knowledge.clone(),
        },
        "s3cret",
    )
    .await;
    let f = forwarder(Some(drift_url), Some(format!("{knowledge_url}/")), "s3cret");
    let reply = f
        .handle(&w.event("openapi-post-rollback.json"))
        .await
        .unwrap();
    assert_eq!(reply["response"]["httpStatusCode"], 200, "{reply}");
    assert_eq!(
        api_body(&reply)["reason"],
        "numpy 2 breaks the growth notebook"
    );
    assert_eq!(w.drift.calls().len(), 1);
    let reply = f
        .handle(&w.event("function-get-package-install-history.json"))
        .await
        .unwrap();
    assert!(
        reply["response"]["functionResponse"]
            .get("responseState")
            .is_none(),
        "{reply}"
    );
    assert_eq!(function_body(&reply)["lines"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_wrong_token_or_an_unreachable_service_is_a_failure_reply() {
    let w = World::new().await;
    let url = serve(w.tools.clone(), "s3cret").await;
    let event = w.event("openapi-get-drift-events.json");
    for f in [
        forwarder(Some(url.clone()), None, "guess"),
        // Nothing listens on port 9 of loopback.
        forwarder(Some("http://127.0.0.1:9".into()), None, "s3cret"),
    ] {
        let reply = f.handle(&event).await.unwrap();
        assert_eq!(reply["response"]["responseState"], "FAILURE", "{reply}");
        assert_eq!(reply["response"]["httpStatusCode"], 502);
        let body = api_body(&reply);
        assert_eq!(body["error"], "service_unavailable");
        assert!(body["message"].as_str().unwrap().contains("drift service"));
    }
    assert!(w.drift.calls().is_empty());
    // The route itself refuses a request without the token.
    let res = reqwest::Client::new()
        .post(format!("{url}/internal/agent-actions"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn unknown_and_unserved_actions_are_answered_without_a_round_trip() {
    let w = World::new().await;
    let f = forwarder(Some("http://127.0.0.1:9".into()), None, "t");
    let reply = f.handle(&w.api("GET", "/nope", &[], &[])).await.unwrap();
    assert_eq!(api_body(&reply)["error"], "unknown_action");
    let reply = f
        .handle(&w.function("GetOnboardingChecklist", &[]))
        .await
        .unwrap();
    assert_eq!(function_body(&reply)["error"], "not_served");
    let err = f
        .handle(&serde_json::json!({"hello": "world"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("messageVersion"), "{err}");
}

#[tokio::test]
async fn a_malformed_event_reaching_the_route_is_a_400_saying_why() {
    let w = World::new().await;
    let url = serve(w.tools.clone(), "t").await;
    let res = reqwest::Client::new()
        .post(format!("{url}/internal/agent-actions"))
        .bearer_auth("t")
        .json(&serde_json::json!({"messageVersion": "1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("actionGroup"),
        "{body}"
    );
}

#[test]
fn the_forwarder_settings_are_checked_up_front() {
    let token = || SecretString::from("t".to_string());
    let err = Forwarder::new(Targets::default(), token(), Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(matches!(err, ForwarderError::NoTargets));
    assert!(err.to_string().contains("WESTTEK_AGENT_ACTIONS_DRIFT_URL"));
    let err = Forwarder::new(
        Targets {
            drift: Some("drift:8080".into()),
            knowledge: None,
        },
        token(),
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("WESTTEK_AGENT_ACTIONS_DRIFT_URL must be an http(s) base URL"),
        "{err}"
    );
}
