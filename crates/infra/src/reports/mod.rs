//! Reports on SQLite and PostgreSQL: counts, sums and percentiles over a period, each method in
//! one read transaction so that its figures agree.
//!
//! The SQL is shared but for two things: how many microseconds lie between two instants (on
//! SQLite they are integer microseconds, so it is their difference; PostgreSQL subtracts them
//! into an `interval`), and how a transaction that reads one snapshot starts. Those differ in
//! [`ReportSql`], one implementation per backend. Percentiles are computed by the same
//! ordered-offset query on both (SQLite has no percentile function): the values are numbered in
//! order with window functions, and the two nearest a percentile's position are interpolated
//! between, as PostgreSQL's `percentile_cont` does.

use std::collections::HashMap;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use sqlx::{Executor, FromRow, Pool, Postgres, Sqlite};
use uuid::Uuid;

use carehub_domain::identity::{FullName, UserId};
use carehub_domain::jobs::{JobKind, JobState};
use carehub_domain::kernel::RepositoryError;
use carehub_domain::reports::{
    AcceptanceTimes, Activity, DoctorTime, NotificationFigures, ReportRepository, StatusCount,
    TIME_HOLDING_STATUSES,
};
use carehub_domain::scheduling::{AvailabilityRule, Interval, Weekday};

use crate::db::backend::{Backend, Param, corrupt, storage};
use crate::db::sql_time::DbTime;

/// The clinic's reports.
#[derive(Debug, Clone)]
pub struct SqlReportRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlReportRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// What the report SQL of each backend says its own way.
pub(crate) trait ReportSql: Backend {
    /// Starts a transaction that reads one snapshot of the database throughout.
    const BEGIN_READ: &'static str;
    /// Each active doctor, by id, with the microseconds their appointments spend inside the
    /// period, summed. Binds: `$1` from, `$2` to, `$3` to `$7` the statuses of the appointments
    /// that count. Rows: `DoctorRow`.
    const BOOKED: &'static str;
    /// Of the referrals sent in the period and accepted since, how many, and the median and
    /// 90th percentile of how long they waited. Binds: `$1` from, `$2` to. Row:
    /// `AcceptanceRow`, the percentiles in tenths of a microsecond.
    const ACCEPTANCE: &'static str;
}

/// [`ReportSql::BOOKED`], with `$open b - a $close` the microseconds from `a` to `b`, as a
/// literal for `concat!`. Each appointment counts with the part of it inside `[$1, $2)`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! booked_time {
    ($open:literal, $close:literal) => {
        concat!(
            "SELECT u.id, u.full_name, COALESCE(b.booked_micros, 0) AS booked_micros \
             FROM users u \
             LEFT JOIN (SELECT a.doctor_id, CAST(SUM(",
            $open,
            "CASE WHEN a.end_at < $2 THEN a.end_at ELSE $2 END \
             - CASE WHEN a.start_at > $1 THEN a.start_at ELSE $1 END",
            $close,
            ") AS BIGINT) AS booked_micros \
                 FROM appointments a \
                 WHERE a.status IN ($3, $4, $5, $6, $7) AND a.start_at < $2 AND a.end_at > $1 \
                 GROUP BY a.doctor_id) b ON b.doctor_id = u.id \
             WHERE u.role = 'doctor' AND u.status = 'active' \
             ORDER BY u.id"
        )
    };
}

/// [`ReportSql::ACCEPTANCE`], with `$open b - a $close` the microseconds from `a` to `b`, as a
/// literal for `concat!`.
///
/// With the waits in order numbered `i` = 0 to `top`, percentile `p` lies at position
/// `top * p`: between the waits numbered `top * p / 10` and the next (integer division, `p`
/// in tenths), at `top * p % 10` tenths of the way. The weighted sum of the two, in integers,
/// is the percentile in tenths of a microsecond, exact on both backends.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! acceptance_times {
    ($open:literal, $close:literal) => {
        concat!(
            "WITH waits AS (SELECT ",
            $open,
            "accepted_at - created_at",
            $close,
            " AS micros FROM referrals \
                 WHERE created_at >= $1 AND created_at < $2 AND accepted_at IS NOT NULL), \
             ranked AS (SELECT micros, ROW_NUMBER() OVER (ORDER BY micros) - 1 AS i, \
                 COUNT(*) OVER () - 1 AS top FROM waits) \
             SELECT COUNT(*) AS accepted, \
                 CAST(SUM(CASE WHEN i = top * 5 / 10 THEN micros * (10 - top * 5 % 10) \
                     WHEN i = top * 5 / 10 + 1 THEN micros * (top * 5 % 10) \
                     ELSE 0 END) AS BIGINT) AS median_tenth_micros, \
                 CAST(SUM(CASE WHEN i = top * 9 / 10 THEN micros * (10 - top * 9 % 10) \
                     WHEN i = top * 9 / 10 + 1 THEN micros * (top * 9 % 10) \
                     ELSE 0 END) AS BIGINT) AS p90_tenth_micros \
             FROM ranked"
        )
    };
}

impl ReportSql for Sqlite {
    // A deferred transaction: in WAL mode it reads one snapshot from its first read on.
    const BEGIN_READ: &'static str = "BEGIN";
    // Instants are integer microseconds: their difference is the microseconds between them.
    const BOOKED: &'static str = booked_time!("(", ")");
    const ACCEPTANCE: &'static str = acceptance_times!("(", ")");
}

impl ReportSql for Postgres {
    // Every statement of the transaction sees the snapshot of its first.
    const BEGIN_READ: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    // Instants subtract into an interval, whose epoch is its length in seconds (to the
    // microsecond, which timestamptz keeps).
    const BOOKED: &'static str =
        booked_time!("CAST(EXTRACT(EPOCH FROM (", ")) * 1000000 AS BIGINT)");
    const ACCEPTANCE: &'static str =
        acceptance_times!("CAST(EXTRACT(EPOCH FROM (", ")) * 1000000 AS BIGINT)");
}

/// `BOOKED` binds one parameter for each of these.
const _: () = assert!(TIME_HOLDING_STATUSES.len() == 5);

/// Counts of `[$1, $2)`. Binds: `$3` the notification e-mail's job kind, `$4` the succeeded
/// state, `$5` and `$6` the failed and dead states.
const COUNTS: &str = "SELECT \
     (SELECT COUNT(*) FROM patients WHERE created_at >= $1 AND created_at < $2) \
         AS patients_registered, \
     (SELECT COUNT(*) FROM notifications WHERE created_at >= $1 AND created_at < $2) \
         AS notifications_stored, \
     (SELECT COUNT(*) FROM notifications \
         WHERE created_at >= $1 AND created_at < $2 AND read_at IS NOT NULL) \
         AS notifications_read, \
     (SELECT COUNT(*) FROM jobs \
         WHERE kind = $3 AND state = $4 AND created_at >= $1 AND created_at < $2) AS emailed, \
     (SELECT COUNT(*) FROM jobs \
         WHERE kind = $3 AND state IN ($5, $6) AND created_at >= $1 AND created_at < $2) \
         AS email_failures";

/// Appointments starting in `[$1, $2)`, by status.
const APPOINTMENTS_BY_STATUS: &str = "SELECT status, COUNT(*) AS total FROM appointments \
     WHERE start_at >= $1 AND start_at < $2 GROUP BY status";

/// Referrals sent in `[$1, $2)`, by status.
const REFERRALS_BY_STATUS: &str = "SELECT status, COUNT(*) AS total FROM referrals \
     WHERE created_at >= $1 AND created_at < $2 GROUP BY status";

/// The weekly rules of every active doctor, as they are sorted.
const RULES: &str = "SELECT r.doctor_id, r.weekday, r.start_minute, r.end_minute \
     FROM availability_rules r JOIN users u ON u.id = r.doctor_id \
     WHERE u.role = 'doctor' AND u.status = 'active' \
     ORDER BY r.doctor_id, r.weekday, r.start_minute";

/// The time off of every active doctor overlapping `[$1, $2)`.
const TIME_OFF: &str = "SELECT t.doctor_id, t.start_at, t.end_at \
     FROM time_off t JOIN users u ON u.id = t.doctor_id \
     WHERE u.role = 'doctor' AND u.status = 'active' AND t.start_at < $2 AND t.end_at > $1 \
     ORDER BY t.doctor_id, t.start_at";

// ---- Rows ------------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct CountsRow {
    patients_registered: i64,
    notifications_stored: i64,
    notifications_read: i64,
    emailed: i64,
    email_failures: i64,
}

#[derive(sqlx::FromRow)]
struct StatusRow {
    status: String,
    total: i64,
}

#[derive(sqlx::FromRow)]
struct AcceptanceRow {
    accepted: i64,
    median_tenth_micros: Option<i64>,
    p90_tenth_micros: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DoctorRow {
    id: Uuid,
    full_name: String,
    booked_micros: i64,
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    doctor_id: Uuid,
    weekday: i16,
    start_minute: i16,
    end_minute: i16,
}

#[derive(sqlx::FromRow)]
struct TimeOffRow {
    doctor_id: Uuid,
    start_at: DbTime,
    end_at: DbTime,
}

/// Tenths of a microsecond as seconds.
fn seconds_of_tenth_micros(tenths: i64) -> f64 {
    tenths as f64 / 10_000_000.0
}

/// A count as stored, which is never negative.
fn count(table: &str, raw: i64) -> Result<u64, RepositoryError> {
    u64::try_from(raw).map_err(|e| corrupt(table, e))
}

/// Status counts, each status read back through the domain's enum.
fn by_status<S: std::str::FromStr<Err = String>>(
    table: &str,
    rows: Vec<StatusRow>,
) -> Result<Vec<StatusCount<S>>, RepositoryError> {
    rows.into_iter()
        .map(|row| {
            Ok(StatusCount {
                status: row.status.parse().map_err(|e| corrupt(table, e))?,
                count: count(table, row.total)?,
            })
        })
        .collect()
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

#[async_trait]
impl<DB> ReportRepository for SqlReportRepository<DB>
where
    DB: ReportSql,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> CountsRow: FromRow<'r, DB::Row>,
    for<'r> StatusRow: FromRow<'r, DB::Row>,
    for<'r> AcceptanceRow: FromRow<'r, DB::Row>,
    for<'r> DoctorRow: FromRow<'r, DB::Row>,
    for<'r> RuleRow: FromRow<'r, DB::Row>,
    for<'r> TimeOffRow: FromRow<'r, DB::Row>,
{
    async fn activity(&self, from: Timestamp, to: Timestamp) -> Result<Activity, RepositoryError> {
        let (from, to) = (DbTime(from), DbTime(to));
        let mut tx = self
            .pool
            .begin_with(DB::BEGIN_READ)
            .await
            .map_err(storage)?;
        let counts: CountsRow = sqlx::query_as(COUNTS)
            .bind(from)
            .bind(to)
            .bind(JobKind::NotificationEmail.as_str())
            .bind(JobState::Succeeded.as_str())
            .bind(JobState::Failed.as_str())
            .bind(JobState::Dead.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
        let appointments: Vec<StatusRow> = sqlx::query_as(APPOINTMENTS_BY_STATUS)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
        let referrals: Vec<StatusRow> = sqlx::query_as(REFERRALS_BY_STATUS)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
        let acceptance: AcceptanceRow = sqlx::query_as(DB::ACCEPTANCE)
            .bind(from)
            .bind(to)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(Activity {
            patients_registered: count("patients", counts.patients_registered)?,
            appointments: by_status("appointments", appointments)?,
            referrals: by_status("referrals", referrals)?,
            acceptance: AcceptanceTimes {
                accepted: count("referrals", acceptance.accepted)?,
                median_secs: acceptance.median_tenth_micros.map(seconds_of_tenth_micros),
                p90_secs: acceptance.p90_tenth_micros.map(seconds_of_tenth_micros),
            },
            notifications: NotificationFigures {
                stored: count("notifications", counts.notifications_stored)?,
                read: count("notifications", counts.notifications_read)?,
                emailed: count("jobs", counts.emailed)?,
                email_failures: count("jobs", counts.email_failures)?,
            },
        })
    }

    async fn doctor_time(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<DoctorTime>, RepositoryError> {
        let (from, to) = (DbTime(from), DbTime(to));
        let mut tx = self
            .pool
            .begin_with(DB::BEGIN_READ)
            .await
            .map_err(storage)?;
        let mut booked = sqlx::query_as::<_, DoctorRow>(DB::BOOKED)
            .bind(from)
            .bind(to);
        for status in TIME_HOLDING_STATUSES {
            booked = booked.bind(status.as_str());
        }
        let doctors: Vec<DoctorRow> = booked.fetch_all(&mut *tx).await.map_err(storage)?;
        let rules: Vec<RuleRow> = sqlx::query_as(RULES)
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
        let time_off: Vec<TimeOffRow> = sqlx::query_as(TIME_OFF)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;

        let mut rules_of: HashMap<Uuid, Vec<AvailabilityRule>> = HashMap::new();
        for row in rules {
            let doctor = row.doctor_id;
            rules_of
                .entry(doctor)
                .or_default()
                .push(AvailabilityRule::try_from(row)?);
        }
        let mut time_off_of: HashMap<Uuid, Vec<Interval>> = HashMap::new();
        for row in time_off {
            let interval = Interval::new(row.start_at.0, row.end_at.0)
                .ok_or_else(|| corrupt("time_off", "it does not end after it starts"))?;
            time_off_of.entry(row.doctor_id).or_default().push(interval);
        }
        doctors
            .into_iter()
            .map(|row| {
                Ok(DoctorTime {
                    doctor_id: UserId::from_uuid(row.id),
                    full_name: FullName::parse(&row.full_name).map_err(|e| corrupt("users", e))?,
                    rules: rules_of.remove(&row.id).unwrap_or_default(),
                    time_off: time_off_of.remove(&row.id).unwrap_or_default(),
                    booked: SignedDuration::from_micros(row.booked_micros),
                })
            })
            .collect()
    }
}
