//! Unit tests of the patient services (profiles, medical information and notes, care teams,
//! emergency access) and of the audit service, with mockall doubles of their ports. The access
//! policy itself is table-tested in `access`; these test what the services do around it: when
//! they look the patient up, what they audit, and how each operation treats its ports.

use std::sync::Arc;

use jiff::SignedDuration;
use mockall::predicate::eq;
use uuid::Uuid;

use crate::access::{AccessError, Action, Basis};
use crate::audit::{AuditAction, AuditEntry, AuditEvent, AuditEventId, AuditFilter, Outcome};
use crate::identity::{FullName, Role, UserId, UserStatus};
use crate::kernel::{Page, PageRequest, Text, ValidationErrors};
use crate::notifications::{NewNotification, NotificationData, NotificationKind, Recipient};
use crate::patients::*;
use crate::test_support::*;

// ---------------------------------------------------------------------------------------------
// Refusals

#[tokio::test]
async fn a_role_that_may_never_act_is_refused_without_looking_the_patient_up_and_audited() {
    let cases = [
        (
            Role::Secretary,
            Action::ReadMedical,
            AuditAction::MedicalRead,
        ),
        (Role::Secretary, Action::WriteNote, AuditAction::NoteCreate),
        (
            Role::Laboratory,
            Action::ReadProfile,
            AuditAction::PatientRead,
        ),
        (Role::Admin, Action::ReadNotes, AuditAction::NotesRead),
        (
            Role::Admin,
            Action::UpdateProfile,
            AuditAction::PatientUpdate,
        ),
        (
            Role::Patient,
            Action::AddCareTeamMember,
            AuditAction::CareTeamAdd,
        ),
        (
            Role::Doctor,
            Action::EndCareTeamMembership,
            AuditAction::CareTeamEnd,
        ),
        (
            Role::Doctor,
            Action::ReadAccessLog,
            AuditAction::AccessLogRead,
        ),
        (
            Role::Secretary,
            Action::RequestEmergencyAccess,
            AuditAction::EmergencyAccessGrant,
        ),
    ];
    for (role, action, audited_as) in cases {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.no_patient_lookup();
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .gatekeeper()
            .authorize(&caller, patient_id, action)
            .await;

        assert!(
            matches!(result, Err(AccessError::Forbidden)),
            "{role} {action:?}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(patient_id),
            audited_as,
        );
    }
}

#[tokio::test]
async fn reads_by_a_role_that_may_never_read_are_refused_before_anything_is_read() {
    let patient_id = PatientId::generate();
    let refusing = || {
        let mut mocks = Mocks::new();
        mocks.no_patient_lookup();
        let recorded = mocks.audit_succeeds();
        (mocks.services(), recorded)
    };

    let (service, recorded) = refusing();
    let lab = actor(Role::Laboratory);
    let result = service.patients.get_patient(&lab, patient_id).await;
    assert!(matches!(result, Err(PatientError::Forbidden)), "{result:?}");
    assert_denied(
        &single_event(&recorded),
        &lab,
        Some(patient_id),
        AuditAction::PatientRead,
    );

    let (service, recorded) = refusing();
    let secretary = actor(Role::Secretary);
    let result = service.medical.get_medical(&secretary, patient_id).await;
    assert!(matches!(result, Err(MedicalError::Forbidden)), "{result:?}");
    assert_denied(
        &single_event(&recorded),
        &secretary,
        Some(patient_id),
        AuditAction::MedicalRead,
    );

    let (service, recorded) = refusing();
    let admin = actor(Role::Admin);
    let result = service
        .medical
        .list_notes(&admin, patient_id, None, PageRequest::first(10))
        .await;
    assert!(matches!(result, Err(MedicalError::Forbidden)), "{result:?}");
    assert_denied(
        &single_event(&recorded),
        &admin,
        Some(patient_id),
        AuditAction::NotesRead,
    );

    let (service, recorded) = refusing();
    let patient = actor(Role::Patient);
    let result = service.care_teams.care_team(&patient, patient_id).await;
    assert!(
        matches!(result, Err(CareTeamError::Forbidden)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &patient,
        Some(patient_id),
        AuditAction::CareTeamRead,
    );

    let (service, recorded) = refusing();
    let doctor = actor(Role::Doctor);
    let result = service
        .audit
        .access_log(&doctor, patient_id, PageRequest::first(10))
        .await;
    assert!(matches!(result, Err(AccessError::Forbidden)), "{result:?}");
    assert_denied(
        &single_event(&recorded),
        &doctor,
        Some(patient_id),
        AuditAction::AccessLogRead,
    );

    let (service, recorded) = refusing();
    let result = service
        .care_teams
        .end_membership(&doctor, patient_id, UserId::generate())
        .await;
    assert!(
        matches!(result, Err(CareTeamError::Forbidden)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &doctor,
        Some(patient_id),
        AuditAction::CareTeamEnd,
    );
}

#[tokio::test]
async fn an_unknown_patient_is_not_found_and_the_attempt_is_audited() {
    for role in [Role::Doctor, Role::Secretary] {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &caller, None);
        mocks.patients.expect_find().never();
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .patient_service()
            .get_patient(&caller, patient_id)
            .await;

        assert!(
            matches!(result, Err(PatientError::NotFound)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(patient_id),
            AuditAction::PatientRead,
        );
    }
}

#[tokio::test]
async fn a_patient_outside_the_callers_relationships_is_not_found_and_audited() {
    let cases = [
        (Role::Doctor, UNRELATED),
        // Being someone's patient is no way into their colleague's records, nor into another
        // patient's: only the record that is one's own.
        (Role::Patient, UNRELATED),
        (Role::Patient, ON_CARE_TEAM),
        (Role::Patient, EMERGENCY_ONLY),
    ];
    for (role, facts) in cases {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &caller, Some(facts));
        mocks.medical.expect_get().never();
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .medical_service()
            .get_medical(&caller, patient_id)
            .await;

        assert!(
            matches!(result, Err(MedicalError::NotFound)),
            "{role} {facts:?}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(patient_id),
            AuditAction::MedicalRead,
        );
    }
}

#[tokio::test]
async fn a_doctor_with_only_an_emergency_access_may_not_write_and_the_attempt_is_audited() {
    let cases = [
        (Action::UpdateProfile, AuditAction::PatientUpdate),
        (Action::UpdateMedical, AuditAction::MedicalUpdate),
        (Action::WriteNote, AuditAction::NoteCreate),
        (Action::AddCareTeamMember, AuditAction::CareTeamAdd),
    ];
    for (action, audited_as) in cases {
        let doctor = actor(Role::Doctor);
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &doctor, Some(EMERGENCY_ONLY));
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .gatekeeper()
            .authorize(&doctor, patient_id, action)
            .await;

        assert!(
            matches!(result, Err(AccessError::Forbidden)),
            "{action:?}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &doctor,
            Some(patient_id),
            audited_as,
        );
    }
}

#[tokio::test]
async fn an_allowed_attempt_is_granted_with_its_basis_and_audited_only_when_carried_out() {
    let cases = [
        (
            Role::Doctor,
            ON_CARE_TEAM,
            Action::WriteNote,
            Basis::CareTeam,
        ),
        (
            Role::Doctor,
            EMERGENCY_ONLY,
            Action::ReadProfile,
            Basis::EmergencyAccess,
        ),
        (
            Role::Doctor,
            UNRELATED,
            Action::RequestEmergencyAccess,
            Basis::Role,
        ),
        (
            Role::Secretary,
            UNRELATED,
            Action::UpdateProfile,
            Basis::Role,
        ),
        (
            Role::Admin,
            UNRELATED,
            Action::AddCareTeamMember,
            Basis::Role,
        ),
        (
            Role::Patient,
            OWN_RECORD,
            Action::ReadNotes,
            Basis::OwnRecord,
        ),
    ];
    for (role, facts, action, basis) in cases {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &caller, Some(facts));
        mocks.nothing_audited();

        let granted = mocks
            .gatekeeper()
            .authorize(&caller, patient_id, action)
            .await
            .expect("allowed");

        assert_eq!(granted.basis(), basis, "{role} {action:?}");
        assert_eq!(granted.actor(), &caller);
        assert_eq!(granted.patient_id(), Some(patient_id));
        assert_eq!(granted.action(), action);
    }
}

#[tokio::test]
async fn a_role_that_may_not_register_or_search_is_refused_and_audited_without_a_patient() {
    let cases = [
        (
            Role::Patient,
            Action::CreatePatient,
            AuditAction::PatientCreate,
        ),
        (
            Role::Admin,
            Action::CreatePatient,
            AuditAction::PatientCreate,
        ),
        (
            Role::Laboratory,
            Action::SearchPatients,
            AuditAction::PatientList,
        ),
        (
            Role::Patient,
            Action::SearchPatients,
            AuditAction::PatientList,
        ),
    ];
    for (role, action, audited_as) in cases {
        let caller = actor(role);
        let mut mocks = Mocks::new();
        mocks.no_patient_lookup();
        let recorded = mocks.audit_succeeds();

        let result = mocks.gatekeeper().authorize_role(&caller, action).await;

        assert!(
            matches!(result, Err(AccessError::Forbidden)),
            "{role} {action:?}: {result:?}"
        );
        assert_denied(&single_event(&recorded), &caller, None, audited_as);
    }
}

#[tokio::test]
async fn registration_and_search_are_granted_by_role_without_an_audit_of_their_own() {
    for (role, action) in [
        (Role::Secretary, Action::CreatePatient),
        (Role::Doctor, Action::CreatePatient),
        (Role::Admin, Action::SearchPatients),
    ] {
        let caller = actor(role);
        let mut mocks = Mocks::new();
        mocks.nothing_audited();

        let granted = mocks
            .gatekeeper()
            .authorize_role(&caller, action)
            .await
            .expect("allowed");

        assert_eq!(granted.basis(), Basis::Role);
        assert_eq!(granted.actor(), &caller);
        assert_eq!(granted.patient_id(), None);
    }
}

#[tokio::test]
async fn a_refusal_that_cannot_be_audited_is_an_internal_error() {
    let patient_id = PatientId::generate();

    // Refused by role, before any lookup.
    let secretary = actor(Role::Secretary);
    let mut mocks = Mocks::new();
    mocks.no_patient_lookup();
    mocks.audit_fails();
    let result = mocks
        .services()
        .medical
        .get_medical(&secretary, patient_id)
        .await;
    assert!(is_internal(&result), "{result:?}");

    // Refused as not found.
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &doctor, None);
    mocks.audit_fails();
    let result = mocks
        .services()
        .patients
        .get_patient(&doctor, patient_id)
        .await;
    assert!(is_internal(&result), "{result:?}");

    // Refused a write under emergency access.
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &doctor, Some(EMERGENCY_ONLY));
    mocks.audit_fails();
    let result = mocks
        .services()
        .gatekeeper
        .authorize(&doctor, patient_id, Action::UpdateMedical)
        .await;
    assert!(is_internal(&result), "{result:?}");

    // Refused a registration.
    let patient = actor(Role::Patient);
    let mut mocks = Mocks::new();
    mocks.audit_fails();
    let result = mocks
        .services()
        .gatekeeper
        .authorize_role(&patient, Action::CreatePatient)
        .await;
    assert!(is_internal(&result), "{result:?}");

    // Refused one's own record for not being a patient.
    let mut mocks = Mocks::new();
    mocks.audit_fails();
    let result = mocks.services().patients.own_record(&doctor).await;
    assert!(is_internal(&result), "{result:?}");
}

#[tokio::test]
async fn a_failed_patient_lookup_is_an_internal_error() {
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks
        .access_facts
        .expect_access_facts()
        .times(1)
        .returning(|_, _, _| Err(repository_failure()));
    mocks.nothing_audited();

    let result = mocks
        .patient_service()
        .get_patient(&doctor, PatientId::generate())
        .await;

    assert!(is_internal(&result), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Reads: one allowed event each, written after the read

#[tokio::test]
async fn a_profile_read_is_audited_once_after_reading_with_the_basis_of_the_access() {
    let cases = [
        (Role::Doctor, ON_CARE_TEAM, Basis::CareTeam),
        (Role::Doctor, EMERGENCY_ONLY, Basis::EmergencyAccess),
        (Role::Secretary, UNRELATED, Basis::Role),
        (Role::Patient, OWN_RECORD, Basis::OwnRecord),
    ];
    for (role, facts, basis) in cases {
        let caller = actor(role);
        let patient = stored_patient(None);
        let mut mocks = Mocks::new();
        mocks.facts(patient.id, &caller, Some(facts));
        let found = patient.clone();
        mocks
            .patients
            .expect_find()
            .with(eq(patient.id))
            .times(1)
            .in_sequence(&mut mocks.seq)
            .returning(move |_| Ok(Some(found.clone())));
        let recorded = mocks.audit_succeeds();

        let read = mocks
            .patient_service()
            .get_patient(&caller, patient.id)
            .await
            .expect("readable");

        assert_eq!(read, patient);
        assert_allowed(
            &single_event(&recorded),
            &caller,
            Some(patient.id),
            AuditAction::PatientRead,
            basis,
        );
    }
}

#[tokio::test]
async fn a_medical_read_is_audited_once_after_reading() {
    for (facts, basis, role) in [
        (ON_CARE_TEAM, Basis::CareTeam, Role::Doctor),
        (EMERGENCY_ONLY, Basis::EmergencyAccess, Role::Doctor),
        (OWN_RECORD, Basis::OwnRecord, Role::Patient),
    ] {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let record = MedicalRecord {
            patient_id,
            info: MedicalInfo::default(),
            updated_at: None,
            updated_by: None,
        };
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &caller, Some(facts));
        let stored = record.clone();
        mocks
            .medical
            .expect_get()
            .with(eq(patient_id))
            .times(1)
            .in_sequence(&mut mocks.seq)
            .returning(move |_| Ok(stored.clone()));
        let recorded = mocks.audit_succeeds();

        let read = mocks
            .medical_service()
            .get_medical(&caller, patient_id)
            .await
            .expect("readable");

        assert_eq!(read, record);
        assert_allowed(
            &single_event(&recorded),
            &caller,
            Some(patient_id),
            AuditAction::MedicalRead,
            basis,
        );
    }
}

#[tokio::test]
async fn reading_notes_passes_the_kind_and_page_and_is_audited_once_after_reading() {
    let patient = actor(Role::Patient);
    let patient_id = PatientId::generate();
    let page = PageRequest::new(Some(5), Some(NoteId::generate())).expect("valid page");
    let notes = Page {
        items: vec![ClinicalNote {
            id: NoteId::generate(),
            patient_id,
            author_id: UserId::generate(),
            author_name: None,
            kind: Some(NoteKind::CheckUp),
            body: Text::multiline("BP 120/80.", 100).expect("valid"),
            amends: None,
            created_at: NOW - SignedDuration::from_hours(24),
            appointment_id: None,
        }],
        next: None,
    };
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &patient, Some(OWN_RECORD));
    let stored = notes.clone();
    mocks
        .notes
        .expect_list()
        .with(eq(patient_id), eq(Some(NoteKind::CheckUp)), eq(page))
        .times(1)
        .in_sequence(&mut mocks.seq)
        .returning(move |_, _, _| Ok(stored.clone()));
    let recorded = mocks.audit_succeeds();

    let read = mocks
        .medical_service()
        .list_notes(&patient, patient_id, Some(NoteKind::CheckUp), page)
        .await
        .expect("readable");

    assert_eq!(read, notes);
    assert_allowed(
        &single_event(&recorded),
        &patient,
        Some(patient_id),
        AuditAction::NotesRead,
        Basis::OwnRecord,
    );
}

#[tokio::test]
async fn reading_the_care_team_is_audited_once_after_reading() {
    for (role, facts, basis) in [
        (Role::Admin, UNRELATED, Basis::Role),
        (Role::Doctor, EMERGENCY_ONLY, Basis::EmergencyAccess),
    ] {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let members = vec![member(patient_id, UserId::generate(), UserId::generate())];
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &caller, Some(facts));
        let stored = members.clone();
        mocks
            .care_teams
            .expect_list()
            .with(eq(patient_id))
            .times(1)
            .in_sequence(&mut mocks.seq)
            .returning(move |_| Ok(stored.clone()));
        let recorded = mocks.audit_succeeds();

        let read = mocks
            .care_team_service()
            .care_team(&caller, patient_id)
            .await
            .expect("readable");

        assert_eq!(read, members);
        assert_allowed(
            &single_event(&recorded),
            &caller,
            Some(patient_id),
            AuditAction::CareTeamRead,
            basis,
        );
    }
}

#[tokio::test]
async fn the_access_log_lists_only_this_patients_events_and_its_own_read_comes_after() {
    for (role, facts, basis) in [
        (Role::Patient, OWN_RECORD, Basis::OwnRecord),
        (Role::Admin, UNRELATED, Basis::Role),
    ] {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let page = PageRequest::first(20);
        let earlier = AuditEntry {
            event: AuditEvent {
                id: AuditEventId::generate(),
                at: NOW - SignedDuration::from_hours(1),
                actor_id: UserId::generate(),
                actor_role: Role::Doctor,
                patient_id: Some(patient_id),
                action: AuditAction::MedicalRead,
                outcome: Outcome::Allowed,
                basis: Some(Basis::CareTeam),
                request_id: None,
            },
            actor_name: None,
        };
        let entries = Page {
            items: vec![earlier],
            next: None,
        };
        let mut mocks = Mocks::new();
        mocks.facts(patient_id, &caller, Some(facts));
        let stored = entries.clone();
        mocks
            .audit
            .expect_list()
            .with(
                eq(AuditFilter {
                    patient_id: Some(patient_id),
                    ..AuditFilter::default()
                }),
                eq(page),
            )
            .times(1)
            .in_sequence(&mut mocks.seq)
            .returning(move |_, _| Ok(stored.clone()));
        let recorded = mocks.audit_succeeds();

        let read = mocks
            .audit_service()
            .access_log(&caller, patient_id, page)
            .await
            .expect("readable");

        assert_eq!(read, entries);
        assert_allowed(
            &single_event(&recorded),
            &caller,
            Some(patient_id),
            AuditAction::AccessLogRead,
            basis,
        );
    }
}

#[tokio::test]
async fn a_patient_reads_their_own_record_through_their_account_and_the_read_is_audited() {
    let caller = actor(Role::Patient);
    let patient = stored_patient(Some(caller.user_id()));
    let mut mocks = Mocks::new();
    mocks.no_patient_lookup();
    let found = patient.clone();
    mocks
        .patients
        .expect_find_by_user()
        .with(eq(caller.user_id()))
        .times(1)
        .in_sequence(&mut mocks.seq)
        .returning(move |_| Ok(Some(found.clone())));
    let recorded = mocks.audit_succeeds();

    let read = mocks
        .patient_service()
        .own_record(&caller)
        .await
        .expect("readable");

    assert_eq!(read, patient);
    assert_allowed(
        &single_event(&recorded),
        &caller,
        Some(patient.id),
        AuditAction::PatientRead,
        Basis::OwnRecord,
    );
}

#[tokio::test]
async fn staff_asking_for_their_own_patient_record_are_refused_and_audited() {
    for role in [Role::Doctor, Role::Secretary, Role::Admin, Role::Laboratory] {
        let caller = actor(role);
        let mut mocks = Mocks::new();
        mocks.patients.expect_find_by_user().never();
        let recorded = mocks.audit_succeeds();

        let result = mocks.patient_service().own_record(&caller).await;

        assert!(
            matches!(result, Err(PatientError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            None,
            AuditAction::PatientRead,
        );
    }
}

#[tokio::test]
async fn a_patient_without_a_linked_record_is_told_there_is_none() {
    let caller = actor(Role::Patient);
    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_find_by_user()
        .with(eq(caller.user_id()))
        .times(1)
        .returning(|_| Ok(None));
    mocks.nothing_audited();

    let result = mocks.patient_service().own_record(&caller).await;

    assert!(matches!(result, Err(PatientError::NotFound)), "{result:?}");
}

#[tokio::test]
async fn a_read_that_cannot_be_audited_fails_and_returns_nothing() {
    let doctor = actor(Role::Doctor);
    let admin = actor(Role::Admin);
    let owner = actor(Role::Patient);
    let patient = stored_patient(Some(owner.user_id()));
    let id = patient.id;

    let mut mocks = Mocks::new();
    mocks.facts(id, &doctor, Some(ON_CARE_TEAM));
    let found = patient.clone();
    mocks
        .patients
        .expect_find()
        .returning(move |_| Ok(Some(found.clone())));
    mocks.audit_fails();
    let result = mocks.services().patients.get_patient(&doctor, id).await;
    assert!(is_internal(&result), "get_patient: {result:?}");

    let mut mocks = Mocks::new();
    mocks.facts(id, &doctor, Some(ON_CARE_TEAM));
    mocks.medical.expect_get().returning(move |patient_id| {
        Ok(MedicalRecord {
            patient_id,
            info: MedicalInfo::default(),
            updated_at: None,
            updated_by: None,
        })
    });
    mocks.audit_fails();
    let result = mocks.services().medical.get_medical(&doctor, id).await;
    assert!(is_internal(&result), "get_medical: {result:?}");

    let mut mocks = Mocks::new();
    mocks.facts(id, &doctor, Some(ON_CARE_TEAM));
    mocks.notes.expect_list().returning(|_, _, _| {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    });
    mocks.audit_fails();
    let result = mocks
        .services()
        .medical
        .list_notes(&doctor, id, None, PageRequest::first(10))
        .await;
    assert!(is_internal(&result), "list_notes: {result:?}");

    let mut mocks = Mocks::new();
    mocks.facts(id, &admin, Some(UNRELATED));
    mocks.care_teams.expect_list().returning(|_| Ok(Vec::new()));
    mocks.audit_fails();
    let result = mocks.services().care_teams.care_team(&admin, id).await;
    assert!(is_internal(&result), "care_team: {result:?}");

    let mut mocks = Mocks::new();
    mocks.facts(id, &admin, Some(UNRELATED));
    mocks.audit.expect_list().returning(|_, _| {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    });
    mocks.audit_fails();
    let result = mocks
        .services()
        .audit
        .access_log(&admin, id, PageRequest::first(10))
        .await;
    assert!(is_internal(&result), "access_log: {result:?}");

    let mut mocks = Mocks::new();
    let found = patient.clone();
    mocks
        .patients
        .expect_find_by_user()
        .returning(move |_| Ok(Some(found.clone())));
    mocks.audit_fails();
    let result = mocks.services().patients.own_record(&owner).await;
    assert!(is_internal(&result), "own_record: {result:?}");
}

// ---------------------------------------------------------------------------------------------
// Grants

#[tokio::test]
async fn a_grant_to_read_a_profile_does_not_let_its_holder_replace_medical_information() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &doctor, Some(ON_CARE_TEAM));
    mocks.medical.expect_put().never();
    mocks.nothing_audited();
    let service = mocks.services();

    let read_grant = service
        .gatekeeper
        .authorize(&doctor, patient_id, Action::ReadProfile)
        .await
        .expect("a care-team doctor reads the profile");
    let result = service
        .medical
        .put_medical(&read_grant, MedicalInfo::default())
        .await;

    assert!(matches!(result, Err(MedicalError::Forbidden)), "{result:?}");
}

#[tokio::test]
async fn a_grant_without_a_patient_does_not_open_an_operation_on_one() {
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks.emergency_accesses.expect_grant().never();
    mocks.nothing_audited();
    let service = mocks.services();

    // The role alone lets a doctor break the glass, but on a patient: a grant asked for without
    // one must not stand for any.
    let role_grant = service
        .gatekeeper
        .authorize_role(&doctor, Action::RequestEmergencyAccess)
        .await
        .expect("doctors may break the glass");
    let result = service
        .emergency_accesses
        .request_emergency_access(
            &role_grant,
            emergency_reason("Unconscious in A&E, team unreachable"),
        )
        .await;

    assert!(
        matches!(result, Err(EmergencyAccessError::Forbidden)),
        "{result:?}"
    );
}

#[tokio::test]
async fn every_operation_refuses_a_grant_for_another_action() {
    let doctor = actor(Role::Doctor);
    let patient_id = Some(PatientId::generate());
    // No port is expected to be called at all.
    let service = Mocks::new().services();
    let reading = grant(&doctor, patient_id, Action::ReadNotes, Basis::CareTeam);

    let result = service
        .patients
        .create_patient(&reading, patient_details())
        .await;
    assert!(
        matches!(result, Err(PatientError::Forbidden)),
        "create: {result:?}"
    );
    let result = service
        .patients
        .search_patients(&reading, None, PageRequest::first(10))
        .await;
    assert!(
        matches!(result, Err(PatientError::Forbidden)),
        "search: {result:?}"
    );
    let result = service
        .patients
        .update_patient(&reading, |current| Ok(current.clone()))
        .await;
    assert!(
        matches!(result, Err(PatientError::Forbidden)),
        "update: {result:?}"
    );
    let result = service
        .medical
        .put_medical(&reading, MedicalInfo::default())
        .await;
    assert!(
        matches!(result, Err(MedicalError::Forbidden)),
        "medical: {result:?}"
    );
    let result = service
        .medical
        .add_note(&reading, new_note("Stable.", None, None))
        .await;
    assert!(
        matches!(result, Err(MedicalError::Forbidden)),
        "note: {result:?}"
    );
    let result = service
        .care_teams
        .add_member(&reading, UserId::generate())
        .await;
    assert!(
        matches!(result, Err(CareTeamError::Forbidden)),
        "member: {result:?}"
    );
    let result = service
        .emergency_accesses
        .request_emergency_access(
            &reading,
            emergency_reason("Unconscious in A&E, team unreachable"),
        )
        .await;
    assert!(
        matches!(result, Err(EmergencyAccessError::Forbidden)),
        "glass: {result:?}"
    );

    let writing = grant(&doctor, patient_id, Action::WriteNote, Basis::CareTeam);
    let result = service
        .patients
        .create_patient(&writing, patient_details())
        .await;
    assert!(
        matches!(result, Err(PatientError::Forbidden)),
        "create: {result:?}"
    );
    let result = service
        .medical
        .put_medical(&writing, MedicalInfo::default())
        .await;
    assert!(
        matches!(result, Err(MedicalError::Forbidden)),
        "medical: {result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Registration

/// What `PatientRepository::create` was called with.
type Created = Captured<(Patient, Vec<CareTeamMember>, AuditEvent)>;

fn expect_create(mocks: &mut Mocks) -> Created {
    let created = Created::default();
    let log = Arc::clone(&created);
    mocks
        .patients
        .expect_create()
        .times(1)
        .returning(move |patient, members, event| {
            log.lock()
                .expect("log")
                .push((patient.clone(), members.to_vec(), event.clone()));
            Ok(())
        });
    created
}

#[tokio::test]
async fn a_doctor_who_registers_a_patient_joins_their_care_team_in_the_same_write() {
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    let created = expect_create(&mut mocks);
    // The event is stored with the patient, not through the audit log.
    mocks.nothing_audited();

    let patient = mocks
        .patient_service()
        .create_patient(
            &grant(&doctor, None, Action::CreatePatient, Basis::Role),
            patient_details(),
        )
        .await
        .expect("registered");

    let created = created.lock().expect("created");
    let (stored, members, event) = &created[0];
    assert_eq!(stored, &patient);
    assert_eq!(patient.details, patient_details());
    assert_eq!((patient.created_at, patient.updated_at), (NOW, NOW));
    assert_eq!(members.len(), 1, "{members:?}");
    let first = &members[0];
    assert_eq!(first.patient_id, patient.id);
    assert_eq!(first.doctor_id, doctor.user_id());
    assert_eq!(first.added_by, doctor.user_id());
    assert_eq!(first.started_at, NOW);
    assert_eq!((first.ended_at, first.ended_by), (None, None));
    assert!(first.is_current(NOW));
    assert_allowed(
        event,
        &doctor,
        Some(patient.id),
        AuditAction::PatientCreate,
        Basis::Role,
    );
}

#[tokio::test]
async fn a_secretary_who_registers_a_patient_does_not_join_any_care_team() {
    let secretary = actor(Role::Secretary);
    let mut mocks = Mocks::new();
    let created = expect_create(&mut mocks);
    mocks.nothing_audited();

    let patient = mocks
        .patient_service()
        .create_patient(
            &grant(&secretary, None, Action::CreatePatient, Basis::Role),
            patient_details(),
        )
        .await
        .expect("registered");

    let created = created.lock().expect("created");
    let (_, members, event) = &created[0];
    assert!(members.is_empty(), "{members:?}");
    assert_allowed(
        event,
        &secretary,
        Some(patient.id),
        AuditAction::PatientCreate,
        Basis::Role,
    );
}

#[tokio::test]
async fn a_patient_may_only_be_linked_to_an_existing_patients_account() {
    let secretary = actor(Role::Secretary);
    let registration = grant(&secretary, None, Action::CreatePatient, Basis::Role);
    for linked in [
        Some(user(Role::Doctor, UserStatus::Active)),
        Some(user(Role::Secretary, UserStatus::Active)),
        None,
    ] {
        let user_id = linked.as_ref().map_or_else(UserId::generate, |u| u.id);
        let mut mocks = Mocks::new();
        mocks.user_by_id(user_id, linked.clone());
        mocks.patients.expect_create().never();
        let details = PatientDetails {
            user_id: Some(user_id),
            ..patient_details()
        };

        let result = mocks
            .patient_service()
            .create_patient(&registration, details)
            .await;

        assert_eq!(invalid_fields(result), ["user_id"], "{linked:?}");
    }

    let account = user(Role::Patient, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.user_by_id(account.id, Some(account.clone()));
    let created = expect_create(&mut mocks);
    let details = PatientDetails {
        user_id: Some(account.id),
        ..patient_details()
    };

    let patient = mocks
        .patient_service()
        .create_patient(&registration, details)
        .await
        .expect("registered");

    assert_eq!(patient.details.user_id, Some(account.id));
    assert_eq!(created.lock().expect("created").len(), 1);
}

#[tokio::test]
async fn a_taken_record_number_is_drawn_again_for_the_same_patient() {
    let secretary = actor(Role::Secretary);
    let tried: Captured<(PatientId, Mrn, AuditEventId)> = Captured::default();
    let log = Arc::clone(&tried);
    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_create()
        .times(2)
        .returning(move |patient, _, event| {
            let mut log = log.lock().expect("log");
            log.push((patient.id, patient.mrn.clone(), event.id));
            if log.len() == 1 {
                Err(SavePatientError::MrnTaken)
            } else {
                Ok(())
            }
        });
    mocks.nothing_audited();

    let patient = mocks
        .patient_service()
        .create_patient(
            &grant(&secretary, None, Action::CreatePatient, Basis::Role),
            patient_details(),
        )
        .await
        .expect("registered at the second draw");

    let tried = tried.lock().expect("tried");
    assert_ne!(tried[0].1, tried[1].1, "a new number is drawn");
    assert_eq!(patient.mrn, tried[1].1, "the patient has the number stored");
    assert_eq!((tried[0].0, tried[1].0), (patient.id, patient.id));
    assert_eq!(tried[0].2, tried[1].2, "one registration, one event");
}

#[tokio::test]
async fn record_numbers_that_stay_taken_end_in_an_internal_error_after_a_few_draws() {
    let secretary = actor(Role::Secretary);
    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_create()
        .times(MRN_ATTEMPTS)
        .returning(|_, _, _| Err(SavePatientError::MrnTaken));

    let result = mocks
        .patient_service()
        .create_patient(
            &grant(&secretary, None, Action::CreatePatient, Basis::Role),
            patient_details(),
        )
        .await;

    assert!(is_internal(&result), "{result:?}");
}

#[tokio::test]
async fn conflicts_other_than_the_record_number_are_reported_at_once() {
    let secretary = actor(Role::Secretary);
    let registration = grant(&secretary, None, Action::CreatePatient, Basis::Role);

    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_create()
        .times(1)
        .returning(|_, _, _| {
            Err(SavePatientError::IdentifierTaken {
                system: "national_id".into(),
            })
        });
    let result = mocks
        .patient_service()
        .create_patient(&registration, patient_details())
        .await;
    assert!(
        matches!(&result, Err(PatientError::IdentifierTaken { system }) if system == "national_id"),
        "{result:?}"
    );

    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_create()
        .times(1)
        .returning(|_, _, _| Err(SavePatientError::UserLinked));
    let result = mocks
        .patient_service()
        .create_patient(&registration, patient_details())
        .await;
    assert!(
        matches!(result, Err(PatientError::UserLinked)),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Search

#[tokio::test]
async fn secretaries_and_admins_search_every_patient_and_doctors_their_own_scope() {
    for role in [Role::Secretary, Role::Admin, Role::Doctor] {
        let caller = actor(role);
        let expected_scope = if role == Role::Doctor {
            SearchScope::Doctor {
                doctor_id: caller.user_id(),
                at: NOW,
            }
        } else {
            SearchScope::All
        };
        let text = SearchText::parse("lovelace").expect("valid");
        let page = PageRequest::new(Some(7), Some(PatientId::generate())).expect("valid page");
        let mut mocks = Mocks::new();
        let expected_text = text.clone();
        mocks
            .patients
            .expect_search()
            .withf(move |query, p| {
                query.scope == expected_scope
                    && query.text.as_ref() == Some(&expected_text)
                    && *p == page
            })
            .times(1)
            .returning(|_, _| {
                Ok(Page {
                    items: Vec::new(),
                    next: None,
                })
            });
        mocks.nothing_audited();

        let found = mocks
            .patient_service()
            .search_patients(
                &grant(&caller, None, Action::SearchPatients, Basis::Role),
                Some(text),
                page,
            )
            .await
            .expect("searched");

        assert!(found.items.is_empty(), "{role}");
    }
}

#[tokio::test]
async fn every_patient_a_search_returns_is_audited_in_one_write() {
    let doctor = actor(Role::Doctor);
    let patients: Vec<PatientSummary> = (0..3)
        .map(|_| PatientSummary::from(&stored_patient(None)))
        .collect();
    let next = Some(patients[2].id);
    let page = Page {
        items: patients.clone(),
        next,
    };
    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_search()
        .times(1)
        .returning(move |_, _| Ok(page.clone()));
    let recorded = mocks.audit_succeeds();

    let found = mocks
        .patient_service()
        .search_patients(
            &grant(&doctor, None, Action::SearchPatients, Basis::Role),
            None,
            PageRequest::first(3),
        )
        .await
        .expect("searched");

    assert_eq!(found.items, patients);
    assert_eq!(found.next, next);
    let batches = recorded.lock().expect("recorded");
    assert_eq!(batches.len(), 1, "one write to the audit log");
    let events = &batches[0];
    assert_eq!(events.len(), 3);
    for (event, patient) in events.iter().zip(&patients) {
        assert_allowed(
            event,
            &doctor,
            Some(patient.id),
            AuditAction::PatientList,
            Basis::Role,
        );
    }
    let mut ids: Vec<AuditEventId> = events.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "each event has its own id");
}

#[tokio::test]
async fn a_search_that_finds_nobody_audits_nothing() {
    let secretary = actor(Role::Secretary);
    let mut mocks = Mocks::new();
    mocks.patients.expect_search().times(1).returning(|_, _| {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    });
    mocks.nothing_audited();

    let found = mocks
        .patient_service()
        .search_patients(
            &grant(&secretary, None, Action::SearchPatients, Basis::Role),
            None,
            PageRequest::first(10),
        )
        .await
        .expect("searched");

    assert!(found.items.is_empty());
}

#[tokio::test]
async fn search_results_that_cannot_be_audited_are_not_returned() {
    let secretary = actor(Role::Secretary);
    let found = PatientSummary::from(&stored_patient(None));
    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_search()
        .times(1)
        .returning(move |_, _| {
            Ok(Page {
                items: vec![found.clone()],
                next: None,
            })
        });
    mocks.audit_fails();

    let result = mocks
        .patient_service()
        .search_patients(
            &grant(&secretary, None, Action::SearchPatients, Basis::Role),
            None,
            PageRequest::first(10),
        )
        .await;

    assert!(is_internal(&result), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Profile updates

/// `current` is read once by id.
fn expect_find(mocks: &mut Mocks, current: &Patient) {
    let found = current.clone();
    mocks
        .patients
        .expect_find()
        .with(eq(current.id))
        .times(1)
        .returning(move |_| Ok(Some(found.clone())));
}

#[tokio::test]
async fn an_update_edits_the_current_profile_and_saves_it_against_the_version_read() {
    let secretary = actor(Role::Secretary);
    let linked = UserId::generate();
    let current = stored_patient(Some(linked));
    let id = current.id;
    let expected_updated_at = current.updated_at;
    let mut mocks = Mocks::new();
    expect_find(&mut mocks, &current);
    // The linked account did not change: it is not checked again.
    mocks.users.expect_find_by_id().never();
    let saved: Captured<AuditEvent> = Captured::default();
    let log = Arc::clone(&saved);
    let base = current.clone();
    mocks
        .patients
        .expect_update()
        .withf(move |patient_id, details, expected, now, _| {
            *patient_id == id
                && details.full_name.as_str() == "Ada King"
                && details.contact == base.details.contact
                && details.user_id == Some(linked)
                && *expected == expected_updated_at
                && *now == NOW
        })
        .times(1)
        .returning(move |id, details, _, now, event| {
            log.lock().expect("log").push(event.clone());
            Ok(Patient {
                id,
                mrn: Mrn::from_number(48_217_730),
                details: details.clone(),
                created_at: NOW - SignedDuration::from_hours(24 * 30),
                updated_at: now,
            })
        });
    mocks.nothing_audited();
    let mut seen = None;

    let updated = mocks
        .patient_service()
        .update_patient(
            &grant(&secretary, Some(id), Action::UpdateProfile, Basis::Role),
            |current| {
                seen = Some(current.clone());
                Ok(PatientDetails {
                    full_name: FullName::parse("Ada King").expect("valid name"),
                    ..current.clone()
                })
            },
        )
        .await
        .expect("updated");

    assert_eq!(seen, Some(current.details.clone()));
    assert_eq!(updated.details.full_name.as_str(), "Ada King");
    assert_eq!(updated.updated_at, NOW);
    let saved = saved.lock().expect("saved");
    assert_eq!(saved.len(), 1);
    assert_allowed(
        &saved[0],
        &secretary,
        Some(id),
        AuditAction::PatientUpdate,
        Basis::Role,
    );
}

#[tokio::test]
async fn an_edit_that_cannot_be_applied_is_invalid_and_nothing_is_saved() {
    let doctor = actor(Role::Doctor);
    let current = stored_patient(None);
    let mut mocks = Mocks::new();
    expect_find(&mut mocks, &current);
    mocks.patients.expect_update().never();

    let result = mocks
        .patient_service()
        .update_patient(
            &grant(
                &doctor,
                Some(current.id),
                Action::UpdateProfile,
                Basis::CareTeam,
            ),
            |_| {
                let mut errors = ValidationErrors::new();
                errors.add("contact", "must be an object");
                Err(errors)
            },
        )
        .await;

    assert_eq!(invalid_fields(result), ["contact"]);
}

#[tokio::test]
async fn a_newly_linked_account_must_be_a_patients() {
    let secretary = actor(Role::Secretary);
    let current = stored_patient(None);
    let doctor_account = user(Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    expect_find(&mut mocks, &current);
    mocks.user_by_id(doctor_account.id, Some(doctor_account.clone()));
    mocks.patients.expect_update().never();

    let result = mocks
        .patient_service()
        .update_patient(
            &grant(
                &secretary,
                Some(current.id),
                Action::UpdateProfile,
                Basis::Role,
            ),
            |current| {
                Ok(PatientDetails {
                    user_id: Some(doctor_account.id),
                    ..current.clone()
                })
            },
        )
        .await;

    assert_eq!(invalid_fields(result), ["user_id"]);

    let patient_account = user(Role::Patient, UserStatus::Active);
    let mut mocks = Mocks::new();
    expect_find(&mut mocks, &current);
    mocks.user_by_id(patient_account.id, Some(patient_account.clone()));
    let linked = patient_account.id;
    mocks
        .patients
        .expect_update()
        .withf(move |_, details, _, _, _| details.user_id == Some(linked))
        .times(1)
        .returning(|id, details, _, now, _| {
            Ok(Patient {
                id,
                mrn: Mrn::from_number(1),
                details: details.clone(),
                created_at: NOW,
                updated_at: now,
            })
        });

    let updated = mocks
        .patient_service()
        .update_patient(
            &grant(
                &secretary,
                Some(current.id),
                Action::UpdateProfile,
                Basis::Role,
            ),
            |current| {
                Ok(PatientDetails {
                    user_id: Some(linked),
                    ..current.clone()
                })
            },
        )
        .await
        .expect("linked");

    assert_eq!(updated.details.user_id, Some(linked));
}

#[tokio::test]
async fn a_profile_changed_meanwhile_is_stale() {
    let secretary = actor(Role::Secretary);
    let current = stored_patient(None);
    let mut mocks = Mocks::new();
    expect_find(&mut mocks, &current);
    mocks
        .patients
        .expect_update()
        .times(1)
        .returning(|_, _, _, _, _| Err(SavePatientError::Stale));

    let result = mocks
        .patient_service()
        .update_patient(
            &grant(
                &secretary,
                Some(current.id),
                Action::UpdateProfile,
                Basis::Role,
            ),
            |current| Ok(current.clone()),
        )
        .await;

    assert!(matches!(result, Err(PatientError::Stale)), "{result:?}");
}

#[tokio::test]
async fn updating_a_patient_that_vanished_is_not_found() {
    let secretary = actor(Role::Secretary);
    let id = PatientId::generate();
    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_find()
        .with(eq(id))
        .times(1)
        .returning(|_| Ok(None));
    mocks.patients.expect_update().never();

    let result = mocks
        .patient_service()
        .update_patient(
            &grant(&secretary, Some(id), Action::UpdateProfile, Basis::Role),
            |current| Ok(current.clone()),
        )
        .await;

    assert!(matches!(result, Err(PatientError::NotFound)), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Medical information and notes

#[tokio::test]
async fn medical_information_is_stored_as_parsed_signed_by_the_doctor_with_its_event() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let info = MedicalInfo {
        blood_type: Some(BloodType::OPositive),
        allergies: vec![Allergy {
            substance: Text::line("penicillin", 200).expect("valid"),
            reaction: None,
            severity: Some(Severity::Severe),
        }],
        ..MedicalInfo::default()
    };
    let by = doctor.user_id();
    let events: Captured<AuditEvent> = Captured::default();
    let log = Arc::clone(&events);
    let mut mocks = Mocks::new();
    let expected = info.clone();
    mocks
        .medical
        .expect_put()
        .withf(move |id, stored, author, at, _| {
            *id == patient_id && *stored == expected && *author == by && *at == NOW
        })
        .times(1)
        .returning(move |patient_id, info, by, at, event| {
            log.lock().expect("log").push(event.clone());
            Ok(MedicalRecord {
                patient_id,
                info: info.clone(),
                updated_at: Some(at),
                updated_by: Some(by),
            })
        });
    mocks.nothing_audited();

    let record = mocks
        .medical_service()
        .put_medical(
            &grant(
                &doctor,
                Some(patient_id),
                Action::UpdateMedical,
                Basis::CareTeam,
            ),
            info.clone(),
        )
        .await
        .expect("stored");

    assert_eq!(record.info, info);
    assert_eq!(record.updated_by, Some(doctor.user_id()));
    let events = events.lock().expect("events");
    assert_eq!(events.len(), 1);
    assert_allowed(
        &events[0],
        &doctor,
        Some(patient_id),
        AuditAction::MedicalUpdate,
        Basis::CareTeam,
    );
}

fn new_note(body: &str, kind: Option<NoteKind>, amends: Option<NoteId>) -> NewNote {
    NewNote {
        body: Text::multiline(body, MAX_NOTE_CHARS).expect("valid body"),
        kind,
        amends,
    }
}

#[tokio::test]
async fn a_note_is_signed_by_its_author_and_stored_with_its_event() {
    let doctor = actor(Role::Doctor);
    let patient_id = PatientId::generate();
    let amended = NoteId::generate();
    let stored: Captured<(ClinicalNote, AuditEvent)> = Captured::default();
    let log = Arc::clone(&stored);
    let mut mocks = Mocks::new();
    mocks
        .notes
        .expect_append()
        .times(1)
        .returning(move |note, event| {
            log.lock().expect("log").push((note.clone(), event.clone()));
            Ok(note.clone())
        });
    mocks.nothing_audited();
    let new = new_note(
        "Corrected: BP 130/85.",
        Some(NoteKind::Progress),
        Some(amended),
    );

    let note = mocks
        .medical_service()
        .add_note(
            &grant(
                &doctor,
                Some(patient_id),
                Action::WriteNote,
                Basis::CareTeam,
            ),
            new,
        )
        .await
        .expect("written");

    assert_eq!(note.patient_id, patient_id);
    assert_eq!(note.author_id, doctor.user_id());
    assert_eq!(note.kind, Some(NoteKind::Progress));
    assert_eq!(note.body.as_str(), "Corrected: BP 130/85.");
    assert_eq!(note.amends, Some(amended));
    assert_eq!(note.created_at, NOW);
    let stored = stored.lock().expect("stored");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, note);
    assert_allowed(
        &stored[0].1,
        &doctor,
        Some(patient_id),
        AuditAction::NoteCreate,
        Basis::CareTeam,
    );
}

#[tokio::test]
async fn a_note_amending_no_note_of_this_patient_is_invalid_on_amends() {
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks
        .notes
        .expect_append()
        .times(1)
        .returning(|_, _| Err(AppendNoteError::UnknownAmended));
    let new = new_note(
        "Corrected: BP 130/85.",
        None,
        Some(NoteId::from_uuid(Uuid::now_v7())),
    );

    let result = mocks
        .medical_service()
        .add_note(
            &grant(
                &doctor,
                Some(PatientId::generate()),
                Action::WriteNote,
                Basis::CareTeam,
            ),
            new,
        )
        .await;

    assert_eq!(invalid_fields(result), ["amends"]);
}

// ---------------------------------------------------------------------------------------------
// Care teams

/// What `CareTeamRepository::add` was called with.
type Added = Captured<(CareTeamMember, AuditEvent, Vec<NewNotification>)>;

/// The membership is added once, in [`Mocks::seq`], and its notifications stored.
fn expect_add(mocks: &mut Mocks) -> Added {
    let added = Added::default();
    let log = Arc::clone(&added);
    mocks
        .care_teams
        .expect_add()
        .times(1)
        .in_sequence(&mut mocks.seq)
        .returning(move |member, event, notices| {
            log.lock()
                .expect("log")
                .push((member.clone(), event.clone(), notices.to_vec()));
            Ok(stored(notices, &[]))
        });
    added
}

#[tokio::test]
async fn an_active_doctor_is_added_to_the_care_team_from_now_on() {
    let admin_user = named_user("Ada Byron", Role::Admin, UserStatus::Active);
    let admin = actor_for(&admin_user);
    let patient_id = PatientId::generate();
    let colleague = user(Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.user_by_id(colleague.id, Some(colleague.clone()));
    mocks.named(&admin_user);
    let stored = expect_add(&mut mocks);
    let _published = mocks.publishes();
    mocks.nothing_audited();

    let added = mocks
        .care_team_service()
        .add_member(
            &grant(
                &admin,
                Some(patient_id),
                Action::AddCareTeamMember,
                Basis::Role,
            ),
            colleague.id,
        )
        .await
        .expect("added");

    assert_eq!(added.patient_id, patient_id);
    assert_eq!(added.doctor_id, colleague.id);
    assert_eq!(added.doctor_name, Some(colleague.full_name.clone()));
    assert_eq!(added.added_by, admin.user_id());
    assert_eq!(added.started_at, NOW);
    assert_eq!((added.ended_at, added.ended_by), (None, None));
    assert_eq!(added.referral_id, None);
    let stored = stored.lock().expect("stored");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, added);
    assert_allowed(
        &stored[0].1,
        &admin,
        Some(patient_id),
        AuditAction::CareTeamAdd,
        Basis::Role,
    );
}

#[tokio::test]
async fn only_an_active_doctor_can_join_a_care_team() {
    let doctor = actor(Role::Doctor);
    let candidates = [
        Some(user(Role::Doctor, UserStatus::Pending)),
        Some(user(Role::Doctor, UserStatus::Suspended)),
        Some(user(Role::Secretary, UserStatus::Active)),
        Some(user(Role::Patient, UserStatus::Active)),
        None,
    ];
    for candidate in candidates {
        let id = candidate.as_ref().map_or_else(UserId::generate, |u| u.id);
        let mut mocks = Mocks::new();
        mocks.user_by_id(id, candidate.clone());
        mocks.care_teams.expect_add().never();

        let result = mocks
            .care_team_service()
            .add_member(
                &grant(
                    &doctor,
                    Some(PatientId::generate()),
                    Action::AddCareTeamMember,
                    Basis::CareTeam,
                ),
                id,
            )
            .await;

        assert_eq!(invalid_fields(result), ["doctor_id"], "{candidate:?}");
    }
}

#[tokio::test]
async fn a_doctor_already_on_the_care_team_is_not_added_twice_and_nobody_is_told() {
    let admin_user = named_user("Ada Byron", Role::Admin, UserStatus::Active);
    let admin = actor_for(&admin_user);
    let colleague = user(Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.user_by_id(colleague.id, Some(colleague.clone()));
    mocks.named(&admin_user);
    mocks
        .care_teams
        .expect_add()
        .times(1)
        .returning(|_, _, _| Err(AddMemberError::AlreadyMember));
    mocks.nothing_published();

    let result = mocks
        .care_team_service()
        .add_member(
            &grant(
                &admin,
                Some(PatientId::generate()),
                Action::AddCareTeamMember,
                Basis::Role,
            ),
            colleague.id,
        )
        .await;

    assert!(
        matches!(result, Err(CareTeamError::AlreadyMember)),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_added_doctor_is_told_who_added_them_to_which_patients_care_team() {
    let cases = [
        (
            named_user("Ada Byron", Role::Admin, UserStatus::Active),
            Basis::Role,
            "Ada Byron added you to a patient's care team",
        ),
        (
            named_user("Alice Adams", Role::Doctor, UserStatus::Active),
            Basis::CareTeam,
            "Dr Alice Adams added you to a patient's care team",
        ),
    ];
    for (adder, basis, title) in cases {
        let caller = actor_for(&adder);
        let patient_id = PatientId::generate();
        let colleague = user(Role::Doctor, UserStatus::Active);
        let mut mocks = Mocks::new();
        mocks.user_by_id(colleague.id, Some(colleague.clone()));
        mocks.named(&adder);
        let added = expect_add(&mut mocks);
        let published = mocks.publishes();

        mocks
            .care_team_service()
            .add_member(
                &grant(&caller, Some(patient_id), Action::AddCareTeamMember, basis),
                colleague.id,
            )
            .await
            .expect("added");

        let added = added.lock().expect("added");
        let notices = &added[0].2;
        assert_eq!(
            notices,
            &[NewNotification {
                recipient: Recipient::User(colleague.id),
                kind: NotificationKind::CareTeamAdded,
                data: NotificationData {
                    title: title.to_owned(),
                    referral_id: None,
                    patient_id: Some(*patient_id.as_uuid()),
                    actor_id: Some(*adder.id.as_uuid()),
                    emergency_access_id: None,
                    appointment_id: None,
                    lab_order_id: None,
                    prescription_id: None,
                    conversation_id: None,
                    message_id: None,
                    urgent: false,
                },
            }]
        );
        // What is published is what the repository stored (numbered), after it committed.
        assert_eq!(
            *published.lock().expect("published"),
            [stored(notices, &[])]
        );
    }
}

#[tokio::test]
async fn a_doctor_who_adds_themself_is_not_notified_and_nothing_is_published() {
    let doctor_user = named_user("Alice Adams", Role::Doctor, UserStatus::Active);
    let doctor = actor_for(&doctor_user);
    let patient_id = PatientId::generate();
    let mut mocks = Mocks::new();
    // Looked up once, as the doctor to add; never again for a notification title.
    mocks.user_by_id(doctor_user.id, Some(doctor_user.clone()));
    let added = expect_add(&mut mocks);
    mocks.nothing_published();

    let member = mocks
        .care_team_service()
        .add_member(
            &grant(
                &doctor,
                Some(patient_id),
                Action::AddCareTeamMember,
                Basis::Role,
            ),
            doctor_user.id,
        )
        .await
        .expect("added");

    assert_eq!(member.doctor_id, doctor_user.id);
    let added = added.lock().expect("added");
    assert_eq!(added.len(), 1);
    assert!(added[0].2.is_empty(), "{:?}", added[0].2);
}

#[tokio::test]
async fn a_membership_that_cannot_be_stored_is_internal_and_nothing_is_published() {
    let admin_user = named_user("Ada Byron", Role::Admin, UserStatus::Active);
    let colleague = user(Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.user_by_id(colleague.id, Some(colleague.clone()));
    mocks.named(&admin_user);
    mocks
        .care_teams
        .expect_add()
        .times(1)
        .returning(|_, _, _| Err(AddMemberError::Repository(repository_failure())));
    mocks.nothing_published();

    let result = mocks
        .care_team_service()
        .add_member(
            &grant(
                &actor_for(&admin_user),
                Some(PatientId::generate()),
                Action::AddCareTeamMember,
                Basis::Role,
            ),
            colleague.id,
        )
        .await;

    assert!(is_internal(&result), "{result:?}");
}

#[tokio::test]
async fn ending_a_membership_ends_it_now_by_the_caller_with_its_event() {
    let admin = actor(Role::Admin);
    let patient_id = PatientId::generate();
    let doctor_id = UserId::generate();
    let ended = CareTeamMember {
        ended_at: Some(NOW),
        ended_by: Some(admin.user_id()),
        ..member(patient_id, doctor_id, UserId::generate())
    };
    let events: Captured<AuditEvent> = Captured::default();
    let log = Arc::clone(&events);
    let by = admin.user_id();
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &admin, Some(UNRELATED));
    let returned = ended.clone();
    mocks
        .care_teams
        .expect_end()
        .withf(move |p, d, at, ended_by, _| {
            *p == patient_id && *d == doctor_id && *at == NOW && *ended_by == by
        })
        .times(1)
        .returning(move |_, _, _, _, event| {
            log.lock().expect("log").push(event.clone());
            Ok(Some(returned.clone()))
        });
    mocks.nothing_audited();

    let result = mocks
        .care_team_service()
        .end_membership(&admin, patient_id, doctor_id)
        .await
        .expect("ended");

    assert_eq!(result, ended);
    let events = events.lock().expect("events");
    assert_eq!(events.len(), 1);
    assert_allowed(
        &events[0],
        &admin,
        Some(patient_id),
        AuditAction::CareTeamEnd,
        Basis::Role,
    );
}

#[tokio::test]
async fn ending_the_membership_of_a_doctor_not_on_the_team_is_not_member() {
    let admin = actor(Role::Admin);
    let patient_id = PatientId::generate();
    let mut mocks = Mocks::new();
    mocks.facts(patient_id, &admin, Some(UNRELATED));
    mocks
        .care_teams
        .expect_end()
        .times(1)
        .returning(|_, _, _, _, _| Ok(None));

    let result = mocks
        .care_team_service()
        .end_membership(&admin, patient_id, UserId::generate())
        .await;

    assert!(
        matches!(result, Err(CareTeamError::NotMember)),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Emergency access

#[tokio::test]
async fn breaking_the_glass_keeps_a_reason_of_ten_to_a_thousand_characters() {
    let doctor = actor(Role::Doctor);
    let glass = grant(
        &doctor,
        Some(PatientId::generate()),
        Action::RequestEmergencyAccess,
        Basis::Role,
    );
    let longest = "y".repeat(1_000);
    for reason in ["1234567890", longest.as_str()] {
        let mut mocks = Mocks::new();
        // The doctor is looked up for the notification's title.
        mocks.users.expect_find_by_id().returning(|_| Ok(None));
        mocks
            .emergency_accesses
            .expect_grant()
            .times(1)
            .returning(|_, _, _| Ok(Vec::new()));

        let access = mocks
            .emergency_access_service()
            .request_emergency_access(&glass, emergency_reason(reason))
            .await
            .expect("a reason long enough");

        assert_eq!(access.reason.as_str(), reason);
    }
}

/// What `EmergencyAccessRepository::grant` was called with.
type Granted = Captured<(EmergencyAccess, AuditEvent, Vec<NewNotification>)>;

/// The access is granted once, in [`Mocks::seq`], and its notifications stored for `admins`.
fn expect_grant(mocks: &mut Mocks, admins: Vec<UserId>) -> Granted {
    let granted = Granted::default();
    let log = Arc::clone(&granted);
    mocks
        .emergency_accesses
        .expect_grant()
        .times(1)
        .in_sequence(&mut mocks.seq)
        .returning(move |access, event, notices| {
            log.lock()
                .expect("log")
                .push((access.clone(), event.clone(), notices.to_vec()));
            Ok(stored(notices, &admins))
        });
    granted
}

#[tokio::test]
async fn an_emergency_access_lasts_the_configured_time_and_is_stored_with_its_event() {
    let doctor_user = user(Role::Doctor, UserStatus::Active);
    let doctor = actor_for(&doctor_user);
    let patient_id = PatientId::generate();
    let ttl = SignedDuration::from_mins(25);
    let mut mocks = Mocks::new();
    mocks.config = ServiceConfig {
        emergency_access_ttl: ttl,
        ..ServiceConfig::default()
    };
    mocks.named(&doctor_user);
    let stored = expect_grant(&mut mocks, vec![UserId::generate()]);
    let _published = mocks.publishes();
    mocks.nothing_audited();

    let access = mocks
        .emergency_access_service()
        .request_emergency_access(
            &grant(
                &doctor,
                Some(patient_id),
                Action::RequestEmergencyAccess,
                Basis::Role,
            ),
            emergency_reason("Unconscious in A&E, team unreachable"),
        )
        .await
        .expect("granted");

    assert_eq!(access.patient_id, patient_id);
    assert_eq!(access.doctor_id, doctor.user_id());
    assert_eq!(
        access.reason.as_str(),
        "Unconscious in A&E, team unreachable"
    );
    assert_eq!(access.granted_at, NOW);
    assert_eq!(access.expires_at, NOW + ttl);
    let stored = stored.lock().expect("stored");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, access);
    assert_allowed(
        &stored[0].1,
        &doctor,
        Some(patient_id),
        AuditAction::EmergencyAccessGrant,
        Basis::Role,
    );
}

#[tokio::test]
async fn every_active_administrator_is_told_of_an_emergency_access_once_it_is_stored() {
    let doctor_user = named_user("Alice Adams", Role::Doctor, UserStatus::Active);
    let doctor = actor_for(&doctor_user);
    let patient_id = PatientId::generate();
    let admins = vec![UserId::generate(), UserId::generate()];
    let mut mocks = Mocks::new();
    mocks.named(&doctor_user);
    let granted = expect_grant(&mut mocks, admins.clone());
    let published = mocks.publishes();

    let access = mocks
        .emergency_access_service()
        .request_emergency_access(
            &grant(
                &doctor,
                Some(patient_id),
                Action::RequestEmergencyAccess,
                Basis::Role,
            ),
            emergency_reason("Unconscious in A&E, team unreachable"),
        )
        .await
        .expect("granted");

    let granted = granted.lock().expect("granted");
    let notices = &granted[0].2;
    assert_eq!(
        notices,
        &[NewNotification {
            recipient: Recipient::ActiveAdmins,
            kind: NotificationKind::EmergencyAccessUsed,
            data: NotificationData {
                title: "Dr Alice Adams used emergency access to a patient's record".to_owned(),
                referral_id: None,
                patient_id: Some(*patient_id.as_uuid()),
                actor_id: Some(*doctor_user.id.as_uuid()),
                emergency_access_id: Some(*access.id.as_uuid()),
                appointment_id: None,
                lab_order_id: None,
                prescription_id: None,
                conversation_id: None,
                message_id: None,
                urgent: false,
            },
        }]
    );
    // The reason given stays in the audit trail: a notification carries no clinical text.
    assert!(!notices[0].data.title.contains("Unconscious"));
    let published = published.lock().expect("published");
    assert_eq!(*published, [stored(notices, &admins)]);
    assert_eq!(published[0].len(), 2, "one for each active administrator");
}

#[tokio::test]
async fn an_emergency_access_that_cannot_be_stored_is_internal_and_nothing_is_published() {
    let doctor_user = user(Role::Doctor, UserStatus::Active);
    let mut mocks = Mocks::new();
    mocks.named(&doctor_user);
    mocks
        .emergency_accesses
        .expect_grant()
        .times(1)
        .returning(|_, _, _| Err(repository_failure()));
    mocks.nothing_published();

    let result = mocks
        .emergency_access_service()
        .request_emergency_access(
            &grant(
                &actor_for(&doctor_user),
                Some(PatientId::generate()),
                Action::RequestEmergencyAccess,
                Basis::Role,
            ),
            emergency_reason("Unconscious in A&E, team unreachable"),
        )
        .await;

    assert!(is_internal(&result), "{result:?}");
}

#[test]
fn an_emergency_access_lasts_an_hour_unless_configured_otherwise() {
    assert_eq!(
        ServiceConfig::default().emergency_access_ttl,
        SignedDuration::from_mins(60)
    );
}

// ---------------------------------------------------------------------------------------------
// Administrators' views

#[tokio::test]
async fn only_administrators_list_emergency_accesses() {
    for role in [
        Role::Doctor,
        Role::Secretary,
        Role::Patient,
        Role::Laboratory,
    ] {
        let mut mocks = Mocks::new();
        mocks.emergency_accesses.expect_list().never();

        let result = mocks
            .emergency_access_service()
            .list_emergency_accesses(&actor(role), None, None, None, PageRequest::first(10))
            .await;

        assert!(
            matches!(result, Err(EmergencyAccessError::Forbidden)),
            "{role}: {result:?}"
        );
    }

    // "Active" and "expired" are judged at the clock's now.
    let patient_id = PatientId::generate();
    for (active, filter) in [
        (
            Some(true),
            EmergencyAccessFilter {
                patient_id: Some(patient_id),
                doctor_id: None,
                active_at: Some(NOW),
                expired_at: None,
            },
        ),
        (
            Some(false),
            EmergencyAccessFilter {
                patient_id: Some(patient_id),
                doctor_id: None,
                active_at: None,
                expired_at: Some(NOW),
            },
        ),
        (
            None,
            EmergencyAccessFilter {
                patient_id: Some(patient_id),
                ..EmergencyAccessFilter::default()
            },
        ),
    ] {
        let page = PageRequest::first(10);
        let mut mocks = Mocks::new();
        mocks
            .emergency_accesses
            .expect_list()
            .with(eq(filter), eq(page))
            .times(1)
            .returning(|_, _| {
                Ok(Page {
                    items: Vec::new(),
                    next: None,
                })
            });

        let listed = mocks
            .emergency_access_service()
            .list_emergency_accesses(&actor(Role::Admin), Some(patient_id), None, active, page)
            .await
            .expect("listed");

        assert!(listed.items.is_empty());
    }
}

#[tokio::test]
async fn only_administrators_read_the_whole_audit_trail() {
    for role in [
        Role::Doctor,
        Role::Secretary,
        Role::Patient,
        Role::Laboratory,
    ] {
        let mut mocks = Mocks::new();
        mocks.audit.expect_list().never();

        let result = mocks
            .audit_service()
            .audit_trail(&actor(role), AuditFilter::default(), PageRequest::first(10))
            .await;

        assert!(
            matches!(result, Err(AccessError::Forbidden)),
            "{role}: {result:?}"
        );
    }

    let filter = AuditFilter {
        actor_id: Some(UserId::generate()),
        from: Some(NOW - SignedDuration::from_hours(24)),
        ..AuditFilter::default()
    };
    let page = PageRequest::first(10);
    let mut mocks = Mocks::new();
    mocks
        .audit
        .expect_list()
        .with(eq(filter), eq(page))
        .times(1)
        .returning(|_, _| {
            Ok(Page {
                items: Vec::new(),
                next: None,
            })
        });
    mocks.nothing_audited();

    let listed = mocks
        .audit_service()
        .audit_trail(&actor(Role::Admin), filter, page)
        .await
        .expect("listed");

    assert!(listed.items.is_empty());
}
