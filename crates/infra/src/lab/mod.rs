//! The laboratory on SQLite and PostgreSQL: the catalogue, orders (results as JSON in infra's
//! own shape, see `stored`), files' descriptions and ECG analyses. Each change is written with
//! its audit event, notifications and jobs in one transaction, conditional on the order's
//! status; the bytes of files are in the file store ([`LocalOrObjectStore`]).

use async_trait::async_trait;
use sqlx::types::Json;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::jobs::NewJob;
use carehub_domain::kernel::{
    LabFileId, LabOrderId, Page, PageRequest, PatientId, RepositoryError, Text,
};
use carehub_domain::lab::{
    AddTestError, EcgOutcome, EcgRecord, FileName, LabChangeError, LabFile, LabOrder,
    LabOrderChange, LabOrderDetail, LabOrderListing, LabOrderQuery, LabOrderStatus, LabRepository,
    LabTest,
};
use carehub_domain::notifications::{NewNotification, Notification};
use carehub_domain::patients::PatientSummary;

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Constraint, Param, RowsAffected as _, corrupt, joined_name, storage};
use crate::db::sql_time::{DbDate, DbTime};
use crate::jobs::InsertJobs;
use crate::notifications::{StoreNotifications, commit_notifying};

mod files;
mod stored;

pub use files::{FileStoreError, LocalOrObjectStore, S3Settings};
use stored::{StoredAnalysis, StoredAnalyte, StoredResult, StoredTrace};

/// Stored text was bounded when it was validated on the way in.
const STORED: usize = usize::MAX;

const TEST_KEY: Constraint = Constraint {
    name: "lab_tests_pkey",
    sqlite_columns: "lab_tests.code",
};

/// The catalogue, orders, files' descriptions and ECG analyses.
#[derive(Debug, Clone)]
pub struct SqlLabRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlLabRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

// ---- Rows ------------------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct TestRow {
    code: String,
    name: String,
    kind: String,
    analytes: Json<Vec<StoredAnalyte>>,
}

impl TryFrom<TestRow> for LabTest {
    type Error = RepositoryError;

    fn try_from(row: TestRow) -> Result<Self, Self::Error> {
        Ok(LabTest {
            code: stored::code(&row.code)?,
            name: Text::line(&row.name, STORED).map_err(|e| corrupt("lab_tests", e))?,
            kind: row.kind.parse().map_err(|e| corrupt("lab_tests", e))?,
            analytes: row
                .analytes
                .0
                .into_iter()
                .map(StoredAnalyte::into_analyte)
                .collect::<Result<_, _>>()?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    patient_id: Uuid,
    ordered_by: Uuid,
    ordered_by_name: Option<String>,
    tests: Json<Vec<String>>,
    priority: String,
    clinical_question: String,
    status: String,
    scheduled_for: Option<DbTime>,
    collected_at: Option<DbTime>,
    results: Json<Vec<StoredResult>>,
    findings: Option<String>,
    resulted_by: Option<Uuid>,
    resulted_at: Option<DbTime>,
    released_by: Option<Uuid>,
    released_at: Option<DbTime>,
    cancelled_at: Option<DbTime>,
    created_at: DbTime,
    updated_at: DbTime,
    mrn: String,
    full_name: String,
    date_of_birth: DbDate,
    sex: String,
}

fn text(raw: &str) -> Result<Text, RepositoryError> {
    Text::multiline(raw, STORED).map_err(|e| corrupt("lab_orders", e))
}

impl TryFrom<OrderRow> for LabOrderListing {
    type Error = RepositoryError;

    fn try_from(row: OrderRow) -> Result<Self, Self::Error> {
        let order = LabOrder {
            id: LabOrderId::from_uuid(row.id),
            patient_id: PatientId::from_uuid(row.patient_id),
            ordered_by: UserId::from_uuid(row.ordered_by),
            tests: row
                .tests
                .0
                .iter()
                .map(|c| stored::code(c))
                .collect::<Result<_, _>>()?,
            priority: row.priority.parse().map_err(|e| corrupt("lab_orders", e))?,
            clinical_question: text(&row.clinical_question)?,
            status: row.status.parse().map_err(|e| corrupt("lab_orders", e))?,
            scheduled_for: row.scheduled_for.map(|t| t.0),
            collected_at: row.collected_at.map(|t| t.0),
            results: row
                .results
                .0
                .into_iter()
                .map(StoredResult::into_result)
                .collect::<Result<_, _>>()?,
            findings: row.findings.as_deref().map(text).transpose()?,
            resulted_by: row.resulted_by.map(UserId::from_uuid),
            resulted_at: row.resulted_at.map(|t| t.0),
            released_by: row.released_by.map(UserId::from_uuid),
            released_at: row.released_at.map(|t| t.0),
            cancelled_at: row.cancelled_at.map(|t| t.0),
            created_at: row.created_at.0,
            updated_at: row.updated_at.0,
        };
        let patient = PatientSummary {
            id: order.patient_id,
            mrn: carehub_domain::patients::Mrn::parse(&row.mrn)
                .map_err(|e| corrupt("patients", e))?,
            full_name: carehub_domain::identity::FullName::parse(&row.full_name)
                .map_err(|e| corrupt("patients", e))?,
            date_of_birth: row.date_of_birth.0,
            sex: row.sex.parse().map_err(|e| corrupt("patients", e))?,
        };
        Ok(LabOrderListing {
            order,
            patient,
            ordered_by_name: joined_name(row.ordered_by_name.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct FileRow {
    id: Uuid,
    order_id: Uuid,
    name: String,
    kind: String,
    content_type: String,
    size: i64,
    sha256: String,
    sampling_rate_hz: Option<f64>,
    pair_id: Option<Uuid>,
    uploaded_by: Uuid,
    uploaded_at: DbTime,
}

impl TryFrom<FileRow> for LabFile {
    type Error = RepositoryError;

    fn try_from(row: FileRow) -> Result<Self, Self::Error> {
        Ok(LabFile {
            id: LabFileId::from_uuid(row.id),
            order_id: LabOrderId::from_uuid(row.order_id),
            name: FileName::parse(&row.name).map_err(|e| corrupt("lab_files", e))?,
            kind: row.kind.parse().map_err(|e| corrupt("lab_files", e))?,
            content_type: row.content_type,
            size: u64::try_from(row.size).map_err(|e| corrupt("lab_files", e))?,
            sha256: row.sha256,
            sampling_rate_hz: row.sampling_rate_hz,
            pair: row.pair_id.map(LabFileId::from_uuid),
            uploaded_by: UserId::from_uuid(row.uploaded_by),
            uploaded_at: row.uploaded_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EcgRow {
    order_id: Uuid,
    file_id: Uuid,
    analyzed_at: DbTime,
    analysis: Option<Json<StoredAnalysis>>,
    trace: Option<Json<StoredTrace>>,
    failure: Option<String>,
}

impl TryFrom<EcgRow> for EcgRecord {
    type Error = RepositoryError;

    fn try_from(row: EcgRow) -> Result<Self, Self::Error> {
        let outcome = match (row.analysis, row.trace, row.failure) {
            (Some(analysis), Some(trace), None) => EcgOutcome::Analysed {
                analysis: analysis.0,
                trace: trace.0.into_trace(),
            },
            (None, None, Some(reason)) => EcgOutcome::Failed { reason },
            _ => return Err(corrupt("ecg_analyses", "neither an analysis nor a failure")),
        };
        Ok(EcgRecord {
            order_id: LabOrderId::from_uuid(row.order_id),
            file_id: LabFileId::from_uuid(row.file_id),
            analyzed_at: row.analyzed_at.0,
            outcome,
        })
    }
}

const SELECT_ORDERS: &str = "SELECT o.id, o.patient_id, o.ordered_by, u.full_name AS ordered_by_name, \
     o.tests, o.priority, o.clinical_question, o.status, o.scheduled_for, o.collected_at, \
     o.results, o.findings, o.resulted_by, o.resulted_at, o.released_by, o.released_at, \
     o.cancelled_at, o.created_at, o.updated_at, p.mrn, p.full_name, p.date_of_birth, p.sex \
     FROM lab_orders o JOIN patients p ON p.id = o.patient_id \
     LEFT JOIN users u ON u.id = o.ordered_by ";

const SELECT_FILES: &str = "SELECT id, order_id, name, kind, content_type, size, sha256, \
     sampling_rate_hz, pair_id, uploaded_by, uploaded_at FROM lab_files ";

#[async_trait]
impl<DB> LabRepository for SqlLabRepository<DB>
where
    DB: InsertAuditEvent + StoreNotifications + InsertJobs,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'a> Option<f64>: Param<'a, DB>,
    for<'a> Json<&'a [StoredAnalyte]>: Param<'a, DB>,
    for<'a> Json<&'a [String]>: Param<'a, DB>,
    for<'a> Json<&'a [StoredResult]>: Param<'a, DB>,
    for<'a> Option<Json<&'a StoredAnalysis>>: Param<'a, DB>,
    for<'a> Option<Json<&'a StoredTrace>>: Param<'a, DB>,
    for<'r> TestRow: FromRow<'r, DB::Row>,
    for<'r> OrderRow: FromRow<'r, DB::Row>,
    for<'r> FileRow: FromRow<'r, DB::Row>,
    for<'r> EcgRow: FromRow<'r, DB::Row>,
{
    async fn catalogue(&self) -> Result<Vec<LabTest>, RepositoryError> {
        sqlx::query_as::<_, TestRow>(
            "SELECT code, name, kind, analytes FROM lab_tests ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(LabTest::try_from)
        .collect()
    }

    async fn add_test(&self, test: &LabTest) -> Result<(), AddTestError> {
        let analytes: Vec<StoredAnalyte> = test.analytes.iter().map(StoredAnalyte::of).collect();
        sqlx::query(
            "INSERT INTO lab_tests (code, name, kind, analytes, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(test.code.as_str())
        .bind(test.name.as_str())
        .bind(test.kind.as_str())
        .bind(Json(analytes.as_slice()))
        .bind(DbTime(jiff::Timestamp::now()))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if TEST_KEY.violated_by(&e) {
                AddTestError::Duplicate
            } else {
                AddTestError::Repository(storage(e))
            }
        })?;
        Ok(())
    }

    async fn create_order(
        &self,
        order: &LabOrder,
        audit: &AuditEvent,
    ) -> Result<(), RepositoryError> {
        let tests: Vec<String> = order.tests.iter().map(|t| t.as_str().to_owned()).collect();
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO lab_orders (id, patient_id, ordered_by, tests, priority, \
             clinical_question, status, results, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(*order.id.as_uuid())
        .bind(*order.patient_id.as_uuid())
        .bind(*order.ordered_by.as_uuid())
        .bind(Json(tests.as_slice()))
        .bind(order.priority.as_str())
        .bind(order.clinical_question.as_str())
        .bind(order.status.as_str())
        .bind(Json(&[] as &[StoredResult]))
        .bind(DbTime(order.created_at))
        .bind(DbTime(order.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        commit_notifying(tx, audit, &[], order.created_at)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn find_order(&self, id: LabOrderId) -> Result<Option<LabOrderDetail>, RepositoryError> {
        let sql = format!("{SELECT_ORDERS}WHERE o.id = $1");
        let Some(row) = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(sql))
            .bind(*id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let listing = LabOrderListing::try_from(row)?;
        let files = sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_FILES}WHERE order_id = $1 ORDER BY id"
        )))
        .bind(*id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?
        .into_iter()
        .map(LabFile::try_from)
        .collect::<Result<Vec<_>, _>>()?;
        let ecg = sqlx::query_as::<_, EcgRow>(
            "SELECT order_id, file_id, analyzed_at, analysis, trace, failure \
             FROM ecg_analyses WHERE order_id = $1",
        )
        .bind(*id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(EcgRecord::try_from)
        .transpose()?;
        Ok(Some(LabOrderDetail {
            listing,
            files,
            ecg,
        }))
    }

    async fn list_orders(
        &self,
        query: &LabOrderQuery,
        page: PageRequest<LabOrderId>,
    ) -> Result<Page<LabOrderListing, LabOrderId>, RepositoryError> {
        // The statuses as a JSON-free list of at most six fixed strings: one placeholder each,
        // unused ones bound to a status that never matches.
        let statuses: Vec<&str> = query.statuses.iter().map(|s| s.as_str()).collect();
        let mut bound = [""; 6];
        for (slot, status) in bound.iter_mut().zip(&statuses) {
            *slot = status;
        }
        let sql = format!(
            "{SELECT_ORDERS}WHERE ($1 IS NULL OR o.patient_id = $1) \
             AND ($2 IS NULL OR o.ordered_by = $2) \
             AND ($3 = 0 OR o.status IN ($4, $5, $6, $7, $8, $9)) \
             AND ($10 IS NULL OR o.id < $10) ORDER BY o.id DESC LIMIT $11"
        );
        let rows = sqlx::query_as::<_, OrderRow>(sqlx::AssertSqlSafe(sql))
            .bind(query.patient_id.map(|p| *p.as_uuid()))
            .bind(query.ordered_by.map(|u| *u.as_uuid()))
            .bind(i64::try_from(statuses.len()).unwrap_or(i64::MAX))
            .bind(bound[0])
            .bind(bound[1])
            .bind(bound[2])
            .bind(bound[3])
            .bind(bound[4])
            .bind(bound[5])
            .bind(page.after().map(|id| *id.as_uuid()))
            .bind(i64::from(page.limit()) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
        let listings = rows
            .into_iter()
            .map(LabOrderListing::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(listings, page.limit(), |l| l.order.id))
    }

    async fn change_order<'a>(
        &self,
        change: LabOrderChange<'a>,
    ) -> Result<Vec<Notification>, LabChangeError> {
        let order = change.order;
        let results: Vec<StoredResult> = order.results.iter().map(StoredResult::of).collect();
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        // Conditional on the status: of two concurrent changes from one status, the second
        // finds no row (on PostgreSQL it waits for the first to commit, then re-reads it).
        let changed = sqlx::query(
            "UPDATE lab_orders SET status = $3, scheduled_for = $4, collected_at = $5, \
             results = $6, findings = $7, resulted_by = $8, resulted_at = $9, \
             released_by = $10, released_at = $11, cancelled_at = $12, updated_at = $13 \
             WHERE id = $1 AND status = $2",
        )
        .bind(*order.id.as_uuid())
        .bind(change.from.as_str())
        .bind(order.status.as_str())
        .bind(order.scheduled_for.map(DbTime))
        .bind(order.collected_at.map(DbTime))
        .bind(Json(results.as_slice()))
        .bind(order.findings.as_ref().map(Text::as_str))
        .bind(order.resulted_by.map(|u| *u.as_uuid()))
        .bind(order.resulted_at.map(DbTime))
        .bind(order.released_by.map(|u| *u.as_uuid()))
        .bind(order.released_at.map(DbTime))
        .bind(order.cancelled_at.map(DbTime))
        .bind(DbTime(order.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if changed.rows_affected() == 0 {
            tx.rollback().await.map_err(storage)?;
            return Err(LabChangeError::Moved);
        }
        DB::apply_job_changes(&mut tx, change.jobs, order.updated_at)
            .await
            .map_err(storage)?;
        let stored = match change.audit {
            Some(audit) => commit_notifying(tx, audit, change.notifications, order.updated_at)
                .await
                .map_err(storage)?,
            None => {
                let stored =
                    DB::store_notifications(&mut tx, change.notifications, order.updated_at)
                        .await
                        .map_err(storage)?;
                tx.commit().await.map_err(storage)?;
                stored
            }
        };
        Ok(stored)
    }

    async fn add_files(
        &self,
        order: LabOrderId,
        from: LabOrderStatus,
        files: &[LabFile],
        audit: &AuditEvent,
        jobs: &[NewJob],
    ) -> Result<(), LabChangeError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        // Touching the order takes its row lock (PostgreSQL) and checks that it still accepts
        // files: a release or cancellation committed meanwhile makes this a conflict.
        let touched =
            sqlx::query("UPDATE lab_orders SET updated_at = $3 WHERE id = $1 AND status = $2")
                .bind(*order.as_uuid())
                .bind(from.as_str())
                .bind(DbTime(audit.at))
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        if touched.rows_affected() == 0 {
            tx.rollback().await.map_err(storage)?;
            return Err(LabChangeError::Moved);
        }
        for file in files {
            sqlx::query(
                "INSERT INTO lab_files (id, order_id, name, kind, content_type, size, sha256, \
                 sampling_rate_hz, pair_id, uploaded_by, uploaded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(*file.id.as_uuid())
            .bind(*file.order_id.as_uuid())
            .bind(file.name.as_str())
            .bind(file.kind.as_str())
            .bind(file.content_type.as_str())
            .bind(
                i64::try_from(file.size)
                    .map_err(|e| LabChangeError::Repository(RepositoryError::new(e)))?,
            )
            .bind(file.sha256.as_str())
            .bind(file.sampling_rate_hz)
            .bind(file.pair.map(|p| *p.as_uuid()))
            .bind(*file.uploaded_by.as_uuid())
            .bind(DbTime(file.uploaded_at))
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        DB::insert_jobs(&mut tx, jobs, audit.at)
            .await
            .map_err(storage)?;
        commit_notifying(tx, audit, &[], audit.at)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn find_file(
        &self,
        order: LabOrderId,
        file: LabFileId,
    ) -> Result<Option<LabFile>, RepositoryError> {
        sqlx::query_as::<_, FileRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_FILES}WHERE order_id = $1 AND id = $2"
        )))
        .bind(*order.as_uuid())
        .bind(*file.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?
        .map(LabFile::try_from)
        .transpose()
    }

    async fn save_ecg(
        &self,
        record: &EcgRecord,
        notifications: &[NewNotification],
    ) -> Result<Vec<Notification>, RepositoryError> {
        let (analysis, trace, failure) = match &record.outcome {
            EcgOutcome::Analysed { analysis, trace } => {
                (Some(analysis), Some(StoredTrace::of(trace)), None)
            }
            EcgOutcome::Failed { reason } => (None, None, Some(reason.as_str())),
        };
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        // One analysis per order: the latest recording's replaces an earlier one.
        sqlx::query("DELETE FROM ecg_analyses WHERE order_id = $1")
            .bind(*record.order_id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        sqlx::query(
            "INSERT INTO ecg_analyses (order_id, file_id, analyzed_at, analysis, trace, failure) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(*record.order_id.as_uuid())
        .bind(*record.file_id.as_uuid())
        .bind(DbTime(record.analyzed_at))
        .bind(analysis.map(Json))
        .bind(trace.as_ref().map(Json))
        .bind(failure)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        let stored = DB::store_notifications(&mut tx, notifications, record.analyzed_at)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(stored)
    }
}
