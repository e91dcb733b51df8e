//! Test fixtures: RSA keys, a JWKS server on 127.0.0.1:0 that counts its
//! requests, and RS256 token signing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use westtek_auth::cognito::{CognitoConfig, CognitoVerifier};

pub const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test";
pub const CLIENT_ID: &str = "test-client-id";

/// An RSA key pair as a test identity provider holds it.
pub struct TestKey {
    pub kid: &'static str,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    fn generate(kid: &'static str) -> Self {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        let jwk = json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        });
        TestKey {
            kid,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk,
        }
    }

    /// Signs `claims` with RS256 under this key's `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    /// Signs `claims` with RS256 but names `kid` in the header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// Two keys, generated once per test binary (2048-bit generation is slow).
pub fn keys() -> &'static (TestKey, TestKey) {
    static KEYS: OnceLock<(TestKey, TestKey)> = OnceLock::new();
    KEYS.get_or_init(|| (TestKey::generate("key-a"), TestKey::generate("key-b")))
}

#[derive(Clone)]
struct Shared {
    jwks: Arc<RwLock<Value>>,
    hits: Arc<AtomicUsize>,
}

/// A JWKS endpoint whose document can be swapped and whose requests are
/// counted.
pub struct JwksServer {
    pub base: String,
    shared: Shared,
}

impl JwksServer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let shared = Shared {
            jwks: Arc::new(RwLock::new(jwks(keys))),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let app = Router::new()
            .route("/pool/.well-known/jwks.json", get(serve_jwks))
            .route(
                "/broken/.well-known/jwks.json",
                get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer {
            base: format!("http://{addr}"),
            shared,
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/pool/.well-known/jwks.json", self.base)
    }

    pub fn serve(&self, keys: &[&TestKey]) {
        *self.shared.jwks.write().unwrap() = jwks(keys);
    }

    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// A verifier for this server accepting `uses`, with the client id set.
    pub fn verifier(&self, uses: &[&str], min_interval: Duration) -> CognitoVerifier {
        CognitoVerifier::new(
            CognitoConfig {
                issuer: ISSUER.to_owned(),
                jwks_url: self.jwks_url(),
                client_id: Some(CLIENT_ID.to_owned()),
                accepted_token_use: uses.iter().map(|u| (*u).to_owned()).collect(),
                jwks_refresh_min_interval: min_interval,
            },
            reqwest::Client::new(),
        )
    }
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
}

async fn serve_jwks(State(s): State<Shared>) -> Json<Value> {
    s.hits.fetch_add(1, Ordering::SeqCst);
    Json(s.jwks.read().unwrap().clone())
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a Cognito access token for `sub`, valid for an hour.
pub fn access_claims(sub: &str, groups: &[String]) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "client_id": CLIENT_ID,
        "origin_jti": "5b0c3e1e-1111-4222-8333-944455556666",
        "event_id": "e1",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now(),
        "iat": now(),
        "exp": now() + 3600,
        "jti": "0b6e3a6e-1111-4222-8333-944455556666",
        "username": "ada",
        "cognito:groups": groups,
    })
}

/// Claims of a Cognito ID token for `sub`, valid for an hour.
pub fn id_claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "token_use": "id",
        "auth_time": now(),
        "iat": now(),
        "exp": now() + 3600,
        "cognito:username": "grace",
        "email": "grace@example.org",
    })
}
