//! `PrescriptionRepository`: a prescription written with its audit events, notification and
//! expiry job, read back whole (an allergy override with its matches included); an ending
//! written only while the prescription is active; a replacement and the replaced one in one
//! change; listings by patient and status, newest first, in pages; on both backends.

use jiff::SignedDuration;

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::UserId;
use carehub_domain::jobs::{JobChanges, JobFilter, JobKind, JobState, Task};
use carehub_domain::kernel::{PageRequest, PatientId, PrescriptionId, Text};
use carehub_domain::notifications::{
    NewNotification, NotificationData, NotificationKind, Recipient,
};
use carehub_domain::patients::Allergy;
use carehub_domain::prescriptions::{
    MatchReason, NewPrescription, Prescription, PrescriptionChange, PrescriptionChangeError,
    PrescriptionStatus, Route, expiry_job,
};
use carehub_infra::Repositories;

use crate::fixtures::patients::{audit, register_named};
use crate::fixtures::referrals::notifications_of;
use crate::fixtures::{audited, doctor, micros, now};

contract!(
    a_prescription_is_stored_with_its_audit_notification_and_expiry_and_read_back_whole,
    an_ending_is_written_only_while_the_prescription_is_active,
    a_replacement_and_the_replaced_prescription_are_written_together_or_not_at_all,
    prescriptions_are_listed_by_patient_and_status_newest_first_in_pages,
);

fn text(raw: &str) -> Text {
    Text::multiline(raw, 2_000).unwrap()
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
        refills: 2,
        instructions: text("After meals;\nwith water."),
        override_reason: None,
        replaces: None,
    }
}

async fn setting(repos: &Repositories) -> (UserId, PatientId) {
    let doctor = doctor(repos, "dr.rx").await;
    let patient = register_named(repos, "Ann Parker", doctor.id).await;
    (doctor.id, patient.id)
}

/// Writes `prescription` (and ends `ended`) with a creation event and nothing else.
async fn save(
    repos: &Repositories,
    written: Option<&Prescription>,
    ended: Option<&Prescription>,
    by: UserId,
    patient_id: PatientId,
) -> Result<(), PrescriptionChangeError> {
    let event = audit(by, patient_id, AuditAction::PrescriptionEnd);
    repos
        .prescriptions
        .save(PrescriptionChange {
            written,
            ended,
            audit: std::slice::from_ref(&event),
            notifications: &[],
            jobs: &JobChanges::default(),
            at: micros(now()),
        })
        .await
        .map(|_| ())
}

async fn pending_expiries(repos: &Repositories) -> Vec<Task> {
    repos
        .jobs
        .list(
            JobFilter {
                state: Some(JobState::Scheduled),
                kind: Some(JobKind::PrescriptionExpiry),
            },
            PageRequest::first(50),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|j| j.task)
        .collect()
}

async fn a_prescription_is_stored_with_its_audit_notification_and_expiry_and_read_back_whole(
    repos: Repositories,
) {
    let (doctor, patient_id) = setting(&repos).await;
    let allergies = [Allergy {
        substance: text("Penicillin"),
        reaction: None,
        severity: None,
    }];
    let written = Prescription::write(
        NewPrescription {
            override_reason: Some(text("Tolerated amoxicillin in 2024.")),
            ..new(patient_id, "Amoxicillin")
        },
        doctor,
        &allergies,
        micros(now()),
    )
    .unwrap();
    let events = [
        audit(doctor, patient_id, AuditAction::PrescriptionCreate),
        audit(doctor, patient_id, AuditAction::PrescriptionAllergyOverride),
    ];
    let notice = NewNotification {
        recipient: Recipient::User(doctor),
        kind: NotificationKind::PrescriptionCreated,
        data: NotificationData {
            title: "You have a new prescription".to_owned(),
            patient_id: Some(*patient_id.as_uuid()),
            prescription_id: Some(*written.id.as_uuid()),
            ..NotificationData::default()
        },
    };
    let stored = repos
        .prescriptions
        .save(PrescriptionChange {
            written: Some(&written),
            ended: None,
            audit: &events,
            notifications: std::slice::from_ref(&notice),
            jobs: &JobChanges::add(expiry_job(&written).into_iter().collect()),
            at: written.created_at,
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let view = repos.prescriptions.find(written.id).await.unwrap().unwrap();
    assert_eq!(view.prescription, written);
    let kept = view.prescription.allergy_override.unwrap();
    assert_eq!(
        kept.matches[0].reason,
        MatchReason::DrugClass("penicillins".to_owned())
    );
    assert_eq!(view.patient.id, patient_id);
    assert_eq!(view.patient.full_name.as_str(), "Ann Parker");
    assert!(view.prescribed_by_name.is_some());
    let trail = audited(&repos, patient_id).await;
    assert!(
        trail.contains(&AuditAction::PrescriptionCreate),
        "{trail:?}"
    );
    assert!(
        trail.contains(&AuditAction::PrescriptionAllergyOverride),
        "{trail:?}"
    );
    let told = notifications_of(&repos, doctor).await;
    assert_eq!(told[0].kind, NotificationKind::PrescriptionCreated);
    assert_eq!(told[0].data.prescription_id, Some(*written.id.as_uuid()));
    assert_eq!(
        pending_expiries(&repos).await,
        [Task::PrescriptionExpiry {
            prescription: written.id
        }]
    );
    assert!(
        repos
            .prescriptions
            .find(PrescriptionId::generate())
            .await
            .unwrap()
            .is_none()
    );
}

async fn an_ending_is_written_only_while_the_prescription_is_active(repos: Repositories) {
    let (doctor, patient_id) = setting(&repos).await;
    let written =
        Prescription::write(new(patient_id, "ibuprofen"), doctor, &[], micros(now())).unwrap();
    save(&repos, Some(&written), None, doctor, patient_id)
        .await
        .unwrap();
    let mut stopped = written.clone();
    stopped
        .stop(text("Stomach pain."), doctor, micros(now()))
        .unwrap();
    save(&repos, None, Some(&stopped), doctor, patient_id)
        .await
        .unwrap();
    let mut completed = written.clone();
    completed.complete(doctor, micros(now())).unwrap();
    let moved = save(&repos, None, Some(&completed), doctor, patient_id).await;
    assert!(
        matches!(moved, Err(PrescriptionChangeError::Moved)),
        "{moved:?}"
    );
    let view = repos.prescriptions.find(written.id).await.unwrap().unwrap();
    assert_eq!(view.prescription, stopped, "the first ending stands");
    // The expiry, which names nobody, finds it ended too.
    let mut expired = written.clone();
    expired
        .expire(micros(now()) + SignedDuration::from_hours(24 * 8))
        .unwrap();
    let moved = repos
        .prescriptions
        .save(PrescriptionChange {
            written: None,
            ended: Some(&expired),
            audit: &[],
            notifications: &[],
            jobs: &JobChanges::default(),
            at: micros(now()),
        })
        .await;
    assert!(
        matches!(moved, Err(PrescriptionChangeError::Moved)),
        "{moved:?}"
    );
}

async fn a_replacement_and_the_replaced_prescription_are_written_together_or_not_at_all(
    repos: Repositories,
) {
    let (doctor, patient_id) = setting(&repos).await;
    let at = micros(now());
    let old = Prescription::write(new(patient_id, "ibuprofen 400 mg"), doctor, &[], at).unwrap();
    save(&repos, Some(&old), None, doctor, patient_id)
        .await
        .unwrap();
    let replacement = Prescription::write(
        NewPrescription {
            replaces: Some(old.id),
            ..new(patient_id, "ibuprofen 200 mg")
        },
        doctor,
        &[],
        at,
    )
    .unwrap();
    let mut replaced = old.clone();
    replaced.replace_with(replacement.id, doctor, at).unwrap();
    save(
        &repos,
        Some(&replacement),
        Some(&replaced),
        doctor,
        patient_id,
    )
    .await
    .unwrap();
    let read_old = repos.prescriptions.find(old.id).await.unwrap().unwrap();
    assert_eq!(read_old.prescription, replaced);
    assert_eq!(read_old.prescription.replaced_by, Some(replacement.id));
    let read_new = repos
        .prescriptions
        .find(replacement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read_new.prescription.replaces, Some(old.id));

    // A second replacement of the same (no longer active) prescription writes nothing: not
    // even the new prescription.
    let second = Prescription::write(
        NewPrescription {
            replaces: Some(old.id),
            ..new(patient_id, "ibuprofen 100 mg")
        },
        doctor,
        &[],
        at,
    )
    .unwrap();
    let mut again = old.clone();
    again.replace_with(second.id, doctor, at).unwrap();
    let moved = save(&repos, Some(&second), Some(&again), doctor, patient_id).await;
    assert!(
        matches!(moved, Err(PrescriptionChangeError::Moved)),
        "{moved:?}"
    );
    assert!(repos.prescriptions.find(second.id).await.unwrap().is_none());
}

async fn prescriptions_are_listed_by_patient_and_status_newest_first_in_pages(repos: Repositories) {
    let (doctor, patient_id) = setting(&repos).await;
    let other = register_named(&repos, "Bob Stone", doctor).await.id;
    let mut ids = Vec::new();
    for i in 0..5 {
        let p = Prescription::write(
            new(patient_id, &format!("medication {i}")),
            doctor,
            &[],
            micros(now()),
        )
        .unwrap();
        save(&repos, Some(&p), None, doctor, patient_id)
            .await
            .unwrap();
        if i == 1 {
            let mut done = p.clone();
            done.complete(doctor, micros(now())).unwrap();
            save(&repos, None, Some(&done), doctor, patient_id)
                .await
                .unwrap();
        }
        ids.push(p.id);
    }
    let elsewhere = Prescription::write(new(other, "other"), doctor, &[], micros(now())).unwrap();
    save(&repos, Some(&elsewhere), None, doctor, other)
        .await
        .unwrap();

    let first = repos
        .prescriptions
        .list(patient_id, None, PageRequest::first(3))
        .await
        .unwrap();
    let listed: Vec<PrescriptionId> = first.items.iter().map(|v| v.prescription.id).collect();
    assert_eq!(listed, [ids[4], ids[3], ids[2]]);
    let next = first.next.unwrap();
    let second = repos
        .prescriptions
        .list(
            patient_id,
            None,
            PageRequest::new(Some(3), Some(next)).unwrap(),
        )
        .await
        .unwrap();
    let listed: Vec<PrescriptionId> = second.items.iter().map(|v| v.prescription.id).collect();
    assert_eq!(listed, [ids[1], ids[0]]);
    assert!(second.next.is_none());

    let completed = repos
        .prescriptions
        .list(
            patient_id,
            Some(PrescriptionStatus::Completed),
            PageRequest::first(10),
        )
        .await
        .unwrap();
    let listed: Vec<PrescriptionId> = completed.items.iter().map(|v| v.prescription.id).collect();
    assert_eq!(listed, [ids[1]]);
}
