//! Writing audit events, shared by the audit log and by every repository that stores a change
//! together with its audit event in one transaction.

use std::future::Future;

use sqlx::Executor;
use uuid::Uuid;

use carehub_domain::audit::AuditEvent;
use carehub_domain::patients::PatientId;

use crate::db::backend::{Backend, Param};
use crate::db::sql_time::DbTime;

/// The audit insert; one row per event.
const INSERT_AUDIT_EVENT: &str = "INSERT INTO audit_events \
     (id, occurred_at, actor_id, actor_role, patient_id, action, outcome, basis, request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// An audit event's values, in the order [`INSERT_AUDIT_EVENT`] binds them.
pub(crate) struct AuditRow<'a> {
    pub id: Uuid,
    pub occurred_at: DbTime,
    pub actor_id: Uuid,
    pub actor_role: &'static str,
    pub patient_id: Option<Uuid>,
    pub action: &'static str,
    pub outcome: &'static str,
    pub basis: Option<&'static str>,
    pub request_id: Option<&'a str>,
}

impl<'a> From<&'a AuditEvent> for AuditRow<'a> {
    fn from(event: &'a AuditEvent) -> Self {
        Self {
            id: *event.id.as_uuid(),
            occurred_at: DbTime(event.at),
            actor_id: *event.actor_id.as_uuid(),
            actor_role: event.actor_role.as_str(),
            patient_id: event.patient_id.as_ref().map(PatientId::as_uuid).copied(),
            action: event.action.as_str(),
            outcome: event.outcome.as_str(),
            basis: event.basis.map(|b| b.as_str()),
            request_id: event.request_id.as_deref(),
        }
    }
}

/// Writing one audit event on a connection inside a write transaction, the change's own, so
/// that it commits with the change it records: every repository that changes patient data
/// calls this before committing. One implementation serves every backend that binds the
/// event's columns.
pub(crate) trait InsertAuditEvent: Backend {
    fn insert_audit_event(
        conn: &mut Self::Connection,
        event: &AuditEvent,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl<DB> InsertAuditEvent for DB
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Param<'a, DB>,
    for<'a> Option<&'a str>: Param<'a, DB>,
    for<'a> Uuid: Param<'a, DB>,
    for<'a> Option<Uuid>: Param<'a, DB>,
    for<'a> DbTime: Param<'a, DB>,
{
    async fn insert_audit_event(
        conn: &mut DB::Connection,
        event: &AuditEvent,
    ) -> Result<(), sqlx::Error> {
        let row = AuditRow::from(event);
        sqlx::query(INSERT_AUDIT_EVENT)
            .bind(row.id)
            .bind(row.occurred_at)
            .bind(row.actor_id)
            .bind(row.actor_role)
            .bind(row.patient_id)
            .bind(row.action)
            .bind(row.outcome)
            .bind(row.basis)
            .bind(row.request_id)
            .execute(conn)
            .await?;
        Ok(())
    }
}
