//! Labs and their users. IT admins create labs and set quotas; lab admins
//! (or IT admins acting in the lab) create users and manage members (the
//! use cases are in `membership`).

use crate::auth::{Caller, ReadScope};
use crate::dto::{
    CreateLabRequest, CreateUserRequest, CreatedUserResponse, InvitationSentResponse, LabResponse,
    MemberRequest, UpdateLabRequest, UserResponse,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::membership::{self, PutMemberOutcome};
use crate::ops::{self, Actor, NewUser};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use westtek_domain::{LabId, Role};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/labs", get(list_labs).post(create_lab))
        .route("/api/labs/{id}", get(get_lab).patch(update_lab))
        .route("/api/labs/{id}/users", get(list_users).post(create_user))
        .route("/api/admin/overview", get(overview))
        .route(
            "/api/admin/users/{user}/disabled",
            axum::routing::put(set_user_disabled),
        )
        .route(
            "/api/labs/{id}/members/{user}",
            axum::routing::put(put_member).delete(remove_member),
        )
}

fn actor(c: &Caller, acting_it_admin: bool) -> Actor {
    Actor {
        id: Some(c.principal.user_id),
        name: c.principal.username.clone(),
        request_id: c.request_id.clone(),
        acting_it_admin,
    }
}

/// Labs the caller can see (IT admins: all).
#[utoipa::path(get, path = "/api/labs", tag = "labs", responses((status = 200, body = Vec<LabResponse>)))]
pub async fn list_labs(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<LabResponse>>> {
    let labs = state.store.list_labs().await?;
    let visible = labs
        .into_iter()
        .filter(|l| match caller.read_scope() {
            Ok(ReadScope::All) => true,
            _ => caller.principal.role_in(l.id).is_some(),
        })
        .map(Into::into)
        .collect();
    Ok(Json(visible))
}

/// Creates a lab (IT admins).
#[utoipa::path(post, path = "/api/labs", tag = "labs", request_body = CreateLabRequest,
    responses((status = 201, body = LabResponse), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn create_lab(
    caller: Caller,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CreateLabRequest>,
) -> ApiResult<(StatusCode, Json<LabResponse>)> {
    caller.require_it_admin("manage labs")?;
    let lab = ops::create_lab(
        &*state.store,
        &*state.clock,
        &actor(&caller, false),
        &req.name,
        req.display_name.as_deref(),
        req.quotas
            .map(crate::dto::QuotasBody::into_quotas)
            .transpose()?,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(lab.into())))
}

/// One lab.
#[utoipa::path(get, path = "/api/labs/{id}", tag = "labs", params(("id" = String, Path)),
    responses((status = 200, body = LabResponse), (status = 404, body = crate::error::Problem)))]
pub async fn get_lab(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<LabId>,
) -> ApiResult<Json<LabResponse>> {
    if !caller.can_read(id) {
        return Err(ApiError::not_found("lab"));
    }
    Ok(Json(state.store.get_lab(id).await?.into()))
}

/// Changes a lab's quotas (IT admins).
#[utoipa::path(patch, path = "/api/labs/{id}", tag = "labs", params(("id" = String, Path)), request_body = UpdateLabRequest,
    responses((status = 200, body = LabResponse), (status = 403, body = crate::error::Problem)))]
pub async fn update_lab(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<LabId>,
    ApiJson(req): ApiJson<UpdateLabRequest>,
) -> ApiResult<Json<LabResponse>> {
    caller.require_it_admin("manage labs")?;
    Ok(Json(
        ops::set_lab_quotas(
            &*state.store,
            &actor(&caller, false),
            id,
            req.quotas.into_quotas()?,
        )
        .await?
        .into(),
    ))
}

/// Users of a lab.
#[utoipa::path(get, path = "/api/labs/{id}/users", tag = "labs", params(("id" = String, Path)),
    responses((status = 200, body = Vec<UserResponse>), (status = 404, body = crate::error::Problem)))]
pub async fn list_users(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<LabId>,
) -> ApiResult<Json<Vec<UserResponse>>> {
    if !caller.can_read(id) {
        return Err(ApiError::not_found("lab"));
    }
    Ok(Json(
        state
            .store
            .list_users(Some(id))
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Adds a user to a lab (lab admins; IT admins acting in the lab). Without
/// a password the answer carries a one-time sign-in link for the new user.
#[utoipa::path(post, path = "/api/labs/{id}/users", tag = "labs", params(("id" = String, Path)), request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUserResponse), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn create_user(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<LabId>,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<CreatedUserResponse>)> {
    let scope = caller.write_scope_for(id)?;
    if !scope.is_lab_admin() {
        return Err(ApiError::forbidden("only lab admins add users"));
    }
    let role = Role::parse(&req.role)?;
    let created = ops::create_user(
        &*state.store,
        &*state.clock,
        &actor(&caller, scope.acting_it_admin),
        NewUser {
            username: &req.username,
            display_name: req.display_name.as_deref(),
            membership: Some((id, role)),
            it_admin: false,
            password: req.password.as_deref(),
            one_time_ttl: state.config.one_time_ttl,
            one_time_secret: None,
        },
    )
    .await?;
    let url = created.one_time_token.as_ref().map(|t| {
        format!(
            "{}/api/auth/login?token={t}",
            state.config.public_url.trim_end_matches('/')
        )
    });
    Ok((
        StatusCode::CREATED,
        Json(CreatedUserResponse {
            user: created.user.into(),
            sign_in_url: url,
            sign_in_token: created.one_time_token,
            sign_in_expires_at: created.one_time_expires_at,
        }),
    ))
}

/// Puts a user into the lab or changes a member's role. IT admins (members
/// of the lab, or acting in it with `X-Westtek-Acting-Lab`) add any user
/// directly (`200`). A lab admin changes the role of a member (`200`);
/// naming anyone else sends that user an invitation instead, answered
/// exactly like `POST /api/labs/{id}/invitations` (`202`, whether or not the
/// user exists). Takes effect on the user's next request.
#[utoipa::path(put, path = "/api/labs/{id}/members/{user}", tag = "labs",
    params(("id" = String, Path), ("user" = String, Path, description = "user id or username")), request_body = MemberRequest,
    responses((status = 200, description = "added (IT admins) or role changed", body = UserResponse),
              (status = 202, description = "a lab admin named a non-member: handled as an invitation", body = InvitationSentResponse),
              (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, description = "no such lab, or (IT admins) no such user", body = crate::error::Problem),
              (status = 409, description = "the last lab admin cannot be demoted", body = crate::error::Problem),
              (status = 422, description = "`validation_failed`: not a lab role", body = crate::error::Problem)))]
pub async fn put_member(
    caller: Caller,
    State(state): State<AppState>,
    axum::extract::Path((id, user)): axum::extract::Path<(String, String)>,
    ApiJson(req): ApiJson<MemberRequest>,
) -> ApiResult<Response> {
    let lab: LabId = crate::extract::parse_id("id", &id)?;
    Ok(
        match membership::put_member(&state, &caller, lab, &user, &req.role).await? {
            PutMemberOutcome::Member(u) => Json(UserResponse::from(u)).into_response(),
            PutMemberOutcome::Invited(sent) => (StatusCode::ACCEPTED, Json(sent)).into_response(),
        },
    )
}

/// Disable or enable a user.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisabledRequest {
    pub disabled: bool,
}

/// IT admins disable a user (every request of theirs is refused from the
/// next one on, whatever token they bring, an identity provider's included)
/// or enable them again. Audited (`user.disable`, `user.enable`).
#[utoipa::path(put, path = "/api/admin/users/{user}/disabled", tag = "labs",
    params(("user" = String, Path, description = "user id or username")), request_body = DisabledRequest,
    responses((status = 200, body = UserResponse), (status = 401, body = crate::error::Problem),
              (status = 403, description = "not an IT admin", body = crate::error::Problem),
              (status = 404, body = crate::error::Problem),
              (status = 409, description = "`conflict`: your own account", body = crate::error::Problem)))]
pub async fn set_user_disabled(
    caller: Caller,
    State(state): State<AppState>,
    axum::extract::Path(user): axum::extract::Path<String>,
    ApiJson(req): ApiJson<DisabledRequest>,
) -> ApiResult<Json<UserResponse>> {
    let u = membership::set_disabled(&state, &caller, &user, req.disabled).await?;
    Ok(Json(UserResponse::from(u)))
}

/// Removes a member from the lab (lab admins; IT admins acting in the lab).
/// Their environments stay; hand them over first. Takes effect on their
/// next request.
#[utoipa::path(delete, path = "/api/labs/{id}/members/{user}", tag = "labs",
    params(("id" = String, Path), ("user" = String, Path, description = "user id or username")),
    responses((status = 204, description = "removed"), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
              (status = 404, description = "not a member (whether or not the user exists)", body = crate::error::Problem),
              (status = 409, description = "the last lab admin stays", body = crate::error::Problem)))]
pub async fn remove_member(
    caller: Caller,
    State(state): State<AppState>,
    axum::extract::Path((id, user)): axum::extract::Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let lab: LabId = crate::extract::parse_id("id", &id)?;
    membership::remove_member(&state, &caller, lab, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Counts of one lab, for the IT-admin dashboard.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct LabOverview {
    pub lab: LabResponse,
    pub environments: u64,
    pub ready: u64,
    pub provisioning: u64,
    /// Jupyter servers running (or starting).
    pub running_servers: u64,
    pub stable: u64,
    pub minor_drift: u64,
    pub critical_drift: u64,
    /// Complete snapshots.
    pub snapshots: u64,
    /// Bytes the lab's snapshots added to the vault (what the storage quota counts).
    pub storage_bytes: u64,
}

/// Every lab the caller can see at a glance.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OverviewResponse {
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub labs: Vec<LabOverview>,
}

/// All labs at a glance (IT admins: every lab; others: their labs):
/// environments by state, running servers, drift status distribution,
/// snapshots and storage against the quotas, in one request.
#[utoipa::path(get, path = "/api/admin/overview", tag = "labs",
    responses((status = 200, body = OverviewResponse), (status = 403, body = crate::error::Problem)))]
pub async fn overview(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<OverviewResponse>> {
    use westtek_domain::{
        DriftStatus, EnvironmentFilter, EnvironmentStatus, JupyterStatus, SnapshotFilter,
        SnapshotStatus,
    };
    let all = matches!(caller.read_scope(), Ok(ReadScope::All));
    let mut labs = Vec::new();
    for lab in state.store.list_labs().await? {
        if !all && caller.principal.role_in(lab.id).is_none() {
            continue;
        }
        let mut o = LabOverview {
            lab: lab.clone().into(),
            environments: 0,
            ready: 0,
            provisioning: 0,
            running_servers: 0,
            stable: 0,
            minor_drift: 0,
            critical_drift: 0,
            snapshots: 0,
            storage_bytes: state.store.lab_storage_bytes(lab.id).await?,
        };
        let mut offset = 0;
        loop {
            let page = state
                .store
                .list_environments(&EnvironmentFilter {
                    lab_id: Some(lab.id),
                    limit: 500,
                    offset,
                    ..Default::default()
                })
                .await?;
            for e in &page.items {
                o.environments += 1;
                match e.status {
                    EnvironmentStatus::Ready => o.ready += 1,
                    EnvironmentStatus::Provisioning => o.provisioning += 1,
                    _ => {}
                }
                if e.jupyter_status != JupyterStatus::Stopped {
                    o.running_servers += 1;
                }
                match e.drift_status {
                    DriftStatus::Stable => o.stable += 1,
                    DriftStatus::MinorDrift => o.minor_drift += 1,
                    DriftStatus::CriticalDrift => o.critical_drift += 1,
                }
            }
            if page.items.len() < 500 {
                break;
            }
            offset += 500;
        }
        o.snapshots = state
            .store
            .list_snapshots(&SnapshotFilter {
                lab_id: Some(lab.id),
                status: Some(SnapshotStatus::Complete),
                limit: 1,
                ..Default::default()
            })
            .await?
            .total;
        labs.push(o);
    }
    if labs.is_empty() && !all {
        return Err(ApiError::forbidden("the caller is in no lab"));
    }
    Ok(Json(OverviewResponse {
        generated_at: state.clock.now(),
        labs,
    }))
}
