//! Care-team memberships and emergency accesses, on SQLite and PostgreSQL, each change written
//! together with its audit event and its notifications.

use std::future::Future;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::RepositoryError;
use carehub_domain::kernel::{Page, PageRequest};
use carehub_domain::notifications::{NewNotification, Notification};
use carehub_domain::patients::PatientId;
use carehub_domain::patients::{
    AddMemberError, CareTeamMember, CareTeamRepository, EmergencyAccess, EmergencyAccessFilter,
    EmergencyAccessId, EmergencyAccessRepository, EmergencyReason, MembershipId,
};
use carehub_domain::referrals::ReferralId;
use carehub_domain::scheduling::AppointmentId;

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Backend, Constraint, Param, corrupt, joined_name, storage};
use crate::db::sql_time::DbTime;
use crate::notifications::{StoreNotifications, commit_notifying};

/// At most one open membership per doctor and patient, among those not opened by a booking (a
/// partial unique index).
const OPEN_MEMBERSHIP_KEY: Constraint = Constraint {
    name: "care_team_members_open_key",
    sqlite_columns: "care_team_members.patient_id, care_team_members.doctor_id",
};

/// The membership insert; [`InsertMember`] binds it.
pub(crate) const INSERT_MEMBER: &str = "INSERT INTO care_team_members \
     (id, patient_id, doctor_id, started_at, ended_at, added_by, ended_by, referral_id, \
     appointment_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The membership insert that does nothing when the doctor already has an open membership not
/// opened by a booking (the partial unique index `care_team_members_open_key`).
pub(crate) const INSERT_MEMBER_UNLESS_OPEN: &str = "INSERT INTO care_team_members \
     (id, patient_id, doctor_id, started_at, ended_at, added_by, ended_by, referral_id, \
     appointment_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (patient_id, doctor_id) WHERE ended_at IS NULL AND appointment_id IS NULL \
     DO NOTHING";

/// Writing a care-team membership on a connection inside a write transaction, the change's
/// own: when a doctor is added, when a patient is registered with its first members, when an
/// accepted referral opens one, and when a booking does. One implementation serves every
/// backend that binds the membership's columns.
pub(crate) trait InsertMember: Backend {
    /// Inserts `member` with `sql`, [`INSERT_MEMBER`] or [`INSERT_MEMBER_UNLESS_OPEN`].
    fn insert_member(
        conn: &mut Self::Connection,
        member: &CareTeamMember,
        sql: &'static str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl<DB> InsertMember for DB
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
{
    async fn insert_member(
        conn: &mut DB::Connection,
        member: &CareTeamMember,
        sql: &'static str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(sql)
            .bind(member.id.as_uuid())
            .bind(member.patient_id.as_uuid())
            .bind(member.doctor_id.as_uuid())
            .bind(DbTime(member.started_at))
            .bind(member.ended_at.map(DbTime))
            .bind(member.added_by.as_uuid())
            .bind(member.ended_by.as_ref().map(UserId::as_uuid))
            .bind(member.referral_id.as_ref().map(ReferralId::as_uuid))
            .bind(member.appointment_id.as_ref().map(AppointmentId::as_uuid))
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Care-team memberships, current and past.
#[derive(Debug, Clone)]
pub struct SqlCareTeamRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlCareTeamRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// Emergency ("break-the-glass") accesses.
#[derive(Debug, Clone)]
pub struct SqlEmergencyAccessRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlEmergencyAccessRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    doctor_name: Option<String>,
    started_at: DbTime,
    ended_at: Option<DbTime>,
    added_by: Uuid,
    ended_by: Option<Uuid>,
    referral_id: Option<Uuid>,
    appointment_id: Option<Uuid>,
}

impl TryFrom<MemberRow> for CareTeamMember {
    type Error = RepositoryError;

    fn try_from(row: MemberRow) -> Result<Self, Self::Error> {
        Ok(CareTeamMember {
            id: MembershipId::from_uuid(row.id),
            patient_id: PatientId::from_uuid(row.patient_id),
            doctor_id: UserId::from_uuid(row.doctor_id),
            doctor_name: joined_name(row.doctor_name.as_deref())?,
            started_at: row.started_at.0,
            ended_at: row.ended_at.map(|t| t.0),
            added_by: UserId::from_uuid(row.added_by),
            ended_by: row.ended_by.map(UserId::from_uuid),
            referral_id: row.referral_id.map(ReferralId::from_uuid),
            appointment_id: row.appointment_id.map(AppointmentId::from_uuid),
        })
    }
}

#[derive(sqlx::FromRow)]
struct EmergencyAccessRow {
    id: Uuid,
    patient_id: Uuid,
    doctor_id: Uuid,
    doctor_name: Option<String>,
    reason: String,
    granted_at: DbTime,
    expires_at: DbTime,
}

impl TryFrom<EmergencyAccessRow> for EmergencyAccess {
    type Error = RepositoryError;

    fn try_from(row: EmergencyAccessRow) -> Result<Self, Self::Error> {
        Ok(EmergencyAccess {
            id: EmergencyAccessId::from_uuid(row.id),
            patient_id: PatientId::from_uuid(row.patient_id),
            doctor_id: UserId::from_uuid(row.doctor_id),
            doctor_name: joined_name(row.doctor_name.as_deref())?,
            reason: EmergencyReason::parse(&row.reason)
                .map_err(|e| corrupt("emergency_accesses", e))?,
            granted_at: row.granted_at.0,
            expires_at: row.expires_at.0,
        })
    }
}

/// Memberships with their doctor's name, as a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! select_members {
    () => {
        "SELECT m.id, m.patient_id, m.doctor_id, u.full_name AS doctor_name, \
         m.started_at, m.ended_at, m.added_by, m.ended_by, m.referral_id, m.appointment_id \
         FROM care_team_members m LEFT JOIN users u ON u.id = m.doctor_id "
    };
}

#[async_trait]
impl<DB> CareTeamRepository for SqlCareTeamRepository<DB>
where
    DB: InsertMember + InsertAuditEvent + StoreNotifications,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> (Uuid,): FromRow<'r, DB::Row>,
    for<'r> MemberRow: FromRow<'r, DB::Row>,
{
    async fn add(
        &self,
        member: &CareTeamMember,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, AddMemberError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        DB::insert_member(&mut tx, member, INSERT_MEMBER)
            .await
            .map_err(|e| {
                if OPEN_MEMBERSHIP_KEY.violated_by(&e) {
                    AddMemberError::AlreadyMember
                } else {
                    AddMemberError::Repository(storage(e))
                }
            })?;
        let stored = commit_notifying(tx, audit, notifications, audit.at)
            .await
            .map_err(storage)?;
        Ok(stored)
    }

    async fn end(
        &self,
        patient_id: PatientId,
        doctor_id: UserId,
        at: Timestamp,
        ended_by: UserId,
        audit: &AuditEvent,
    ) -> Result<Option<CareTeamMember>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let ended: Option<(Uuid,)> = sqlx::query_as(
            "UPDATE care_team_members SET ended_at = $3, ended_by = $4 \
             WHERE patient_id = $1 AND doctor_id = $2 AND ended_at IS NULL \
             AND appointment_id IS NULL RETURNING id",
        )
        .bind(patient_id.as_uuid())
        .bind(doctor_id.as_uuid())
        .bind(DbTime(at))
        .bind(ended_by.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?;
        let Some((id,)) = ended else {
            tx.rollback().await.map_err(storage)?;
            return Ok(None);
        };
        let row = sqlx::query_as::<_, MemberRow>(concat!(select_members!(), "WHERE m.id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        CareTeamMember::try_from(row).map(Some)
    }

    async fn list(&self, patient_id: PatientId) -> Result<Vec<CareTeamMember>, RepositoryError> {
        sqlx::query_as::<_, MemberRow>(concat!(
            select_members!(),
            "WHERE m.patient_id = $1 ORDER BY m.started_at, m.id"
        ))
        .bind(patient_id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(CareTeamMember::try_from)
        .collect()
    }
}

#[async_trait]
impl<DB> EmergencyAccessRepository for SqlEmergencyAccessRepository<DB>
where
    DB: InsertAuditEvent + StoreNotifications,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> EmergencyAccessRow: FromRow<'r, DB::Row>,
{
    async fn grant(
        &self,
        access: &EmergencyAccess,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, RepositoryError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO emergency_accesses \
             (id, patient_id, doctor_id, reason, granted_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(access.id.as_uuid())
        .bind(access.patient_id.as_uuid())
        .bind(access.doctor_id.as_uuid())
        .bind(access.reason.as_str())
        .bind(DbTime(access.granted_at))
        .bind(DbTime(access.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        let stored = commit_notifying(tx, audit, notifications, audit.at)
            .await
            .map_err(storage)?;
        Ok(stored)
    }

    async fn list(
        &self,
        filter: EmergencyAccessFilter,
        page: PageRequest<EmergencyAccessId>,
    ) -> Result<Page<EmergencyAccess, EmergencyAccessId>, RepositoryError> {
        let rows = sqlx::query_as::<_, EmergencyAccessRow>(
            "SELECT e.id, e.patient_id, e.doctor_id, u.full_name AS doctor_name, \
             e.reason, e.granted_at, e.expires_at \
             FROM emergency_accesses e LEFT JOIN users u ON u.id = e.doctor_id \
             WHERE ($1 IS NULL OR e.patient_id = $1) \
             AND ($2 IS NULL OR e.doctor_id = $2) \
             AND ($3 IS NULL OR (e.granted_at <= $3 AND e.expires_at > $3)) \
             AND ($4 IS NULL OR e.expires_at <= $4) \
             AND ($5 IS NULL OR e.id < $5) \
             ORDER BY e.id DESC LIMIT $6",
        )
        .bind(filter.patient_id.as_ref().map(PatientId::as_uuid))
        .bind(filter.doctor_id.as_ref().map(UserId::as_uuid))
        .bind(filter.active_at.map(DbTime))
        .bind(filter.expired_at.map(DbTime))
        .bind(page.after().map(EmergencyAccessId::as_uuid))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let accesses = rows
            .into_iter()
            .map(EmergencyAccess::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(accesses, page.limit(), |a| a.id))
    }
}
