//! Conflicting appointments: reading those in the way of a time, recognising the database's
//! refusal of an overlap, and trying a booking again when PostgreSQL aborted it for a reason
//! that says nothing about the booking.

use std::future::Future;

use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::kernel::RepositoryError;
use carehub_domain::scheduling::{AppointmentId, BookError, Conflict, Interval};

use crate::db::backend::{Backend, Param, corrupt, storage};
use crate::db::sql_time::DbTime;

/// How many times a booking or a reschedule is tried when PostgreSQL aborts it for a reason
/// that says nothing about the booking itself (a deadlock between conflicting inserts waiting
/// on each other, which PostgreSQL breaks by aborting one), or when the appointment the
/// constraint named is gone by the time the conflicts are read again.
const MAX_ATTEMPTS: usize = 5;

/// Active appointments in the way of `[$3, $4)` for doctor `$1` or patient `$2` (NULL: the
/// doctor's only), except appointment `$5`, in one statement, each saying whose calendar it
/// blocks.
const SELECT_CONFLICTS: &str = "SELECT id, start_at, end_at, \
     CASE WHEN doctor_id = $1 AND patient_id = $2 THEN 'both' \
          WHEN doctor_id = $1 THEN 'doctor' ELSE 'patient' END AS conflict_with \
     FROM appointments \
     WHERE status IN ('booked', 'checked_in', 'in_progress') \
     AND (doctor_id = $1 OR patient_id = $2) \
     AND start_at < $4 AND end_at > $3 \
     AND ($5 IS NULL OR id <> $5) \
     ORDER BY start_at, id";

#[derive(sqlx::FromRow)]
struct ConflictRow {
    id: Uuid,
    start_at: DbTime,
    end_at: DbTime,
    conflict_with: String,
}

impl TryFrom<ConflictRow> for Conflict {
    type Error = RepositoryError;

    fn try_from(row: ConflictRow) -> Result<Self, Self::Error> {
        Ok(Conflict::new(
            AppointmentId::from_uuid(row.id),
            row.start_at.0,
            row.end_at.0,
            row.conflict_with
                .parse()
                .map_err(|e| corrupt("appointments", e))?,
        ))
    }
}

/// Reading the conflicts of an interval ([`SELECT_CONFLICTS`]) on a connection, for a booking,
/// a reschedule, and time off. One implementation serves every backend that binds and reads its
/// columns.
pub(super) trait SelectConflicts: Backend {
    /// The active appointments of `doctor`, or of `patient` when given, overlapping
    /// `interval`, except `except`.
    fn select_conflicts(
        conn: &mut Self::Connection,
        doctor: &Uuid,
        patient: Option<&Uuid>,
        interval: Interval,
        except: Option<&Uuid>,
    ) -> impl Future<Output = Result<Vec<Conflict>, RepositoryError>> + Send;
}

impl<DB> SelectConflicts for DB
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> ConflictRow: FromRow<'r, DB::Row>,
{
    async fn select_conflicts(
        conn: &mut DB::Connection,
        doctor: &Uuid,
        patient: Option<&Uuid>,
        interval: Interval,
        except: Option<&Uuid>,
    ) -> Result<Vec<Conflict>, RepositoryError> {
        sqlx::query_as::<_, ConflictRow>(SELECT_CONFLICTS)
            .bind(doctor)
            .bind(patient)
            .bind(DbTime(interval.start))
            .bind(DbTime(interval.end))
            .bind(except)
            .fetch_all(conn)
            .await
            .map_err(storage)?
            .into_iter()
            .map(Conflict::try_from)
            .collect()
    }
}

/// Whether `error` is the database refusing overlapping active appointments: PostgreSQL's
/// exclusion constraints (SQLSTATE 23P01) or SQLite's triggers.
pub(super) fn is_overlap(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        matches!(
            e.constraint(),
            Some("appointments_doctor_no_overlap" | "appointments_patient_no_overlap")
        ) || e.message() == "appointment overlaps"
    })
}

/// Whether PostgreSQL aborted the transaction for a reason worth trying it again: a deadlock
/// (40P01; two conflicting inserts can each wait for the other) or a serialization failure.
fn is_transient(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// How one attempt at a booking or a reschedule ended, when not with success.
pub(super) enum Failure {
    /// The answer to give.
    Refused(BookError),
    /// Worth another attempt.
    Retry(RepositoryError),
}

impl From<BookError> for Failure {
    fn from(error: BookError) -> Self {
        Self::Refused(error)
    }
}

impl From<RepositoryError> for Failure {
    fn from(error: RepositoryError) -> Self {
        Self::Refused(BookError::Repository(error))
    }
}

/// A failed statement inside a booking or a reschedule: retried when transient.
pub(super) fn failed(error: sqlx::Error) -> Failure {
    if is_transient(&error) {
        Failure::Retry(storage(error))
    } else {
        Failure::Refused(BookError::Repository(storage(error)))
    }
}

/// Runs `attempt`, each time in a transaction of its own, until it succeeds or is refused, or
/// until it has been tried [`MAX_ATTEMPTS`] times.
pub(super) async fn retried<T, Attempt>(
    mut attempt: impl FnMut() -> Attempt,
) -> Result<T, BookError>
where
    Attempt: Future<Output = Result<T, Failure>>,
{
    let mut attempts = 1;
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(Failure::Refused(error)) => return Err(error),
            Err(Failure::Retry(error)) if attempts >= MAX_ATTEMPTS => {
                return Err(BookError::Repository(error));
            }
            Err(Failure::Retry(_)) => attempts += 1,
        }
    }
}

/// The conflicts of `interval`, read afresh after the constraint refused a write: the
/// appointment in the way has committed by then. None found (it was cancelled meanwhile): try
/// again.
pub(super) async fn conflicts_after_refusal<DB: SelectConflicts>(
    pool: &Pool<DB>,
    doctor: &Uuid,
    patient: &Uuid,
    interval: Interval,
    except: Option<&Uuid>,
) -> Failure {
    let conflicts = match pool.acquire().await {
        Ok(mut conn) => {
            DB::select_conflicts(&mut conn, doctor, Some(patient), interval, except).await
        }
        Err(e) => Err(storage(e)),
    };
    match conflicts {
        Ok(conflicts) if conflicts.is_empty() => Failure::Retry(RepositoryError::new(
            "the appointment in the way is no longer active",
        )),
        Ok(conflicts) => Failure::Refused(BookError::Conflicts(conflicts)),
        Err(e) => Failure::Refused(BookError::Repository(e)),
    }
}
