//! The audit trail over HTTP: filtered listing, compliance export (CSV or
//! JSON) and chain verification. Lab-scoped; IT admins see every lab.

use crate::auth::Caller;
use crate::dto::{AuditEntryResponse, AuditPage, AuditVerifyResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use westtek_domain::audit::verify_chain;
use westtek_domain::{AuditFilter, DomainError, LabId};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/audit", get(list))
        .route("/api/audit/export", get(export))
        .route("/api/audit/verify", get(verify))
}

/// Filters of the audit listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this lab (IT admins; others always see their own lab).
    pub lab_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    /// RFC 3339.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive.
    pub until: Option<DateTime<Utc>>,
    /// 1–1000, default 100.
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    /// Export only: `csv` (default) or `json`.
    pub format: Option<String>,
}

fn filter(caller: &Caller, q: &AuditQuery, max_limit: u32) -> ApiResult<AuditFilter> {
    let requested = q
        .lab_id
        .as_deref()
        .map(|v| crate::extract::parse_id::<LabId>("lab_id", v))
        .transpose()?;
    let lab_id = match (requested, caller.read_scope()?) {
        (Some(l), _) if caller.can_read(l) => Some(l),
        (Some(_), _) => return Err(ApiError::not_found("lab")),
        (None, scope) => scope.lab_filter(),
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > max_limit {
        return Err(DomainError::invalid("limit", format!("must be 1-{max_limit}")).into());
    }
    Ok(AuditFilter {
        lab_id,
        actor_name: q.actor.clone(),
        action: q.action.clone(),
        target_id: q.target_id.clone(),
        since: q.since,
        until: q.until,
        limit,
        offset: q.offset.unwrap_or(0),
    })
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = crate::error::Problem)))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let f = filter(&caller, &q, 1000)?;
    let page = state.store.list_audit(&f).await?;
    Ok(Json(AuditPage {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// Compliance export of the (filtered) trail as CSV or JSON, oldest first.
#[utoipa::path(get, path = "/api/audit/export", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "text/csv or application/json attachment"), (status = 422, body = crate::error::Problem)))]
pub async fn export(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let format = q.format.clone().unwrap_or_else(|| "csv".into());
    if format != "csv" && format != "json" {
        return Err(DomainError::invalid("format", "must be csv or json").into());
    }
    let mut f = filter(
        &caller,
        &AuditQuery {
            limit: Some(1),
            ..q
        },
        1000,
    )?;
    f.limit = u32::MAX;
    let mut entries: Vec<AuditEntryResponse> = state
        .store
        .list_audit(&f)
        .await?
        .items
        .into_iter()
        .map(Into::into)
        .collect();
    entries.reverse();
    let (body, ctype, ext) = if format == "json" {
        (
            serde_json::to_vec_pretty(&entries).map_err(DomainError::internal)?,
            "application/json",
            "json",
        )
    } else {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record([
            "seq",
            "id",
            "time",
            "actor_id",
            "actor_name",
            "lab_id",
            "action",
            "target_kind",
            "target_id",
            "request_id",
            "details",
            "prev_hash",
            "hash",
        ])
        .map_err(DomainError::internal)?;
        for e in &entries {
            w.write_record([
                e.seq.to_string(),
                e.id.clone(),
                e.time.to_rfc3339(),
                e.actor_id.clone().unwrap_or_default(),
                e.actor_name.clone(),
                e.lab_id.clone().unwrap_or_default(),
                e.action.clone(),
                e.target_kind.clone(),
                e.target_id.clone(),
                e.request_id.clone(),
                e.details.to_string(),
                e.prev_hash.clone(),
                e.hash.clone(),
            ])
            .map_err(DomainError::internal)?;
        }
        (
            w.into_inner().map_err(DomainError::internal)?,
            "text/csv; charset=utf-8",
            "csv",
        )
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"westtek-audit.{ext}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Verifies the whole hash chain (IT admins): names every edited, deleted
/// or reordered entry.
#[utoipa::path(get, path = "/api/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerifyResponse), (status = 403, body = crate::error::Problem)))]
pub async fn verify(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<AuditVerifyResponse>> {
    if !caller.principal.it_admin {
        return Err(ApiError::forbidden(
            "only IT admins verify the whole audit chain",
        ));
    }
    let (entries, head) = state.store.audit_chain().await?;
    let problems = verify_chain(&entries, head.as_ref());
    Ok(Json(AuditVerifyResponse {
        ok: problems.is_empty(),
        entries: entries.len() as u64,
        problems: problems.iter().map(ToString::to_string).collect(),
    }))
}
