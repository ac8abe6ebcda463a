//! The user repository, on SQLite and PostgreSQL.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::identity::PasswordHash;
use carehub_domain::identity::{
    CreateUserError, Email, FullName, User, UserChanges, UserFilter, UserId, UserRepository,
    Username,
};
use carehub_domain::jobs::NewJob;
use carehub_domain::kernel::{Page, PageRequest};
use carehub_domain::kernel::{RepositoryError, truncate_to_micros};

use crate::db::backend::{Constraint, Param, corrupt, storage};
use crate::db::sql_time::DbTime;
use crate::jobs::InsertJobs;

const USERNAME_KEY: Constraint = Constraint {
    name: "users_username_key",
    sqlite_columns: "users.username",
};

/// Users and their password hashes.
#[derive(Debug, Clone)]
pub struct SqlUserRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlUserRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    username: String,
    full_name: String,
    email: Option<String>,
    role: String,
    status: String,
    created_at: DbTime,
}

impl TryFrom<UserRow> for User {
    type Error = RepositoryError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: UserId::from_uuid(row.id),
            username: Username::parse(&row.username).map_err(|e| corrupt("users", e))?,
            full_name: FullName::parse(&row.full_name).map_err(|e| corrupt("users", e))?,
            email: row
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt("users", e))?,
            role: row.role.parse().map_err(|e| corrupt("users", e))?,
            status: row.status.parse().map_err(|e| corrupt("users", e))?,
            created_at: row.created_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

#[async_trait]
impl<DB> UserRepository for SqlUserRepository<DB>
where
    DB: InsertJobs,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> bool: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> UserRow: FromRow<'r, DB::Row>,
    for<'r> CredentialsRow: FromRow<'r, DB::Row>,
{
    async fn create(
        &self,
        user: &User,
        password_hash: &PasswordHash,
    ) -> Result<(), CreateUserError> {
        let created_at = DbTime(user.created_at);
        sqlx::query(
            "INSERT INTO users \
             (id, username, password_hash, full_name, email, role, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(user.id.as_uuid())
        .bind(user.username.as_str())
        .bind(password_hash.as_str())
        .bind(user.full_name.as_str())
        .bind(user.email.as_ref().map(Email::as_str))
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if USERNAME_KEY.violated_by(&e) {
                CreateUserError::UsernameTaken
            } else {
                CreateUserError::Repository(storage(e))
            }
        })?;
        Ok(())
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, username, full_name, email, role, status, created_at \
             FROM users WHERE id = $1",
        )
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(User::try_from)
        .transpose()
    }

    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<(User, PasswordHash)>, RepositoryError> {
        let row = sqlx::query_as::<_, CredentialsRow>(
            "SELECT id, username, full_name, email, role, status, created_at, password_hash \
             FROM users WHERE username = $1",
        )
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        row.map(|row| {
            Ok((
                User::try_from(row.user)?,
                PasswordHash::new(row.password_hash),
            ))
        })
        .transpose()
    }

    async fn list(
        &self,
        filter: UserFilter,
        page: PageRequest<UserId>,
    ) -> Result<Page<User, UserId>, RepositoryError> {
        let rows = sqlx::query_as::<_, UserRow>(
            "SELECT id, username, full_name, email, role, status, created_at FROM users \
             WHERE ($1 IS NULL OR role = $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4",
        )
        .bind(filter.role.map(|r| r.as_str()))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(page.after().map(UserId::as_uuid))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let users = rows
            .into_iter()
            .map(User::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(users, page.limit(), |user| user.id))
    }

    async fn approve(
        &self,
        id: UserId,
        at: Timestamp,
        jobs: &[NewJob],
    ) -> Result<Option<User>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let approved = sqlx::query_as::<_, UserRow>(
            "UPDATE users SET status = 'active', updated_at = $2 \
             WHERE id = $1 AND status = 'pending' \
             RETURNING id, username, full_name, email, role, status, created_at",
        )
        .bind(id.as_uuid())
        .bind(DbTime(truncate_to_micros(at)))
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        let Some(row) = approved else {
            return Ok(None);
        };
        DB::insert_jobs(&mut tx, jobs, at).await.map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        User::try_from(row).map(Some)
    }

    async fn update(
        &self,
        id: UserId,
        changes: &UserChanges,
    ) -> Result<Option<User>, RepositoryError> {
        let sql = "UPDATE users SET \
             full_name = COALESCE($2, full_name), \
             email = CASE WHEN $3 THEN $4 ELSE email END, \
             role = COALESCE($5, role), \
             status = COALESCE($6, status), \
             updated_at = $7 \
             WHERE id = $1 \
             RETURNING id, username, full_name, email, role, status, created_at";
        sqlx::query_as::<_, UserRow>(sql)
            .bind(id.as_uuid())
            .bind(changes.full_name.as_ref().map(FullName::as_str))
            .bind(changes.email.is_some())
            .bind(
                changes
                    .email
                    .as_ref()
                    .and_then(|e| e.as_ref())
                    .map(Email::as_str),
            )
            .bind(changes.role.map(|r| r.as_str()))
            .bind(changes.status.map(|s| s.as_str()))
            .bind(DbTime(Timestamp::now()))
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?
            .map(User::try_from)
            .transpose()
    }
}
