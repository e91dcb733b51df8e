//! The shared HTTP platform of every West Tek service: application state,
//! problem+json errors, extractors, authentication and lab scoping, jobs,
//! the platform's own endpoints (sign-in, labs, audit, health) and the
//! middleware stack every router is served with.

pub mod agent_auth;
pub mod auth;
pub mod cache;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod grants;
pub mod jobs;
pub mod live;
pub mod membership;
pub mod ops;
pub mod provision;
pub mod queue;
pub mod routes;
pub mod session;
pub mod state;
pub mod streams;
pub mod token_cache;

pub use error::{ApiError, ApiResult, Problem};
pub use state::AppState;

use axum::extract::Request;
use axum::http::{HeaderName, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

/// The platform's own routes (sign-in, labs, users, audit, jobs, health).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(routes::auth::router())
        .merge(routes::labs::router())
        .merge(routes::invitations::router())
        .merge(routes::audit::router())
        .merge(routes::health::router())
        .merge(routes::system::router())
        .merge(jobs::router())
}

/// OpenAPI of the platform's own routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::auth::token, routes::auth::login_link, routes::auth::login_submit, routes::auth::logout, routes::auth::me,
        routes::labs::list_labs, routes::labs::create_lab, routes::labs::get_lab, routes::labs::update_lab,
        routes::labs::list_users, routes::labs::create_user, routes::labs::put_member, routes::labs::remove_member, routes::labs::overview, routes::labs::set_user_disabled,
        routes::invitations::invite, routes::invitations::list_lab_invitations, routes::invitations::revoke_invitation,
        routes::invitations::my_invitations, routes::invitations::accept_invitation, routes::invitations::decline_invitation,
        routes::audit::list, routes::audit::export, routes::audit::verify,
        jobs::get_job, jobs::job_events,
        routes::system::sandbox,
    ),
    components(schemas(Problem)),
    tags(
        (name = "auth", description = "Sign-in and sessions"),
        (name = "labs", description = "Labs, quotas and users"),
        (name = "audit", description = "Tamper-evident audit trail"),
        (name = "jobs", description = "Long-running work and its progress"),
    )
)]
pub struct PlatformApi;

async fn api_not_found(req: Request) -> Response {
    let code = if req.uri().path().starts_with("/api/") {
        "route_not_found"
    } else {
        "not_found"
    };
    error::problem_response(StatusCode::NOT_FOUND, code, "no such endpoint", None)
}

/// Turns the plain-text errors of axum and tower-http (405, 413) into
/// problem+json like every other error.
async fn plain_errors_as_problems(req: Request, next: middleware::Next) -> Response {
    // Jupyter's own answers pass through the gateway untouched.
    if req.uri().path().starts_with(GATEWAY_PREFIX) {
        return next.run(req).await;
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        return error::problem_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
            None,
        );
    }
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_problem(&resp) {
        return error::problem_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
            None,
        );
    }
    resp
}

/// Where the Jupyter gateway is mounted.
pub const GATEWAY_PREFIX: &str = "/jupyter/";

/// The body limit for the API. Jupyter traffic through the gateway is not
/// limited here: notebooks and uploads are large, and Jupyter enforces its
/// own limits.
/// Where the agent API lives (see `agent_auth`).
pub const AGENT_API_PREFIX: &str = "/api/agent/v1/";
/// The agent's snapshot upload: streamed to disk under its own limit.
pub const AGENT_UPLOAD_PATH: &str = "/api/agent/v1/snapshots";
/// Bodies the agent API takes besides uploads (an inventory of an
/// environment with many data files runs to megabytes).
pub const AGENT_BODY_LIMIT: usize = 64 * 1024 * 1024;

async fn limit_api_bodies(
    axum::extract::State(limit): axum::extract::State<usize>,
    req: Request,
    next: middleware::Next,
) -> Response {
    let path = req.uri().path();
    if path.starts_with(GATEWAY_PREFIX) || path == AGENT_UPLOAD_PATH {
        // Jupyter's traffic; an agent's snapshot upload (streamed to disk,
        // its own limit).
        return next.run(req).await;
    }
    let limit = if path.starts_with(AGENT_API_PREFIX) {
        limit.max(AGENT_BODY_LIMIT)
    } else {
        limit
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return error::problem_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the request body is larger than {limit} bytes"),
            None,
        );
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}

/// Keeps a client's `X-Request-Id` only when it is a short token of
/// letters, digits, `-`, `_` and `.`; otherwise a fresh one is made. The id
/// ends up in logs and the audit trail.
async fn sanitize_request_id(mut req: Request, next: middleware::Next) -> Response {
    let ok = req.headers().get(auth::REQUEST_ID_HEADER).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 64
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    });
    if !ok {
        req.headers_mut().remove(auth::REQUEST_ID_HEADER);
    }
    next.run(req).await
}

fn is_problem(resp: &Response) -> bool {
    resp.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
}

/// Serves `app` with the platform's middleware: request ids, tracing with
/// request and lab ids, metrics, body limit, authentication, problem+json
/// for unknown routes and methods. `extra_fallback` (e.g. the portal's
/// static files) answers what no route matched, outside `/api`.
pub fn serve_stack(
    app: Router<AppState>,
    state: AppState,
    extra_fallback: Option<Router>,
) -> Router {
    // Install the metrics recorder before the first request is counted.
    routes::health::start_upkeep();
    let x_request_id = HeaderName::from_static(auth::REQUEST_ID_HEADER);
    let app = match extra_fallback {
        Some(fb) => app
            .route("/api/{*rest}", axum::routing::any(api_not_found))
            .fallback_service(fb),
        None => app.fallback(api_not_found),
    };
    app.layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(middleware::from_fn_with_state(
            state.config.body_limit,
            limit_api_bodies,
        ))
        .layer(middleware::from_fn(plain_errors_as_problems))
        .layer(middleware::from_fn(routes::health::track_metrics))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let rid = req
                    .headers()
                    .get(auth::REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                let path = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), matched_path = path,
                    request_id = rid, user = tracing::field::Empty, lab = tracing::field::Empty)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(middleware::from_fn(sanitize_request_id))
        .with_state(state)
}

/// A problem response for handlers outside this crate that build one by hand.
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    error::problem_response(status, code, detail, None).into_response()
}
