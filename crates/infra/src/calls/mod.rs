//! Video calls on SQLite and PostgreSQL: the joins and leaves of each appointment's call,
//! written with their audit events. Their signalling goes through [`crate::relay`].

use async_trait::async_trait;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::calls::{CallEvent, CallRepository};
use carehub_domain::identity::UserId;
use carehub_domain::kernel::{AppointmentId, RepositoryError};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Param, corrupt, storage};
use crate::db::sql_time::DbTime;

/// The joins and leaves of calls.
#[derive(Debug, Clone)]
pub struct SqlCallRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlCallRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CallEventRow {
    appointment_id: Uuid,
    user_id: Uuid,
    kind: String,
    at: DbTime,
}

impl TryFrom<CallEventRow> for CallEvent {
    type Error = RepositoryError;

    fn try_from(row: CallEventRow) -> Result<Self, Self::Error> {
        Ok(CallEvent {
            appointment_id: AppointmentId::from_uuid(row.appointment_id),
            user_id: UserId::from_uuid(row.user_id),
            kind: row
                .kind
                .parse()
                .map_err(|e| corrupt("appointment_call_events", e))?,
            at: row.at.0,
        })
    }
}

#[async_trait]
impl<DB> CallRepository for SqlCallRepository<DB>
where
    DB: InsertAuditEvent,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> CallEventRow: FromRow<'r, DB::Row>,
{
    async fn record(&self, event: &CallEvent, audit: &AuditEvent) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO appointment_call_events (appointment_id, user_id, kind, at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(*event.appointment_id.as_uuid())
        .bind(*event.user_id.as_uuid())
        .bind(event.kind.as_str())
        .bind(DbTime(event.at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    async fn events(&self, appointment: AppointmentId) -> Result<Vec<CallEvent>, RepositoryError> {
        sqlx::query_as::<_, CallEventRow>(
            "SELECT appointment_id, user_id, kind, at FROM appointment_call_events \
             WHERE appointment_id = $1 ORDER BY id",
        )
        .bind(*appointment.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(CallEvent::try_from)
        .collect()
    }
}
