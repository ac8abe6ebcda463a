//! The audit trail: who read or changed which patient's data, when, and whether they were let.
//! Events are only ever appended.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::access::{Action, Basis};
use crate::identity::{FullName, Role, UserId};
use crate::kernel::{Page, PageRequest, PatientId, RepositoryError, string_enum, time_ordered_id};

mod gatekeeper;
mod service;

pub use gatekeeper::Gatekeeper;
pub use service::AuditService;

time_ordered_id!(
    /// An audit event's identifier; time-ordered.
    AuditEventId
);

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
        LabOrderCreate => "lab_order.create",
        LabOrderRead => "lab_order.read",
        /// The order appeared in a listing (the laboratory's queue, a patient's orders).
        LabOrderList => "lab_order.list",
        /// The laboratory scheduled or collected it.
        LabOrderUpdate => "lab_order.update",
        LabOrderCancel => "lab_order.cancel",
        LabResultRecord => "lab_result.record",
        LabResultRelease => "lab_result.release",
        LabFileUpload => "lab_file.upload",
        LabFileRead => "lab_file.read",
        PrescriptionCreate => "prescription.create",
        PrescriptionRead => "prescription.read",
        /// The prescription appeared in a listing (the patient's prescriptions).
        PrescriptionList => "prescription.list",
        /// A doctor completed, stopped or replaced it.
        PrescriptionEnd => "prescription.end",
        /// It was written despite a recorded allergy it matches, with a reason.
        PrescriptionAllergyOverride => "prescription.allergy_override",
        /// A conversation about the patient was started.
        ConversationCreate => "conversation.create",
        /// Its messages were read (over the API, or delivered on a socket).
        ConversationRead => "conversation.read",
        /// The conversation appeared in a listing.
        ConversationList => "conversation.list",
        MessageSend => "message.send",
        /// A file was uploaded to a conversation, to go with a message.
        AttachmentUpload => "attachment.upload",
        /// A message's file was read.
        AttachmentRead => "attachment.read",
        /// A patient rated an appointment.
        FeedbackCreate => "feedback.create",
        /// An administrator hid a comment of feedback.
        FeedbackHide => "feedback.hide",
        /// The video call of an appointment was looked up (its window and ICE servers).
        CallRead => "call.read",
        /// A party joined the video call of an appointment (or the attempt was refused).
        CallJoin => "call.join",
        /// A party left the call, or their socket closed while in it.
        CallLeave => "call.leave",
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
    pub at: Timestamp,
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
    pub from: Option<Timestamp>,
    /// Exclusive.
    pub to: Option<Timestamp>,
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

impl Action {
    /// How an attempt is recorded in the audit trail; `None` for the clinic's own affairs
    /// (accounts, doctors' calendars, the trail itself), which hold no patient's data and are
    /// not audited.
    pub const fn audit_action(self) -> Option<AuditAction> {
        Some(match self {
            Action::CreatePatient => AuditAction::PatientCreate,
            Action::SearchPatients => AuditAction::PatientList,
            Action::ReadProfile => AuditAction::PatientRead,
            Action::UpdateProfile => AuditAction::PatientUpdate,
            Action::ReadMedical => AuditAction::MedicalRead,
            Action::UpdateMedical => AuditAction::MedicalUpdate,
            Action::ReadNotes => AuditAction::NotesRead,
            Action::WriteNote => AuditAction::NoteCreate,
            Action::ReadCareTeam => AuditAction::CareTeamRead,
            Action::AddCareTeamMember => AuditAction::CareTeamAdd,
            Action::EndCareTeamMembership => AuditAction::CareTeamEnd,
            Action::RequestEmergencyAccess => AuditAction::EmergencyAccessGrant,
            Action::ReadAccessLog => AuditAction::AccessLogRead,
            Action::SendReferral => AuditAction::ReferralCreate,
            Action::FindOwnRecord => AuditAction::PatientRead,
            Action::AccessReferral => AuditAction::ReferralRead,
            Action::BookAppointment => AuditAction::AppointmentCreate,
            Action::AccessAppointment => AuditAction::AppointmentRead,
            Action::ListAppointments => AuditAction::AppointmentList,
            Action::WriteVisitNote => AuditAction::NoteCreate,
            Action::OrderLabTests => AuditAction::LabOrderCreate,
            Action::AccessLabOrder => AuditAction::LabOrderRead,
            Action::ProcessLabOrder => AuditAction::LabOrderUpdate,
            Action::ReleaseLabResults => AuditAction::LabResultRelease,
            Action::Prescribe => AuditAction::PrescriptionCreate,
            Action::ReadPrescriptions => AuditAction::PrescriptionRead,
            Action::Message => AuditAction::ConversationRead,
            Action::GiveFeedback => AuditAction::FeedbackCreate,
            Action::ModerateFeedback => AuditAction::FeedbackHide,
            Action::JoinCall => AuditAction::CallJoin,
            Action::EditDoctorProfile
            | Action::ReadFeedback
            | Action::EditDoctorSchedule
            | Action::ManageAccounts
            | Action::ReadAuditTrail
            | Action::ReadEmergencyAccesses
            | Action::ManageJobs
            | Action::ReadReports
            | Action::ReadLabCatalogue
            | Action::ManageLabCatalogue => return None,
        })
    }
}
