//! Every Knowledge Transfer action over a knowledge folder: the lines
//! returned are the stored document's, with spans that cite them.

use crate::fakes::{api_body, function_body, World};
use serde_json::{json, Value};
use westtek_agent_actions::handle;
use westtek_domain::EnvironmentId;
use westtek_knowledge::DocPath;

/// The lines of an excerpt, after checking each span cites its text in
/// the stored document.
async fn cited_lines(w: &World, excerpt: &Value) -> Vec<String> {
    let path = DocPath::parse(excerpt["path"].as_str().unwrap()).unwrap();
    let doc = w.store.get(&path).await.unwrap().unwrap();
    let text = String::from_utf8(doc.bytes).unwrap();
    excerpt["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let (s, e) = (
                l["start"].as_u64().unwrap() as usize,
                l["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(&text[s..e], l["text"].as_str().unwrap());
            l["text"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn every_knowledge_action_is_reachable_through_both_group_kinds() {
    let w = World::new().await;
    // (function, path, arguments, a line the answer must hold)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "GetEnvironmentDetails",
            "/environment-details",
            vec![],
            "- Researcher (owner): ada",
        ),
        (
            "GetSnapshotHistory",
            "/snapshot-history",
            vec![],
            "notes: baseline for the paper",
        ),
        (
            "GetDriftHistory",
            "/drift-history",
            vec![],
            "CRITICAL drift event b2",
        ),
        (
            "GetResearcherProfile",
            "/researcher-profile",
            vec![],
            "- Experiment: EXP-42",
        ),
        (
            "GetPackageInstallHistory",
            "/package-install-history",
            vec![("package", "pandas".into())],
            "\"parquet fix\"",
        ),
        (
            "GetTransferPackage",
            "/transfer-package",
            vec![],
            "## Onboarding checklist",
        ),
        (
            "GetOnboardingChecklist",
            "/onboarding-checklist",
            vec![],
            "1. Restore the baseline snapshot",
        ),
    ];
    for (name, path, params, expected) in cases {
        for reply in [
            handle(&w.tools, &w.api("GET", path, &params, &[]))
                .await
                .unwrap(),
            handle(&w.tools, &w.function(name, &params)).await.unwrap(),
        ] {
            let body = if reply["response"].get("apiPath").is_some() {
                assert_eq!(reply["response"]["httpStatusCode"], 200, "{name}: {reply}");
                api_body(&reply)
            } else {
                assert!(
                    reply["response"]["functionResponse"]
                        .get("responseState")
                        .is_none(),
                    "{name}: {reply}"
                );
                function_body(&reply)
            };
            let excerpts = if body.is_array() {
                body.as_array().unwrap().clone()
            } else {
                vec![body]
            };
            let mut lines = Vec::new();
            for e in &excerpts {
                lines.extend(cited_lines(&w, e).await);
            }
            assert!(
                lines.iter().any(|l| l.contains(expected)),
                "{name}: {lines:?} should hold {expected:?}"
            );
        }
    }
}

#[tokio::test]
async fn sections_hold_only_their_lines() {
    let w = World::new().await;
    let reply = handle(&w.tools, &w.function("GetOnboardingChecklist", &[]))
        .await
        .unwrap();
    let lines = cited_lines(&w, &function_body(&reply)).await;
    assert_eq!(
        lines,
        [
            "1. Restore the baseline snapshot",
            "2. Run home/clean.ipynb, then home/growth.ipynb"
        ]
    );
    let reply = handle(&w.tools, &w.function("GetTransferPackage", &[]))
        .await
        .unwrap();
    let body = function_body(&reply);
    assert!(body["note"]
        .as_str()
        .unwrap()
        .contains(&format!("/api/knowledge/transfer/{}/package.zip", w.env)));
}

#[tokio::test]
async fn drift_history_is_filtered_by_day_and_install_history_by_normalised_name() {
    let w = World::new().await;
    let reply = handle(
        &w.tools,
        &w.function("GetDriftHistory", &[("since", "2026-03-01".into())]),
    )
    .await
    .unwrap();
    let lines = cited_lines(&w, &function_body(&reply)).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("- 2026-03-04"));
    let reply = handle(
        &w.tools,
        &w.function(
            "GetDriftHistory",
            &[("until", "2026-02-28T00:00:00Z".into())],
        ),
    )
    .await
    .unwrap();
    let lines = cited_lines(&w, &function_body(&reply)).await;
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("- 2026-02-20"));
    // "Pandas" is pandas; numpy's line is not included.
    let event = w.event("function-get-package-install-history.json");
    let reply = handle(&w.tools, &event).await.unwrap();
    let lines = cited_lines(&w, &function_body(&reply)).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l.contains("\"pandas\"")));
}

#[tokio::test]
async fn the_environment_is_the_session_s_and_another_is_not_found() {
    let w = World::new().await;
    // The model names another environment: not found, nothing read of it.
    let other = EnvironmentId::new();
    let reply = handle(
        &w.tools,
        &w.function(
            "GetResearcherProfile",
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
    // Its own environment, repeated: fine.
    let reply = handle(
        &w.tools,
        &w.function(
            "GetResearcherProfile",
            &[("environment_id", w.env.to_string())],
        ),
    )
    .await
    .unwrap();
    assert!(reply["response"]["functionResponse"]
        .get("responseState")
        .is_none());
    // No environment in the session: the Knowledge Transfer agent cannot act.
    let mut event = w.function(
        "GetResearcherProfile",
        &[("environment_id", w.env.to_string())],
    );
    event["sessionAttributes"] = json!({"lab_id": w.lab.to_string()});
    let reply = handle(&w.tools, &event).await.unwrap();
    assert_eq!(
        reply["response"]["functionResponse"]["responseState"],
        "FAILURE"
    );
    assert!(function_body(&reply)["message"]
        .as_str()
        .unwrap()
        .contains("environment_id"));
}

#[tokio::test]
async fn an_environment_never_synced_answers_empty_with_a_note() {
    let w = World::new().await;
    let mut event = w.function("GetSnapshotHistory", &[]);
    event["sessionAttributes"]["environment_id"] = json!(EnvironmentId::new().to_string());
    let reply = handle(&w.tools, &event).await.unwrap();
    let body = function_body(&reply);
    assert_eq!(body["lines"], json!([]));
    assert!(body["note"].as_str().unwrap().contains("not been synced"));
}
