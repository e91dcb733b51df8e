//! Labs and their users. IT admins create labs and set quotas; lab admins
//! (or IT admins acting in the lab) add users.

use crate::auth::{Caller, ReadScope};
use crate::dto::{
    CreateLabRequest, CreateUserRequest, CreatedUserResponse, LabResponse, UpdateLabRequest,
    UserResponse,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::ops::{self, Actor, NewUser};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use westtek_domain::{LabId, Role};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/labs", get(list_labs).post(create_lab))
        .route("/api/labs/{id}", get(get_lab).patch(update_lab))
        .route("/api/labs/{id}/users", get(list_users).post(create_user))
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
        req.quotas.map(Into::into),
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
        ops::set_lab_quotas(&*state.store, &actor(&caller, false), id, req.quotas.into())
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
