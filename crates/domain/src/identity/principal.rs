//! The authenticated caller of a request, and the refusal of what their role may never do.

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

    /// Refuses callers of any other role. Handlers check this before they even read a request
    /// meant for that role, so a refused caller learns nothing about what it would accept.
    ///
    /// # Errors
    /// [`Forbidden`].
    pub fn require(&self, role: Role) -> Result<(), Forbidden> {
        if self.user.role == role {
            Ok(())
        } else {
            Err(Forbidden)
        }
    }
}

/// The caller's role may never do this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("your role may not do this")]
pub struct Forbidden;
