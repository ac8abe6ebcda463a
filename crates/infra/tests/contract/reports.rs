//! `ReportRepository`: every figure counted over `[from, to)` and nothing outside it, each
//! doctor's rules, time off and booked time, and percentiles interpolated as PostgreSQL's
//! `percentile_cont` does, on both backends. The data is built through the other repositories,
//! at times in a week of 2031 that nothing else in these tests uses.

use jiff::{SignedDuration, Timestamp};

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::{Role, User, UserId, UserStatus};
use carehub_domain::jobs::{AfterFailure, Claim, JobId, NewJob, Task};
use carehub_domain::notifications::{
    NewNotification, NotificationData, NotificationKind, Recipient,
};
use carehub_domain::patients::PatientId;
use carehub_domain::referrals::{
    Referral, ReferralId, ReferralSnapshot, ReferralStatus, StatusChange, Urgency,
};
use carehub_domain::reports::{AcceptanceTimes, Activity, StatusCount};
use carehub_domain::scheduling::{AppointmentStatus, AvailabilityRule, Interval, Weekday};
use carehub_infra::{Database, Repositories};

use crate::fixtures::patients::{minimal_patient, register};
use crate::fixtures::referrals::{audit, text};
use crate::fixtures::scheduling::{book, patient, rule, status_update, time_off};
use crate::fixtures::{create_user, doctor};

contract!(
    activity_counts_what_happened_in_the_period_and_nothing_outside_it,
    an_empty_period_counts_nothing_and_has_no_times_to_accept,
    each_active_doctor_has_their_rules_their_time_off_and_the_booked_time_inside_the_period,
);

contract!(database: times_to_accept_are_interpolated_as_percentile_cont_does);

/// Monday 3 March 2031, midnight UTC: the period starts here.
fn from() -> Timestamp {
    "2031-03-03T00:00:00Z".parse().unwrap()
}

/// A week after [`from`]: the period ends here.
fn to() -> Timestamp {
    from() + SignedDuration::from_hours(24 * 7)
}

fn mins(n: i64) -> SignedDuration {
    SignedDuration::from_mins(n)
}

fn at_hours(day: i64, hour: i64, minute: i64) -> Timestamp {
    from() + SignedDuration::from_hours(24 * day + hour) + mins(minute)
}

fn interval(start: Timestamp, end: Timestamp) -> Interval {
    Interval::new(start, end).unwrap()
}

/// Registers a patient created at `at`.
async fn patient_created_at(repos: &Repositories, by: UserId, at: Timestamp) {
    let mut patient = minimal_patient("Registered At A Time");
    patient.created_at = at;
    patient.updated_at = at;
    register(repos, &patient, by).await;
}

/// Sends a referral of `patient_id` from `from_doctor` to `to_doctor` at `at`, notifying no one.
async fn referral_sent_at(
    repos: &Repositories,
    patient_id: PatientId,
    from_doctor: &User,
    to_doctor: &User,
    at: Timestamp,
) -> ReferralId {
    let patient = repos.patients.find(patient_id).await.unwrap().unwrap();
    let referral = Referral {
        id: ReferralId::generate(),
        patient_id,
        patient_name: patient.details.full_name.as_str().to_owned(),
        from_doctor_id: from_doctor.id,
        from_doctor_name: None,
        to_doctor_id: to_doctor.id,
        to_doctor_name: None,
        reason: text("Suspected arrhythmia"),
        urgency: Urgency::Routine,
        status: ReferralStatus::Sent,
        decline_reason: None,
        outcome: None,
        created_at: at,
        updated_at: at,
    };
    let snapshot = ReferralSnapshot {
        clinical_summary: text("Palpitations."),
        medical: repos.medical.get(patient_id).await.unwrap(),
        patient,
    };
    repos
        .referrals
        .create(
            &referral,
            &snapshot,
            &audit(
                from_doctor.id,
                Some(patient_id),
                AuditAction::ReferralCreate,
            ),
            &[],
            &[],
        )
        .await
        .unwrap();
    referral.id
}

/// Moves the referral from `from` to `to` at `at`, with the note a decline or a completion
/// needs.
async fn change(
    repos: &Repositories,
    id: ReferralId,
    from: ReferralStatus,
    to: ReferralStatus,
    at: Timestamp,
    by: &User,
) {
    let note =
        matches!(to, ReferralStatus::Declined | ReferralStatus::Completed).then(|| text("A note"));
    let action = match to {
        ReferralStatus::Accepted => AuditAction::ReferralAccept,
        ReferralStatus::Declined => AuditAction::ReferralDecline,
        ReferralStatus::Cancelled => AuditAction::ReferralCancel,
        _ => AuditAction::ReferralComplete,
    };
    let changed = repos
        .referrals
        .change_status(
            &StatusChange {
                id,
                from,
                to,
                at,
                note,
                membership: None,
            },
            &audit(by.id, None, action),
            &[],
        )
        .await
        .unwrap();
    assert!(changed.is_some(), "{from} -> {to}");
}

/// A referral sent at `sent` and accepted `wait` later.
async fn accepted_after(
    repos: &Repositories,
    patient_id: PatientId,
    (sender, recipient): (&User, &User),
    sent: Timestamp,
    wait: SignedDuration,
) -> ReferralId {
    let id = referral_sent_at(repos, patient_id, sender, recipient, sent).await;
    change(
        repos,
        id,
        ReferralStatus::Sent,
        ReferralStatus::Accepted,
        sent + wait,
        recipient,
    )
    .await;
    id
}

fn notice(recipient: UserId) -> NewNotification {
    NewNotification {
        recipient: Recipient::User(recipient),
        kind: NotificationKind::ReferralReceived,
        data: NotificationData {
            title: "A referral".into(),
            ..NotificationData::default()
        },
    }
}

/// Stores one notification for `recipient` at `at`; returns its id.
async fn notified_at(repos: &Repositories, recipient: UserId, at: Timestamp) -> i64 {
    let stored = repos
        .notifications
        .append(&[notice(recipient)], at)
        .await
        .unwrap();
    stored[0].id
}

/// Stores `job`, added at `at`.
async fn enqueued_at(repos: &Repositories, job: NewJob, at: Timestamp) -> JobId {
    let added = repos.jobs.enqueue(&[job], at).await.unwrap();
    assert_eq!(added.len(), 1);
    added[0]
}

fn email(recipient: UserId, notification_id: i64, run_at: Timestamp) -> NewJob {
    NewJob::new(
        Task::NotificationEmail {
            recipient,
            notification_id,
        },
        run_at,
    )
}

fn counts<S: Copy>(counted: &[StatusCount<S>]) -> Vec<(S, u64)> {
    counted.iter().map(|c| (c.status, c.count)).collect()
}

/// The count of `status` in `counted` (0 when left out).
fn count_of<S: Copy + PartialEq>(counted: &[StatusCount<S>], status: S) -> u64 {
    counted
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.count)
        .sum()
}

fn assert_close(actual: Option<f64>, expected: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what}: none"));
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: {actual}, expected {expected}"
    );
}

/// `percentile_cont(p)` of `values`: interpolated between the two nearest of the sorted values.
fn percentile_cont(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = p * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

async fn activity_counts_what_happened_in_the_period_and_nothing_outside_it(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;

    // Patients: two registered in the period (one at its very start); one just before it and
    // one at its end, which it excludes. The others below were registered now, years before.
    for at in [
        from() - SignedDuration::from_micros(1),
        from(),
        at_hours(3, 12, 0),
        to(),
    ] {
        patient_created_at(&repos, house.id, at).await;
    }

    // Appointments, by their start: one starting before the period, one at its end, and one of
    // each status inside it.
    let mut patients = Vec::new();
    for _ in 0..8 {
        patients.push(patient(&repos, &house, "Booked Patient").await);
    }
    let inside = [
        (AppointmentStatus::Booked, at_hours(0, 9, 0)),
        (AppointmentStatus::CheckedIn, at_hours(1, 9, 0)),
        (AppointmentStatus::InProgress, at_hours(1, 10, 0)),
        (AppointmentStatus::Completed, at_hours(2, 9, 0)),
        (AppointmentStatus::Completed, at_hours(2, 10, 0)),
        (AppointmentStatus::Cancelled, at_hours(3, 9, 0)),
        (AppointmentStatus::NoShow, at_hours(4, 9, 0)),
    ];
    for (n, (status, start)) in inside.into_iter().enumerate() {
        let appointment = book(
            &repos,
            house.id,
            patients[n],
            interval(start, start + mins(30)),
            &house,
        )
        .await;
        if status != AppointmentStatus::Booked {
            status_update(
                &repos,
                &appointment,
                AppointmentStatus::Booked,
                status,
                &house,
                None,
            )
            .await
            .unwrap();
        }
    }
    book(
        &repos,
        house.id,
        patients[7],
        interval(from() - mins(30), from() + mins(30)),
        &house,
    )
    .await;
    book(
        &repos,
        wilson.id,
        patients[7],
        interval(to(), to() + mins(30)),
        &house,
    )
    .await;

    // Referrals: seven sent in the period, waiting 10.5, 20.25, 40 and 70 seconds for the four
    // accepted (one completed since); one sent before the period and one at its end.
    let referred = patient(&repos, &house, "Referred Patient").await;
    let parties = (&house, &wilson);
    let waits = [10.5, 20.25, 40.0, 70.0];
    for (n, wait) in waits.into_iter().enumerate() {
        let id = accepted_after(
            &repos,
            referred,
            parties,
            at_hours(0, 1 + n as i64, 0),
            SignedDuration::from_secs_f64(wait),
        )
        .await;
        if n == 1 {
            change(
                &repos,
                id,
                ReferralStatus::Accepted,
                ReferralStatus::Completed,
                at_hours(5, 0, 0),
                &wilson,
            )
            .await;
        }
    }
    let declined = referral_sent_at(&repos, referred, &house, &wilson, at_hours(1, 1, 0)).await;
    change(
        &repos,
        declined,
        ReferralStatus::Sent,
        ReferralStatus::Declined,
        at_hours(1, 2, 0),
        &wilson,
    )
    .await;
    let cancelled = referral_sent_at(&repos, referred, &house, &wilson, at_hours(1, 3, 0)).await;
    change(
        &repos,
        cancelled,
        ReferralStatus::Sent,
        ReferralStatus::Cancelled,
        at_hours(1, 4, 0),
        &house,
    )
    .await;
    referral_sent_at(&repos, referred, &house, &wilson, at_hours(6, 23, 59)).await;
    accepted_after(&repos, referred, parties, from() - mins(60), mins(1000)).await;
    accepted_after(&repos, referred, parties, to(), mins(1)).await;

    // Notifications: three stored in the period, two of them read; one before it (read) and one
    // at its end.
    let mut in_period = Vec::new();
    for minute in [0, 1, 2] {
        in_period.push(notified_at(&repos, wilson.id, from() + mins(minute)).await);
    }
    let before = notified_at(&repos, wilson.id, from() - mins(1)).await;
    notified_at(&repos, wilson.id, to()).await;
    for id in [in_period[0], in_period[2], before] {
        repos
            .notifications
            .mark_read(wilson.id, id, at_hours(6, 0, 0))
            .await
            .unwrap()
            .unwrap();
    }

    // Notification e-mails added in the period: one succeeded, one failed (to be retried), one
    // dead, one not yet due; and, not counted, one added before the period that succeeded and
    // a job of another kind that succeeded.
    let due = from();
    let sent = enqueued_at(&repos, email(wilson.id, 1, due), at_hours(0, 1, 0)).await;
    let failed = enqueued_at(&repos, email(wilson.id, 2, due), at_hours(0, 2, 0)).await;
    let dead = enqueued_at(&repos, email(wilson.id, 3, due), at_hours(0, 3, 0)).await;
    let later = at_hours(400, 0, 0);
    enqueued_at(&repos, email(wilson.id, 4, later), at_hours(0, 4, 0)).await;
    let earlier = enqueued_at(&repos, email(wilson.id, 5, due), from() - mins(1)).await;
    let probe = NewJob::new(
        Task::Probe {
            hold_ms: 0,
            fail_attempts: 0,
        },
        due,
    );
    let other_kind = enqueued_at(&repos, probe, at_hours(0, 1, 0)).await;
    let claimed = repos
        .jobs
        .claim(&Claim {
            worker: "reports/1".into(),
            now: to(),
            lease: SignedDuration::from_secs(60),
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5, "every due job is claimed");
    for job in &claimed {
        let done = if [sent, earlier, other_kind].contains(&job.job.id) {
            repos.jobs.succeed(job, to()).await.unwrap()
        } else if job.job.id == failed {
            let retry = AfterFailure::RetryAt(later);
            repos
                .jobs
                .fail(job, "mail server down", retry, to())
                .await
                .unwrap()
        } else {
            assert_eq!(job.job.id, dead);
            repos
                .jobs
                .fail(job, "no such mailbox", AfterFailure::Dead, to())
                .await
                .unwrap()
        };
        assert!(done);
    }

    let activity = repos.reports.activity(from(), to()).await.unwrap();
    assert_eq!(activity.patients_registered, 2);
    for (status, expected) in [
        (AppointmentStatus::Booked, 1),
        (AppointmentStatus::CheckedIn, 1),
        (AppointmentStatus::InProgress, 1),
        (AppointmentStatus::Completed, 2),
        (AppointmentStatus::Cancelled, 1),
        (AppointmentStatus::NoShow, 1),
    ] {
        assert_eq!(
            count_of(&activity.appointments, status),
            expected,
            "{status}: {:?}",
            counts(&activity.appointments)
        );
    }
    for (status, expected) in [
        (ReferralStatus::Sent, 1),
        (ReferralStatus::Accepted, 3),
        (ReferralStatus::Declined, 1),
        (ReferralStatus::Cancelled, 1),
        (ReferralStatus::Completed, 1),
    ] {
        assert_eq!(
            count_of(&activity.referrals, status),
            expected,
            "{status}: {:?}",
            counts(&activity.referrals)
        );
    }
    assert_eq!(activity.acceptance.accepted, 4);
    // Waits 10.5, 20.25, 40, 70: the median lies halfway between 20.25 and 40, the 90th
    // percentile seven tenths of the way from 40 to 70.
    assert_close(activity.acceptance.median_secs, 30.125, "median");
    assert_close(activity.acceptance.p90_secs, 61.0, "90th percentile");
    assert_eq!(activity.notifications.stored, 3);
    assert_eq!(activity.notifications.read, 2);
    assert_eq!(activity.notifications.emailed, 1);
    assert_eq!(activity.notifications.email_failures, 2);
}

async fn an_empty_period_counts_nothing_and_has_no_times_to_accept(repos: Repositories) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let referred = patient(&repos, &house, "Referred Patient").await;
    // Sent and accepted in the period, but only now: the period of 2031 is empty.
    accepted_after(
        &repos,
        referred,
        (&house, &wilson),
        from() - SignedDuration::from_hours(24 * 400),
        mins(5),
    )
    .await;
    let activity = repos.reports.activity(from(), to()).await.unwrap();
    assert_eq!(
        activity,
        Activity {
            patients_registered: 0,
            appointments: Vec::new(),
            referrals: Vec::new(),
            acceptance: AcceptanceTimes {
                accepted: 0,
                median_secs: None,
                p90_secs: None,
            },
            notifications: Default::default(),
        }
    );

    // One accepted referral: it is its own median and 90th percentile.
    accepted_after(&repos, referred, (&house, &wilson), from(), mins(5)).await;
    let activity = repos.reports.activity(from(), to()).await.unwrap();
    assert_eq!(activity.acceptance.accepted, 1);
    assert_close(activity.acceptance.median_secs, 300.0, "median");
    assert_close(activity.acceptance.p90_secs, 300.0, "90th percentile");
    assert_eq!(counts(&activity.referrals), [(ReferralStatus::Accepted, 1)]);
}

async fn each_active_doctor_has_their_rules_their_time_off_and_the_booked_time_inside_the_period(
    repos: Repositories,
) {
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let idle = doctor(&repos, "dr.idle").await;
    let suspended = create_user(&repos, "dr.away", Role::Doctor, UserStatus::Suspended).await;
    let secretary = create_user(&repos, "sec.sarah", Role::Secretary, UserStatus::Active).await;
    let now = crate::fixtures::now();

    // Rules, stored in any order and read back sorted.
    let house_rules = vec![
        rule(Weekday::Friday, (9, 0), (12, 0)),
        rule(Weekday::Monday, (13, 0), (17, 0)),
        rule(Weekday::Monday, (9, 0), (12, 0)),
    ];
    repos
        .schedules
        .replace_rules(house.id, &house_rules, now)
        .await
        .unwrap();
    let wilson_rules = vec![rule(Weekday::Tuesday, (8, 30), (16, 45))];
    repos
        .schedules
        .replace_rules(wilson.id, &wilson_rules, now)
        .await
        .unwrap();
    repos
        .schedules
        .replace_rules(suspended.id, &wilson_rules, now)
        .await
        .unwrap();

    // Time off: one across the start of the period and one inside it count; one after it does
    // not. Added before the bookings, which would refuse it.
    let across_start = interval(from() - SignedDuration::from_hours(24), from() + mins(60));
    let inside = interval(at_hours(4, 9, 0), at_hours(4, 12, 0));
    let after = interval(to() + mins(60), to() + mins(120));
    for at in [across_start, inside, after] {
        repos
            .schedules
            .add_time_off(&time_off(house.id, at, &secretary))
            .await
            .unwrap();
    }

    // House: 30 minutes across the start, 60 + 30 inside, a cancelled hour, and 15 minutes
    // before the end (of an hour running past it): 135 minutes count.
    let mut patients = Vec::new();
    for _ in 0..8 {
        patients.push(patient(&repos, &secretary, "Booked Patient").await);
    }
    let booked = [
        (from() - mins(30), 60, AppointmentStatus::Booked),
        (at_hours(0, 9, 0), 60, AppointmentStatus::Completed),
        (at_hours(0, 10, 0), 30, AppointmentStatus::NoShow),
        (at_hours(0, 11, 0), 60, AppointmentStatus::Cancelled),
        (to() - mins(15), 60, AppointmentStatus::InProgress),
    ];
    for (n, (start, minutes, status)) in booked.into_iter().enumerate() {
        let appointment = book(
            &repos,
            house.id,
            patients[n],
            interval(start, start + mins(minutes)),
            &secretary,
        )
        .await;
        if status != AppointmentStatus::Booked {
            status_update(
                &repos,
                &appointment,
                AppointmentStatus::Booked,
                status,
                &house,
                None,
            )
            .await
            .unwrap();
        }
    }
    // Wilson: 45 minutes, checked in, and half an hour from the end, which does not count.
    let visit = book(
        &repos,
        wilson.id,
        patients[6],
        interval(at_hours(1, 9, 0), at_hours(1, 9, 45)),
        &secretary,
    )
    .await;
    status_update(
        &repos,
        &visit,
        AppointmentStatus::Booked,
        AppointmentStatus::CheckedIn,
        &wilson,
        None,
    )
    .await
    .unwrap();
    book(
        &repos,
        wilson.id,
        patients[7],
        interval(to(), to() + mins(30)),
        &secretary,
    )
    .await;

    let doctors = repos.reports.doctor_time(from(), to()).await.unwrap();
    let mut expected_ids = vec![house.id, wilson.id, idle.id];
    expected_ids.sort_by_key(|id| *id.as_uuid());
    let ids: Vec<UserId> = doctors.iter().map(|d| d.doctor_id).collect();
    assert_eq!(
        ids, expected_ids,
        "active doctors only (not a suspended one, not the secretary), by id"
    );
    let of = |id: UserId| doctors.iter().find(|d| d.doctor_id == id).unwrap();

    let house_time = of(house.id);
    assert_eq!(house_time.full_name, house.full_name);
    let mut sorted_rules = house_rules.clone();
    carehub_domain::scheduling::sort_rules(&mut sorted_rules);
    assert_eq!(house_time.rules, sorted_rules);
    assert_eq!(house_time.time_off, vec![across_start, inside]);
    assert_eq!(house_time.booked, mins(30 + 60 + 30 + 15));

    let wilson_time = of(wilson.id);
    assert_eq!(wilson_time.rules, wilson_rules);
    assert!(wilson_time.time_off.is_empty());
    assert_eq!(wilson_time.booked, mins(45));

    let idle_time = of(idle.id);
    assert_eq!(idle_time.full_name, idle.full_name);
    assert_eq!(idle_time.rules, Vec::<AvailabilityRule>::new());
    assert!(idle_time.time_off.is_empty());
    assert_eq!(idle_time.booked, SignedDuration::ZERO);
}

async fn times_to_accept_are_interpolated_as_percentile_cont_does(database: &Database) {
    let repos = database.repositories();
    let house = doctor(&repos, "dr.house").await;
    let wilson = doctor(&repos, "dr.wilson").await;
    let referred = patient(&repos, &house, "Referred Patient").await;
    // Thirteen waits, to the microsecond, sent in no particular order.
    let waits_micros: [i64; 13] = [
        5_000_000,
        86_400_000_001,
        61_500_000,
        1,
        3_600_000_000,
        999_999,
        7_200_123_456,
        42_000_000,
        42_000_000,
        600_000_000,
        1_234_567,
        300_000_000,
        90_000_000,
    ];
    for (n, wait) in waits_micros.into_iter().enumerate() {
        accepted_after(
            &repos,
            referred,
            (&house, &wilson),
            at_hours(0, n as i64, 7),
            SignedDuration::from_micros(wait),
        )
        .await;
    }
    let waits: Vec<f64> = waits_micros.iter().map(|w| *w as f64 / 1e6).collect();
    let acceptance = repos
        .reports
        .activity(from(), to())
        .await
        .unwrap()
        .acceptance;
    assert_eq!(acceptance.accepted, 13);
    assert_close(
        acceptance.median_secs,
        percentile_cont(&waits, 0.5),
        "median",
    );
    assert_close(
        acceptance.p90_secs,
        percentile_cont(&waits, 0.9),
        "90th percentile",
    );

    if let Database::Postgres(pool) = database {
        // PostgreSQL's own function agrees.
        let (median, p90): (f64, f64) = sqlx::query_as(
            "SELECT CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY w) AS DOUBLE PRECISION), \
                    CAST(percentile_cont(0.9) WITHIN GROUP (ORDER BY w) AS DOUBLE PRECISION) \
             FROM (SELECT EXTRACT(EPOCH FROM (accepted_at - created_at)) AS w FROM referrals \
                   WHERE created_at >= $1 AND accepted_at IS NOT NULL) waits",
        )
        .bind(time::OffsetDateTime::from_unix_timestamp(from().as_second()).unwrap())
        .fetch_one(pool)
        .await
        .unwrap();
        assert_close(
            acceptance.median_secs,
            median,
            "median against percentile_cont",
        );
        assert_close(acceptance.p90_secs, p90, "p90 against percentile_cont");
    }
}
