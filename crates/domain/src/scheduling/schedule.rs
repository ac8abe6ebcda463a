//! A doctor's schedule as a whole (profile, weekly rules and time off, with its version), the
//! port that stores it, and what it gives: working windows, free slots and whether a time is
//! bookable. Local wall times are resolved per date with jiff's *compatible* disambiguation,
//! so a 09:00 rule is 09:00 local on both sides of a DST change.

use async_trait::async_trait;
use jiff::civil::{Date, Time};
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, Zoned};

use crate::identity::UserId;
use crate::kernel::{InstantError, Page, PageRequest, RepositoryError, parse_rfc3339};
use crate::scheduling::{
    AvailabilityRule, DoctorProfile, ProfileUpdate, TimeOff, TimeOffError, TimeOffId, Weekday,
};

/// The longest range free slots are listed for at once.
pub const MAX_SLOT_RANGE: SignedDuration = SignedDuration::from_hours(24 * 31);
/// How far ahead of now an appointment may start.
pub const BOOKING_HORIZON: SignedDuration = SignedDuration::from_hours(24 * 366);

/// The earliest instant scheduling takes from a client: `1900-01-01T00:00:00Z`.
pub const EARLIEST_INSTANT: Timestamp = Timestamp::constant(-2208988800, 0);
/// The latest, `9000-01-01T00:00:00Z`. Both are far from the ends of the calendar, so that any
/// arithmetic scheduling does on a time it was given (an appointment's length, a month of
/// slots, a day of margin) stays within it.
pub const LATEST_INSTANT: Timestamp = Timestamp::constant(221845392000, 0);

/// Whether scheduling takes `at` from a client: between [`EARLIEST_INSTANT`] and
/// [`LATEST_INSTANT`].
pub fn is_schedulable(at: Timestamp) -> bool {
    (EARLIEST_INSTANT..=LATEST_INSTANT).contains(&at)
}

/// An RFC 3339 instant (any offset), in UTC, between [`EARLIEST_INSTANT`] and
/// [`LATEST_INSTANT`].
///
/// # Errors
/// What is wrong with it, for a validation message.
pub fn parse_instant(raw: &str) -> Result<Timestamp, &'static str> {
    const OUT_OF_RANGE: &str = "must be between the years 1900 and 9000";
    match parse_rfc3339(raw.trim()) {
        Ok(at) if is_schedulable(at) => Ok(at),
        Ok(_) | Err(InstantError::OutOfRange) => Err(OUT_OF_RANGE),
        Err(InstantError::Malformed) => {
            Err("must be an RFC 3339 instant such as 2027-03-29T09:00:00+02:00")
        }
    }
}

/// A half-open interval of instants [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Interval {
    /// `None` unless `start < end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Option<Self> {
        (start < end).then_some(Self { start, end })
    }

    /// Whether the two share an instant (touching intervals do not).
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely within `self`.
    pub fn contains(&self, other: &Interval) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// How long it lasts.
    pub fn duration(&self) -> SignedDuration {
        self.end.duration_since(self.start)
    }
}

/// What scheduling reads of one doctor: everything that decides availability, with the version
/// that every schedule change bumps (0 when the doctor never had a schedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub doctor_id: UserId,
    pub appointment_minutes: u16,
    pub rules: Vec<AvailabilityRule>,
    /// Those overlapping the range asked.
    pub time_off: Vec<TimeOff>,
    pub version: i64,
}

/// The doctor's working windows overlapping [from, to): each rule on each local date, as instants
/// in `tz` (compatible disambiguation), touching/overlapping windows of one day merged, clipped to
/// [from, to), in order. A 09:00 rule is 09:00 local on both sides of a DST change.
pub fn working_windows(
    rules: &[AvailabilityRule],
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Interval> {
    merged_windows(rules, tz, from, to)
        .into_iter()
        .filter_map(|w| Interval::new(w.start.max(from), w.end.min(to)))
        .collect()
}

/// The merged working windows overlapping [from, to), whole (not clipped), in order.
fn merged_windows(
    rules: &[AvailabilityRule],
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Interval> {
    let Some(range) = Interval::new(from, to) else {
        return Vec::new();
    };
    // One local date of margin on each side: a window of a date may start before `from`'s
    // local date begins or end after `to`'s ends only by the zone's offset change.
    let local_date = |at: Timestamp| tz.to_datetime(at).date();
    let first = local_date(from).yesterday().unwrap_or(Date::MIN);
    let last = local_date(to).tomorrow().unwrap_or(Date::MAX);
    let mut windows = Vec::new();
    let mut date = first;
    loop {
        let weekday = Weekday::from(date.weekday());
        let mut day: Vec<Interval> = rules
            .iter()
            .filter(|r| r.weekday == weekday)
            .filter_map(|r| {
                Interval::new(
                    local_instant(tz, date, r.start)?,
                    local_instant(tz, date, r.end)?,
                )
            })
            .collect();
        day.sort_by_key(|w| (w.start, w.end));
        let mut merged: Vec<Interval> = Vec::with_capacity(day.len());
        for window in day {
            match merged.last_mut() {
                Some(previous) if window.start <= previous.end => {
                    previous.end = previous.end.max(window.end);
                }
                _ => merged.push(window),
            }
        }
        windows.extend(merged.into_iter().filter(|w| w.overlaps(&range)));
        if date >= last {
            break;
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    windows.sort_by_key(|w| w.start);
    windows
}

/// The instant of a local wall time on `date` in `tz`: a time in a spring-forward gap moves
/// forward by the gap; one in a fall-back fold takes the earlier instant.
fn local_instant(tz: &TimeZone, date: Date, at: Time) -> Option<Timestamp> {
    tz.to_ambiguous_timestamp(date.to_datetime(at))
        .compatible()
        .ok()
}

/// The free slots in [from, to): working windows minus time off minus `busy` give free gaps; each
/// gap is cut into consecutive slots of `schedule.appointment_minutes` from the gap's start (a
/// remainder shorter than that is dropped); only slots starting at or after `now` and lying
/// inside [from, to) are kept. In order.
///
/// Windows are not cut at `from` or `to`, so slots keep their place whatever range is asked;
/// for that, `schedule.time_off` and `busy` should cover the windows overlapping the range
/// (a day of margin on each side does).
pub fn free_slots(
    schedule: &Schedule,
    busy: &[Interval],
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
    now: Timestamp,
) -> Vec<Interval> {
    let length = SignedDuration::from_mins(i64::from(schedule.appointment_minutes.max(1)));
    let mut blocked: Vec<Interval> = schedule
        .time_off
        .iter()
        .filter_map(|t| Interval::new(t.start, t.end))
        .chain(busy.iter().copied())
        .collect();
    blocked.sort_by_key(|b| b.start);
    let mut slots = Vec::new();
    for window in merged_windows(&schedule.rules, tz, from, to) {
        for gap in subtract(window, &blocked) {
            let mut start = gap.start;
            while start + length <= gap.end {
                let slot = Interval {
                    start,
                    end: start + length,
                };
                if slot.start >= now && slot.start >= from && slot.end <= to {
                    slots.push(slot);
                }
                start = slot.end;
            }
        }
    }
    slots
}

/// What is left of `window` once every `blocked` interval (sorted by start) is taken out.
fn subtract(window: Interval, blocked: &[Interval]) -> Vec<Interval> {
    let mut gaps = Vec::new();
    let mut cursor = window.start;
    for block in blocked.iter().filter(|b| b.overlaps(&window)) {
        if block.start > cursor {
            gaps.push(Interval {
                start: cursor,
                end: block.start,
            });
        }
        cursor = cursor.max(block.end);
    }
    if cursor < window.end {
        gaps.push(Interval {
            start: cursor,
            end: window.end,
        });
    }
    gaps
}

/// Why a time cannot be booked (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    #[error("the appointment must start in the future")]
    Past,
    #[error("the appointment must start within 366 days")]
    TooFarAhead,
    #[error("the doctor does not work at that time")]
    OutsideAvailability,
    /// The first (earliest) time off in the way.
    #[error("the doctor is off at that time")]
    TimeOff { time_off_id: TimeOffId },
}

/// Whether `slot` may be booked with the doctor. Checked in this order: it starts at or after
/// `now`, at most [`BOOKING_HORIZON`] after it, inside ONE (merged) working window of the
/// doctor's rules, and overlaps none of `schedule.time_off`.
///
/// # Errors
/// [`Unavailable`] naming the first rule broken.
pub fn check_bookable(
    schedule: &Schedule,
    tz: &TimeZone,
    slot: Interval,
    now: Timestamp,
) -> Result<(), Unavailable> {
    if slot.start < now {
        return Err(Unavailable::Past);
    }
    if slot.start > now + BOOKING_HORIZON {
        return Err(Unavailable::TooFarAhead);
    }
    let inside = merged_windows(&schedule.rules, tz, slot.start, slot.end)
        .iter()
        .any(|w| w.contains(&slot));
    if !inside {
        return Err(Unavailable::OutsideAvailability);
    }
    let time_off = schedule
        .time_off
        .iter()
        .filter(|t| t.start < slot.end && slot.start < t.end)
        .min_by_key(|t| t.start);
    match time_off {
        Some(t) => Err(Unavailable::TimeOff { time_off_id: t.id }),
        None => Ok(()),
    }
}

/// `at` as the clinic's clocks show it: the same instant, at the clinic's UTC offset (`tz`)
/// then. An offset RFC 3339 cannot write (one with seconds, from before standard time) leaves
/// the instant in UTC.
pub fn clinic_time(tz: &TimeZone, at: Timestamp) -> Zoned {
    let offset = tz.to_offset(at);
    let shown = if offset.seconds() % 60 == 0 {
        offset
    } else {
        Offset::UTC
    };
    at.to_zoned(TimeZone::fixed(shown))
}

/// Stores doctors' profiles, rules and time off. Every change bumps the doctor's schedule version
/// under a row lock held to commit (PostgreSQL `SELECT ... FOR UPDATE` on `doctor_schedules`;
/// SQLite's write transaction), so a booking that read an older version fails.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ScheduleRepository: Send + Sync {
    /// The active doctor's profile (defaults when never set); `None` when no active doctor has
    /// this id.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn profile(&self, doctor_id: UserId) -> Result<Option<DoctorProfile>, RepositoryError>;

    /// Active doctors, ordered by id, optionally only those with a specialization whose key
    /// equals `specialization`'s lowercase form.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn directory(
        &self,
        specialization: Option<String>,
        page: PageRequest<UserId>,
    ) -> Result<Page<DoctorProfile, UserId>, RepositoryError>;

    /// Replaces the doctor's profile.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn save_profile(
        &self,
        doctor_id: UserId,
        update: &ProfileUpdate,
        at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// Rules, time off overlapping [from, to), appointment length, version.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn schedule(
        &self,
        doctor_id: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Schedule, RepositoryError>;

    /// Replaces the rules (bumps the version).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn replace_rules(
        &self,
        doctor_id: UserId,
        rules: &[AvailabilityRule],
        at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// Adds time off unless an active appointment of the doctor overlaps it (then nothing is
    /// written and every such appointment is returned); bumps the version.
    ///
    /// # Errors
    /// [`TimeOffError::Conflicts`] listing every overlapping active appointment.
    async fn add_time_off(&self, time_off: &TimeOff) -> Result<(), TimeOffError>;

    /// Removes it (bumps the version); `false` when the doctor has no such time off.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn remove_time_off(
        &self,
        doctor_id: UserId,
        id: TimeOffId,
        at: Timestamp,
    ) -> Result<bool, RepositoryError>;

    /// Time off ending after `after`, by start.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn upcoming_time_off(
        &self,
        doctor_id: UserId,
        after: Timestamp,
    ) -> Result<Vec<TimeOff>, RepositoryError>;
}

#[cfg(test)]
mod tests;
