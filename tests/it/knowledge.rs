//! Knowledge transfer and collaboration end to end (issue 6): a real
//! environment with three notebooks (plus a broken one and binary junk), two
//! snapshots and a real drift event between them; the knowledge base synced
//! from `snapshot.created`; a handover to a new researcher with an
//! onboarding checklist; the transfer package's parts with the planted
//! e-mail address and AWS-style secret redacted; the Knowledge Transfer
//! agent answering "which version … and why was it upgraded?" with
//! citations that resolve to stored documents; lab isolation for chat,
//! documents and search; shares that expire and are revoked; clone through
//! a share; templates; audit on both labs' trails.

use chrono::{Datelike, Utc};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;
use westtek_tests::{build_env, uv_install, TestApp};

const EMAIL: &str = "maria.lopez@example.org";
const AWS_KEY: &str = "AKIAZ7QX3MPLE4KEY9QA";
const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn notebook(cells: Value) -> String {
    json!({
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5
    })
    .to_string()
}

fn code(src: &str, output: Option<&str>) -> Value {
    let outputs = match output {
        Some(o) => json!([{"output_type": "stream", "name": "stdout", "text": [o]}]),
        None => json!([]),
    };
    json!({"cell_type": "code", "metadata": {}, "execution_count": 1, "source": [src], "outputs": outputs})
}

fn markdown(src: &str) -> Value {
    json!({"cell_type": "markdown", "metadata": {}, "source": [src]})
}

async fn snapshot(app: &TestApp, token: &str, env: &str, notes: &str) -> String {
    let (s, acc) = app
        .call(
            Method::POST,
            "/api/environments/snapshot",
            token,
            Some(json!({"environment_id": env, "notes": notes})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), token).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    acc["snapshot_id"].as_str().unwrap().to_string()
}

/// Asks the Knowledge Transfer agent; returns (answer, citations, done chunk).
async fn ask(
    app: &TestApp,
    token: &str,
    env: &str,
    q: &str,
    session: Option<&str>,
) -> (String, Vec<Value>, Value) {
    let mut body = json!({"environment_id": env, "message": q});
    if let Some(s) = session {
        body["session_id"] = json!(s);
    }
    let resp = app
        .req(Method::POST, "/api/agents/knowledge/chat", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(c) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&c.unwrap()));
    }
    let chunks: Vec<Value> = buf
        .split("\n\n")
        .filter_map(|block| {
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data).unwrap())
        })
        .collect();
    let answer: String = chunks
        .iter()
        .filter(|c| c["type"] == "text")
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    let citations: Vec<Value> = chunks
        .iter()
        .filter(|c| c["type"] == "citation")
        .cloned()
        .collect();
    let last = chunks.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["type"], "done", "the answer completes: {chunks:?}");
    (answer, citations, last)
}

/// Every citation opens a stored document whose span is real text; returns
/// the cited slices.
async fn resolve(app: &TestApp, token: &str, citations: &[Value]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in citations {
        assert_eq!(c["source"]["kind"], "document", "{c}");
        let path = c["source"]["id"].as_str().unwrap();
        let span = &c["source"]["span"];
        let (a, b) = (
            span[0].as_u64().unwrap() as usize,
            span[1].as_u64().unwrap() as usize,
        );
        let resp = app
            .req(Method::GET, "/api/knowledge/documents", token)
            .query(&[("path", path)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "citation {path} opens");
        let doc: Value = resp.json().await.unwrap();
        let text = doc["text"].as_str().unwrap();
        let cited = text
            .get(a..b)
            .unwrap_or_else(|| panic!("span {a}..{b} fits {path}"));
        assert!(
            !cited.trim().is_empty(),
            "cited text of {path} is not empty"
        );
        out.push((path.to_string(), cited.to_string()));
    }
    out
}

async fn audit_actions(app: &TestApp, lab: &str, action: &str) -> usize {
    let (s, a) = app
        .call(
            Method::GET,
            &format!("/api/audit?lab_id={lab}&action={action}"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    a["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn knowledge_is_synced_handed_over_packaged_answered_and_shared_across_labs() {
    let app = westtek_tests::spawn_app().await;
    let lab_a = app.lab_id.clone();
    let carol = app.create_user(&lab_a, "carol", "researcher").await;
    let bob = app.create_user(&lab_a, "bob", "researcher").await;

    // Carol's environment, part of an experiment.
    let env = build_env(&app, &carol, "soil-analysis", json!(["tabulate==0.8.10"])).await;
    let (s, b) = app
        .call(
            Method::PATCH,
            &format!("/api/environments/{env}"),
            &carol,
            Some(
                json!({"metadata": {"experiment_id": "exp-soil-42", "funding_source": "NSF-123"}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let root = app.data_dir.path().join("data/envs").join(&env);
    let python = root.join("venv/bin/python");
    std::fs::create_dir_all(root.join("home/data")).unwrap();
    std::fs::write(root.join("home/data/raw.csv"), "site,ph\na,6.1\n").unwrap();
    std::fs::write(
        root.join("home/01_load.ipynb"),
        notebook(json!([
            markdown(&format!(
                "# Loading the soil samples\nQuestions to {EMAIL}."
            )),
            code(
                "import csv\nimport tabulate\nrows = list(csv.reader(open(\"data/raw.csv\")))",
                None
            ),
        ])),
    )
    .unwrap();
    std::fs::write(
        root.join("home/02_clean.ipynb"),
        notebook(json!([
            markdown("## Cleaning\nDrop samples with a missing pH."),
            code(&format!("AWS_ACCESS_KEY_ID = \"{AWS_KEY}\"\naws_secret_access_key = \"{AWS_SECRET}\"\nimport json"), None),
        ])),
    )
    .unwrap();
    std::fs::write(
        root.join("home/03_report.ipynb"),
        notebook(json!([code(
            "import tabulate\nprint(tabulate.tabulate([[1, 2]]))",
            Some("-  -\n1  2\n-  -\n")
        )])),
    )
    .unwrap();
    std::fs::write(root.join("home/broken.ipynb"), "{ this is not json").unwrap();
    std::fs::write(root.join("home/junk.bin"), [0u8, 159, 146, 150, 255, 0, 1]).unwrap();

    let s1 = snapshot(&app, &carol, &env, "first working analysis").await;
    // A real drift event: tabulate upgraded.
    uv_install(&python, &["tabulate==0.9.0"]);
    let mut drifted = false;
    for _ in 0..120 {
        let (_, ev) = app
            .call(
                Method::GET,
                &format!("/api/drift/events?environment_id={env}"),
                &carol,
                None,
            )
            .await;
        if ev["items"].as_array().is_some_and(|i| {
            i.iter()
                .any(|e| e["findings"].to_string().contains("tabulate"))
        }) {
            drifted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(drifted, "the upgrade is recorded as drift");
    let s2 = snapshot(
        &app,
        &carol,
        &env,
        "upgraded tabulate to 0.9.0 for the new table formats",
    )
    .await;

    // The knowledge base follows the second snapshot (event-driven sync).
    let mut summary = Value::Null;
    for _ in 0..120 {
        let (s, b) = app
            .call(
                Method::GET,
                &format!("/api/knowledge/transfer?environment_id={env}"),
                &carol,
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        if b["summary"]
            .as_str()
            .is_some_and(|t| t.contains("tabulate upgraded from 0.8.10 to 0.9.0"))
        {
            summary = b;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let text = summary["summary"]
        .as_str()
        .expect("the summary records the upgrade");
    assert!(
        text.contains("new table formats"),
        "the reason is the snapshot's notes:\n{text}"
    );
    assert!(!text.contains(EMAIL) && !text.contains(AWS_KEY));
    assert_eq!(summary["snapshots"], 2);
    let notebooks: Vec<&str> = summary["notebooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        notebooks,
        [
            "home/01_load.ipynb",
            "home/02_clean.ipynb",
            "home/03_report.ipynb",
            "home/broken.ipynb"
        ],
        "notebooks in run order"
    );
    let broken = &summary["notebooks"][3];
    assert!(
        broken["error"].as_str().unwrap().contains("not valid JSON"),
        "{broken}"
    );
    assert_eq!(
        summary["notebooks"][0]["data_files"],
        json!(["home/data/raw.csv"])
    );
    assert!(
        summary["redactions"]["email"].as_u64().unwrap() >= 1,
        "{}",
        summary["redactions"]
    );
    assert!(summary["redactions"]["aws_access_key_id"].as_u64().unwrap() >= 1);

    // Handover from carol to bob.
    let (s, h) = app
        .call(
            Method::POST,
            "/api/knowledge/handover",
            &bob,
            Some(json!({"environment_id": env, "to": "bob"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only the owner or a lab admin hands over: {h}"
    );
    let (s, h) = app
        .call(
            Method::POST,
            "/api/knowledge/handover",
            &carol,
            Some(json!({"environment_id": env, "to": "nobody-here"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{h}");
    let read_until = Utc::now() + chrono::Duration::days(14);
    let (s, h) = app
        .call(
            Method::POST,
            "/api/knowledge/handover",
            &carol,
            Some(json!({"environment_id": env, "to": "bob", "note": "I leave on Friday", "read_until": read_until})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{h}");
    let handover_id = h["id"].as_str().unwrap().to_string();
    assert_eq!(h["done"], 0);
    let keys: Vec<&str> = h["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.first(), Some(&"restore"));
    assert!(keys.contains(&"launch") && keys.contains(&"notebook:1") && keys.contains(&"history"));
    let first_nb = h["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "notebook:1")
        .unwrap();
    assert!(first_nb["text"]
        .as_str()
        .unwrap()
        .contains("home/01_load.ipynb (needs home/data/raw.csv)"));
    let broken_step = h["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["text"].as_str().unwrap().contains("broken.ipynb"))
        .unwrap();
    assert!(
        broken_step["text"]
            .as_str()
            .unwrap()
            .starts_with("Check home/broken.ipynb: it could not be read"),
        "{broken_step}"
    );
    let (_, e) = app
        .call(Method::GET, &format!("/api/environments/{env}"), &bob, None)
        .await;
    let (_, me) = app.call(Method::GET, "/api/me", &bob, None).await;
    assert_eq!(e["researcher_id"], me["user_id"], "ownership moved to bob");
    // The previous owner no longer operates it; the new one does.
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/knowledge/sync/{env}"),
            &carol,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/knowledge/sync/{env}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Onboarding progress: bob ticks, carol cannot.
    let path = format!("/api/knowledge/handovers/{handover_id}/checklist/restore");
    let (s, _) = app
        .call(Method::PUT, &path, &carol, Some(json!({"done": true})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, h) = app
        .call(Method::PUT, &path, &bob, Some(json!({"done": true})))
        .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h["done"], 1);
    let (s, unknown) = app
        .call(
            Method::PUT,
            &format!("/api/knowledge/handovers/{handover_id}/checklist/nope"),
            &bob,
            Some(json!({"done": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{unknown}");
    let (_, mine) = app
        .call(Method::GET, "/api/knowledge/handovers", &bob, None)
        .await;
    assert_eq!(
        mine[0]["id"],
        handover_id.as_str(),
        "bob's onboarding view lists it"
    );
    assert_eq!(audit_actions(&app, &lab_a, "knowledge.handover").await, 1);

    // The knowledge is re-filed under the new researcher.
    let old_doc = summary["notebooks"][0]["document"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, now) = app
        .call(
            Method::GET,
            &format!("/api/knowledge/transfer?environment_id={env}"),
            &bob,
            None,
        )
        .await;
    let new_doc = now["notebooks"][0]["document"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        new_doc.starts_with(&format!(
            "notebooks/{lab_a}/{}/{env}/",
            me["user_id"].as_str().unwrap()
        )),
        "{new_doc}"
    );
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/knowledge/documents?path={old_doc}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "no stale copy under the previous researcher"
    );
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/knowledge/documents?path={new_doc}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Carol leaves the lab: she still reads the environment she handed over
    // (until the handover's date), and nothing else of the lab.
    let (_, me_admin) = app
        .call(Method::GET, "/api/me", &app.admin_token, None)
        .await;
    let admin_name = me_admin["username"].as_str().unwrap().to_string();
    let (s, last) = app
        .call(
            Method::DELETE,
            &format!("/api/labs/{lab_a}/members/{admin_name}"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "the last lab admin stays: {last}");
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/labs/{lab_a}/members/carol"),
            &bob,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "researchers do not manage members"
    );
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/labs/{lab_a}/members/carol"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/labs/{lab_a}/members/carol"),
            &app.admin_token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(audit_actions(&app, &lab_a, "lab.member_remove").await, 1);
    let t = westtek_tests::token_exchange(
        &app.http,
        &app.url,
        json!({"grant_type": "password", "username": "carol", "password": "correct horse battery staple"}),
    )
    .await;
    let carol = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(t["user"]["labs"], json!([]), "no lab any more");
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env}"),
            &carol,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the previous owner reads until the handover's date"
    );
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/knowledge/transfer?environment_id={env}"),
            &carol,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/knowledge/documents?path=experiment-logs/{lab_a}/exp-soil-42.json"),
            &carol,
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the lab's other documents are not hers any more"
    );
    assert!(audit_actions(&app, &lab_a, "handover.read_access").await >= 1);

    // The package.
    let resp = app
        .req(
            Method::GET,
            &format!("/api/knowledge/transfer/{env}/package.zip"),
            &bob,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let bytes = resp.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut files = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        let name = f.name().split_once('/').unwrap().1.to_string();
        files.insert(name, s);
    }
    for part in [
        "README.md".to_string(),
        "summary.md".into(),
        "onboarding-checklist.md".into(),
        "onboarding-checklist.json".into(),
        "notebooks/01_load.md".into(),
        "notebooks/02_clean.md".into(),
        "notebooks/03_report.md".into(),
        format!("package-manifests/{s1}.txt"),
        format!("package-manifests/{s2}.txt"),
        "installation-history.jsonl".into(),
        "drift-history.jsonl".into(),
        "experiment-logs/exp-soil-42.json".into(),
        "redactions.json".into(),
    ] {
        assert!(
            files.contains_key(&part),
            "the package has {part}: {:?}",
            files.keys()
        );
    }
    for (name, content) in &files {
        assert!(!content.contains(EMAIL), "{name} leaks the e-mail address");
        assert!(
            !content.contains(AWS_KEY) && !content.contains(AWS_SECRET),
            "{name} leaks the AWS secret"
        );
    }
    assert!(files["notebooks/01_load.md"].contains("Loading the soil samples"));
    assert!(
        files["notebooks/03_report.md"].contains("1  2"),
        "text outputs are kept"
    );
    assert!(files[&format!("package-manifests/{s1}.txt")].contains("tabulate==0.8.10"));
    assert!(files[&format!("package-manifests/{s2}.txt")].contains("tabulate==0.9.0"));
    assert!(files["drift-history.jsonl"].contains("tabulate"));
    assert!(
        files["onboarding-checklist.md"].contains("1. [x] Restore snapshot"),
        "progress shows"
    );
    let history: Vec<Value> = files["installation-history.jsonl"]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let upgrade = history
        .iter()
        .find(|h| h["package"] == "tabulate" && h["action"] == "upgraded")
        .unwrap();
    assert_eq!(upgrade["from"], "0.8.10");
    assert_eq!(upgrade["to"], "0.9.0");
    assert!(
        upgrade["drift_event_id"].is_string(),
        "the drift event that saw it: {upgrade}"
    );
    let kinds: Vec<String> = serde_json::from_str::<Value>(&files["redactions.json"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in ["email", "aws_access_key_id", "aws_secret_access_key"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    assert!(
        !files["redactions.json"].contains("maria"),
        "the report has no values"
    );

    // The agent, as the new researcher.
    let month = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ][Utc::now().month0() as usize];
    let q = format!("Which version of tabulate did we use in {month} and why was it upgraded?");
    let (answer, citations, done) = ask(&app, &bob, &env, &q, None).await;
    assert!(
        answer.contains("0.8.10") && answer.contains("0.9.0"),
        "{answer}"
    );
    assert!(answer.contains("new table formats"), "the reason: {answer}");
    let cited = resolve(&app, &bob, &citations).await;
    assert!(
        cited
            .iter()
            .any(|(p, t)| p.starts_with("package-manifests/") && t.contains("tabulate==0.8.10")),
        "{cited:?}"
    );
    assert!(cited.iter().any(|(p, t)| p.starts_with("installation-history/") && t.contains("new table formats")), "{cited:?}");
    // Every sentence with a version in it carries a citation.
    for c in &citations {
        let (a, b) = (
            c["text_span"][0].as_u64().unwrap() as usize,
            c["text_span"][1].as_u64().unwrap() as usize,
        );
        assert!(answer.get(a..b).is_some(), "citation spans fit the answer");
    }
    let session = done["session_id"].as_str().unwrap().to_string();
    let (answer, citations, _) = ask(
        &app,
        &bob,
        &env,
        "Who owns it now and how do I get started?",
        Some(&session),
    )
    .await;
    assert!(
        answer.contains("bob") && answer.contains("01_load.ipynb"),
        "{answer}"
    );
    resolve(&app, &bob, &citations).await;
    let (answer, citations, _) = ask(&app, &bob, &env, "Wie wird das Wetter morgen?", None).await;
    assert!(
        answer.contains("don't know") && citations.is_empty(),
        "{answer}"
    );

    // Lab B sees none of it.
    let lab_b = app.create_lab("lab-b").await;
    let dave = app.create_user(&lab_b, "dave", "researcher").await;
    // An existing user joins a second lab.
    let (s, joined) = app
        .call(
            Method::PUT,
            &format!("/api/labs/{lab_b}/members/bob"),
            &dave,
            Some(json!({"role": "researcher"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{joined}");
    let resp = app
        .req(
            Method::PUT,
            &format!("/api/labs/{lab_b}/members/bob"),
            &app.admin_token,
        )
        .header("x-westtek-acting-lab", &lab_b)
        .json(&json!({"role": "researcher"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
    let t = westtek_tests::token_exchange(
        &app.http,
        &app.url,
        json!({"grant_type": "password", "username": "bob", "password": "correct horse battery staple"}),
    )
    .await;
    assert_eq!(
        t["user"]["labs"].as_array().unwrap().len(),
        2,
        "bob is in both labs"
    );
    let summary_path = format!("environment-docs/{env}/summary.md");
    for path in [
        format!("/api/knowledge/transfer?environment_id={env}"),
        format!("/api/knowledge/transfer/{env}/package.zip"),
        format!("/api/environments/{env}"),
        format!("/api/knowledge/documents?path={summary_path}"),
    ] {
        let (s, _) = app.call(Method::GET, &path, &dave, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    let resp = app
        .req(Method::POST, "/api/agents/knowledge/chat", &dave)
        .json(&json!({"environment_id": env, "message": "which version of tabulate?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (_, hits) = app
        .call(Method::GET, "/api/knowledge/search?q=tabulate", &dave, None)
        .await;
    assert_eq!(hits, json!([]), "lab B's search finds nothing of lab A");
    let dave_env = build_env(&app, &dave, "dave-env", json!([])).await;
    snapshot(&app, &dave, &dave_env, "empty").await;
    let (answer, citations, _) = ask(
        &app,
        &dave,
        &dave_env,
        "Which version of tabulate did we use and why was it upgraded? soil",
        None,
    )
    .await;
    for c in &citations {
        let p = c["source"]["id"].as_str().unwrap();
        assert!(
            !p.contains(&env) && !p.contains(&lab_a),
            "lab B's chat cites lab A: {p}\n{answer}"
        );
    }

    // A read share that expires.
    let expires = Utc::now() + chrono::Duration::seconds(4);
    let (s, share) = app
        .call(
            Method::POST,
            "/api/collaboration/share",
            &bob,
            Some(json!({"environment_id": env, "target_lab": "lab-b", "permission": "read", "expires_at": expires})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{share}");
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env}"),
            &dave,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "visible while shared");
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/knowledge/documents?path={summary_path}"),
            &dave,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (answer, citations, _) = ask(&app, &dave, &env, &q, None).await;
    assert!(answer.contains("0.9.0"), "{answer}");
    for (p, _) in resolve(&app, &dave, &citations).await {
        assert!(
            p.contains(&env),
            "a shared chat cites only the shared environment's documents: {p}"
        );
    }
    let (_, received) = app
        .call(
            Method::GET,
            "/api/collaboration/shares?direction=received",
            &dave,
            None,
        )
        .await;
    assert_eq!(received[0]["id"], share["id"]);
    let (s, refused) = app
        .call(
            Method::POST,
            &format!(
                "/api/collaboration/shares/{}/clone",
                share["id"].as_str().unwrap()
            ),
            &dave,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a read share does not clone: {refused}"
    );
    let wait = (expires - Utc::now()).num_milliseconds().max(0) as u64 + 500;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env}"),
            &dave,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "gone once expired");
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/knowledge/documents?path={summary_path}"),
            &dave,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, received) = app
        .call(
            Method::GET,
            "/api/collaboration/shares?direction=received",
            &dave,
            None,
        )
        .await;
    assert_eq!(received, json!([]));

    // A clone share: dave clones, then it is revoked.
    let (s, share) = app
        .call(
            Method::POST,
            "/api/collaboration/share",
            &bob,
            Some(json!({"environment_id": env, "target_lab": lab_b, "permission": "clone"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{share}");
    let share_id = share["id"].as_str().unwrap().to_string();
    let (s, acc) = app
        .call(
            Method::POST,
            &format!("/api/collaboration/shares/{share_id}/clone"),
            &dave,
            Some(json!({"name": "from-lab-a"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), &dave).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (_, cloned) = app
        .call(
            Method::GET,
            &format!(
                "/api/environments/{}",
                acc["environment_id"].as_str().unwrap()
            ),
            &dave,
            None,
        )
        .await;
    assert_eq!(cloned["lab_id"], lab_b.as_str());
    assert_eq!(
        cloned["metadata"]["experiment_id"],
        Value::Null,
        "lab A's metadata stays behind"
    );
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/collaboration/shares/{share_id}"),
            &dave,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the target lab cannot revoke");
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/collaboration/shares/{share_id}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .call(
            Method::GET,
            &format!("/api/environments/{env}"),
            &dave,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "gone once revoked");

    // Templates: published, immutable, shared, cloned, withdrawn.
    let (s, t) = app
        .call(Method::POST, "/api/collaboration/templates", &bob, Some(json!({"snapshot_id": s2, "name": "Soil analysis base", "description": "tabulate 0.9"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let template = t["id"].as_str().unwrap().to_string();
    let (s, _) = app
        .call(Method::DELETE, &format!("/api/snapshots/{s2}"), &bob, None)
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a template's snapshot cannot be deleted"
    );
    let (_, listed) = app
        .call(Method::GET, "/api/collaboration/templates", &dave, None)
        .await;
    assert_eq!(listed, json!([]), "not shared yet");
    let (s, _) = app
        .call(
            Method::POST,
            &format!("/api/collaboration/templates/{template}/clone"),
            &dave,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, share) = app
        .call(Method::POST, "/api/collaboration/share", &bob, Some(json!({"resource_type": "template", "resource_id": template, "target_lab": "lab-b"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{share}");
    let (_, listed) = app
        .call(Method::GET, "/api/collaboration/templates", &dave, None)
        .await;
    assert_eq!(listed[0]["id"], template.as_str());
    let (s, acc) = app
        .call(
            Method::POST,
            &format!("/api/collaboration/templates/{template}/clone"),
            &dave,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{acc}");
    let job = app.wait_job(acc["job_id"].as_str().unwrap(), &dave).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/api/collaboration/templates/{template}"),
            &bob,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, listed) = app
        .call(Method::GET, "/api/collaboration/templates", &dave, None)
        .await;
    assert_eq!(listed, json!([]), "withdrawn");

    // The IT admin's overview counts both labs; a researcher sees only theirs.
    let (s, o) = app
        .call(Method::GET, "/api/admin/overview", &app.admin_token, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let row = |o: &Value, lab: &str| {
        o["labs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["lab"]["id"] == lab)
            .cloned()
    };
    let a = row(&o, &lab_a).unwrap();
    assert_eq!(a["environments"], 1, "{a}");
    assert_eq!(a["ready"], 1);
    assert!(a["snapshots"].as_u64().unwrap() >= 2, "{a}");
    assert!(a["storage_bytes"].as_u64().unwrap() > 0, "{a}");
    let b = row(&o, &lab_b).unwrap();
    assert_eq!(
        b["environments"], 3,
        "dave's, the clone and the template clone: {b}"
    );
    assert_eq!(
        b["stable"].as_u64().unwrap()
            + b["minor_drift"].as_u64().unwrap()
            + b["critical_drift"].as_u64().unwrap(),
        3
    );
    let (_, mine) = app
        .call(Method::GET, "/api/admin/overview", &dave, None)
        .await;
    assert_eq!(mine["labs"].as_array().unwrap().len(), 1);
    assert!(row(&mine, &lab_b).is_some() && row(&mine, &lab_a).is_none());

    // Both labs' trails.
    for lab in [&lab_a, &lab_b] {
        for action in [
            "share.create",
            "share.access",
            "share.clone",
            "share.revoke",
            "template.clone",
        ] {
            assert!(
                audit_actions(&app, lab, action).await >= 1,
                "{action} on the trail of {lab}"
            );
        }
    }
    app.stop().await;
}
