//! knowledge: what a successor needs (issue 6, "Knowledge transfer" in the
//! seed). On every `snapshot.created` the environment's knowledge documents
//! are written in the seed's layout and indexed ([`sync`]); a transfer
//! package bundles them with an onboarding checklist ([`transfer`]); a
//! handover moves ownership and keeps the previous owner's read access until
//! a date; the Knowledge Transfer agent answers with citations ([`agent`]);
//! labs share environments, snapshots and templates ([`collab`]).
//! A library exposing `router()`; `westtek up` and `westtek serve knowledge`
//! serve it.

pub mod agent;
pub mod collab;
pub mod routes;
pub mod sync;
pub mod transfer;

use std::path::Path;
use std::sync::Arc;
use utoipa::OpenApi;
use westtek_assist::SessionStore;
use westtek_domain::event::types;
use westtek_domain::ports::Write;
use westtek_domain::{DomainError, DomainEvent, DriftStore, EnvironmentId};
use westtek_knowledge::{DocumentStore, KnowledgeIndex, LocalFolderStore};
use westtek_platform::AppState;

pub use routes::router;

/// Name of the service (event source, consumer group).
pub const SERVICE: &str = "knowledge";

/// The knowledge service's state: the document store, the index and the
/// agent's chat sessions, beside the platform's ports.
pub struct KnowledgeService {
    pub state: AppState,
    pub drift: Arc<dyn DriftStore>,
    pub docs: Arc<dyn DocumentStore>,
    pub index: Arc<KnowledgeIndex>,
    pub sessions: Arc<SessionStore>,
    /// Syncs run one at a time (they rewrite shared documents such as an
    /// experiment's log).
    sync_lock: tokio::sync::Mutex<()>,
    /// Told after each sync (on AWS: the Knowledge Base ingests the bucket).
    after_sync: Option<Arc<dyn AfterSync>>,
    /// The Knowledge Transfer agent when it is not the built-in one (a
    /// Bedrock agent on AWS); set once at start-up.
    agent: std::sync::OnceLock<Arc<dyn westtek_assist::Agent>>,
}

/// Something to do after an environment's documents were synced: on AWS,
/// start the Bedrock Knowledge Base's ingestion of the bucket. It must not
/// block for long (start background work and return); failures are its own
/// to report.
#[async_trait::async_trait]
pub trait AfterSync: Send + Sync {
    async fn synced(&self, env: EnvironmentId, report: &sync::SyncReport);
}

/// A knowledge-library error as a domain error (paths are the caller's
/// input; everything else is internal).
pub fn knowledge_error(e: westtek_knowledge::Error) -> DomainError {
    match e {
        westtek_knowledge::Error::InvalidPath { reason, .. } => {
            DomainError::invalid("path", reason)
        }
        other => DomainError::internal(other),
    }
}

impl KnowledgeService {
    /// Documents and index in `dir` (`docs/`, `index/`), created if missing.
    ///
    /// # Errors
    /// When the folder or the index cannot be opened (another process holds
    /// the index).
    pub fn open_local(
        state: AppState,
        drift: Arc<dyn DriftStore>,
        dir: &Path,
    ) -> Result<Arc<Self>, westtek_knowledge::Error> {
        let docs = LocalFolderStore::new(dir.join("docs"))?;
        Self::open_with(state, drift, Arc::new(docs), &dir.join("index"), None)
    }

    /// Documents in `docs` (e.g. S3), the search index in `index_dir` (local:
    /// rebuilt by the next sync of each environment when lost), `after_sync`
    /// told after each sync.
    ///
    /// # Errors
    /// When the index cannot be opened (another process holds it).
    pub fn open_with(
        state: AppState,
        drift: Arc<dyn DriftStore>,
        docs: Arc<dyn DocumentStore>,
        index_dir: &Path,
        after_sync: Option<Arc<dyn AfterSync>>,
    ) -> Result<Arc<Self>, westtek_knowledge::Error> {
        let index = KnowledgeIndex::open(index_dir)?;
        Ok(Arc::new(KnowledgeService {
            state,
            drift,
            docs,
            index: Arc::new(index),
            sessions: Arc::new(SessionStore::default()),
            sync_lock: tokio::sync::Mutex::new(()),
            after_sync,
            agent: std::sync::OnceLock::new(),
        }))
    }

    /// Answers as the Knowledge Transfer agent with `agent` (a Bedrock
    /// agent) instead of the built-in one. Only the first call counts.
    pub fn use_agent(&self, agent: Arc<dyn westtek_assist::Agent>) {
        let _ = self.agent.set(agent);
    }

    /// The agent set by [`KnowledgeService::use_agent`], if any.
    pub fn remote_agent(&self) -> Option<Arc<dyn westtek_assist::Agent>> {
        self.agent.get().cloned()
    }

    /// Consumes `snapshot.created` (and `snapshot.restored`) from the bus and
    /// syncs the environment; re-subscribes with backoff when the
    /// subscription ends.
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let svc = Arc::clone(self);
        tokio::spawn(async move { svc.consume().await })
    }

    async fn consume(self: Arc<Self>) {
        let svc = Arc::clone(&self);
        westtek_platform::streams::consume_bus(self.state.clone(), SERVICE, move |ev| {
            let svc = Arc::clone(&svc);
            async move { svc.on_event(&ev).await }
        })
        .await;
    }

    /// Handles one event: a sync per new snapshot, at most once per event
    /// id (a redelivered event is recognised and skipped; the sync itself
    /// is idempotent too, so a crash between sync and mark only repeats it).
    pub async fn on_event(&self, ev: &DomainEvent) {
        if ev.event_type != types::SNAPSHOT_CREATED && ev.event_type != types::SNAPSHOT_RESTORED {
            return;
        }
        let Some(env) = ev
            .data
            .get("environment_id")
            .and_then(|v| v.as_str())
            .and_then(|s| EnvironmentId::parse(s).ok())
        else {
            return;
        };
        let mark = Write::MarkEventHandled {
            consumer: SERVICE.into(),
            event_id: ev.id.to_string(),
        };
        match self.sync_environment(env).await {
            Ok(report) => {
                tracing::info!(env = %env, documents = report.documents.len(), chunks = report.chunks,
                    redactions = report.redactions, skipped = report.skipped.len(), "knowledge synced");
                match self.state.store.commit(vec![mark], vec![]).await {
                    Ok(_) | Err(DomainError::Conflict(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "could not record a handled event"),
                }
            }
            Err(DomainError::NotFound { .. }) => {}
            Err(e) => tracing::warn!(error = %e, env = %env, "knowledge sync failed"),
        }
    }
}

/// OpenAPI of the service.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::transfer_summary, routes::transfer_package, routes::document, routes::search,
        routes::sync_now, routes::handover, routes::list_handovers, routes::get_handover,
        routes::set_checklist_item, routes::chat,
        collab::create_share, collab::list_shares, collab::revoke_share, collab::clone_share,
        collab::publish_template, collab::list_templates, collab::withdraw_template,
        collab::clone_template,
    ),
    tags(
        (name = "knowledge", description = "Knowledge base, transfer packages, handovers and the Knowledge Transfer agent"),
        (name = "collaboration", description = "Shares with other labs and templates")
    )
)]
pub struct KnowledgeApi;
