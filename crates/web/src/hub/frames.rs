//! The notification socket's protocol: the JSON text frames each side sends, and the close
//! codes the server ends a socket with. `docs/notifications.md` describes it for client authors.

use actix_ws::{CloseCode, CloseReason};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::routes::messages::views::MessageView;
use crate::routes::notifications::views::NotificationView;

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// One notification; ids strictly increase on a socket, without gaps (message events
    /// included).
    Notification { notification: NotificationView },
    /// A message to the user, event `id` of their stream. `message` is `null` when the user
    /// may no longer read it (a doctor who left the patient's care team).
    Message {
        id: i64,
        conversation_id: Uuid,
        message: Option<MessageView>,
    },
    /// Another participant read the conversation up to `message_id`: event `id` of the
    /// user's stream.
    MessageRead {
        id: i64,
        conversation_id: Uuid,
        message_id: Uuid,
        reader_id: Uuid,
    },
    /// Sent once, after the replay: `last_id` is the last id sent, or where live delivery
    /// starts from when nothing was replayed.
    Ready { last_id: i64 },
    /// The answer to a client's `ping`.
    Pong,
    /// The answer to a client's `read`.
    Read { id: i64, read_at: Option<Timestamp> },
    /// The answer to a client's `auth`: the socket now lives until `expires_at`.
    AuthOk { expires_at: Timestamp },
    /// A client frame was refused; the socket stays open.
    Error { message: String },
}

impl ServerFrame {
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error {
            message: message.into(),
        }
    }
}

/// A frame the client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Answered `pong`; any client frame also counts as a heartbeat.
    Ping,
    /// Marks one of the user's notifications read.
    Read { id: i64 },
    /// A new access token of the same user, to outlive the current one.
    Auth { token: String },
}

impl ClientFrame {
    /// Parses a text frame.
    ///
    /// # Errors
    /// A message for the client's `error` frame.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message);
            format!("invalid frame ({message}); expected ping, read or auth")
        })
    }
}

/// Why the server closes a socket, as a close code and a short reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// 1000: the client closed, or asked to.
    Normal,
    /// 1001: the server is shutting down.
    Shutdown,
    /// 1003: the client sent a binary frame.
    Binary,
    /// 1009: a client frame was too large.
    TooLarge,
    /// 1002: the client broke the WebSocket protocol.
    Protocol,
    /// 1011: the server failed; the cause is logged.
    Internal,
    /// 4001: the access token expired without an `auth` renewal.
    TokenExpired,
    /// 4002: the user signed out, or the session was revoked.
    SignedOut,
    /// 4003: the account is no longer active.
    Suspended,
    /// 4008: the socket's queue overflowed; `last_sent` is where to resume from.
    TooSlow { last_sent: i64 },
    /// 4009: no frame from the client for three ping intervals.
    NoHeartbeat,
}

impl Closing {
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::Shutdown => 1001,
            Self::Protocol => 1002,
            Self::Binary => 1003,
            Self::TooLarge => 1009,
            Self::Internal => 1011,
            Self::TokenExpired => 4001,
            Self::SignedOut => 4002,
            Self::Suspended => 4003,
            Self::TooSlow { .. } => 4008,
            Self::NoHeartbeat => 4009,
        }
    }

    pub fn reason(self) -> String {
        match self {
            Self::Normal => "normal closure".into(),
            Self::Shutdown => "server shutting down".into(),
            Self::Protocol => "protocol error".into(),
            Self::Binary => "binary frames are not supported".into(),
            Self::TooLarge => "frame too large".into(),
            Self::Internal => "internal error".into(),
            Self::TokenExpired => "token expired".into(),
            Self::SignedOut => "signed out".into(),
            Self::Suspended => "account suspended".into(),
            Self::TooSlow { last_sent } => {
                format!("too slow; reconnect with after={last_sent}")
            }
            Self::NoHeartbeat => "no heartbeat".into(),
        }
    }

    /// The close frame's payload.
    pub fn close_reason(self) -> CloseReason {
        CloseReason {
            code: CloseCode::from(self.code()),
            description: Some(self.reason()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use serde_json::json;

    #[test]
    fn server_frames_are_tagged_by_type() {
        let cases = [
            (
                ServerFrame::Ready { last_id: 3 },
                json!({"type": "ready", "last_id": 3}),
            ),
            (ServerFrame::Pong, json!({"type": "pong"})),
            (
                ServerFrame::Read {
                    id: 2,
                    read_at: Some(ts("2026-11-23T09:30:00Z")),
                },
                json!({"type": "read", "id": 2, "read_at": "2026-11-23T09:30:00Z"}),
            ),
            (
                ServerFrame::AuthOk {
                    expires_at: ts("2026-11-23T09:45:00Z"),
                },
                json!({"type": "auth_ok", "expires_at": "2026-11-23T09:45:00Z"}),
            ),
            (
                ServerFrame::error("no such notification"),
                json!({"type": "error", "message": "no such notification"}),
            ),
        ];
        for (frame, expected) in cases {
            assert_eq!(serde_json::to_value(&frame).expect("json"), expected);
        }
    }

    #[test]
    fn client_frames_parse_and_bad_ones_are_explained() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping)
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"read","id":4}"#),
            Ok(ClientFrame::Read { id: 4 })
        );
        assert_eq!(
            ClientFrame::parse(r#"{"type":"auth","token":"t"}"#),
            Ok(ClientFrame::Auth { token: "t".into() })
        );
        for bad in [
            "not json",
            r#"{"type":"dance"}"#,
            r#"{"type":"read"}"#,
            r#"{"type":"read","id":"x"}"#,
            "[]",
        ] {
            let message = ClientFrame::parse(bad).expect_err(bad);
            assert!(message.starts_with("invalid frame"), "{message}");
        }
    }

    #[test]
    fn the_too_slow_reason_tells_where_to_resume() {
        let closing = Closing::TooSlow { last_sent: 41 };
        assert_eq!(closing.code(), 4008);
        assert_eq!(closing.reason(), "too slow; reconnect with after=41");
    }
}
