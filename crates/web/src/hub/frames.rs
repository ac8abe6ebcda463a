//! The notification socket's protocol: the JSON text frames each side sends, and the close
//! codes the server ends a socket with. `docs/notifications.md` describes it for client authors.

use actix_ws::{CloseCode, CloseReason};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::routes::messages::views::MessageView;
use crate::routes::notifications::views::NotificationView;

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The answer to `call.join`: the caller is in the call until `closes_at`; `peer_present`
    /// tells whether the other party is in it too (as recorded).
    #[serde(rename = "call.joined")]
    CallJoined {
        appointment_id: Uuid,
        closes_at: Timestamp,
        peer_present: bool,
    },
    /// The answer to `call.leave`.
    #[serde(rename = "call.left")]
    CallLeft { appointment_id: Uuid },
    /// The other party joined or left a call the socket is in.
    #[serde(rename = "call.peer")]
    CallPeer {
        appointment_id: Uuid,
        user_id: Uuid,
        status: PeerStatus,
    },
    /// Signalling from the other party of a call the socket is in, as they sent it.
    #[serde(rename = "call.signal")]
    CallSignal {
        appointment_id: Uuid,
        from: Uuid,
        data: serde_json::Value,
    },
    /// Another participant of a conversation is typing; sent again every few seconds while
    /// they are.
    Typing {
        conversation_id: Uuid,
        user_id: Uuid,
    },
    /// A client frame was refused; the socket stays open. `appointment_id` names the call a
    /// refused call frame was about.
    Error {
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        appointment_id: Option<Uuid>,
    },
}

/// Where the other party of a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerStatus {
    Joined,
    Left,
}

impl ServerFrame {
    pub fn error(message: impl Into<String>) -> Self {
        Self::Error {
            message: message.into(),
            appointment_id: None,
        }
    }

    /// A refused call frame.
    pub fn call_error(appointment_id: Uuid, message: impl Into<String>) -> Self {
        Self::Error {
            message: message.into(),
            appointment_id: Some(appointment_id),
        }
    }
}

/// A frame the client sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Answered `pong`; any client frame also counts as a heartbeat.
    Ping,
    /// Marks one of the user's notifications read.
    Read { id: i64 },
    /// A new access token of the same user, to outlive the current one.
    Auth { token: String },
    /// Joins the call of a video appointment the user is the doctor or the patient of.
    #[serde(rename = "call.join")]
    CallJoin { appointment_id: Uuid },
    /// Signalling for the other party of a call the socket joined: a JSON object passed on
    /// as it is (an offer, an answer, an ICE candidate).
    #[serde(rename = "call.signal")]
    CallSignal {
        appointment_id: Uuid,
        data: serde_json::Value,
    },
    /// Leaves a call the socket joined.
    #[serde(rename = "call.leave")]
    CallLeave { appointment_id: Uuid },
    /// The user is typing in a conversation: its other participants are told. Send it again
    /// every few seconds while typing, no more often.
    Typing { conversation_id: Uuid },
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
            format!(
                "invalid frame ({message}); expected ping, read, auth, typing, call.join, \
                 call.signal or call.leave"
            )
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
    /// 1008: the client went on sending frames far past its budget.
    TooManyFrames,
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
            Self::TooManyFrames => 1008,
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
            Self::TooManyFrames => "too many frames".into(),
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
    fn call_frames_are_named_with_a_dot() {
        let id = Uuid::nil();
        assert_eq!(
            ClientFrame::parse(&json!({"type": "call.join", "appointment_id": id}).to_string()),
            Ok(ClientFrame::CallJoin { appointment_id: id })
        );
        assert_eq!(
            ClientFrame::parse(
                &json!({"type": "call.signal", "appointment_id": id, "data": {"sdp": "v=0"}})
                    .to_string()
            ),
            Ok(ClientFrame::CallSignal {
                appointment_id: id,
                data: json!({"sdp": "v=0"})
            })
        );
        assert!(ClientFrame::parse(r#"{"type":"call.join"}"#).is_err());
        assert!(ClientFrame::parse(r#"{"type":"call.join","appointment_id":"x"}"#).is_err());
        let frame = ServerFrame::CallSignal {
            appointment_id: id,
            from: id,
            data: json!({"candidate": null}),
        };
        assert_eq!(
            serde_json::to_value(&frame).expect("json"),
            json!({"type": "call.signal", "appointment_id": id, "from": id, "data": {"candidate": null}})
        );
        let peer = ServerFrame::CallPeer {
            appointment_id: id,
            user_id: id,
            status: PeerStatus::Left,
        };
        assert_eq!(serde_json::to_value(&peer).expect("json")["status"], "left");
        assert_eq!(
            serde_json::to_value(ServerFrame::call_error(id, "no")).expect("json"),
            json!({"type": "error", "message": "no", "appointment_id": id})
        );
    }

    #[test]
    fn the_too_slow_reason_tells_where_to_resume() {
        let closing = Closing::TooSlow { last_sent: 41 };
        assert_eq!(closing.code(), 4008);
        assert_eq!(closing.reason(), "too slow; reconnect with after=41");
    }
}
