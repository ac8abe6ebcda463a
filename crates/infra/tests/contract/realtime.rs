//! `NotificationPublisher`: in process on SQLite, and on PostgreSQL with `NOTIFY` and a listener
//! on every instance.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use jiff::SignedDuration;
use tokio::sync::mpsc;
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::notifications::{
    Notification, NotificationData, NotificationKind, NotificationPublisher, NotificationSink,
};
use carehub_infra::Database;
use carehub_infra::notifications::{
    InProcessPublisher, LISTENER_APPLICATION_NAME, NOTIFICATION_CHANNEL, PgNotifyPublisher,
    spawn_pg_listener,
};
use carehub_infra::testing::{Backend, ScratchDatabase};

use crate::fixtures::now;

contract!(
    postgres_instances:
    a_notification_published_on_one_pool_reaches_the_listener_on_another_exactly,
    notifications_published_together_are_heard_in_order,
    every_instance_hears_what_any_instance_publishes,
    an_unreadable_payload_is_skipped_and_the_listener_goes_on,
    a_listener_that_lost_its_connection_reconnects_and_asks_for_a_resync,
    a_stopped_listener_closes_its_connection,
    an_aborted_listener_stops,
);

/// Long enough never to fail a working test, short enough not to hang a broken one.
const PATIENCE: StdDuration = StdDuration::from_secs(10);

/// What a sink was told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    Delivered(Box<Notification>),
    Resync,
}

/// A sink that reports everything it is told on a channel.
#[derive(Debug)]
struct RecordingSink(mpsc::UnboundedSender<Heard>);

impl NotificationSink for RecordingSink {
    fn deliver(&self, notification: Notification) {
        let _ = self.0.send(Heard::Delivered(Box::new(notification)));
    }

    fn resync(&self) {
        let _ = self.0.send(Heard::Resync);
    }
}

fn recording_sink() -> (Arc<RecordingSink>, mpsc::UnboundedReceiver<Heard>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Arc::new(RecordingSink(sender)), receiver)
}

/// The next thing the sink hears; fails after [`PATIENCE`].
async fn next_heard(heard: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(PATIENCE, heard.recv())
        .await
        .expect("the sink hears something in time")
        .expect("the sink is alive")
}

/// A notification with every field set, times to the nanosecond.
fn notification(id: i64, kind: NotificationKind) -> Notification {
    Notification {
        id,
        recipient: UserId::generate(),
        kind,
        created_at: now(),
        read_at: Some(now() + SignedDuration::from_nanos(123_456_789)),
        data: NotificationData {
            title: "Urgent referral from Dr Alice Adams — «cardiology»".into(),
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

fn sparse_notification(id: i64) -> Notification {
    Notification {
        read_at: None,
        data: NotificationData {
            title: "Added to a care team".into(),
            ..NotificationData::default()
        },
        ..notification(id, NotificationKind::CareTeamAdded)
    }
}

#[tokio::test]
async fn the_in_process_publisher_delivers_each_notification_to_its_sink_in_order() {
    let (sink, mut heard) = recording_sink();
    let publisher = InProcessPublisher::new(sink);
    let sent = vec![
        notification(1, NotificationKind::ReferralReceived),
        sparse_notification(2),
    ];
    publisher.publish(&sent).await;
    publisher.publish(&[]).await;

    for expected in sent {
        assert_eq!(
            next_heard(&mut heard).await,
            Heard::Delivered(Box::new(expected))
        );
    }
    assert!(heard.try_recv().is_err(), "nothing more");
}

#[tokio::test]
async fn on_sqlite_the_realtime_publisher_delivers_in_process_without_a_listener() {
    let scratch = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let database = scratch.connect_migrated().await.unwrap();
    let (sink, mut heard) = recording_sink();
    let realtime = database.realtime(sink).await.unwrap();
    assert!(realtime.listener.is_none());

    let sent = notification(7, NotificationKind::EmergencyAccessUsed);
    realtime
        .publisher
        .publish(std::slice::from_ref(&sent))
        .await;
    assert_eq!(
        next_heard(&mut heard).await,
        Heard::Delivered(Box::new(sent))
    );
    realtime.shutdown().await;
    database.close().await;
}

/// A second connection pool on the scratch database: another server instance.
async fn instance(scratch: &ScratchDatabase) -> Database {
    scratch
        .connect_migrated()
        .await
        .expect("the scratch database connects and migrates")
}

fn pg_pool(database: &Database) -> sqlx::PgPool {
    match database {
        Database::Postgres(pool) => pool.clone(),
        Database::Sqlite(_) => panic!("a PostgreSQL database was expected"),
    }
}

/// How many listener connections are open on this test's database.
async fn listener_connections(pool: &sqlx::PgPool) -> i64 {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(LISTENER_APPLICATION_NAME)
    .fetch_one(pool)
    .await
    .unwrap();
    count
}

async fn a_notification_published_on_one_pool_reaches_the_listener_on_another_exactly(
    scratch: &ScratchDatabase,
) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();
    let publisher = PgNotifyPublisher::new(pg_pool(&publishing));

    for sent in [
        notification(41, NotificationKind::ReferralDeclined),
        sparse_notification(42),
    ] {
        publisher.publish(std::slice::from_ref(&sent)).await;
        assert_eq!(
            next_heard(&mut heard).await,
            Heard::Delivered(Box::new(sent))
        );
    }

    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn notifications_published_together_are_heard_in_order(scratch: &ScratchDatabase) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();
    let publisher = PgNotifyPublisher::new(pg_pool(&publishing));

    let sent: Vec<Notification> = NotificationKind::ALL
        .iter()
        .zip(1..)
        .map(|(kind, id)| notification(id, *kind))
        .collect();
    publisher.publish(&sent).await;
    publisher.publish(&[]).await;
    for expected in sent {
        assert_eq!(
            next_heard(&mut heard).await,
            Heard::Delivered(Box::new(expected))
        );
    }

    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn every_instance_hears_what_any_instance_publishes(scratch: &ScratchDatabase) {
    let (first, second) = (instance(scratch).await, instance(scratch).await);
    let (first_sink, mut first_heard) = recording_sink();
    let (second_sink, mut second_heard) = recording_sink();
    let first_realtime = first.realtime(first_sink).await.unwrap();
    let second_realtime = second.realtime(second_sink).await.unwrap();
    assert!(first_realtime.listener.is_some());

    let from_second = notification(1, NotificationKind::ReferralAccepted);
    second_realtime
        .publisher
        .publish(std::slice::from_ref(&from_second))
        .await;
    let from_first = sparse_notification(2);
    first_realtime
        .publisher
        .publish(std::slice::from_ref(&from_first))
        .await;

    for heard in [&mut first_heard, &mut second_heard] {
        assert_eq!(
            next_heard(heard).await,
            Heard::Delivered(Box::new(from_second.clone()))
        );
        assert_eq!(
            next_heard(heard).await,
            Heard::Delivered(Box::new(from_first.clone()))
        );
    }

    first_realtime.shutdown().await;
    second_realtime.shutdown().await;
    first.close().await;
    second.close().await;
}

async fn an_unreadable_payload_is_skipped_and_the_listener_goes_on(scratch: &ScratchDatabase) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();

    for garbage in ["not json", "{}", r#"{"id": 1, "kind": "referral.lost"}"#] {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NOTIFICATION_CHANNEL)
            .bind(garbage)
            .execute(&pg_pool(&publishing))
            .await
            .unwrap();
    }
    let sent = notification(3, NotificationKind::ReferralCompleted);
    PgNotifyPublisher::new(pg_pool(&publishing))
        .publish(std::slice::from_ref(&sent))
        .await;

    assert_eq!(
        next_heard(&mut heard).await,
        Heard::Delivered(Box::new(sent))
    );
    assert!(!listener.is_finished());
    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn a_listener_that_lost_its_connection_reconnects_and_asks_for_a_resync(
    scratch: &ScratchDatabase,
) {
    let (listening, publishing) = (instance(scratch).await, instance(scratch).await);
    let (sink, mut heard) = recording_sink();
    let listener = spawn_pg_listener(&pg_pool(&listening), sink).await.unwrap();
    let admin = pg_pool(&publishing);
    assert_eq!(listener_connections(&admin).await, 1);

    let (terminated,): (i64,) = sqlx::query_as(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(LISTENER_APPLICATION_NAME)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(terminated, 1);

    assert_eq!(
        next_heard(&mut heard).await,
        Heard::Resync,
        "once subscribed again, the sink is told it may have missed notifications"
    );
    let sent = notification(9, NotificationKind::CareTeamAdded);
    PgNotifyPublisher::new(admin)
        .publish(std::slice::from_ref(&sent))
        .await;
    assert_eq!(
        next_heard(&mut heard).await,
        Heard::Delivered(Box::new(sent))
    );

    listener.shutdown().await;
    listening.close().await;
    publishing.close().await;
}

async fn a_stopped_listener_closes_its_connection(scratch: &ScratchDatabase) {
    let database = instance(scratch).await;
    let pool = pg_pool(&database);
    let (sink, _heard) = recording_sink();
    let listener = spawn_pg_listener(&pool, sink).await.unwrap();
    assert_eq!(listener_connections(&pool).await, 1);

    tokio::time::timeout(PATIENCE, listener.shutdown())
        .await
        .expect("the listener stops promptly");
    // The server ends the backend once the client has said goodbye; wait for it to.
    tokio::time::timeout(PATIENCE, async {
        while listener_connections(&pool).await > 0 {
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    })
    .await
    .expect("the listener's connection is closed");
    database.close().await;
}

async fn an_aborted_listener_stops(scratch: &ScratchDatabase) {
    let database = instance(scratch).await;
    let pool = pg_pool(&database);
    let (sink, _heard) = recording_sink();
    let listener = spawn_pg_listener(&pool, sink).await.unwrap();

    listener.abort();
    tokio::time::timeout(PATIENCE, async {
        while !listener.is_finished() {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    })
    .await
    .expect("the aborted listener stops");
    tokio::time::timeout(PATIENCE, listener.shutdown())
        .await
        .expect("shutting down an aborted listener returns at once");
    database.close().await;
}
