//! The gatekeeper: every decision on a patient's data goes through the access policy here, and
//! every attempt, allowed or refused, is written to the audit trail here.

use std::sync::Arc;

use jiff::Timestamp;

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
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// An audit event of `actor`'s attempt: allowed on `basis`, or refused when there is none.
    pub fn event(
        &self,
        actor: &Actor,
        patient_id: Option<PatientId>,
        action: AuditAction,
        basis: Option<Basis>,
        at: Timestamp,
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

    /// Whether `actor`'s role may ever do `action`, whatever their relationship to what they
    /// act on.
    pub fn role_may_ever(actor: &Actor, action: Action) -> bool {
        Relationship::ALL
            .iter()
            .any(|r| decide(actor.role(), *r, action) != Decision::Forbidden)
    }

    /// Refuses, audited as `audit_as` without a patient, a caller whose role may never do
    /// `action`, before anything is looked up or read: handlers ask this before they read a
    /// request's body, so a refused caller learns nothing about what it would accept.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_role(
        &self,
        actor: &Actor,
        action: Action,
        audit_as: AuditAction,
    ) -> Result<(), AccessError> {
        if Self::role_may_ever(actor, action) {
            Ok(())
        } else {
            Err(self
                .deny(actor, None, audit_as, AccessError::Forbidden)
                .await)
        }
    }

    /// Asks the policy whether `actor`, related to what they act on by `relationship`, may do
    /// `action`; a refusal is audited as `audit_as`, with the patient concerned if there is
    /// one. For what is not a patient's record but belongs to one: an appointment, a referral.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound` (the policy hides it), `Internal`.
    pub async fn decide(
        &self,
        actor: &Actor,
        relationship: Relationship,
        action: Action,
        audit_as: AuditAction,
        patient_id: Option<PatientId>,
    ) -> Result<Basis, AccessError> {
        match actor.permit(action, relationship) {
            Ok(basis) => Ok(basis),
            Err(error) => Err(self.deny(actor, patient_id, audit_as, error).await),
        }
    }

    /// Records a refusal as `audit_as` (when the attempt is an audited one) and returns `error`.
    async fn refuse(
        &self,
        actor: &Actor,
        patient_id: Option<PatientId>,
        audit_as: Option<AuditAction>,
        error: AccessError,
    ) -> AccessError {
        match audit_as {
            Some(audit_as) => self.deny(actor, patient_id, audit_as, error).await,
            None => error,
        }
    }

    /// Asks the policy whether `actor` may do `action` on the patient; a refusal is audited as
    /// the action's own audit action. A role that may never do `action` is refused before the
    /// patient is even looked up.
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
        self.decide_on_patient_as(actor, patient_id, action, action.audit_action())
            .await
    }

    /// As [`Gatekeeper::decide_on_patient`], a refusal audited as `audit_as`: for an attempt
    /// that one action's rights cover but the trail names more precisely (a file read under
    /// the right to read an order, a cancellation under the right to order).
    ///
    /// # Errors
    /// As [`Gatekeeper::decide_on_patient`].
    pub async fn decide_on_patient_as(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        action: Action,
        audit_as: Option<AuditAction>,
    ) -> Result<Basis, AccessError> {
        if !Self::role_may_ever(actor, action) {
            return Err(self
                .refuse(actor, Some(patient_id), audit_as, AccessError::Forbidden)
                .await);
        }
        let facts = self
            .facts
            .access_facts(patient_id, actor.user_id(), self.now())
            .await?;
        // No such patient: not found, whatever the role.
        let decision = match facts {
            Some(facts) => actor.permit(action, Relationship::from_facts(facts)),
            None => Err(AccessError::NotFound),
        };
        match decision {
            Ok(basis) => Ok(basis),
            Err(error) => Err(self.refuse(actor, Some(patient_id), audit_as, error).await),
        }
    }

    /// The basis on which `actor` may do `action` on the patient now, or `None`, without
    /// auditing: for leaving out of a listing what the caller may no longer see, when the
    /// caller audits what the listing shows.
    ///
    /// # Errors
    /// [`RepositoryError`].
    pub async fn basis_on_patient(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        action: Action,
    ) -> Result<Option<Basis>, RepositoryError> {
        let facts = self
            .facts
            .access_facts(patient_id, actor.user_id(), self.now())
            .await?;
        Ok(facts.and_then(|f| actor.permit(action, Relationship::from_facts(f)).ok()))
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
                .refuse(actor, None, action.audit_action(), AccessError::Forbidden)
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
