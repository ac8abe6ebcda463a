//! A report's figures, what storage counts for them, and the rules that turn the counts into
//! figures: every status listed, the no-show rate, each doctor's available time and the share of
//! it that was booked.

use jiff::SignedDuration;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::ReportPeriod;
use crate::identity::{FullName, UserId};
use crate::referrals::ReferralStatus;
use crate::scheduling::{AppointmentStatus, AvailabilityRule, Interval, working_windows};

/// The statuses of the appointments that take up a doctor's time: all but cancelled. A no-show
/// took the time too: it was kept free for the patient.
pub const TIME_HOLDING_STATUSES: [AppointmentStatus; 5] = [
    AppointmentStatus::Booked,
    AppointmentStatus::CheckedIn,
    AppointmentStatus::InProgress,
    AppointmentStatus::Completed,
    AppointmentStatus::NoShow,
];

/// How many (appointments, referrals) are in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCount<S> {
    pub status: S,
    pub count: u64,
}

/// How long accepted referrals waited for their acceptance, in seconds: from being sent to
/// being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AcceptanceTimes {
    /// How many referrals the figures are of: those sent in the period and accepted since
    /// (later completed ones included).
    pub accepted: u64,
    /// The median; `None` when none was accepted.
    pub median_secs: Option<f64>,
    /// The 90th percentile; `None` when none was accepted.
    pub p90_secs: Option<f64>,
}

/// What became of the notifications of the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotificationFigures {
    /// Notifications stored in the period.
    pub stored: u64,
    /// Of those, the ones their recipient has read.
    pub read: u64,
    /// Notification e-mails sent: their jobs, added in the period, succeeded.
    pub emailed: u64,
    /// Notification e-mails that failed: their jobs, added in the period, are failed (and
    /// waiting to be tried again) or dead.
    pub email_failures: u64,
}

/// What storage counts over a period, in one consistent read (see
/// [`ReportRepository::activity`](super::ReportRepository::activity)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Activity {
    /// Patients registered in the period.
    pub patients_registered: u64,
    /// Appointments starting in the period, by status; a status with none may be left out.
    pub appointments: Vec<StatusCount<AppointmentStatus>>,
    /// Referrals sent in the period, by status; a status with none may be left out.
    pub referrals: Vec<StatusCount<ReferralStatus>>,
    pub acceptance: AcceptanceTimes,
    pub notifications: NotificationFigures,
}

/// One active doctor's time over a period, as stored: their weekly rules, their time off and
/// what was booked (see
/// [`ReportRepository::doctor_time`](super::ReportRepository::doctor_time)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorTime {
    pub doctor_id: UserId,
    pub full_name: FullName,
    pub rules: Vec<AvailabilityRule>,
    /// Their time off overlapping the period.
    pub time_off: Vec<Interval>,
    /// The time of their appointments in [`TIME_HOLDING_STATUSES`], the part inside the
    /// period only.
    pub booked: SignedDuration,
}

/// Appointments starting in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentFigures {
    /// Every status, in [`AppointmentStatus::ALL`]'s order, 0 where none.
    pub by_status: Vec<StatusCount<AppointmentStatus>>,
    /// No-shows over visits that were due and settled: `no_show / (completed + no_show)`;
    /// `None` when there were neither.
    pub no_show_rate: Option<f64>,
}

/// How much of a doctor's available time was booked.
#[derive(Debug, Clone, PartialEq)]
pub struct DoctorUtilization {
    pub doctor_id: UserId,
    pub full_name: FullName,
    /// See [`DoctorTime::booked`].
    pub booked: SignedDuration,
    /// Their weekly rules over the period, in the clinic's time zone, minus their time off.
    pub available: SignedDuration,
    /// `booked / available`; `None` when nothing was available. More than 1 when appointments
    /// were kept after the doctor's hours shrank.
    pub booked_share: Option<f64>,
}

impl DoctorUtilization {
    /// [`DoctorUtilization::booked`] in whole minutes, rounded down.
    pub fn booked_minutes(&self) -> i64 {
        whole_minutes(self.booked)
    }

    /// [`DoctorUtilization::available`] in whole minutes, rounded down.
    pub fn available_minutes(&self) -> i64 {
        whole_minutes(self.available)
    }
}

/// Referrals sent in the period.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralFigures {
    /// Every status, in [`ReferralStatus::ALL`]'s order, 0 where none.
    pub by_status: Vec<StatusCount<ReferralStatus>>,
    pub time_to_accept: AcceptanceTimes,
}

/// The clinic's activity over a period. It names doctors, never a patient.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicReport {
    pub period: ReportPeriod,
    /// Patients registered in the period.
    pub patients_registered: u64,
    pub appointments: AppointmentFigures,
    /// Every active doctor, by id.
    pub doctors: Vec<DoctorUtilization>,
    pub referrals: ReferralFigures,
    pub notifications: NotificationFigures,
}

/// Every one of `all`, in its order, with its count in `counted` (0 when it is not there; the
/// counts of a status listed twice are added).
pub fn every_status<S: Copy + PartialEq>(
    all: &[S],
    counted: &[StatusCount<S>],
) -> Vec<StatusCount<S>> {
    all.iter()
        .map(|&status| StatusCount {
            status,
            count: counted
                .iter()
                .filter(|c| c.status == status)
                .map(|c| c.count)
                .sum(),
        })
        .collect()
}

/// `no_show / (completed + no_show)`; `None` when both are 0.
pub fn no_show_rate(counts: &[StatusCount<AppointmentStatus>]) -> Option<f64> {
    let count = |status| {
        counts
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.count)
            .sum::<u64>()
    };
    let no_show = count(AppointmentStatus::NoShow);
    let settled = count(AppointmentStatus::Completed) + no_show;
    ratio(no_show as f64, settled as f64)
}

/// The time a doctor is available in `[from, to)`: their working windows from `rules` (each
/// rule on each local date, in `tz`, as scheduling reads them), minus `time_off`.
pub fn available_time(
    rules: &[AvailabilityRule],
    time_off: &[Interval],
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
) -> SignedDuration {
    let off = merged(time_off);
    working_windows(rules, tz, from, to)
        .iter()
        .map(|window| {
            let taken: SignedDuration = off
                .iter()
                .filter_map(|o| Interval::new(o.start.max(window.start), o.end.min(window.end)))
                .map(|overlap| overlap.duration())
                .sum();
            window.duration() - taken
        })
        .sum()
}

/// `booked / available`, `None` when nothing was available.
pub fn booked_share(booked: SignedDuration, available: SignedDuration) -> Option<f64> {
    ratio(booked.as_secs_f64(), available.as_secs_f64())
}

/// `part / whole`, `None` unless `whole` is positive.
fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

/// `intervals` in order, those that overlap or touch merged into one, so that no instant is
/// counted twice.
fn merged(intervals: &[Interval]) -> Vec<Interval> {
    let mut sorted = intervals.to_vec();
    sorted.sort_by_key(|i| (i.start, i.end));
    let mut merged: Vec<Interval> = Vec::with_capacity(sorted.len());
    for interval in sorted {
        match merged.last_mut() {
            Some(last) if interval.start <= last.end => last.end = last.end.max(interval.end),
            _ => merged.push(interval),
        }
    }
    merged
}

fn whole_minutes(duration: SignedDuration) -> i64 {
    duration.as_secs().div_euclid(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::Weekday;
    use crate::test_support::ts;

    fn rule(weekday: Weekday, start: i64, end: i64) -> AvailabilityRule {
        AvailabilityRule::from_minutes(weekday, start * 60, end * 60).expect("a rule")
    }

    fn span(start: &str, end: &str) -> Interval {
        Interval::new(ts(start), ts(end)).expect("an interval")
    }

    #[test]
    fn every_status_is_listed_in_order_with_zero_where_none() {
        let counted = [
            StatusCount {
                status: AppointmentStatus::NoShow,
                count: 2,
            },
            StatusCount {
                status: AppointmentStatus::Booked,
                count: 3,
            },
        ];
        let all = every_status(AppointmentStatus::ALL, &counted);
        let listed: Vec<(AppointmentStatus, u64)> =
            all.iter().map(|c| (c.status, c.count)).collect();
        assert_eq!(
            listed,
            [
                (AppointmentStatus::Booked, 3),
                (AppointmentStatus::CheckedIn, 0),
                (AppointmentStatus::InProgress, 0),
                (AppointmentStatus::Completed, 0),
                (AppointmentStatus::Cancelled, 0),
                (AppointmentStatus::NoShow, 2),
            ]
        );
    }

    #[test]
    fn the_no_show_rate_is_of_settled_visits_and_none_without_any() {
        let counts = |completed, no_show, cancelled| {
            [
                StatusCount {
                    status: AppointmentStatus::Completed,
                    count: completed,
                },
                StatusCount {
                    status: AppointmentStatus::NoShow,
                    count: no_show,
                },
                StatusCount {
                    status: AppointmentStatus::Cancelled,
                    count: cancelled,
                },
            ]
        };
        assert_eq!(no_show_rate(&counts(3, 1, 7)), Some(0.25));
        assert_eq!(no_show_rate(&counts(0, 2, 0)), Some(1.0));
        assert_eq!(no_show_rate(&counts(0, 0, 5)), None);
        assert_eq!(no_show_rate(&[]), None);
    }

    #[test]
    fn available_time_is_the_weekly_hours_of_the_period_minus_time_off_counted_once() {
        // 2027-03-01 is a Monday: 09:00-12:00 and 13:00-17:00 on Mondays, 09:00-10:00 Tuesdays.
        let rules = [
            rule(Weekday::Monday, 9, 12),
            rule(Weekday::Monday, 13, 17),
            rule(Weekday::Tuesday, 9, 10),
        ];
        let utc = TimeZone::UTC;
        let week = |off: &[Interval]| {
            available_time(
                &rules,
                off,
                &utc,
                ts("2027-03-01T00:00:00Z"),
                ts("2027-03-08T00:00:00Z"),
            )
        };
        assert_eq!(week(&[]), SignedDuration::from_hours(8));
        // Overlapping time off (11:00-14:00 and 12:30-13:30) takes 1 h + 1 h once, and time off
        // outside the hours takes nothing.
        let off = [
            span("2027-03-01T11:00:00Z", "2027-03-01T14:00:00Z"),
            span("2027-03-01T12:30:00Z", "2027-03-01T13:30:00Z"),
            span("2027-03-02T06:00:00Z", "2027-03-02T07:00:00Z"),
        ];
        assert_eq!(week(&off), SignedDuration::from_hours(6));
        // The period cuts the hours: from Monday 10:00 to Tuesday 09:30.
        let cut = available_time(
            &rules,
            &[],
            &utc,
            ts("2027-03-01T10:00:00Z"),
            ts("2027-03-02T09:30:00Z"),
        );
        assert_eq!(cut, SignedDuration::from_mins(6 * 60 + 30));
        assert_eq!(
            available_time(
                &[],
                &[],
                &utc,
                ts("2027-03-01T00:00:00Z"),
                ts("2027-03-08T00:00:00Z")
            ),
            SignedDuration::ZERO
        );
    }

    #[test]
    fn available_hours_are_local_hours_across_a_daylight_saving_change() {
        // Every day 09:00-17:00 in Paris, over the week the clocks go forward (2027-03-28).
        let rules: Vec<AvailabilityRule> =
            Weekday::ALL.iter().map(|&day| rule(day, 9, 17)).collect();
        let paris = TimeZone::get("Europe/Paris").expect("bundled");
        let period = ReportPeriod::new(
            "2027-03-22".parse().expect("a date"),
            "2027-03-29".parse().expect("a date"),
            &paris,
        )
        .expect("a period");
        let available = available_time(&rules, &[], &paris, period.start(), period.end());
        assert_eq!(available, SignedDuration::from_hours(7 * 8));
    }

    #[test]
    fn the_booked_share_is_none_without_available_time_and_minutes_round_down() {
        assert_eq!(
            booked_share(SignedDuration::from_mins(90), SignedDuration::from_hours(6)),
            Some(0.25)
        );
        assert_eq!(
            booked_share(SignedDuration::from_mins(30), SignedDuration::ZERO),
            None
        );
        let doctor = DoctorUtilization {
            doctor_id: UserId::generate(),
            full_name: FullName::parse("Gregory House").expect("a name"),
            booked: SignedDuration::from_secs(119),
            available: SignedDuration::from_secs(3599),
            booked_share: None,
        };
        assert_eq!(doctor.booked_minutes(), 1);
        assert_eq!(doctor.available_minutes(), 59);
    }
}
