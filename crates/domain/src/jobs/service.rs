//! The queue as administrators see it: jobs listed and retried.

use std::sync::Arc;

use crate::access::{AccessError, Action, Actor, Relationship};
use crate::kernel::{Clock, Page, PageRequest, RepositoryError};

use super::{Job, JobCount, JobFilter, JobId, JobQueue, JobState, RetryJobError};

/// Why an administration of the queue failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("no such job")]
    NotFound,
    #[error("a {0} job is not retried; only failed and dead jobs are")]
    NotRetryable(JobState),
    #[error("another job with the same unique key is pending")]
    Duplicate,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<RetryJobError> for JobError {
    fn from(error: RetryJobError) -> Self {
        match error {
            RetryJobError::NotFound => JobError::NotFound,
            RetryJobError::NotRetryable(state) => JobError::NotRetryable(state),
            RetryJobError::Duplicate => JobError::Duplicate,
            RetryJobError::Repository(e) => JobError::Repository(e),
        }
    }
}

/// Lists and retries jobs, for those the policy lets run the clinic's machinery.
#[derive(Clone)]
pub struct JobService {
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for JobService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobService").finish_non_exhaustive()
    }
}

impl JobService {
    pub fn new(queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self {
        Self { queue, clock }
    }

    /// Refuses callers who may not manage jobs, before anything else is read.
    ///
    /// # Errors
    /// [`JobError::Access`].
    pub fn check(&self, actor: &Actor) -> Result<(), JobError> {
        actor.permit(Action::ManageJobs, Relationship::None)?;
        Ok(())
    }

    /// Jobs matching `filter`, newest first.
    ///
    /// # Errors
    /// [`JobError::Access`], [`JobError::Repository`].
    pub async fn list(
        &self,
        actor: &Actor,
        filter: JobFilter,
        page: PageRequest<JobId>,
    ) -> Result<Page<Job, JobId>, JobError> {
        self.check(actor)?;
        Ok(self.queue.list(filter, page).await?)
    }

    /// How many jobs there are of each kind in each state, for the metrics (which name no
    /// one, so nothing is refused).
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn counts(&self) -> Result<Vec<JobCount>, RepositoryError> {
        self.queue.counts().await
    }

    /// Makes a failed or dead job due now, its attempts counted afresh.
    ///
    /// # Errors
    /// [`JobError::Access`], [`JobError::NotFound`], [`JobError::NotRetryable`],
    /// [`JobError::Duplicate`], [`JobError::Repository`].
    pub async fn retry(&self, actor: &Actor, id: JobId) -> Result<Job, JobError> {
        self.check(actor)?;
        Ok(self.queue.retry(id, self.clock.now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{MockJobQueue, Task};
    use crate::kernel::{FixedClock, Role, UserId};
    use jiff::Timestamp;

    fn service(queue: MockJobQueue) -> JobService {
        JobService::new(Arc::new(queue), Arc::new(FixedClock(Timestamp::UNIX_EPOCH)))
    }

    fn actor(role: Role) -> Actor {
        Actor::unchecked(UserId::generate(), role)
    }

    #[tokio::test]
    async fn only_administrators_list_or_retry_jobs() {
        for role in [
            Role::Secretary,
            Role::Doctor,
            Role::Laboratory,
            Role::Patient,
        ] {
            // No expectation is set: touching the queue would panic.
            let jobs = service(MockJobQueue::new());
            let listed = jobs
                .list(&actor(role), JobFilter::default(), PageRequest::first(10))
                .await;
            assert!(
                matches!(listed, Err(JobError::Access(AccessError::Forbidden))),
                "{role:?}"
            );
            let retried = jobs.retry(&actor(role), JobId::generate()).await;
            assert!(
                matches!(retried, Err(JobError::Access(AccessError::Forbidden))),
                "{role:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_retry_is_due_at_once_and_says_why_it_was_refused() {
        let id = JobId::generate();
        let mut queue = MockJobQueue::new();
        queue
            .expect_retry()
            .withf(move |asked, at| *asked == id && *at == Timestamp::UNIX_EPOCH)
            .times(1)
            .returning(|_, _| Err(RetryJobError::NotRetryable(JobState::Succeeded)));
        let refused = service(queue).retry(&actor(Role::Admin), id).await;
        assert!(matches!(
            refused,
            Err(JobError::NotRetryable(JobState::Succeeded))
        ));
        assert_eq!(
            Task::Probe {
                hold_ms: 1,
                fail_attempts: 0
            }
            .kind()
            .as_str(),
            "queue.probe"
        );
    }
}
