//! What the web crate's unit tests share.

use jiff::Timestamp;

/// An instant written in RFC 3339, for tests.
pub(crate) fn ts(rfc3339: &str) -> Timestamp {
    rfc3339.parse().expect("an RFC 3339 instant")
}
