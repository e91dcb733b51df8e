//! How an AWS call's failure becomes a delivery [`Outcome`]: what is worth
//! retrying, and the words a dead letter carries.
//!
//! Policy: throttling, 5xx answers, timeouts and connection failures are
//! retried (per the router's [`westtek_alerts::RetryPolicy`]; the SDK's own
//! retries are off, so a dead letter's attempt count is the real one);
//! everything else the service refuses (an unverified sender, a missing
//! topic, a denied permission, a bad phone number) is permanent: the same
//! request would be refused again. The error text keeps the service's code
//! and message, and adds how to fix the usual causes.

use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use westtek_alerts::retry::Outcome;

/// Service error codes that mean "slow down" or "try later".
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "Throttled",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "KMSThrottling",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// The outcome of a failed `operation` (e.g. "SES SendEmail"); `hint`
/// turns a service error code into advice, when there is some.
pub(crate) fn outcome<E>(
    operation: &str,
    e: &SdkError<E>,
    hint: impl Fn(&str) -> Option<&'static str>,
) -> Outcome
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = e.code().unwrap_or("unknown error");
            let message = e.message().unwrap_or("no message");
            let mut error = format!("{operation} refused ({code}, HTTP {status}): {message}");
            if let Some(h) = hint(code) {
                error.push_str(" — ");
                error.push_str(h);
            }
            if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code) {
                Outcome::Retry {
                    error,
                    status: Some(status),
                    retry_after: None,
                }
            } else {
                Outcome::Permanent {
                    error,
                    status: Some(status),
                }
            }
        }
        SdkError::ConstructionFailure(_) => Outcome::Permanent {
            error: format!(
                "{operation}: the request could not be built: {}",
                DisplayErrorContext(e)
            ),
            status: None,
        },
        _ => Outcome::Retry {
            error: format!(
                "{operation} failed: {} (check the network, the region and AWS_ENDPOINT_URL)",
                DisplayErrorContext(e)
            ),
            status: e.raw_response().map(|r| r.status().as_u16()),
            retry_after: None,
        },
    }
}

/// Control characters replaced by spaces, so a service message cannot add a
/// line to a log or a dead letter.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
