//! Users' e-mail preferences: the address is the account's `users.email`, the kinds rows of
//! `notification_email_kinds`.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::identity::Email;
use carehub_domain::kernel::{RepositoryError, UserId};
use carehub_domain::notifications::{
    EmailPreferenceRepository, EmailPreferences, NotificationKind,
};

use crate::db::backend::{Backend, Param, RowsAffected as _, corrupt, storage};
use crate::db::sql_time::DbTime;

/// E-mail preferences.
#[derive(Debug, Clone)]
pub struct SqlEmailPreferenceRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlEmailPreferenceRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl<DB> EmailPreferenceRepository for SqlEmailPreferenceRepository<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> (Option<String>,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    async fn get(&self, user: UserId) -> Result<Option<EmailPreferences>, RepositoryError> {
        let Some((email,)): Option<(Option<String>,)> =
            sqlx::query_as("SELECT email FROM users WHERE id = $1")
                .bind(user.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(storage)?
        else {
            return Ok(None);
        };
        let kinds: Vec<(String,)> =
            sqlx::query_as("SELECT kind FROM notification_email_kinds WHERE user_id = $1")
                .bind(user.as_uuid())
                .fetch_all(&self.pool)
                .await
                .map_err(storage)?;
        let email = email
            .map(|raw| Email::parse(&raw).map_err(|e| corrupt("users", e)))
            .transpose()?;
        let kinds = kinds
            .into_iter()
            // A kind this version does not know (written by a newer one) is not e-mailed.
            .filter_map(|(kind,)| kind.parse::<NotificationKind>().ok());
        Ok(Some(EmailPreferences::new(email, kinds)))
    }

    async fn replace(
        &self,
        user: UserId,
        preferences: &EmailPreferences,
    ) -> Result<bool, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let updated = sqlx::query("UPDATE users SET email = $2, updated_at = $3 WHERE id = $1")
            .bind(user.as_uuid())
            .bind(preferences.email.as_ref().map(Email::as_str))
            .bind(DbTime(carehub_domain::kernel::truncate_to_micros(
                Timestamp::now(),
            )))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM notification_email_kinds WHERE user_id = $1")
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        for kind in &preferences.email_kinds {
            sqlx::query("INSERT INTO notification_email_kinds (user_id, kind) VALUES ($1, $2)")
                .bind(user.as_uuid())
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }
}
