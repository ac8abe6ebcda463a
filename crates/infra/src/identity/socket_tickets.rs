//! Single-use WebSocket tickets, on SQLite and PostgreSQL.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::identity::{
    AccessClaims, RefreshTokenHash, SessionId, SocketTicketRepository, TokenId,
};
use carehub_domain::kernel::RepositoryError;

use crate::db::backend::{Backend, Param, RowsAffected as _, corrupt, storage};
use crate::db::sql_time::DbTime;

/// Socket tickets, stored by hash with the claims of the access token each stands for.
/// The database refuses a ticket that would outlive its access token.
#[derive(Debug, Clone)]
pub struct SqlSocketTicketRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlSocketTicketRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct TicketRow {
    user_id: Uuid,
    session_id: Uuid,
    token_id: Uuid,
    role: String,
    issued_at: DbTime,
    token_expires_at: DbTime,
    expires_at: DbTime,
}

impl TicketRow {
    /// The claims the ticket stands for, if it is still unexpired at `now`.
    fn claims_at(self, now: Timestamp) -> Result<Option<AccessClaims>, RepositoryError> {
        if self.expires_at.0 <= now {
            return Ok(None);
        }
        Ok(Some(AccessClaims {
            user_id: UserId::from_uuid(self.user_id),
            role: self
                .role
                .parse()
                .map_err(|e| corrupt("socket_tickets", e))?,
            session_id: SessionId::from_uuid(self.session_id),
            token_id: TokenId::from_uuid(self.token_id),
            issued_at: self.issued_at.0,
            expires_at: self.token_expires_at.0,
        }))
    }
}

#[async_trait]
impl<DB> SocketTicketRepository for SqlSocketTicketRepository<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> TicketRow: FromRow<'r, DB::Row>,
{
    async fn issue(
        &self,
        hash: &RefreshTokenHash,
        claims: &AccessClaims,
        expires_at: Timestamp,
    ) -> Result<(), RepositoryError> {
        sqlx::query(
            "INSERT INTO socket_tickets \
             (hash, user_id, session_id, token_id, role, issued_at, token_expires_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(hash.as_str())
        .bind(claims.user_id.as_uuid())
        .bind(claims.session_id.as_uuid())
        .bind(claims.token_id.as_uuid())
        .bind(claims.role.as_str())
        .bind(DbTime(claims.issued_at))
        .bind(DbTime(claims.expires_at))
        .bind(DbTime(expires_at))
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn redeem(
        &self,
        hash: &RefreshTokenHash,
        now: Timestamp,
    ) -> Result<Option<AccessClaims>, RepositoryError> {
        // Deleting is the single point of truth: of concurrent redemptions only one
        // gets the row back, and an expired ticket is used up all the same.
        let row: Option<TicketRow> = sqlx::query_as(
            "DELETE FROM socket_tickets WHERE hash = $1 \
             RETURNING user_id, session_id, token_id, role, issued_at, token_expires_at, \
             expires_at",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        match row {
            Some(row) => row.claims_at(now),
            None => Ok(None),
        }
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError> {
        let done = sqlx::query("DELETE FROM socket_tickets WHERE expires_at < $1")
            .bind(DbTime(before))
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected())
    }
}
