//! The workers of one instance: a loop that claims as many due jobs as it has free workers,
//! runs each in its own task, renews the leases of those it holds, and on shutdown stops
//! claiming, lets running jobs finish for a while, then gives back what is left.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use jiff::SignedDuration;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use carehub_domain::jobs::{Claim, ClaimedJob, JobId, JobQueue, RetryPolicy};
use carehub_domain::kernel::Clock;

use super::recurring::{Recurring, SCHEDULING_INTERVAL};
use super::tasks::Tasks;
use crate::telemetry::Metrics;

/// How the workers run.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Jobs run at once on this instance; 0 runs none.
    pub workers: usize,
    /// How often the queue is asked for due jobs while it has none.
    pub poll: Duration,
    /// How long a claimed job is held; renewed every third of it while it runs.
    pub lease: SignedDuration,
    pub retry: RetryPolicy,
    /// How long shutdown waits for running jobs before giving them back.
    pub drain: Duration,
    /// Names this instance in the jobs it holds.
    pub instance: String,
}

/// The jobs this instance holds, by id, for renewing their leases and giving them back.
type Held = Arc<Mutex<HashMap<JobId, ClaimedJob>>>;

/// The workers, before they start.
pub struct Runner {
    pub queue: Arc<dyn JobQueue>,
    pub tasks: Tasks,
    pub recurring: Recurring,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub config: JobsConfig,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Running workers: stop them with [`RunnerHandle::stop_claiming`] and
/// [`RunnerHandle::shutdown`].
#[derive(Debug)]
pub struct RunnerHandle {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunnerHandle {
    /// Workers that never start (`CAREHUB_JOB_WORKERS=0`).
    pub fn none() -> Self {
        Self {
            stop: watch::channel(true).0,
            task: None,
        }
    }

    /// A way to tell the workers to stop claiming, from elsewhere (the signal handler).
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }

    /// Stops claiming, waits for running jobs (up to the drain time), gives back the rest,
    /// and returns when the workers are gone.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "the job workers ended abnormally");
        }
    }
}

impl Runner {
    /// Starts the workers, unless there are none.
    pub fn spawn(self) -> RunnerHandle {
        if self.config.workers == 0 {
            tracing::info!("job workers off on this instance");
            return RunnerHandle::none();
        }
        tracing::info!(
            workers = self.config.workers,
            instance = %self.config.instance,
            "job workers started"
        );
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stopped));
        RunnerHandle {
            stop,
            task: Some(task),
        }
    }

    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let held: Held = Arc::default();
        let slots = Arc::new(Semaphore::new(this.config.workers));
        let mut running: JoinSet<()> = JoinSet::new();
        let renewals = tokio::spawn(Arc::clone(&this).renew_leases(Arc::clone(&held)));
        let scheduler = tokio::spawn(Arc::clone(&this).schedule_recurring());
        loop {
            if *stopped.borrow() {
                break;
            }
            let free = slots.available_permits();
            let mut claimed_all = false;
            if free > 0 {
                match this.claim(free).await {
                    Ok(jobs) => {
                        claimed_all = !jobs.is_empty() && jobs.len() == free;
                        for job in jobs {
                            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                                break;
                            };
                            lock(&held).insert(job.job.id, job.clone());
                            let this = Arc::clone(&this);
                            let held = Arc::clone(&held);
                            running.spawn(async move {
                                this.run_one(&job).await;
                                lock(&held).remove(&job.job.id);
                                drop(slot);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot claim jobs"),
                }
            }
            if claimed_all {
                // More may be due: claim again as soon as a worker is free.
                tokio::select! {
                    _ = stopped.changed() => {}
                    Some(_) = running.join_next() => {}
                }
                continue;
            }
            tokio::select! {
                _ = stopped.changed() => {}
                () = tokio::time::sleep(this.config.poll) => {}
                Some(_) = running.join_next(), if free == 0 => {}
            }
            while running.try_join_next().is_some() {}
        }
        scheduler.abort();
        this.drain(&mut running, &held).await;
        renewals.abort();
        tracing::info!("job workers stopped");
    }

    async fn claim(
        &self,
        free: usize,
    ) -> Result<Vec<ClaimedJob>, carehub_domain::kernel::RepositoryError> {
        self.queue
            .claim(&Claim {
                worker: self.config.instance.clone(),
                now: self.clock.now(),
                lease: self.config.lease,
                limit: u32::try_from(free).unwrap_or(u32::MAX),
            })
            .await
    }

    /// Runs one claimed job and records its outcome on the job and in the metrics.
    async fn run_one(&self, held: &ClaimedJob) {
        let kind = held.job.kind();
        let started = Instant::now();
        let outcome = AssertUnwindSafe(self.tasks.run(&held.job))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the task panicked")));
        let elapsed = started.elapsed();
        let now = self.clock.now();
        let (label, recorded) = match outcome {
            Ok(()) => ("succeeded", self.queue.succeed(held, now).await),
            Err(error) => {
                let after = self.config.retry.after_failure(
                    held.job.attempts,
                    held.job.max_attempts,
                    now,
                    jitter(),
                );
                tracing::warn!(
                    job = %held.job.id,
                    kind = %kind,
                    attempt = held.job.attempts,
                    error = format!("{error:#}"),
                    "job failed"
                );
                (
                    "failed",
                    self.queue
                        .fail(held, &format!("{error:#}"), after, now)
                        .await,
                )
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                job = %held.job.id,
                kind = %kind,
                "the job's lease expired while it ran; another worker may have run it again"
            ),
            Err(e) => {
                tracing::error!(job = %held.job.id, error = %e, "cannot record a job's outcome");
            }
        }
        self.metrics.record_job(kind.as_str(), label, elapsed);
    }

    /// Renews the leases of the jobs this instance holds, every third of a lease.
    async fn renew_leases(self: Arc<Self>, held: Held) {
        let every = self
            .config
            .lease
            .unsigned_abs()
            .checked_div(3)
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(100));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticks.tick().await;
            let leases: Vec<_> = lock(&held).values().map(|job| job.lease).collect();
            if leases.is_empty() {
                continue;
            }
            let until = self.clock.now() + self.config.lease;
            if let Err(e) = self.queue.extend(&leases, until).await {
                tracing::warn!(error = %e, "cannot renew job leases");
            }
        }
    }

    /// Adds the next occurrence of each recurring schedule, now and then.
    async fn schedule_recurring(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(SCHEDULING_INTERVAL);
        loop {
            ticks.tick().await;
            self.recurring.schedule_next().await;
        }
    }

    /// Waits for running jobs up to the drain time, then stops them and gives them back.
    async fn drain(&self, running: &mut JoinSet<()>, held: &Held) {
        let waited = tokio::time::timeout(self.config.drain, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if waited.is_ok() {
            return;
        }
        running.abort_all();
        while running.join_next().await.is_some() {}
        let left: Vec<ClaimedJob> = lock(held).drain().map(|(_, job)| job).collect();
        for job in left {
            match self.queue.release(&job).await {
                Ok(_) => {
                    tracing::info!(job = %job.job.id, kind = %job.job.kind(), "job given back unfinished");
                }
                Err(e) => {
                    tracing::warn!(job = %job.job.id, error = %e, "cannot give a job back; its lease will expire");
                }
            }
        }
    }
}

fn lock(held: &Held) -> std::sync::MutexGuard<'_, HashMap<JobId, ClaimedJob>> {
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A uniform number in `[0, 1)` for the retry's jitter.
fn jitter() -> f64 {
    getrandom::u32().map_or(0.5, |n| f64::from(n) / (f64::from(u32::MAX) + 1.0))
}
