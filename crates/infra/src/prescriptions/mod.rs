//! Prescriptions on SQLite and PostgreSQL. A prescription is inserted once; ending it changes
//! its status only while it is still active, so that of two doctors ending it at once the
//! second is told it moved. Each change is written with its audit events, notifications and
//! jobs in one transaction.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::identity::UserId;
use carehub_domain::kernel::{Page, PageRequest, PatientId, PrescriptionId, RepositoryError, Text};
use carehub_domain::notifications::Notification;
use carehub_domain::patients::PatientSummary;
use carehub_domain::prescriptions::{
    AllergyMatch, AllergyOverride, MatchReason, Prescription, PrescriptionChange,
    PrescriptionChangeError, PrescriptionRepository, PrescriptionStatus, PrescriptionView,
};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Constraint, Param, RowsAffected as _, corrupt, joined_name, storage};
use crate::db::sql_time::DbTime;
use crate::jobs::InsertJobs;
use crate::notifications::StoreNotifications;
use crate::patients::SummaryRow;

/// Stored text was bounded when it was validated on the way in.
const STORED: usize = usize::MAX;

/// A prescription is replaced once: a second replacement, racing the first, is refused here
/// before its ending is even tried.
const ONE_REPLACEMENT: Constraint = Constraint {
    name: "prescriptions_replaces_idx",
    sqlite_columns: "prescriptions.replaces",
};

/// Prescriptions.
#[derive(Debug, Clone)]
pub struct SqlPrescriptionRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlPrescriptionRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// An allergy an overridden prescription matched, in infra's own shape.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredMatch {
    substance: String,
    /// `same_substance` or `drug_class`.
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<String>,
}

impl StoredMatch {
    fn of(m: &AllergyMatch) -> Self {
        let (reason, class) = match &m.reason {
            MatchReason::SameSubstance => ("same_substance", None),
            MatchReason::DrugClass(class) => ("drug_class", Some(class.clone())),
        };
        Self {
            substance: m.substance.clone(),
            reason: reason.to_owned(),
            class,
        }
    }

    fn into_match(self) -> Result<AllergyMatch, RepositoryError> {
        let reason = match (self.reason.as_str(), self.class) {
            ("same_substance", None) => MatchReason::SameSubstance,
            ("drug_class", Some(class)) => MatchReason::DrugClass(class),
            (other, _) => return Err(corrupt("prescriptions", format!("match reason {other}"))),
        };
        Ok(AllergyMatch {
            substance: self.substance,
            reason,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PrescriptionRow {
    prescription_id: Uuid,
    prescribed_by: Uuid,
    prescribed_by_name: Option<String>,
    medication: String,
    dose: String,
    route: String,
    frequency: String,
    duration_days: Option<i64>,
    quantity: Option<i64>,
    refills: i64,
    instructions: String,
    override_reason: Option<String>,
    override_matches: Option<Json<Vec<StoredMatch>>>,
    replaces: Option<Uuid>,
    status: String,
    stop_reason: Option<String>,
    replaced_by: Option<Uuid>,
    ended_by: Option<Uuid>,
    ended_at: Option<DbTime>,
    created_at: DbTime,
    #[sqlx(flatten)]
    patient: SummaryRow,
}

fn text(raw: &str) -> Result<Text, RepositoryError> {
    Text::multiline(raw, STORED).map_err(|e| corrupt("prescriptions", e))
}

fn number<T: TryFrom<i64>>(raw: i64) -> Result<T, RepositoryError> {
    T::try_from(raw).map_err(|_| corrupt("prescriptions", format!("number {raw}")))
}

impl TryFrom<PrescriptionRow> for PrescriptionView {
    type Error = RepositoryError;

    fn try_from(row: PrescriptionRow) -> Result<Self, Self::Error> {
        let patient = PatientSummary::try_from(row.patient)?;
        let allergy_override = match (row.override_reason, row.override_matches) {
            (Some(reason), Some(matches)) => Some(AllergyOverride {
                reason: text(&reason)?,
                matches: matches
                    .0
                    .into_iter()
                    .map(StoredMatch::into_match)
                    .collect::<Result<_, _>>()?,
            }),
            (None, None) => None,
            _ => return Err(corrupt("prescriptions", "override without its matches")),
        };
        let prescription = Prescription {
            id: PrescriptionId::from_uuid(row.prescription_id),
            patient_id: patient.id,
            prescribed_by: UserId::from_uuid(row.prescribed_by),
            medication: text(&row.medication)?,
            dose: text(&row.dose)?,
            route: row.route.parse().map_err(|e| corrupt("prescriptions", e))?,
            frequency: text(&row.frequency)?,
            duration_days: row.duration_days.map(number).transpose()?,
            quantity: row.quantity.map(number).transpose()?,
            refills: number(row.refills)?,
            instructions: text(&row.instructions)?,
            allergy_override,
            replaces: row.replaces.map(PrescriptionId::from_uuid),
            status: row
                .status
                .parse()
                .map_err(|e| corrupt("prescriptions", e))?,
            stop_reason: row.stop_reason.as_deref().map(text).transpose()?,
            replaced_by: row.replaced_by.map(PrescriptionId::from_uuid),
            ended_by: row.ended_by.map(UserId::from_uuid),
            ended_at: row.ended_at.map(|t| t.0),
            created_at: row.created_at.0,
        };
        Ok(PrescriptionView {
            prescription,
            patient,
            prescribed_by_name: joined_name(row.prescribed_by_name.as_deref())?,
        })
    }
}

const SELECT_PRESCRIPTIONS: &str = "SELECT r.id AS prescription_id, r.prescribed_by, \
     u.full_name AS prescribed_by_name, r.medication, r.dose, r.route, r.frequency, \
     r.duration_days, r.quantity, r.refills, r.instructions, r.override_reason, \
     r.override_matches, r.replaces, r.status, r.stop_reason, r.replaced_by, r.ended_by, \
     r.ended_at, r.created_at, p.id, p.mrn, p.full_name, p.date_of_birth, p.sex \
     FROM prescriptions r JOIN patients p ON p.id = r.patient_id \
     LEFT JOIN users u ON u.id = r.prescribed_by ";

#[async_trait]
impl<DB> PrescriptionRepository for SqlPrescriptionRepository<DB>
where
    DB: InsertAuditEvent + StoreNotifications + InsertJobs,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> Option<i64>: Param<'a, DB>,
    for<'a> Option<Json<&'a [StoredMatch]>>: Param<'a, DB>,
    for<'r> PrescriptionRow: FromRow<'r, DB::Row>,
{
    async fn save<'a>(
        &self,
        change: PrescriptionChange<'a>,
    ) -> Result<Vec<Notification>, PrescriptionChangeError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        if let Some(written) = change.written {
            let matches: Option<Vec<StoredMatch>> = written
                .allergy_override
                .as_ref()
                .map(|o| o.matches.iter().map(StoredMatch::of).collect());
            sqlx::query(
                "INSERT INTO prescriptions (id, patient_id, prescribed_by, medication, dose, \
                 route, frequency, duration_days, quantity, refills, instructions, \
                 override_reason, override_matches, replaces, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(*written.id.as_uuid())
            .bind(*written.patient_id.as_uuid())
            .bind(*written.prescribed_by.as_uuid())
            .bind(written.medication.as_str())
            .bind(written.dose.as_str())
            .bind(written.route.as_str())
            .bind(written.frequency.as_str())
            .bind(written.duration_days.map(i64::from))
            .bind(written.quantity.map(i64::from))
            .bind(i64::from(written.refills))
            .bind(written.instructions.as_str())
            .bind(written.allergy_override.as_ref().map(|o| o.reason.as_str()))
            .bind(matches.as_deref().map(Json))
            .bind(written.replaces.map(|r| *r.as_uuid()))
            .bind(written.status.as_str())
            .bind(DbTime(written.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if ONE_REPLACEMENT.violated_by(&e) {
                    PrescriptionChangeError::Moved
                } else {
                    storage(e).into()
                }
            })?;
        }
        if let Some(ended) = change.ended {
            // Only while it is active: of two concurrent endings the second finds no row (on
            // PostgreSQL it waits for the first to commit, then re-reads it).
            let changed = sqlx::query(
                "UPDATE prescriptions SET status = $2, stop_reason = $3, replaced_by = $4, \
                 ended_by = $5, ended_at = $6 WHERE id = $1 AND status = 'active'",
            )
            .bind(*ended.id.as_uuid())
            .bind(ended.status.as_str())
            .bind(ended.stop_reason.as_ref().map(Text::as_str))
            .bind(ended.replaced_by.map(|r| *r.as_uuid()))
            .bind(ended.ended_by.map(|u| *u.as_uuid()))
            .bind(ended.ended_at.map(DbTime))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            if changed.rows_affected() == 0 {
                tx.rollback().await.map_err(storage)?;
                return Err(PrescriptionChangeError::Moved);
            }
        }
        for event in change.audit {
            DB::insert_audit_event(&mut tx, event)
                .await
                .map_err(storage)?;
        }
        DB::apply_job_changes(&mut tx, change.jobs, change.at)
            .await
            .map_err(storage)?;
        let stored = DB::store_notifications(&mut tx, change.notifications, change.at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(stored)
    }

    async fn find(&self, id: PrescriptionId) -> Result<Option<PrescriptionView>, RepositoryError> {
        let sql = format!("{SELECT_PRESCRIPTIONS}WHERE r.id = $1");
        sqlx::query_as::<_, PrescriptionRow>(sqlx::AssertSqlSafe(sql))
            .bind(*id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?
            .map(PrescriptionView::try_from)
            .transpose()
    }

    async fn list(
        &self,
        patient_id: PatientId,
        status: Option<PrescriptionStatus>,
        page: PageRequest<PrescriptionId>,
    ) -> Result<Page<PrescriptionView, PrescriptionId>, RepositoryError> {
        let sql = format!(
            "{SELECT_PRESCRIPTIONS}WHERE r.patient_id = $1 AND ($2 IS NULL OR r.status = $2) \
             AND ($3 IS NULL OR r.id < $3) ORDER BY r.id DESC LIMIT $4"
        );
        let rows = sqlx::query_as::<_, PrescriptionRow>(sqlx::AssertSqlSafe(sql))
            .bind(*patient_id.as_uuid())
            .bind(status.map(|s| s.as_str()))
            .bind(page.after().map(|id| *id.as_uuid()))
            .bind(i64::from(page.limit()) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
        let views = rows
            .into_iter()
            .map(PrescriptionView::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(views, page.limit(), |v| {
            v.prescription.id
        }))
    }
}
