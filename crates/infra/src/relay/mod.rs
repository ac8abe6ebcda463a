//! Carrying what is relayed (a call's signalling, "typing") to its recipient's sockets, on
//! whichever instance they are.
//!
//! On SQLite one instance holds every socket, and [`InProcessRelay`] hands everything
//! straight to its sink. On PostgreSQL, [`PgRelay`] stores each signal in `relayed_signals`
//! and notifies its recipient and id on [`RELAY_CHANNEL`], in one statement; every instance's
//! listener reads a signal only when it holds a socket of the recipient. Signals are stored
//! rather than sent in the `NOTIFY` because an SDP offer comes near its 8000-byte limit.
//!
//! Relaying is best effort, as the domain's port says: a signal lost with a listener's
//! connection is not replayed (the clients send again).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::PgPool;
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::kernel::{AppointmentId, ConversationId};
use carehub_domain::relay::{CallSignal, Live, Relay, RelaySink, Relayed};

use crate::db::listener::{Channel, Heard, spawn_listener};
use crate::db::{Database, DatabaseError, PgListenerHandle};

/// The PostgreSQL channel signals are announced on.
pub const RELAY_CHANNEL: &str = "carehub_relay";

/// The `application_name` of the relay listener's connection.
pub const RELAY_LISTENER_APPLICATION_NAME: &str = "carehub-relay-listener";

/// Hands signals to this instance's sink. For SQLite, where one instance holds every socket.
#[derive(Clone)]
pub struct InProcessRelay {
    sink: Arc<dyn RelaySink>,
}

impl std::fmt::Debug for InProcessRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessRelay").finish_non_exhaustive()
    }
}

impl InProcessRelay {
    pub fn new(sink: Arc<dyn RelaySink>) -> Self {
        Self { sink }
    }
}

#[async_trait]
impl Relay for InProcessRelay {
    async fn relay(&self, relayed: Relayed) {
        self.sink.deliver(relayed);
    }
}

/// Relays signals through PostgreSQL to the listeners of every instance, this one's included.
/// Failures are logged, never returned.
#[derive(Debug, Clone)]
pub struct PgRelay {
    pool: PgPool,
}

impl PgRelay {
    /// The relay, and the listener handing what every instance relays to `sink`; stop the
    /// listener on shutdown.
    ///
    /// # Errors
    /// When the listener cannot subscribe.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn start(
        pool: &PgPool,
        sink: Arc<dyn RelaySink>,
    ) -> Result<(Self, PgListenerHandle), sqlx::Error> {
        let listener = spawn_listener(
            pool,
            Channel {
                name: RELAY_CHANNEL,
                application_name: RELAY_LISTENER_APPLICATION_NAME,
            },
            Arc::new(Fetcher {
                pool: pool.clone(),
                sink,
            }),
        )
        .await?;
        Ok((Self { pool: pool.clone() }, listener))
    }
}

#[async_trait]
impl Relay for PgRelay {
    async fn relay(&self, relayed: Relayed) {
        let payload = match encode(&relayed) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "cannot encode a signal to relay; it is dropped");
                return;
            }
        };
        // Stores the signal, announces it, and sweeps out signals nobody can want any more,
        // in one round trip.
        let relayed = sqlx::query(
            "WITH stale AS (DELETE FROM relayed_signals \
                 WHERE created_at < now() - interval '1 minute'), \
             stored AS (INSERT INTO relayed_signals (recipient, payload) VALUES ($1, $2) \
                 RETURNING id, recipient) \
             SELECT pg_notify($3, recipient::text || ' ' || id::text) FROM stored",
        )
        .bind(*relayed.to.as_uuid())
        .bind(payload)
        .bind(RELAY_CHANNEL)
        .execute(&self.pool)
        .await;
        if let Err(error) = relayed {
            tracing::error!(%error, "relaying a signal failed; it is dropped");
        }
    }
}

/// Reads the signals announced for users this instance holds a socket of.
struct Fetcher {
    pool: PgPool,
    sink: Arc<dyn RelaySink>,
}

#[async_trait]
impl Heard for Fetcher {
    async fn heard(&self, announcement: &str) {
        let Some((recipient, id)) = parse_announcement(announcement) else {
            tracing::warn!(
                bytes = announcement.len(),
                "skipped an unreadable relay announcement"
            );
            return;
        };
        if !self.sink.holds(recipient) {
            return;
        }
        let stored: Result<Option<String>, sqlx::Error> =
            sqlx::query_scalar("SELECT payload FROM relayed_signals WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await;
        match stored {
            Ok(Some(payload)) => match decode(&payload) {
                Ok(relayed) => self.sink.deliver(relayed),
                Err(error) => tracing::warn!(%error, "skipped an unreadable relayed signal"),
            },
            Ok(None) => tracing::debug!(id, "a relayed signal was swept out before it was read"),
            Err(error) => tracing::warn!(%error, id, "reading a relayed signal failed; it is lost"),
        }
    }

    fn missed(&self) {
        tracing::warn!("the relay listener reconnected; signals relayed meanwhile are lost");
    }
}

/// `"{recipient} {id}"`, as the relay announces a signal.
fn parse_announcement(announcement: &str) -> Option<(UserId, i64)> {
    let (recipient, id) = announcement.split_once(' ')?;
    Some((UserId::from_uuid(recipient.parse().ok()?), id.parse().ok()?))
}

/// A signal as stored: infra's own mirror of the domain type.
#[derive(Debug, Serialize, Deserialize)]
struct SignalPayload<'a> {
    from: Uuid,
    to: Uuid,
    kind: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    appointment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conversation_id: Option<Uuid>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
}

#[derive(Debug, thiserror::Error)]
enum PayloadError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("unknown or incomplete signal of kind {0:?}")]
    Kind(String),
}

fn encode(relayed: &Relayed) -> Result<String, PayloadError> {
    let data;
    let (kind, appointment_id, conversation_id, raw) = match &relayed.what {
        Live::Call {
            appointment_id,
            signal,
        } => {
            let id = Some(*appointment_id.as_uuid());
            match signal {
                CallSignal::Joined => ("call.joined", id, None, None),
                CallSignal::Left => ("call.left", id, None, None),
                CallSignal::Data(json) => {
                    data = RawValue::from_string(json.clone())?;
                    ("call.data", id, None, Some(&*data))
                }
            }
        }
        Live::Typing { conversation_id } => {
            ("typing", None, Some(*conversation_id.as_uuid()), None)
        }
    };
    Ok(serde_json::to_string(&SignalPayload {
        from: *relayed.from.as_uuid(),
        to: *relayed.to.as_uuid(),
        kind,
        appointment_id,
        conversation_id,
        data: raw,
    })?)
}

fn decode(payload: &str) -> Result<Relayed, PayloadError> {
    let stored: SignalPayload<'_> = serde_json::from_str(payload)?;
    let call = |signal| {
        stored.appointment_id.map(|id| Live::Call {
            appointment_id: AppointmentId::from_uuid(id),
            signal,
        })
    };
    let what = match (stored.kind, stored.data) {
        ("call.joined", None) => call(CallSignal::Joined),
        ("call.left", None) => call(CallSignal::Left),
        ("call.data", Some(data)) => call(CallSignal::Data(data.get().to_owned())),
        ("typing", None) => stored.conversation_id.map(|id| Live::Typing {
            conversation_id: ConversationId::from_uuid(id),
        }),
        _ => None,
    }
    .ok_or_else(|| PayloadError::Kind(stored.kind.to_owned()))?;
    Ok(Relayed {
        from: UserId::from_uuid(stored.from),
        to: UserId::from_uuid(stored.to),
        what,
    })
}

impl Database {
    /// The relay for this backend, delivering to `sink` (this instance's hub), and on
    /// PostgreSQL the listener feeding it; stop the listener on shutdown.
    ///
    /// # Errors
    /// [`DatabaseError::Sqlx`] when the PostgreSQL listener cannot subscribe.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn relay(
        &self,
        sink: Arc<dyn RelaySink>,
    ) -> Result<(Arc<dyn Relay>, Option<PgListenerHandle>), DatabaseError> {
        Ok(match self {
            Self::Sqlite(_) => (Arc::new(InProcessRelay::new(sink)), None),
            Self::Postgres(pool) => {
                let (relay, listener) = PgRelay::start(pool, sink).await?;
                (Arc::new(relay), Some(listener))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn call(signal: CallSignal) -> Relayed {
        Relayed {
            from: UserId::generate(),
            to: UserId::generate(),
            what: Live::Call {
                appointment_id: AppointmentId::generate(),
                signal,
            },
        }
    }

    #[test]
    fn a_signal_round_trips_with_its_data_as_it_was() {
        let typing = Relayed {
            what: Live::Typing {
                conversation_id: ConversationId::generate(),
            },
            ..call(CallSignal::Joined)
        };
        for sent in [
            call(CallSignal::Joined),
            call(CallSignal::Left),
            call(CallSignal::Data(
                r#"{"candidate":{"candidate":"a=1","sdpMid":"0"}}"#.into(),
            )),
            typing,
        ] {
            assert_eq!(decode(&encode(&sent).unwrap()).unwrap(), sent);
        }
    }

    #[test]
    fn unreadable_signals_and_announcements_are_refused() {
        let good = encode(&call(CallSignal::Left)).unwrap();
        for bad in [
            String::new(),
            "not json".into(),
            good.replace("\"call.left\"", "\"call.dance\""),
            good.replace("\"call.left\"", "\"call.data\""),
            good.replace("\"call.left\"", "\"typing\""),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
        assert!(encode(&call(CallSignal::Data("{not json".into()))).is_err());
        let user = UserId::generate();
        assert_eq!(
            parse_announcement(&format!("{} 42", user.as_uuid())),
            Some((user, 42))
        );
        for bad in ["", "42", "x 42", &format!("{} x", user.as_uuid())] {
            assert_eq!(parse_announcement(bad), None, "{bad}");
        }
    }
}
