//! The file store, through `object_store`: a directory under the data directory, or an
//! S3-compatible bucket. Keys are made of ids only, and `object_store`'s local store refuses
//! paths that would leave its root.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig};

use carehub_domain::kernel::RepositoryError;
use carehub_domain::lab::{FileStore, StorageKey};

/// Why the file store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FileStoreError {
    #[error("cannot create the file directory {path}: {source}")]
    Directory {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the storage URL is not usable: {0}")]
    Url(String),
    #[error("cannot reach the bucket {bucket}: {reason}")]
    Unreachable { bucket: String, reason: String },
}

/// Where an S3-compatible bucket is and how to sign in to it. What is unset comes from the
/// standard AWS environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_ENDPOINT_URL`, ..., then the instance's or web identity's credentials).
#[derive(Clone, Default)]
pub struct S3Settings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// An S3-compatible service's URL (MinIO, Ceph, ...): requests go to it path-style, and
    /// `http://` is allowed for it.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Never prints the secret.
impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How long a request to the bucket may take, and how often a failed one is tried again,
/// so that an upload fails in seconds, not minutes, when the bucket is down.
const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const S3_RETRIES: usize = 3;
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// Files in a local directory or an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct LocalOrObjectStore {
    store: Arc<dyn ObjectStore>,
    description: String,
}

impl LocalOrObjectStore {
    /// Files under `dir`, created if missing.
    ///
    /// # Errors
    /// [`FileStoreError::Directory`].
    pub fn local(dir: &Path) -> Result<Self, FileStoreError> {
        let directory = |source| FileStoreError::Directory {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(directory)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| FileStoreError::Url(e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            description: format!("directory {}", dir.display()),
        })
    }

    /// Files in an S3-compatible bucket, under the URL's prefix if it has one. Checks that the
    /// bucket answers before it is used.
    ///
    /// # Errors
    /// [`FileStoreError::Url`] for a URL that is not `s3://bucket[/prefix]` or settings
    /// `object_store` refuses; [`FileStoreError::Unreachable`] when the bucket does not answer,
    /// refuses the credentials or does not exist.
    pub async fn s3(settings: &S3Settings) -> Result<Self, FileStoreError> {
        let malformed = || {
            FileStoreError::Url(format!(
                "{}: expected s3://bucket or s3://bucket/prefix",
                settings.url
            ))
        };
        let rest = settings.url.strip_prefix("s3://").ok_or_else(malformed)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['?', '#', '@', ':']) {
            return Err(malformed());
        }
        let (bucket, prefix) = (bucket.to_owned(), prefix.trim_matches('/').to_owned());
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(S3_CONNECT_TIMEOUT)
                    .with_timeout(S3_REQUEST_TIMEOUT),
            )
            .with_retry(RetryConfig {
                max_retries: S3_RETRIES,
                retry_timeout: S3_RETRY_TIMEOUT,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &settings.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &settings.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let s3 = builder
            .build()
            .map_err(|e| FileStoreError::Url(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            let prefix = ObjectPath::parse(&prefix)
                .map_err(|e| FileStoreError::Url(format!("{}: {e}", settings.url)))?;
            Arc::new(PrefixStore::new(s3, prefix))
        };
        // Listing the top level under the prefix (one entry, `lab/`, once files are kept)
        // fails when the bucket is missing, refuses the credentials or does not answer; a
        // read of a missing key would not tell a missing bucket apart.
        if let Err(e) = store.list_with_delimiter(None).await {
            return Err(FileStoreError::Unreachable {
                bucket,
                reason: e.to_string(),
            });
        }
        let description = match &settings.endpoint {
            Some(endpoint) => format!("bucket {bucket} at {endpoint}, prefix {prefix:?}"),
            None => format!("S3 bucket {bucket}, prefix {prefix:?}"),
        };
        Ok(Self { store, description })
    }

    /// Where the files are, for the startup log.
    pub fn description(&self) -> &str {
        &self.description
    }
}

fn path(key: &StorageKey) -> Result<ObjectPath, RepositoryError> {
    ObjectPath::parse(key.as_str()).map_err(RepositoryError::new)
}

#[async_trait]
impl FileStore for LocalOrObjectStore {
    async fn put(&self, key: &StorageKey, bytes: Vec<u8>) -> Result<(), RepositoryError> {
        self.store
            .put(&path(key)?, PutPayload::from(bytes))
            .await
            .map_err(RepositoryError::new)?;
        Ok(())
    }

    async fn get(&self, key: &StorageKey) -> Result<Option<Vec<u8>>, RepositoryError> {
        match self.store.get(&path(key)?).await {
            Ok(result) => Ok(Some(
                result.bytes().await.map_err(RepositoryError::new)?.to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(RepositoryError::new(e)),
        }
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), RepositoryError> {
        match self.store.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(RepositoryError::new(e)),
        }
    }
}
