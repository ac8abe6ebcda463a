//! The doctors' use cases: the directory, profiles, weekly availability, time off and free
//! slots. None of this is patient data: any signed-in user reads it, nothing is audited, and
//! only the doctor themself (and a secretary or an administrator, as each case says) changes it.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::access::{Action, Actor, Relationship};
use crate::identity::UserId;
use crate::kernel::{Clock, Page, PageRequest, RepositoryError, ValidationErrors};
use crate::scheduling::{
    AppointmentRepository, AvailabilityRule, Conflict, DoctorProfile, Interval, MAX_SLOT_RANGE,
    NewTimeOff, ProfileUpdate, ScheduleRepository, TimeOff, TimeOffError, TimeOffId, free_slots,
    sort_rules,
};

/// Why a scheduling operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// No active doctor has this id (404).
    #[error("no such doctor")]
    DoctorNotFound,
    /// The doctor has no such time off (404).
    #[error("no such time off")]
    TimeOffNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Active appointments are in the way (409): every one, ids and times only, the times at
    /// the clinic's offset.
    #[error("{} appointment(s) overlap", .0.len())]
    Conflicts(Vec<Conflict>),
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

/// Doctors' profiles, availability, time off and free slots.
#[derive(Clone)]
pub struct ScheduleService {
    schedules: Arc<dyn ScheduleRepository>,
    appointments: Arc<dyn AppointmentRepository>,
    clock: Arc<dyn Clock>,
    time_zone: TimeZone,
}

impl std::fmt::Debug for ScheduleService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduleService").finish_non_exhaustive()
    }
}

impl ScheduleService {
    pub fn new(
        schedules: Arc<dyn ScheduleRepository>,
        appointments: Arc<dyn AppointmentRepository>,
        clock: Arc<dyn Clock>,
        time_zone: TimeZone,
    ) -> Self {
        Self {
            schedules,
            appointments,
            clock,
            time_zone,
        }
    }
}

/// How far beyond a range asked for the schedule and appointments are read, so that the working
/// windows overlapping the range are seen whole.
const WINDOW_MARGIN: SignedDuration = SignedDuration::from_hours(24);

/// A doctor's weekly rules and upcoming time off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// By weekday (Monday first), then start.
    pub rules: Vec<AvailabilityRule>,
    /// Time off ending after now, by start; reasons blanked (`None`) unless the caller may edit
    /// the doctor's schedule.
    pub time_off: Vec<TimeOff>,
}

/// A doctor's free slots, and the appointment length they were cut to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeSlots {
    pub appointment_minutes: u16,
    /// In order.
    pub slots: Vec<Interval>,
}

impl ScheduleService {
    /// The clinic's time zone, in which availability rules are read and local times shown.
    pub fn clinic_time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// Now, on the clock the service dates changes by: new time off is checked against it
    /// (see [`check_time_off_span`](crate::scheduling::check_time_off_span)).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Active doctors, by id, optionally only those with a specialization matching
    /// `specialization` (case-insensitive).
    ///
    /// # Errors
    /// `Internal`.
    pub async fn doctor_directory(
        &self,
        _actor: &Actor,
        specialization: Option<&str>,
        page: PageRequest<UserId>,
    ) -> Result<Page<DoctorProfile, UserId>, ScheduleError> {
        let specialization = specialization
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty());
        Ok(self.schedules.directory(specialization, page).await?)
    }

    /// An active doctor's profile.
    ///
    /// # Errors
    /// `DoctorNotFound`, `Internal`.
    pub async fn doctor_profile(
        &self,
        _actor: &Actor,
        doctor_id: UserId,
    ) -> Result<DoctorProfile, ScheduleError> {
        self.schedules
            .profile(doctor_id)
            .await?
            .ok_or(ScheduleError::DoctorNotFound)
    }

    /// Whether `doctor_id` is an active doctor's: the one refusal (404) the changes of a
    /// doctor's profile and schedule give, after [`ScheduleService::check_profile_editor`] or
    /// [`ScheduleService::check_schedule_editor`], before they look at what was asked. Asked
    /// before an invalid request is answered.
    ///
    /// # Errors
    /// `DoctorNotFound`, `Internal`.
    pub async fn check_doctor(
        &self,
        actor: &Actor,
        doctor_id: UserId,
    ) -> Result<(), ScheduleError> {
        self.doctor_profile(actor, doctor_id).await.map(|_| ())
    }

    /// Whether the access policy lets the actor edit the doctor's profile: the doctor themself
    /// or an administrator. Checked before a request's body is read.
    ///
    /// # Errors
    /// `Forbidden`.
    pub fn check_profile_editor(
        &self,
        actor: &Actor,
        doctor_id: UserId,
    ) -> Result<(), ScheduleError> {
        let own = Relationship::own_if(actor.user_id() == doctor_id);
        match actor.permit(Action::EditDoctorProfile, own) {
            Ok(_) => Ok(()),
            Err(_) => Err(ScheduleError::Forbidden),
        }
    }

    /// Whether the access policy lets the actor edit the doctor's availability and time off:
    /// the doctor themself, a secretary or an administrator. Checked before a request's body is
    /// read.
    ///
    /// # Errors
    /// `Forbidden`.
    pub fn check_schedule_editor(
        &self,
        actor: &Actor,
        doctor_id: UserId,
    ) -> Result<(), ScheduleError> {
        let own = Relationship::own_if(actor.user_id() == doctor_id);
        match actor.permit(Action::EditDoctorSchedule, own) {
            Ok(_) => Ok(()),
            Err(_) => Err(ScheduleError::Forbidden),
        }
    }

    /// Replaces the doctor's specializations, biography and appointment length.
    ///
    /// # Errors
    /// `Forbidden`, `DoctorNotFound`, `Internal`.
    pub async fn update_doctor_profile(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        update: ProfileUpdate,
    ) -> Result<DoctorProfile, ScheduleError> {
        self.check_profile_editor(actor, doctor_id)?;
        let current = self.doctor_profile(actor, doctor_id).await?;
        let now = self.clock.now();
        self.schedules.save_profile(doctor_id, &update, now).await?;
        Ok(DoctorProfile {
            specializations: update.specializations,
            bio: update.bio,
            appointment_minutes: update.appointment_minutes,
            updated_at: Some(now),
            ..current
        })
    }

    /// The doctor's weekly rules and upcoming time off.
    ///
    /// # Errors
    /// `DoctorNotFound`, `Internal`.
    pub async fn availability(
        &self,
        actor: &Actor,
        doctor_id: UserId,
    ) -> Result<Availability, ScheduleError> {
        self.doctor_profile(actor, doctor_id).await?;
        let now = self.clock.now();
        let schedule = self.schedules.schedule(doctor_id, now, now).await?;
        let mut time_off = self.schedules.upcoming_time_off(doctor_id, now).await?;
        if self.check_schedule_editor(actor, doctor_id).is_err() {
            for t in &mut time_off {
                t.reason = None;
            }
        }
        Ok(Availability {
            rules: schedule.rules,
            time_off,
        })
    }

    /// Replaces the doctor's weekly rules (at most [`MAX_RULES`](crate::scheduling::MAX_RULES),
    /// none overlapping another); returns them as stored, sorted by weekday (Monday first),
    /// then start.
    ///
    /// # Errors
    /// `Forbidden`, `DoctorNotFound`, `Internal`.
    pub async fn replace_availability(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        mut rules: Vec<AvailabilityRule>,
    ) -> Result<Vec<AvailabilityRule>, ScheduleError> {
        self.check_schedule_editor(actor, doctor_id)?;
        self.doctor_profile(actor, doctor_id).await?;
        sort_rules(&mut rules);
        let now = self.clock.now();
        self.schedules.replace_rules(doctor_id, &rules, now).await?;
        Ok(rules)
    }

    /// Adds time off, unless appointments are booked then.
    ///
    /// # Errors
    /// `Forbidden`, `DoctorNotFound`, `Conflicts` (every active appointment in the way),
    /// `Internal`.
    pub async fn add_time_off(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        new: NewTimeOff,
    ) -> Result<TimeOff, ScheduleError> {
        self.check_schedule_editor(actor, doctor_id)?;
        self.doctor_profile(actor, doctor_id).await?;
        let now = self.clock.now();
        let time_off = TimeOff {
            id: TimeOffId::generate(),
            doctor_id,
            start: new.start,
            end: new.end,
            reason: new.reason,
            created_by: actor.user_id(),
            created_at: now,
        };
        self.schedules
            .add_time_off(&time_off)
            .await
            .map_err(|e| match e {
                TimeOffError::Conflicts(conflicts) => ScheduleError::Conflicts(
                    conflicts
                        .into_iter()
                        .map(|c| c.at_clinic_offset(&self.time_zone))
                        .collect(),
                ),
                TimeOffError::Repository(e) => e.into(),
            })?;
        Ok(time_off)
    }

    /// Removes time off.
    ///
    /// # Errors
    /// `Forbidden`, `DoctorNotFound`, `TimeOffNotFound`, `Internal`.
    pub async fn remove_time_off(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        id: TimeOffId,
    ) -> Result<(), ScheduleError> {
        self.check_schedule_editor(actor, doctor_id)?;
        self.doctor_profile(actor, doctor_id).await?;
        let now = self.clock.now();
        if self.schedules.remove_time_off(doctor_id, id, now).await? {
            Ok(())
        } else {
            Err(ScheduleError::TimeOffNotFound)
        }
    }

    /// The doctor's free slots starting in `[from, to)` and not before now, in order, with the
    /// appointment length they were cut to (read with the schedule, so the two agree).
    ///
    /// # Errors
    /// `Invalid` (field `to`: not after `from`, or more than [`MAX_SLOT_RANGE`] after it),
    /// `DoctorNotFound`, `Internal`.
    pub async fn free_slots(
        &self,
        actor: &Actor,
        doctor_id: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<FreeSlots, ScheduleError> {
        check_slot_range(from, to)?;
        self.doctor_profile(actor, doctor_id).await?;
        let (read_from, read_to) = (from - WINDOW_MARGIN, to + WINDOW_MARGIN);
        let schedule = self
            .schedules
            .schedule(doctor_id, read_from, read_to)
            .await?;
        let busy = self
            .appointments
            .busy(doctor_id, read_from, read_to)
            .await?;
        let now = self.clock.now();
        Ok(FreeSlots {
            appointment_minutes: schedule.appointment_minutes,
            slots: free_slots(&schedule, &busy, self.clinic_time_zone(), from, to, now),
        })
    }
}

/// `to` after `from`, by at most [`MAX_SLOT_RANGE`].
fn check_slot_range(from: Timestamp, to: Timestamp) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if to <= from {
        errors.add("to", "must be after from");
    } else if to.duration_since(from) > MAX_SLOT_RANGE {
        errors.add(
            "to",
            format!(
                "must be at most {} days after from",
                MAX_SLOT_RANGE.as_hours() / 24
            ),
        );
    }
    errors.into_result()
}

#[cfg(test)]
mod tests;
