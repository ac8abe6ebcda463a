//! Booking an appointment and moving it: the time is checked against the doctor's schedule in
//! the clinic's time zone and written only if no active appointment of the doctor or the
//! patient is in the way; a schedule that changed meanwhile is read again and the write retried.

use jiff::{SignedDuration, Timestamp};

use crate::access::{Action, Actor, Basis};
use crate::audit::{AuditAction, AuditEvent};
use crate::identity::{Role, active_doctor};
use crate::kernel::RepositoryError;
use crate::notifications::{NotificationKind, publish_committed};
use crate::patients::{CareTeamMember, MembershipId};
use crate::scheduling::{
    Appointment, AppointmentId, AppointmentStatus, BookError, Booking, BookingRequest, Interval,
    MAX_APPOINTMENT_MINUTES, PATIENT_CANCEL_NOTICE, Reschedule, RescheduleRequest, Schedule,
    StatusChangeError, check_bookable, reminder_jobs,
};

use crate::scheduling::{AppointmentError, AppointmentService};

/// How many times a booking or a new time is tried again when the doctor's schedule changed
/// between reading it and writing (each time with the schedule read again).
pub const SCHEDULE_RETRIES: usize = 3;

/// How far around an appointment the doctor's schedule is read, so that the working window
/// holding it is seen whole.
const WINDOW_MARGIN: SignedDuration = SignedDuration::from_hours(24);

impl AppointmentService {
    /// Books an appointment: a secretary for anyone, a patient for themself, a doctor with
    /// themself for a patient of their care team. The time must be free in the doctor's
    /// schedule (working, not off) and overlap no active appointment of the doctor or the
    /// patient; the database refuses the overlap, whoever books concurrently. The booking puts
    /// the doctor on the patient's care team until [`CARE_TEAM_AFTER_VISIT`] after the
    /// appointment is over. The doctor and the patient's account are notified
    /// (`appointment.booked`), except whoever booked.
    ///
    /// # Errors
    /// `Forbidden` (the role never books; a doctor booking for another doctor; a doctor seeing
    /// the patient only by emergency access), `Invalid` (field `doctor_id`: not an active
    /// doctor), `NotFound` (no such patient, or not one the caller may book for),
    /// `Unavailable`, `Conflicts` (every active appointment in the way), `Internal` (also when
    /// the doctor's schedule kept changing).
    pub async fn book_appointment(
        &self,
        actor: &Actor,
        request: BookingRequest,
    ) -> Result<Appointment, AppointmentError> {
        self.check_may_book(actor).await?;
        let doctor =
            active_doctor::<AppointmentError>(self.users.as_ref(), request.doctor_id, "doctor_id")
                .await?;
        let patient_id = request.patient_id;
        if actor.role() == Role::Doctor && request.doctor_id != actor.user_id() {
            return Err(self
                .gate
                .deny(
                    actor,
                    Some(patient_id),
                    AuditAction::AppointmentCreate,
                    AppointmentError::Forbidden,
                )
                .await);
        }
        let basis = self
            .gate
            .decide_on_patient(actor, patient_id, Action::BookAppointment)
            .await?;
        let patient = self.patients.find(patient_id).await?;
        let account = patient.as_ref().and_then(|p| p.details.user_id);
        let now = self.gate.now();
        let id = AppointmentId::generate();
        let latest_end = request.end.unwrap_or(
            request.start + SignedDuration::from_mins(i64::from(MAX_APPOINTMENT_MINUTES)),
        );
        let membership = CareTeamMember {
            id: MembershipId::generate(),
            patient_id,
            doctor_id: request.doctor_id,
            doctor_name: Some(doctor.full_name.clone()),
            started_at: now,
            ended_at: None,
            added_by: actor.user_id(),
            ended_by: None,
            referral_id: None,
            appointment_id: Some(id),
        };
        let mut appointment = Appointment {
            id,
            doctor_id: request.doctor_id,
            patient_id,
            start: request.start,
            end: latest_end,
            reason: request.reason,
            status: AppointmentStatus::Booked,
            cancel_reason: None,
            video: request.video,
            created_by: actor.user_id(),
            created_at: now,
            updated_at: now,
            doctor_name: Some(doctor.full_name),
            patient_name: patient.map(|p| p.details.full_name),
        };
        let verb = format!("booked by {}", self.acted_by(actor).await?);
        let notices = self.appointment_notices(
            &appointment,
            account,
            actor,
            NotificationKind::AppointmentBooked,
            &verb,
        );
        let event = self.gate.event(
            actor,
            Some(patient_id),
            AuditAction::AppointmentCreate,
            Some(basis),
            now,
        );
        let mut retries = 0;
        loop {
            let schedule = self
                .schedules
                .schedule(
                    appointment.doctor_id,
                    request.start - WINDOW_MARGIN,
                    latest_end + WINDOW_MARGIN,
                )
                .await?;
            appointment.end = request.end.unwrap_or(
                request.start + SignedDuration::from_mins(i64::from(schedule.appointment_minutes)),
            );
            self.check_bookable_now(&schedule, appointment.interval(), now)?;
            let booking = Booking {
                appointment: appointment.clone(),
                schedule_version: schedule.version,
                membership: membership.clone(),
                jobs: reminder_jobs(&appointment, &self.reminder_leads, now),
            };
            match self.appointments.book(&booking, &event, &notices).await {
                Ok(stored) => {
                    publish_committed(self.publisher.as_ref(), &stored).await;
                    return Ok(appointment);
                }
                Err(BookError::ScheduleChanged) if retries < SCHEDULE_RETRIES => retries += 1,
                Err(error) => return Err(self.refused_write(error, event).await),
            }
        }
    }

    /// Moves a booked appointment to a new time (`end` defaults to keeping its length): a
    /// secretary any, a doctor their own, a patient theirs until [`PATIENT_CANCEL_NOTICE`]
    /// before it starts. The new time is checked as a booking is, not counting the appointment
    /// itself. The doctor and the patient's account are notified (`appointment.rescheduled`),
    /// except whoever moved it.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `AppointmentChange(TooLate)`, `NotReschedulable`,
    /// `Invalid` (field `end`, see [`RescheduleRequest::interval`]), `Unavailable`,
    /// `Conflicts`, `Stale`, `Internal`.
    pub async fn reschedule_appointment(
        &self,
        actor: &Actor,
        id: AppointmentId,
        request: RescheduleRequest,
    ) -> Result<Appointment, AppointmentError> {
        let action = AuditAction::AppointmentReschedule;
        let (mut appointment, basis, now) = self.reschedulable(actor, id).await?;
        let patient_id = appointment.patient_id;
        let from = appointment.interval();
        let to = request.interval(from)?;
        let account = self.patient_account(patient_id).await?;
        let verb = format!(
            "rescheduled to {} by {}",
            self.local_time(to.start),
            self.acted_by(actor).await?
        );
        let notices = self.appointment_notices(
            &appointment,
            account,
            actor,
            NotificationKind::AppointmentRescheduled,
            &verb,
        );
        let event = self
            .gate
            .event(actor, Some(patient_id), action, Some(basis), now);
        let mut retries = 0;
        loop {
            let schedule = self
                .schedules
                .schedule(
                    appointment.doctor_id,
                    to.start - WINDOW_MARGIN,
                    to.end + WINDOW_MARGIN,
                )
                .await?;
            self.check_bookable_now(&schedule, to, now)?;
            let moved = Appointment {
                start: to.start,
                end: to.end,
                ..appointment.clone()
            };
            let change = Reschedule {
                id,
                from,
                to,
                schedule_version: schedule.version,
                at: now,
                actor_id: actor.user_id(),
                jobs: reminder_jobs(&moved, &self.reminder_leads, now),
            };
            match self
                .appointments
                .reschedule(&change, &event, &notices)
                .await
            {
                Ok(stored) => {
                    publish_committed(self.publisher.as_ref(), &stored).await;
                    break;
                }
                Err(BookError::ScheduleChanged) if retries < SCHEDULE_RETRIES => retries += 1,
                Err(error) => return Err(self.refused_write(error, event).await),
            }
        }
        appointment.start = to.start;
        appointment.end = to.end;
        appointment.updated_at = now;
        Ok(appointment)
    }

    /// Whether the actor may move the appointment now, whatever the new time: the refusals
    /// [`AppointmentService::reschedule_appointment`] gives before it looks at the time asked
    /// for, audited as it audits them. Asked before an invalid new time is answered.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound`, `AppointmentChange(TooLate)`, `NotReschedulable`,
    /// `Internal`.
    pub async fn check_reschedulable(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<(), AppointmentError> {
        self.reschedulable(actor, id).await.map(|_| ())
    }

    /// The appointment, the basis the actor sees it on, and now, if the actor may move it now:
    /// it is booked, and a patient moves it no later than [`PATIENT_CANCEL_NOTICE`] before it
    /// starts.
    async fn reschedulable(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<(Appointment, Basis, Timestamp), AppointmentError> {
        let action = AuditAction::AppointmentReschedule;
        let (appointment, basis) = self.see_appointment(actor, id, action).await?;
        let now = self.gate.now();
        if actor.role() == Role::Patient && now > appointment.start - PATIENT_CANCEL_NOTICE {
            return Err(StatusChangeError::TooLate.into());
        }
        if appointment.status != AppointmentStatus::Booked {
            return Err(AppointmentError::NotReschedulable(appointment.status));
        }
        Ok((appointment, basis, now))
    }

    /// `slot` checked against the doctor's schedule as of `now`, in the clinic's time zone.
    pub(super) fn check_bookable_now(
        &self,
        schedule: &Schedule,
        slot: Interval,
        now: Timestamp,
    ) -> Result<(), AppointmentError> {
        Ok(check_bookable(schedule, &self.time_zone, slot, now)?)
    }

    /// What a refused or failed appointment write answers. Conflicts show the patient's other
    /// appointments' times to the caller, so the allowed attempt is audited even though nothing
    /// was written; a schedule that kept changing is an internal failure.
    pub(super) async fn refused_write(
        &self,
        error: BookError,
        event: AuditEvent,
    ) -> AppointmentError {
        match error {
            BookError::Conflicts(conflicts) => match self.gate.record(vec![event]).await {
                Ok(()) => AppointmentError::Conflicts(
                    conflicts
                        .into_iter()
                        .map(|c| c.at_clinic_offset(&self.time_zone))
                        .collect(),
                ),
                Err(e) => e.into(),
            },
            BookError::Stale => AppointmentError::Stale,
            BookError::ScheduleChanged => {
                AppointmentError::Internal(RepositoryError::new(format!(
                    "the doctor's schedule changed {} times in a row while booking",
                    SCHEDULE_RETRIES + 1
                )))
            }
            BookError::Repository(e) => e.into(),
        }
    }
}
