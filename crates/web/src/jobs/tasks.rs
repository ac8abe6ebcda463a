//! What each kind of job does, by calling the domain's services.

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;

use carehub_domain::identity::IdentityService;
use carehub_domain::jobs::{Job, JobQueue, Task};
use carehub_domain::kernel::Clock;

/// How long succeeded jobs are kept for administrators to read.
pub const SUCCEEDED_JOB_RETENTION: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Runs tasks. A task fails with an error whose message is stored on the job (so it names
/// what went wrong, never a patient).
#[derive(Clone)]
pub struct Tasks {
    identity: IdentityService,
    queue: Arc<dyn JobQueue>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks").finish_non_exhaustive()
    }
}

impl Tasks {
    pub fn new(identity: IdentityService, queue: Arc<dyn JobQueue>, clock: Arc<dyn Clock>) -> Self {
        Self {
            identity,
            queue,
            clock,
        }
    }

    /// Runs one attempt of a job's task to its end.
    ///
    /// # Errors
    /// Whatever stopped it; the job is retried or dies.
    pub async fn run(&self, job: &Job) -> anyhow::Result<()> {
        match &job.task {
            Task::PurgeExpired => {
                let credentials = self.identity.purge_expired().await?;
                let before = self.clock.now() - SUCCEEDED_JOB_RETENTION;
                let jobs = self.queue.purge_finished(before).await?;
                if credentials + jobs > 0 {
                    tracing::info!(credentials, jobs, "expired credentials and old jobs purged");
                }
                Ok(())
            }
            Task::Probe {
                hold_ms,
                fail_attempts,
            } => {
                tokio::time::sleep(Duration::from_millis(u64::from(*hold_ms))).await;
                if job.attempts <= *fail_attempts {
                    anyhow::bail!(
                        "probe attempt {} of {fail_attempts} set to fail",
                        job.attempts
                    );
                }
                Ok(())
            }
        }
    }
}
