//! Translation of DynamoDB SDK errors into `DomainError`.
//!
//! Policy: the port's own outcomes (`Conflict`, `NotFound`, `Stale`) are
//! decided by the callers from condition failures; everything else becomes
//! `Internal`, whose text (for logs) names the operation, the table, the
//! service's error code and message, and for a missing table how to create
//! it.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use westtek_domain::DomainError;

/// An `Internal` error for a failed DynamoDB call `op` on `table`.
pub(crate) fn dynamo_error<E, R>(table: &str, op: &str, e: SdkError<E, R>) -> DomainError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().map(str::to_string);
    let detail = match &e {
        SdkError::ServiceError(se) => se.err().message().unwrap_or("").to_string(),
        other => westtek_aws::error_chain(other),
    };
    match code.as_deref() {
        Some("ResourceNotFoundException") => DomainError::internal(format!(
            "DynamoDB {op} on table {table}: the table or one of its indexes does not exist \
             (ResourceNotFoundException: {detail}); create it with \
             westtek_drift_dynamodb::provision or the CDK app, or set the right table name"
        )),
        Some(c) => DomainError::internal(format!("DynamoDB {op} on table {table}: {c}: {detail}")),
        None => DomainError::internal(format!("DynamoDB {op} on table {table}: {detail}")),
    }
}
