//! A doctor's profile as patients and staff choose them: specializations, biography and
//! appointment length.

use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::identity::{FullName, UserId};
use crate::kernel::{Text, TextError};

/// The appointment length of a doctor who never set one, in minutes.
pub const DEFAULT_APPOINTMENT_MINUTES: u16 = 30;
/// The shortest appointment length a doctor may set, in minutes.
pub const MIN_APPOINTMENT_MINUTES: u16 = 5;
/// The longest appointment length a doctor may set, and the longest appointment, in minutes.
pub const MAX_APPOINTMENT_MINUTES: u16 = 480;
/// The most specializations a profile lists.
pub const MAX_SPECIALIZATIONS: usize = 10;
/// The longest specialization, in characters.
pub const MAX_SPECIALIZATION_CHARS: usize = 80;
/// The longest biography, in characters.
pub const MAX_BIO_CHARS: usize = 2_000;
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
    pub updated_at: Option<Timestamp>,
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

/// A profile replacing the stored one, every field valid: at most [`MAX_SPECIALIZATIONS`]
/// specializations, no two with the same [`Specialization::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub specializations: Vec<Specialization>,
    pub bio: Option<Text>,
    /// See [`parse_appointment_minutes`].
    pub appointment_minutes: u16,
}

/// A biography: 1 to [`MAX_BIO_CHARS`] characters.
///
/// # Errors
/// The rule the text breaks.
pub fn parse_bio(raw: &str) -> Result<Text, TextError> {
    Text::multiline(raw, MAX_BIO_CHARS)
}

/// An appointment length outside the bounds a doctor may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be between {} and {}",
    MIN_APPOINTMENT_MINUTES,
    MAX_APPOINTMENT_MINUTES
)]
pub struct AppointmentMinutesError;

/// An appointment length a doctor may set: [`MIN_APPOINTMENT_MINUTES`] to
/// [`MAX_APPOINTMENT_MINUTES`].
///
/// # Errors
/// [`AppointmentMinutesError`].
pub fn parse_appointment_minutes(minutes: u16) -> Result<u16, AppointmentMinutesError> {
    if (MIN_APPOINTMENT_MINUTES..=MAX_APPOINTMENT_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(AppointmentMinutesError)
    }
}
