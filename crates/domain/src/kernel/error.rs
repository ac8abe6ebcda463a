//! The error every port returns when its storage fails for a reason the domain cannot act on.

use std::error::Error as StdError;

/// A storage or infrastructure failure. It keeps its cause for logs; clients never see it.
#[derive(Debug, thiserror::Error)]
#[error("repository failure: {0}")]
pub struct RepositoryError(#[source] pub Box<dyn StdError + Send + Sync + 'static>);

impl RepositoryError {
    /// Wraps any error as a repository failure.
    pub fn new(cause: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self(cause.into())
    }
}
