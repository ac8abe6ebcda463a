//! Access tokens (signed, short-lived) and refresh tokens (opaque, rotating, stored as hashes).

use std::fmt;

use async_trait::async_trait;
use jiff::Timestamp;
use uuid::Uuid;

use crate::identity::{Role, UserId};
use crate::kernel::RepositoryError;

/// A sign-in session: every refresh token descended from one login shares it (the "family").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Uuid);

impl SessionId {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

/// An access token's unique id (`jti`), by which a token is denied before it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId(Uuid);

impl TokenId {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

/// What an access token says, as the domain reads it. The codec adds issuer and audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub role: Role,
    pub session_id: SessionId,
    pub token_id: TokenId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Why a presented access token was refused. Deliberately coarse: clients learn no more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid")]
    Invalid,
    #[error("the token could not be signed: {0}")]
    Signing(String),
}

/// Clock difference tolerated between instances (and verifiers) when checking `exp` and `iat`.
pub const TOKEN_CLOCK_LEEWAY: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

/// Signs and verifies access tokens.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccessTokenCodec: Send + Sync {
    /// Signs with the newest key of the ring, naming it in the token's `kid`.
    ///
    /// # Errors
    /// [`TokenError::Signing`] when there is no key or it cannot sign.
    fn issue(&self, claims: &AccessClaims) -> Result<String, TokenError>;

    /// Checks signature, algorithm, issuer, audience and expiry, with the key the token's `kid`
    /// names among the keys that still verify. A `kid` it does not know may make it look for
    /// keys added since it last looked (by a rotation another instance already uses) before it
    /// refuses the token.
    ///
    /// # Errors
    /// [`TokenError::Expired`] or [`TokenError::Invalid`] (no `kid`, an unknown or retired
    /// one, or a bad signature).
    async fn verify(&self, token: &str) -> Result<AccessClaims, TokenError>;
}

/// An opaque refresh token as handed to the client. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(<redacted>)")
    }
}

/// The stored form of a refresh token: a hash, so a database leak yields no usable token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefreshTokenHash(String);

impl RefreshTokenHash {
    pub fn new(hash: String) -> Self {
        Self(hash)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Makes refresh tokens and hashes them for storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RefreshTokenFactory: Send + Sync {
    /// A new unguessable token.
    fn generate(&self) -> RefreshToken;
    fn hash(&self, token: &RefreshToken) -> RefreshTokenHash;
}

/// A refresh token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub hash: RefreshTokenHash,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// When the session ends, however often it is refreshed: stored with the session when the
    /// token starts one.
    pub session_ends_at: Timestamp,
}

/// What [`RefreshTokenRepository::rotate`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was fresh: it is now used and the replacement is stored in its session.
    Rotated {
        user_id: UserId,
        session_id: SessionId,
        session_ends_at: Timestamp,
    },
    /// The token had been used before: someone replays it. Nothing was stored. A used token is
    /// reported as reused even once expired or revoked, so a late replay is still noticed.
    Reused { session_id: SessionId },
    /// The token is expired or its session revoked. Nothing was stored.
    Dead,
    /// No such token. Nothing was stored.
    Unknown,
}

/// Stores refresh tokens by hash, grouped in sessions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RefreshTokenRepository: Send + Sync {
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn insert(&self, token: &NewRefreshToken) -> Result<(), RepositoryError>;

    /// Atomically marks `presented` used, if it is unused, unrevoked and unexpired at `now`
    /// and its session has not ended, and stores a replacement with hash `replacement` in the
    /// same session and for the same user, expiring at `expires_at` or at the session's end,
    /// whichever comes first. Of two concurrent rotations of one token, exactly one sees
    /// [`RotateOutcome::Rotated`].
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure, in which case nothing changed.
    async fn rotate(
        &self,
        presented: &RefreshTokenHash,
        replacement: &RefreshTokenHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<RotateOutcome, RepositoryError>;

    /// Revokes every token of a session. Revoking twice is harmless.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn revoke_session(
        &self,
        session_id: SessionId,
        at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// The session and owner of a token, whatever its state, or `None`.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn find_session(
        &self,
        token: &RefreshTokenHash,
    ) -> Result<Option<(UserId, SessionId)>, RepositoryError>;

    /// Revokes every token of every session of a user.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// Deletes tokens that expired before `before`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError>;
}

/// Access tokens denied before their expiry (after logout).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RevokedTokenRepository: Send + Sync {
    /// Denies `token_id` until `expires_at`, after which the token is dead anyway.
    /// Revoking twice is harmless.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn revoke(&self, token_id: TokenId, expires_at: Timestamp)
    -> Result<(), RepositoryError>;

    /// Whether `token_id` itself was revoked.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn is_revoked(&self, token_id: TokenId) -> Result<bool, RepositoryError>;

    /// Whether an access token may no longer be used at `now`: its id was revoked, or its
    /// session was revoked (sign-out, a replayed refresh token, suspension of the account),
    /// has ended, or does not exist. Answered in one round trip, as it runs on every
    /// authenticated request.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn is_denied(
        &self,
        token_id: TokenId,
        session_id: SessionId,
        now: Timestamp,
    ) -> Result<bool, RepositoryError>;

    /// Forgets denials whose tokens expired before `before`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError>;

    /// Which of these live sessions (sockets opened with an access token) have ended by `now`:
    /// the token or its session was denied as in [`Self::is_denied`] ([`SessionEnd::SignedOut`]),
    /// or the account is no longer active ([`SessionEnd::Inactive`]). Sessions still valid are
    /// left out. Answered in a few round trips however many sessions are asked about.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn ended_sessions(
        &self,
        sessions: &[LiveSession],
        now: Timestamp,
    ) -> Result<Vec<(TokenId, SessionEnd)>, RepositoryError>;
}

/// An access token in use by a long-lived connection, to check again from time to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LiveSession {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub token_id: TokenId,
}

impl From<&AccessClaims> for LiveSession {
    fn from(claims: &AccessClaims) -> Self {
        Self {
            user_id: claims.user_id,
            session_id: claims.session_id,
            token_id: claims.token_id,
        }
    }
}

/// Why a live session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEnd {
    /// The user signed out, or the session was revoked.
    SignedOut,
    /// The account was suspended (or otherwise made inactive).
    Inactive,
}

/// How long a socket ticket may wait to be used.
pub const SOCKET_TICKET_TTL: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// Single-use tickets that stand for an access token when opening a WebSocket from a browser
/// (which cannot set an `Authorization` header on the upgrade). Stored by hash, like refresh
/// tokens, so that every server instance can redeem a ticket another issued.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SocketTicketRepository: Send + Sync {
    /// Stores a ticket standing for `claims` until `expires_at`.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn issue(
        &self,
        hash: &RefreshTokenHash,
        claims: &AccessClaims,
        expires_at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// Uses the ticket up: returns the claims it stands for if it existed and had not expired
    /// at `now`. A ticket is redeemed at most once, even by concurrent callers.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn redeem(
        &self,
        hash: &RefreshTokenHash,
        now: Timestamp,
    ) -> Result<Option<AccessClaims>, RepositoryError>;

    /// Deletes tickets that expired before `before`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError>;
}
