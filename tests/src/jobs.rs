//! The job queue from outside: jobs put straight into a test server's database (as another
//! instance's change would), and their progress read through the administrators' API.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use uuid::Uuid;

use carehub_domain::jobs::{NewJob, Task};

use crate::TestApp;

/// A probe job, due now, that holds each attempt for `hold_ms` and fails its first
/// `fail_attempts`.
pub fn probe(hold_ms: u32, fail_attempts: u32) -> NewJob {
    NewJob::new(
        Task::Probe {
            hold_ms,
            fail_attempts,
        },
        Timestamp::now(),
    )
}

impl TestApp {
    /// Stores jobs in this server's database, through the queue's own port.
    ///
    /// # Panics
    /// When the database refuses them.
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Vec<Uuid> {
        let database = carehub_web::startup::connect(&self.settings)
            .await
            .expect("the database");
        let added = database
            .repositories()
            .jobs
            .enqueue(jobs, Timestamp::now())
            .await
            .expect("the jobs are stored");
        database.close().await;
        added.iter().map(|id| *id.as_uuid()).collect()
    }

    /// The job as administrators see it.
    ///
    /// # Panics
    /// When it is not listed.
    pub async fn job(&self, admin_token: &str, id: Uuid) -> Value {
        let jobs = self
            .all_pages("/api/v1/admin/jobs", admin_token, "", 100)
            .await;
        jobs.into_iter()
            .find(|job| job["id"] == id.to_string())
            .unwrap_or_else(|| panic!("job {id} is listed"))
    }

    /// Waits (up to `within`) until the job is in `state`, and returns it.
    ///
    /// # Panics
    /// When it is not in time.
    pub async fn wait_for_job(
        &self,
        admin_token: &str,
        id: Uuid,
        state: &str,
        within: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let job = self.job(admin_token, id).await;
            if job["state"] == state {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} is not {state} in time: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
