//! Drift endpoints: an environment's drift (seed path), the event history,
//! the live stream, accept / rollback / pin, webhooks, dead letters, and the
//! Drift Analyzer's chat.

use crate::alerting::parse_severity;
use crate::hub::{findings_of, DriftHub};
use crate::tools::ServiceTools;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast;
use utoipa::ToSchema;
use westtek_assist::{Agent, AgentKind, CallerRef, ChatRequest, LocalDriftAnalyzer};
use westtek_domain::{
    DomainError, DriftEvent, DriftEventFilter, DriftSource, EnvironmentId, LabId, SnapshotId,
    SnapshotStatus, Webhook, WebhookFormat, WebhookId,
};
use westtek_env_manager::environments::{operable, visible};
use westtek_platform::auth::Caller;
use westtek_platform::extract::{parse_id, ApiJson, ApiQuery, IdPath};
use westtek_platform::{ApiError, ApiResult, AppState};

/// The drift routes; `hub` is shared through an extension.
pub fn router(hub: Arc<DriftHub>) -> Router<AppState> {
    Router::new()
        .route("/api/environments/{id}/drift", get(environment_drift))
        .route("/api/environments/{id}/drift/accept", post(accept))
        .route("/api/environments/{id}/drift/rollback", post(rollback))
        .route("/api/environments/{id}/drift/baseline", put(pin_baseline))
        .route("/api/drift/events", get(events))
        .route("/api/drift/stream", get(stream_events))
        .route(
            "/api/labs/{id}/webhooks",
            get(list_webhooks).post(create_webhook),
        )
        .route(
            "/api/labs/{id}/webhooks/{webhook}",
            axum::routing::delete(delete_webhook),
        )
        .route("/api/labs/{id}/alerts/dead-letters", get(dead_letters))
        .route("/api/agents/drift/chat", post(chat))
        .route(
            "/api/agent/v1/inventory",
            post(agent_inventory).layer(axum::extract::DefaultBodyLimit::max(
                westtek_platform::AGENT_BODY_LIMIT,
            )),
        )
        .layer(Extension(hub))
}

/// What an environment's agent saw.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInventoryReport {
    /// The environment's inventory now, as `westtek agent` takes it
    /// (the format of `GET /api/snapshots/{id}/inventory`).
    #[schema(value_type = Object)]
    pub inventory: serde_json::Value,
    /// Why the agent looked: `change` (its watcher saw one), `sweep`
    /// (its periodic check) or `startup`.
    pub reason: String,
}

/// A report taken for judging.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentInventoryAccepted {
    /// The environment's drift as last judged (`STABLE`, `MINOR_DRIFT`,
    /// `CRITICAL_DRIFT`; this report is judged right after the answer);
    /// absent while the environment has no baseline snapshot yet.
    pub drift_status: Option<String>,
}

/// An adopted environment's agent reports its inventory; the platform
/// judges it against the baseline as it judges its own environments (drift
/// events, alerts, the live stream). Agent credential only; the
/// environment is the credential's.
#[utoipa::path(operation_id = "agent_report_inventory", post, path = "/api/agent/v1/inventory", tag = "agent", request_body = AgentInventoryReport,
    security(("agent_credential" = [])),
    responses((status = 200, body = AgentInventoryAccepted), (status = 401, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem, description = "`conflict`: the environment is not an adopted one (the platform watches its files itself)"),
              (status = 422, body = westtek_platform::Problem)))]
pub async fn agent_inventory(
    agent: westtek_platform::agent_auth::AgentCaller,
    Extension(hub): Extension<Arc<DriftHub>>,
    State(state): State<AppState>,
    ApiJson(report): ApiJson<AgentInventoryReport>,
) -> ApiResult<Json<AgentInventoryAccepted>> {
    let source = match report.reason.as_str() {
        "change" => DriftSource::Watcher,
        "sweep" => DriftSource::Sweep,
        "startup" => DriftSource::Startup,
        _ => return Err(DomainError::invalid("reason", "one of change, sweep, startup").into()),
    };
    if agent.env.adopted.is_none() {
        return Err(DomainError::Conflict(
            "this environment's files are on the platform, which watches them itself".into(),
        )
        .into());
    }
    let inventory: westtek_inventory::Inventory = serde_json::from_value(report.inventory)
        .map_err(|e| DomainError::invalid("inventory", format!("not an inventory: {e}")))?;
    hub.report(agent.env.id, inventory, source);
    let has_baseline = hub.baseline_of(&agent.env).await?.is_some();
    let env = state.store.get_environment(agent.env.id).await?;
    Ok(Json(AgentInventoryAccepted {
        drift_status: has_baseline.then(|| env.drift_status.as_str().to_string()),
    }))
}

/// One drift event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriftEventResponse {
    pub id: String,
    /// Stream position (`Last-Event-ID`).
    pub seq: u64,
    pub lab_id: String,
    pub environment_id: String,
    pub detected_at: DateTime<Utc>,
    /// `watcher`, `sweep`, `startup`, `baseline`.
    pub source: String,
    pub baseline_snapshot_id: Option<String>,
    pub previous_status: String,
    /// `STABLE`, `MINOR_DRIFT`, `CRITICAL_DRIFT`.
    pub status: String,
    /// `CRITICAL`, `MINOR`, `INFO`; none when back at the baseline.
    pub severity: Option<String>,
    /// What differs from the baseline, most severe first.
    #[schema(value_type = Vec<FindingView>)]
    pub findings: serde_json::Value,
    pub affected_notebooks: Vec<String>,
}

/// The kind of a finding (`westtek_inventory::FindingKind` as JSON).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingKindView {
    /// `python_changed`, `package_added`, `package_removed`,
    /// `package_upgraded`, `package_downgraded`, `package_changed`,
    /// `kernel_added`, `kernel_removed`, `kernel_changed`,
    /// `extension_changed`, `config_changed`, `notebook_added`,
    /// `notebook_changed`, `notebook_removed`, `data_added`, `data_changed`,
    /// `data_removed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `extension_changed` and `config_changed`: `added`, `removed` or `modified`.
    pub change: Option<String>,
}

/// One difference between the baseline and the present (the OpenAPI shape
/// of `westtek_inventory::Finding`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FindingView {
    pub kind: FindingKindView,
    /// Normalised package name, kernel or extension name, or root-relative path.
    pub subject: String,
    /// The old value (version, hash), if there was one.
    pub before: Option<String>,
    /// The new value, if there is one.
    pub after: Option<String>,
    /// For version changes: `major`, `minor`, `patch`, `pre_release`, `other`.
    pub distance: Option<String>,
    /// `CRITICAL`, `MINOR` or `INFO`.
    pub severity: String,
    /// Root-relative paths of the notebooks it affects.
    pub affected_notebooks: Vec<String>,
}

fn source_name(s: DriftSource) -> &'static str {
    match s {
        DriftSource::Watcher => "watcher",
        DriftSource::Sweep => "sweep",
        DriftSource::Startup => "startup",
        DriftSource::Baseline => "baseline",
    }
}

impl From<DriftEvent> for DriftEventResponse {
    fn from(e: DriftEvent) -> Self {
        DriftEventResponse {
            id: e.id.to_string(),
            seq: e.seq,
            lab_id: e.lab_id.to_string(),
            environment_id: e.environment_id.to_string(),
            detected_at: e.detected_at,
            source: source_name(e.source).into(),
            baseline_snapshot_id: e.baseline_snapshot_id.map(|s| s.to_string()),
            previous_status: e.previous_status.as_str().into(),
            status: e.status.as_str().into(),
            severity: e.severity,
            findings: e.findings,
            affected_notebooks: e.affected_notebooks,
        }
    }
}

/// An environment's drift (seed: `GET /api/environments/{id}/drift`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentDriftResponse {
    pub environment_id: String,
    /// `STABLE`, `MINOR_DRIFT`, `CRITICAL_DRIFT`.
    pub status: String,
    /// The snapshot drift is measured against; none before the first snapshot.
    pub baseline_snapshot_id: Option<String>,
    /// The lab pinned it (otherwise it follows snapshots and restores).
    pub baseline_pinned: bool,
    /// The watcher has the environment (otherwise only the sweep checks it).
    pub watched: bool,
    /// What differs from the baseline now.
    #[schema(value_type = Vec<FindingView>)]
    pub findings: serde_json::Value,
    pub affected_notebooks: Vec<String>,
    pub last_event: Option<DriftEventResponse>,
    /// The Drift Analyzer's latest explanation and recommendation.
    pub latest_analysis: Option<AnalysisResponse>,
}

/// A recorded analysis or recommendation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AnalysisResponse {
    pub id: String,
    pub agent: String,
    pub created_at: DateTime<Utc>,
    pub drift_event_id: Option<String>,
    pub analysis: Option<String>,
    /// `{kind: snapshot|rollback|pin|none, target_snapshot_id?, reason}`.
    #[schema(value_type = Object)]
    pub recommendation: serde_json::Value,
}

/// Status, findings, affected notebooks and the latest analysis of an
/// environment's drift against its baseline.
#[utoipa::path(get, path = "/api/environments/{id}/drift", tag = "drift", params(("id" = String, Path)),
    responses((status = 200, body = EnvironmentDriftResponse), (status = 404, body = westtek_platform::Problem)))]
pub async fn environment_drift(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<Json<EnvironmentDriftResponse>> {
    let env = visible(&state, &caller, id).await?;
    let baseline = hub.baseline_of(&env).await?;
    let st = hub.store.get_drift_state(id).await?;
    let last = match st.as_ref().and_then(|s| s.last_event_id) {
        Some(e) => match hub.store.get_drift_event(e).await {
            Ok(ev) => Some(ev),
            Err(DomainError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // Findings are current only while the last event is against the
    // present baseline.
    let current = last.as_ref().filter(|ev| {
        ev.baseline_snapshot_id == baseline
            && st.as_ref().is_some_and(|s| s.fingerprint == ev.fingerprint)
    });
    let findings = current
        .map(|ev| serde_json::to_value(findings_of(ev)).unwrap_or_default())
        .unwrap_or_else(|| serde_json::json!([]));
    let affected = current
        .map(|ev| ev.affected_notebooks.clone())
        .unwrap_or_default();
    let latest_analysis = hub
        .store
        .list_recommendations(id, 1)
        .await?
        .into_iter()
        .next()
        .map(|r| AnalysisResponse {
            id: r.id.to_string(),
            agent: r.agent,
            created_at: r.created_at,
            drift_event_id: r.drift_event_id.map(|e| e.to_string()),
            analysis: r.analysis,
            recommendation: r.body,
        });
    Ok(Json(EnvironmentDriftResponse {
        environment_id: env.id.to_string(),
        status: env.drift_status.as_str().into(),
        baseline_snapshot_id: baseline.map(|b| b.to_string()),
        baseline_pinned: env.baseline_snapshot_id.is_some() && env.baseline_snapshot_id == baseline,
        watched: hub.is_watched(env.id),
        findings,
        affected_notebooks: affected,
        last_event: last.map(Into::into),
        latest_analysis,
    }))
}

/// Filters of the drift event history.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub environment_id: Option<String>,
    /// Inclusive (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Exclusive (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// 1–1000, default 50.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// A page of drift events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriftEventPage {
    pub items: Vec<DriftEventResponse>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

/// Drift events of the caller's lab, newest first (seed: by environment and time range).
#[utoipa::path(get, path = "/api/drift/events", tag = "drift", params(EventsQuery),
    responses((status = 200, body = DriftEventPage), (status = 400, body = westtek_platform::Problem)))]
pub async fn events(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Json<DriftEventPage>> {
    let mut filter = DriftEventFilter {
        since: q.since,
        until: q.until,
        limit: q.limit.unwrap_or(50).clamp(1, 1000),
        offset: q.offset.unwrap_or(0),
        ..Default::default()
    };
    if let (Some(s), Some(u)) = (q.since, q.until) {
        if s >= u {
            return Err(DomainError::invalid("until", "must be after since").into());
        }
    }
    match &q.environment_id {
        Some(e) => {
            let env = visible(&state, &caller, parse_id("environment_id", e)?).await?;
            filter.environment_id = Some(env.id);
            filter.lab_id = Some(env.lab_id);
        }
        None => filter.lab_id = caller.read_scope()?.lab_filter(),
    }
    let page = hub.store.list_drift_events(&filter).await?;
    Ok(Json(DriftEventPage {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// Filters of the live stream.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    pub environment_id: Option<String>,
    /// Resume after this event's `seq` (same as the `Last-Event-ID` header).
    pub last_event_id: Option<u64>,
}

fn sse_event(ev: DriftEvent) -> Event {
    let seq = ev.seq;
    let data = serde_json::to_string(&DriftEventResponse::from(ev)).unwrap_or_default();
    Event::default()
        .id(seq.to_string())
        .event("drift")
        .data(data)
}

struct StreamState {
    rx: broadcast::Receiver<DriftEvent>,
    closing: tokio::sync::watch::Receiver<bool>,
    hub: Arc<DriftHub>,
    lab: Option<LabId>,
    env: Option<EnvironmentId>,
    last: u64,
    backlog: std::collections::VecDeque<DriftEvent>,
}

impl StreamState {
    fn wants(&self, ev: &DriftEvent) -> bool {
        ev.seq > self.last
            && self.lab.is_none_or(|l| l == ev.lab_id)
            && self.env.is_none_or(|e| e == ev.environment_id)
    }

    /// Stored events after `last`, oldest first.
    async fn catch_up(&mut self) -> Result<(), DomainError> {
        let page = self
            .hub
            .store
            .list_drift_events(&DriftEventFilter {
                lab_id: self.lab,
                environment_id: self.env,
                after_seq: Some(self.last),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        self.backlog.extend(page.items);
        Ok(())
    }
}

/// Live drift events of the caller's lab as server-sent events (`event:
/// drift`, `id:` = the event's `seq`). Resumable: with `Last-Event-ID` (or
/// `last_event_id`), the events after it are sent first.
#[utoipa::path(get, path = "/api/drift/stream", tag = "drift", params(StreamQuery),
    responses((status = 200, description = "text/event-stream of `drift` events", content_type = "text/event-stream")))]
pub async fn stream_events(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> ApiResult<Response> {
    let (lab, env) = match &q.environment_id {
        Some(e) => {
            let env = visible(&state, &caller, parse_id("environment_id", e)?).await?;
            (Some(env.lab_id), Some(env.id))
        }
        None => (caller.read_scope()?.lab_filter(), None),
    };
    let header_last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| DomainError::invalid("Last-Event-ID", "must be an event's seq"))
        })
        .transpose()?;
    let resume = header_last.or(q.last_event_id);
    // Subscribe before reading the backlog: nothing falls in between.
    let rx = hub.subscribe();
    let mut st = StreamState {
        rx,
        closing: hub.closing(),
        hub: Arc::clone(&hub),
        lab,
        env,
        last: resume.unwrap_or(0),
        backlog: Default::default(),
    };
    if resume.is_some() {
        st.catch_up().await?;
    } else {
        // Live only: start after the newest stored event.
        let newest = hub
            .store
            .list_drift_events(&DriftEventFilter {
                lab_id: lab,
                environment_id: env,
                limit: 1,
                ..Default::default()
            })
            .await?;
        st.last = newest.items.first().map_or(0, |e| e.seq);
    }
    let s: BoxStream<'static, Result<Event, Infallible>> =
        stream::unfold(st, |mut st| async move {
            loop {
                if let Some(ev) = st.backlog.pop_front() {
                    if st.wants(&ev) {
                        st.last = ev.seq;
                        return Some((Ok(sse_event(ev)), st));
                    }
                    continue;
                }
                if *st.closing.borrow() {
                    return None;
                }
                let next = tokio::select! {
                    r = st.rx.recv() => r,
                    _ = st.closing.changed() => return None,
                };
                match next {
                    Ok(ev) => {
                        if st.wants(&ev) {
                            st.last = ev.seq;
                            return Some((Ok(sse_event(ev)), st));
                        }
                    }
                    // Fell behind the live channel: read what was missed.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if st.catch_up().await.is_err() {
                            return None;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed();
    Ok(Sse::new(s).keep_alive(KeepAlive::default()).into_response())
}

/// Accept drift: the accepted snapshot job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AcceptResponse {
    pub job_id: String,
    pub snapshot_id: String,
}

/// Accepts the environment's present state: snapshots it now and makes that
/// snapshot the baseline (a pinned baseline moves to it when it completes).
#[utoipa::path(post, path = "/api/environments/{id}/drift/accept", tag = "drift", params(("id" = String, Path)),
    responses((status = 202, body = AcceptResponse), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem), (status = 429, body = westtek_platform::Problem, description = "`queue_full`: the lab already has the most snapshot, restore and drill jobs waiting that the vault queue accepts (`WESTTEK_VAULT_QUEUE_PER_LAB`); retry later")))]
pub async fn accept(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    IdPath(id): IdPath<EnvironmentId>,
) -> ApiResult<Response> {
    let (env, _) = operable(&state, &caller, id).await?;
    let status = env.drift_status;
    let (snap, job) = westtek_snapshots::routes::start_snapshot(
        &state,
        &caller,
        id,
        Some(format!("accepted drift ({})", status.as_str())),
    )
    .await?;
    let audit = caller.audit(
        Some(env.lab_id),
        "drift.accept",
        "environment",
        id,
        serde_json::json!({ "snapshot_id": snap.id.to_string(), "status": status.as_str(), "pinned": env.baseline_snapshot_id.map(|s| s.to_string()) }),
    );
    state.store.append(vec![audit.clone()]).await?;
    if env.baseline_snapshot_id.is_some() {
        // The pin follows the accepted state once it is captured (the hub
        // moves it on the snapshot's `snapshot.created`).
        let mut repin = audit;
        repin.action = "drift.baseline_pinned".into();
        repin.details =
            serde_json::json!({ "snapshot_id": snap.id.to_string(), "reason": "accepted drift" });
        hub.repin_when_created(id, snap.id, repin).await;
    }
    Ok(westtek_platform::jobs::accepted(
        job.id,
        AcceptResponse {
            job_id: job.id.to_string(),
            snapshot_id: snap.id.to_string(),
        },
    ))
}

/// Roll back to a snapshot (default: the baseline).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    pub snapshot_id: Option<String>,
}

/// Restores the baseline snapshot (or the one named) in place; the present
/// state is snapshotted first. The environment's Jupyter must be stopped.
#[utoipa::path(post, path = "/api/environments/{id}/drift/rollback", tag = "drift", params(("id" = String, Path)),
    request_body = RollbackRequest,
    responses((status = 202, body = westtek_snapshots::dto::RestoreAccepted), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem)))]
pub async fn rollback(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    IdPath(id): IdPath<EnvironmentId>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let (env, _) = operable(&state, &caller, id).await?;
    // The body is optional: none means "the baseline".
    let req: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| DomainError::invalid("body", format!("not a rollback request: {e}")))?
    };
    let target = match req.snapshot_id {
        Some(s) => parse_id("snapshot_id", &s)?,
        None => hub.baseline_of(&env).await?.ok_or_else(|| {
            DomainError::Conflict("the environment has no snapshot to roll back to".into())
        })?,
    };
    let snap = state.store.get_snapshot(target).await?;
    if snap.environment_id != env.id {
        return Err(ApiError::not_found("snapshot"));
    }
    let engine = match (&snap.status, &snap.vault_snapshot_id) {
        (SnapshotStatus::Complete, Some(e)) => e.clone(),
        _ => return Err(DomainError::Conflict("the snapshot is not complete".into()).into()),
    };
    let audit = caller.audit(
        Some(env.lab_id),
        "drift.rollback",
        "environment",
        id,
        serde_json::json!({ "snapshot_id": target.to_string(), "status": env.drift_status.as_str() }),
    );
    let resp = westtek_snapshots::routes::restore_in_place(&state, &caller, snap, engine).await?;
    state.store.append(vec![audit]).await?;
    Ok(resp)
}

/// Pin (or unpin with `null`) the drift baseline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    pub snapshot_id: Option<String>,
}

/// Pins a complete snapshot of the environment as its drift baseline, or
/// unpins (the baseline then follows snapshots and restores).
#[utoipa::path(put, path = "/api/environments/{id}/drift/baseline", tag = "drift", params(("id" = String, Path)),
    request_body = PinRequest,
    responses((status = 200, body = EnvironmentDriftResponse), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem)))]
pub async fn pin_baseline(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    IdPath(id): IdPath<EnvironmentId>,
    ApiJson(req): ApiJson<PinRequest>,
) -> ApiResult<Json<EnvironmentDriftResponse>> {
    let (env, _) = operable(&state, &caller, id).await?;
    let target: Option<SnapshotId> = match &req.snapshot_id {
        Some(s) => {
            let sid: SnapshotId = parse_id("snapshot_id", s)?;
            let snap = state.store.get_snapshot(sid).await?;
            if snap.environment_id != env.id {
                return Err(ApiError::not_found("snapshot"));
            }
            if snap.status != SnapshotStatus::Complete {
                return Err(DomainError::Conflict("the snapshot is not complete".into()).into());
            }
            Some(sid)
        }
        None => None,
    };
    let audit = caller.audit(
        Some(env.lab_id),
        if target.is_some() {
            "drift.baseline_pinned"
        } else {
            "drift.baseline_unpinned"
        },
        "environment",
        id,
        serde_json::json!({ "snapshot_id": target.map(|s| s.to_string()) }),
    );
    hub.pin(id, target, audit).await?;
    hub.evaluate_now(id, DriftSource::Baseline).await;
    environment_drift(caller, State(state), Extension(hub), IdPath(id)).await
}

/// A webhook as listed (the secret is shown once, at creation).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookResponse {
    pub id: String,
    pub lab_id: String,
    pub url: String,
    /// `generic` or `slack`.
    pub format: String,
    pub min_severity: String,
    pub created_at: DateTime<Utc>,
    /// Only in the creation response: the HMAC-SHA256 signing secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookResponse {
    fn of(h: Webhook, with_secret: bool) -> Self {
        WebhookResponse {
            id: h.id.to_string(),
            lab_id: h.lab_id.to_string(),
            url: h.url,
            format: match h.format {
                WebhookFormat::Generic => "generic".into(),
                WebhookFormat::Slack => "slack".into(),
            },
            min_severity: h.min_severity,
            created_at: h.created_at,
            secret: with_secret.then_some(h.secret),
        }
    }
}

/// A new webhook target.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `http(s)://…`
    pub url: String,
    /// `generic` (default) or `slack`.
    pub format: Option<String>,
    /// `CRITICAL` (default), `MINOR` or `INFO`.
    pub min_severity: Option<String>,
    /// At least 16 characters; generated when absent.
    pub secret: Option<String>,
}

async fn lab_admin(caller: &Caller, lab: &str) -> ApiResult<LabId> {
    let lab: LabId = parse_id("id", lab)?;
    let scope = caller.write_scope_for(lab)?;
    if !scope.is_lab_admin() {
        return Err(ApiError::forbidden(
            "only a lab admin manages the lab's alerts",
        ));
    }
    Ok(lab)
}

/// Adds a webhook to the lab (lab admins). Deliveries are signed:
/// `X-WestTek-Signature: sha256=HMAC(secret, "<X-WestTek-Timestamp>.<body>")`.
#[utoipa::path(post, path = "/api/labs/{id}/webhooks", tag = "drift", params(("id" = String, Path)),
    request_body = CreateWebhookRequest,
    responses((status = 201, body = WebhookResponse), (status = 403, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem), (status = 422, body = westtek_platform::Problem)))]
pub async fn create_webhook(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    Path(lab): Path<String>,
    ApiJson(req): ApiJson<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<WebhookResponse>)> {
    let lab = lab_admin(&caller, &lab).await?;
    let url = req.url.trim().to_string();
    let parsed = reqwest_url(&url)?;
    let format = match req.format.as_deref().unwrap_or("generic") {
        "generic" => WebhookFormat::Generic,
        "slack" => WebhookFormat::Slack,
        _ => return Err(DomainError::invalid("format", "must be generic or slack").into()),
    };
    let min = req.min_severity.as_deref().unwrap_or("CRITICAL");
    let min_severity = parse_severity(min)
        .map(|_| min.to_ascii_uppercase())
        .ok_or_else(|| DomainError::invalid("min_severity", "must be CRITICAL, MINOR or INFO"))?;
    let secret = match req.secret {
        Some(s) if s.chars().count() >= 16 && s.len() <= 512 => s,
        Some(_) => {
            return Err(DomainError::invalid("secret", "must be 16 to 512 characters").into())
        }
        None => {
            use rand::RngCore;
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            hex::encode(b)
        }
    };
    let hook = Webhook {
        id: WebhookId::new(),
        lab_id: lab,
        url: parsed,
        secret,
        format,
        min_severity,
        created_by: caller.principal.user_id,
        created_at: state.clock.now(),
    };
    hub.store.insert_webhook(hook.clone()).await?;
    let audit = caller.audit(
        Some(lab),
        "webhook.create",
        "webhook",
        hook.id,
        serde_json::json!({ "url": hook.url, "format": req.format, "min_severity": hook.min_severity }),
    );
    state.store.append(vec![audit]).await?;
    Ok((StatusCode::CREATED, Json(WebhookResponse::of(hook, true))))
}

fn reqwest_url(url: &str) -> ApiResult<String> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 2048
        && !url.chars().any(char::is_whitespace)
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if ok {
        Ok(url.to_string())
    } else {
        Err(DomainError::invalid("url", "must be an http:// or https:// URL").into())
    }
}

/// The lab's webhooks (lab admins; secrets are not shown).
#[utoipa::path(get, path = "/api/labs/{id}/webhooks", tag = "drift", params(("id" = String, Path)),
    responses((status = 200, body = Vec<WebhookResponse>), (status = 403, body = westtek_platform::Problem)))]
pub async fn list_webhooks(
    caller: Caller,
    Extension(hub): Extension<Arc<DriftHub>>,
    Path(lab): Path<String>,
) -> ApiResult<Json<Vec<WebhookResponse>>> {
    let lab = lab_admin(&caller, &lab).await?;
    Ok(Json(
        hub.store
            .list_webhooks(lab)
            .await?
            .into_iter()
            .map(|h| WebhookResponse::of(h, false))
            .collect(),
    ))
}

/// Removes a webhook (lab admins).
#[utoipa::path(delete, path = "/api/labs/{id}/webhooks/{webhook}", tag = "drift",
    params(("id" = String, Path), ("webhook" = String, Path)),
    responses((status = 204, description = "removed"), (status = 404, body = westtek_platform::Problem)))]
pub async fn delete_webhook(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    Path((lab, webhook)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let lab = lab_admin(&caller, &lab).await?;
    let id: WebhookId = parse_id("webhook", &webhook)?;
    let hook = hub.store.get_webhook(id).await?;
    if hook.lab_id != lab {
        return Err(ApiError::not_found("webhook"));
    }
    hub.store.delete_webhook(id).await?;
    let audit = caller.audit(
        Some(lab),
        "webhook.delete",
        "webhook",
        id,
        serde_json::json!({ "url": hook.url }),
    );
    state.store.append(vec![audit]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Alerts that could not be delivered after every retry (lab admins), newest first.
#[utoipa::path(get, path = "/api/labs/{id}/alerts/dead-letters", tag = "drift", params(("id" = String, Path)),
    responses((status = 200, description = "dead letters (JSON)"), (status = 403, body = westtek_platform::Problem)))]
pub async fn dead_letters(
    caller: Caller,
    Extension(hub): Extension<Arc<DriftHub>>,
    Path(lab): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let lab = lab_admin(&caller, &lab).await?;
    let letters = hub.store.list_dead_letters(lab, 200).await?;
    Ok(Json(serde_json::to_value(letters).unwrap_or_default()))
}

/// Asks the Drift Analyzer about an environment. Streams server-sent events,
/// one per chunk: `text`, `citation`, `tool_call`, `tool_result`,
/// `recommendation`, `done` (with the session id), or `error`.
#[utoipa::path(post, path = "/api/agents/drift/chat", tag = "drift", request_body = westtek_assist::ChatRequest,
    responses((status = 200, description = "text/event-stream: one event per chunk, named by its `type`, data = the chunk as JSON", content_type = "text/event-stream", body = westtek_assist::AgentChunk),
              (status = 404, body = westtek_platform::Problem), (status = 422, body = westtek_platform::Problem)))]
pub async fn chat(
    caller: Caller,
    State(state): State<AppState>,
    Extension(hub): Extension<Arc<DriftHub>>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> ApiResult<Response> {
    let env = visible(
        &state,
        &caller,
        parse_id("environment_id", &req.environment_id)?,
    )
    .await?;
    let may_record = caller.write_scope_for(env.lab_id).is_ok();
    let analyzer: Arc<dyn Agent> = match hub.remote_agent() {
        Some(a) => a,
        None => Arc::new(LocalDriftAnalyzer::new(
            Arc::new(ServiceTools::new(Arc::clone(&hub), may_record)),
            Arc::clone(&hub.sessions),
        )),
    };
    let request = req.into_agent_request(
        AgentKind::DriftAnalyzer,
        env.lab_id,
        env.id,
        CallerRef {
            user_id: caller.principal.user_id,
            display_name: caller.principal.username.clone(),
        },
    );
    let chunks = analyzer
        .invoke(request)
        .await
        .map_err(|e| ApiError::from(DomainError::invalid("message", e.to_string())))?;
    Ok(westtek_platform::streams::tagged_sse(chunks))
}
