//! A doctor's weekly availability: rules of weekday and local working hours, read in the
//! clinic's time zone.

use std::fmt;

use jiff::civil::Time;
use serde::{Deserialize, Serialize};

use crate::kernel::string_enum;

/// The most weekly availability rules a doctor has. A doctor's rules never overlap (see
/// [`AvailabilityRule::overlaps`]).
pub const MAX_RULES: usize = 70;
string_enum!(
    /// A day of the week, as availability rules name it.
    Weekday, "weekday" {
        Monday => "monday",
        Tuesday => "tuesday",
        Wednesday => "wednesday",
        Thursday => "thursday",
        Friday => "friday",
        Saturday => "saturday",
        Sunday => "sunday",
    }
);

impl Weekday {
    /// 1 for Monday to 7 for Sunday (ISO 8601), as stored.
    pub const fn number(self) -> u8 {
        match self {
            Weekday::Monday => 1,
            Weekday::Tuesday => 2,
            Weekday::Wednesday => 3,
            Weekday::Thursday => 4,
            Weekday::Friday => 5,
            Weekday::Saturday => 6,
            Weekday::Sunday => 7,
        }
    }

    /// The day [`Weekday::number`] gives `number` for; `None` outside 1..=7.
    pub fn from_number(number: i64) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|d| i64::from(d.number()) == number)
    }
}

impl From<jiff::civil::Weekday> for Weekday {
    fn from(day: jiff::civil::Weekday) -> Self {
        match day {
            jiff::civil::Weekday::Monday => Weekday::Monday,
            jiff::civil::Weekday::Tuesday => Weekday::Tuesday,
            jiff::civil::Weekday::Wednesday => Weekday::Wednesday,
            jiff::civil::Weekday::Thursday => Weekday::Thursday,
            jiff::civil::Weekday::Friday => Weekday::Friday,
            jiff::civil::Weekday::Saturday => Weekday::Saturday,
            jiff::civil::Weekday::Sunday => Weekday::Sunday,
        }
    }
}

/// One weekly availability rule: the doctor works on `weekday` from `start` to `end`, local
/// time in the clinic's time zone. `start < end`, both on whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "RuleJson", try_from = "RuleJson")]
pub struct AvailabilityRule {
    pub weekday: Weekday,
    /// `HH:MM`, 24-hour.
    pub start: Time,
    /// `HH:MM`, 24-hour; after `start`.
    pub end: Time,
}

/// An [`AvailabilityRule`] as JSON: `{"weekday":"monday","start":"09:00","end":"17:00"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    weekday: Weekday,
    start: String,
    end: String,
}

impl From<AvailabilityRule> for RuleJson {
    fn from(rule: AvailabilityRule) -> Self {
        Self {
            weekday: rule.weekday,
            start: rule.start_hhmm(),
            end: rule.end_hhmm(),
        }
    }
}

impl TryFrom<RuleJson> for AvailabilityRule {
    type Error = String;

    fn try_from(json: RuleJson) -> Result<Self, Self::Error> {
        let start = parse_hhmm(&json.start).map_err(|e| format!("start: {e}"))?;
        let end = parse_hhmm(&json.end).map_err(|e| format!("end: {e}"))?;
        AvailabilityRule::new(json.weekday, start, end)
            .ok_or_else(|| "end: must be after start".into())
    }
}

impl AvailabilityRule {
    /// `None` unless `start < end`.
    pub fn new(weekday: Weekday, start: Time, end: Time) -> Option<Self> {
        (start < end).then_some(Self {
            weekday,
            start,
            end,
        })
    }

    /// From minutes since local midnight, as stored; `None` unless `0 <= start < end < 1440`.
    pub fn from_minutes(weekday: Weekday, start_minute: i64, end_minute: i64) -> Option<Self> {
        Self::new(
            weekday,
            time_of_minute(start_minute)?,
            time_of_minute(end_minute)?,
        )
    }

    /// Minutes since local midnight of `start`.
    pub fn start_minute(&self) -> u16 {
        minute_of_day(self.start)
    }

    /// Minutes since local midnight of `end`.
    pub fn end_minute(&self) -> u16 {
        minute_of_day(self.end)
    }

    /// `start` written `HH:MM`.
    pub fn start_hhmm(&self) -> String {
        format_hhmm(self.start)
    }

    /// `end` written `HH:MM`.
    pub fn end_hhmm(&self) -> String {
        format_hhmm(self.end)
    }

    /// Whether the two share some time: same weekday, and each starts before the other ends.
    /// Rules that only touch (one ends when the other starts) do not overlap.
    pub fn overlaps(&self, other: &AvailabilityRule) -> bool {
        self.weekday == other.weekday && self.start < other.end && other.start < self.end
    }

    fn sort_key(&self) -> (u8, Time) {
        (self.weekday.number(), self.start)
    }
}

impl fmt::Display for AvailabilityRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}-{}",
            self.weekday,
            self.start_hhmm(),
            self.end_hhmm()
        )
    }
}

/// A time of day written `HH:MM` (24-hour, `00:00` to `23:59`).
///
/// # Errors
/// A message saying what a time must look like.
pub fn parse_hhmm(raw: &str) -> Result<Time, &'static str> {
    const MESSAGE: &str = "must be a time written HH:MM, 00:00 to 23:59";
    let bytes = raw.as_bytes();
    let digit = |i: usize| {
        bytes
            .get(i)
            .filter(|b| b.is_ascii_digit())
            .map(|b| b - b'0')
    };
    if bytes.len() != 5 || bytes[2] != b':' {
        return Err(MESSAGE);
    }
    match (digit(0), digit(1), digit(3), digit(4)) {
        (Some(h1), Some(h2), Some(m1), Some(m2)) => {
            let (hour, minute) = (h1 * 10 + h2, m1 * 10 + m2);
            if hour > 23 || minute > 59 {
                return Err(MESSAGE);
            }
            Time::new(hour as i8, minute as i8, 0, 0).map_err(|_| MESSAGE)
        }
        _ => Err(MESSAGE),
    }
}

/// Formats a time of day as `HH:MM`.
pub fn format_hhmm(at: Time) -> String {
    format!("{:02}:{:02}", at.hour(), at.minute())
}

fn minute_of_day(at: Time) -> u16 {
    // hour() is 0..=23 and minute() 0..=59: both fit.
    u16::try_from(i16::from(at.hour()) * 60 + i16::from(at.minute())).unwrap_or(0)
}

fn time_of_minute(minute: i64) -> Option<Time> {
    if !(0..24 * 60).contains(&minute) {
        return None;
    }
    Time::new(
        i8::try_from(minute / 60).ok()?,
        i8::try_from(minute % 60).ok()?,
        0,
        0,
    )
    .ok()
}

/// Sorts rules as they are stored and shown: by weekday (Monday first), then start.
pub fn sort_rules(rules: &mut [AvailabilityRule]) {
    rules.sort_by_key(AvailabilityRule::sort_key);
}
