//! The patient repository, on SQLite and PostgreSQL: a patient is one flat `patients` row plus
//! its `patient_identifiers`, written together with the audit event of the change.

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::query::Query;
use sqlx::{Executor, FromRow, Pool};
use uuid::Uuid;

use carehub_domain::access::{AccessFacts, AccessFactsRepository};
use carehub_domain::audit::AuditEvent;
use carehub_domain::identity::{Email, FullName, UserId};
use carehub_domain::kernel::RepositoryError;
use carehub_domain::kernel::{Page, PageRequest};
use carehub_domain::kernel::{Phone, Text};
use carehub_domain::patients::CareTeamMember;
use carehub_domain::patients::{
    Address, Contact, EmergencyContact, Identifier, IdentifierSystem, Insurance, Location, Mrn,
    Patient, PatientDetails, PatientId, PatientQuery, PatientRepository, PatientSummary,
    SavePatientError, SearchScope, search_key,
};

use super::care_team::{INSERT_MEMBER, InsertMember};
use crate::audit::InsertAuditEvent;
use crate::db::backend::{Backend, Constraint, Param, corrupt, storage};
use crate::db::sql_time::{DbDate, DbTime};

const MRN_KEY: Constraint = Constraint {
    name: "patients_mrn_key",
    sqlite_columns: "patients.mrn",
};

const USER_ID_KEY: Constraint = Constraint {
    name: "patients_user_id_key",
    sqlite_columns: "patients.user_id",
};

const IDENTIFIER_KEY: Constraint = Constraint {
    name: "patient_identifiers_system_value_key",
    sqlite_columns: "patient_identifiers.system, patient_identifiers.value",
};

/// Stored text was bounded when it was validated on the way in; reading it back only checks
/// that it is still well-formed text, so a later change of a limit cannot make old rows corrupt.
const STORED: usize = usize::MAX;

/// The columns [`PatientRow`] reads, as a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! patient_columns {
    () => {
        "id, mrn, full_name, date_of_birth, sex, phone, email, \
         address_lines, address_city, address_postal_code, address_country, \
         insurance_provider, insurance_policy_number, insurance_group, insurance_valid_until, \
         emergency_name, emergency_relationship, emergency_phone, room, bed, user_id, \
         created_at, updated_at"
    };
}

const SELECT_IDENTIFIERS: &str =
    "SELECT system, value FROM patient_identifiers WHERE patient_id = $1";

const INSERT_IDENTIFIER: &str =
    "INSERT INTO patient_identifiers (patient_id, system, value) VALUES ($1, $2, $3)";

/// Patients, their identifiers, and (at registration) their first care-team members.
#[derive(Debug, Clone)]
pub struct SqlPatientRepository<DB: sqlx::Database> {
    pool: Pool<DB>,
}

impl<DB: sqlx::Database> SqlPatientRepository<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

#[derive(sqlx::FromRow)]
struct PatientRow {
    id: Uuid,
    mrn: String,
    full_name: String,
    date_of_birth: DbDate,
    sex: String,
    phone: Option<String>,
    email: Option<String>,
    address_lines: Option<String>,
    address_city: Option<String>,
    address_postal_code: Option<String>,
    address_country: Option<String>,
    insurance_provider: Option<String>,
    insurance_policy_number: Option<String>,
    insurance_group: Option<String>,
    insurance_valid_until: Option<DbDate>,
    emergency_name: Option<String>,
    emergency_relationship: Option<String>,
    emergency_phone: Option<String>,
    room: Option<String>,
    bed: Option<String>,
    user_id: Option<Uuid>,
    created_at: DbTime,
    updated_at: DbTime,
}

#[derive(sqlx::FromRow)]
struct IdentifierRow {
    system: String,
    value: String,
}

/// A patient with one of its identifiers (none when it has none): reading both in one
/// statement sees them as of one instant, whatever a concurrent update does.
#[derive(sqlx::FromRow)]
struct PatientWithIdentifierRow {
    #[sqlx(flatten)]
    patient: PatientRow,
    system: Option<String>,
    value: Option<String>,
}

/// The patient and its identifiers, as a `LEFT JOIN`; a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! select_with_identifiers {
    () => {
        concat!(
            "SELECT ",
            patient_columns!(),
            ", i.system, i.value FROM patients p \
             LEFT JOIN patient_identifiers i ON i.patient_id = p.id "
        )
    };
}

/// Folds the rows of [`select_with_identifiers!`] into the patient they describe, if any.
fn patient_from_rows(
    rows: Vec<PatientWithIdentifierRow>,
) -> Result<Option<Patient>, RepositoryError> {
    let mut identifiers = Vec::with_capacity(rows.len());
    let mut patient = None;
    for row in rows {
        if let (Some(system), Some(value)) = (row.system, row.value) {
            identifiers.push(IdentifierRow { system, value });
        }
        patient.get_or_insert(row.patient);
    }
    patient.map(|p| p.into_patient(identifiers)).transpose()
}

#[derive(sqlx::FromRow)]
pub(crate) struct SummaryRow {
    id: Uuid,
    mrn: String,
    full_name: String,
    date_of_birth: DbDate,
    sex: String,
}

#[derive(sqlx::FromRow)]
struct AccessFactsRow {
    is_own_record: bool,
    on_care_team: bool,
    emergency_access: bool,
}

fn text(raw: Option<&str>) -> Result<Option<Text>, RepositoryError> {
    raw.map(required_text).transpose()
}

fn required_text(raw: &str) -> Result<Text, RepositoryError> {
    Text::line(raw, STORED).map_err(|e| corrupt("patients", e))
}

fn phone(raw: Option<&str>) -> Result<Option<Phone>, RepositoryError> {
    raw.map(Phone::parse)
        .transpose()
        .map_err(|e| corrupt("patients", e))
}

fn mrn(raw: &str) -> Result<Mrn, RepositoryError> {
    Mrn::parse(raw).map_err(|e| corrupt("patients", e))
}

impl PatientRow {
    fn into_patient(self, identifiers: Vec<IdentifierRow>) -> Result<Patient, RepositoryError> {
        let address = match self.address_lines {
            Some(json) => {
                let lines: Vec<String> =
                    serde_json::from_str(&json).map_err(|e| corrupt("patients", e))?;
                Some(Address {
                    lines: lines
                        .into_iter()
                        .map(|line| required_text(&line))
                        .collect::<Result<_, _>>()?,
                    city: text(self.address_city.as_deref())?,
                    postal_code: text(self.address_postal_code.as_deref())?,
                    country: text(self.address_country.as_deref())?,
                })
            }
            None => None,
        };
        let insurance = match (self.insurance_provider, self.insurance_policy_number) {
            (Some(provider), Some(policy_number)) => Some(Insurance {
                provider: required_text(&provider)?,
                policy_number: required_text(&policy_number)?,
                group: text(self.insurance_group.as_deref())?,
                valid_until: self.insurance_valid_until.map(|d| d.0),
            }),
            _ => None,
        };
        let emergency_contact = match (self.emergency_name, self.emergency_phone) {
            (Some(name), Some(phone_number)) => Some(EmergencyContact {
                name: required_text(&name)?,
                relationship: text(self.emergency_relationship.as_deref())?,
                phone: Phone::parse(&phone_number).map_err(|e| corrupt("patients", e))?,
            }),
            _ => None,
        };
        let location = match self.room {
            Some(room) => Some(Location {
                room: required_text(&room)?,
                bed: text(self.bed.as_deref())?,
            }),
            None => None,
        };
        let mut identifiers = identifiers
            .into_iter()
            .map(|row| {
                Ok(Identifier {
                    system: IdentifierSystem::parse(&row.system)
                        .map_err(|e| corrupt("patient_identifiers", e))?,
                    value: Text::line(&row.value, STORED)
                        .map_err(|e| corrupt("patient_identifiers", e))?,
                })
            })
            .collect::<Result<Vec<_>, RepositoryError>>()?;
        // Byte order, the same on both backends whatever PostgreSQL's collation.
        identifiers.sort_by(|a, b| a.system.as_str().cmp(b.system.as_str()));
        Ok(Patient {
            id: PatientId::from_uuid(self.id),
            mrn: mrn(&self.mrn)?,
            details: PatientDetails {
                full_name: FullName::parse(&self.full_name).map_err(|e| corrupt("patients", e))?,
                date_of_birth: self.date_of_birth.0,
                sex: self.sex.parse().map_err(|e| corrupt("patients", e))?,
                contact: Contact {
                    phone: phone(self.phone.as_deref())?,
                    email: self
                        .email
                        .as_deref()
                        .map(Email::parse)
                        .transpose()
                        .map_err(|e| corrupt("patients", e))?,
                    address,
                },
                identifiers,
                insurance,
                emergency_contact,
                location,
                user_id: self.user_id.map(UserId::from_uuid),
            },
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

impl TryFrom<SummaryRow> for PatientSummary {
    type Error = RepositoryError;

    fn try_from(row: SummaryRow) -> Result<Self, Self::Error> {
        Ok(PatientSummary {
            id: PatientId::from_uuid(row.id),
            mrn: mrn(&row.mrn)?,
            full_name: FullName::parse(&row.full_name).map_err(|e| corrupt("patients", e))?,
            date_of_birth: row.date_of_birth.0,
            sex: row.sex.parse().map_err(|e| corrupt("patients", e))?,
        })
    }
}

/// A patient's details as the flat columns `$3` to `$22` of the insert and the update.
struct DetailColumns<'a> {
    full_name: &'a str,
    search_name: String,
    date_of_birth: DbDate,
    sex: &'static str,
    phone: Option<&'a str>,
    email: Option<&'a str>,
    address_lines: Option<String>,
    address_city: Option<&'a str>,
    address_postal_code: Option<&'a str>,
    address_country: Option<&'a str>,
    insurance_provider: Option<&'a str>,
    insurance_policy_number: Option<&'a str>,
    insurance_group: Option<&'a str>,
    insurance_valid_until: Option<DbDate>,
    emergency_name: Option<&'a str>,
    emergency_relationship: Option<&'a str>,
    emergency_phone: Option<&'a str>,
    room: Option<&'a str>,
    bed: Option<&'a str>,
    user_id: Option<Uuid>,
}

impl<'a> DetailColumns<'a> {
    fn of(details: &'a PatientDetails) -> Result<Self, RepositoryError> {
        let contact = &details.contact;
        let address = contact.address.as_ref();
        let address_lines = address
            .map(|a| {
                let lines: Vec<&str> = a.lines.iter().map(Text::as_str).collect();
                serde_json::to_string(&lines)
            })
            .transpose()
            .map_err(RepositoryError::new)?;
        let opt = |t: Option<&'a Text>| t.map(Text::as_str);
        let insurance = details.insurance.as_ref();
        let emergency = details.emergency_contact.as_ref();
        let location = details.location.as_ref();
        Ok(Self {
            full_name: details.full_name.as_str(),
            search_name: search_key(details.full_name.as_str()),
            date_of_birth: DbDate(details.date_of_birth),
            sex: details.sex.as_str(),
            phone: contact.phone.as_ref().map(Phone::as_str),
            email: contact.email.as_ref().map(Email::as_str),
            address_lines,
            address_city: opt(address.and_then(|a| a.city.as_ref())),
            address_postal_code: opt(address.and_then(|a| a.postal_code.as_ref())),
            address_country: opt(address.and_then(|a| a.country.as_ref())),
            insurance_provider: opt(insurance.map(|i| &i.provider)),
            insurance_policy_number: opt(insurance.map(|i| &i.policy_number)),
            insurance_group: opt(insurance.and_then(|i| i.group.as_ref())),
            insurance_valid_until: insurance.and_then(|i| i.valid_until).map(DbDate),
            emergency_name: opt(emergency.map(|e| &e.name)),
            emergency_relationship: opt(emergency.and_then(|e| e.relationship.as_ref())),
            emergency_phone: emergency.map(|e| e.phone.as_str()),
            room: opt(location.map(|l| &l.room)),
            bed: opt(location.and_then(|l| l.bed.as_ref())),
            user_id: details.user_id.map(|id| *id.as_uuid()),
        })
    }
}

impl DetailColumns<'_> {
    /// Binds the details as `$3` to `$22`, after the query's first two parameters.
    fn bind<'q, DB>(&self, query: Query<'q, DB, DB::Arguments>) -> Query<'q, DB, DB::Arguments>
    where
        DB: sqlx::Database,
        for<'a> &'a str: Param<'a, DB>,
        for<'a> Option<&'a str>: Param<'a, DB>,
        for<'a> DbDate: Param<'a, DB>,
        for<'a> Option<DbDate>: Param<'a, DB>,
        for<'a> Option<Uuid>: Param<'a, DB>,
    {
        query
            .bind(self.full_name)
            .bind(self.search_name.as_str())
            .bind(self.date_of_birth)
            .bind(self.sex)
            .bind(self.phone)
            .bind(self.email)
            .bind(self.address_lines.as_deref())
            .bind(self.address_city)
            .bind(self.address_postal_code)
            .bind(self.address_country)
            .bind(self.insurance_provider)
            .bind(self.insurance_policy_number)
            .bind(self.insurance_group)
            .bind(self.insurance_valid_until)
            .bind(self.emergency_name)
            .bind(self.emergency_relationship)
            .bind(self.emergency_phone)
            .bind(self.room)
            .bind(self.bed)
            .bind(self.user_id)
    }
}

/// The patient table's unique keys as the domain's errors.
fn patient_conflict(error: sqlx::Error) -> SavePatientError {
    if MRN_KEY.violated_by(&error) {
        SavePatientError::MrnTaken
    } else if USER_ID_KEY.violated_by(&error) {
        SavePatientError::UserLinked
    } else {
        SavePatientError::Repository(storage(error))
    }
}

fn identifier_conflict(error: sqlx::Error, identifier: &Identifier) -> SavePatientError {
    if IDENTIFIER_KEY.violated_by(&error) {
        SavePatientError::IdentifierTaken {
            system: identifier.system.as_str().to_owned(),
        }
    } else {
        SavePatientError::Repository(storage(error))
    }
}

/// `fragment` as a `LIKE` pattern matching it anywhere, its `%`, `_` and `\` taken literally
/// (the queries say `ESCAPE '\'`).
fn contains_pattern(fragment: &str) -> String {
    let mut pattern = String::with_capacity(fragment.len() + 2);
    pattern.push('%');
    for c in fragment.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One search: the exact matches (record number, identifier value) are found in any scope; the
/// name match, or every patient when no text is given, is limited to the doctor's current care
/// team when a doctor searches.
const SEARCH: &str = "SELECT p.id, p.mrn, p.full_name, p.date_of_birth, p.sex FROM patients p \
     WHERE ($1 IS NULL OR p.id > $1) \
     AND ( \
         ($3 IS NOT NULL AND p.mrn = $3) \
         OR ($4 IS NOT NULL AND EXISTS (SELECT 1 FROM patient_identifiers i \
                                        WHERE i.patient_id = p.id AND i.value = $4)) \
         OR (($5 IS NULL OR p.search_name LIKE $5 ESCAPE '\\') \
             AND ($6 IS NULL OR EXISTS (SELECT 1 FROM care_team_members m \
                                        WHERE m.patient_id = p.id AND m.doctor_id = $6 \
                                        AND m.started_at <= $7 \
                                        AND (m.ended_at IS NULL OR m.ended_at > $7)))) \
     ) \
     ORDER BY p.id LIMIT $2";

const ACCESS_FACTS: &str = "SELECT \
     COALESCE(p.user_id = $2, FALSE) AS is_own_record, \
     EXISTS (SELECT 1 FROM care_team_members m \
             WHERE m.patient_id = p.id AND m.doctor_id = $2 AND m.started_at <= $3 \
             AND (m.ended_at IS NULL OR m.ended_at > $3)) AS on_care_team, \
     EXISTS (SELECT 1 FROM emergency_accesses e \
             WHERE e.patient_id = p.id AND e.doctor_id = $2 AND e.granted_at <= $3 \
             AND e.expires_at > $3) AS emergency_access \
     FROM patients p WHERE p.id = $1";

#[async_trait]
impl<DB> PatientRepository for SqlPatientRepository<DB>
where
    DB: InsertMember + InsertAuditEvent,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Option<String>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> Option<&'a Uuid>: Param<'a, DB>,
    for<'a> DbDate: Param<'a, DB>,
    for<'a> Option<DbDate>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'a> Option<DbTime>: Param<'a, DB>,
    for<'a> i64: Param<'a, DB>,
    for<'r> PatientRow: FromRow<'r, DB::Row>,
    for<'r> PatientWithIdentifierRow: FromRow<'r, DB::Row>,
    for<'r> IdentifierRow: FromRow<'r, DB::Row>,
    for<'r> SummaryRow: FromRow<'r, DB::Row>,
{
    async fn create(
        &self,
        patient: &Patient,
        first_members: &[CareTeamMember],
        audit: &AuditEvent,
    ) -> Result<(), SavePatientError> {
        let columns = DetailColumns::of(&patient.details)?;
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        let insert = sqlx::query(
            "INSERT INTO patients (id, mrn, full_name, search_name, date_of_birth, sex, \
             phone, email, address_lines, address_city, address_postal_code, \
             address_country, insurance_provider, insurance_policy_number, \
             insurance_group, insurance_valid_until, emergency_name, \
             emergency_relationship, emergency_phone, room, bed, user_id, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24)",
        )
        .bind(patient.id.as_uuid())
        .bind(patient.mrn.as_str());
        columns
            .bind(insert)
            .bind(DbTime(patient.created_at))
            .bind(DbTime(patient.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(patient_conflict)?;
        // One at a time, so that a taken value names its system.
        for identifier in &patient.details.identifiers {
            sqlx::query(INSERT_IDENTIFIER)
                .bind(patient.id.as_uuid())
                .bind(identifier.system.as_str())
                .bind(identifier.value.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| identifier_conflict(e, identifier))?;
        }
        for member in first_members {
            DB::insert_member(&mut tx, member, INSERT_MEMBER)
                .await
                .map_err(storage)?;
        }
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(())
    }

    async fn find(&self, id: PatientId) -> Result<Option<Patient>, RepositoryError> {
        let rows = sqlx::query_as::<_, PatientWithIdentifierRow>(concat!(
            select_with_identifiers!(),
            "WHERE p.id = $1"
        ))
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        patient_from_rows(rows)
    }

    async fn find_by_user(&self, user_id: UserId) -> Result<Option<Patient>, RepositoryError> {
        let rows = sqlx::query_as::<_, PatientWithIdentifierRow>(concat!(
            select_with_identifiers!(),
            "WHERE p.user_id = $1"
        ))
        .bind(user_id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        patient_from_rows(rows)
    }

    async fn update(
        &self,
        id: PatientId,
        details: &PatientDetails,
        expected_updated_at: Timestamp,
        now: Timestamp,
        audit: &AuditEvent,
    ) -> Result<Patient, SavePatientError> {
        let columns = DetailColumns::of(details)?;
        let mut tx = DB::begin_write(&self.pool).await.map_err(storage)?;
        // The condition on updated_at is the optimistic lock: of two writers that read
        // the same version, the second finds no row.
        let update = sqlx::query(concat!(
            "UPDATE patients SET full_name = $3, search_name = $4, date_of_birth = $5, \
             sex = $6, phone = $7, email = $8, address_lines = $9, address_city = $10, \
             address_postal_code = $11, address_country = $12, \
             insurance_provider = $13, insurance_policy_number = $14, \
             insurance_group = $15, insurance_valid_until = $16, emergency_name = $17, \
             emergency_relationship = $18, emergency_phone = $19, room = $20, \
             bed = $21, user_id = $22, updated_at = $23 \
             WHERE id = $1 AND updated_at = $2 \
             RETURNING ",
            patient_columns!()
        ))
        .bind(id.as_uuid())
        .bind(DbTime(expected_updated_at));
        let row = columns
            .bind(update)
            .bind(DbTime(now))
            .fetch_optional(&mut *tx)
            .await
            .and_then(|row| row.as_ref().map(PatientRow::from_row).transpose())
            .map_err(patient_conflict)?
            .ok_or(SavePatientError::Stale)?;
        sqlx::query("DELETE FROM patient_identifiers WHERE patient_id = $1")
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        for identifier in &details.identifiers {
            sqlx::query(INSERT_IDENTIFIER)
                .bind(id.as_uuid())
                .bind(identifier.system.as_str())
                .bind(identifier.value.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| identifier_conflict(e, identifier))?;
        }
        let identifiers = sqlx::query_as::<_, IdentifierRow>(SELECT_IDENTIFIERS)
            .bind(id.as_uuid())
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
        DB::insert_audit_event(&mut tx, audit)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(row.into_patient(identifiers)?)
    }

    async fn search(
        &self,
        query: &PatientQuery,
        page: PageRequest<PatientId>,
    ) -> Result<Page<PatientSummary, PatientId>, RepositoryError> {
        let text = query.text.as_ref();
        let (doctor_id, at) = match query.scope {
            SearchScope::All => (None, None),
            SearchScope::Doctor { doctor_id, at } => (Some(doctor_id), Some(at)),
        };
        let rows = sqlx::query_as::<_, SummaryRow>(SEARCH)
            .bind(page.after().map(PatientId::as_uuid))
            .bind(i64::from(page.limit()) + 1)
            .bind(text.and_then(|t| t.mrn()).map(Mrn::as_str))
            .bind(text.map(|t| t.exact()))
            .bind(text.map(|t| contains_pattern(t.name_fragment())))
            .bind(doctor_id.as_ref().map(UserId::as_uuid))
            .bind(at.map(DbTime))
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
        let summaries = rows
            .into_iter()
            .map(PatientSummary::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(summaries, page.limit(), |p| p.id))
    }
}

#[async_trait]
impl<DB> AccessFactsRepository for SqlPatientRepository<DB>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
    for<'r> AccessFactsRow: FromRow<'r, DB::Row>,
{
    async fn access_facts(
        &self,
        patient_id: PatientId,
        user_id: UserId,
        at: Timestamp,
    ) -> Result<Option<AccessFacts>, RepositoryError> {
        let row = sqlx::query_as::<_, AccessFactsRow>(ACCESS_FACTS)
            .bind(patient_id.as_uuid())
            .bind(user_id.as_uuid())
            .bind(DbTime(at))
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        Ok(row.map(|row| AccessFacts {
            is_own_record: row.is_own_record,
            on_care_team: row.on_care_team,
            emergency_access: row.emergency_access,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_wildcards_in_a_search_are_taken_literally() {
        assert_eq!(contains_pattern("ada"), "%ada%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
