//! A patient's medical information: blood type, allergies, conditions and current medications.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::audit::AuditEvent;
use crate::identity::UserId;
use crate::kernel::{RepositoryError, Text, ValidationErrors, parse_date, string_enum};
use crate::patients::PatientId;

/// The most entries each list may hold.
pub const MAX_ENTRIES: usize = 100;

string_enum!(
    /// ABO group and Rh factor.
    BloodType, "blood type" {
        APositive => "A+",
        ANegative => "A-",
        BPositive => "B+",
        BNegative => "B-",
        AbPositive => "AB+",
        AbNegative => "AB-",
        OPositive => "O+",
        ONegative => "O-",
    }
);

string_enum!(
    /// How bad a reaction is.
    Severity, "severity" {
        Mild => "mild",
        Moderate => "moderate",
        Severe => "severe",
        LifeThreatening => "life_threatening",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allergy {
    pub substance: Text,
    pub reaction: Option<Text>,
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub name: Text,
    /// A code such as ICD-10 `E11.9`.
    pub code: Option<Text>,
    pub since: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medication {
    pub name: Text,
    pub dose: Text,
    pub frequency: Text,
}

/// The medical information, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MedicalInfo {
    pub blood_type: Option<BloodType>,
    pub allergies: Vec<Allergy>,
    pub conditions: Vec<Condition>,
    pub medications: Vec<Medication>,
}

/// The medical information as stored: when and by whom it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedicalRecord {
    pub patient_id: PatientId,
    pub info: MedicalInfo,
    /// `None` while nothing was ever recorded.
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<UserId>,
}

// ---- Input -----------------------------------------------------------------------------------

/// Medical information as a client writes it; it replaces the stored information whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MedicalInput {
    /// `A+`, `A-`, `B+`, `B-`, `AB+`, `AB-`, `O+`, `O-`, or `null` when unknown.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BloodType>))]
    pub blood_type: Option<String>,
    /// At most 100.
    #[serde(default)]
    pub allergies: Vec<AllergyInput>,
    /// At most 100.
    #[serde(default)]
    pub conditions: Vec<ConditionInput>,
    /// At most 100.
    #[serde(default)]
    pub medications: Vec<MedicationInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AllergyInput {
    #[cfg_attr(feature = "openapi", schema(example = "penicillin"))]
    pub substance: Option<String>,
    #[serde(default)]
    pub reaction: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Severity>))]
    pub severity: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConditionInput {
    #[cfg_attr(feature = "openapi", schema(example = "type 2 diabetes"))]
    pub name: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "E11.9"))]
    pub code: Option<String>,
    /// `YYYY-MM-DD`, not in the future.
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MedicationInput {
    #[cfg_attr(feature = "openapi", schema(example = "metformin"))]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "500 mg"))]
    pub dose: Option<String>,
    #[cfg_attr(feature = "openapi", schema(example = "twice daily"))]
    pub frequency: Option<String>,
}

fn required_line(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<&str>,
    max: usize,
) -> Option<Text> {
    match raw {
        Some(raw) => errors.check(field, Text::line(raw, max)),
        None => {
            errors.add(field, "is required");
            None
        }
    }
}

fn optional_line(
    errors: &mut ValidationErrors,
    field: &str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<Text>, ()> {
    match raw {
        Some(raw) => errors
            .check(field, Text::line(raw, max))
            .map(Some)
            .ok_or(()),
        None => Ok(None),
    }
}

fn check_size(errors: &mut ValidationErrors, field: &str, len: usize) -> bool {
    if len > MAX_ENTRIES {
        errors.add(field, format!("must hold at most {MAX_ENTRIES} entries"));
        false
    } else {
        true
    }
}

impl MedicalInput {
    /// Validates every entry, reporting all violations at once with their paths.
    ///
    /// # Errors
    /// [`ValidationErrors`].
    pub fn parse(&self, today: Date) -> Result<MedicalInfo, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let blood_type = self.blood_type.as_deref().and_then(|raw| {
            errors.check(
                "blood_type",
                raw.trim()
                    .to_ascii_uppercase()
                    .parse::<BloodType>()
                    .map_err(|_| "must be one of A+, A-, B+, B-, AB+, AB-, O+, O-"),
            )
        });
        let mut info = MedicalInfo {
            blood_type,
            ..MedicalInfo::default()
        };
        if check_size(&mut errors, "allergies", self.allergies.len()) {
            for (i, a) in self.allergies.iter().enumerate() {
                let substance = required_line(
                    &mut errors,
                    &format!("allergies[{i}].substance"),
                    a.substance.as_deref(),
                    200,
                );
                let reaction = optional_line(
                    &mut errors,
                    &format!("allergies[{i}].reaction"),
                    a.reaction.as_deref(),
                    500,
                );
                let severity = match a.severity.as_deref() {
                    Some(raw) => errors
                        .check(
                            &format!("allergies[{i}].severity"),
                            raw.parse::<Severity>().map_err(
                                |_| "must be one of mild, moderate, severe, life_threatening",
                            ),
                        )
                        .map(Some)
                        .ok_or(()),
                    None => Ok(None),
                };
                if let (Some(substance), Ok(reaction), Ok(severity)) =
                    (substance, reaction, severity)
                {
                    info.allergies.push(Allergy {
                        substance,
                        reaction,
                        severity,
                    });
                }
            }
        }
        if check_size(&mut errors, "conditions", self.conditions.len()) {
            for (i, c) in self.conditions.iter().enumerate() {
                let name = required_line(
                    &mut errors,
                    &format!("conditions[{i}].name"),
                    c.name.as_deref(),
                    200,
                );
                let code = optional_line(
                    &mut errors,
                    &format!("conditions[{i}].code"),
                    c.code.as_deref(),
                    32,
                );
                let since = match c.since.as_deref() {
                    Some(raw) => errors
                        .check(
                            &format!("conditions[{i}].since"),
                            parse_date(raw).and_then(|d| {
                                if d > today {
                                    Err("must not be in the future")
                                } else {
                                    Ok(d)
                                }
                            }),
                        )
                        .map(Some)
                        .ok_or(()),
                    None => Ok(None),
                };
                if let (Some(name), Ok(code), Ok(since)) = (name, code, since) {
                    info.conditions.push(Condition { name, code, since });
                }
            }
        }
        if check_size(&mut errors, "medications", self.medications.len()) {
            for (i, m) in self.medications.iter().enumerate() {
                let name = required_line(
                    &mut errors,
                    &format!("medications[{i}].name"),
                    m.name.as_deref(),
                    200,
                );
                let dose = required_line(
                    &mut errors,
                    &format!("medications[{i}].dose"),
                    m.dose.as_deref(),
                    100,
                );
                let frequency = required_line(
                    &mut errors,
                    &format!("medications[{i}].frequency"),
                    m.frequency.as_deref(),
                    100,
                );
                if let (Some(name), Some(dose), Some(frequency)) = (name, dose, frequency) {
                    info.medications.push(Medication {
                        name,
                        dose,
                        frequency,
                    });
                }
            }
        }
        errors.into_result().map(|()| info)
    }
}

impl From<&MedicalInfo> for MedicalInput {
    /// The input that parses back to this information (with any `today` after its dates).
    fn from(info: &MedicalInfo) -> Self {
        let text = |t: &Text| t.as_str().to_owned();
        Self {
            blood_type: info.blood_type.map(|b| b.as_str().to_owned()),
            allergies: info
                .allergies
                .iter()
                .map(|a| AllergyInput {
                    substance: Some(text(&a.substance)),
                    reaction: a.reaction.as_ref().map(text),
                    severity: a.severity.map(|s| s.as_str().to_owned()),
                })
                .collect(),
            conditions: info
                .conditions
                .iter()
                .map(|c| ConditionInput {
                    name: Some(text(&c.name)),
                    code: c.code.as_ref().map(text),
                    since: c.since.map(crate::kernel::format_date),
                })
                .collect(),
            medications: info
                .medications
                .iter()
                .map(|m| MedicationInput {
                    name: Some(text(&m.name)),
                    dose: Some(text(&m.dose)),
                    frequency: Some(text(&m.frequency)),
                })
                .collect(),
        }
    }
}

/// Stores medical information. A write is stored with its audit event, in one transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MedicalRepository: Send + Sync {
    /// The patient's medical information; an empty record when none was ever written.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn get(&self, patient_id: PatientId) -> Result<MedicalRecord, RepositoryError>;

    /// Replaces the patient's medical information and returns it as stored.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn put(
        &self,
        patient_id: PatientId,
        info: &MedicalInfo,
        by: UserId,
        at: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<MedicalRecord, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn medical_input_reports_every_violation_with_its_path() {
        let input = MedicalInput {
            blood_type: Some("C+".into()),
            allergies: vec![AllergyInput {
                substance: None,
                reaction: Some("hives".into()),
                severity: Some("deadly".into()),
            }],
            conditions: vec![ConditionInput {
                name: Some("asthma".into()),
                code: None,
                since: Some("2030-01-01".into()),
            }],
            medications: vec![MedicationInput {
                name: Some("salbutamol".into()),
                dose: None,
                frequency: Some(String::new()),
            }],
        };
        let errors = input.parse(date!(2026 - 11 - 22)).expect_err("invalid");
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "blood_type",
                "allergies[0].substance",
                "allergies[0].severity",
                "conditions[0].since",
                "medications[0].dose",
                "medications[0].frequency",
            ]
        );
    }

    #[test]
    fn valid_medical_input_parses() {
        let input = MedicalInput {
            blood_type: Some("ab-".into()),
            allergies: vec![AllergyInput {
                substance: Some("penicillin".into()),
                reaction: None,
                severity: Some("severe".into()),
            }],
            conditions: vec![ConditionInput {
                name: Some("type 2 diabetes".into()),
                code: Some("E11.9".into()),
                since: Some("2019-04-01".into()),
            }],
            medications: vec![MedicationInput {
                name: Some("metformin".into()),
                dose: Some("500 mg".into()),
                frequency: Some("twice daily".into()),
            }],
        };
        let info = input.parse(date!(2026 - 11 - 22)).expect("valid");
        assert_eq!(info.blood_type, Some(BloodType::AbNegative));
        assert_eq!(info.allergies[0].severity, Some(Severity::Severe));
        assert_eq!(info.conditions.len(), 1);
        assert_eq!(info.medications.len(), 1);
    }

    #[test]
    fn lists_are_bounded() {
        let input = MedicalInput {
            medications: vec![MedicationInput::default(); MAX_ENTRIES + 1],
            ..MedicalInput::default()
        };
        let errors = input.parse(date!(2026 - 11 - 22)).expect_err("too many");
        assert_eq!(errors.errors().len(), 1);
        assert_eq!(errors.errors()[0].field, "medications");
    }
}
