//! Failed sign-ins and other throttled events, counted by key, on SQLite and PostgreSQL.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};

use carehub_domain::identity::{LoginAttemptRepository, RecentFailures, ThrottleKey};
use carehub_domain::kernel::RepositoryError;

use crate::db::backend::{Backend, Param, RowsAffected as _, storage};
use crate::db::sql_time::DbTime;

/// Failed sign-ins by throttle key.
#[derive(Debug, Clone)]
pub struct SqlLoginAttemptRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlLoginAttemptRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl<DB> LoginAttemptRepository for SqlLoginAttemptRepository<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> (i64, Option<DbTime>): FromRow<'r, DB::Row>,
{
    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: Timestamp,
    ) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        for key in keys {
            sqlx::query("INSERT INTO login_failures (throttle_key, attempted_at) VALUES ($1, $2)")
                .bind(key.as_str())
                .bind(DbTime(at))
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn recent_failures(
        &self,
        key: &ThrottleKey,
        since: Timestamp,
    ) -> Result<RecentFailures, RepositoryError> {
        let (count, oldest): (i64, Option<DbTime>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(attempted_at) FROM login_failures \
             WHERE throttle_key = $1 AND attempted_at >= $2",
        )
        .bind(key.as_str())
        .bind(DbTime(since))
        .fetch_one(&self.pool)
        .await
        .map_err(storage)?;
        Ok(RecentFailures {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            oldest: oldest.map(|at| at.0),
        })
    }

    async fn clear(&self, keys: &[ThrottleKey]) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        for key in keys {
            sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn purge_older_than(&self, before: Timestamp) -> Result<u64, RepositoryError> {
        let done = sqlx::query("DELETE FROM login_failures WHERE attempted_at < $1")
            .bind(DbTime(before))
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected())
    }
}
