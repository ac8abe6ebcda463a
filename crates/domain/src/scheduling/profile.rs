//! A doctor's profile as patients and staff choose them: specializations, biography and
//! appointment length.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identity::{FullName, UserId};
use crate::kernel::{Text, TextError, ValidationErrors};

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
