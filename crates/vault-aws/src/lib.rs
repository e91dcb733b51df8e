//! The vault's adapters for AWS: its [`Storage`](westtek_vault::Storage)
//! port on S3 ([`S3Storage`]) and its [`KeyWrapper`](westtek_vault::KeyWrapper)
//! port on KMS ([`KmsWrapper`]).
//!
//! Every client runs on the workspace's one HTTP stack (hyper 1, rustls with
//! ring) and on a small runtime of its own, so the vault's synchronous ports
//! can be called from any thread it uses. Credentials, region and endpoint
//! come from the standard AWS environment.

#[cfg(feature = "testing")]
pub mod testing;

mod kms;
mod s3;

pub use kms::{kms_client_for_endpoint, KmsWrapper};
pub use s3::{client_for_endpoint, client_from_env, parse_s3_url, S3Options, S3Storage, ThawState};

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use westtek_vault::StorageError;

/// The HTTP client of every AWS adapter: hyper 1 with rustls on ring, the
/// workspace's one TLS stack.
pub fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The small runtime an [`S3Storage`] runs its requests on.
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime, StorageError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("westtek-s3")
        .enable_all()
        .build()
        .map_err(|e| StorageError::Backend(format!("starting the S3 client's runtime: {e}")))
}

/// A client's own runtime, shut down without waiting when dropped: the
/// adapter may be dropped on an async thread (the platform shutting down),
/// where dropping a runtime the normal way panics.
pub(crate) struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    pub(crate) fn new(rt: tokio::runtime::Runtime) -> Self {
        OwnRuntime(Some(rt))
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
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

/// The shared SDK configuration from the standard AWS environment: region
/// from `AWS_REGION` / `AWS_DEFAULT_REGION` or the profile (ECS and Lambda set
/// `AWS_REGION`), else `us-east-1`; instance metadata is not asked for the
/// region (on a lab machine it is absent and each try logs a warning).
pub async fn shared_config(max_attempts: u32) -> aws_config::SdkConfig {
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
