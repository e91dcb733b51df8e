//! The vault's [`Storage`] port on Amazon S3.
//!
//! A vault's objects (see `docs/VAULT-FORMAT.md`) map one to one onto S3
//! objects under a prefix: `s3://BUCKET/PREFIX/<key>`, so a vault folder
//! copied into a bucket (`aws s3 sync vault/ s3://BUCKET/PREFIX/`) is the same
//! vault. Objects are immutable:
//!
//! - `put` is a conditional create (`If-None-Match: *`), so an existing
//!   object is never replaced and a race between two writers is decided by
//!   S3 ([`StorageError::AlreadyExists`] for the loser). Objects larger than
//!   the multipart threshold (32 MiB; packs are ~32 MiB) go up in parts,
//!   completed with the same condition, aborted on failure so no parts linger.
//! - Reads are whole objects or byte ranges; a range shorter than asked for
//!   is reported as a truncated object.
//! - An object that lifecycle rules moved to Glacier Flexible Retrieval or
//!   Deep Archive cannot be read directly: `get` asks S3 to thaw it
//!   (`RestoreObject`, kept readable for [`S3Options::thaw_days`] days) and
//!   fails with [`StorageError::Archived`]; reading it again once S3 has
//!   restored it (hours) succeeds. [`S3Storage::thaw_state`] tells where a
//!   thaw stands.
//!
//! Requests go through the SDK's standard retry mode (backoff with jitter,
//! [`S3Options::max_attempts`] attempts) on the SDK's own runtime, so the
//! synchronous port can be called from any thread the vault uses.
//! Credentials, region and endpoint come from the standard AWS environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, instance/task roles, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3`); with an endpoint override
//! (moto, MinIO) requests use path-style addressing.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, GlacierJobParameters, RestoreRequest, StorageClass,
    Tier,
};
use aws_sdk_s3::Client;
use std::future::Future;
use westtek_vault::{validate_key, ObjectInfo, Storage, StorageError};

/// Tuning of the adapter.
#[derive(Clone, Debug)]
pub struct S3Options {
    /// Objects at least this large are uploaded in parts.
    pub multipart_threshold: usize,
    /// Size of each part (S3's minimum is 5 MiB, except the last).
    pub part_size: usize,
    /// Attempts per request in the SDK's standard retry mode.
    pub max_attempts: u32,
    /// Days a thawed archived object stays readable.
    pub thaw_days: i32,
    /// Retrieval tier of thaws (`Standard`: ≤ 12 h from Deep Archive;
    /// `Bulk`: ≤ 48 h, cheaper).
    pub thaw_tier: Tier,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            multipart_threshold: 32 << 20,
            part_size: 16 << 20,
            max_attempts: 5,
            thaw_days: 7,
            thaw_tier: Tier::Standard,
        }
    }
}

/// Where an archived object's thaw stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThawState {
    /// In a normal storage class: readable now.
    Online,
    /// Archived and no thaw requested.
    Archived,
    /// A thaw is under way.
    Thawing,
    /// Thawed: readable until the restore expires.
    Thawed,
}

/// A vault in `s3://bucket/prefix`.
pub struct S3Storage {
    client: Client,
    bucket: String,
    /// Empty, or the prefix without a trailing `/`.
    prefix: String,
    options: S3Options,
    rt: crate::OwnRuntime,
}

/// Splits `s3://BUCKET/PREFIX` into bucket and prefix.
///
/// # Errors
/// A message when the URL is not of that form.
pub fn parse_s3_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3://BUCKET/PREFIX URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !valid_bucket {
        return Err(format!(
            "{bucket:?} is not a valid S3 bucket name (3–63 of a-z, 0-9, '.', '-')"
        ));
    }
    let prefix = prefix.trim_matches('/').to_string();
    if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains("//") {
        return Err(format!(
            "the prefix {prefix:?} has empty, '.' or '..' parts"
        ));
    }
    Ok((bucket.to_string(), prefix))
}

/// An S3 client for an explicit endpoint and static credentials (moto,
/// MinIO), path-style.
pub fn client_for_endpoint(endpoint: &str, access_key: &str, secret: &str) -> Client {
    let shared = westtek_aws::config_for_endpoint(endpoint, access_key, secret);
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// An S3 client configured from the standard AWS environment.
pub async fn client_from_env(max_attempts: u32) -> Client {
    let shared = crate::shared_config(max_attempts).await;
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(westtek_aws::endpoint_overridden("S3"))
        .build();
    Client::from_conf(conf)
}

impl S3Storage {
    /// The vault at `s3://bucket/prefix`, with credentials, region and
    /// endpoint from the standard AWS environment.
    ///
    /// # Errors
    /// When the client's runtime cannot start.
    pub fn from_env(bucket: &str, prefix: &str, options: S3Options) -> Result<Self, StorageError> {
        let rt = crate::runtime()?;
        let client = rt.block_on(client_from_env(options.max_attempts));
        Ok(Self::with_client(client, bucket, prefix, options, rt))
    }

    /// The vault at `url` (`s3://BUCKET/PREFIX`).
    ///
    /// # Errors
    /// A malformed URL, or the runtime cannot start.
    pub fn from_url(url: &str, options: S3Options) -> Result<Self, StorageError> {
        let (bucket, prefix) = parse_s3_url(url).map_err(StorageError::Backend)?;
        Self::from_env(&bucket, &prefix, options)
    }

    /// Over a client configured by the caller.
    pub fn with_client(
        client: Client,
        bucket: &str,
        prefix: &str,
        options: S3Options,
        rt: tokio::runtime::Runtime,
    ) -> Self {
        S3Storage {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            options,
            rt: crate::OwnRuntime::new(rt),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn object_key(&self, key: &str) -> Result<String, StorageError> {
        validate_key(key)?;
        Ok(if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Where the thaw of an object stands.
    ///
    /// # Errors
    /// [`StorageError::NotFound`], or backend failures.
    pub fn thaw_state(&self, key: &str) -> Result<ThawState, StorageError> {
        let k = self.object_key(key)?;
        let head = self
            .block(
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&k)
                    .send(),
            )
            .map_err(|e| map_err(key, "HeadObject", e))?;
        let archived = matches!(
            head.storage_class(),
            Some(StorageClass::Glacier | StorageClass::DeepArchive)
        );
        Ok(match (archived, head.restore()) {
            (false, _) => ThawState::Online,
            (true, None) => ThawState::Archived,
            (true, Some(r)) if r.contains("ongoing-request=\"true\"") => ThawState::Thawing,
            (true, Some(_)) => ThawState::Thawed,
        })
    }

    /// Asks S3 to thaw an archived object (a request already under way is
    /// not an error).
    ///
    /// # Errors
    /// Backend failures.
    pub fn request_thaw(&self, key: &str) -> Result<(), StorageError> {
        let k = self.object_key(key)?;
        let req = RestoreRequest::builder()
            .days(self.options.thaw_days)
            .glacier_job_parameters(
                GlacierJobParameters::builder()
                    .tier(self.options.thaw_tier.clone())
                    .build()
                    .map_err(|e| StorageError::Backend(e.to_string()))?,
            )
            .build();
        match self.block(
            self.client
                .restore_object()
                .bucket(&self.bucket)
                .key(&k)
                .restore_request(req)
                .send(),
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => Ok(()),
            Err(e) => Err(map_err(key, "RestoreObject", e)),
        }
    }

    /// GetObject (whole, or a `Range`); an archived object gets its thaw
    /// requested and is reported as [`StorageError::Archived`].
    fn fetch(&self, key: &str, range: Option<String>) -> Result<Vec<u8>, StorageError> {
        let k = self.object_key(key)?;
        let out = self.block(async {
            let resp = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&k)
                .set_range(range)
                .send()
                .await
                .map_err(|e| map_err(key, "GetObject", e))?;
            resp.body
                .collect()
                .await
                .map(|b| b.into_bytes().to_vec())
                .map_err(|e| StorageError::Backend(format!("S3 GetObject of {key}: {e}")))
        });
        if matches!(out, Err(StorageError::Archived(_))) {
            self.request_thaw(key)?;
        }
        out
    }

    fn put_multipart(&self, key: &str, k: &str, data: &[u8]) -> Result<(), StorageError> {
        let created = self
            .block(
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(k)
                    .send(),
            )
            .map_err(|e| map_err(key, "CreateMultipartUpload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::Backend(format!("{key}: S3 gave no upload id")))?
            .to_string();
        let result = (|| {
            let mut parts = Vec::new();
            for (i, chunk) in data.chunks(self.options.part_size.max(5 << 20)).enumerate() {
                let number = i32::try_from(i + 1)
                    .map_err(|_| StorageError::Backend(format!("{key}: too many parts")))?;
                let out = self
                    .block(
                        self.client
                            .upload_part()
                            .bucket(&self.bucket)
                            .key(k)
                            .upload_id(&upload_id)
                            .part_number(number)
                            .body(ByteStream::from(chunk.to_vec()))
                            .send(),
                    )
                    .map_err(|e| map_err(key, "UploadPart", e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                );
            }
            self.block(
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(k)
                    .upload_id(&upload_id)
                    .if_none_match("*")
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send(),
            )
            .map_err(|e| map_err(key, "CompleteMultipartUpload", e))
            .map(|_| ())
        })();
        if result.is_err() {
            let abort = self.block(
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(k)
                    .upload_id(&upload_id)
                    .send(),
            );
            if let Err(e) = abort {
                tracing::warn!(key, error = %e, "aborting a failed multipart upload failed; S3's lifecycle rule for incomplete uploads removes its parts");
            }
        }
        result
    }
}

/// Maps an SDK error onto the port's errors.
fn map_err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    key: &str,
    op: &str,
    e: SdkError<E, HttpResponse>,
) -> StorageError {
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (e.code(), status) {
        (Some("NoSuchBucket"), _) => StorageError::Backend(format!(
            "S3 {op} of {key}: the bucket does not exist (NoSuchBucket); create it first"
        )),
        (Some("NoSuchKey" | "NotFound"), _) | (_, Some(404)) => {
            StorageError::NotFound(key.to_string())
        }
        (Some("PreconditionFailed" | "ConditionalRequestConflict"), _) | (_, Some(412)) => {
            StorageError::AlreadyExists(key.to_string())
        }
        (Some("InvalidObjectState"), _) => StorageError::Archived(key.to_string()),
        (code, _) => {
            let detail = match &e {
                SdkError::ServiceError(se) => se.err().message().unwrap_or("").to_string(),
                other => westtek_aws::error_chain(other),
            };
            StorageError::Backend(format!(
                "S3 {op} of {key}: {}{detail}",
                code.map(|c| format!("{c}: ")).unwrap_or_default()
            ))
        }
    }
}

impl Storage for S3Storage {
    fn location(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let k = self.object_key(key)?;
        if data.len() >= self.options.multipart_threshold {
            return self.put_multipart(key, &k, data);
        }
        self.block(
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&k)
                .if_none_match("*")
                .body(ByteStream::from(data.to_vec()))
                .send(),
        )
        .map(|_| ())
        .map_err(|e| map_err(key, "PutObject", e))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        self.fetch(key, None)
    }

    fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        if len == 0 {
            return if self.exists(key)? {
                Ok(Vec::new())
            } else {
                Err(StorageError::NotFound(key.to_string()))
            };
        }
        let last = offset
            .checked_add(len - 1)
            .ok_or_else(|| StorageError::Backend(format!("{key}: range overflows")))?;
        let out = match self.fetch(key, Some(format!("bytes={offset}-{last}"))) {
            // A range past the end of the object.
            Err(StorageError::Backend(m)) if m.contains("InvalidRange") => Ok(Vec::new()),
            other => other,
        }?;
        if out.len() as u64 != len {
            return Err(StorageError::Io {
                key: key.to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "object is shorter than {} bytes (truncated)",
                        offset.saturating_add(len)
                    ),
                ),
            });
        }
        Ok(out)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let base = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let full = format!("{base}{prefix}");
        self.block(async {
            let mut out = Vec::new();
            let mut pages = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| map_err(prefix, "ListObjectsV2", e))?;
                for o in page.contents() {
                    let Some(k) = o.key().and_then(|k| k.strip_prefix(&base)) else {
                        continue;
                    };
                    if validate_key(k).is_err() {
                        continue; // not a vault object (e.g. a folder marker)
                    }
                    out.push(ObjectInfo {
                        key: k.to_string(),
                        size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                    });
                }
            }
            Ok(out)
        })
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let k = self.object_key(key)?;
        self.block(
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(&k)
                .send(),
        )
        .map(|_| ())
        .map_err(|e| map_err(key, "DeleteObject", e))
    }

    fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let k = self.object_key(key)?;
        match self.block(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(&k)
                .send(),
        ) {
            Ok(_) => Ok(true),
            Err(e) => match map_err(key, "HeadObject", e) {
                StorageError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix() {
        assert_eq!(
            parse_s3_url("s3://lab-vault/envs/a/").unwrap(),
            ("lab-vault".into(), "envs/a".into())
        );
        assert_eq!(
            parse_s3_url("s3://lab-vault").unwrap(),
            ("lab-vault".into(), String::new())
        );
        for bad in [
            "/srv/vault",
            "s3://",
            "s3://Lab_Vault/x",
            "s3://ab",
            "s3://b-1/a/../c",
            "s3://b-1/a//c",
        ] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }
}
