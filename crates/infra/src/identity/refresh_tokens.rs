//! Sign-in sessions and their rotating refresh tokens, on SQLite and PostgreSQL.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::identity::{
    NewRefreshToken, RefreshTokenHash, RefreshTokenRepository, RotateOutcome, SessionId,
};
use carehub_domain::kernel::RepositoryError;

use crate::db::backend::{Backend, Param, RowsAffected as _, storage};
use crate::db::sql_time::DbTime;

/// Refresh tokens, stored by hash and grouped in sessions.
#[derive(Debug, Clone)]
pub struct SqlRefreshTokenRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlRefreshTokenRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl<DB> RefreshTokenRepository for SqlRefreshTokenRepository<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (Uuid, DbTime): FromRow<'r, DB::Row>,
    for<'r> (Uuid, Option<DbTime>): FromRow<'r, DB::Row>,
    for<'r> (Uuid, Uuid): FromRow<'r, DB::Row>,
{
    async fn insert(&self, token: &NewRefreshToken) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO auth_sessions (id, user_id, created_at, ends_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(token.session_id.as_uuid())
        .bind(token.user_id.as_uuid())
        .bind(DbTime(token.issued_at))
        .bind(DbTime(token.session_ends_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token.hash.as_str())
        .bind(token.session_id.as_uuid())
        .bind(DbTime(token.issued_at))
        .bind(DbTime(token.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    async fn rotate(
        &self,
        presented: &RefreshTokenHash,
        replacement: &RefreshTokenHash,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<RotateOutcome, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        // The conditional update is the single point of truth: of two concurrent
        // rotations of one token, only one finds it unused.
        let consumed: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             AND EXISTS (SELECT 1 FROM auth_sessions s \
                         WHERE s.id = refresh_tokens.session_id AND s.revoked_at IS NULL \
                         AND s.ends_at > $2) \
             RETURNING session_id",
        )
        .bind(presented.as_str())
        .bind(DbTime(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;

        let Some((session_id,)) = consumed else {
            let found: Option<(Uuid, Option<DbTime>)> = sqlx::query_as(
                "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(presented.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?;
            tx.rollback().await.map_err(storage)?;
            return Ok(match found {
                None => RotateOutcome::Unknown,
                Some((session_id, Some(_used))) => RotateOutcome::Reused {
                    session_id: SessionId::from_uuid(session_id),
                },
                Some((_, None)) => RotateOutcome::Dead,
            });
        };

        let (user_id, ends_at): (Uuid, DbTime) =
            sqlx::query_as("SELECT user_id, ends_at FROM auth_sessions WHERE id = $1")
                .bind(session_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(storage)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(replacement.as_str())
        .bind(session_id)
        .bind(DbTime(now))
        .bind(DbTime(expires_at.min(ends_at.0)))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(RotateOutcome::Rotated {
            user_id: UserId::from_uuid(user_id),
            session_id: SessionId::from_uuid(session_id),
            session_ends_at: ends_at.0,
        })
    }

    async fn revoke_session(
        &self,
        session_id: SessionId,
        at: Timestamp,
    ) -> Result<(), RepositoryError> {
        sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(session_id.as_uuid())
        .bind(DbTime(at))
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn find_session(
        &self,
        token: &RefreshTokenHash,
    ) -> Result<Option<(UserId, SessionId)>, RepositoryError> {
        let found: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT s.user_id, s.id FROM refresh_tokens t \
             JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
        )
        .bind(token.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        Ok(found.map(|(user, session)| (UserId::from_uuid(user), SessionId::from_uuid(session))))
    }

    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<(), RepositoryError> {
        sqlx::query(
            "UPDATE auth_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id.as_uuid())
        .bind(DbTime(at))
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(DbTime(before))
            .execute(&mut *tx)
            .await
            .map_err(storage)?
            .rows_affected();
        sqlx::query(
            "DELETE FROM auth_sessions WHERE NOT EXISTS \
             (SELECT 1 FROM refresh_tokens t WHERE t.session_id = auth_sessions.id)",
        )
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(tokens)
    }
}
