//! Publishing committed notifications to the sockets of every server instance.
//!
//! On SQLite there is one instance, and [`InProcessPublisher`] hands notifications straight to
//! its sink. On PostgreSQL any number of instances share the database: [`PgNotifyPublisher`]
//! sends each notification with `pg_notify` on [`NOTIFICATION_CHANNEL`], and every instance runs
//! a listener ([`spawn_pg_listener`]) that hands what it hears to its own sink.
//! [`Database::realtime`](crate::Database::realtime) builds the right pair for a database.
//!
//! Publishing is best effort by design: the notifications are already stored, sinks fill gaps
//! from storage, and a listener that lost its connection asks its sink to resynchronise.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::notifications::{
    Notification, NotificationData, NotificationPublisher, NotificationSink,
};

use super::repository::StoredData;
use crate::db::listener::{Channel, Heard, spawn_listener};
use crate::db::{Database, DatabaseError, PgListenerHandle};

/// The PostgreSQL channel notifications are published on.
pub const NOTIFICATION_CHANNEL: &str = "carehub_notifications";

/// The `application_name` of the listener's connection, to find it in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "carehub-notification-listener";

/// Delivers notifications to this instance's sink as they are published. For SQLite, where
/// one server instance holds every socket.
#[derive(Clone)]
pub struct InProcessPublisher {
    sink: Arc<dyn NotificationSink>,
}

impl std::fmt::Debug for InProcessPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessPublisher").finish_non_exhaustive()
    }
}

impl InProcessPublisher {
    pub fn new(sink: Arc<dyn NotificationSink>) -> Self {
        Self { sink }
    }
}

#[async_trait]
impl NotificationPublisher for InProcessPublisher {
    async fn publish(&self, notifications: &[Notification]) {
        for notification in notifications {
            self.sink.deliver(notification.clone());
        }
    }
}

/// Publishes notifications with PostgreSQL's `NOTIFY`, to the listeners of every instance,
/// this one's included. Failures are logged, never returned.
#[derive(Debug, Clone)]
pub struct PgNotifyPublisher {
    pool: PgPool,
}

impl PgNotifyPublisher {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl NotificationPublisher for PgNotifyPublisher {
    async fn publish(&self, notifications: &[Notification]) {
        let payloads: Vec<String> = notifications
            .iter()
            .filter_map(|notification| match encode(notification) {
                Ok(payload) => Some(payload),
                Err(error) => {
                    tracing::error!(
                        %error,
                        notification_id = notification.id,
                        "cannot encode a notification for publication; clients will read it from storage"
                    );
                    None
                }
            })
            .collect();
        if payloads.is_empty() {
            return;
        }
        // One round trip for the whole batch, delivered in order.
        let published =
            sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
                .bind(NOTIFICATION_CHANNEL)
                .bind(&payloads)
                .execute(&self.pool)
                .await;
        if let Err(error) = published {
            tracing::error!(
                %error,
                count = payloads.len(),
                "publishing notifications failed; clients will read them from storage"
            );
        }
    }
}

/// Listens on [`NOTIFICATION_CHANNEL`] and hands every notification heard to `sink`. Returns
/// once the listener is subscribed, so that every notification published afterwards is heard.
///
/// The listener holds its own connection (named [`LISTENER_APPLICATION_NAME`]), made with
/// `pool`'s connect options, so it never takes one of `pool`'s. Unreadable payloads are logged
/// and skipped. When the connection is lost it reconnects, retrying with a growing delay, and
/// then calls [`NotificationSink::resync`], since whatever was published meanwhile was missed.
///
/// # Errors
/// When the first connection or subscription fails.
///
/// # Panics
/// Outside a tokio runtime.
pub async fn spawn_pg_listener(
    pool: &PgPool,
    sink: Arc<dyn NotificationSink>,
) -> Result<PgListenerHandle, sqlx::Error> {
    spawn_listener(
        pool,
        Channel {
            name: NOTIFICATION_CHANNEL,
            application_name: LISTENER_APPLICATION_NAME,
        },
        Arc::new(ToSink(sink)),
    )
    .await
}

/// Hands what the listener hears to a notification sink.
struct ToSink(Arc<dyn NotificationSink>);

#[async_trait]
impl Heard for ToSink {
    async fn heard(&self, payload: &str) {
        match decode(payload) {
            Ok(notification) => self.0.deliver(notification),
            Err(error) => tracing::warn!(
                %error,
                bytes = payload.len(),
                "skipped an unreadable notification payload"
            ),
        }
    }

    fn missed(&self) {
        tracing::warn!("the notification listener reconnected; resynchronising sockets");
        self.0.resync();
    }
}

/// A notification as published: infra's own mirror of the domain type, so that the wire
/// format changes only on purpose.
#[derive(Debug, Serialize, Deserialize)]
struct NotificationPayload {
    recipient: Uuid,
    id: i64,
    kind: String,
    created_at: Timestamp,
    #[serde(default)]
    read_at: Option<Timestamp>,
    data: StoredData,
}

/// Why a payload could not be made or read.
#[derive(Debug, thiserror::Error)]
enum PayloadError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Kind(String),
}

fn encode(notification: &Notification) -> Result<String, PayloadError> {
    Ok(serde_json::to_string(&NotificationPayload {
        recipient: *notification.recipient.as_uuid(),
        id: notification.id,
        kind: notification.kind.as_str().to_owned(),
        created_at: notification.created_at,
        read_at: notification.read_at,
        data: StoredData::from(&notification.data),
    })?)
}

fn decode(payload: &str) -> Result<Notification, PayloadError> {
    let payload: NotificationPayload = serde_json::from_str(payload)?;
    Ok(Notification {
        id: payload.id,
        recipient: UserId::from_uuid(payload.recipient),
        kind: payload.kind.parse().map_err(PayloadError::Kind)?,
        created_at: payload.created_at,
        read_at: payload.read_at,
        data: NotificationData::from(payload.data),
    })
}

/// How one server instance publishes the notifications it commits and hears about those every
/// instance commits. Built by [`Database::realtime`](crate::Database::realtime).
pub struct Realtime {
    /// Hand this to the use cases that commit notifications.
    pub publisher: Arc<dyn NotificationPublisher>,
    /// On PostgreSQL, the listener feeding the sink; stop it on shutdown. `None` on SQLite,
    /// where the publisher delivers to the sink itself.
    pub listener: Option<PgListenerHandle>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl Realtime {
    /// Stops the listener, if any, and waits for it.
    pub async fn shutdown(self) {
        if let Some(listener) = self.listener {
            listener.shutdown().await;
        }
    }
}

impl Database {
    /// The notification publisher for this backend, delivering to `sink` (this instance's
    /// socket hub). SQLite: an [`InProcessPublisher`], as one instance holds every socket.
    /// PostgreSQL: a [`PgNotifyPublisher`], and a listener started here that hands what every
    /// instance publishes to `sink`; stop it on shutdown with [`Realtime::shutdown`].
    ///
    /// # Errors
    /// [`DatabaseError::Sqlx`] when the PostgreSQL listener cannot subscribe.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn realtime(
        &self,
        sink: Arc<dyn NotificationSink>,
    ) -> Result<Realtime, DatabaseError> {
        Ok(match self {
            Self::Sqlite(_) => Realtime {
                publisher: Arc::new(InProcessPublisher::new(sink)),
                listener: None,
            },
            Self::Postgres(pool) => Realtime {
                listener: Some(spawn_pg_listener(pool, sink).await?),
                publisher: Arc::new(PgNotifyPublisher::new(pool.clone())),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use carehub_domain::notifications::NotificationKind;

    use super::*;

    fn notification(kind: NotificationKind) -> Notification {
        Notification {
            id: 42,
            recipient: UserId::from_uuid(Uuid::new_v4()),
            kind,
            created_at: "2026-11-23T10:15:30.123456789Z"
                .parse::<Timestamp>()
                .expect("an instant"),
            read_at: Some(
                "2026-11-23T10:16:00.000001Z"
                    .parse::<Timestamp>()
                    .expect("an instant"),
            ),
            data: NotificationData {
                title: "Urgent referral from Dr Alice Adams".into(),
                referral_id: Some(Uuid::new_v4()),
                patient_id: Some(Uuid::new_v4()),
                actor_id: Some(Uuid::new_v4()),
                emergency_access_id: Some(Uuid::new_v4()),
                appointment_id: Some(Uuid::new_v4()),
                lab_order_id: None,
                prescription_id: None,
                conversation_id: None,
                message_id: None,
                urgent: false,
            },
        }
    }

    #[test]
    fn a_payload_round_trips_every_field_of_every_kind() {
        for kind in NotificationKind::ALL {
            let sent = notification(*kind);
            assert_eq!(decode(&encode(&sent).unwrap()).unwrap(), sent);
        }
        let sparse = Notification {
            read_at: None,
            data: NotificationData {
                title: "Added to a care team".into(),
                ..NotificationData::default()
            },
            ..notification(NotificationKind::CareTeamAdded)
        };
        assert_eq!(decode(&encode(&sparse).unwrap()).unwrap(), sparse);
    }

    #[test]
    fn a_payload_is_json_with_rfc3339_times() {
        let sent = notification(NotificationKind::ReferralReceived);
        let json: serde_json::Value = serde_json::from_str(&encode(&sent).unwrap()).unwrap();
        assert_eq!(json["recipient"], sent.recipient.as_uuid().to_string());
        assert_eq!(json["id"], 42);
        assert_eq!(json["kind"], "referral.received");
        assert_eq!(json["created_at"], "2026-11-23T10:15:30.123456789Z");
        assert_eq!(json["read_at"], "2026-11-23T10:16:00.000001Z");
        assert_eq!(json["data"]["title"], "Urgent referral from Dr Alice Adams");
    }

    #[test]
    fn unreadable_payloads_are_refused() {
        let good = encode(&notification(NotificationKind::ReferralAccepted)).unwrap();
        for bad in [
            String::new(),
            "not json".to_owned(),
            "{}".to_owned(),
            good.replace("referral.accepted", "referral.lost"),
            good.replace("\"id\":42", "\"id\":\"42\""),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
    }
}
