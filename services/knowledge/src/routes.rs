//! Knowledge endpoints: the transfer summary (seed path) and package, the
//! stored documents (what citations open), search, a manual sync,
//! handovers with their onboarding checklist, and the Knowledge Transfer
//! agent's chat.

use crate::agent::LocalKnowledgeAgent;
use crate::transfer::{self, TransferData};
use crate::KnowledgeService;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use westtek_assist::{AgentKind, CallerRef, ChatRequest};
use westtek_domain::ports::Write;
use westtek_domain::{
    ChecklistItem, DomainError, Environment, EnvironmentId, Handover, HandoverFilter, HandoverId,
    LabId, UserId,
};
use westtek_env_manager::environments::{is_stale_version, operable, visible};
use westtek_knowledge::DocPath;
use westtek_platform::auth::Caller;
use westtek_platform::extract::{parse_id, ApiJson, ApiQuery, IdPath};
use westtek_platform::{ApiError, ApiResult, AppState};

/// The knowledge and collaboration routes; `svc` is shared through an
/// extension.
pub fn router(svc: Arc<KnowledgeService>) -> Router<AppState> {
    Router::new()
        .route("/api/knowledge/transfer", get(transfer_summary))
        .route(
            "/api/knowledge/transfer/{id}/package.zip",
            get(transfer_package),
        )
        .route("/api/knowledge/documents", get(document))
        .route("/api/knowledge/search", get(search))
        .route("/api/knowledge/sync/{id}", post(sync_now))
        .route("/api/knowledge/handover", post(handover))
        .route("/api/knowledge/handovers", get(list_handovers))
        .route("/api/knowledge/handovers/{id}", get(get_handover))
        .route(
            "/api/knowledge/handovers/{id}/checklist/{key}",
            put(set_checklist_item),
        )
        .route("/api/agents/knowledge/chat", post(chat))
        .merge(crate::collab::router())
        .layer(Extension(svc))
}

/// One step of the onboarding checklist.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChecklistItemView {
    pub key: String,
    pub text: String,
    /// The knowledge document the step comes from (open it with
    /// `GET /api/knowledge/documents?path=`).
    pub source: Option<String>,
    pub done: bool,
    pub done_at: Option<DateTime<Utc>>,
}

impl From<&ChecklistItem> for ChecklistItemView {
    fn from(c: &ChecklistItem) -> Self {
        ChecklistItemView {
            key: c.key.clone(),
            text: c.text.clone(),
            source: c.source.clone(),
            done: c.done_at.is_some(),
            done_at: c.done_at,
        }
    }
}

/// A notebook of the environment and its knowledge document.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotebookView {
    pub path: String,
    pub document: Option<String>,
    pub imports: Vec<String>,
    pub data_files: Vec<String>,
    /// Why it is not in the knowledge base, when it is not.
    pub error: Option<String>,
}

/// The transfer package of an environment at a glance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TransferSummary {
    pub environment_id: String,
    pub name: String,
    /// The generated summary (Markdown).
    pub summary: String,
    pub summary_path: String,
    pub snapshots: usize,
    pub notebooks: Vec<NotebookView>,
    pub checklist: Vec<ChecklistItemView>,
    /// Redactions by kind (`email`, `aws_access_key_id`, …); never values.
    pub redactions: BTreeMap<String, usize>,
    /// Where to download the zip.
    pub package_url: String,
}

fn summary_of(env: &Environment, d: &TransferData) -> TransferSummary {
    let mut redactions = BTreeMap::new();
    for r in &d.redactions {
        *redactions.entry(r.kind.clone()).or_insert(0) += 1;
    }
    TransferSummary {
        environment_id: env.id.to_string(),
        name: env.name.as_str().to_string(),
        summary: d.summary.clone(),
        summary_path: d.summary_path.to_string(),
        snapshots: d.snapshots.len(),
        notebooks: d
            .notebooks
            .iter()
            .map(|n| NotebookView {
                path: n.path.clone(),
                document: n.document.clone(),
                imports: n.imports.clone(),
                data_files: n.data_files.clone(),
                error: n.error.clone(),
            })
            .collect(),
        checklist: d.checklist.iter().map(Into::into).collect(),
        redactions,
        package_url: format!("/api/knowledge/transfer/{}/package.zip", env.id),
    }
}

/// `?environment_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvironmentQuery {
    pub environment_id: String,
}

/// The transfer package's summary (seed path): generated summary, notebooks
/// in run order, onboarding checklist, redaction counts. Syncs the
/// knowledge base first when the environment has none yet.
#[utoipa::path(get, path = "/api/knowledge/transfer", tag = "knowledge", params(EnvironmentQuery),
    responses((status = 200, body = TransferSummary), (status = 404, body = westtek_platform::Problem)))]
pub async fn transfer_summary(
    caller: Caller,
    State(state): State<AppState>,
    Extension(svc): Extension<Arc<KnowledgeService>>,
    ApiQuery(q): ApiQuery<EnvironmentQuery>,
) -> ApiResult<Json<TransferSummary>> {
    let env = visible(
        &state,
        &caller,
        parse_id("environment_id", &q.environment_id)?,
    )
    .await?;
    let data = transfer::load(&svc, &env, false).await?;
    Ok(Json(summary_of(&env, &data)))
}

/// The transfer package as a zip: summary, onboarding checklist, notebooks
/// as Markdown, manifests per snapshot, installation and drift history,
/// experiment logs, redaction report. Audited.
#[utoipa::path(get, path = "/api/knowledge/transfer/{id}/package.zip", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, description = "the package", content_type = "application/zip"),
              (status = 404, body = westtek_platform::Problem)))]
pub async fn transfer_package(
    caller: Caller,
    State(state): State<AppState>,
    Extension(svc): Extension<Arc<KnowledgeService>>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<Response> {
    let env = visible(&state, &caller, id).await?;
    // The checklist of the newest handover to the caller, with its progress.
    let handovers = state
        .store
        .list_handovers(&HandoverFilter {
            environment_id: Some(env.id),
            ..Default::default()
        })
        .await?;
    let checklist = handovers.first().map(|h| h.checklist.clone());
    let bytes = transfer::package_zip(&svc, &env, checklist.as_deref()).await?;
    state
        .store
        .append(vec![caller.audit(
            Some(env.lab_id),
            "knowledge.transfer_export",
            "environment",
            env.id,
            serde_json::json!({ "bytes": bytes.len() }),
        )])
        .await?;
    let disposition = format!(
        "attachment; filename=\"transfer-{}.zip\"",
        env.name.as_str()
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// The lab and environment a document path belongs to.
fn owner_of(path: &DocPath) -> (Option<LabId>, Option<EnvironmentId>) {
    let seg: Vec<&str> = path.as_str().split('/').collect();
    let env_at = |i: usize| seg.get(i).and_then(|s| EnvironmentId::parse(s).ok());
    let lab_at = |i: usize| seg.get(i).and_then(|s| LabId::parse(s).ok());
    match seg.first().copied() {
        Some("notebooks") => (lab_at(1), env_at(3)),
        Some("experiment-logs") => (lab_at(1), None),
        Some("package-manifests" | "installation-history" | "environment-docs") => {
            (None, env_at(1))
        }
        _ => (None, None),
    }
}

/// Whether the caller may read document `path`: a document of their lab,
/// or of an environment they see through a share or a handover.
pub async fn may_read(state: &AppState, caller: &Caller, path: &DocPath) -> ApiResult<bool> {
    let (lab, env) = owner_of(path);
    let env = match env {
        Some(id) => match state.store.get_environment(id).await {
            Ok(e) => Some(e),
            Err(DomainError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    match (lab, env) {
        // A notebook names both: they must agree.
        (Some(l), Some(e)) if l != e.lab_id => Ok(false),
        (_, Some(e)) => Ok(caller.can_read(e.lab_id) || visible(state, caller, e.id).await.is_ok()),
        (Some(l), None) => Ok(caller.can_read(l)),
        (None, None) => Ok(false),
    }
}

/// `?path=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// A document path as citations give it.
    pub path: String,
}

/// A stored knowledge document.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentResponse {
    pub path: String,
    pub content_type: String,
    /// The text; citation spans are byte ranges of it (UTF-8).
    pub text: String,
}

/// A knowledge document (what a citation opens). Documents of other labs
/// are "not found" unless shared.
#[utoipa::path(get, path = "/api/knowledge/documents", tag = "knowledge", params(DocumentQuery),
    responses((status = 200, body = DocumentResponse), (status = 404, body = westtek_platform::Problem),
              (status = 422, body = westtek_platform::Problem)))]
pub async fn document(
    caller: Caller,
    State(state): State<AppState>,
    Extension(svc): Extension<Arc<KnowledgeService>>,
    ApiQuery(q): ApiQuery<DocumentQuery>,
) -> ApiResult<Json<DocumentResponse>> {
    let path = DocPath::parse(&q.path).map_err(crate::knowledge_error)?;
    if !may_read(&state, &caller, &path).await? {
        return Err(ApiError::not_found("document"));
    }
    let doc = svc
        .docs
        .get(&path)
        .await
        .map_err(crate::knowledge_error)?
        .ok_or_else(|| ApiError::not_found("document"))?;
    Ok(Json(DocumentResponse {
        path: path.to_string(),
        content_type: doc.content_type,
        text: String::from_utf8_lossy(&doc.bytes).into_owned(),
    }))
}

/// `?q=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    pub q: String,
    /// 1–50, default 10.
    pub limit: Option<usize>,
}

/// One search hit.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHitView {
    pub path: String,
    pub title: String,
    pub section: Option<String>,
    /// Byte range of `text` in the document.
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub score: f32,
}

/// Searches the caller's lab's knowledge base (BM25).
#[utoipa::path(get, path = "/api/knowledge/search", tag = "knowledge", params(SearchQuery),
    responses((status = 200, body = [SearchHitView]), (status = 422, body = westtek_platform::Problem)))]
pub async fn search(
    caller: Caller,
    Extension(svc): Extension<Arc<KnowledgeService>>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Vec<SearchHitView>>> {
    let lab = caller.write_scope().map(|s| s.lab).or_else(|_| {
        caller
            .read_scope()?
            .lab_filter()
            .ok_or_else(|| ApiError::forbidden("select a lab: send X-Westtek-Lab"))
    })?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(DomainError::invalid("limit", "must be 1-50").into());
    }
    if q.q.len() > 2000 {
        return Err(DomainError::invalid("q", "at most 2000 bytes").into());
    }
    let index = Arc::clone(&svc.index);
    let query = q.q.clone();
    let hits = tokio::task::spawn_blocking(move || index.search(lab, &query, limit))
        .await
        .map_err(DomainError::internal)?
        .map_err(crate::knowledge_error)?;
    Ok(Json(
        hits.into_iter()
            .map(|h| SearchHitView {
                path: h.citation.path.to_string(),
                title: h.title,
                section: h.section,
                start: h.citation.start,
                end: h.citation.end,
                text: h.text,
                score: h.score,
            })
            .collect(),
    ))
}

/// What a sync did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SyncResponse {
    pub documents: Vec<String>,
    pub chunks: usize,
    pub redactions: usize,
    pub skipped: Vec<String>,
}

/// Syncs an environment's knowledge now (it also happens on every snapshot).
#[utoipa::path(post, path = "/api/knowledge/sync/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = SyncResponse), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem)))]
pub async fn sync_now(
    caller: Caller,
    State(state): State<AppState>,
    Extension(svc): Extension<Arc<KnowledgeService>>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<Json<SyncResponse>> {
    let (env, _) = operable(&state, &caller, id).await?;
    let r = svc.sync_environment(env.id).await?;
    state
        .store
        .append(vec![caller.audit(
            Some(env.lab_id),
            "knowledge.sync",
            "environment",
            env.id,
            serde_json::json!({ "documents": r.documents.len(), "redactions": r.redactions }),
        )])
        .await?;
    Ok(Json(SyncResponse {
        documents: r.documents,
        chunks: r.chunks,
        redactions: r.redactions,
        skipped: r.skipped,
    }))
}

/// A handover to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverRequest {
    pub environment_id: String,
    /// The current owner (defaults to the environment's researcher).
    pub from: Option<String>,
    /// The new researcher: a user id or username, member of the lab.
    pub to: String,
    pub note: Option<String>,
    /// Until when the previous owner may still read the environment
    /// (default: 30 days; at most 1 year).
    pub read_until: Option<DateTime<Utc>>,
}

/// A handover and the new researcher's onboarding progress.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HandoverResponse {
    pub id: String,
    pub lab_id: String,
    pub environment_id: String,
    pub from_user: String,
    pub to_user: String,
    pub note: String,
    pub read_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub checklist: Vec<ChecklistItemView>,
    pub done: usize,
    pub total: usize,
    pub package_url: String,
}

impl From<&Handover> for HandoverResponse {
    fn from(h: &Handover) -> Self {
        let (done, total) = h.progress();
        HandoverResponse {
            id: h.id.to_string(),
            lab_id: h.lab_id.to_string(),
            environment_id: h.environment_id.to_string(),
            from_user: h.from_user.to_string(),
            to_user: h.to_user.to_string(),
            note: h.note.clone(),
            read_until: h.read_until,
            created_at: h.created_at,
            checklist: h.checklist.iter().map(Into::into).collect(),
            done,
            total,
            package_url: format!("/api/knowledge/transfer/{}/package.zip", h.environment_id),
        }
    }
}

async fn user_in_lab(state: &AppState, lab: LabId, who: &str, field: &str) -> ApiResult<UserId> {
    let user = match UserId::parse(who) {
        Ok(id) => state.store.get_user(id).await.ok(),
        Err(_) => state
            .store
            .find_user_by_username(who.trim())
            .await?
            .map(|c| c.user),
    };
    let Some(user) = user else {
        return Err(DomainError::invalid(field, "no such user").into());
    };
    let member = state
        .store
        .memberships_of(user.id)
        .await?
        .iter()
        .any(|m| m.lab_id == lab);
    if !member {
        return Err(DomainError::invalid(field, "is not a member of the environment's lab").into());
    }
    Ok(user.id)
}

/// Hands an environment over to another researcher of its lab: ownership
/// moves, the previous owner keeps read access until `read_until`, the
/// knowledge base is synced and the transfer package generated, and the new
/// researcher gets an onboarding checklist. The environment's owner or a lab
/// admin may do this. Audited.
#[utoipa::path(post, path = "/api/knowledge/handover", tag = "knowledge", request_body = HandoverRequest,
    responses((status = 201, body = HandoverResponse), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem), (status = 422, body = westtek_platform::Problem)))]
pub async fn handover(
    caller: Caller,
    State(state): State<AppState>,
    Extension(svc): Extension<Arc<KnowledgeService>>,
    ApiJson(req): ApiJson<HandoverRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<HandoverResponse>)> {
    let (env, _) = operable(
        &state,
        &caller,
        parse_id("environment_id", &req.environment_id)?,
    )
    .await?;
    let from = match &req.from {
        Some(f) => user_in_lab(&state, env.lab_id, f, "from").await?,
        None => env.researcher_id,
    };
    if from != env.researcher_id {
        return Err(
            DomainError::invalid("from", "is not the environment's current researcher").into(),
        );
    }
    let to = user_in_lab(&state, env.lab_id, &req.to, "to").await?;
    if to == from {
        return Err(DomainError::invalid("to", "is already the environment's researcher").into());
    }
    let note = req.note.unwrap_or_default();
    if note.len() > 4000 {
        return Err(DomainError::invalid("note", "at most 4000 bytes").into());
    }
    let now = state.clock.now();
    let read_until = req.read_until.unwrap_or(now + chrono::Duration::days(30));
    if read_until <= now || read_until > now + chrono::Duration::days(366) {
        return Err(DomainError::invalid(
            "read_until",
            "must be in the future, at most a year ahead",
        )
        .into());
    }
    // The knowledge as the previous owner leaves it.
    let data = transfer::load(&svc, &env, true).await?;
    let h = Handover {
        id: HandoverId::new(),
        lab_id: env.lab_id,
        environment_id: env.id,
        from_user: from,
        to_user: to,
        note: westtek_knowledge::redact(&note).0,
        read_until,
        created_by: caller.principal.user_id,
        created_at: now,
        checklist: data.checklist,
    };
    let audit = caller.audit(
        Some(env.lab_id),
        "knowledge.handover",
        "environment",
        env.id,
        serde_json::json!({
            "handover_id": h.id.to_string(), "from": from.to_string(), "to": to.to_string(),
            "read_until": read_until,
        }),
    );
    // Ownership and the handover record in one commit (retried when
    // someone else changed the environment meanwhile).
    let mut moved = None;
    for _ in 0..5 {
        let mut e = state.store.get_environment(env.id).await?;
        if e.researcher_id != from {
            return Err(
                DomainError::Conflict("the environment changed hands meanwhile".into()).into(),
            );
        }
        e.researcher_id = to;
        e.updated_at = now;
        match state
            .store
            .commit(
                vec![
                    Write::UpdateEnvironment(e.clone()),
                    Write::PutHandover(h.clone()),
                ],
                vec![audit.clone()],
            )
            .await
        {
            Ok(_) => {
                moved = Some(e);
                break;
            }
            Err(err) if is_stale_version(&err) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    let moved = moved.ok_or_else(|| {
        ApiError::from(DomainError::Conflict(
            "the environment is changing; try again".into(),
        ))
    })?;
    // Re-file the knowledge under the new researcher and store the package.
    if let Err(e) = svc.sync_environment(moved.id).await {
        tracing::warn!(error = %e, env = %moved.id, "knowledge sync after a handover failed");
    }
    match transfer::package_zip(&svc, &moved, Some(&h.checklist)).await {
        Ok(zip) => {
            if let Ok(p) = DocPath::parse(&format!(
                "environment-docs/{}/handover-{}.zip",
                env.id, h.id
            )) {
                if let Err(e) = svc.docs.put(&p, &zip, "application/zip").await {
                    tracing::warn!(error = %e, "could not store the handover's package");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not build the handover's package"),
    }
    Ok((axum::http::StatusCode::CREATED, Json((&h).into())))
}

/// `?environment_id=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HandoverListQuery {
    pub environment_id: Option<String>,
}

/// Handovers of an environment, or (without `environment_id`) the caller's
/// own, to or from them: the new researcher's onboarding view.
#[utoipa::path(get, path = "/api/knowledge/handovers", tag = "knowledge", params(HandoverListQuery),
    responses((status = 200, body = [HandoverResponse]), (status = 404, body = westtek_platform::Problem)))]
pub async fn list_handovers(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HandoverListQuery>,
) -> ApiResult<Json<Vec<HandoverResponse>>> {
    let filter = match &q.environment_id {
        Some(e) => {
            let env = visible(&state, &caller, parse_id("environment_id", e)?).await?;
            HandoverFilter {
                environment_id: Some(env.id),
                ..Default::default()
            }
        }
        None => HandoverFilter {
            user: Some(caller.principal.user_id),
            ..Default::default()
        },
    };
    let list = state.store.list_handovers(&filter).await?;
    Ok(Json(list.iter().map(Into::into).collect()))
}

async fn readable_handover(
    state: &AppState,
    caller: &Caller,
    id: HandoverId,
) -> ApiResult<Handover> {
    let h = state.store.get_handover(id).await?;
    let mine = h.to_user == caller.principal.user_id || h.from_user == caller.principal.user_id;
    if !mine && !caller.can_read(h.lab_id) {
        return Err(ApiError::not_found("handover"));
    }
    Ok(h)
}

/// One handover.
#[utoipa::path(get, path = "/api/knowledge/handovers/{id}", tag = "knowledge", params(("id" = String, Path)),
    responses((status = 200, body = HandoverResponse), (status = 404, body = westtek_platform::Problem)))]
pub async fn get_handover(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<HandoverId>,
) -> ApiResult<Json<HandoverResponse>> {
    Ok(Json(
        (&readable_handover(&state, &caller, id).await?).into(),
    ))
}

/// A checklist step done or not.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistUpdate {
    pub done: bool,
}

/// Marks an onboarding step done (or not): the new researcher or a lab admin.
#[utoipa::path(put, path = "/api/knowledge/handovers/{id}/checklist/{key}", tag = "knowledge",
    params(("id" = String, Path), ("key" = String, Path)), request_body = ChecklistUpdate,
    responses((status = 200, body = HandoverResponse), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem)))]
pub async fn set_checklist_item(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    ApiJson(req): ApiJson<ChecklistUpdate>,
) -> ApiResult<Json<HandoverResponse>> {
    let mut h = readable_handover(&state, &caller, parse_id("id", &id)?).await?;
    let admin = caller
        .write_scope_for(h.lab_id)
        .is_ok_and(|s| s.is_lab_admin());
    if h.to_user != caller.principal.user_id && !admin {
        return Err(ApiError::forbidden(
            "only the new researcher or a lab admin may tick the checklist",
        ));
    }
    let now = state.clock.now();
    h.set_done(&key, req.done, caller.principal.user_id, now)?;
    let audit = caller.audit(
        Some(h.lab_id),
        "knowledge.onboarding_step",
        "handover",
        h.id,
        serde_json::json!({ "key": key, "done": req.done }),
    );
    state
        .store
        .commit(vec![Write::PutHandover(h.clone())], vec![audit])
        .await?;
    Ok(Json((&h).into()))
}

/// Asks the Knowledge Transfer agent about an environment. Streams
/// server-sent events, one per chunk: `text`, `citation` (a document path
/// and byte span, open it with `GET /api/knowledge/documents?path=`),
/// `tool_call`, `tool_result`, `done` (with the session id), or `error`.
/// Every claim carries a citation, or the agent says it does not know.
#[utoipa::path(post, path = "/api/agents/knowledge/chat", tag = "knowledge", request_body = westtek_assist::ChatRequest,
    responses((status = 200, description = "text/event-stream: one event per chunk, named by its `type`, data = the chunk as JSON", content_type = "text/event-stream", body = westtek_assist::AgentChunk),
              (status = 404, body = westtek_platform::Problem), (status = 422, body = westtek_platform::Problem)))]
pub async fn chat(
    caller: Caller,
    State(state): State<AppState>,
    Extension(svc): Extension<Arc<KnowledgeService>>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> ApiResult<Response> {
    let env = visible(
        &state,
        &caller,
        parse_id("environment_id", &req.environment_id)?,
    )
    .await?;
    // A caller from another lab (share, handover) sees only this
    // environment's documents; a member sees the lab's.
    let whole_lab = caller.can_read(env.lab_id);
    if transfer::ensure_synced(&svc, &env).await.is_err() {
        tracing::warn!(env = %env.id, "knowledge not synced; answering from what is stored");
    }
    // The Bedrock agent's retrieval is filtered by lab only: a caller from
    // another lab (who may see this one environment's documents, not the
    // lab's) is answered by the built-in agent, which filters by environment.
    let agent: Arc<dyn westtek_assist::Agent> = match svc.remote_agent().filter(|_| whole_lab) {
        Some(a) => a,
        None => Arc::new(LocalKnowledgeAgent::new(
            Arc::clone(&svc),
            env.clone(),
            whole_lab,
        )),
    };
    let request = req.into_agent_request(
        AgentKind::KnowledgeTransfer,
        env.lab_id,
        env.id,
        CallerRef {
            user_id: caller.principal.user_id,
            display_name: caller.principal.username.clone(),
        },
    );
    let chunks = agent
        .invoke(request)
        .await
        .map_err(|e| ApiError::from(DomainError::invalid("message", e.to_string())))?;
    Ok(westtek_platform::streams::tagged_sse(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_paths_name_their_owner() {
        let lab = LabId::new();
        let env = EnvironmentId::new();
        let user = UserId::new();
        let nb = DocPath::parse(&format!("notebooks/{lab}/{user}/{env}/a.md")).unwrap();
        assert_eq!(owner_of(&nb), (Some(lab), Some(env)));
        assert_eq!(
            owner_of(&DocPath::environment_summary(env)),
            (None, Some(env))
        );
        let exp = DocPath::experiment_log(lab, "exp-1").unwrap();
        assert_eq!(owner_of(&exp), (Some(lab), None));
        assert_eq!(
            owner_of(&DocPath::parse("other/x.md").unwrap()),
            (None, None)
        );
    }
}
