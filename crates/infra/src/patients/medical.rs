//! Patients' medical information on SQLite and PostgreSQL: one row per patient, its lists kept
//! as JSON text.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::UserId;
use carehub_domain::kernel::{RepositoryError, Text, format_date, parse_date};
use carehub_domain::patients::{
    Allergy, BloodType, Condition, MedicalInfo, MedicalRecord, MedicalRepository, Medication,
    PatientId, Severity,
};

use crate::audit::InsertAuditEvent;
use crate::db::backend::{Param, corrupt, storage};
use crate::db::sql_time::DbTime;

/// Stored text was bounded when it was validated on the way in; reading it back only checks
/// that it is still well-formed text, so a later change of a limit cannot make old rows corrupt.
const STORED: usize = usize::MAX;

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

// The entries as stored: JSON objects in the shape clients once wrote them, every field
// present (`null` when absent), dates as `YYYY-MM-DD`.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAllergy {
    substance: Option<String>,
    #[serde(default)]
    reaction: Option<String>,
    #[serde(default)]
    severity: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCondition {
    name: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    since: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMedication {
    name: Option<String>,
    dose: Option<String>,
    frequency: Option<String>,
}

fn owned(text: &Text) -> String {
    text.as_str().to_owned()
}

impl From<&Allergy> for StoredAllergy {
    fn from(allergy: &Allergy) -> Self {
        Self {
            substance: Some(owned(&allergy.substance)),
            reaction: allergy.reaction.as_ref().map(owned),
            severity: allergy.severity.map(|s| s.as_str().to_owned()),
        }
    }
}

impl From<&Condition> for StoredCondition {
    fn from(condition: &Condition) -> Self {
        Self {
            name: Some(owned(&condition.name)),
            code: condition.code.as_ref().map(owned),
            since: condition.since.map(format_date),
        }
    }
}

impl From<&Medication> for StoredMedication {
    fn from(medication: &Medication) -> Self {
        Self {
            name: Some(owned(&medication.name)),
            dose: Some(owned(&medication.dose)),
            frequency: Some(owned(&medication.frequency)),
        }
    }
}

/// Reads one stored field back, if present; `field_path` names it in the error, as
/// `allergies[0].substance`.
fn field<T, E: std::fmt::Display>(
    field_path: &str,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, RepositoryError> {
    raw.map(parse)
        .transpose()
        .map_err(|e| corrupt("medical_records", format!("{field_path}: {e}")))
}

fn text(field_path: &str, raw: Option<&str>) -> Result<Option<Text>, RepositoryError> {
    field(field_path, raw, |raw| Text::line(raw, STORED))
}

fn required_text(field_path: &str, raw: Option<&str>) -> Result<Text, RepositoryError> {
    text(field_path, raw)?
        .ok_or_else(|| corrupt("medical_records", format!("{field_path}: is missing")))
}

impl StoredAllergy {
    fn into_allergy(self, i: usize) -> Result<Allergy, RepositoryError> {
        let path = |name: &str| format!("allergies[{i}].{name}");
        Ok(Allergy {
            substance: required_text(&path("substance"), self.substance.as_deref())?,
            reaction: text(&path("reaction"), self.reaction.as_deref())?,
            severity: field(
                &path("severity"),
                self.severity.as_deref(),
                str::parse::<Severity>,
            )?,
        })
    }
}

impl StoredCondition {
    fn into_condition(self, i: usize) -> Result<Condition, RepositoryError> {
        let path = |name: &str| format!("conditions[{i}].{name}");
        Ok(Condition {
            name: required_text(&path("name"), self.name.as_deref())?,
            code: text(&path("code"), self.code.as_deref())?,
            since: field(&path("since"), self.since.as_deref(), parse_date)?,
        })
    }
}

impl StoredMedication {
    fn into_medication(self, i: usize) -> Result<Medication, RepositoryError> {
        let path = |name: &str| format!("medications[{i}].{name}");
        Ok(Medication {
            name: required_text(&path("name"), self.name.as_deref())?,
            dose: required_text(&path("dose"), self.dose.as_deref())?,
            frequency: required_text(&path("frequency"), self.frequency.as_deref())?,
        })
    }
}

/// The lists as stored: JSON arrays of [`StoredAllergy`], [`StoredCondition`] and
/// [`StoredMedication`].
struct StoredLists {
    allergies: String,
    conditions: String,
    medications: String,
}

fn json<S: Serialize>(entries: impl Iterator<Item = S>) -> Result<String, RepositoryError> {
    serde_json::to_string(&entries.collect::<Vec<S>>()).map_err(RepositoryError::new)
}

impl StoredLists {
    fn of(info: &MedicalInfo) -> Result<Self, RepositoryError> {
        Ok(Self {
            allergies: json(info.allergies.iter().map(StoredAllergy::from))?,
            conditions: json(info.conditions.iter().map(StoredCondition::from))?,
            medications: json(info.medications.iter().map(StoredMedication::from))?,
        })
    }
}

/// The entries of one stored list, each read back knowing its index.
fn entries<S: DeserializeOwned, T>(
    json: &str,
    read: impl Fn(S, usize) -> Result<T, RepositoryError>,
) -> Result<Vec<T>, RepositoryError> {
    let stored: Vec<S> = serde_json::from_str(json).map_err(|e| corrupt("medical_records", e))?;
    stored
        .into_iter()
        .enumerate()
        .map(|(i, entry)| read(entry, i))
        .collect()
}

impl TryFrom<MedicalRow> for MedicalRecord {
    type Error = RepositoryError;

    fn try_from(row: MedicalRow) -> Result<Self, Self::Error> {
        let info = MedicalInfo {
            blood_type: field(
                "blood_type",
                row.blood_type.as_deref(),
                str::parse::<BloodType>,
            )?,
            allergies: entries(&row.allergies, StoredAllergy::into_allergy)?,
            conditions: entries(&row.conditions, StoredCondition::into_condition)?,
            medications: entries(&row.medications, StoredMedication::into_medication)?,
        };
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
        at: Timestamp,
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

    use super::*;

    fn line(raw: &str) -> Text {
        Text::line(raw, 200).unwrap()
    }

    fn info() -> MedicalInfo {
        MedicalInfo {
            blood_type: Some(BloodType::ONegative),
            allergies: vec![
                Allergy {
                    substance: line("penicillin"),
                    reaction: Some(line("hives")),
                    severity: Some(Severity::Severe),
                },
                Allergy {
                    substance: line("latex"),
                    reaction: None,
                    severity: None,
                },
            ],
            conditions: vec![Condition {
                name: line("asthma"),
                code: Some(line("J45")),
                since: Some(jiff::civil::date(2001, 2, 3)),
            }],
            medications: vec![Medication {
                name: line("salbutamol"),
                dose: line("100 µg"),
                frequency: line("as needed"),
            }],
        }
    }

    fn row(blood_type: Option<&str>, lists: StoredLists) -> MedicalRow {
        MedicalRow {
            patient_id: Uuid::now_v7(),
            blood_type: blood_type.map(str::to_owned),
            allergies: lists.allergies,
            conditions: lists.conditions,
            medications: lists.medications,
            updated_at: DbTime(Timestamp::UNIX_EPOCH),
            updated_by: Uuid::now_v7(),
        }
    }

    #[test]
    fn stored_lists_read_back_as_the_same_information() {
        let info = info();
        let lists = StoredLists::of(&info).unwrap();
        let row = row(info.blood_type.map(BloodType::as_str), lists);
        assert_eq!(MedicalRecord::try_from(row).unwrap().info, info);
    }

    #[test]
    fn the_lists_are_stored_with_every_field_in_the_shape_clients_once_wrote() {
        let lists = StoredLists::of(&info()).unwrap();
        assert_eq!(
            lists.allergies,
            r#"[{"substance":"penicillin","reaction":"hives","severity":"severe"},{"substance":"latex","reaction":null,"severity":null}]"#
        );
        assert_eq!(
            lists.conditions,
            r#"[{"name":"asthma","code":"J45","since":"2001-02-03"}]"#
        );
        assert_eq!(
            lists.medications,
            r#"[{"name":"salbutamol","dose":"100 µg","frequency":"as needed"}]"#
        );
    }

    #[test]
    fn a_row_that_breaks_the_rules_is_reported_corrupt() {
        let lists = StoredLists {
            allergies: r#"[{"substance": ""}]"#.into(),
            conditions: "[]".into(),
            medications: "[]".into(),
        };
        let error = MedicalRecord::try_from(row(None, lists)).unwrap_err();
        assert!(
            error.to_string().contains("allergies[0].substance"),
            "{error}"
        );
    }
}
