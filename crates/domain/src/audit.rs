//! The audit trail: who read or changed which patient's data, when, and whether they were let.
//! Events are only ever appended.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::RepositoryError;
use crate::access::Basis;
use crate::id::time_ordered_id;
use crate::page::{Page, PageRequest};
use crate::patient::PatientId;
use crate::user::{FullName, Role, UserId};

time_ordered_id!(
    /// An audit event's identifier; time-ordered.
    AuditEventId
);

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!("unknown {}: {s}", $what))
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// What was done, or attempted, to a patient's data.
    AuditAction, "audit action" {
        PatientCreate => "patient.create",
        PatientRead => "patient.read",
        PatientUpdate => "patient.update",
        /// The patient appeared in a list or search result.
        PatientList => "patient.list",
        MedicalRead => "medical.read",
        MedicalUpdate => "medical.update",
        NotesRead => "notes.read",
        NoteCreate => "note.create",
        CareTeamRead => "care_team.read",
        CareTeamAdd => "care_team.add",
        CareTeamEnd => "care_team.end",
        EmergencyAccessGrant => "emergency_access.grant",
        AccessLogRead => "access_log.read",
        ReferralCreate => "referral.create",
        ReferralRead => "referral.read",
        /// The referral appeared in a box listing.
        ReferralList => "referral.list",
        ReferralAccept => "referral.accept",
        ReferralDecline => "referral.decline",
        ReferralCancel => "referral.cancel",
        ReferralComplete => "referral.complete",
        /// An appointment was booked (or the attempt refused).
        AppointmentCreate => "appointment.create",
        AppointmentRead => "appointment.read",
        /// The appointment appeared in a listing.
        AppointmentList => "appointment.list",
        /// The appointment's status changed.
        AppointmentStatus => "appointment.status",
        /// The appointment's time changed.
        AppointmentReschedule => "appointment.reschedule",
        AppointmentHistory => "appointment.history",
    }
);

string_enum!(
    /// Whether the attempt was let through.
    Outcome, "outcome" {
        Allowed => "allowed",
        Denied => "denied",
    }
);

/// One audited attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub at: OffsetDateTime,
    pub actor_id: UserId,
    pub actor_role: Role,
    /// The patient concerned (for an attempt on an id that names no patient, that id); `None`
    /// for an attempt that named no patient, such as a refused registration or search.
    pub patient_id: Option<PatientId>,
    pub action: AuditAction,
    pub outcome: Outcome,
    /// Why access was allowed (`None` when denied).
    pub basis: Option<Basis>,
    /// The HTTP request's id, to match the event with logs.
    pub request_id: Option<String>,
}

/// An event with the name of whoever acted, as the audit trail shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub event: AuditEvent,
    /// `None` only if the account no longer exists.
    pub actor_name: Option<FullName>,
}

/// What to filter the audit trail by; every part optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub patient_id: Option<PatientId>,
    pub actor_id: Option<UserId>,
    /// Inclusive.
    pub from: Option<OffsetDateTime>,
    /// Exclusive.
    pub to: Option<OffsetDateTime>,
}

/// The append-only audit trail.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends events. When this returns `Ok`, they are durably stored.
    ///
    /// # Errors
    /// [`RepositoryError`]: the caller must then fail its request, since it could not be audited.
    async fn record(&self, events: Vec<AuditEvent>) -> Result<(), RepositoryError>;

    /// Events matching `filter`, newest first.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        filter: AuditFilter,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, RepositoryError>;
}
