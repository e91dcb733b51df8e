//! How AWS failures become the port's errors: every message names the
//! operation, the resource, AWS's error code and what to do about it.

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use westtek_domain::DomainError;

/// The `Upstream` code of a bus that cannot be reached or fails.
pub(crate) const UNAVAILABLE: &str = "event_bus_unavailable";
/// The `Upstream` code of an event EventBridge refused for good.
pub(crate) const REJECTED: &str = "event_bus_rejected";

/// AWS's error code of `e`, if it has one.
pub(crate) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    e.code().map(str::to_string)
}

/// `code: message` for a service error, or the whole cause chain for a
/// failure before or after the service answered (timeout, connection).
pub(crate) fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let SdkError::ServiceError(se) = e {
        let err = se.err();
        return format!(
            "{}: {}",
            err.code().unwrap_or("error"),
            err.message().unwrap_or("no message")
        );
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An `Upstream` error with code [`UNAVAILABLE`], logged as it is made.
pub(crate) fn unavailable(message: String) -> DomainError {
    tracing::warn!(error = %message, "event bus failure");
    DomainError::Upstream {
        code: UNAVAILABLE,
        message,
    }
}

/// An SQS operation on `queue_url` failed.
pub(crate) fn sqs<E, R>(op: &str, queue_url: &str, e: &SdkError<E, R>) -> DomainError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let hint = match code(e).as_deref() {
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => {
            " (the queue does not exist: check the group's queue URL in the bus's queue map, or create it with westtek_bus_aws::provision / the CDK app)"
        }
        Some("AccessDenied" | "AccessDeniedException") => {
            " (this identity needs sqs:ReceiveMessage, sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on the queue)"
        }
        Some("ReceiptHandleIsInvalid") => {
            " (the message was received again elsewhere after its visibility timeout; it will be handled there)"
        }
        _ => "",
    };
    unavailable(format!(
        "SQS {op} on {queue_url} failed: {}{hint}",
        describe(e)
    ))
}

/// An EventBridge operation on bus `bus` failed.
pub(crate) fn events<E, R>(op: &str, bus: &str, e: &SdkError<E, R>) -> DomainError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let hint = match code(e).as_deref() {
        Some("ResourceNotFoundException") => {
            " (the event bus does not exist: create it with westtek_bus_aws::provision / the CDK app, or fix the bus setting)"
        }
        Some("AccessDeniedException") => " (this identity needs events:PutEvents on the bus)",
        _ => "",
    };
    unavailable(format!(
        "EventBridge {op} on bus {bus} failed: {}{hint}",
        describe(e)
    ))
}
