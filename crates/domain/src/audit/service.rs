//! Reading the audit trail: a patient's access log, for the patient and administrators, and
//! the whole trail, for administrators.

use crate::access::{AccessError, Action, Actor, Relationship};
use crate::audit::{AuditAction, AuditEntry, AuditEventId, AuditFilter, Gatekeeper};
use crate::kernel::{Page, PageRequest, PatientId};

/// Reads the audit trail; reading a patient's access log is itself audited.
#[derive(Debug, Clone)]
pub struct AuditService {
    gate: Gatekeeper,
}

impl AuditService {
    pub fn new(gate: Gatekeeper) -> Self {
        Self { gate }
    }

    /// Who accessed the patient's record: for the patient themself and administrators.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn access_log(
        &self,
        actor: &Actor,
        id: PatientId,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, AccessError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadAccessLog)
            .await?;
        let filter = AuditFilter {
            patient_id: Some(id),
            ..AuditFilter::default()
        };
        let entries = self.gate.entries(filter, page).await?;
        self.gate
            .allowed(actor, id, AuditAction::AccessLogRead, basis)
            .await?;
        Ok(entries)
    }

    /// The whole audit trail, filtered, for administrators.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn audit_trail(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, AccessError> {
        actor.permit(Action::ReadAuditTrail, Relationship::None)?;
        Ok(self.gate.entries(filter, page).await?)
    }
}
