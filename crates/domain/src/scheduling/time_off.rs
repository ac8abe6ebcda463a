//! Time off: periods a doctor does not work, whatever their weekly rules say.

use jiff::{SignedDuration, Timestamp};

use crate::identity::UserId;
use crate::kernel::{RepositoryError, Text, TextError, time_ordered_id};
use crate::scheduling::Conflict;

/// The longest time-off reason, in characters.
pub const MAX_TIME_OFF_REASON_CHARS: usize = 500;
/// The longest single time off.
pub const MAX_TIME_OFF: SignedDuration = SignedDuration::from_hours(24 * 366);
time_ordered_id!(
    /// A time off's identifier.
    TimeOffId
);

/// A period the doctor does not work, whatever their weekly rules say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOff {
    pub id: TimeOffId,
    pub doctor_id: UserId,
    pub start: Timestamp,
    /// After `start`.
    pub end: Timestamp,
    /// Shown only to those who may edit the doctor's schedule.
    pub reason: Option<Text>,
    pub created_by: UserId,
    pub created_at: Timestamp,
}

/// Time off to add, every field valid, before it is attributed and stored: `end` passed
/// [`check_time_off_span`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTimeOff {
    pub start: Timestamp,
    pub end: Timestamp,
    pub reason: Option<Text>,
}

/// Why time off is taken: 1 to [`MAX_TIME_OFF_REASON_CHARS`] characters.
///
/// # Errors
/// The rule the text breaks.
pub fn parse_time_off_reason(raw: &str) -> Result<Text, TextError> {
    Text::multiline(raw, MAX_TIME_OFF_REASON_CHARS)
}

/// What is wrong with the end of time off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeOffSpanError {
    #[error("must be after start")]
    NotAfterStart,
    #[error("is in the past")]
    Past,
    #[error("must be at most {} days after start", MAX_TIME_OFF.as_hours() / 24)]
    TooLong,
}

/// Whether time off may run from `start` to `end` as of `now`: `end` after `start`, after
/// `now`, and at most [`MAX_TIME_OFF`] after `start` (checked in this order). It may have
/// started already.
///
/// # Errors
/// [`TimeOffSpanError`], a message for field `end`.
pub fn check_time_off_span(
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
) -> Result<(), TimeOffSpanError> {
    if end <= start {
        Err(TimeOffSpanError::NotAfterStart)
    } else if end <= now {
        Err(TimeOffSpanError::Past)
    } else if end.duration_since(start) > MAX_TIME_OFF {
        Err(TimeOffSpanError::TooLong)
    } else {
        Ok(())
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
