//! The Bedrock Agent adapter on the SDK's mock client (`aws-smithy-mocks`):
//! moto does not implement `bedrock-agent-runtime`. `InvokeAgentOutput`'s
//! event receiver cannot be built outside the SDK, so each test answers the
//! call with a real HTTP response whose body is Bedrock's event stream,
//! frame by frame (`:message-type`/`:event-type` headers and the JSON
//! payloads of `chunk`, `trace`, `returnControl` and exceptions, encoded
//! with the SDK's own event-stream codec); the SDK decodes it exactly as it
//! decodes Bedrock's, and the adapter maps what comes out.

use aws_sdk_bedrockagentruntime::operation::invoke_agent::InvokeAgentInput;
use aws_sdk_bedrockagentruntime::types::RetrievalFilter;
use aws_sdk_bedrockagentruntime::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use futures::StreamExt;
use serde_json::json;
use std::sync::{Arc, Mutex};
use westtek_assist::{
    Agent, AgentChunk, AgentKind, AgentRequest, AssistError, CallerRef, SourceKind,
};
use westtek_domain::{EnvironmentId, LabId, UserId};
use westtek_knowledge_aws::{BedrockAgentIds, BedrockAgents, S3Layout};

const BUCKET: &str = "westtek-knowledge";
const SESSION: &str = "chat-1";

/// One event-stream frame.
fn frame(message_type: &str, kind: &str, payload: serde_json::Value) -> Vec<u8> {
    let type_header = if message_type == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    let msg = Message::new(serde_json::to_vec(&payload).unwrap())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String(message_type.to_string().into()),
        ))
        .add_header(Header::new(
            type_header,
            HeaderValue::String(kind.to_string().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&msg, &mut out).unwrap();
    out
}

fn chunk(text: &[u8], citations: serde_json::Value) -> Vec<u8> {
    let mut payload = json!({"bytes": aws_smithy_types::base64::encode(text)});
    if !citations.is_null() {
        payload["attribution"] = json!({"citations": citations});
    }
    frame("event", "chunk", payload)
}

fn trace(orchestration: serde_json::Value) -> Vec<u8> {
    frame(
        "event",
        "trace",
        json!({"agentId": "DRIFT12345", "agentAliasId": "ALIAS12345", "agentVersion": "1",
               "sessionId": SESSION, "trace": {"orchestrationTrace": orchestration}}),
    )
}

/// A citation as Bedrock sends it: the generated text it supports and the
/// retrieved references (S3 location and the document's metadata).
fn citation(text: &str, refs: &[(&str, Option<&str>)]) -> serde_json::Value {
    let refs: Vec<_> = refs
        .iter()
        .map(|(uri, lab)| {
            let mut metadata = json!({"x-amz-bedrock-kb-source-uri": uri, "x-amz-bedrock-kb-chunk-id": "1%3A0%3Aabc"});
            if let Some(lab) = lab {
                metadata["lab_id"] = json!(lab);
            }
            json!({"content": {"text": "pandas==2.2.2"},
                   "location": {"type": "S3", "s3Location": {"uri": uri}},
                   "metadata": metadata})
        })
        .collect();
    json!({"generatedResponsePart": {"textResponsePart": {"text": text, "span": {"start": 0, "end": text.chars().count() - 1}}},
           "retrievedReferences": refs})
}

fn response(frames: Vec<Vec<u8>>) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(200).unwrap(),
        SdkBody::from(frames.concat()),
    );
    r.headers_mut()
        .insert("content-type", "application/vnd.amazon.eventstream");
    r.headers_mut()
        .insert("x-amzn-bedrock-agent-content-type", "application/json");
    r.headers_mut()
        .insert("x-amz-bedrock-agent-session-id", SESSION);
    r
}

fn agents(client: Client) -> BedrockAgents {
    BedrockAgents::with_client(
        client,
        BedrockAgentIds {
            agent_id: "DRIFT12345".into(),
            alias_id: "ALIAS12345".into(),
            knowledge_base_id: None,
        },
        BedrockAgentIds {
            agent_id: "KNOWL12345".into(),
            alias_id: "ALIAS67890".into(),
            knowledge_base_id: Some("KB12345678".into()),
        },
        S3Layout::new(BUCKET, "knowledge").unwrap(),
    )
}

fn request(agent: AgentKind, lab: LabId, env: EnvironmentId) -> AgentRequest {
    AgentRequest {
        agent,
        session_id: SESSION.into(),
        lab_id: lab,
        environment_id: Some(env),
        input_text: "Why did pandas change?".into(),
        caller: CallerRef {
            user_id: UserId::new(),
            display_name: "Ada".into(),
        },
    }
}

/// Runs one request against a mock answering with `frames`; returns the
/// chunks and the InvokeAgent request the adapter made.
async fn ask(
    agent: AgentKind,
    lab: LabId,
    env: EnvironmentId,
    frames: Vec<Vec<u8>>,
) -> (Vec<AgentChunk>, InvokeAgentInput) {
    let seen = Arc::new(Mutex::new(None));
    let sink = seen.clone();
    let body = Arc::new(frames);
    let rule = mock!(Client::invoke_agent)
        .match_requests(move |r| {
            *sink.lock().unwrap() = Some(r.clone());
            true
        })
        .then_http_response(move || response(body.as_ref().clone()));
    let client = mock_client!(aws_sdk_bedrockagentruntime, RuleMode::Sequential, [&rule]);
    let agents = agents(client);
    let a = match agent {
        AgentKind::DriftAnalyzer => &agents.drift_analyzer,
        AgentKind::KnowledgeTransfer => &agents.knowledge_transfer,
    };
    let chunks: Vec<AgentChunk> = a
        .invoke(request(agent, lab, env))
        .await
        .unwrap()
        .collect()
        .await;
    let input = seen
        .lock()
        .unwrap()
        .clone()
        .expect("InvokeAgent was called");
    (chunks, input)
}

#[tokio::test]
async fn an_answer_streams_text_document_citations_and_tool_trace_then_done() {
    let (lab, env) = (LabId::new(), EnvironmentId::new());
    let manifest = format!("package-manifests/{env}/s1.txt");
    let notebook = format!("notebooks/{lab}/r1/{env}/growth.md");
    let uri = |p: &str| format!("s3://{BUCKET}/knowledge/{p}");
    let frames = vec![
        trace(
            json!({"invocationInput": {"traceId": "t-1", "invocationType": "ACTION_GROUP",
            "actionGroupInvocationInput": {"actionGroupName": "drift", "function": "GetDriftEvents",
                "parameters": [{"name": "environment_id", "type": "string", "value": env.to_string()}]}}}),
        ),
        trace(
            json!({"observation": {"traceId": "t-1", "type": "ACTION_GROUP",
            "actionGroupInvocationOutput": {"text": "2 drift events\nmore detail"}}}),
        ),
        trace(
            json!({"invocationInput": {"traceId": "t-2", "invocationType": "KNOWLEDGE_BASE",
            "knowledgeBaseLookupInput": {"text": "pandas version", "knowledgeBaseId": "KB12345678"}}}),
        ),
        trace(
            json!({"observation": {"traceId": "t-2", "type": "KNOWLEDGE_BASE",
            "knowledgeBaseLookupOutput": {"retrievedReferences": [
                {"content": {"text": "pandas==2.2.2"}, "location": {"type": "S3", "s3Location": {"uri": uri(&manifest)}}}]}}}),
        ),
        chunk(
            "pandas went from 2.1.4 to 2.2.2 ".as_bytes(),
            json!([citation(
                "pandas went from 2.1.4 to 2.2.2",
                &[(&uri(&manifest), Some(&lab.to_string()))]
            )]),
        ),
        // A multi-byte character split across two chunks.
        chunk(
            &"in growth.md — the notebook".as_bytes()[..15],
            serde_json::Value::Null,
        ),
        chunk(
            &"in growth.md — the notebook".as_bytes()[15..],
            json!([citation(
                "in growth.md — the notebook",
                &[
                    (&uri(&notebook), None),
                    (&uri(&manifest), Some(&lab.to_string()))
                ]
            )]),
        ),
    ];
    let (chunks, input) = ask(AgentKind::KnowledgeTransfer, lab, env, frames).await;

    // The request: the right agent, session, trace on, scope and lab filter.
    assert_eq!(input.agent_id(), Some("KNOWL12345"));
    assert_eq!(input.agent_alias_id(), Some("ALIAS67890"));
    assert_eq!(input.session_id(), Some(SESSION));
    assert_eq!(input.enable_trace(), Some(true));
    let state = input.session_state().unwrap();
    let attrs = state.session_attributes().unwrap();
    assert_eq!(attrs["lab_id"], lab.to_string());
    assert_eq!(attrs["environment_id"], env.to_string());
    let kb = &state.knowledge_base_configurations()[0];
    assert_eq!(kb.knowledge_base_id(), "KB12345678");
    match kb
        .retrieval_configuration()
        .unwrap()
        .vector_search_configuration()
        .unwrap()
        .filter()
    {
        Some(RetrievalFilter::Equals(f)) => {
            assert_eq!(f.key(), "lab_id");
            assert_eq!(
                f.value(),
                &aws_smithy_types::Document::String(lab.to_string())
            );
        }
        other => panic!("no lab filter: {other:?}"),
    }

    // The chunks.
    let answer = AgentChunk::answer_text(&chunks);
    assert_eq!(
        answer,
        "pandas went from 2.1.4 to 2.2.2 in growth.md — the notebook"
    );
    assert!(matches!(&chunks[0], AgentChunk::ToolCall { name, input }
        if name == "GetDriftEvents" && input["environment_id"] == env.to_string()));
    assert!(
        matches!(&chunks[1], AgentChunk::ToolResult { name, summary }
        if name == "GetDriftEvents" && summary == "2 drift events")
    );
    assert!(matches!(&chunks[2], AgentChunk::ToolCall { name, input }
        if name == "Retrieve" && input["text"] == "pandas version"));
    assert!(
        matches!(&chunks[3], AgentChunk::ToolResult { name, summary }
        if name == "Retrieve" && summary == "1 passages")
    );
    let citations: Vec<_> = chunks
        .iter()
        .filter_map(|c| match c {
            AgentChunk::Citation {
                index,
                source,
                text_span,
            } => Some((*index, source.clone(), *text_span)),
            _ => None,
        })
        .collect();
    assert_eq!(citations.len(), 3);
    let (i, src, span) = &citations[0];
    assert_eq!(
        (*i, src.kind, src.id.as_str(), src.title.as_str()),
        (1, SourceKind::Document, manifest.as_str(), "s1.txt")
    );
    assert_eq!(&answer[span.0..span.1], "pandas went from 2.1.4 to 2.2.2");
    let (i, src, span) = &citations[1];
    assert_eq!((*i, src.id.as_str()), (2, notebook.as_str()));
    assert_eq!(&answer[span.0..span.1], "in growth.md — the notebook");
    // The same document keeps its number.
    assert_eq!(
        (citations[2].0, citations[2].1.id.as_str()),
        (1, manifest.as_str())
    );
    // Every citation refers to text already sent.
    for (pos, c) in chunks.iter().enumerate() {
        if let AgentChunk::Citation { text_span, .. } = c {
            assert!(text_span.1 <= AgentChunk::answer_text(&chunks[..pos]).len());
        }
    }
    assert_eq!(
        chunks.last(),
        Some(&AgentChunk::Done {
            session_id: SESSION.into()
        })
    );
}

/// Lab scoping on the way out: citations of another lab's documents, of
/// documents whose lab is unknown, or of objects outside the knowledge
/// prefix are dropped, whatever the Knowledge Base returned.
#[tokio::test]
async fn citations_of_other_labs_or_unknown_objects_are_dropped() {
    let (lab, other, env) = (LabId::new(), LabId::new(), EnvironmentId::new());
    let uri = |p: &str| format!("s3://{BUCKET}/knowledge/{p}");
    let frames = vec![chunk(
        b"Answer.",
        json!([citation(
            "Answer.",
            &[
                (&uri(&format!("notebooks/{other}/r1/{env}/x.md")), None),
                (
                    &uri(&format!("package-manifests/{env}/s1.txt")),
                    Some(&other.to_string())
                ),
                (&uri(&format!("package-manifests/{env}/s2.txt")), None),
                (
                    &uri(&format!("notebooks/{lab}/r1/{env}/y.md")),
                    Some(&other.to_string())
                ),
                (
                    &format!("s3://another-bucket/knowledge/notebooks/{lab}/r1/z.md"),
                    Some(&lab.to_string())
                ),
                (
                    &format!("s3://{BUCKET}/elsewhere/notebooks/{lab}/r1/z.md"),
                    Some(&lab.to_string())
                ),
                (
                    &uri(&format!("experiment-logs/{lab}/exp-1.json")),
                    Some(&lab.to_string())
                ),
            ]
        )]),
    )];
    let (chunks, _) = ask(AgentKind::KnowledgeTransfer, lab, env, frames).await;
    let cited: Vec<&str> = chunks
        .iter()
        .filter_map(|c| match c {
            AgentChunk::Citation { source, .. } => Some(source.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(cited, vec![format!("experiment-logs/{lab}/exp-1.json")]);
}

#[tokio::test]
async fn an_exception_in_the_stream_ends_the_answer_with_an_error_and_no_done() {
    let (lab, env) = (LabId::new(), EnvironmentId::new());
    let frames = vec![
        chunk(b"Partial ", serde_json::Value::Null),
        frame(
            "exception",
            "throttlingException",
            json!({"message": "Your request rate is too high."}),
        ),
    ];
    let (chunks, input) = ask(AgentKind::DriftAnalyzer, lab, env, frames).await;
    // The Drift Analyzer's own ids, and no Knowledge Base configured for it.
    assert_eq!(
        (input.agent_id(), input.agent_alias_id()),
        (Some("DRIFT12345"), Some("ALIAS12345"))
    );
    let state = input.session_state().unwrap();
    assert!(state.knowledge_base_configurations().is_empty());
    assert_eq!(
        state.session_attributes().unwrap()["lab_id"],
        lab.to_string()
    );
    assert_eq!(
        chunks[0],
        AgentChunk::Text {
            text: "Partial ".into()
        }
    );
    assert!(matches!(&chunks[1], AgentChunk::Error { code, message }
        if code == "agent_throttled" && !message.contains("rate is too high")));
    assert_eq!(chunks.len(), 2);
}

#[tokio::test]
async fn return_of_control_is_shown_as_tool_calls_then_an_error() {
    let (lab, env) = (LabId::new(), EnvironmentId::new());
    let frames = vec![frame(
        "event",
        "returnControl",
        json!({"invocationId": "inv-1", "invocationInputs": [
        {"functionInvocationInput": {"actionGroup": "drift", "function": "CreateSnapshotRecommendation",
            "actionInvocationType": "RESULT",
            "parameters": [{"name": "reason", "type": "string", "value": "stable now"}]}}]}),
    )];
    let (chunks, _) = ask(AgentKind::DriftAnalyzer, lab, env, frames).await;
    assert!(matches!(&chunks[0], AgentChunk::ToolCall { name, input }
        if name == "CreateSnapshotRecommendation" && input["reason"] == "stable now"));
    assert!(matches!(&chunks[1], AgentChunk::Error { code, .. } if code == "agent_return_control"));
    assert_eq!(chunks.len(), 2, "nothing after the error: {chunks:?}");
}

#[tokio::test]
async fn a_recommendation_returned_by_an_action_group_becomes_a_recommendation_chunk() {
    let (lab, env) = (LabId::new(), EnvironmentId::new());
    let rec = json!({"id": "0190a5c4-6a3e-7b4e-9a55-3f1d2c4b5a69", "environment_id": env.to_string(),
        "kind": {"type": "snapshot"}, "reason": "The environment is stable", "created_at": "2026-12-07T10:00:00Z"});
    let frames = vec![
        trace(
            json!({"invocationInput": {"traceId": "t-9", "invocationType": "ACTION_GROUP",
            "actionGroupInvocationInput": {"actionGroupName": "drift", "function": "CreateSnapshotRecommendation", "parameters": []}}}),
        ),
        trace(
            json!({"observation": {"traceId": "t-9", "type": "ACTION_GROUP",
            "actionGroupInvocationOutput": {"text": json!({"recommendation": rec}).to_string()}}}),
        ),
    ];
    let (chunks, _) = ask(AgentKind::DriftAnalyzer, lab, env, frames).await;
    let recs: Vec<_> = chunks
        .iter()
        .filter_map(|c| match c {
            AgentChunk::Recommendation { recommendation } => Some(recommendation),
            _ => None,
        })
        .collect();
    assert_eq!(recs.len(), 1, "{chunks:?}");
    assert_eq!(recs[0].environment_id, env);
    assert_eq!(recs[0].reason, "The environment is stable");
}

#[tokio::test]
async fn a_refused_call_is_one_error_chunk_without_internal_text() {
    let rule = mock!(Client::invoke_agent).then_http_response(|| {
        let mut r = HttpResponse::new(
            StatusCode::try_from(403).unwrap(),
            SdkBody::from(r#"{"message":"User: arn:aws:sts::123:assumed-role/x is not authorized to perform: bedrock:InvokeAgent"}"#),
        );
        r.headers_mut().insert("x-amzn-errortype", "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.bedrock/");
        r.headers_mut().insert("content-type", "application/json");
        r
    });
    let client = mock_client!(aws_sdk_bedrockagentruntime, RuleMode::Sequential, [&rule]);
    let agents = agents(client);
    let chunks: Vec<AgentChunk> = agents
        .knowledge_transfer
        .invoke(request(
            AgentKind::KnowledgeTransfer,
            LabId::new(),
            EnvironmentId::new(),
        ))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(chunks.len(), 1);
    assert!(
        matches!(&chunks[0], AgentChunk::Error { code, message }
        if code == "agent_unavailable" && !message.contains("arn:aws")),
        "{chunks:?}"
    );
}

#[tokio::test]
async fn requests_the_port_refuses_never_reach_bedrock() {
    let rule = mock!(Client::invoke_agent).then_http_response(|| response(vec![]));
    let client = mock_client!(aws_sdk_bedrockagentruntime, RuleMode::Sequential, [&rule]);
    let agents = agents(client);
    let (lab, env) = (LabId::new(), EnvironmentId::new());
    let mut short = request(AgentKind::DriftAnalyzer, lab, env);
    short.session_id = "x".into();
    assert!(matches!(
        agents.drift_analyzer.invoke(short).await,
        Err(AssistError::InvalidSessionId)
    ));
    let wrong = request(AgentKind::KnowledgeTransfer, lab, env);
    assert!(matches!(
        agents.drift_analyzer.invoke(wrong).await,
        Err(AssistError::WrongAgent { .. })
    ));
    assert_eq!(rule.num_calls(), 0);
}
