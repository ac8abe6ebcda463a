//! Feedback's rules through its service, over doubles: who may rate which appointment, when,
//! and once; what doctors and administrators read; hiding a comment.

use std::sync::Arc;

use jiff::SignedDuration;
use mockall::predicate::eq;

use super::*;
use crate::access::Basis;
use crate::audit::AuditAction;
use crate::identity::{Role, UserId};
use crate::kernel::{AppointmentId, PatientId, Text};
use crate::scheduling::{Appointment, AppointmentStatus, MockAppointmentRepository};
use crate::test_support::{
    Mocks, NOW, OWN_RECORD, UNRELATED, actor, assert_allowed, assert_denied, single_event,
};

fn text(raw: &str) -> Text {
    Text::multiline(raw, 2_000).expect("text")
}

fn appointment(status: AppointmentStatus, completed_days_ago: i64) -> Appointment {
    let at = NOW - SignedDuration::from_hours(24 * completed_days_ago);
    Appointment {
        id: AppointmentId::generate(),
        doctor_id: UserId::generate(),
        patient_id: PatientId::generate(),
        start: at - SignedDuration::from_mins(30),
        end: at,
        reason: Text::line("Check-up", 100).expect("text"),
        status,
        cancel_reason: None,
        video: false,
        created_by: UserId::generate(),
        created_at: at - SignedDuration::from_hours(24 * 7),
        updated_at: at,
        doctor_name: None,
        patient_name: None,
    }
}

fn feedback_on(appointment: &Appointment, rating: u8, hidden: bool) -> Feedback {
    Feedback {
        appointment_id: appointment.id,
        doctor_id: appointment.doctor_id,
        patient_id: appointment.patient_id,
        rating: Rating::parse(i64::from(rating)).expect("a rating"),
        comment: Some(text("Kind and clear.")),
        created_at: NOW,
        hidden: hidden.then(|| Hidden {
            reason: text("Names another patient."),
            by: UserId::generate(),
            at: NOW,
        }),
    }
}

struct Setup {
    mocks: Mocks,
    feedback: MockFeedbackRepository,
    appointments: MockAppointmentRepository,
}

impl Setup {
    fn new() -> Self {
        Self {
            mocks: Mocks::new(),
            feedback: MockFeedbackRepository::new(),
            appointments: MockAppointmentRepository::new(),
        }
    }

    fn finds(&mut self, appointment: &Appointment) {
        let found = appointment.clone();
        self.appointments
            .expect_get()
            .with(eq(appointment.id))
            .returning(move |_| Ok(Some(found.clone())));
    }

    fn service(self) -> FeedbackService {
        FeedbackService::new(
            Mocks::gate_of(self.mocks.access_facts, self.mocks.audit),
            Arc::new(self.feedback),
            Arc::new(self.appointments),
        )
    }
}

#[test]
fn a_rating_is_one_to_five() {
    assert!(Rating::parse(0).is_err() && Rating::parse(6).is_err() && Rating::parse(-1).is_err());
    assert_eq!(Rating::parse(5).map(Rating::value), Ok(5));
    let items = vec![
        feedback_on(&appointment(AppointmentStatus::Completed, 1), 5, false),
        feedback_on(&appointment(AppointmentStatus::Completed, 1), 2, true),
    ];
    let summary = DoctorFeedback::of(UserId::generate(), items);
    assert_eq!((summary.count, summary.average), (2, Some(3.5)));
    assert_eq!(
        DoctorFeedback::of(UserId::generate(), Vec::new()).average,
        None
    );
}

#[tokio::test]
async fn the_patient_rates_a_completed_appointment_of_their_own_once() {
    let patient = actor(Role::Patient);
    let visit = appointment(AppointmentStatus::Completed, 3);
    let mut setup = Setup::new();
    setup.finds(&visit);
    setup
        .mocks
        .facts(visit.patient_id, &patient, Some(OWN_RECORD));
    let captured = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&captured);
    setup
        .feedback
        .expect_create()
        .times(1)
        .returning(move |f, e| {
            log.lock().expect("log").push((f.clone(), e.clone()));
            Ok(())
        });
    setup.mocks.nothing_audited();
    let given = setup
        .service()
        .give(
            &patient,
            visit.id,
            Rating::parse(4).expect("rating"),
            Some(text("Thorough.")),
        )
        .await
        .expect("rated");
    assert_eq!(
        (given.doctor_id, given.patient_id),
        (visit.doctor_id, visit.patient_id)
    );
    let (_, event) = captured.lock().expect("log")[0].clone();
    assert_allowed(
        &event,
        &patient,
        Some(visit.patient_id),
        AuditAction::FeedbackCreate,
        Basis::OwnRecord,
    );

    let mut setup = Setup::new();
    setup.finds(&visit);
    setup
        .mocks
        .facts(visit.patient_id, &patient, Some(OWN_RECORD));
    setup
        .feedback
        .expect_create()
        .returning(|_, _| Err(CreateFeedbackError::Duplicate));
    let again = setup
        .service()
        .give(&patient, visit.id, Rating::parse(1).expect("rating"), None)
        .await;
    assert!(matches!(again, Err(FeedbackError::Duplicate)), "{again:?}");
}

#[tokio::test]
async fn only_a_completed_appointment_within_thirty_days_is_rated() {
    let patient = actor(Role::Patient);
    for (visit, expected) in [
        (appointment(AppointmentStatus::Booked, 0), "not completed"),
        (
            appointment(AppointmentStatus::Cancelled, 0),
            "not completed",
        ),
        (appointment(AppointmentStatus::Completed, 31), "too late"),
    ] {
        let mut setup = Setup::new();
        setup.finds(&visit);
        setup
            .mocks
            .facts(visit.patient_id, &patient, Some(OWN_RECORD));
        setup.feedback.expect_create().never();
        let result = setup
            .service()
            .give(&patient, visit.id, Rating::parse(5).expect("rating"), None)
            .await;
        let ok = match expected {
            "too late" => matches!(result, Err(FeedbackError::TooLate)),
            _ => matches!(result, Err(FeedbackError::NotCompleted)),
        };
        assert!(ok, "{expected}: {result:?}");
    }
}

#[tokio::test]
async fn nobody_else_rates_an_appointment() {
    let other_patient = actor(Role::Patient);
    let visit = appointment(AppointmentStatus::Completed, 1);
    let mut setup = Setup::new();
    setup.finds(&visit);
    setup
        .mocks
        .facts(visit.patient_id, &other_patient, Some(UNRELATED));
    setup.feedback.expect_create().never();
    let audited = setup.mocks.audit_succeeds();
    let result = setup
        .service()
        .give(
            &other_patient,
            visit.id,
            Rating::parse(5).expect("rating"),
            None,
        )
        .await;
    assert!(
        matches!(result, Err(FeedbackError::AppointmentNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&audited),
        &other_patient,
        Some(visit.patient_id),
        AuditAction::FeedbackCreate,
    );

    for role in [Role::Doctor, Role::Secretary, Role::Laboratory, Role::Admin] {
        let someone = actor(role);
        let mut setup = Setup::new();
        setup.appointments.expect_get().never();
        let audited = setup.mocks.audit_succeeds();
        let result = setup
            .service()
            .give(&someone, visit.id, Rating::parse(5).expect("rating"), None)
            .await;
        assert!(
            matches!(result, Err(FeedbackError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&audited),
            &someone,
            None,
            AuditAction::FeedbackCreate,
        );
    }
}

#[tokio::test]
async fn a_doctor_reads_their_own_feedback_without_hidden_comments_and_an_admin_reads_all() {
    let doctor = actor(Role::Doctor);
    let visit = Appointment {
        doctor_id: doctor.user_id(),
        ..appointment(AppointmentStatus::Completed, 1)
    };
    let items = vec![feedback_on(&visit, 5, false), feedback_on(&visit, 1, true)];
    let mut setup = Setup::new();
    let listed = items.clone();
    setup
        .feedback
        .expect_for_doctor()
        .with(eq(doctor.user_id()))
        .returning(move |_| Ok(listed.clone()));
    let service = setup.service();
    let own = service
        .of_doctor(&doctor, doctor.user_id())
        .await
        .expect("own");
    assert_eq!((own.count, own.average), (2, Some(3.0)));
    assert!(own.items[0].comment.is_some());
    assert_eq!(own.items[1].comment, None, "a hidden comment is left out");
    let colleague = service.of_doctor(&doctor, UserId::generate()).await;
    assert!(
        matches!(colleague, Err(FeedbackError::Forbidden)),
        "{colleague:?}"
    );

    let admin = actor(Role::Admin);
    let all = service
        .of_doctor(&admin, doctor.user_id())
        .await
        .expect("all");
    assert!(
        all.items[1].comment.is_some(),
        "administrators see hidden comments"
    );
    for role in [Role::Patient, Role::Secretary, Role::Laboratory] {
        let result = service.of_doctor(&actor(role), doctor.user_id()).await;
        assert!(matches!(result, Err(FeedbackError::Forbidden)), "{role}");
    }
}

#[tokio::test]
async fn only_administrators_hide_a_comment_and_it_is_audited() {
    let admin = actor(Role::Admin);
    let visit = appointment(AppointmentStatus::Completed, 1);
    let given = feedback_on(&visit, 2, false);
    let mut setup = Setup::new();
    let found = given.clone();
    setup
        .feedback
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    setup
        .feedback
        .expect_hide()
        .withf(move |a, h, e| {
            *a == visit.id
                && h.reason.as_str() == "Names another patient."
                && e.action == AuditAction::FeedbackHide
                && e.patient_id == Some(visit.patient_id)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let service = setup.service();
    let hidden = service
        .hide(&admin, visit.id, text("Names another patient."))
        .await
        .expect("hidden");
    assert_eq!(hidden.hidden.map(|h| h.by), Some(admin.user_id()));
    for role in [
        Role::Doctor,
        Role::Patient,
        Role::Secretary,
        Role::Laboratory,
    ] {
        let result = service.hide(&actor(role), visit.id, text("No.")).await;
        assert!(matches!(result, Err(FeedbackError::Forbidden)), "{role}");
    }
}
