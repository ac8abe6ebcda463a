//! Identity: registration, sign-in, token rotation, sign-out, authentication of requests, and
//! the administration of accounts. Each operation has its own error type.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::identity::{
    AccessClaims, AccessTokenCodec, AdminError, CreateUserError, HashingError, LiveSession,
    LoginAttemptRepository, NewRefreshToken, Password, PasswordHasher, RefreshToken,
    RefreshTokenFactory, RefreshTokenRepository, RevokedTokenRepository, Role, RotateOutcome,
    SOCKET_TICKET_TTL, SessionEnd, SessionId, SocketTicketRepository, ThrottlePolicy, TokenError,
    TokenId, User, UserFilter, UserId, UserRepository, UserStatus, Username,
};
use crate::identity::{
    ClientAddress, DeviceToken, Limit, RefreshTokenHash, SignInClient, ThrottleKey,
    TrustedDeviceRepository, normalized_username,
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
    /// How long a session lives unused: each refresh token expires this long after it was
    /// issued.
    pub session_idle: SignedDuration,
    /// How long a session lives at most from its sign-in, however often it is refreshed.
    pub session_max: SignedDuration,
    /// How long a device stays trusted after its last sign-in.
    pub device_trust: SignedDuration,
    pub throttle: ThrottlePolicy,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: SignedDuration::from_mins(15),
            session_idle: SignedDuration::from_hours(24 * 14),
            session_max: SignedDuration::from_hours(24 * 30),
            device_trust: SignedDuration::from_hours(24 * 90),
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
    pub trusted_devices: Arc<dyn TrustedDeviceRepository>,
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

/// A sign-in's result: the tokens, and the device token that lets this client past the
/// username's throttle next time.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub tokens: TokenPair,
    pub device_token: DeviceToken,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("too many registrations from this address; retry after {retry_after}")]
    Throttled { retry_after: SignedDuration },
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
    #[error("too many refused tokens from this address; retry after {retry_after}")]
    Throttled { retry_after: SignedDuration },
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
    /// registers as an administrator. Each address may register only so often, since every
    /// attempt costs a password hash.
    ///
    /// # Errors
    /// [`RegisterError`].
    pub async fn register(
        &self,
        account: NewAccount,
        address: Option<ClientAddress>,
    ) -> Result<User, RegisterError> {
        let status = account
            .role
            .self_registration_status()
            .ok_or(RegisterError::RoleNotSelfRegistrable)?;
        if let Some(address) = address {
            let now = self.ports.clock.now();
            let key = ThrottleKey::registration(address);
            let limit = self.config.throttle.registrations_per_address;
            if let Some(retry_after) = self.retry_after(&key, limit, now).await? {
                return Err(RegisterError::Throttled { retry_after });
            }
            self.ports
                .login_attempts
                .record_failure(&[key], now)
                .await?;
        }
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
    /// error. Too many failures pause sign-in: per address, per address and username, and per
    /// username. A device that signed in to this account before passes the address's and the
    /// username's pauses, and its own failures are counted instead (see [`ThrottlePolicy`]).
    ///
    /// # Errors
    /// [`LoginError`].
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &SignInClient,
    ) -> Result<SignedIn, LoginError> {
        let now = self.ports.clock.now();
        let policy = self.config.throttle;
        let device = self.trusted_device(username, client, now).await?;
        let mut counted = Vec::with_capacity(3);
        if let Some(address) = client.address {
            // The address's own pause stops strangers spraying guesses; a device trusted for
            // this account passes it, so that an attacker sharing the clinic's address cannot
            // lock its staff out. Its failures still count.
            let trusted = device.is_some();
            for (key, limit, passes) in [
                (ThrottleKey::address(address), policy.per_address, trusted),
                (
                    ThrottleKey::address_username(address, username),
                    policy.per_address_username,
                    false,
                ),
            ] {
                if !passes && let Some(retry_after) = self.retry_after(&key, limit, now).await? {
                    return Err(LoginError::Throttled { retry_after });
                }
                counted.push(key);
            }
        }
        let personal = match &device {
            Some((_, hash)) => ThrottleKey::device(hash),
            None => {
                let key = ThrottleKey::username(username);
                if let Some(retry_after) = self.retry_after(&key, policy.per_username, now).await? {
                    return Err(LoginError::Throttled { retry_after });
                }
                key
            }
        };

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
            counted.push(personal);
            self.ports
                .login_attempts
                .record_failure(&counted, now)
                .await?;
            return Err(LoginError::InvalidCredentials);
        };
        match user.status {
            UserStatus::Pending => return Err(LoginError::AccountPending),
            UserStatus::Suspended => return Err(LoginError::AccountSuspended),
            UserStatus::Active => {}
        }
        // The address's own count stays: a success with one account must not buy an attacker
        // more guesses at others.
        counted.retain(|key| {
            client
                .address
                .is_none_or(|a| *key != ThrottleKey::address(a))
        });
        counted.push(personal);
        self.ports.login_attempts.clear(&counted).await?;
        let tokens = self.start_session(&user).await?;
        let device_token = self.trust_device(&user, device, now).await?;
        Ok(SignedIn {
            tokens,
            device_token,
        })
    }

    /// `Some(wait)` while `key` has reached `limit`.
    async fn retry_after(
        &self,
        key: &ThrottleKey,
        limit: Limit,
        now: Timestamp,
    ) -> Result<Option<SignedDuration>, RepositoryError> {
        let recent = self
            .ports
            .login_attempts
            .recent_failures(key, now - limit.window)
            .await?;
        Ok(limit.retry_after(recent, now))
    }

    /// The first of the client's device tokens that is trusted for `username` and has not
    /// failed too often itself.
    async fn trusted_device(
        &self,
        username: &str,
        client: &SignInClient,
        now: Timestamp,
    ) -> Result<Option<(DeviceToken, RefreshTokenHash)>, RepositoryError> {
        let username = normalized_username(username);
        for token in client
            .device_tokens
            .iter()
            .take(SignInClient::MAX_DEVICE_TOKENS)
        {
            let hash = self.hash_secret(token.expose());
            if !self
                .ports
                .trusted_devices
                .is_trusted_for(&hash, &username, now)
                .await?
            {
                continue;
            }
            let limit = self.config.throttle.per_device;
            if self
                .retry_after(&ThrottleKey::device(&hash), limit, now)
                .await?
                .is_none()
            {
                return Ok(Some((token.clone(), hash)));
            }
        }
        Ok(None)
    }

    /// Trusts the device that just signed in as `user`: the one it presented, for longer, or
    /// a new one.
    async fn trust_device(
        &self,
        user: &User,
        presented: Option<(DeviceToken, RefreshTokenHash)>,
        now: Timestamp,
    ) -> Result<DeviceToken, RepositoryError> {
        let (token, hash) = presented.unwrap_or_else(|| {
            // A device token is a secret of the same strength as a refresh token.
            let secret = self.ports.refresh_token_factory.generate();
            let hash = self.ports.refresh_token_factory.hash(&secret);
            (DeviceToken::issued(secret.expose()), hash)
        });
        self.ports
            .trusted_devices
            .trust(&hash, user.id, now + self.config.device_trust)
            .await?;
        Ok(token)
    }

    fn hash_secret(&self, secret: &str) -> RefreshTokenHash {
        self.ports
            .refresh_token_factory
            .hash(&RefreshToken::new(secret.to_owned()))
    }

    async fn start_session(&self, user: &User) -> Result<TokenPair, InternalError> {
        let now = self.ports.clock.now();
        let session_id = SessionId::generate();
        let session_ends_at = now + self.config.session_max;
        // Signed first: if signing fails, no session is left behind.
        let (access_token, expires_in) =
            self.issue_access_token(user, session_id, session_ends_at)?;
        let refresh_token = self.ports.refresh_token_factory.generate();
        self.ports
            .refresh_tokens
            .insert(&NewRefreshToken {
                hash: self.ports.refresh_token_factory.hash(&refresh_token),
                user_id: user.id,
                session_id,
                issued_at: now,
                expires_at: (now + self.config.session_idle).min(session_ends_at),
                session_ends_at,
            })
            .await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in,
        })
    }

    /// An access token for `user` in `session_id`, never outliving the session; and its
    /// lifetime.
    fn issue_access_token(
        &self,
        user: &User,
        session_id: SessionId,
        session_ends_at: Timestamp,
    ) -> Result<(String, SignedDuration), InternalError> {
        let now = self.ports.clock.now();
        let expires_at = (now + self.config.access_token_ttl).min(session_ends_at);
        let claims = AccessClaims {
            user_id: user.id,
            role: user.role,
            session_id,
            token_id: TokenId::generate(),
            issued_at: now,
            expires_at,
        };
        let token = self
            .ports
            .access_tokens
            .issue(&claims)
            .map_err(InternalError::Signing)?;
        Ok((token, expires_at.duration_since(now)))
    }

    /// Trades a refresh token for a new pair. Each refresh token works once: presenting a used
    /// one revokes every token of its session. A session ends when it has been idle for
    /// [`IdentityConfig::session_idle`] or reaches [`IdentityConfig::session_max`]. Refused
    /// tokens count against the address like failed sign-ins.
    ///
    /// # Errors
    /// [`RefreshError`].
    pub async fn refresh(
        &self,
        presented: &RefreshToken,
        address: Option<ClientAddress>,
    ) -> Result<TokenPair, RefreshError> {
        let now = self.ports.clock.now();
        let address_key = address.map(ThrottleKey::address);
        if let Some(key) = &address_key {
            let limit = self.config.throttle.per_address;
            if let Some(retry_after) = self.retry_after(key, limit, now).await? {
                return Err(RefreshError::Throttled { retry_after });
            }
        }
        let refused = async |error: RefreshError| -> Result<TokenPair, RefreshError> {
            if let Some(key) = &address_key {
                self.ports
                    .login_attempts
                    .record_failure(std::slice::from_ref(key), now)
                    .await?;
            }
            Err(error)
        };
        let factory = &self.ports.refresh_token_factory;
        let replacement = factory.generate();
        let outcome = self
            .ports
            .refresh_tokens
            .rotate(
                &factory.hash(presented),
                &factory.hash(&replacement),
                now,
                now + self.config.session_idle,
            )
            .await?;
        let (user_id, session_id, session_ends_at) = match outcome {
            RotateOutcome::Rotated {
                user_id,
                session_id,
                session_ends_at,
            } => (user_id, session_id, session_ends_at),
            RotateOutcome::Reused { session_id } => {
                self.ports
                    .refresh_tokens
                    .revoke_session(session_id, now)
                    .await?;
                return refused(RefreshError::Reused).await;
            }
            RotateOutcome::Dead | RotateOutcome::Unknown => {
                return refused(RefreshError::Invalid).await;
            }
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
        let (access_token, expires_in) =
            self.issue_access_token(&user, session_id, session_ends_at)?;
        Ok(TokenPair {
            access_token,
            refresh_token: replacement,
            expires_in,
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
            .await
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
            .is_denied(claims.token_id, claims.session_id, self.ports.clock.now())
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
        let now = self.ports.clock.now();
        self.ports
            .revoked_tokens
            .ended_sessions(sessions, now)
            .await
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

    /// Deletes what has expired: refresh tokens, denied access tokens, old sign-in failures,
    /// devices trusted no more.
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
            .purge_older_than(now - self.config.throttle.longest_window())
            .await?;
        let devices = self.ports.trusted_devices.purge_expired(now).await?;
        Ok(tokens + denials + tickets + attempts + devices)
    }
}

#[cfg(test)]
mod tests;
