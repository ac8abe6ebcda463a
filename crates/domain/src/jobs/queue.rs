//! The queue's port: jobs stored, claimed for a lease, finished, listed and retried.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::kernel::{Page, PageRequest, RepositoryError};

use super::{
    AfterFailure, Claim, ClaimedJob, Job, JobCount, JobId, JobKind, JobState, LeaseId, NewJob,
};

/// Which jobs to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<JobKind>,
}

/// Why a job could not be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryJobError {
    #[error("no such job")]
    NotFound,
    /// Only failed and dead jobs are retried; the others run (or ran) anyway.
    #[error("a {0} job is not retried")]
    NotRetryable(JobState),
    /// Another job with its unique key is pending.
    #[error("another job with the same unique key is pending")]
    Duplicate,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// The jobs table. Other ports whose changes cause work take [`NewJob`]s and store them in the
/// change's transaction, with the same rule for unique keys as [`JobQueue::enqueue`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Stores jobs on their own, in one transaction, created at `at`, and returns the ids of
    /// those added: a job whose unique key belongs to a pending job (scheduled, running or
    /// failed) is silently left out.
    ///
    /// # Errors
    /// [`RepositoryError`] (and nothing is stored).
    async fn enqueue(&self, jobs: &[NewJob], at: Timestamp) -> Result<Vec<JobId>, RepositoryError>;

    /// Adds `job` as the `occurrence` of the recurring `schedule`, unless that occurrence was
    /// added before, by any instance, whatever became of its job since. Returns whether it was
    /// added now.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn schedule_occurrence(
        &self,
        schedule: &str,
        occurrence: Timestamp,
        job: &NewJob,
    ) -> Result<bool, RepositoryError>;

    /// Takes up to `claim.limit` jobs that are due at `claim.now` (scheduled or failed, with
    /// `run_at` passed, or running with an expired lease), oldest `run_at` first, and marks
    /// them running for `claim.worker` until `now + lease`, each with a new lease and one more
    /// attempt. Two claims, from any instances, never take the same job while its lease holds.
    /// A running job whose lease expired on its last attempt is marked dead instead.
    ///
    /// # Errors
    /// [`RepositoryError`] (and nothing is claimed).
    async fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedJob>, RepositoryError>;

    /// Extends these leases, those still held, until `until`; returns how many were.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn extend(&self, leases: &[LeaseId], until: Timestamp) -> Result<u64, RepositoryError>;

    /// Marks the job succeeded at `at`, if its lease still holds it; returns whether it did.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn succeed(&self, job: &ClaimedJob, at: Timestamp) -> Result<bool, RepositoryError>;

    /// Records the failure `error` and, if the lease still holds the job, marks it failed
    /// (to run again at the given time) or dead; returns whether it did.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        after: AfterFailure,
        at: Timestamp,
    ) -> Result<bool, RepositoryError>;

    /// Gives the job back unrun (its worker is stopping): scheduled again, due at once, the
    /// attempt not counted. Returns whether the lease still held it.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn release(&self, job: &ClaimedJob) -> Result<bool, RepositoryError>;

    /// # Errors
    /// [`RepositoryError`].
    async fn get(&self, id: JobId) -> Result<Option<Job>, RepositoryError>;

    /// Jobs matching `filter`, newest first; `page.after()` is the id of the last one seen.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        filter: JobFilter,
        page: PageRequest<JobId>,
    ) -> Result<Page<Job, JobId>, RepositoryError>;

    /// Makes a failed or dead job due at `at`, with its attempts counted afresh, and returns
    /// it.
    ///
    /// # Errors
    /// [`RetryJobError::NotFound`], [`RetryJobError::NotRetryable`] for any other state,
    /// [`RetryJobError::Duplicate`] when another job with its unique key is pending,
    /// [`RetryJobError::Repository`].
    async fn retry(&self, id: JobId, at: Timestamp) -> Result<Job, RetryJobError>;

    /// How many jobs there are of each kind in each state (pairs with none left out).
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn counts(&self) -> Result<Vec<JobCount>, RepositoryError>;

    /// Deletes succeeded jobs that finished before `before`, and the record of recurring
    /// occurrences before it; returns how many jobs were deleted.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn purge_finished(&self, before: Timestamp) -> Result<u64, RepositoryError>;
}
