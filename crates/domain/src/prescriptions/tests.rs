//! The prescriptions' rules through their service, over doubles of every port: who may
//! prescribe, read and end; the allergy check and its override; replacement; expiry.

use std::sync::{Arc, Mutex};

use jiff::SignedDuration;
use mockall::predicate::eq;

use super::*;
use crate::access::Basis;
use crate::audit::{AuditAction, AuditEvent};
use crate::identity::{Role, UserId};
use crate::jobs::{JobChanges, Task};
use crate::kernel::{PageRequest, PatientId, PrescriptionId, RepositoryError, Text};
use crate::notifications::{NotificationKind, Recipient};
use crate::patients::{Allergy, MedicalInfo, MedicalRecord, PatientSummary};
use crate::test_support::{
    EMERGENCY_ONLY, Mocks, NOW, ON_CARE_TEAM, OWN_RECORD, UNRELATED, actor, assert_allowed,
    assert_denied, invalid_fields, single_event, stored, stored_patient,
};

fn text(raw: &str) -> Text {
    Text::line(raw, 2_000).expect("a line")
}

fn new(patient_id: PatientId, medication: &str) -> NewPrescription {
    NewPrescription {
        patient_id,
        medication: text(medication),
        dose: text("500 mg"),
        route: Route::Oral,
        frequency: text("three times a day"),
        duration_days: Some(7),
        quantity: Some(21),
        refills: 0,
        instructions: text("After meals."),
        override_reason: None,
        replaces: None,
    }
}

fn view(prescription: Prescription) -> PrescriptionView {
    PrescriptionView {
        patient: PatientSummary {
            id: prescription.patient_id,
            ..PatientSummary::from(&stored_patient(None))
        },
        prescription,
        prescribed_by_name: None,
    }
}

fn written(patient_id: PatientId, by: UserId) -> Prescription {
    Prescription::write(
        new(patient_id, "ibuprofen"),
        by,
        &[],
        NOW - SignedDuration::from_hours(24),
    )
    .expect("written")
}

/// What the repository's `save` was given.
#[derive(Debug, Clone)]
struct Saved {
    written: Option<Prescription>,
    ended: Option<Prescription>,
    audit: Vec<AuditEvent>,
    notifications: Vec<crate::notifications::NewNotification>,
    jobs: JobChanges,
}

struct Rx {
    mocks: Mocks,
    prescriptions: MockPrescriptionRepository,
}

impl Rx {
    fn new() -> Self {
        Self {
            mocks: Mocks::new(),
            prescriptions: MockPrescriptionRepository::new(),
        }
    }

    fn finds(&mut self, prescription: &Prescription) {
        let found = view(prescription.clone());
        self.prescriptions
            .expect_find()
            .with(eq(prescription.id))
            .returning(move |_| Ok(Some(found.clone())));
    }

    fn allergic_to(&mut self, patient_id: PatientId, substances: &[&str]) {
        let allergies: Vec<Allergy> = substances
            .iter()
            .map(|s| Allergy {
                substance: text(s),
                reaction: None,
                severity: None,
            })
            .collect();
        self.mocks
            .medical
            .expect_get()
            .with(eq(patient_id))
            .returning(move |_| {
                Ok(MedicalRecord {
                    patient_id,
                    info: MedicalInfo {
                        allergies: allergies.clone(),
                        ..MedicalInfo::default()
                    },
                    updated_at: None,
                    updated_by: None,
                })
            });
    }

    /// The patient has an account, `user`.
    fn has_account(&mut self, patient_id: PatientId, user: UserId) {
        self.mocks.patients.expect_find().returning(move |_| {
            Ok(Some(crate::patients::Patient {
                id: patient_id,
                ..stored_patient(Some(user))
            }))
        });
    }

    /// `save` is called once and stores; the new prescription is then found as saved.
    fn saves(&mut self) -> Arc<Mutex<Vec<Saved>>> {
        let saved = Arc::new(Mutex::new(Vec::<Saved>::new()));
        let log = Arc::clone(&saved);
        self.prescriptions
            .expect_save()
            .times(1)
            .returning(move |c| {
                log.lock().expect("log").push(Saved {
                    written: c.written.cloned(),
                    ended: c.ended.cloned(),
                    audit: c.audit.to_vec(),
                    notifications: c.notifications.to_vec(),
                    jobs: c.jobs.clone(),
                });
                Ok(stored(c.notifications, &[]))
            });
        saved
    }

    fn reads_back(&mut self, saved: &Arc<Mutex<Vec<Saved>>>) {
        let saved = Arc::clone(saved);
        self.prescriptions.expect_find().returning(move |id| {
            Ok(saved
                .lock()
                .expect("log")
                .iter()
                .filter_map(|s| s.written.clone())
                .find(|p| p.id == id)
                .map(view))
        });
    }

    fn service(self) -> PrescriptionService {
        PrescriptionService::new(
            Mocks::gate_of(self.mocks.access_facts, self.mocks.audit),
            Arc::new(self.prescriptions),
            Arc::new(self.mocks.medical),
            Arc::new(self.mocks.patients),
            Arc::new(self.mocks.publisher),
        )
    }
}

#[tokio::test]
async fn a_care_team_doctor_prescribes_and_the_patient_is_told_without_the_medication() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let patient_user = UserId::generate();
    let mut rx = Rx::new();
    rx.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    rx.allergic_to(patient_id, &["latex"]);
    rx.has_account(patient_id, patient_user);
    let saved = rx.saves();
    rx.reads_back(&saved);
    let published = rx.mocks.publishes();
    rx.mocks.nothing_audited();
    let read = rx
        .service()
        .prescribe(&doctor, new(patient_id, "Amoxicillin"))
        .await
        .expect("prescribed");
    let saved = saved.lock().expect("log");
    let change = &saved[0];
    let prescription = change.written.clone().expect("written");
    assert_eq!(read.prescription, prescription);
    assert_eq!(prescription.status, PrescriptionStatus::Active);
    assert_eq!(prescription.prescribed_by, doctor.user_id());
    assert_eq!(prescription.allergy_override, None);
    assert!(change.ended.is_none());
    assert_eq!(change.audit.len(), 1);
    assert_allowed(
        &change.audit[0],
        &doctor,
        Some(patient_id),
        AuditAction::PrescriptionCreate,
        Basis::CareTeam,
    );
    let notice = &change.notifications[0];
    assert_eq!(change.notifications.len(), 1);
    assert_eq!(notice.recipient, Recipient::User(patient_user));
    assert_eq!(notice.kind, NotificationKind::PrescriptionCreated);
    assert_eq!(
        notice.data.prescription_id,
        Some(*prescription.id.as_uuid())
    );
    assert!(
        !notice.data.title.to_lowercase().contains("amoxicillin"),
        "no clinical text in a notification"
    );
    assert_eq!(
        change.jobs.add[0].task,
        Task::PrescriptionExpiry {
            prescription: prescription.id
        }
    );
    assert_eq!(Some(change.jobs.add[0].run_at), prescription.expires_at());
    assert_eq!(published.lock().expect("log")[0].len(), 1);
}

#[tokio::test]
async fn a_medication_matching_an_allergy_is_refused_with_each_match_and_nothing_is_written() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut rx = Rx::new();
    rx.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    rx.allergic_to(patient_id, &["Penicillin", "amoxicillin"]);
    rx.prescriptions.expect_save().never();
    rx.mocks.nothing_audited();
    rx.mocks.nothing_published();
    let result = rx
        .service()
        .prescribe(&doctor, new(patient_id, "Amoxicillin 500 mg"))
        .await;
    let Err(PrescriptionError::AllergyConflict(matches)) = result else {
        panic!("expected a conflict, got {result:?}");
    };
    let substances: Vec<&str> = matches.iter().map(|m| m.substance.as_str()).collect();
    assert_eq!(substances, ["Penicillin", "amoxicillin"]);
}

#[tokio::test]
async fn an_override_writes_the_prescription_and_audits_the_override_on_its_own() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut rx = Rx::new();
    rx.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    rx.allergic_to(patient_id, &["penicillin"]);
    rx.mocks.patients.expect_find().returning(|_| Ok(None));
    let saved = rx.saves();
    rx.reads_back(&saved);
    rx.mocks.nothing_published();
    let read = rx
        .service()
        .prescribe(
            &doctor,
            NewPrescription {
                override_reason: Some(text("Tolerated amoxicillin last year.")),
                ..new(patient_id, "amoxicillin")
            },
        )
        .await
        .expect("prescribed");
    let kept = read.prescription.allergy_override.expect("kept");
    assert_eq!(kept.matches[0].substance, "penicillin");
    let saved = saved.lock().expect("log");
    let actions: Vec<AuditAction> = saved[0].audit.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::PrescriptionCreate,
            AuditAction::PrescriptionAllergyOverride
        ]
    );
    assert!(saved[0].notifications.is_empty(), "no account, no notice");
}

#[tokio::test]
async fn a_replacement_stops_the_old_prescription_in_the_same_change() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let old = written(patient_id, UserId::generate());
    let mut rx = Rx::new();
    rx.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    rx.finds(&old);
    rx.allergic_to(patient_id, &[]);
    rx.mocks.patients.expect_find().returning(|_| Ok(None));
    let saved = rx.saves();
    rx.reads_back(&saved);
    rx.mocks.nothing_published();
    rx.service()
        .prescribe(
            &doctor,
            NewPrescription {
                replaces: Some(old.id),
                ..new(patient_id, "ibuprofen 200 mg")
            },
        )
        .await
        .expect("replaced");
    let saved = saved.lock().expect("log");
    let change = &saved[0];
    let new = change.written.clone().expect("written");
    let ended = change.ended.clone().expect("the old one ends");
    assert_eq!(new.replaces, Some(old.id));
    assert_eq!(ended.id, old.id);
    assert_eq!(ended.status, PrescriptionStatus::Stopped);
    assert_eq!(ended.replaced_by, Some(new.id));
    assert_eq!(ended.ended_by, Some(doctor.user_id()));
    assert_eq!(
        change.jobs.cancel,
        [format!("prescription.expire:{}", old.id)]
    );
    let actions: Vec<AuditAction> = change.audit.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::PrescriptionCreate,
            AuditAction::PrescriptionEnd
        ]
    );
}

#[tokio::test]
async fn only_an_active_prescription_of_the_same_patient_is_replaced() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let elsewhere = written(PatientId::generate(), doctor.user_id());
    let mut ended = written(patient_id, doctor.user_id());
    ended.complete(doctor.user_id(), NOW).expect("completed");
    let mut rx = Rx::new();
    rx.mocks
        .access_facts
        .expect_access_facts()
        .returning(|_, _, _| Ok(Some(ON_CARE_TEAM)));
    rx.finds(&elsewhere);
    rx.finds(&ended);
    rx.allergic_to(patient_id, &[]);
    rx.prescriptions.expect_save().never();
    rx.mocks.nothing_audited();
    let service = rx.service();
    let other_patients = service
        .prescribe(
            &doctor,
            NewPrescription {
                replaces: Some(elsewhere.id),
                ..new(patient_id, "ibuprofen")
            },
        )
        .await;
    assert_eq!(invalid_fields(other_patients), ["replaces"]);
    let not_active = service
        .prescribe(
            &doctor,
            NewPrescription {
                replaces: Some(ended.id),
                ..new(patient_id, "ibuprofen")
            },
        )
        .await;
    assert!(
        matches!(
            not_active,
            Err(PrescriptionError::Transition(
                PrescriptionTransitionError::NotActive(PrescriptionStatus::Completed)
            ))
        ),
        "{not_active:?}"
    );
}

#[tokio::test]
async fn a_doctor_under_emergency_access_reads_but_may_not_prescribe() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut rx = Rx::new();
    rx.mocks.facts(patient_id, &doctor, Some(EMERGENCY_ONLY));
    let audited = rx.mocks.audit_succeeds();
    rx.prescriptions.expect_save().never();
    let result = rx
        .service()
        .prescribe(&doctor, new(patient_id, "ibuprofen"))
        .await;
    assert!(
        matches!(result, Err(PrescriptionError::Forbidden)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&audited),
        &doctor,
        Some(patient_id),
        AuditAction::PrescriptionCreate,
    );

    let prescription = written(patient_id, UserId::generate());
    let mut rx = Rx::new();
    rx.finds(&prescription);
    rx.mocks.facts(patient_id, &doctor, Some(EMERGENCY_ONLY));
    let audited = rx.mocks.audit_succeeds();
    rx.service()
        .get(&doctor, prescription.id)
        .await
        .expect("read under emergency access");
    assert_allowed(
        &single_event(&audited),
        &doctor,
        Some(patient_id),
        AuditAction::PrescriptionRead,
        Basis::EmergencyAccess,
    );
}

#[tokio::test]
async fn secretaries_laboratory_and_administrators_never_see_prescriptions() {
    for role in [Role::Secretary, Role::Laboratory, Role::Admin] {
        let someone = actor(role);
        let patient_id = PatientId::generate();
        let mut rx = Rx::new();
        rx.mocks.no_patient_lookup();
        rx.prescriptions.expect_list().never();
        let audited = rx.mocks.audit_succeeds();
        let result = rx
            .service()
            .list(&someone, patient_id, None, PageRequest::first(20))
            .await;
        assert!(
            matches!(result, Err(PrescriptionError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&audited),
            &someone,
            Some(patient_id),
            AuditAction::PrescriptionList,
        );

        let prescription = written(patient_id, UserId::generate());
        let mut rx = Rx::new();
        rx.mocks.no_patient_lookup();
        rx.prescriptions.expect_find().never();
        let audited = rx.mocks.audit_succeeds();
        let result = rx.service().get(&someone, prescription.id).await;
        assert!(
            matches!(result, Err(PrescriptionError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&audited),
            &someone,
            None,
            AuditAction::PrescriptionRead,
        );
    }
}

#[tokio::test]
async fn a_patient_lists_their_own_prescriptions_audited() {
    let patient = actor(Role::Patient);
    let patient_id = PatientId::generate();
    let mut rx = Rx::new();
    rx.mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    rx.prescriptions
        .expect_list()
        .withf(move |p, s, _| *p == patient_id && s.is_none())
        .times(1)
        .returning(|_, _, _| {
            Ok(crate::kernel::Page {
                items: Vec::new(),
                next: None,
            })
        });
    let audited = rx.mocks.audit_succeeds();
    rx.service()
        .list(&patient, patient_id, None, PageRequest::first(20))
        .await
        .expect("listed");
    assert_allowed(
        &single_event(&audited),
        &patient,
        Some(patient_id),
        AuditAction::PrescriptionList,
        Basis::OwnRecord,
    );
}

#[tokio::test]
async fn a_doctor_outside_the_care_team_is_told_the_prescription_does_not_exist() {
    let doctor = actor(Role::Doctor);
    let prescription = written(PatientId::generate(), UserId::generate());
    let mut rx = Rx::new();
    rx.finds(&prescription);
    rx.mocks
        .facts(prescription.patient_id, &doctor, Some(UNRELATED));
    let audited = rx.mocks.audit_succeeds();
    rx.prescriptions.expect_save().never();
    let result = rx
        .service()
        .end(&doctor, prescription.id, Ending::Complete)
        .await;
    assert!(
        matches!(result, Err(PrescriptionError::PrescriptionNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&audited),
        &doctor,
        Some(prescription.patient_id),
        AuditAction::PrescriptionEnd,
    );
}

#[tokio::test]
async fn a_care_team_doctor_stops_an_active_prescription_and_its_expiry_is_cancelled() {
    let doctor = actor(Role::Doctor);
    let prescription = written(PatientId::generate(), UserId::generate());
    let mut rx = Rx::new();
    rx.finds(&prescription);
    rx.mocks
        .facts(prescription.patient_id, &doctor, Some(ON_CARE_TEAM));
    let saved = rx.saves();
    rx.mocks.nothing_audited();
    let read = rx
        .service()
        .end(
            &doctor,
            prescription.id,
            Ending::Stop(text("Stomach pain.")),
        )
        .await
        .expect("stopped");
    assert_eq!(read.prescription.status, PrescriptionStatus::Stopped);
    let saved = saved.lock().expect("log");
    let ended = saved[0].ended.clone().expect("ended");
    assert_eq!(ended.stop_reason, Some(text("Stomach pain.")));
    assert!(saved[0].written.is_none());
    assert_eq!(
        saved[0].jobs.cancel,
        [format!("prescription.expire:{}", prescription.id)]
    );
    assert_allowed(
        &saved[0].audit[0],
        &doctor,
        Some(prescription.patient_id),
        AuditAction::PrescriptionEnd,
        Basis::CareTeam,
    );
}

#[tokio::test]
async fn an_ended_prescription_is_not_ended_again_and_a_race_is_told_apart() {
    let doctor = actor(Role::Doctor);
    let mut completed = written(PatientId::generate(), UserId::generate());
    completed
        .complete(doctor.user_id(), NOW)
        .expect("completed");
    let mut rx = Rx::new();
    rx.finds(&completed);
    rx.mocks
        .facts(completed.patient_id, &doctor, Some(ON_CARE_TEAM));
    rx.prescriptions.expect_save().never();
    let result = rx
        .service()
        .end(&doctor, completed.id, Ending::Complete)
        .await;
    assert!(
        matches!(
            result,
            Err(PrescriptionError::Transition(
                PrescriptionTransitionError::NotActive(PrescriptionStatus::Completed)
            ))
        ),
        "{result:?}"
    );

    let active = written(PatientId::generate(), UserId::generate());
    let mut rx = Rx::new();
    rx.finds(&active);
    rx.mocks
        .facts(active.patient_id, &doctor, Some(ON_CARE_TEAM));
    rx.prescriptions
        .expect_save()
        .times(1)
        .returning(|_| Err(PrescriptionChangeError::Moved));
    let result = rx.service().end(&doctor, active.id, Ending::Complete).await;
    assert!(
        matches!(result, Err(PrescriptionError::Moved)),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_expiry_job_expires_only_what_is_active_and_due_without_an_audit_event() {
    let by = UserId::generate();
    let due = Prescription {
        created_at: NOW - SignedDuration::from_hours(24 * 8),
        ..written(PatientId::generate(), by)
    };
    let mut rx = Rx::new();
    rx.finds(&due);
    let saved = rx.saves();
    assert_eq!(
        rx.service().expire(due.id).await.expect("ran"),
        ExpiryOutcome::Expired
    );
    let change = saved.lock().expect("log")[0].clone();
    assert_eq!(
        change.ended.map(|p| p.status),
        Some(PrescriptionStatus::Expired)
    );
    assert!(change.audit.is_empty());

    let not_due = written(PatientId::generate(), by);
    let mut stopped = written(PatientId::generate(), by);
    stopped
        .stop(text("No longer needed."), by, NOW)
        .expect("stopped");
    let gone = PrescriptionId::generate();
    let mut rx = Rx::new();
    rx.finds(&not_due);
    rx.finds(&stopped);
    rx.prescriptions
        .expect_find()
        .with(eq(gone))
        .returning(|_| Ok(None));
    rx.prescriptions.expect_save().never();
    let service = rx.service();
    for id in [not_due.id, stopped.id, gone] {
        let outcome = service.expire(id).await.expect("ran");
        assert!(matches!(outcome, ExpiryOutcome::Moot(_)), "{outcome:?}");
    }
}

#[tokio::test]
async fn a_failing_store_is_an_internal_error() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut rx = Rx::new();
    rx.mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    rx.allergic_to(patient_id, &[]);
    rx.mocks.patients.expect_find().returning(|_| Ok(None));
    rx.prescriptions
        .expect_save()
        .returning(|_| Err(RepositoryError::new("disk on fire").into()));
    rx.mocks.nothing_published();
    let result = rx
        .service()
        .prescribe(&doctor, new(patient_id, "ibuprofen"))
        .await;
    assert!(
        matches!(result, Err(PrescriptionError::Internal(_))),
        "{result:?}"
    );
}
