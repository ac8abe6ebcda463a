//! `Relay`: what is relayed between users (a call's signalling, "typing") handed in process to
//! the hub on SQLite, and on PostgreSQL carried from one instance to another, large signals
//! included, in order, read only by the instance that holds the recipient.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use tokio::sync::mpsc;

use carehub_domain::identity::UserId;
use carehub_domain::kernel::{AppointmentId, ConversationId};
use carehub_domain::relay::{CallSignal, Live, RelaySink, Relayed};
use carehub_infra::Database;
use carehub_infra::testing::{Backend, ScratchDatabase};

contract!(
    postgres_instances:
    a_signal_relayed_on_one_instance_reaches_the_instance_holding_its_recipient,
);

/// Long enough never to fail a working test, short enough not to hang a broken one.
const PATIENCE: StdDuration = StdDuration::from_secs(10);

/// A sink that holds the sockets of `holds`, and reports what it is given.
struct RecordingSink {
    holds: Vec<UserId>,
    delivered: mpsc::UnboundedSender<Relayed>,
    asked: Mutex<Vec<UserId>>,
}

impl RelaySink for RecordingSink {
    fn deliver(&self, relayed: Relayed) {
        let _ = self.delivered.send(relayed);
    }

    fn holds(&self, user: UserId) -> bool {
        self.asked.lock().unwrap().push(user);
        self.holds.contains(&user)
    }
}

fn recording_sink(holds: Vec<UserId>) -> (Arc<RecordingSink>, mpsc::UnboundedReceiver<Relayed>) {
    let (delivered, receiver) = mpsc::unbounded_channel();
    let sink = Arc::new(RecordingSink {
        holds,
        delivered,
        asked: Mutex::new(Vec::new()),
    });
    (sink, receiver)
}

fn relayed(to: UserId, signal: CallSignal) -> Relayed {
    Relayed {
        from: UserId::generate(),
        to,
        what: Live::Call {
            appointment_id: AppointmentId::generate(),
            signal,
        },
    }
}

fn typing(to: UserId) -> Relayed {
    Relayed {
        from: UserId::generate(),
        to,
        what: Live::Typing {
            conversation_id: ConversationId::generate(),
        },
    }
}

/// An SDP offer of the size a browser makes for audio and video, and then some: more than a
/// `NOTIFY` payload may hold.
fn large_offer() -> String {
    let sdp: String = (0..400)
        .map(|i| format!("a=rtcp-fb:{i} nack pli\r\n"))
        .collect();
    let offer = serde_json::json!({ "description": { "type": "offer", "sdp": sdp } }).to_string();
    assert!(offer.len() > 8_000, "{}", offer.len());
    offer
}

#[tokio::test]
async fn on_sqlite_a_signal_is_handed_to_this_instances_hub() {
    let scratch = ScratchDatabase::create(Backend::Sqlite).await.unwrap();
    let database = scratch.connect_migrated().await.unwrap();
    let to = UserId::generate();
    let (sink, mut delivered) = recording_sink(vec![to]);
    let (relay, listener) = database.relay(sink).await.unwrap();
    assert!(listener.is_none(), "one instance: nothing to listen to");
    for sent in [
        relayed(to, CallSignal::Joined),
        relayed(to, CallSignal::Data(large_offer())),
        typing(to),
        relayed(to, CallSignal::Left),
    ] {
        relay.relay(sent.clone()).await;
        assert_eq!(delivered.try_recv().unwrap(), sent);
    }
    database.close().await;
}

fn pg_pool(database: &Database) -> sqlx::PgPool {
    match database {
        Database::Postgres(pool) => pool.clone(),
        Database::Sqlite(_) => panic!("a PostgreSQL database was expected"),
    }
}

async fn a_signal_relayed_on_one_instance_reaches_the_instance_holding_its_recipient(
    scratch: &ScratchDatabase,
) {
    let holding = scratch.connect_migrated().await.unwrap();
    let sending = scratch.connect_migrated().await.unwrap();
    let (patient, stranger) = (UserId::generate(), UserId::generate());
    let (holding_sink, mut heard) = recording_sink(vec![patient]);
    let (sending_sink, mut heard_by_sender) = recording_sink(Vec::new());
    let (_, holding_listener) = holding.relay(holding_sink.clone()).await.unwrap();
    let (relay, sending_listener) = sending.relay(sending_sink.clone()).await.unwrap();

    let sent = [
        relayed(patient, CallSignal::Joined),
        typing(patient),
        relayed(patient, CallSignal::Data(large_offer())),
        relayed(
            patient,
            CallSignal::Data(r#"{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0"}}"#.into()),
        ),
        relayed(stranger, CallSignal::Left),
        relayed(patient, CallSignal::Left),
    ];
    for signal in &sent {
        relay.relay(signal.clone()).await;
    }
    for expected in sent.iter().filter(|s| s.to == patient) {
        let got = tokio::time::timeout(PATIENCE, heard.recv())
            .await
            .expect("heard in time")
            .expect("the sink is alive");
        assert_eq!(&got, expected, "in order, as sent");
    }
    // Nobody holds the stranger: nothing was delivered for them, on either instance.
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert!(heard.try_recv().is_err());
    assert!(heard_by_sender.try_recv().is_err());
    assert!(holding_sink.asked.lock().unwrap().contains(&stranger));

    // Signals are swept out once stale, as new ones come.
    let pool = pg_pool(&sending);
    sqlx::query("UPDATE relayed_signals SET created_at = now() - interval '2 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    relay.relay(relayed(stranger, CallSignal::Joined)).await;
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM relayed_signals")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "only the newest signal is kept");

    for listener in [holding_listener, sending_listener].into_iter().flatten() {
        listener.shutdown().await;
    }
    holding.close().await;
    sending.close().await;
}
