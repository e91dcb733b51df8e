//! Sign-in endpoints: token exchange, the one-time sign-in link, sign-out
//! and "who am I".

use crate::auth::{cookie, set_cookie, Caller, ACCESS_COOKIE, REFRESH_COOKIE, REQUEST_ID_HEADER};
use crate::dto::{MeResponse, MembershipBody, TokenRequest, TokenResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::session::{self, Session};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use westtek_domain::{DomainError, Principal};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/token", post(token))
        .route("/api/auth/login", get(login_link))
        .route("/api/auth/logout", post(logout))
        .route("/api/me", get(me))
}

fn request_id(h: &HeaderMap) -> String {
    h.get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

pub(crate) async fn me_body(state: &AppState, p: &Principal) -> MeResponse {
    let mut labs = Vec::new();
    for m in &p.memberships {
        let name = state
            .store
            .get_lab(m.lab_id)
            .await
            .ok()
            .map(|l| l.name.to_string());
        labs.push(MembershipBody {
            lab_id: m.lab_id.to_string(),
            lab_name: name,
            role: m.role.as_str().into(),
        });
    }
    MeResponse {
        user_id: p.user_id.to_string(),
        username: p.username.clone(),
        it_admin: p.it_admin,
        labs,
    }
}

fn with_session_cookies(state: &AppState, mut resp: Response, s: &Session) -> Response {
    let now = state.clock.now();
    let h = resp.headers_mut();
    if let Some(c) = set_cookie(
        ACCESS_COOKIE,
        &s.access.token,
        (s.access.expires_at - now).num_seconds(),
        state.config.secure_cookies,
    ) {
        h.append(header::SET_COOKIE, c);
    }
    if let Some(c) = set_cookie(
        REFRESH_COOKIE,
        &s.refresh_token,
        (s.refresh_expires_at - now).num_seconds(),
        state.config.secure_cookies,
    ) {
        h.append(header::SET_COOKIE, c);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Exchanges a password, a one-time token or a refresh token for an access
/// token (bearer) and a refresh token; also sets them as HttpOnly cookies.
#[utoipa::path(post, path = "/api/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<Response> {
    let rid = request_id(&headers);
    let missing =
        |f: &str| DomainError::invalid(f, format!("is required for grant_type {}", req.grant_type));
    let s = match req.grant_type.as_str() {
        "password" => {
            let u = req.username.as_deref().ok_or_else(|| missing("username"))?;
            let p = req.password.as_deref().ok_or_else(|| missing("password"))?;
            session::sign_in_password(&state, u, p, &rid).await?
        }
        "one_time_token" => {
            let t = req.token.as_deref().ok_or_else(|| missing("token"))?;
            session::sign_in_one_time(&state, t, &rid).await?
        }
        "refresh_token" => {
            let t = req.token.as_deref().ok_or_else(|| missing("token"))?;
            session::refresh_session(&state, t, &rid).await?
        }
        _ => {
            return Err(DomainError::invalid(
                "grant_type",
                "must be password, one_time_token or refresh_token",
            )
            .into());
        }
    };
    let body = TokenResponse {
        access_token: s.access.token.clone(),
        token_type: "Bearer".into(),
        expires_in: (s.access.expires_at - state.clock.now()).num_seconds(),
        expires_at: s.access.expires_at,
        refresh_token: s.refresh_token.clone(),
        refresh_expires_at: s.refresh_expires_at,
        user: me_body(&state, &s.principal).await,
    };
    Ok(with_session_cookies(&state, Json(body).into_response(), &s))
}

/// Query of the sign-in link.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LoginLinkQuery {
    /// The one-time token.
    pub token: String,
    /// Where to go afterwards: a path on this site (default `/`).
    pub next: Option<String>,
}

/// The one-time sign-in link printed by `westtek up` and given to new
/// users: spends the token, sets the session cookies and redirects.
#[utoipa::path(get, path = "/api/auth/login", tag = "auth", params(LoginLinkQuery),
    responses((status = 303, description = "signed in; redirect to `next`"), (status = 401, body = crate::error::Problem)))]
pub async fn login_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<LoginLinkQuery>,
) -> ApiResult<Response> {
    let s = session::sign_in_one_time(&state, &q.token, &request_id(&headers)).await?;
    // Only same-site paths: no open redirect.
    let next = q
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&next) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(with_session_cookies(&state, resp, &s))
}

/// Ends the session: the refresh token (body or cookie) stops working and
/// the cookies are cleared.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    responses((status = 204, description = "signed out"), (status = 401, body = crate::error::Problem)))]
pub async fn logout(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let refresh = cookie(&headers, REFRESH_COOKIE);
    session::sign_out(&state, &caller.principal, refresh, &caller.request_id).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        if let Some(c) = set_cookie(name, "", 0, state.config.secure_cookies) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
    Ok(resp)
}

/// The signed-in caller and their labs.
#[utoipa::path(get, path = "/api/me", tag = "auth",
    responses((status = 200, body = MeResponse), (status = 401, body = crate::error::Problem)))]
pub async fn me(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<MeResponse>, ApiError> {
    Ok(Json(me_body(&state, &caller.principal).await))
}
