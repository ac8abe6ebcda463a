//! The bodies clients send to schedule: a doctor's profile, weekly availability and time off, a
//! booking, a new time and a status change. Each converts into the value its use case takes,
//! listing every missing or invalid field at once, in the order of the fields; the rules
//! themselves (lengths, bounds, what a time looks like) are the domain's.

use jiff::Timestamp;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::kernel::{PatientId, ValidationErrors};
use carehub_domain::scheduling::{
    AppointmentStatus, AvailabilityRule, BookingRequest, MAX_RULES, MAX_SPECIALIZATIONS,
    NewTimeOff, ProfileUpdate, RescheduleRequest, Specialization, StatusChange, Weekday,
    check_appointment_length, check_time_off_span, parse_appointment_minutes,
    parse_appointment_reason, parse_bio, parse_hhmm, parse_instant, parse_minute,
    parse_time_off_reason,
};

use crate::openapi::{enums, rules};

/// A profile as a client writes it: the whole profile (PUT).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// Up to 10 distinct specializations (case-insensitively), each 1 to 80 characters; `[]`
    /// for none.
    #[schema(example = json!(["Cardiology"]), schema_with = rules::specializations, required = true)]
    pub specializations: Option<Vec<String>>,
    /// Up to 2,000 characters; absent or null for none.
    #[serde(default)]
    #[schema(schema_with = rules::optional_text_2000)]
    pub bio: Option<String>,
    /// 5 to 480.
    #[schema(example = 30, value_type = u16, minimum = 5, maximum = 480, required = true)]
    pub appointment_minutes: Option<u16>,
}

impl TryFrom<ProfileInput> for ProfileUpdate {
    type Error = ValidationErrors;

    /// Every missing or invalid field (`specializations[2]` for one item), in the order of the
    /// fields; a repeated specialization names the first.
    fn try_from(input: ProfileInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let specializations = match input.specializations.as_deref() {
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
            Some(raw) => specializations(raw, &mut errors),
        };
        let bio = match input.bio.as_deref() {
            Some(raw) => errors.check("bio", parse_bio(raw)).map(Some),
            None => Some(None),
        };
        let appointment_minutes = errors
            .require("appointment_minutes", input.appointment_minutes)
            .and_then(|m| errors.check("appointment_minutes", parse_appointment_minutes(m)));
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
fn specializations(raw: &[String], errors: &mut ValidationErrors) -> Option<Vec<Specialization>> {
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

/// A doctor's weekly availability as a client writes it: all the rules (PUT).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityInput {
    /// Up to 70 rules; `[]` for no availability. Rules of one weekday may touch but not overlap.
    #[schema(value_type = Vec<RuleInput>, max_items = 70, required = true)]
    pub rules: Option<Vec<RuleInput>>,
}

/// One rule as a client writes it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleInput {
    #[schema(value_type = enums::Weekday, required = true)]
    pub weekday: Option<String>,
    /// `HH:MM`, 24-hour, local time in the clinic's time zone.
    #[schema(example = "09:00", schema_with = rules::hhmm, required = true)]
    pub start: Option<String>,
    /// `HH:MM`, 24-hour; after `start`.
    #[schema(example = "17:00", schema_with = rules::hhmm, required = true)]
    pub end: Option<String>,
}

impl TryFrom<AvailabilityInput> for Vec<AvailabilityRule> {
    type Error = ValidationErrors;

    /// The rules, in the order given. Every missing or invalid field (`rules[3].start`), a rule
    /// ending before it starts (`rules[3].end`) and a rule overlapping an earlier one
    /// (`rules[3]`: "overlaps rules[1]").
    fn try_from(input: AvailabilityInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let Some(inputs) = input.rules else {
            errors.add("rules", "is required");
            return Err(errors);
        };
        if inputs.len() > MAX_RULES {
            errors.add("rules", format!("must hold at most {MAX_RULES} rules"));
            return Err(errors);
        }
        let mut parsed: Vec<(usize, AvailabilityRule)> = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let Some(rule) = input.rule(i, &mut errors) else {
                continue;
            };
            if let Some((other, _)) = parsed.iter().find(|(_, r)| r.overlaps(&rule)) {
                errors.add(format!("rules[{i}]"), format!("overlaps rules[{other}]"));
            } else {
                parsed.push((i, rule));
            }
        }
        errors.into_result()?;
        Ok(parsed.into_iter().map(|(_, r)| r).collect())
    }
}

impl RuleInput {
    /// The rule at `rules[i]`, its errors recorded under that path.
    fn rule(&self, i: usize, errors: &mut ValidationErrors) -> Option<AvailabilityRule> {
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

/// Time off as a client writes it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOffInput {
    /// RFC 3339.
    #[schema(example = "2027-03-29T00:00:00+02:00", schema_with = rules::instant, required = true)]
    pub start: Option<String>,
    /// RFC 3339; after `start`, in the future, at most 366 days after `start`.
    #[schema(example = "2027-04-03T00:00:00+02:00", schema_with = rules::instant, required = true)]
    pub end: Option<String>,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(schema_with = rules::optional_text_500)]
    pub reason: Option<String>,
}

impl TimeOffInput {
    /// The time off asked for, its span checked as of `now` (the scheduling service's clock).
    ///
    /// # Errors
    /// [`ValidationErrors`] listing each missing or invalid field, in the order of the fields,
    /// then what is wrong with the span (on `end`).
    pub fn into_new_time_off(self, now: Timestamp) -> Result<NewTimeOff, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let start = errors
            .require("start", self.start)
            .and_then(|raw| errors.check("start", parse_instant(&raw)));
        let end = errors
            .require("end", self.end)
            .and_then(|raw| errors.check("end", parse_instant(&raw)));
        let reason = match self.reason.as_deref() {
            Some(raw) => errors.check("reason", parse_time_off_reason(raw)).map(Some),
            None => Some(None),
        };
        if let (Some(start), Some(end)) = (start, end) {
            errors.check("end", check_time_off_span(start, end, now));
        }
        match (start, end, reason) {
            (Some(start), Some(end), Some(reason)) if errors.is_empty() => {
                Ok(NewTimeOff { start, end, reason })
            }
            _ => Err(errors),
        }
    }
}

/// An appointment as a client books it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentInput {
    /// An active doctor's account id.
    #[schema(value_type = Uuid, required = true)]
    pub doctor_id: Option<Uuid>,
    #[schema(value_type = Uuid, required = true)]
    pub patient_id: Option<Uuid>,
    /// RFC 3339, on a whole minute, any offset.
    #[schema(schema_with = rules::minute, required = true)]
    pub start: Option<String>,
    /// RFC 3339, on a whole minute; defaults to the doctor's appointment length after `start`.
    #[serde(default)]
    #[schema(schema_with = rules::optional_minute)]
    pub end: Option<String>,
    /// 1 to 500 characters.
    #[schema(schema_with = rules::text_500, required = true)]
    pub reason: Option<String>,
    /// A video consultation: its doctor and patient meet in its call
    /// (`GET /appointments/{id}/call`). Defaults to `false`.
    #[serde(default)]
    pub video: bool,
}

impl TryFrom<AppointmentInput> for BookingRequest {
    type Error = ValidationErrors;

    /// Every missing or invalid field, in the order of the fields; `end` also when it is not
    /// after `start`, or further after it than the longest appointment.
    fn try_from(input: AppointmentInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        errors.require("doctor_id", input.doctor_id.as_ref());
        errors.require("patient_id", input.patient_id.as_ref());
        let start = errors
            .require("start", input.start)
            .and_then(|raw| errors.check("start", parse_minute(&raw)));
        let end = input.end.map(|raw| errors.check("end", parse_minute(&raw)));
        if let (Some(start), Some(Some(end))) = (start, end) {
            errors.check("end", check_appointment_length(start, end));
        }
        let reason = errors
            .require("reason", input.reason)
            .and_then(|raw| errors.check("reason", parse_appointment_reason(&raw)));
        match (input.doctor_id, input.patient_id, start, reason) {
            (Some(doctor_id), Some(patient_id), Some(start), Some(reason)) if errors.is_empty() => {
                Ok(BookingRequest {
                    doctor_id: UserId::from_uuid(doctor_id),
                    patient_id: PatientId::from_uuid(patient_id),
                    start,
                    end: end.flatten(),
                    reason,
                    video: input.video,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A new time for a booked appointment.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleInput {
    /// RFC 3339, on a whole minute, any offset.
    #[schema(schema_with = rules::minute, required = true)]
    pub start: Option<String>,
    /// RFC 3339, on a whole minute; defaults to `start` plus the appointment's current length.
    #[serde(default)]
    #[schema(schema_with = rules::optional_minute)]
    pub end: Option<String>,
}

impl TryFrom<RescheduleInput> for RescheduleRequest {
    type Error = ValidationErrors;

    /// A missing or invalid `start`, an invalid `end`. Whether the new time is long enough and
    /// not too long depends on the appointment's current length when `end` is left out: the
    /// use case checks it ([`RescheduleRequest::interval`]).
    fn try_from(input: RescheduleInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let start = errors
            .require("start", input.start)
            .and_then(|raw| errors.check("start", parse_minute(&raw)));
        let end = input.end.map(|raw| errors.check("end", parse_minute(&raw)));
        match (start, end) {
            (Some(start), None) => Ok(RescheduleRequest { start, end: None }),
            (Some(start), Some(Some(end))) => Ok(RescheduleRequest {
                start,
                end: Some(end),
            }),
            _ => Err(errors),
        }
    }
}

/// A status change a client asks for.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    #[schema(value_type = enums::AppointmentStatus, required = true)]
    pub status: Option<String>,
    /// Required to cancel (1 to 1,000 characters), refused otherwise.
    #[serde(default)]
    #[schema(schema_with = rules::optional_text_1000)]
    pub reason: Option<String>,
}

impl TryFrom<StatusInput> for StatusChange {
    type Error = ValidationErrors;

    /// A missing or unknown `status`. The reason is passed on as written: whether the change
    /// needs one, and what it may be, the use case decides with the change.
    fn try_from(input: StatusInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let to = errors.require("status", input.status).and_then(|raw| {
            errors.check(
                "status",
                raw.parse::<AppointmentStatus>().map_err(|_| {
                    "must be one of booked, checked_in, in_progress, completed, cancelled, no_show"
                }),
            )
        });
        match to {
            Some(to) => Ok(StatusChange {
                to,
                reason: input.reason,
            }),
            None => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests;
