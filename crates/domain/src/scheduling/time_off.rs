//! Time off: periods a doctor does not work, whatever their weekly rules say.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::identity::UserId;
use crate::kernel::{RepositoryError, Text, ValidationErrors, time_ordered_id};
use crate::scheduling::Conflict;
use crate::scheduling::parse_instant;

/// The longest time-off reason, in characters.
pub const MAX_TIME_OFF_REASON_CHARS: usize = 500;
/// The longest single time off.
pub const MAX_TIME_OFF: Duration = Duration::days(366);
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

/// Why time off was not added.
#[derive(Debug, thiserror::Error)]
pub enum TimeOffError {
    /// Active appointments of the doctor overlap it (nothing written). Every one.
    #[error("appointments are booked then")]
    Conflicts(Vec<Conflict>),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}
