//! The port that counts and sums what a report is made of.

use async_trait::async_trait;
use jiff::Timestamp;

use super::{Activity, DoctorTime};
use crate::kernel::RepositoryError;

/// Counts and sums over `[from, to)`, in storage. Each method reads in one transaction, so its
/// figures agree with each other; nothing is written. Nothing returned names a patient.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReportRepository: Send + Sync {
    /// What happened in `[from, to)`:
    /// - patients whose `created_at` is in it;
    /// - appointments whose start is in it, by status;
    /// - referrals whose `created_at` is in it, by status, and of those accepted since (with
    ///   an acceptance time), how many, and the median and 90th percentile of the seconds from
    ///   `created_at` to acceptance, interpolated between the nearest two as PostgreSQL's
    ///   `percentile_cont` does (`None` when there are none);
    /// - notifications whose `created_at` is in it, and how many of them are read;
    /// - notification e-mail jobs (`email.notification`) added in it that succeeded, and those
    ///   that failed or are dead.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn activity(&self, from: Timestamp, to: Timestamp) -> Result<Activity, RepositoryError>;

    /// Every active doctor, by id, with their weekly rules (sorted as stored), their time off
    /// overlapping `[from, to)`, and the time their appointments in
    /// [`TIME_HOLDING_STATUSES`](super::TIME_HOLDING_STATUSES) spend inside `[from, to)`
    /// (each clipped to it), summed.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn doctor_time(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<DoctorTime>, RepositoryError>;
}
