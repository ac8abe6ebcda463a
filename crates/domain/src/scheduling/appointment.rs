//! Appointments: a patient's booked time with a doctor. This module holds what an appointment
//! is, what a client asks for, how its status may change, who may see and change it, and the
//! port that stores appointments so that none ever overlaps another of its doctor or patient.

use async_trait::async_trait;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::identity::{FullName, Role, UserId};
use crate::jobs::JobChanges;
use crate::kernel::{
    Page, PageRequest, RepositoryError, Text, TextError, ValidationErrors, string_enum,
};
use crate::notifications::{NewNotification, Notification};
use crate::patients::{CareTeamMember, PatientId};
use crate::scheduling::{Interval, MAX_APPOINTMENT_MINUTES, clinic_time, parse_instant};

pub use crate::kernel::AppointmentId;

/// How long before the start a patient may still cancel their own appointment.
pub const PATIENT_CANCEL_NOTICE: SignedDuration = SignedDuration::from_hours(2);
/// The longest cancellation reason, in characters.
pub const MAX_CANCEL_REASON_CHARS: usize = 1_000;
/// How long after an appointment ends (completed, cancelled, no-show) its doctor stays on the
/// patient's care team.
pub const CARE_TEAM_AFTER_VISIT: SignedDuration = SignedDuration::from_hours(24 * 30);
/// The longest reason for a visit, in characters.
pub const MAX_APPOINTMENT_REASON_CHARS: usize = 500;

string_enum!(
    /// Where an appointment stands.
    AppointmentStatus, "appointment status" {
        /// Booked, the patient not yet arrived.
        Booked => "booked",
        /// The patient arrived.
        CheckedIn => "checked_in",
        /// The doctor is seeing the patient.
        InProgress => "in_progress",
        Completed => "completed",
        /// Called off, with a reason.
        Cancelled => "cancelled",
        /// The patient did not come.
        NoShow => "no_show",
    }
);

impl AppointmentStatus {
    /// Whether the appointment still holds its time: only these block the doctor's and the
    /// patient's calendars.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Booked
                | AppointmentStatus::CheckedIn
                | AppointmentStatus::InProgress
        )
    }

    /// Whether `self` may move to `to`: `booked` → `checked_in` → `in_progress` → `completed`;
    /// `booked` → `cancelled` | `no_show`; `checked_in` → `cancelled`.
    pub const fn may_become(self, to: AppointmentStatus) -> bool {
        use AppointmentStatus as S;
        matches!(
            (self, to),
            (S::Booked, S::CheckedIn | S::Cancelled | S::NoShow)
                | (S::CheckedIn, S::InProgress | S::Cancelled)
                | (S::InProgress, S::Completed)
        )
    }
}

/// Which statuses a role may set, whatever the appointment: a secretary checks patients in,
/// cancels and records no-shows; a doctor starts, completes and cancels; a patient only
/// cancels (their own, early enough: see [`check_status_change`]).
pub const fn role_may_set(role: Role, to: AppointmentStatus) -> bool {
    use AppointmentStatus as S;
    match role {
        Role::Secretary => matches!(to, S::CheckedIn | S::Cancelled | S::NoShow),
        Role::Doctor => matches!(to, S::InProgress | S::Completed | S::Cancelled),
        Role::Patient => matches!(to, S::Cancelled),
        Role::Admin | Role::Laboratory => false,
    }
}

/// Why a status change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusChangeError {
    /// The caller's role never sets this status (403).
    #[error("your role may not set an appointment to {0}")]
    Role(AppointmentStatus),
    /// The current status does not lead there (409).
    #[error("the appointment is {from}: it cannot become {to}")]
    NotFrom {
        from: AppointmentStatus,
        to: AppointmentStatus,
    },
    /// A patient cancels at least [`PATIENT_CANCEL_NOTICE`] before the start (422).
    #[error("an appointment can be cancelled online until 2 hours before it starts")]
    TooLate,
    /// Cancelling needs a reason (422).
    #[error("reason: {0}")]
    Reason(ReasonError),
    /// Only cancelling takes a reason (422).
    #[error("reason: only a cancellation takes a reason")]
    UnexpectedReason,
}

/// What is wrong with a cancellation reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("is required")]
    Missing,
    #[error(transparent)]
    Text(#[from] TextError),
}

/// Checks a status change by a caller of `role` (already known to be allowed to see the
/// appointment: its doctor, its patient, a secretary) and returns the validated reason, if the
/// change is a cancellation. Checked in this order: the role (403), the state machine (409),
/// the patient's notice (422), the reason (422).
///
/// # Errors
/// [`StatusChangeError`].
pub fn check_status_change(
    role: Role,
    from: AppointmentStatus,
    to: AppointmentStatus,
    reason: Option<&str>,
    start: Timestamp,
    now: Timestamp,
) -> Result<Option<Text>, StatusChangeError> {
    if !role_may_set(role, to) {
        return Err(StatusChangeError::Role(to));
    }
    if !from.may_become(to) {
        return Err(StatusChangeError::NotFrom { from, to });
    }
    if role == Role::Patient && now > start - PATIENT_CANCEL_NOTICE {
        return Err(StatusChangeError::TooLate);
    }
    match (to, reason) {
        (AppointmentStatus::Cancelled, Some(raw)) => Text::multiline(raw, MAX_CANCEL_REASON_CHARS)
            .map(Some)
            .map_err(|e| StatusChangeError::Reason(e.into())),
        (AppointmentStatus::Cancelled, None) => {
            Err(StatusChangeError::Reason(ReasonError::Missing))
        }
        (_, Some(_)) => Err(StatusChangeError::UnexpectedReason),
        (_, None) => Ok(None),
    }
}

/// A booked time of one patient with one doctor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: AppointmentId,
    pub doctor_id: UserId,
    pub patient_id: PatientId,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Why the patient comes.
    pub reason: Text,
    pub status: AppointmentStatus,
    /// Why it was cancelled, when it was.
    pub cancel_reason: Option<Text>,
    /// A video consultation: its doctor and patient meet in its call (see
    /// [`crate::calls`]).
    pub video: bool,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Filled in when read back.
    pub doctor_name: Option<FullName>,
    /// Filled in when read back, for the schedules of doctors and secretaries.
    pub patient_name: Option<FullName>,
}

impl Appointment {
    /// The time it holds, `[start, end)`.
    pub fn interval(&self) -> Interval {
        Interval {
            start: self.start,
            end: self.end,
        }
    }
}

/// A booking request, every field valid, before access, availability and conflicts are
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub doctor_id: UserId,
    pub patient_id: PatientId,
    /// On a whole minute (see [`parse_minute`]).
    pub start: Timestamp,
    /// `None`: the doctor's appointment length after `start`. Otherwise on a whole minute, and
    /// within [`check_appointment_length`] of `start`.
    pub end: Option<Timestamp>,
    pub reason: Text,
    /// A video consultation.
    pub video: bool,
}

/// A new time asked for a booked appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RescheduleRequest {
    /// On a whole minute (see [`parse_minute`]).
    pub start: Timestamp,
    /// On a whole minute; `None` keeps the appointment's current length.
    pub end: Option<Timestamp>,
}

impl RescheduleRequest {
    /// The new time of an appointment that now holds `current`: `end`, or `start` plus the
    /// current length.
    ///
    /// # Errors
    /// [`ValidationErrors`] on field `end` when the new time breaks
    /// [`check_appointment_length`].
    pub fn interval(&self, current: Interval) -> Result<Interval, ValidationErrors> {
        let end = self
            .end
            .unwrap_or(self.start + (current.end - current.start));
        let mut errors = ValidationErrors::new();
        errors.check("end", check_appointment_length(self.start, end));
        errors.into_result()?;
        Ok(Interval {
            start: self.start,
            end,
        })
    }
}

/// A status change as asked: the status wanted, and the reason as written. The reason is
/// checked with the change (see [`check_status_change`]), since whether one is needed depends
/// on the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub to: AppointmentStatus,
    pub reason: Option<String>,
}

/// Why the patient comes: 1 to [`MAX_APPOINTMENT_REASON_CHARS`] characters.
///
/// # Errors
/// The rule the text breaks.
pub fn parse_appointment_reason(raw: &str) -> Result<Text, TextError> {
    Text::multiline(raw, MAX_APPOINTMENT_REASON_CHARS)
}

/// An RFC 3339 instant on a whole minute, in UTC (see [`parse_instant`]).
///
/// # Errors
/// What is wrong with it, for a validation message.
pub fn parse_minute(raw: &str) -> Result<Timestamp, &'static str> {
    let at = parse_instant(raw)?;
    if at.as_second().rem_euclid(60) != 0 || at.subsec_nanosecond() != 0 {
        return Err("must be on a whole minute");
    }
    Ok(at)
}

/// What is wrong with an appointment's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppointmentLengthError {
    #[error("must be after start")]
    NotAfterStart,
    #[error("at most {} minutes after start", MAX_APPOINTMENT_MINUTES)]
    TooLong,
}

/// Whether an appointment may run from `start` to `end`: after it, by at most the longest
/// appointment ([`MAX_APPOINTMENT_MINUTES`]).
///
/// # Errors
/// [`AppointmentLengthError`], a message for field `end`.
pub fn check_appointment_length(
    start: Timestamp,
    end: Timestamp,
) -> Result<(), AppointmentLengthError> {
    if end <= start {
        Err(AppointmentLengthError::NotAfterStart)
    } else if end.duration_since(start)
        > SignedDuration::from_mins(i64::from(MAX_APPOINTMENT_MINUTES))
    {
        Err(AppointmentLengthError::TooLong)
    } else {
        Ok(())
    }
}

string_enum!(
    /// Whose calendar an appointment in the way blocks.
    ConflictWith, "conflict" {
        /// The doctor's.
        Doctor => "doctor",
        /// The patient's.
        Patient => "patient",
        /// Both.
        Both => "both",
    }
);

/// An active appointment in the way of a booking, as the 409 lists it: ids and times only
/// (never another patient's id), and whose calendar it blocks. Its times are in UTC as stored;
/// the services' errors give them at the clinic's offset ([`Conflict::at_clinic_offset`]), so
/// that whoever shows them needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub appointment_id: AppointmentId,
    pub start: Zoned,
    pub end: Zoned,
    pub with: ConflictWith,
}

impl Conflict {
    /// A conflict with the appointment `appointment_id` from `start` to `end`, in UTC.
    pub fn new(
        appointment_id: AppointmentId,
        start: Timestamp,
        end: Timestamp,
        with: ConflictWith,
    ) -> Self {
        Self {
            appointment_id,
            start: start.to_zoned(TimeZone::UTC),
            end: end.to_zoned(TimeZone::UTC),
            with,
        }
    }

    /// The same conflict, its times at the clinic's offset for each (see [`clinic_time`]).
    #[must_use]
    pub fn at_clinic_offset(self, tz: &TimeZone) -> Self {
        Self {
            start: clinic_time(tz, self.start.timestamp()),
            end: clinic_time(tz, self.end.timestamp()),
            ..self
        }
    }
}

string_enum!(
    /// What one entry of an appointment's history records.
    HistoryChange, "appointment change" {
        Booked => "booked",
        /// The status changed.
        Status => "status",
        /// The time changed.
        Rescheduled => "rescheduled",
    }
);

/// One change of an appointment: who made it, and the appointment as it stood after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub actor_id: UserId,
    /// `None` only if the account no longer exists.
    pub actor_name: Option<FullName>,
    pub change: HistoryChange,
    pub status: AppointmentStatus,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The cancellation reason.
    pub reason: Option<Text>,
}

/// What to list appointments by; every part optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppointmentFilter {
    pub doctor_id: Option<UserId>,
    pub patient_id: Option<PatientId>,
    /// Only appointments overlapping `[from, to)`.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub status: Option<AppointmentStatus>,
}

/// A booking to store: the appointment, the schedule version its availability was checked
/// against, and the care-team membership it opens (`appointment_id` set, `ended_at` `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub appointment: Appointment,
    pub schedule_version: i64,
    pub membership: CareTeamMember,
    /// Its reminders.
    pub jobs: JobChanges,
}

/// A status change to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub id: AppointmentId,
    /// The status as read: the update is conditional on it.
    pub from: AppointmentStatus,
    pub to: AppointmentStatus,
    /// The cancellation reason.
    pub reason: Option<Text>,
    pub at: Timestamp,
    pub actor_id: UserId,
    /// When `to` is completed, cancelled or no-show: when the appointment's care-team
    /// membership ends.
    pub care_team_until: Option<Timestamp>,
    /// What the change does to the appointment's reminders.
    pub jobs: JobChanges,
}

/// A new time to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reschedule {
    pub id: AppointmentId,
    /// The time as read: the update is conditional on it and on the status being booked.
    pub from: Interval,
    pub to: Interval,
    /// The doctor's schedule version the new time was checked against.
    pub schedule_version: i64,
    pub at: Timestamp,
    pub actor_id: UserId,
    /// Its reminders, moved.
    pub jobs: JobChanges,
}

/// Why storing a booking, a status change or a new time failed.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// Active appointments of the doctor or the patient overlap (nothing written). Every one.
    #[error("the time is taken")]
    Conflicts(Vec<Conflict>),
    /// The doctor's schedule changed since it was read (the use case re-reads and retries).
    #[error("the doctor's schedule changed")]
    ScheduleChanged,
    /// The appointment changed since it was read (409 for the caller).
    #[error("the appointment was changed concurrently")]
    Stale,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores appointments. The database itself refuses two active appointments of one doctor, or
/// of one patient, that overlap; each change is written with its history entry, audit event and
/// notifications, in one transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AppointmentRepository: Send + Sync {
    /// In one write transaction: checks the doctor's schedule version, then the conflicts,
    /// then inserts the appointment, its first history entry (booked), the membership, the
    /// audit event, the notifications and the job changes. Returns the notifications as stored.
    ///
    /// # Errors
    /// [`BookError::ScheduleChanged`] when the doctor's schedule version is no longer
    /// `booking.schedule_version`; [`BookError::Conflicts`] listing every active appointment of
    /// the doctor or the patient that overlaps (nothing is written); [`BookError::Repository`].
    async fn book(
        &self,
        booking: &Booking,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, BookError>;

    /// The appointment, with its doctor's name.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn get(&self, id: AppointmentId) -> Result<Option<Appointment>, RepositoryError>;

    /// Conditional on the status still being `update.from`: writes the status, the cancel
    /// reason, a history entry, ends the appointment's membership at `care_team_until` when
    /// given, the audit event, the notifications and the job changes. Returns the notifications
    /// as stored.
    ///
    /// # Errors
    /// [`BookError::Stale`] when the status is no longer `from` (nothing written);
    /// [`BookError::Repository`].
    async fn change_status(
        &self,
        update: &StatusUpdate,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, BookError>;

    /// Conditional on the status being booked and the times being `change.from`: checks the
    /// schedule version and the conflicts (excluding the appointment itself) as
    /// [`AppointmentRepository::book`] does, then writes the new times, a history entry
    /// (rescheduled), the audit event, the notifications and the job changes.
    ///
    /// # Errors
    /// [`BookError::Stale`], [`BookError::ScheduleChanged`], [`BookError::Conflicts`],
    /// [`BookError::Repository`].
    async fn reschedule(
        &self,
        change: &Reschedule,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, BookError>;

    /// The appointment's changes, oldest first, with the actors' names.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn history(&self, id: AppointmentId) -> Result<Vec<HistoryEntry>, RepositoryError>;

    /// Appointments matching `filter`, ordered by (start, id); `page.after()` is the id of the
    /// last appointment seen.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        filter: &AppointmentFilter,
        page: PageRequest<AppointmentId>,
    ) -> Result<Page<Appointment, AppointmentId>, RepositoryError>;

    /// The doctor's active appointments overlapping `[from, to)`, as intervals, by start.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn busy(
        &self,
        doctor_id: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Interval>, RepositoryError>;
}

#[cfg(test)]
mod tests;
