//! The Bedrock Knowledge Base sync: after the documents of a sync are in the
//! bucket, the Knowledge Base re-reads its S3 data source
//! (`StartIngestionJob`) and the caller waits for the job
//! (`GetIngestionJob` every [`IngestionOptions::poll_interval`]) until it is
//! `COMPLETE`, `FAILED` or `STOPPED`.
//!
//! Policy: the wait is bounded ([`IngestionOptions::max_wait`]); a job still
//! running then is reported as [`IngestionError::TimedOut`] with its id (it
//! goes on in Bedrock, and the next sync's job picks up anything it
//! missed). Bedrock runs one job per data source at a time: a start refused
//! with `ConflictException` is retried within the same bound. Every poll is
//! reported as [`IngestionProgress`] (to the caller's callback and to the
//! log). A failed job's error carries Bedrock's `failureReasons`.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_bedrockagent::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockagent::types::{IngestionJob, IngestionJobStatus};
use aws_sdk_bedrockagent::Client;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// How a sync waits for its ingestion job.
#[derive(Clone, Debug)]
pub struct IngestionOptions {
    /// Time between two `GetIngestionJob` calls.
    pub poll_interval: Duration,
    /// Longest wait, from the first `StartIngestionJob` call.
    pub max_wait: Duration,
}

impl Default for IngestionOptions {
    fn default() -> Self {
        IngestionOptions {
            poll_interval: Duration::from_secs(5),
            max_wait: Duration::from_secs(30 * 60),
        }
    }
}

/// Where an ingestion job stands (one per poll).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngestionProgress {
    /// The job's id.
    pub job_id: String,
    /// Bedrock's status: `STARTING`, `IN_PROGRESS`, `COMPLETE`, `FAILED`,
    /// `STOPPING`, `STOPPED`.
    pub status: String,
    /// Documents the job has looked at so far.
    pub scanned: i64,
    /// Documents newly indexed.
    pub indexed_new: i64,
    /// Documents re-indexed because they changed.
    pub indexed_modified: i64,
    /// Documents removed from the index (deleted from the bucket).
    pub deleted: i64,
    /// Documents that could not be indexed.
    pub failed: i64,
    /// Time since the sync started.
    pub elapsed: Duration,
}

impl IngestionProgress {
    fn of(job: &IngestionJob, elapsed: Duration) -> Self {
        let s = job.statistics();
        IngestionProgress {
            job_id: job.ingestion_job_id().to_string(),
            status: job.status().as_str().to_string(),
            scanned: s.map_or(0, |s| s.number_of_documents_scanned()),
            indexed_new: s.map_or(0, |s| s.number_of_new_documents_indexed()),
            indexed_modified: s.map_or(0, |s| s.number_of_modified_documents_indexed()),
            deleted: s.map_or(0, |s| s.number_of_documents_deleted()),
            failed: s.map_or(0, |s| s.number_of_documents_failed()),
            elapsed,
        }
    }
}

/// Why a Knowledge Base sync did not complete.
#[derive(Debug, thiserror::Error)]
pub enum IngestionError {
    /// `StartIngestionJob` was refused.
    #[error("StartIngestionJob on knowledge base {knowledge_base_id}, data source {data_source_id} failed: {detail}")]
    Start {
        /// The Knowledge Base.
        knowledge_base_id: String,
        /// Its data source.
        data_source_id: String,
        /// Bedrock's error code and message, and what to check.
        detail: String,
    },
    /// `GetIngestionJob` failed.
    #[error("GetIngestionJob for ingestion job {job_id} failed: {detail}")]
    Poll {
        /// The job.
        job_id: String,
        /// Bedrock's error code and message.
        detail: String,
    },
    /// The job ended `FAILED`.
    #[error("ingestion job {} of knowledge base {knowledge_base_id} failed: {}", progress.job_id, if reasons.is_empty() { "Bedrock gave no reason".to_string() } else { reasons.join("; ") })]
    Failed {
        /// The Knowledge Base.
        knowledge_base_id: String,
        /// Bedrock's `failureReasons`.
        reasons: Vec<String>,
        /// The job's last state.
        progress: IngestionProgress,
    },
    /// The job was stopped (by someone else) before it completed.
    #[error("ingestion job {} of knowledge base {knowledge_base_id} was stopped ({}) before completing; the next sync starts a new one", progress.job_id, progress.status)]
    Stopped {
        /// The Knowledge Base.
        knowledge_base_id: String,
        /// The job's last state.
        progress: IngestionProgress,
    },
    /// The job did not finish within [`IngestionOptions::max_wait`].
    #[error("ingestion job {job_id} of knowledge base {knowledge_base_id} is still {status} after {waited:?}; it goes on in Bedrock (check it with GetIngestionJob) and the next sync picks up anything it misses")]
    TimedOut {
        /// The Knowledge Base.
        knowledge_base_id: String,
        /// The job (empty when another job kept the data source busy and
        /// none of ours started).
        job_id: String,
        /// Its last status.
        status: String,
        /// How long the sync waited.
        waited: Duration,
    },
}

/// What the knowledge service calls after each sync: re-ingest the
/// Knowledge Base and wait for it.
#[async_trait]
pub trait KnowledgeBaseSync: Send + Sync {
    /// Starts an ingestion job and waits for it to complete.
    ///
    /// # Errors
    /// [`IngestionError`]: the start refused, a poll failed, the job failed
    /// (with Bedrock's reasons) or was stopped, or the wait ran out.
    async fn ingest(&self) -> Result<IngestionProgress, IngestionError>;
}

/// [`KnowledgeBaseSync`] on Bedrock (`bedrock-agent`).
#[derive(Clone, Debug)]
pub struct BedrockKbSync {
    client: Client,
    knowledge_base_id: String,
    data_source_id: String,
    options: IngestionOptions,
}

impl BedrockKbSync {
    /// For `knowledge_base_id`'s data source `data_source_id`, from the
    /// standard AWS environment.
    pub async fn from_env(
        knowledge_base_id: &str,
        data_source_id: &str,
        options: IngestionOptions,
    ) -> Self {
        let config = westtek_aws::shared_config(5).await;
        Self::with_config(&config, knowledge_base_id, data_source_id, options)
    }

    /// With an SDK configuration of the caller's.
    pub fn with_config(
        config: &SdkConfig,
        knowledge_base_id: &str,
        data_source_id: &str,
        options: IngestionOptions,
    ) -> Self {
        Self::with_client(
            Client::new(config),
            knowledge_base_id,
            data_source_id,
            options,
        )
    }

    /// Over a client configured by the caller.
    pub fn with_client(
        client: Client,
        knowledge_base_id: &str,
        data_source_id: &str,
        options: IngestionOptions,
    ) -> Self {
        BedrockKbSync {
            client,
            knowledge_base_id: knowledge_base_id.to_string(),
            data_source_id: data_source_id.to_string(),
            options,
        }
    }

    /// [`KnowledgeBaseSync::ingest`], calling `on_progress` after the start
    /// and after every poll.
    ///
    /// # Errors
    /// As [`KnowledgeBaseSync::ingest`].
    #[tracing::instrument(skip(self, on_progress), fields(kb = %self.knowledge_base_id, data_source = %self.data_source_id))]
    pub async fn ingest_with_progress(
        &self,
        on_progress: &(dyn Fn(&IngestionProgress) + Send + Sync),
    ) -> Result<IngestionProgress, IngestionError> {
        let started = Instant::now();
        let deadline = started + self.options.max_wait;
        let mut job = self.start(deadline, started).await?;
        loop {
            let progress = IngestionProgress::of(&job, started.elapsed());
            tracing::info!(job = %progress.job_id, status = %progress.status, scanned = progress.scanned,
                new = progress.indexed_new, modified = progress.indexed_modified,
                deleted = progress.deleted, failed = progress.failed, "knowledge base ingestion");
            on_progress(&progress);
            match job.status() {
                IngestionJobStatus::Complete => return Ok(progress),
                IngestionJobStatus::Failed => {
                    return Err(IngestionError::Failed {
                        knowledge_base_id: self.knowledge_base_id.clone(),
                        reasons: job.failure_reasons().to_vec(),
                        progress,
                    })
                }
                IngestionJobStatus::Stopped => {
                    return Err(IngestionError::Stopped {
                        knowledge_base_id: self.knowledge_base_id.clone(),
                        progress,
                    })
                }
                _ => {}
            }
            if Instant::now() + self.options.poll_interval > deadline {
                return Err(IngestionError::TimedOut {
                    knowledge_base_id: self.knowledge_base_id.clone(),
                    job_id: progress.job_id,
                    status: progress.status,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(self.options.poll_interval).await;
            job = self.poll(&progress.job_id).await?;
        }
    }

    /// Starts a job, waiting while another one holds the data source.
    async fn start(
        &self,
        deadline: Instant,
        started: Instant,
    ) -> Result<IngestionJob, IngestionError> {
        loop {
            let sent = self
                .client
                .start_ingestion_job()
                .knowledge_base_id(&self.knowledge_base_id)
                .data_source_id(&self.data_source_id)
                .description("westtek knowledge sync")
                .send()
                .await;
            let err = match sent {
                Ok(out) => {
                    return out
                        .ingestion_job()
                        .cloned()
                        .ok_or_else(|| IngestionError::Start {
                            knowledge_base_id: self.knowledge_base_id.clone(),
                            data_source_id: self.data_source_id.clone(),
                            detail: "the response names no ingestion job".into(),
                        })
                }
                Err(e) => e,
            };
            let service = err.as_service_error();
            let busy = service.is_some_and(|e| e.is_conflict_exception());
            if busy && Instant::now() + self.options.poll_interval <= deadline {
                tracing::info!(
                    "another ingestion job holds the data source; waiting to start ours"
                );
                tokio::time::sleep(self.options.poll_interval).await;
                continue;
            }
            if busy {
                return Err(IngestionError::TimedOut {
                    knowledge_base_id: self.knowledge_base_id.clone(),
                    job_id: String::new(),
                    status: "waiting for another job of the data source".into(),
                    waited: started.elapsed(),
                });
            }
            let hint = match service {
                Some(e) if e.is_resource_not_found_exception() || e.is_validation_exception() => {
                    "; check the knowledge base and data source id settings"
                }
                Some(e) if e.is_access_denied_exception() => {
                    "; the role needs bedrock:StartIngestionJob and bedrock:GetIngestionJob on the knowledge base"
                }
                _ => "",
            };
            return Err(IngestionError::Start {
                knowledge_base_id: self.knowledge_base_id.clone(),
                data_source_id: self.data_source_id.clone(),
                detail: format!("{}{hint}", describe(&err)),
            });
        }
    }

    async fn poll(&self, job_id: &str) -> Result<IngestionJob, IngestionError> {
        let out = self
            .client
            .get_ingestion_job()
            .knowledge_base_id(&self.knowledge_base_id)
            .data_source_id(&self.data_source_id)
            .ingestion_job_id(job_id)
            .send()
            .await
            .map_err(|e| IngestionError::Poll {
                job_id: job_id.to_string(),
                detail: describe(&e),
            })?;
        out.ingestion_job()
            .cloned()
            .ok_or_else(|| IngestionError::Poll {
                job_id: job_id.to_string(),
                detail: "the response names no ingestion job".into(),
            })
    }
}

#[async_trait]
impl KnowledgeBaseSync for BedrockKbSync {
    async fn ingest(&self) -> Result<IngestionProgress, IngestionError> {
        self.ingest_with_progress(&|_| {}).await
    }
}

/// An SDK error as `Code: message` (or the transport error and its causes).
pub(crate) fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match e {
        SdkError::ServiceError(se) => match (se.err().code(), se.err().message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            (None, _) => se.err().to_string(),
        },
        other => westtek_aws::error_chain(other),
    }
}
