//! Who acts, what the policy let them do, and why it turned them away.

use super::{Action, Basis, Decision, Relationship, decide};
use crate::kernel::{PatientId, RepositoryError, Role, UserId};

/// Who is acting, and the request that carries the attempt (for the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    user_id: UserId,
    role: Role,
    request_id: Option<String>,
}

impl Actor {
    /// The authenticated caller of a request: only
    /// identity's `Principal::actor` makes one outside tests.
    pub(crate) fn authenticated(user_id: UserId, role: Role, request_id: Option<String>) -> Self {
        Self {
            user_id,
            role,
            request_id,
        }
    }

    /// An actor without proof of authentication, for tests of the rules.
    #[cfg(any(test, feature = "mocks"))]
    pub fn unchecked(user_id: UserId, role: Role) -> Self {
        Self::authenticated(user_id, role, None)
    }

    /// The same actor, acting in request `request_id`, for tests of the rules.
    #[cfg(any(test, feature = "mocks"))]
    #[must_use]
    pub fn in_request(self, request_id: &str) -> Self {
        Self {
            request_id: Some(request_id.to_owned()),
            ..self
        }
    }

    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The request the attempt came in, to match audit events with logs.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Asks the policy whether this actor may do `action`, related to what they act on by
    /// `relationship`, without auditing: for the clinic's own affairs (accounts, calendars, the
    /// trail), which hold no patient's data. Patient data goes through the audit module's
    /// `Gatekeeper`.
    ///
    /// # Errors
    /// `Forbidden`, or `NotFound` where the policy hides what the actor may not see.
    pub fn permit(&self, action: Action, relationship: Relationship) -> Result<Basis, AccessError> {
        match decide(self.role, relationship, action) {
            Decision::Allow(basis) => Ok(basis),
            Decision::Forbidden => Err(AccessError::Forbidden),
            Decision::Hidden => Err(AccessError::NotFound),
        }
    }
}

/// Proof that the access policy let an actor do one action (on one patient). Only
/// the audit module's `Gatekeeper::authorize` and `Gatekeeper::authorize_role` make one, so the operations
/// that take a grant cannot run unchecked; adapters ask for it before they even read the request's
/// body, so a refused caller learns nothing about what the operation would accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    actor: Actor,
    patient_id: Option<PatientId>,
    action: Action,
    basis: Basis,
}

impl Grant {
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// The patient the grant is for; `None` for a patient-independent action.
    pub fn patient_id(&self) -> Option<PatientId> {
        self.patient_id
    }

    pub fn action(&self) -> Action {
        self.action
    }

    /// The grant's basis and patient, if it is for `action`; a grant for anything else is
    /// refused (a programming error in the adapter, never a way in).
    pub(crate) fn for_action(
        &self,
        action: Action,
    ) -> Result<(Basis, Option<PatientId>), AccessError> {
        if self.action == action {
            Ok((self.basis, self.patient_id))
        } else {
            Err(AccessError::Forbidden)
        }
    }

    pub(crate) fn for_patient_action(
        &self,
        action: Action,
    ) -> Result<(Basis, PatientId), AccessError> {
        match self.for_action(action)? {
            (basis, Some(patient_id)) => Ok((basis, patient_id)),
            (_, None) => Err(AccessError::Forbidden),
        }
    }
}

impl Grant {
    /// What only the gatekeeper makes, once the policy has allowed `action`.
    pub(crate) fn new(
        actor: Actor,
        patient_id: Option<PatientId>,
        action: Action,
        basis: Basis,
    ) -> Self {
        Self {
            actor,
            patient_id,
            action,
            basis,
        }
    }
}

impl AccessError {
    /// This refusal as a service's error, a hidden one answered as `not_found`: for what
    /// belongs to a patient (an appointment, a referral), whose own "not found" is told apart
    /// from the patient's.
    pub fn hiding_as<E: From<AccessError>>(self, not_found: E) -> E {
        match self {
            AccessError::NotFound => not_found,
            other => other.into(),
        }
    }
}

/// Why the access policy turned a caller away from a patient, or could not decide.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The caller may not do this (403): their role never may, or they see the patient only
    /// through an emergency access, which grants reading alone.
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404): the two are not told apart.
    #[error("no such patient")]
    NotFound,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}
