//! The shapes the API speaks: response views of domain values, request bodies and how they
//! parse into domain values, and list pages.

pub mod enums;
pub mod medical_input;
pub mod notifications;
pub mod patient_input;
pub mod records;
pub mod referrals;
pub mod rules;
pub mod scheduling;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use carehub_domain::identity::{Role, TokenPair, User, UserStatus};
use carehub_domain::kernel::{Page, PageRequest};

use crate::problem::ApiError;

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
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
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
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.expose().to_owned(),
            token_type: "Bearer",
            expires_in: pair.expires_in.whole_seconds(),
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Paging parameters every list takes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The domain's page request, for lists keyed by a UUID-based id.
    pub fn to_request<K>(&self, key: impl FnOnce(Uuid) -> K) -> Result<PageRequest<K>, ApiError> {
        let after = self
            .cursor
            .as_deref()
            .map(decode_cursor)
            .transpose()?
            .map(key);
        PageRequest::new(self.limit, after).map_err(|e| ApiError::BadRequest(format!("limit: {e}")))
    }
}

impl<T> ListPage<T> {
    /// A page of views of domain items keyed by a UUID-based id.
    pub fn of<D, K>(page: Page<D, K>, key: impl Fn(&K) -> Uuid, view: impl FnMut(D) -> T) -> Self {
        Self {
            next_cursor: page.next.as_ref().map(|k| encode_cursor(key(k))),
            items: page.items.into_iter().map(view).collect(),
        }
    }
}

/// Cursors are opaque to clients: the last key seen, base64url-encoded.
pub fn encode_cursor(key: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::BadRequest("cursor: not a cursor this API issued".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).ok(), Some(id));
        assert!(decode_cursor("not-a-cursor").is_err());
        assert!(decode_cursor("").is_err());
    }
}
