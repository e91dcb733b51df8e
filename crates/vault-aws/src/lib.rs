//! The vault's adapters for AWS: its [`Storage`](westtek_vault::Storage)
//! port on S3 ([`S3Storage`]) and its [`KeyWrapper`](westtek_vault::KeyWrapper)
//! port on KMS ([`KmsWrapper`]).
//!
//! Every client runs on the workspace's one HTTP stack (hyper 1, rustls with
//! ring) and on a small runtime of its own, so the vault's synchronous ports
//! can be called from any thread it uses. Credentials, region and endpoint
//! come from the standard AWS environment.

/// Test support: the shared throwaway moto server (see `westtek_aws`).
#[cfg(feature = "testing")]
pub mod testing {
    pub use westtek_aws::testing::Moto;
}

mod kms;
mod s3;

pub use kms::{kms_client_for_endpoint, KmsWrapper};
pub use s3::{client_for_endpoint, client_from_env, parse_s3_url, S3Options, S3Storage, ThawState};

use westtek_vault::StorageError;

pub(crate) use westtek_aws::OwnRuntime;
pub use westtek_aws::{http_client, shared_config};

/// The small runtime an [`S3Storage`] runs its requests on.
///
/// # Errors
/// When the runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime, StorageError> {
    westtek_aws::runtime("westtek-s3")
        .map_err(|e| StorageError::Backend(format!("starting the S3 client's runtime: {e}")))
}
