//! Care teams (the doctors treating a patient, with the history of who joined and left) and
//! emergency ("break-the-glass") access.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::audit::AuditEvent;
use crate::identity::{FullName, UserId};
use crate::kernel::{
    AppointmentId, Page, PageRequest, ReferralId, RepositoryError, Text, time_ordered_id,
};
use crate::notifications::{NewNotification, Notification};
use crate::patients::PatientId;

/// How long an emergency access lasts.
pub const EMERGENCY_ACCESS_DURATION: SignedDuration = SignedDuration::from_mins(60);
/// The shortest reason an emergency access needs.
pub const EMERGENCY_REASON_MIN_CHARS: usize = 10;
/// The longest.
pub const EMERGENCY_REASON_MAX_CHARS: usize = 1_000;

time_ordered_id!(
    /// A care-team membership's identifier.
    MembershipId
);

/// One doctor's time on one patient's care team. Ending a membership keeps it as history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareTeamMember {
    pub id: MembershipId,
    pub patient_id: PatientId,
    pub doctor_id: UserId,
    /// Filled in when read back.
    pub doctor_name: Option<FullName>,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub added_by: UserId,
    pub ended_by: Option<UserId>,
    /// The referral whose acceptance opened the membership, if that was the reason.
    pub referral_id: Option<ReferralId>,
    /// The appointment whose booking opened the membership, if that was the reason. Such a
    /// membership ends `scheduling::CARE_TEAM_AFTER_VISIT` after the appointment is
    /// over; [`CareTeamRepository::add`] and [`CareTeamRepository::end`] ignore it.
    pub appointment_id: Option<AppointmentId>,
}

impl CareTeamMember {
    /// Whether the membership holds at `at`.
    pub fn is_current(&self, at: Timestamp) -> bool {
        self.started_at <= at && self.ended_at.is_none_or(|end| end > at)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AddMemberError {
    #[error("the doctor is already on the care team")]
    AlreadyMember,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores care-team memberships. Changes are written with their audit event, in one transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CareTeamRepository: Send + Sync {
    /// Adds a membership, with its audit event and notifications, in one transaction; returns
    /// the notifications as stored.
    ///
    /// # Errors
    /// [`AddMemberError::AlreadyMember`] when the doctor has a current membership already, not
    /// counting memberships opened by appointments (and then nothing is written).
    async fn add(
        &self,
        member: &CareTeamMember,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, AddMemberError>;

    /// Ends the doctor's current membership at `at`, returning it as ended, or `None` when the
    /// doctor has no current membership (and then nothing is written, the event neither).
    /// Memberships opened by appointments are not ended here (the appointment's end ends them).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn end(
        &self,
        patient_id: PatientId,
        doctor_id: UserId,
        at: Timestamp,
        ended_by: UserId,
        audit: &AuditEvent,
    ) -> Result<Option<CareTeamMember>, RepositoryError>;

    /// Every membership of the patient, current and past, oldest first, with doctors' names.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(&self, patient_id: PatientId) -> Result<Vec<CareTeamMember>, RepositoryError>;
}

time_ordered_id!(
    /// An emergency access grant's identifier.
    EmergencyAccessId
);

/// A doctor's reason for breaking the glass: 10 to 1,000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyReason(Text);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be between 10 and 1000 characters long, without control characters")]
pub struct EmergencyReasonError;

impl EmergencyReason {
    /// # Errors
    /// [`EmergencyReasonError`].
    pub fn parse(raw: &str) -> Result<Self, EmergencyReasonError> {
        let text =
            Text::multiline(raw, EMERGENCY_REASON_MAX_CHARS).map_err(|_| EmergencyReasonError)?;
        if text.as_str().chars().count() < EMERGENCY_REASON_MIN_CHARS {
            return Err(EmergencyReasonError);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A time-limited read access a doctor took to a patient outside their care team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyAccess {
    pub id: EmergencyAccessId,
    pub patient_id: PatientId,
    pub doctor_id: UserId,
    /// Filled in when read back.
    pub doctor_name: Option<FullName>,
    pub reason: EmergencyReason,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
}

impl EmergencyAccess {
    /// Whether the access lets its doctor read at `at`.
    pub fn is_active(&self, at: Timestamp) -> bool {
        self.granted_at <= at && at < self.expires_at
    }
}

/// What to filter emergency accesses by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmergencyAccessFilter {
    pub patient_id: Option<PatientId>,
    pub doctor_id: Option<UserId>,
    /// Only those unexpired at this instant.
    pub active_at: Option<Timestamp>,
    /// Only those expired by this instant.
    pub expired_at: Option<Timestamp>,
}

/// Stores emergency accesses. Grants are written with their audit event, in one transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EmergencyAccessRepository: Send + Sync {
    /// Stores the grant with its audit event and notifications, in one transaction; returns
    /// the notifications as stored.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn grant(
        &self,
        access: &EmergencyAccess,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, RepositoryError>;

    /// Grants matching `filter`, newest first.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        filter: EmergencyAccessFilter,
        page: PageRequest<EmergencyAccessId>,
    ) -> Result<Page<EmergencyAccess, EmergencyAccessId>, RepositoryError>;
}
