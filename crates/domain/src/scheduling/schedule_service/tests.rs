//! Unit tests of the doctors' use cases (directory, profiles, availability, time off, free
//! slots), with the mockall doubles of `test_support`: who may change a doctor's profile or
//! schedule (refused before any port is reached), what is stored, that nothing here is audited,
//! and that free slots are computed in the clinic's time zone from what the ports return. The
//! slot arithmetic itself is tested in `schedule/tests.rs`.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use mockall::predicate::eq;

use super::{Availability, ScheduleError};
use crate::access::Actor;
use crate::identity::{Role, User, UserId, UserStatus};
use crate::kernel::{Page, PageRequest, Text};
use crate::scheduling::{
    AppointmentId, AvailabilityRule, Conflict, ConflictWith, DoctorProfile, Interval, NewTimeOff,
    ProfileUpdate, Schedule, Specialization, TimeOff, TimeOffError, TimeOffId, TimeOffSpanError,
    Weekday, check_time_off_span,
};
use crate::test_support::*;

fn alice() -> User {
    named_user("Alice Adams", Role::Doctor, UserStatus::Active)
}

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").expect("the bundled tzdb knows Paris")
}

fn text(raw: &str) -> Text {
    Text::multiline(raw, 500).expect("valid text")
}

fn hm(hour: i8, minute: i8) -> jiff::civil::Time {
    jiff::civil::time(hour, minute, 0, 0)
}

fn rule(weekday: Weekday, start: (i8, i8), end: (i8, i8)) -> AvailabilityRule {
    AvailabilityRule::new(weekday, hm(start.0, start.1), hm(end.0, end.1)).expect("valid rule")
}

/// Who may edit Alice's schedule, and whether: Alice herself, a secretary, an administrator
/// yes; another doctor, a patient, laboratory staff no.
fn schedule_editors(alice: &User) -> Vec<(Actor, bool)> {
    vec![
        (actor_for(alice), true),
        (actor(Role::Secretary), true),
        (actor(Role::Admin), true),
        (actor(Role::Doctor), false),
        (actor(Role::Patient), false),
        (actor(Role::Laboratory), false),
        // Someone else's account that happens to carry her id but not her role.
        (super::Actor::unchecked(alice.id, Role::Patient), false),
    ]
}

/// Who may edit Alice's profile: Alice herself and an administrator.
fn profile_editors(alice: &User) -> Vec<(Actor, bool)> {
    vec![
        (actor_for(alice), true),
        (actor(Role::Admin), true),
        (actor(Role::Secretary), false),
        (actor(Role::Doctor), false),
        (actor(Role::Patient), false),
        (actor(Role::Laboratory), false),
        (super::Actor::unchecked(alice.id, Role::Secretary), false),
    ]
}

/// Alice's profile is looked up (once per call), and is as never set.
fn profile_found(mocks: &mut Mocks, doctor: &User) {
    let profile = DoctorProfile::unset(doctor.id, doctor.full_name.clone());
    mocks
        .schedules
        .expect_profile()
        .with(eq(doctor.id))
        .returning(move |_| Ok(Some(profile.clone())));
}

fn no_writes_to_schedules(mocks: &mut Mocks) {
    mocks.schedules.expect_save_profile().never();
    mocks.schedules.expect_replace_rules().never();
    mocks.schedules.expect_add_time_off().never();
    mocks.schedules.expect_remove_time_off().never();
}

fn no_schedule_port(mocks: &mut Mocks) {
    mocks.schedules.expect_profile().never();
    mocks.schedules.expect_save_profile().never();
    mocks.schedules.expect_schedule().never();
    mocks.schedules.expect_replace_rules().never();
    mocks.schedules.expect_add_time_off().never();
    mocks.schedules.expect_remove_time_off().never();
    mocks.schedules.expect_upcoming_time_off().never();
    mocks.appointments.expect_busy().never();
}

fn profile_update() -> ProfileUpdate {
    ProfileUpdate {
        specializations: vec![
            Specialization::parse("Cardiology").expect("valid"),
            Specialization::parse("Sports medicine").expect("valid"),
        ],
        bio: Some(text("Twenty years at the Hôtel-Dieu.")),
        appointment_minutes: 20,
    }
}

fn new_time_off(start: Timestamp, end: Timestamp) -> NewTimeOff {
    NewTimeOff {
        start,
        end,
        reason: Some(text("Conference in Lyon")),
    }
}

// ---------------------------------------------------------------------------------------------
// The directory and profiles

#[tokio::test]
async fn every_role_reads_the_directory_by_specialization_case_insensitively_unaudited() {
    let cases = [
        (Some("  Cardiology "), Some("cardiology")),
        (Some("   "), None),
        (None, None),
    ];
    for role in Role::ALL {
        for (asked, expected) in cases {
            let profile = DoctorProfile::unset(alice().id, alice().full_name);
            let answer = Page {
                items: vec![profile],
                next: None,
            };
            let page = PageRequest::first(20);
            let mut mocks = Mocks::new();
            let returned = answer.clone();
            mocks
                .schedules
                .expect_directory()
                .withf(move |s, p| s.as_deref() == expected && *p == page)
                .times(1)
                .returning(move |_, _| Ok(returned.clone()));
            mocks.nothing_audited();

            let found = mocks
                .schedule_service()
                .doctor_directory(&actor(role), asked, page)
                .await
                .expect("listed");

            assert_eq!(found, answer, "{role} {asked:?}");
        }
    }
}

#[tokio::test]
async fn a_doctors_profile_is_read_by_anyone_and_an_unknown_doctor_is_not_found() {
    let doctor = alice();
    let mut mocks = Mocks::new();
    profile_found(&mut mocks, &doctor);
    mocks.nothing_audited();
    let profile = mocks
        .schedule_service()
        .doctor_profile(&actor(Role::Patient), doctor.id)
        .await
        .expect("found");
    assert_eq!(profile.doctor_id, doctor.id);

    let mut mocks = Mocks::new();
    mocks
        .schedules
        .expect_profile()
        .times(1)
        .returning(|_| Ok(None));
    let result = mocks
        .schedule_service()
        .doctor_profile(&actor(Role::Secretary), UserId::generate())
        .await;
    assert!(
        matches!(result, Err(ScheduleError::DoctorNotFound)),
        "{result:?}"
    );
}

#[test]
fn only_the_doctor_themself_or_an_administrator_edits_a_profile() {
    let doctor = alice();
    let service = Mocks::new().schedule_service();
    for (caller, allowed) in profile_editors(&doctor) {
        let result = service.check_profile_editor(&caller, doctor.id);
        if allowed {
            assert!(result.is_ok(), "{caller:?}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(ScheduleError::Forbidden)),
                "{caller:?}: {result:?}"
            );
        }
    }
}

#[test]
fn the_doctor_themself_a_secretary_or_an_administrator_edits_a_schedule() {
    let doctor = alice();
    let service = Mocks::new().schedule_service();
    for (caller, allowed) in schedule_editors(&doctor) {
        let result = service.check_schedule_editor(&caller, doctor.id);
        if allowed {
            assert!(result.is_ok(), "{caller:?}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(ScheduleError::Forbidden)),
                "{caller:?}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_refused_editor_reaches_no_port() {
    let doctor = alice();
    for (caller, allowed) in profile_editors(&doctor) {
        if allowed {
            continue;
        }
        let mut mocks = Mocks::new();
        no_schedule_port(&mut mocks);
        mocks.nothing_audited();
        let result = mocks
            .schedule_service()
            .update_doctor_profile(&caller, doctor.id, profile_update())
            .await;
        assert!(
            matches!(result, Err(ScheduleError::Forbidden)),
            "{caller:?}: {result:?}"
        );
    }
    for (caller, allowed) in schedule_editors(&doctor) {
        if allowed {
            continue;
        }
        let refusing = || {
            let mut mocks = Mocks::new();
            no_schedule_port(&mut mocks);
            mocks.nothing_audited();
            mocks.schedule_service()
        };
        let result = refusing()
            .replace_availability(
                &caller,
                doctor.id,
                vec![rule(Weekday::Monday, (9, 0), (12, 0))],
            )
            .await;
        assert!(
            matches!(result, Err(ScheduleError::Forbidden)),
            "{caller:?}: {result:?}"
        );
        let result = refusing()
            .add_time_off(
                &caller,
                doctor.id,
                new_time_off(
                    NOW + SignedDuration::from_hours(24),
                    NOW + SignedDuration::from_hours(24 * 2),
                ),
            )
            .await;
        assert!(
            matches!(result, Err(ScheduleError::Forbidden)),
            "{caller:?}: {result:?}"
        );
        let result = refusing()
            .remove_time_off(&caller, doctor.id, TimeOffId::generate())
            .await;
        assert!(
            matches!(result, Err(ScheduleError::Forbidden)),
            "{caller:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_profile_is_saved_whole_and_returned_as_saved() {
    let doctor = alice();
    for caller in [actor_for(&doctor), actor(Role::Admin)] {
        let expected = profile_update();
        let mut mocks = Mocks::new();
        profile_found(&mut mocks, &doctor);
        let saved = expected.clone();
        let doctor_id = doctor.id;
        mocks
            .schedules
            .expect_save_profile()
            .withf(move |d, update, at| *d == doctor_id && *update == saved && *at == NOW)
            .times(1)
            .returning(|_, _, _| Ok(()));
        mocks.nothing_audited();

        let profile = mocks
            .schedule_service()
            .update_doctor_profile(&caller, doctor.id, profile_update())
            .await
            .expect("saved");

        assert_eq!(
            profile,
            DoctorProfile {
                doctor_id: doctor.id,
                full_name: doctor.full_name.clone(),
                specializations: expected.specializations,
                bio: expected.bio,
                appointment_minutes: 20,
                updated_at: Some(NOW),
            },
            "{caller:?}"
        );
    }
}

#[tokio::test]
async fn the_profile_of_an_unknown_doctor_is_not_saved() {
    let mut mocks = Mocks::new();
    mocks.schedules.expect_profile().returning(|_| Ok(None));
    mocks.schedules.expect_save_profile().never();
    let result = mocks
        .schedule_service()
        .update_doctor_profile(&actor(Role::Admin), UserId::generate(), profile_update())
        .await;
    assert!(
        matches!(result, Err(ScheduleError::DoctorNotFound)),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_unknown_doctor_is_the_refusal_given_before_an_invalid_change_is_answered() {
    let doctor = alice();
    for role in Role::ALL {
        let mut mocks = Mocks::new();
        profile_found(&mut mocks, &doctor);
        no_writes_to_schedules(&mut mocks);
        mocks.nothing_audited();
        let result = mocks
            .schedule_service()
            .check_doctor(&actor(role), doctor.id)
            .await;
        assert!(result.is_ok(), "{role}: {result:?}");

        let mut mocks = Mocks::new();
        mocks.schedules.expect_profile().returning(|_| Ok(None));
        no_writes_to_schedules(&mut mocks);
        mocks.nothing_audited();
        let result = mocks
            .schedule_service()
            .check_doctor(&actor(role), UserId::generate())
            .await;
        assert!(
            matches!(result, Err(ScheduleError::DoctorNotFound)),
            "{role}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Availability and time off

#[tokio::test]
async fn availability_shows_time_off_reasons_only_to_those_who_edit_the_schedule() {
    let doctor = alice();
    for (caller, editor) in schedule_editors(&doctor) {
        let rules = vec![
            rule(Weekday::Monday, (9, 0), (12, 0)),
            rule(Weekday::Monday, (14, 0), (17, 0)),
        ];
        let off = TimeOff {
            id: TimeOffId::generate(),
            doctor_id: doctor.id,
            start: NOW + SignedDuration::from_hours(24 * 3),
            end: NOW + SignedDuration::from_hours(24 * 5),
            reason: Some(text("Surgery of my own")),
            created_by: doctor.id,
            created_at: NOW - SignedDuration::from_hours(24),
        };
        let mut mocks = Mocks::new();
        profile_found(&mut mocks, &doctor);
        let schedule = Schedule {
            doctor_id: doctor.id,
            appointment_minutes: 30,
            rules: rules.clone(),
            time_off: Vec::new(),
            version: 3,
        };
        mocks
            .schedules
            .expect_schedule()
            .returning(move |_, _, _| Ok(schedule.clone()));
        let upcoming = vec![off.clone()];
        mocks
            .schedules
            .expect_upcoming_time_off()
            .with(eq(doctor.id), eq(NOW))
            .times(1)
            .returning(move |_, _| Ok(upcoming.clone()));
        mocks.nothing_audited();

        let availability = mocks
            .schedule_service()
            .availability(&caller, doctor.id)
            .await
            .expect("read");

        let shown = TimeOff {
            reason: if editor { off.reason.clone() } else { None },
            ..off
        };
        assert_eq!(
            availability,
            Availability {
                rules,
                time_off: vec![shown]
            },
            "{caller:?}"
        );
    }
}

#[tokio::test]
async fn the_availability_of_an_unknown_doctor_is_not_found() {
    let mut mocks = Mocks::new();
    mocks.schedules.expect_profile().returning(|_| Ok(None));
    mocks.schedules.expect_schedule().never();
    mocks.schedules.expect_upcoming_time_off().never();
    let result = mocks
        .schedule_service()
        .availability(&actor(Role::Patient), UserId::generate())
        .await;
    assert!(
        matches!(result, Err(ScheduleError::DoctorNotFound)),
        "{result:?}"
    );
}

#[tokio::test]
async fn new_availability_is_stored_sorted_and_returned() {
    let doctor = alice();
    for caller in [
        actor_for(&doctor),
        actor(Role::Secretary),
        actor(Role::Admin),
    ] {
        let expected = vec![
            rule(Weekday::Monday, (9, 0), (12, 0)),
            rule(Weekday::Monday, (13, 0), (17, 30)),
            rule(Weekday::Tuesday, (8, 0), (12, 0)),
        ];
        let mut mocks = Mocks::new();
        profile_found(&mut mocks, &doctor);
        let stored = expected.clone();
        let doctor_id = doctor.id;
        mocks
            .schedules
            .expect_replace_rules()
            .withf(move |d, rules, at| *d == doctor_id && rules == stored.as_slice() && *at == NOW)
            .times(1)
            .returning(|_, _, _| Ok(()));
        mocks.nothing_audited();
        let given = vec![
            rule(Weekday::Tuesday, (8, 0), (12, 0)),
            rule(Weekday::Monday, (13, 0), (17, 30)),
            rule(Weekday::Monday, (9, 0), (12, 0)),
        ];

        let rules = mocks
            .schedule_service()
            .replace_availability(&caller, doctor.id, given)
            .await
            .expect("stored");

        assert_eq!(rules, expected, "{caller:?}");
    }
}

#[tokio::test]
async fn the_availability_of_an_unknown_doctor_is_not_stored() {
    let mut mocks = Mocks::new();
    mocks.schedules.expect_profile().returning(|_| Ok(None));
    mocks.schedules.expect_replace_rules().never();
    let result = mocks
        .schedule_service()
        .replace_availability(
            &actor(Role::Secretary),
            UserId::generate(),
            vec![rule(Weekday::Monday, (9, 0), (12, 0))],
        )
        .await;
    assert!(
        matches!(result, Err(ScheduleError::DoctorNotFound)),
        "{result:?}"
    );
}

#[tokio::test]
async fn time_off_is_attributed_to_whoever_adds_it_and_stored() {
    let doctor = alice();
    for caller in [
        actor_for(&doctor),
        actor(Role::Secretary),
        actor(Role::Admin),
    ] {
        let stored = Captured::<TimeOff>::default();
        let log = Arc::clone(&stored);
        let mut mocks = Mocks::new();
        profile_found(&mut mocks, &doctor);
        mocks
            .schedules
            .expect_add_time_off()
            .times(1)
            .returning(move |t| {
                log.lock().expect("log").push(t.clone());
                Ok(())
            });
        mocks.nothing_audited();

        let added = mocks
            .schedule_service()
            .add_time_off(
                &caller,
                doctor.id,
                new_time_off(ts("2026-11-30T23:00:00Z"), ts("2026-12-03T23:00:00Z")),
            )
            .await
            .expect("added");

        let stored = stored.lock().expect("stored");
        assert_eq!(stored.as_slice(), std::slice::from_ref(&added));
        assert_eq!(added.doctor_id, doctor.id);
        assert_eq!(added.start, ts("2026-11-30T23:00:00Z"));
        assert_eq!(added.end, ts("2026-12-03T23:00:00Z"));
        assert_eq!(
            added.reason.as_ref().map(Text::as_str),
            Some("Conference in Lyon")
        );
        assert_eq!(added.created_by, caller.user_id(), "{caller:?}");
        assert_eq!(added.created_at, NOW);
    }
}

#[tokio::test]
async fn time_off_over_booked_appointments_is_refused_with_every_one() {
    let doctor = alice();
    let conflicts = vec![
        Conflict::new(
            AppointmentId::generate(),
            ts("2026-12-01T08:00:00Z"),
            ts("2026-12-01T08:30:00Z"),
            ConflictWith::Doctor,
        ),
        Conflict::new(
            AppointmentId::generate(),
            ts("2026-12-02T13:00:00Z"),
            ts("2026-12-02T13:20:00Z"),
            ConflictWith::Doctor,
        ),
    ];
    let mut mocks = Mocks::new();
    profile_found(&mut mocks, &doctor);
    let answer = conflicts.clone();
    mocks
        .schedules
        .expect_add_time_off()
        .times(1)
        .returning(move |_| Err(TimeOffError::Conflicts(answer.clone())));

    let result = mocks
        .schedule_service()
        .add_time_off(
            &actor(Role::Secretary),
            doctor.id,
            new_time_off(ts("2026-11-30T23:00:00Z"), ts("2026-12-03T23:00:00Z")),
        )
        .await;

    match result {
        Err(ScheduleError::Conflicts(answered)) => assert_eq!(answered, conflicts),
        other => panic!("expected Conflicts, got {other:?}"),
    }
}

#[test]
fn time_off_is_checked_against_the_services_clock() {
    let service = Mocks::new().schedule_service();
    assert_eq!(service.now(), NOW);
    assert_eq!(
        check_time_off_span(
            ts("2026-11-20T00:00:00Z"),
            ts("2026-11-22T10:00:00Z"),
            service.now()
        ),
        Err(TimeOffSpanError::Past)
    );
    assert_eq!(
        check_time_off_span(
            NOW - SignedDuration::from_hours(24),
            NOW + SignedDuration::from_mins(1),
            service.now()
        ),
        Ok(())
    );
}

#[tokio::test]
async fn time_off_for_an_unknown_doctor_is_not_stored() {
    let mut mocks = Mocks::new();
    mocks.schedules.expect_profile().returning(|_| Ok(None));
    mocks.schedules.expect_add_time_off().never();
    let result = mocks
        .schedule_service()
        .add_time_off(
            &actor(Role::Secretary),
            UserId::generate(),
            new_time_off(ts("2026-12-01T00:00:00Z"), ts("2026-12-02T00:00:00Z")),
        )
        .await;
    assert!(
        matches!(result, Err(ScheduleError::DoctorNotFound)),
        "{result:?}"
    );
}

#[tokio::test]
async fn removing_time_off_the_doctor_does_not_have_is_not_found() {
    let doctor = alice();
    for (exists, found) in [(true, true), (false, false)] {
        let id = TimeOffId::generate();
        let mut mocks = Mocks::new();
        profile_found(&mut mocks, &doctor);
        mocks
            .schedules
            .expect_remove_time_off()
            .with(eq(doctor.id), eq(id), eq(NOW))
            .times(1)
            .returning(move |_, _, _| Ok(exists));
        mocks.nothing_audited();

        let result = mocks
            .schedule_service()
            .remove_time_off(&actor(Role::Secretary), doctor.id, id)
            .await;

        if found {
            assert!(result.is_ok(), "{result:?}");
        } else {
            assert!(
                matches!(result, Err(ScheduleError::TimeOffNotFound)),
                "{result:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Free slots

/// Reads of the schedule and the busy times go well: `rules`, `minutes`-long appointments,
/// `time_off`, and `busy`; returns what both were read with.
fn slot_reads(
    mocks: &mut Mocks,
    doctor: &User,
    rules: Vec<AvailabilityRule>,
    minutes: u16,
    time_off: Vec<TimeOff>,
    busy: Vec<Interval>,
) -> Captured<(Timestamp, Timestamp)> {
    profile_found(mocks, doctor);
    let reads = Captured::default();
    let schedule = Schedule {
        doctor_id: doctor.id,
        appointment_minutes: minutes,
        rules,
        time_off,
        version: 5,
    };
    let log = Arc::clone(&reads);
    let doctor_id = doctor.id;
    mocks
        .schedules
        .expect_schedule()
        .withf(move |d, _, _| *d == doctor_id)
        .times(1)
        .returning(move |_, from, to| {
            log.lock().expect("log").push((from, to));
            Ok(schedule.clone())
        });
    let log = Arc::clone(&reads);
    mocks
        .appointments
        .expect_busy()
        .withf(move |d, _, _| *d == doctor_id)
        .times(1)
        .returning(move |_, from, to| {
            log.lock().expect("log").push((from, to));
            Ok(busy.clone())
        });
    reads
}

fn starts(slots: &[Interval]) -> Vec<Timestamp> {
    slots.iter().map(|s| s.start).collect()
}

#[tokio::test]
async fn free_slots_span_at_most_31_days_after_from() {
    let doctor = alice();
    let from = ts("2026-11-23T00:00:00Z");
    for to in [
        from,
        from - SignedDuration::from_mins(1),
        from + SignedDuration::from_hours(24 * 31) + SignedDuration::from_mins(1),
        from + SignedDuration::from_hours(24 * 90),
    ] {
        let mut mocks = Mocks::new();
        no_schedule_port(&mut mocks);
        let result = mocks
            .schedule_service()
            .free_slots(&actor(Role::Patient), doctor.id, from, to)
            .await;
        assert_eq!(invalid_fields(result), ["to"], "{to}");
    }

    let mut mocks = Mocks::new();
    slot_reads(&mut mocks, &doctor, Vec::new(), 30, Vec::new(), Vec::new());
    let slots = mocks
        .schedule_service()
        .free_slots(
            &actor(Role::Patient),
            doctor.id,
            from,
            from + SignedDuration::from_hours(24 * 31),
        )
        .await
        .expect("31 days is allowed");
    assert_eq!(slots.appointment_minutes, 30);
    assert!(slots.slots.is_empty(), "no rules, no slots: {slots:?}");
}

#[tokio::test]
async fn the_free_slots_of_an_unknown_doctor_are_not_found() {
    let mut mocks = Mocks::new();
    mocks.schedules.expect_profile().returning(|_| Ok(None));
    mocks.schedules.expect_schedule().never();
    mocks.appointments.expect_busy().never();
    let from = ts("2026-11-23T00:00:00Z");
    let result = mocks
        .schedule_service()
        .free_slots(
            &actor(Role::Secretary),
            UserId::generate(),
            from,
            from + SignedDuration::from_hours(24 * 7),
        )
        .await;
    assert!(
        matches!(result, Err(ScheduleError::DoctorNotFound)),
        "{result:?}"
    );
}

#[tokio::test]
async fn free_slots_are_working_hours_in_the_clinics_zone_minus_appointments_and_time_off() {
    let doctor = alice();
    // Monday 23 November, local midnight to midnight in Paris (UTC+1).
    let from = ts("2026-11-22T23:00:00Z");
    let to = from + SignedDuration::from_hours(24);
    let off = TimeOff {
        id: TimeOffId::generate(),
        doctor_id: doctor.id,
        start: ts("2026-11-23T12:00:00Z"),
        end: ts("2026-11-23T13:00:00Z"),
        reason: None,
        created_by: doctor.id,
        created_at: NOW,
    };
    let mut mocks = Mocks::new();
    mocks.config = ServiceConfig {
        clinic_time_zone: paris(),
        ..ServiceConfig::default()
    };
    let reads = slot_reads(
        &mut mocks,
        &doctor,
        vec![rule(Weekday::Monday, (9, 0), (15, 0))],
        60,
        vec![off],
        // 10:00 to 11:00 in Paris.
        vec![Interval {
            start: ts("2026-11-23T09:00:00Z"),
            end: ts("2026-11-23T10:00:00Z"),
        }],
    );
    mocks.nothing_audited();

    let slots = mocks
        .schedule_service()
        .free_slots(&actor(Role::Patient), doctor.id, from, to)
        .await
        .expect("slots");
    assert_eq!(slots.appointment_minutes, 60, "the length they were cut to");
    let slots = slots.slots;

    // 09:00, 11:00, 12:00 and 14:00 in Paris; 10:00 is taken and 13:00 is off.
    assert_eq!(
        starts(&slots),
        [
            ts("2026-11-23T08:00:00Z"),
            ts("2026-11-23T10:00:00Z"),
            ts("2026-11-23T11:00:00Z"),
            ts("2026-11-23T13:00:00Z"),
        ]
    );
    assert!(
        slots
            .iter()
            .all(|s| s.duration() == SignedDuration::from_hours(1))
    );
    // The schedule and the busy times are read around the range, so windows are seen whole.
    for (read_from, read_to) in reads.lock().expect("reads").iter() {
        assert!(
            *read_from <= from && *read_to >= to,
            "{read_from} {read_to}"
        );
    }
}

#[tokio::test]
async fn slots_starting_before_now_are_not_offered() {
    let doctor = alice();
    // Sunday 22 November in UTC, NOW being 10:15 that day.
    let from = ts("2026-11-22T00:00:00Z");
    let to = from + SignedDuration::from_hours(24);
    let mut mocks = Mocks::new();
    slot_reads(
        &mut mocks,
        &doctor,
        vec![rule(Weekday::Sunday, (9, 0), (11, 0))],
        15,
        Vec::new(),
        Vec::new(),
    );

    let slots = mocks
        .schedule_service()
        .free_slots(&actor(Role::Doctor), doctor.id, from, to)
        .await
        .expect("slots")
        .slots;

    assert_eq!(
        starts(&slots),
        [
            ts("2026-11-22T10:15:00Z"),
            ts("2026-11-22T10:30:00Z"),
            ts("2026-11-22T10:45:00Z"),
        ]
    );
}
