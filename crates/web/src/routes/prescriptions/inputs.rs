//! The bodies that write and end prescriptions, and their validation into the domain's
//! commands.

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::kernel::{PatientId, PrescriptionId, Text, ValidationErrors};
use carehub_domain::prescriptions::{
    MAX_DOSE_CHARS, MAX_DURATION_DAYS, MAX_INSTRUCTIONS_CHARS, MAX_MEDICATION_CHARS, MAX_QUANTITY,
    MAX_REASON_CHARS, MAX_REFILLS, NewPrescription, Route,
};

use crate::openapi::{enums, rules};

/// What a doctor prescribes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrescriptionInput {
    /// 1 to 200 characters: the substance, and its strength if the doctor likes.
    #[schema(schema_with = rules::line_200, required = true, example = "Amoxicillin")]
    pub medication: Option<String>,
    /// 1 to 100 characters.
    #[schema(schema_with = rules::line_100, required = true, example = "500 mg")]
    pub dose: Option<String>,
    #[schema(value_type = enums::PrescriptionRoute, required = true)]
    pub route: Option<String>,
    /// 1 to 100 characters.
    #[schema(schema_with = rules::line_100, required = true, example = "three times a day")]
    pub frequency: Option<String>,
    /// 1 to 365; absent or `null` for an open-ended prescription, which never expires.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 365, example = 7)]
    pub duration_days: Option<serde_json::Number>,
    /// 1 to 10,000 units dispensed.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000, example = 21)]
    pub quantity: Option<serde_json::Number>,
    /// 0 to 12.
    #[schema(value_type = i64, minimum = 0, maximum = 12, required = true, example = 0)]
    pub refills: Option<serde_json::Number>,
    /// 1 to 2,000 characters.
    #[schema(schema_with = rules::text_2000, required = true, example = "Take after meals with water.")]
    pub instructions: Option<String>,
    /// 1 to 500 characters: why it is prescribed although it matches a recorded allergy.
    #[schema(schema_with = rules::optional_text_500)]
    pub override_reason: Option<String>,
    /// An active prescription of the same patient that this one replaces; it is stopped.
    pub replaces: Option<Uuid>,
}

/// A whole number in `min..=max` (written `7` or, as JSON Schema allows, `7.0`), or the
/// field's error.
fn bounded<T: TryFrom<i64>>(
    errors: &mut ValidationErrors,
    field: &str,
    raw: &serde_json::Number,
    min: i64,
    max: i64,
) -> Option<T> {
    let whole = raw.as_i64().or_else(|| {
        raw.as_f64()
            .filter(|f| f.fract() == 0.0 && (min as f64..=max as f64).contains(f))
            // In range, so exact.
            .map(|f| f as i64)
    });
    let value = whole
        .filter(|w| (min..=max).contains(w))
        .and_then(|w| T::try_from(w).ok());
    if value.is_none() {
        errors.add(field, format!("must be a whole number from {min} to {max}"));
    }
    value
}

impl PrescriptionInput {
    /// The prescription for `patient_id`, validated; every invalid field listed.
    ///
    /// # Errors
    /// Every invalid or missing field.
    pub fn validate(self, patient_id: PatientId) -> Result<NewPrescription, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let line = |errors: &mut ValidationErrors, field: &str, raw: Option<String>, max| {
            errors
                .require(field, raw)
                .and_then(|raw| errors.check(field, Text::line(&raw, max)))
        };
        let medication = line(
            &mut errors,
            "medication",
            self.medication,
            MAX_MEDICATION_CHARS,
        );
        let dose = line(&mut errors, "dose", self.dose, MAX_DOSE_CHARS);
        let frequency = line(&mut errors, "frequency", self.frequency, MAX_DOSE_CHARS);
        let route = errors.require("route", self.route).and_then(|raw| {
            errors.check(
                "route",
                raw.parse::<Route>().map_err(|_| {
                    let all: Vec<&str> = Route::ALL.iter().map(|r| r.as_str()).collect();
                    format!("must be one of {}", all.join(", "))
                }),
            )
        });
        let duration_days = self.duration_days.as_ref().map(|raw| {
            bounded::<u16>(
                &mut errors,
                "duration_days",
                raw,
                1,
                i64::from(MAX_DURATION_DAYS),
            )
        });
        let quantity = self
            .quantity
            .map(|raw| bounded::<u32>(&mut errors, "quantity", &raw, 1, i64::from(MAX_QUANTITY)));
        let refills = errors
            .require("refills", self.refills)
            .and_then(|raw| bounded::<u8>(&mut errors, "refills", &raw, 0, i64::from(MAX_REFILLS)));
        let instructions = errors
            .require("instructions", self.instructions)
            .and_then(|raw| {
                errors.check(
                    "instructions",
                    Text::multiline(&raw, MAX_INSTRUCTIONS_CHARS),
                )
            });
        let override_reason = self
            .override_reason
            .map(|raw| errors.check("override_reason", Text::multiline(&raw, MAX_REASON_CHARS)));
        match (medication, dose, route, frequency, refills, instructions) {
            (
                Some(medication),
                Some(dose),
                Some(route),
                Some(frequency),
                Some(refills),
                Some(instructions),
            ) if errors.is_empty() => Ok(NewPrescription {
                patient_id,
                medication,
                dose,
                route,
                frequency,
                duration_days: duration_days.flatten(),
                quantity: quantity.flatten(),
                refills,
                instructions,
                override_reason: override_reason.flatten(),
                replaces: self.replaces.map(PrescriptionId::from_uuid),
            }),
            _ => Err(errors),
        }
    }
}

/// Why a prescription is stopped.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopInput {
    /// 1 to 500 characters.
    #[schema(schema_with = rules::text_500, required = true, example = "Stomach pain")]
    pub reason: Option<String>,
}

impl StopInput {
    /// The reason, validated.
    ///
    /// # Errors
    /// `reason` missing or invalid.
    pub fn reason(self) -> Result<Text, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let reason = errors
            .require("reason", self.reason)
            .and_then(|raw| errors.check("reason", Text::multiline(&raw, MAX_REASON_CHARS)));
        match reason {
            Some(reason) if errors.is_empty() => Ok(reason),
            _ => Err(errors),
        }
    }
}
