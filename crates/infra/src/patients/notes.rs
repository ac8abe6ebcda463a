//! Clinical notes on SQLite and PostgreSQL. The database refuses to change or delete one.

use async_trait::async_trait;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::RepositoryError;
use carehub_domain::kernel::Text;
use carehub_domain::kernel::{Page, PageRequest};
use carehub_domain::patients::PatientId;
use carehub_domain::patients::{
    AppendNoteError, ClinicalNote, MAX_NOTE_CHARS, NoteId, NoteKind, NoteRepository,
};
use carehub_domain::scheduling::AppointmentId;

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Constraint, Param, corrupt, joined_name, storage};
use crate::db::sql_time::DbTime;

/// Clinical notes, appended with their audit event.
#[derive(Debug, Clone)]
pub struct SqlNoteRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlNoteRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

/// At most one note per appointment (a partial unique index).
const VISIT_NOTE_KEY: Constraint = Constraint {
    name: "clinical_notes_appointment_key",
    sqlite_columns: "clinical_notes.appointment_id",
};

#[derive(sqlx::FromRow)]
struct NoteRow {
    id: Uuid,
    patient_id: Uuid,
    author_id: Uuid,
    kind: Option<String>,
    body: String,
    amends: Option<Uuid>,
    appointment_id: Option<Uuid>,
    created_at: DbTime,
    author_name: Option<String>,
}

impl TryFrom<NoteRow> for ClinicalNote {
    type Error = RepositoryError;

    fn try_from(row: NoteRow) -> Result<Self, Self::Error> {
        Ok(ClinicalNote {
            id: NoteId::from_uuid(row.id),
            patient_id: PatientId::from_uuid(row.patient_id),
            author_id: UserId::from_uuid(row.author_id),
            author_name: joined_name(row.author_name.as_deref())?,
            kind: row
                .kind
                .as_deref()
                .map(str::parse::<NoteKind>)
                .transpose()
                .map_err(|e| corrupt("clinical_notes", e))?,
            body: Text::multiline(&row.body, MAX_NOTE_CHARS)
                .map_err(|e| corrupt("clinical_notes", e))?,
            amends: row.amends.map(NoteId::from_uuid),
            appointment_id: row.appointment_id.map(AppointmentId::from_uuid),
            created_at: row.created_at.0,
        })
    }
}

/// The note columns and the author's name, as a literal to `concat!` a `WHERE` to.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! select_notes {
    () => {
        "SELECT n.id, n.patient_id, n.author_id, n.kind, n.body, n.amends, n.appointment_id, \
         n.created_at, u.full_name AS author_name \
         FROM clinical_notes n LEFT JOIN users u ON u.id = n.author_id "
    };
}

#[async_trait]
impl<DB> NoteRepository for SqlNoteRepository<DB>
where
    DB: InsertAuditEvent,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'r> NoteRow: FromRow<'r, DB::Row>,
{
    async fn append(
        &self,
        note: &ClinicalNote,
        audit: &AuditEvent,
    ) -> Result<ClinicalNote, AppendNoteError> {
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        if let Some(amends) = note.amends {
            let found: Option<(i32,)> =
                sqlx::query_as("SELECT 1 FROM clinical_notes WHERE id = $1 AND patient_id = $2")
                    .bind(amends.as_uuid())
                    .bind(note.patient_id.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(storage)?;
            if found.is_none() {
                tx.rollback().await.map_err(storage)?;
                return Err(AppendNoteError::UnknownAmended);
            }
        }
        sqlx::query(
            "INSERT INTO clinical_notes \
             (id, patient_id, author_id, kind, body, amends, appointment_id, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(note.id.as_uuid())
        .bind(note.patient_id.as_uuid())
        .bind(note.author_id.as_uuid())
        .bind(note.kind.map(NoteKind::as_str))
        .bind(note.body.as_str())
        .bind(note.amends.as_ref().map(NoteId::as_uuid))
        .bind(note.appointment_id.as_ref().map(AppointmentId::as_uuid))
        .bind(DbTime(note.created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if VISIT_NOTE_KEY.violated_by(&e) {
                AppendNoteError::VisitNoteExists
            } else {
                AppendNoteError::Repository(storage(e))
            }
        })?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        let row = sqlx::query_as::<_, NoteRow>(concat!(select_notes!(), "WHERE n.id = $1"))
            .bind(note.id.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(ClinicalNote::try_from(row)?)
    }

    async fn list(
        &self,
        patient_id: PatientId,
        kind: Option<NoteKind>,
        page: PageRequest<NoteId>,
    ) -> Result<Page<ClinicalNote, NoteId>, RepositoryError> {
        // Ids are UUIDv7: id order is time order.
        let rows = sqlx::query_as::<_, NoteRow>(concat!(
            select_notes!(),
            "WHERE n.patient_id = $1 AND ($2 IS NULL OR n.kind = $2) \
             AND ($3 IS NULL OR n.id < $3) ORDER BY n.id DESC LIMIT $4"
        ))
        .bind(patient_id.as_uuid())
        .bind(kind.map(NoteKind::as_str))
        .bind(page.after().map(NoteId::as_uuid))
        .bind(i64::from(page.limit()) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        let notes = rows
            .into_iter()
            .map(ClinicalNote::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(notes, page.limit(), |note| note.id))
    }
}
