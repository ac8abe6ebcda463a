//! Prescriptions: what a doctor of the care team prescribes, checked against the patient's
//! recorded allergies before it is written, read by the care team and by the patient, and
//! never edited: a change is a new prescription that replaces the old one.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::audit::AuditEvent;
use crate::identity::FullName;
use crate::jobs::{JobChanges, NewJob, Task};
use crate::kernel::{Page, PageRequest, PatientId, PrescriptionId, RepositoryError};
use crate::notifications::{NewNotification, Notification};
use crate::patients::PatientSummary;

mod allergy;
mod prescription;
mod service;
#[cfg(test)]
mod tests;

pub use allergy::*;
pub use prescription::*;
pub use service::*;

/// A prescription with what every reader of it is shown beside it: who the patient is (record
/// number, name, date of birth, sex) and who prescribed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrescriptionView {
    pub prescription: Prescription,
    pub patient: PatientSummary,
    /// `None` only if the account no longer exists.
    pub prescribed_by_name: Option<FullName>,
}

/// What one change of prescriptions writes, in one transaction: a new prescription, one that
/// ends (only if it is still active), their audit events, notifications and jobs.
#[derive(Debug, Clone, Copy)]
pub struct PrescriptionChange<'a> {
    pub written: Option<&'a Prescription>,
    /// A prescription that was active and now is not: completed, stopped, replaced, expired.
    pub ended: Option<&'a Prescription>,
    /// Empty for a change the clinic's own jobs make (an expiry).
    pub audit: &'a [AuditEvent],
    pub notifications: &'a [NewNotification],
    pub jobs: &'a JobChanges,
    pub at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum PrescriptionChangeError {
    /// The prescription that ends is gone or no longer active: someone else ended it meanwhile
    /// (409). Nothing is written.
    #[error("the prescription was changed meanwhile")]
    Moved,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores prescriptions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PrescriptionRepository: Send + Sync {
    /// Writes a change; returns its notifications as stored.
    ///
    /// # Errors
    /// [`PrescriptionChangeError::Moved`], `Repository`.
    async fn save<'a>(
        &self,
        change: PrescriptionChange<'a>,
    ) -> Result<Vec<Notification>, PrescriptionChangeError>;

    /// One prescription, if there is one.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find(&self, id: PrescriptionId) -> Result<Option<PrescriptionView>, RepositoryError>;

    /// The patient's prescriptions, newest first, in keyset pages by id; only those in
    /// `status` when it is given.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        patient_id: PatientId,
        status: Option<PrescriptionStatus>,
        page: PageRequest<PrescriptionId>,
    ) -> Result<Page<PrescriptionView, PrescriptionId>, RepositoryError>;
}

/// The key of a prescription's expiry job: ending the prescription cancels it.
pub(crate) fn expiry_key(id: PrescriptionId) -> String {
    format!("prescription.expire:{id}")
}

/// The job that marks the prescription expired once its last day is over; `None` when it is
/// open-ended.
pub fn expiry_job(prescription: &Prescription) -> Option<NewJob> {
    let at = prescription.expires_at()?;
    Some(
        NewJob::new(
            Task::PrescriptionExpiry {
                prescription: prescription.id,
            },
            at,
        )
        .unique(expiry_key(prescription.id)),
    )
}
