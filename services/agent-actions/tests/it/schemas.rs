//! The OpenAPI schemas the CDK app attaches to the agents: every operation
//! in them is handled, and every action is in them.

use crate::fakes::{api_body, World};
use serde_json::Value;
use std::collections::BTreeSet;
use westtek_agent_actions::{handle, OPERATIONS};

fn schema(name: &str) -> Value {
    let path = format!("{}/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A value for a parameter of the schema: ids of the test world.
fn value_for(w: &World, name: &str) -> String {
    match name {
        "environment_id" => w.env.to_string(),
        "before" | "target_snapshot_id" => w.drift.snapshots[0].to_string(),
        "after" => w.drift.snapshots[1].to_string(),
        "since" => "2026-01-01".into(),
        "until" => "2026-12-31T00:00:00Z".into(),
        "package" => "pandas".into(),
        _ => "a value".into(),
    }
}

#[tokio::test]
async fn every_operation_in_the_schemas_is_handled_with_all_its_parameters() {
    let w = World::new().await;
    let mut seen = BTreeSet::new();
    for file in ["drift-analyzer.json", "knowledge-transfer.json"] {
        let doc = schema(file);
        assert_eq!(doc["openapi"], "3.0.0", "{file}: Bedrock takes OpenAPI 3.0");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let method = method.to_uppercase();
                let op_id = op["operationId"].as_str().unwrap();
                assert!(
                    op["description"].is_string(),
                    "{file} {path}: Bedrock needs a description"
                );
                let params: Vec<(&str, String)> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                let n = p["name"].as_str().unwrap();
                                (n, value_for(&w, n))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let props: Vec<(&str, String)> = op["requestBody"]["content"]["application/json"]
                    ["schema"]["properties"]
                    .as_object()
                    .map(|ps| ps.keys().map(|n| (n.as_str(), value_for(&w, n))).collect())
                    .unwrap_or_default();
                let reply = handle(&w.tools, &w.api(&method, path, &params, &props))
                    .await
                    .unwrap();
                assert_eq!(
                    reply["response"]["httpStatusCode"],
                    200,
                    "{file} {method} {path}: {}",
                    api_body(&reply)
                );
                let op_def = OPERATIONS.iter().find(|o| o.path == path).unwrap();
                assert_eq!(
                    op_def.action.name(),
                    op_id,
                    "{file} {path}: operationId is the action's name"
                );
                assert_eq!(op_def.method, method);
                seen.insert(op_id.to_string());
            }
        }
    }
    let all: BTreeSet<String> = OPERATIONS
        .iter()
        .map(|o| o.action.name().to_string())
        .collect();
    assert_eq!(seen, all, "every action is in a schema, once");
}

#[test]
fn required_parameters_in_the_schemas_are_the_ones_the_handler_requires() {
    // The handler requires exactly these; the schema must say so, or the
    // model would leave them out and be reprompted every time.
    let required: BTreeSet<(&str, &str)> = [
        ("/package-changelog", "package"),
        ("/snapshot-comparison", "before"),
        ("/snapshot-comparison", "after"),
        ("/snapshot-recommendations", "reason"),
        ("/rollback-recommendations", "target_snapshot_id"),
        ("/package-install-history", "package"),
    ]
    .into();
    let mut found = BTreeSet::new();
    for file in ["drift-analyzer.json", "knowledge-transfer.json"] {
        let doc = schema(file);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for op in item.as_object().unwrap().values() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["required"] == true {
                        found.insert((path.clone(), p["name"].as_str().unwrap().to_string()));
                    }
                }
                for n in op["requestBody"]["content"]["application/json"]["schema"]["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    found.insert((path.clone(), n.as_str().unwrap().to_string()));
                }
            }
        }
    }
    let found: BTreeSet<(&str, &str)> = found
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(found, required);
}

#[tokio::test]
async fn every_function_in_the_function_schemas_is_handled_and_matches_the_openapi_one() {
    let w = World::new().await;
    for (openapi, functions) in [
        ("drift-analyzer.json", "drift-analyzer.functions.json"),
        (
            "knowledge-transfer.json",
            "knowledge-transfer.functions.json",
        ),
    ] {
        let api = schema(openapi);
        let fns = schema(functions);
        let api_ops: BTreeSet<String> = api["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .map(|op| op["operationId"].as_str().unwrap().to_string())
            .collect();
        let mut fn_names = BTreeSet::new();
        for f in fns["functions"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            fn_names.insert(name.to_string());
            let params: Vec<(&str, String)> = f["parameters"]
                .as_object()
                .unwrap()
                .keys()
                .map(|n| (n.as_str(), value_for(&w, n)))
                .collect();
            let reply = handle(&w.tools, &w.function(name, &params)).await.unwrap();
            assert!(
                reply["response"]["functionResponse"]
                    .get("responseState")
                    .is_none(),
                "{functions} {name}: {reply}"
            );
        }
        assert_eq!(
            fn_names, api_ops,
            "{functions} declares the same actions as {openapi}"
        );
        // The same parameters, required alike.
        let mut api_params = BTreeSet::new();
        for item in api["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().unwrap().to_string();
                for p in op["parameters"].as_array().into_iter().flatten() {
                    api_params.insert((
                        id.clone(),
                        p["name"].as_str().unwrap().to_string(),
                        p["required"] == true,
                    ));
                }
                let body = &op["requestBody"]["content"]["application/json"]["schema"];
                let required: Vec<&str> = body["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect();
                for n in body["properties"]
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                {
                    api_params.insert((id.clone(), n.clone(), required.contains(&n.as_str())));
                }
            }
        }
        let fn_params: BTreeSet<(String, String, bool)> = fns["functions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| {
                let name = f["name"].as_str().unwrap().to_string();
                f["parameters"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(move |(n, p)| (name.clone(), n.clone(), p["required"] == true))
            })
            .collect();
        assert_eq!(
            fn_params, api_params,
            "{functions} and {openapi} take the same parameters"
        );
    }
}
