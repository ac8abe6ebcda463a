//! Identity: registration, sign-in, token rotation, sign-out, authentication of requests, and
//! the administration of accounts. Each operation has its own error type.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::identity::{
    AccessClaims, AccessTokenCodec, AdminError, CreateUserError, HashingError, LiveSession,
    LoginAttemptRepository, NewRefreshToken, Password, PasswordHasher, RefreshToken,
    RefreshTokenFactory, RefreshTokenRepository, RevokedTokenRepository, Role, RotateOutcome,
    SOCKET_TICKET_TTL, SessionEnd, SessionId, SocketTicketRepository, ThrottlePolicy, TokenError,
    TokenId, User, UserFilter, UserId, UserRepository, UserStatus, Username, throttle_key,
};
use crate::identity::{NewAccount, Principal};
use crate::kernel::{Clock, Page, PageRequest, RepositoryError, ValidationErrors};

/// A failure the caller cannot fix: storage, hashing or signing broke. Logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    #[error(transparent)]
    Hashing(#[from] HashingError),
    #[error("access token signing failed: {0}")]
    Signing(TokenError),
}

/// Lets `?` lift port errors into an operation's error through [`InternalError`].
macro_rules! internal_error_conversions {
    ($($error:ty),+ $(,)?) => {$(
        impl From<RepositoryError> for $error {
            fn from(error: RepositoryError) -> Self {
                Self::Internal(error.into())
            }
        }
        impl From<HashingError> for $error {
            fn from(error: HashingError) -> Self {
                Self::Internal(error.into())
            }
        }
    )+};
}

/// The lifetimes and limits identity works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityConfig {
    pub access_token_ttl: SignedDuration,
    pub refresh_token_ttl: SignedDuration,
    pub throttle: ThrottlePolicy,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: SignedDuration::from_mins(15),
            refresh_token_ttl: SignedDuration::from_hours(24 * 14),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// The ports identity needs, as the composition root wires them.
#[derive(Clone)]
pub struct IdentityPorts {
    pub users: Arc<dyn UserRepository>,
    pub refresh_tokens: Arc<dyn RefreshTokenRepository>,
    pub revoked_tokens: Arc<dyn RevokedTokenRepository>,
    pub login_attempts: Arc<dyn LoginAttemptRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub access_tokens: Arc<dyn AccessTokenCodec>,
    pub refresh_token_factory: Arc<dyn RefreshTokenFactory>,
    pub socket_tickets: Arc<dyn SocketTicketRepository>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IdentityPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPorts").finish_non_exhaustive()
    }
}

/// Tokens handed out at sign-in and on refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: RefreshToken,
    pub expires_in: SignedDuration,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("administrator accounts are created by an administrator")]
    RoleNotSelfRegistrable,
    #[error("the username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("too many failed sign-ins; retry after {retry_after}")]
    Throttled { retry_after: SignedDuration },
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the account awaits an administrator's approval")]
    AccountPending,
    #[error("the account is suspended")]
    AccountSuspended,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the refresh token is invalid, expired or revoked")]
    Invalid,
    /// A used token came back: its whole session has been revoked.
    #[error("the refresh token was already used; its session is revoked")]
    Reused,
    #[error("the account awaits an administrator's approval")]
    AccountPending,
    #[error("the account is suspended")]
    AccountSuspended,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
    #[error("the access token has been revoked")]
    Revoked,
    #[error("the account is not active")]
    Inactive,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Why an account could not be created, before it is told as an operation's error.
pub(super) enum CreateAccountError {
    UsernameTaken,
    Internal(InternalError),
}

internal_error_conversions!(
    RegisterError,
    LoginError,
    RefreshError,
    AuthenticateError,
    AdminError,
);

/// The identity use cases.
#[derive(Debug, Clone)]
pub struct IdentityService {
    pub(super) ports: IdentityPorts,
    config: IdentityConfig,
}

impl IdentityService {
    pub fn new(ports: IdentityPorts, config: IdentityConfig) -> Self {
        Self { ports, config }
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Self-registration: patients are active at once, staff wait for approval, and nobody
    /// registers as an administrator.
    ///
    /// # Errors
    /// [`RegisterError`].
    pub async fn register(&self, account: NewAccount) -> Result<User, RegisterError> {
        let status = account
            .role
            .self_registration_status()
            .ok_or(RegisterError::RoleNotSelfRegistrable)?;
        self.create_account(account, status)
            .await
            .map_err(|e| match e {
                CreateAccountError::UsernameTaken => RegisterError::UsernameTaken,
                CreateAccountError::Internal(e) => e.into(),
            })
    }

    pub(super) async fn create_account(
        &self,
        account: NewAccount,
        status: UserStatus,
    ) -> Result<User, CreateAccountError> {
        let hash = self
            .ports
            .hasher
            .hash(account.password)
            .await
            .map_err(|e| CreateAccountError::Internal(e.into()))?;
        let user = User {
            id: UserId::generate(),
            username: account.username,
            full_name: account.full_name,
            email: account.email,
            role: account.role,
            status,
            created_at: self.ports.clock.now(),
        };
        self.ports
            .users
            .create(&user, &hash)
            .await
            .map_err(|e| match e {
                CreateUserError::UsernameTaken => CreateAccountError::UsernameTaken,
                CreateUserError::Repository(e) => CreateAccountError::Internal(e.into()),
            })?;
        Ok(user)
    }

    /// Signs in. A wrong password and an unknown username cost the same time and give the same
    /// error; after too many failures for a username it is paused, whatever the password.
    ///
    /// # Errors
    /// [`LoginError`].
    pub async fn login(&self, username: &str, password: &str) -> Result<TokenPair, LoginError> {
        let now = self.ports.clock.now();
        let key = throttle_key(username);
        let policy = self.config.throttle;
        let failures = self
            .ports
            .login_attempts
            .recent_failures(&key, now - policy.window)
            .await?;
        if let Some(retry_after) = policy.retry_after(failures, now) {
            return Err(LoginError::Throttled { retry_after });
        }

        let found = match Username::parse(username) {
            Ok(username) => self.ports.users.find_credentials(&username).await?,
            Err(_) => None,
        };
        let attempt = Password::attempt(password);
        let verified = match (found, attempt) {
            (Some((user, hash)), Some(attempt)) => self
                .ports
                .hasher
                .verify(attempt, Some(hash))
                .await?
                .then_some(user),
            (_, attempt) => {
                // Unknown user or over-long password: the same work, against the dummy hash.
                let dummy = attempt.unwrap_or_else(Password::dummy);
                self.ports.hasher.verify(dummy, None).await?;
                None
            }
        };
        let Some(user) = verified else {
            self.ports.login_attempts.record_failure(&key, now).await?;
            return Err(LoginError::InvalidCredentials);
        };
        match user.status {
            UserStatus::Pending => return Err(LoginError::AccountPending),
            UserStatus::Suspended => return Err(LoginError::AccountSuspended),
            UserStatus::Active => {}
        }
        self.ports.login_attempts.clear(&key).await?;
        self.start_session(&user).await.map_err(Into::into)
    }

    async fn start_session(&self, user: &User) -> Result<TokenPair, InternalError> {
        let now = self.ports.clock.now();
        let session_id = SessionId::generate();
        // Signed first: if signing fails, no session is left behind.
        let access_token = self.issue_access_token(user, session_id)?;
        let refresh_token = self.ports.refresh_token_factory.generate();
        self.ports
            .refresh_tokens
            .insert(&NewRefreshToken {
                hash: self.ports.refresh_token_factory.hash(&refresh_token),
                user_id: user.id,
                session_id,
                issued_at: now,
                expires_at: now + self.config.refresh_token_ttl,
            })
            .await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in: self.config.access_token_ttl,
        })
    }

    fn issue_access_token(
        &self,
        user: &User,
        session_id: SessionId,
    ) -> Result<String, InternalError> {
        let now = self.ports.clock.now();
        let claims = AccessClaims {
            user_id: user.id,
            role: user.role,
            session_id,
            token_id: TokenId::generate(),
            issued_at: now,
            expires_at: now + self.config.access_token_ttl,
        };
        self.ports
            .access_tokens
            .issue(&claims)
            .map_err(InternalError::Signing)
    }

    /// Trades a refresh token for a new pair. Each refresh token works once: presenting a used
    /// one revokes every token of its session.
    ///
    /// # Errors
    /// [`RefreshError`].
    pub async fn refresh(&self, presented: &RefreshToken) -> Result<TokenPair, RefreshError> {
        let now = self.ports.clock.now();
        let factory = &self.ports.refresh_token_factory;
        let replacement = factory.generate();
        let outcome = self
            .ports
            .refresh_tokens
            .rotate(
                &factory.hash(presented),
                &factory.hash(&replacement),
                now,
                now + self.config.refresh_token_ttl,
            )
            .await?;
        let (user_id, session_id) = match outcome {
            RotateOutcome::Rotated {
                user_id,
                session_id,
            } => (user_id, session_id),
            RotateOutcome::Reused { session_id } => {
                self.ports
                    .refresh_tokens
                    .revoke_session(session_id, now)
                    .await?;
                return Err(RefreshError::Reused);
            }
            RotateOutcome::Dead | RotateOutcome::Unknown => return Err(RefreshError::Invalid),
        };
        let user = self.ports.users.find_by_id(user_id).await?;
        let user = match user {
            Some(user) if user.is_active() => user,
            other => {
                self.ports
                    .refresh_tokens
                    .revoke_session(session_id, now)
                    .await?;
                return Err(match other.map(|u| u.status) {
                    Some(UserStatus::Pending) => RefreshError::AccountPending,
                    Some(UserStatus::Suspended) => RefreshError::AccountSuspended,
                    _ => RefreshError::Invalid,
                });
            }
        };
        let access_token = self.issue_access_token(&user, session_id)?;
        Ok(TokenPair {
            access_token,
            refresh_token: replacement,
            expires_in: self.config.access_token_ttl,
        })
    }

    /// Ends the caller's session: their access token is denied at once and the session's
    /// refresh tokens are revoked, as is the session of `refresh_token` when it is the caller's.
    ///
    /// # Errors
    /// [`InternalError`] on storage failure.
    pub async fn logout(
        &self,
        principal: &Principal,
        refresh_token: Option<&RefreshToken>,
    ) -> Result<(), InternalError> {
        let now = self.ports.clock.now();
        let claims = principal.claims();
        self.ports
            .revoked_tokens
            .revoke(claims.token_id, claims.expires_at)
            .await?;
        self.ports
            .refresh_tokens
            .revoke_session(claims.session_id, now)
            .await?;
        if let Some(token) = refresh_token {
            let hash = self.ports.refresh_token_factory.hash(token);
            if let Some((owner, session_id)) = self.ports.refresh_tokens.find_session(&hash).await?
                && owner == principal.id()
                && session_id != claims.session_id
            {
                self.ports
                    .refresh_tokens
                    .revoke_session(session_id, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Who is calling: the token must verify, not be revoked, and belong to an active user.
    ///
    /// # Errors
    /// [`AuthenticateError`].
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthenticateError> {
        let claims = self
            .ports
            .access_tokens
            .verify(access_token)
            .map_err(|e| match e {
                TokenError::Expired => AuthenticateError::Expired,
                TokenError::Invalid | TokenError::Signing(_) => AuthenticateError::Invalid,
            })?;
        self.principal_for(claims).await
    }

    /// Who holds verified, unexpired `claims`: their token and session must not be denied, and
    /// their account must be active.
    async fn principal_for(&self, claims: AccessClaims) -> Result<Principal, AuthenticateError> {
        if self
            .ports
            .revoked_tokens
            .is_denied(claims.token_id, claims.session_id)
            .await?
        {
            return Err(AuthenticateError::Revoked);
        }
        match self.ports.users.find_by_id(claims.user_id).await? {
            Some(user) if user.is_active() => Ok(Principal::new(user, claims)),
            Some(_) => Err(AuthenticateError::Inactive),
            None => Err(AuthenticateError::Invalid),
        }
    }

    /// A single-use ticket that opens a WebSocket as the caller, for clients that cannot send
    /// an `Authorization` header (browsers): valid 30 seconds, and never beyond the caller's
    /// access token. Returns the ticket and when it expires.
    ///
    /// # Errors
    /// [`InternalError`] on storage failure.
    pub async fn issue_socket_ticket(
        &self,
        principal: &Principal,
    ) -> Result<(String, Timestamp), InternalError> {
        let now = self.ports.clock.now();
        let expires_at = (now + SOCKET_TICKET_TTL).min(principal.claims().expires_at);
        let ticket = self.ports.refresh_token_factory.generate();
        let hash = self.ports.refresh_token_factory.hash(&ticket);
        self.ports
            .socket_tickets
            .issue(&hash, principal.claims(), expires_at)
            .await?;
        Ok((ticket.expose().to_owned(), expires_at))
    }

    /// Who a socket ticket stands for, using it up. The access token it was issued with must
    /// still be valid, as in [`Self::authenticate`].
    ///
    /// # Errors
    /// [`AuthenticateError`]: `Invalid` for an unknown, used or expired ticket.
    pub async fn redeem_socket_ticket(&self, ticket: &str) -> Result<Principal, AuthenticateError> {
        let now = self.ports.clock.now();
        let hash = self
            .ports
            .refresh_token_factory
            .hash(&RefreshToken::new(ticket.to_owned()));
        let claims = self
            .ports
            .socket_tickets
            .redeem(&hash, now)
            .await?
            .ok_or(AuthenticateError::Invalid)?;
        if claims.expires_at <= now {
            return Err(AuthenticateError::Expired);
        }
        self.principal_for(claims).await
    }

    /// Which of these live sessions have ended since they were authenticated (sign-out,
    /// revocation, suspension), for long-lived connections to close.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    pub async fn ended_sessions(
        &self,
        sessions: &[LiveSession],
    ) -> Result<Vec<(TokenId, SessionEnd)>, RepositoryError> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        self.ports.revoked_tokens.ended_sessions(sessions).await
    }

    /// Active doctors, for anyone signed in to pick from.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    pub async fn list_active_doctors(
        &self,
        page: PageRequest<UserId>,
    ) -> Result<Page<User, UserId>, RepositoryError> {
        let filter = UserFilter {
            role: Some(Role::Doctor),
            status: Some(UserStatus::Active),
        };
        self.ports.users.list(filter, page).await
    }

    /// Deletes what has expired: refresh tokens, denied access tokens, old sign-in failures.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    pub async fn purge_expired(&self) -> Result<u64, RepositoryError> {
        let now = self.ports.clock.now();
        let tokens = self.ports.refresh_tokens.purge_expired(now).await?;
        let denials = self.ports.revoked_tokens.purge_expired(now).await?;
        let tickets = self.ports.socket_tickets.purge_expired(now).await?;
        let attempts = self
            .ports
            .login_attempts
            .purge_older_than(now - self.config.throttle.window)
            .await?;
        Ok(tokens + denials + tickets + attempts)
    }
}

#[cfg(test)]
mod tests;
