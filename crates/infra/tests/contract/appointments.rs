//! `AppointmentRepository`: appointments, which never overlap for a doctor or a patient (checked
//! under concurrency, and past the repositories on the database itself), with their history,
//! memberships, notifications and listing.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Barrier;
use uuid::Uuid;

use carehub_domain::audit::{AuditAction, AuditFilter};
use carehub_domain::identity::{FullName, User, UserId};
use carehub_domain::jobs::JobChanges;
use carehub_domain::kernel::PageRequest;
use carehub_domain::notifications::{Notification, NotificationKind, NotificationQuery};
use carehub_domain::patients::{CareTeamMember, PatientId};
use carehub_domain::scheduling::{
    Appointment, AppointmentFilter, AppointmentId, AppointmentStatus, BookError, Conflict,
    ConflictWith, HistoryChange, HistoryEntry, Interval, Reschedule, StatusUpdate, Weekday,
};
use carehub_infra::{Database, Repositories};

use crate::fixtures::scheduling::{
    appointment_audit, base, book, booking, conflict, current_version, new_appointment, notice,
    patient, patients, profile_update, rule, secretary, span, status_update, text, time_off,
    try_book,
};
use crate::fixtures::{doctor, micros, now};

contract!(
    a_booking_reads_back_with_its_history_membership_audit_event_and_notifications,
    of_fifty_concurrent_bookings_of_one_slot_exactly_one_succeeds_and_the_others_list_it,
    of_fifty_concurrent_bookings_of_one_patient_with_fifty_doctors_exactly_one_succeeds,
    overlapping_ranges_conflict_for_the_doctor_and_for_the_patient_and_touching_ones_do_not,
    cancelled_no_show_and_completed_appointments_do_not_hold_their_time,
    conflicts_list_every_overlapping_appointment_saying_whose_calendar_it_blocks,
    a_booking_or_reschedule_checked_against_an_older_schedule_version_is_refused,
    a_status_change_applies_only_from_the_status_read_and_ends_the_membership_when_told,
    of_concurrent_status_changes_of_one_appointment_exactly_one_applies,
    a_reschedule_applies_only_to_the_time_read_and_conflicts_exclude_the_appointment_itself,
    the_history_lists_every_change_oldest_first_with_the_actors_names,
    appointments_are_listed_by_start_filtered_and_page_by_page,
    busy_lists_the_doctors_active_appointments_overlapping_the_range_by_start,
    an_appointments_changes_store_and_cancel_its_reminder_jobs_in_their_transactions,
);

contract!(
    database:
    the_database_itself_refuses_overlapping_active_appointments_whoever_writes,
);

fn conflicts_of<T: std::fmt::Debug>(result: Result<T, BookError>) -> Vec<Conflict> {
    match result {
        Err(BookError::Conflicts(conflicts)) => conflicts,
        other => panic!("expected conflicts, got {other:?}"),
    }
}

async fn reschedule(
    repos: &Repositories,
    appointment: &Appointment,
    from: Interval,
    to: Interval,
    version: i64,
    by: &User,
) -> Result<Vec<Notification>, BookError> {
    repos
        .appointments
        .reschedule(
            &Reschedule {
                id: appointment.id,
                from,
                to,
                schedule_version: version,
                at: micros(now()),
                actor_id: by.id,
                jobs: JobChanges::default(),
            },
            &appointment_audit(
                by,
                appointment.patient_id,
                AuditAction::AppointmentReschedule,
            ),
            &[notice(
                appointment,
                NotificationKind::AppointmentRescheduled,
            )],
        )
        .await
}

async fn get(repos: &Repositories, id: AppointmentId) -> Appointment {
    repos.appointments.get(id).await.unwrap().expect("stored")
}

/// Every appointment matching `filter`, read `limit` at a time.
async fn list_all(
    repos: &Repositories,
    filter: AppointmentFilter,
    limit: u32,
) -> Vec<AppointmentId> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = repos
            .appointments
            .list(&filter, PageRequest::new(Some(limit), after).unwrap())
            .await
            .unwrap();
        assert!(page.items.len() <= limit as usize);
        ids.extend(page.items.iter().map(|a| a.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return ids,
        }
    }
}

/// Every appointment of `doctor`.
async fn appointments_of(repos: &Repositories, doctor: UserId) -> Vec<AppointmentId> {
    list_all(
        repos,
        AppointmentFilter {
            doctor_id: Some(doctor),
            ..AppointmentFilter::default()
        },
        100,
    )
    .await
}

// ---- Bookings --------------------------------------------------------------------------------

async fn a_booking_reads_back_with_its_history_membership_audit_event_and_notifications(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let patient_id = patient(&repos, &desk, "Ada Lovelace").await;
    let appointment = new_appointment(
        house.id,
        patient_id,
        span(base(), 9 * 60, 9 * 60 + 30),
        &desk,
    );
    let booked = booking(&appointment, 0);
    let membership = booked.membership.clone();
    let event = appointment_audit(&desk, patient_id, AuditAction::AppointmentCreate);
    let stored = repos
        .appointments
        .book(
            &booked,
            &event,
            &[notice(&appointment, NotificationKind::AppointmentBooked)],
        )
        .await
        .unwrap();

    let expected = Appointment {
        doctor_name: Some(house.full_name.clone()),
        patient_name: Some(FullName::parse("Ada Lovelace").unwrap()),
        ..appointment.clone()
    };
    assert_eq!(get(&repos, appointment.id).await, expected);
    assert_eq!(
        repos
            .appointments
            .get(AppointmentId::generate())
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        repos.appointments.history(appointment.id).await.unwrap(),
        vec![HistoryEntry {
            at: appointment.created_at,
            actor_id: desk.id,
            actor_name: Some(desk.full_name.clone()),
            change: HistoryChange::Booked,
            status: AppointmentStatus::Booked,
            start: appointment.start,
            end: appointment.end,
            reason: None,
        }]
    );

    let team = repos.care_teams.list(patient_id).await.unwrap();
    assert_eq!(
        team,
        vec![CareTeamMember {
            doctor_name: Some(house.full_name.clone()),
            ..membership
        }]
    );

    let trail = repos
        .audit
        .list(
            AuditFilter {
                patient_id: Some(patient_id),
                ..AuditFilter::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(trail.items[0].event, event);

    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, 1);
    assert_eq!(stored[0].kind, NotificationKind::AppointmentBooked);
    assert_eq!(
        stored[0].data.appointment_id,
        Some(*appointment.id.as_uuid())
    );
    let listed = repos
        .notifications
        .list(NotificationQuery {
            recipient: house.id,
            after: None,
            unread_only: false,
            with_events: false,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(listed, stored);
}

/// `count` bookings at once, each of its own appointment; returns each outcome with its
/// appointment.
async fn book_concurrently(
    repos: &Repositories,
    appointments: Vec<Appointment>,
    by: &User,
    version: i64,
) -> Vec<(Appointment, Result<Vec<Notification>, BookError>)> {
    let barrier = Arc::new(Barrier::new(appointments.len()));
    let tasks: Vec<_> = appointments
        .into_iter()
        .map(|appointment| {
            let repos = repos.clone();
            let barrier = Arc::clone(&barrier);
            let by = by.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let outcome = try_book(&repos, &appointment, &by, version).await;
                (appointment, outcome)
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

/// Checks that exactly one of `outcomes` won and that every other lists the winner, blocking
/// `with`; returns the winner.
fn exactly_one_winner(
    outcomes: Vec<(Appointment, Result<Vec<Notification>, BookError>)>,
    with: ConflictWith,
) -> Appointment {
    let (won, lost): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|(_, o)| o.is_ok());
    assert_eq!(won.len(), 1, "exactly one booking wins");
    let winner = won.into_iter().next().unwrap().0;
    for (_, outcome) in lost {
        assert_eq!(conflicts_of(outcome), vec![conflict(&winner, with)]);
    }
    winner
}

async fn of_fifty_concurrent_bookings_of_one_slot_exactly_one_succeeds_and_the_others_list_it(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    // A doctor with a schedule, as any bookable doctor has: the bookings only share its
    // version row (`FOR SHARE` on PostgreSQL), so nothing but the conflict rules orders them.
    repos
        .schedules
        .replace_rules(
            house.id,
            &[rule(Weekday::Monday, (9, 0), (17, 0))],
            micros(now()),
        )
        .await
        .unwrap();
    let slot = span(base(), 10 * 60, 10 * 60 + 30);
    let appointments = patients(&repos, &desk, 50)
        .await
        .into_iter()
        .map(|p| new_appointment(house.id, p, slot, &desk))
        .collect();

    let outcomes = book_concurrently(&repos, appointments, &desk, 1).await;
    let winner = exactly_one_winner(outcomes, ConflictWith::Doctor);

    assert_eq!(appointments_of(&repos, house.id).await, vec![winner.id]);
    // The refused bookings wrote nothing: one membership, one notification numbered 1.
    assert_eq!(
        repos
            .care_teams
            .list(winner.patient_id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(repos.notifications.last_id(house.id).await.unwrap(), 1);
    let created = repos
        .audit
        .list(
            AuditFilter {
                actor_id: Some(desk.id),
                ..AuditFilter::default()
            },
            PageRequest::first(100),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|entry| entry.event.action == AuditAction::AppointmentCreate)
        .count();
    assert_eq!(created, 1);
}

async fn of_fifty_concurrent_bookings_of_one_patient_with_fifty_doctors_exactly_one_succeeds(
    repos: Repositories,
) {
    let desk = secretary(&repos).await;
    let patient_id = patient(&repos, &desk, "Ada Lovelace").await;
    let mut doctors = Vec::new();
    for n in 0..50 {
        doctors.push(doctor(&repos, &format!("dr.number{n}")).await);
    }
    // Doctors who never had a schedule (version 0, no row yet to share): only the conflict
    // rules order the bookings.
    let slot = span(base(), 10 * 60, 10 * 60 + 30);
    let appointments = doctors
        .iter()
        .map(|d| new_appointment(d.id, patient_id, slot, &desk))
        .collect();

    let outcomes = book_concurrently(&repos, appointments, &desk, 0).await;
    let winner = exactly_one_winner(outcomes, ConflictWith::Patient);

    let of_patient = list_all(
        &repos,
        AppointmentFilter {
            patient_id: Some(patient_id),
            ..AppointmentFilter::default()
        },
        100,
    )
    .await;
    assert_eq!(of_patient, vec![winner.id]);
    assert_eq!(repos.care_teams.list(patient_id).await.unwrap().len(), 1);
}

async fn overlapping_ranges_conflict_for_the_doctor_and_for_the_patient_and_touching_ones_do_not(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let day = base();
    let held = book(&repos, house.id, ada, span(day, 60, 120), &desk).await;

    let overlapping = [
        ("equal", span(day, 60, 120)),
        ("contained", span(day, 70, 110)),
        ("straddling its start", span(day, 30, 90)),
        ("straddling its end", span(day, 90, 150)),
        ("containing", span(day, 30, 150)),
        ("one minute in at its start", span(day, 0, 61)),
        ("one minute in at its end", span(day, 119, 180)),
    ];
    for (case, at) in overlapping {
        // The doctor's calendar (another patient), the patient's (another doctor), both.
        for (doctor, patient_id, with) in [
            (house.id, bob, ConflictWith::Doctor),
            (wilson.id, ada, ConflictWith::Patient),
            (house.id, ada, ConflictWith::Both),
        ] {
            let attempt = new_appointment(doctor, patient_id, at, &desk);
            let refused = try_book(&repos, &attempt, &desk, 0).await;
            assert_eq!(
                conflicts_of(refused),
                vec![conflict(&held, with)],
                "{case}, {with}"
            );
        }
    }
    assert_eq!(appointments_of(&repos, house.id).await, vec![held.id]);
    assert_eq!(appointments_of(&repos, wilson.id).await, vec![]);

    // Touching is not overlapping: [0, 60) and [120, 180) both fit, for either calendar.
    let before = book(&repos, house.id, bob, span(day, 0, 60), &desk).await;
    let after = book(&repos, house.id, bob, span(day, 120, 180), &desk).await;
    let other_doctor_before = book(&repos, wilson.id, ada, span(day, 0, 60), &desk).await;
    assert_eq!(
        appointments_of(&repos, house.id).await,
        vec![before.id, held.id, after.id]
    );
    assert_eq!(
        appointments_of(&repos, wilson.id).await,
        vec![other_doctor_before.id]
    );
}

async fn cancelled_no_show_and_completed_appointments_do_not_hold_their_time(repos: Repositories) {
    use AppointmentStatus as S;
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let day = base();
    let paths: [&[S]; 3] = [
        &[S::Cancelled],
        &[S::NoShow],
        &[S::CheckedIn, S::InProgress, S::Completed],
    ];
    for (n, path) in paths.into_iter().enumerate() {
        let at = span(
            day,
            60 * i64::try_from(n).unwrap(),
            60 * i64::try_from(n).unwrap() + 60,
        );
        let first = book(&repos, house.id, ada, at, &desk).await;
        let mut from = S::Booked;
        for to in path {
            // While active it holds its time.
            let attempt = new_appointment(house.id, bob, at, &desk);
            assert_eq!(
                conflicts_of(try_book(&repos, &attempt, &desk, 0).await),
                vec![conflict(&first, ConflictWith::Doctor)]
            );
            status_update(&repos, &first, from, *to, &desk, None)
                .await
                .unwrap();
            from = *to;
        }
        // Over, the time is free again, for the doctor and the patient alike.
        let second = book(&repos, house.id, ada, at, &desk).await;
        assert_eq!(get(&repos, second.id).await.status, S::Booked);
    }
}

async fn conflicts_list_every_overlapping_appointment_saying_whose_calendar_it_blocks(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let carl = patient(&repos, &desk, "Carl Gauss").await;
    let day = base();
    // Around [60, 240) for house and ada: the doctor's, the patient's, both, a cancelled one,
    // and others that only touch or belong to neither.
    let doctors = book(&repos, house.id, bob, span(day, 50, 70), &desk).await;
    let patients = book(&repos, wilson.id, ada, span(day, 100, 130), &desk).await;
    let both = book(&repos, house.id, ada, span(day, 200, 300), &desk).await;
    let cancelled = book(&repos, house.id, carl, span(day, 150, 180), &desk).await;
    status_update(
        &repos,
        &cancelled,
        AppointmentStatus::Booked,
        AppointmentStatus::Cancelled,
        &desk,
        None,
    )
    .await
    .unwrap();
    book(&repos, house.id, carl, span(day, 0, 50), &desk).await;
    book(&repos, wilson.id, ada, span(day, 30, 60), &desk).await;
    let cameron = doctor(&repos, "dr.cameron").await;
    book(&repos, cameron.id, carl, span(day, 60, 240), &desk).await;

    let attempt = new_appointment(house.id, ada, span(day, 60, 240), &desk);
    let conflicts = conflicts_of(try_book(&repos, &attempt, &desk, 0).await);
    assert_eq!(
        conflicts,
        vec![
            conflict(&doctors, ConflictWith::Doctor),
            conflict(&patients, ConflictWith::Patient),
            conflict(&both, ConflictWith::Both),
        ]
    );
    assert_eq!(repos.appointments.get(attempt.id).await.unwrap(), None);
}

async fn a_booking_or_reschedule_checked_against_an_older_schedule_version_is_refused(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let day = base();

    let first = new_appointment(house.id, ada, span(day, 0, 30), &desk);
    try_book(&repos, &first, &desk, 0).await.unwrap();

    let changes: [(&str, i64); 4] = [
        ("rules replaced", 1),
        ("time off added", 2),
        ("time off removed", 3),
        ("profile saved", 4),
    ];
    let off = time_off(house.id, span(day, 20 * 60, 21 * 60), &house);
    for (n, (change, version)) in changes.into_iter().enumerate() {
        match change {
            "rules replaced" => repos
                .schedules
                .replace_rules(
                    house.id,
                    &[rule(Weekday::Monday, (9, 0), (17, 0))],
                    micros(now()),
                )
                .await
                .unwrap(),
            "time off added" => repos.schedules.add_time_off(&off).await.unwrap(),
            "time off removed" => assert!(
                repos
                    .schedules
                    .remove_time_off(house.id, off.id, micros(now()))
                    .await
                    .unwrap()
            ),
            _ => repos
                .schedules
                .save_profile(house.id, &profile_update(&[], None, 30), micros(now()))
                .await
                .unwrap(),
        }
        assert_eq!(current_version(&repos, house.id).await, version, "{change}");
        let minutes = 60 * (i64::try_from(n).unwrap() + 1);
        let attempt = new_appointment(house.id, ada, span(day, minutes, minutes + 30), &desk);
        let stale = try_book(&repos, &attempt, &desk, version - 1).await;
        assert!(
            matches!(stale, Err(BookError::ScheduleChanged)),
            "{change}: {stale:?}"
        );
        assert_eq!(repos.appointments.get(attempt.id).await.unwrap(), None);
        let moved = reschedule(
            &repos,
            &first,
            first.interval(),
            span(day, minutes, minutes + 30),
            version - 1,
            &desk,
        )
        .await;
        assert!(
            matches!(moved, Err(BookError::ScheduleChanged)),
            "{change}: {moved:?}"
        );
        assert_eq!(get(&repos, first.id).await.interval(), first.interval());
        try_book(&repos, &attempt, &desk, version).await.unwrap();
    }
    // Nothing refused left a trace: one booked entry per stored appointment.
    assert_eq!(appointments_of(&repos, house.id).await.len(), 5);
    assert_eq!(repos.appointments.history(first.id).await.unwrap().len(), 1);
    assert_eq!(repos.notifications.last_id(house.id).await.unwrap(), 5);
}

// ---- Status changes and reschedules ----------------------------------------------------------

async fn a_status_change_applies_only_from_the_status_read_and_ends_the_membership_when_told(
    repos: Repositories,
) {
    use AppointmentStatus as S;
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;

    let checked_in = status_update(&repos, &first, S::Booked, S::CheckedIn, &desk, None).await;
    assert!(checked_in.is_ok(), "{checked_in:?}");
    let stale = status_update(&repos, &first, S::Booked, S::Cancelled, &desk, None).await;
    assert!(matches!(stale, Err(BookError::Stale)), "{stale:?}");
    let missing = StatusUpdate {
        id: AppointmentId::generate(),
        from: S::Booked,
        to: S::CheckedIn,
        reason: None,
        at: micros(now()),
        actor_id: desk.id,
        care_team_until: None,
        jobs: JobChanges::default(),
    };
    let missing = repos
        .appointments
        .change_status(
            &missing,
            &appointment_audit(&desk, ada, AuditAction::AppointmentStatus),
            &[],
        )
        .await;
    assert!(matches!(missing, Err(BookError::Stale)), "{missing:?}");
    assert_eq!(repos.notifications.last_id(house.id).await.unwrap(), 2);

    let until = micros(now()) + SignedDuration::from_hours(24 * 30);
    let at = micros(now());
    let update = StatusUpdate {
        id: first.id,
        from: S::CheckedIn,
        to: S::Cancelled,
        reason: Some(text("Feeling better")),
        at,
        actor_id: house.id,
        care_team_until: Some(until),
        jobs: JobChanges::default(),
    };
    let stored = repos
        .appointments
        .change_status(
            &update,
            &appointment_audit(&house, ada, AuditAction::AppointmentStatus),
            &[notice(&first, NotificationKind::AppointmentCancelled)],
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kind, NotificationKind::AppointmentCancelled);
    assert_eq!(stored[0].id, 3);

    let cancelled = get(&repos, first.id).await;
    assert_eq!(cancelled.status, S::Cancelled);
    assert_eq!(cancelled.cancel_reason, Some(text("Feeling better")));
    assert_eq!(cancelled.updated_at, at);
    assert_eq!(cancelled.start, first.start);

    let team = repos.care_teams.list(ada).await.unwrap();
    assert_eq!(team.len(), 1);
    assert_eq!(team[0].appointment_id, Some(first.id));
    assert_eq!(team[0].ended_at, Some(until));
    assert_eq!(team[0].ended_by, Some(house.id));

    let history = repos.appointments.history(first.id).await.unwrap();
    let changes: Vec<_> = history.iter().map(|h| (h.change, h.status)).collect();
    assert_eq!(
        changes,
        vec![
            (HistoryChange::Booked, S::Booked),
            (HistoryChange::Status, S::CheckedIn),
            (HistoryChange::Status, S::Cancelled),
        ]
    );
    assert_eq!(history[2].reason, Some(text("Feeling better")));
    assert_eq!(history[2].actor_id, house.id);
    assert_eq!(history[2].at, at);
    assert_eq!((history[2].start, history[2].end), (first.start, first.end));

    // A change without `care_team_until` leaves the membership as it is.
    let second = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    status_update(&repos, &second, S::Booked, S::CheckedIn, &desk, None)
        .await
        .unwrap();
    let team = repos.care_teams.list(ada).await.unwrap();
    let opened = team
        .iter()
        .find(|m| m.appointment_id == Some(second.id))
        .unwrap();
    assert_eq!(opened.ended_at, None);
}

async fn of_concurrent_status_changes_of_one_appointment_exactly_one_applies(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    let targets = [
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];
    let barrier = Arc::new(Barrier::new(12));
    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let repos = repos.clone();
            let barrier = Arc::clone(&barrier);
            let desk = desk.clone();
            let first = first.clone();
            let to = targets[n % targets.len()];
            tokio::spawn(async move {
                barrier.wait().await;
                status_update(&repos, &first, AppointmentStatus::Booked, to, &desk, None)
                    .await
                    .map(|_| to)
            })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(to) => applied.push(to),
            Err(BookError::Stale) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(applied.len(), 1);
    assert_eq!(get(&repos, first.id).await.status, applied[0]);
    assert_eq!(repos.appointments.history(first.id).await.unwrap().len(), 2);
}

async fn a_reschedule_applies_only_to_the_time_read_and_conflicts_exclude_the_appointment_itself(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let day = base();
    let first = book(&repos, house.id, ada, span(day, 60, 120), &desk).await;
    let other = book(&repos, house.id, bob, span(day, 180, 240), &desk).await;

    // Half over its own old time: only itself is in the way, which does not count.
    let moved_to = span(day, 90, 150);
    let stored = reschedule(&repos, &first, first.interval(), moved_to, 0, &desk)
        .await
        .unwrap();
    assert_eq!(stored[0].kind, NotificationKind::AppointmentRescheduled);
    let moved = get(&repos, first.id).await;
    assert_eq!(moved.interval(), moved_to);
    assert_eq!(moved.status, AppointmentStatus::Booked);

    // The time as first read is gone: stale.
    let stale = reschedule(&repos, &first, first.interval(), span(day, 0, 30), 0, &desk).await;
    assert!(matches!(stale, Err(BookError::Stale)), "{stale:?}");

    // Into the other appointment: the conflict is listed, nothing changes.
    let refused = reschedule(&repos, &first, moved_to, span(day, 150, 210), 0, &desk).await;
    assert_eq!(
        conflicts_of(refused),
        vec![conflict(&other, ConflictWith::Doctor)]
    );
    assert_eq!(get(&repos, first.id).await.interval(), moved_to);

    // Only a booked appointment moves.
    status_update(
        &repos,
        &other,
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        &desk,
        None,
    )
    .await
    .unwrap();
    let not_booked = reschedule(
        &repos,
        &other,
        other.interval(),
        span(day, 300, 360),
        0,
        &desk,
    )
    .await;
    assert!(
        matches!(not_booked, Err(BookError::Stale)),
        "{not_booked:?}"
    );
    let missing = Appointment {
        id: AppointmentId::generate(),
        ..first.clone()
    };
    let missing = reschedule(&repos, &missing, moved_to, span(day, 300, 360), 0, &desk).await;
    assert!(matches!(missing, Err(BookError::Stale)), "{missing:?}");

    // Of concurrent moves of one appointment from one time, exactly one applies.
    let barrier = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8_i64)
        .map(|n| {
            let repos = repos.clone();
            let barrier = Arc::clone(&barrier);
            let desk = desk.clone();
            let first = first.clone();
            let to = span(day, 400 + n * 60, 430 + n * 60);
            tokio::spawn(async move {
                barrier.wait().await;
                reschedule(&repos, &first, moved_to, to, 0, &desk)
                    .await
                    .map(|_| to)
            })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(to) => applied.push(to),
            Err(BookError::Stale) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(applied.len(), 1);
    assert_eq!(get(&repos, first.id).await.interval(), applied[0]);

    let history = repos.appointments.history(first.id).await.unwrap();
    let times: Vec<_> = history
        .iter()
        .map(|h| (h.change, Interval::new(h.start, h.end).unwrap()))
        .collect();
    assert_eq!(
        times,
        vec![
            (HistoryChange::Booked, first.interval()),
            (HistoryChange::Rescheduled, moved_to),
            (HistoryChange::Rescheduled, applied[0]),
        ]
    );
}

async fn the_history_lists_every_change_oldest_first_with_the_actors_names(repos: Repositories) {
    use AppointmentStatus as S;
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    let second = book(&repos, house.id, ada, span(base(), 120, 150), &desk).await;
    status_update(&repos, &first, S::Booked, S::CheckedIn, &desk, None)
        .await
        .unwrap();
    reschedule(
        &repos,
        &second,
        second.interval(),
        span(base(), 180, 210),
        0,
        &desk,
    )
    .await
    .unwrap();
    status_update(&repos, &first, S::CheckedIn, S::InProgress, &house, None)
        .await
        .unwrap();
    status_update(&repos, &first, S::InProgress, S::Completed, &house, None)
        .await
        .unwrap();

    let history = repos.appointments.history(first.id).await.unwrap();
    let entries: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h.change,
                h.status,
                h.actor_id,
                h.actor_name.clone(),
                h.reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (
                HistoryChange::Booked,
                S::Booked,
                desk.id,
                Some(desk.full_name.clone()),
                None
            ),
            (
                HistoryChange::Status,
                S::CheckedIn,
                desk.id,
                Some(desk.full_name.clone()),
                None
            ),
            (
                HistoryChange::Status,
                S::InProgress,
                house.id,
                Some(house.full_name.clone()),
                None
            ),
            (
                HistoryChange::Status,
                S::Completed,
                house.id,
                Some(house.full_name.clone()),
                None
            ),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        repos.appointments.history(second.id).await.unwrap().len(),
        2
    );
    assert_eq!(
        repos
            .appointments
            .history(AppointmentId::generate())
            .await
            .unwrap(),
        vec![]
    );
}

// ---- Listing and busy times ------------------------------------------------------------------

async fn appointments_are_listed_by_start_filtered_and_page_by_page(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let day = base();
    // Booked out of start order; two start at the same time (ordered by id).
    let late = book(&repos, house.id, ada, span(day, 600, 630), &desk).await;
    let early = book(&repos, house.id, bob, span(day, 60, 90), &desk).await;
    let same_start_a = book(&repos, wilson.id, ada, span(day, 300, 330), &desk).await;
    let same_start_b = book(&repos, house.id, bob, span(day, 300, 360), &desk).await;
    let carl = patient(&repos, &desk, "Carl Gauss").await;
    let cancelled = book(&repos, wilson.id, carl, span(day, 60, 90), &desk).await;
    status_update(
        &repos,
        &cancelled,
        AppointmentStatus::Booked,
        AppointmentStatus::Cancelled,
        &desk,
        None,
    )
    .await
    .unwrap();
    let tomorrow = book(
        &repos,
        wilson.id,
        ada,
        span(day, 1440 + 60, 1440 + 90),
        &desk,
    )
    .await;
    let mut same_start = [same_start_a.id, same_start_b.id];
    same_start.sort();
    let mut early_pair = [early.id, cancelled.id];
    early_pair.sort();

    let everything = [
        early_pair[0],
        early_pair[1],
        same_start[0],
        same_start[1],
        late.id,
        tomorrow.id,
    ];
    for limit in [1, 2, 4, 100] {
        assert_eq!(
            list_all(&repos, AppointmentFilter::default(), limit).await,
            everything,
            "limit {limit}"
        );
    }
    let filter = |f: AppointmentFilter| list_all(&repos, f, 2);
    assert_eq!(
        filter(AppointmentFilter {
            doctor_id: Some(house.id),
            ..AppointmentFilter::default()
        })
        .await,
        vec![early.id, same_start_b.id, late.id]
    );
    assert_eq!(
        filter(AppointmentFilter {
            patient_id: Some(ada),
            ..AppointmentFilter::default()
        })
        .await,
        vec![same_start_a.id, late.id, tomorrow.id]
    );
    assert_eq!(
        filter(AppointmentFilter {
            status: Some(AppointmentStatus::Cancelled),
            ..AppointmentFilter::default()
        })
        .await,
        vec![cancelled.id]
    );
    // Overlapping [90, 330): one ending at 90 and one starting at 330 are out.
    assert_eq!(
        filter(AppointmentFilter {
            from: Some(day + SignedDuration::from_mins(90)),
            to: Some(day + SignedDuration::from_mins(330)),
            ..AppointmentFilter::default()
        })
        .await,
        same_start.to_vec()
    );
    assert_eq!(
        filter(AppointmentFilter {
            from: Some(day + SignedDuration::from_mins(340)),
            ..AppointmentFilter::default()
        })
        .await,
        vec![same_start_b.id, late.id, tomorrow.id]
    );
    assert_eq!(
        filter(AppointmentFilter {
            to: Some(day + SignedDuration::from_mins(61)),
            ..AppointmentFilter::default()
        })
        .await,
        early_pair.to_vec()
    );
    assert_eq!(
        filter(AppointmentFilter {
            doctor_id: Some(wilson.id),
            patient_id: Some(ada),
            from: Some(day),
            to: Some(day + SignedDuration::from_hours(24)),
            status: Some(AppointmentStatus::Booked),
        })
        .await,
        vec![same_start_a.id]
    );
    let page = repos
        .appointments
        .list(&AppointmentFilter::default(), PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(page.next, Some(early_pair[1]));
    assert!(page.items[0].doctor_name.is_some());
    assert!(page.items[0].patient_name.is_some());
}

async fn busy_lists_the_doctors_active_appointments_overlapping_the_range_by_start(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let day = base();
    let touching = book(&repos, house.id, ada, span(day, 0, 60), &desk).await;
    let later = book(&repos, house.id, bob, span(day, 200, 260), &desk).await;
    let straddling = book(&repos, house.id, ada, span(day, 50 + 60, 140), &desk).await;
    let checked_in = book(&repos, house.id, bob, span(day, 90, 110), &desk).await;
    status_update(
        &repos,
        &checked_in,
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        &desk,
        None,
    )
    .await
    .unwrap();
    let cancelled = book(&repos, house.id, ada, span(day, 150, 180), &desk).await;
    status_update(
        &repos,
        &cancelled,
        AppointmentStatus::Booked,
        AppointmentStatus::Cancelled,
        &desk,
        None,
    )
    .await
    .unwrap();
    let carl = patient(&repos, &desk, "Carl Gauss").await;
    book(&repos, wilson.id, carl, span(day, 60, 240), &desk).await;

    let busy = repos
        .appointments
        .busy(
            house.id,
            day + SignedDuration::from_mins(60),
            day + SignedDuration::from_mins(230),
        )
        .await
        .unwrap();
    assert_eq!(
        busy,
        vec![
            checked_in.interval(),
            straddling.interval(),
            later.interval()
        ]
    );
    assert!(!busy.contains(&touching.interval()));
}

// ---- The database guarantee ------------------------------------------------------------------

/// Inserts an appointment with plain SQL, past every repository.
async fn insert_raw(
    database: &Database,
    doctor: UserId,
    patient_id: PatientId,
    by: UserId,
    at: Interval,
    status: AppointmentStatus,
) -> Result<Uuid, sqlx::Error> {
    const SQL: &str = "INSERT INTO appointments (id, doctor_id, patient_id, start_at, end_at, \
         reason, status, cancel_reason, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'raw', $6, $7, $8, $4, $4)";
    let id = Uuid::now_v7();
    let cancel_reason = (status == AppointmentStatus::Cancelled).then_some("raw");
    match database {
        Database::Sqlite(pool) => sqlx::query(SQL)
            .bind(id)
            .bind(doctor.as_uuid())
            .bind(patient_id.as_uuid())
            .bind(unix_micros(at.start))
            .bind(unix_micros(at.end))
            .bind(status.as_str())
            .bind(cancel_reason)
            .bind(by.as_uuid())
            .execute(pool)
            .await
            .map(|_| id),
        Database::Postgres(pool) => sqlx::query(SQL)
            .bind(id)
            .bind(doctor.as_uuid())
            .bind(patient_id.as_uuid())
            .bind(pg_time(at.start))
            .bind(pg_time(at.end))
            .bind(status.as_str())
            .bind(cancel_reason)
            .bind(by.as_uuid())
            .execute(pool)
            .await
            .map(|_| id),
    }
}

/// Runs an update of one appointment with plain SQL: `$1` its id, `$2` and `$3` a time.
async fn update_raw(
    database: &Database,
    sql: &'static str,
    id: Uuid,
    at: Interval,
) -> Result<u64, sqlx::Error> {
    match database {
        Database::Sqlite(pool) => sqlx::query(sql)
            .bind(id)
            .bind(unix_micros(at.start))
            .bind(unix_micros(at.end))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
        Database::Postgres(pool) => sqlx::query(sql)
            .bind(id)
            .bind(pg_time(at.start))
            .bind(pg_time(at.end))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
    }
}

fn unix_micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// `at` as sqlx binds a `timestamptz`.
fn pg_time(at: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(at.as_nanosecond()).unwrap()
}

/// Asserts that `result` is the database refusing an overlap of `calendar` ("doctor" or
/// "patient"): the exclusion constraint on PostgreSQL, the trigger on SQLite.
fn assert_overlap_refused<T: std::fmt::Debug>(
    result: Result<T, sqlx::Error>,
    calendar: &str,
    case: &str,
) {
    let error = result.expect_err(case);
    let db_error = error.as_database_error().expect("a database error");
    match db_error.constraint() {
        Some(name) => {
            assert_eq!(
                name,
                format!("appointments_{calendar}_no_overlap"),
                "{case}"
            );
            assert_eq!(db_error.code().as_deref(), Some("23P01"), "{case}");
        }
        None => assert_eq!(db_error.message(), "appointment overlaps", "{case}"),
    }
}

async fn the_database_itself_refuses_overlapping_active_appointments_whoever_writes(
    database: &Database,
) {
    let repos = database.repositories();
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let day = base();
    let held = book(&repos, house.id, ada, span(day, 60, 120), &desk).await;

    let overlapping = [
        ("equal", span(day, 60, 120)),
        ("contained", span(day, 70, 110)),
        ("straddling its start", span(day, 30, 90)),
        ("straddling its end", span(day, 90, 150)),
        ("containing", span(day, 30, 150)),
    ];
    for status in [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::InProgress,
    ] {
        for (case, at) in overlapping {
            let case = format!("{case}, {status}");
            assert_overlap_refused(
                insert_raw(database, house.id, bob, desk.id, at, status).await,
                "doctor",
                &format!("{case}, same doctor"),
            );
            assert_overlap_refused(
                insert_raw(database, wilson.id, ada, desk.id, at, status).await,
                "patient",
                &format!("{case}, same patient"),
            );
        }
    }
    assert_eq!(appointments_of(&repos, house.id).await, vec![held.id]);
    assert_eq!(appointments_of(&repos, wilson.id).await, vec![]);

    // Touching, inactive, or of neither: accepted.
    let touching = insert_raw(
        database,
        house.id,
        bob,
        desk.id,
        span(day, 120, 180),
        AppointmentStatus::Booked,
    )
    .await
    .unwrap();
    let cancelled = insert_raw(
        database,
        house.id,
        bob,
        desk.id,
        span(day, 60, 120),
        AppointmentStatus::Cancelled,
    )
    .await
    .unwrap();
    insert_raw(
        database,
        house.id,
        bob,
        desk.id,
        span(day, 70, 80),
        AppointmentStatus::Completed,
    )
    .await
    .unwrap();
    let carl = patient(&repos, &desk, "Carl Gauss").await;
    insert_raw(
        database,
        wilson.id,
        carl,
        desk.id,
        span(day, 60, 120),
        AppointmentStatus::Booked,
    )
    .await
    .unwrap();

    // Updates are held to it too: reviving a cancelled appointment over an active one, or
    // moving one onto another.
    assert_overlap_refused(
        update_raw(
            database,
            "UPDATE appointments SET status = 'booked', cancel_reason = NULL \
             WHERE id = $1 AND start_at <> $2 AND end_at <> $3",
            cancelled,
            span(day, 0, 1),
        )
        .await,
        "doctor",
        "reviving a cancelled appointment",
    );
    assert_overlap_refused(
        update_raw(
            database,
            "UPDATE appointments SET start_at = $2, end_at = $3 WHERE id = $1",
            touching,
            span(day, 119, 179),
        )
        .await,
        "doctor",
        "moving onto another",
    );
    assert_eq!(
        update_raw(
            database,
            "UPDATE appointments SET start_at = $2, end_at = $3 WHERE id = $1",
            touching,
            span(day, 121, 181),
        )
        .await
        .unwrap(),
        1,
        "moving within its own time"
    );
}

async fn an_appointments_changes_store_and_cancel_its_reminder_jobs_in_their_transactions(
    repos: Repositories,
) {
    use carehub_domain::jobs::{JobState, NewJob, Task};
    use carehub_domain::scheduling::{AppointmentStatus as S, reminder_jobs};

    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let at = span(base(), 60, 90);
    let mut appointment = new_appointment(house.id, ada, at, &desk);
    let leads = [SignedDuration::from_hours(2), SignedDuration::from_mins(30)];
    let mut with_reminders = booking(&appointment, 0);
    with_reminders.jobs = reminder_jobs(&appointment, &leads, micros(now()));
    assert_eq!(with_reminders.jobs.add.len(), 2);
    repos
        .appointments
        .book(
            &with_reminders,
            &appointment_audit(&desk, ada, AuditAction::AppointmentCreate),
            &[],
        )
        .await
        .unwrap();
    for job in &with_reminders.jobs.add {
        let stored = repos
            .jobs
            .get(job.id)
            .await
            .unwrap()
            .expect("stored with the booking");
        assert_eq!(stored.state, JobState::Scheduled);
    }
    // A job of another appointment, and one already running, are not cancelled.
    let other = NewJob::new(Task::PurgeExpired, micros(now())).unique(format!(
        "appointment.reminder:{}:0:0",
        carehub_domain::scheduling::AppointmentId::generate()
    ));
    repos
        .jobs
        .enqueue(std::slice::from_ref(&other), micros(now()))
        .await
        .unwrap();

    // Moved: the old reminders go, the new ones come, in the move's transaction.
    let to = span(base(), 120, 150);
    let moved_to = new_appointment(house.id, ada, to, &desk);
    appointment.start = to.start;
    appointment.end = to.end;
    let moved_jobs = reminder_jobs(
        &carehub_domain::scheduling::Appointment {
            id: appointment.id,
            ..moved_to
        },
        &leads,
        micros(now()),
    );
    repos
        .appointments
        .reschedule(
            &Reschedule {
                id: appointment.id,
                from: at,
                to,
                schedule_version: 0,
                at: micros(now()),
                actor_id: desk.id,
                jobs: moved_jobs.clone(),
            },
            &appointment_audit(&desk, ada, AuditAction::AppointmentReschedule),
            &[],
        )
        .await
        .unwrap();
    for job in &with_reminders.jobs.add {
        assert_eq!(
            repos.jobs.get(job.id).await.unwrap(),
            None,
            "cancelled by the move"
        );
    }
    for job in &moved_jobs.add {
        assert!(
            repos.jobs.get(job.id).await.unwrap().is_some(),
            "added by the move"
        );
    }

    // Cancelled: the reminders go with it.
    let cancel = StatusUpdate {
        id: appointment.id,
        from: S::Booked,
        to: S::Cancelled,
        reason: Some(text("The patient is away")),
        at: micros(now()),
        actor_id: desk.id,
        care_team_until: None,
        jobs: carehub_domain::scheduling::cancel_reminders(appointment.id),
    };
    repos
        .appointments
        .change_status(
            &cancel,
            &appointment_audit(&desk, ada, AuditAction::AppointmentStatus),
            &[],
        )
        .await
        .unwrap();
    for job in &moved_jobs.add {
        assert_eq!(
            repos.jobs.get(job.id).await.unwrap(),
            None,
            "cancelled with it"
        );
    }
    assert!(
        repos.jobs.get(other.id).await.unwrap().is_some(),
        "another's is kept"
    );
}
