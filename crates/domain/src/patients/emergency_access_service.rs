//! Break-the-glass: a doctor takes time-limited read access to a patient outside their care
//! team, the administrators are told at once, and they can list every such access.

use std::sync::Arc;

use jiff::SignedDuration;

use crate::access::{AccessError, Action, Actor, Grant, Relationship};
use crate::audit::{AuditAction, Gatekeeper};
use crate::identity::{UserId, UserRepository, name_of};
use crate::kernel::{Page, PageRequest, RepositoryError, ValidationErrors};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher, Recipient,
    publish_committed,
};
use crate::patients::{
    EmergencyAccess, EmergencyAccessFilter, EmergencyAccessId, EmergencyAccessRepository,
    EmergencyReason, PatientId,
};

/// Why an emergency access operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EmergencyAccessError {
    /// The caller may not do this (403): their role never may, or they see the patient only
    /// through an emergency access, which grants reading alone.
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404): the two are not told apart.
    #[error("no such patient")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for EmergencyAccessError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// Emergency accesses to patients' records.
#[derive(Clone)]
pub struct EmergencyAccessService {
    gate: Gatekeeper,
    emergency_accesses: Arc<dyn EmergencyAccessRepository>,
    users: Arc<dyn UserRepository>,
    publisher: Arc<dyn NotificationPublisher>,
    ttl: SignedDuration,
}

impl std::fmt::Debug for EmergencyAccessService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmergencyAccessService")
            .finish_non_exhaustive()
    }
}

impl EmergencyAccessService {
    pub fn new(
        gate: Gatekeeper,
        emergency_accesses: Arc<dyn EmergencyAccessRepository>,
        users: Arc<dyn UserRepository>,
        publisher: Arc<dyn NotificationPublisher>,
        ttl: SignedDuration,
    ) -> Self {
        Self {
            gate,
            emergency_accesses,
            users,
            publisher,
            ttl,
        }
    }

    /// Breaks the glass: the calling doctor may read the patient for the next 60 minutes.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (reason), `Internal`.
    pub async fn request_emergency_access(
        &self,
        grant: &Grant,
        reason: EmergencyReason,
    ) -> Result<EmergencyAccess, EmergencyAccessError> {
        let (basis, id) = grant.for_patient_action(Action::RequestEmergencyAccess)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        let access = EmergencyAccess {
            id: EmergencyAccessId::generate(),
            patient_id: id,
            doctor_id: actor.user_id(),
            doctor_name: None,
            reason,
            granted_at: now,
            expires_at: now + self.ttl,
        };
        let event = self.gate.event(
            actor,
            Some(id),
            AuditAction::EmergencyAccessGrant,
            Some(basis),
            now,
        );
        let by = name_of(self.users.as_ref(), actor.user_id()).await?;
        let notice = NewNotification {
            recipient: Recipient::ActiveAdmins,
            kind: NotificationKind::EmergencyAccessUsed,
            data: NotificationData {
                title: format!("{by} used emergency access to a patient's record"),
                patient_id: Some(*id.as_uuid()),
                actor_id: Some(*actor.user_id().as_uuid()),
                emergency_access_id: Some(*access.id.as_uuid()),
                ..NotificationData::default()
            },
        };
        let stored = self
            .emergency_accesses
            .grant(&access, &event, &[notice])
            .await?;
        publish_committed(self.publisher.as_ref(), &stored).await;
        Ok(access)
    }

    /// Emergency accesses, for administrators: optionally of one patient, by one doctor, and
    /// only those still active (`Some(true)`) or only those expired (`Some(false)`) now.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn list_emergency_accesses(
        &self,
        actor: &Actor,
        patient_id: Option<PatientId>,
        doctor_id: Option<UserId>,
        active: Option<bool>,
        page: PageRequest<EmergencyAccessId>,
    ) -> Result<Page<EmergencyAccess, EmergencyAccessId>, EmergencyAccessError> {
        if actor
            .permit(Action::ReadEmergencyAccesses, Relationship::None)
            .is_err()
        {
            return Err(EmergencyAccessError::Forbidden);
        }
        let now = self.gate.now();
        let filter = EmergencyAccessFilter {
            patient_id,
            doctor_id,
            active_at: (active == Some(true)).then_some(now),
            expired_at: (active == Some(false)).then_some(now),
        };
        Ok(self.emergency_accesses.list(filter, page).await?)
    }
}
