//! Medical information and clinical notes as a client writes them, and how each is parsed
//! whole into the domain's [`MedicalInfo`], [`NewNote`] or [`NewVisitNote`], every invalid field
//! reported at once.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::kernel::{Text, ValidationErrors, format_date};
use carehub_domain::patients::{
    Allergy, BloodType, Condition, MAX_ENTRIES, MAX_NOTE_CHARS, MedicalInfo, Medication, NewNote,
    NoteId, NoteKind, Severity, parse_condition_since,
};
use carehub_domain::scheduling::NewVisitNote;

use crate::openapi::{enums, rules};

/// Medical information as a client writes it; it replaces the stored information whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MedicalInput {
    /// `A+`, `A-`, `B+`, `B-`, `AB+`, `AB-`, `O+`, `O-`, or `null` when unknown.
    #[serde(default)]
    #[schema(value_type = Option<enums::BloodType>)]
    pub blood_type: Option<String>,
    /// At most 100.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub allergies: Vec<AllergyInput>,
    /// At most 100.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub conditions: Vec<ConditionInput>,
    /// At most 100.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub medications: Vec<MedicationInput>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllergyInput {
    /// One line of at most 200 characters.
    #[schema(example = "penicillin", schema_with = rules::line_200, required = true)]
    pub substance: Option<String>,
    /// One line of at most 500 characters.
    #[serde(default)]
    #[schema(schema_with = rules::optional_line_500)]
    pub reaction: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<enums::Severity>)]
    pub severity: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionInput {
    /// One line of at most 200 characters.
    #[schema(example = "type 2 diabetes", schema_with = rules::line_200, required = true)]
    pub name: Option<String>,
    /// One line of at most 32 characters.
    #[serde(default)]
    #[schema(example = "E11.9", schema_with = rules::optional_line_32)]
    pub code: Option<String>,
    /// `YYYY-MM-DD`, not in the future.
    #[serde(default)]
    #[schema(schema_with = rules::optional_date)]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MedicationInput {
    /// One line of at most 200 characters.
    #[schema(example = "metformin", schema_with = rules::line_200, required = true)]
    pub name: Option<String>,
    /// One line of at most 100 characters.
    #[schema(example = "500 mg", schema_with = rules::line_100, required = true)]
    pub dose: Option<String>,
    /// One line of at most 100 characters.
    #[schema(example = "twice daily", schema_with = rules::line_100, required = true)]
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
                            parse_condition_since(raw, today),
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
                    since: c.since.map(format_date),
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

/// A note as a client writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// 1 to 20,000 characters.
    #[schema(schema_with = rules::text_20000, required = true)]
    pub body: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<enums::NoteKind>)]
    pub kind: Option<String>,
    /// The id of an earlier note of this patient that this one corrects.
    #[serde(default)]
    pub amends: Option<Uuid>,
}

/// The body and kind of a note, each checked; `None` for a field in error.
fn note_parts(
    input: &NoteInput,
    errors: &mut ValidationErrors,
) -> Option<(Text, Option<NoteKind>)> {
    let body = match input.body.as_deref() {
        Some(raw) => errors.check("body", Text::multiline(raw, MAX_NOTE_CHARS)),
        None => {
            errors.add("body", "is required");
            None
        }
    };
    let kind = match input.kind.as_deref() {
        Some(raw) => errors
            .check(
                "kind",
                raw.parse::<NoteKind>().map_err(
                    |_| "must be one of check_up, annotation, progress, consultation, discharge",
                ),
            )
            .map(Some),
        None => Some(None),
    };
    body.zip(kind)
}

impl TryFrom<NoteInput> for NewNote {
    type Error = ValidationErrors;

    /// Every invalid field, listed at once. Whether `amends` names a note of this patient is
    /// for the domain to find out.
    fn try_from(input: NoteInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        match note_parts(&input, &mut errors) {
            Some((body, kind)) => Ok(NewNote {
                body,
                kind,
                amends: input.amends.map(NoteId::from_uuid),
            }),
            None => Err(errors),
        }
    }
}

impl TryFrom<NoteInput> for NewVisitNote {
    type Error = ValidationErrors;

    /// Every invalid field, listed at once, and `amends` among them when present: a visit note
    /// never amends another.
    fn try_from(input: NoteInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        let parts = note_parts(&input, &mut errors);
        if input.amends.is_some() {
            errors.add("amends", "a visit note cannot amend");
        }
        match parts {
            Some((body, kind)) if errors.is_empty() => Ok(NewVisitNote { body, kind }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = jiff::civil::date(2026, 11, 22);

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

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
        let errors = input.parse(TODAY).expect_err("invalid");
        assert_eq!(
            fields(&errors),
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
    fn an_unknown_blood_type_alone_makes_the_information_invalid() {
        let input = MedicalInput {
            blood_type: Some("C+".into()),
            ..MedicalInput::default()
        };
        let errors = input.parse(TODAY).expect_err("invalid");
        assert_eq!(fields(&errors), ["blood_type"]);
    }

    #[test]
    fn valid_medical_input_parses_and_round_trips_through_its_input() {
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
        let info = input.parse(TODAY).expect("valid");
        assert_eq!(info.blood_type, Some(BloodType::AbNegative));
        assert_eq!(info.allergies[0].severity, Some(Severity::Severe));
        assert_eq!(info.conditions.len(), 1);
        assert_eq!(info.medications.len(), 1);
        let again = MedicalInput::from(&info).parse(TODAY).expect("valid");
        assert_eq!(again, info);
    }

    #[test]
    fn lists_are_bounded() {
        let input = MedicalInput {
            medications: vec![MedicationInput::default(); MAX_ENTRIES + 1],
            ..MedicalInput::default()
        };
        let errors = input.parse(TODAY).expect_err("too many");
        assert_eq!(fields(&errors), ["medications"]);
    }

    #[test]
    fn notes_need_a_body_and_a_known_kind() {
        let errors = NewNote::try_from(NoteInput {
            body: None,
            kind: Some("gossip".into()),
            amends: None,
        })
        .expect_err("invalid");
        assert_eq!(fields(&errors), ["body", "kind"]);
        let errors = NewNote::try_from(NoteInput {
            body: Some("   ".into()),
            kind: Some("gossip".into()),
            amends: None,
        })
        .expect_err("invalid");
        assert_eq!(fields(&errors), ["body", "kind"]);
        let long = NoteInput {
            body: Some("x".repeat(MAX_NOTE_CHARS + 1)),
            ..NoteInput::default()
        };
        assert!(NewNote::try_from(long).is_err());
        let amended = Uuid::now_v7();
        let ok = NewNote::try_from(NoteInput {
            body: Some("BP 120/80.\nNo complaints.".into()),
            kind: Some("check_up".into()),
            amends: Some(amended),
        })
        .expect("valid");
        assert_eq!(ok.body.as_str(), "BP 120/80.\nNo complaints.");
        assert_eq!(ok.kind, Some(NoteKind::CheckUp));
        assert_eq!(ok.amends, Some(NoteId::from_uuid(amended)));
    }

    #[test]
    fn a_visit_note_cannot_amend_and_lists_every_violation() {
        for (input, expected) in [
            (
                NoteInput {
                    body: Some("Seen.".into()),
                    kind: None,
                    amends: Some(Uuid::now_v7()),
                },
                vec!["amends"],
            ),
            (
                NoteInput {
                    body: Some("   ".into()),
                    kind: Some("gossip".into()),
                    amends: Some(Uuid::now_v7()),
                },
                vec!["body", "kind", "amends"],
            ),
        ] {
            let errors = NewVisitNote::try_from(input).expect_err("invalid");
            assert_eq!(fields(&errors), expected);
        }
        let ok = NewVisitNote::try_from(NoteInput {
            body: Some("Seen.".into()),
            kind: Some("progress".into()),
            amends: None,
        })
        .expect("valid");
        assert_eq!(ok.body.as_str(), "Seen.");
        assert_eq!(ok.kind, Some(NoteKind::Progress));
    }
}
