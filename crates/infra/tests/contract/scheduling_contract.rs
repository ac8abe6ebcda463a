//! Scheduling: doctors' profiles and the directory, availability rules and time off with the
//! schedule version every change bumps, and appointments, which never overlap for a doctor or
//! a patient (checked under concurrency, and past the repositories on the database itself),
//! with their history, memberships, notifications and listing.

use std::collections::HashSet;
use std::sync::Arc;

use time::macros::date;
use time::{Duration, OffsetDateTime, Time};
use tokio::sync::Barrier;
use uuid::Uuid;

use carehub_domain::access::Basis;
use carehub_domain::audit::{AuditAction, AuditEvent, AuditEventId, AuditFilter, Outcome};
use carehub_domain::identity::{FullName, Role, User, UserId, UserStatus};
use carehub_domain::kernel::{PageRequest, Text};
use carehub_domain::notifications::{
    NewNotification, Notification, NotificationData, NotificationKind, NotificationQuery, Recipient,
};
use carehub_domain::patients::{
    AddMemberError, AppendNoteError, CareTeamMember, ClinicalNote, Contact, MembershipId, Mrn,
    NoteId, NoteKind, Patient, PatientDetails, PatientId, Sex,
};
use carehub_domain::scheduling::{
    Appointment, AppointmentFilter, AppointmentId, AppointmentStatus, AvailabilityRule, BookError,
    Booking, Conflict, ConflictWith, DoctorProfile, HistoryChange, HistoryEntry, Interval,
    ProfileUpdate, Reschedule, Specialization, StatusUpdate, TimeOff, TimeOffError, TimeOffId,
    Weekday,
};
use carehub_infra::testing::{Backend, ScratchDatabase};
use carehub_infra::{Database, Repositories};

use super::{create_user, now};

contract!(
    a_doctors_profile_reads_back_as_the_defaults_until_saved_then_whole,
    the_directory_lists_active_doctors_by_id_filtered_by_specialization_whatever_its_case,
    rules_and_time_off_read_back_and_every_schedule_change_bumps_the_version,
    a_booking_reads_back_with_its_history_membership_audit_event_and_notifications,
    of_fifty_concurrent_bookings_of_one_slot_exactly_one_succeeds_and_the_others_list_it,
    of_fifty_concurrent_bookings_of_one_patient_with_fifty_doctors_exactly_one_succeeds,
    overlapping_ranges_conflict_for_the_doctor_and_for_the_patient_and_touching_ones_do_not,
    cancelled_no_show_and_completed_appointments_do_not_hold_their_time,
    conflicts_list_every_overlapping_appointment_saying_whose_calendar_it_blocks,
    a_booking_or_reschedule_checked_against_an_older_schedule_version_is_refused,
    time_off_over_booked_appointments_is_refused_listing_them_and_writes_nothing,
    time_off_and_concurrent_bookings_of_its_time_never_both_succeed,
    a_status_change_applies_only_from_the_status_read_and_ends_the_membership_when_told,
    of_concurrent_status_changes_of_one_appointment_exactly_one_applies,
    a_reschedule_applies_only_to_the_time_read_and_conflicts_exclude_the_appointment_itself,
    the_history_lists_every_change_oldest_first_with_the_actors_names,
    appointments_are_listed_by_start_filtered_and_page_by_page,
    busy_lists_the_doctors_active_appointments_overlapping_the_range_by_start,
    care_team_additions_and_ends_ignore_memberships_opened_by_appointments,
    access_facts_see_an_appointments_membership_until_it_ends,
    an_appointment_has_at_most_one_visit_note,
);

/// Like `contract!`, for tests that need the database itself, not only its repositories.
macro_rules! scheduling_on_database {
    ($($name:ident),* $(,)?) => {
        scheduling_on_database!(@backend sqlite_database, Sqlite, $($name),*);
        scheduling_on_database!(@backend postgres_database, Postgres, $($name),*);
    };
    (@backend $module:ident, $backend:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(scratch) =
                        super::ScratchDatabase::create(super::Backend::$backend).await
                    else {
                        return;
                    };
                    let database = scratch
                        .connect_migrated()
                        .await
                        .expect("the scratch database connects and migrates");
                    super::$name(&database).await;
                    database.close().await;
                    drop(scratch);
                }
            )*
        }
    };
}

scheduling_on_database!(the_database_itself_refuses_overlapping_active_appointments_whoever_writes,);

// ---- Fixtures --------------------------------------------------------------------------------

/// `at` cut to whole microseconds, the precision both backends keep.
fn micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap()
}

/// Midnight UTC two days from now: appointments are placed at minutes after it.
fn base() -> OffsetDateTime {
    (now() + Duration::days(2)).replace_time(Time::MIDNIGHT)
}

/// `[from, to)` in minutes after `base`.
fn span(base: OffsetDateTime, from: i64, to: i64) -> Interval {
    Interval::new(base + Duration::minutes(from), base + Duration::minutes(to)).unwrap()
}

fn text(raw: &str) -> Text {
    Text::multiline(raw, 10_000).unwrap()
}

async fn doctor(repos: &Repositories, username: &str) -> User {
    create_user(repos, username, Role::Doctor, UserStatus::Active).await
}

async fn secretary(repos: &Repositories) -> User {
    create_user(repos, "sec.moneypenny", Role::Secretary, UserStatus::Active).await
}

fn audit(actor: &User, patient_id: PatientId, action: AuditAction) -> AuditEvent {
    AuditEvent {
        id: AuditEventId::generate(),
        at: micros(now()),
        actor_id: actor.id,
        actor_role: actor.role,
        patient_id: Some(patient_id),
        action,
        outcome: Outcome::Allowed,
        basis: Some(Basis::Role),
        request_id: Some("req-appointment".into()),
    }
}

/// Registers a minimal patient as `by`.
async fn patient(repos: &Repositories, by: &User, name: &str) -> PatientId {
    let at = micros(now());
    let patient = Patient {
        id: PatientId::generate(),
        mrn: Mrn::random(),
        details: PatientDetails {
            full_name: FullName::parse(name).unwrap(),
            date_of_birth: date!(1990 - 01 - 31),
            sex: Sex::Unknown,
            contact: Contact::default(),
            identifiers: Vec::new(),
            insurance: None,
            emergency_contact: None,
            location: None,
            user_id: None,
        },
        created_at: at,
        updated_at: at,
    };
    repos
        .patients
        .create(
            &patient,
            &[],
            &audit(by, patient.id, AuditAction::PatientCreate),
        )
        .await
        .expect("the patient is registered");
    patient.id
}

async fn patients(repos: &Repositories, by: &User, count: usize) -> Vec<PatientId> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        ids.push(patient(repos, by, &format!("Patient Number {n}")).await);
    }
    ids
}

fn new_appointment(doctor: UserId, patient_id: PatientId, at: Interval, by: &User) -> Appointment {
    let created_at = micros(now());
    Appointment {
        id: AppointmentId::generate(),
        doctor_id: doctor,
        patient_id,
        start: at.start,
        end: at.end,
        reason: text("Follow-up of the\nblood pressure"),
        status: AppointmentStatus::Booked,
        cancel_reason: None,
        created_by: by.id,
        created_at,
        updated_at: created_at,
        doctor_name: None,
    }
}

/// The booking of `appointment` against schedule `version`, with the membership it opens.
fn booking(appointment: &Appointment, version: i64) -> Booking {
    Booking {
        appointment: appointment.clone(),
        schedule_version: version,
        membership: CareTeamMember {
            id: MembershipId::generate(),
            patient_id: appointment.patient_id,
            doctor_id: appointment.doctor_id,
            doctor_name: None,
            started_at: appointment.created_at,
            ended_at: None,
            added_by: appointment.created_by,
            ended_by: None,
            referral_id: None,
            appointment_id: Some(appointment.id),
        },
    }
}

/// What an appointment change tells its doctor.
fn notice(appointment: &Appointment, kind: NotificationKind) -> NewNotification {
    NewNotification {
        recipient: Recipient::User(appointment.doctor_id),
        kind,
        data: NotificationData {
            title: format!("Appointment {}", kind.as_str()),
            patient_id: Some(*appointment.patient_id.as_uuid()),
            appointment_id: Some(*appointment.id.as_uuid()),
            ..NotificationData::default()
        },
    }
}

/// Books `appointment` against `version`, as its creator, telling its doctor.
async fn try_book(
    repos: &Repositories,
    appointment: &Appointment,
    by: &User,
    version: i64,
) -> Result<Vec<Notification>, BookError> {
    repos
        .appointments
        .book(
            &booking(appointment, version),
            &audit(by, appointment.patient_id, AuditAction::AppointmentCreate),
            &[notice(appointment, NotificationKind::AppointmentBooked)],
        )
        .await
}

/// Books an appointment of `doctor` and `patient_id` at `at` against the current schedule.
async fn book(
    repos: &Repositories,
    doctor: UserId,
    patient_id: PatientId,
    at: Interval,
    by: &User,
) -> Appointment {
    let appointment = new_appointment(doctor, patient_id, at, by);
    let version = current_version(repos, doctor).await;
    try_book(repos, &appointment, by, version)
        .await
        .expect("the time is free");
    appointment
}

async fn current_version(repos: &Repositories, doctor: UserId) -> i64 {
    let at = base();
    repos
        .schedules
        .schedule(doctor, at, at + Duration::days(1))
        .await
        .unwrap()
        .version
}

fn conflicts_of<T: std::fmt::Debug>(result: Result<T, BookError>) -> Vec<Conflict> {
    match result {
        Err(BookError::Conflicts(conflicts)) => conflicts,
        other => panic!("expected conflicts, got {other:?}"),
    }
}

fn conflict(appointment: &Appointment, with: ConflictWith) -> Conflict {
    Conflict {
        appointment_id: appointment.id,
        start: appointment.start,
        end: appointment.end,
        with,
    }
}

async fn status_update(
    repos: &Repositories,
    appointment: &Appointment,
    from: AppointmentStatus,
    to: AppointmentStatus,
    by: &User,
    care_team_until: Option<OffsetDateTime>,
) -> Result<Vec<Notification>, BookError> {
    let update = StatusUpdate {
        id: appointment.id,
        from,
        to,
        reason: (to == AppointmentStatus::Cancelled).then(|| text("The patient is unwell")),
        at: micros(now()),
        actor_id: by.id,
        care_team_until,
    };
    repos
        .appointments
        .change_status(
            &update,
            &audit(by, appointment.patient_id, AuditAction::AppointmentStatus),
            &[notice(appointment, NotificationKind::AppointmentCancelled)],
        )
        .await
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
            },
            &audit(
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

/// `from` to `to` (hours and minutes) on `weekday`.
fn rule(weekday: Weekday, from: (i64, i64), to: (i64, i64)) -> AvailabilityRule {
    AvailabilityRule::from_minutes(weekday, from.0 * 60 + from.1, to.0 * 60 + to.1).unwrap()
}

fn time_off(doctor: UserId, at: Interval, by: &User) -> TimeOff {
    TimeOff {
        id: TimeOffId::generate(),
        doctor_id: doctor,
        start: at.start,
        end: at.end,
        reason: Some(text("Conference")),
        created_by: by.id,
        created_at: micros(now()),
    }
}

fn profile_update(specializations: &[&str], bio: Option<&str>, minutes: u16) -> ProfileUpdate {
    ProfileUpdate {
        specializations: specializations
            .iter()
            .map(|s| Specialization::parse(s).unwrap())
            .collect(),
        bio: bio.map(text),
        appointment_minutes: minutes,
    }
}

// ---- Profiles and the directory --------------------------------------------------------------

pub(super) async fn a_doctors_profile_reads_back_as_the_defaults_until_saved_then_whole(
    repos: Repositories,
) {
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
        .schedule(house.id, base(), base() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(schedule.appointment_minutes, 45);

    // A second save replaces the whole profile.
    let later = at + Duration::minutes(5);
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

pub(super) async fn the_directory_lists_active_doctors_by_id_filtered_by_specialization_whatever_its_case(
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

pub(super) async fn rules_and_time_off_read_back_and_every_schedule_change_bumps_the_version(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let day = base();
    let whole_day = |repos: Repositories, doctor: UserId| async move {
        repos
            .schedules
            .schedule(doctor, day, day + Duration::days(1))
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
            .upcoming_time_off(house.id, day + Duration::minutes(90))
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

// ---- Bookings --------------------------------------------------------------------------------

pub(super) async fn a_booking_reads_back_with_its_history_membership_audit_event_and_notifications(
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
    let event = audit(&desk, patient_id, AuditAction::AppointmentCreate);
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

pub(super) async fn of_fifty_concurrent_bookings_of_one_slot_exactly_one_succeeds_and_the_others_list_it(
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

pub(super) async fn of_fifty_concurrent_bookings_of_one_patient_with_fifty_doctors_exactly_one_succeeds(
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

pub(super) async fn overlapping_ranges_conflict_for_the_doctor_and_for_the_patient_and_touching_ones_do_not(
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

pub(super) async fn cancelled_no_show_and_completed_appointments_do_not_hold_their_time(
    repos: Repositories,
) {
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

pub(super) async fn conflicts_list_every_overlapping_appointment_saying_whose_calendar_it_blocks(
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

pub(super) async fn a_booking_or_reschedule_checked_against_an_older_schedule_version_is_refused(
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

pub(super) async fn time_off_over_booked_appointments_is_refused_listing_them_and_writes_nothing(
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

pub(super) async fn time_off_and_concurrent_bookings_of_its_time_never_both_succeed(
    repos: Repositories,
) {
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

// ---- Status changes and reschedules ----------------------------------------------------------

pub(super) async fn a_status_change_applies_only_from_the_status_read_and_ends_the_membership_when_told(
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
    };
    let missing = repos
        .appointments
        .change_status(
            &missing,
            &audit(&desk, ada, AuditAction::AppointmentStatus),
            &[],
        )
        .await;
    assert!(matches!(missing, Err(BookError::Stale)), "{missing:?}");
    assert_eq!(repos.notifications.last_id(house.id).await.unwrap(), 2);

    let until = micros(now()) + Duration::days(30);
    let at = micros(now());
    let update = StatusUpdate {
        id: first.id,
        from: S::CheckedIn,
        to: S::Cancelled,
        reason: Some(text("Feeling better")),
        at,
        actor_id: house.id,
        care_team_until: Some(until),
    };
    let stored = repos
        .appointments
        .change_status(
            &update,
            &audit(&house, ada, AuditAction::AppointmentStatus),
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

pub(super) async fn of_concurrent_status_changes_of_one_appointment_exactly_one_applies(
    repos: Repositories,
) {
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

pub(super) async fn a_reschedule_applies_only_to_the_time_read_and_conflicts_exclude_the_appointment_itself(
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

pub(super) async fn the_history_lists_every_change_oldest_first_with_the_actors_names(
    repos: Repositories,
) {
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

pub(super) async fn appointments_are_listed_by_start_filtered_and_page_by_page(
    repos: Repositories,
) {
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
            from: Some(day + Duration::minutes(90)),
            to: Some(day + Duration::minutes(330)),
            ..AppointmentFilter::default()
        })
        .await,
        same_start.to_vec()
    );
    assert_eq!(
        filter(AppointmentFilter {
            from: Some(day + Duration::minutes(340)),
            ..AppointmentFilter::default()
        })
        .await,
        vec![same_start_b.id, late.id, tomorrow.id]
    );
    assert_eq!(
        filter(AppointmentFilter {
            to: Some(day + Duration::minutes(61)),
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
            to: Some(day + Duration::days(1)),
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
}

pub(super) async fn busy_lists_the_doctors_active_appointments_overlapping_the_range_by_start(
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
            day + Duration::minutes(60),
            day + Duration::minutes(230),
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

// ---- Care teams, access and visit notes ------------------------------------------------------

pub(super) async fn care_team_additions_and_ends_ignore_memberships_opened_by_appointments(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let admin = create_user(&repos, "admin.cuddy", Role::Admin, UserStatus::Active).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    book(&repos, house.id, ada, span(base(), 120, 150), &desk).await;

    // Two open appointment memberships do not make the doctor a member already.
    let member = CareTeamMember {
        id: MembershipId::generate(),
        patient_id: ada,
        doctor_id: house.id,
        doctor_name: None,
        started_at: micros(now()),
        ended_at: None,
        added_by: admin.id,
        ended_by: None,
        referral_id: None,
        appointment_id: None,
    };
    repos
        .care_teams
        .add(&member, &audit(&admin, ada, AuditAction::CareTeamAdd), &[])
        .await
        .unwrap();
    let again = CareTeamMember {
        id: MembershipId::generate(),
        ..member.clone()
    };
    let twice = repos
        .care_teams
        .add(&again, &audit(&admin, ada, AuditAction::CareTeamAdd), &[])
        .await;
    assert!(
        matches!(twice, Err(AddMemberError::AlreadyMember)),
        "{twice:?}"
    );

    // Ending ends the membership added by hand, and only it.
    let at = micros(now());
    let ended = repos
        .care_teams
        .end(
            ada,
            house.id,
            at,
            admin.id,
            &audit(&admin, ada, AuditAction::CareTeamEnd),
        )
        .await
        .unwrap()
        .expect("the added membership ends");
    assert_eq!(ended.id, member.id);
    assert_eq!(ended.appointment_id, None);
    let none_left = repos
        .care_teams
        .end(
            ada,
            house.id,
            at,
            admin.id,
            &audit(&admin, ada, AuditAction::CareTeamEnd),
        )
        .await
        .unwrap();
    assert_eq!(none_left, None);
    let team = repos.care_teams.list(ada).await.unwrap();
    assert_eq!(team.len(), 3);
    let open: Vec<_> = team.iter().filter(|m| m.ended_at.is_none()).collect();
    assert_eq!(open.len(), 2);
    assert!(open.iter().all(|m| m.appointment_id.is_some()));
    assert!(open.iter().any(|m| m.appointment_id == Some(first.id)));

    // And a new one may be added again beside them.
    repos
        .care_teams
        .add(&again, &audit(&admin, ada, AuditAction::CareTeamAdd), &[])
        .await
        .unwrap();
}

pub(super) async fn access_facts_see_an_appointments_membership_until_it_ends(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let desk = secretary(&repos).await;
    let ada = patient(&repos, &desk, "Ada Lovelace").await;
    let before = micros(now()) - Duration::seconds(1);
    let first = book(&repos, house.id, ada, span(base(), 60, 90), &desk).await;
    let facts = |at: OffsetDateTime| {
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
        facts(first.created_at + Duration::days(400)).await,
        "open until the visit is over"
    );

    let until = micros(now()) + Duration::days(30);
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
    assert!(facts(until - Duration::seconds(1)).await);
    assert!(!facts(until).await);
}

pub(super) async fn an_appointment_has_at_most_one_visit_note(repos: Repositories) {
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
                .append(&note, &audit(&house, ada, AuditAction::NoteCreate))
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
            .bind(at.start)
            .bind(at.end)
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
            .bind(at.start)
            .bind(at.end)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
    }
}

fn unix_micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap()
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

pub(super) async fn the_database_itself_refuses_overlapping_active_appointments_whoever_writes(
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
