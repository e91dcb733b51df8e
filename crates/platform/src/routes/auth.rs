//! Sign-in endpoints: token exchange, the one-time sign-in link, sign-out
//! and "who am I".

use crate::auth::{
    cookie, proven_same_origin, set_cookie, Caller, ACCESS_COOKIE, REFRESH_COOKIE,
    REQUEST_ID_HEADER,
};
use crate::dto::{MeResponse, MembershipBody, TokenRequest, TokenResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::session::{self, Session};
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Form;
use axum::{Json, Router};
use serde::Deserialize;
use westtek_domain::{DomainError, Principal};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/token", post(token))
        .route("/api/auth/login", get(login_link).post(login_submit))
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
        secure_browser_url: state.config.secure_browser_url.clone(),
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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoginLinkQuery {
    /// The one-time token.
    pub token: String,
    /// Where to go afterwards: a path on this site (default `/`).
    pub next: Option<String>,
}

/// The one-time sign-in link printed by `westtek up` and given to new
/// users. Opening it does not spend the token (mail scanners and link
/// previews open links too): it shows a page whose button signs in.
#[utoipa::path(get, path = "/api/auth/login", tag = "auth", params(LoginLinkQuery),
    responses((status = 200, description = "a page with a sign-in button", content_type = "text/html")))]
pub async fn login_link(ApiQuery(q): ApiQuery<LoginLinkQuery>) -> Response {
    let next = safe_next(q.next);
    let page = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>Sign in to West Tek</title><main style=\"font-family:sans-serif;max-width:28rem;margin:4rem auto\">\
         <h1>West Tek Environment Preservation Platform</h1><p>This link signs you in once.</p>\
         <form method=post action=/api/auth/login><input type=hidden name=token value=\"{}\">\
         <input type=hidden name=next value=\"{}\"><button type=submit autofocus>Sign in</button></form></main></html>",
        html_attr(&q.token),
        html_attr(&next)
    );
    let mut resp = Html(page).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `same-origin`, not `no-referrer`: with no referrer Chromium sends
    // `Origin: null` on the form POST; the link never leaves this site.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

/// The form of the sign-in page.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    pub token: String,
    pub next: Option<String>,
}

/// Spends the one-time token, sets the session cookies and redirects. Only
/// from this site's own sign-in page (same origin), so another site cannot
/// sign a visitor into an account of its choosing.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "signed in; redirect to `next`"), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)))]
pub async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> ApiResult<Response> {
    if !proven_same_origin(&headers) {
        return Err(ApiError::forbidden("sign in from this site's sign-in page"));
    }
    let Form(f) = form.map_err(|e| ApiError::BadRequest {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_body",
        detail: e.body_text(),
    })?;
    let s = session::sign_in_one_time(&state, &f.token, &request_id(&headers)).await?;
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&safe_next(f.next)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(with_session_cookies(&state, resp, &s))
}

/// Only same-site paths: no open redirect.
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".into())
}

fn html_attr(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Optional body of `POST /api/auth/logout`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    pub refresh_token: Option<String>,
}

/// Ends the session: the refresh token (body or cookie) stops working and
/// the cookies are cleared.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>),
    responses((status = 204, description = "signed out"), (status = 401, body = crate::error::Problem)))]
pub async fn logout(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    // API clients send their refresh token in the body; browsers have it in
    // the cookie.
    let from_body = if body.is_empty() {
        None
    } else {
        let req: LogoutRequest =
            serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "invalid_body",
                detail: e.to_string(),
            })?;
        req.refresh_token
    };
    let refresh = from_body
        .as_deref()
        .or_else(|| cookie(&headers, REFRESH_COOKIE));
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
