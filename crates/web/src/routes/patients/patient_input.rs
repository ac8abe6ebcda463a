//! A patient as a client writes it, and how it is parsed whole into the domain's
//! [`PatientDetails`], every invalid field reported at once.

use std::collections::HashSet;
use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::identity::{Email, FullName, UserId};
use carehub_domain::kernel::{Phone, Text, TextError, ValidationErrors, format_date, parse_date};
use carehub_domain::patients::{
    Address, Contact, EmergencyContact, Identifier, IdentifierSystem, Insurance, Location,
    MAX_ADDRESS_LINES, MAX_IDENTIFIERS, PatientDetails, Sex, parse_date_of_birth,
};

use crate::extract::from_json_value;
use crate::openapi::{enums, rules};

/// A patient as a client writes it: registration takes it whole, and a change is merged into
/// the current one before the result is validated again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    /// One line of at most 200 characters.
    #[schema(example = "Ada Lovelace", schema_with = rules::full_name, required = true)]
    pub full_name: Option<String>,
    /// `YYYY-MM-DD`, not in the future and within the last 150 years.
    #[schema(example = "1985-12-10", schema_with = rules::date, required = true)]
    pub date_of_birth: Option<String>,
    #[schema(value_type = enums::Sex, required = true)]
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

/// A JSON merge patch (RFC 7396) of a [`PatientInput`], as published: any object. Fields
/// present replace the current ones, `null` clears one, absent ones stay; the result must be a
/// valid patient, checked whole as at registration.
#[derive(Debug)]
pub struct PatientPatch;

impl utoipa::PartialSchema for PatientPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .description(Some(
                "A JSON merge patch (RFC 7396) of a PatientInput: fields present replace the \
                 current ones, `null` clears one, absent fields stay. The result must be a \
                 valid PatientInput, checked whole as at registration.",
            ))
            .into()
    }
}

impl ToSchema for PatientPatch {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_phone)]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::email)]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// One to four lines, each of at most 200 characters.
    #[serde(default)]
    #[schema(schema_with = rules::address_lines, required = true)]
    pub lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_line_100)]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_line_20)]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_line_100)]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifierInput {
    /// 1 to 64 of `a-z 0-9 : . _ / -`, in any case.
    #[schema(example = "national_id", pattern = "^[\\t\\n\\x0b\\x0c\\r ]*[A-Za-z0-9:._/-]{1,64}[\\t\\n\\x0b\\x0c\\r ]*$", value_type = String, required = true)]
    pub system: Option<String>,
    /// One line of at most 64 characters.
    #[schema(example = "756.1234.5678.97", schema_with = rules::line_64, required = true)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InsuranceInput {
    #[schema(schema_with = rules::line_200, required = true)]
    pub provider: Option<String>,
    #[schema(schema_with = rules::line_64, required = true)]
    pub policy_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_line_64)]
    pub group: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_date)]
    pub valid_until: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyContactInput {
    #[schema(schema_with = rules::line_200, required = true)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_line_64)]
    pub relationship: Option<String>,
    #[schema(schema_with = rules::phone, required = true)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    #[schema(schema_with = rules::line_32, required = true)]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = rules::optional_line_32)]
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

fn line(max: usize) -> impl Fn(&str) -> Result<Text, TextError> {
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
            |raw| parse_date_of_birth(raw, today),
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

/// Merges `patch` (RFC 7396) into the patient's current input; what results must still be a
/// patient input (no unknown fields, each of its type), or its first offending field is named.
///
/// # Errors
/// The field that is unknown or of the wrong type.
pub fn apply_merge_patch(
    current: &PatientInput,
    patch: &Value,
) -> Result<PatientInput, ValidationErrors> {
    // Serialising plain strings, options, lists and UUIDs cannot fail; should it ever, the
    // patch is merged into an empty document and validation names what is missing.
    let mut document =
        serde_json::to_value(current).unwrap_or_else(|_| Value::Object(Default::default()));
    json_patch::merge(&mut document, patch);
    from_json_value(document)
}

#[cfg(test)]
mod tests;
