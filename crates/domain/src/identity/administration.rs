//! Account administration: administrators create staff accounts, approve pending ones, and
//! change or suspend accounts (a suspension ends the account's sessions at once).

use crate::access::Action;
use crate::identity::service::CreateAccountError;
use crate::identity::{
    Forbidden, IdentityService, InternalError, NewAccount, Principal, User, UserChanges,
    UserFilter, UserId, UserStatus,
};
use crate::jobs::{NewJob, Task};
use crate::kernel::{Page, PageRequest, ValidationErrors};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("no such user")]
    NotFound,
    #[error("the user is not pending approval")]
    NotPending,
    #[error("administrators cannot change their own role or status")]
    OwnAccess,
    #[error("the username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl IdentityService {
    /// Creates an active account of any role; used by administrators and the command line.
    ///
    /// # Errors
    /// [`AdminError::UsernameTaken`], or [`AdminError::Internal`].
    pub async fn create_active_account(&self, account: NewAccount) -> Result<User, AdminError> {
        self.create_account(account, UserStatus::Active)
            .await
            .map_err(|e| match e {
                CreateAccountError::UsernameTaken => AdminError::UsernameTaken,
                CreateAccountError::Internal(e) => e.into(),
            })
    }

    /// # Errors
    /// [`AdminError::Forbidden`] unless the caller is an administrator.
    pub async fn list_users(
        &self,
        actor: &Principal,
        filter: UserFilter,
        page: PageRequest<UserId>,
    ) -> Result<Page<User, UserId>, AdminError> {
        actor.permit(Action::ManageAccounts)?;
        Ok(self.ports.users.list(filter, page).await?)
    }

    /// An administrator creates an active staff account.
    ///
    /// # Errors
    /// [`AdminError`]; a patient role is invalid here (patients register themselves).
    pub async fn create_staff(
        &self,
        actor: &Principal,
        account: NewAccount,
    ) -> Result<User, AdminError> {
        actor.permit(Action::ManageAccounts)?;
        if !account.role.is_staff() {
            let mut errors = ValidationErrors::new();
            errors.add(
                "role",
                "must be a staff role: admin, secretary, doctor or laboratory",
            );
            return Err(errors.into());
        }
        self.create_active_account(account).await
    }

    /// An administrator approves a pending account; if it has an e-mail address, an e-mail
    /// telling its owner is enqueued with the approval.
    ///
    /// # Errors
    /// [`AdminError`].
    pub async fn approve(&self, actor: &Principal, id: UserId) -> Result<User, AdminError> {
        actor.permit(Action::ManageAccounts)?;
        let user = self
            .ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)?;
        if user.status != UserStatus::Pending {
            return Err(AdminError::NotPending);
        }
        let now = self.ports.clock.now();
        // Staff hear by e-mail that they may sign in, when they gave an address.
        let jobs: Vec<NewJob> = user
            .email
            .iter()
            .map(|_| {
                NewJob::new(Task::AccountApprovedEmail { user: id }, now)
                    .unique(format!("email.account_approved:{id}"))
            })
            .collect();
        self.ports
            .users
            .approve(id, now, &jobs)
            .await?
            .ok_or(AdminError::NotPending)
    }

    /// An administrator changes an account. Suspending it revokes all its tokens at once.
    /// Administrators cannot change their own role or status (so the clinic is never left
    /// without one by mistake), and an account cannot move between patient and staff.
    ///
    /// # Errors
    /// [`AdminError`].
    pub async fn update_user(
        &self,
        actor: &Principal,
        id: UserId,
        changes: UserChanges,
    ) -> Result<User, AdminError> {
        actor.permit(Action::ManageAccounts)?;
        let current = self
            .ports
            .users
            .find_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)?;
        let role_changes = changes.role.is_some_and(|role| role != current.role);
        let status_changes = changes
            .status
            .is_some_and(|status| status != current.status);
        if id == actor.id() && (role_changes || status_changes) {
            return Err(AdminError::OwnAccess);
        }
        if let Some(role) = changes.role
            && role.is_staff() != current.role.is_staff()
        {
            let mut errors = ValidationErrors::new();
            errors.add(
                "role",
                "an account cannot move between patient and staff roles",
            );
            return Err(errors.into());
        }
        let updated = self
            .ports
            .users
            .update(id, &changes)
            .await?
            .ok_or(AdminError::NotFound)?;
        if status_changes && updated.status == UserStatus::Suspended {
            let now = self.ports.clock.now();
            self.ports
                .refresh_tokens
                .revoke_all_for_user(id, now)
                .await?;
        }
        Ok(updated)
    }
}
