//! What IT admins need to know about the host the platform runs on: whether
//! researcher code is sandboxed.

use crate::auth::Caller;
use crate::config::SandboxReport;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/sandbox", get(sandbox))
}

/// How notebooks are confined on this host (IT admins): `enforced`,
/// `disabled` (started with `--insecure-no-sandbox`: the portal shows a red
/// banner) or `unavailable` (launches are refused; `detail` says what is
/// missing).
#[utoipa::path(get, path = "/api/admin/sandbox", tag = "labs",
    responses((status = 200, body = SandboxReport), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem)))]
pub async fn sandbox(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<SandboxReport>> {
    caller.require_it_admin("read the host's sandbox status")?;
    Ok(Json(state.config.sandbox.clone()))
}
