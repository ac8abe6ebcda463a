//! Patients: who they are, how to reach them, how they are identified and insured, where they
//! lie, and the port that stores them.

use std::fmt;

use async_trait::async_trait;
use jiff::{Timestamp, civil::Date};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::AuditEvent;
use crate::identity::{Email, FullName, UserId};
use crate::kernel::{Page, PageRequest, Phone, RepositoryError, Text, parse_date};
use crate::patients::CareTeamMember;

pub use crate::kernel::PatientId;
use crate::patients::PatientQuery;

/// The most identifiers one patient may carry.
pub const MAX_IDENTIFIERS: usize = 20;
/// The most address lines.
pub const MAX_ADDRESS_LINES: usize = 4;
/// The oldest a date of birth may be, in years.
pub const MAX_AGE_YEARS: i32 = 150;

/// A medical record number: `CH-` and nine digits in groups, `CH-4821-7730-5`, the last digit a
/// Luhn check digit so that a mistyped digit or swapped neighbours are caught when read out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Mrn(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a medical record number such as CH-4821-7730-5")]
pub struct MrnError;

impl Mrn {
    /// The record number for `number` (its eight lowest decimal digits are used).
    pub fn from_number(number: u64) -> Self {
        let body = number % 100_000_000;
        let digits = format!("{body:08}");
        let check = luhn_check_digit(&digits);
        Self(format!("CH-{}-{}-{check}", &digits[..4], &digits[4..]))
    }

    /// A random record number; the store refuses one already in use and the caller draws again.
    pub fn random() -> Self {
        let random = Uuid::new_v4().as_u128();
        #[allow(clippy::cast_possible_truncation)]
        Self::from_number((random % 100_000_000) as u64)
    }

    /// Reads a record number as a person may type it: any case, with or without the dashes.
    ///
    /// # Errors
    /// [`MrnError`] when `raw` is not one, or its check digit is wrong.
    pub fn parse(raw: &str) -> Result<Self, MrnError> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .collect::<String>()
            .to_ascii_uppercase();
        let digits = compact.strip_prefix("CH").ok_or(MrnError)?;
        if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MrnError);
        }
        let (body, check) = digits.split_at(8);
        if check != luhn_check_digit(body).to_string() {
            return Err(MrnError);
        }
        let number: u64 = body.parse().map_err(|_| MrnError)?;
        Ok(Self::from_number(number))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn luhn_check_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// Administrative sex, as FHIR records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub const ALL: [Sex; 4] = [Sex::Female, Sex::Male, Sex::Other, Sex::Unknown];

    pub const fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

impl std::str::FromStr for Sex {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sex::ALL
            .into_iter()
            .find(|sex| sex.as_str() == s)
            .ok_or("must be one of female, male, other, unknown")
    }
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// One to four lines: street, number, building.
    pub lines: Vec<Text>,
    pub city: Option<Text>,
    pub postal_code: Option<Text>,
    pub country: Option<Text>,
}

/// How to reach a patient. Every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub address: Option<Address>,
}

/// A namespace of identifiers, such as `national_id` or `urn:oid:2.16.756.5.32`: 1 to 64 of
/// `a-z 0-9 : . _ / -`, kept lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdentifierSystem(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 64 of a-z, 0-9, ':', '.', '_', '/', '-'")]
pub struct IdentifierSystemError;

impl IdentifierSystem {
    /// # Errors
    /// [`IdentifierSystemError`].
    pub fn parse(raw: &str) -> Result<Self, IdentifierSystemError> {
        let lower = raw.trim().to_ascii_lowercase();
        let valid = (1..=64).contains(&lower.len())
            && lower.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b':' | b'.' | b'_' | b'/' | b'-')
            });
        if valid {
            Ok(Self(lower))
        } else {
            Err(IdentifierSystemError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An identifier another system gave the patient; a value belongs to one patient per system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identifier {
    pub system: IdentifierSystem,
    pub value: Text,
}

/// Who pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insurance {
    pub provider: Text,
    pub policy_number: Text,
    pub group: Option<Text>,
    pub valid_until: Option<Date>,
}

/// Whom to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyContact {
    pub name: Text,
    pub relationship: Option<Text>,
    pub phone: Phone,
}

/// Where an admitted patient lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub room: Text,
    pub bed: Option<Text>,
}

/// A date of birth written `YYYY-MM-DD`: a real day, not after `today`, and within the last
/// [`MAX_AGE_YEARS`] years.
///
/// # Errors
/// The rule `raw` breaks.
pub fn parse_date_of_birth(raw: &str, today: Date) -> Result<Date, &'static str> {
    let date = parse_date(raw)?;
    if date > today {
        return Err("must not be in the future");
    }
    if i32::from(today.year()) - i32::from(date.year()) > MAX_AGE_YEARS {
        return Err("must be within the last 150 years");
    }
    Ok(date)
}

/// Everything about a patient that staff register and edit, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientDetails {
    pub full_name: FullName,
    pub date_of_birth: Date,
    pub sex: Sex,
    pub contact: Contact,
    pub identifiers: Vec<Identifier>,
    pub insurance: Option<Insurance>,
    pub emergency_contact: Option<EmergencyContact>,
    pub location: Option<Location>,
    /// The patient's own account, once they have one.
    pub user_id: Option<UserId>,
}

/// A registered patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub id: PatientId,
    pub mrn: Mrn,
    pub details: PatientDetails,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a list or a search shows of a patient: enough to tell patients apart, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    pub id: PatientId,
    pub mrn: Mrn,
    pub full_name: FullName,
    pub date_of_birth: Date,
    pub sex: Sex,
}

impl From<&Patient> for PatientSummary {
    fn from(patient: &Patient) -> Self {
        Self {
            id: patient.id,
            mrn: patient.mrn.clone(),
            full_name: patient.details.full_name.clone(),
            date_of_birth: patient.details.date_of_birth,
            sex: patient.details.sex,
        }
    }
}

// ---- Port ------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum SavePatientError {
    #[error("the medical record number is taken")]
    MrnTaken,
    #[error("another patient holds this {system} identifier")]
    IdentifierTaken { system: String },
    #[error("the account is linked to another patient")]
    UserLinked,
    /// The patient changed since it was read.
    #[error("the patient was changed concurrently")]
    Stale,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores patients. Every change is written together with its audit event, in one transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PatientRepository: Send + Sync {
    /// Stores a new patient, its first care-team members (the registering doctor), and the audit
    /// event.
    ///
    /// # Errors
    /// [`SavePatientError`]: `MrnTaken`, `IdentifierTaken`, `UserLinked`, or a storage failure.
    async fn create(
        &self,
        patient: &Patient,
        first_members: &[CareTeamMember],
        audit: &AuditEvent,
    ) -> Result<(), SavePatientError>;

    /// # Errors
    /// [`RepositoryError`]; a missing patient is `Ok(None)`.
    async fn find(&self, id: PatientId) -> Result<Option<Patient>, RepositoryError>;

    /// The patient record linked to this account.
    ///
    /// # Errors
    /// [`RepositoryError`]; no linked record is `Ok(None)`.
    async fn find_by_user(&self, user_id: UserId) -> Result<Option<Patient>, RepositoryError>;

    /// Replaces the details of the patient if it was last updated at `expected_updated_at`,
    /// sets `updated_at` to `now`, and writes the audit event. Returns the patient as it now is.
    ///
    /// # Errors
    /// [`SavePatientError::Stale`] when the patient changed (or vanished) meanwhile;
    /// `IdentifierTaken`, `UserLinked`, or a storage failure.
    async fn update(
        &self,
        id: PatientId,
        details: &PatientDetails,
        expected_updated_at: Timestamp,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Patient, SavePatientError>;

    /// Patients matching `query`, ordered by id.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn search(
        &self,
        query: &PatientQuery,
        page: PageRequest<PatientId>,
    ) -> Result<Page<PatientSummary, PatientId>, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patients::*;

    const TODAY: Date = jiff::civil::date(2026, 11, 22);

    #[test]
    fn record_numbers_carry_a_check_digit_and_read_back_however_typed() {
        let mrn = Mrn::from_number(48_217_730);
        assert_eq!(mrn.as_str(), "CH-4821-7730-0");
        assert_eq!(Mrn::parse("ch 4821 77300"), Ok(mrn.clone()));
        assert_eq!(Mrn::parse("CH482177300"), Ok(mrn));
        // One wrong digit, or two neighbours swapped, fails the check.
        assert!(Mrn::parse("CH-4821-7730-5").is_err());
        assert!(Mrn::parse("CH-4812-7730-0").is_err());
        assert!(Mrn::parse("4821-7730-0").is_err());
        for _ in 0..100 {
            let random = Mrn::random();
            assert_eq!(Mrn::parse(random.as_str()), Ok(random));
        }
    }

    #[test]
    fn dates_of_birth_are_real_past_dates_within_a_lifetime() {
        for (raw, ok) in [
            ("2026-11-22", true),
            ("2026-11-23", false),
            ("1876-11-22", true),
            ("1870-01-01", false),
            ("1999-02-29", false),
        ] {
            assert_eq!(parse_date_of_birth(raw, TODAY).is_ok(), ok, "{raw}");
        }
    }

    #[test]
    fn search_text_recognises_record_numbers_and_normalises_names() {
        let text = SearchText::parse("  ch-4821-7730-0 ").expect("valid");
        assert_eq!(text.mrn().map(Mrn::as_str), Some("CH-4821-7730-0"));
        let name = SearchText::parse("LoveLace   Ada").expect("valid");
        assert_eq!(name.name_fragment(), "lovelace ada");
        assert_eq!(name.mrn(), None);
        assert!(SearchText::parse("  ").is_err());
        assert!(SearchText::parse(&"x".repeat(101)).is_err());
    }
}
