//! The period a report covers: whole days of the clinic's calendar, from one date up to (not
//! including) another, read in the clinic's time zone.

use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// The most days one report covers.
pub const MAX_REPORT_DAYS: i32 = 366;

/// The earliest date a period may start on, and the latest it may end on: far from the ends
/// of the calendar, so that every local midnight in between exists in every time zone.
const FIRST_DATE: Date = date(1900, 1, 1);
const LAST_DATE: Date = date(9000, 1, 1);

/// Why two dates do not make a report's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// `to` is not after `from`.
    #[error("must be after from")]
    NotAfterFrom,
    /// `to` is more than [`MAX_REPORT_DAYS`] days after `from`.
    #[error("must be at most {MAX_REPORT_DAYS} days after from")]
    TooLong,
    /// A date before 1900 or after 9000.
    #[error("must be between the years 1900 and 9000")]
    OutOfRange {
        /// `from` or `to`.
        field: &'static str,
    },
}

impl PeriodError {
    /// The query field the error is about: `from` or `to`.
    pub const fn field(&self) -> &'static str {
        match self {
            PeriodError::NotAfterFrom | PeriodError::TooLong => "to",
            PeriodError::OutOfRange { field } => field,
        }
    }
}

/// The days `from` (inclusive) to `to` (exclusive) of the clinic's calendar, and the instants
/// they run between: `[start, end)`, from the start of `from` to the start of `to` in the
/// clinic's time zone (a day is 23 or 25 hours long across a daylight-saving change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPeriod {
    from: Date,
    to: Date,
    start: Timestamp,
    end: Timestamp,
}

impl ReportPeriod {
    /// The period from `from` up to `to`, in `tz`.
    ///
    /// # Errors
    /// [`PeriodError`]: a date outside 1900 to 9000 (checked first), `to` not after `from`, or
    /// more than [`MAX_REPORT_DAYS`] after it.
    pub fn new(from: Date, to: Date, tz: &TimeZone) -> Result<Self, PeriodError> {
        for (field, day) in [("from", from), ("to", to)] {
            if !(FIRST_DATE..=LAST_DATE).contains(&day) {
                return Err(PeriodError::OutOfRange { field });
            }
        }
        if to <= from {
            return Err(PeriodError::NotAfterFrom);
        }
        let longest = from
            .checked_add(Span::new().days(MAX_REPORT_DAYS))
            .map_err(|_| PeriodError::OutOfRange { field: "from" })?;
        if to > longest {
            return Err(PeriodError::TooLong);
        }
        let start = start_of_day(from, tz).ok_or(PeriodError::OutOfRange { field: "from" })?;
        let end = start_of_day(to, tz).ok_or(PeriodError::OutOfRange { field: "to" })?;
        Ok(Self {
            from,
            to,
            start,
            end,
        })
    }

    /// The first day of the period.
    pub fn from(&self) -> Date {
        self.from
    }

    /// The day after the last day of the period.
    pub fn to(&self) -> Date {
        self.to
    }

    /// When the period starts: the start of `from` in the clinic's time zone.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// When the period ends (excluded): the start of `to` in the clinic's time zone.
    pub fn end(&self) -> Timestamp {
        self.end
    }
}

/// The first instant of `day` in `tz`: its midnight, or the end of the gap when the clocks
/// skip midnight (jiff's compatible disambiguation).
fn start_of_day(day: Date, tz: &TimeZone) -> Option<Timestamp> {
    day.to_zoned(tz.clone()).ok().map(|at| at.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    fn day(raw: &str) -> Date {
        raw.parse().expect("a date")
    }

    #[test]
    fn a_period_runs_from_the_start_of_its_first_day_to_the_start_of_the_day_after_it() {
        let paris = TimeZone::get("Europe/Paris").expect("bundled");
        // The clocks go forward on 2027-03-28: that day has 23 hours.
        let period = ReportPeriod::new(day("2027-03-28"), day("2027-03-29"), &paris)
            .expect("a valid period");
        assert_eq!(period.start(), ts("2027-03-27T23:00:00Z"));
        assert_eq!(period.end(), ts("2027-03-28T22:00:00Z"));
        assert_eq!(period.from(), day("2027-03-28"));
        assert_eq!(period.to(), day("2027-03-29"));
    }

    #[test]
    fn a_period_ends_after_it_starts_and_lasts_at_most_366_days() {
        let utc = TimeZone::UTC;
        let refused = |from: &str, to: &str| ReportPeriod::new(day(from), day(to), &utc).err();
        assert_eq!(
            refused("2027-03-01", "2027-03-01"),
            Some(PeriodError::NotAfterFrom)
        );
        assert_eq!(
            refused("2027-03-02", "2027-03-01"),
            Some(PeriodError::NotAfterFrom)
        );
        assert_eq!(refused("2027-01-01", "2028-01-02"), None, "366 days");
        assert_eq!(
            refused("2027-01-01", "2028-01-03"),
            Some(PeriodError::TooLong)
        );
        assert_eq!(
            refused("1899-12-31", "1900-01-02"),
            Some(PeriodError::OutOfRange { field: "from" })
        );
        assert_eq!(
            refused("8999-12-31", "9000-01-02"),
            Some(PeriodError::OutOfRange { field: "to" })
        );
        assert_eq!(PeriodError::TooLong.field(), "to");
        assert_eq!(
            PeriodError::TooLong.to_string(),
            "must be at most 366 days after from"
        );
    }
}
