//! Background jobs: live progress in memory (a `watch` channel per running
//! job) with throttled persistence to the store, an atomic final commit, and
//! the job endpoints (`GET /api/jobs/{id}`, SSE progress stream).
//!
//! Policy: progress is written to the store at most every 250 ms; the final
//! state is committed together with the job's effects and audit entry, and
//! no progress write can land after it.

use crate::auth::Caller;
use crate::dto::JobResponse;
use crate::error::ApiResult;
use crate::extract::IdPath;
use crate::state::AppState;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures::stream::{self, Stream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::sync::{watch, Mutex};
use westtek_domain::ports::{Clock, MetadataStore, ProgressSink, Write};
use westtek_domain::{AuditDraft, Job, JobError, JobId, JobStatus, Result};

/// Registry of running jobs.
#[derive(Clone)]
pub struct JobHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    store: Arc<dyn MetadataStore>,
    clock: Arc<dyn Clock>,
    live: StdMutex<HashMap<JobId, watch::Receiver<Job>>>,
}

/// The handle of one running job.
#[derive(Clone)]
pub struct JobTracker {
    hub: JobHub,
    tx: Arc<watch::Sender<Job>>,
    finished: Arc<Mutex<bool>>,
}

impl JobHub {
    /// A hub persisting to `store`.
    pub fn new(store: Arc<dyn MetadataStore>, clock: Arc<dyn Clock>) -> Self {
        JobHub {
            inner: Arc::new(HubInner {
                store,
                clock,
                live: StdMutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts tracking a job already stored as `queued`.
    pub fn track(&self, job: Job) -> JobTracker {
        let (tx, rx) = watch::channel(job.clone());
        if let Ok(mut live) = self.inner.live.lock() {
            live.insert(job.id, rx.clone());
        }
        let tracker = JobTracker {
            hub: self.clone(),
            tx: Arc::new(tx),
            finished: Arc::new(Mutex::new(false)),
        };
        tokio::spawn(persist_progress(
            self.inner.store.clone(),
            rx,
            tracker.finished.clone(),
        ));
        tracker
    }

    /// Live updates of a job running in this process.
    pub fn watch(&self, id: JobId) -> Option<watch::Receiver<Job>> {
        self.inner
            .live
            .lock()
            .ok()
            .and_then(|l| l.get(&id).cloned())
    }
}

async fn persist_progress(
    store: Arc<dyn MetadataStore>,
    mut rx: watch::Receiver<Job>,
    finished: Arc<Mutex<bool>>,
) {
    while rx.changed().await.is_ok() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let done = finished.lock().await;
        if *done {
            return;
        }
        let job = rx.borrow_and_update().clone();
        if let Err(e) = store.commit(vec![Write::UpdateJob(job)], vec![]).await {
            tracing::warn!(error = %e, "could not persist job progress");
        }
    }
}

impl ProgressSink for JobTracker {
    fn update(&self, fraction: f32, message: &str) {
        let now = self.hub.inner.clock.now();
        self.tx.send_modify(|j| {
            if !j.status.is_terminal() {
                j.status = JobStatus::Running;
                j.progress = fraction.clamp(0.0, 1.0).max(j.progress);
                j.message = message.to_string();
                j.updated_at = now;
            }
        });
    }
}

impl JobTracker {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.tx.borrow().id
    }

    /// Shows a job still waiting in the vault queue as `queued (position N)`;
    /// does nothing once it runs.
    pub fn queued(&self, position: usize) {
        let now = self.hub.inner.clock.now();
        self.tx.send_if_modified(|j| {
            if j.status != JobStatus::Queued {
                return false;
            }
            j.message = format!("queued (position {position})");
            j.updated_at = now;
            true
        });
    }

    /// Ends the job: commits its final state with `writes` and `audit` in one
    /// transaction, then tells live watchers.
    ///
    /// # Errors
    /// The commit's error; the job then stays as it was.
    pub async fn finish(
        &self,
        outcome: std::result::Result<String, JobError>,
        writes: Vec<Write>,
        audit: Vec<AuditDraft>,
    ) -> Result<()> {
        let mut done = self.finished.lock().await;
        let mut job = self.tx.borrow().clone();
        job.updated_at = self.hub.inner.clock.now();
        match outcome {
            Ok(message) => {
                job.status = JobStatus::Succeeded;
                job.progress = 1.0;
                job.message = message;
            }
            Err(e) => {
                job.status = JobStatus::Failed;
                job.message = e.message.clone();
                job.error = Some(e);
            }
        }
        let mut all = writes;
        all.push(Write::UpdateJob(job.clone()));
        self.hub.inner.store.commit(all, audit).await?;
        *done = true;
        self.tx.send_replace(job.clone());
        if let Ok(mut live) = self.hub.inner.live.lock() {
            live.remove(&job.id);
        }
        Ok(())
    }

    /// [`finish`](Self::finish) that never leaves the job running: when the
    /// outcome's transaction fails, the job is recorded as failed on its own
    /// (without `writes` and `audit`, which did not happen).
    pub async fn settle(
        &self,
        outcome: std::result::Result<String, JobError>,
        writes: Vec<Write>,
        audit: Vec<AuditDraft>,
    ) {
        if let Err(e) = self.finish(outcome, writes, audit).await {
            tracing::error!(error = %e, "could not record a job's outcome; recording it as failed");
            let failed = Err(JobError {
                code: "internal".into(),
                message: "the job's outcome could not be recorded; see the server log".into(),
            });
            if let Err(e) = self.finish(failed, vec![], vec![]).await {
                tracing::error!(error = %e, "could not record a job as failed");
            }
        }
    }
}

/// `202 Accepted` with `body` and `Location: /api/jobs/{job}`: the answer to
/// a request that started a background job.
pub fn accepted<T: serde::Serialize>(job: JobId, body: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut resp = (axum::http::StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("/api/jobs/{job}")) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

/// Routes: `GET /api/jobs/{id}` and `GET /api/jobs/{id}/events`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/events", get(job_events))
}

async fn readable_job(state: &AppState, caller: &Caller, id: JobId) -> ApiResult<Job> {
    let job = state.store.get_job(id).await?;
    if !caller.can_read(job.lab_id) {
        return Err(crate::error::ApiError::not_found("job"));
    }
    Ok(job)
}

/// A job's state.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobResponse), (status = 404, body = crate::error::Problem)))]
pub async fn get_job(
    caller: Caller,
    axum::extract::State(state): axum::extract::State<AppState>,
    IdPath(id): IdPath<JobId>,
) -> ApiResult<Json<JobResponse>> {
    Ok(Json(readable_job(&state, &caller, id).await?.into()))
}

/// Live progress of a job as Server-Sent Events: one `job` event per change
/// (data: the job as JSON), ending after the job succeeds or fails.
#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "text/event-stream of `job` events", content_type = "text/event-stream"),
              (status = 404, body = crate::error::Problem)))]
pub async fn job_events(
    caller: Caller,
    axum::extract::State(state): axum::extract::State<AppState>,
    IdPath(id): IdPath<JobId>,
) -> ApiResult<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    let first = readable_job(&state, &caller, id).await?;
    let live = state.jobs.watch(id);
    let store = state.store.clone();
    // Each step yields the next job state to send, or ends the stream.
    enum Src {
        Live(watch::Receiver<Job>),
        Poll,
    }
    let src = match live {
        Some(rx) => Src::Live(rx),
        None => Src::Poll,
    };
    let init = (Some(first), src, false);
    let s = stream::unfold(init, move |(pending, mut src, ended)| {
        let store = store.clone();
        async move {
            if ended {
                return None;
            }
            let job = match pending {
                Some(j) => j,
                None => match &mut src {
                    Src::Live(rx) => {
                        if rx.changed().await.is_err() {
                            // The tracker is gone: read the final state.
                            store.get_job(id).await.ok()?
                        } else {
                            rx.borrow_and_update().clone()
                        }
                    }
                    Src::Poll => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        store.get_job(id).await.ok()?
                    }
                },
            };
            let terminal = job.status.is_terminal();
            let data = serde_json::to_string(&JobResponse::from(job)).unwrap_or_default();
            Some((
                Ok(Event::default().event("job").data(data)),
                (None, src, terminal),
            ))
        }
    })
    .boxed();
    Ok(Sse::new(s).keep_alive(KeepAlive::default()))
}
