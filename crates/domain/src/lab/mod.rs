//! The laboratory: doctors order tests from a catalogue, the laboratory schedules and collects
//! them, records results (numbers flagged against reference ranges, findings, files), and the
//! results reach the ordering doctor at once and the patient once released. ECG recordings are
//! analysed automatically. Every read and change is audited.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::audit::AuditEvent;
use crate::identity::FullName;
use crate::jobs::{JobChanges, NewJob};
use crate::kernel::{LabFileId, LabOrderId, Page, PageRequest, RepositoryError, UserId};
use crate::notifications::{NewNotification, Notification};
use crate::patients::{PatientId, PatientSummary};

mod catalogue;
mod ecg;
mod files;
mod order;
mod service;
mod tasks;
#[cfg(test)]
mod tests;

pub use catalogue::*;
pub use ecg::*;
pub use files::*;
pub use order::*;
pub use service::*;
pub use tasks::*;

/// An order with what every reader of it is shown beside it: who the patient is (record
/// number, name, date of birth, sex, and nothing else of the record) and who ordered it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabOrderListing {
    pub order: LabOrder,
    pub patient: PatientSummary,
    /// `None` only if the account no longer exists.
    pub ordered_by_name: Option<FullName>,
}

/// An order with its files and its ECG analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct LabOrderDetail {
    pub listing: LabOrderListing,
    pub files: Vec<LabFile>,
    pub ecg: Option<EcgRecord>,
}

/// Which orders to list; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabOrderQuery {
    pub patient_id: Option<PatientId>,
    pub ordered_by: Option<UserId>,
    /// Any of these statuses; empty for every status.
    pub statuses: Vec<LabOrderStatus>,
}

/// A change of an order, written with its audit event, notifications and jobs in one
/// transaction, provided the order is still in status `from`.
#[derive(Debug, Clone, Copy)]
pub struct LabOrderChange<'a> {
    pub order: &'a LabOrder,
    pub from: LabOrderStatus,
    /// `None` for a change the clinic's own jobs make (the automatic release).
    pub audit: Option<&'a AuditEvent>,
    pub notifications: &'a [NewNotification],
    pub jobs: &'a JobChanges,
}

#[derive(Debug, thiserror::Error)]
pub enum LabChangeError {
    /// The order is gone or no longer in the status the change was made from: someone else
    /// changed it meanwhile (409).
    #[error("the order was changed meanwhile")]
    Moved,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

#[derive(Debug, thiserror::Error)]
pub enum AddTestError {
    #[error("a test with this code exists")]
    Duplicate,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores the catalogue, the orders, their files' descriptions and ECG analyses.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LabRepository: Send + Sync {
    /// Every test of the catalogue, by code.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn catalogue(&self) -> Result<Vec<LabTest>, RepositoryError>;

    /// Adds a test to the catalogue.
    ///
    /// # Errors
    /// [`AddTestError::Duplicate`] when its code is taken.
    async fn add_test(&self, test: &LabTest) -> Result<(), AddTestError>;

    /// Stores a new order with its audit event, in one transaction.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn create_order(
        &self,
        order: &LabOrder,
        audit: &AuditEvent,
    ) -> Result<(), RepositoryError>;

    /// The order with its files and ECG analysis, if there is one.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find_order(&self, id: LabOrderId) -> Result<Option<LabOrderDetail>, RepositoryError>;

    /// Orders matching `query`, newest first, in keyset pages by id.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list_orders(
        &self,
        query: &LabOrderQuery,
        page: PageRequest<LabOrderId>,
    ) -> Result<Page<LabOrderListing, LabOrderId>, RepositoryError>;

    /// Writes a change of status (and of results) if the order is still in `change.from`;
    /// returns the notifications as stored.
    ///
    /// # Errors
    /// [`LabChangeError::Moved`], `Repository`.
    async fn change_order<'a>(
        &self,
        change: LabOrderChange<'a>,
    ) -> Result<Vec<Notification>, LabChangeError>;

    /// Adds files' descriptions (their bytes are already in the file store) with the audit
    /// event and jobs, if the order is still in status `from`.
    ///
    /// # Errors
    /// [`LabChangeError::Moved`], `Repository`.
    async fn add_files(
        &self,
        order: LabOrderId,
        from: LabOrderStatus,
        files: &[LabFile],
        audit: &AuditEvent,
        jobs: &[NewJob],
    ) -> Result<(), LabChangeError>;

    /// One file of the order.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn find_file(
        &self,
        order: LabOrderId,
        file: LabFileId,
    ) -> Result<Option<LabFile>, RepositoryError>;

    /// Stores an ECG analysis as the order's (replacing an earlier one) with its notifications;
    /// returns them as stored.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn save_ecg(
        &self,
        record: &EcgRecord,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, RepositoryError>;
}

/// The laboratory's clocks: when results nobody released are released to the patient, and
/// how long a critical result may stay unread by the ordering doctor before every other doctor
/// on the care team is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabTimings {
    pub release_after: SignedDuration,
    pub escalate_critical_after: SignedDuration,
}

impl Default for LabTimings {
    fn default() -> Self {
        Self {
            release_after: SignedDuration::from_hours(72),
            escalate_critical_after: SignedDuration::from_mins(15),
        }
    }
}

impl LabTimings {
    /// The job that releases results recorded at `resulted_at`.
    pub fn release_job(&self, order: LabOrderId, resulted_at: Timestamp) -> Option<NewJob> {
        let at = resulted_at.checked_add(self.release_after).ok()?;
        Some(
            NewJob::new(crate::jobs::Task::LabAutoRelease { order }, at)
                .unique(auto_release_key(order)),
        )
    }

    /// The job that escalates a critical result recorded at `resulted_at`.
    pub fn escalation_job(&self, order: LabOrderId, resulted_at: Timestamp) -> Option<NewJob> {
        let at = resulted_at.checked_add(self.escalate_critical_after).ok()?;
        Some(
            NewJob::new(crate::jobs::Task::LabCriticalEscalation { order }, at)
                .unique(format!("lab.critical_escalation:{order}")),
        )
    }
}

pub(crate) fn auto_release_key(order: LabOrderId) -> String {
    format!("lab.auto_release:{order}")
}
