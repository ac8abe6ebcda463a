//! Appointment reminders: jobs enqueued with each booking at the configured lead times (24 and
//! 2 hours before, by default), moved with the appointment and cancelled with it. When one
//! fires, it reminds the patient's account, and the doctor if this is the first appointment
//! of their day; it does nothing for an appointment that is no longer booked, has moved or has
//! begun. Each reminder is stored once, however often its job runs.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::jobs::{JobChanges, NewJob, Task};
use crate::kernel::{AppointmentId, Clock, PageRequest, RepositoryError};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher,
    NotificationRepository, Recipient, publish_committed,
};
use crate::patients::PatientRepository;

use super::{Appointment, AppointmentFilter, AppointmentRepository, AppointmentStatus};

/// The lead times used when none are configured: a day and two hours before.
pub const DEFAULT_REMINDER_LEADS: [SignedDuration; 2] = [
    SignedDuration::from_hours(24),
    SignedDuration::from_hours(2),
];

/// The start of the unique keys of an appointment's reminder jobs.
pub fn reminder_key_prefix(id: AppointmentId) -> String {
    format!("appointment.reminder:{id}:")
}

fn reminder_key(id: AppointmentId, start: Timestamp, lead: SignedDuration) -> String {
    format!(
        "{}{}:{}",
        reminder_key_prefix(id),
        start.as_second(),
        lead.as_secs()
    )
}

/// The reminder jobs of `appointment` as booked or moved at `now`: one per lead time that is
/// still ahead. Its earlier reminders are cancelled in the same change.
pub fn reminder_jobs(
    appointment: &Appointment,
    leads: &[SignedDuration],
    now: Timestamp,
) -> JobChanges {
    let add = leads
        .iter()
        .filter_map(|lead| {
            let at = appointment.start.checked_sub(*lead).ok()?;
            (at > now).then(|| {
                NewJob::new(
                    Task::AppointmentReminder {
                        appointment: appointment.id,
                        start_at: appointment.start,
                        lead_secs: lead.as_secs(),
                    },
                    at,
                )
                .unique(reminder_key(appointment.id, appointment.start, *lead))
            })
        })
        .collect();
    JobChanges {
        cancel: vec![reminder_key_prefix(appointment.id)],
        add,
    }
}

/// The change to the queue when an appointment stops being booked: its reminders go.
pub fn cancel_reminders(id: AppointmentId) -> JobChanges {
    JobChanges {
        cancel: vec![reminder_key_prefix(id)],
        add: Vec::new(),
    }
}

/// What a reminder job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderOutcome {
    /// This many people were reminded (0 when the patient has no account and the doctor has an
    /// earlier appointment that day).
    Sent(usize),
    /// A run of this job had already stored it.
    AlreadySent,
    /// Nothing to remind of: the appointment is gone, no longer booked, moved, or begun.
    Moot(&'static str),
}

/// Sends reminders when their jobs run.
#[derive(Clone)]
pub struct ReminderService {
    appointments: Arc<dyn AppointmentRepository>,
    patients: Arc<dyn PatientRepository>,
    notifications: Arc<dyn NotificationRepository>,
    publisher: Arc<dyn NotificationPublisher>,
    clock: Arc<dyn Clock>,
    time_zone: TimeZone,
}

impl std::fmt::Debug for ReminderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReminderService").finish_non_exhaustive()
    }
}

impl ReminderService {
    pub fn new(
        appointments: Arc<dyn AppointmentRepository>,
        patients: Arc<dyn PatientRepository>,
        notifications: Arc<dyn NotificationRepository>,
        publisher: Arc<dyn NotificationPublisher>,
        clock: Arc<dyn Clock>,
        time_zone: TimeZone,
    ) -> Self {
        Self {
            appointments,
            patients,
            notifications,
            publisher,
            clock,
            time_zone,
        }
    }

    /// Reminds of appointment `id`, which was to start at `start_at`, `lead` before.
    ///
    /// # Errors
    /// [`RepositoryError`]: the job retries.
    pub async fn remind(
        &self,
        id: AppointmentId,
        start_at: Timestamp,
        lead: SignedDuration,
    ) -> Result<ReminderOutcome, RepositoryError> {
        let Some(appointment) = self.appointments.get(id).await? else {
            return Ok(ReminderOutcome::Moot("the appointment is gone"));
        };
        if appointment.status != AppointmentStatus::Booked {
            return Ok(ReminderOutcome::Moot("the appointment is no longer booked"));
        }
        if appointment.start != start_at {
            return Ok(ReminderOutcome::Moot("the appointment moved"));
        }
        let now = self.clock.now();
        if appointment.start <= now {
            return Ok(ReminderOutcome::Moot("the appointment has begun"));
        }
        let when = appointment
            .start
            .to_zoned(self.time_zone.clone())
            .strftime("%a %-d %b %Y at %H:%M")
            .to_string();
        let doctor = appointment.doctor_name.as_ref().map_or_else(
            || "your doctor".to_owned(),
            |n| format!("Dr {}", n.as_str()),
        );
        let data = |title: String| NotificationData {
            title,
            patient_id: Some(*appointment.patient_id.as_uuid()),
            appointment_id: Some(*appointment.id.as_uuid()),
            ..NotificationData::default()
        };
        let mut reminders = Vec::new();
        let account = self
            .patients
            .find(appointment.patient_id)
            .await?
            .and_then(|p| p.details.user_id);
        if let Some(account) = account {
            reminders.push(NewNotification {
                recipient: Recipient::User(account),
                kind: NotificationKind::AppointmentReminder,
                data: data(format!(
                    "Reminder: your appointment with {doctor} on {when}"
                )),
            });
        }
        if self.is_first_of_the_day(&appointment).await? {
            reminders.push(NewNotification {
                recipient: Recipient::User(appointment.doctor_id),
                kind: NotificationKind::AppointmentReminder,
                data: data(format!(
                    "Reminder: your first appointment of the day is on {when}"
                )),
            });
        }
        if reminders.is_empty() {
            return Ok(ReminderOutcome::Sent(0));
        }
        let key = reminder_key(appointment.id, start_at, lead);
        match self
            .notifications
            .append_once(&key, &reminders, now)
            .await?
        {
            Some(stored) => {
                publish_committed(self.publisher.as_ref(), &stored).await;
                Ok(ReminderOutcome::Sent(stored.len()))
            }
            None => Ok(ReminderOutcome::AlreadySent),
        }
    }

    /// Whether no booked or ongoing appointment of the doctor starts earlier on the same day
    /// (in the clinic's time zone).
    async fn is_first_of_the_day(
        &self,
        appointment: &Appointment,
    ) -> Result<bool, RepositoryError> {
        let day = appointment.start.to_zoned(self.time_zone.clone());
        let Ok(midnight) = day.start_of_day() else {
            return Ok(true);
        };
        let filter = AppointmentFilter {
            doctor_id: Some(appointment.doctor_id),
            from: Some(midnight.timestamp()),
            to: Some(appointment.start),
            ..AppointmentFilter::default()
        };
        let earlier = self
            .appointments
            .list(&filter, PageRequest::first(100))
            .await?;
        Ok(!earlier.items.iter().any(|other| {
            other.id != appointment.id
                && other.start < appointment.start
                && matches!(
                    other.status,
                    AppointmentStatus::Booked
                        | AppointmentStatus::CheckedIn
                        | AppointmentStatus::InProgress
                )
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::identity::FullName;
    use crate::kernel::{FixedClock, Page, PatientId, Text, UserId};
    use crate::notifications::{
        MockNotificationPublisher, MockNotificationRepository, Notification,
    };
    use crate::patients::MockPatientRepository;
    use crate::scheduling::MockAppointmentRepository;
    use crate::test_support::stored_patient;

    const NOW: Timestamp = Timestamp::constant(1_796_000_000, 0);
    const HOUR: SignedDuration = SignedDuration::from_hours(1);

    fn appointment(start: Timestamp, status: AppointmentStatus) -> Appointment {
        Appointment {
            id: AppointmentId::generate(),
            doctor_id: UserId::generate(),
            patient_id: PatientId::generate(),
            start,
            end: start + SignedDuration::from_mins(30),
            reason: Text::line("Follow-up", 500).expect("valid"),
            status,
            cancel_reason: None,
            video: false,
            created_by: UserId::generate(),
            created_at: NOW - HOUR,
            updated_at: NOW - HOUR,
            doctor_name: Some(FullName::parse("Lisa Cuddy").expect("valid")),
            patient_name: Some(FullName::parse("Ann Archer").expect("valid")),
        }
    }

    #[test]
    fn a_booking_gets_one_reminder_per_lead_still_ahead_and_cancels_older_ones() {
        let soon = appointment(NOW + 3 * HOUR, AppointmentStatus::Booked);
        let changes = reminder_jobs(&soon, &DEFAULT_REMINDER_LEADS, NOW);
        assert_eq!(changes.cancel, [reminder_key_prefix(soon.id)]);
        assert_eq!(changes.add.len(), 1, "24 hours before is already past");
        let job = &changes.add[0];
        assert_eq!(job.run_at, NOW + HOUR);
        assert_eq!(
            job.task,
            Task::AppointmentReminder {
                appointment: soon.id,
                start_at: soon.start,
                lead_secs: 7_200,
            }
        );
        assert!(
            job.unique_key
                .as_deref()
                .expect("a key")
                .starts_with(&reminder_key_prefix(soon.id))
        );
        let later = appointment(NOW + 48 * HOUR, AppointmentStatus::Booked);
        assert_eq!(
            reminder_jobs(&later, &DEFAULT_REMINDER_LEADS, NOW)
                .add
                .len(),
            2
        );
        assert!(reminder_jobs(&later, &[], NOW).add.is_empty());
        assert_eq!(
            cancel_reminders(later.id).cancel,
            [reminder_key_prefix(later.id)]
        );
    }

    /// The service, reading `found` (and `earlier` as the doctor's other appointments that
    /// day), with the patient's account `account`; records what it stores.
    fn reminders(
        found: Option<Appointment>,
        earlier: Vec<Appointment>,
        account: Option<UserId>,
    ) -> (ReminderService, Arc<Mutex<Vec<NewNotification>>>) {
        let mut appointments = MockAppointmentRepository::new();
        appointments
            .expect_get()
            .returning(move |_| Ok(found.clone()));
        appointments.expect_list().returning(move |_, _| {
            Ok(Page {
                items: earlier.clone(),
                next: None,
            })
        });
        let mut patients = MockPatientRepository::new();
        patients
            .expect_find()
            .returning(move |_| Ok(Some(stored_patient(account))));
        let asked: Arc<Mutex<Vec<NewNotification>>> = Arc::default();
        let log = Arc::clone(&asked);
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_append_once()
            .returning(move |_, notices, at| {
                log.lock().expect("log").extend(notices.iter().cloned());
                Ok(Some(
                    notices
                        .iter()
                        .map(|notice| Notification {
                            id: 1,
                            recipient: UserId::generate(),
                            kind: notice.kind,
                            created_at: at,
                            read_at: None,
                            data: notice.data.clone(),
                        })
                        .collect(),
                ))
            });
        let mut publisher = MockNotificationPublisher::new();
        publisher.expect_publish().returning(|_| ());
        let service = ReminderService::new(
            Arc::new(appointments),
            Arc::new(patients),
            Arc::new(notifications),
            Arc::new(publisher),
            Arc::new(FixedClock(NOW)),
            TimeZone::UTC,
        );
        (service, asked)
    }

    #[tokio::test]
    async fn the_patient_and_the_doctor_of_the_first_appointment_of_the_day_are_reminded() {
        let booked = appointment(NOW + 2 * HOUR, AppointmentStatus::Booked);
        let account = UserId::generate();
        let (service, asked) = reminders(Some(booked.clone()), vec![booked.clone()], Some(account));
        let outcome = service
            .remind(booked.id, booked.start, 2 * HOUR)
            .await
            .expect("sent");
        assert_eq!(outcome, ReminderOutcome::Sent(2));
        let asked = asked.lock().expect("log");
        assert_eq!(asked[0].recipient, Recipient::User(account));
        assert_eq!(asked[1].recipient, Recipient::User(booked.doctor_id));
        for notice in asked.iter() {
            assert_eq!(notice.kind, NotificationKind::AppointmentReminder);
            assert!(!notice.data.title.contains("Ann"), "{}", notice.data.title);
        }
        assert!(asked[0].data.title.contains("Dr Lisa Cuddy"));
    }

    #[tokio::test]
    async fn a_doctor_with_an_earlier_appointment_that_day_is_not_reminded_of_a_later_one() {
        let booked = appointment(NOW + 2 * HOUR, AppointmentStatus::Booked);
        let mut earlier = appointment(NOW + HOUR, AppointmentStatus::Booked);
        earlier.doctor_id = booked.doctor_id;
        let mut cancelled = appointment(NOW + HOUR / 2, AppointmentStatus::Cancelled);
        cancelled.doctor_id = booked.doctor_id;
        let (service, asked) = reminders(
            Some(booked.clone()),
            vec![cancelled, earlier, booked.clone()],
            None,
        );
        let outcome = service
            .remind(booked.id, booked.start, 2 * HOUR)
            .await
            .expect("no error");
        assert_eq!(outcome, ReminderOutcome::Sent(0));
        assert!(asked.lock().expect("log").is_empty());
    }

    #[tokio::test]
    async fn nothing_is_reminded_of_an_appointment_cancelled_moved_begun_or_gone() {
        let start = NOW + 2 * HOUR;
        let cases = [
            (
                Some(appointment(start, AppointmentStatus::Cancelled)),
                start,
            ),
            (
                Some(appointment(start, AppointmentStatus::CheckedIn)),
                start,
            ),
            (
                Some(appointment(start + HOUR, AppointmentStatus::Booked)),
                start,
            ),
            (
                Some(appointment(NOW - HOUR, AppointmentStatus::Booked)),
                NOW - HOUR,
            ),
            (None, start),
        ];
        for (found, asked_start) in cases {
            let id = found
                .as_ref()
                .map_or_else(AppointmentId::generate, |a| a.id);
            let (service, asked) = reminders(found, Vec::new(), Some(UserId::generate()));
            let outcome = service
                .remind(id, asked_start, 2 * HOUR)
                .await
                .expect("no error");
            assert!(matches!(outcome, ReminderOutcome::Moot(_)), "{outcome:?}");
            assert!(asked.lock().expect("log").is_empty());
        }
    }
}
