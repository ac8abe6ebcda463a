//! The domain's enums as the OpenAPI document publishes them: each as the strings it travels as
//! (its `as_str`, which serde writes and reads too), under the domain type's name. The domain
//! knows nothing of OpenAPI; fields of these types name the schema here with
//! `#[schema(value_type = enums::Role)]`.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Declares, for each domain enum, a schema type of the same name publishing its values.
macro_rules! published_enums {
    ($($name:ident: $domain:ty, $description:literal;)+) => {
        $(
            #[doc = $description]
            #[derive(Debug)]
            pub struct $name;

            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .description(Some($description))
                        .enum_values(Some(<$domain>::ALL.iter().map(|v| v.as_str())))
                        .into()
                }
            }

            impl utoipa::ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        )+

        /// Every published enum: its schema name and the values the server writes.
        #[cfg(test)]
        pub(crate) fn all() -> Vec<(&'static str, Vec<&'static str>)> {
            vec![$((stringify!($name), <$domain>::ALL.iter().map(|v| v.as_str()).collect())),+]
        }
    };
}

published_enums! {
    Role: carehub_domain::kernel::Role, "What a user is in the clinic. It decides what they may do.";
    UserStatus: carehub_domain::identity::UserStatus, "Whether an account may sign in.";
    Basis: carehub_domain::access::Basis, "Why access was allowed; kept with each audit event.";
    AuditAction: carehub_domain::audit::AuditAction, "What was done, or attempted, to a patient's data.";
    Outcome: carehub_domain::audit::Outcome, "Whether the attempt was let through.";
    NotificationKind: carehub_domain::notifications::NotificationKind, "What a notification is about.";
    Sex: carehub_domain::patients::Sex, "Administrative sex, as FHIR records it.";
    BloodType: carehub_domain::patients::BloodType, "ABO group and Rh factor.";
    Severity: carehub_domain::patients::Severity, "How bad a reaction is.";
    NoteKind: carehub_domain::patients::NoteKind, "What a note records.";
    Urgency: carehub_domain::referrals::Urgency, "How soon the receiving doctor should act.";
    ReferralStatus: carehub_domain::referrals::ReferralStatus, "Where a referral stands.";
    ReferralBox: carehub_domain::referrals::ReferralBox, "Which of a doctor's referrals to list.";
    AppointmentStatus: carehub_domain::scheduling::AppointmentStatus, "Where an appointment stands.";
    ConflictWith: carehub_domain::scheduling::ConflictWith, "Whose calendar an appointment in the way blocks.";
    HistoryChange: carehub_domain::scheduling::HistoryChange, "What one entry of an appointment's history records.";
    JobKind: carehub_domain::jobs::JobKind, "What a background job does.";
    PrescriptionRoute: carehub_domain::prescriptions::Route, "How a medication is taken.";
    PrescriptionStatus: carehub_domain::prescriptions::PrescriptionStatus, "Where a prescription stands.";
    JobState: carehub_domain::jobs::JobState, "Where a background job is in its life.";
    Weekday: carehub_domain::scheduling::Weekday, "A day of the week, as availability rules name it.";
    LabTestKind: carehub_domain::lab::LabTestKind, "What kind of test it is.";
    LabPriority: carehub_domain::lab::LabPriority, "How soon the laboratory should do it.";
    LabOrderStatus: carehub_domain::lab::LabOrderStatus, "Where a lab order stands.";
    ResultFlag: carehub_domain::lab::ResultFlag, "How a numeric result compares with its reference range.";
    LabFileKind: carehub_domain::lab::LabFileKind, "What a lab file holds.";
    CallEventKind: carehub_domain::calls::CallEventKind, "What a party did in a video call.";
}
