//! `NoteRepository`: append-only clinical notes, amendments, and at most one note per
//! appointment.

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::{Role, UserStatus};
use carehub_domain::kernel::PageRequest;
use carehub_domain::patients::{AppendNoteError, ClinicalNote, NoteId, NoteKind};
use carehub_domain::scheduling::AppointmentId;
use carehub_infra::Repositories;
use jiff::Timestamp;

use crate::fixtures::records::{
    append_clinical_note, audit_event_at, audit_of_patient, audited_ids, new_clinical_note,
    register_some_patient, whole_audit_trail,
};
use crate::fixtures::scheduling::{appointment_audit, base, book, patient, secretary, span, text};
use crate::fixtures::{create_user, doctor, micros, now};

contract!(
    an_appended_note_is_returned_as_stored_with_its_authors_name,
    amending_a_note_of_another_patient_is_refused_and_nothing_is_written,
    notes_are_listed_newest_first_by_kind_and_page_by_page,
    an_appointment_has_at_most_one_visit_note,
);

async fn an_appended_note_is_returned_as_stored_with_its_authors_name(repos: Repositories) {
    let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let patient_id = register_some_patient(&repos, doctor.id).await;
    let mut note = new_clinical_note(
        patient_id,
        &doctor,
        Some(NoteKind::CheckUp),
        "BP 120/80.\nNo complaints.\tFollow up in 6 months.",
        None,
    );
    note.created_at = Timestamp::new(note.created_at.as_second(), 123_456_000).unwrap();
    let audit = audit_event_at(
        doctor.id,
        Some(patient_id),
        AuditAction::NoteCreate,
        note.created_at,
    );

    let stored = repos.notes.append(&note, &audit).await.unwrap();
    let expected = ClinicalNote {
        author_name: Some(doctor.full_name.clone()),
        ..note.clone()
    };
    assert_eq!(stored, expected);

    let listed = repos
        .notes
        .list(patient_id, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![expected.clone()]);
    assert_eq!(listed.next, None);
    let trail = whole_audit_trail(&repos, audit_of_patient(patient_id)).await;
    assert!(trail.iter().any(|entry| entry.event == audit));

    // A correction of it, without a kind.
    let correction = new_clinical_note(
        patient_id,
        &doctor,
        None,
        "Correction: BP 125/80.",
        Some(note.id),
    );
    let stored = append_clinical_note(&repos, &correction).await;
    assert_eq!(stored.amends, Some(note.id));
    assert_eq!(stored.kind, None);
    assert_eq!(stored.author_name, Some(doctor.full_name));
}

async fn amending_a_note_of_another_patient_is_refused_and_nothing_is_written(repos: Repositories) {
    let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let p = register_some_patient(&repos, doctor.id).await;
    let q = register_some_patient(&repos, doctor.id).await;
    let of_q = append_clinical_note(
        &repos,
        &new_clinical_note(q, &doctor, None, "q's note", None),
    )
    .await;

    for amends in [of_q.id, NoteId::generate()] {
        let note = new_clinical_note(p, &doctor, None, "wrong amendment", Some(amends));
        let audit = audit_event_at(doctor.id, Some(p), AuditAction::NoteCreate, now());
        let refused = repos.notes.append(&note, &audit).await;
        assert!(
            matches!(refused, Err(AppendNoteError::UnknownAmended)),
            "expected UnknownAmended, got {refused:?}"
        );
        assert!(
            !audited_ids(&repos, audit_of_patient(p))
                .await
                .contains(&audit.id),
            "the refused note's audit event is not stored"
        );
    }
    let of_p = repos
        .notes
        .list(p, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(of_p.items, vec![], "no note was stored");
    let of_q_now = repos
        .notes
        .list(q, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(of_q_now.items, vec![of_q]);
}

async fn notes_are_listed_newest_first_by_kind_and_page_by_page(repos: Repositories) {
    let grey = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let house = create_user(&repos, "dr.house", Role::Doctor, UserStatus::Active).await;
    let p = register_some_patient(&repos, grey.id).await;
    let q = register_some_patient(&repos, grey.id).await;
    let kinds = [Some(NoteKind::CheckUp), Some(NoteKind::Progress), None];
    let mut notes = Vec::new();
    for n in 0..8 {
        let author = if n % 2 == 0 { &grey } else { &house };
        let note = new_clinical_note(p, author, kinds[n % 3], &format!("note {n}"), None);
        notes.push(append_clinical_note(&repos, &note).await);
        append_clinical_note(
            &repos,
            &new_clinical_note(q, author, kinds[n % 3], "other", None),
        )
        .await;
    }
    notes.reverse();

    let list_all = async |kind: Option<NoteKind>, limit: u32| {
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            let page = repos
                .notes
                .list(p, kind, PageRequest::new(Some(limit), after).unwrap())
                .await
                .unwrap();
            sizes.push(page.items.len());
            if let Some(key) = page.next {
                assert_eq!(Some(key), page.items.last().map(|n| n.id));
            }
            seen.extend(page.items);
            after = page.next;
            if after.is_none() {
                return (seen, sizes);
            }
            assert!(sizes.len() < 10, "paging does not end");
        }
    };

    let (all, sizes) = list_all(None, 100).await;
    assert_eq!(all, notes);
    assert_eq!(sizes, vec![8]);

    let (paged, sizes) = list_all(None, 3).await;
    assert_eq!(paged, notes);
    assert_eq!(sizes, vec![3, 3, 2]);

    let check_ups: Vec<ClinicalNote> = notes
        .iter()
        .filter(|n| n.kind == Some(NoteKind::CheckUp))
        .cloned()
        .collect();
    assert_eq!(check_ups.len(), 3);
    let (paged, sizes) = list_all(Some(NoteKind::CheckUp), 2).await;
    assert_eq!(paged, check_ups);
    assert_eq!(sizes, vec![2, 1]);

    let (discharges, _) = list_all(Some(NoteKind::Discharge), 10).await;
    assert_eq!(discharges, vec![]);
}

async fn an_appointment_has_at_most_one_visit_note(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    let second = book(&repos, house.id, ada, span(base(), 120, 150), &desk).await;
    let note = |appointment_id: Option<AppointmentId>| ClinicalNote {
        id: NoteId::generate(),
        patient_id: ada,
        author_id: house.id,
        author_name: None,
        kind: Some(NoteKind::Consultation),
        body: text("Blood pressure fine."),
        amends: None,
        created_at: micros(now()),
        appointment_id,
    };
    let write = |note: ClinicalNote| {
        let repos = repos.clone();
        let house = house.clone();
        async move {
            repos
                .notes
                .append(
                    &note,
                    &appointment_audit(&house, ada, AuditAction::NoteCreate),
                )
                .await
        }
    };

    let visit = write(note(Some(first.id))).await.unwrap();
    assert_eq!(visit.appointment_id, Some(first.id));
    let twice = write(note(Some(first.id))).await;
    assert!(
        matches!(twice, Err(AppendNoteError::VisitNoteExists)),
        "{twice:?}"
    );
    write(note(Some(second.id))).await.unwrap();
    write(note(None)).await.unwrap();
    write(note(None)).await.unwrap();

    let listed = repos
        .notes
        .list(ada, None, PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[3], visit);
    let linked: Vec<_> = listed.iter().filter_map(|n| n.appointment_id).collect();
    assert_eq!(linked, vec![second.id, first.id]);
}
