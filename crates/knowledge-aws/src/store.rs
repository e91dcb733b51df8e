//! The [`DocumentStore`] port on Amazon S3.
//!
//! A document is one object, `{prefix}{path}` in the seed's layout (see
//! [`S3Layout`]), with its content type as the object's `Content-Type`; the
//! bucket is the Bedrock Knowledge Base's data source, so every document
//! also gets a metadata file (`{key}.metadata.json`) naming its lab and
//! environment, which the agents filter retrieval on.
//!
//! Policy:
//! - **Atomic writes.** A document is one `PutObject`: S3 makes it visible
//!   whole, so a reader sees the old document or the new one, never a mix,
//!   and of concurrent writers the last one wins whole. The document is
//!   written before its metadata file: if the second write fails, the new
//!   text is stored with the previous metadata (same path, same owner) or,
//!   for a new document, none, which the agents' lab filter never matches
//!   (fail closed).
//! - **Lab scoping.** A path maps to exactly one key and back (no
//!   normalisation), so a lab's paths never reach another lab's objects;
//!   listing is a plain key prefix (the HTTP layer decides who may read a
//!   path). A document's lab is read from its path (`notebooks/{lab}/…`,
//!   `experiment-logs/{lab}/…`) or, for environment documents, asked of an
//!   [`EnvironmentLabs`]; without one, an environment document carries no
//!   `lab_id` and the agents cannot retrieve it.
//! - Paths ending in `.metadata.json` are refused (reserved), and listing
//!   skips metadata files and keys that are not valid paths.

use crate::layout::{check_not_reserved, owner_of, KbMetadata, S3Layout};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule,
};
use aws_sdk_s3::Client;
use std::sync::Arc;
use westtek_domain::{EnvironmentId, LabId};
use westtek_knowledge::{
    check_content_type, check_prefix, guess_content_type, DocPath, Document, DocumentInfo,
    DocumentStore, Error, Result,
};

/// Which lab an environment belongs to, for the metadata of environment
/// documents (`package-manifests/{env}/…` and the like). The knowledge
/// service implements it over its metadata store.
#[async_trait]
pub trait EnvironmentLabs: Send + Sync {
    /// The lab of `environment`, or `None` if there is no such environment.
    ///
    /// # Errors
    /// A message when the lookup itself fails; the document write then fails
    /// too (and the sync is retried), rather than storing a document no lab
    /// can retrieve.
    async fn lab_of(
        &self,
        environment: EnvironmentId,
    ) -> std::result::Result<Option<LabId>, String>;
}

/// Knowledge documents in an S3 bucket.
#[derive(Clone)]
pub struct S3DocumentStore {
    client: Client,
    layout: S3Layout,
    labs: Option<Arc<dyn EnvironmentLabs>>,
    page_size: i32,
}

impl std::fmt::Debug for S3DocumentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3DocumentStore")
            .field("layout", &self.layout)
            .field("labs", &self.labs.is_some())
            .finish()
    }
}

/// An S3 client for `config`; path-style when the configuration names an
/// explicit endpoint (moto, MinIO), as those do not serve bucket subdomains.
pub fn s3_client(config: &SdkConfig) -> Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some() || westtek_aws::endpoint_overridden("S3"))
        .build();
    Client::from_conf(conf)
}

impl S3DocumentStore {
    /// Documents in `bucket` under `prefix`, with credentials, region and
    /// endpoint from the standard AWS environment (`AWS_ENDPOINT_URL` for
    /// moto).
    ///
    /// # Errors
    /// [`Error::Backend`] for an invalid bucket name or prefix.
    pub async fn from_env(bucket: &str, prefix: &str) -> Result<Self> {
        let config = westtek_aws::shared_config(5).await;
        Self::with_config(&config, bucket, prefix)
    }

    /// Documents in `bucket` under `prefix`, with an SDK configuration of
    /// the caller's.
    ///
    /// # Errors
    /// [`Error::Backend`] for an invalid bucket name or prefix.
    pub fn with_config(config: &SdkConfig, bucket: &str, prefix: &str) -> Result<Self> {
        Ok(Self::with_client(
            s3_client(config),
            S3Layout::new(bucket, prefix)?,
        ))
    }

    /// Over a client configured by the caller.
    pub fn with_client(client: Client, layout: S3Layout) -> Self {
        S3DocumentStore {
            client,
            layout,
            labs: None,
            page_size: 1000,
        }
    }

    /// Keys asked for per `ListObjectsV2` page (1–1000; S3's default and
    /// maximum is 1000). Smaller pages only make listing slower; tests use
    /// them to exercise pagination.
    #[must_use]
    pub fn with_list_page_size(mut self, keys: i32) -> Self {
        self.page_size = keys.clamp(1, 1000);
        self
    }

    /// Resolves the lab of environment documents through `labs` (see
    /// [`EnvironmentLabs`]).
    #[must_use]
    pub fn with_environment_labs(mut self, labs: Arc<dyn EnvironmentLabs>) -> Self {
        self.labs = Some(labs);
        self
    }

    /// Where the documents are.
    pub fn layout(&self) -> &S3Layout {
        &self.layout
    }

    /// The lab a document belongs to: from its path, else from its environment.
    async fn lab_of(&self, path: &DocPath) -> Result<Option<String>> {
        let owner = owner_of(path);
        if let Some(lab) = owner.lab {
            return Ok(Some(lab));
        }
        let (Some(labs), Some(env)) = (&self.labs, owner.environment) else {
            return Ok(None);
        };
        let Ok(env) = EnvironmentId::parse(&env) else {
            return Ok(None);
        };
        labs.lab_of(env)
            .await
            .map(|lab| lab.map(|l| l.to_string()))
            .map_err(|e| {
                Error::Backend(format!(
                    "finding the lab of environment {env} for {path}: {e}"
                ))
            })
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self
            .client
            .head_object()
            .bucket(self.layout.bucket())
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(backend("HeadObject", self.layout.bucket(), key, e)),
        }
    }
}

/// Creates the knowledge bucket for dev and tests (the CDK app creates it in
/// production): private (all public access blocked), encrypted at rest
/// (SSE-S3). An existing bucket of ours is kept as it is.
///
/// # Errors
/// [`Error::Backend`] naming the failed call.
pub async fn provision(config: &SdkConfig, bucket: &str) -> Result<()> {
    S3Layout::new(bucket, "")?;
    let client = s3_client(config);
    let mut create = client.create_bucket().bucket(bucket);
    if let Some(region) = config.region().map(|r| r.as_ref().to_string()) {
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
    }
    match create.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => return Ok(()),
        Err(e) => return Err(backend("CreateBucket", bucket, "", e)),
    }
    client
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(|e| backend("PutPublicAccessBlock", bucket, "", e))?;
    let sse = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(|e| Error::Backend(format!("building the bucket encryption rule: {e}")))?;
    let encryption = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(sse)
                .build(),
        )
        .build()
        .map_err(|e| Error::Backend(format!("building the bucket encryption rule: {e}")))?;
    client
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(encryption)
        .send()
        .await
        .map_err(|e| backend("PutBucketEncryption", bucket, "", e))?;
    Ok(())
}

fn not_found<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(e.code(), Some("NoSuchKey" | "NotFound"))
        || e.raw_response().map(|r| r.status().as_u16()) == Some(404)
}

/// An SDK error as a backend error saying what failed, why, and what to do.
fn backend<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    bucket: &str,
    key: &str,
    e: SdkError<E, HttpResponse>,
) -> Error {
    let what = if key.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{key}")
    };
    let hint = match e.code() {
        Some("NoSuchBucket") => "; the bucket does not exist: create it (westtek_knowledge_aws::provision) or fix the bucket setting",
        Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            "; check the credentials and that their policy allows this call on the bucket"
        }
        _ => "",
    };
    let detail = match &e {
        SdkError::ServiceError(se) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            se.err().message().unwrap_or("no message")
        ),
        other => westtek_aws::error_chain(other),
    };
    Error::Backend(format!("S3 {op} of {what} failed: {detail}{hint}"))
}

#[async_trait]
impl DocumentStore for S3DocumentStore {
    #[tracing::instrument(skip(self, bytes), fields(path = %path, size = bytes.len()))]
    async fn put(&self, path: &DocPath, bytes: &[u8], content_type: &str) -> Result<()> {
        check_content_type(content_type)?;
        check_not_reserved(path)?;
        let lab = self.lab_of(path).await?;
        let bucket = self.layout.bucket();
        let key = self.layout.key(path);
        self.client
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type(content_type)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(|e| backend("PutObject", bucket, &key, e))?;
        if lab.is_none() {
            tracing::warn!(path = %path, "no lab known for this document: the agents will not retrieve it");
        }
        let meta = serde_json::to_vec(&KbMetadata::new(path, lab.as_deref()))
            .map_err(|e| Error::Backend(format!("encoding the metadata of {path}: {e}")))?;
        let meta_key = self.layout.metadata_key(path);
        self.client
            .put_object()
            .bucket(bucket)
            .key(&meta_key)
            .content_type("application/json")
            .body(ByteStream::from(meta))
            .send()
            .await
            .map_err(|e| backend("PutObject", bucket, &meta_key, e))?;
        Ok(())
    }

    #[tracing::instrument(skip(self), fields(path = %path))]
    async fn get(&self, path: &DocPath) -> Result<Option<Document>> {
        check_not_reserved(path)?;
        let bucket = self.layout.bucket();
        let key = self.layout.key(path);
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(backend("GetObject", bucket, &key, e)),
        };
        let content_type = out
            .content_type()
            .filter(|c| check_content_type(c).is_ok())
            .map(str::to_string)
            .unwrap_or_else(|| guess_content_type(path.file_name()).to_string());
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| {
                Error::Backend(format!(
                    "S3 GetObject of s3://{bucket}/{key}: reading the body failed: {e}"
                ))
            })?
            .into_bytes()
            .to_vec();
        Ok(Some(Document {
            bytes,
            content_type,
        }))
    }

    #[tracing::instrument(skip(self))]
    async fn list(&self, prefix: &str) -> Result<Vec<DocumentInfo>> {
        check_prefix(prefix)?;
        let bucket = self.layout.bucket();
        let key_prefix = format!("{}{prefix}", self.layout.prefix());
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(&key_prefix)
                .max_keys(self.page_size)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| backend("ListObjectsV2", bucket, &key_prefix, e))?;
            for obj in page.contents() {
                let Some(path) = obj.key().and_then(|k| self.layout.path_of_key(k)) else {
                    continue;
                };
                out.push(DocumentInfo {
                    path,
                    size: obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                });
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    #[tracing::instrument(skip(self), fields(path = %path))]
    async fn delete(&self, path: &DocPath) -> Result<bool> {
        check_not_reserved(path)?;
        let bucket = self.layout.bucket();
        let key = self.layout.key(path);
        // DeleteObject succeeds whether or not the object existed.
        if !self.exists(&key).await? {
            return Ok(false);
        }
        for k in [key, self.layout.metadata_key(path)] {
            self.client
                .delete_object()
                .bucket(bucket)
                .key(&k)
                .send()
                .await
                .map_err(|e| backend("DeleteObject", bucket, &k, e))?;
        }
        Ok(true)
    }
}
