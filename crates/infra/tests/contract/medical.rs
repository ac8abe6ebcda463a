//! `MedicalRepository`: a patient's medical information, replaced whole with its audit event.

use jiff::{SignedDuration, Timestamp};

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::{Role, UserStatus};
use carehub_domain::kernel::Text;
use carehub_domain::patients::{
    Allergy, BloodType, Condition, MedicalInfo, MedicalRecord, Medication, PatientId, Severity,
};
use carehub_infra::Repositories;

use crate::fixtures::records::{
    audit_event_at, audit_of_patient, audited_ids, register_some_patient, whole_audit_trail,
};
use crate::fixtures::{create_user, micros, now};

contract!(
    medical_information_is_empty_before_it_is_first_written,
    written_medical_information_reads_back_whole_and_a_second_write_replaces_it,
    a_medical_write_stores_its_audit_event_and_a_failed_one_stores_neither,
);

async fn medical_information_is_empty_before_it_is_first_written(repos: Repositories) {
    let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let patient_id = register_some_patient(&repos, doctor.id).await;
    assert_eq!(
        repos.medical.get(patient_id).await.unwrap(),
        MedicalRecord {
            patient_id,
            info: MedicalInfo::default(),
            updated_at: None,
            updated_by: None,
        }
    );
}

fn line(raw: &str) -> Text {
    Text::line(raw, 200).unwrap()
}

fn full_medical_info() -> MedicalInfo {
    MedicalInfo {
        blood_type: Some(BloodType::AbNegative),
        allergies: vec![
            Allergy {
                substance: line("penicillin"),
                reaction: Some(line("hives, \"severe\" itching")),
                severity: Some(Severity::LifeThreatening),
            },
            Allergy {
                substance: line("latex"),
                reaction: None,
                severity: None,
            },
        ],
        conditions: vec![
            Condition {
                name: line("type 2 diabetes"),
                code: Some(line("E11.9")),
                since: Some(jiff::civil::date(2019, 4, 1)),
            },
            Condition {
                name: line("asthma"),
                code: None,
                since: None,
            },
        ],
        medications: vec![Medication {
            name: line("metformin"),
            dose: line("500 mg"),
            frequency: line("twice daily"),
        }],
    }
}

async fn written_medical_information_reads_back_whole_and_a_second_write_replaces_it(
    repos: Repositories,
) {
    let grey = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let house = create_user(&repos, "dr.house", Role::Doctor, UserStatus::Active).await;
    let patient_id = register_some_patient(&repos, grey.id).await;
    let other = register_some_patient(&repos, grey.id).await;

    let info = full_medical_info();
    let at = Timestamp::new(now().as_second(), 987_654_000).unwrap();
    let audit = audit_event_at(grey.id, Some(patient_id), AuditAction::MedicalUpdate, at);
    let stored = repos
        .medical
        .put(patient_id, &info, grey.id, at, &audit)
        .await
        .unwrap();
    let expected = MedicalRecord {
        patient_id,
        info: info.clone(),
        updated_at: Some(at),
        updated_by: Some(grey.id),
    };
    assert_eq!(stored, expected);
    assert_eq!(repos.medical.get(patient_id).await.unwrap(), expected);

    // The whole information is replaced: nothing of the first write remains.
    let mut replacement = MedicalInfo::default();
    replacement.medications.push(info.medications[0].clone());
    replacement.allergies.push(info.allergies[1].clone());
    let later = micros(at + SignedDuration::from_mins(5));
    let audit = audit_event_at(
        house.id,
        Some(patient_id),
        AuditAction::MedicalUpdate,
        later,
    );
    let stored = repos
        .medical
        .put(patient_id, &replacement, house.id, later, &audit)
        .await
        .unwrap();
    let expected = MedicalRecord {
        patient_id,
        info: replacement,
        updated_at: Some(later),
        updated_by: Some(house.id),
    };
    assert_eq!(stored, expected);
    assert_eq!(repos.medical.get(patient_id).await.unwrap(), expected);

    // Another patient's record is untouched.
    assert_eq!(
        repos.medical.get(other).await.unwrap().info,
        MedicalInfo::default()
    );
}

async fn a_medical_write_stores_its_audit_event_and_a_failed_one_stores_neither(
    repos: Repositories,
) {
    let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let patient_id = register_some_patient(&repos, doctor.id).await;
    let audit = audit_event_at(
        doctor.id,
        Some(patient_id),
        AuditAction::MedicalUpdate,
        now(),
    );
    repos
        .medical
        .put(patient_id, &full_medical_info(), doctor.id, now(), &audit)
        .await
        .unwrap();
    let trail = whole_audit_trail(&repos, audit_of_patient(patient_id)).await;
    assert!(
        trail.iter().any(|entry| entry.event == audit),
        "the put's audit event is stored as given"
    );

    // A patient that does not exist: the write fails and its audit event is not stored.
    let nobody = PatientId::generate();
    let audit = audit_event_at(doctor.id, Some(nobody), AuditAction::MedicalUpdate, now());
    let refused = repos
        .medical
        .put(nobody, &full_medical_info(), doctor.id, now(), &audit)
        .await;
    assert!(refused.is_err(), "a write for an unknown patient fails");
    assert_eq!(audited_ids(&repos, audit_of_patient(nobody)).await, vec![]);
    assert_eq!(
        repos.medical.get(nobody).await.unwrap().updated_at,
        None,
        "nothing was stored"
    );
}
