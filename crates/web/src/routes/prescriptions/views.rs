//! Prescriptions as the API shows them.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::prescriptions::{
    AllergyMatch, MatchReason, Prescription, PrescriptionStatus, PrescriptionView as Viewed, Route,
};

use crate::openapi::enums;
use crate::routes::patients::views::{PatientSummaryView, PersonRef};

/// A recorded allergy the medication matches.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AllergyMatchView {
    /// The allergy's substance, as recorded.
    pub substance: String,
    /// `same_substance`: the medication is that substance; `drug_class`: both belong to
    /// `drug_class`.
    #[schema(value_type = String, example = "drug_class")]
    pub reason: &'static str,
    /// The drug class both belong to.
    #[schema(example = "penicillins")]
    pub drug_class: Option<String>,
}

impl From<AllergyMatch> for AllergyMatchView {
    fn from(m: AllergyMatch) -> Self {
        let (reason, drug_class) = match m.reason {
            MatchReason::SameSubstance => ("same_substance", None),
            MatchReason::DrugClass(class) => ("drug_class", Some(class)),
        };
        Self {
            substance: m.substance,
            reason,
            drug_class,
        }
    }
}

/// An allergy overridden when the prescription was written: why, and what it matched.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllergyOverrideView {
    pub reason: String,
    pub matches: Vec<AllergyMatchView>,
}

/// A prescription. It never changes once written, but for how it ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrescriptionView {
    pub id: Uuid,
    pub patient: PatientSummaryView,
    pub prescribed_by: PersonRef,
    pub medication: String,
    pub dose: String,
    #[schema(value_type = enums::PrescriptionRoute)]
    pub route: Route,
    pub frequency: String,
    pub duration_days: Option<u16>,
    pub quantity: Option<u32>,
    pub refills: u8,
    pub instructions: String,
    /// Present when it was written despite a recorded allergy.
    pub allergy_override: Option<AllergyOverrideView>,
    /// The prescription it replaced.
    pub replaces: Option<Uuid>,
    #[schema(value_type = enums::PrescriptionStatus)]
    pub status: PrescriptionStatus,
    /// Why it was stopped.
    pub stop_reason: Option<String>,
    /// The prescription that replaced it.
    pub replaced_by: Option<Uuid>,
    /// Who completed or stopped it; `null` when it expired.
    pub ended_by: Option<Uuid>,
    pub ended_at: Option<Timestamp>,
    /// When its last day is over; `null` when it is open-ended.
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl From<Viewed> for PrescriptionView {
    fn from(viewed: Viewed) -> Self {
        let Viewed {
            prescription,
            patient,
            prescribed_by_name,
        } = viewed;
        let expires_at = prescription.expires_at();
        let Prescription {
            id,
            prescribed_by,
            medication,
            dose,
            route,
            frequency,
            duration_days,
            quantity,
            refills,
            instructions,
            allergy_override,
            replaces,
            status,
            stop_reason,
            replaced_by,
            ended_by,
            ended_at,
            created_at,
            ..
        } = prescription;
        Self {
            id: *id.as_uuid(),
            patient: PatientSummaryView::from(patient),
            prescribed_by: PersonRef {
                id: *prescribed_by.as_uuid(),
                full_name: prescribed_by_name.map(|n| n.as_str().to_owned()),
            },
            medication: medication.as_str().to_owned(),
            dose: dose.as_str().to_owned(),
            route,
            frequency: frequency.as_str().to_owned(),
            duration_days,
            quantity,
            refills,
            instructions: instructions.as_str().to_owned(),
            allergy_override: allergy_override.map(|o| AllergyOverrideView {
                reason: o.reason.as_str().to_owned(),
                matches: o.matches.into_iter().map(AllergyMatchView::from).collect(),
            }),
            replaces: replaces.map(|r| *r.as_uuid()),
            status,
            stop_reason: stop_reason.map(|r| r.as_str().to_owned()),
            replaced_by: replaced_by.map(|r| *r.as_uuid()),
            ended_by: ended_by.map(|u| *u.as_uuid()),
            ended_at,
            expires_at,
            created_at,
        }
    }
}
