//! Notifications on SQLite and PostgreSQL: stored in the transaction of the change that causes
//! them, numbered per recipient without gaps, then read and marked read by their recipient.
//!
//! Numbering bumps `notification_counters` with `INSERT ... ON CONFLICT ... DO UPDATE ...
//! RETURNING last_id` inside the change's transaction. On PostgreSQL the counter's row lock is
//! held until commit, so a concurrent change for the same recipient waits and takes the next id
//! after the first committed; SQLite serialises writers with `BEGIN IMMEDIATE`. Either way a
//! recipient's ids become visible in id order, and a rolled-back change gives its ids back.

use std::collections::BTreeMap;
use std::future::Future;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Executor, FromRow, Pool, Postgres, Sqlite, Transaction};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::jobs::Task;
use carehub_domain::kernel::{RepositoryError, truncate_to_micros};
use carehub_domain::notifications::{
    NewNotification, Notification, NotificationData, NotificationQuery, NotificationRepository,
    Recipient,
};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Backend, Param, RowsAffected as _, corrupt, storage};
use crate::db::sql_time::DbTime;
use crate::jobs::InsertJobs;

/// Users' notifications: appended on their own, listed, and marked read.
#[derive(Debug, Clone)]
pub struct SqlNotificationRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlNotificationRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// A notification's data as stored (JSON) and published, independent of the domain's serde
/// shape, so that the stored and wire formats change only on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredData {
    title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    referral_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patient_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emergency_access_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    appointment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lab_order_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prescription_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conversation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    urgent: bool,
}

impl From<&NotificationData> for StoredData {
    fn from(data: &NotificationData) -> Self {
        Self {
            title: data.title.clone(),
            referral_id: data.referral_id,
            patient_id: data.patient_id,
            actor_id: data.actor_id,
            emergency_access_id: data.emergency_access_id,
            appointment_id: data.appointment_id,
            lab_order_id: data.lab_order_id,
            prescription_id: data.prescription_id,
            conversation_id: data.conversation_id,
            message_id: data.message_id,
            urgent: data.urgent,
        }
    }
}

impl From<StoredData> for NotificationData {
    fn from(data: StoredData) -> Self {
        Self {
            title: data.title,
            referral_id: data.referral_id,
            patient_id: data.patient_id,
            actor_id: data.actor_id,
            emergency_access_id: data.emergency_access_id,
            appointment_id: data.appointment_id,
            lab_order_id: data.lab_order_id,
            prescription_id: data.prescription_id,
            conversation_id: data.conversation_id,
            message_id: data.message_id,
            urgent: data.urgent,
        }
    }
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    recipient_id: Uuid,
    id: i64,
    kind: String,
    created_at: DbTime,
    read_at: Option<DbTime>,
    data: Json<StoredData>,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = RepositoryError;

    fn try_from(row: NotificationRow) -> Result<Self, Self::Error> {
        Ok(Notification {
            id: row.id,
            recipient: UserId::from_uuid(row.recipient_id),
            kind: row.kind.parse().map_err(|e| corrupt("notifications", e))?,
            created_at: row.created_at.0,
            read_at: row.read_at.map(|t| t.0),
            data: row.data.0.into(),
        })
    }
}

const ACTIVE_ADMINS: &str =
    "SELECT id FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id";

/// Reserves `$2` ids for user `$1` and returns the last of them.
const BUMP_COUNTER: &str = "INSERT INTO notification_counters (user_id, last_id) VALUES ($1, $2) \
     ON CONFLICT (user_id) DO UPDATE \
     SET last_id = notification_counters.last_id + excluded.last_id \
     RETURNING last_id";

const INSERT_NOTIFICATION: &str = "INSERT INTO notifications \
     (recipient_id, id, kind, created_at, read_at, data) VALUES ($1, $2, $3, $4, $5, $6)";

/// The columns [`NotificationRow`] reads, as a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! notification_columns {
    () => {
        "recipient_id, id, kind, created_at, read_at, data"
    };
}

/// Ends a change that notifies someone: writes its audit event and its notifications (created
/// at `at`) in the change's transaction, then commits it, and returns the notifications as
/// stored. On a failure the transaction is dropped, which rolls it back.
pub(crate) async fn commit_notifying<DB>(
    mut tx: Transaction<'static, DB>,
    audit: &AuditEvent,
    notifications: &[NewNotification],
    at: Timestamp,
) -> Result<Vec<Notification>, sqlx::Error>
where
    DB: InsertAuditEvent + StoreNotifications,
{
    DB::insert_audit_event(&mut tx, audit).await?;
    let stored = DB::store_notifications(&mut tx, notifications, at).await?;
    tx.commit().await?;
    Ok(stored)
}

/// Stores notifications on a connection inside a write transaction, the change's own: every
/// repository whose changes notify calls this before committing. One implementation serves
/// every backend that binds and reads the columns it uses.
pub(crate) trait StoreNotifications: Backend {
    /// Resolves each recipient (`ActiveAdmins` as of now, in this transaction), bumps the
    /// recipients' counters in ascending user-id order (so that two transactions never wait on
    /// each other's counters), inserts the notifications created at `at`, enqueues the e-mail
    /// of each whose recipient has an address and chose its kind, and returns them numbered,
    /// in the order given (`ActiveAdmins` expanded in user-id order).
    fn store_notifications(
        conn: &mut Self::Connection,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> impl Future<Output = Result<Vec<Notification>, sqlx::Error>> + Send;
}

impl<DB> StoreNotifications for DB
where
    DB: InsertJobs,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
    for<'a> Json<StoredData>: Param<'a, DB>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    async fn store_notifications(
        conn: &mut DB::Connection,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> Result<Vec<Notification>, sqlx::Error> {
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        let at = truncate_to_micros(at);
        let mut admins: Option<Vec<Uuid>> = None;
        // Each notification to store, by recipient, in the order given.
        let mut entries: Vec<(Uuid, &NewNotification)> = Vec::new();
        for notification in notifications {
            match notification.recipient {
                Recipient::User(user) => entries.push((*user.as_uuid(), notification)),
                Recipient::ActiveAdmins => {
                    if admins.is_none() {
                        let rows: Vec<(Uuid,)> =
                            sqlx::query_as(ACTIVE_ADMINS).fetch_all(&mut *conn).await?;
                        admins = Some(rows.into_iter().map(|(id,)| id).collect());
                    }
                    for admin in admins.iter().flatten() {
                        entries.push((*admin, notification));
                    }
                }
            }
        }
        let mut by_recipient: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
        for (index, (recipient, _)) in entries.iter().enumerate() {
            by_recipient.entry(*recipient).or_default().push(index);
        }
        let mut stored: Vec<Option<Notification>> = vec![None; entries.len()];
        for (recipient, indexes) in &by_recipient {
            let count =
                i64::try_from(indexes.len()).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            let (last,): (i64,) = sqlx::query_as(BUMP_COUNTER)
                .bind(recipient)
                .bind(count)
                .fetch_one(&mut *conn)
                .await?;
            for (id, index) in (last - count + 1..).zip(indexes) {
                let notification = entries[*index].1;
                // A message event is no notification to read: it is born read, so that
                // unread counts and marks never meet it.
                let read_at = (!notification.kind.is_notification()).then_some(at);
                sqlx::query(INSERT_NOTIFICATION)
                    .bind(recipient)
                    .bind(id)
                    .bind(notification.kind.as_str())
                    .bind(DbTime(at))
                    .bind(read_at.map(DbTime))
                    .bind(Json(StoredData::from(&notification.data)))
                    .execute(&mut *conn)
                    .await?;
                stored[*index] = Some(Notification {
                    id,
                    recipient: UserId::from_uuid(*recipient),
                    kind: notification.kind,
                    created_at: at,
                    read_at,
                    data: notification.data.clone(),
                });
            }
        }
        let stored: Vec<Notification> = stored.into_iter().flatten().collect();
        let mut emails = Vec::new();
        for recipient in by_recipient.keys() {
            let chosen: Vec<(String,)> = sqlx::query_as(EMAILED_KINDS)
                .bind(recipient)
                .fetch_all(&mut *conn)
                .await?;
            emails.extend(
                stored
                    .iter()
                    .filter(|n| n.recipient.as_uuid() == recipient)
                    .filter(|n| chosen.iter().any(|(kind,)| kind == n.kind.as_str()))
                    .map(|n| Task::notification_email(n.recipient, n.id, at)),
            );
        }
        DB::insert_jobs(conn, &emails, at).await?;
        Ok(stored)
    }
}

/// The kinds user `$1` wants by e-mail, if they have an address.
const EMAILED_KINDS: &str = "SELECT k.kind FROM notification_email_kinds k \
     JOIN users u ON u.id = k.user_id WHERE k.user_id = $1 AND u.email IS NOT NULL";

#[async_trait]
impl<DB> NotificationRepository for SqlNotificationRepository<DB>
where
    DB: StoreNotifications + LastIds,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> bool: Param<'a, DB>,
    for<'r> NotificationRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    async fn append(
        &self,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> Result<Vec<Notification>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let stored = DB::store_notifications(&mut tx, notifications, at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(stored)
    }

    async fn append_once(
        &self,
        key: &str,
        notifications: &[NewNotification],
        at: Timestamp,
    ) -> Result<Option<Vec<Notification>>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let first = sqlx::query(
            "INSERT INTO notification_once (key, created_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(DbTime(truncate_to_micros(at)))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if first.rows_affected() == 0 {
            return Ok(None);
        }
        let stored = DB::store_notifications(&mut tx, notifications, at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(stored))
    }

    async fn find(
        &self,
        recipient: UserId,
        id: i64,
    ) -> Result<Option<Notification>, RepositoryError> {
        sqlx::query_as::<_, NotificationRow>(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM notifications WHERE recipient_id = $1 AND id = $2"
        ))
        .bind(recipient.as_uuid())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(Notification::try_from)
        .transpose()
    }

    async fn list(&self, query: NotificationQuery) -> Result<Vec<Notification>, RepositoryError> {
        // Two statements rather than a flag, so that each uses its index.
        // Message events are born read: the unread statement never meets them.
        let sql = if query.unread_only {
            concat!(
                "SELECT ",
                notification_columns!(),
                " FROM notifications \
                 WHERE recipient_id = $1 AND id > $2 AND read_at IS NULL \
                 ORDER BY id LIMIT $3"
            )
        } else {
            concat!(
                "SELECT ",
                notification_columns!(),
                " FROM notifications WHERE recipient_id = $1 AND id > $2 \
                 AND ($4 OR kind NOT IN ('message.received', 'message.read')) \
                 ORDER BY id LIMIT $3"
            )
        };
        let statement = sqlx::query_as::<_, NotificationRow>(sql)
            .bind(query.recipient.as_uuid())
            .bind(query.after.unwrap_or(0))
            .bind(i64::from(query.limit));
        let statement = if query.unread_only {
            statement
        } else {
            statement.bind(query.with_events)
        };
        statement
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?
            .into_iter()
            .map(Notification::try_from)
            .collect()
    }

    async fn mark_read(
        &self,
        recipient: UserId,
        id: i64,
        at: Timestamp,
    ) -> Result<Option<Notification>, RepositoryError> {
        sqlx::query_as::<_, NotificationRow>(concat!(
            "UPDATE notifications SET read_at = COALESCE(read_at, $3) \
             WHERE recipient_id = $1 AND id = $2 RETURNING ",
            notification_columns!()
        ))
        .bind(recipient.as_uuid())
        .bind(id)
        .bind(DbTime(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(Notification::try_from)
        .transpose()
    }

    async fn mark_all_read(
        &self,
        recipient: UserId,
        at: Timestamp,
    ) -> Result<u64, RepositoryError> {
        let done = sqlx::query(
            "UPDATE notifications SET read_at = $2 \
             WHERE recipient_id = $1 AND read_at IS NULL",
        )
        .bind(recipient.as_uuid())
        .bind(DbTime(at))
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(done.rows_affected())
    }

    async fn unread_count(&self, recipient: UserId) -> Result<u64, RepositoryError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM notifications \
             WHERE recipient_id = $1 AND read_at IS NULL",
        )
        .bind(recipient.as_uuid())
        .fetch_one(&self.pool)
        .await
        .map_err(storage)?;
        u64::try_from(count).map_err(|e| corrupt("notifications", e))
    }

    async fn last_id(&self, recipient: UserId) -> Result<i64, RepositoryError> {
        let last: Option<(i64,)> =
            sqlx::query_as("SELECT last_id FROM notification_counters WHERE user_id = $1")
                .bind(recipient.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(storage)?;
        Ok(last.map_or(0, |(id,)| id))
    }

    async fn last_ids(&self, recipients: &[UserId]) -> Result<Vec<(UserId, i64)>, RepositoryError> {
        let mut found = Vec::new();
        for chunk in recipients.chunks(LAST_IDS_CHUNK) {
            found.extend(DB::last_ids_in_chunk(&self.pool, chunk).await?);
        }
        Ok(found)
    }
}

/// How many users one query of [`NotificationRepository::last_ids`] asks about.
const LAST_IDS_CHUNK: usize = 500;

/// Reading a chunk of users' last notification ids in one query, the part of
/// [`NotificationRepository::last_ids`] whose SQL differs between the backends.
pub(crate) trait LastIds: Backend {
    /// The last ids of at most [`LAST_IDS_CHUNK`] users.
    fn last_ids_in_chunk(
        pool: &Pool<Self>,
        chunk: &[UserId],
    ) -> impl Future<Output = Result<Vec<(UserId, i64)>, RepositoryError>> + Send;
}

impl LastIds for Sqlite {
    /// One query, the users handed over as one JSON array of hex ids (SQLite has no array
    /// parameters).
    async fn last_ids_in_chunk(
        pool: &Pool<Self>,
        chunk: &[UserId],
    ) -> Result<Vec<(UserId, i64)>, RepositoryError> {
        let ids: Vec<String> = chunk
            .iter()
            .map(|u| u.as_uuid().simple().to_string())
            .collect();
        let json = serde_json::to_string(&ids).map_err(RepositoryError::new)?;
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT user_id, last_id FROM notification_counters \
             WHERE user_id IN (SELECT unhex(value) FROM json_each($1))",
        )
        .bind(json)
        .fetch_all(pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|(user, last)| (UserId::from_uuid(user), last))
            .collect())
    }
}

impl LastIds for Postgres {
    /// One query, the users handed over as an array.
    async fn last_ids_in_chunk(
        pool: &Pool<Self>,
        chunk: &[UserId],
    ) -> Result<Vec<(UserId, i64)>, RepositoryError> {
        let ids: Vec<Uuid> = chunk.iter().map(|u| *u.as_uuid()).collect();
        let rows: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT user_id, last_id FROM notification_counters WHERE user_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|(user, last)| (UserId::from_uuid(user), last))
            .collect())
    }
}
