//! The Bedrock Agent adapter: the platform's two agents (Drift Analyzer,
//! Knowledge Transfer) as Bedrock Agents behind the [`Agent`] port, through
//! `InvokeAgent` on `bedrock-agent-runtime`.
//!
//! A request becomes one `InvokeAgent` call on the agent's id and alias,
//! with tracing on and, in the session state, the caller's scope as session
//! attributes (`lab_id`, `environment_id`, `user_id`, which the action
//! groups' Lambda receives) and, when the agent has a Knowledge Base
//! ([`BedrockAgentIds::knowledge_base_id`]), a retrieval filter
//! `lab_id = <the caller's lab>` on it, so retrieval only ever sees the
//! caller's lab's documents (their metadata files say whose they are, see
//! [`crate::layout`]).
//!
//! Bedrock's event stream is mapped by [`StreamMapper`], a pure function of
//! the events (tested on events of the SDK's own types):
//!
//! | Bedrock event | platform chunk |
//! |---|---|
//! | `chunk.bytes` | [`AgentChunk::Text`] (UTF-8 split across chunks is reassembled) |
//! | `chunk.attribution.citations[].retrievedReferences[].location.s3Location.uri` | [`AgentChunk::Citation`] of a [`SourceKind::Document`] whose id is the document path (what `GET /api/knowledge/documents?path=` opens), numbered per document; its `text_span` is where the cited text is in the answer |
//! | `trace.orchestrationTrace.invocationInput` | [`AgentChunk::ToolCall`] (action group function or API path with its parameters; `Retrieve` for a Knowledge Base lookup) |
//! | `trace.orchestrationTrace.observation` | [`AgentChunk::ToolResult`] (one line), and [`AgentChunk::Recommendation`] when an action group returns a recorded recommendation as JSON |
//! | `returnControl` | a [`AgentChunk::ToolCall`] per requested action, then [`AgentChunk::Error`] `agent_return_control`: the platform's action groups run in its Lambda, never in the client |
//! | an exception, or a failed call | [`AgentChunk::Error`] with a stable code and a generic message (the detail is logged) |
//! | end of stream | [`AgentChunk::Done`] |
//!
//! Policy (lab scoping, fail closed): a citation is kept only when the
//! document is ours (this bucket and prefix, a valid path) and positively
//! of the caller's lab, by the retrieved reference's `lab_id` metadata or
//! by the lab segment of its path, and neither says another lab; anything
//! else is dropped and logged.

use crate::layout::{owner_of, S3Layout};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_bedrockagentruntime::error::SdkError;
use aws_sdk_bedrockagentruntime::operation::invoke_agent::InvokeAgentError;
use aws_sdk_bedrockagentruntime::types::error::ResponseStreamError;
use aws_sdk_bedrockagentruntime::types::{
    Citation, FilterAttribute, InvocationInputMember, KnowledgeBaseConfiguration,
    KnowledgeBaseRetrievalConfiguration, KnowledgeBaseVectorSearchConfiguration,
    OrchestrationTrace, PayloadPart, ResponseStream, RetrievalFilter, ReturnControlPayload,
    SessionState, Trace, TracePart,
};
use aws_sdk_bedrockagentruntime::Client;
use futures::stream::BoxStream;
use std::collections::{HashMap, VecDeque};
use westtek_assist::port::validate_request;
use westtek_assist::{
    Agent, AgentChunk, AgentKind, AgentRequest, Recommendation, SourceKind, SourceRef,
};
use westtek_domain::LabId;

/// Longest tool result summary, in characters.
const SUMMARY_CHARS: usize = 200;

/// One agent's settings: the agent, the alias to invoke, and the Knowledge
/// Base associated with it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BedrockAgentIds {
    /// The agent id (10 characters, `AGENT12345`).
    pub agent_id: String,
    /// The alias id (`TSTALIASID` is the draft's test alias).
    pub alias_id: String,
    /// The Knowledge Base associated with the agent (the Knowledge Transfer
    /// agent's), whose retrieval is filtered on the caller's lab. It must be
    /// set whenever the agent has one: without it Bedrock retrieves from
    /// every lab's documents (citations of other labs are still dropped,
    /// but the generated text is not filtered).
    pub knowledge_base_id: Option<String>,
}

/// One of the platform's agents on Bedrock.
#[derive(Clone, Debug)]
pub struct BedrockAgent {
    client: Client,
    kind: AgentKind,
    ids: BedrockAgentIds,
    layout: S3Layout,
}

/// Both agents, sharing one client.
#[derive(Clone, Debug)]
pub struct BedrockAgents {
    /// The Drift Analyzer.
    pub drift_analyzer: BedrockAgent,
    /// The Knowledge Transfer agent.
    pub knowledge_transfer: BedrockAgent,
}

impl BedrockAgents {
    /// Both agents, from the standard AWS environment. `documents` is where
    /// the Knowledge Base's data source keeps the documents, to map
    /// citations back onto document paths.
    pub async fn from_env(
        drift_analyzer: BedrockAgentIds,
        knowledge_transfer: BedrockAgentIds,
        documents: S3Layout,
    ) -> Self {
        let config = westtek_aws::shared_config(3).await;
        Self::with_config(&config, drift_analyzer, knowledge_transfer, documents)
    }

    /// Both agents, with an SDK configuration of the caller's.
    pub fn with_config(
        config: &SdkConfig,
        drift_analyzer: BedrockAgentIds,
        knowledge_transfer: BedrockAgentIds,
        documents: S3Layout,
    ) -> Self {
        Self::with_client(
            Client::new(config),
            drift_analyzer,
            knowledge_transfer,
            documents,
        )
    }

    /// Both agents over a client configured by the caller.
    pub fn with_client(
        client: Client,
        drift_analyzer: BedrockAgentIds,
        knowledge_transfer: BedrockAgentIds,
        documents: S3Layout,
    ) -> Self {
        let agent =
            |kind, ids| BedrockAgent::with_client(client.clone(), kind, ids, documents.clone());
        BedrockAgents {
            drift_analyzer: agent(AgentKind::DriftAnalyzer, drift_analyzer),
            knowledge_transfer: agent(AgentKind::KnowledgeTransfer, knowledge_transfer),
        }
    }
}

impl BedrockAgent {
    /// The agent of `kind`, with credentials, region and endpoint from the
    /// standard AWS environment.
    pub async fn from_env(kind: AgentKind, ids: BedrockAgentIds, documents: S3Layout) -> Self {
        let config = westtek_aws::shared_config(3).await;
        Self::with_client(Client::new(&config), kind, ids, documents)
    }

    /// The agent of `kind` over a client configured by the caller.
    pub fn with_client(
        client: Client,
        kind: AgentKind,
        ids: BedrockAgentIds,
        documents: S3Layout,
    ) -> Self {
        BedrockAgent {
            client,
            kind,
            ids,
            layout: documents,
        }
    }

    /// The session state sent with every request: the caller's scope and
    /// the lab filter on the Knowledge Base.
    ///
    /// # Errors
    /// When the filter cannot be built (the SDK's builders refuse a missing
    /// required field; all are set): the request is then not sent, as
    /// sending it unfiltered would retrieve from every lab.
    fn session_state(
        &self,
        req: &AgentRequest,
    ) -> Result<SessionState, aws_smithy_types::error::operation::BuildError> {
        let mut state = SessionState::builder()
            .session_attributes("lab_id", req.lab_id.to_string())
            .session_attributes("user_id", req.caller.user_id.to_string())
            .session_attributes("agent", format!("{:?}", req.agent));
        if let Some(env) = req.environment_id {
            state = state.session_attributes("environment_id", env.to_string());
        }
        if let Some(kb) = &self.ids.knowledge_base_id {
            let filter = FilterAttribute::builder()
                .key("lab_id")
                .value(aws_smithy_types::Document::String(req.lab_id.to_string()))
                .build()?;
            let config = KnowledgeBaseConfiguration::builder()
                .knowledge_base_id(kb)
                .retrieval_configuration(
                    KnowledgeBaseRetrievalConfiguration::builder()
                        .vector_search_configuration(
                            KnowledgeBaseVectorSearchConfiguration::builder()
                                .filter(RetrievalFilter::Equals(filter))
                                .build(),
                        )
                        .build(),
                )
                .build()?;
            state = state.knowledge_base_configurations(config);
        }
        Ok(state.build())
    }
}

#[async_trait]
impl Agent for BedrockAgent {
    async fn invoke(
        &self,
        req: AgentRequest,
    ) -> westtek_assist::Result<BoxStream<'static, AgentChunk>> {
        validate_request(&req, self.kind)?;
        let mut mapper = StreamMapper::new(&req.session_id, req.lab_id, self.layout.clone());
        let mut queue = VecDeque::new();
        let call = match self.session_state(&req) {
            Ok(state) => Some(
                self.client
                    .invoke_agent()
                    .agent_id(&self.ids.agent_id)
                    .agent_alias_id(&self.ids.alias_id)
                    .session_id(&req.session_id)
                    .input_text(&req.input_text)
                    .enable_trace(true)
                    .session_state(state),
            ),
            Err(e) => {
                tracing::error!(error = %e, "building InvokeAgent's session state; the request is not sent");
                queue.extend(mapper.fail(Failure::Other.chunk()));
                None
            }
        };
        let run = Run {
            call,
            receiver: None,
            mapper,
            queue,
            ended: false,
        };
        Ok(Box::pin(futures::stream::unfold(run, Run::step)))
    }
}

type Receiver = aws_sdk_bedrockagentruntime::primitives::event_stream::EventReceiver<
    ResponseStream,
    ResponseStreamError,
>;

/// One answer in progress: the call (made when first polled), then its
/// event stream.
struct Run {
    call: Option<
        aws_sdk_bedrockagentruntime::operation::invoke_agent::builders::InvokeAgentFluentBuilder,
    >,
    receiver: Option<Receiver>,
    mapper: StreamMapper,
    queue: VecDeque<AgentChunk>,
    ended: bool,
}

impl Run {
    async fn step(mut self) -> Option<(AgentChunk, Run)> {
        loop {
            if let Some(c) = self.queue.pop_front() {
                return Some((c, self));
            }
            if self.ended {
                return None;
            }
            if let Some(call) = self.call.take() {
                match call.send().await {
                    Ok(out) => self.receiver = Some(out.completion),
                    Err(e) => {
                        self.queue.extend(self.mapper.fail(call_error(&e)));
                        self.ended = true;
                    }
                }
                continue;
            }
            let Some(rx) = self.receiver.as_mut() else {
                self.ended = true;
                continue;
            };
            match rx.recv().await {
                Ok(Some(event)) => {
                    let chunks = self.mapper.map(&event);
                    self.queue.extend(chunks);
                }
                Ok(None) => {
                    self.queue.extend(self.mapper.finish());
                    self.ended = true;
                }
                Err(e) => {
                    self.queue.extend(self.mapper.fail(stream_error(&e)));
                    self.ended = true;
                }
            }
            if self.mapper.is_over() {
                self.ended = true;
            }
        }
    }
}

/// A failure as the user sees it: a stable code and a generic message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentFailure {
    /// Stable code (`agent_throttled`, `agent_unavailable`, `agent_failed`).
    pub code: &'static str,
    /// For the user.
    pub message: &'static str,
}

/// What kind of failure Bedrock reported.
enum Failure {
    Throttled,
    Unavailable,
    Other,
}

impl Failure {
    fn chunk(self) -> AgentFailure {
        match self {
            Failure::Throttled => AgentFailure {
                code: "agent_throttled",
                message: "The agent is busy right now; please try again in a minute.",
            },
            Failure::Unavailable => AgentFailure {
                code: "agent_unavailable",
                message: "The agent is not available at the moment; please contact your administrator if this persists.",
            },
            Failure::Other => AgentFailure {
                code: "agent_failed",
                message: "The agent could not complete its answer; please try again.",
            },
        }
    }
}

fn call_error<R: std::fmt::Debug + 'static>(e: &SdkError<InvokeAgentError, R>) -> AgentFailure {
    let detail = crate::ingest::describe(e);
    tracing::error!(error = %detail, "InvokeAgent failed");
    match e.as_service_error() {
        Some(
            InvokeAgentError::ThrottlingException(_)
            | InvokeAgentError::ServiceQuotaExceededException(_),
        ) => Failure::Throttled,
        Some(
            InvokeAgentError::AccessDeniedException(_)
            | InvokeAgentError::ResourceNotFoundException(_)
            | InvokeAgentError::ValidationException(_),
        ) => Failure::Unavailable,
        _ => Failure::Other,
    }
    .chunk()
}

fn stream_error<R: std::fmt::Debug + 'static>(
    e: &SdkError<ResponseStreamError, R>,
) -> AgentFailure {
    let detail = crate::ingest::describe(e);
    tracing::error!(error = %detail, "InvokeAgent's event stream failed");
    match e.as_service_error() {
        Some(
            ResponseStreamError::ThrottlingException(_)
            | ResponseStreamError::ServiceQuotaExceededException(_),
        ) => Failure::Throttled,
        Some(
            ResponseStreamError::AccessDeniedException(_)
            | ResponseStreamError::ResourceNotFoundException(_)
            | ResponseStreamError::ValidationException(_),
        ) => Failure::Unavailable,
        _ => Failure::Other,
    }
    .chunk()
}

/// Maps Bedrock's `InvokeAgent` events onto the platform's chunks (see the
/// module docs for the table). Pure: no I/O; one per answer.
#[derive(Debug)]
pub struct StreamMapper {
    session_id: String,
    lab: String,
    layout: S3Layout,
    /// The answer so far.
    answer: String,
    /// Bytes of a UTF-8 character split across chunks.
    carry: Vec<u8>,
    /// Footnote number per document path.
    numbers: HashMap<String, usize>,
    /// Tool names by trace id, for naming results.
    tools: HashMap<String, String>,
    last_tool: Option<String>,
    over: bool,
}

impl StreamMapper {
    /// A mapper for one answer in `session_id` for a caller in `lab`, whose
    /// documents are in `layout`.
    pub fn new(session_id: &str, lab: LabId, layout: S3Layout) -> Self {
        StreamMapper {
            session_id: session_id.to_string(),
            lab: lab.to_string(),
            layout,
            answer: String::new(),
            carry: Vec::new(),
            numbers: HashMap::new(),
            tools: HashMap::new(),
            last_tool: None,
            over: false,
        }
    }

    /// Whether the answer has ended (with an error: nothing follows).
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The chunks one event becomes.
    pub fn map(&mut self, event: &ResponseStream) -> Vec<AgentChunk> {
        if self.over {
            return Vec::new();
        }
        match event {
            ResponseStream::Chunk(part) => self.chunk(part),
            ResponseStream::Trace(part) => self.trace(part),
            ResponseStream::ReturnControl(payload) => self.return_control(payload),
            // Files (code interpreter output) and events of newer API
            // versions have no platform chunk.
            _ => Vec::new(),
        }
    }

    /// The end of the stream: [`AgentChunk::Done`], unless the answer
    /// already ended with an error.
    pub fn finish(&mut self) -> Vec<AgentChunk> {
        if self.over {
            return Vec::new();
        }
        self.over = true;
        let mut out = Vec::new();
        if !self.carry.is_empty() {
            let text = String::from_utf8_lossy(&self.carry).into_owned();
            self.carry.clear();
            self.answer.push_str(&text);
            out.push(AgentChunk::Text { text });
        }
        out.push(AgentChunk::Done {
            session_id: self.session_id.clone(),
        });
        out
    }

    /// The answer ends with `failure`.
    pub fn fail(&mut self, failure: AgentFailure) -> Vec<AgentChunk> {
        if self.over {
            return Vec::new();
        }
        self.over = true;
        vec![AgentChunk::Error {
            code: failure.code.to_string(),
            message: failure.message.to_string(),
        }]
    }

    fn chunk(&mut self, part: &PayloadPart) -> Vec<AgentChunk> {
        let mut out = Vec::new();
        let start = self.answer.len();
        if let Some(bytes) = part.bytes() {
            self.carry.extend_from_slice(bytes.as_ref());
            let text = take_utf8(&mut self.carry);
            if !text.is_empty() {
                self.answer.push_str(&text);
                out.push(AgentChunk::Text { text });
            }
        }
        if let Some(attribution) = part.attribution() {
            for citation in attribution.citations() {
                out.extend(self.citation(citation, start));
            }
        }
        out
    }

    /// Where the cited text is in the answer: found in it (the last
    /// occurrence), else this chunk's text, else the whole answer so far.
    /// Bedrock's own span counts characters of its final response, which a
    /// streamed answer does not always match, so it is not used.
    fn text_span(&self, citation: &Citation, chunk_start: usize) -> (usize, usize) {
        let cited = citation
            .generated_response_part()
            .and_then(|g| g.text_response_part())
            .and_then(|t| t.text())
            .map(str::trim)
            .unwrap_or_default();
        if !cited.is_empty() {
            if let Some(at) = self.answer.rfind(cited) {
                return (at, at + cited.len());
            }
        }
        if chunk_start < self.answer.len() {
            (chunk_start, self.answer.len())
        } else {
            (0, self.answer.len())
        }
    }

    fn citation(&mut self, citation: &Citation, chunk_start: usize) -> Vec<AgentChunk> {
        let text_span = self.text_span(citation, chunk_start);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for reference in citation.retrieved_references() {
            let Some(uri) = reference
                .location()
                .and_then(|l| l.s3_location())
                .and_then(|s| s.uri())
            else {
                tracing::warn!("a citation without an S3 location was dropped");
                continue;
            };
            let Some(path) = self.layout.path_of_uri(uri) else {
                tracing::warn!(
                    uri,
                    "a citation of an object that is not a knowledge document was dropped"
                );
                continue;
            };
            let meta_lab =
                reference
                    .metadata()
                    .and_then(|m| m.get("lab_id"))
                    .and_then(|d| match d {
                        aws_smithy_types::Document::String(s) => Some(s.as_str()),
                        _ => None,
                    });
            let path_lab = owner_of(&path).lab;
            let ours = |l: Option<&str>| l.is_none_or(|l| l == self.lab);
            let positive = meta_lab == Some(self.lab.as_str())
                || path_lab.as_deref() == Some(self.lab.as_str());
            if !(positive && ours(meta_lab) && ours(path_lab.as_deref())) {
                tracing::warn!(path = %path, "a citation of a document not known to be of the caller's lab was dropped");
                continue;
            }
            let id = path.as_str().to_string();
            if seen.contains(&id) {
                continue;
            }
            seen.push(id.clone());
            let next = self.numbers.len() + 1;
            let index = *self.numbers.entry(id.clone()).or_insert(next);
            out.push(AgentChunk::Citation {
                index,
                source: SourceRef {
                    kind: SourceKind::Document,
                    title: path.file_name().to_string(),
                    id,
                    span: None,
                },
                text_span,
            });
        }
        out
    }

    fn trace(&mut self, part: &TracePart) -> Vec<AgentChunk> {
        let Some(Trace::OrchestrationTrace(trace)) = part.trace() else {
            if let Some(Trace::FailureTrace(f)) = part.trace() {
                tracing::warn!(
                    reason = f.failure_reason().unwrap_or(""),
                    "the agent reported a failure"
                );
            }
            return Vec::new();
        };
        match trace {
            OrchestrationTrace::InvocationInput(input) => {
                let (name, args) = if let Some(a) = input.action_group_invocation_input() {
                    let name = a
                        .function()
                        .or(a.api_path())
                        .or(a.action_group_name())
                        .unwrap_or("action")
                        .to_string();
                    let args: serde_json::Map<String, serde_json::Value> = a
                        .parameters()
                        .iter()
                        .filter_map(|p| {
                            Some((
                                p.name()?.to_string(),
                                serde_json::Value::from(p.value().unwrap_or("")),
                            ))
                        })
                        .collect();
                    (name, serde_json::Value::Object(args))
                } else if let Some(k) = input.knowledge_base_lookup_input() {
                    (
                        "Retrieve".to_string(),
                        serde_json::json!({"text": k.text().unwrap_or("")}),
                    )
                } else {
                    return Vec::new();
                };
                if let Some(id) = input.trace_id() {
                    self.tools.insert(id.to_string(), name.clone());
                }
                self.last_tool = Some(name.clone());
                vec![AgentChunk::ToolCall { name, input: args }]
            }
            OrchestrationTrace::Observation(obs) => {
                let name = obs
                    .trace_id()
                    .and_then(|id| self.tools.get(id))
                    .or(self.last_tool.as_ref())
                    .cloned();
                if let Some(a) = obs.action_group_invocation_output() {
                    let text = a.text().unwrap_or("");
                    let mut out = Vec::new();
                    if let Some(recommendation) = recommendation_in(text) {
                        out.push(AgentChunk::Recommendation { recommendation });
                    }
                    out.push(AgentChunk::ToolResult {
                        name: name.unwrap_or_else(|| "action".into()),
                        summary: one_line(text),
                    });
                    out
                } else if let Some(k) = obs.knowledge_base_lookup_output() {
                    vec![AgentChunk::ToolResult {
                        name: "Retrieve".into(),
                        summary: format!("{} passages", k.retrieved_references().len()),
                    }]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    fn return_control(&mut self, payload: &ReturnControlPayload) -> Vec<AgentChunk> {
        let mut out = Vec::new();
        for input in payload.invocation_inputs() {
            let (name, args) = match input {
                InvocationInputMember::FunctionInvocationInput(f) => (
                    f.function().unwrap_or(f.action_group()).to_string(),
                    f.parameters()
                        .iter()
                        .filter_map(|p| {
                            Some((
                                p.name()?.to_string(),
                                serde_json::Value::from(p.value().unwrap_or("")),
                            ))
                        })
                        .collect::<serde_json::Map<_, _>>(),
                ),
                InvocationInputMember::ApiInvocationInput(a) => (
                    a.api_path().unwrap_or(a.action_group()).to_string(),
                    a.parameters()
                        .iter()
                        .filter_map(|p| {
                            Some((
                                p.name()?.to_string(),
                                serde_json::Value::from(p.value().unwrap_or("")),
                            ))
                        })
                        .collect::<serde_json::Map<_, _>>(),
                ),
                _ => continue,
            };
            out.push(AgentChunk::ToolCall {
                name,
                input: serde_json::Value::Object(args),
            });
        }
        tracing::error!("the agent returned control to the client: its action groups must use the agent-actions Lambda");
        out.extend(self.fail(AgentFailure {
            code: "agent_return_control",
            message: "The agent asked the platform to run an action itself, which it does not do; please contact your administrator.",
        }));
        out
    }
}

/// A recommendation an action group returned: the JSON of a
/// [`Recommendation`], bare or as `{"recommendation": …}`.
fn recommendation_in(text: &str) -> Option<Recommendation> {
    let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let value = match value.get("recommendation") {
        Some(inner) => inner.clone(),
        None => value,
    };
    serde_json::from_value(value).ok()
}

/// The first line of `text`, at most [`SUMMARY_CHARS`] characters.
fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() > SUMMARY_CHARS {
        let mut s: String = line.chars().take(SUMMARY_CHARS).collect();
        s.push('…');
        s
    } else {
        line.to_string()
    }
}

/// The complete UTF-8 text at the start of `buf`, leaving an incomplete
/// trailing character in it; invalid bytes become U+FFFD.
fn take_utf8(buf: &mut Vec<u8>) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(buf) {
            Ok(s) => {
                out.push_str(s);
                buf.clear();
                return out;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                // The prefix up to `valid` is UTF-8 by the error's contract.
                out.push_str(&String::from_utf8_lossy(&buf[..valid]));
                match e.error_len() {
                    None => {
                        buf.drain(..valid);
                        return out;
                    }
                    Some(n) => {
                        out.push('\u{FFFD}');
                        buf.drain(..valid + n);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_reassembled() {
        let bytes = "é€".as_bytes();
        let mut buf = bytes[..3].to_vec();
        assert_eq!(take_utf8(&mut buf), "é");
        assert_eq!(buf.len(), 1);
        buf.extend_from_slice(&bytes[3..]);
        assert_eq!(take_utf8(&mut buf), "€");
        assert!(buf.is_empty());
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(take_utf8(&mut bad), "a\u{FFFD}b");
    }

    #[test]
    fn summaries_are_one_short_line() {
        assert_eq!(one_line("\n  first \nsecond"), "first");
        assert_eq!(
            one_line(&"x".repeat(500)).chars().count(),
            SUMMARY_CHARS + 1
        );
    }
}
