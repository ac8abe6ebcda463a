//! The ring of keys that sign access tokens. The newest key signs; each key it superseded
//! still verifies the tokens it signed until the last of them has expired, and is then
//! retired. The ring is kept where every instance reads it, so that one rotation reaches all.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::identity::TOKEN_CLOCK_LEEWAY;
use crate::kernel::{Clock, RepositoryError};

/// A key's id, the `kid` of the tokens it signs and of its entry in the published key set:
/// 1 to 128 characters of base64url (`A-Z a-z 0-9 - _`), such as an RFC 7638 thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key id is 1 to 128 characters of A-Z, a-z, 0-9, '-' and '_'")]
pub struct KeyIdError;

impl KeyId {
    /// # Errors
    /// [`KeyIdError`] when `raw` is empty, too long or holds other characters.
    pub fn parse(raw: &str) -> Result<Self, KeyIdError> {
        let valid = (1..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(KeyIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A private key, as PKCS#8 PEM text. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub fn new(pem: String) -> Self {
        Self(pem)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// One key of the ring: its id, its private key, and when it was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingKey {
    pub kid: KeyId,
    pub private_key: PrivateKeyPem,
    pub created_at: Timestamp,
}

/// Where a key stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The newest key: it signs new tokens, and verifies them.
    Signing,
    /// Superseded by a newer key: it signs no more, and verifies the tokens it signed until
    /// `until`, when the last of them has expired.
    Verifying { until: Timestamp },
    /// Every token it signed has expired: it is neither published nor accepted any more.
    Retired { since: Timestamp },
}

impl KeyStatus {
    /// Whether tokens this key signed are accepted (and the key published).
    pub fn verifies(&self) -> bool {
        !matches!(self, Self::Retired { .. })
    }
}

/// How long a superseded key keeps verifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRetirement {
    /// Time from the moment a newer key was added until the older one is retired.
    pub after: SignedDuration,
}

impl KeyRetirement {
    /// A superseded key verifies for as long as a token it signed may live: an instance may
    /// go on signing with it until it next reloads the ring (`reload_interval`), that token
    /// lives `access_token_ttl`, and instances' clocks may differ by [`TOKEN_CLOCK_LEEWAY`].
    pub fn new(access_token_ttl: SignedDuration, reload_interval: SignedDuration) -> Self {
        Self {
            after: reload_interval + access_token_ttl + TOKEN_CLOCK_LEEWAY,
        }
    }
}

/// The keys, oldest first, in the order they were added: each key was superseded by the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// The ring of `keys`, oldest first, as [`SigningKeyRepository::list`] returns them.
    pub fn new(keys: Vec<RingKey>) -> Self {
        Self { keys }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, kid: &KeyId) -> bool {
        self.keys.iter().any(|key| &key.kid == kid)
    }

    /// The key that signs: the newest.
    pub fn signing(&self) -> Option<&RingKey> {
        self.keys.last()
    }

    /// Every key with its status at `now`, oldest first. A key is superseded when the next one
    /// was added (or when it was added itself, should the next carry an earlier time).
    pub fn statuses(
        &self,
        now: Timestamp,
        retirement: KeyRetirement,
    ) -> Vec<(&RingKey, KeyStatus)> {
        let successors = self.keys.iter().skip(1).map(Some).chain([None]);
        self.keys
            .iter()
            .zip(successors)
            .map(|(key, next)| {
                let status = match next {
                    None => KeyStatus::Signing,
                    Some(next) => {
                        let until = next.created_at.max(key.created_at) + retirement.after;
                        if now < until {
                            KeyStatus::Verifying { until }
                        } else {
                            KeyStatus::Retired { since: until }
                        }
                    }
                };
                (key, status)
            })
            .collect()
    }
}

/// What [`SigningKeyRepository::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddedKey {
    /// The key is now the newest of the ring.
    Added,
    /// A key with this id was in the ring already; nothing changed.
    AlreadyInRing,
}

/// The shared ring of signing keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SigningKeyRepository: Send + Sync {
    /// Adds `key` as the newest key, after every key in the ring. Of concurrent adds of
    /// different keys, every one is added, in some order.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure, in which case nothing changed.
    async fn add(&self, key: &RingKey) -> Result<AddedKey, RepositoryError>;

    /// Adds `key` only if the ring is empty, and tells whether it did. Of concurrent seeds,
    /// exactly one is kept.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn seed(&self, key: &RingKey) -> Result<bool, RepositoryError>;

    /// Every key, oldest first, in the order they were added.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn list(&self) -> Result<Vec<RingKey>, RepositoryError>;
}

/// A key as an operator sees it: never its private part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    pub kid: KeyId,
    pub created_at: Timestamp,
    pub status: KeyStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum RotateKeyError {
    /// Rotating to a key the ring has had cannot make it the newest.
    #[error("the key {0} is in the ring already")]
    AlreadyInRing(KeyId),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Where a key configured for an instance stands, once installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// It was not in the ring: it now is, as the newest key.
    Added,
    /// It was in the ring and is the newest key.
    Signing,
    /// It was in the ring, and a newer key (a later rotation) signs instead.
    Superseded,
}

/// Rotation of the signing keys, and what instances and operators read of the ring.
#[derive(Clone)]
pub struct SigningKeyService {
    keys: Arc<dyn SigningKeyRepository>,
    clock: Arc<dyn Clock>,
    retirement: KeyRetirement,
}

impl fmt::Debug for SigningKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyService")
            .field("retirement", &self.retirement)
            .finish_non_exhaustive()
    }
}

impl SigningKeyService {
    pub fn new(
        keys: Arc<dyn SigningKeyRepository>,
        clock: Arc<dyn Clock>,
        retirement: KeyRetirement,
    ) -> Self {
        Self {
            keys,
            clock,
            retirement,
        }
    }

    pub fn retirement(&self) -> KeyRetirement {
        self.retirement
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The ring as stored now.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    pub async fn ring(&self) -> Result<KeyRing, RepositoryError> {
        Ok(KeyRing::new(self.keys.list().await?))
    }

    /// Every key with its status now, oldest first.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    pub async fn list(&self) -> Result<Vec<KeySummary>, RepositoryError> {
        let ring = self.ring().await?;
        let now = self.clock.now();
        Ok(ring
            .statuses(now, self.retirement)
            .into_iter()
            .map(|(key, status)| KeySummary {
                kid: key.kid.clone(),
                created_at: key.created_at,
                status,
            })
            .collect())
    }

    /// Makes `kid` the signing key; the key that signed until now verifies its tokens until
    /// they have expired.
    ///
    /// # Errors
    /// [`RotateKeyError::AlreadyInRing`] for a key the ring has had, newest or not.
    pub async fn rotate(
        &self,
        kid: KeyId,
        private_key: PrivateKeyPem,
    ) -> Result<(), RotateKeyError> {
        match self
            .keys
            .add(&self.ring_key(kid.clone(), private_key))
            .await?
        {
            AddedKey::Added => Ok(()),
            AddedKey::AlreadyInRing => Err(RotateKeyError::AlreadyInRing(kid)),
        }
    }

    /// Puts an instance's configured key in the ring, as the newest, unless the ring has had
    /// it already: a key is never brought back once superseded, so restarting instances with
    /// the key they were configured with does not undo a later rotation.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    pub async fn install(
        &self,
        kid: KeyId,
        private_key: PrivateKeyPem,
    ) -> Result<Installed, RepositoryError> {
        let key = self.ring_key(kid, private_key);
        if let AddedKey::Added = self.keys.add(&key).await? {
            return Ok(Installed::Added);
        }
        let ring = self.ring().await?;
        Ok(match ring.signing() {
            Some(newest) if newest.kid == key.kid => Installed::Signing,
            _ => Installed::Superseded,
        })
    }

    /// Starts an empty ring with `kid`; tells whether this key was the one kept.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    pub async fn seed(
        &self,
        kid: KeyId,
        private_key: PrivateKeyPem,
    ) -> Result<bool, RepositoryError> {
        self.keys.seed(&self.ring_key(kid, private_key)).await
    }

    fn ring_key(&self, kid: KeyId, private_key: PrivateKeyPem) -> RingKey {
        RingKey {
            kid,
            private_key,
            created_at: self.clock.now(),
        }
    }
}

#[cfg(test)]
mod tests;
