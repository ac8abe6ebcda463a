//! The appointment use cases: booking (never over another active appointment of the doctor or
//! the patient, only when the doctor works and is not off), reading, listing, status changes
//! and rescheduling. Every attempt on an appointment is audited with its
//! patient, and the doctor and the patient's account are notified of bookings, cancellations
//! and new times, unless they made the change themself.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::access::{AccessError, Action, Actor, Basis, Relationship};
use crate::audit::{AuditAction, AuditEvent, Gatekeeper};
use crate::identity::{Role, UserId, UserRepository, name_of};
use crate::jobs::JobChanges;
use crate::kernel::{Page, PageRequest, RepositoryError, ValidationErrors};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher, Recipient,
    publish_committed,
};
use crate::patients::{PatientId, PatientRepository};
use crate::scheduling::{
    Appointment, AppointmentFilter, AppointmentId, AppointmentRepository, AppointmentStatus,
    CARE_TEAM_AFTER_VISIT, Conflict, DEFAULT_REMINDER_LEADS, HistoryEntry, ScheduleRepository,
    StatusChange, StatusChangeError, StatusUpdate, Unavailable, cancel_reminders,
    check_status_change,
};

/// Why an appointment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AppointmentError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404): the two are not told apart.
    #[error("no such patient")]
    NotFound,
    /// No such appointment, or none the caller may see (404).
    #[error("no such appointment")]
    AppointmentNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The doctor cannot be booked then (422).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// Active appointments are in the way (409): every one, ids and times only, the times at
    /// the clinic's offset.
    #[error("{} appointment(s) overlap", .0.len())]
    Conflicts(Vec<Conflict>),
    /// A status change the rules refuse: `Role` 403, `NotFrom` 409, the others 422.
    #[error(transparent)]
    AppointmentChange(#[from] StatusChangeError),
    /// Only a booked appointment moves (409).
    #[error("the appointment is {0}: only a booked appointment can be rescheduled")]
    NotReschedulable(AppointmentStatus),
    /// The appointment changed since it was read (409).
    #[error("it was changed concurrently; read it again and retry")]
    Stale,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for AppointmentError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// Booking appointments, moving them and following them through their statuses.
#[derive(Clone)]
pub struct AppointmentService {
    pub(super) gate: Gatekeeper,
    pub(super) appointments: Arc<dyn AppointmentRepository>,
    pub(super) schedules: Arc<dyn ScheduleRepository>,
    pub(super) patients: Arc<dyn PatientRepository>,
    pub(super) users: Arc<dyn UserRepository>,
    pub(super) publisher: Arc<dyn NotificationPublisher>,
    pub(super) time_zone: TimeZone,
    /// How long before an appointment its reminders fire.
    pub(super) reminder_leads: Vec<SignedDuration>,
}

impl std::fmt::Debug for AppointmentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppointmentService").finish_non_exhaustive()
    }
}

impl AppointmentService {
    pub fn new(
        gate: Gatekeeper,
        appointments: Arc<dyn AppointmentRepository>,
        schedules: Arc<dyn ScheduleRepository>,
        patients: Arc<dyn PatientRepository>,
        users: Arc<dyn UserRepository>,
        publisher: Arc<dyn NotificationPublisher>,
        time_zone: TimeZone,
    ) -> Self {
        Self {
            gate,
            appointments,
            schedules,
            patients,
            users,
            publisher,
            time_zone,
            reminder_leads: DEFAULT_REMINDER_LEADS.to_vec(),
        }
    }

    /// The same service, with reminders at these lead times (none: no reminders).
    #[must_use]
    pub fn with_reminder_leads(mut self, leads: Vec<SignedDuration>) -> Self {
        self.reminder_leads = leads;
        self
    }
}

impl AppointmentService {
    /// Whether the actor's role may ever book an appointment (secretaries, doctors, patients);
    /// anyone else is refused, and audited as `appointment.create` without a patient, before
    /// their request is even read.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_may_book(&self, actor: &Actor) -> Result<(), AppointmentError> {
        Ok(self
            .gate
            .check_role(
                actor,
                Action::BookAppointment,
                AuditAction::AppointmentCreate,
            )
            .await?)
    }

    /// Whether the actor's role may ever list appointments (secretaries, doctors, patients);
    /// anyone else is refused, and audited as `appointment.list` without a patient, before
    /// their query is even judged.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_may_list(&self, actor: &Actor) -> Result<(), AppointmentError> {
        Ok(self
            .gate
            .check_role(
                actor,
                Action::ListAppointments,
                AuditAction::AppointmentList,
            )
            .await?)
    }

    /// An appointment: a secretary reads any, a doctor their own, a patient theirs.
    ///
    /// # Errors
    /// `Forbidden` (laboratory staff, administrators), `AppointmentNotFound` (none, or not one
    /// the caller may see), `Internal`.
    pub async fn appointment(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<Appointment, AppointmentError> {
        let action = AuditAction::AppointmentRead;
        let (appointment, basis) = self.see_appointment(actor, id, action).await?;
        self.gate
            .allowed(actor, appointment.patient_id, action, basis)
            .await?;
        Ok(appointment)
    }

    /// An appointment's changes, oldest first, for whoever may read it.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `Internal`.
    pub async fn appointment_history(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<Vec<HistoryEntry>, AppointmentError> {
        let action = AuditAction::AppointmentHistory;
        let (appointment, basis) = self.see_appointment(actor, id, action).await?;
        let history = self.appointments.history(id).await?;
        self.gate
            .allowed(actor, appointment.patient_id, action, basis)
            .await?;
        Ok(history)
    }

    /// Appointments by (start, id): a secretary's as filtered, a doctor's only their own, a
    /// patient's only theirs (none while no record is linked to their account). Each patient
    /// on the page is audited once (`appointment.list`).
    ///
    /// # Errors
    /// `Forbidden` (laboratory staff, administrators; a doctor filtering by another doctor; a
    /// patient filtering by another patient), `Internal`.
    pub async fn list_appointments(
        &self,
        actor: &Actor,
        filter: AppointmentFilter,
        page: PageRequest<AppointmentId>,
    ) -> Result<Page<Appointment, AppointmentId>, AppointmentError> {
        let action = AuditAction::AppointmentList;
        // A doctor lists their own appointments, a patient theirs: asking for someone else's
        // is refused by the policy.
        let requested_patient = filter.patient_id;
        let (filter, relationship) = match actor.role() {
            Role::Doctor => {
                let own = filter.doctor_id.is_none_or(|d| d == actor.user_id());
                let filter = AppointmentFilter {
                    doctor_id: Some(actor.user_id()),
                    ..filter
                };
                (
                    filter,
                    if own {
                        Relationship::Party
                    } else {
                        Relationship::None
                    },
                )
            }
            Role::Patient => {
                let own_record = self.own_patient_id(actor).await?;
                let own = filter.patient_id.is_none_or(|p| Some(p) == own_record);
                let filter = AppointmentFilter {
                    patient_id: own_record,
                    ..filter
                };
                (filter, Relationship::own_if(own))
            }
            Role::Secretary | Role::Laboratory | Role::Admin => (filter, Relationship::None),
        };
        let basis = self
            .gate
            .decide(
                actor,
                relationship,
                Action::ListAppointments,
                action,
                requested_patient,
            )
            .await?;
        if actor.role() == Role::Patient && filter.patient_id.is_none() {
            // No record is linked to the patient's account yet: they have no appointments.
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let found = self.appointments.list(&filter, page).await?;
        let now = self.gate.now();
        let mut patients: Vec<PatientId> = Vec::new();
        for appointment in &found.items {
            if !patients.contains(&appointment.patient_id) {
                patients.push(appointment.patient_id);
            }
        }
        let events: Vec<AuditEvent> = patients
            .into_iter()
            .map(|p| self.gate.event(actor, Some(p), action, Some(basis), now))
            .collect();
        if !events.is_empty() {
            self.gate.record(events).await?;
        }
        Ok(found)
    }

    /// Moves an appointment along its state machine, within what the caller's role may set
    /// (see [`check_status_change`]). Completing, cancelling or recording a no-show ends the
    /// doctor's appointment membership of the care team [`CARE_TEAM_AFTER_VISIT`] from now. A
    /// cancellation notifies the doctor and the patient's account (`appointment.cancelled`),
    /// except whoever cancelled.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `AppointmentChange`, `Stale` (changed
    /// concurrently), `Internal`.
    pub async fn change_appointment_status(
        &self,
        actor: &Actor,
        id: AppointmentId,
        change: StatusChange,
    ) -> Result<Appointment, AppointmentError> {
        let action = AuditAction::AppointmentStatus;
        let (mut appointment, basis) = self.see_appointment(actor, id, action).await?;
        let patient_id = appointment.patient_id;
        let to = change.to;
        let now = self.gate.now();
        let reason = match check_status_change(
            actor.role(),
            appointment.status,
            to,
            change.reason.as_deref(),
            appointment.start,
            now,
        ) {
            Ok(reason) => reason,
            Err(error @ StatusChangeError::Role(_)) => {
                return Err(self
                    .gate
                    .deny(actor, Some(patient_id), action, error.into())
                    .await);
            }
            Err(error) => return Err(error.into()),
        };
        let closes = matches!(
            to,
            AppointmentStatus::Completed | AppointmentStatus::Cancelled | AppointmentStatus::NoShow
        );
        let update = StatusUpdate {
            id,
            from: appointment.status,
            to,
            reason: reason.clone(),
            at: now,
            actor_id: actor.user_id(),
            care_team_until: closes.then_some(now + CARE_TEAM_AFTER_VISIT),
            // Once it is no longer booked, nothing is left to remind of.
            jobs: if to == AppointmentStatus::Booked {
                JobChanges::default()
            } else {
                cancel_reminders(id)
            },
        };
        let notices = if to == AppointmentStatus::Cancelled {
            let account = self.patient_account(patient_id).await?;
            let verb = format!("cancelled by {}", self.acted_by(actor).await?);
            self.appointment_notices(
                &appointment,
                account,
                actor,
                NotificationKind::AppointmentCancelled,
                &verb,
            )
        } else {
            Vec::new()
        };
        let event = self
            .gate
            .event(actor, Some(patient_id), action, Some(basis), now);
        match self
            .appointments
            .change_status(&update, &event, &notices)
            .await
        {
            Ok(stored) => publish_committed(self.publisher.as_ref(), &stored).await,
            Err(error) => return Err(self.refused_write(error, event).await),
        }
        appointment.status = to;
        appointment.cancel_reason = reason;
        appointment.updated_at = now;
        Ok(appointment)
    }

    /// Whether the access policy lets the actor act on the appointment (a secretary, its doctor,
    /// its patient); a refusal is audited as `action`. Asked before a request's body is read.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `Internal`.
    pub async fn check_access(
        &self,
        actor: &Actor,
        id: AppointmentId,
        action: AuditAction,
    ) -> Result<(), AppointmentError> {
        self.see_appointment(actor, id, action).await.map(|_| ())
    }

    /// The appointment, if the actor may see it, with the basis they see it on. A refusal is
    /// audited as `action`, with the appointment's patient when there is one: laboratory staff
    /// and administrators are refused (403) whether or not it exists; anyone else not its
    /// doctor, its patient or a secretary is told it does not exist (404).
    pub(super) async fn see_appointment(
        &self,
        actor: &Actor,
        id: AppointmentId,
        action: AuditAction,
    ) -> Result<(Appointment, Basis), AppointmentError> {
        self.appointment_for(actor, id, Action::AccessAppointment, action)
            .await
    }

    /// The appointment, if the access policy lets the actor do `access` on it as its doctor
    /// or its patient (or by role), with the basis; a refusal is audited as `audit_as`, as
    /// [`Self::check_access`] describes.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `Internal`.
    pub async fn appointment_for(
        &self,
        actor: &Actor,
        id: AppointmentId,
        access: Action,
        audit_as: AuditAction,
    ) -> Result<(Appointment, Basis), AppointmentError> {
        let action = audit_as;
        let Some(appointment) = self.appointments.get(id).await? else {
            let error = if Gatekeeper::role_may_ever(actor, access) {
                AppointmentError::AppointmentNotFound
            } else {
                AppointmentError::Forbidden
            };
            return Err(self.gate.deny(actor, None, action, error).await);
        };
        let relationship = if appointment.doctor_id == actor.user_id() {
            Relationship::Party
        } else {
            let is_its_patient = actor.role() == Role::Patient
                && self.own_patient_id(actor).await? == Some(appointment.patient_id);
            Relationship::own_if(is_its_patient)
        };
        let basis = self
            .gate
            .decide(
                actor,
                relationship,
                access,
                action,
                Some(appointment.patient_id),
            )
            .await
            .map_err(|e| e.hiding_as(AppointmentError::AppointmentNotFound))?;
        Ok((appointment, basis))
    }

    /// The record linked to a patient's own account.
    pub(super) async fn own_patient_id(
        &self,
        actor: &Actor,
    ) -> Result<Option<PatientId>, AppointmentError> {
        Ok(self
            .patients
            .find_by_user(actor.user_id())
            .await?
            .map(|p| p.id))
    }

    /// The account linked to a patient's record, if any.
    pub(super) async fn patient_account(
        &self,
        patient_id: PatientId,
    ) -> Result<Option<UserId>, AppointmentError> {
        Ok(self
            .patients
            .find(patient_id)
            .await?
            .and_then(|p| p.details.user_id))
    }

    /// How the actor is named in an appointment notification: never a patient's name, since a
    /// notification may show on a lock screen.
    pub(super) async fn acted_by(&self, actor: &Actor) -> Result<String, AppointmentError> {
        if actor.role() == Role::Patient {
            Ok("the patient".to_owned())
        } else {
            Ok(name_of(self.users.as_ref(), actor.user_id()).await?)
        }
    }

    /// An instant as the clinic's clock shows it, such as "Tue 24 Nov 2026 at 09:00".
    pub(super) fn local_time(&self, at: Timestamp) -> String {
        at.to_zoned(self.time_zone.clone())
            .strftime("%a %-d %b %Y at %H:%M")
            .to_string()
    }

    /// The notifications of a change of `appointment` (as it was before the change): to its
    /// doctor and the patient's `account`, except the actor, titled "Appointment on <local
    /// start> <verb>".
    pub(super) fn appointment_notices(
        &self,
        appointment: &Appointment,
        account: Option<UserId>,
        actor: &Actor,
        kind: NotificationKind,
        verb: &str,
    ) -> Vec<NewNotification> {
        let title = format!(
            "Appointment on {} {verb}",
            self.local_time(appointment.start)
        );
        [Some(appointment.doctor_id), account]
            .into_iter()
            .flatten()
            .filter(|user| *user != actor.user_id())
            .map(|user| NewNotification {
                recipient: Recipient::User(user),
                kind,
                data: NotificationData {
                    title: title.clone(),
                    patient_id: Some(*appointment.patient_id.as_uuid()),
                    actor_id: Some(*actor.user_id().as_uuid()),
                    appointment_id: Some(*appointment.id.as_uuid()),
                    ..NotificationData::default()
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
