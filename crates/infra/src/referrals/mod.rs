//! Referrals on SQLite and PostgreSQL: one `referrals` row each, its snapshot kept as JSON in
//! infra's own shape (see `snapshot`) (so that a change to the domain's or the API's serde cannot silently
//! change what stored snapshots mean), each change written with its audit event, the
//! membership an acceptance opens, and its notifications, in one transaction.

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::{Page, PageRequest, RepositoryError, Text};
use carehub_domain::notifications::{NewNotification, Notification};
use carehub_domain::patients::PatientId;
use carehub_domain::referrals::{
    Referral, ReferralBox, ReferralId, ReferralQuery, ReferralRepository, ReferralSnapshot,
    ReferralStatus, StatusChange,
};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Param, RowsAffected as _, corrupt, joined_name, storage};
use crate::db::sql_time::DbTime;
use crate::jobs::InsertJobs;
use crate::notifications::{StoreNotifications, commit_notifying};
use crate::patients::{INSERT_MEMBER_UNLESS_OPEN, InsertMember};
use carehub_domain::jobs::NewJob;

mod snapshot;

use snapshot::StoredSnapshot;

/// Stored text was bounded when it was validated on the way in; reading it back only checks
/// that it is still well-formed, so a later change of a limit cannot make old rows corrupt.
const STORED: usize = usize::MAX;

/// Referrals and their snapshots.
#[derive(Debug, Clone)]
pub struct SqlReferralRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlReferralRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

// ---- Rows ------------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct ReferralRow {
    id: Uuid,
    patient_id: Uuid,
    patient_name: String,
    from_doctor_id: Uuid,
    from_doctor_name: Option<String>,
    to_doctor_id: Uuid,
    to_doctor_name: Option<String>,
    reason: String,
    urgency: String,
    status: String,
    decline_reason: Option<String>,
    outcome: Option<String>,
    created_at: DbTime,
    updated_at: DbTime,
}

#[derive(sqlx::FromRow)]
struct ReferralDetailRow {
    #[sqlx(flatten)]
    referral: ReferralRow,
    snapshot: Json<StoredSnapshot>,
}

fn column_text(raw: &str) -> Result<Text, RepositoryError> {
    Text::multiline(raw, STORED).map_err(|e| corrupt("referrals", e))
}

impl TryFrom<ReferralRow> for Referral {
    type Error = RepositoryError;

    fn try_from(row: ReferralRow) -> Result<Self, Self::Error> {
        Ok(Referral {
            id: ReferralId::from_uuid(row.id),
            patient_id: PatientId::from_uuid(row.patient_id),
            patient_name: row.patient_name,
            from_doctor_id: UserId::from_uuid(row.from_doctor_id),
            from_doctor_name: joined_name(row.from_doctor_name.as_deref())?,
            to_doctor_id: UserId::from_uuid(row.to_doctor_id),
            to_doctor_name: joined_name(row.to_doctor_name.as_deref())?,
            reason: column_text(&row.reason)?,
            urgency: row.urgency.parse().map_err(|e| corrupt("referrals", e))?,
            status: row.status.parse().map_err(|e| corrupt("referrals", e))?,
            decline_reason: row.decline_reason.as_deref().map(column_text).transpose()?,
            outcome: row.outcome.as_deref().map(column_text).transpose()?,
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        })
    }
}

/// Referrals with both doctors' names (and `$extra` columns of `r`), as a literal for
/// `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! select_referrals {
    () => {
        select_referrals!("")
    };
    ($extra:literal) => {
        concat!(
            "SELECT r.id, r.patient_id, r.patient_name, r.from_doctor_id, \
             f.full_name AS from_doctor_name, r.to_doctor_id, t.full_name AS to_doctor_name, \
             r.reason, r.urgency, r.status, r.decline_reason, r.outcome, r.created_at, \
             r.updated_at",
            $extra,
            " FROM referrals r \
             LEFT JOIN users f ON f.id = r.from_doctor_id \
             LEFT JOIN users t ON t.id = r.to_doctor_id "
        )
    };
}

/// One box, newest first: `$1` the doctor, `$2` the id to continue below, `$3` the limit, and
/// `$4` the status where the query filters by one. One statement per case, so that each uses
/// its index.
const INBOX: &str = concat!(
    select_referrals!(),
    "WHERE r.to_doctor_id = $1 AND ($2 IS NULL OR r.id < $2) ORDER BY r.id DESC LIMIT $3"
);
const INBOX_BY_STATUS: &str = concat!(
    select_referrals!(),
    "WHERE r.to_doctor_id = $1 AND r.status = $4 AND ($2 IS NULL OR r.id < $2) \
     ORDER BY r.id DESC LIMIT $3"
);
const OUTBOX: &str = concat!(
    select_referrals!(),
    "WHERE r.from_doctor_id = $1 AND ($2 IS NULL OR r.id < $2) ORDER BY r.id DESC LIMIT $3"
);
const OUTBOX_BY_STATUS: &str = concat!(
    select_referrals!(),
    "WHERE r.from_doctor_id = $1 AND r.status = $4 AND ($2 IS NULL OR r.id < $2) \
     ORDER BY r.id DESC LIMIT $3"
);

#[async_trait]
impl<DB> ReferralRepository for SqlReferralRepository<DB>
where
    DB: InsertMember + InsertAuditEvent + StoreNotifications + InsertJobs,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> Json<&'a StoredSnapshot>: Param<'a, DB>,
    for<'r> ReferralRow: FromRow<'r, DB::Row>,
    for<'r> ReferralDetailRow: FromRow<'r, DB::Row>,
{
    async fn create(
        &self,
        referral: &Referral,
        snapshot: &ReferralSnapshot,
        audit: &AuditEvent,
        notifications: &[NewNotification],
        jobs: &[NewJob],
    ) -> Result<Vec<Notification>, RepositoryError> {
        let stored_snapshot = StoredSnapshot::of(snapshot);
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO referrals (id, patient_id, patient_name, from_doctor_id, \
             to_doctor_id, reason, urgency, status, decline_reason, outcome, \
             created_at, updated_at, snapshot) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(referral.id.as_uuid())
        .bind(referral.patient_id.as_uuid())
        .bind(referral.patient_name.as_str())
        .bind(referral.from_doctor_id.as_uuid())
        .bind(referral.to_doctor_id.as_uuid())
        .bind(referral.reason.as_str())
        .bind(referral.urgency.as_str())
        .bind(referral.status.as_str())
        .bind(referral.decline_reason.as_ref().map(Text::as_str))
        .bind(referral.outcome.as_ref().map(Text::as_str))
        .bind(DbTime(referral.created_at))
        .bind(DbTime(referral.updated_at))
        .bind(Json(&stored_snapshot))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        DB::insert_jobs(&mut tx, jobs, referral.created_at)
            .await
            .map_err(storage)?;
        let stored = commit_notifying(tx, audit, notifications, referral.created_at)
            .await
            .map_err(storage)?;
        Ok(stored)
    }

    async fn find(&self, id: ReferralId) -> Result<Option<Referral>, RepositoryError> {
        sqlx::query_as::<_, ReferralRow>(concat!(select_referrals!(), "WHERE r.id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?
            .map(Referral::try_from)
            .transpose()
    }

    async fn find_detail(
        &self,
        id: ReferralId,
    ) -> Result<Option<(Referral, ReferralSnapshot)>, RepositoryError> {
        let row = sqlx::query_as::<_, ReferralDetailRow>(concat!(
            select_referrals!(", r.snapshot"),
            "WHERE r.id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let referral = Referral::try_from(row.referral)?;
        let snapshot = row.snapshot.0.into_snapshot()?;
        Ok(Some((referral, snapshot)))
    }

    async fn list(
        &self,
        query: ReferralQuery,
        page: PageRequest<ReferralId>,
    ) -> Result<Page<Referral, ReferralId>, RepositoryError> {
        let sql = match (query.referral_box, query.status) {
            (ReferralBox::Inbox, None) => INBOX,
            (ReferralBox::Inbox, Some(_)) => INBOX_BY_STATUS,
            (ReferralBox::Outbox, None) => OUTBOX,
            (ReferralBox::Outbox, Some(_)) => OUTBOX_BY_STATUS,
        };
        let mut select = sqlx::query_as::<_, ReferralRow>(sql)
            .bind(query.doctor_id.as_uuid())
            .bind(page.after().map(ReferralId::as_uuid))
            .bind(i64::from(page.limit()) + 1);
        if let Some(status) = query.status {
            select = select.bind(status.as_str());
        }
        let referrals = select
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?
            .into_iter()
            .map(Referral::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(referrals, page.limit(), |r| r.id))
    }

    async fn change_status(
        &self,
        change: &StatusChange,
        audit: &AuditEvent,
        notifications: &[NewNotification],
    ) -> Result<Option<Vec<Notification>>, RepositoryError> {
        let note = change.note.as_ref().map(Text::as_str);
        let decline_reason = note.filter(|_| change.to == ReferralStatus::Declined);
        let outcome = note.filter(|_| change.to == ReferralStatus::Completed);
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        // The condition on the status makes the change conditional: of two concurrent
        // changes from one status, the second finds no row (on PostgreSQL it waits for
        // the first to commit, then re-reads the row). An acceptance also records when it
        // happened, which a completion keeps.
        let changed = sqlx::query(
            "UPDATE referrals SET status = $3, decline_reason = $4, outcome = $5, \
             updated_at = $6, \
             accepted_at = CASE WHEN $3 = 'accepted' THEN $6 ELSE accepted_at END \
             WHERE id = $1 AND status = $2",
        )
        .bind(change.id.as_uuid())
        .bind(change.from.as_str())
        .bind(change.to.as_str())
        .bind(decline_reason)
        .bind(outcome)
        .bind(DbTime(change.at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if changed.rows_affected() == 0 {
            tx.rollback().await.map_err(storage)?;
            return Ok(None);
        }
        if let Some(member) = &change.membership {
            // A doctor already on the care team stays on it as they were.
            DB::insert_member(&mut tx, member, INSERT_MEMBER_UNLESS_OPEN)
                .await
                .map_err(storage)?;
        }
        let stored = commit_notifying(tx, audit, notifications, change.at)
            .await
            .map_err(storage)?;
        Ok(Some(stored))
    }
}
