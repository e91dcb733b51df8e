//! Extractors that turn every malformed input into the same problem+json
//! shape: JSON bodies (syntax, unknown fields, wrong types), query strings
//! and ids in paths.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use std::str::FromStr;
use westtek_domain::DomainError;

/// `axum::Json` with problem+json rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

/// `axum::extract::Query` with problem+json rejections.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(v))
    }
}

/// A single validated id from the path (`/{id}`); a malformed id is a 400
/// with code `invalid_id`.
#[derive(Debug, Clone, Copy)]
pub struct IdPath<T>(pub T);

impl<S, T> FromRequestParts<S> for IdPath<T>
where
    T: FromStr<Err = DomainError> + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await?;
        raw.parse::<T>()
            .map(IdPath)
            .map_err(|e| ApiError::BadRequest {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_id",
                detail: e.to_string(),
            })
    }
}

/// Parses an id found in a body, query or header: a malformed one is a 400
/// with code `invalid_id`, like ids in paths.
///
/// # Errors
/// `invalid_id` naming `field`.
pub fn parse_id<T: FromStr<Err = DomainError>>(field: &str, raw: &str) -> Result<T, ApiError> {
    raw.trim().parse::<T>().map_err(|_| ApiError::BadRequest {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_id",
        detail: format!("{field} must be a UUID"),
    })
}
