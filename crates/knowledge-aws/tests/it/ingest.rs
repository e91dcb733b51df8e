//! The Knowledge Base sync on the SDK's mock client (`aws-smithy-mocks`):
//! moto does not implement `bedrock-agent` (StartIngestionJob answers 500),
//! so these tests feed the adapter Bedrock's response shapes built with the
//! SDK's own types (an `IngestionJob` with status, statistics and failure
//! reasons) and check the requests it makes.

use aws_sdk_bedrockagent::operation::get_ingestion_job::GetIngestionJobOutput;
use aws_sdk_bedrockagent::operation::start_ingestion_job::{
    StartIngestionJobError, StartIngestionJobOutput,
};
use aws_sdk_bedrockagent::types::error::{ConflictException, ResourceNotFoundException};
use aws_sdk_bedrockagent::types::{IngestionJob, IngestionJobStatistics, IngestionJobStatus};
use aws_sdk_bedrockagent::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::error::ErrorMetadata;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use westtek_knowledge_aws::{
    BedrockKbSync, IngestionError, IngestionOptions, IngestionProgress, KnowledgeBaseSync,
};

const KB: &str = "KB12345678";
const DS: &str = "DS12345678";
const JOB: &str = "JOB1234567";

fn job(status: IngestionJobStatus, scanned: i64, failed: i64, reasons: &[&str]) -> IngestionJob {
    let now = aws_smithy_types::DateTime::from_secs(1_765_000_000);
    let mut b = IngestionJob::builder()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .ingestion_job_id(JOB)
        .status(status)
        .started_at(now)
        .updated_at(now)
        .statistics(
            IngestionJobStatistics::builder()
                .number_of_documents_scanned(scanned)
                .number_of_new_documents_indexed(scanned - failed)
                .number_of_documents_failed(failed)
                .build(),
        );
    for r in reasons {
        b = b.failure_reasons(*r);
    }
    b.build().unwrap()
}

fn start_ok() -> Rule {
    mock!(Client::start_ingestion_job)
        .match_requests(|r| r.knowledge_base_id() == Some(KB) && r.data_source_id() == Some(DS))
        .then_output(|| {
            StartIngestionJobOutput::builder()
                .ingestion_job(job(IngestionJobStatus::Starting, 0, 0, &[]))
                .build()
        })
}

fn poll(
    status: IngestionJobStatus,
    scanned: i64,
    failed: i64,
    reasons: &'static [&'static str],
) -> Rule {
    mock!(Client::get_ingestion_job)
        .match_requests(|r| {
            r.knowledge_base_id() == Some(KB)
                && r.data_source_id() == Some(DS)
                && r.ingestion_job_id() == Some(JOB)
        })
        .then_output(move || {
            GetIngestionJobOutput::builder()
                .ingestion_job(job(status.clone(), scanned, failed, reasons))
                .build()
        })
}

fn sync(client: Client, max_wait: Duration) -> BedrockKbSync {
    BedrockKbSync::with_client(
        client,
        KB,
        DS,
        IngestionOptions {
            poll_interval: Duration::from_millis(5),
            max_wait,
        },
    )
}

async fn run(
    s: &BedrockKbSync,
) -> (
    Result<IngestionProgress, IngestionError>,
    Vec<IngestionProgress>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let result = s
        .ingest_with_progress(&move |p| sink.lock().unwrap().push(p.clone()))
        .await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

#[tokio::test]
async fn a_sync_starts_a_job_and_polls_it_until_complete_reporting_progress() {
    let rules = [
        start_ok(),
        poll(IngestionJobStatus::InProgress, 3, 0, &[]),
        poll(IngestionJobStatus::InProgress, 7, 0, &[]),
        poll(IngestionJobStatus::Complete, 12, 0, &[]),
    ];
    let client = mock_client!(aws_sdk_bedrockagent, RuleMode::Sequential, &rules);
    let (result, seen) = run(&sync(client, Duration::from_secs(10))).await;
    let done = result.unwrap();
    assert_eq!(done.status, "COMPLETE");
    assert_eq!(
        (done.job_id.as_str(), done.scanned, done.indexed_new),
        (JOB, 12, 12)
    );
    let statuses: Vec<&str> = seen.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["STARTING", "IN_PROGRESS", "IN_PROGRESS", "COMPLETE"]
    );
    assert_eq!(
        seen.iter().map(|p| p.scanned).collect::<Vec<_>>(),
        [0, 3, 7, 12]
    );
    assert!(
        rules.iter().all(|r| r.num_calls() == 1),
        "each response used once"
    );
}

#[tokio::test]
async fn a_failed_job_is_an_error_carrying_bedrocks_failure_reasons() {
    let rules = [
        start_ok(),
        poll(IngestionJobStatus::InProgress, 2, 0, &[]),
        poll(
            IngestionJobStatus::Failed,
            4,
            2,
            &[
                "Encountered error: Ignored 2 files as their file size exceeded the limit",
                "The knowledge base storage configuration is invalid",
            ],
        ),
    ];
    let client = mock_client!(aws_sdk_bedrockagent, RuleMode::Sequential, &rules);
    let (result, _) = run(&sync(client, Duration::from_secs(10))).await;
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(JOB) && text.contains(KB), "{text}");
    assert!(
        text.contains("exceeded the limit") && text.contains("storage configuration is invalid"),
        "{text}"
    );
    match err {
        IngestionError::Failed {
            reasons, progress, ..
        } => {
            assert_eq!(reasons.len(), 2);
            assert_eq!((progress.scanned, progress.failed), (4, 2));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_job_still_running_when_the_wait_runs_out_is_reported_with_its_id() {
    let rules = [
        start_ok(),
        mock!(Client::get_ingestion_job).then_output(|| {
            GetIngestionJobOutput::builder()
                .ingestion_job(job(IngestionJobStatus::InProgress, 1, 0, &[]))
                .build()
        }),
    ];
    let client = mock_client!(aws_sdk_bedrockagent, RuleMode::MatchAny, &rules);
    let started = std::time::Instant::now();
    let (result, seen) = run(&sync(client, Duration::from_millis(60))).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the wait is bounded"
    );
    match result.unwrap_err() {
        IngestionError::TimedOut { job_id, status, .. } => {
            assert_eq!((job_id.as_str(), status.as_str()), (JOB, "IN_PROGRESS"));
        }
        other => panic!("{other:?}"),
    }
    assert!(seen.len() >= 2, "progress was reported while waiting");
}

#[tokio::test]
async fn a_data_source_busy_with_another_job_is_waited_for() {
    let rules = [
        mock!(Client::start_ingestion_job).then_error(|| {
            StartIngestionJobError::ConflictException(
                ConflictException::builder()
                    .message("There is already an ongoing ingestion job for data source DS12345678")
                    .meta(ErrorMetadata::builder().code("ConflictException").build())
                    .build(),
            )
        }),
        start_ok(),
        poll(IngestionJobStatus::Complete, 5, 0, &[]),
    ];
    let client = mock_client!(aws_sdk_bedrockagent, RuleMode::Sequential, &rules);
    let (result, _) = run(&sync(client, Duration::from_secs(10))).await;
    assert_eq!(result.unwrap().status, "COMPLETE");
    assert_eq!(rules[0].num_calls(), 1);
}

#[tokio::test]
async fn an_unknown_knowledge_base_is_reported_naming_the_settings() {
    let rules = [mock!(Client::start_ingestion_job).then_error(|| {
        StartIngestionJobError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("Knowledge base KB12345678 does not exist")
                .meta(
                    ErrorMetadata::builder()
                        .code("ResourceNotFoundException")
                        .message("Knowledge base KB12345678 does not exist")
                        .build(),
                )
                .build(),
        )
    })];
    let client = mock_client!(aws_sdk_bedrockagent, RuleMode::Sequential, &rules);
    let err = sync(client, Duration::from_secs(10))
        .ingest()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ResourceNotFoundException") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        err.contains("knowledge base and data source id settings"),
        "{err}"
    );
}

#[tokio::test]
async fn a_job_stopped_by_someone_else_is_an_error_naming_it() {
    let rules = [start_ok(), poll(IngestionJobStatus::Stopped, 1, 0, &[])];
    let client = mock_client!(aws_sdk_bedrockagent, RuleMode::Sequential, &rules);
    let err = sync(client, Duration::from_secs(10))
        .ingest()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IngestionError::Stopped { progress, .. } if progress.job_id == JOB),
        "{err:?}"
    );
    assert!(err.to_string().contains("stopped (STOPPED)"), "{err}");
}
