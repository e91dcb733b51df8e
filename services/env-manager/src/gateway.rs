//! The authenticated Jupyter gateway: `/jupyter/{env_id}/…` is proxied,
//! HTTP and WebSocket, to the environment's Jupyter server after the
//! platform identity and lab are checked.
//!
//! Policy:
//! - Only the environment's researcher, a lab admin, or an IT admin acting
//!   in the lab get through; other labs get 404, like every other API.
//! - Jupyter's own token is injected as `Authorization: token …` on the way
//!   in and scrubbed from HTML/JSON/JS bodies on the way out, so it never
//!   reaches the browser; the platform's cookies and bearer never reach
//!   Jupyter.
//! - WebSocket upgrades must come from this site (`Origin` equals `Host`),
//!   which stops cross-site pages from driving a kernel with the user's
//!   cookie.
//! - Local servers listen on a Unix socket inside their environment: the
//!   gateway is the only way in (see `westtek_runtime::sandbox`).

use crate::environments::operable;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::OnceLock;
use westtek_domain::ports::UpstreamAddr;
use westtek_domain::EnvironmentId;
use westtek_platform::auth::{
    proven_same_origin, same_origin, Caller, ACCESS_COOKIE, REFRESH_COOKIE,
};
use westtek_platform::{problem, ApiError, AppState};

/// Bodies larger than this are streamed as they are (never scrubbed): large
/// downloads are files, not pages carrying the token.
const SCRUB_LIMIT: usize = 16 * 1024 * 1024;

/// Routes of the gateway.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jupyter/{env_id}", any(proxy))
        .route("/jupyter/{env_id}/", any(proxy))
        .route("/jupyter/{env_id}/{*rest}", any(proxy))
}

fn client() -> &'static Client<UpstreamConnector, Body> {
    static CLIENT: OnceLock<Client<UpstreamConnector, Body>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(32)
            .build(UpstreamConnector {
                tcp: HttpConnector::new(),
            })
    })
}

/// Connects to TCP origins as usual, and to Unix sockets named by a host of
/// the form `<hex of the socket path>.sock` (one pool per socket).
#[derive(Clone)]
struct UpstreamConnector {
    tcp: HttpConnector,
}

/// The URI authority standing for a Unix socket.
fn socket_authority(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    format!("{}.sock", hex::encode(path.as_os_str().as_bytes()))
}

fn socket_of(uri: &Uri) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let hex_path = uri.host()?.strip_suffix(".sock")?;
    let bytes = hex::decode(hex_path).ok()?;
    Some(std::ffi::OsString::from_vec(bytes).into())
}

/// Either kind of upstream stream.
enum UpstreamIo {
    Tcp(TokioIo<tokio::net::TcpStream>),
    Unix(TokioIo<tokio::net::UnixStream>),
}

impl hyper_util::client::legacy::connect::Connection for UpstreamIo {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        match self {
            UpstreamIo::Tcp(s) => hyper_util::client::legacy::connect::Connection::connected(s),
            UpstreamIo::Unix(_) => hyper_util::client::legacy::connect::Connected::new(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            UpstreamIo::Tcp($s) => $e,
            UpstreamIo::Unix($s) => $e,
        }
    };
}

impl hyper::rt::Read for UpstreamIo {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => std::pin::Pin::new(s).poll_read(cx, buf))
    }
}

impl hyper::rt::Write for UpstreamIo {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        delegate!(self, s => std::pin::Pin::new(s).poll_write(cx, buf))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => std::pin::Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        delegate!(self, s => std::pin::Pin::new(s).poll_shutdown(cx))
    }
}

impl tower::Service<Uri> for UpstreamConnector {
    type Response = UpstreamIo;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<UpstreamIo, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if let Some(path) = socket_of(&uri) {
            return Box::pin(async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok(UpstreamIo::Unix(TokioIo::new(s)))
            });
        }
        let connecting = self.tcp.call(uri);
        Box::pin(async move {
            let s = connecting.await?;
            Ok(UpstreamIo::Tcp(s))
        })
    }
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn env_id_of(uri: &Uri) -> Option<EnvironmentId> {
    uri.path()
        .strip_prefix("/jupyter/")?
        .split('/')
        .next()
        .and_then(|s| EnvironmentId::parse(s).ok())
}

/// Cookies minus the platform's own.
fn foreign_cookies(h: &HeaderMap) -> Option<HeaderValue> {
    let kept: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|kv| {
            let name = kv.split('=').next().unwrap_or("");
            !kv.is_empty() && name != ACCESS_COOKIE && name != REFRESH_COOKIE
        })
        .map(str::to_string)
        .collect();
    if kept.is_empty() {
        None
    } else {
        HeaderValue::from_str(&kept.join("; ")).ok()
    }
}

/// Drops `Set-Cookie` headers that would set the platform's own cookies:
/// code running in an environment must not plant a session in the browser.
fn drop_platform_cookies(h: &mut HeaderMap) {
    let kept: Vec<HeaderValue> = h
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let name = v
                .to_str()
                .unwrap_or("")
                .split('=')
                .next()
                .unwrap_or("")
                .trim();
            !name.to_ascii_lowercase().starts_with("westtek_")
        })
        .cloned()
        .collect();
    h.remove(header::SET_COOKIE);
    for v in kept {
        h.append(header::SET_COOKIE, v);
    }
}

async fn proxy(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    mut req: Request,
) -> Response {
    let Some(env_id) = env_id_of(req.uri()) else {
        return problem(StatusCode::NOT_FOUND, "not_found", "environment not found");
    };
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = operable(&state, &caller, env_id).await {
        return e.into_response();
    }
    let Some(up) = state.runtime.upstream(env_id).await else {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "jupyter_not_running",
            "Jupyter is not running for this environment; launch it first",
        );
    };
    state.runtime.touch(env_id);

    let upgrade = is_upgrade(req.headers());
    if upgrade && !same_origin(req.headers()) {
        return problem(
            StatusCode::FORBIDDEN,
            "cross_origin_websocket",
            "WebSocket connections must come from this site",
        );
    }
    // Jupyter's own XSRF check is off for token-authenticated requests, and
    // the gateway authenticates every request with the token: so changes
    // carried by the browser's cookie must prove they come from this site.
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let by_cookie = req.headers().get(header::AUTHORIZATION).is_none();
    if unsafe_method && by_cookie && !proven_same_origin(req.headers()) {
        return problem(
            StatusCode::FORBIDDEN,
            "cross_origin_request",
            "changes through the browser must come from this site",
        );
    }
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let origin = match &up.addr {
        UpstreamAddr::Tcp(origin) => origin.clone(),
        UpstreamAddr::Unix(path) => format!("http://{}", socket_authority(path)),
    };
    let Ok(target) = format!("{origin}{path_q}").parse::<Uri>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "the path cannot be proxied",
        );
    };

    // Headers for Jupyter: drop hop-by-hop (except the upgrade pair), the
    // platform's credentials and the browser's Origin, add Jupyter's token.
    let mut headers = HeaderMap::new();
    for (k, v) in req.headers() {
        let name = k.as_str();
        let skip = HOP_BY_HOP.contains(&name)
            || k == header::HOST
            || k == header::COOKIE
            || k == header::AUTHORIZATION
            || k == header::ORIGIN
            || k == header::ACCEPT_ENCODING
            || k == header::CONTENT_LENGTH && upgrade;
        if !skip {
            headers.append(k.clone(), v.clone());
        }
    }
    if let Some(c) = foreign_cookies(req.headers()) {
        headers.insert(header::COOKIE, c);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("token {}", up.token)) {
        headers.insert(header::AUTHORIZATION, v);
    }
    if matches!(up.addr, UpstreamAddr::Unix(_)) {
        // Jupyter serves local Host names only.
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }

    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let method = req.method().clone();
    let body = if upgrade {
        Body::empty()
    } else {
        req.into_body()
    };
    let mut builder = hyper::Request::builder().method(method).uri(target);
    if let Some(h) = builder.headers_mut() {
        *h = headers;
    }
    let Ok(up_req) = builder.body(body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request cannot be proxied",
        );
    };
    let mut up_resp = match client().request(up_req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, env = %env_id, "Jupyter unreachable");
            return problem(
                StatusCode::BAD_GATEWAY,
                "jupyter_unreachable",
                "Jupyter did not answer; it may be restarting",
            );
        }
    };

    if up_resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return problem(
                StatusCode::BAD_GATEWAY,
                "jupyter_unreachable",
                "unexpected protocol switch",
            );
        };
        let server_upgrade = hyper::upgrade::on(&mut up_resp);
        let touch_state = state.clone();
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, server_upgrade) {
                Ok((c, s)) => {
                    let mut c = TokioIo::new(c);
                    let mut s = TokioIo::new(s);
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                    touch_state.runtime.touch(env_id);
                }
                Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
            }
        });
        drop_platform_cookies(up_resp.headers_mut());
        let mut resp = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        for (k, v) in up_resp.headers() {
            if let Some(h) = resp.headers_mut() {
                h.append(k.clone(), v.clone());
            }
        }
        return resp.body(Body::empty()).unwrap_or_else(|_| {
            problem(
                StatusCode::BAD_GATEWAY,
                "jupyter_unreachable",
                "bad upgrade",
            )
        });
    }

    let (mut parts, body) = up_resp.into_parts();
    for name in HOP_BY_HOP {
        parts.headers.remove(HeaderName::from_static(name));
    }
    drop_platform_cookies(&mut parts.headers);
    let scrub = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("text/html") || ct.contains("json") || ct.contains("javascript")
        });
    let small = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_none_or(|n| n <= SCRUB_LIMIT);
    if scrub && small {
        let bytes = match http_body_util::Limited::new(body, SCRUB_LIMIT)
            .collect()
            .await
        {
            Ok(c) => c.to_bytes(),
            Err(_) => {
                return problem(
                    StatusCode::BAD_GATEWAY,
                    "jupyter_unreachable",
                    "Jupyter's answer could not be read",
                )
            }
        };
        let cleaned = scrub_token(&bytes, up.token.as_bytes());
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(cleaned));
    }
    Response::from_parts(parts, Body::new(body))
}

/// `body` with every occurrence of `token` removed.
fn scrub_token(body: &[u8], token: &[u8]) -> Vec<u8> {
    if token.is_empty() || body.len() < token.len() {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(token) {
            i += token.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_path_round_trips_through_the_uri_authority() {
        let path = std::path::Path::new("/srv/west tek/envs/é/jupyter/runtime/jupyter.sock");
        let uri: Uri = format!("http://{}/jupyter/x/api", socket_authority(path))
            .parse()
            .unwrap();
        assert_eq!(socket_of(&uri).unwrap(), path);
        let tcp: Uri = "http://127.0.0.1:8888/x".parse().unwrap();
        assert_eq!(socket_of(&tcp), None);
    }

    #[test]
    fn the_token_is_scrubbed_from_a_page_config() {
        let page = br#"{"baseUrl": "/jupyter/x/", "token": "abc123", "other": "abc12"}"#;
        let out = scrub_token(page, b"abc123");
        assert_eq!(
            out,
            br#"{"baseUrl": "/jupyter/x/", "token": "", "other": "abc12"}"#
        );
    }

    #[test]
    fn platform_cookies_are_not_forwarded_to_jupyter() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("westtek_access=a; _xsrf=x; westtek_refresh=r"),
        );
        assert_eq!(foreign_cookies(&h).unwrap(), "_xsrf=x");
    }

    #[test]
    fn jupyter_cannot_set_the_platforms_cookies() {
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("_xsrf=1; Path=/jupyter/x/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("westtek_access=forged; Path=/"),
        );
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("WESTTEK_refresh=forged; Path=/"),
        );
        drop_platform_cookies(&mut h);
        let left: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(
            left,
            vec![HeaderValue::from_static("_xsrf=1; Path=/jupyter/x/")]
        );
    }

    #[test]
    fn a_cookie_request_without_origin_or_fetch_metadata_is_not_proven_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!proven_same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(!proven_same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(proven_same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8081"),
        );
        assert!(!proven_same_origin(&h));
    }

    #[test]
    fn a_websocket_from_another_site_is_not_same_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
