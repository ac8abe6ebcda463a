//! Paging, shared by every list: the query parameters (`limit`, `cursor`), the page a list
//! answers with, and the opaque cursors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use carehub_domain::kernel::{Page, PageRequest};

use crate::problem::ApiError;

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
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("cursor: {e}")))?
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

/// The key a cursor holds, or why it holds none.
pub fn decode_cursor(cursor: &str) -> Result<Uuid, &'static str> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or("not a cursor this API issued")
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
