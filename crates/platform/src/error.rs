//! The HTTP error type: every failure leaves as `application/problem+json`
//! with a stable `code`, the right status and the request id; internal
//! detail is logged, never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use westtek_domain::DomainError;

/// The body of every error response (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `https://westtek.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code; clients switch on this.
    pub code: String,
    /// What happened, safe to show to users.
    pub detail: String,
    /// The offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error a handler returns.
#[derive(Debug)]
pub enum ApiError {
    Domain(DomainError),
    /// A body or query that could not be read; `code` says how.
    BadRequest {
        status: StatusCode,
        code: &'static str,
        detail: String,
    },
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Domain(e)
    }
}

impl ApiError {
    /// Shorthand for a `Forbidden` domain error.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Domain(DomainError::Forbidden(msg.into()))
    }

    /// Shorthand for `NotFound`.
    pub fn not_found(kind: &'static str) -> Self {
        ApiError::Domain(DomainError::NotFound { kind })
    }

    /// The status, stable code, user-facing detail and field of this error.
    pub fn parts(&self) -> (StatusCode, String, String, Option<String>) {
        match self {
            ApiError::BadRequest {
                status,
                code,
                detail,
            } => (*status, (*code).into(), detail.clone(), None),
            ApiError::Domain(e) => match e {
                DomainError::Validation { field, message } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed".into(),
                    format!("{field}: {message}"),
                    Some(field.clone()),
                ),
                DomainError::NotFound { kind } => (
                    StatusCode::NOT_FOUND,
                    "not_found".into(),
                    format!("{kind} not found"),
                    None,
                ),
                DomainError::Conflict(m) => {
                    (StatusCode::CONFLICT, "conflict".into(), m.clone(), None)
                }
                DomainError::QuotaExceeded(m) => (
                    StatusCode::FORBIDDEN,
                    "quota_exceeded".into(),
                    m.clone(),
                    None,
                ),
                DomainError::RateLimited(m) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited".into(),
                    m.clone(),
                    None,
                ),
                DomainError::Unauthenticated(m) => (
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated".into(),
                    m.clone(),
                    None,
                ),
                DomainError::Forbidden(m) => {
                    (StatusCode::FORBIDDEN, "forbidden".into(), m.clone(), None)
                }
                DomainError::Upstream { code, message } => (
                    StatusCode::BAD_GATEWAY,
                    (*code).into(),
                    message.clone(),
                    None,
                ),
                DomainError::Internal(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal".into(),
                    "something went wrong on our side; it has been logged".into(),
                    None,
                ),
            },
        }
    }
}

/// Builds a problem response.
pub fn problem_response(
    status: StatusCode,
    code: &str,
    detail: &str,
    field: Option<String>,
) -> Response {
    let body = Problem {
        problem_type: format!("https://westtek.dev/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        code: code.to_string(),
        detail: detail.to_string(),
        field,
    };
    let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = (status, json).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Domain(DomainError::Internal(cause)) = &self {
            tracing::error!(%cause, "internal error");
        }
        let (status, code, detail, field) = self.parts();
        problem_response(status, &code, &detail, field)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match &r {
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::BytesRejection(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            _ => (StatusCode::BAD_REQUEST, "malformed_json"),
        };
        // serde's message names the field and problem; it never echoes values
        // beyond the offending token, so it is safe and useful to show.
        ApiError::BadRequest {
            status,
            code,
            detail: r.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_query",
            detail: r.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_path",
            detail: r.body_text(),
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
