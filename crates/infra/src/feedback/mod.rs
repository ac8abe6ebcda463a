//! Feedback on SQLite and PostgreSQL: one row per rated appointment, written with its audit
//! event; hiding a comment keeps it, with who hid it, when and why.

use async_trait::async_trait;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::feedback::{CreateFeedbackError, Feedback, FeedbackRepository, Hidden, Rating};
use carehub_domain::identity::UserId;
use carehub_domain::kernel::{AppointmentId, PatientId, RepositoryError, Text};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Constraint, Param, corrupt, storage};
use crate::db::sql_time::DbTime;

/// Stored text was bounded when it was validated on the way in.
const STORED: usize = usize::MAX;

/// One rating per appointment.
const ONE_PER_APPOINTMENT: Constraint = Constraint {
    name: "appointment_feedback_pkey",
    sqlite_columns: "appointment_feedback.appointment_id",
};

/// Feedback on appointments.
#[derive(Debug, Clone)]
pub struct SqlFeedbackRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlFeedbackRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct FeedbackRow {
    appointment_id: Uuid,
    doctor_id: Uuid,
    patient_id: Uuid,
    rating: i64,
    comment: Option<String>,
    created_at: DbTime,
    hidden_reason: Option<String>,
    hidden_by: Option<Uuid>,
    hidden_at: Option<DbTime>,
}

fn text(raw: &str) -> Result<Text, RepositoryError> {
    Text::multiline(raw, STORED).map_err(|e| corrupt("appointment_feedback", e))
}

impl TryFrom<FeedbackRow> for Feedback {
    type Error = RepositoryError;

    fn try_from(row: FeedbackRow) -> Result<Self, Self::Error> {
        let hidden = match (row.hidden_reason, row.hidden_at) {
            (Some(reason), Some(at)) => Some(Hidden {
                reason: text(&reason)?,
                by: UserId::from_uuid(
                    row.hidden_by
                        .ok_or_else(|| corrupt("appointment_feedback", "hidden by nobody"))?,
                ),
                at: at.0,
            }),
            _ => None,
        };
        Ok(Feedback {
            appointment_id: AppointmentId::from_uuid(row.appointment_id),
            doctor_id: UserId::from_uuid(row.doctor_id),
            patient_id: PatientId::from_uuid(row.patient_id),
            rating: Rating::parse(row.rating).map_err(|e| corrupt("appointment_feedback", e))?,
            comment: row.comment.as_deref().map(text).transpose()?,
            created_at: row.created_at.0,
            hidden,
        })
    }
}

const SELECT_FEEDBACK: &str = "SELECT appointment_id, doctor_id, patient_id, rating, comment, \
     created_at, hidden_reason, hidden_by, hidden_at FROM appointment_feedback ";

#[async_trait]
impl<DB> FeedbackRepository for SqlFeedbackRepository<DB>
where
    DB: InsertAuditEvent,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> FeedbackRow: FromRow<'r, DB::Row>,
{
    async fn create(
        &self,
        feedback: &Feedback,
        audit: &AuditEvent,
    ) -> Result<(), CreateFeedbackError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO appointment_feedback (appointment_id, doctor_id, patient_id, rating, \
             comment, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(*feedback.appointment_id.as_uuid())
        .bind(*feedback.doctor_id.as_uuid())
        .bind(*feedback.patient_id.as_uuid())
        .bind(i64::from(feedback.rating.value()))
        .bind(feedback.comment.as_ref().map(Text::as_str))
        .bind(DbTime(feedback.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if ONE_PER_APPOINTMENT.violated_by(&e) {
                CreateFeedbackError::Duplicate
            } else {
                CreateFeedbackError::Repository(storage(e))
            }
        })?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    async fn find(&self, appointment: AppointmentId) -> Result<Option<Feedback>, RepositoryError> {
        sqlx::query_as::<_, FeedbackRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_FEEDBACK}WHERE appointment_id = $1"
        )))
        .bind(*appointment.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(Feedback::try_from)
        .transpose()
    }

    async fn for_doctor(&self, doctor: UserId) -> Result<Vec<Feedback>, RepositoryError> {
        sqlx::query_as::<_, FeedbackRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_FEEDBACK}WHERE doctor_id = $1 ORDER BY created_at DESC, appointment_id DESC"
        )))
        .bind(*doctor.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(Feedback::try_from)
        .collect()
    }

    async fn hide(
        &self,
        appointment: AppointmentId,
        hidden: &Hidden,
        audit: &AuditEvent,
    ) -> Result<(), RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "UPDATE appointment_feedback SET hidden_reason = $2, hidden_by = $3, hidden_at = $4 \
             WHERE appointment_id = $1",
        )
        .bind(*appointment.as_uuid())
        .bind(hidden.reason.as_str())
        .bind(*hidden.by.as_uuid())
        .bind(DbTime(hidden.at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }
}
