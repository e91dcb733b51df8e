//! Authentication at the edge: the middleware that turns a bearer token or
//! the browser's cookies into a `Principal`, and the `Caller` extractor that
//! scopes every request to a lab.
//!
//! Policy:
//! - Clients send `Authorization: Bearer <access token>`; browsers carry the
//!   same token in the HttpOnly cookie `westtek_access`, and a refresh token
//!   in `westtek_refresh`. When the access cookie has expired but the refresh
//!   cookie is valid, the middleware mints a new access token and sets it on
//!   the response, so long-lived browser tabs (JupyterLab) keep working.
//! - The lab of a request is `X-Westtek-Lab` (or the caller's first lab).
//!   IT admins read every lab; they change a lab they are not a member of
//!   only when they say so with `X-Westtek-Acting-Lab`, and that is audited.
//! - Another lab's resources are reported as not found, never as forbidden,
//!   so ids of other labs cannot be probed.
//! - A token proves who the caller is; what they may do (IT admin, labs and
//!   roles) is read from the store on every request (`live`), so a removed
//!   membership or a deleted user stops working on the next request. The
//!   subject of an identity provider's token is provisioned into the store
//!   on its first request and re-synced from each new token when the
//!   provider manages it (`provision`); a disabled user is refused.

use crate::error::{ApiError, ApiResult};
use crate::session;
use crate::state::AppState;
use crate::token_cache::{issuer_of, Verified};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use westtek_domain::{AuditDraft, DomainError, LabId, Principal, Role};

/// Cookie holding the access token.
pub const ACCESS_COOKIE: &str = "westtek_access";
/// Cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "westtek_refresh";
/// Header selecting the lab a request works in.
pub const LAB_HEADER: &str = "x-westtek-lab";
/// Header with which an IT admin acts in a lab explicitly.
pub const ACTING_LAB_HEADER: &str = "x-westtek-acting-lab";
/// Header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the middleware established about the caller.
#[derive(Clone, Debug)]
pub enum AuthState {
    Authenticated(Principal),
    /// A credential was sent but did not verify (or could not be checked:
    /// the identity provider or the store was unavailable).
    Rejected(DomainError),
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The bearer token of `Authorization`, if one was sent.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The request id the request-id layer set (`-` when absent).
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// Whether `Origin` (when sent) names this host.
pub fn same_origin(h: &HeaderMap) -> bool {
    let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin.split_once("://").map(|(_, rest)| rest) == Some(host)
}

/// Whether a browser request shows it comes from this site: an `Origin`
/// equal to the host, or `Sec-Fetch-Site: same-origin`. Used where a cookie
/// alone would let another site act for the user.
pub fn proven_same_origin(h: &HeaderMap) -> bool {
    // `Origin: null` (a page with `Referrer-Policy: no-referrer`, a
    // sandboxed frame) proves nothing either way: ask the fetch metadata.
    let origin = h.get(header::ORIGIN).filter(|v| v.as_bytes() != b"null");
    if origin.is_some() {
        return same_origin(h);
    }
    h.get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin")
}

/// Builds a `Set-Cookie` value for an HttpOnly, SameSite=Lax cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .ok()
}

/// Verifies a bearer token, remembering tokens that verified; `true` with
/// a token verified now rather than taken from the cache.
async fn verify_cached(state: &AppState, token: &str) -> Result<(Verified, bool), DomainError> {
    let now = state.clock.now();
    if let Some(v) = state.tokens.get(token, now) {
        return Ok((v, false));
    }
    let principal = state.verifier.verify(token).await?;
    let platform_issued = state
        .issuer
        .as_ref()
        .is_some_and(|i| issuer_of(token).as_deref() == Some(i.issuer()));
    let v = Verified {
        principal,
        platform_issued,
    };
    state.tokens.put(token, &v, now);
    Ok((v, true))
}

/// The caller a token speaks for, as the store says now: the signature
/// proves who the subject is, the store what they may do (see `live`).
async fn principal_of(
    state: &AppState,
    token: &str,
    request_id: &str,
) -> Result<Principal, DomainError> {
    let (v, fresh) = verify_cached(state, token).await?;
    live(state, token, v, fresh, request_id).await
}

/// The rights of a verified token's subject, as the store says now. The
/// subject of an identity provider's token is provisioned on its first
/// request and, when provisioned so, re-synced from each new token
/// (`provision`).
async fn live(
    state: &AppState,
    token: &str,
    v: Verified,
    fresh: bool,
    request_id: &str,
) -> Result<Principal, DomainError> {
    if !v.platform_issued {
        let profile = crate::provision::TokenProfile::of_token(token);
        return crate::provision::external_subject(
            state,
            &v.principal,
            &profile,
            fresh,
            request_id,
        )
        .await;
    }
    state
        .access
        .resolve(
            &*state.store,
            state.clock.now(),
            v.principal,
            v.platform_issued,
        )
        .await
}

/// Middleware: verifies the caller's credential, if any, and records the
/// outcome for the `Caller` extractor. Never rejects by itself, so public
/// routes stay reachable with a stale token.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let request_id = request_id(headers);
    let mut new_cookie = None;
    let outcome = if let Some(token) = bearer(headers) {
        Some(if crate::agent_auth::is_agent_token(token) {
            AuthState::Rejected(DomainError::Unauthenticated(
                "an agent credential opens only the agent API (/api/agent/v1/…)".into(),
            ))
        } else {
            match principal_of(&state, token, &request_id).await {
                Ok(p) => AuthState::Authenticated(p),
                Err(e) => AuthState::Rejected(e),
            }
        })
    } else if cookie(headers, ACCESS_COOKIE).is_some() || cookie(headers, REFRESH_COOKIE).is_some()
    {
        // A cookie rides along with requests other sites make: a change
        // carried by the cookie alone must prove it comes from this site.
        let changes = !matches!(
            *req.method(),
            axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
        );
        if changes && req.uri().path().starts_with("/api/") && !proven_same_origin(headers) {
            Some(AuthState::Rejected(DomainError::Forbidden(
                "a change made with the session cookie must come from this site's pages (send Origin, or use a bearer token)".into(),
            )))
        } else {
            cookie_session(&state, headers, &mut new_cookie, &request_id).await
        }
    } else {
        None
    };
    if let Some(o) = outcome {
        if let AuthState::Authenticated(p) = &o {
            tracing::Span::current().record("user", tracing::field::display(&p.username));
        }
        req.extensions_mut().insert(o);
    }
    let mut resp = next.run(req).await;
    if let Some(c) = new_cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// The session carried by the cookies: the access cookie, else a fresh
/// access token from the refresh cookie (set again on the response).
async fn cookie_session(
    state: &AppState,
    headers: &HeaderMap,
    new_cookie: &mut Option<HeaderValue>,
    request_id: &str,
) -> Option<AuthState> {
    let access = cookie(headers, ACCESS_COOKIE).map(str::to_string);
    let refresh = cookie(headers, REFRESH_COOKIE).map(str::to_string);
    let mut verified = None;
    if let Some(token) = &access {
        if let Ok((v, fresh)) = verify_cached(state, token).await {
            // The signature holds: the store decides (a subject that is
            // gone is refused; its refresh cookie cannot help either).
            match live(state, token, v, fresh, request_id).await {
                Ok(p) => verified = Some(p),
                Err(e) => return Some(AuthState::Rejected(e)),
            }
        }
    }
    match (verified, refresh) {
        (Some(p), _) => Some(AuthState::Authenticated(p)),
        (None, Some(r)) => match session::access_from_refresh(state, &r).await {
            Ok((issued, p)) => {
                let ttl = (issued.expires_at - state.clock.now()).num_seconds();
                *new_cookie = set_cookie(
                    ACCESS_COOKIE,
                    &issued.token,
                    ttl,
                    state.config.secure_cookies,
                );
                Some(AuthState::Authenticated(p))
            }
            Err(e) => Some(AuthState::Rejected(e)),
        },
        (None, None) if access.is_some() => Some(AuthState::Rejected(
            DomainError::Unauthenticated("your session has expired; sign in again".into()),
        )),
        (None, None) => None,
    }
}

/// The authenticated caller of a request, with its lab selection.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: String,
    pub selected_lab: Option<LabId>,
    pub acting_lab: Option<LabId>,
}

/// Which labs a read may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadScope {
    Lab(LabId),
    /// Every lab (IT admins without a lab selected).
    All,
}

impl ReadScope {
    /// The lab filter for a store query.
    pub fn lab_filter(&self) -> Option<LabId> {
        match self {
            ReadScope::Lab(l) => Some(*l),
            ReadScope::All => None,
        }
    }
}

/// The lab a change happens in and the caller's role there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteScope {
    pub lab: LabId,
    pub role: Role,
    /// An IT admin acting explicitly in a lab they are not a member of.
    pub acting_it_admin: bool,
}

impl WriteScope {
    /// Whether the caller administers the lab.
    pub fn is_lab_admin(&self) -> bool {
        matches!(self.role, Role::LabAdmin | Role::ItAdmin)
    }
}

fn header_lab(parts: &Parts, name: &str) -> ApiResult<Option<LabId>> {
    match parts.headers.get(name) {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().unwrap_or("");
            Ok(Some(crate::extract::parse_id(name, s)?))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> ApiResult<Self> {
        let principal = match parts.extensions.get::<AuthState>() {
            Some(AuthState::Authenticated(p)) => p.clone(),
            Some(AuthState::Rejected(why)) => return Err(why.clone().into()),
            None => {
                return Err(DomainError::Unauthenticated(
                    "sign in first: send an Authorization: Bearer token".into(),
                )
                .into())
            }
        };
        let request_id = request_id(&parts.headers);
        let selected_lab = header_lab(parts, LAB_HEADER)?;
        let acting_lab = header_lab(parts, ACTING_LAB_HEADER)?;
        let caller = Caller {
            principal,
            request_id,
            selected_lab,
            acting_lab,
        };
        if let Ok(ReadScope::Lab(l)) = caller.read_scope() {
            tracing::Span::current().record("lab", tracing::field::display(l));
        }
        Ok(caller)
    }
}

impl Caller {
    fn default_lab(&self) -> Option<LabId> {
        self.principal.memberships.first().map(|m| m.lab_id)
    }

    /// Refuses callers who are not IT admins, saying what is reserved.
    ///
    /// # Errors
    /// `Forbidden` with `what`.
    pub fn require_it_admin(&self, what: &str) -> ApiResult<()> {
        if self.principal.it_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("only IT admins {what}")))
        }
    }

    /// Whether the caller may see resources of `lab`.
    pub fn can_read(&self, lab: LabId) -> bool {
        self.principal.it_admin || self.principal.role_in(lab).is_some()
    }

    /// The labs a read may see.
    ///
    /// # Errors
    /// `NotFound` for a selected lab the caller cannot see; `Forbidden` for
    /// a caller in no lab.
    pub fn read_scope(&self) -> ApiResult<ReadScope> {
        if let Some(l) = self.acting_lab.or(self.selected_lab) {
            return if self.can_read(l) {
                Ok(ReadScope::Lab(l))
            } else {
                Err(ApiError::not_found("lab"))
            };
        }
        if self.principal.it_admin {
            return Ok(ReadScope::All);
        }
        self.default_lab()
            .map(ReadScope::Lab)
            .ok_or_else(|| ApiError::forbidden("you are not a member of any lab"))
    }

    /// The lab a new resource is created in and the caller's role there.
    ///
    /// # Errors
    /// As `write_scope_for`.
    pub fn write_scope(&self) -> ApiResult<WriteScope> {
        let lab = self
            .acting_lab
            .or(self.selected_lab)
            .or_else(|| self.default_lab())
            .ok_or_else(|| {
                ApiError::forbidden(
                    "select a lab: send X-Westtek-Lab (or X-Westtek-Acting-Lab as an IT admin)",
                )
            })?;
        self.write_scope_for(lab)
    }

    /// The caller's right to change resources of `lab`.
    ///
    /// # Errors
    /// `NotFound` when the caller cannot see the lab at all; `Forbidden` for
    /// an IT admin who did not act explicitly.
    pub fn write_scope_for(&self, lab: LabId) -> ApiResult<WriteScope> {
        if let Some(role) = self.principal.role_in(lab) {
            return Ok(WriteScope {
                lab,
                role,
                acting_it_admin: false,
            });
        }
        if self.principal.it_admin {
            if self.acting_lab == Some(lab) {
                return Ok(WriteScope {
                    lab,
                    role: Role::ItAdmin,
                    acting_it_admin: true,
                });
            }
            return Err(ApiError::forbidden(
                "IT admins are read-only in labs they do not belong to; send X-Westtek-Acting-Lab to act explicitly",
            ));
        }
        Err(ApiError::not_found("lab"))
    }

    /// An audit draft for an action of this caller.
    pub fn audit(
        &self,
        lab: Option<LabId>,
        action: &str,
        target_kind: &str,
        target_id: impl ToString,
        mut details: serde_json::Value,
    ) -> AuditDraft {
        if let (Some(acting), serde_json::Value::Object(map)) = (self.acting_lab, &mut details) {
            if !self
                .principal
                .memberships
                .iter()
                .any(|m| m.lab_id == acting)
            {
                map.insert("acting_it_admin".into(), serde_json::Value::Bool(true));
            }
        }
        AuditDraft {
            actor_id: Some(self.principal.user_id),
            actor_name: self.principal.username.clone(),
            lab_id: lab,
            action: action.to_string(),
            target_kind: target_kind.to_string(),
            target_id: target_id.to_string(),
            request_id: self.request_id.clone(),
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use westtek_domain::{LabRole, UserId};

    fn caller(it_admin: bool, labs: &[(LabId, Role)]) -> Caller {
        Caller {
            principal: Principal {
                user_id: UserId::new(),
                username: "u".into(),
                it_admin,
                memberships: labs
                    .iter()
                    .map(|(l, r)| LabRole {
                        lab_id: *l,
                        role: *r,
                    })
                    .collect(),
            },
            request_id: "r".into(),
            selected_lab: None,
            acting_lab: None,
        }
    }

    #[test]
    fn a_researcher_reads_and_writes_only_their_own_lab() {
        let (mine, other) = (LabId::new(), LabId::new());
        let c = caller(false, &[(mine, Role::Researcher)]);
        assert_eq!(c.read_scope().unwrap(), ReadScope::Lab(mine));
        assert!(c.write_scope_for(mine).is_ok());
        assert!(matches!(
            c.write_scope_for(other),
            Err(ApiError::Domain(DomainError::NotFound { .. }))
        ));
        let mut probing = c.clone();
        probing.selected_lab = Some(other);
        assert!(probing.read_scope().is_err());
    }

    #[test]
    fn an_it_admin_reads_everything_but_changes_a_lab_only_when_acting() {
        let lab = LabId::new();
        let mut c = caller(true, &[]);
        assert_eq!(c.read_scope().unwrap(), ReadScope::All);
        assert!(matches!(
            c.write_scope_for(lab),
            Err(ApiError::Domain(DomainError::Forbidden(_)))
        ));
        c.acting_lab = Some(lab);
        let w = c.write_scope_for(lab).unwrap();
        assert!(w.acting_it_admin);
        let a = c.audit(
            Some(lab),
            "environment.delete",
            "environment",
            "e",
            serde_json::json!({}),
        );
        assert_eq!(a.details["acting_it_admin"], true);
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; westtek_access=tok; b=2"),
        );
        assert_eq!(cookie(&h, ACCESS_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, REFRESH_COOKIE), None);
    }
}
