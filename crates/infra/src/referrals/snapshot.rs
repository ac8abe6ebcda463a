//! A referral's snapshot as stored in `referrals.snapshot`: infra's own JSON shape, so that a
//! change to the domain's or the API's serde cannot silently change what stored snapshots mean.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use carehub_domain::identity::{Email, FullName, UserId};
use carehub_domain::kernel::{Phone, RepositoryError, Text, format_date, parse_date};
use carehub_domain::patients::{
    Address, Allergy, Condition, Contact, EmergencyContact, Identifier, IdentifierSystem,
    Insurance, Location, MedicalInfo, MedicalRecord, Medication, Mrn, Patient, PatientDetails,
    PatientId,
};
use carehub_domain::referrals::ReferralSnapshot;

use super::STORED;
use crate::db::backend::corrupt;

/// What the sender shared, as stored in `referrals.snapshot`. Instants are RFC 3339 in UTC
/// with every fractional digit, dates `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StoredSnapshot {
    clinical_summary: String,
    patient: StoredPatient,
    medical: StoredMedical,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredPatient {
    id: Uuid,
    mrn: String,
    full_name: String,
    date_of_birth: String,
    sex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<StoredAddress>,
    #[serde(default)]
    identifiers: Vec<StoredIdentifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    insurance: Option<StoredInsurance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emergency_contact: Option<StoredEmergencyContact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    location: Option<StoredLocation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<Uuid>,
    created_at: String,
    updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredAddress {
    lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredIdentifier {
    system: String,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredInsurance {
    provider: String,
    policy_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredEmergencyContact {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relationship: Option<String>,
    phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredLocation {
    room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredMedical {
    patient_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blood_type: Option<String>,
    #[serde(default)]
    allergies: Vec<StoredAllergy>,
    #[serde(default)]
    conditions: Vec<StoredCondition>,
    #[serde(default)]
    medications: Vec<StoredMedication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredAllergy {
    substance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    severity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredCondition {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredMedication {
    name: String,
    dose: String,
    frequency: String,
}

fn owned(text: &Text) -> String {
    text.as_str().to_owned()
}

fn owned_opt(text: Option<&Text>) -> Option<String> {
    text.map(owned)
}

/// An instant as RFC 3339 in UTC, keeping every fractional digit.
fn instant(at: Timestamp) -> String {
    at.to_string()
}

fn snapshot_corrupt(error: impl std::fmt::Display) -> RepositoryError {
    corrupt("referrals", format!("snapshot: {error}"))
}

fn read_instant(raw: &str) -> Result<Timestamp, RepositoryError> {
    raw.parse().map_err(snapshot_corrupt)
}

fn read_date(raw: &str) -> Result<Date, RepositoryError> {
    parse_date(raw).map_err(snapshot_corrupt)
}

/// Stored text, one line or several: the domain checked its rules on the way in.
fn read_text(raw: &str) -> Result<Text, RepositoryError> {
    Text::multiline(raw, STORED).map_err(snapshot_corrupt)
}

fn read_text_opt(raw: Option<&str>) -> Result<Option<Text>, RepositoryError> {
    raw.map(read_text).transpose()
}

impl StoredSnapshot {
    pub(super) fn of(snapshot: &ReferralSnapshot) -> Self {
        Self {
            clinical_summary: owned(&snapshot.clinical_summary),
            patient: StoredPatient::of(&snapshot.patient),
            medical: StoredMedical::of(&snapshot.medical),
        }
    }

    pub(super) fn into_snapshot(self) -> Result<ReferralSnapshot, RepositoryError> {
        Ok(ReferralSnapshot {
            clinical_summary: read_text(&self.clinical_summary)?,
            patient: self.patient.into_patient()?,
            medical: self.medical.into_record()?,
        })
    }
}

impl StoredPatient {
    fn of(patient: &Patient) -> Self {
        let details = &patient.details;
        let contact = &details.contact;
        Self {
            id: *patient.id.as_uuid(),
            mrn: patient.mrn.as_str().to_owned(),
            full_name: details.full_name.as_str().to_owned(),
            date_of_birth: format_date(details.date_of_birth),
            sex: details.sex.as_str().to_owned(),
            phone: contact.phone.as_ref().map(|p| p.as_str().to_owned()),
            email: contact.email.as_ref().map(|e| e.as_str().to_owned()),
            address: contact.address.as_ref().map(|a| StoredAddress {
                lines: a.lines.iter().map(owned).collect(),
                city: owned_opt(a.city.as_ref()),
                postal_code: owned_opt(a.postal_code.as_ref()),
                country: owned_opt(a.country.as_ref()),
            }),
            identifiers: details
                .identifiers
                .iter()
                .map(|i| StoredIdentifier {
                    system: i.system.as_str().to_owned(),
                    value: owned(&i.value),
                })
                .collect(),
            insurance: details.insurance.as_ref().map(|i| StoredInsurance {
                provider: owned(&i.provider),
                policy_number: owned(&i.policy_number),
                group: owned_opt(i.group.as_ref()),
                valid_until: i.valid_until.map(format_date),
            }),
            emergency_contact: details
                .emergency_contact
                .as_ref()
                .map(|e| StoredEmergencyContact {
                    name: owned(&e.name),
                    relationship: owned_opt(e.relationship.as_ref()),
                    phone: e.phone.as_str().to_owned(),
                }),
            location: details.location.as_ref().map(|l| StoredLocation {
                room: owned(&l.room),
                bed: owned_opt(l.bed.as_ref()),
            }),
            user_id: details.user_id.map(|id| *id.as_uuid()),
            created_at: instant(patient.created_at),
            updated_at: instant(patient.updated_at),
        }
    }

    fn into_patient(self) -> Result<Patient, RepositoryError> {
        let address = self
            .address
            .map(|a| {
                Ok::<_, RepositoryError>(Address {
                    lines: a
                        .lines
                        .iter()
                        .map(|line| read_text(line))
                        .collect::<Result<_, _>>()?,
                    city: read_text_opt(a.city.as_deref())?,
                    postal_code: read_text_opt(a.postal_code.as_deref())?,
                    country: read_text_opt(a.country.as_deref())?,
                })
            })
            .transpose()?;
        let identifiers = self
            .identifiers
            .iter()
            .map(|i| {
                Ok(Identifier {
                    system: IdentifierSystem::parse(&i.system).map_err(snapshot_corrupt)?,
                    value: read_text(&i.value)?,
                })
            })
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        let insurance = self
            .insurance
            .map(|i| {
                Ok::<_, RepositoryError>(Insurance {
                    provider: read_text(&i.provider)?,
                    policy_number: read_text(&i.policy_number)?,
                    group: read_text_opt(i.group.as_deref())?,
                    valid_until: i.valid_until.as_deref().map(read_date).transpose()?,
                })
            })
            .transpose()?;
        let emergency_contact = self
            .emergency_contact
            .map(|e| {
                Ok::<_, RepositoryError>(EmergencyContact {
                    name: read_text(&e.name)?,
                    relationship: read_text_opt(e.relationship.as_deref())?,
                    phone: Phone::parse(&e.phone).map_err(snapshot_corrupt)?,
                })
            })
            .transpose()?;
        let location = self
            .location
            .map(|l| {
                Ok::<_, RepositoryError>(Location {
                    room: read_text(&l.room)?,
                    bed: read_text_opt(l.bed.as_deref())?,
                })
            })
            .transpose()?;
        Ok(Patient {
            id: PatientId::from_uuid(self.id),
            mrn: Mrn::parse(&self.mrn).map_err(snapshot_corrupt)?,
            details: PatientDetails {
                full_name: FullName::parse(&self.full_name).map_err(snapshot_corrupt)?,
                date_of_birth: read_date(&self.date_of_birth)?,
                sex: self.sex.parse().map_err(snapshot_corrupt)?,
                contact: Contact {
                    phone: self
                        .phone
                        .as_deref()
                        .map(Phone::parse)
                        .transpose()
                        .map_err(snapshot_corrupt)?,
                    email: self
                        .email
                        .as_deref()
                        .map(Email::parse)
                        .transpose()
                        .map_err(snapshot_corrupt)?,
                    address,
                },
                identifiers,
                insurance,
                emergency_contact,
                location,
                user_id: self.user_id.map(UserId::from_uuid),
            },
            created_at: read_instant(&self.created_at)?,
            updated_at: read_instant(&self.updated_at)?,
        })
    }
}

impl StoredMedical {
    fn of(record: &MedicalRecord) -> Self {
        let info = &record.info;
        Self {
            patient_id: *record.patient_id.as_uuid(),
            blood_type: info.blood_type.map(|b| b.as_str().to_owned()),
            allergies: info
                .allergies
                .iter()
                .map(|a| StoredAllergy {
                    substance: owned(&a.substance),
                    reaction: owned_opt(a.reaction.as_ref()),
                    severity: a.severity.map(|s| s.as_str().to_owned()),
                })
                .collect(),
            conditions: info
                .conditions
                .iter()
                .map(|c| StoredCondition {
                    name: owned(&c.name),
                    code: owned_opt(c.code.as_ref()),
                    since: c.since.map(format_date),
                })
                .collect(),
            medications: info
                .medications
                .iter()
                .map(|m| StoredMedication {
                    name: owned(&m.name),
                    dose: owned(&m.dose),
                    frequency: owned(&m.frequency),
                })
                .collect(),
            updated_at: record.updated_at.map(instant),
            updated_by: record.updated_by.map(|id| *id.as_uuid()),
        }
    }

    fn into_record(self) -> Result<MedicalRecord, RepositoryError> {
        let allergies = self
            .allergies
            .iter()
            .map(|a| {
                Ok(Allergy {
                    substance: read_text(&a.substance)?,
                    reaction: read_text_opt(a.reaction.as_deref())?,
                    severity: a
                        .severity
                        .as_deref()
                        .map(str::parse)
                        .transpose()
                        .map_err(snapshot_corrupt)?,
                })
            })
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        let conditions = self
            .conditions
            .iter()
            .map(|c| {
                Ok(Condition {
                    name: read_text(&c.name)?,
                    code: read_text_opt(c.code.as_deref())?,
                    since: c.since.as_deref().map(read_date).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        let medications = self
            .medications
            .iter()
            .map(|m| {
                Ok(Medication {
                    name: read_text(&m.name)?,
                    dose: read_text(&m.dose)?,
                    frequency: read_text(&m.frequency)?,
                })
            })
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        Ok(MedicalRecord {
            patient_id: PatientId::from_uuid(self.patient_id),
            info: MedicalInfo {
                blood_type: self
                    .blood_type
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(snapshot_corrupt)?,
                allergies,
                conditions,
                medications,
            },
            updated_at: self.updated_at.as_deref().map(read_instant).transpose()?,
            updated_by: self.updated_by.map(UserId::from_uuid),
        })
    }
}

#[cfg(test)]
mod tests {

    use carehub_domain::patients::Sex;
    use carehub_domain::patients::{BloodType, Severity};

    use super::*;

    fn text(raw: &str) -> Text {
        Text::multiline(raw, 1_000).unwrap()
    }

    fn full_snapshot() -> ReferralSnapshot {
        let patient_id = PatientId::generate();
        ReferralSnapshot {
            clinical_summary: text("Palpitations for two weeks.\n\tECG attached."),
            patient: Patient {
                id: patient_id,
                mrn: Mrn::from_number(48_217_730),
                details: PatientDetails {
                    full_name: FullName::parse("Ada Lovelace").unwrap(),
                    date_of_birth: jiff::civil::date(1985, 12, 10),
                    sex: Sex::Female,
                    contact: Contact {
                        phone: Some(Phone::parse("+41 22 555 01 01").unwrap()),
                        email: Some(Email::parse("ada@example.org").unwrap()),
                        address: Some(Address {
                            lines: vec![text("12 Analytical Row"), text("Flat 3")],
                            city: Some(text("Geneva")),
                            postal_code: None,
                            country: Some(text("CH")),
                        }),
                    },
                    identifiers: vec![Identifier {
                        system: IdentifierSystem::parse("national_id").unwrap(),
                        value: text("756.1234.5678.97"),
                    }],
                    insurance: Some(Insurance {
                        provider: text("Helsana"),
                        policy_number: text("P-1"),
                        group: None,
                        valid_until: Some(jiff::civil::date(2027, 1, 31)),
                    }),
                    emergency_contact: Some(EmergencyContact {
                        name: text("Charles Babbage"),
                        relationship: None,
                        phone: Phone::parse("555 0101").unwrap(),
                    }),
                    location: Some(Location {
                        room: text("12"),
                        bed: Some(text("B")),
                    }),
                    user_id: Some(UserId::generate()),
                },
                created_at: "2026-11-20T08:15:30.123456+02:00"
                    .parse::<Timestamp>()
                    .expect("an instant"),
                updated_at: "2026-11-21T23:59:59.000001Z"
                    .parse::<Timestamp>()
                    .expect("an instant"),
            },
            medical: MedicalRecord {
                patient_id,
                info: MedicalInfo {
                    blood_type: Some(BloodType::AbNegative),
                    allergies: vec![Allergy {
                        substance: text("penicillin"),
                        reaction: Some(text("hives")),
                        severity: Some(Severity::LifeThreatening),
                    }],
                    conditions: vec![Condition {
                        name: text("asthma"),
                        code: Some(text("J45")),
                        since: Some(jiff::civil::date(2001, 2, 3)),
                    }],
                    medications: vec![Medication {
                        name: text("salbutamol"),
                        dose: text("100 µg"),
                        frequency: text("as needed"),
                    }],
                },
                updated_at: Some(
                    "2026-11-22T10:00:00.5Z"
                        .parse::<Timestamp>()
                        .expect("an instant"),
                ),
                updated_by: Some(UserId::generate()),
            },
        }
    }

    fn through_json(snapshot: &ReferralSnapshot) -> ReferralSnapshot {
        let json = serde_json::to_string(&StoredSnapshot::of(snapshot)).unwrap();
        serde_json::from_str::<StoredSnapshot>(&json)
            .unwrap()
            .into_snapshot()
            .unwrap()
    }

    #[test]
    fn a_snapshot_with_every_field_reads_back_equal() {
        let snapshot = full_snapshot();
        let back = through_json(&snapshot);
        assert_eq!(back, snapshot);
        assert_eq!(
            back.patient.created_at.as_nanosecond(),
            snapshot.patient.created_at.as_nanosecond()
        );
    }

    #[test]
    fn a_snapshot_of_a_patient_without_optional_parts_or_medical_information_reads_back_equal() {
        let mut snapshot = full_snapshot();
        snapshot.patient.details.contact = Contact::default();
        snapshot.patient.details.identifiers = Vec::new();
        snapshot.patient.details.insurance = None;
        snapshot.patient.details.emergency_contact = None;
        snapshot.patient.details.location = None;
        snapshot.patient.details.user_id = None;
        snapshot.medical = MedicalRecord {
            patient_id: snapshot.patient.id,
            info: MedicalInfo::default(),
            updated_at: None,
            updated_by: None,
        };
        assert_eq!(through_json(&snapshot), snapshot);
    }

    #[test]
    fn a_snapshot_that_breaks_the_rules_is_reported_corrupt() {
        let mut stored = StoredSnapshot::of(&full_snapshot());
        stored.patient.mrn = "CH-0000-0000-1".into();
        let error = stored.into_snapshot().unwrap_err();
        assert!(
            error.to_string().contains("corrupt referrals row"),
            "{error}"
        );
    }
}
