//! Translation of ECS and EFS SDK errors into `DomainError`.
//!
//! Policy: a failed AWS call while starting or stopping a server is
//! `Upstream` with code `jupyter_start_failed` / `jupyter_stop_failed`: the
//! message names the operation, the resource (cluster, family, file system),
//! AWS's error code and message, and for the common misconfigurations what
//! setting to fix. Transport failures carry the whole error chain (the SDK's
//! outer text is only "dispatch failure").

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use westtek_domain::DomainError;

/// Code of every start failure (the local runtime's).
pub const START_FAILED: &str = "jupyter_start_failed";
/// Code of a failed stop.
pub const STOP_FAILED: &str = "jupyter_stop_failed";

/// What went wrong in `op` on `what`, for a message.
pub(crate) fn describe<E, R>(op: &str, what: &str, e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().map(str::to_string);
    let detail = match e {
        SdkError::ServiceError(se) => se.err().message().unwrap_or("").to_string(),
        other => westtek_aws::error_chain(other),
    };
    let hint = match code.as_deref() {
        Some("ClusterNotFoundException") => {
            " (check WESTTEK_ECS_CLUSTER: the cluster does not exist in this account and region)"
        }
        Some("AccessDeniedException") => {
            " (the platform's role lacks this permission: deploy the CDK app's env-manager role)"
        }
        Some("FileSystemNotFound") => {
            " (check WESTTEK_ECS_EFS_FILE_SYSTEM_ID: no such EFS file system)"
        }
        _ => "",
    };
    match code {
        Some(c) => format!("ECS runtime: {op} on {what} failed: {c}: {detail}{hint}"),
        None => format!("ECS runtime: {op} on {what} failed: {detail}{hint}"),
    }
}

/// An `Upstream` start failure.
pub(crate) fn start_failed(message: impl Into<String>) -> DomainError {
    DomainError::Upstream {
        code: START_FAILED,
        message: message.into(),
    }
}
