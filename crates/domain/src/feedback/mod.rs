//! Feedback: after a completed appointment its patient rates it once, 1 to 5, with an optional
//! comment, within 30 days. A doctor reads their own ratings and comments, never who wrote
//! them; administrators read everyone's and may hide a comment, with a reason.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::audit::AuditEvent;
use crate::identity::UserId;
use crate::kernel::{AppointmentId, PatientId, RepositoryError, Text};

mod service;
#[cfg(test)]
mod tests;

pub use service::*;

/// The longest comment.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// The longest reason for hiding a comment.
pub const MAX_HIDE_REASON_CHARS: usize = 500;
/// How long after the appointment was completed its patient may rate it.
pub const FEEDBACK_WINDOW: SignedDuration = SignedDuration::from_hours(30 * 24);

/// A rating, 1 (poor) to 5 (excellent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rating(u8);

impl Rating {
    /// # Errors
    /// When `raw` is not 1 to 5.
    pub fn parse(raw: i64) -> Result<Self, &'static str> {
        match u8::try_from(raw) {
            Ok(value @ 1..=5) => Ok(Self(value)),
            _ => Err("must be a whole number from 1 to 5"),
        }
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

/// A comment an administrator hid, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hidden {
    pub reason: Text,
    pub by: UserId,
    pub at: Timestamp,
}

/// A patient's feedback on one appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub appointment_id: AppointmentId,
    pub doctor_id: UserId,
    pub patient_id: PatientId,
    pub rating: Rating,
    pub comment: Option<Text>,
    pub created_at: Timestamp,
    pub hidden: Option<Hidden>,
}

/// A doctor's feedback: the average and count of every rating, and the ratings with their
/// comments, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct DoctorFeedback {
    pub doctor_id: UserId,
    /// `None` while there is none.
    pub average: Option<f64>,
    pub count: u32,
    pub items: Vec<Feedback>,
}

impl DoctorFeedback {
    /// The summary of `items`, all of one doctor's feedback.
    pub fn of(doctor_id: UserId, items: Vec<Feedback>) -> Self {
        let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let sum: u32 = items.iter().map(|f| u32::from(f.rating.value())).sum();
        let average = (count > 0).then(|| f64::from(sum) / f64::from(count));
        Self {
            doctor_id,
            average,
            count,
            items,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateFeedbackError {
    /// The appointment was rated already.
    #[error("the appointment was rated already")]
    Duplicate,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores feedback.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait FeedbackRepository: Send + Sync {
    /// Stores feedback with its audit event; one per appointment.
    ///
    /// # Errors
    /// [`CreateFeedbackError::Duplicate`], `Repository`.
    async fn create(
        &self,
        feedback: &Feedback,
        audit: &AuditEvent,
    ) -> Result<(), CreateFeedbackError>;

    /// The feedback on one appointment.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find(&self, appointment: AppointmentId) -> Result<Option<Feedback>, RepositoryError>;

    /// Every piece of feedback on the doctor's appointments, newest first.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn for_doctor(&self, doctor: UserId) -> Result<Vec<Feedback>, RepositoryError>;

    /// Hides the comment of the feedback on `appointment` with its audit event.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn hide(
        &self,
        appointment: AppointmentId,
        hidden: &Hidden,
        audit: &AuditEvent,
    ) -> Result<(), RepositoryError>;
}
