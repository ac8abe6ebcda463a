//! Access tokens denied before their expiry, on SQLite and PostgreSQL.

use async_trait::async_trait;
use sqlx::{Postgres, Sqlite};
use time::OffsetDateTime;

use carehub_domain::RepositoryError;
use carehub_domain::token::{RevokedTokenRepository, SessionId, TokenId};

use crate::backend::storage;
use crate::db::sql_repository;
use crate::sql_time::DbTime;

sql_repository!(
    /// The deny list of access token ids.
    SqlRevokedTokenRepository
);

macro_rules! impl_revoked_token_repository {
    ($db:ty) => {
        #[async_trait]
        impl RevokedTokenRepository for SqlRevokedTokenRepository<$db> {
            async fn revoke(
                &self,
                token_id: TokenId,
                expires_at: OffsetDateTime,
            ) -> Result<(), RepositoryError> {
                sqlx::query(
                    "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(token_id.as_uuid())
                .bind(DbTime(expires_at))
                .execute(&self.pool)
                .await
                .map_err(storage)?;
                Ok(())
            }

            async fn is_revoked(&self, token_id: TokenId) -> Result<bool, RepositoryError> {
                let found: Option<(i32,)> =
                    sqlx::query_as("SELECT 1 FROM revoked_access_tokens WHERE jti = $1")
                        .bind(token_id.as_uuid())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(storage)?;
                Ok(found.is_some())
            }

            async fn is_denied(&self, token_id: TokenId, session_id: SessionId) -> Result<bool, RepositoryError> {
                let (denied,): (i32,) = sqlx::query_as(
                    "SELECT CASE WHEN \
                        EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
                        OR NOT EXISTS (SELECT 1 FROM auth_sessions WHERE id = $2 AND revoked_at IS NULL) \
                     THEN 1 ELSE 0 END",
                )
                .bind(token_id.as_uuid())
                .bind(session_id.as_uuid())
                .fetch_one(&self.pool)
                .await
                .map_err(storage)?;
                Ok(denied == 1)
            }

            async fn purge_expired(&self, before: OffsetDateTime) -> Result<u64, RepositoryError> {
                let done = sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
                    .bind(DbTime(before))
                    .execute(&self.pool)
                    .await
                    .map_err(storage)?;
                Ok(done.rows_affected())
            }
        }
    };
}

impl_revoked_token_repository!(Sqlite);
impl_revoked_token_repository!(Postgres);
