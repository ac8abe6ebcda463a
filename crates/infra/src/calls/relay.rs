//! Carrying call signalling to its recipient's sockets, on whichever instance they are.
//!
//! On SQLite one instance holds every socket, and [`InProcessCallRelay`] hands signals
//! straight to its sink. On PostgreSQL, [`PgCallRelay`] stores each signal in `call_signals`
//! and notifies its recipient and id on [`CALL_CHANNEL`], in one statement; every instance's
//! listener reads a signal only when it holds a socket of the recipient. Signals are stored
//! rather than sent in the `NOTIFY` because an SDP offer comes near its 8000-byte limit.
//!
//! Relaying is best effort, as the domain's port says: a signal lost with a listener's
//! connection is not replayed (the clients join again).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::PgPool;
use uuid::Uuid;

use carehub_domain::calls::{CallRelay, CallSignal, CallSink, Relayed};
use carehub_domain::identity::UserId;
use carehub_domain::kernel::AppointmentId;

use crate::db::listener::{Channel, Heard, spawn_listener};
use crate::db::{Database, DatabaseError, PgListenerHandle};

/// The PostgreSQL channel signals are announced on.
pub const CALL_CHANNEL: &str = "carehub_calls";

/// The `application_name` of the call listener's connection.
pub const CALL_LISTENER_APPLICATION_NAME: &str = "carehub-call-listener";

/// Hands signals to this instance's sink. For SQLite, where one instance holds every socket.
#[derive(Clone)]
pub struct InProcessCallRelay {
    sink: Arc<dyn CallSink>,
}

impl std::fmt::Debug for InProcessCallRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessCallRelay").finish_non_exhaustive()
    }
}

impl InProcessCallRelay {
    pub fn new(sink: Arc<dyn CallSink>) -> Self {
        Self { sink }
    }
}

#[async_trait]
impl CallRelay for InProcessCallRelay {
    async fn relay(&self, relayed: Relayed) {
        self.sink.deliver(relayed);
    }
}

/// Relays signals through PostgreSQL to the listeners of every instance, this one's included.
/// Failures are logged, never returned.
#[derive(Debug, Clone)]
pub struct PgCallRelay {
    pool: PgPool,
}

impl PgCallRelay {
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
        sink: Arc<dyn CallSink>,
    ) -> Result<(Self, PgListenerHandle), sqlx::Error> {
        let listener = spawn_listener(
            pool,
            Channel {
                name: CALL_CHANNEL,
                application_name: CALL_LISTENER_APPLICATION_NAME,
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
impl CallRelay for PgCallRelay {
    async fn relay(&self, relayed: Relayed) {
        let payload = match encode(&relayed) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "cannot encode a call signal; it is dropped");
                return;
            }
        };
        // Stores the signal, announces it, and sweeps out signals nobody can want any more,
        // in one round trip.
        let relayed = sqlx::query(
            "WITH stale AS (DELETE FROM call_signals \
                 WHERE created_at < now() - interval '1 minute'), \
             stored AS (INSERT INTO call_signals (recipient, payload) VALUES ($1, $2) \
                 RETURNING id, recipient) \
             SELECT pg_notify($3, recipient::text || ' ' || id::text) FROM stored",
        )
        .bind(*relayed.to.as_uuid())
        .bind(payload)
        .bind(CALL_CHANNEL)
        .execute(&self.pool)
        .await;
        if let Err(error) = relayed {
            tracing::error!(%error, "relaying a call signal failed; it is dropped");
        }
    }
}

/// Reads the signals announced for users this instance holds a socket of.
struct Fetcher {
    pool: PgPool,
    sink: Arc<dyn CallSink>,
}

#[async_trait]
impl Heard for Fetcher {
    async fn heard(&self, announcement: &str) {
        let Some((recipient, id)) = parse_announcement(announcement) else {
            tracing::warn!(
                bytes = announcement.len(),
                "skipped an unreadable call announcement"
            );
            return;
        };
        if !self.sink.holds(recipient) {
            return;
        }
        let stored: Result<Option<String>, sqlx::Error> =
            sqlx::query_scalar("SELECT payload FROM call_signals WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await;
        match stored {
            Ok(Some(payload)) => match decode(&payload) {
                Ok(relayed) => self.sink.deliver(relayed),
                Err(error) => tracing::warn!(%error, "skipped an unreadable call signal"),
            },
            Ok(None) => tracing::debug!(id, "a call signal was swept out before it was read"),
            Err(error) => tracing::warn!(%error, id, "reading a call signal failed; it is lost"),
        }
    }

    fn missed(&self) {
        tracing::warn!("the call listener reconnected; signals relayed meanwhile are lost");
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
    appointment_id: Uuid,
    from: Uuid,
    to: Uuid,
    kind: &'a str,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    data: Option<&'a RawValue>,
}

#[derive(Debug, thiserror::Error)]
enum PayloadError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("unknown signal kind {0:?}")]
    Kind(String),
}

fn encode(relayed: &Relayed) -> Result<String, PayloadError> {
    let data;
    let (kind, raw) = match &relayed.signal {
        CallSignal::Joined => ("joined", None),
        CallSignal::Left => ("left", None),
        CallSignal::Data(json) => {
            data = RawValue::from_string(json.clone())?;
            ("data", Some(&*data))
        }
    };
    Ok(serde_json::to_string(&SignalPayload {
        appointment_id: *relayed.appointment_id.as_uuid(),
        from: *relayed.from.as_uuid(),
        to: *relayed.to.as_uuid(),
        kind,
        data: raw,
    })?)
}

fn decode(payload: &str) -> Result<Relayed, PayloadError> {
    let stored: SignalPayload<'_> = serde_json::from_str(payload)?;
    let signal = match (stored.kind, stored.data) {
        ("joined", None) => CallSignal::Joined,
        ("left", None) => CallSignal::Left,
        ("data", Some(data)) => CallSignal::Data(data.get().to_owned()),
        (kind, _) => return Err(PayloadError::Kind(kind.to_owned())),
    };
    Ok(Relayed {
        appointment_id: AppointmentId::from_uuid(stored.appointment_id),
        from: UserId::from_uuid(stored.from),
        to: UserId::from_uuid(stored.to),
        signal,
    })
}

impl Database {
    /// The call relay for this backend, delivering to `sink` (this instance's hub), and on
    /// PostgreSQL the listener feeding it; stop the listener on shutdown.
    ///
    /// # Errors
    /// [`DatabaseError::Sqlx`] when the PostgreSQL listener cannot subscribe.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn call_relay(
        &self,
        sink: Arc<dyn CallSink>,
    ) -> Result<(Arc<dyn CallRelay>, Option<PgListenerHandle>), DatabaseError> {
        Ok(match self {
            Self::Sqlite(_) => (Arc::new(InProcessCallRelay::new(sink)), None),
            Self::Postgres(pool) => {
                let (relay, listener) = PgCallRelay::start(pool, sink).await?;
                (Arc::new(relay), Some(listener))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn relayed(signal: CallSignal) -> Relayed {
        Relayed {
            appointment_id: AppointmentId::generate(),
            from: UserId::generate(),
            to: UserId::generate(),
            signal,
        }
    }

    #[test]
    fn a_signal_round_trips_with_its_data_as_it_was() {
        for signal in [
            CallSignal::Joined,
            CallSignal::Left,
            CallSignal::Data(r#"{"candidate":{"candidate":"a=1","sdpMid":"0"}}"#.into()),
        ] {
            let sent = relayed(signal);
            assert_eq!(decode(&encode(&sent).unwrap()).unwrap(), sent);
        }
    }

    #[test]
    fn unreadable_signals_and_announcements_are_refused() {
        let good = encode(&relayed(CallSignal::Left)).unwrap();
        for bad in [
            String::new(),
            "not json".into(),
            good.replace("\"left\"", "\"dance\""),
            good.replace("\"left\"", "\"data\""),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
        assert!(encode(&relayed(CallSignal::Data("{not json".into()))).is_err());
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
