//! Unit tests of the report use case, with the port's mockall double: who may read a report,
//! the instants the storage is asked about, and how its counts become the report's figures.
//! The rules themselves (statuses, rates, available time, periods) are tested where they are
//! written.

use jiff::SignedDuration;
use mockall::predicate::eq;

use super::*;
use crate::identity::{FullName, UserId};
use crate::kernel::Role;
use crate::reports::{
    AcceptanceTimes, Activity, DoctorTime, MockReportRepository, NotificationFigures, StatusCount,
};
use crate::scheduling::{AvailabilityRule, Interval, Weekday};
use crate::test_support::{actor, repository_failure, ts};

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").expect("bundled")
}

fn service(reports: MockReportRepository) -> ReportService {
    ReportService::new(Arc::new(reports), paris())
}

fn day(raw: &str) -> Date {
    raw.parse().expect("a date")
}

/// Monday 2027-03-01 to Monday 2027-03-08 in Paris (UTC+1 all week).
fn week(reports: &ReportService) -> ReportPeriod {
    reports
        .period(day("2027-03-01"), day("2027-03-08"))
        .expect("a valid period")
}

#[tokio::test]
async fn only_administrators_read_reports() {
    for role in [
        Role::Secretary,
        Role::Doctor,
        Role::Laboratory,
        Role::Patient,
    ] {
        // No expectation is set: touching the storage would panic.
        let reports = service(MockReportRepository::new());
        assert!(
            matches!(
                reports.check(&actor(role)),
                Err(ReportError::Access(AccessError::Forbidden))
            ),
            "{role:?}"
        );
        let period = week(&reports);
        let refused = reports.summary(&actor(role), &period).await;
        assert!(
            matches!(refused, Err(ReportError::Access(AccessError::Forbidden))),
            "{role:?}"
        );
    }
    assert!(
        service(MockReportRepository::new())
            .check(&actor(Role::Admin))
            .is_ok()
    );
}

#[test]
fn dates_that_make_no_period_are_refused_by_field() {
    let reports = service(MockReportRepository::new());
    let refused = reports.period(day("2027-03-08"), day("2027-03-01"));
    assert!(matches!(
        refused,
        Err(ReportError::Period(PeriodError::NotAfterFrom))
    ));
    let refused = reports.period(day("2027-03-01"), day("2028-03-08"));
    assert!(matches!(
        refused,
        Err(ReportError::Period(PeriodError::TooLong))
    ));
}

#[tokio::test]
async fn a_report_lists_every_status_and_each_doctors_booked_share_of_their_hours() {
    let (start, end) = (ts("2027-02-28T23:00:00Z"), ts("2027-03-07T23:00:00Z"));
    let house = UserId::generate();
    let wilson = UserId::generate();
    let mut storage = MockReportRepository::new();
    storage
        .expect_activity()
        .with(eq(start), eq(end))
        .times(1)
        .returning(|_, _| {
            Ok(Activity {
                patients_registered: 4,
                appointments: vec![
                    StatusCount {
                        status: AppointmentStatus::Completed,
                        count: 3,
                    },
                    StatusCount {
                        status: AppointmentStatus::NoShow,
                        count: 1,
                    },
                ],
                referrals: vec![StatusCount {
                    status: ReferralStatus::Accepted,
                    count: 2,
                }],
                acceptance: AcceptanceTimes {
                    accepted: 2,
                    median_secs: Some(90.0),
                    p90_secs: Some(114.0),
                },
                notifications: NotificationFigures {
                    stored: 5,
                    read: 2,
                    emailed: 1,
                    email_failures: 1,
                },
            })
        });
    storage
        .expect_doctor_time()
        .with(eq(start), eq(end))
        .times(1)
        .returning(move |_, _| {
            Ok(vec![
                DoctorTime {
                    doctor_id: house,
                    full_name: FullName::parse("Gregory House").expect("a name"),
                    // Mondays 09:00-17:00 local (08:00-16:00 UTC), off Monday 08:00-10:00 UTC.
                    rules: vec![
                        AvailabilityRule::from_minutes(Weekday::Monday, 9 * 60, 17 * 60)
                            .expect("a rule"),
                    ],
                    time_off: vec![
                        Interval::new(ts("2027-03-01T08:00:00Z"), ts("2027-03-01T10:00:00Z"))
                            .expect("an interval"),
                    ],
                    booked: SignedDuration::from_mins(90),
                },
                DoctorTime {
                    doctor_id: wilson,
                    full_name: FullName::parse("James Wilson").expect("a name"),
                    rules: Vec::new(),
                    time_off: Vec::new(),
                    booked: SignedDuration::ZERO,
                },
            ])
        });
    let reports = service(storage);
    let period = week(&reports);
    let report = reports
        .summary(&actor(Role::Admin), &period)
        .await
        .expect("a report");

    assert_eq!(report.period, period);
    assert_eq!(report.patients_registered, 4);
    let appointments: Vec<(AppointmentStatus, u64)> = report
        .appointments
        .by_status
        .iter()
        .map(|c| (c.status, c.count))
        .collect();
    assert_eq!(
        appointments,
        [
            (AppointmentStatus::Booked, 0),
            (AppointmentStatus::CheckedIn, 0),
            (AppointmentStatus::InProgress, 0),
            (AppointmentStatus::Completed, 3),
            (AppointmentStatus::Cancelled, 0),
            (AppointmentStatus::NoShow, 1),
        ]
    );
    assert_eq!(report.appointments.no_show_rate, Some(0.25));
    let referrals: Vec<(ReferralStatus, u64)> = report
        .referrals
        .by_status
        .iter()
        .map(|c| (c.status, c.count))
        .collect();
    assert_eq!(
        referrals,
        [
            (ReferralStatus::Sent, 0),
            (ReferralStatus::Accepted, 2),
            (ReferralStatus::Declined, 0),
            (ReferralStatus::Cancelled, 0),
            (ReferralStatus::Completed, 0),
        ]
    );
    assert_eq!(report.referrals.time_to_accept.median_secs, Some(90.0));
    assert_eq!(report.referrals.time_to_accept.p90_secs, Some(114.0));
    assert_eq!(report.notifications.email_failures, 1);

    assert_eq!(report.doctors.len(), 2);
    let first = &report.doctors[0];
    assert_eq!(first.doctor_id, house);
    assert_eq!(first.available, SignedDuration::from_hours(6));
    assert_eq!(first.booked_minutes(), 90);
    assert_eq!(first.booked_share, Some(0.25));
    let second = &report.doctors[1];
    assert_eq!(second.doctor_id, wilson);
    assert_eq!(second.available, SignedDuration::ZERO);
    assert_eq!(second.booked_share, None);
}

#[tokio::test]
async fn a_storage_failure_is_an_internal_error() {
    let mut storage = MockReportRepository::new();
    storage
        .expect_activity()
        .returning(|_, _| Err(repository_failure()));
    storage.expect_doctor_time().never();
    let reports = service(storage);
    let period = week(&reports);
    let failed = reports.summary(&actor(Role::Admin), &period).await;
    assert!(matches!(failed, Err(ReportError::Internal(_))));
}
