//! Patients: who they are, how to reach them, how they are identified and insured, where they
//! lie, and the port that stores them.

use std::collections::HashSet;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::audit::AuditEvent;
use crate::identity::{Email, FullName, UserId};
use crate::kernel::{
    Page, PageRequest, Phone, RepositoryError, Text, ValidationErrors, format_date, parse_date,
};
use crate::patients::CareTeamMember;

pub use crate::kernel::PatientId;

/// The most identifiers one patient may carry.
pub const MAX_IDENTIFIERS: usize = 20;
/// The most address lines.
pub const MAX_ADDRESS_LINES: usize = 4;
/// The oldest a date of birth may be, in years.
const MAX_AGE_YEARS: i32 = 150;

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
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

// ---- Input, as a client sends it -----------------------------------------------------------

/// A patient as a client writes it: registration takes it whole, and a change is merged into
/// the current one before the result is validated again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    #[cfg_attr(feature = "openapi", schema(example = "Ada Lovelace"))]
    pub full_name: Option<String>,
    /// `YYYY-MM-DD`, not in the future.
    #[cfg_attr(feature = "openapi", schema(example = "1985-12-10"))]
    pub date_of_birth: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Sex>))]
    pub sex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactInput>,
    /// At most 20; one per system, and a value belongs to one patient per system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifiers: Option<Vec<IdentifierInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurance: Option<InsuranceInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_contact: Option<EmergencyContactInput>,
    /// Room and bed, while admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationInput>,
    /// The patient's own account (a user with the patient role), if they have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// One to four lines.
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IdentifierInput {
    #[cfg_attr(feature = "openapi", schema(example = "national_id"))]
    pub system: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "756.1234.5678.97"))]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InsuranceInput {
    pub provider: Option<String>,
    pub policy_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EmergencyContactInput {
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bed: Option<String>,
}

/// Records the error of a required field that is absent, or parses it.
fn required<T, E: fmt::Display>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    match raw {
        Some(raw) => errors.check(field, parse(raw)),
        None => {
            errors.add(field, "is required");
            None
        }
    }
}

/// Parses an optional field: absent stays `None`, present must be valid.
fn optional<T, E: fmt::Display>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    raw.and_then(|raw| errors.check(field, parse(raw)))
}

fn line(max: usize) -> impl Fn(&str) -> Result<Text, crate::kernel::TextError> {
    move |raw| Text::line(raw, max)
}

impl PatientInput {
    /// Validates every field, reporting all violations at once with their paths. `today` bounds
    /// the date of birth.
    ///
    /// # Errors
    /// [`ValidationErrors`] listing each invalid field.
    pub fn parse(&self, today: Date) -> Result<PatientDetails, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let full_name = required(&mut errors, "full_name", self.full_name.as_deref(), |raw| {
            FullName::parse(raw)
        });
        let date_of_birth = required(
            &mut errors,
            "date_of_birth",
            self.date_of_birth.as_deref(),
            |raw| {
                let date = parse_date(raw)?;
                if date > today {
                    return Err("must not be in the future");
                }
                if today.year() - date.year() > MAX_AGE_YEARS {
                    return Err("must be within the last 150 years");
                }
                Ok(date)
            },
        );
        let sex = required(&mut errors, "sex", self.sex.as_deref(), str::parse::<Sex>);
        let contact = self
            .contact
            .as_ref()
            .map(|c| c.parse(&mut errors))
            .unwrap_or_default();
        let identifiers = parse_identifiers(self.identifiers.as_deref(), &mut errors);
        let insurance = self.insurance.as_ref().and_then(|i| i.parse(&mut errors));
        let emergency_contact = self
            .emergency_contact
            .as_ref()
            .and_then(|c| c.parse(&mut errors));
        let location = self.location.as_ref().and_then(|l| l.parse(&mut errors));
        let broken_parts = (self.insurance.is_some() && insurance.is_none())
            || (self.emergency_contact.is_some() && emergency_contact.is_none())
            || (self.location.is_some() && location.is_none());
        match (full_name, date_of_birth, sex) {
            (Some(full_name), Some(date_of_birth), Some(sex))
                if errors.is_empty() && !broken_parts =>
            {
                Ok(PatientDetails {
                    full_name,
                    date_of_birth,
                    sex,
                    contact,
                    identifiers,
                    insurance,
                    emergency_contact,
                    location,
                    user_id: self.user_id.map(UserId::from_uuid),
                })
            }
            _ => Err(errors),
        }
    }
}

fn parse_identifiers(
    raw: Option<&[IdentifierInput]>,
    errors: &mut ValidationErrors,
) -> Vec<Identifier> {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_IDENTIFIERS {
        errors.add(
            "identifiers",
            format!("must hold at most {MAX_IDENTIFIERS} identifiers"),
        );
        return Vec::new();
    }
    let mut systems = HashSet::new();
    let mut identifiers = Vec::with_capacity(raw.len());
    for (i, input) in raw.iter().enumerate() {
        let system = required(
            errors,
            &format!("identifiers[{i}].system"),
            input.system.as_deref(),
            IdentifierSystem::parse,
        );
        let value = required(
            errors,
            &format!("identifiers[{i}].value"),
            input.value.as_deref(),
            line(64),
        );
        if let (Some(system), Some(value)) = (system, value) {
            if systems.insert(system.clone()) {
                identifiers.push(Identifier { system, value });
            } else {
                errors.add(
                    format!("identifiers[{i}].system"),
                    "a patient holds one identifier per system",
                );
            }
        }
    }
    identifiers
}

impl ContactInput {
    fn parse(&self, errors: &mut ValidationErrors) -> Contact {
        Contact {
            phone: optional(errors, "contact.phone", self.phone.as_deref(), Phone::parse),
            email: optional(errors, "contact.email", self.email.as_deref(), Email::parse),
            address: self.address.as_ref().and_then(|a| a.parse(errors)),
        }
    }
}

impl AddressInput {
    fn parse(&self, errors: &mut ValidationErrors) -> Option<Address> {
        let before = errors.errors().len();
        if self.lines.is_empty() || self.lines.len() > MAX_ADDRESS_LINES {
            errors.add(
                "contact.address.lines",
                format!("must hold 1 to {MAX_ADDRESS_LINES} lines"),
            );
        }
        let lines: Vec<Text> = self
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, raw)| {
                errors.check(&format!("contact.address.lines[{i}]"), Text::line(raw, 200))
            })
            .collect();
        let address = Address {
            lines,
            city: optional(
                errors,
                "contact.address.city",
                self.city.as_deref(),
                line(100),
            ),
            postal_code: optional(
                errors,
                "contact.address.postal_code",
                self.postal_code.as_deref(),
                line(20),
            ),
            country: optional(
                errors,
                "contact.address.country",
                self.country.as_deref(),
                line(100),
            ),
        };
        (errors.errors().len() == before).then_some(address)
    }
}

impl InsuranceInput {
    fn parse(&self, errors: &mut ValidationErrors) -> Option<Insurance> {
        let provider = required(
            errors,
            "insurance.provider",
            self.provider.as_deref(),
            line(200),
        );
        let policy_number = required(
            errors,
            "insurance.policy_number",
            self.policy_number.as_deref(),
            line(64),
        );
        let group = optional(errors, "insurance.group", self.group.as_deref(), line(64));
        let valid_until = optional(
            errors,
            "insurance.valid_until",
            self.valid_until.as_deref(),
            parse_date,
        );
        let group_ok = self.group.is_none() || group.is_some();
        let valid_until_ok = self.valid_until.is_none() || valid_until.is_some();
        match (provider, policy_number) {
            (Some(provider), Some(policy_number)) if group_ok && valid_until_ok => {
                Some(Insurance {
                    provider,
                    policy_number,
                    group,
                    valid_until,
                })
            }
            _ => None,
        }
    }
}

impl EmergencyContactInput {
    fn parse(&self, errors: &mut ValidationErrors) -> Option<EmergencyContact> {
        let name = required(
            errors,
            "emergency_contact.name",
            self.name.as_deref(),
            line(200),
        );
        let relationship = optional(
            errors,
            "emergency_contact.relationship",
            self.relationship.as_deref(),
            line(64),
        );
        let phone = required(
            errors,
            "emergency_contact.phone",
            self.phone.as_deref(),
            Phone::parse,
        );
        let relationship_ok = self.relationship.is_none() || relationship.is_some();
        match (name, phone) {
            (Some(name), Some(phone)) if relationship_ok => Some(EmergencyContact {
                name,
                relationship,
                phone,
            }),
            _ => None,
        }
    }
}

impl LocationInput {
    fn parse(&self, errors: &mut ValidationErrors) -> Option<Location> {
        let room = required(errors, "location.room", self.room.as_deref(), line(32));
        let bed = optional(errors, "location.bed", self.bed.as_deref(), line(32));
        let bed_ok = self.bed.is_none() || bed.is_some();
        match room {
            Some(room) if bed_ok => Some(Location { room, bed }),
            _ => None,
        }
    }
}

impl From<&PatientDetails> for PatientInput {
    /// The input that parses back to these details: what a change is merged into.
    fn from(details: &PatientDetails) -> Self {
        let text = |t: &Text| Some(t.as_str().to_owned());
        let contact = &details.contact;
        let contact_is_empty = contact == &Contact::default();
        Self {
            full_name: Some(details.full_name.as_str().to_owned()),
            date_of_birth: Some(format_date(details.date_of_birth)),
            sex: Some(details.sex.as_str().to_owned()),
            contact: (!contact_is_empty).then(|| ContactInput {
                phone: contact.phone.as_ref().map(|p| p.as_str().to_owned()),
                email: contact.email.as_ref().map(|e| e.as_str().to_owned()),
                address: contact.address.as_ref().map(|a| AddressInput {
                    lines: a.lines.iter().map(|l| l.as_str().to_owned()).collect(),
                    city: a.city.as_ref().and_then(text),
                    postal_code: a.postal_code.as_ref().and_then(text),
                    country: a.country.as_ref().and_then(text),
                }),
            }),
            identifiers: (!details.identifiers.is_empty()).then(|| {
                details
                    .identifiers
                    .iter()
                    .map(|i| IdentifierInput {
                        system: Some(i.system.as_str().to_owned()),
                        value: text(&i.value),
                    })
                    .collect()
            }),
            insurance: details.insurance.as_ref().map(|i| InsuranceInput {
                provider: text(&i.provider),
                policy_number: text(&i.policy_number),
                group: i.group.as_ref().and_then(text),
                valid_until: i.valid_until.map(format_date),
            }),
            emergency_contact: details
                .emergency_contact
                .as_ref()
                .map(|c| EmergencyContactInput {
                    name: text(&c.name),
                    relationship: c.relationship.as_ref().and_then(text),
                    phone: Some(c.phone.as_str().to_owned()),
                }),
            location: details.location.as_ref().map(|l| LocationInput {
                room: text(&l.room),
                bed: l.bed.as_ref().and_then(text),
            }),
            user_id: details.user_id.map(|id| *id.as_uuid()),
        }
    }
}

// ---- Search ----------------------------------------------------------------------------------

/// What a caller typed into a patient search: matched against names (any part, regardless of
/// case), record numbers and identifier values (exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    raw: String,
    name_fragment: String,
    mrn: Option<Mrn>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 100 characters")]
pub struct SearchTextError;

impl SearchText {
    /// # Errors
    /// [`SearchTextError`] when empty or longer than 100 characters.
    pub fn parse(raw: &str) -> Result<Self, SearchTextError> {
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || trimmed.chars().count() > 100
            || trimmed.chars().any(char::is_control)
        {
            return Err(SearchTextError);
        }
        Ok(Self {
            raw: trimmed.to_owned(),
            name_fragment: search_key(trimmed),
            mrn: Mrn::parse(trimmed).ok(),
        })
    }

    /// The text as typed, trimmed: compared exactly with identifier values.
    pub fn exact(&self) -> &str {
        &self.raw
    }

    /// The text as names are indexed for search.
    pub fn name_fragment(&self) -> &str {
        &self.name_fragment
    }

    /// The record number the text names, if it is one.
    pub fn mrn(&self) -> Option<&Mrn> {
        self.mrn.as_ref()
    }
}

/// How a name is indexed for search: lowercase, single spaces.
pub fn search_key(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Which patients a search may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// Every patient (secretaries, administrators).
    All,
    /// The doctor's current care-team patients, and any other patient only on an exact record
    /// number or identifier match.
    Doctor {
        doctor_id: UserId,
        at: OffsetDateTime,
    },
}

/// A patient search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientQuery {
    pub text: Option<SearchText>,
    pub scope: SearchScope,
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
        expected_updated_at: OffsetDateTime,
        now: OffsetDateTime,
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
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 22);

    fn minimal() -> PatientInput {
        PatientInput {
            full_name: Some("Ada Lovelace".into()),
            date_of_birth: Some("1985-12-10".into()),
            sex: Some("female".into()),
            ..PatientInput::default()
        }
    }

    fn full() -> PatientInput {
        PatientInput {
            contact: Some(ContactInput {
                phone: Some("+44 20 7946 0958".into()),
                email: Some("ada@example.org".into()),
                address: Some(AddressInput {
                    lines: vec!["12 St James's Square".into()],
                    city: Some("London".into()),
                    postal_code: Some("SW1Y 4JH".into()),
                    country: Some("GB".into()),
                }),
            }),
            identifiers: Some(vec![IdentifierInput {
                system: Some("National_ID".into()),
                value: Some("QQ 12 34 56 C".into()),
            }]),
            insurance: Some(InsuranceInput {
                provider: Some("Helvetia".into()),
                policy_number: Some("P-123".into()),
                group: None,
                valid_until: Some("2027-12-31".into()),
            }),
            emergency_contact: Some(EmergencyContactInput {
                name: Some("Annabella Byron".into()),
                relationship: Some("mother".into()),
                phone: Some("+44 20 7946 0000".into()),
            }),
            location: Some(LocationInput {
                room: Some("3.14".into()),
                bed: Some("B".into()),
            }),
            user_id: Some(Uuid::now_v7()),
            ..minimal()
        }
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

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
    fn a_complete_patient_parses_and_round_trips_through_its_input() {
        let details = full().parse(TODAY).expect("valid");
        assert_eq!(details.identifiers[0].system.as_str(), "national_id");
        let again = PatientInput::from(&details).parse(TODAY).expect("valid");
        assert_eq!(again, details);
        let minimal = minimal().parse(TODAY).expect("valid");
        assert_eq!(PatientInput::from(&minimal), minimal_normalised());
    }

    fn minimal_normalised() -> PatientInput {
        minimal()
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let input = PatientInput {
            full_name: None,
            date_of_birth: Some("2030-01-01".into()),
            sex: Some("f".into()),
            contact: Some(ContactInput {
                phone: Some("call me".into()),
                email: Some("not-an-email".into()),
                address: Some(AddressInput::default()),
            }),
            identifiers: Some(vec![
                IdentifierInput {
                    system: Some("national id".into()),
                    value: Some(String::new()),
                },
                IdentifierInput {
                    system: Some("passport".into()),
                    value: Some("X1".into()),
                },
                IdentifierInput {
                    system: Some("PASSPORT".into()),
                    value: Some("X2".into()),
                },
            ]),
            insurance: Some(InsuranceInput {
                valid_until: Some("2027-02-30".into()),
                ..InsuranceInput::default()
            }),
            emergency_contact: Some(EmergencyContactInput::default()),
            location: Some(LocationInput {
                room: Some("r".repeat(33)),
                bed: None,
            }),
            user_id: None,
        };
        let errors = input.parse(TODAY).expect_err("invalid");
        assert_eq!(
            fields(&errors),
            [
                "full_name",
                "date_of_birth",
                "sex",
                "contact.phone",
                "contact.email",
                "contact.address.lines",
                "identifiers[0].system",
                "identifiers[0].value",
                "identifiers[2].system",
                "insurance.provider",
                "insurance.policy_number",
                "insurance.valid_until",
                "emergency_contact.name",
                "emergency_contact.phone",
                "location.room",
            ]
        );
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
            let input = PatientInput {
                date_of_birth: Some(raw.into()),
                ..minimal()
            };
            assert_eq!(input.parse(TODAY).is_ok(), ok, "{raw}");
        }
    }

    #[test]
    fn lists_have_a_maximum_size() {
        let input = PatientInput {
            identifiers: Some(
                (0..=MAX_IDENTIFIERS)
                    .map(|i| IdentifierInput {
                        system: Some(format!("system-{i}")),
                        value: Some("v".into()),
                    })
                    .collect(),
            ),
            ..minimal()
        };
        let errors = input.parse(TODAY).expect_err("too many");
        assert_eq!(fields(&errors), ["identifiers"]);
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
