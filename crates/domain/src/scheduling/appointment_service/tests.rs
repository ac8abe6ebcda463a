//! Unit tests of the appointment and visit-note services, with the doubles of `test_support`:
//! who may book, read, list, change, move and write the visit note of an appointment; what each
//! attempt audits; how the doctor's schedule is read (in the clinic's time zone) and read again
//! when it changed; what the repository is asked to store; and who is told. The state machine,
//! the slot arithmetic and the access table are tested where they live (`appointment/tests.rs`,
//! `schedule/tests.rs`, `access`); these test how the service applies them.

use std::sync::{Arc, Mutex};

use jiff::tz::Offset;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use mockall::predicate::eq;

use super::*;
use crate::access::AccessFacts;
use crate::audit::Outcome;
use crate::identity::{User, UserStatus};
use crate::kernel::Text;
use crate::notifications::Notification;
use crate::patients::{AppendNoteError, ClinicalNote, NoteKind, Patient};
use crate::scheduling::reminder_key_prefix;
use crate::scheduling::{
    AvailabilityRule, Conflict, ConflictWith, HistoryChange, NewVisitNote, ReasonError, TimeOff,
    TimeOffId, Unavailable, VisitNoteError, Weekday,
};
use crate::scheduling::{
    BookError, Booking, BookingRequest, Interval, Reschedule, RescheduleRequest, Schedule,
    parse_appointment_reason, parse_minute,
};
use crate::test_support::*;

/// Monday 23 November 2026, 09:00 in Paris (UTC+1), `2026-11-23T08:00:00Z`: the day after
/// [`NOW`], a Sunday.
const MONDAY_9_PARIS: Timestamp = Timestamp::constant(1795420800, 0);
const REASON: &str = "Chest pain on exertion";
const CANCEL_REASON: &str = "The patient is abroad";

const OWN_RECORD: AccessFacts = AccessFacts {
    is_own_record: true,
    on_care_team: false,
    emergency_access: false,
};

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").expect("the bundled tzdb knows Paris")
}

fn text(raw: &str) -> Text {
    Text::multiline(raw, 1_000).expect("valid text")
}

/// Who takes part: Dr Alice Adams, the secretary Sam Smith, and the patient Ada Lovelace, whose
/// record is linked to her account when she has one.
struct People {
    alice: User,
    sam: User,
    ada: User,
    patient: Patient,
}

fn people(with_account: bool) -> People {
    let ada = named_user("Ada Lovelace", Role::Patient, UserStatus::Active);
    People {
        alice: named_user("Alice Adams", Role::Doctor, UserStatus::Active),
        sam: named_user("Sam Smith", Role::Secretary, UserStatus::Active),
        patient: stored_patient(with_account.then_some(ada.id)),
        ada,
    }
}

/// Who books, moves or cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Secretary,
    Doctor,
    Patient,
}

const EVERYONE: [Who; 3] = [Who::Secretary, Who::Doctor, Who::Patient];

impl People {
    fn user(&self, who: Who) -> &User {
        match who {
            Who::Secretary => &self.sam,
            Who::Doctor => &self.alice,
            Who::Patient => &self.ada,
        }
    }

    fn actor(&self, who: Who) -> Actor {
        actor_for(self.user(who))
    }

    /// The patient's account, if linked.
    fn account(&self) -> Option<UserId> {
        self.patient.details.user_id
    }

    /// The staff are named in titles (looked up as often as needed); the patient never is.
    fn named(&self, mocks: &mut Mocks) {
        mocks.named(&self.alice);
        mocks.named(&self.sam);
    }

    /// The patient's record is linked to the calling patient's account (and found by it).
    fn own_record_found(&self, mocks: &mut Mocks) {
        let record = self.patient.clone();
        mocks
            .patients
            .expect_find_by_user()
            .with(eq(self.ada.id))
            .returning(move |_| Ok(Some(record.clone())));
    }

    /// The patient's record is looked up (for its linked account).
    fn record_found(&self, mocks: &mut Mocks) {
        let record = self.patient.clone();
        mocks
            .patients
            .expect_find()
            .with(eq(self.patient.id))
            .returning(move |_| Ok(Some(record.clone())));
    }

    /// A booked appointment of Ada with Alice on Monday at 09:00 (Paris), 30 minutes, booked
    /// by Sam three days ago.
    fn appointment(&self, status: AppointmentStatus) -> Appointment {
        self.appointment_at(status, MONDAY_9_PARIS)
    }

    fn appointment_at(&self, status: AppointmentStatus, start: Timestamp) -> Appointment {
        Appointment {
            id: AppointmentId::generate(),
            doctor_id: self.alice.id,
            patient_id: self.patient.id,
            start,
            end: start + SignedDuration::from_mins(30),
            reason: text(REASON),
            status,
            cancel_reason: (status == AppointmentStatus::Cancelled).then(|| text(CANCEL_REASON)),
            video: false,
            created_by: self.sam.id,
            created_at: NOW - SignedDuration::from_hours(24 * 3),
            updated_at: NOW - SignedDuration::from_hours(24 * 3),
            doctor_name: Some(self.alice.full_name.clone()),
            patient_name: Some(self.patient.details.full_name.clone()),
        }
    }
}

/// How the policy relates each booker to the patient (a secretary to none), and the basis
/// the booking is allowed on.
fn relation(who: Who) -> (AccessFacts, Basis) {
    match who {
        Who::Secretary => (UNRELATED, Basis::Role),
        Who::Doctor => (ON_CARE_TEAM, Basis::CareTeam),
        Who::Patient => (OWN_RECORD, Basis::OwnRecord),
    }
}

/// The basis each sees an existing appointment on (its secretary, doctor, patient).
fn seen_on(who: Who) -> Basis {
    match who {
        Who::Secretary => Basis::Role,
        Who::Doctor => Basis::Appointment,
        Who::Patient => Basis::OwnRecord,
    }
}

/// Monday to Friday, 09:00 to 17:00 local time.
fn office_hours() -> Vec<AvailabilityRule> {
    let (nine, five) = (
        jiff::civil::time(9, 0, 0, 0),
        jiff::civil::time(17, 0, 0, 0),
    );
    [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ]
    .into_iter()
    .map(|day| AvailabilityRule::new(day, nine, five).expect("valid rule"))
    .collect()
}

fn schedule(doctor_id: UserId, appointment_minutes: u16, version: i64) -> Schedule {
    Schedule {
        doctor_id,
        appointment_minutes,
        rules: office_hours(),
        time_off: Vec::new(),
        version,
    }
}

fn time_off(doctor_id: UserId, start: Timestamp, end: Timestamp) -> TimeOff {
    TimeOff {
        id: TimeOffId::generate(),
        doctor_id,
        start,
        end,
        reason: Some(text("Conference")),
        created_by: doctor_id,
        created_at: NOW - SignedDuration::from_hours(24 * 10),
    }
}

fn with_time_off(mut schedule: Schedule, time_off: TimeOff) -> Schedule {
    schedule.time_off.push(time_off);
    schedule
}

/// An instant on a whole minute, written RFC 3339.
fn minute(raw: &str) -> Timestamp {
    parse_minute(raw).expect("an instant on a whole minute")
}

fn booking_input(doctor_id: UserId, patient_id: PatientId, start: &str) -> BookingRequest {
    BookingRequest {
        doctor_id,
        patient_id,
        start: minute(start),
        end: None,
        reason: parse_appointment_reason(REASON).expect("a reason"),
        video: false,
    }
}

fn in_paris(mocks: &mut Mocks) {
    mocks.config = ServiceConfig {
        clinic_time_zone: paris(),
        ..ServiceConfig::default()
    };
}

/// What the doctor's schedule was read with: doctor, from, to.
type ScheduleReads = Captured<(UserId, Timestamp, Timestamp)>;

/// The doctor's schedule is read (as often as the use case needs), answering `answers` in
/// turn and the last one from then on.
fn schedule_reads(mocks: &mut Mocks, answers: Vec<Schedule>) -> ScheduleReads {
    let reads = ScheduleReads::default();
    let log = Arc::clone(&reads);
    let answers = Mutex::new(answers);
    mocks
        .schedules
        .expect_schedule()
        .returning(move |doctor, from, to| {
            log.lock().expect("log").push((doctor, from, to));
            let mut answers = answers.lock().expect("answers");
            let next = if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            };
            Ok(next)
        });
    reads
}

/// What `AppointmentRepository::book` was called with.
type Booked = Captured<(Booking, AuditEvent, Vec<NewNotification>)>;

/// `book` is called `outcomes.len()` times, answering each in turn (`None`: stored, the
/// notifications numbered), in [`Mocks::seq`].
fn books(mocks: &mut Mocks, outcomes: Vec<Option<BookError>>) -> Booked {
    let booked = Booked::default();
    let log = Arc::clone(&booked);
    let times = outcomes.len();
    let outcomes = Mutex::new(outcomes);
    mocks
        .appointments
        .expect_book()
        .times(times)
        .in_sequence(&mut mocks.seq)
        .returning(move |booking, event, notices| {
            log.lock()
                .expect("log")
                .push((booking.clone(), event.clone(), notices.to_vec()));
            match outcomes.lock().expect("outcomes").remove(0) {
                None => Ok(stored(notices, &[])),
                Some(error) => Err(error),
            }
        });
    booked
}

/// Everything a booking by `who` reads goes well: the doctor is active, the policy allows
/// `who`, the patient's record is found, the schedule is Monday to Friday 9 to 5 with
/// `minutes`-long appointments at version 7.
fn booking(mocks: &mut Mocks, people: &People, who: Who, minutes: u16) -> ScheduleReads {
    people.named(mocks);
    mocks.facts(people.patient.id, &people.actor(who), Some(relation(who).0));
    people.record_found(mocks);
    schedule_reads(mocks, vec![schedule(people.alice.id, minutes, 7)])
}

fn single_booking(booked: &Booked) -> (Booking, AuditEvent, Vec<NewNotification>) {
    let booked = booked.lock().expect("booked");
    assert_eq!(booked.len(), 1, "one booking stored");
    booked[0].clone()
}

fn recipients(notices: &[NewNotification]) -> Vec<Recipient> {
    notices.iter().map(|n| n.recipient).collect()
}

/// Two appointments in the way: one of the doctor's, one of both.
fn two_conflicts() -> Vec<Conflict> {
    vec![
        Conflict::new(
            AppointmentId::generate(),
            MONDAY_9_PARIS - SignedDuration::from_mins(15),
            MONDAY_9_PARIS + SignedDuration::from_mins(15),
            ConflictWith::Doctor,
        ),
        Conflict::new(
            AppointmentId::generate(),
            MONDAY_9_PARIS + SignedDuration::from_mins(20),
            MONDAY_9_PARIS + SignedDuration::from_mins(50),
            ConflictWith::Both,
        ),
    ]
}

fn unavailable<T: std::fmt::Debug>(result: Result<T, AppointmentError>) -> Unavailable {
    match result {
        Err(AppointmentError::Unavailable(why)) => why,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn no_writes(mocks: &mut Mocks) {
    mocks.appointments.expect_book().never();
    mocks.appointments.expect_change_status().never();
    mocks.appointments.expect_reschedule().never();
    mocks.nothing_published();
}

// ---------------------------------------------------------------------------------------------
// Booking: who

#[tokio::test]
async fn laboratory_staff_and_administrators_may_not_book_and_are_refused_before_anything_is_read()
{
    for role in [Role::Laboratory, Role::Admin] {
        let caller = actor(role);
        let refusing = || {
            let mut mocks = Mocks::new();
            mocks.no_patient_lookup();
            mocks.users.expect_find_by_id().never();
            mocks.patients.expect_find().never();
            mocks.schedules.expect_schedule().never();
            no_writes(&mut mocks);
            let recorded = mocks.audit_succeeds();
            (mocks.appointment_service(), recorded)
        };

        let (service, recorded) = refusing();
        let result = service.check_may_book(&caller).await;
        assert!(
            matches!(result, Err(AppointmentError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            None,
            AuditAction::AppointmentCreate,
        );

        // Even a valid request naming a patient: the role is refused before it is read.
        let (service, recorded) = refusing();
        let input = booking_input(
            UserId::generate(),
            PatientId::generate(),
            "2026-11-23T09:00:00Z",
        );
        let result = service.book_appointment(&caller, input).await;
        assert!(
            matches!(result, Err(AppointmentError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            None,
            AuditAction::AppointmentCreate,
        );
    }
}

#[tokio::test]
async fn secretaries_doctors_and_patients_pass_the_booking_role_check_unaudited() {
    for role in [Role::Secretary, Role::Doctor, Role::Patient] {
        let mut mocks = Mocks::new();
        mocks.nothing_audited();
        let result = mocks
            .appointment_service()
            .check_may_book(&actor(role))
            .await;
        assert!(result.is_ok(), "{role}: {result:?}");
    }
}

#[tokio::test]
async fn the_doctor_booked_must_be_an_active_doctor() {
    let others = [
        Some(named_user("Bob Brown", Role::Doctor, UserStatus::Suspended)),
        Some(named_user("Bob Brown", Role::Doctor, UserStatus::Pending)),
        Some(named_user("Bob Brown", Role::Secretary, UserStatus::Active)),
        Some(named_user("Bob Brown", Role::Patient, UserStatus::Active)),
        None,
    ];
    for other in others {
        let id = other.as_ref().map_or_else(UserId::generate, |u| u.id);
        let mut mocks = Mocks::new();
        mocks.user_by_id(id, other.clone());
        mocks.no_patient_lookup();
        mocks.schedules.expect_schedule().never();
        no_writes(&mut mocks);
        mocks.nothing_audited();

        let result = mocks
            .appointment_service()
            .book_appointment(
                &actor(Role::Secretary),
                booking_input(id, PatientId::generate(), "2026-11-23T09:00:00+01:00"),
            )
            .await;

        assert_eq!(invalid_fields(result), ["doctor_id"], "{other:?}");
    }
}

#[tokio::test]
async fn a_doctor_books_only_with_themself_and_the_refusal_is_audited_with_the_patient() {
    let people = people(true);
    let bob = named_user("Bob Brown", Role::Doctor, UserStatus::Active);
    let doctor = people.actor(Who::Doctor);
    let mut mocks = Mocks::new();
    mocks.named(&bob);
    mocks.named(&people.alice);
    mocks.no_patient_lookup();
    mocks.patients.expect_find().never();
    mocks.schedules.expect_schedule().never();
    no_writes(&mut mocks);
    let recorded = mocks.audit_succeeds();

    let result = mocks
        .appointment_service()
        .book_appointment(
            &doctor,
            booking_input(bob.id, people.patient.id, "2026-11-23T09:00:00+01:00"),
        )
        .await;

    assert!(
        matches!(result, Err(AppointmentError::Forbidden)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &doctor,
        Some(people.patient.id),
        AuditAction::AppointmentCreate,
    );
}

#[tokio::test]
async fn a_doctor_books_only_for_a_patient_of_their_care_team_and_every_refusal_is_audited() {
    let cases = [
        (Some(UNRELATED), "not found"),
        (None, "not found"),
        (Some(EMERGENCY_ONLY), "forbidden"),
    ];
    for (facts, expected) in cases {
        let people = people(true);
        let doctor = people.actor(Who::Doctor);
        let mut mocks = Mocks::new();
        people.named(&mut mocks);
        mocks.facts(people.patient.id, &doctor, facts);
        mocks.patients.expect_find().never();
        mocks.schedules.expect_schedule().never();
        no_writes(&mut mocks);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .book_appointment(
                &doctor,
                booking_input(
                    people.alice.id,
                    people.patient.id,
                    "2026-11-23T09:00:00+01:00",
                ),
            )
            .await;

        match expected {
            "forbidden" => assert!(
                matches!(result, Err(AppointmentError::Forbidden)),
                "{facts:?}: {result:?}"
            ),
            _ => assert!(
                matches!(result, Err(AppointmentError::NotFound)),
                "{facts:?}: {result:?}"
            ),
        }
        assert_denied(
            &single_event(&recorded),
            &doctor,
            Some(people.patient.id),
            AuditAction::AppointmentCreate,
        );
    }
}

#[tokio::test]
async fn a_patient_books_only_for_themself_and_is_told_another_record_does_not_exist() {
    for facts in [Some(UNRELATED), Some(ON_CARE_TEAM), None] {
        let people = people(true);
        let patient = people.actor(Who::Patient);
        let other_record = PatientId::generate();
        let mut mocks = Mocks::new();
        people.named(&mut mocks);
        mocks.facts(other_record, &patient, facts);
        mocks.patients.expect_find().never();
        mocks.schedules.expect_schedule().never();
        no_writes(&mut mocks);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .book_appointment(
                &patient,
                booking_input(people.alice.id, other_record, "2026-11-23T09:00:00+01:00"),
            )
            .await;

        assert!(
            matches!(result, Err(AppointmentError::NotFound)),
            "{facts:?}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &patient,
            Some(other_record),
            AuditAction::AppointmentCreate,
        );
    }
}

#[tokio::test]
async fn a_secretary_books_for_a_patient_that_does_not_exist_is_told_it_is_not_found() {
    let people = people(false);
    let secretary = people.actor(Who::Secretary);
    let mut mocks = Mocks::new();
    people.named(&mut mocks);
    mocks.facts(people.patient.id, &secretary, None);
    mocks.schedules.expect_schedule().never();
    no_writes(&mut mocks);
    let recorded = mocks.audit_succeeds();

    let result = mocks
        .appointment_service()
        .book_appointment(
            &secretary,
            booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            ),
        )
        .await;

    assert!(
        matches!(result, Err(AppointmentError::NotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &secretary,
        Some(people.patient.id),
        AuditAction::AppointmentCreate,
    );
}

// ---------------------------------------------------------------------------------------------
// Booking: what is stored

#[tokio::test]
async fn each_booker_books_on_their_basis_with_the_appointment_its_membership_and_its_event() {
    for who in EVERYONE {
        let people = people(true);
        let caller = people.actor(who);
        let mut mocks = Mocks::new();
        in_paris(&mut mocks);
        booking(&mut mocks, &people, who, 30);
        let booked = books(&mut mocks, vec![None]);
        let _published = mocks.publishes();
        mocks.nothing_audited();

        let returned = mocks
            .appointment_service()
            .book_appointment(
                &caller,
                booking_input(
                    people.alice.id,
                    people.patient.id,
                    "2026-11-23T09:00:00+01:00",
                ),
            )
            .await
            .expect("booked");

        let (booking, event, _) = single_booking(&booked);
        let stored = &booking.appointment;
        assert_eq!(
            stored, &returned,
            "{who:?}: what is returned is what was stored"
        );
        assert_eq!(stored.doctor_id, people.alice.id, "{who:?}");
        assert_eq!(stored.patient_id, people.patient.id, "{who:?}");
        assert_eq!(stored.start, MONDAY_9_PARIS, "{who:?}");
        assert_eq!(
            stored.end,
            MONDAY_9_PARIS + SignedDuration::from_mins(30),
            "{who:?}"
        );
        assert_eq!(stored.reason.as_str(), REASON, "{who:?}");
        assert_eq!(stored.status, AppointmentStatus::Booked, "{who:?}");
        assert_eq!(stored.cancel_reason, None, "{who:?}");
        assert_eq!(stored.created_by, caller.user_id(), "{who:?}");
        assert_eq!(
            (stored.created_at, stored.updated_at),
            (NOW, NOW),
            "{who:?}"
        );
        assert_eq!(booking.schedule_version, 7, "{who:?}");

        let membership = &booking.membership;
        assert_eq!(membership.patient_id, people.patient.id, "{who:?}");
        assert_eq!(membership.doctor_id, people.alice.id, "{who:?}");
        assert_eq!(membership.appointment_id, Some(stored.id), "{who:?}");
        assert_eq!(membership.referral_id, None, "{who:?}");
        assert_eq!(membership.started_at, NOW, "{who:?}");
        assert_eq!(membership.ended_at, None, "{who:?}");
        assert_eq!(membership.added_by, caller.user_id(), "{who:?}");
        assert_eq!(membership.ended_by, None, "{who:?}");

        assert_allowed(
            &event,
            &caller,
            Some(people.patient.id),
            AuditAction::AppointmentCreate,
            relation(who).1,
        );
    }
}

#[tokio::test]
async fn the_end_defaults_to_the_doctors_appointment_length_and_an_explicit_end_is_kept() {
    let cases = [
        (None, 20, MONDAY_9_PARIS + SignedDuration::from_mins(20)),
        (None, 45, MONDAY_9_PARIS + SignedDuration::from_mins(45)),
        (
            Some("2026-11-23T10:30:00+01:00"),
            20,
            MONDAY_9_PARIS + SignedDuration::from_mins(90),
        ),
    ];
    for (end, minutes, expected_end) in cases {
        let people = people(false);
        let mut mocks = Mocks::new();
        in_paris(&mut mocks);
        booking(&mut mocks, &people, Who::Secretary, minutes);
        let booked = books(&mut mocks, vec![None]);
        let _published = mocks.publishes();
        let input = BookingRequest {
            end: end.map(minute),
            ..booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            )
        };

        let returned = mocks
            .appointment_service()
            .book_appointment(&people.actor(Who::Secretary), input)
            .await
            .expect("booked");

        assert_eq!(returned.end, expected_end, "{end:?} {minutes}");
        assert_eq!(single_booking(&booked).0.appointment.end, expected_end);
    }
}

#[tokio::test]
async fn the_doctors_schedule_is_read_around_the_whole_appointment() {
    let people = people(false);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    let reads = booking(&mut mocks, &people, Who::Secretary, 30);
    let _booked = books(&mut mocks, vec![None]);
    let _published = mocks.publishes();

    mocks
        .appointment_service()
        .book_appointment(
            &people.actor(Who::Secretary),
            booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            ),
        )
        .await
        .expect("booked");

    let reads = reads.lock().expect("reads");
    assert_eq!(reads.len(), 1);
    let (doctor, from, to) = reads[0];
    assert_eq!(doctor, people.alice.id);
    assert_eq!(from, MONDAY_9_PARIS - SignedDuration::from_hours(24));
    assert!(
        to >= MONDAY_9_PARIS + SignedDuration::from_mins(30) + SignedDuration::from_hours(24),
        "read up to {to}"
    );
}

// ---------------------------------------------------------------------------------------------
// Booking: availability

/// A booking by the secretary, in `zone`, for `start` (and `end`), against `schedule`; the
/// repository must not be reached.
async fn refused_booking(
    zone: Option<TimeZone>,
    start: &str,
    end: Option<&str>,
    schedule: impl FnOnce(UserId) -> Schedule,
) -> Result<Appointment, AppointmentError> {
    let people = people(true);
    let mut mocks = Mocks::new();
    if let Some(zone) = zone {
        mocks.config = ServiceConfig {
            clinic_time_zone: zone,
            ..ServiceConfig::default()
        };
    }
    people.named(&mut mocks);
    mocks.facts(
        people.patient.id,
        &people.actor(Who::Secretary),
        Some(UNRELATED),
    );
    people.record_found(&mut mocks);
    schedule_reads(&mut mocks, vec![schedule(people.alice.id)]);
    no_writes(&mut mocks);
    mocks.nothing_audited();
    let input = BookingRequest {
        end: end.map(minute),
        ..booking_input(people.alice.id, people.patient.id, start)
    };
    mocks
        .appointment_service()
        .book_appointment(&people.actor(Who::Secretary), input)
        .await
}

#[tokio::test]
async fn a_time_in_the_past_cannot_be_booked() {
    // NOW is Sunday 22 November 2026 at 10:15 UTC; the office is open every day here.
    let every_day = |doctor_id| {
        let mut s = schedule(doctor_id, 30, 1);
        s.rules = Weekday::ALL
            .iter()
            .map(|d| {
                AvailabilityRule::new(
                    *d,
                    jiff::civil::time(0, 0, 0, 0),
                    jiff::civil::time(23, 0, 0, 0),
                )
                .expect("valid")
            })
            .collect();
        s
    };
    let result = refused_booking(None, "2026-11-22T10:00:00Z", None, every_day).await;
    assert_eq!(unavailable(result), Unavailable::Past);
}

#[tokio::test]
async fn availability_is_read_in_the_clinics_time_zone() {
    // 08:30 UTC on Monday is 09:30 in Paris: inside office hours there, not in UTC.
    let result = refused_booking(None, "2026-11-23T08:30:00Z", None, |d| schedule(d, 30, 1)).await;
    assert_eq!(unavailable(result), Unavailable::OutsideAvailability);

    // 16:45 to 17:15 in Paris runs past the end of the day.
    let result = refused_booking(Some(paris()), "2026-11-23T16:45:00+01:00", None, |d| {
        schedule(d, 30, 1)
    })
    .await;
    assert_eq!(unavailable(result), Unavailable::OutsideAvailability);

    // 08:30 in Paris is before the day starts; 16:30 UTC, inside office hours in UTC, is
    // 17:30 in Paris, after it ends.
    for start in ["2026-11-23T08:30:00+01:00", "2026-11-23T16:30:00Z"] {
        let result = refused_booking(Some(paris()), start, None, |d| schedule(d, 30, 1)).await;
        assert_eq!(
            unavailable(result),
            Unavailable::OutsideAvailability,
            "{start}"
        );
    }
}

#[tokio::test]
async fn the_same_instant_is_bookable_in_the_clinics_time_zone() {
    let people = people(false);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    booking(&mut mocks, &people, Who::Secretary, 30);
    let booked = books(&mut mocks, vec![None]);
    let _published = mocks.publishes();

    mocks
        .appointment_service()
        .book_appointment(
            &people.actor(Who::Secretary),
            booking_input(people.alice.id, people.patient.id, "2026-11-23T08:30:00Z"),
        )
        .await
        .expect("09:30 in Paris is inside office hours");

    assert_eq!(
        single_booking(&booked).0.appointment.start,
        ts("2026-11-23T08:30:00Z")
    );
}

#[tokio::test]
async fn the_doctors_time_off_cannot_be_booked() {
    let mut off = None;
    let result = refused_booking(Some(paris()), "2026-11-23T09:00:00+01:00", None, |d| {
        let t = time_off(
            d,
            MONDAY_9_PARIS + SignedDuration::from_mins(20),
            MONDAY_9_PARIS + SignedDuration::from_hours(3),
        );
        off = Some(t.id);
        with_time_off(schedule(d, 30, 1), t)
    })
    .await;
    assert_eq!(
        unavailable(result),
        Unavailable::TimeOff {
            time_off_id: off.expect("time off built")
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Booking: conflicts and concurrent schedule changes

#[tokio::test]
async fn conflicts_are_answered_with_every_one_and_the_allowed_attempt_is_audited() {
    let people = people(true);
    let secretary = people.actor(Who::Secretary);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    booking(&mut mocks, &people, Who::Secretary, 30);
    let conflicts = two_conflicts();
    let booked = books(
        &mut mocks,
        vec![Some(BookError::Conflicts(conflicts.clone()))],
    );
    let recorded = mocks.audit_succeeds();
    mocks.nothing_published();

    let result = mocks
        .appointment_service()
        .book_appointment(
            &secretary,
            booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            ),
        )
        .await;

    match result {
        Err(AppointmentError::Conflicts(answered)) => {
            // The same instants, at the clinic's offset (Paris in November), ready to show.
            assert_eq!(answered.len(), conflicts.len());
            for (conflict, stored) in answered.iter().zip(&conflicts) {
                assert_eq!(conflict.start.timestamp(), stored.start.timestamp());
                assert_eq!(conflict.end.timestamp(), stored.end.timestamp());
                assert_eq!(conflict.start.offset(), Offset::constant(1));
                assert_eq!(conflict.end.offset(), Offset::constant(1));
            }
        }
        other => panic!("expected Conflicts, got {other:?}"),
    }
    let event = single_event(&recorded);
    assert_allowed(
        &event,
        &secretary,
        Some(people.patient.id),
        AuditAction::AppointmentCreate,
        Basis::Role,
    );
    assert_eq!(
        event,
        single_booking(&booked).1,
        "the event the booking carried"
    );
}

#[tokio::test]
async fn a_schedule_changed_while_booking_is_read_again_and_the_booking_retried() {
    let people = people(true);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    people.named(&mut mocks);
    mocks.facts(
        people.patient.id,
        &people.actor(Who::Secretary),
        Some(UNRELATED),
    );
    people.record_found(&mut mocks);
    let reads = schedule_reads(
        &mut mocks,
        vec![
            schedule(people.alice.id, 30, 7),
            schedule(people.alice.id, 20, 8),
        ],
    );
    let booked = books(&mut mocks, vec![Some(BookError::ScheduleChanged), None]);
    let published = mocks.publishes();
    mocks.nothing_audited();

    let returned = mocks
        .appointment_service()
        .book_appointment(
            &people.actor(Who::Secretary),
            booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            ),
        )
        .await
        .expect("booked on the second try");

    assert_eq!(reads.lock().expect("reads").len(), 2, "read again");
    let booked = booked.lock().expect("booked");
    let versions: Vec<i64> = booked.iter().map(|(b, _, _)| b.schedule_version).collect();
    assert_eq!(versions, [7, 8]);
    // The length as the schedule now says.
    assert_eq!(
        booked[1].0.appointment.end,
        MONDAY_9_PARIS + SignedDuration::from_mins(20)
    );
    assert_eq!(returned, booked[1].0.appointment);
    assert_eq!(published.lock().expect("published").len(), 1);
}

#[tokio::test]
async fn a_schedule_that_keeps_changing_is_retried_three_times_then_an_internal_error() {
    assert_eq!(crate::scheduling::SCHEDULE_RETRIES, 3);
    let people = people(true);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    booking(&mut mocks, &people, Who::Secretary, 30);
    // The first attempt and three retries.
    let booked = books(
        &mut mocks,
        (0..4).map(|_| Some(BookError::ScheduleChanged)).collect(),
    );
    mocks.nothing_published();
    mocks.nothing_audited();

    let result = mocks
        .appointment_service()
        .book_appointment(
            &people.actor(Who::Secretary),
            booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            ),
        )
        .await;

    assert!(is_internal(&result), "{result:?}");
    assert_eq!(booked.lock().expect("booked").len(), 4);
}

#[tokio::test]
async fn a_time_that_became_unavailable_when_the_schedule_was_read_again_is_refused() {
    let people = people(true);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    people.named(&mut mocks);
    mocks.facts(
        people.patient.id,
        &people.actor(Who::Secretary),
        Some(UNRELATED),
    );
    people.record_found(&mut mocks);
    let off = time_off(
        people.alice.id,
        MONDAY_9_PARIS,
        MONDAY_9_PARIS + SignedDuration::from_hours(24),
    );
    let off_id = off.id;
    schedule_reads(
        &mut mocks,
        vec![
            schedule(people.alice.id, 30, 7),
            with_time_off(schedule(people.alice.id, 30, 8), off),
        ],
    );
    let booked = books(&mut mocks, vec![Some(BookError::ScheduleChanged)]);
    mocks.nothing_published();

    let result = mocks
        .appointment_service()
        .book_appointment(
            &people.actor(Who::Secretary),
            booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            ),
        )
        .await;

    assert_eq!(
        unavailable(result),
        Unavailable::TimeOff {
            time_off_id: off_id
        }
    );
    assert_eq!(booked.lock().expect("booked").len(), 1);
}

#[tokio::test]
async fn nothing_is_published_when_the_booking_cannot_be_stored() {
    let people = people(true);
    let mut mocks = Mocks::new();
    booking(&mut mocks, &people, Who::Secretary, 30);
    books(
        &mut mocks,
        vec![Some(BookError::Repository(repository_failure()))],
    );
    mocks.nothing_published();
    mocks.nothing_audited();

    let result = mocks
        .appointment_service()
        .book_appointment(
            &people.actor(Who::Secretary),
            booking_input(people.alice.id, people.patient.id, "2026-11-23T09:00:00Z"),
        )
        .await;

    assert!(is_internal(&result), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Booking: notifications

#[tokio::test]
async fn the_doctor_and_the_patients_account_are_told_of_a_booking_but_never_whoever_booked() {
    for with_account in [true, false] {
        for who in EVERYONE {
            if who == Who::Patient && !with_account {
                continue; // a patient books through their linked account
            }
            let people = people(with_account);
            let caller = people.actor(who);
            let mut mocks = Mocks::new();
            in_paris(&mut mocks);
            booking(&mut mocks, &people, who, 30);
            let booked = books(&mut mocks, vec![None]);
            let expected: Vec<Recipient> = [Some(people.alice.id), people.account()]
                .into_iter()
                .flatten()
                .filter(|u| *u != caller.user_id())
                .map(Recipient::User)
                .collect();
            let published = if expected.is_empty() {
                mocks.nothing_published();
                None
            } else {
                Some(mocks.publishes())
            };

            let returned = mocks
                .appointment_service()
                .book_appointment(
                    &caller,
                    booking_input(
                        people.alice.id,
                        people.patient.id,
                        "2026-11-23T09:00:00+01:00",
                    ),
                )
                .await
                .expect("booked");

            let notices = single_booking(&booked).2;
            assert_eq!(
                recipients(&notices),
                expected,
                "{who:?} account {with_account}"
            );
            for notice in &notices {
                assert_eq!(notice.kind, NotificationKind::AppointmentBooked);
                assert_eq!(notice.data.appointment_id, Some(*returned.id.as_uuid()));
                assert_eq!(notice.data.patient_id, Some(*people.patient.id.as_uuid()));
                assert_eq!(notice.data.actor_id, Some(*caller.user_id().as_uuid()));
                assert_eq!(
                    (notice.data.referral_id, notice.data.emergency_access_id),
                    (None, None)
                );
            }
            if let Some(published) = published {
                let published = published.lock().expect("published");
                let to: Vec<UserId> = published[0]
                    .iter()
                    .map(|n: &Notification| n.recipient)
                    .collect();
                assert_eq!(
                    to.into_iter().map(Recipient::User).collect::<Vec<_>>(),
                    expected,
                    "what was stored is published"
                );
            }
        }
    }
}

#[tokio::test]
async fn booking_titles_show_the_clinics_local_time_and_the_booker_but_never_the_patients_name() {
    let cases = [
        (
            Who::Secretary,
            "Appointment on Mon 23 Nov 2026 at 09:00 booked by Sam Smith",
        ),
        (
            Who::Doctor,
            "Appointment on Mon 23 Nov 2026 at 09:00 booked by Dr Alice Adams",
        ),
    ];
    for (who, title) in cases {
        let people = people(true);
        let mut mocks = Mocks::new();
        in_paris(&mut mocks);
        booking(&mut mocks, &people, who, 30);
        let booked = books(&mut mocks, vec![None]);
        let _published = mocks.publishes();

        mocks
            .appointment_service()
            .book_appointment(
                &people.actor(who),
                booking_input(people.alice.id, people.patient.id, "2026-11-23T08:00:00Z"),
            )
            .await
            .expect("booked");

        for notice in single_booking(&booked).2 {
            assert_eq!(notice.data.title, title, "{who:?}");
        }
    }

    // Booked by the patient herself: the doctor is told, without her name.
    let people = people(true);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    booking(&mut mocks, &people, Who::Patient, 30);
    let booked = books(&mut mocks, vec![None]);
    let _published = mocks.publishes();
    mocks
        .appointment_service()
        .book_appointment(
            &people.actor(Who::Patient),
            booking_input(
                people.alice.id,
                people.patient.id,
                "2026-11-23T09:00:00+01:00",
            ),
        )
        .await
        .expect("booked");
    let notices = single_booking(&booked).2;
    assert_eq!(notices.len(), 1);
    let title = &notices[0].data.title;
    assert!(
        title.starts_with("Appointment on Mon 23 Nov 2026 at 09:00 booked by "),
        "{title}"
    );
    for secret in ["Ada Lovelace", "Lovelace", REASON] {
        assert!(!title.contains(secret), "{title:?} shows {secret:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Seeing an appointment: reading it, its history

/// The appointment is looked up once by id.
fn found(mocks: &mut Mocks, appointment: &Appointment) {
    let answer = appointment.clone();
    mocks
        .appointments
        .expect_get()
        .with(eq(appointment.id))
        .times(1)
        .returning(move |_| Ok(Some(answer.clone())));
}

/// Those who see an appointment, each on their basis.
fn seers(people: &People) -> Vec<(Actor, Basis)> {
    vec![
        (people.actor(Who::Secretary), Basis::Role),
        (actor(Role::Secretary), Basis::Role),
        (people.actor(Who::Doctor), Basis::Appointment),
        (people.actor(Who::Patient), Basis::OwnRecord),
    ]
}

/// How many kinds of caller may not see an appointment (see [`outsider`]).
const OUTSIDERS: usize = 4;

/// The `i`th of those who may not see an appointment: another doctor and another patient (told
/// it does not exist), laboratory staff and an administrator (refused: `true`).
fn outsider(mocks: &mut Mocks, i: usize) -> (Actor, bool) {
    match i {
        0 => (actor(Role::Doctor), false),
        1 => {
            let other_patient = actor(Role::Patient);
            let other_record = stored_patient(Some(other_patient.user_id()));
            mocks
                .patients
                .expect_find_by_user()
                .with(eq(other_patient.user_id()))
                .returning(move |_| Ok(Some(other_record.clone())));
            (other_patient, false)
        }
        2 => (actor(Role::Laboratory), true),
        _ => (actor(Role::Admin), true),
    }
}

fn refused_as<T: std::fmt::Debug>(result: &Result<T, AppointmentError>, forbidden: bool) -> bool {
    if forbidden {
        matches!(result, Err(AppointmentError::Forbidden))
    } else {
        matches!(result, Err(AppointmentError::AppointmentNotFound))
    }
}

#[tokio::test]
async fn its_doctor_its_patient_and_any_secretary_read_an_appointment_and_are_audited() {
    let people = people(true);
    for (reader, basis) in seers(&people) {
        let appointment = people.appointment(AppointmentStatus::Booked);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.own_record_found(&mut mocks);
        let recorded = mocks.audit_succeeds();

        let read = mocks
            .appointment_service()
            .appointment(&reader, appointment.id)
            .await
            .expect("read");

        assert_eq!(read, appointment, "{basis:?}");
        assert_allowed(
            &single_event(&recorded),
            &reader,
            Some(people.patient.id),
            AuditAction::AppointmentRead,
            basis,
        );
    }
}

#[tokio::test]
async fn others_are_refused_an_appointment_and_the_attempt_is_audited_with_its_patient() {
    let people = people(true);
    for i in 0..OUTSIDERS {
        let appointment = people.appointment(AppointmentStatus::Booked);
        let mut mocks = Mocks::new();
        let (reader, forbidden) = outsider(&mut mocks, i);
        found(&mut mocks, &appointment);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .appointment(&reader, appointment.id)
            .await;

        assert!(refused_as(&result, forbidden), "{reader:?}: {result:?}");
        assert_denied(
            &single_event(&recorded),
            &reader,
            Some(people.patient.id),
            AuditAction::AppointmentRead,
        );
    }
}

#[tokio::test]
async fn a_patient_without_a_linked_record_does_not_see_any_appointment() {
    let people = people(true);
    let appointment = people.appointment(AppointmentStatus::Booked);
    let stranger = actor(Role::Patient);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.patients.expect_find_by_user().returning(|_| Ok(None));
    let recorded = mocks.audit_succeeds();

    let result = mocks
        .appointment_service()
        .appointment(&stranger, appointment.id)
        .await;

    assert!(
        matches!(result, Err(AppointmentError::AppointmentNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &stranger,
        Some(people.patient.id),
        AuditAction::AppointmentRead,
    );
}

#[tokio::test]
async fn an_unknown_appointment_is_not_found_and_audited_without_a_patient() {
    for (role, forbidden) in [
        (Role::Secretary, false),
        (Role::Doctor, false),
        (Role::Patient, false),
        (Role::Laboratory, true),
        (Role::Admin, true),
    ] {
        let reader = actor(role);
        let mut mocks = Mocks::new();
        mocks
            .appointments
            .expect_get()
            .times(1)
            .returning(|_| Ok(None));
        mocks.patients.expect_find_by_user().returning(|_| Ok(None));
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .appointment(&reader, AppointmentId::generate())
            .await;

        if forbidden {
            assert!(
                matches!(result, Err(AppointmentError::Forbidden)),
                "{role}: {result:?}"
            );
        } else {
            assert!(
                matches!(result, Err(AppointmentError::AppointmentNotFound)),
                "{role}: {result:?}"
            );
        }
        assert_denied(
            &single_event(&recorded),
            &reader,
            None,
            AuditAction::AppointmentRead,
        );
    }
}

#[tokio::test]
async fn the_history_is_read_by_whoever_sees_the_appointment_and_audited() {
    let people = people(true);
    for (reader, basis) in seers(&people) {
        let appointment = people.appointment(AppointmentStatus::Cancelled);
        let history = vec![
            HistoryEntry {
                at: NOW - SignedDuration::from_hours(24 * 3),
                actor_id: people.sam.id,
                actor_name: Some(people.sam.full_name.clone()),
                change: HistoryChange::Booked,
                status: AppointmentStatus::Booked,
                start: appointment.start,
                end: appointment.end,
                reason: None,
            },
            HistoryEntry {
                at: NOW - SignedDuration::from_hours(24),
                actor_id: people.alice.id,
                actor_name: Some(people.alice.full_name.clone()),
                change: HistoryChange::Status,
                status: AppointmentStatus::Cancelled,
                start: appointment.start,
                end: appointment.end,
                reason: Some(text(CANCEL_REASON)),
            },
        ];
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.own_record_found(&mut mocks);
        let answer = history.clone();
        mocks
            .appointments
            .expect_history()
            .with(eq(appointment.id))
            .times(1)
            .returning(move |_| Ok(answer.clone()));
        let recorded = mocks.audit_succeeds();

        let read = mocks
            .appointment_service()
            .appointment_history(&reader, appointment.id)
            .await
            .expect("read");

        assert_eq!(read, history);
        assert_allowed(
            &single_event(&recorded),
            &reader,
            Some(people.patient.id),
            AuditAction::AppointmentHistory,
            basis,
        );
    }
}

#[tokio::test]
async fn others_are_refused_the_history_without_it_being_read() {
    let people = people(true);
    for i in 0..OUTSIDERS {
        let appointment = people.appointment(AppointmentStatus::Booked);
        let mut mocks = Mocks::new();
        let (reader, forbidden) = outsider(&mut mocks, i);
        found(&mut mocks, &appointment);
        mocks.appointments.expect_history().never();
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .appointment_history(&reader, appointment.id)
            .await;

        assert!(refused_as(&result, forbidden), "{reader:?}: {result:?}");
        assert_denied(
            &single_event(&recorded),
            &reader,
            Some(people.patient.id),
            AuditAction::AppointmentHistory,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Listing

/// What `list` was called with.
type Listed = Captured<(AppointmentFilter, PageRequest<AppointmentId>)>;

fn lists(mocks: &mut Mocks, items: Vec<Appointment>) -> Listed {
    let listed = Listed::default();
    let log = Arc::clone(&listed);
    mocks
        .appointments
        .expect_list()
        .times(1)
        .returning(move |filter, page| {
            log.lock().expect("log").push((*filter, page));
            Ok(Page {
                items: items.clone(),
                next: None,
            })
        });
    listed
}

fn single_list(listed: &Listed) -> AppointmentFilter {
    let listed = listed.lock().expect("listed");
    assert_eq!(listed.len(), 1);
    listed[0].0
}

/// A filter naming everything but the doctor and the patient.
fn window_filter() -> AppointmentFilter {
    AppointmentFilter {
        doctor_id: None,
        patient_id: None,
        from: Some(MONDAY_9_PARIS),
        to: Some(MONDAY_9_PARIS + SignedDuration::from_hours(24 * 7)),
        status: Some(AppointmentStatus::Booked),
    }
}

#[tokio::test]
async fn laboratory_staff_and_administrators_may_not_list_appointments() {
    for role in [Role::Laboratory, Role::Admin] {
        let caller = actor(role);
        let patient_id = PatientId::generate();
        let mut mocks = Mocks::new();
        mocks.appointments.expect_list().never();
        let recorded = mocks.audit_succeeds();
        let filter = AppointmentFilter {
            patient_id: Some(patient_id),
            ..window_filter()
        };

        let result = mocks
            .appointment_service()
            .list_appointments(&caller, filter, PageRequest::first(10))
            .await;

        assert!(
            matches!(result, Err(AppointmentError::Forbidden)),
            "{role}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(patient_id),
            AuditAction::AppointmentList,
        );
    }
}

#[tokio::test]
async fn a_doctor_lists_only_their_own_appointments() {
    let people = people(true);
    let doctor = people.actor(Who::Doctor);
    for asked in [None, Some(people.alice.id)] {
        let mut mocks = Mocks::new();
        let listed = lists(&mut mocks, Vec::new());
        mocks.nothing_audited();
        let filter = AppointmentFilter {
            doctor_id: asked,
            patient_id: Some(people.patient.id),
            ..window_filter()
        };

        mocks
            .appointment_service()
            .list_appointments(&doctor, filter, PageRequest::first(10))
            .await
            .expect("listed");

        assert_eq!(
            single_list(&listed),
            AppointmentFilter {
                doctor_id: Some(people.alice.id),
                ..filter
            },
            "{asked:?}"
        );
    }
}

#[tokio::test]
async fn a_doctor_asking_for_another_doctors_appointments_is_refused_and_audited() {
    let doctor = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    mocks.appointments.expect_list().never();
    let recorded = mocks.audit_succeeds();
    let filter = AppointmentFilter {
        doctor_id: Some(UserId::generate()),
        ..window_filter()
    };

    let result = mocks
        .appointment_service()
        .list_appointments(&doctor, filter, PageRequest::first(10))
        .await;

    assert!(
        matches!(result, Err(AppointmentError::Forbidden)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &doctor,
        None,
        AuditAction::AppointmentList,
    );
}

#[tokio::test]
async fn a_patient_lists_only_the_appointments_of_their_own_record() {
    let people = people(true);
    let patient = people.actor(Who::Patient);
    for asked in [None, Some(people.patient.id)] {
        let mut mocks = Mocks::new();
        people.own_record_found(&mut mocks);
        let listed = lists(&mut mocks, Vec::new());
        mocks.nothing_audited();
        let filter = AppointmentFilter {
            doctor_id: Some(people.alice.id),
            patient_id: asked,
            ..window_filter()
        };

        mocks
            .appointment_service()
            .list_appointments(&patient, filter, PageRequest::first(10))
            .await
            .expect("listed");

        assert_eq!(
            single_list(&listed),
            AppointmentFilter {
                patient_id: Some(people.patient.id),
                ..filter
            },
            "{asked:?}"
        );
    }
}

#[tokio::test]
async fn a_patient_asking_for_another_patients_appointments_is_refused_and_audited() {
    for linked in [true, false] {
        let people = people(true);
        let patient = people.actor(Who::Patient);
        let other = PatientId::generate();
        let mut mocks = Mocks::new();
        if linked {
            people.own_record_found(&mut mocks);
        } else {
            mocks.patients.expect_find_by_user().returning(|_| Ok(None));
        }
        mocks.appointments.expect_list().never();
        let recorded = mocks.audit_succeeds();
        let filter = AppointmentFilter {
            patient_id: Some(other),
            ..window_filter()
        };

        let result = mocks
            .appointment_service()
            .list_appointments(&patient, filter, PageRequest::first(10))
            .await;

        assert!(
            matches!(result, Err(AppointmentError::Forbidden)),
            "linked {linked}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &patient,
            Some(other),
            AuditAction::AppointmentList,
        );
    }
}

#[tokio::test]
async fn a_patient_without_a_linked_record_lists_nothing_and_nothing_is_read() {
    let patient = actor(Role::Patient);
    let mut mocks = Mocks::new();
    mocks
        .patients
        .expect_find_by_user()
        .with(eq(patient.user_id()))
        .times(1)
        .returning(|_| Ok(None));
    mocks.appointments.expect_list().never();
    mocks.nothing_audited();

    let page = mocks
        .appointment_service()
        .list_appointments(&patient, window_filter(), PageRequest::first(10))
        .await
        .expect("listed");

    assert_eq!(
        page,
        Page {
            items: Vec::new(),
            next: None
        }
    );
}

#[tokio::test]
async fn a_secretary_lists_as_asked_and_each_patient_on_the_page_is_audited_once() {
    let people = people(true);
    let secretary = actor(Role::Secretary);
    let other_patient = PatientId::generate();
    let mut third = people.appointment(AppointmentStatus::Booked);
    third.patient_id = other_patient;
    let items = vec![
        people.appointment(AppointmentStatus::Booked),
        third,
        people.appointment_at(
            AppointmentStatus::Completed,
            MONDAY_9_PARIS + SignedDuration::from_hours(2),
        ),
    ];
    let mut mocks = Mocks::new();
    let listed = lists(&mut mocks, items.clone());
    let recorded = mocks.audit_succeeds();
    let filter = AppointmentFilter {
        doctor_id: Some(people.alice.id),
        patient_id: None,
        ..window_filter()
    };
    let after = AppointmentId::generate();
    let page_asked = PageRequest::new(Some(3), Some(after)).expect("valid page");

    let page = mocks
        .appointment_service()
        .list_appointments(&secretary, filter, page_asked)
        .await
        .expect("listed");

    assert_eq!(page.items, items);
    {
        let listed = listed.lock().expect("listed");
        assert_eq!(listed[0], (filter, page_asked), "as asked");
    }
    let batches = recorded.lock().expect("recorded");
    assert_eq!(batches.len(), 1, "one call to the audit log");
    let patients: Vec<Option<PatientId>> = batches[0].iter().map(|e| e.patient_id).collect();
    assert_eq!(patients, [Some(people.patient.id), Some(other_patient)]);
    for event in &batches[0] {
        assert_eq!(event.action, AuditAction::AppointmentList);
        assert_eq!(event.outcome, Outcome::Allowed);
        assert_eq!(event.basis, Some(Basis::Role));
        assert_eq!(event.actor_id, secretary.user_id());
    }
}

#[tokio::test]
async fn listings_audit_on_the_callers_basis() {
    let people = people(true);
    for (who, basis) in [
        (Who::Doctor, Basis::Appointment),
        (Who::Patient, Basis::OwnRecord),
    ] {
        let mut mocks = Mocks::new();
        people.own_record_found(&mut mocks);
        lists(
            &mut mocks,
            vec![people.appointment(AppointmentStatus::Booked)],
        );
        let recorded = mocks.audit_succeeds();
        let caller = people.actor(who);

        mocks
            .appointment_service()
            .list_appointments(
                &caller,
                AppointmentFilter::default(),
                PageRequest::first(10),
            )
            .await
            .expect("listed");

        assert_allowed(
            &single_event(&recorded),
            &caller,
            Some(people.patient.id),
            AuditAction::AppointmentList,
            basis,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Status changes

/// What `change_status` was called with.
type Changed = Captured<(StatusUpdate, AuditEvent, Vec<NewNotification>)>;

fn changes_status(mocks: &mut Mocks, outcome: Option<BookError>) -> Changed {
    let changed = Changed::default();
    let log = Arc::clone(&changed);
    let outcome = Mutex::new(outcome);
    mocks
        .appointments
        .expect_change_status()
        .times(1)
        .in_sequence(&mut mocks.seq)
        .returning(move |update, event, notices| {
            log.lock()
                .expect("log")
                .push((update.clone(), event.clone(), notices.to_vec()));
            match outcome.lock().expect("outcome").take() {
                None => Ok(stored(notices, &[])),
                Some(error) => Err(error),
            }
        });
    changed
}

fn single_change(changed: &Changed) -> (StatusUpdate, AuditEvent, Vec<NewNotification>) {
    let changed = changed.lock().expect("changed");
    assert_eq!(changed.len(), 1, "one change stored");
    changed[0].clone()
}

fn status_input(status: &str, reason: Option<&str>) -> StatusChange {
    StatusChange {
        to: status.parse().expect("a status"),
        reason: reason.map(str::to_owned),
    }
}

#[tokio::test]
async fn others_may_not_change_an_appointments_status_and_are_audited_with_its_patient() {
    let people = people(true);
    for i in 0..OUTSIDERS {
        let appointment = people.appointment(AppointmentStatus::Booked);
        let mut mocks = Mocks::new();
        let (caller, forbidden) = outsider(&mut mocks, i);
        found(&mut mocks, &appointment);
        no_writes(&mut mocks);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .change_appointment_status(
                &caller,
                appointment.id,
                status_input("cancelled", Some(CANCEL_REASON)),
            )
            .await;

        assert!(refused_as(&result, forbidden), "{caller:?}: {result:?}");
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(people.patient.id),
            AuditAction::AppointmentStatus,
        );
    }
}

#[tokio::test]
async fn each_role_sets_only_its_statuses_and_the_refusal_is_audited() {
    let cases = [
        (Who::Secretary, AppointmentStatus::Booked, "in_progress"),
        (Who::Secretary, AppointmentStatus::InProgress, "completed"),
        (Who::Doctor, AppointmentStatus::Booked, "checked_in"),
        (Who::Doctor, AppointmentStatus::Booked, "no_show"),
        (Who::Patient, AppointmentStatus::Booked, "checked_in"),
        (Who::Patient, AppointmentStatus::Booked, "no_show"),
    ];
    for (who, from, to) in cases {
        let people = people(true);
        let appointment = people.appointment(from);
        let caller = people.actor(who);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.own_record_found(&mut mocks);
        no_writes(&mut mocks);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .change_appointment_status(&caller, appointment.id, status_input(to, None))
            .await;

        let expected: AppointmentStatus = to.parse().expect("a status");
        assert!(
            matches!(
                result,
                Err(AppointmentError::AppointmentChange(StatusChangeError::Role(s))) if s == expected
            ),
            "{who:?} {to}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(people.patient.id),
            AuditAction::AppointmentStatus,
        );
    }
}

#[tokio::test]
async fn a_change_the_state_machine_refuses_is_a_conflict_with_the_current_status() {
    let cases = [
        (Who::Secretary, AppointmentStatus::Completed, "cancelled"),
        (Who::Secretary, AppointmentStatus::InProgress, "no_show"),
        (Who::Doctor, AppointmentStatus::Booked, "completed"),
        (Who::Doctor, AppointmentStatus::Cancelled, "in_progress"),
        (Who::Patient, AppointmentStatus::NoShow, "cancelled"),
    ];
    for (who, from, to) in cases {
        let people = people(true);
        let appointment = people.appointment(from);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.own_record_found(&mut mocks);
        no_writes(&mut mocks);
        let reason = (to == "cancelled").then_some(CANCEL_REASON);

        let result = mocks
            .appointment_service()
            .change_appointment_status(&people.actor(who), appointment.id, status_input(to, reason))
            .await;

        assert!(
            matches!(
                result,
                Err(AppointmentError::AppointmentChange(StatusChangeError::NotFrom { from: f, .. })) if f == from
            ),
            "{who:?} {from} -> {to}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_patient_cancels_until_two_hours_before_the_start_and_not_after() {
    for (start, in_time) in [
        (NOW + SignedDuration::from_hours(2), true),
        (
            NOW + SignedDuration::from_hours(2) - SignedDuration::from_mins(1),
            false,
        ),
        (NOW + SignedDuration::from_mins(5), false),
    ] {
        let people = people(true);
        let appointment = people.appointment_at(AppointmentStatus::Booked, start);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.own_record_found(&mut mocks);
        people.named(&mut mocks);
        people.record_found(&mut mocks);
        let changed = if in_time {
            let changed = changes_status(&mut mocks, None);
            let _published = mocks.publishes();
            Some(changed)
        } else {
            no_writes(&mut mocks);
            None
        };

        let result = mocks
            .appointment_service()
            .change_appointment_status(
                &people.actor(Who::Patient),
                appointment.id,
                status_input("cancelled", Some(CANCEL_REASON)),
            )
            .await;

        if in_time {
            assert!(result.is_ok(), "{start}: {result:?}");
            assert_eq!(
                single_change(&changed.expect("set")).0.to,
                AppointmentStatus::Cancelled
            );
        } else {
            assert!(
                matches!(
                    result,
                    Err(AppointmentError::AppointmentChange(
                        StatusChangeError::TooLate
                    ))
                ),
                "{start}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn cancelling_needs_a_reason_and_no_other_change_takes_one() {
    let cases: [(Who, AppointmentStatus, StatusChange); 4] = [
        (
            Who::Secretary,
            AppointmentStatus::Booked,
            status_input("cancelled", None),
        ),
        (
            Who::Doctor,
            AppointmentStatus::CheckedIn,
            status_input("cancelled", Some("  ")),
        ),
        (
            Who::Secretary,
            AppointmentStatus::Booked,
            status_input("checked_in", Some("late")),
        ),
        (
            Who::Doctor,
            AppointmentStatus::InProgress,
            status_input("completed", Some("fine")),
        ),
    ];
    for (who, from, input) in cases {
        let people = people(true);
        let appointment = people.appointment(from);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        no_writes(&mut mocks);
        mocks.nothing_audited();

        let result = mocks
            .appointment_service()
            .change_appointment_status(&people.actor(who), appointment.id, input.clone())
            .await;

        let ok = match input.reason.as_deref() {
            None => matches!(
                result,
                Err(AppointmentError::AppointmentChange(
                    StatusChangeError::Reason(ReasonError::Missing)
                ))
            ),
            Some("  ") => matches!(
                result,
                Err(AppointmentError::AppointmentChange(
                    StatusChangeError::Reason(ReasonError::Text(_))
                ))
            ),
            Some(_) => matches!(
                result,
                Err(AppointmentError::AppointmentChange(
                    StatusChangeError::UnexpectedReason
                ))
            ),
        };
        assert!(ok, "{who:?} {input:?}: {result:?}");
    }
}

#[tokio::test]
async fn the_doctor_stays_on_the_care_team_30_days_after_an_appointment_is_over_and_no_longer() {
    let cases = [
        (
            Who::Secretary,
            AppointmentStatus::Booked,
            "checked_in",
            false,
        ),
        (
            Who::Doctor,
            AppointmentStatus::CheckedIn,
            "in_progress",
            false,
        ),
        (
            Who::Doctor,
            AppointmentStatus::InProgress,
            "completed",
            true,
        ),
        (Who::Secretary, AppointmentStatus::Booked, "no_show", true),
        (Who::Secretary, AppointmentStatus::Booked, "cancelled", true),
        (Who::Doctor, AppointmentStatus::CheckedIn, "cancelled", true),
        (Who::Patient, AppointmentStatus::Booked, "cancelled", true),
    ];
    for (who, from, to, closes) in cases {
        let people = people(true);
        let appointment = people.appointment(from);
        let caller = people.actor(who);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.own_record_found(&mut mocks);
        people.named(&mut mocks);
        people.record_found(&mut mocks);
        let changed = changes_status(&mut mocks, None);
        mocks.publisher.expect_publish().returning(|_| ());
        mocks.nothing_audited();
        let reason = (to == "cancelled").then_some(CANCEL_REASON);

        let returned = mocks
            .appointment_service()
            .change_appointment_status(&caller, appointment.id, status_input(to, reason))
            .await
            .expect("changed");

        let (update, event, _) = single_change(&changed);
        let expected: AppointmentStatus = to.parse().expect("a status");
        assert_eq!(update.id, appointment.id);
        assert_eq!((update.from, update.to), (from, expected), "{who:?} {to}");
        assert_eq!(update.reason.as_ref().map(Text::as_str), reason);
        assert_eq!((update.at, update.actor_id), (NOW, caller.user_id()));
        assert_eq!(
            update.care_team_until,
            closes.then_some(NOW + SignedDuration::from_hours(24 * 30)),
            "{who:?} {to}"
        );
        assert_eq!(CARE_TEAM_AFTER_VISIT, SignedDuration::from_hours(24 * 30));
        assert_allowed(
            &event,
            &caller,
            Some(people.patient.id),
            AuditAction::AppointmentStatus,
            seen_on(who),
        );
        assert_eq!(returned.status, expected);
        assert_eq!(returned.cancel_reason.as_ref().map(Text::as_str), reason);
        assert_eq!(returned.updated_at, NOW);
        assert_eq!(
            (returned.start, returned.end),
            (appointment.start, appointment.end)
        );
    }
}

#[tokio::test]
async fn a_status_changed_concurrently_is_stale_and_nothing_is_published() {
    let people = people(true);
    let appointment = people.appointment(AppointmentStatus::Booked);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    people.named(&mut mocks);
    people.record_found(&mut mocks);
    changes_status(&mut mocks, Some(BookError::Stale));
    mocks.nothing_published();
    mocks.nothing_audited();

    let result = mocks
        .appointment_service()
        .change_appointment_status(
            &people.actor(Who::Secretary),
            appointment.id,
            status_input("cancelled", Some(CANCEL_REASON)),
        )
        .await;

    assert!(matches!(result, Err(AppointmentError::Stale)), "{result:?}");
}

#[tokio::test]
async fn a_cancellation_tells_the_doctor_and_the_patients_account_but_not_whoever_cancelled() {
    for with_account in [true, false] {
        for who in EVERYONE {
            if who == Who::Patient && !with_account {
                continue;
            }
            let people = people(with_account);
            let appointment = people.appointment(AppointmentStatus::Booked);
            let caller = people.actor(who);
            let mut mocks = Mocks::new();
            in_paris(&mut mocks);
            found(&mut mocks, &appointment);
            people.own_record_found(&mut mocks);
            people.named(&mut mocks);
            people.record_found(&mut mocks);
            let changed = changes_status(&mut mocks, None);
            let expected: Vec<Recipient> = [Some(people.alice.id), people.account()]
                .into_iter()
                .flatten()
                .filter(|u| *u != caller.user_id())
                .map(Recipient::User)
                .collect();
            if expected.is_empty() {
                mocks.nothing_published();
            } else {
                let _published = mocks.publishes();
            }

            mocks
                .appointment_service()
                .change_appointment_status(
                    &caller,
                    appointment.id,
                    status_input("cancelled", Some(CANCEL_REASON)),
                )
                .await
                .expect("cancelled");

            let notices = single_change(&changed).2;
            assert_eq!(
                recipients(&notices),
                expected,
                "{who:?} account {with_account}"
            );
            for notice in &notices {
                assert_eq!(notice.kind, NotificationKind::AppointmentCancelled);
                assert_eq!(notice.data.appointment_id, Some(*appointment.id.as_uuid()));
                assert_eq!(notice.data.patient_id, Some(*people.patient.id.as_uuid()));
                assert_eq!(notice.data.actor_id, Some(*caller.user_id().as_uuid()));
                let title = &notice.data.title;
                assert!(
                    title.starts_with("Appointment on Mon 23 Nov 2026 at 09:00 cancelled by "),
                    "{title}"
                );
                for secret in ["Ada Lovelace", "Lovelace", REASON, CANCEL_REASON] {
                    assert!(!title.contains(secret), "{title:?} shows {secret:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn other_status_changes_notify_nobody() {
    let cases = [
        (Who::Secretary, AppointmentStatus::Booked, "checked_in"),
        (Who::Secretary, AppointmentStatus::Booked, "no_show"),
        (Who::Doctor, AppointmentStatus::CheckedIn, "in_progress"),
        (Who::Doctor, AppointmentStatus::InProgress, "completed"),
    ];
    for (who, from, to) in cases {
        let people = people(true);
        let appointment = people.appointment(from);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.named(&mut mocks);
        people.record_found(&mut mocks);
        let changed = changes_status(&mut mocks, None);
        mocks.nothing_published();

        mocks
            .appointment_service()
            .change_appointment_status(&people.actor(who), appointment.id, status_input(to, None))
            .await
            .expect("changed");

        assert!(single_change(&changed).2.is_empty(), "{who:?} {to}");
    }
}

// ---------------------------------------------------------------------------------------------
// Rescheduling

/// What `reschedule` was called with.
type Moved = Captured<(Reschedule, AuditEvent, Vec<NewNotification>)>;

fn reschedules(mocks: &mut Mocks, outcomes: Vec<Option<BookError>>) -> Moved {
    let moved = Moved::default();
    let log = Arc::clone(&moved);
    let times = outcomes.len();
    let outcomes = Mutex::new(outcomes);
    mocks
        .appointments
        .expect_reschedule()
        .times(times)
        .in_sequence(&mut mocks.seq)
        .returning(move |change, event, notices| {
            log.lock()
                .expect("log")
                .push((change.clone(), event.clone(), notices.to_vec()));
            match outcomes.lock().expect("outcomes").remove(0) {
                None => Ok(stored(notices, &[])),
                Some(error) => Err(error),
            }
        });
    moved
}

fn move_to(start: &str) -> RescheduleRequest {
    RescheduleRequest {
        start: minute(start),
        end: None,
    }
}

/// Tuesday 24 November 2026, 10:00 in Paris: `2026-11-24T09:00:00Z`.
const TUESDAY_10_PARIS: Timestamp = Timestamp::constant(1795510800, 0);

/// Everything a reschedule by `who` reads goes well (Paris, office hours, version 9).
fn rescheduling(mocks: &mut Mocks, people: &People, appointment: &Appointment) -> ScheduleReads {
    in_paris(mocks);
    found(mocks, appointment);
    people.own_record_found(mocks);
    people.named(mocks);
    people.record_found(mocks);
    schedule_reads(mocks, vec![schedule(people.alice.id, 30, 9)])
}

#[tokio::test]
async fn others_may_not_reschedule_an_appointment_and_are_audited_with_its_patient() {
    let people = people(true);
    for i in 0..OUTSIDERS {
        let appointment = people.appointment(AppointmentStatus::Booked);
        let mut mocks = Mocks::new();
        let (caller, forbidden) = outsider(&mut mocks, i);
        found(&mut mocks, &appointment);
        mocks.schedules.expect_schedule().never();
        no_writes(&mut mocks);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .reschedule_appointment(
                &caller,
                appointment.id,
                move_to("2026-11-24T10:00:00+01:00"),
            )
            .await;

        assert!(refused_as(&result, forbidden), "{caller:?}: {result:?}");
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(people.patient.id),
            AuditAction::AppointmentReschedule,
        );
    }
}

#[tokio::test]
async fn only_a_booked_appointment_is_rescheduled() {
    for status in AppointmentStatus::ALL
        .iter()
        .copied()
        .filter(|s| *s != AppointmentStatus::Booked)
    {
        for who in EVERYONE {
            let people = people(true);
            let appointment = people.appointment_at(status, NOW + SignedDuration::from_hours(24));
            let mut mocks = Mocks::new();
            found(&mut mocks, &appointment);
            people.own_record_found(&mut mocks);
            mocks.schedules.expect_schedule().never();
            no_writes(&mut mocks);
            mocks.nothing_audited();

            let result = mocks
                .appointment_service()
                .reschedule_appointment(
                    &people.actor(who),
                    appointment.id,
                    move_to("2026-11-24T10:00:00+01:00"),
                )
                .await;

            assert!(
                matches!(result, Err(AppointmentError::NotReschedulable(s)) if s == status),
                "{status} {who:?}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_patient_moves_their_appointment_only_until_two_hours_before_it_starts() {
    for (start, in_time) in [
        (NOW + SignedDuration::from_hours(2), true),
        (
            NOW + SignedDuration::from_hours(2) - SignedDuration::from_mins(1),
            false,
        ),
    ] {
        let people = people(true);
        let appointment = people.appointment_at(AppointmentStatus::Booked, start);
        let mut mocks = Mocks::new();
        let moved = if in_time {
            rescheduling(&mut mocks, &people, &appointment);
            let moved = reschedules(&mut mocks, vec![None]);
            let _published = mocks.publishes();
            Some(moved)
        } else {
            found(&mut mocks, &appointment);
            people.own_record_found(&mut mocks);
            mocks.schedules.expect_schedule().never();
            no_writes(&mut mocks);
            None
        };

        let result = mocks
            .appointment_service()
            .reschedule_appointment(
                &people.actor(Who::Patient),
                appointment.id,
                move_to("2026-11-24T10:00:00+01:00"),
            )
            .await;

        if in_time {
            assert!(result.is_ok(), "{start}: {result:?}");
            assert_eq!(moved.expect("set").lock().expect("moved").len(), 1);
        } else {
            assert!(
                matches!(
                    result,
                    Err(AppointmentError::AppointmentChange(
                        StatusChangeError::TooLate
                    ))
                ),
                "{start}: {result:?}"
            );
        }
    }
    // Staff are not bound by the patient's notice.
    for who in [Who::Secretary, Who::Doctor] {
        let people = people(true);
        let appointment = people.appointment_at(
            AppointmentStatus::Booked,
            NOW + SignedDuration::from_mins(30),
        );
        let mut mocks = Mocks::new();
        rescheduling(&mut mocks, &people, &appointment);
        reschedules(&mut mocks, vec![None]);
        let _published = mocks.publishes();

        let result = mocks
            .appointment_service()
            .reschedule_appointment(
                &people.actor(who),
                appointment.id,
                move_to("2026-11-24T10:00:00+01:00"),
            )
            .await;

        assert!(result.is_ok(), "{who:?}: {result:?}");
    }
}

#[tokio::test]
async fn whether_an_appointment_may_move_is_answered_with_the_refusals_of_moving_it() {
    // Those who may not see it: refused, and audited as a reschedule with its patient.
    let parties = people(true);
    for i in 0..OUTSIDERS {
        let appointment = parties.appointment(AppointmentStatus::Booked);
        let mut mocks = Mocks::new();
        let (caller, forbidden) = outsider(&mut mocks, i);
        found(&mut mocks, &appointment);
        mocks.schedules.expect_schedule().never();
        no_writes(&mut mocks);
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .appointment_service()
            .check_reschedulable(&caller, appointment.id)
            .await;

        assert!(refused_as(&result, forbidden), "{caller:?}: {result:?}");
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(parties.patient.id),
            AuditAction::AppointmentReschedule,
        );
    }
    // A patient too late, an appointment no longer booked: refused, unaudited, as moving it is.
    let cases = [
        (
            Who::Patient,
            AppointmentStatus::Booked,
            NOW + SignedDuration::from_hours(2) - SignedDuration::from_mins(1),
            Some("too late"),
        ),
        (
            Who::Patient,
            AppointmentStatus::Booked,
            NOW + SignedDuration::from_hours(2),
            None,
        ),
        (
            Who::Secretary,
            AppointmentStatus::Booked,
            NOW + SignedDuration::from_mins(30),
            None,
        ),
        (
            Who::Doctor,
            AppointmentStatus::CheckedIn,
            NOW + SignedDuration::from_hours(24),
            Some("not booked"),
        ),
        (
            Who::Secretary,
            AppointmentStatus::Cancelled,
            NOW + SignedDuration::from_hours(24),
            Some("not booked"),
        ),
    ];
    for (who, status, start, refusal) in cases {
        let people = people(true);
        let appointment = people.appointment_at(status, start);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        people.own_record_found(&mut mocks);
        mocks.schedules.expect_schedule().never();
        no_writes(&mut mocks);
        mocks.nothing_audited();

        let result = mocks
            .appointment_service()
            .check_reschedulable(&people.actor(who), appointment.id)
            .await;

        let answered = match result {
            Ok(()) => None,
            Err(AppointmentError::AppointmentChange(StatusChangeError::TooLate)) => {
                Some("too late")
            }
            Err(AppointmentError::NotReschedulable(s)) if s == status => Some("not booked"),
            Err(other) => panic!("{who:?} {status}: {other:?}"),
        };
        assert_eq!(answered, refusal, "{who:?} {status} {start}");
    }
}

#[tokio::test]
async fn a_new_time_keeps_the_length_and_is_stored_conditional_on_the_time_as_read() {
    for who in EVERYONE {
        let people = people(true);
        let mut appointment = people.appointment(AppointmentStatus::Booked);
        appointment.end = appointment.start + SignedDuration::from_mins(45);
        let caller = people.actor(who);
        let mut mocks = Mocks::new();
        let reads = rescheduling(&mut mocks, &people, &appointment);
        let moved = reschedules(&mut mocks, vec![None]);
        let _published = mocks.publishes();
        mocks.nothing_audited();

        let returned = mocks
            .appointment_service()
            .reschedule_appointment(
                &caller,
                appointment.id,
                move_to("2026-11-24T10:00:00+01:00"),
            )
            .await
            .expect("moved");

        let (change, event, _) = moved.lock().expect("moved")[0].clone();
        let new_time = Interval {
            start: TUESDAY_10_PARIS,
            end: TUESDAY_10_PARIS + SignedDuration::from_mins(45),
        };
        assert_eq!(
            change,
            Reschedule {
                id: appointment.id,
                from: appointment.interval(),
                to: new_time,
                schedule_version: 9,
                at: NOW,
                actor_id: caller.user_id(),
                jobs: change.jobs.clone(),
            },
            "{who:?}"
        );
        // The old reminders go, and the new time's come with the move.
        assert_eq!(change.jobs.cancel, [reminder_key_prefix(appointment.id)]);
        let reminders: Vec<_> = change.jobs.add.iter().map(|job| job.run_at).collect();
        assert_eq!(
            reminders,
            [
                TUESDAY_10_PARIS - SignedDuration::from_hours(24),
                TUESDAY_10_PARIS - SignedDuration::from_hours(2),
            ]
            .into_iter()
            .filter(|at| *at > NOW)
            .collect::<Vec<_>>()
        );
        assert_allowed(
            &event,
            &caller,
            Some(people.patient.id),
            AuditAction::AppointmentReschedule,
            seen_on(who),
        );
        let (doctor, from, to) = reads.lock().expect("reads")[0];
        assert_eq!(doctor, people.alice.id);
        assert!(
            from <= new_time.start - SignedDuration::from_hours(24)
                && to >= new_time.end + SignedDuration::from_hours(24)
        );
        assert_eq!(
            (returned.start, returned.end),
            (new_time.start, new_time.end)
        );
        assert_eq!(returned.status, AppointmentStatus::Booked);
        assert_eq!(returned.updated_at, NOW);
    }
}

#[tokio::test]
async fn an_explicit_new_end_is_kept_and_an_invalid_one_refused() {
    let people = people(true);
    let appointment = people.appointment(AppointmentStatus::Booked);
    let mut mocks = Mocks::new();
    rescheduling(&mut mocks, &people, &appointment);
    let moved = reschedules(&mut mocks, vec![None]);
    let _published = mocks.publishes();
    let input = RescheduleRequest {
        start: minute("2026-11-24T10:00:00+01:00"),
        end: Some(minute("2026-11-24T11:15:00+01:00")),
    };

    mocks
        .appointment_service()
        .reschedule_appointment(&people.actor(Who::Secretary), appointment.id, input)
        .await
        .expect("moved");
    assert_eq!(
        moved.lock().expect("moved")[0].0.to.end,
        TUESDAY_10_PARIS + SignedDuration::from_mins(75)
    );

    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.schedules.expect_schedule().never();
    no_writes(&mut mocks);
    let input = RescheduleRequest {
        start: minute("2026-11-24T10:00:00+01:00"),
        end: Some(minute("2026-11-24T09:00:00+01:00")),
    };
    let result = mocks
        .appointment_service()
        .reschedule_appointment(&people.actor(Who::Secretary), appointment.id, input)
        .await;
    assert_eq!(invalid_fields(result), ["end"]);
}

#[tokio::test]
async fn the_new_time_must_be_available_in_the_clinics_time_zone() {
    let cases = [
        // Sunday 10:00 UTC: in the past (NOW is 10:15).
        ("2026-11-22T10:00:00Z", "past"),
        // 16:30 UTC is 17:30 in Paris, after hours; Saturday is no working day.
        ("2026-11-24T16:30:00Z", "outside"),
        ("2026-11-28T10:00:00+01:00", "outside"),
        // Time off on Tuesday morning.
        ("2026-11-24T11:00:00+01:00", "off"),
    ];
    for (start, why) in cases {
        let people = people(true);
        let appointment = people.appointment(AppointmentStatus::Booked);
        let off = time_off(
            people.alice.id,
            ts("2026-11-24T09:30:00Z"),
            ts("2026-11-24T11:00:00Z"),
        );
        let off_id = off.id;
        let mut mocks = Mocks::new();
        in_paris(&mut mocks);
        found(&mut mocks, &appointment);
        people.named(&mut mocks);
        people.record_found(&mut mocks);
        schedule_reads(
            &mut mocks,
            vec![with_time_off(schedule(people.alice.id, 30, 9), off)],
        );
        no_writes(&mut mocks);
        mocks.nothing_audited();

        let result = mocks
            .appointment_service()
            .reschedule_appointment(
                &people.actor(Who::Secretary),
                appointment.id,
                move_to(start),
            )
            .await;

        let expected = match why {
            "past" => Unavailable::Past,
            "outside" => Unavailable::OutsideAvailability,
            _ => Unavailable::TimeOff {
                time_off_id: off_id,
            },
        };
        assert_eq!(unavailable(result), expected, "{start}");
    }
}

#[tokio::test]
async fn a_new_time_in_the_way_of_other_appointments_is_answered_with_every_conflict() {
    let people = people(true);
    let appointment = people.appointment(AppointmentStatus::Booked);
    let mut mocks = Mocks::new();
    rescheduling(&mut mocks, &people, &appointment);
    let conflicts = two_conflicts();
    reschedules(
        &mut mocks,
        vec![Some(BookError::Conflicts(conflicts.clone()))],
    );
    let recorded = mocks.audit_succeeds();
    mocks.nothing_published();

    let result = mocks
        .appointment_service()
        .reschedule_appointment(
            &people.actor(Who::Secretary),
            appointment.id,
            move_to("2026-11-24T10:00:00+01:00"),
        )
        .await;

    match result {
        Err(AppointmentError::Conflicts(answered)) => assert_eq!(answered, conflicts),
        other => panic!("expected Conflicts, got {other:?}"),
    }
    assert_allowed(
        &single_event(&recorded),
        &people.actor(Who::Secretary),
        Some(people.patient.id),
        AuditAction::AppointmentReschedule,
        Basis::Role,
    );
}

#[tokio::test]
async fn a_reschedule_is_retried_on_a_schedule_change_and_a_concurrent_change_is_stale() {
    let people = people(true);
    let appointment = people.appointment(AppointmentStatus::Booked);
    let mut mocks = Mocks::new();
    in_paris(&mut mocks);
    found(&mut mocks, &appointment);
    people.named(&mut mocks);
    people.record_found(&mut mocks);
    let reads = schedule_reads(
        &mut mocks,
        vec![
            schedule(people.alice.id, 30, 9),
            schedule(people.alice.id, 30, 10),
        ],
    );
    let moved = reschedules(&mut mocks, vec![Some(BookError::ScheduleChanged), None]);
    let _published = mocks.publishes();

    mocks
        .appointment_service()
        .reschedule_appointment(
            &people.actor(Who::Secretary),
            appointment.id,
            move_to("2026-11-24T10:00:00+01:00"),
        )
        .await
        .expect("moved on the second try");

    assert_eq!(reads.lock().expect("reads").len(), 2);
    let versions: Vec<i64> = moved
        .lock()
        .expect("moved")
        .iter()
        .map(|(c, _, _)| c.schedule_version)
        .collect();
    assert_eq!(versions, [9, 10]);

    let mut mocks = Mocks::new();
    rescheduling(&mut mocks, &people, &appointment);
    let moved = reschedules(
        &mut mocks,
        (0..4).map(|_| Some(BookError::ScheduleChanged)).collect(),
    );
    mocks.nothing_published();
    let result = mocks
        .appointment_service()
        .reschedule_appointment(
            &people.actor(Who::Secretary),
            appointment.id,
            move_to("2026-11-24T10:00:00+01:00"),
        )
        .await;
    assert!(is_internal(&result), "{result:?}");
    assert_eq!(moved.lock().expect("moved").len(), 4);

    let mut mocks = Mocks::new();
    rescheduling(&mut mocks, &people, &appointment);
    reschedules(&mut mocks, vec![Some(BookError::Stale)]);
    mocks.nothing_published();
    mocks.nothing_audited();
    let result = mocks
        .appointment_service()
        .reschedule_appointment(
            &people.actor(Who::Secretary),
            appointment.id,
            move_to("2026-11-24T10:00:00+01:00"),
        )
        .await;
    assert!(matches!(result, Err(AppointmentError::Stale)), "{result:?}");
}

#[tokio::test]
async fn a_new_time_tells_the_doctor_and_the_patients_account_but_not_whoever_moved_it() {
    for who in EVERYONE {
        let people = people(true);
        let appointment = people.appointment(AppointmentStatus::Booked);
        let caller = people.actor(who);
        let mut mocks = Mocks::new();
        rescheduling(&mut mocks, &people, &appointment);
        let moved = reschedules(&mut mocks, vec![None]);
        let published = mocks.publishes();

        mocks
            .appointment_service()
            .reschedule_appointment(
                &caller,
                appointment.id,
                move_to("2026-11-24T10:00:00+01:00"),
            )
            .await
            .expect("moved");

        let notices = moved.lock().expect("moved")[0].2.clone();
        let expected: Vec<Recipient> = [people.alice.id, people.ada.id]
            .into_iter()
            .filter(|u| *u != caller.user_id())
            .map(Recipient::User)
            .collect();
        assert_eq!(recipients(&notices), expected, "{who:?}");
        for notice in &notices {
            assert_eq!(notice.kind, NotificationKind::AppointmentRescheduled);
            assert_eq!(notice.data.appointment_id, Some(*appointment.id.as_uuid()));
            assert_eq!(notice.data.patient_id, Some(*people.patient.id.as_uuid()));
            assert_eq!(notice.data.actor_id, Some(*caller.user_id().as_uuid()));
            let title = &notice.data.title;
            assert!(
                title.starts_with(
                    "Appointment on Mon 23 Nov 2026 at 09:00 rescheduled to Tue 24 Nov 2026 at 10:00 by "
                ),
                "{title}"
            );
            for secret in ["Ada Lovelace", "Lovelace", REASON] {
                assert!(!title.contains(secret), "{title:?} shows {secret:?}");
            }
        }
        assert_eq!(
            published.lock().expect("published")[0].len(),
            expected.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The visit note

fn visit_note(body: &str, kind: Option<NoteKind>) -> NewVisitNote {
    NewVisitNote {
        body: Text::multiline(body, 100).expect("valid body"),
        kind,
    }
}

/// What `NoteRepository::append` was called with.
type Appended = Captured<(ClinicalNote, AuditEvent)>;

fn appends(mocks: &mut Mocks, outcome: Option<AppendNoteError>) -> Appended {
    let appended = Appended::default();
    let log = Arc::clone(&appended);
    let outcome = Mutex::new(outcome);
    mocks
        .notes
        .expect_append()
        .times(1)
        .returning(move |note, event| {
            log.lock().expect("log").push((note.clone(), event.clone()));
            match outcome.lock().expect("outcome").take() {
                None => Ok(note.clone()),
                Some(error) => Err(error),
            }
        });
    appended
}

#[tokio::test]
async fn only_doctors_write_visit_notes_and_others_are_refused_with_the_patient_audited() {
    let people = people(true);
    for caller in [
        people.actor(Who::Secretary),
        people.actor(Who::Patient),
        actor(Role::Laboratory),
        actor(Role::Admin),
    ] {
        let appointment = people.appointment(AppointmentStatus::InProgress);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        mocks.patients.expect_find_by_user().returning(|_| Ok(None));
        mocks.no_patient_lookup();
        mocks.notes.expect_append().never();
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .visit_note_service()
            .write_visit_note(&caller, appointment.id, visit_note("Seen.", None))
            .await;

        assert!(
            matches!(result, Err(VisitNoteError::Forbidden)),
            "{caller:?}: {result:?}"
        );
        assert_denied(
            &single_event(&recorded),
            &caller,
            Some(people.patient.id),
            AuditAction::NoteCreate,
        );
    }
}

#[tokio::test]
async fn another_doctor_is_told_the_appointment_does_not_exist_and_is_audited() {
    let people = people(true);
    let appointment = people.appointment(AppointmentStatus::InProgress);
    let bob = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.no_patient_lookup();
    mocks.notes.expect_append().never();
    let recorded = mocks.audit_succeeds();

    let result = mocks
        .visit_note_service()
        .write_visit_note(&bob, appointment.id, visit_note("Seen.", None))
        .await;

    assert!(
        matches!(result, Err(VisitNoteError::AppointmentNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &bob,
        Some(people.patient.id),
        AuditAction::NoteCreate,
    );

    let mut mocks = Mocks::new();
    mocks
        .appointments
        .expect_get()
        .times(1)
        .returning(|_| Ok(None));
    mocks.no_patient_lookup();
    mocks.notes.expect_append().never();
    let recorded = mocks.audit_succeeds();
    let result = mocks
        .visit_note_service()
        .write_visit_note(&bob, AppointmentId::generate(), visit_note("Seen.", None))
        .await;
    assert!(
        matches!(result, Err(VisitNoteError::AppointmentNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &bob,
        None,
        AuditAction::NoteCreate,
    );
}

#[tokio::test]
async fn a_visit_note_waits_until_the_patient_is_seen() {
    for status in [
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ] {
        let people = people(true);
        let appointment = people.appointment(status);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        mocks.no_patient_lookup();
        mocks.notes.expect_append().never();

        let result = mocks
            .visit_note_service()
            .write_visit_note(
                &people.actor(Who::Doctor),
                appointment.id,
                visit_note("Seen.", None),
            )
            .await;

        assert!(
            matches!(result, Err(VisitNoteError::VisitNotReady(s)) if s == status),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn the_doctor_writes_a_visit_note_only_while_allowed_to_write_notes_for_the_patient() {
    for (facts, forbidden) in [
        (Some(UNRELATED), false),
        (Some(EMERGENCY_ONLY), true),
        (None, false),
    ] {
        let people = people(true);
        let appointment = people.appointment(AppointmentStatus::Completed);
        let doctor = people.actor(Who::Doctor);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        mocks.facts(people.patient.id, &doctor, facts);
        mocks.notes.expect_append().never();
        let recorded = mocks.audit_succeeds();

        let result = mocks
            .visit_note_service()
            .write_visit_note(&doctor, appointment.id, visit_note("Seen.", None))
            .await;

        let refused = if forbidden {
            matches!(result, Err(VisitNoteError::Forbidden))
        } else {
            matches!(result, Err(VisitNoteError::NotFound))
        };
        assert!(refused, "{facts:?}: {result:?}");
        assert_denied(
            &single_event(&recorded),
            &doctor,
            Some(people.patient.id),
            AuditAction::NoteCreate,
        );
    }
}

#[tokio::test]
async fn a_visit_note_is_linked_to_its_appointment_and_is_a_consultation_unless_said_otherwise() {
    let cases = [
        (AppointmentStatus::InProgress, None, NoteKind::Consultation),
        (AppointmentStatus::Completed, None, NoteKind::Consultation),
        (
            AppointmentStatus::Completed,
            Some(NoteKind::Progress),
            NoteKind::Progress,
        ),
    ];
    for (status, kind, expected_kind) in cases {
        let people = people(true);
        let appointment = people.appointment(status);
        let doctor = people.actor(Who::Doctor);
        let mut mocks = Mocks::new();
        found(&mut mocks, &appointment);
        mocks.facts(people.patient.id, &doctor, Some(ON_CARE_TEAM));
        let appended = appends(&mut mocks, None);
        mocks.nothing_audited();

        let returned = mocks
            .visit_note_service()
            .write_visit_note(&doctor, appointment.id, visit_note("BP 120/80.", kind))
            .await
            .expect("written");

        let (note, event) = appended.lock().expect("appended")[0].clone();
        assert_eq!(returned, note);
        assert_eq!(note.appointment_id, Some(appointment.id), "{status}");
        assert_eq!(note.patient_id, people.patient.id);
        assert_eq!(note.author_id, people.alice.id);
        assert_eq!(note.kind, Some(expected_kind), "{kind:?}");
        assert_eq!(note.body.as_str(), "BP 120/80.");
        assert_eq!(note.amends, None);
        assert_eq!(note.created_at, NOW);
        assert_allowed(
            &event,
            &doctor,
            Some(people.patient.id),
            AuditAction::NoteCreate,
            Basis::CareTeam,
        );
    }
}

#[tokio::test]
async fn a_visit_note_is_checked_as_writing_it_would_and_nothing_is_written() {
    let people = people(true);
    let doctor = people.actor(Who::Doctor);

    // Everything allows it: nothing is written or audited.
    let appointment = people.appointment(AppointmentStatus::Completed);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.facts(people.patient.id, &doctor, Some(ON_CARE_TEAM));
    mocks.notes.expect_append().never();
    mocks.nothing_audited();
    let result = mocks
        .visit_note_service()
        .check_writable(&doctor, appointment.id)
        .await;
    assert!(result.is_ok(), "{result:?}");

    // The patient is not seen yet.
    let appointment = people.appointment(AppointmentStatus::CheckedIn);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.no_patient_lookup();
    mocks.notes.expect_append().never();
    let result = mocks
        .visit_note_service()
        .check_writable(&doctor, appointment.id)
        .await;
    assert!(
        matches!(
            result,
            Err(VisitNoteError::VisitNotReady(AppointmentStatus::CheckedIn))
        ),
        "{result:?}"
    );

    // The doctor holds only an emergency access to the patient: refused and audited.
    let appointment = people.appointment(AppointmentStatus::InProgress);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.facts(people.patient.id, &doctor, Some(EMERGENCY_ONLY));
    mocks.notes.expect_append().never();
    let recorded = mocks.audit_succeeds();
    let result = mocks
        .visit_note_service()
        .check_writable(&doctor, appointment.id)
        .await;
    assert!(
        matches!(result, Err(VisitNoteError::Forbidden)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &doctor,
        Some(people.patient.id),
        AuditAction::NoteCreate,
    );

    // Another doctor is told there is no such appointment, and audited.
    let bob = actor(Role::Doctor);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.no_patient_lookup();
    let recorded = mocks.audit_succeeds();
    let result = mocks
        .visit_note_service()
        .check_writable(&bob, appointment.id)
        .await;
    assert!(
        matches!(result, Err(VisitNoteError::AppointmentNotFound)),
        "{result:?}"
    );
    assert_denied(
        &single_event(&recorded),
        &bob,
        Some(people.patient.id),
        AuditAction::NoteCreate,
    );
}

#[tokio::test]
async fn a_second_visit_note_is_a_conflict() {
    let people = people(true);
    let appointment = people.appointment(AppointmentStatus::Completed);
    let doctor = people.actor(Who::Doctor);
    let mut mocks = Mocks::new();
    found(&mut mocks, &appointment);
    mocks.facts(people.patient.id, &doctor, Some(ON_CARE_TEAM));
    appends(&mut mocks, Some(AppendNoteError::VisitNoteExists));

    let result = mocks
        .visit_note_service()
        .write_visit_note(&doctor, appointment.id, visit_note("Seen.", None))
        .await;

    assert!(
        matches!(result, Err(VisitNoteError::VisitNoteExists)),
        "{result:?}"
    );
}

#[test]
fn times_in_these_tests_are_what_they_claim() {
    assert_eq!(MONDAY_9_PARIS, ts("2026-11-23T08:00:00Z"));
    assert_eq!(TUESDAY_10_PARIS, ts("2026-11-24T09:00:00Z"));
    let weekday = |at: Timestamp| at.to_zoned(TimeZone::UTC).weekday();
    assert_eq!(weekday(NOW), jiff::civil::Weekday::Sunday);
    assert_eq!(weekday(MONDAY_9_PARIS), jiff::civil::Weekday::Monday);
}
