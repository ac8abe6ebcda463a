//! The edges of the HTTP server: what every request and response goes through before any route
//! sees it. Security headers on every response ([`headers`]), cross-origin access only for the
//! configured origins ([`cors`]), and a size limit and a deadline on every request body
//! ([`body`]). The connection timeouts (request head, keep-alive) are the server's own, set in
//! `startup.rs` from the same [`Edges`].

pub mod body;
pub mod cors;
pub mod headers;

use std::time::Duration;

pub use body::BodyRules;
pub use cors::Origins;
pub use headers::SecurityHeaders;

/// How the edges are configured, from [`crate::Settings::edges`].
#[derive(Debug, Clone)]
pub struct Edges {
    pub headers: SecurityHeaders,
    /// The origins browsers may call the API from; none turns CORS off.
    pub cors: Origins,
    pub bodies: BodyRules,
    /// The time a client has to send a request's head.
    pub header_timeout: Duration,
    /// How long an idle connection is kept open; `None` closes it after each response.
    pub keep_alive: Option<Duration>,
}

/// How long a client gets to close its side once the server closed the connection (after a
/// refused body, say), before the server drops it.
pub const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
