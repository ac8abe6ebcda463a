//! The access policy: one pure function decides who may do what to a patient's data, from the
//! caller's role and their relationship to the patient. Nothing else grants access.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::kernel::{PatientId, RepositoryError, Role, UserId};

mod actor;

pub use actor::*;

/// What links a user to a patient at one instant, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessFacts {
    /// The patient record is the user's own.
    pub is_own_record: bool,
    /// The user is currently on the patient's care team.
    pub on_care_team: bool,
    /// The user holds an unexpired emergency access to the patient.
    pub emergency_access: bool,
}

/// Reads how a user relates to a patient, for the policy to decide on.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccessFactsRepository: Send + Sync {
    /// What links `user_id` to the patient at `at`; `None` when there is no such patient.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn access_facts(
        &self,
        patient_id: PatientId,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<Option<AccessFacts>, RepositoryError>;
}

/// What a caller attempts. Most actions are on a patient's data and audited; the last few
/// are on the clinic's own affairs (accounts, doctors' calendars, the audit trail) and are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Register a new patient.
    CreatePatient,
    /// List or search patients (what is returned is scoped separately, see [`search_scope`]).
    SearchPatients,
    /// Demographics, contact, identifiers, insurance, emergency contact, location.
    ReadProfile,
    UpdateProfile,
    ReadMedical,
    UpdateMedical,
    ReadNotes,
    WriteNote,
    ReadCareTeam,
    AddCareTeamMember,
    EndCareTeamMembership,
    /// Break the glass: take time-limited read access to a patient outside one's care team.
    RequestEmergencyAccess,
    /// Who accessed the patient's record.
    ReadAccessLog,
    /// Find the record linked to one's own account.
    FindOwnRecord,
    /// Refer the patient to another doctor, sharing their record as it is.
    SendReferral,
    /// Read, list or answer referrals one is a party to (which answer each party may give is
    /// the referral's own rule).
    AccessReferral,
    /// Book an appointment for the patient (which puts its doctor on the care team until it is
    /// over).
    BookAppointment,
    /// Read an appointment or its history, move it or change its status (which statuses a
    /// role may set is the appointment's own rule).
    AccessAppointment,
    /// List appointments: the clinic's, or only one's own.
    ListAppointments,
    /// Write the note of a visit one is the doctor of.
    WriteVisitNote,
    /// A doctor's profile: specializations, biography, appointment length. Not audited.
    EditDoctorProfile,
    /// A doctor's weekly availability and time off. Not audited.
    EditDoctorSchedule,
    /// List, create, approve, change and suspend user accounts. Not audited.
    ManageAccounts,
    /// Read the whole audit trail. Not audited.
    ReadAuditTrail,
    /// List the emergency accesses doctors took. Not audited.
    ReadEmergencyAccesses,
    /// List and retry the clinic's background jobs. Not audited.
    ManageJobs,
    /// Read the clinic's reports, which name no patient. Not audited.
    ReadReports,
    /// Order laboratory tests for the patient (and cancel one's own orders).
    OrderLabTests,
    /// Read a lab order, its results and files (a patient: only once released; the
    /// laboratory: with no more of the patient's record than tells them apart).
    AccessLabOrder,
    /// The laboratory's work: schedule, collect, record results, upload files.
    ProcessLabOrder,
    /// Release an order's results to the patient.
    ReleaseLabResults,
    /// Read the test catalogue. Not audited.
    ReadLabCatalogue,
    /// Add tests to the catalogue. Not audited.
    ManageLabCatalogue,
    /// Write a prescription for the patient, or end one (complete, stop, replace).
    Prescribe,
    /// Read the patient's prescriptions.
    ReadPrescriptions,
    /// Take part in a conversation about the patient: a patient's with their care-team
    /// doctors, or the two doctors' of a referral.
    Message,
    /// Rate a completed appointment of one's own.
    GiveFeedback,
    /// Read a doctor's feedback (a doctor their own). Not audited: it names no patient.
    ReadFeedback,
    /// Hide a comment of feedback.
    ModerateFeedback,
    /// Take part in the video call of an appointment: its doctor and its patient only.
    JoinCall,
}

impl Action {
    pub const ALL: [Action; 40] = [
        Action::CreatePatient,
        Action::SearchPatients,
        Action::ReadProfile,
        Action::UpdateProfile,
        Action::ReadMedical,
        Action::UpdateMedical,
        Action::ReadNotes,
        Action::WriteNote,
        Action::ReadCareTeam,
        Action::AddCareTeamMember,
        Action::EndCareTeamMembership,
        Action::RequestEmergencyAccess,
        Action::ReadAccessLog,
        Action::FindOwnRecord,
        Action::SendReferral,
        Action::AccessReferral,
        Action::BookAppointment,
        Action::AccessAppointment,
        Action::ListAppointments,
        Action::WriteVisitNote,
        Action::EditDoctorProfile,
        Action::EditDoctorSchedule,
        Action::ManageAccounts,
        Action::ReadAuditTrail,
        Action::ReadEmergencyAccesses,
        Action::ManageJobs,
        Action::ReadReports,
        Action::OrderLabTests,
        Action::AccessLabOrder,
        Action::ProcessLabOrder,
        Action::ReleaseLabResults,
        Action::ReadLabCatalogue,
        Action::ManageLabCatalogue,
        Action::Prescribe,
        Action::ReadPrescriptions,
        Action::Message,
        Action::GiveFeedback,
        Action::ReadFeedback,
        Action::ModerateFeedback,
        Action::JoinCall,
    ];
}

/// How the caller relates to what they act on, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relationship {
    /// It is the caller's own: their patient record (or an appointment of it), their calendar.
    OwnRecord,
    /// The caller is currently on the patient's care team.
    CareTeam,
    /// The caller holds an unexpired emergency access.
    EmergencyAccess,
    /// The caller is the doctor of the appointment, or a party to the referral.
    Party,
    /// None of the above.
    None,
}

impl Relationship {
    pub const ALL: [Relationship; 5] = [
        Relationship::OwnRecord,
        Relationship::CareTeam,
        Relationship::EmergencyAccess,
        Relationship::Party,
        Relationship::None,
    ];

    /// [`Relationship::OwnRecord`] when `is_own`, else [`Relationship::None`].
    pub const fn own_if(is_own: bool) -> Self {
        if is_own {
            Relationship::OwnRecord
        } else {
            Relationship::None
        }
    }

    /// The strongest relationship the stored facts establish.
    pub fn from_facts(facts: AccessFacts) -> Self {
        if facts.is_own_record {
            Relationship::OwnRecord
        } else if facts.on_care_team {
            Relationship::CareTeam
        } else if facts.emergency_access {
            Relationship::EmergencyAccess
        } else {
            Relationship::None
        }
    }
}

/// Why access was allowed; kept with each audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The role alone allows it (a secretary registering, an administrator managing teams).
    Role,
    OwnRecord,
    CareTeam,
    EmergencyAccess,
    /// The caller is a party to a referral of the patient (reading the referral and what it
    /// shared).
    Referral,
    /// The caller is the doctor of an appointment of the patient (reading and changing it).
    Appointment,
}

impl Basis {
    pub const ALL: [Basis; 6] = [
        Basis::Role,
        Basis::OwnRecord,
        Basis::CareTeam,
        Basis::EmergencyAccess,
        Basis::Referral,
        Basis::Appointment,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Basis::Role => "role",
            Basis::OwnRecord => "own_record",
            Basis::CareTeam => "care_team",
            Basis::EmergencyAccess => "emergency_access",
            Basis::Referral => "referral",
            Basis::Appointment => "appointment",
        }
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Basis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Basis::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("unknown basis: {s}"))
    }
}

/// The policy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow(Basis),
    /// The role may never do this: answered 403.
    Forbidden,
    /// The role could, but not on this patient: answered 404, so that whether the patient
    /// exists is not disclosed.
    Hidden,
}

impl Decision {
    pub const fn is_allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Decides whether a caller of `role`, related to what they act on by `relationship`, may do
/// `action`. For actions on no particular thing (registering, searching, managing accounts,
/// reading the trail) the relationship is irrelevant (pass [`Relationship::None`]).
///
/// - Secretary: registers patients and reads and updates their profile (demographics, contact,
///   identifiers, insurance), and books, reads and lists any patient's appointments and edits
///   any doctor's schedule; never medical information or notes.
/// - Doctor: registers patients; reads and updates everything, writes notes and sends referrals
///   for patients whose care team they are on, and adds other doctors to it. With an emergency
///   access, reads only. Books appointments with themself for their care-team patients, and
///   reads, lists and writes the visit notes of their own appointments. Reads and answers
///   referrals they are a party to. Edits their own profile and schedule. Orders lab tests,
///   reads and releases their results for care-team patients (reads them too under an
///   emergency access). Other patients only
///   through search on an exact record number or identifier.
/// - Laboratory: reads every lab order (with no more of the patient's record than tells
///   patients apart) and works it: schedules, collects, records results, uploads files.
/// - Patient: reads their own profile, medical information, notes and access log, and books,
///   reads and lists their own appointments; reads their own lab orders once released.
/// - Admin: lists patients, manages care teams, reads access logs, the audit trail and the
///   emergency accesses, manages accounts and edits doctors' profiles and schedules; never
///   medical information or notes.
pub fn decide(role: Role, relationship: Relationship, action: Action) -> Decision {
    use Action as A;
    use Decision::{Allow, Forbidden, Hidden};
    use Relationship as R;
    match (role, action) {
        (
            Role::Secretary,
            A::CreatePatient
            | A::SearchPatients
            | A::ReadProfile
            | A::UpdateProfile
            | A::BookAppointment
            | A::AccessAppointment
            | A::ListAppointments
            | A::EditDoctorSchedule,
        )
        | (Role::Doctor, A::CreatePatient | A::SearchPatients | A::RequestEmergencyAccess)
        | (
            Role::Admin,
            A::SearchPatients
            | A::ReadCareTeam
            | A::AddCareTeamMember
            | A::EndCareTeamMembership
            | A::ReadAccessLog
            | A::EditDoctorProfile
            | A::EditDoctorSchedule
            | A::ReadFeedback
            | A::ModerateFeedback
            | A::ManageAccounts
            | A::ReadAuditTrail
            | A::ReadEmergencyAccesses
            | A::ManageJobs
            | A::ReadReports
            | A::ReadLabCatalogue
            | A::ManageLabCatalogue,
        )
        | (Role::Doctor, A::ReadLabCatalogue)
        | (Role::Laboratory, A::ReadLabCatalogue | A::AccessLabOrder | A::ProcessLabOrder) => {
            Allow(Basis::Role)
        }
        (
            Role::Doctor,
            A::ReadProfile
            | A::ReadMedical
            | A::ReadNotes
            | A::ReadCareTeam
            | A::AccessLabOrder
            | A::ReadPrescriptions,
        ) => match relationship {
            R::CareTeam => Allow(Basis::CareTeam),
            R::EmergencyAccess => Allow(Basis::EmergencyAccess),
            R::OwnRecord | R::Party | R::None => Hidden,
        },
        // Referring shares the whole record: only a care-team doctor may, never under an
        // emergency access. Booking puts the doctor on the care team: an emergency access is
        // no way onto it. An emergency access only ever grants reading; and as the doctor
        // already sees the patient, saying "not found" would be a lie.
        (
            Role::Doctor,
            A::UpdateProfile
            | A::UpdateMedical
            | A::WriteNote
            | A::AddCareTeamMember
            | A::SendReferral
            | A::BookAppointment
            | A::OrderLabTests
            | A::ReleaseLabResults
            | A::Prescribe,
        ) => match relationship {
            R::CareTeam => Allow(Basis::CareTeam),
            R::EmergencyAccess => Forbidden,
            R::OwnRecord | R::Party | R::None => Hidden,
        },
        (Role::Doctor, A::AccessAppointment | A::WriteVisitNote) => match relationship {
            R::Party => Allow(Basis::Appointment),
            _ => Hidden,
        },
        // A call is the appointment's two parties' alone: not a secretary's, who books it.
        (Role::Doctor, A::JoinCall) => match relationship {
            R::Party => Allow(Basis::Appointment),
            _ => Hidden,
        },
        (Role::Doctor, A::AccessReferral) => match relationship {
            R::Party => Allow(Basis::Referral),
            _ => Hidden,
        },
        // A doctor talks with the patients of their care team, and with the other doctor of
        // a referral; an emergency access is for reading the record, not for talking.
        (Role::Doctor, A::Message) => match relationship {
            R::CareTeam => Allow(Basis::CareTeam),
            R::Party => Allow(Basis::Referral),
            R::EmergencyAccess => Forbidden,
            R::OwnRecord | R::None => Hidden,
        },
        // A doctor lists only their own appointments: asking for another doctor's is refused.
        (Role::Doctor, A::ListAppointments) => match relationship {
            R::Party => Allow(Basis::Appointment),
            _ => Forbidden,
        },
        (Role::Doctor, A::EditDoctorProfile | A::EditDoctorSchedule | A::ReadFeedback) => {
            match relationship {
                R::OwnRecord => Allow(Basis::OwnRecord),
                _ => Forbidden,
            }
        }
        (
            Role::Patient,
            A::ReadProfile
            | A::ReadMedical
            | A::ReadNotes
            | A::ReadAccessLog
            | A::FindOwnRecord
            | A::BookAppointment
            | A::AccessAppointment
            | A::AccessLabOrder
            | A::ReadPrescriptions
            | A::Message
            | A::GiveFeedback
            | A::JoinCall,
        ) => match relationship {
            R::OwnRecord => Allow(Basis::OwnRecord),
            R::CareTeam | R::EmergencyAccess | R::Party | R::None => Hidden,
        },
        // A patient lists only their own appointments: asking for another's is refused.
        (Role::Patient, A::ListAppointments) => match relationship {
            R::OwnRecord => Allow(Basis::OwnRecord),
            _ => Forbidden,
        },
        _ => Forbidden,
    }
}

/// Which patients a search by a caller of `role` may return, or `None` when the role may not
/// search at all. Doctors see their care-team patients, and others only on an exact record
/// number or identifier match; secretaries and administrators see every patient (a search
/// result shows only what tells patients apart: record number, name, date of birth, sex).
pub const fn search_scope(role: Role) -> Option<SearchAccess> {
    match role {
        Role::Secretary | Role::Admin => Some(SearchAccess::All),
        Role::Doctor => Some(SearchAccess::CareTeamOrExactMatch),
        Role::Laboratory | Role::Patient => None,
    }
}

/// See [`search_scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchAccess {
    All,
    CareTeamOrExactMatch,
}

#[cfg(test)]
mod tests;
