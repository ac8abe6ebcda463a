//! Access tokens denied before their expiry, on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::future::Future;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool, Postgres, Sqlite};
use uuid::Uuid;

use carehub_domain::identity::{
    LiveSession, RevokedTokenRepository, SessionEnd, SessionId, TokenId,
};
use carehub_domain::kernel::RepositoryError;

use crate::db::backend::{Backend, Param, RowsAffected as _, storage};
use crate::db::sql_time::DbTime;

/// The deny list of access token ids.
#[derive(Debug, Clone)]
pub struct SqlRevokedTokenRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlRevokedTokenRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// The most live sessions checked by one query of [`RevokedTokenRepository::ended_sessions`].
const ENDED_SESSIONS_CHUNK: usize = 500;

/// Checks the sessions of a `live (token_id, session_id, user_id)` table, given as the SQL that
/// selects it, and answers the ended ones with `ended` = 1 (signed out) or 2 (inactive).
/// An inactive account comes first: suspending one also revokes its sessions, and the socket
/// should say why.
///
/// A macro because the backends hand the live sessions over differently (see
/// [`EndedSessions`]) around this one check, and only so that `concat!` can take it (see
/// `db::backend`): it expands to a string literal.
macro_rules! ended_sessions_sql {
    ($live:literal, $now:literal) => {
        concat!(
            "WITH live (token_id, session_id, user_id) AS (",
            $live,
            ") SELECT token_id, ended FROM (SELECT live.token_id, CASE \
                WHEN NOT EXISTS (SELECT 1 FROM users u \
                                 WHERE u.id = live.user_id AND u.status = 'active') THEN 2 \
                WHEN EXISTS (SELECT 1 FROM revoked_access_tokens r WHERE r.jti = live.token_id) \
                  OR NOT EXISTS (SELECT 1 FROM auth_sessions s \
                                 WHERE s.id = live.session_id AND s.revoked_at IS NULL \
                                 AND s.ends_at > ",
            $now,
            ") THEN 1 \
                ELSE 0 END AS ended FROM live) AS checked WHERE ended <> 0"
        )
    };
}

/// What one row of `ended_sessions_sql!` says.
fn session_end(token_id: Uuid, ended: i32) -> Result<(TokenId, SessionEnd), RepositoryError> {
    let end = match ended {
        1 => SessionEnd::SignedOut,
        2 => SessionEnd::Inactive,
        other => {
            return Err(RepositoryError::new(format!(
                "unexpected session check result {other}"
            )));
        }
    };
    Ok((TokenId::from_uuid(token_id), end))
}

/// Checking a chunk of live sessions in one query, the part of
/// [`RevokedTokenRepository::ended_sessions`] whose SQL differs between the backends.
pub(crate) trait EndedSessions: Backend {
    /// The ended ones of at most [`ENDED_SESSIONS_CHUNK`] live sessions.
    fn ended_in_chunk(
        pool: &Pool<Self>,
        chunk: &[LiveSession],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<(TokenId, SessionEnd)>, RepositoryError>> + Send;
}

impl EndedSessions for Sqlite {
    /// One query, the sessions handed over as one JSON array of `[token, session, user]` hex
    /// triples (SQLite has no array parameters).
    async fn ended_in_chunk(
        pool: &Pool<Self>,
        chunk: &[LiveSession],
        now: Timestamp,
    ) -> Result<Vec<(TokenId, SessionEnd)>, RepositoryError> {
        let triples: Vec<[String; 3]> = chunk
            .iter()
            .map(|s| {
                [
                    s.token_id.as_uuid().simple().to_string(),
                    s.session_id.as_uuid().simple().to_string(),
                    s.user_id.as_uuid().simple().to_string(),
                ]
            })
            .collect();
        let json = serde_json::to_string(&triples).map_err(RepositoryError::new)?;
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(ended_sessions_sql!(
            "SELECT unhex(value ->> 0), unhex(value ->> 1), unhex(value ->> 2) FROM json_each($1)",
            "$2"
        ))
        .bind(json)
        .bind(DbTime(now))
        .fetch_all(pool)
        .await
        .map_err(storage)?;
        rows.into_iter()
            .map(|(token_id, ended)| session_end(token_id, ended))
            .collect()
    }
}

impl EndedSessions for Postgres {
    /// One query, the sessions handed over as three arrays.
    async fn ended_in_chunk(
        pool: &Pool<Self>,
        chunk: &[LiveSession],
        now: Timestamp,
    ) -> Result<Vec<(TokenId, SessionEnd)>, RepositoryError> {
        let tokens: Vec<Uuid> = chunk.iter().map(|s| *s.token_id.as_uuid()).collect();
        let sessions: Vec<Uuid> = chunk.iter().map(|s| *s.session_id.as_uuid()).collect();
        let users: Vec<Uuid> = chunk.iter().map(|s| *s.user_id.as_uuid()).collect();
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(ended_sessions_sql!(
            "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[])",
            "$4"
        ))
        .bind(tokens)
        .bind(sessions)
        .bind(users)
        .bind(DbTime(now))
        .fetch_all(pool)
        .await
        .map_err(storage)?;
        rows.into_iter()
            .map(|(token_id, ended)| session_end(token_id, ended))
            .collect()
    }
}

#[async_trait]
impl<DB> RevokedTokenRepository for SqlRevokedTokenRepository<DB>
where
    DB: EndedSessions,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
{
    async fn revoke(
        &self,
        token_id: TokenId,
        expires_at: Timestamp,
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

    async fn is_denied(
        &self,
        token_id: TokenId,
        session_id: SessionId,
        now: Timestamp,
    ) -> Result<bool, RepositoryError> {
        let (denied,): (i32,) = sqlx::query_as(
            "SELECT CASE WHEN \
                EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
                OR NOT EXISTS (SELECT 1 FROM auth_sessions \
                               WHERE id = $2 AND revoked_at IS NULL AND ends_at > $3) \
             THEN 1 ELSE 0 END",
        )
        .bind(token_id.as_uuid())
        .bind(session_id.as_uuid())
        .bind(DbTime(now))
        .fetch_one(&self.pool)
        .await
        .map_err(storage)?;
        Ok(denied == 1)
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError> {
        let done = sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < $1")
            .bind(DbTime(before))
            .execute(&self.pool)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected())
    }

    async fn ended_sessions(
        &self,
        sessions: &[LiveSession],
        now: Timestamp,
    ) -> Result<Vec<(TokenId, SessionEnd)>, RepositoryError> {
        // Several sockets may share one access token: ask about each session once.
        let mut seen = HashSet::with_capacity(sessions.len());
        let unique: Vec<LiveSession> = sessions
            .iter()
            .copied()
            .filter(|s| seen.insert(*s))
            .collect();
        let mut ended = Vec::new();
        for chunk in unique.chunks(ENDED_SESSIONS_CHUNK) {
            ended.extend(DB::ended_in_chunk(&self.pool, chunk, now).await?);
        }
        Ok(ended)
    }
}
