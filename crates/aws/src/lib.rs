//! What every AWS adapter of the platform shares.
//!
//! - one HTTP stack ([`http_client`]: hyper 1 with rustls on ring, the
//!   workspace's only TLS stack; no aws-lc, no hyper 0.14);
//! - the SDK configuration from the standard AWS environment
//!   ([`shared_config`]: credentials chain, region, `AWS_ENDPOINT_URL` and
//!   `AWS_ENDPOINT_URL_<SERVICE>`), or for an explicit endpoint with static
//!   credentials ([`config_for_endpoint`]: moto, MinIO);
//! - a runtime of a client's own ([`OwnRuntime`]) for adapters behind
//!   synchronous ports (the vault), dropped safely from async code;
//! - with feature `testing`, [`testing::Moto`]: a throwaway `moto_server`.

#[cfg(feature = "testing")]
pub mod testing;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
pub use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The HTTP client of every AWS adapter: hyper 1 with rustls on ring.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The shared SDK configuration from the standard AWS environment: region
/// from `AWS_REGION` / `AWS_DEFAULT_REGION` or the profile (ECS and Lambda set
/// `AWS_REGION`), else `us-east-1`; instance metadata is not asked for the
/// region (on a lab machine it is absent and each try logs a warning).
/// Endpoints follow `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`.
pub async fn shared_config(max_attempts: u32) -> SdkConfig {
    let region = aws_config::meta::region::RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::new())
    .or_else(aws_config::Region::new("us-east-1"));
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .region(region)
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .load()
        .await
}

/// The SDK configuration for an explicit endpoint with static credentials
/// (moto, MinIO, a VPC endpoint): region `us-east-1`, five attempts.
pub fn config_for_endpoint(endpoint: &str, access_key: &str, secret: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(access_key, secret, None, None, "static"),
            ),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .build()
}

/// Whether the environment points `service` (e.g. `S3`, `DYNAMODB`) at a
/// custom endpoint (`AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`).
pub fn endpoint_overridden(service: &str) -> bool {
    [
        format!("AWS_ENDPOINT_URL_{service}"),
        "AWS_ENDPOINT_URL".to_string(),
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// An error and every error under it, joined with ": ". The SDK's errors
/// other than service errors say only the outermost layer ("dispatch
/// failure"); the cause a user can act on (connection refused, DNS, TLS)
/// is in their sources.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// A small multi-threaded runtime named `thread_name`, for a client behind a
/// synchronous port.
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime(thread_name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(thread_name)
        .enable_all()
        .build()
}

/// A client's own runtime, shut down without waiting when dropped: the
/// adapter may be dropped on an async thread (the platform shutting down),
/// where dropping a runtime the normal way panics.
pub struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    pub fn new(rt: tokio::runtime::Runtime) -> Self {
        OwnRuntime(Some(rt))
    }

    /// Runs `f` to completion on this runtime (from a thread that is not
    /// itself inside a runtime).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.0 {
            Some(rt) => rt.block_on(f),
            // Only `drop` takes it.
            None => unreachable!("the runtime is present until drop"),
        }
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
