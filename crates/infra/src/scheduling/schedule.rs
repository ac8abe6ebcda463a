//! Doctors' profiles, weekly availability and time off, on SQLite and PostgreSQL.
//!
//! Every change of a doctor's schedule bumps the version in `doctor_schedules` as its first
//! statement (an upsert, which on PostgreSQL holds the row's lock to commit). Bookings read the
//! version and store an appointment only if it is the one availability was checked against:
//! on PostgreSQL `FOR SHARE`, so that bookings run side by side while a schedule change waits
//! for them and they for it; on SQLite every writer holds the database's write lock.

use std::future::Future;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool, Postgres, Sqlite, Transaction};
use uuid::Uuid;

use carehub_domain::identity::{FullName, UserId};
use carehub_domain::kernel::RepositoryError;
use carehub_domain::kernel::Text;
use carehub_domain::kernel::{Page, PageRequest};
use carehub_domain::scheduling::ConflictWith;
use carehub_domain::scheduling::{
    AvailabilityRule, DEFAULT_APPOINTMENT_MINUTES, DoctorProfile, Interval, ProfileUpdate,
    Schedule, ScheduleRepository, Specialization, TimeOff, TimeOffError, TimeOffId, Weekday,
};

use super::conflicts::SelectConflicts;
use crate::db::backend::{Backend, Param, RowsAffected as _, corrupt, storage};
use crate::db::sql_time::DbTime;

/// Stored text was bounded when it was validated on the way in.
const STORED: usize = usize::MAX;

/// Doctors' profiles, availability rules and time off.
#[derive(Debug, Clone)]
pub struct SqlScheduleRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlScheduleRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// Bumps doctor `$1`'s schedule version (creating the row at 1), returning the new version.
/// The first statement of every schedule change: on PostgreSQL the upsert keeps the row locked
/// until commit, as `SELECT ... FOR UPDATE` would.
const BUMP_VERSION: &str = "INSERT INTO doctor_schedules (doctor_id, version, updated_at) \
     VALUES ($1, 1, $2) \
     ON CONFLICT (doctor_id) DO UPDATE \
     SET version = doctor_schedules.version + 1, updated_at = excluded.updated_at \
     RETURNING version";

/// Reading a doctor's schedule version inside a booking's write transaction.
pub(crate) trait ScheduleVersion: Backend {
    /// The version (0 when the doctor's schedule never changed), read so that no schedule
    /// change of the doctor commits before this transaction ends.
    fn booking_version(
        conn: &mut Self::Connection,
        doctor_id: &Uuid,
        at: Timestamp,
    ) -> impl Future<Output = Result<i64, sqlx::Error>> + Send;
}

impl ScheduleVersion for Sqlite {
    /// The transaction holds SQLite's write lock (`BEGIN IMMEDIATE`): no other writer runs.
    async fn booking_version(
        conn: &mut Self::Connection,
        doctor_id: &Uuid,
        _at: Timestamp,
    ) -> Result<i64, sqlx::Error> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM doctor_schedules WHERE doctor_id = $1")
                .bind(doctor_id)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(row.map_or(0, |(version,)| version))
    }
}

impl ScheduleVersion for Postgres {
    /// `FOR SHARE`: bookings do not wait for each other, a schedule change (which locks the row
    /// for update) waits for them, and they for it. A doctor without a row gets one at version
    /// 0 first, so that there is a row to lock: otherwise a first schedule change could commit
    /// between this read and the booking's commit.
    async fn booking_version(
        conn: &mut Self::Connection,
        doctor_id: &Uuid,
        at: Timestamp,
    ) -> Result<i64, sqlx::Error> {
        const SHARED: &str = "SELECT version FROM doctor_schedules WHERE doctor_id = $1 FOR SHARE";
        let row: Option<(i64,)> = sqlx::query_as(SHARED)
            .bind(doctor_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some((version,)) = row {
            return Ok(version);
        }
        sqlx::query(
            "INSERT INTO doctor_schedules (doctor_id, version, updated_at) VALUES ($1, 0, $2) \
             ON CONFLICT (doctor_id) DO NOTHING",
        )
        .bind(doctor_id)
        .bind(DbTime(at))
        .execute(&mut *conn)
        .await?;
        let (version,): (i64,) = sqlx::query_as(SHARED)
            .bind(doctor_id)
            .fetch_one(&mut *conn)
            .await?;
        Ok(version)
    }
}

// ---- Rows ------------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct ProfileRow {
    id: Uuid,
    full_name: String,
    bio: Option<String>,
    appointment_minutes: Option<i32>,
    updated_at: Option<DbTime>,
}

impl ProfileRow {
    fn into_profile(
        self,
        specializations: Vec<Specialization>,
    ) -> Result<DoctorProfile, RepositoryError> {
        let corrupt_profile = |e: String| corrupt("doctor_profiles", e);
        Ok(DoctorProfile {
            doctor_id: UserId::from_uuid(self.id),
            full_name: FullName::parse(&self.full_name).map_err(|e| corrupt("users", e))?,
            specializations,
            bio: self
                .bio
                .as_deref()
                .map(|raw| Text::multiline(raw, STORED).map_err(|e| corrupt_profile(e.to_string())))
                .transpose()?,
            appointment_minutes: match self.appointment_minutes {
                Some(minutes) => {
                    u16::try_from(minutes).map_err(|e| corrupt_profile(e.to_string()))?
                }
                None => DEFAULT_APPOINTMENT_MINUTES,
            },
            updated_at: self.updated_at.map(|t| t.0),
        })
    }
}

#[derive(sqlx::FromRow)]
struct SpecializationRow {
    doctor_id: Uuid,
    name: String,
}

fn specialization(raw: &str) -> Result<Specialization, RepositoryError> {
    Specialization::parse(raw).map_err(|e| corrupt("doctor_specializations", e))
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    weekday: i16,
    start_minute: i16,
    end_minute: i16,
}

impl TryFrom<RuleRow> for AvailabilityRule {
    type Error = RepositoryError;

    fn try_from(row: RuleRow) -> Result<Self, Self::Error> {
        Weekday::from_number(row.weekday.into())
            .and_then(|weekday| {
                AvailabilityRule::from_minutes(
                    weekday,
                    row.start_minute.into(),
                    row.end_minute.into(),
                )
            })
            .ok_or_else(|| {
                corrupt(
                    "availability_rules",
                    format!(
                        "weekday {} from minute {} to {}",
                        row.weekday, row.start_minute, row.end_minute
                    ),
                )
            })
    }
}

#[derive(sqlx::FromRow)]
struct TimeOffRow {
    id: Uuid,
    doctor_id: Uuid,
    start_at: DbTime,
    end_at: DbTime,
    reason: Option<String>,
    created_by: Uuid,
    created_at: DbTime,
}

impl TryFrom<TimeOffRow> for TimeOff {
    type Error = RepositoryError;

    fn try_from(row: TimeOffRow) -> Result<Self, Self::Error> {
        Ok(TimeOff {
            id: TimeOffId::from_uuid(row.id),
            doctor_id: UserId::from_uuid(row.doctor_id),
            start: row.start_at.0,
            end: row.end_at.0,
            reason: row
                .reason
                .as_deref()
                .map(|raw| Text::multiline(raw, STORED).map_err(|e| corrupt("time_off", e)))
                .transpose()?,
            created_by: UserId::from_uuid(row.created_by),
            created_at: row.created_at.0,
        })
    }
}

/// Active doctors with their stored profile, if any, as a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! select_doctors {
    () => {
        "SELECT u.id, u.full_name, p.bio, p.appointment_minutes, p.updated_at \
         FROM users u LEFT JOIN doctor_profiles p ON p.doctor_id = u.id \
         WHERE u.role = 'doctor' AND u.status = 'active' "
    };
}

/// `$1` a specialization key or NULL, `$2` the id to continue after, `$3` the limit.
const DIRECTORY: &str = concat!(
    select_doctors!(),
    "AND ($1 IS NULL OR EXISTS (SELECT 1 FROM doctor_specializations s \
                                WHERE s.doctor_id = u.id AND s.name_key = $1)) \
     AND ($2 IS NULL OR u.id > $2) \
     ORDER BY u.id LIMIT $3"
);

/// Time off columns, as a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! select_time_off {
    () => {
        "SELECT id, doctor_id, start_at, end_at, reason, created_by, created_at FROM time_off "
    };
}

/// Starts a schedule change of `doctor`: a write transaction whose first statement bumps the
/// doctor's schedule version, so that from then on no booking of the doctor can commit against
/// the old schedule.
async fn begin_change<DB>(
    pool: &Pool<DB>,
    doctor: &Uuid,
    at: Timestamp,
) -> Result<Transaction<'static, DB>, RepositoryError>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
{
    let mut tx = DB::begin_write(pool).await.map_err(storage)?;
    sqlx::query(BUMP_VERSION)
        .bind(doctor)
        .bind(DbTime(at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
    Ok(tx)
}

#[async_trait]
impl<DB> ScheduleRepository for SqlScheduleRepository<DB>
where
    DB: SelectConflicts,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> String: Param<'a, DB>,
    for<'a> Option<String>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> i32: Param<'a, DB>,
    for<'a> i16: Param<'a, DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'r> ProfileRow: FromRow<'r, DB::Row>,
    for<'r> SpecializationRow: FromRow<'r, DB::Row>,
    for<'r> RuleRow: FromRow<'r, DB::Row>,
    for<'r> TimeOffRow: FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
{
    async fn profile(&self, doctor_id: UserId) -> Result<Option<DoctorProfile>, RepositoryError> {
        let row: Option<ProfileRow> = sqlx::query_as(concat!(select_doctors!(), "AND u.id = $1"))
            .bind(doctor_id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let specializations = sqlx::query_as::<_, SpecializationRow>(
            "SELECT doctor_id, name FROM doctor_specializations \
             WHERE doctor_id = $1 ORDER BY position",
        )
        .bind(doctor_id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .iter()
        .map(|s| specialization(&s.name))
        .collect::<Result<Vec<_>, _>>()?;
        row.into_profile(specializations).map(Some)
    }

    async fn directory(
        &self,
        specialization_name: Option<String>,
        page: PageRequest<UserId>,
    ) -> Result<Page<DoctorProfile, UserId>, RepositoryError> {
        let key = specialization_name.map(|name| name.trim().to_lowercase());
        let mut rows: Vec<ProfileRow> = sqlx::query_as(DIRECTORY)
            .bind(key)
            .bind(page.after().map(UserId::as_uuid))
            .bind(i64::from(page.limit()) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
        let more = rows.len() > page.limit() as usize;
        rows.truncate(page.limit() as usize);
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        // The page's specializations in one statement: those of the ids it spans,
        // kept for the doctors on it.
        let mut names = sqlx::query_as::<_, SpecializationRow>(
            "SELECT doctor_id, name FROM doctor_specializations \
             WHERE doctor_id >= $1 AND doctor_id <= $2 ORDER BY doctor_id, position",
        )
        .bind(first.id)
        .bind(last.id)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .peekable();
        let mut profiles = Vec::with_capacity(rows.len());
        for row in rows {
            let mut specializations = Vec::new();
            while let Some(name) = names.next_if(|s| s.doctor_id <= row.id) {
                if name.doctor_id == row.id {
                    specializations.push(specialization(&name.name)?);
                }
            }
            profiles.push(row.into_profile(specializations)?);
        }
        let next = if more {
            profiles.last().map(|p| p.doctor_id)
        } else {
            None
        };
        Ok(Page {
            items: profiles,
            next,
        })
    }

    async fn save_profile(
        &self,
        doctor_id: UserId,
        update: &ProfileUpdate,
        at: Timestamp,
    ) -> Result<(), RepositoryError> {
        let doctor = doctor_id.as_uuid();
        let mut tx = begin_change(&self.pool, doctor, at).await?;
        sqlx::query(
            "INSERT INTO doctor_profiles (doctor_id, bio, appointment_minutes, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (doctor_id) DO UPDATE SET bio = excluded.bio, \
             appointment_minutes = excluded.appointment_minutes, \
             updated_at = excluded.updated_at",
        )
        .bind(doctor)
        .bind(update.bio.as_ref().map(Text::as_str))
        .bind(i32::from(update.appointment_minutes))
        .bind(DbTime(at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("DELETE FROM doctor_specializations WHERE doctor_id = $1")
            .bind(doctor)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        for (position, specialization) in update.specializations.iter().enumerate() {
            let position = i32::try_from(position).map_err(RepositoryError::new)?;
            sqlx::query(
                "INSERT INTO doctor_specializations (doctor_id, position, name, name_key) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(doctor)
            .bind(position)
            .bind(specialization.as_str())
            .bind(specialization.key())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn schedule(
        &self,
        doctor_id: UserId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Schedule, RepositoryError> {
        let doctor = doctor_id.as_uuid();
        // One read transaction, the version read first: a change that commits after
        // it makes the version stale, so a booking checked against older rules fails.
        let mut tx = self.pool.begin().await.map_err(storage)?;
        let version: Option<(i64,)> =
            sqlx::query_as("SELECT version FROM doctor_schedules WHERE doctor_id = $1")
                .bind(doctor)
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
        let minutes: Option<(i32,)> =
            sqlx::query_as("SELECT appointment_minutes FROM doctor_profiles WHERE doctor_id = $1")
                .bind(doctor)
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
        let rules = sqlx::query_as::<_, RuleRow>(
            "SELECT weekday, start_minute, end_minute FROM availability_rules \
             WHERE doctor_id = $1 ORDER BY weekday, start_minute",
        )
        .bind(doctor)
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?
        .into_iter()
        .map(AvailabilityRule::try_from)
        .collect::<Result<Vec<_>, _>>()?;
        let time_off = sqlx::query_as::<_, TimeOffRow>(concat!(
            select_time_off!(),
            "WHERE doctor_id = $1 AND start_at < $3 AND end_at > $2 \
             ORDER BY start_at, id"
        ))
        .bind(doctor)
        .bind(DbTime(from))
        .bind(DbTime(to))
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?
        .into_iter()
        .map(TimeOff::try_from)
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await.map_err(storage)?;
        let appointment_minutes = match minutes {
            Some((minutes,)) => {
                u16::try_from(minutes).map_err(|e| corrupt("doctor_profiles", e))?
            }
            None => DEFAULT_APPOINTMENT_MINUTES,
        };
        Ok(Schedule {
            doctor_id,
            appointment_minutes,
            rules,
            time_off,
            version: version.map_or(0, |(version,)| version),
        })
    }

    async fn replace_rules(
        &self,
        doctor_id: UserId,
        rules: &[AvailabilityRule],
        at: Timestamp,
    ) -> Result<(), RepositoryError> {
        let doctor = doctor_id.as_uuid();
        let mut tx = begin_change(&self.pool, doctor, at).await?;
        sqlx::query("DELETE FROM availability_rules WHERE doctor_id = $1")
            .bind(doctor)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        for rule in rules {
            let minute = |m: u16| i16::try_from(m).map_err(RepositoryError::new);
            sqlx::query(
                "INSERT INTO availability_rules \
                 (doctor_id, weekday, start_minute, end_minute) VALUES ($1, $2, $3, $4)",
            )
            .bind(doctor)
            .bind(i16::from(rule.weekday.number()))
            .bind(minute(rule.start_minute())?)
            .bind(minute(rule.end_minute())?)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn add_time_off(&self, time_off: &TimeOff) -> Result<(), TimeOffError> {
        let doctor = time_off.doctor_id.as_uuid();
        let interval = Interval::new(time_off.start, time_off.end)
            .ok_or_else(|| RepositoryError::new("time off must end after it starts"))?;
        // The version first: from here on no booking of the doctor can commit (each
        // would find the version changed), so the check below sees every appointment.
        let mut tx = begin_change(&self.pool, doctor, time_off.created_at).await?;
        let conflicts = DB::select_conflicts(&mut tx, doctor, None, interval, None).await?;
        if !conflicts.is_empty() {
            tx.rollback().await.map_err(storage)?;
            return Err(TimeOffError::Conflicts(
                conflicts
                    .into_iter()
                    .map(|mut conflict| {
                        conflict.with = ConflictWith::Doctor;
                        conflict
                    })
                    .collect(),
            ));
        }
        sqlx::query(
            "INSERT INTO time_off \
             (id, doctor_id, start_at, end_at, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(time_off.id.as_uuid())
        .bind(doctor)
        .bind(DbTime(time_off.start))
        .bind(DbTime(time_off.end))
        .bind(time_off.reason.as_ref().map(Text::as_str))
        .bind(time_off.created_by.as_uuid())
        .bind(DbTime(time_off.created_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    async fn remove_time_off(
        &self,
        doctor_id: UserId,
        id: TimeOffId,
        at: Timestamp,
    ) -> Result<bool, RepositoryError> {
        let mut tx = begin_change(&self.pool, doctor_id.as_uuid(), at).await?;
        let removed = sqlx::query("DELETE FROM time_off WHERE id = $1 AND doctor_id = $2")
            .bind(id.as_uuid())
            .bind(doctor_id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        if removed.rows_affected() == 0 {
            tx.rollback().await.map_err(storage)?;
            return Ok(false);
        }
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn upcoming_time_off(
        &self,
        doctor_id: UserId,
        after: Timestamp,
    ) -> Result<Vec<TimeOff>, RepositoryError> {
        sqlx::query_as::<_, TimeOffRow>(concat!(
            select_time_off!(),
            "WHERE doctor_id = $1 AND end_at > $2 ORDER BY start_at, id"
        ))
        .bind(doctor_id.as_uuid())
        .bind(DbTime(after))
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(TimeOff::try_from)
        .collect()
    }
}
