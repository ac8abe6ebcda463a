//! The authenticated caller of a request, and the refusal of what their role may never do.

use crate::access::{Action, Actor, Decision, Relationship, decide};
use crate::identity::{AccessClaims, Role, User, UserId};

/// The authenticated caller of a request: the user as they are now, and their token's claims.
/// Only [`IdentityService::authenticate`](crate::identity::IdentityService::authenticate) makes one, so holding one proves authentication.
#[derive(Debug, Clone)]
pub struct Principal {
    user: User,
    claims: AccessClaims,
}

impl Principal {
    /// Only authentication makes one.
    pub(crate) fn new(user: User, claims: AccessClaims) -> Self {
        Self { user, claims }
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn into_user(self) -> User {
        self.user
    }

    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }

    pub fn id(&self) -> UserId {
        self.user.id
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The actor this caller is in request `request_id`, for the access policy and the audit
    /// trail.
    pub fn actor(&self, request_id: Option<String>) -> Actor {
        Actor::authenticated(self.id(), self.role(), request_id)
    }

    /// Refuses a caller whose role may not do `action`, by the access policy. Handlers ask this
    /// before they even read a request, so a refused caller learns nothing about what it would
    /// accept.
    ///
    /// # Errors
    /// [`Forbidden`].
    pub fn permit(&self, action: Action) -> Result<(), Forbidden> {
        match decide(self.role(), Relationship::None, action) {
            Decision::Allow(_) => Ok(()),
            Decision::Forbidden | Decision::Hidden => Err(Forbidden),
        }
    }
}

/// The caller's role may never do this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("your role may not do this")]
pub struct Forbidden;
