//! Patients' medical information on SQLite and PostgreSQL: one row per patient, its lists kept
//! as JSON text in the shape clients write them.

use async_trait::async_trait;
use sqlx::{Executor, FromRow, Pool};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::{RepositoryError, ValidationErrors};
use carehub_domain::patients::{
    MedicalInfo, MedicalInput, MedicalRecord, MedicalRepository, PatientId,
};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Param, corrupt, storage};
use crate::db::sql_time::DbTime;

/// Medical information, written whole with its audit event.
#[derive(Debug, Clone)]
pub struct SqlMedicalRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlMedicalRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct MedicalRow {
    patient_id: Uuid,
    blood_type: Option<String>,
    allergies: String,
    conditions: String,
    medications: String,
    updated_at: DbTime,
    updated_by: Uuid,
}

/// The lists as stored: JSON arrays of the client's input shape.
struct StoredLists {
    allergies: String,
    conditions: String,
    medications: String,
}

impl StoredLists {
    fn of(info: &MedicalInfo) -> Result<Self, RepositoryError> {
        let input = MedicalInput::from(info);
        Ok(Self {
            allergies: serde_json::to_string(&input.allergies).map_err(RepositoryError::new)?,
            conditions: serde_json::to_string(&input.conditions).map_err(RepositoryError::new)?,
            medications: serde_json::to_string(&input.medications).map_err(RepositoryError::new)?,
        })
    }
}

fn invalid(errors: &ValidationErrors) -> RepositoryError {
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    corrupt(
        "medical_records",
        format!("invalid fields {}", fields.join(", ")),
    )
}

impl TryFrom<MedicalRow> for MedicalRecord {
    type Error = RepositoryError;

    fn try_from(row: MedicalRow) -> Result<Self, Self::Error> {
        let json = |e: serde_json::Error| corrupt("medical_records", e);
        let input = MedicalInput {
            blood_type: row.blood_type,
            allergies: serde_json::from_str(&row.allergies).map_err(json)?,
            conditions: serde_json::from_str(&row.conditions).map_err(json)?,
            medications: serde_json::from_str(&row.medications).map_err(json)?,
        };
        // Stored dates were checked when written; any day since is as good as the write day.
        let info = input.parse(Date::MAX).map_err(|e| invalid(&e))?;
        Ok(MedicalRecord {
            patient_id: PatientId::from_uuid(row.patient_id),
            info,
            updated_at: Some(row.updated_at.0),
            updated_by: Some(UserId::from_uuid(row.updated_by)),
        })
    }
}

#[async_trait]
impl<DB> MedicalRepository for SqlMedicalRepository<DB>
where
    DB: InsertAuditEvent,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> String: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> MedicalRow: FromRow<'r, DB::Row>,
{
    async fn get(&self, patient_id: PatientId) -> Result<MedicalRecord, RepositoryError> {
        let row = sqlx::query_as::<_, MedicalRow>(
            "SELECT patient_id, blood_type, allergies, conditions, medications, \
             updated_at, updated_by FROM medical_records WHERE patient_id = $1",
        )
        .bind(patient_id.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(storage)?;
        match row {
            Some(row) => MedicalRecord::try_from(row),
            None => Ok(MedicalRecord {
                patient_id,
                info: MedicalInfo::default(),
                updated_at: None,
                updated_by: None,
            }),
        }
    }

    async fn put(
        &self,
        patient_id: PatientId,
        info: &MedicalInfo,
        by: UserId,
        at: OffsetDateTime,
        audit: &AuditEvent,
    ) -> Result<MedicalRecord, RepositoryError> {
        let lists = StoredLists::of(info)?;
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let row = sqlx::query_as::<_, MedicalRow>(
            "INSERT INTO medical_records \
             (patient_id, blood_type, allergies, conditions, medications, updated_at, \
              updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (patient_id) DO UPDATE SET \
             blood_type = excluded.blood_type, allergies = excluded.allergies, \
             conditions = excluded.conditions, medications = excluded.medications, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by \
             RETURNING patient_id, blood_type, allergies, conditions, medications, \
             updated_at, updated_by",
        )
        .bind(patient_id.as_uuid())
        .bind(info.blood_type.map(|b| b.as_str()))
        .bind(&lists.allergies)
        .bind(&lists.conditions)
        .bind(&lists.medications)
        .bind(DbTime(at))
        .bind(by.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        MedicalRecord::try_from(row)
    }
}

#[cfg(test)]
mod tests {
    use carehub_domain::patients::{AllergyInput, ConditionInput, MedicationInput};
    use time::macros::date;

    use super::*;

    #[test]
    fn stored_lists_read_back_as_the_same_information() {
        let info = MedicalInput {
            blood_type: Some("O-".into()),
            allergies: vec![AllergyInput {
                substance: Some("penicillin".into()),
                reaction: Some("hives".into()),
                severity: Some("severe".into()),
            }],
            conditions: vec![ConditionInput {
                name: Some("asthma".into()),
                code: Some("J45".into()),
                since: Some("2001-02-03".into()),
            }],
            medications: vec![MedicationInput {
                name: Some("salbutamol".into()),
                dose: Some("100 µg".into()),
                frequency: Some("as needed".into()),
            }],
        }
        .parse(date!(2026 - 11 - 22))
        .unwrap();
        let lists = StoredLists::of(&info).unwrap();
        let row = MedicalRow {
            patient_id: Uuid::now_v7(),
            blood_type: info.blood_type.map(|b| b.as_str().to_owned()),
            allergies: lists.allergies,
            conditions: lists.conditions,
            medications: lists.medications,
            updated_at: DbTime(OffsetDateTime::UNIX_EPOCH),
            updated_by: Uuid::now_v7(),
        };
        assert_eq!(MedicalRecord::try_from(row).unwrap().info, info);
    }

    #[test]
    fn a_row_that_breaks_the_rules_is_reported_corrupt() {
        let row = MedicalRow {
            patient_id: Uuid::now_v7(),
            blood_type: None,
            allergies: r#"[{"substance": ""}]"#.into(),
            conditions: "[]".into(),
            medications: "[]".into(),
            updated_at: DbTime(OffsetDateTime::UNIX_EPOCH),
            updated_by: Uuid::now_v7(),
        };
        let error = MedicalRecord::try_from(row).unwrap_err();
        assert!(
            error.to_string().contains("allergies[0].substance"),
            "{error}"
        );
    }
}
