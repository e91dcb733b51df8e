//! Collaboration: shares of environments, snapshots and templates with
//! other labs, and templates (snapshots published read-only) that other
//! labs clone into environments of their own.
//!
//! Policy: shares are made by the resource's owner or a lab admin of its
//! lab, point at one other lab, allow `read` or `clone`, and may expire; a
//! share grants nothing once expired or revoked. A share, an access through
//! it and a clone are audited on both labs' trails (same request id).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use westtek_domain::ports::Write;
use westtek_domain::{
    DomainError, LabId, Share, ShareFilter, ShareId, SharePermission, ShareResource, SnapshotId,
    SnapshotStatus, Template, TemplateId,
};
use westtek_env_manager::environments::operable;
use westtek_platform::auth::Caller;
use westtek_platform::extract::{parse_id, ApiJson, ApiQuery, IdPath};
use westtek_platform::grants::share_audit;
use westtek_platform::{ApiError, ApiResult, AppState};
use westtek_snapshots::routes::{latest_complete, readable, restore_as_new, source_environment};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/collaboration/share", post(create_share))
        .route("/api/collaboration/shares", get(list_shares))
        .route("/api/collaboration/shares/{id}", delete(revoke_share))
        .route("/api/collaboration/shares/{id}/clone", post(clone_share))
        .route(
            "/api/collaboration/templates",
            get(list_templates).post(publish_template),
        )
        .route(
            "/api/collaboration/templates/{id}",
            delete(withdraw_template),
        )
        .route(
            "/api/collaboration/templates/{id}/clone",
            post(clone_template),
        )
}

/// A share to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// `environment` (default), `snapshot` or `template`.
    pub resource_type: Option<String>,
    /// The id of what to share.
    pub resource_id: Option<String>,
    /// The seed's field: the environment to share (same as `resource_id`
    /// with `resource_type` `environment`).
    pub environment_id: Option<String>,
    /// The lab to share with: its id or name.
    pub target_lab: String,
    /// `read` (default) or `clone`.
    pub permission: Option<String>,
    /// When the share ends (default: never, until revoked).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A share.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShareResponse {
    pub id: String,
    pub owner_lab: String,
    pub owner_lab_name: String,
    pub target_lab: String,
    pub target_lab_name: String,
    /// `environment`, `snapshot` or `template`.
    pub resource_type: String,
    pub resource_id: String,
    /// What it is called (environment or template name, snapshot date).
    pub resource_name: String,
    /// `read` or `clone`.
    pub permission: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Grants access now.
    pub active: bool,
}

fn enum_text<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn lab_by_id_or_name(state: &AppState, raw: &str) -> ApiResult<LabId> {
    let lab = match LabId::parse(raw) {
        Ok(id) => state.store.get_lab(id).await.ok(),
        Err(_) => state.store.find_lab_by_name(raw.trim()).await?,
    };
    lab.map(|l| l.id)
        .ok_or_else(|| DomainError::invalid("target_lab", "no such lab").into())
}

async fn resource_name(state: &AppState, s: &Share) -> String {
    let id = s.resource_id.as_str();
    match s.resource {
        ShareResource::Environment => match westtek_domain::EnvironmentId::parse(id) {
            Ok(e) => state
                .store
                .get_environment(e)
                .await
                .map(|e| e.name.as_str().to_string())
                .unwrap_or_else(|_| "(deleted environment)".into()),
            Err(_) => String::new(),
        },
        ShareResource::Snapshot => match SnapshotId::parse(id) {
            Ok(x) => state
                .store
                .get_snapshot(x)
                .await
                .map(|s| format!("snapshot of {}", s.timestamp.format("%Y-%m-%d %H:%M")))
                .unwrap_or_else(|_| "(deleted snapshot)".into()),
            Err(_) => String::new(),
        },
        ShareResource::Template => match TemplateId::parse(id) {
            Ok(t) => state
                .store
                .get_template(t)
                .await
                .map(|t| t.name)
                .unwrap_or_else(|_| "(deleted template)".into()),
            Err(_) => String::new(),
        },
    }
}

async fn share_response(
    state: &AppState,
    s: &Share,
    names: &mut BTreeMap<LabId, String>,
) -> ShareResponse {
    for lab in [s.owner_lab, s.target_lab] {
        if let std::collections::btree_map::Entry::Vacant(slot) = names.entry(lab) {
            let n = state
                .store
                .get_lab(lab)
                .await
                .map(|l| l.name.as_str().to_string())
                .unwrap_or_default();
            slot.insert(n);
        }
    }
    ShareResponse {
        id: s.id.to_string(),
        owner_lab: s.owner_lab.to_string(),
        owner_lab_name: names.get(&s.owner_lab).cloned().unwrap_or_default(),
        target_lab: s.target_lab.to_string(),
        target_lab_name: names.get(&s.target_lab).cloned().unwrap_or_default(),
        resource_type: enum_text(&s.resource),
        resource_id: s.resource_id.clone(),
        resource_name: resource_name(state, s).await,
        permission: enum_text(&s.permission),
        created_at: s.created_at,
        expires_at: s.expires_at,
        revoked_at: s.revoked_at,
        active: s.is_active(state.clock.now()),
    }
}

/// The lab owning a resource, after checking the caller may share it (its
/// owner or a lab admin).
async fn owning_lab(
    state: &AppState,
    caller: &Caller,
    resource: ShareResource,
    id: &str,
) -> ApiResult<LabId> {
    match resource {
        ShareResource::Environment => {
            let (env, _) = operable(state, caller, parse_id("resource_id", id)?).await?;
            Ok(env.lab_id)
        }
        ShareResource::Snapshot => {
            let s = readable(state, caller, parse_id("resource_id", id)?).await?;
            let scope = caller.write_scope_for(s.lab_id)?;
            if s.created_by != caller.principal.user_id && !scope.is_lab_admin() {
                return Err(ApiError::forbidden(
                    "only the snapshot's author or a lab admin may share it",
                ));
            }
            Ok(s.lab_id)
        }
        ShareResource::Template => {
            let t = state
                .store
                .get_template(parse_id("resource_id", id)?)
                .await?;
            if t.withdrawn_at.is_some() || !caller.can_read(t.lab_id) {
                return Err(ApiError::not_found("template"));
            }
            let scope = caller.write_scope_for(t.lab_id)?;
            if t.published_by != caller.principal.user_id && !scope.is_lab_admin() {
                return Err(ApiError::forbidden(
                    "only the template's publisher or a lab admin may share it",
                ));
            }
            Ok(t.lab_id)
        }
    }
}

/// Shares an environment (seed path), a snapshot or a template with
/// another lab, for `read` or `clone`, until `expires_at` or revoked.
/// Audited on both labs' trails.
#[utoipa::path(post, path = "/api/collaboration/share", tag = "collaboration", request_body = ShareRequest,
    responses((status = 201, body = ShareResponse), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem), (status = 422, body = westtek_platform::Problem)))]
pub async fn create_share(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ShareRequest>,
) -> ApiResult<(StatusCode, Json<ShareResponse>)> {
    let resource = match req.resource_type.as_deref().unwrap_or("environment") {
        "environment" => ShareResource::Environment,
        "snapshot" => ShareResource::Snapshot,
        "template" => ShareResource::Template,
        _ => {
            return Err(DomainError::invalid(
                "resource_type",
                "must be environment, snapshot or template",
            )
            .into())
        }
    };
    let id = match (&req.resource_id, &req.environment_id) {
        (Some(r), None) => r.clone(),
        (None, Some(e)) if resource == ShareResource::Environment => e.clone(),
        (Some(r), Some(e)) if r == e && resource == ShareResource::Environment => r.clone(),
        _ => {
            return Err(DomainError::invalid(
                "resource_id",
                "give resource_id (or environment_id for an environment)",
            )
            .into())
        }
    };
    let permission = match req.permission.as_deref().unwrap_or("read") {
        "read" => SharePermission::Read,
        "clone" => SharePermission::Clone,
        _ => return Err(DomainError::invalid("permission", "must be read or clone").into()),
    };
    let owner = owning_lab(&state, &caller, resource, &id).await?;
    let target = lab_by_id_or_name(&state, &req.target_lab).await?;
    if target == owner {
        return Err(DomainError::invalid("target_lab", "is the resource's own lab").into());
    }
    let now = state.clock.now();
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(DomainError::invalid("expires_at", "must be in the future").into());
    }
    let share = Share {
        id: ShareId::new(),
        owner_lab: owner,
        target_lab: target,
        resource,
        resource_id: id.clone(),
        permission,
        created_by: caller.principal.user_id,
        created_at: now,
        expires_at: req.expires_at,
        revoked_at: None,
        revoked_by: None,
    };
    let kind = enum_text(&resource);
    state
        .store
        .commit(
            vec![Write::PutShare(share.clone())],
            share_audit(&caller, &share, "share.create", &kind, &id),
        )
        .await?;
    let mut names = BTreeMap::new();
    Ok((
        StatusCode::CREATED,
        Json(share_response(&state, &share, &mut names).await),
    ))
}

/// `?direction=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShareListQuery {
    /// `given` (the lab's shares with others, including expired and
    /// revoked ones), `received` (active shares with the lab), or `all`
    /// (default).
    pub direction: Option<String>,
}

/// Shares the caller's lab gave and received.
#[utoipa::path(get, path = "/api/collaboration/shares", tag = "collaboration", params(ShareListQuery),
    responses((status = 200, body = [ShareResponse]), (status = 422, body = westtek_platform::Problem)))]
pub async fn list_shares(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ShareListQuery>,
) -> ApiResult<Json<Vec<ShareResponse>>> {
    let lab = caller.write_scope()?.lab;
    let (given, received) = match q.direction.as_deref().unwrap_or("all") {
        "given" => (true, false),
        "received" => (false, true),
        "all" => (true, true),
        _ => {
            return Err(DomainError::invalid("direction", "must be given, received or all").into())
        }
    };
    let mut out = Vec::new();
    let mut names = BTreeMap::new();
    if given {
        let list = state
            .store
            .list_shares(&ShareFilter {
                owner_lab: Some(lab),
                ..Default::default()
            })
            .await?;
        for s in &list {
            out.push(share_response(&state, s, &mut names).await);
        }
    }
    if received {
        let list = state
            .store
            .list_shares(&ShareFilter {
                target_lab: Some(lab),
                active_at: Some(state.clock.now()),
                ..Default::default()
            })
            .await?;
        for s in &list {
            out.push(share_response(&state, s, &mut names).await);
        }
    }
    Ok(Json(out))
}

/// Revokes a share: the owner lab's sharer or a lab admin. Audited on both
/// trails.
#[utoipa::path(delete, path = "/api/collaboration/shares/{id}", tag = "collaboration", params(("id" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem)))]
pub async fn revoke_share(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<ShareId>,
) -> ApiResult<StatusCode> {
    let mut share = state.store.get_share(id).await?;
    if !caller.can_read(share.owner_lab) {
        return Err(ApiError::not_found("share"));
    }
    let scope = caller.write_scope_for(share.owner_lab)?;
    if share.created_by != caller.principal.user_id && !scope.is_lab_admin() {
        return Err(ApiError::forbidden(
            "only who made the share or a lab admin may revoke it",
        ));
    }
    if share.revoked_at.is_some() {
        return Ok(StatusCode::NO_CONTENT);
    }
    share.revoked_at = Some(state.clock.now());
    share.revoked_by = Some(caller.principal.user_id);
    let kind = enum_text(&share.resource);
    let rid = share.resource_id.clone();
    state
        .store
        .commit(
            vec![Write::PutShare(share.clone())],
            share_audit(&caller, &share, "share.revoke", &kind, &rid),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A clone to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    /// Name of the new environment in the caller's lab.
    pub name: Option<String>,
    /// For a shared environment: which of its snapshots (default: the newest complete one).
    pub snapshot_id: Option<String>,
}

/// Clones what a `clone` share gives into a new environment of the caller's
/// lab (a restore of the snapshot). Audited on both trails. Answers like a
/// restore: 202 with the job.
#[utoipa::path(post, path = "/api/collaboration/shares/{id}/clone", tag = "collaboration", params(("id" = String, Path)),
    request_body = CloneRequest,
    responses((status = 202, body = westtek_snapshots::dto::RestoreAccepted), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem), (status = 409, body = westtek_platform::Problem)))]
pub async fn clone_share(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<ShareId>,
    ApiJson(req): ApiJson<CloneRequest>,
) -> ApiResult<Response> {
    let share = state.store.get_share(id).await?;
    let now = state.clock.now();
    if !share.is_active(now) || caller.principal.role_in(share.target_lab).is_none() {
        return Err(ApiError::not_found("share"));
    }
    let scope = caller.write_scope_for(share.target_lab)?;
    if !share.allows_clone() {
        return Err(ApiError::forbidden(
            "this share allows reading only, not cloning",
        ));
    }
    let snapshot = match share.resource {
        ShareResource::Environment => {
            let env = parse_id("resource_id", &share.resource_id)?;
            match &req.snapshot_id {
                Some(s) => {
                    let s = state
                        .store
                        .get_snapshot(parse_id("snapshot_id", s)?)
                        .await?;
                    if s.environment_id != env {
                        return Err(ApiError::not_found("snapshot"));
                    }
                    s
                }
                None => latest_complete(&state, env).await?.ok_or_else(|| {
                    DomainError::Conflict(
                        "the shared environment has no complete snapshot to clone".into(),
                    )
                })?,
            }
        }
        ShareResource::Snapshot => {
            state
                .store
                .get_snapshot(parse_id("resource_id", &share.resource_id)?)
                .await?
        }
        ShareResource::Template => {
            let t = state
                .store
                .get_template(parse_id("resource_id", &share.resource_id)?)
                .await?;
            if t.withdrawn_at.is_some() {
                return Err(ApiError::not_found("template"));
            }
            state.store.get_snapshot(t.snapshot_id).await?
        }
    };
    if snapshot.lab_id != share.owner_lab {
        return Err(ApiError::not_found("snapshot"));
    }
    let (source, engine) = source_environment(&state, &snapshot).await?;
    let audit = share_audit(
        &caller,
        &share,
        "share.clone",
        "snapshot",
        &snapshot.id.to_string(),
    );
    restore_as_new(
        &state, &caller, scope, snapshot, engine, source, req.name, audit,
    )
    .await
}

/// A template to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishTemplateRequest {
    pub snapshot_id: String,
    pub name: String,
    pub description: Option<String>,
}

/// A template.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplateResponse {
    pub id: String,
    pub lab_id: String,
    pub snapshot_id: String,
    pub environment_id: String,
    pub name: String,
    pub description: String,
    pub python_version: String,
    pub packages: Vec<String>,
    pub published_at: DateTime<Utc>,
    /// The share it reaches the caller's lab through (absent for the
    /// lab's own templates).
    pub share_id: Option<String>,
}

fn template_response(t: &Template, share: Option<&Share>) -> TemplateResponse {
    TemplateResponse {
        id: t.id.to_string(),
        lab_id: t.lab_id.to_string(),
        snapshot_id: t.snapshot_id.to_string(),
        environment_id: t.environment_id.to_string(),
        name: t.name.clone(),
        description: t.description.clone(),
        python_version: t.python_version.clone(),
        packages: t.packages.clone(),
        published_at: t.published_at,
        share_id: share.map(|s| s.id.to_string()),
    }
}

/// Publishes a complete snapshot as a read-only, immutable template (its
/// snapshot cannot be deleted while published). Share it with other labs
/// to let them clone it.
#[utoipa::path(post, path = "/api/collaboration/templates", tag = "collaboration", request_body = PublishTemplateRequest,
    responses((status = 201, body = TemplateResponse), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem), (status = 409, body = westtek_platform::Problem),
              (status = 422, body = westtek_platform::Problem)))]
pub async fn publish_template(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<PublishTemplateRequest>,
) -> ApiResult<(StatusCode, Json<TemplateResponse>)> {
    let s = readable(&state, &caller, parse_id("snapshot_id", &req.snapshot_id)?).await?;
    if !caller.can_read(s.lab_id) {
        return Err(ApiError::not_found("snapshot"));
    }
    if s.status != SnapshotStatus::Complete {
        return Err(DomainError::Conflict("the snapshot is not complete".into()).into());
    }
    let scope = caller.write_scope_for(s.lab_id)?;
    match state.store.get_environment(s.environment_id).await {
        Ok(_) => {
            operable(&state, &caller, s.environment_id).await?;
        }
        Err(DomainError::NotFound { .. })
            if s.created_by == caller.principal.user_id || scope.is_lab_admin() => {}
        Err(DomainError::NotFound { .. }) => {
            return Err(ApiError::forbidden(
                "only the snapshot's author or a lab admin may publish it",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid("name", "1-100 characters").into());
    }
    let description = req.description.unwrap_or_default();
    if description.len() > 4000 {
        return Err(DomainError::invalid("description", "at most 4000 bytes").into());
    }
    let python_version = match state
        .snapshots
        .inventory(s.vault_snapshot_id.as_deref().unwrap_or(""))
        .await
    {
        Ok(inv) => inv
            .pointer("/python/version")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
        Err(_) => String::new(),
    };
    let t = Template {
        id: TemplateId::new(),
        lab_id: s.lab_id,
        snapshot_id: s.id,
        environment_id: s.environment_id,
        name: name.to_string(),
        description: westtek_knowledge::redact(&description).0,
        python_version,
        packages: s.metadata.installed_packages.clone(),
        published_by: caller.principal.user_id,
        published_at: state.clock.now(),
        withdrawn_at: None,
    };
    let audit = caller.audit(
        Some(s.lab_id),
        "template.publish",
        "template",
        t.id,
        serde_json::json!({ "snapshot_id": s.id.to_string(), "name": t.name }),
    );
    state
        .store
        .commit(vec![Write::PutTemplate(t.clone())], vec![audit])
        .await?;
    Ok((StatusCode::CREATED, Json(template_response(&t, None))))
}

/// The caller's lab's templates and those shared with it (while shared).
#[utoipa::path(get, path = "/api/collaboration/templates", tag = "collaboration",
    responses((status = 200, body = [TemplateResponse])))]
pub async fn list_templates(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<TemplateResponse>>> {
    let lab = caller.write_scope()?.lab;
    let mut out: Vec<TemplateResponse> = state
        .store
        .list_templates(Some(lab), None, false)
        .await?
        .iter()
        .map(|t| template_response(t, None))
        .collect();
    let shares = state
        .store
        .list_shares(&ShareFilter {
            target_lab: Some(lab),
            resource: Some(ShareResource::Template),
            active_at: Some(state.clock.now()),
            ..Default::default()
        })
        .await?;
    for s in &shares {
        let Ok(id) = TemplateId::parse(&s.resource_id) else {
            continue;
        };
        match state.store.get_template(id).await {
            Ok(t) if t.withdrawn_at.is_none() && t.lab_id == s.owner_lab => {
                if !out.iter().any(|x| x.id == t.id.to_string()) {
                    out.push(template_response(&t, Some(s)));
                }
            }
            Ok(_) | Err(DomainError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(out))
}

/// Withdraws a template (its publisher or a lab admin): listed nowhere,
/// cloned by no one, and its snapshot may be deleted again.
#[utoipa::path(delete, path = "/api/collaboration/templates/{id}", tag = "collaboration", params(("id" = String, Path)),
    responses((status = 204, description = "withdrawn"), (status = 403, body = westtek_platform::Problem),
              (status = 404, body = westtek_platform::Problem)))]
pub async fn withdraw_template(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<TemplateId>,
) -> ApiResult<StatusCode> {
    let mut t = state.store.get_template(id).await?;
    if !caller.can_read(t.lab_id) || t.withdrawn_at.is_some() {
        return Err(ApiError::not_found("template"));
    }
    let scope = caller.write_scope_for(t.lab_id)?;
    if t.published_by != caller.principal.user_id && !scope.is_lab_admin() {
        return Err(ApiError::forbidden(
            "only the template's publisher or a lab admin may withdraw it",
        ));
    }
    t.withdrawn_at = Some(state.clock.now());
    let audit = caller.audit(
        Some(t.lab_id),
        "template.withdraw",
        "template",
        t.id,
        serde_json::json!({}),
    );
    state
        .store
        .commit(vec![Write::PutTemplate(t)], vec![audit])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clones a template into a new environment of the caller's lab: the lab's
/// own templates, or one shared with it. Audited on both trails when shared.
#[utoipa::path(post, path = "/api/collaboration/templates/{id}/clone", tag = "collaboration", params(("id" = String, Path)),
    request_body = CloneRequest,
    responses((status = 202, body = westtek_snapshots::dto::RestoreAccepted), (status = 404, body = westtek_platform::Problem),
              (status = 409, body = westtek_platform::Problem)))]
pub async fn clone_template(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<TemplateId>,
    ApiJson(req): ApiJson<CloneRequest>,
) -> ApiResult<Response> {
    if req.snapshot_id.is_some() {
        return Err(DomainError::invalid(
            "snapshot_id",
            "a template is one snapshot; leave it out",
        )
        .into());
    }
    let t = state.store.get_template(id).await?;
    if t.withdrawn_at.is_some() {
        return Err(ApiError::not_found("template"));
    }
    let scope = caller.write_scope()?;
    let mut audit = Vec::new();
    if scope.lab != t.lab_id {
        let share = westtek_platform::grants::active_share(
            &state,
            &caller,
            t.lab_id,
            ShareResource::Template,
            &t.id.to_string(),
        )
        .await?
        .filter(|s| s.target_lab == scope.lab)
        .ok_or_else(|| ApiError::not_found("template"))?;
        audit = share_audit(
            &caller,
            &share,
            "template.clone",
            "template",
            &t.id.to_string(),
        );
    } else {
        audit.push(caller.audit(
            Some(t.lab_id),
            "template.clone",
            "template",
            t.id,
            serde_json::json!({}),
        ));
    }
    let snapshot = state.store.get_snapshot(t.snapshot_id).await?;
    let (source, engine) = source_environment(&state, &snapshot).await?;
    let name = req
        .name
        .or_else(|| Some(format!("{}-clone", slug_of(&t.name))));
    restore_as_new(
        &state, &caller, scope, snapshot, engine, source, name, audit,
    )
    .await
}

/// A name usable as an environment name from a template's title.
fn slug_of(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-');
    let s: String = s.chars().take(50).collect();
    if s.is_empty() {
        "template".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_become_environment_names() {
        assert_eq!(slug_of("Baseline ML (2026)"), "baseline-ml--2026");
        assert_eq!(slug_of("!!!"), "template");
    }
}
