//! `CallRepository` and `CallRelay`: a video appointment stored as one; a call's joins and
//! leaves stored with their audit events and read back in order; signals relayed in process on
//! SQLite, and on PostgreSQL from one instance to another, large ones included, read only by
//! the instance that holds the recipient.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use jiff::SignedDuration;
use tokio::sync::mpsc;

use carehub_domain::audit::AuditAction;
use carehub_domain::calls::{CallEvent, CallEventKind, CallSignal, CallSink, Relayed};
use carehub_domain::identity::UserId;
use carehub_domain::kernel::AppointmentId;
use carehub_domain::notifications::NotificationKind;
use carehub_domain::scheduling::Appointment;
use carehub_infra::testing::{Backend, ScratchDatabase};
use carehub_infra::{Database, Repositories};

use crate::fixtures::patients::audit;
use crate::fixtures::scheduling::{
    appointment_audit, base, booking, new_appointment, notice, patient, secretary, span,
};
use crate::fixtures::{audited, doctor, micros, now};

contract!(a_video_appointments_call_events_are_stored_with_their_audit_events_in_order,);

contract!(
    postgres_instances:
    a_signal_relayed_on_one_instance_reaches_the_instance_holding_its_recipient,
);

/// Long enough never to fail a working test, short enough not to hang a broken one.
const PATIENCE: StdDuration = StdDuration::from_secs(10);

async fn video_visit(repos: &Repositories) -> Appointment {
    let house = doctor(repos, "dr.video").await.id;
    let desk = secretary(repos).await;
    let patient_id = patient(repos, &desk, "Video Patient").await;
    let appointment = Appointment {
        video: true,
        ..new_appointment(house, patient_id, span(base(), 9 * 60, 9 * 60 + 30), &desk)
    };
    repos
        .appointments
        .book(
            &booking(&appointment, 0),
            &appointment_audit(&desk, patient_id, AuditAction::AppointmentCreate),
            &[notice(&appointment, NotificationKind::AppointmentBooked)],
        )
        .await
        .unwrap();
    appointment
}

async fn a_video_appointments_call_events_are_stored_with_their_audit_events_in_order(
    repos: Repositories,
) {
    let visit = video_visit(&repos).await;
    let stored = repos.appointments.get(visit.id).await.unwrap().unwrap();
    assert!(stored.video, "booked as a video consultation");
    let event = |user, kind, secs| CallEvent {
        appointment_id: visit.id,
        user_id: user,
        kind,
        at: micros(now()) + SignedDuration::from_secs(secs),
    };
    // Recorded out of time order on purpose: the order of recording is what counts.
    let events = [
        event(visit.doctor_id, CallEventKind::Join, 0),
        event(visit.doctor_id, CallEventKind::Leave, 90),
        event(visit.doctor_id, CallEventKind::Join, 60),
    ];
    for (e, action) in events.iter().zip([
        AuditAction::CallJoin,
        AuditAction::CallLeave,
        AuditAction::CallJoin,
    ]) {
        repos
            .calls
            .record(e, &audit(visit.doctor_id, visit.patient_id, action))
            .await
            .unwrap();
    }
    assert_eq!(repos.calls.events(visit.id).await.unwrap(), events.to_vec());
    assert!(
        repos
            .calls
            .events(AppointmentId::generate())
            .await
            .unwrap()
            .is_empty()
    );
    let trail = audited(&repos, visit.patient_id).await;
    assert_eq!(
        trail
            .iter()
            .filter(|a| **a == AuditAction::CallJoin)
            .count(),
        2
    );
    assert!(trail.contains(&AuditAction::CallLeave));
}

/// A sink that holds the sockets of `holds`, and reports what it is given.
struct RecordingSink {
    holds: Vec<UserId>,
    delivered: mpsc::UnboundedSender<Relayed>,
    asked: Mutex<Vec<UserId>>,
}

impl CallSink for RecordingSink {
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
        appointment_id: AppointmentId::generate(),
        from: UserId::generate(),
        to,
        signal,
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
    let (relay, listener) = database.call_relay(sink).await.unwrap();
    assert!(listener.is_none(), "one instance: nothing to listen to");
    for signal in [
        CallSignal::Joined,
        CallSignal::Data(large_offer()),
        CallSignal::Left,
    ] {
        let sent = relayed(to, signal);
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
    let (_, holding_listener) = holding.call_relay(holding_sink.clone()).await.unwrap();
    let (relay, sending_listener) = sending.call_relay(sending_sink.clone()).await.unwrap();

    let sent = [
        relayed(patient, CallSignal::Joined),
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
    sqlx::query("UPDATE call_signals SET created_at = now() - interval '2 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    relay.relay(relayed(stranger, CallSignal::Joined)).await;
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM call_signals")
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
