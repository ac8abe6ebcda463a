//! The file store: a directory under the data directory, through `object_store` (whose S3
//! store is not built in yet: its TLS needs a crypto provider set up for the whole process). Keys are made of ids only, and
//! `object_store`'s local store refuses paths that would leave its root.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};

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
}

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
