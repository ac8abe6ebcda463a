//! The ICE servers handed to a call's parties: STUN and TURN servers from configuration
//! (`CAREHUB_ICE_SERVERS`), with TURN credentials made for the caller when a secret is set
//! (`CAREHUB_TURN_SECRET`), as TURN servers check them without asking CareHub: the username is
//! `expiry:user`, the password its HMAC-SHA1 under the shared secret, in base64 (coturn's
//! `use-auth-secret`).

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::Serialize;
use sha1::Sha1;
use utoipa::ToSchema;

use carehub_domain::identity::UserId;

/// How long TURN credentials outlive the call they are for.
pub const TURN_GRACE: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// The configured ICE servers. The secret never prints.
#[derive(Clone, Default)]
pub struct IceServers {
    stun: Vec<String>,
    turn: Vec<String>,
    secret: Option<String>,
}

impl std::fmt::Debug for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServers")
            .field("stun", &self.stun)
            .field("turn", &self.turn)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why the ICE servers' configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceConfigError {
    #[error("CAREHUB_ICE_SERVERS: {0:?} is not a stun:, turn: or turns: URL")]
    Scheme(String),
    #[error("CAREHUB_ICE_SERVERS names TURN servers: set CAREHUB_TURN_SECRET, their shared secret")]
    NoSecret,
}

impl IceServers {
    /// From a comma-separated list of `stun:`, `turn:` and `turns:` URLs, and the TURN
    /// servers' shared secret.
    ///
    /// # Errors
    /// A URL of another scheme; TURN servers without a secret.
    pub fn parse(list: &str, secret: Option<&str>) -> Result<Self, IceConfigError> {
        let mut servers = Self {
            secret: secret.filter(|s| !s.is_empty()).map(str::to_owned),
            ..Self::default()
        };
        for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let (scheme, rest) = url
                .split_once(':')
                .ok_or_else(|| IceConfigError::Scheme(url.to_owned()))?;
            if rest.is_empty() {
                return Err(IceConfigError::Scheme(url.to_owned()));
            }
            match scheme {
                "stun" | "stuns" => servers.stun.push(url.to_owned()),
                "turn" | "turns" => servers.turn.push(url.to_owned()),
                _ => return Err(IceConfigError::Scheme(url.to_owned())),
            }
        }
        if !servers.turn.is_empty() && servers.secret.is_none() {
            return Err(IceConfigError::NoSecret);
        }
        Ok(servers)
    }

    /// What `user` may use for a call that closes at `closes_at`: the STUN servers, and the
    /// TURN servers with credentials valid until [`TURN_GRACE`] after it closes, when
    /// `with_turn` (the call is open).
    pub fn for_call(&self, user: UserId, closes_at: Timestamp, with_turn: bool) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if let (true, false, Some(secret)) = (with_turn, self.turn.is_empty(), &self.secret) {
            let expiry = (closes_at + TURN_GRACE).as_second();
            let username = format!("{expiry}:{}", user.as_uuid());
            servers.push(IceServer {
                urls: self.turn.clone(),
                credential: Some(turn_password(secret, &username)),
                username: Some(username),
            });
        }
        servers
    }
}

/// The password of a TURN username under the shared secret.
fn turn_password(secret: &str, username: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// One ICE server, as `RTCPeerConnection`'s `iceServers` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct IceServer {
    #[schema(example = json!(["stun:stun.example.org:3478"]))]
    pub urls: Vec<String>,
    /// For TURN: `expiry:user id`, the expiry in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub username: Option<String>,
    /// For TURN: the password, valid until the expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    #[test]
    fn stun_and_turn_urls_are_read_and_anything_else_refused() {
        let servers = IceServers::parse(
            " stun:stun.example.org:3478, turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
            Some("s3cret"),
        )
        .expect("valid");
        assert_eq!(servers.stun, ["stun:stun.example.org:3478"]);
        assert_eq!(servers.turn.len(), 2);
        let none = IceServers::parse("", None).expect("none is fine");
        assert!(
            none.for_call(UserId::generate(), ts("2026-12-07T10:30:00Z"), true)
                .is_empty()
        );
        for bad in ["http://x", "stun:", "example.org"] {
            assert!(
                matches!(IceServers::parse(bad, None), Err(IceConfigError::Scheme(_))),
                "{bad}"
            );
        }
        assert_eq!(
            IceServers::parse("turn:t.example.org", None).map(|_| ()),
            Err(IceConfigError::NoSecret)
        );
        assert!(!format!("{servers:?}").contains("s3cret"));
    }

    #[test]
    fn turn_credentials_follow_the_shared_secret_scheme_and_expire_after_the_call() {
        let servers =
            IceServers::parse("stun:s.example.org,turn:t.example.org", Some("north")).expect("ok");
        let user = UserId::from_uuid(uuid::Uuid::nil());
        let closes = ts("2026-12-07T10:30:00Z");
        let given = servers.for_call(user, closes, true);
        assert_eq!(given.len(), 2);
        assert_eq!(given[0].urls, ["stun:s.example.org"]);
        assert_eq!(given[0].credential, None);
        let expiry = (closes + TURN_GRACE).as_second();
        let username = format!("{expiry}:00000000-0000-0000-0000-000000000000");
        assert_eq!(given[1].username.as_deref(), Some(username.as_str()));
        assert_eq!(username, "1796639700:00000000-0000-0000-0000-000000000000");
        // What `echo -n "$username" | openssl dgst -binary -sha1 -hmac north | base64` gives.
        assert_eq!(
            given[1].credential.as_deref(),
            Some("YXA10vOjsyqXJHxBXyr8XzLEGB4=")
        );
        // Before the call opens, no TURN credentials are handed out.
        assert_eq!(servers.for_call(user, closes, false).len(), 1);
    }
}
