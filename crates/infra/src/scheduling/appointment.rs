//! Appointments on SQLite and PostgreSQL.
//!
//! The database itself refuses two active appointments (booked, checked in, in progress) that
//! overlap for one doctor or one patient: PostgreSQL with the exclusion constraints
//! `appointments_doctor_no_overlap` and `appointments_patient_no_overlap` (a concurrent
//! conflicting insert waits for the first to commit, then fails with SQLSTATE 23P01), SQLite
//! with triggers, its writers serialised by `BEGIN IMMEDIATE`. A booking or a reschedule first
//! checks the doctor's schedule version (read `FOR SHARE` on PostgreSQL, so that a schedule
//! change waits for the booking and the booking for it) and reads the conflicts itself, so
//! that the common refusal lists them without tripping the constraint; when the constraint
//! trips anyway (a concurrent booking won), the transaction is rolled back and the conflicts
//! read afresh. Every change is written with its history entry, audit event and notifications
//! in one transaction.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::RepositoryError;
use carehub_domain::kernel::Text;
use carehub_domain::kernel::{Page, PageRequest};
use carehub_domain::notifications::{NewNotification, Notification};
use carehub_domain::patients::PatientId;
use carehub_domain::scheduling::Interval;
use carehub_domain::scheduling::{
    Appointment, AppointmentFilter, AppointmentId, AppointmentRepository, AppointmentStatus,
    BookError, Booking, HistoryChange, HistoryEntry, Reschedule, StatusUpdate,
};

use super::conflicts::{SelectConflicts, conflicts_after_refusal, failed, is_overlap, retried};
use super::schedule::ScheduleVersion;
use crate::audit::InsertAuditEvent;
use crate::db::backend::{Backend, Param, RowsAffected as _, corrupt, joined_name, storage};
use crate::db::sql_time::DbTime;
use crate::jobs::InsertJobs;
use crate::notifications::{StoreNotifications, commit_notifying};
use crate::patients::{INSERT_MEMBER, InsertMember};

/// Stored text was bounded when it was validated on the way in; reading it back only checks
/// that it is still well-formed.
const STORED: usize = usize::MAX;

/// Appointments, their history, and the memberships bookings open.
#[derive(Debug, Clone)]
pub struct SqlAppointmentRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlAppointmentRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

// ---- Rows ------------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct AppointmentRow {
    id: Uuid,
    doctor_id: Uuid,
    doctor_name: Option<String>,
    patient_name: Option<String>,
    patient_id: Uuid,
    start_at: DbTime,
    end_at: DbTime,
    reason: String,
    status: String,
    cancel_reason: Option<String>,
    video: bool,
    created_by: Uuid,
    created_at: DbTime,
    updated_at: DbTime,
}

fn column_text(raw: &str) -> Result<Text, RepositoryError> {
    Text::multiline(raw, STORED).map_err(|e| corrupt("appointments", e))
}

impl TryFrom<AppointmentRow> for Appointment {
    type Error = RepositoryError;

    fn try_from(row: AppointmentRow) -> Result<Self, Self::Error> {
        Ok(Appointment {
            id: AppointmentId::from_uuid(row.id),
            doctor_id: UserId::from_uuid(row.doctor_id),
            patient_id: PatientId::from_uuid(row.patient_id),
            start: row.start_at.0,
            end: row.end_at.0,
            reason: column_text(&row.reason)?,
            status: row.status.parse().map_err(|e| corrupt("appointments", e))?,
            cancel_reason: row.cancel_reason.as_deref().map(column_text).transpose()?,
            video: row.video,
            created_by: UserId::from_uuid(row.created_by),
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
            doctor_name: joined_name(row.doctor_name.as_deref())?,
            patient_name: joined_name(row.patient_name.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    at: DbTime,
    actor_id: Uuid,
    actor_name: Option<String>,
    change: String,
    status: String,
    start_at: DbTime,
    end_at: DbTime,
    reason: Option<String>,
}

fn corrupt_history(error: impl std::fmt::Display) -> RepositoryError {
    corrupt("appointment_history", error)
}

impl TryFrom<HistoryRow> for HistoryEntry {
    type Error = RepositoryError;

    fn try_from(row: HistoryRow) -> Result<Self, Self::Error> {
        Ok(HistoryEntry {
            at: row.at.0,
            actor_id: UserId::from_uuid(row.actor_id),
            actor_name: joined_name(row.actor_name.as_deref())?,
            change: row.change.parse().map_err(corrupt_history)?,
            status: row.status.parse().map_err(corrupt_history)?,
            start: row.start_at.0,
            end: row.end_at.0,
            reason: row
                .reason
                .as_deref()
                .map(|raw| Text::multiline(raw, STORED).map_err(corrupt_history))
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct IntervalRow {
    start_at: DbTime,
    end_at: DbTime,
}

impl TryFrom<IntervalRow> for Interval {
    type Error = RepositoryError;

    fn try_from(row: IntervalRow) -> Result<Self, Self::Error> {
        Interval::new(row.start_at.0, row.end_at.0)
            .ok_or_else(|| corrupt("appointments", "an appointment ends before it starts"))
    }
}

/// What a reschedule reads of the appointment before changing it.
#[derive(sqlx::FromRow)]
struct CurrentRow {
    doctor_id: Uuid,
    patient_id: Uuid,
    status: String,
    start_at: DbTime,
    end_at: DbTime,
}

/// Appointments with their doctor's and patient's names, as a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! select_appointments {
    () => {
        "SELECT a.id, a.doctor_id, u.full_name AS doctor_name, p.full_name AS patient_name, \
         a.patient_id, a.start_at, a.end_at, a.reason, a.status, a.cancel_reason, a.video, \
         a.created_by, a.created_at, a.updated_at \
         FROM appointments a LEFT JOIN users u ON u.id = a.doctor_id \
         LEFT JOIN patients p ON p.id = a.patient_id "
    };
}

const INSERT_APPOINTMENT: &str = "INSERT INTO appointments (id, doctor_id, patient_id, \
     start_at, end_at, reason, status, cancel_reason, created_by, created_at, updated_at, video) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

const INSERT_HISTORY: &str = "INSERT INTO appointment_history \
     (appointment_id, at, actor_id, change, status, start_at, end_at, reason) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// One history entry, as [`INSERT_HISTORY`] binds it.
struct NewHistoryEntry<'a> {
    appointment_id: &'a Uuid,
    at: Timestamp,
    actor_id: &'a Uuid,
    change: HistoryChange,
    status: AppointmentStatus,
    interval: Interval,
    reason: Option<&'a Text>,
}

impl NewHistoryEntry<'_> {
    /// Inserts the entry on `conn`, in the transaction of the change it records.
    async fn insert<DB>(&self, conn: &mut DB::Connection) -> Result<(), sqlx::Error>
    where
        DB: Backend,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        for<'a> &'a str: Param<'a, DB>,
        for<'a> Option<&'a str>: Param<'a, DB>,
        for<'a> Uuid: Param<'a, DB>,
        for<'a> DbTime: Param<'a, DB>,
    {
        sqlx::query(INSERT_HISTORY)
            .bind(self.appointment_id)
            .bind(DbTime(self.at))
            .bind(self.actor_id)
            .bind(self.change.as_str())
            .bind(self.status.as_str())
            .bind(DbTime(self.interval.start))
            .bind(DbTime(self.interval.end))
            .bind(self.reason.map(Text::as_str))
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Appointments by (start, id): `$1` doctor, `$2` patient, `$3` from, `$4` to (overlapping
/// `[from, to)`), `$5` status, `$6` the id of the last appointment seen, `$7` the limit.
const LIST: &str = concat!(
    select_appointments!(),
    "WHERE ($1 IS NULL OR a.doctor_id = $1) \
     AND ($2 IS NULL OR a.patient_id = $2) \
     AND ($3 IS NULL OR a.end_at > $3) \
     AND ($4 IS NULL OR a.start_at < $4) \
     AND ($5 IS NULL OR a.status = $5) \
     AND ($6 IS NULL OR (a.start_at, a.id) > \
          (SELECT s.start_at, s.id FROM appointments s WHERE s.id = $6)) \
     ORDER BY a.start_at, a.id LIMIT $7"
);

#[async_trait]
impl<DB> AppointmentRepository for SqlAppointmentRepository<DB>
where
    DB: ScheduleVersion
        + SelectConflicts
        + InsertMember
        + InsertAuditEvent
        + StoreNotifications
        + InsertJobs,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> bool: Param<'a, DB>,
    for<'r> CurrentRow: FromRow<'r, DB::Row>,
    for<'r> IntervalRow: FromRow<'r, DB::Row>,
    for<'r> AppointmentRow: FromRow<'r, DB::Row>,
    for<'r> HistoryRow: FromRow<'r, DB::Row>,
{
    async fn book(
        &self,
        booking: &Booking,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, BookError> {
        retried(|| async move {
            let appointment = &booking.appointment;
            let doctor = appointment.doctor_id.as_uuid();
            let patient = appointment.patient_id.as_uuid();
            let interval = appointment.interval();
            let mut tx = DB::begin_write(&self.pool).await.map_err(failed)?;
            let version = DB::booking_version(&mut tx, doctor, appointment.created_at)
                .await
                .map_err(failed)?;
            if version != booking.schedule_version {
                tx.rollback().await.map_err(failed)?;
                return Err(BookError::ScheduleChanged.into());
            }
            let conflicts =
                DB::select_conflicts(&mut tx, doctor, Some(patient), interval, None).await?;
            if !conflicts.is_empty() {
                tx.rollback().await.map_err(failed)?;
                return Err(BookError::Conflicts(conflicts).into());
            }
            let inserted = sqlx::query(INSERT_APPOINTMENT)
                .bind(appointment.id.as_uuid())
                .bind(doctor)
                .bind(patient)
                .bind(DbTime(appointment.start))
                .bind(DbTime(appointment.end))
                .bind(appointment.reason.as_str())
                .bind(appointment.status.as_str())
                .bind(appointment.cancel_reason.as_ref().map(Text::as_str))
                .bind(appointment.created_by.as_uuid())
                .bind(DbTime(appointment.created_at))
                .bind(DbTime(appointment.updated_at))
                .bind(appointment.video)
                .execute(&mut *tx)
                .await;
            if let Err(e) = inserted {
                tx.rollback().await.map_err(failed)?;
                if is_overlap(&e) {
                    return Err(conflicts_after_refusal(
                        &self.pool, doctor, patient, interval, None,
                    )
                    .await);
                }
                return Err(failed(e));
            }
            NewHistoryEntry {
                appointment_id: appointment.id.as_uuid(),
                at: appointment.created_at,
                actor_id: appointment.created_by.as_uuid(),
                change: HistoryChange::Booked,
                status: appointment.status,
                interval,
                reason: None,
            }
            .insert::<DB>(&mut tx)
            .await
            .map_err(failed)?;
            DB::insert_member(&mut tx, &booking.membership, INSERT_MEMBER)
                .await
                .map_err(failed)?;
            DB::apply_job_changes(&mut tx, &booking.jobs, appointment.created_at)
                .await
                .map_err(failed)?;
            let stored = commit_notifying(tx, audit, notifications, appointment.created_at)
                .await
                .map_err(failed)?;
            Ok(stored)
        })
        .await
    }

    async fn get(&self, id: AppointmentId) -> Result<Option<Appointment>, RepositoryError> {
        sqlx::query_as::<_, AppointmentRow>(concat!(select_appointments!(), "WHERE a.id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?
            .map(Appointment::try_from)
            .transpose()
    }

    async fn change_status(
        &self,
        update: &StatusUpdate,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, BookError> {
        let id = update.id.as_uuid();
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        // Conditional on the status read: of two concurrent changes from one status,
        // the second finds no row.
        let changed: Option<IntervalRow> = sqlx::query_as(
            "UPDATE appointments SET status = $3, cancel_reason = $4, updated_at = $5 \
             WHERE id = $1 AND status = $2 RETURNING start_at, end_at",
        )
        .bind(id)
        .bind(update.from.as_str())
        .bind(update.to.as_str())
        .bind(update.reason.as_ref().map(Text::as_str))
        .bind(DbTime(update.at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        let Some(changed) = changed else {
            tx.rollback().await.map_err(storage)?;
            return Err(BookError::Stale);
        };
        NewHistoryEntry {
            appointment_id: id,
            at: update.at,
            actor_id: update.actor_id.as_uuid(),
            change: HistoryChange::Status,
            status: update.to,
            interval: Interval::try_from(changed)?,
            reason: update.reason.as_ref(),
        }
        .insert::<DB>(&mut tx)
        .await
        .map_err(storage)?;
        if let Some(until) = update.care_team_until {
            sqlx::query(
                "UPDATE care_team_members SET ended_at = $2, ended_by = $3 \
                 WHERE appointment_id = $1 AND ended_at IS NULL",
            )
            .bind(id)
            .bind(DbTime(until))
            .bind(update.actor_id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        DB::apply_job_changes(&mut tx, &update.jobs, update.at)
            .await
            .map_err(storage)?;
        let stored = commit_notifying(tx, audit, notifications, update.at)
            .await
            .map_err(storage)?;
        Ok(stored)
    }

    async fn reschedule(
        &self,
        change: &Reschedule,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, BookError> {
        retried(|| async move {
            let id = change.id.as_uuid();
            let mut tx = DB::begin_write(&self.pool).await.map_err(failed)?;
            let current: Option<CurrentRow> = sqlx::query_as(
                "SELECT doctor_id, patient_id, status, start_at, end_at \
                 FROM appointments WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
            let Some(current) = current.filter(|c| {
                c.status == AppointmentStatus::Booked.as_str()
                    && c.start_at.0 == change.from.start
                    && c.end_at.0 == change.from.end
            }) else {
                tx.rollback().await.map_err(failed)?;
                return Err(BookError::Stale.into());
            };
            let version = DB::booking_version(&mut tx, &current.doctor_id, change.at)
                .await
                .map_err(failed)?;
            if version != change.schedule_version {
                tx.rollback().await.map_err(failed)?;
                return Err(BookError::ScheduleChanged.into());
            }
            let conflicts = DB::select_conflicts(
                &mut tx,
                &current.doctor_id,
                Some(&current.patient_id),
                change.to,
                Some(id),
            )
            .await?;
            if !conflicts.is_empty() {
                tx.rollback().await.map_err(failed)?;
                return Err(BookError::Conflicts(conflicts).into());
            }
            // Conditional on what was read: of two concurrent changes, the second finds
            // no row (on PostgreSQL it waits for the first to commit, then re-reads it).
            let updated = sqlx::query(
                "UPDATE appointments SET start_at = $4, end_at = $5, updated_at = $6 \
                 WHERE id = $1 AND status = 'booked' AND start_at = $2 AND end_at = $3",
            )
            .bind(id)
            .bind(DbTime(change.from.start))
            .bind(DbTime(change.from.end))
            .bind(DbTime(change.to.start))
            .bind(DbTime(change.to.end))
            .bind(DbTime(change.at))
            .execute(&mut *tx)
            .await;
            match updated {
                Ok(done) if done.rows_affected() == 0 => {
                    tx.rollback().await.map_err(failed)?;
                    return Err(BookError::Stale.into());
                }
                Ok(_) => {}
                Err(e) => {
                    tx.rollback().await.map_err(failed)?;
                    if is_overlap(&e) {
                        return Err(conflicts_after_refusal(
                            &self.pool,
                            &current.doctor_id,
                            &current.patient_id,
                            change.to,
                            Some(id),
                        )
                        .await);
                    }
                    return Err(failed(e));
                }
            }
            NewHistoryEntry {
                appointment_id: id,
                at: change.at,
                actor_id: change.actor_id.as_uuid(),
                change: HistoryChange::Rescheduled,
                status: AppointmentStatus::Booked,
                interval: change.to,
                reason: None,
            }
            .insert::<DB>(&mut tx)
            .await
            .map_err(failed)?;
            DB::apply_job_changes(&mut tx, &change.jobs, change.at)
                .await
                .map_err(failed)?;
            let stored = commit_notifying(tx, audit, notifications, change.at)
                .await
                .map_err(failed)?;
            Ok(stored)
        })
        .await
    }

    async fn history(&self, id: AppointmentId) -> Result<Vec<HistoryEntry>, RepositoryError> {
        sqlx::query_as::<_, HistoryRow>(
            "SELECT h.at, h.actor_id, u.full_name AS actor_name, h.change, h.status, \
             h.start_at, h.end_at, h.reason \
             FROM appointment_history h LEFT JOIN users u ON u.id = h.actor_id \
             WHERE h.appointment_id = $1 ORDER BY h.seq",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(HistoryEntry::try_from)
        .collect()
    }

    async fn list(
        &self,
        filter: &AppointmentFilter,
        page: PageRequest<AppointmentId>,
    ) -> Result<Page<Appointment, AppointmentId>, RepositoryError> {
        let appointments = sqlx::query_as::<_, AppointmentRow>(LIST)
            .bind(filter.doctor_id.as_ref().map(UserId::as_uuid))
            .bind(filter.patient_id.as_ref().map(PatientId::as_uuid))
            .bind(filter.from.map(DbTime))
            .bind(filter.to.map(DbTime))
            .bind(filter.status.map(AppointmentStatus::as_str))
            .bind(page.after().map(AppointmentId::as_uuid))
            .bind(i64::from(page.limit()) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?
            .into_iter()
            .map(Appointment::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(appointments, page.limit(), |a| a.id))
    }

    async fn busy(
        &self,
        doctor_id: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Interval>, RepositoryError> {
        sqlx::query_as::<_, IntervalRow>(
            "SELECT start_at, end_at FROM appointments \
             WHERE doctor_id = $1 AND status IN ('booked', 'checked_in', 'in_progress') \
             AND start_at < $3 AND end_at > $2 ORDER BY start_at, id",
        )
        .bind(doctor_id.as_uuid())
        .bind(DbTime(from))
        .bind(DbTime(to))
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(Interval::try_from)
        .collect()
    }
}
