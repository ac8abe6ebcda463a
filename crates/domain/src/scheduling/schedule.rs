//! Doctors' schedules: profiles, weekly availability in the clinic's time zone, time off, and
//! the free slots and bookability they give. Local wall times are resolved per date with
//! jiff's *compatible* disambiguation, so a 09:00 rule is 09:00 local on both sides of a DST
//! change.

use std::fmt;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::identity::{FullName, UserId};
use crate::kernel::{
    Page, PageRequest, RepositoryError, Text, TextError, ValidationErrors, string_enum,
    time_ordered_id,
};
use crate::scheduling::Conflict;

/// The appointment length of a doctor who never set one, in minutes.
pub const DEFAULT_APPOINTMENT_MINUTES: u16 = 30;
/// The shortest appointment length a doctor may set, in minutes.
pub const MIN_APPOINTMENT_MINUTES: u16 = 5;
/// The longest appointment length a doctor may set, and the longest appointment, in minutes.
pub const MAX_APPOINTMENT_MINUTES: u16 = 480;
/// The longest range free slots are listed for at once.
pub const MAX_SLOT_RANGE: Duration = Duration::days(31);
/// The most specializations a profile lists.
pub const MAX_SPECIALIZATIONS: usize = 10;
/// The longest specialization, in characters.
pub const MAX_SPECIALIZATION_CHARS: usize = 80;
/// The longest biography, in characters.
pub const MAX_BIO_CHARS: usize = 2_000;
/// The most weekly availability rules a doctor has.
pub const MAX_RULES: usize = 70;
/// The longest time-off reason, in characters.
pub const MAX_TIME_OFF_REASON_CHARS: usize = 500;
/// The longest single time off.
pub const MAX_TIME_OFF: Duration = Duration::days(366);
/// How far ahead of now an appointment may start.
pub const BOOKING_HORIZON: Duration = Duration::days(366);

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

/// A specialization as shown ("Cardiology"): trimmed, single line, 1 to 80 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Specialization(Text);

impl Specialization {
    /// # Errors
    /// [`TextError`] naming the first rule `raw` breaks.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        Text::line(raw, MAX_SPECIALIZATION_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The lowercase form specializations are matched and deduplicated by.
    pub fn key(&self) -> String {
        self.0.as_str().to_lowercase()
    }
}

impl fmt::Display for Specialization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A doctor as patients and staff choose them: who they are and how long their appointments are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorProfile {
    pub doctor_id: UserId,
    pub full_name: FullName,
    pub specializations: Vec<Specialization>,
    pub bio: Option<Text>,
    /// [`DEFAULT_APPOINTMENT_MINUTES`] when never set.
    pub appointment_minutes: u16,
    /// `None` when the profile was never set.
    pub updated_at: Option<OffsetDateTime>,
}

impl DoctorProfile {
    /// The profile of a doctor who never set one.
    pub fn unset(doctor_id: UserId, full_name: FullName) -> Self {
        Self {
            doctor_id,
            full_name,
            specializations: Vec::new(),
            bio: None,
            appointment_minutes: DEFAULT_APPOINTMENT_MINUTES,
            updated_at: None,
        }
    }
}

/// A profile as a client writes it: the whole profile (PUT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// Up to 10 distinct specializations (case-insensitively), each 1 to 80 characters; `[]`
    /// for none.
    #[cfg_attr(feature = "openapi", schema(example = json!(["Cardiology"])))]
    pub specializations: Option<Vec<String>>,
    /// Up to 2,000 characters; absent or null for none.
    #[serde(default)]
    pub bio: Option<String>,
    /// 5 to 480.
    #[cfg_attr(feature = "openapi", schema(example = 30))]
    pub appointment_minutes: Option<u16>,
}

/// A validated profile, replacing the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub specializations: Vec<Specialization>,
    pub bio: Option<Text>,
    pub appointment_minutes: u16,
}

impl ProfileInput {
    /// # Errors
    /// [`ValidationErrors`] listing each missing or invalid field (`specializations[2]` for one
    /// item).
    pub fn parse(&self) -> Result<ProfileUpdate, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let specializations = match self.specializations.as_deref() {
            None => {
                errors.add("specializations", "is required");
                None
            }
            Some(raw) if raw.len() > MAX_SPECIALIZATIONS => {
                errors.add(
                    "specializations",
                    format!("must hold at most {MAX_SPECIALIZATIONS} specializations"),
                );
                None
            }
            Some(raw) => parse_specializations(raw, &mut errors),
        };
        let bio = match self.bio.as_deref() {
            Some(raw) => errors
                .check("bio", Text::multiline(raw, MAX_BIO_CHARS))
                .map(Some),
            None => Some(None),
        };
        let appointment_minutes = match self.appointment_minutes {
            Some(m) if (MIN_APPOINTMENT_MINUTES..=MAX_APPOINTMENT_MINUTES).contains(&m) => Some(m),
            Some(_) => {
                errors.add(
                    "appointment_minutes",
                    format!(
                        "must be between {MIN_APPOINTMENT_MINUTES} and {MAX_APPOINTMENT_MINUTES}"
                    ),
                );
                None
            }
            None => {
                errors.add("appointment_minutes", "is required");
                None
            }
        };
        match (specializations, bio, appointment_minutes) {
            (Some(specializations), Some(bio), Some(appointment_minutes)) if errors.is_empty() => {
                Ok(ProfileUpdate {
                    specializations,
                    bio,
                    appointment_minutes,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Each specialization parsed, a repeated one (same key) refused by naming the first.
fn parse_specializations(
    raw: &[String],
    errors: &mut ValidationErrors,
) -> Option<Vec<Specialization>> {
    let before = errors.errors().len();
    let mut parsed: Vec<(usize, Specialization)> = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let field = format!("specializations[{i}]");
        let Some(specialization) = errors.check(&field, Specialization::parse(item)) else {
            continue;
        };
        let key = specialization.key();
        if let Some((first, _)) = parsed.iter().find(|(_, s)| s.key() == key) {
            errors.add(field, format!("repeats specializations[{first}]"));
        } else {
            parsed.push((i, specialization));
        }
    }
    (errors.errors().len() == before).then(|| parsed.into_iter().map(|(_, s)| s).collect())
}

/// One weekly availability rule: the doctor works on `weekday` from `start` to `end`, local
/// time in the clinic's time zone. `start < end`, both on whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(into = "RuleJson", try_from = "RuleJson")]
pub struct AvailabilityRule {
    pub weekday: Weekday,
    /// `HH:MM`, 24-hour.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "09:00"))]
    pub start: Time,
    /// `HH:MM`, 24-hour; after `start`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "17:00"))]
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

/// A doctor's weekly availability as a client writes it: all the rules (PUT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AvailabilityInput {
    /// Up to 70 rules; `[]` for no availability. Rules of one weekday may touch but not overlap.
    pub rules: Option<Vec<RuleInput>>,
}

/// One rule as a client writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Weekday>))]
    pub weekday: Option<String>,
    /// `HH:MM`, 24-hour, local time in the clinic's time zone.
    #[cfg_attr(feature = "openapi", schema(example = "09:00"))]
    pub start: Option<String>,
    /// `HH:MM`, 24-hour; after `start`.
    #[cfg_attr(feature = "openapi", schema(example = "17:00"))]
    pub end: Option<String>,
}

impl AvailabilityInput {
    /// The rules, sorted by weekday (Monday first) and start.
    ///
    /// # Errors
    /// [`ValidationErrors`] listing each missing or invalid field (`rules[3].start`), a rule
    /// ending before it starts (`rules[3].end`) and overlapping rules (`rules[3]`: "overlaps
    /// rules[1]").
    pub fn parse(&self) -> Result<Vec<AvailabilityRule>, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Some(inputs) = self.rules.as_deref() else {
            errors.add("rules", "is required");
            return Err(errors);
        };
        if inputs.len() > MAX_RULES {
            errors.add("rules", format!("must hold at most {MAX_RULES} rules"));
            return Err(errors);
        }
        let mut parsed: Vec<(usize, AvailabilityRule)> = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let Some(rule) = input.parse(i, &mut errors) else {
                continue;
            };
            if let Some((other, _)) = parsed.iter().find(|(_, r)| {
                r.weekday == rule.weekday && r.start < rule.end && rule.start < r.end
            }) {
                errors.add(format!("rules[{i}]"), format!("overlaps rules[{other}]"));
            } else {
                parsed.push((i, rule));
            }
        }
        errors.into_result()?;
        let mut rules: Vec<AvailabilityRule> = parsed.into_iter().map(|(_, r)| r).collect();
        rules.sort_by_key(AvailabilityRule::sort_key);
        Ok(rules)
    }
}

impl RuleInput {
    fn parse(&self, i: usize, errors: &mut ValidationErrors) -> Option<AvailabilityRule> {
        let field = |name: &str, raw: Option<&str>, errors: &mut ValidationErrors| {
            let field = format!("rules[{i}].{name}");
            match raw {
                Some(raw) => errors.check(&field, parse_hhmm(raw)),
                None => {
                    errors.add(field, "is required");
                    None
                }
            }
        };
        let weekday = match self.weekday.as_deref() {
            Some(raw) => errors.check(
                &format!("rules[{i}].weekday"),
                raw.parse::<Weekday>().map_err(|_| {
                    "must be one of monday, tuesday, wednesday, thursday, friday, saturday, sunday"
                }),
            ),
            None => {
                errors.add(format!("rules[{i}].weekday"), "is required");
                None
            }
        };
        let start = field("start", self.start.as_deref(), errors);
        let end = field("end", self.end.as_deref(), errors);
        let (weekday, start, end) = (weekday?, start?, end?);
        let rule = AvailabilityRule::new(weekday, start, end);
        if rule.is_none() {
            errors.add(format!("rules[{i}].end"), "must be after start");
        }
        rule
    }
}

time_ordered_id!(
    /// A time off's identifier.
    TimeOffId
);

/// A period the doctor does not work, whatever their weekly rules say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOff {
    pub id: TimeOffId,
    pub doctor_id: UserId,
    pub start: OffsetDateTime,
    /// After `start`.
    pub end: OffsetDateTime,
    /// Shown only to those who may edit the doctor's schedule.
    pub reason: Option<Text>,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
}

/// Time off as a client writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TimeOffInput {
    /// RFC 3339.
    #[cfg_attr(feature = "openapi", schema(format = DateTime, example = "2027-03-29T00:00:00+02:00"))]
    pub start: Option<String>,
    /// RFC 3339; after `start`, in the future, at most 366 days after `start`.
    #[cfg_attr(feature = "openapi", schema(format = DateTime, example = "2027-04-03T00:00:00+02:00"))]
    pub end: Option<String>,
    /// Up to 500 characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Validated time off, before it is attributed and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTimeOff {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub reason: Option<Text>,
}

impl TimeOffInput {
    /// # Errors
    /// [`ValidationErrors`] listing each missing or invalid field; `end` must be after `start`,
    /// after `now` and at most [`MAX_TIME_OFF`] after `start`.
    pub fn parse(&self, now: OffsetDateTime) -> Result<NewTimeOff, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let start = required_instant("start", self.start.as_deref(), &mut errors);
        let end = required_instant("end", self.end.as_deref(), &mut errors);
        let reason = match self.reason.as_deref() {
            Some(raw) => errors
                .check("reason", Text::multiline(raw, MAX_TIME_OFF_REASON_CHARS))
                .map(Some),
            None => Some(None),
        };
        if let (Some(start), Some(end)) = (start, end) {
            if end <= start {
                errors.add("end", "must be after start");
            } else if end <= now {
                errors.add("end", "is in the past");
            } else if end - start > MAX_TIME_OFF {
                errors.add(
                    "end",
                    format!(
                        "must be at most {} days after start",
                        MAX_TIME_OFF.whole_days()
                    ),
                );
            }
        }
        match (start, end, reason) {
            (Some(start), Some(end), Some(reason)) if errors.is_empty() => {
                Ok(NewTimeOff { start, end, reason })
            }
            _ => Err(errors),
        }
    }
}

/// A required RFC 3339 instant.
fn required_instant(
    field: &str,
    raw: Option<&str>,
    errors: &mut ValidationErrors,
) -> Option<OffsetDateTime> {
    match raw {
        Some(raw) => errors.check(field, parse_instant(raw)),
        None => {
            errors.add(field, "is required");
            None
        }
    }
}

/// The earliest instant scheduling takes from a client.
pub const EARLIEST_INSTANT: OffsetDateTime = time::macros::datetime!(1900-01-01 0:00 UTC);
/// The latest. Both are far from the ends of the calendar, so that any arithmetic scheduling
/// does on a time it was given (an appointment's length, a month of slots, a day of margin)
/// stays within it.
pub const LATEST_INSTANT: OffsetDateTime = time::macros::datetime!(9000-01-01 0:00 UTC);

/// Whether scheduling takes `at` from a client: between [`EARLIEST_INSTANT`] and
/// [`LATEST_INSTANT`].
pub fn is_schedulable(at: OffsetDateTime) -> bool {
    (EARLIEST_INSTANT..=LATEST_INSTANT).contains(&at)
}

/// An RFC 3339 instant (any offset), in UTC, between [`EARLIEST_INSTANT`] and
/// [`LATEST_INSTANT`].
///
/// # Errors
/// What is wrong with it, for a validation message.
pub fn parse_instant(raw: &str) -> Result<OffsetDateTime, &'static str> {
    let at = OffsetDateTime::parse(raw.trim(), &Rfc3339)
        .map_err(|_| "must be an RFC 3339 instant such as 2027-03-29T09:00:00+02:00")?;
    if !is_schedulable(at) {
        return Err("must be between the years 1900 and 9000");
    }
    Ok(at.to_offset(time::UtcOffset::UTC))
}

/// A half-open interval of instants [start, end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl Interval {
    /// `None` unless `start < end`.
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Option<Self> {
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
    pub fn duration(&self) -> Duration {
        self.end - self.start
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
    from: OffsetDateTime,
    to: OffsetDateTime,
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
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Vec<Interval> {
    let Some(range) = Interval::new(from, to) else {
        return Vec::new();
    };
    // One local date of margin on each side: a window of a date may start before `from`'s
    // local date begins or end after `to`'s ends only by the zone's offset change.
    let local_date = |at: OffsetDateTime| tz.to_datetime(to_timestamp(at)).date();
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
fn local_instant(tz: &TimeZone, date: Date, at: Time) -> Option<OffsetDateTime> {
    tz.to_ambiguous_timestamp(date.to_datetime(at))
        .compatible()
        .ok()
        .map(from_timestamp)
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
    from: OffsetDateTime,
    to: OffsetDateTime,
    now: OffsetDateTime,
) -> Vec<Interval> {
    let length = Duration::minutes(i64::from(schedule.appointment_minutes.max(1)));
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
    now: OffsetDateTime,
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

/// The same instant as a [`jiff::Timestamp`], saturating at jiff's range (years -9999 to 9999,
/// slightly narrower than `time`'s).
pub fn to_timestamp(at: OffsetDateTime) -> Timestamp {
    let nanos = at.unix_timestamp_nanos();
    Timestamp::from_nanosecond(nanos).unwrap_or(if nanos < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// The same instant as an [`OffsetDateTime`] in UTC.
pub fn from_timestamp(ts: Timestamp) -> OffsetDateTime {
    let nanos = ts.as_nanosecond();
    // jiff's range lies within time's: the fallback is never taken.
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or_else(|_| {
        if nanos < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX.assume_utc()
        }
    })
}

/// Why time off was not added.
#[derive(Debug, thiserror::Error)]
pub enum TimeOffError {
    /// Active appointments of the doctor overlap it (nothing written). Every one.
    #[error("appointments are booked then")]
    Conflicts(Vec<Conflict>),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
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
        at: OffsetDateTime,
    ) -> Result<(), RepositoryError>;

    /// Rules, time off overlapping [from, to), appointment length, version.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn schedule(
        &self,
        doctor_id: UserId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Schedule, RepositoryError>;

    /// Replaces the rules (bumps the version).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn replace_rules(
        &self,
        doctor_id: UserId,
        rules: &[AvailabilityRule],
        at: OffsetDateTime,
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
        at: OffsetDateTime,
    ) -> Result<bool, RepositoryError>;

    /// Time off ending after `after`, by start.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn upcoming_time_off(
        &self,
        doctor_id: UserId,
        after: OffsetDateTime,
    ) -> Result<Vec<TimeOff>, RepositoryError>;
}

#[cfg(test)]
mod tests;
