//! argon2id password hashing at OWASP's parameters, on blocking threads, a bounded number at once.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use tokio::sync::Semaphore;

use carehub_domain::password::{HashingError, Password, PasswordHash, PasswordHasher};

/// OWASP's argon2id recommendation: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn argon2id() -> Result<Argon2<'static>, HashingError> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| HashingError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes with argon2id. Hashing runs on tokio's blocking threads, never on the async
/// workers, and at most `max_concurrent` at once, so a burst of sign-ins cannot exhaust memory
/// (each hash holds 19 MiB) or starve other requests.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    permits: Arc<Semaphore>,
    /// Verified against when the user is unknown, so that costs as much as a real check.
    dummy_hash: Arc<str>,
}

impl Argon2Hasher {
    /// # Errors
    /// [`HashingError`] when the dummy hash cannot be made.
    pub async fn new(max_concurrent: usize) -> Result<Self, HashingError> {
        let permits = Arc::new(Semaphore::new(max_concurrent.max(1)));
        let dummy = run_blocking(&permits, || {
            hash_with_argon2id("no account has this password; it only costs time")
        })
        .await?;
        Ok(Self {
            permits,
            dummy_hash: dummy.into(),
        })
    }
}

fn hash_with_argon2id(password: &str) -> Result<String, HashingError> {
    argon2id()?
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| HashingError(e.to_string()))
}

async fn run_blocking<T: Send + 'static>(
    permits: &Arc<Semaphore>,
    work: impl FnOnce() -> Result<T, HashingError> + Send + 'static,
) -> Result<T, HashingError> {
    let permit = Arc::clone(permits)
        .acquire_owned()
        .await
        .map_err(|e| HashingError(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| HashingError(e.to_string()))?
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashingError> {
        run_blocking(&self.permits, move || hash_with_argon2id(password.expose()))
            .await
            .map(PasswordHash::new)
    }

    async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashingError> {
        let known = hash.is_some();
        let phc = hash.map_or_else(|| self.dummy_hash.to_string(), |h| h.as_str().to_owned());
        let matches = run_blocking(&self.permits, move || {
            // The parameters come from the stored hash, so old hashes keep verifying.
            match Argon2::default().verify_password(password.expose().as_bytes(), phc.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(HashingError(e.to_string())),
            }
        })
        .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_use_owasp_argon2id_parameters_and_verify() -> Result<(), HashingError> {
        let hasher = Argon2Hasher::new(2).await?;
        let password = Password::parse("correct horse battery", None)
            .map_err(|e| HashingError(e.to_string()))?;
        let hash = hasher.hash(password.clone()).await?;
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify(password, Some(hash.clone())).await?);
        let wrong =
            Password::attempt("wrong horse battery").ok_or(HashingError("attempt".into()))?;
        assert!(!hasher.verify(wrong, Some(hash)).await?);
        Ok(())
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password()
    -> Result<(), HashingError> {
        let hasher = Argon2Hasher::new(1).await?;
        let dummy = Password::attempt("no account has this password; it only costs time")
            .ok_or(HashingError("attempt".into()))?;
        assert!(!hasher.verify(dummy, None).await?);
        Ok(())
    }
}
