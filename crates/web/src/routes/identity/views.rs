//! The shapes of accounts and tokens as the API shows them.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::identity::{Role, SignedIn, TokenPair, User, UserStatus};

use crate::openapi::enums;

/// A user, as the API shows them. Never carries a password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub full_name: String,
    pub email: Option<String>,
    #[schema(value_type = enums::Role)]
    pub role: Role,
    #[schema(value_type = enums::UserStatus)]
    pub status: UserStatus,
    pub created_at: Timestamp,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: *user.id.as_uuid(),
            username: user.username.as_str().to_owned(),
            full_name: user.full_name.as_str().to_owned(),
            email: user.email.map(|e| e.as_str().to_owned()),
            role: user.role,
            status: user.status,
            created_at: user.created_at,
        }
    }
}

/// Tokens issued at sign-in or refresh (RFC 6749 section 5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT, to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Single use: trade it at `/auth/refresh` for a new pair.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// At sign-in only: this client's device token for the account. Send it back as
    /// `device_token` at the next sign-in, so that failed sign-ins from elsewhere do not pause
    /// this client. Keep it as secret as a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

impl From<SignedIn> for TokenResponse {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            device_token: Some(signed_in.device_token.expose().to_owned()),
            ..signed_in.tokens.into()
        }
    }
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: pair.expires_in.as_secs(),
            device_token: None,
        }
    }
}
