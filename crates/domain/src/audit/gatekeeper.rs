//! The gatekeeper: every decision on a patient's data goes through the access policy here, and
//! every attempt, allowed or refused, is written to the audit trail here.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{AuditAction, AuditEntry, AuditEvent, AuditEventId, AuditFilter, AuditLog, Outcome};
use crate::access::{
    AccessError, AccessFactsRepository, Action, Actor, Basis, Decision, Grant, Relationship, decide,
};
use crate::kernel::{Clock, Page, PageRequest, PatientId, RepositoryError};

/// Decides through the access policy and keeps the audit trail. Cheap to clone: every service
/// that touches patient data holds one.
#[derive(Clone)]
pub struct Gatekeeper {
    facts: Arc<dyn AccessFactsRepository>,
    log: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatekeeper").finish_non_exhaustive()
    }
}

impl Gatekeeper {
    pub fn new(
        facts: Arc<dyn AccessFactsRepository>,
        log: Arc<dyn AuditLog>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { facts, log, clock }
    }

    /// Now, on the clock every decision and event is dated by.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// An audit event of `actor`'s attempt: allowed on `basis`, or refused when there is none.
    pub fn event(
        &self,
        actor: &Actor,
        patient_id: Option<PatientId>,
        action: AuditAction,
        basis: Option<Basis>,
        at: OffsetDateTime,
    ) -> AuditEvent {
        AuditEvent {
            id: AuditEventId::generate(),
            at,
            actor_id: actor.user_id(),
            actor_role: actor.role(),
            patient_id,
            action,
            outcome: if basis.is_some() {
                Outcome::Allowed
            } else {
                Outcome::Denied
            },
            basis,
            request_id: actor.request_id().map(str::to_owned),
        }
    }

    /// Appends events to the audit trail (nothing when there are none).
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn record(&self, events: Vec<AuditEvent>) -> Result<(), RepositoryError> {
        if events.is_empty() {
            Ok(())
        } else {
            self.log.record(events).await
        }
    }

    /// Records a refusal as `action` and returns the error to answer with (or the audit log's
    /// failure).
    pub async fn deny<E: From<RepositoryError>>(
        &self,
        actor: &Actor,
        patient_id: Option<PatientId>,
        action: AuditAction,
        error: E,
    ) -> E {
        let event = self.event(actor, patient_id, action, None, self.now());
        match self.log.record(vec![event]).await {
            Ok(()) => error,
            Err(e) => e.into(),
        }
    }

    /// Records that an allowed attempt happened, as `action`, when nothing else writes its
    /// event.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn allowed(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        action: AuditAction,
        basis: Basis,
    ) -> Result<(), RepositoryError> {
        let event = self.event(actor, Some(patient_id), action, Some(basis), self.now());
        self.log.record(vec![event]).await
    }

    /// Whether `actor`'s role may ever do `action`, whatever their relationship to a patient.
    pub fn role_may_ever(actor: &Actor, action: Action) -> bool {
        Relationship::ALL
            .iter()
            .any(|r| decide(actor.role(), *r, action) != Decision::Forbidden)
    }

    /// Asks the policy whether `actor` may do `action` on the patient; a refusal is audited. A
    /// role that may never do `action` is refused before the patient is even looked up.
    ///
    /// # Errors
    /// `Forbidden` when the role may never do it, or the relationship does not allow it;
    /// `NotFound` when the patient does not exist or is outside the actor's relationships;
    /// `Internal`.
    pub async fn decide_on_patient(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        action: Action,
    ) -> Result<Basis, AccessError> {
        if !Self::role_may_ever(actor, action) {
            return Err(self
                .deny(
                    actor,
                    Some(patient_id),
                    action.audit_action(),
                    AccessError::Forbidden,
                )
                .await);
        }
        let facts = self
            .facts
            .access_facts(patient_id, actor.user_id(), self.now())
            .await?;
        let decision = match facts {
            Some(facts) => decide(actor.role(), Relationship::from_facts(facts), action),
            None => Decision::Hidden,
        };
        let error = match decision {
            Decision::Allow(basis) => return Ok(basis),
            Decision::Forbidden => AccessError::Forbidden,
            Decision::Hidden => AccessError::NotFound,
        };
        Err(self
            .deny(actor, Some(patient_id), action.audit_action(), error)
            .await)
    }

    /// The grant to do `action` on the patient, if the policy allows it; see
    /// [`Gatekeeper::decide_on_patient`].
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn authorize(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        action: Action,
    ) -> Result<Grant, AccessError> {
        let basis = self.decide_on_patient(actor, patient_id, action).await?;
        Ok(Grant::new(actor.clone(), Some(patient_id), action, basis))
    }

    /// The grant to do a patient-independent action (registering, searching), if the actor's
    /// role allows it; a refusal is audited.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn authorize_role(
        &self,
        actor: &Actor,
        action: Action,
    ) -> Result<Grant, AccessError> {
        match decide(actor.role(), Relationship::None, action) {
            Decision::Allow(basis) => Ok(Grant::new(actor.clone(), None, action, basis)),
            _ => Err(self
                .deny(actor, None, action.audit_action(), AccessError::Forbidden)
                .await),
        }
    }

    /// Audit entries matching `filter`.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn entries(
        &self,
        filter: AuditFilter,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, RepositoryError> {
        self.log.list(filter, page).await
    }
}
