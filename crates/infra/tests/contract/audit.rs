//! `AuditLog`: the append-only audit trail, which the database itself refuses to change.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Barrier;

use carehub_domain::access::Basis;
use carehub_domain::audit::{
    AuditAction, AuditEntry, AuditEvent, AuditEventId, AuditFilter, Outcome,
};
use carehub_domain::identity::{Role, UserId, UserStatus};
use carehub_domain::kernel::PageRequest;
use carehub_domain::patients::PatientId;
use carehub_infra::{Database, Repositories};

use crate::fixtures::records::{
    append_clinical_note, audit_event_at, audit_of_patient, audited_ids, new_clinical_note,
    register_some_patient, whole_audit_trail,
};
use crate::fixtures::{create_user, micros, now};

contract!(
    recorded_audit_events_are_listed_newest_first_with_every_field_and_the_actors_name,
    the_audit_trail_filters_by_patient_actor_and_time_and_all_together,
    paging_through_the_audit_trail_yields_every_event_once_newest_first,
    a_hundred_concurrent_audit_records_are_all_stored,
);

contract!(
    database:
    the_database_refuses_to_change_or_delete_audit_events_and_notes,
);

async fn recorded_audit_events_are_listed_newest_first_with_every_field_and_the_actors_name(
    repos: Repositories,
) {
    let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let gone = UserId::generate();
    let patient_id = PatientId::generate();
    let at = now();
    let mut allowed = audit_event_at(doctor.id, Some(patient_id), AuditAction::MedicalRead, at);
    // Microseconds that are not a whole millisecond, so a backend keeping less would show.
    allowed.at = Timestamp::new(allowed.at.as_second(), 123_456_000).unwrap();
    let denied = AuditEvent {
        id: AuditEventId::generate(),
        at: micros(at + SignedDuration::from_secs(1)),
        actor_id: doctor.id,
        actor_role: Role::Secretary,
        patient_id: None,
        action: AuditAction::PatientList,
        outcome: Outcome::Denied,
        basis: None,
        request_id: None,
    };
    let by_nobody = AuditEvent {
        actor_id: gone,
        actor_role: Role::Patient,
        basis: Some(Basis::OwnRecord),
        ..audit_event_at(gone, Some(patient_id), AuditAction::NotesRead, at)
    };
    let emergency = AuditEvent {
        basis: Some(Basis::EmergencyAccess),
        action: AuditAction::EmergencyAccessGrant,
        ..audit_event_at(doctor.id, Some(patient_id), AuditAction::PatientRead, at)
    };
    repos
        .audit
        .record(vec![allowed.clone(), denied.clone()])
        .await
        .unwrap();
    repos
        .audit
        .record(vec![by_nobody.clone(), emergency.clone()])
        .await
        .unwrap();

    let page = repos
        .audit
        .list(AuditFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.next, None);
    let named = |event: &AuditEvent| AuditEntry {
        event: event.clone(),
        actor_name: Some(doctor.full_name.clone()),
    };
    assert_eq!(
        page.items,
        vec![
            named(&emergency),
            AuditEntry {
                event: by_nobody,
                actor_name: None,
            },
            named(&denied),
            named(&allowed),
        ]
    );
    assert_eq!(page.items[3].event.at, allowed.at);
}

async fn the_audit_trail_filters_by_patient_actor_and_time_and_all_together(repos: Repositories) {
    let ann = create_user(&repos, "dr.ann", Role::Doctor, UserStatus::Active).await;
    let bob = create_user(&repos, "dr.bob", Role::Doctor, UserStatus::Active).await;
    let (p, q) = (PatientId::generate(), PatientId::generate());
    let t0 = micros(now()) - SignedDuration::from_hours(1);
    let t = |minutes| t0 + SignedDuration::from_mins(minutes);
    let events = vec![
        audit_event_at(ann.id, Some(p), AuditAction::PatientRead, t(0)),
        audit_event_at(bob.id, Some(p), AuditAction::PatientRead, t(1)),
        audit_event_at(ann.id, Some(q), AuditAction::PatientRead, t(2)),
        audit_event_at(bob.id, None, AuditAction::PatientList, t(3)),
        audit_event_at(ann.id, Some(p), AuditAction::MedicalRead, t(3)),
    ];
    repos.audit.record(events.clone()).await.unwrap();
    // Newest first, as the trail lists them.
    let ids = |picked: &[usize]| -> Vec<AuditEventId> {
        picked.iter().rev().map(|&i| events[i].id).collect()
    };

    let cases = [
        ("everything", AuditFilter::default(), ids(&[0, 1, 2, 3, 4])),
        ("patient p", audit_of_patient(p), ids(&[0, 1, 4])),
        ("patient q", audit_of_patient(q), ids(&[2])),
        (
            "actor ann",
            AuditFilter {
                actor_id: Some(ann.id),
                ..AuditFilter::default()
            },
            ids(&[0, 2, 4]),
        ),
        (
            "from t1, inclusive",
            AuditFilter {
                from: Some(t(1)),
                ..AuditFilter::default()
            },
            ids(&[1, 2, 3, 4]),
        ),
        (
            "to t2, exclusive",
            AuditFilter {
                to: Some(t(2)),
                ..AuditFilter::default()
            },
            ids(&[0, 1]),
        ),
        (
            "from t1 to t3",
            AuditFilter {
                from: Some(t(1)),
                to: Some(t(3)),
                ..AuditFilter::default()
            },
            ids(&[1, 2]),
        ),
        (
            "a microsecond after t3",
            AuditFilter {
                from: Some(t(3) + SignedDuration::from_micros(1)),
                ..AuditFilter::default()
            },
            vec![],
        ),
        (
            "patient p by ann",
            AuditFilter {
                patient_id: Some(p),
                actor_id: Some(ann.id),
                ..AuditFilter::default()
            },
            ids(&[0, 4]),
        ),
        (
            "patient p by ann after t0",
            AuditFilter {
                patient_id: Some(p),
                actor_id: Some(ann.id),
                from: Some(t(0) + SignedDuration::from_micros(1)),
                to: Some(t(4)),
            },
            ids(&[4]),
        ),
        (
            "patient p by bob before t1",
            AuditFilter {
                patient_id: Some(p),
                actor_id: Some(bob.id),
                from: None,
                to: Some(t(1)),
            },
            vec![],
        ),
    ];
    for (name, filter, expected) in cases {
        assert_eq!(audited_ids(&repos, filter).await, expected, "{name}");
    }
}

async fn paging_through_the_audit_trail_yields_every_event_once_newest_first(repos: Repositories) {
    let actor = UserId::generate();
    let (p, q) = (PatientId::generate(), PatientId::generate());
    let mut of_p = Vec::new();
    for n in 0..12 {
        let patient = if n % 3 == 1 { q } else { p };
        let event = audit_event_at(actor, Some(patient), AuditAction::PatientRead, now());
        repos.audit.record(vec![event.clone()]).await.unwrap();
        if patient == p {
            of_p.push(event.id);
        }
    }
    of_p.reverse();
    assert_eq!(of_p.len(), 8);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = repos
            .audit
            .list(
                audit_of_patient(p),
                PageRequest::new(Some(3), after).unwrap(),
            )
            .await
            .unwrap();
        sizes.push(page.items.len());
        if let Some(key) = page.next {
            assert_eq!(Some(key), page.items.last().map(|e| e.event.id));
        }
        seen.extend(page.items.into_iter().map(|e| e.event.id));
        after = page.next;
        if after.is_none() {
            break;
        }
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, vec![3, 3, 2]);
    assert_eq!(seen, of_p);
}

async fn a_hundred_concurrent_audit_records_are_all_stored(repos: Repositories) {
    let patient_id = PatientId::generate();
    let barrier = Arc::new(Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (repos, barrier) = (repos.clone(), barrier.clone());
            tokio::spawn(async move {
                let event = audit_event_at(
                    UserId::generate(),
                    Some(patient_id),
                    AuditAction::PatientRead,
                    now(),
                );
                barrier.wait().await;
                repos.audit.record(vec![event.clone()]).await.unwrap();
                event.id
            })
        })
        .collect();
    let mut recorded = Vec::new();
    for task in tasks {
        recorded.push(task.await.unwrap());
    }
    recorded.sort();
    let mut stored = audited_ids(&repos, audit_of_patient(patient_id)).await;
    stored.reverse();
    assert_eq!(stored, recorded);
}

/// Runs `sql` directly on the database, past every repository.
async fn execute_raw(database: &Database, sql: &'static str) -> Result<u64, sqlx::Error> {
    match database {
        Database::Sqlite(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
        Database::Postgres(pool) => sqlx::query(sql)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
    }
}

async fn the_database_refuses_to_change_or_delete_audit_events_and_notes(database: &Database) {
    let repos = database.repositories();
    let doctor = create_user(&repos, "dr.grey", Role::Doctor, UserStatus::Active).await;
    let patient_id = register_some_patient(&repos, doctor.id).await;
    let note = append_clinical_note(
        &repos,
        &new_clinical_note(patient_id, &doctor, None, "immutable", None),
    )
    .await;
    let trail = whole_audit_trail(&repos, AuditFilter::default()).await;
    assert!(
        trail.len() >= 2,
        "the registration and the note were audited"
    );

    for sql in [
        "UPDATE audit_events SET action = 'patient.read'",
        "DELETE FROM audit_events",
        "UPDATE clinical_notes SET body = 'rewritten'",
        "DELETE FROM clinical_notes",
    ] {
        let refused = execute_raw(database, sql).await;
        let error = refused.expect_err(sql).to_string();
        assert!(error.contains("append-only"), "{sql}: {error}");
    }

    assert_eq!(
        whole_audit_trail(&repos, AuditFilter::default()).await,
        trail
    );
    let notes = repos
        .notes
        .list(patient_id, None, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(notes.items, vec![note]);
}
