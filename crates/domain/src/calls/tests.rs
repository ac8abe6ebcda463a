//! The call's rules: its window, its duration, who may join, what is relayed to whom, and what
//! is recorded and audited.

use std::sync::{Arc, Mutex};

use jiff::SignedDuration;
use mockall::predicate::eq;

use super::*;
use crate::access::{Actor, Basis};
use crate::audit::{AuditAction, AuditEvent};
use crate::identity::{Role, UserId};
use crate::kernel::{AppointmentId, PatientId, Text};
use crate::patients::MockPatientRepository;
use crate::relay::{CallSignal, Live, MockRelay, Relayed};
use crate::scheduling::{Appointment, AppointmentStatus};
use crate::test_support::{
    Mocks, NOW, actor, assert_allowed, assert_denied, single_event, stored_patient,
};

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

/// A video appointment of 30 minutes starting `starts_in` from now.
fn video_visit(starts_in: SignedDuration) -> Appointment {
    Appointment {
        id: AppointmentId::generate(),
        doctor_id: UserId::generate(),
        patient_id: PatientId::generate(),
        start: NOW + starts_in,
        end: NOW + starts_in + mins(30),
        reason: Text::line("Palpitations", 100).expect("text"),
        status: AppointmentStatus::Booked,
        cancel_reason: None,
        video: true,
        created_by: UserId::generate(),
        created_at: NOW - SignedDuration::from_hours(48),
        updated_at: NOW - SignedDuration::from_hours(48),
        doctor_name: None,
        patient_name: None,
    }
}

fn event(user: UserId, kind: CallEventKind, at_min: i64) -> CallEvent {
    CallEvent {
        appointment_id: AppointmentId::generate(),
        user_id: user,
        kind,
        at: NOW + mins(at_min),
    }
}

fn call_of(doctor: UserId, patient: Option<UserId>, events: Vec<CallEvent>) -> Call {
    Call {
        appointment_id: AppointmentId::generate(),
        window: CallWindow {
            opens_at: NOW,
            closes_at: NOW + mins(60),
        },
        doctor_id: doctor,
        patient_user_id: patient,
        events,
    }
}

#[test]
fn the_window_opens_ten_minutes_before_the_start_and_closes_at_the_end() {
    let visit = video_visit(mins(30));
    let window = CallWindow::of(&visit);
    assert_eq!(window.opens_at, visit.start - mins(10));
    assert_eq!(window.closes_at, visit.end);
    assert!(!window.is_open(visit.start - mins(11)));
    assert!(window.is_open(visit.start - mins(10)));
    assert!(window.is_open(visit.end - SignedDuration::from_secs(1)));
    assert!(!window.is_open(visit.end));
}

#[test]
fn the_duration_is_the_time_both_parties_were_in_together() {
    use CallEventKind::{Join, Leave};
    let (doctor, patient) = (UserId::generate(), UserId::generate());
    let call = call_of(
        doctor,
        Some(patient),
        vec![
            event(doctor, Join, 0),
            // Together from 2 to 10.
            event(patient, Join, 2),
            event(patient, Leave, 10),
            // A second device of the doctor's: leaving on one keeps them in.
            event(doctor, Join, 11),
            event(patient, Join, 12),
            event(doctor, Leave, 15),
            event(patient, Leave, 20),
            event(doctor, Leave, 25),
        ],
    );
    assert_eq!(call.duration(NOW + mins(60)), mins(8 + 8));
    assert_eq!(call.started_at(), Some(NOW + mins(2)));
    assert!(!call.is_present(doctor) && !call.is_present(patient));

    // Still together: counted until now, never past the window's close.
    let open = call_of(
        doctor,
        Some(patient),
        vec![event(doctor, Join, 0), event(patient, Join, 5)],
    );
    assert!(open.is_present(doctor) && open.is_present(patient));
    assert_eq!(open.duration(NOW + mins(20)), mins(15));
    assert_eq!(open.duration(NOW + mins(600)), mins(55));

    // Alone, or with nobody to call, is no call at all; a stray leave counts for nothing.
    let alone = call_of(
        doctor,
        None,
        vec![event(patient, Leave, 0), event(doctor, Join, 1)],
    );
    assert_eq!(alone.duration(NOW + mins(30)), SignedDuration::ZERO);
    assert_eq!(alone.started_at(), None);
    assert_eq!(alone.peer_of(doctor), None);
    assert_eq!(call.peer_of(doctor), Some(patient));
    assert_eq!(call.peer_of(patient), Some(doctor));
    assert_eq!(call.peer_of(UserId::generate()), None);
}

type Recorded = Arc<Mutex<Vec<(CallEvent, AuditEvent)>>>;
type RelayedLog = Arc<Mutex<Vec<Relayed>>>;

struct Setup {
    mocks: Mocks,
    patients: MockPatientRepository,
    calls: MockCallRepository,
    relay: MockRelay,
    recorded: Recorded,
    relayed: RelayedLog,
}

impl Setup {
    fn new() -> Self {
        let recorded = Recorded::default();
        let relayed = RelayedLog::default();
        let mut calls = MockCallRepository::new();
        let log = Arc::clone(&recorded);
        calls.expect_record().returning(move |event, audit| {
            log.lock().expect("log").push((*event, audit.clone()));
            Ok(())
        });
        calls.expect_events().returning(|_| Ok(Vec::new()));
        let mut relay = MockRelay::new();
        let log = Arc::clone(&relayed);
        relay.expect_relay().returning(move |relayed| {
            log.lock().expect("log").push(relayed);
        });
        Self {
            mocks: Mocks::new(),
            patients: MockPatientRepository::new(),
            calls,
            relay,
            recorded,
            relayed,
        }
    }

    /// The appointment exists, and its patient's account is `patient_user`.
    fn finds(&mut self, visit: &Appointment, patient_user: Option<UserId>) {
        let found = visit.clone();
        self.mocks
            .appointments
            .expect_get()
            .with(eq(visit.id))
            .returning(move |_| Ok(Some(found.clone())));
        let patient_id = visit.patient_id;
        self.patients.expect_find().returning(move |_| {
            Ok(Some(crate::patients::Patient {
                id: patient_id,
                ..stored_patient(patient_user)
            }))
        });
    }

    /// `actor` is the patient of `visit` (their account is linked to its record).
    fn is_patient_of(&mut self, actor: &Actor, visit: &Appointment) {
        let patient_id = visit.patient_id;
        let user_id = actor.user_id();
        self.mocks
            .patients
            .expect_find_by_user()
            .with(eq(user_id))
            .returning(move |_| {
                Ok(Some(crate::patients::Patient {
                    id: patient_id,
                    ..stored_patient(Some(user_id))
                }))
            });
    }

    fn service(self) -> (CallService, Recorded, RelayedLog) {
        let gate = Mocks::gate_of(Default::default(), self.mocks.audit);
        let appointments = crate::scheduling::AppointmentService::new(
            gate.clone(),
            Arc::new(self.mocks.appointments),
            Arc::new(self.mocks.schedules),
            Arc::new(self.mocks.patients),
            Arc::new(self.mocks.users),
            Arc::new(self.mocks.publisher),
            jiff::tz::TimeZone::UTC,
        );
        let service = CallService::new(
            gate,
            appointments,
            Arc::new(self.patients),
            Arc::new(self.calls),
            Arc::new(self.relay),
        );
        (service, self.recorded, self.relayed)
    }
}

fn doctor_of(visit: &Appointment) -> Actor {
    Actor::unchecked(visit.doctor_id, Role::Doctor).in_request(crate::test_support::REQUEST_ID)
}

#[tokio::test]
async fn the_doctor_and_the_patient_join_and_the_other_is_told() {
    let visit = video_visit(mins(5));
    let patient = actor(Role::Patient);

    let mut setup = Setup::new();
    setup.finds(&visit, Some(patient.user_id()));
    setup.mocks.nothing_audited();
    let (service, recorded, relayed) = setup.service();
    let doctor = doctor_of(&visit);
    let joined = service.join(&doctor, visit.id).await.expect("joined");
    assert_eq!(joined.peer, Some(patient.user_id()));
    assert!(!joined.peer_present);
    assert_eq!(joined.window, CallWindow::of(&visit));
    let (event, audit) = recorded.lock().expect("log")[0].clone();
    assert_eq!(
        (event.appointment_id, event.user_id, event.kind, event.at),
        (visit.id, doctor.user_id(), CallEventKind::Join, NOW)
    );
    assert_allowed(
        &audit,
        &doctor,
        Some(visit.patient_id),
        AuditAction::CallJoin,
        Basis::Appointment,
    );
    assert_eq!(
        relayed.lock().expect("log").clone(),
        vec![Relayed {
            from: doctor.user_id(),
            to: patient.user_id(),
            what: Live::Call {
                appointment_id: visit.id,
                signal: CallSignal::Joined,
            },
        }]
    );

    // The patient joins; the doctor, recorded as in the call, is present.
    let mut setup = Setup::new();
    setup.finds(&visit, Some(patient.user_id()));
    setup.is_patient_of(&patient, &visit);
    setup.calls = MockCallRepository::new();
    let log = Arc::clone(&setup.recorded);
    setup.calls.expect_record().returning(move |event, audit| {
        log.lock().expect("log").push((*event, audit.clone()));
        Ok(())
    });
    let doctor_in = CallEvent {
        appointment_id: visit.id,
        user_id: visit.doctor_id,
        kind: CallEventKind::Join,
        at: NOW,
    };
    setup
        .calls
        .expect_events()
        .returning(move |_| Ok(vec![doctor_in]));
    setup.mocks.nothing_audited();
    let (service, recorded, relayed) = setup.service();
    let joined = service.join(&patient, visit.id).await.expect("joined");
    assert!(joined.peer_present);
    assert_eq!(joined.peer, Some(visit.doctor_id));
    let (_, audit) = recorded.lock().expect("log")[0].clone();
    assert_allowed(
        &audit,
        &patient,
        Some(visit.patient_id),
        AuditAction::CallJoin,
        Basis::OwnRecord,
    );
    assert_eq!(relayed.lock().expect("log")[0].to, visit.doctor_id);
}

#[tokio::test]
async fn anyone_else_is_refused_audited_and_nothing_is_relayed() {
    let visit = video_visit(mins(5));
    let cases = [
        (actor(Role::Secretary), "forbidden"),
        (actor(Role::Admin), "forbidden"),
        (actor(Role::Laboratory), "forbidden"),
        (actor(Role::Doctor), "not found"),
        (actor(Role::Patient), "not found"),
    ];
    for (caller, expected) in cases {
        let mut setup = Setup::new();
        setup.finds(&visit, Some(UserId::generate()));
        setup
            .mocks
            .patients
            .expect_find_by_user()
            .returning(|_| Ok(None));
        let audited = setup.mocks.audit_succeeds();
        let (service, recorded, relayed) = setup.service();
        let result = service.join(&caller, visit.id).await;
        let ok = match expected {
            "forbidden" => matches!(result, Err(CallError::Forbidden)),
            _ => matches!(result, Err(CallError::AppointmentNotFound)),
        };
        assert!(ok, "{}: {result:?}", caller.role());
        assert_denied(
            &single_event(&audited),
            &caller,
            Some(visit.patient_id),
            AuditAction::CallJoin,
        );
        assert!(recorded.lock().expect("log").is_empty());
        assert!(relayed.lock().expect("log").is_empty());
    }
}

#[tokio::test]
async fn a_call_is_joined_only_on_an_active_video_appointment_inside_its_window() {
    let too_early = video_visit(mins(11));
    let over = video_visit(-mins(30));
    let cancelled = Appointment {
        status: AppointmentStatus::Cancelled,
        cancel_reason: Some(Text::line("Ill", 100).expect("text")),
        ..video_visit(mins(5))
    };
    let in_person = Appointment {
        video: false,
        ..video_visit(mins(5))
    };
    for (visit, expected) in [
        (&too_early, "closed"),
        (&over, "closed"),
        (&cancelled, "not active"),
        (&in_person, "not video"),
    ] {
        let mut setup = Setup::new();
        setup.finds(visit, Some(UserId::generate()));
        setup.mocks.nothing_audited();
        let (service, recorded, relayed) = setup.service();
        let result = service.join(&doctor_of(visit), visit.id).await;
        let ok = match expected {
            "closed" => {
                matches!(result, Err(CallError::Closed(w)) if w == CallWindow::of(visit))
            }
            "not active" => matches!(
                result,
                Err(CallError::NotActive(AppointmentStatus::Cancelled))
            ),
            _ => matches!(result, Err(CallError::NotVideo)),
        };
        assert!(ok, "{expected}: {result:?}");
        assert!(recorded.lock().expect("log").is_empty());
        assert!(relayed.lock().expect("log").is_empty());
    }
}

fn joined_at(visit: &Appointment, peer: Option<UserId>) -> JoinedCall {
    JoinedCall {
        appointment_id: visit.id,
        patient_id: visit.patient_id,
        user: visit.doctor_id,
        peer,
        window: CallWindow::of(visit),
        peer_present: false,
        basis: Basis::Appointment,
    }
}

#[tokio::test]
async fn signals_pass_to_the_peer_as_they_are_while_the_window_is_open() {
    let visit = video_visit(mins(5));
    let patient = UserId::generate();
    let (service, recorded, relayed) = Setup::new().service();
    let offer = r#"{"sdp":{"type":"offer","sdp":"v=0"}}"#.to_owned();
    service
        .signal(&joined_at(&visit, Some(patient)), offer.clone())
        .await
        .expect("relayed");
    assert_eq!(
        relayed.lock().expect("log").clone(),
        vec![Relayed {
            from: visit.doctor_id,
            to: patient,
            what: Live::Call {
                appointment_id: visit.id,
                signal: CallSignal::Data(offer),
            },
        }]
    );
    // Relaying is not recorded: only joining and leaving are.
    assert!(recorded.lock().expect("log").is_empty());

    let too_large = "x".repeat(MAX_SIGNAL_BYTES + 1);
    let result = service
        .signal(&joined_at(&visit, Some(patient)), too_large)
        .await;
    assert!(
        matches!(result, Err(CallError::SignalTooLarge)),
        "{result:?}"
    );

    let over = video_visit(-mins(30));
    let result = service
        .signal(&joined_at(&over, Some(patient)), "{}".into())
        .await;
    assert!(matches!(result, Err(CallError::Closed(_))), "{result:?}");
    assert_eq!(relayed.lock().expect("log").len(), 1);

    // With nobody to call, a signal goes nowhere.
    service
        .signal(&joined_at(&visit, None), "{}".into())
        .await
        .expect("nothing to relay");
    assert_eq!(relayed.lock().expect("log").len(), 1);
}

#[tokio::test]
async fn leaving_is_recorded_audited_and_told_to_the_peer() {
    let visit = video_visit(mins(5));
    let patient = UserId::generate();
    let (service, recorded, relayed) = Setup::new().service();
    let doctor = doctor_of(&visit);
    service
        .leave(&doctor, &joined_at(&visit, Some(patient)))
        .await
        .expect("left");
    let (event, audit) = recorded.lock().expect("log")[0].clone();
    assert_eq!(
        (event.kind, event.user_id),
        (CallEventKind::Leave, doctor.user_id())
    );
    assert_allowed(
        &audit,
        &doctor,
        Some(visit.patient_id),
        AuditAction::CallLeave,
        Basis::Appointment,
    );
    assert_eq!(
        relayed.lock().expect("log")[0].what,
        Live::Call {
            appointment_id: visit.id,
            signal: CallSignal::Left
        }
    );
}

#[tokio::test]
async fn reading_the_call_is_audited_for_its_parties_only() {
    let visit = video_visit(mins(60));
    let patient = UserId::generate();
    let mut setup = Setup::new();
    setup.finds(&visit, Some(patient));
    let audited = setup.mocks.audit_succeeds();
    let (service, _, relayed) = setup.service();
    let doctor = doctor_of(&visit);
    let call = service.call(&doctor, visit.id).await.expect("the call");
    assert_eq!(call.window, CallWindow::of(&visit));
    assert_eq!(call.patient_user_id, Some(patient));
    assert_allowed(
        &single_event(&audited),
        &doctor,
        Some(visit.patient_id),
        AuditAction::CallRead,
        Basis::Appointment,
    );
    assert!(relayed.lock().expect("log").is_empty());

    let secretary = actor(Role::Secretary);
    let mut setup = Setup::new();
    setup.finds(&visit, Some(patient));
    let audited = setup.mocks.audit_succeeds();
    let (service, _, _) = setup.service();
    let result = service.call(&secretary, visit.id).await;
    assert!(matches!(result, Err(CallError::Forbidden)), "{result:?}");
    assert_denied(
        &single_event(&audited),
        &secretary,
        Some(visit.patient_id),
        AuditAction::CallRead,
    );
}
