//! [`JobQueue`] on both backends, and [`InsertJobs`], which other repositories call to enqueue
//! inside their own transactions.

use std::future::Future;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Executor, FromRow, Pool, Postgres, Sqlite};
use uuid::Uuid;

use carehub_domain::jobs::{
    AfterFailure, Claim, ClaimedJob, Job, JobChanges, JobCount, JobFilter, JobId, JobQueue,
    LeaseId, NewJob, RetryJobError,
};
use carehub_domain::kernel::{Page, PageRequest, RepositoryError, truncate_to_micros};

use super::row::{JobRow, job_columns, split};
use crate::db::backend::{Backend, Constraint, Param, RowsAffected as _, corrupt, storage};
use crate::db::sql_time::DbTime;

/// The jobs table.
#[derive(Debug, Clone)]
pub struct SqlJobQueue<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlJobQueue<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// Only one pending job per unique key.
const UNIQUE_PENDING: Constraint = Constraint {
    name: "jobs_unique_pending_idx",
    sqlite_columns: "jobs.unique_key",
};

/// Inserts a scheduled job unless a pending one has its unique key (or, never in practice,
/// its id): `ON CONFLICT DO NOTHING` without a target covers the partial unique index on both.
const INSERT_JOB: &str = "INSERT INTO jobs \
     (id, kind, args, state, run_at, attempts, max_attempts, unique_key, created_at) \
     VALUES ($1, $2, $3, 'scheduled', $4, 0, $5, $6, $7) ON CONFLICT DO NOTHING";

/// Stores jobs on a connection inside a write transaction, the change's own: every repository
/// whose changes cause work calls this before committing.
pub(crate) trait InsertJobs: Backend {
    /// Inserts each job created at `at` and returns the ids of those added (a job whose
    /// unique key belongs to a pending job is left out).
    fn insert_jobs(
        conn: &mut Self::Connection,
        jobs: &[NewJob],
        at: Timestamp,
    ) -> impl Future<Output = Result<Vec<JobId>, sqlx::Error>> + Send;

    /// Deletes the pending jobs (scheduled or failed, not running) whose unique key starts with
    /// one of `changes.cancel`, then inserts `changes.add` as [`InsertJobs::insert_jobs`] does.
    fn apply_job_changes(
        conn: &mut Self::Connection,
        changes: &JobChanges,
        at: Timestamp,
    ) -> impl Future<Output = Result<Vec<JobId>, sqlx::Error>> + Send;
}

/// Deletes the pending jobs whose unique key starts with `$1`. `substr` rather than `LIKE`, in
/// which `_` and `%` in a key would be wildcards.
const CANCEL_BY_PREFIX: &str = "DELETE FROM jobs \
     WHERE state IN ('scheduled', 'failed') AND unique_key IS NOT NULL \
     AND substr(unique_key, 1, length($1)) = $1";

impl<DB> InsertJobs for DB
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> i32: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Json<Value>: Param<'a, DB>,
{
    async fn insert_jobs(
        conn: &mut DB::Connection,
        jobs: &[NewJob],
        at: Timestamp,
    ) -> Result<Vec<JobId>, sqlx::Error> {
        let at = truncate_to_micros(at);
        let mut added = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (kind, args) = split(&job.task).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            let max_attempts = i32::try_from(job.max_attempts).unwrap_or(i32::MAX);
            let done = sqlx::query(INSERT_JOB)
                .bind(job.id.as_uuid())
                .bind(kind)
                .bind(Json(args))
                .bind(DbTime(truncate_to_micros(job.run_at)))
                .bind(max_attempts)
                .bind(job.unique_key.as_deref())
                .bind(DbTime(at))
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 1 {
                added.push(job.id);
            }
        }
        Ok(added)
    }

    async fn apply_job_changes(
        conn: &mut DB::Connection,
        changes: &JobChanges,
        at: Timestamp,
    ) -> Result<Vec<JobId>, sqlx::Error> {
        for prefix in &changes.cancel {
            sqlx::query(CANCEL_BY_PREFIX)
                .bind(prefix.as_str())
                .execute(&mut *conn)
                .await?;
        }
        DB::insert_jobs(conn, &changes.add, at).await
    }
}

/// How each backend claims due jobs: the one statement whose SQL differs.
pub(crate) trait ClaimSql: Backend {
    /// Binds: `$1` now, `$2` limit, `$3` lease id, `$4` lease end, `$5` worker. Returns the
    /// claimed rows.
    const CLAIM: &'static str;
}

impl ClaimSql for Sqlite {
    // Run in a BEGIN IMMEDIATE transaction: no other writer runs meanwhile.
    const CLAIM: &'static str = concat!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_id = $3, \
         locked_until = $4, worker = $5, started_at = $1 \
         WHERE id IN (SELECT id FROM jobs \
             WHERE (state IN ('scheduled', 'failed') AND run_at <= $1) \
                OR (state = 'running' AND locked_until <= $1 AND attempts < max_attempts) \
             ORDER BY run_at, id LIMIT $2) \
         RETURNING ",
        job_columns!()
    );
}

impl ClaimSql for Postgres {
    // SKIP LOCKED: rows another claim is taking are passed over instead of waited for; the
    // outer UPDATE re-checks nothing, because the locked rows are this transaction's alone.
    const CLAIM: &'static str = concat!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_id = $3, \
         locked_until = $4, worker = $5, started_at = $1 \
         WHERE id IN (SELECT id FROM jobs \
             WHERE (state IN ('scheduled', 'failed') AND run_at <= $1) \
                OR (state = 'running' AND locked_until <= $1 AND attempts < max_attempts) \
             ORDER BY run_at, id LIMIT $2 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING ",
        job_columns!()
    );
}

/// Why a job whose lease expired on its last attempt is dead.
const LOST_ON_LAST_ATTEMPT: &str =
    "its worker stopped before finishing its last attempt (the lease expired)";

#[async_trait]
impl<DB> JobQueue for SqlJobQueue<DB>
where
    DB: InsertJobs + ClaimSql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> i32: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> JobRow: FromRow<'r, DB::Row>,
    for<'r> (String, String, i64): FromRow<'r, DB::Row>,
{
    async fn enqueue(&self, jobs: &[NewJob], at: Timestamp) -> Result<Vec<JobId>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let added = DB::insert_jobs(&mut tx, jobs, at).await.map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(added)
    }

    async fn schedule_occurrence(
        &self,
        schedule: &str,
        occurrence: Timestamp,
        job: &NewJob,
    ) -> Result<bool, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let recorded = sqlx::query(
            "INSERT INTO recurring_occurrences (schedule, occurrence, job_id) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(schedule)
        .bind(DbTime(truncate_to_micros(occurrence)))
        .bind(job.id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if recorded.rows_affected() == 0 {
            return Ok(false);
        }
        let added = DB::insert_jobs(&mut tx, std::slice::from_ref(job), job.run_at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(!added.is_empty())
    }

    async fn claim(&self, claim: &Claim) -> Result<Vec<ClaimedJob>, RepositoryError> {
        let now = DbTime(truncate_to_micros(claim.now));
        let until = claim
            .now
            .checked_add(claim.lease)
            .map_err(RepositoryError::new)?;
        let lease = LeaseId::generate();
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "UPDATE jobs SET state = 'dead', lease_id = NULL, locked_until = NULL, \
             finished_at = $1, last_error = $2 \
             WHERE state = 'running' AND locked_until <= $1 AND attempts >= max_attempts",
        )
        .bind(now)
        .bind(LOST_ON_LAST_ATTEMPT)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        let rows: Vec<JobRow> = sqlx::query_as(DB::CLAIM)
            .bind(now)
            .bind(i64::from(claim.limit))
            .bind(lease.as_uuid())
            .bind(DbTime(truncate_to_micros(until)))
            .bind(claim.worker.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        let mut claimed = rows
            .into_iter()
            .map(|row| {
                Ok(ClaimedJob {
                    job: Job::try_from(row)?,
                    lease,
                })
            })
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        claimed.sort_by_key(|c| (c.job.run_at, c.job.id));
        Ok(claimed)
    }

    async fn extend(&self, leases: &[LeaseId], until: Timestamp) -> Result<u64, RepositoryError> {
        let mut extended = 0;
        for lease in leases {
            let done = sqlx::query(
                "UPDATE jobs SET locked_until = $2 WHERE lease_id = $1 AND state = 'running'",
            )
            .bind(lease.as_uuid())
            .bind(DbTime(truncate_to_micros(until)))
            .execute(&self.pool)
            .await
            .map_err(storage)?;
            extended += done.rows_affected();
        }
        Ok(extended)
    }

    async fn succeed(&self, job: &ClaimedJob, at: Timestamp) -> Result<bool, RepositoryError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'succeeded', finished_at = $3, lease_id = NULL, \
             locked_until = NULL \
             WHERE id = $1 AND lease_id = $2 AND state = 'running'",
        )
        .bind(job.job.id.as_uuid())
        .bind(job.lease.as_uuid())
        .bind(DbTime(truncate_to_micros(at)))
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail(
        &self,
        job: &ClaimedJob,
        error: &str,
        after: AfterFailure,
        at: Timestamp,
    ) -> Result<bool, RepositoryError> {
        let at = DbTime(truncate_to_micros(at));
        let error = bounded(error);
        let query = match after {
            AfterFailure::RetryAt(retry_at) => sqlx::query(
                "UPDATE jobs SET state = 'failed', run_at = $4, last_error = $3, \
                 lease_id = NULL, locked_until = NULL \
                 WHERE id = $1 AND lease_id = $2 AND state = 'running'",
            )
            .bind(job.job.id.as_uuid())
            .bind(job.lease.as_uuid())
            .bind(error)
            .bind(DbTime(truncate_to_micros(retry_at))),
            AfterFailure::Dead => sqlx::query(
                "UPDATE jobs SET state = 'dead', finished_at = $4, last_error = $3, \
                 lease_id = NULL, locked_until = NULL \
                 WHERE id = $1 AND lease_id = $2 AND state = 'running'",
            )
            .bind(job.job.id.as_uuid())
            .bind(job.lease.as_uuid())
            .bind(error)
            .bind(at),
        };
        let done = query.execute(&self.pool).await.map_err(storage)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, job: &ClaimedJob) -> Result<bool, RepositoryError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'scheduled', attempts = attempts - 1, lease_id = NULL, \
             locked_until = NULL, worker = NULL \
             WHERE id = $1 AND lease_id = $2 AND state = 'running'",
        )
        .bind(job.job.id.as_uuid())
        .bind(job.lease.as_uuid())
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(done.rows_affected() == 1)
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>, RepositoryError> {
        sqlx::query_as::<_, JobRow>(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(Job::try_from)
        .transpose()
    }

    async fn list(
        &self,
        filter: JobFilter,
        page: PageRequest<JobId>,
    ) -> Result<Page<Job, JobId>, RepositoryError> {
        let rows: Vec<JobRow> = sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs \
             WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2) \
               AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(filter.state.map(|s| s.as_str()))
        .bind(filter.kind.map(|k| k.as_str()))
        .bind(page.after().map(|id| *id.as_uuid()))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let jobs = rows
            .into_iter()
            .map(Job::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(jobs, page.limit(), |job| job.id))
    }

    async fn retry(&self, id: JobId, at: Timestamp) -> Result<Job, RetryJobError> {
        let retried = sqlx::query_as::<_, JobRow>(concat!(
            "UPDATE jobs SET state = 'scheduled', run_at = $2, attempts = 0, finished_at = NULL \
             WHERE id = $1 AND state IN ('failed', 'dead') RETURNING ",
            job_columns!()
        ))
        .bind(id.as_uuid())
        .bind(DbTime(truncate_to_micros(at)))
        .fetch_optional(&self.pool)
        .await;
        match retried {
            Ok(Some(row)) => Ok(Job::try_from(row)?),
            Ok(None) => match self.get(id).await? {
                None => Err(RetryJobError::NotFound),
                Some(job) => Err(RetryJobError::NotRetryable(job.state)),
            },
            Err(e) if UNIQUE_PENDING.violated_by(&e) => Err(RetryJobError::Duplicate),
            Err(e) => Err(RetryJobError::Repository(storage(e))),
        }
    }

    async fn counts(&self) -> Result<Vec<JobCount>, RepositoryError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        rows.into_iter()
            .map(|(kind, state, count)| {
                Ok(JobCount {
                    kind: kind.parse().map_err(|e| corrupt("jobs", e))?,
                    state: state.parse().map_err(|e| corrupt("jobs", e))?,
                    count: u64::try_from(count).map_err(|e| corrupt("jobs", e))?,
                })
            })
            .collect()
    }

    async fn purge_finished(&self, before: Timestamp) -> Result<u64, RepositoryError> {
        let before = DbTime(truncate_to_micros(before));
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let jobs = sqlx::query("DELETE FROM jobs WHERE state = 'succeeded' AND finished_at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        sqlx::query("DELETE FROM recurring_occurrences WHERE occurrence < $1")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(jobs.rows_affected())
    }
}

/// The longest failure message kept, in bytes: a job's error says why, not everything.
const MAX_ERROR_LEN: usize = 2_000;

fn bounded(error: &str) -> &str {
    if error.len() <= MAX_ERROR_LEN {
        return error;
    }
    let mut end = MAX_ERROR_LEN;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    &error[..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use carehub_domain::jobs::Task;

    use super::*;
    use crate::Database;
    use crate::testing::{Backend as Scratch, ScratchDatabase};

    /// Enqueues `job` in a write transaction of its own, as a repository does in a change's,
    /// then commits it or drops it (which rolls it back).
    async fn enqueue_in_transaction<DB: InsertJobs>(pool: &Pool<DB>, job: &NewJob, commit: bool) {
        let mut tx = DB::begin_write(pool).await.unwrap();
        let added = DB::insert_jobs(&mut tx, std::slice::from_ref(job), job.run_at)
            .await
            .unwrap();
        assert_eq!(added, vec![job.id], "written inside the transaction");
        if commit {
            tx.commit().await.unwrap();
        }
    }

    async fn a_job_exists_exactly_when_its_transaction_commits(backend: Scratch) {
        let Some(scratch) = ScratchDatabase::create(backend).await else {
            return;
        };
        let database = scratch.connect_migrated().await.unwrap();
        let queue = database.repositories().jobs;
        let at = truncate_to_micros(Timestamp::now());
        let rolled_back = NewJob::new(Task::PurgeExpired, at);
        let committed = NewJob::new(Task::PurgeExpired, at);
        for (job, commit) in [(&rolled_back, false), (&committed, true)] {
            match &database {
                Database::Sqlite(pool) => enqueue_in_transaction(pool, job, commit).await,
                Database::Postgres(pool) => enqueue_in_transaction(pool, job, commit).await,
            }
        }
        assert_eq!(queue.get(rolled_back.id).await.unwrap(), None);
        assert!(queue.get(committed.id).await.unwrap().is_some());
        database.close().await;
    }

    #[tokio::test]
    async fn on_sqlite_a_job_exists_exactly_when_its_transaction_commits() {
        a_job_exists_exactly_when_its_transaction_commits(Scratch::Sqlite).await;
    }

    #[tokio::test]
    async fn on_postgres_a_job_exists_exactly_when_its_transaction_commits() {
        a_job_exists_exactly_when_its_transaction_commits(Scratch::Postgres).await;
    }
}
