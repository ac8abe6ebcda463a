//! `ScheduleRepository`: doctors' profiles and the directory, availability rules and time off,
//! and the schedule version every change bumps.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::SignedDuration;
use tokio::sync::Barrier;

use carehub_domain::identity::{Role, UserId, UserStatus};
use carehub_domain::kernel::PageRequest;
use carehub_domain::scheduling::{
    AppointmentStatus, BookError, ConflictWith, DoctorProfile, TimeOff, TimeOffError, TimeOffId,
    Weekday,
};
use carehub_infra::Repositories;

use crate::fixtures::scheduling::{
    base, book, conflict, current_version, new_appointment, patient, patients, profile_update,
    rule, secretary, span, status_update, time_off, try_book,
};
use crate::fixtures::{create_user, doctor, micros, now};

contract!(
    a_doctors_profile_reads_back_as_the_defaults_until_saved_then_whole,
    the_directory_lists_active_doctors_by_id_filtered_by_specialization_whatever_its_case,
    rules_and_time_off_read_back_and_every_schedule_change_bumps_the_version,
    time_off_over_booked_appointments_is_refused_listing_them_and_writes_nothing,
    time_off_and_concurrent_bookings_of_its_time_never_both_succeed,
);

// ---- Profiles and the directory --------------------------------------------------------------

async fn a_doctors_profile_reads_back_as_the_defaults_until_saved_then_whole(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let suspended = create_user(&repos, "dr.gone", Role::Doctor, UserStatus::Suspended).await;
    let desk = secretary(&repos).await;

    assert_eq!(
        repos.schedules.profile(house.id).await.unwrap(),
        Some(DoctorProfile::unset(house.id, house.full_name.clone()))
    );
    assert_eq!(repos.schedules.profile(suspended.id).await.unwrap(), None);
    assert_eq!(repos.schedules.profile(desk.id).await.unwrap(), None);
    assert_eq!(
        repos.schedules.profile(UserId::generate()).await.unwrap(),
        None
    );

    let at = micros(now());
    let update = profile_update(
        &["Internal Medicine", "Diagnostics", "Nephrology"],
        Some("Twenty years of\n\tdiagnostics."),
        45,
    );
    repos
        .schedules
        .save_profile(house.id, &update, at)
        .await
        .unwrap();
    let expected = DoctorProfile {
        doctor_id: house.id,
        full_name: house.full_name.clone(),
        specializations: update.specializations.clone(),
        bio: update.bio.clone(),
        appointment_minutes: 45,
        updated_at: Some(at),
    };
    assert_eq!(
        repos.schedules.profile(house.id).await.unwrap(),
        Some(expected)
    );
    assert_eq!(current_version(&repos, house.id).await, 1);
    let schedule = repos
        .schedules
        .schedule(house.id, base(), base() + SignedDuration::from_hours(24))
        .await
        .unwrap();
    assert_eq!(schedule.appointment_minutes, 45);

    // A second save replaces the whole profile.
    let later = at + SignedDuration::from_mins(5);
    let update = profile_update(&["Nephrology"], None, 20);
    repos
        .schedules
        .save_profile(house.id, &update, later)
        .await
        .unwrap();
    let profile = repos.schedules.profile(house.id).await.unwrap().unwrap();
    assert_eq!(profile.specializations, update.specializations);
    assert_eq!(profile.bio, None);
    assert_eq!(profile.appointment_minutes, 20);
    assert_eq!(profile.updated_at, Some(later));
    assert_eq!(current_version(&repos, house.id).await, 2);
}

async fn the_directory_lists_active_doctors_by_id_filtered_by_specialization_whatever_its_case(
    repos: Repositories,
) {
    let mut doctors = Vec::new();
    for name in ["dr.adams", "dr.baker", "dr.clark", "dr.davis"] {
        doctors.push(doctor(&repos, name).await);
    }
    create_user(&repos, "dr.gone", Role::Doctor, UserStatus::Suspended).await;
    create_user(&repos, "dr.new", Role::Doctor, UserStatus::Pending).await;
    let desk = secretary(&repos).await;
    let at = micros(now());
    let specializations: [&[&str]; 4] = [
        &["Cardiology", "Internal Medicine"],
        &["Pédiatrie", "CARDIOLOGY"],
        &[],
        &["Dermatology"],
    ];
    for (doctor, names) in doctors.iter().zip(specializations) {
        if !names.is_empty() {
            repos
                .schedules
                .save_profile(doctor.id, &profile_update(names, Some("Bio"), 30), at)
                .await
                .unwrap();
        }
    }
    let mut expected = Vec::new();
    for doctor in &doctors {
        expected.push(repos.schedules.profile(doctor.id).await.unwrap().unwrap());
    }
    expected.sort_by_key(|p| p.doctor_id);
    // A secretary saving a profile under their id does not make them a doctor.
    repos
        .schedules
        .save_profile(desk.id, &profile_update(&["Cardiology"], None, 30), at)
        .await
        .unwrap();

    let all = repos
        .schedules
        .directory(None, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(all.items, expected);
    assert_eq!(all.next, None);
    assert!(all.items.contains(&DoctorProfile::unset(
        doctors[2].id,
        doctors[2].full_name.clone()
    )));

    let ids = |profiles: &[DoctorProfile]| profiles.iter().map(|p| p.doctor_id).collect::<Vec<_>>();
    let by = |filter: &str| {
        let repos = repos.clone();
        let filter = filter.to_owned();
        async move {
            repos
                .schedules
                .directory(Some(filter), PageRequest::first(100))
                .await
                .unwrap()
                .items
        }
    };
    let mut cardiologists = vec![doctors[0].id, doctors[1].id];
    cardiologists.sort();
    assert_eq!(ids(&by("cardiology").await), cardiologists);
    assert_eq!(ids(&by("CarDioLogy").await), cardiologists);
    assert_eq!(ids(&by("PÉDIATRIE").await), vec![doctors[1].id]);
    assert_eq!(ids(&by("internal medicine").await), vec![doctors[0].id]);
    assert!(by("cardio").await.is_empty());
    assert!(by("%").await.is_empty());

    // Page by page, each doctor once, in id order, with whole profiles.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = repos
            .schedules
            .directory(None, PageRequest::new(Some(1), after).unwrap())
            .await
            .unwrap();
        seen.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    let first_cardiologist = repos
        .schedules
        .directory(Some("cardiology".into()), PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(ids(&first_cardiologist.items), vec![cardiologists[0]]);
    assert_eq!(first_cardiologist.next, Some(cardiologists[0]));
}

// ---- Rules, time off and the schedule version -------------------------------------------------

async fn rules_and_time_off_read_back_and_every_schedule_change_bumps_the_version(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let day = base();
    let whole_day = |repos: Repositories, doctor: UserId| async move {
        repos
            .schedules
            .schedule(doctor, day, day + SignedDuration::from_hours(24))
            .await
            .unwrap()
    };

    let empty = whole_day(repos.clone(), house.id).await;
    assert_eq!(empty.version, 0);
    assert_eq!(empty.rules, Vec::new());
    assert_eq!(empty.time_off, Vec::new());
    assert_eq!(empty.appointment_minutes, 30);

    let rules = vec![
        rule(Weekday::Monday, (9, 0), (12, 30)),
        rule(Weekday::Monday, (13, 30), (17, 0)),
        rule(Weekday::Wednesday, (0, 0), (23, 59)),
        rule(Weekday::Sunday, (8, 15), (9, 45)),
    ];
    // Stored in any order, read back by weekday and start.
    let shuffled = vec![rules[3], rules[1], rules[2], rules[0]];
    repos
        .schedules
        .replace_rules(house.id, &shuffled, micros(now()))
        .await
        .unwrap();
    let schedule = whole_day(repos.clone(), house.id).await;
    assert_eq!(schedule.rules, rules);
    assert_eq!(schedule.version, 1);
    assert_eq!(whole_day(repos.clone(), wilson.id).await.version, 0);

    let replacement = vec![rule(Weekday::Friday, (10, 0), (11, 0))];
    repos
        .schedules
        .replace_rules(house.id, &replacement, micros(now()))
        .await
        .unwrap();
    let schedule = whole_day(repos.clone(), house.id).await;
    assert_eq!(schedule.rules, replacement);
    assert_eq!(schedule.version, 2);

    // Time off: the schedule holds what overlaps the range asked; upcoming what ends later.
    let before = time_off(house.id, span(day, -120, 0), &house);
    let inside = time_off(house.id, span(day, 60, 120), &house);
    let straddling = TimeOff {
        reason: None,
        ..time_off(house.id, span(day, 23 * 60, 26 * 60), &wilson)
    };
    let later = time_off(house.id, span(day, 48 * 60, 49 * 60), &house);
    let others = time_off(wilson.id, span(day, 60, 120), &wilson);
    for off in [&later, &inside, &before, &straddling] {
        repos.schedules.add_time_off(off).await.unwrap();
    }
    repos.schedules.add_time_off(&others).await.unwrap();
    let schedule = whole_day(repos.clone(), house.id).await;
    assert_eq!(schedule.time_off, vec![inside.clone(), straddling.clone()]);
    assert_eq!(schedule.version, 6);
    assert_eq!(
        repos
            .schedules
            .upcoming_time_off(house.id, day + SignedDuration::from_mins(90))
            .await
            .unwrap(),
        vec![inside.clone(), straddling.clone(), later.clone()]
    );

    // Removing: only the doctor's own; each removal bumps the version, a miss does not.
    assert!(
        !repos
            .schedules
            .remove_time_off(house.id, others.id, micros(now()))
            .await
            .unwrap()
    );
    assert!(
        !repos
            .schedules
            .remove_time_off(house.id, TimeOffId::generate(), micros(now()))
            .await
            .unwrap()
    );
    assert_eq!(whole_day(repos.clone(), house.id).await.version, 6);
    assert!(
        repos
            .schedules
            .remove_time_off(house.id, inside.id, micros(now()))
            .await
            .unwrap()
    );
    let schedule = whole_day(repos.clone(), house.id).await;
    assert_eq!(schedule.time_off, vec![straddling.clone()]);
    assert_eq!(schedule.version, 7);
    assert_eq!(
        repos
            .schedules
            .upcoming_time_off(wilson.id, day)
            .await
            .unwrap(),
        vec![others]
    );
}

async fn time_off_over_booked_appointments_is_refused_listing_them_and_writes_nothing(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let bob = patient(&repos, &desk, "Bob Babbage").await;
    let day = base();
    let first = book(&repos, house.id, ada, span(day, 60, 120), &desk).await;
    let second = book(&repos, house.id, bob, span(day, 180, 240), &desk).await;
    let checked_in = book(&repos, house.id, ada, span(day, 300, 330), &desk).await;
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
    let cancelled = book(&repos, house.id, bob, span(day, 130, 170), &desk).await;
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
    book(&repos, wilson.id, bob, span(day, 120, 180), &desk).await;
    let version = current_version(&repos, house.id).await;

    let refused = repos
        .schedules
        .add_time_off(&time_off(house.id, span(day, 90, 310), &house))
        .await;
    match refused {
        Err(TimeOffError::Conflicts(conflicts)) => assert_eq!(
            conflicts,
            vec![
                conflict(&first, ConflictWith::Doctor),
                conflict(&second, ConflictWith::Doctor),
                conflict(&checked_in, ConflictWith::Doctor),
            ]
        ),
        other => panic!("expected conflicts, got {other:?}"),
    }
    assert_eq!(current_version(&repos, house.id).await, version);
    assert_eq!(
        repos
            .schedules
            .upcoming_time_off(house.id, day)
            .await
            .unwrap(),
        vec![]
    );

    // Between the booked appointments (touching them, over the cancelled one): it fits.
    let between = time_off(house.id, span(day, 120, 180), &house);
    repos.schedules.add_time_off(&between).await.unwrap();
    assert_eq!(current_version(&repos, house.id).await, version + 1);
    assert_eq!(
        repos
            .schedules
            .upcoming_time_off(house.id, day)
            .await
            .unwrap(),
        vec![between]
    );
}

async fn time_off_and_concurrent_bookings_of_its_time_never_both_succeed(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let people = patients(&repos, &desk, 12).await;
    let day = base();
    for round in 0..8_i64 {
        let start = round * 12 * 30;
        let version = current_version(&repos, house.id).await;
        let off = time_off(house.id, span(day, start, start + 12 * 30), &house);
        let barrier = Arc::new(Barrier::new(people.len() + 1));
        let adding = {
            let repos = repos.clone();
            let barrier = Arc::clone(&barrier);
            let off = off.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                repos.schedules.add_time_off(&off).await
            })
        };
        let bookings: Vec<_> = people
            .iter()
            .zip(0_i64..)
            .map(|(patient_id, n)| {
                let repos = repos.clone();
                let barrier = Arc::clone(&barrier);
                let desk = desk.clone();
                let at = span(day, start + n * 30, start + n * 30 + 30);
                let appointment = new_appointment(house.id, *patient_id, at, &desk);
                tokio::spawn(async move {
                    barrier.wait().await;
                    try_book(&repos, &appointment, &desk, version)
                        .await
                        .map(|_| appointment.id)
                })
            })
            .collect();
        let added = adding.await.unwrap();
        let mut booked = HashSet::new();
        for task in bookings {
            match task.await.unwrap() {
                Ok(id) => {
                    booked.insert(id);
                }
                Err(BookError::ScheduleChanged) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        match added {
            // Every booking that committed first is listed; every later one saw the new version.
            Ok(()) => assert!(booked.is_empty(), "round {round}: time off over {booked:?}"),
            Err(TimeOffError::Conflicts(conflicts)) => {
                assert!(!conflicts.is_empty());
                for c in conflicts {
                    assert!(booked.contains(&c.appointment_id), "round {round}");
                }
            }
            Err(other) => panic!("round {round}: {other:?}"),
        }
        // Whatever the interleaving, no stored time off has an active appointment in it.
        for stored in repos
            .schedules
            .upcoming_time_off(house.id, day)
            .await
            .unwrap()
        {
            let busy = repos
                .appointments
                .busy(house.id, stored.start, stored.end)
                .await
                .unwrap();
            assert_eq!(busy, vec![], "round {round}");
        }
    }
}
