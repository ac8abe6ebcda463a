//! Devices trusted for an account, by the hash of their device token, on SQLite and PostgreSQL.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::identity::{RefreshTokenHash, TrustedDeviceRepository, UserId};
use carehub_domain::kernel::RepositoryError;

use crate::db::backend::{Backend, Param, RowsAffected as _, storage};
use crate::db::sql_time::DbTime;

/// Trusted devices.
#[derive(Debug, Clone)]
pub struct SqlTrustedDeviceRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlTrustedDeviceRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl<DB> TrustedDeviceRepository for SqlTrustedDeviceRepository<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    async fn trust(
        &self,
        device: &RefreshTokenHash,
        user: UserId,
        expires_at: Timestamp,
    ) -> Result<(), RepositoryError> {
        sqlx::query(
            "INSERT INTO trusted_devices (token_hash, user_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token_hash) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE trusted_devices.user_id = excluded.user_id",
        )
        .bind(device.as_str())
        .bind(*user.as_uuid())
        .bind(DbTime(expires_at))
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn is_trusted_for(
        &self,
        device: &RefreshTokenHash,
        username: &str,
        now: Timestamp,
    ) -> Result<bool, RepositoryError> {
        let (found,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM trusted_devices d JOIN users u ON u.id = d.user_id \
             WHERE d.token_hash = $1 AND u.username = $2 AND d.expires_at > $3",
        )
        .bind(device.as_str())
        .bind(username)
        .bind(DbTime(now))
        .fetch_one(&self.pool)
        .await
        .map_err(storage)?;
        Ok(found > 0)
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError> {
        let done = sqlx::query("DELETE FROM trusted_devices WHERE expires_at < $1")
            .bind(DbTime(before))
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected())
    }
}
