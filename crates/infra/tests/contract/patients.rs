//! `PatientRepository`: patients and their identifiers, search scoped to the caller, and the
//! facts that relate a user to a patient.

use jiff::{SignedDuration, Timestamp};

use carehub_domain::access::AccessFacts;
use carehub_domain::audit::AuditAction;
use carehub_domain::identity::{Email, FullName, Role, User, UserId, UserStatus};
use carehub_domain::kernel::{PageRequest, Phone, Text};
use carehub_domain::patients::{
    Address, CareTeamMember, Contact, EmergencyContact, Identifier, IdentifierSystem, Insurance,
    Location, Patient, PatientDetails, PatientId, PatientQuery, SavePatientError, SearchScope,
    SearchText, Sex,
};
use carehub_domain::scheduling::AppointmentStatus;
use carehub_infra::Repositories;

use crate::fixtures::patients::{
    add_member, audit, end_membership, grant, membership, minimal_patient, register, register_named,
};
use crate::fixtures::scheduling::{base, book, patient, secretary, span, status_update};
use crate::fixtures::{audited, create_user, doctor, micros, now};

contract!(
    a_registered_patient_reads_back_with_every_field_and_its_first_care_team,
    a_taken_record_number_is_refused_and_nothing_is_written,
    a_taken_identifier_is_refused_naming_its_system_and_nothing_is_written,
    an_account_linked_to_another_patient_is_refused_and_nothing_is_written,
    an_update_replaces_details_and_identifiers_and_returns_what_is_stored,
    a_stale_or_conflicting_update_is_refused_and_changes_nothing,
    search_matches_names_regardless_of_case_record_numbers_however_typed_and_identifiers_exactly,
    a_doctor_finds_their_care_team_and_others_only_by_exact_record_number_or_identifier,
    paging_through_search_results_yields_each_patient_once_in_id_order,
    percent_underscore_and_backslash_in_search_text_are_taken_literally,
    access_facts_tell_own_record_current_care_team_and_unexpired_emergency_access,
    access_facts_see_an_appointments_membership_until_it_ends,
);

fn text(raw: &str) -> Text {
    Text::line(raw, 200).unwrap()
}

fn identifier(system: &str, value: &str) -> Identifier {
    Identifier {
        system: IdentifierSystem::parse(system).unwrap(),
        value: text(value),
    }
}

/// A patient with every field filled in.
fn full_patient(user_id: Option<UserId>) -> Patient {
    let mut patient = minimal_patient("Ada  King Lovelace");
    patient.details = PatientDetails {
        full_name: FullName::parse("Ada  King Lovelace").unwrap(),
        date_of_birth: jiff::civil::date(1815, 12, 10),
        sex: Sex::Female,
        contact: Contact {
            phone: Some(Phone::parse("+44 20 7946 0958").unwrap()),
            email: Some(Email::parse("ada@example.org").unwrap()),
            address: Some(Address {
                lines: vec![text("12 St James's Square"), text("Flat \"B\", 2nd floor")],
                city: Some(text("London")),
                postal_code: Some(text("SW1Y 4JH")),
                country: Some(text("GB")),
            }),
        },
        // Listed out of order: they are read back ordered by system.
        identifiers: vec![
            identifier("passport", "X1234567"),
            identifier("national_id", "QQ 12 34 56 C"),
            identifier("urn:oid:2.16.756.5.32", "756.1234.5678.97"),
        ],
        insurance: Some(Insurance {
            provider: text("Helvetia"),
            policy_number: text("P-123"),
            group: Some(text("G-7")),
            valid_until: Some(jiff::civil::date(2027, 12, 31)),
        }),
        emergency_contact: Some(EmergencyContact {
            name: text("Annabella Byron"),
            relationship: Some(text("mother")),
            phone: Phone::parse("+44 20 7946 0000").unwrap(),
        }),
        location: Some(Location {
            room: text("3.14"),
            bed: Some(text("B")),
        }),
        user_id,
    };
    patient
}

fn sorted_identifiers(mut patient: Patient) -> Patient {
    patient
        .details
        .identifiers
        .sort_by(|a, b| a.system.as_str().cmp(b.system.as_str()));
    patient
}

/// Every patient `query` finds, reading all pages.
async fn search(repos: &Repositories, text: Option<&str>, scope: SearchScope) -> Vec<PatientId> {
    let query = PatientQuery {
        text: text.map(|t| SearchText::parse(t).unwrap()),
        scope,
    };
    let page = repos
        .patients
        .search(&query, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(page.next, None);
    page.items.iter().map(|p| p.id).collect()
}

fn ids(patients: &[&Patient]) -> Vec<PatientId> {
    let mut ids: Vec<_> = patients.iter().map(|p| p.id).collect();
    ids.sort();
    ids
}

async fn a_registered_patient_reads_back_with_every_field_and_its_first_care_team(
    repos: Repositories,
) {
    let registrar = doctor(&repos, "dr.first").await;
    let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
    let full = full_patient(Some(account.id));
    let first = membership(full.id, registrar.id, now(), registrar.id);
    let event = audit(registrar.id, full.id, AuditAction::PatientCreate);
    repos
        .patients
        .create(&full, std::slice::from_ref(&first), &event)
        .await
        .unwrap();

    let expected = sorted_identifiers(full.clone());
    assert_eq!(
        repos.patients.find(full.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        repos.patients.find_by_user(account.id).await.unwrap(),
        Some(expected)
    );

    let minimal = minimal_patient("Bo");
    register(&repos, &minimal, registrar.id).await;
    assert_eq!(
        repos.patients.find(minimal.id).await.unwrap(),
        Some(minimal.clone())
    );

    // The first member and the audit event were stored with the patient.
    let team = repos.care_teams.list(full.id).await.unwrap();
    assert_eq!(
        team,
        vec![CareTeamMember {
            doctor_name: Some(registrar.full_name.clone()),
            ..first
        }]
    );
    assert_eq!(audited(&repos, full.id).await, [AuditAction::PatientCreate]);
    assert!(repos.care_teams.list(minimal.id).await.unwrap().is_empty());

    assert_eq!(
        repos.patients.find(PatientId::generate()).await.unwrap(),
        None
    );
    let unlinked = create_user(&repos, "unlinked", Role::Patient, UserStatus::Active).await;
    assert_eq!(
        repos.patients.find_by_user(unlinked.id).await.unwrap(),
        None
    );
}

/// Asserts that nothing of `patient` was stored: no row, no identifiers, no care-team
/// member, no audit event.
async fn assert_nothing_written(repos: &Repositories, patient: &Patient) {
    assert_eq!(repos.patients.find(patient.id).await.unwrap(), None);
    for identifier in &patient.details.identifiers {
        let found = search(repos, Some(identifier.value.as_str()), SearchScope::All).await;
        assert!(
            !found.contains(&patient.id),
            "an identifier of the refused patient was stored"
        );
    }
    assert!(repos.care_teams.list(patient.id).await.unwrap().is_empty());
    assert!(audited(repos, patient.id).await.is_empty());
}

/// Registers `refused` with a first member, expecting `check` to accept the error.
async fn register_refused(
    repos: &Repositories,
    refused: &Patient,
    by: UserId,
    check: impl Fn(&SavePatientError) -> bool,
) {
    let result = repos
        .patients
        .create(
            refused,
            &[membership(refused.id, by, now(), by)],
            &audit(by, refused.id, AuditAction::PatientCreate),
        )
        .await;
    match result {
        Err(ref e) if check(e) => {}
        other => panic!("unexpected result: {other:?}"),
    }
    assert_nothing_written(repos, refused).await;
}

async fn a_taken_record_number_is_refused_and_nothing_is_written(repos: Repositories) {
    let registrar = doctor(&repos, "dr.first").await;
    let first = register_named(&repos, "Ada Lovelace", registrar.id).await;
    let mut second = minimal_patient("Bo Peep");
    second.mrn = first.mrn.clone();
    second.details.identifiers = vec![identifier("passport", "BO-1")];
    register_refused(&repos, &second, registrar.id, |e| {
        matches!(e, SavePatientError::MrnTaken)
    })
    .await;
    assert_eq!(repos.patients.find(first.id).await.unwrap(), Some(first));
}

async fn a_taken_identifier_is_refused_naming_its_system_and_nothing_is_written(
    repos: Repositories,
) {
    let registrar = doctor(&repos, "dr.first").await;
    let mut first = minimal_patient("Ada Lovelace");
    first.details.identifiers = vec![identifier("national_id", "756.1")];
    register(&repos, &first, registrar.id).await;

    // The same value in another system belongs to nobody yet.
    let mut other_system = minimal_patient("Cy Twombly");
    other_system.details.identifiers = vec![identifier("passport", "756.1")];
    register(&repos, &other_system, registrar.id).await;

    // The free identifier comes first, so it is written before the taken one is refused.
    let mut second = minimal_patient("Bo Peep");
    second.details.identifiers = vec![
        identifier("insurance_card", "IC-9"),
        identifier("national_id", "756.1"),
    ];
    register_refused(
        &repos,
        &second,
        registrar.id,
        |e| matches!(e, SavePatientError::IdentifierTaken { system } if system == "national_id"),
    )
    .await;
    assert_eq!(
        search(&repos, Some("IC-9"), SearchScope::All).await,
        Vec::<PatientId>::new()
    );
    assert_eq!(repos.patients.find(first.id).await.unwrap(), Some(first));
}

async fn an_account_linked_to_another_patient_is_refused_and_nothing_is_written(
    repos: Repositories,
) {
    let registrar = doctor(&repos, "dr.first").await;
    let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
    let mut first = minimal_patient("Ada Lovelace");
    first.details.user_id = Some(account.id);
    register(&repos, &first, registrar.id).await;

    let mut second = minimal_patient("Ada Lovelace");
    second.details.user_id = Some(account.id);
    second.details.identifiers = vec![identifier("passport", "AL-2")];
    register_refused(&repos, &second, registrar.id, |e| {
        matches!(e, SavePatientError::UserLinked)
    })
    .await;
    assert_eq!(
        repos.patients.find_by_user(account.id).await.unwrap(),
        Some(first)
    );
}

async fn an_update_replaces_details_and_identifiers_and_returns_what_is_stored(
    repos: Repositories,
) {
    let registrar = doctor(&repos, "dr.first").await;
    let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
    let mut patient = full_patient(None);
    patient.details.identifiers = vec![
        identifier("passport", "X1"),
        identifier("national_id", "N1"),
    ];
    register(&repos, &patient, registrar.id).await;
    let mut bystander = full_patient(None);
    bystander.details.identifiers = vec![identifier("passport", "B1")];
    register(&repos, &bystander, registrar.id).await;

    let mut details = minimal_patient("Ada Byron").details;
    details.user_id = Some(account.id);
    details.identifiers = vec![
        identifier("passport", "X2"),
        identifier("insurance_card", "I1"),
    ];
    let at = micros(now() + SignedDuration::from_secs(1));
    let updated = repos
        .patients
        .update(
            patient.id,
            &details,
            patient.updated_at,
            at,
            &audit(registrar.id, patient.id, AuditAction::PatientUpdate),
        )
        .await
        .unwrap();
    let expected = sorted_identifiers(Patient {
        id: patient.id,
        mrn: patient.mrn.clone(),
        details,
        created_at: patient.created_at,
        updated_at: at,
    });
    assert_eq!(updated, expected);
    assert_eq!(
        repos.patients.find(patient.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        repos.patients.find_by_user(account.id).await.unwrap(),
        Some(expected)
    );
    assert_eq!(
        audited(&repos, patient.id).await,
        [AuditAction::PatientCreate, AuditAction::PatientUpdate]
    );
    // The old values are gone and free for another patient; the new ones are found.
    assert!(
        search(&repos, Some("X1"), SearchScope::All)
            .await
            .is_empty()
    );
    assert!(
        search(&repos, Some("N1"), SearchScope::All)
            .await
            .is_empty()
    );
    assert_eq!(
        search(&repos, Some("X2"), SearchScope::All).await,
        [patient.id]
    );
    let mut reuser = minimal_patient("Cy Twombly");
    reuser.details.identifiers = vec![identifier("passport", "X1")];
    register(&repos, &reuser, registrar.id).await;
    // Nobody else changed.
    assert_eq!(
        repos.patients.find(bystander.id).await.unwrap(),
        Some(bystander)
    );
}

async fn a_stale_or_conflicting_update_is_refused_and_changes_nothing(repos: Repositories) {
    let registrar = doctor(&repos, "dr.first").await;
    let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
    let mut linked = minimal_patient("Ada Lovelace");
    linked.details.user_id = Some(account.id);
    linked.details.identifiers = vec![identifier("passport", "TAKEN")];
    register(&repos, &linked, registrar.id).await;
    let mut patient = minimal_patient("Bo Peep");
    patient.details.identifiers = vec![identifier("passport", "BP1")];
    register(&repos, &patient, registrar.id).await;

    let mut renamed = patient.details.clone();
    renamed.full_name = FullName::parse("Bo Renamed").unwrap();
    let first_at = micros(now() + SignedDuration::from_secs(1));
    let current = repos
        .patients
        .update(
            patient.id,
            &renamed,
            patient.updated_at,
            first_at,
            &audit(registrar.id, patient.id, AuditAction::PatientUpdate),
        )
        .await
        .unwrap();

    let update = |details: PatientDetails, id: PatientId, expected: Timestamp| {
        let repos = repos.clone();
        let registrar = registrar.id;
        async move {
            repos
                .patients
                .update(
                    id,
                    &details,
                    expected,
                    micros(now() + SignedDuration::from_secs(2)),
                    &audit(registrar, id, AuditAction::PatientUpdate),
                )
                .await
        }
    };
    let mut other = patient.details.clone();
    other.full_name = FullName::parse("Bo Stale").unwrap();
    // Written from the version before the rename.
    let stale = update(other.clone(), patient.id, patient.updated_at).await;
    assert!(matches!(stale, Err(SavePatientError::Stale)), "{stale:?}");
    // A patient that does not exist.
    let missing = PatientId::generate();
    let vanished = update(other.clone(), missing, patient.updated_at).await;
    assert!(
        matches!(vanished, Err(SavePatientError::Stale)),
        "{vanished:?}"
    );
    assert!(audited(&repos, missing).await.is_empty());

    // From the current version, but taking another patient's identifier or account. The
    // old identifiers are replaced and a free new one written before the taken one is
    // refused: the refusal must undo both.
    let mut taking_identifier = current.details.clone();
    taking_identifier.identifiers = vec![
        identifier("national_id", "NEW"),
        identifier("passport", "TAKEN"),
    ];
    let refused = update(taking_identifier, patient.id, current.updated_at).await;
    assert!(
        matches!(&refused, Err(SavePatientError::IdentifierTaken { system }) if system == "passport"),
        "{refused:?}"
    );
    let mut taking_account = current.details.clone();
    taking_account.user_id = Some(account.id);
    let refused = update(taking_account, patient.id, current.updated_at).await;
    assert!(
        matches!(refused, Err(SavePatientError::UserLinked)),
        "{refused:?}"
    );

    assert_eq!(
        repos.patients.find(patient.id).await.unwrap(),
        Some(current.clone())
    );
    assert!(
        search(&repos, Some("NEW"), SearchScope::All)
            .await
            .is_empty()
    );
    assert_eq!(
        search(&repos, Some("BP1"), SearchScope::All).await,
        [patient.id]
    );
    assert_eq!(
        audited(&repos, patient.id).await,
        [AuditAction::PatientCreate, AuditAction::PatientUpdate]
    );
    assert_eq!(repos.patients.find(linked.id).await.unwrap(), Some(linked));

    // The current version still updates.
    let again = update(other, patient.id, current.updated_at).await.unwrap();
    assert_eq!(again.details.full_name.as_str(), "Bo Stale");
}

async fn search_matches_names_regardless_of_case_record_numbers_however_typed_and_identifiers_exactly(
    repos: Repositories,
) {
    let registrar = doctor(&repos, "dr.first").await;
    let ada = register_named(&repos, "Ada Lovelace", registrar.id).await;
    let grace = register_named(&repos, "Grace  HOPPER", registrar.id).await;
    let mut charles = minimal_patient("Charles Babbage");
    charles.details.identifiers = vec![identifier("national_id", "QQ 12 34 56 C")];
    register(&repos, &charles, registrar.id).await;
    let all = SearchScope::All;

    assert_eq!(search(&repos, Some("LOVE"), all).await, ids(&[&ada]));
    assert_eq!(search(&repos, Some("ace"), all).await, ids(&[&ada, &grace]));
    assert_eq!(search(&repos, Some("grace hop"), all).await, ids(&[&grace]));
    assert_eq!(
        search(&repos, Some("Grace   Hop"), all).await,
        ids(&[&grace])
    );
    assert!(search(&repos, Some("zelda"), all).await.is_empty());

    let mrn = grace.mrn.as_str();
    assert_eq!(search(&repos, Some(mrn), all).await, ids(&[&grace]));
    let compact = mrn.replace('-', "").to_lowercase();
    assert_eq!(search(&repos, Some(&compact), all).await, ids(&[&grace]));

    assert_eq!(
        search(&repos, Some("QQ 12 34 56 C"), all).await,
        ids(&[&charles])
    );
    assert!(search(&repos, Some("QQ 12"), all).await.is_empty());
    assert!(search(&repos, Some("qq 12 34 56 c"), all).await.is_empty());

    assert_eq!(
        search(&repos, None, all).await,
        ids(&[&ada, &grace, &charles])
    );
}

async fn a_doctor_finds_their_care_team_and_others_only_by_exact_record_number_or_identifier(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let at = now();
    let on_team = register_named(&repos, "Ada Lovelace", wilson.id).await;
    add_member(
        &repos,
        on_team.id,
        house.id,
        at - SignedDuration::from_hours(24 * 2),
    )
    .await;
    let mut elsewhere = minimal_patient("Ada Byron");
    elsewhere.details.identifiers = vec![identifier("passport", "AB-1")];
    register(&repos, &elsewhere, wilson.id).await;
    add_member(
        &repos,
        elsewhere.id,
        wilson.id,
        at - SignedDuration::from_hours(24 * 2),
    )
    .await;
    let left = register_named(&repos, "Ada King", wilson.id).await;
    add_member(
        &repos,
        left.id,
        house.id,
        at - SignedDuration::from_hours(24 * 2),
    )
    .await;
    end_membership(
        &repos,
        left.id,
        house.id,
        at - SignedDuration::from_hours(24),
    )
    .await;
    let later = register_named(&repos, "Ada Later", wilson.id).await;
    add_member(
        &repos,
        later.id,
        house.id,
        at + SignedDuration::from_hours(24),
    )
    .await;

    let scope = SearchScope::Doctor {
        doctor_id: house.id,
        at,
    };
    assert_eq!(search(&repos, None, scope).await, ids(&[&on_team]));
    assert_eq!(search(&repos, Some("ada"), scope).await, ids(&[&on_team]));
    assert_eq!(
        search(&repos, Some("byron"), scope).await,
        Vec::<PatientId>::new()
    );
    assert_eq!(
        search(&repos, Some(elsewhere.mrn.as_str()), scope).await,
        ids(&[&elsewhere])
    );
    assert_eq!(
        search(&repos, Some("AB-1"), scope).await,
        ids(&[&elsewhere])
    );
    assert_eq!(
        search(&repos, Some(left.mrn.as_str()), scope).await,
        ids(&[&left])
    );
    // Before the membership ended, the ended one counted; the future one does once it starts.
    let earlier = SearchScope::Doctor {
        doctor_id: house.id,
        at: at - SignedDuration::from_hours(36),
    };
    assert_eq!(
        search(&repos, Some("ada"), earlier).await,
        ids(&[&on_team, &left])
    );
    let after_start = SearchScope::Doctor {
        doctor_id: house.id,
        at: at + SignedDuration::from_hours(24 * 2),
    };
    assert_eq!(
        search(&repos, None, after_start).await,
        ids(&[&on_team, &later])
    );
    // Another doctor sees their own team only.
    let wilsons = SearchScope::Doctor {
        doctor_id: wilson.id,
        at,
    };
    assert_eq!(search(&repos, None, wilsons).await, ids(&[&elsewhere]));
    // Everyone, for a secretary.
    assert_eq!(
        search(&repos, Some("ada"), SearchScope::All).await,
        ids(&[&on_team, &elsewhere, &left, &later])
    );
}

async fn paging_through_search_results_yields_each_patient_once_in_id_order(repos: Repositories) {
    let registrar = doctor(&repos, "dr.first").await;
    let mut expected = Vec::new();
    for n in 0..27 {
        expected.push(
            register_named(&repos, &format!("Pat Number {n}"), registrar.id)
                .await
                .id,
        );
    }
    register_named(&repos, "Someone Else", registrar.id).await;
    expected.sort();

    let query = PatientQuery {
        text: Some(SearchText::parse("number").unwrap()),
        scope: SearchScope::All,
    };
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = repos
            .patients
            .search(&query, PageRequest::new(Some(10), after).unwrap())
            .await
            .unwrap();
        sizes.push(page.items.len());
        if page.next.is_some() {
            assert_eq!(page.next, page.items.last().map(|p| p.id));
        }
        seen.extend(page.items.iter().map(|p| p.id));
        after = page.next;
        if after.is_none() {
            break;
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [10, 10, 7]);
    assert_eq!(seen, expected);
}

async fn percent_underscore_and_backslash_in_search_text_are_taken_literally(repos: Repositories) {
    let registrar = doctor(&repos, "dr.first").await;
    let underscore = register_named(&repos, "Ann_Lee", registrar.id).await;
    let letter = register_named(&repos, "AnnXLee", registrar.id).await;
    let percent = register_named(&repos, "Bo%b", registrar.id).await;
    let letters = register_named(&repos, "Boxxb", registrar.id).await;
    let backslash = register_named(&repos, "Di\\Do", registrar.id).await;
    let slash = register_named(&repos, "Di/Do", registrar.id).await;
    let all = SearchScope::All;

    assert_eq!(search(&repos, Some("n_l"), all).await, ids(&[&underscore]));
    assert_eq!(search(&repos, Some("o%b"), all).await, ids(&[&percent]));
    assert_eq!(search(&repos, Some("%"), all).await, ids(&[&percent]));
    assert_eq!(search(&repos, Some("_"), all).await, ids(&[&underscore]));
    assert_eq!(search(&repos, Some("i\\d"), all).await, ids(&[&backslash]));
    assert_eq!(search(&repos, Some("nxl"), all).await, ids(&[&letter]));
    assert_eq!(search(&repos, Some("oxx"), all).await, ids(&[&letters]));
    assert_eq!(search(&repos, Some("i/d"), all).await, ids(&[&slash]));
}

async fn access_facts_tell_own_record_current_care_team_and_unexpired_emergency_access(
    repos: Repositories,
) {
    let account = create_user(&repos, "ada", Role::Patient, UserStatus::Active).await;
    let on_team = doctor(&repos, "dr.team").await;
    let left = doctor(&repos, "dr.left").await;
    let glass = doctor(&repos, "dr.glass").await;
    let expired = doctor(&repos, "dr.expired").await;
    let stranger = doctor(&repos, "dr.stranger").await;
    let joining = doctor(&repos, "dr.joining").await;
    let at = micros(now());
    let mut patient = minimal_patient("Ada Lovelace");
    patient.details.user_id = Some(account.id);
    register(&repos, &patient, on_team.id).await;
    let unlinked = register_named(&repos, "Bo Peep", on_team.id).await;
    add_member(
        &repos,
        patient.id,
        on_team.id,
        at - SignedDuration::from_hours(24),
    )
    .await;
    add_member(
        &repos,
        patient.id,
        left.id,
        at - SignedDuration::from_hours(24 * 2),
    )
    .await;
    end_membership(
        &repos,
        patient.id,
        left.id,
        at - SignedDuration::from_hours(24),
    )
    .await;
    add_member(
        &repos,
        patient.id,
        joining.id,
        at + SignedDuration::from_hours(1),
    )
    .await;
    let access = grant(
        &repos,
        patient.id,
        glass.id,
        at - SignedDuration::from_mins(30),
    )
    .await;
    grant(
        &repos,
        patient.id,
        expired.id,
        at - SignedDuration::from_hours(2),
    )
    .await;

    let facts = async |patient_id: PatientId, user: &User, at: Timestamp| {
        repos
            .access_facts
            .access_facts(patient_id, user.id, at)
            .await
            .unwrap()
    };
    let none = AccessFacts::default();
    assert_eq!(
        facts(patient.id, &account, at).await,
        Some(AccessFacts {
            is_own_record: true,
            ..none
        })
    );
    assert_eq!(
        facts(patient.id, &on_team, at).await,
        Some(AccessFacts {
            on_care_team: true,
            ..none
        })
    );
    assert_eq!(facts(patient.id, &left, at).await, Some(none));
    assert_eq!(
        facts(patient.id, &left, at - SignedDuration::from_hours(36)).await,
        Some(AccessFacts {
            on_care_team: true,
            ..none
        }),
        "a membership counts while it lasted"
    );
    assert_eq!(
        facts(patient.id, &glass, at).await,
        Some(AccessFacts {
            emergency_access: true,
            ..none
        })
    );
    assert_eq!(
        facts(patient.id, &glass, access.granted_at).await,
        Some(AccessFacts {
            emergency_access: true,
            ..none
        }),
        "an access holds from the instant it is granted"
    );
    assert_eq!(
        facts(patient.id, &glass, access.expires_at).await,
        Some(none),
        "an access ends at its expiry"
    );
    assert_eq!(facts(patient.id, &expired, at).await, Some(none));
    assert_eq!(facts(patient.id, &stranger, at).await, Some(none));
    assert_eq!(
        facts(patient.id, &joining, at).await,
        Some(none),
        "a membership counts from its start"
    );
    assert_eq!(
        facts(patient.id, &joining, at + SignedDuration::from_hours(1)).await,
        Some(AccessFacts {
            on_care_team: true,
            ..none
        })
    );
    // The emergency access and the membership are to one patient only.
    assert_eq!(facts(unlinked.id, &glass, at).await, Some(none));
    assert_eq!(facts(unlinked.id, &on_team, at).await, Some(none));
    assert_eq!(facts(unlinked.id, &account, at).await, Some(none));
    assert_eq!(facts(PatientId::generate(), &account, at).await, None);
}

async fn access_facts_see_an_appointments_membership_until_it_ends(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let before = micros(now()) - SignedDuration::from_secs(1);
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    let facts = |at: Timestamp| {
        let repos = repos.clone();
        async move {
            repos
                .access_facts
                .access_facts(ada, house.id, at)
                .await
                .unwrap()
                .unwrap()
                .on_care_team
        }
    };
    assert!(!facts(before).await, "not before the booking");
    assert!(facts(first.created_at).await);
    assert!(
        facts(first.created_at + SignedDuration::from_hours(24 * 400)).await,
        "open until the visit is over"
    );

    let until = micros(now()) + SignedDuration::from_hours(24 * 30);
    status_update(
        &repos,
        &first,
        AppointmentStatus::Booked,
        AppointmentStatus::NoShow,
        &desk,
        Some(until),
    )
    .await
    .unwrap();
    assert!(facts(until - SignedDuration::from_secs(1)).await);
    assert!(!facts(until).await);
}
