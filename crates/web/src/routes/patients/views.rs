//! The shapes of patient records as the API shows them: patients, medical information, notes,
//! care teams, emergency accesses and the audit trail. Dates are `YYYY-MM-DD`, instants
//! RFC 3339.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openapi::{enums, rules};
use carehub_domain::identity::{FullName, UserId};
use carehub_domain::kernel::{Text, ValidationErrors, format_date};
use carehub_domain::patients::{
    BloodType, CareTeamMember, ClinicalNote, EmergencyAccess, EmergencyReason, MedicalRecord,
    NoteKind, Patient, PatientSummary, Severity, Sex,
};

fn text(value: Option<&Text>) -> Option<String> {
    value.map(|t| t.as_str().to_owned())
}

pub(crate) fn name(value: Option<&FullName>) -> Option<String> {
    value.map(|n| n.as_str().to_owned())
}

/// A patient's full profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientView {
    pub id: Uuid,
    /// The medical record number.
    #[schema(example = "CH-4821-7730-5")]
    pub mrn: String,
    #[schema(example = "Ada Lovelace")]
    pub full_name: String,
    /// `YYYY-MM-DD`.
    #[schema(example = "1985-12-10")]
    pub date_of_birth: String,
    #[schema(value_type = enums::Sex)]
    pub sex: Sex,
    pub contact: ContactView,
    pub identifiers: Vec<IdentifierView>,
    pub insurance: Option<InsuranceView>,
    pub emergency_contact: Option<EmergencyContactView>,
    /// Room and bed, while admitted.
    pub location: Option<LocationView>,
    /// The patient's own account, if linked.
    pub user_id: Option<Uuid>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How to reach a patient.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    #[schema(example = "+44 20 7946 0958")]
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<AddressView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddressView {
    pub lines: Vec<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

/// An identifier another system gave the patient.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifierView {
    #[schema(example = "national_id")]
    pub system: String,
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InsuranceView {
    pub provider: String,
    pub policy_number: String,
    pub group: Option<String>,
    /// `YYYY-MM-DD`.
    pub valid_until: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmergencyContactView {
    pub name: String,
    pub relationship: Option<String>,
    pub phone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LocationView {
    pub room: String,
    pub bed: Option<String>,
}

impl From<Patient> for PatientView {
    fn from(patient: Patient) -> Self {
        let details = patient.details;
        let contact = details.contact;
        Self {
            id: *patient.id.as_uuid(),
            mrn: patient.mrn.as_str().to_owned(),
            full_name: details.full_name.as_str().to_owned(),
            date_of_birth: format_date(details.date_of_birth),
            sex: details.sex,
            contact: ContactView {
                phone: contact.phone.map(|p| p.as_str().to_owned()),
                email: contact.email.map(|e| e.as_str().to_owned()),
                address: contact.address.map(|a| AddressView {
                    lines: a.lines.iter().map(|l| l.as_str().to_owned()).collect(),
                    city: text(a.city.as_ref()),
                    postal_code: text(a.postal_code.as_ref()),
                    country: text(a.country.as_ref()),
                }),
            },
            identifiers: details
                .identifiers
                .iter()
                .map(|i| IdentifierView {
                    system: i.system.as_str().to_owned(),
                    value: i.value.as_str().to_owned(),
                })
                .collect(),
            insurance: details.insurance.map(|i| InsuranceView {
                provider: i.provider.as_str().to_owned(),
                policy_number: i.policy_number.as_str().to_owned(),
                group: text(i.group.as_ref()),
                valid_until: i.valid_until.map(format_date),
            }),
            emergency_contact: details.emergency_contact.map(|c| EmergencyContactView {
                name: c.name.as_str().to_owned(),
                relationship: text(c.relationship.as_ref()),
                phone: c.phone.as_str().to_owned(),
            }),
            location: details.location.map(|l| LocationView {
                room: l.room.as_str().to_owned(),
                bed: text(l.bed.as_ref()),
            }),
            user_id: details.user_id.map(|id| *id.as_uuid()),
            created_at: patient.created_at,
            updated_at: patient.updated_at,
        }
    }
}

/// A patient in a list: enough to tell patients apart.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientSummaryView {
    pub id: Uuid,
    #[schema(example = "CH-4821-7730-5")]
    pub mrn: String,
    pub full_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    #[schema(value_type = enums::Sex)]
    pub sex: Sex,
}

impl From<PatientSummary> for PatientSummaryView {
    fn from(summary: PatientSummary) -> Self {
        Self {
            id: *summary.id.as_uuid(),
            mrn: summary.mrn.as_str().to_owned(),
            full_name: summary.full_name.as_str().to_owned(),
            date_of_birth: format_date(summary.date_of_birth),
            sex: summary.sex,
        }
    }
}

/// A patient's medical information.
#[derive(Debug, Serialize, ToSchema)]
pub struct MedicalView {
    pub patient_id: Uuid,
    #[schema(value_type = Option<enums::BloodType>)]
    pub blood_type: Option<BloodType>,
    pub allergies: Vec<AllergyView>,
    pub conditions: Vec<ConditionView>,
    pub medications: Vec<MedicationView>,
    /// `null` while nothing was ever recorded.
    pub updated_at: Option<Timestamp>,
    pub updated_by: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllergyView {
    pub substance: String,
    pub reaction: Option<String>,
    #[schema(value_type = Option<enums::Severity>)]
    pub severity: Option<Severity>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionView {
    pub name: String,
    pub code: Option<String>,
    /// `YYYY-MM-DD`.
    pub since: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MedicationView {
    pub name: String,
    pub dose: String,
    pub frequency: String,
}

impl From<MedicalRecord> for MedicalView {
    fn from(record: MedicalRecord) -> Self {
        let info = record.info;
        Self {
            patient_id: *record.patient_id.as_uuid(),
            blood_type: info.blood_type,
            allergies: info
                .allergies
                .into_iter()
                .map(|a| AllergyView {
                    substance: a.substance.as_str().to_owned(),
                    reaction: text(a.reaction.as_ref()),
                    severity: a.severity,
                })
                .collect(),
            conditions: info
                .conditions
                .into_iter()
                .map(|c| ConditionView {
                    name: c.name.as_str().to_owned(),
                    code: text(c.code.as_ref()),
                    since: c.since.map(format_date),
                })
                .collect(),
            medications: info
                .medications
                .into_iter()
                .map(|m| MedicationView {
                    name: m.name.as_str().to_owned(),
                    dose: m.dose.as_str().to_owned(),
                    frequency: m.frequency.as_str().to_owned(),
                })
                .collect(),
            updated_at: record.updated_at,
            updated_by: record.updated_by.map(|id| *id.as_uuid()),
        }
    }
}

/// A user named in a record: `full_name` is `null` only if the account no longer exists.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonRef {
    pub id: Uuid,
    pub full_name: Option<String>,
}

impl PersonRef {
    fn new(id: UserId, full_name: Option<&FullName>) -> Self {
        Self {
            id: *id.as_uuid(),
            full_name: name(full_name),
        }
    }
}

/// A clinical note. Notes never change; a correction is a new note that `amends` one.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteView {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub author: PersonRef,
    #[schema(value_type = Option<enums::NoteKind>)]
    pub kind: Option<NoteKind>,
    pub body: String,
    /// The earlier note this one corrects.
    pub amends: Option<Uuid>,
    /// The appointment this note records the visit of; absent for other notes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub appointment_id: Option<Uuid>,
    pub created_at: Timestamp,
}

impl From<ClinicalNote> for NoteView {
    fn from(note: ClinicalNote) -> Self {
        Self {
            id: *note.id.as_uuid(),
            patient_id: *note.patient_id.as_uuid(),
            author: PersonRef::new(note.author_id, note.author_name.as_ref()),
            kind: note.kind,
            body: note.body.as_str().to_owned(),
            amends: note.amends.map(|id| *id.as_uuid()),
            appointment_id: note.appointment_id.map(|id| *id.as_uuid()),
            created_at: note.created_at,
        }
    }
}

/// One doctor's time on a patient's care team.
#[derive(Debug, Serialize, ToSchema)]
pub struct CareTeamMemberView {
    /// The membership's id.
    pub id: Uuid,
    pub doctor: PersonRef,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub added_by: Uuid,
    pub ended_by: Option<Uuid>,
    /// Whether the membership holds now.
    pub current: bool,
    /// The referral the doctor joined by accepting; `null` for a doctor added directly.
    pub referral_id: Option<Uuid>,
    /// The appointment that put the doctor on the team (until 30 days after it ended); absent
    /// for other memberships.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub appointment_id: Option<Uuid>,
}

impl CareTeamMemberView {
    /// The membership as it stands at `now`.
    pub fn at(member: &CareTeamMember, now: Timestamp) -> Self {
        Self {
            current: member.is_current(now),
            id: *member.id.as_uuid(),
            doctor: PersonRef::new(member.doctor_id, member.doctor_name.as_ref()),
            started_at: member.started_at,
            ended_at: member.ended_at,
            added_by: *member.added_by.as_uuid(),
            ended_by: member.ended_by.map(|id| *id.as_uuid()),
            referral_id: member.referral_id.map(|id| *id.as_uuid()),
            appointment_id: member.appointment_id.map(|id| *id.as_uuid()),
        }
    }
}

/// A patient's care team, current and past members, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CareTeamView {
    pub items: Vec<CareTeamMemberView>,
}

/// A time-limited read access a doctor took to a patient outside their care team.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmergencyAccessView {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub doctor: PersonRef,
    pub reason: String,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    /// Whether it has not expired yet.
    pub active: bool,
}

impl EmergencyAccessView {
    /// The access as it stands at `now`.
    pub fn at(access: &EmergencyAccess, now: Timestamp) -> Self {
        Self {
            active: access.is_active(now),
            id: *access.id.as_uuid(),
            patient_id: *access.patient_id.as_uuid(),
            doctor: PersonRef::new(access.doctor_id, access.doctor_name.as_ref()),
            reason: access.reason.as_str().to_owned(),
            granted_at: access.granted_at,
            expires_at: access.expires_at,
        }
    }
}

/// A doctor to add to a care team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    /// An active doctor's account id.
    #[schema(value_type = Uuid, required = true)]
    pub doctor_id: Option<Uuid>,
}

/// Why a doctor breaks the glass.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyAccessRequest {
    /// 10 to 1,000 characters; kept in the record of the access.
    #[schema(
        schema_with = rules::emergency_reason,
        required = true,
        example = "Unconscious on arrival in A&E; checking allergies"
    )]
    pub reason: Option<String>,
}

impl TryFrom<EmergencyAccessRequest> for EmergencyReason {
    type Error = ValidationErrors;

    fn try_from(request: EmergencyAccessRequest) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let reason = errors
            .require("reason", request.reason)
            .and_then(|raw| errors.check("reason", EmergencyReason::parse(&raw)));
        reason.ok_or(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use carehub_domain::patients::{Mrn, PatientDetails, PatientId};

    use crate::routes::patients::patient_input::PatientInput;

    #[test]
    fn a_patient_shows_dates_as_days_and_absent_parts_as_null() {
        let input: PatientInput = serde_json::from_value(serde_json::json!({
            "full_name": "Ada Lovelace",
            "date_of_birth": "1985-12-10",
            "sex": "female",
            "contact": {"phone": "+44 20 7946 0958"},
            "insurance": {"provider": "NHS", "policy_number": "123", "valid_until": "2027-12-31"},
        }))
        .expect("an input");
        let details: PatientDetails = input.parse(jiff::civil::date(2026, 11, 22)).expect("valid");
        let at = ts("2026-11-22T10:00:00Z");
        let view = PatientView::from(Patient {
            id: PatientId::generate(),
            mrn: Mrn::from_number(48_217_730),
            details,
            created_at: at,
            updated_at: at,
        });
        let json = serde_json::to_value(&view).expect("serialisable");
        assert_eq!(json["date_of_birth"], "1985-12-10");
        assert_eq!(json["sex"], "female");
        assert_eq!(json["contact"]["email"], serde_json::Value::Null);
        assert_eq!(json["contact"]["address"], serde_json::Value::Null);
        assert_eq!(json["insurance"]["valid_until"], "2027-12-31");
        assert_eq!(json["insurance"]["group"], serde_json::Value::Null);
        assert_eq!(json["location"], serde_json::Value::Null);
        assert_eq!(json["identifiers"], serde_json::json!([]));
        assert_eq!(json["created_at"], "2026-11-22T10:00:00Z");
    }

    #[test]
    fn an_emergency_reason_is_required_and_has_ten_to_a_thousand_characters() {
        let long = "x".repeat(1_001);
        for reason in [
            None,
            Some(""),
            Some("123456789"),
            Some("  12345678  "),
            Some(long.as_str()),
        ] {
            let errors = EmergencyReason::try_from(EmergencyAccessRequest {
                reason: reason.map(str::to_owned),
            })
            .expect_err("refused");
            let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["reason"], "{reason:?}");
        }
        let longest = "y".repeat(1_000);
        for reason in ["1234567890", longest.as_str()] {
            let parsed = EmergencyReason::try_from(EmergencyAccessRequest {
                reason: Some(reason.to_owned()),
            })
            .expect("valid");
            assert_eq!(parsed.as_str(), reason);
        }
    }
}
