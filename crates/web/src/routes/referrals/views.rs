//! The shapes of referrals as the API shows them, the body that sends one and the bodies of
//! their status changes. Instants are RFC 3339.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::identity::{FullName, UserId};
use carehub_domain::kernel::{PatientId, Text, ValidationErrors};
use carehub_domain::referrals::{
    NewReferral, Referral, ReferralDetail, ReferralSnapshot, ReferralStatus, Urgency, parse_reason,
    parse_summary,
};

use crate::openapi::{enums, rules};
use crate::routes::patients::views::{MedicalView, PatientView, PersonRef};

fn person(id: UserId, full_name: Option<&FullName>) -> PersonRef {
    PersonRef {
        id: *id.as_uuid(),
        full_name: full_name.map(|n| n.as_str().to_owned()),
    }
}

fn text(value: Option<&Text>) -> Option<String> {
    value.map(|t| t.as_str().to_owned())
}

/// A patient referred by one doctor to another. Only these two doctors ever see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralView {
    pub id: Uuid,
    pub patient_id: Uuid,
    /// The patient's name as it was when the referral was sent.
    #[schema(example = "Ada Lovelace")]
    pub patient_name: String,
    /// The sending doctor.
    pub from_doctor: PersonRef,
    /// The receiving doctor.
    pub to_doctor: PersonRef,
    #[schema(example = "Suspected arrhythmia; please assess")]
    pub reason: String,
    #[schema(value_type = enums::Urgency)]
    pub urgency: Urgency,
    #[schema(value_type = enums::ReferralStatus)]
    pub status: ReferralStatus,
    /// Why the recipient declined; `null` unless `declined`.
    pub decline_reason: Option<String>,
    /// The recipient's outcome note; `null` unless `completed`.
    pub outcome: Option<String>,
    pub created_at: Timestamp,
    /// When the status last changed (the sending time while `sent`).
    pub updated_at: Timestamp,
    /// What the sender shared, as it was when sent. Present when one referral is read or sent
    /// (`null` for the recipient once it was declined or cancelled); absent from listings and
    /// from the answers to status changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ReferralSnapshotView>, nullable, required = false)]
    pub snapshot: Option<Option<ReferralSnapshotView>>,
}

/// What a referral shared, frozen when it was sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralSnapshotView {
    /// What the receiving doctor needs to know, in the sender's words.
    pub clinical_summary: String,
    /// The patient's profile as it was.
    pub patient: PatientView,
    /// The patient's medical information as it was.
    pub medical: MedicalView,
}

impl From<ReferralSnapshot> for ReferralSnapshotView {
    fn from(snapshot: ReferralSnapshot) -> Self {
        Self {
            clinical_summary: snapshot.clinical_summary.as_str().to_owned(),
            patient: PatientView::from(snapshot.patient),
            medical: MedicalView::from(snapshot.medical),
        }
    }
}

impl ReferralView {
    /// The referral without its snapshot (`snapshot` absent), as listed or after a change.
    pub fn summary(referral: Referral) -> Self {
        Self {
            id: *referral.id.as_uuid(),
            patient_id: *referral.patient_id.as_uuid(),
            patient_name: referral.patient_name,
            from_doctor: person(referral.from_doctor_id, referral.from_doctor_name.as_ref()),
            to_doctor: person(referral.to_doctor_id, referral.to_doctor_name.as_ref()),
            reason: referral.reason.as_str().to_owned(),
            urgency: referral.urgency,
            status: referral.status,
            decline_reason: text(referral.decline_reason.as_ref()),
            outcome: text(referral.outcome.as_ref()),
            created_at: referral.created_at,
            updated_at: referral.updated_at,
            snapshot: None,
        }
    }

    /// The referral with its snapshot, or `"snapshot": null` where it is withheld.
    pub fn detail(detail: ReferralDetail) -> Self {
        Self {
            snapshot: Some(detail.snapshot.map(ReferralSnapshotView::from)),
            ..Self::summary(detail.referral)
        }
    }
}

/// A referral as the sending doctor writes it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralInput {
    /// A patient of the sender's care team.
    #[schema(value_type = Uuid, required = true)]
    pub patient_id: Option<Uuid>,
    /// Another active doctor's account id.
    #[schema(value_type = Uuid, required = true)]
    pub to_doctor_id: Option<Uuid>,
    /// 1 to 500 characters.
    #[schema(schema_with = rules::text_500, required = true)]
    pub reason: Option<String>,
    /// 1 to 20,000 characters: what the receiving doctor needs to know.
    #[schema(schema_with = rules::text_20000, required = true)]
    pub clinical_summary: Option<String>,
    #[schema(value_type = enums::Urgency, required = true)]
    pub urgency: Option<String>,
}

impl TryFrom<ReferralInput> for NewReferral {
    type Error = ValidationErrors;

    /// Every missing or invalid field, listed at once, in the order of the fields.
    fn try_from(input: ReferralInput) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::new();
        errors.require("patient_id", input.patient_id.as_ref());
        errors.require("to_doctor_id", input.to_doctor_id.as_ref());
        let reason = errors
            .require("reason", input.reason)
            .and_then(|raw| errors.check("reason", parse_reason(&raw)));
        let clinical_summary = errors
            .require("clinical_summary", input.clinical_summary)
            .and_then(|raw| errors.check("clinical_summary", parse_summary(&raw)));
        let urgency = errors.require("urgency", input.urgency).and_then(|raw| {
            errors.check(
                "urgency",
                raw.parse::<Urgency>()
                    .map_err(|_| "must be one of routine, urgent, emergency"),
            )
        });
        match (
            input.patient_id,
            input.to_doctor_id,
            reason,
            clinical_summary,
            urgency,
        ) {
            (
                Some(patient_id),
                Some(to_doctor_id),
                Some(reason),
                Some(clinical_summary),
                Some(urgency),
            ) if errors.is_empty() => Ok(NewReferral {
                patient_id: PatientId::from_uuid(patient_id),
                to_doctor_id: UserId::from_uuid(to_doctor_id),
                reason,
                clinical_summary,
                urgency,
            }),
            _ => Err(errors),
        }
    }
}

/// Declining a referral: why.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineRequest {
    /// 1 to 5,000 characters; the sender reads it.
    #[schema(
        schema_with = rules::text_5000,
        required = true,
        example = "Outside my specialty; please refer to cardiology"
    )]
    pub reason: Option<String>,
}

/// Completing a referral: the outcome.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// 1 to 5,000 characters; the sender reads it.
    #[schema(
        schema_with = rules::text_5000,
        required = true,
        example = "Echo normal; discharged back to your care"
    )]
    pub outcome: Option<String>,
}

/// Accepting or cancelling takes no body, or an empty object.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use carehub_domain::patients::{MedicalInfo, MedicalRecord};
    use carehub_domain::patients::{Mrn, Patient, PatientDetails, PatientId};
    use carehub_domain::referrals::ReferralId;
    use serde_json::{Value, json};

    use crate::routes::patients::patient_input::PatientInput;

    fn referral() -> Referral {
        let at = ts("2026-11-23T09:30:00Z");
        Referral {
            id: ReferralId::generate(),
            patient_id: PatientId::generate(),
            patient_name: "Ada Lovelace".into(),
            from_doctor_id: UserId::from_uuid(Uuid::now_v7()),
            from_doctor_name: Some(FullName::parse("Alice Adams").expect("a name")),
            to_doctor_id: UserId::from_uuid(Uuid::now_v7()),
            to_doctor_name: None,
            reason: Text::multiline("Please assess", 500).expect("a reason"),
            urgency: Urgency::Urgent,
            status: ReferralStatus::Sent,
            decline_reason: None,
            outcome: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn snapshot(patient_id: PatientId) -> ReferralSnapshot {
        let input: PatientInput = serde_json::from_value(json!({
            "full_name": "Ada Lovelace",
            "date_of_birth": "1985-12-10",
            "sex": "female",
        }))
        .expect("an input");
        let details: PatientDetails = input.parse(jiff::civil::date(2026, 11, 22)).expect("valid");
        let at = ts("2026-11-22T10:00:00Z");
        ReferralSnapshot {
            clinical_summary: Text::multiline("Palpitations since May", 20_000).expect("text"),
            patient: Patient {
                id: patient_id,
                mrn: Mrn::from_number(48_217_730),
                details,
                created_at: at,
                updated_at: at,
            },
            medical: MedicalRecord {
                patient_id,
                info: MedicalInfo::default(),
                updated_at: None,
                updated_by: None,
            },
        }
    }

    #[test]
    fn a_listed_referral_has_no_snapshot_key() {
        let json = serde_json::to_value(ReferralView::summary(referral())).expect("json");
        let object = json.as_object().expect("an object");
        assert!(!object.contains_key("snapshot"));
        assert_eq!(json["urgency"], "urgent");
        assert_eq!(json["status"], "sent");
        assert_eq!(json["from_doctor"]["full_name"], "Alice Adams");
        assert_eq!(json["to_doctor"]["full_name"], Value::Null);
        assert_eq!(json["decline_reason"], Value::Null);
        assert_eq!(json["outcome"], Value::Null);
        assert_eq!(json["created_at"], "2026-11-23T09:30:00Z");
    }

    #[test]
    fn a_withheld_snapshot_is_null() {
        let view = ReferralView::detail(ReferralDetail {
            referral: referral(),
            snapshot: None,
        });
        let json = serde_json::to_value(view).expect("json");
        assert_eq!(json.get("snapshot"), Some(&Value::Null));
    }

    #[test]
    fn a_read_referral_carries_what_was_shared() {
        let referral = referral();
        let patient_id = referral.patient_id;
        let view = ReferralView::detail(ReferralDetail {
            referral,
            snapshot: Some(snapshot(patient_id)),
        });
        let json = serde_json::to_value(view).expect("json");
        let snapshot = &json["snapshot"];
        assert_eq!(snapshot["clinical_summary"], "Palpitations since May");
        assert_eq!(snapshot["patient"]["full_name"], "Ada Lovelace");
        assert_eq!(snapshot["patient"]["date_of_birth"], "1985-12-10");
        assert_eq!(snapshot["medical"]["allergies"], json!([]));
        assert_eq!(
            snapshot["medical"]["patient_id"],
            json!(patient_id.as_uuid())
        );
    }

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_referral_needs_every_field_and_lists_every_violation() {
        let errors = NewReferral::try_from(ReferralInput {
            patient_id: None,
            to_doctor_id: Some(Uuid::now_v7()),
            reason: Some("  ".into()),
            clinical_summary: Some("x".repeat(20_001)),
            urgency: Some("soon".into()),
        })
        .expect_err("invalid");
        assert_eq!(
            fields(&errors),
            ["patient_id", "reason", "clinical_summary", "urgency"]
        );
        let ok = NewReferral::try_from(ReferralInput {
            patient_id: Some(Uuid::now_v7()),
            to_doctor_id: Some(Uuid::now_v7()),
            reason: Some("Suspected arrhythmia".into()),
            clinical_summary: Some("Palpitations for two weeks.\nECG attached.".into()),
            urgency: Some("urgent".into()),
        })
        .expect("valid");
        assert_eq!(ok.urgency, Urgency::Urgent);
    }

    #[test]
    fn an_invalid_referral_lists_every_violation() {
        let errors = NewReferral::try_from(ReferralInput {
            patient_id: None,
            to_doctor_id: None,
            reason: Some("   ".into()),
            clinical_summary: Some("x".repeat(20_001)),
            urgency: Some("soon".into()),
        })
        .expect_err("invalid");
        assert_eq!(
            fields(&errors),
            [
                "patient_id",
                "to_doctor_id",
                "reason",
                "clinical_summary",
                "urgency"
            ]
        );
    }
}
