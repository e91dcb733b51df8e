//! Invitations into labs: lab admins invite, list and revoke; the invitee
//! lists, accepts and declines. The use cases are in `membership`.

use crate::auth::Caller;
use crate::dto::{InvitationResponse, InvitationSentResponse, InviteRequest};
use crate::error::ApiResult;
use crate::extract::{ApiJson, IdPath};
use crate::membership;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use westtek_domain::{InvitationId, LabId};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/labs/{id}/invitations",
            get(list_lab_invitations).post(invite),
        )
        .route(
            "/api/labs/{id}/invitations/{invitation}",
            delete(revoke_invitation),
        )
        .route("/api/me/invitations", get(my_invitations))
        .route("/api/me/invitations/{id}/accept", post(accept_invitation))
        .route("/api/me/invitations/{id}/decline", post(decline_invitation))
}

/// Invites a user into the lab (lab admins; IT admins acting in the lab).
/// Always `202` with the same body whether or not the username exists; an
/// existing user sees the invitation under `GET /api/me/invitations` and
/// joins only by accepting it (within 7 days).
#[utoipa::path(post, path = "/api/labs/{id}/invitations", tag = "labs", params(("id" = String, Path)),
    request_body = InviteRequest,
    responses((status = 202, body = InvitationSentResponse), (status = 401, body = crate::error::Problem),
              (status = 403, description = "`forbidden`: not a lab admin", body = crate::error::Problem),
              (status = 404, description = "no such lab (or not yours)", body = crate::error::Problem),
              (status = 409, description = "`conflict`: already a member of the lab", body = crate::error::Problem),
              (status = 422, description = "`validation_failed`: malformed username or not a lab role", body = crate::error::Problem)))]
pub async fn invite(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(lab): IdPath<LabId>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<InvitationSentResponse>)> {
    let sent = membership::invite(&state, &caller, lab, &req.username, &req.role).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// The lab's open invitations (its lab admins; IT admins).
#[utoipa::path(get, path = "/api/labs/{id}/invitations", tag = "labs", params(("id" = String, Path)),
    responses((status = 200, body = Vec<InvitationResponse>), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn list_lab_invitations(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(lab): IdPath<LabId>,
) -> ApiResult<Json<Vec<InvitationResponse>>> {
    Ok(Json(
        membership::lab_invitations(&state, &caller, lab).await?,
    ))
}

/// Withdraws an open invitation (lab admins; IT admins acting in the lab).
#[utoipa::path(delete, path = "/api/labs/{id}/invitations/{invitation}", tag = "labs",
    params(("id" = String, Path), ("invitation" = String, Path)),
    responses((status = 204, description = "revoked"), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 409, description = "`conflict`: no longer open", body = crate::error::Problem)))]
pub async fn revoke_invitation(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, invitation)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let lab: LabId = crate::extract::parse_id("id", &id)?;
    let invitation: InvitationId = crate::extract::parse_id("invitation", &invitation)?;
    membership::revoke(&state, &caller, lab, invitation).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's open invitations.
#[utoipa::path(get, path = "/api/me/invitations", tag = "auth",
    responses((status = 200, body = Vec<InvitationResponse>), (status = 401, body = crate::error::Problem)))]
pub async fn my_invitations(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<InvitationResponse>>> {
    Ok(Json(membership::my_invitations(&state, &caller).await?))
}

/// Accepts one of the caller's invitations: the caller joins the lab with
/// the offered role. The caller's default lab (the first they joined) stays
/// as it is.
#[utoipa::path(post, path = "/api/me/invitations/{id}/accept", tag = "auth", params(("id" = String, Path)),
    responses((status = 200, body = InvitationResponse), (status = 401, body = crate::error::Problem),
              (status = 404, description = "not the caller's invitation", body = crate::error::Problem),
              (status = 409, description = "`conflict`: expired, revoked or already decided", body = crate::error::Problem)))]
pub async fn accept_invitation(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<InvitationId>,
) -> ApiResult<Json<InvitationResponse>> {
    Ok(Json(membership::decide(&state, &caller, id, true).await?))
}

/// Declines one of the caller's invitations.
#[utoipa::path(post, path = "/api/me/invitations/{id}/decline", tag = "auth", params(("id" = String, Path)),
    responses((status = 200, body = InvitationResponse), (status = 401, body = crate::error::Problem),
              (status = 404, description = "not the caller's invitation", body = crate::error::Problem),
              (status = 409, description = "`conflict`: expired, revoked or already decided", body = crate::error::Problem)))]
pub async fn decline_invitation(
    caller: Caller,
    State(state): State<AppState>,
    IdPath(id): IdPath<InvitationId>,
) -> ApiResult<Json<InvitationResponse>> {
    Ok(Json(membership::decide(&state, &caller, id, false).await?))
}
