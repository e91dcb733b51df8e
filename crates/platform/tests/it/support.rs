//! A platform router over a SQLite store in a temp dir, verifying Cognito
//! tokens signed here with a test RSA key whose JWKS a local server serves
//! (the shape of `westtek-auth`'s Cognito test support). The ports the
//! sign-in path never touches (builder, runtime, vault, bus) are stubs that
//! refuse.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tower::ServiceExt;
use westtek_auth::cognito::{CognitoConfig, CognitoVerifier};
use westtek_domain::ports::*;
use westtek_domain::*;
use westtek_platform::config::PlatformConfig;
use westtek_platform::jobs::JobHub;
use westtek_platform::state::AppState;
use westtek_store::sqlite::SqliteStore;

pub const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Prov";
pub const CLIENT_ID: &str = "prov-client";

struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        Key {
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "prov-key",
                "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
            }),
        }
    })
}

/// A Cognito access token for `sub` (username `username`) in `groups`;
/// each call gives a distinct token (its `jti`), as a new sign-in does.
pub fn token(sub: UserId, username: &str, groups: &[String], extra: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": sub.to_string(),
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "jti": uuid::Uuid::new_v4().to_string(),
        "username": username,
        "cognito:groups": groups,
    });
    if let (Some(c), Value::Object(e)) = (claims.as_object_mut(), extra) {
        c.extend(e);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("prov-key".into());
    jsonwebtoken::encode(&header, &claims, &key().encoding).unwrap()
}

/// Serves the test key's JWKS; returns its URL.
async fn jwks_server() -> String {
    let jwks = json!({ "keys": [key().jwk.clone()] });
    let app = Router::new().route(
        "/pool/.well-known/jwks.json",
        get(move || {
            let j = jwks.clone();
            async move { Json(j) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/pool/.well-known/jwks.json")
}

/// One platform process: its router and its store.
pub struct App {
    pub router: Router,
    pub store: Arc<dyn MetadataStore>,
}

/// A platform process on the metadata database `db`, trusting the test
/// pool (as on the AWS profile: no platform-issued tokens).
pub async fn app(db: &Path) -> App {
    let cfg = CognitoConfig {
        issuer: ISSUER.into(),
        jwks_url: jwks_server().await,
        client_id: Some(CLIENT_ID.into()),
        accepted_token_use: vec!["access".into()],
        jwks_refresh_min_interval: Duration::from_secs(60),
    };
    app_for(db, cfg).await
}

/// A platform process on `db` trusting the user pool `cfg` describes.
pub async fn app_for(db: &Path, cfg: CognitoConfig) -> App {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn MetadataStore> =
        Arc::new(SqliteStore::open(db, clock.clone()).await.unwrap());
    let verifier = CognitoVerifier::new(cfg, reqwest::Client::new());
    let state = AppState {
        store: store.clone(),
        bus: Arc::new(Refuse),
        verifier: Arc::new(verifier),
        issuer: None,
        clock: clock.clone(),
        builder: Arc::new(Refuse),
        runtime: Arc::new(Refuse),
        snapshots: Arc::new(Refuse),
        jobs: JobHub::new(store.clone(), clock),
        vault_queue: westtek_platform::queue::FairQueue::new(Default::default()),
        config: Arc::new(PlatformConfig::local("http://platform.test")),
        responses: Default::default(),
        tokens: Default::default(),
        access: Default::default(),
        sign_in_failures: Default::default(),
    };
    let router = westtek_platform::serve_stack(westtek_platform::router(), state, None);
    App { router, store }
}

impl App {
    /// `GET path` with `token`: the status and the JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `method path` with `token`, a JSON body and extra headers: the
    /// status and the JSON body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, String)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let resp = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Creates a lab directly in the store.
    pub async fn lab(&self, name: &str) -> LabId {
        let lab = Lab {
            id: LabId::new(),
            name: Slug::parse_field(name, "name").unwrap(),
            display_name: name.into(),
            created_at: chrono::Utc::now(),
            quotas: LabQuotas::default(),
        };
        self.store
            .commit(vec![Write::InsertLab(lab.clone())], vec![])
            .await
            .unwrap();
        lab.id
    }

    /// The audit entries of `action`, oldest first.
    pub async fn audits(&self, action: &str) -> Vec<AuditEntry> {
        let (all, _) = self.store.audit_chain().await.unwrap();
        all.into_iter().filter(|e| e.action == action).collect()
    }
}

/// Refuses everything: the sign-in path must not need these ports.
struct Refuse;

fn refused<T>() -> Result<T> {
    Err(DomainError::Internal("not available in this test".into()))
}

#[async_trait]
impl EventBus for Refuse {
    async fn publish(&self, _event: &DomainEvent) -> Result<()> {
        refused()
    }
    async fn subscribe(&self, _group: &str) -> Result<EventStream> {
        refused()
    }
}

#[async_trait]
impl EnvironmentBuilder for Refuse {
    async fn build(
        &self,
        _spec: &BuildSpec,
        _progress: Arc<dyn ProgressSink>,
    ) -> Result<BuildOutcome> {
        refused()
    }
    async fn remove(&self, _env: EnvironmentId) -> Result<()> {
        refused()
    }
    fn root(&self, _env: EnvironmentId) -> PathBuf {
        PathBuf::from("/nonexistent")
    }
}

#[async_trait]
impl JupyterRuntime for Refuse {
    async fn start(&self, _spec: &LaunchSpec) -> Result<ServerInfo> {
        refused()
    }
    async fn stop(&self, _env: EnvironmentId) -> Result<()> {
        refused()
    }
    async fn upstream(&self, _env: EnvironmentId) -> Option<JupyterUpstream> {
        None
    }
    fn touch(&self, _env: EnvironmentId) {}
    async fn running(&self) -> Vec<ServerInfo> {
        vec![]
    }
    async fn take_exited(&self) -> Vec<(EnvironmentId, JupyterExit)> {
        vec![]
    }
    async fn stop_all(&self) {}
}

#[async_trait]
impl SnapshotEngine for Refuse {
    async fn capture(
        &self,
        _req: &CaptureRequest,
        _progress: Arc<dyn ProgressSink>,
    ) -> Result<CaptureOutcome> {
        refused()
    }
    async fn restore(
        &self,
        _engine_id: &str,
        _source: EnvironmentId,
        _target: EnvironmentId,
        _progress: Arc<dyn ProgressSink>,
    ) -> Result<RestoreOutcome> {
        refused()
    }
    async fn inventory(&self, _engine_id: &str) -> Result<Value> {
        refused()
    }
    async fn diff(&self, _a: &str, _b: &str) -> Result<Value> {
        refused()
    }
    async fn delete(&self, _engine_id: &str) -> Result<()> {
        refused()
    }
    async fn drill(
        &self,
        _engine_id: &str,
        _progress: Arc<dyn ProgressSink>,
    ) -> Result<DrillResult> {
        refused()
    }
    async fn gc(&self) -> Result<Value> {
        refused()
    }
    async fn verify(&self, _read_data: bool) -> Result<Value> {
        refused()
    }
}
