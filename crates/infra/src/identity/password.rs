//! argon2id password hashing at OWASP's parameters, on a few dedicated threads.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use tokio::sync::oneshot;

use carehub_domain::identity::{HashingError, Password, PasswordHash, PasswordHasher};

/// OWASP's argon2id recommendation: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn argon2id() -> Result<Argon2<'static>, HashingError> {
    let params =
        Params::new(MEMORY_KIB, PASSES, LANES, None).map_err(|e| HashingError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes with argon2id. Hashing runs on `max_concurrent` dedicated threads, never on the async
/// workers, so a burst of sign-ins cannot exhaust memory or starve other requests: it queues.
/// Dedicated threads also keep memory flat: each hash needs 19 MiB, and the allocator keeps what
/// a thread freed for that thread's next allocation, so hashing on whichever of tokio's many
/// blocking threads was free would leave 19 MiB behind on each of them (hundreds of MiB after a
/// few dozen sign-ins).
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    jobs: Sender<Job>,
    /// Verified against when the user is unknown, so that costs as much as a real check.
    dummy_hash: Arc<str>,
}

/// One hashing or verification, with where to answer.
type Job = Box<dyn FnOnce() + Send>;

impl Argon2Hasher {
    /// Starts the hashing threads; they end when the last clone of the hasher is dropped.
    ///
    /// # Errors
    /// [`HashingError`] when a thread cannot be started or the dummy hash cannot be made.
    pub async fn new(max_concurrent: usize) -> Result<Self, HashingError> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..max_concurrent.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("carehub-argon2-{n}"))
                .spawn(move || work(&queue))
                .map_err(|e| HashingError(e.to_string()))?;
        }
        let mut hasher = Self {
            jobs,
            dummy_hash: Arc::from(""),
        };
        let dummy = hasher
            .run(|| hash_with_argon2id("no account has this password; it only costs time"))
            .await?;
        hasher.dummy_hash = dummy.into();
        Ok(hasher)
    }

    /// Runs `work` on a hashing thread, waiting for one to be free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashingError> + Send + 'static,
    ) -> Result<T, HashingError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                // The caller may have given up waiting; then nobody needs the answer.
                let _ = answer.send(work());
            }))
            .map_err(|_| HashingError("the hashing threads have stopped".into()))?;
        answered
            .await
            .map_err(|_| HashingError("a hashing thread stopped before answering".into()))?
    }
}

/// A hashing thread's loop: takes the next job until every sender is gone.
fn work(queue: &Mutex<Receiver<Job>>) {
    loop {
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

fn hash_with_argon2id(password: &str) -> Result<String, HashingError> {
    argon2id()?
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| HashingError(e.to_string()))
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashingError> {
        self.run(move || hash_with_argon2id(password.expose()))
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
        let matches = self
            .run(move || {
                // The parameters come from the stored hash, so old hashes keep verifying.
                match Argon2::default().verify_password(password.expose().as_bytes(), phc.as_str())
                {
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
