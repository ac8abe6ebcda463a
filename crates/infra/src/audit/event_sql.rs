//! Writing audit events, shared by the audit log and by every repository that stores a change
//! together with its audit event in one transaction.

use carehub_domain::audit::AuditEvent;
use carehub_domain::patients::PatientId;

use crate::db::sql_time::DbTime;

/// The audit insert; one row per event.
pub(crate) const INSERT_AUDIT_EVENT: &str = "INSERT INTO audit_events \
     (id, occurred_at, actor_id, actor_role, patient_id, action, outcome, basis, request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// An audit event's values, in the order [`INSERT_AUDIT_EVENT`] binds them.
pub(crate) struct AuditRow<'a> {
    pub id: uuid::Uuid,
    pub occurred_at: DbTime,
    pub actor_id: uuid::Uuid,
    pub actor_role: &'static str,
    pub patient_id: Option<uuid::Uuid>,
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

/// Inserts one audit event on `$executor` (a transaction, so that it commits with the change it
/// records). Evaluates to `Result<_, sqlx::Error>`.
macro_rules! insert_audit_event {
    ($executor:expr, $event:expr) => {{
        let row = $crate::audit::AuditRow::from($event);
        sqlx::query($crate::audit::INSERT_AUDIT_EVENT)
            .bind(row.id)
            .bind(row.occurred_at)
            .bind(row.actor_id)
            .bind(row.actor_role)
            .bind(row.patient_id)
            .bind(row.action)
            .bind(row.outcome)
            .bind(row.basis)
            .bind(row.request_id)
            .execute($executor)
            .await
    }};
}
pub(crate) use insert_audit_event;
