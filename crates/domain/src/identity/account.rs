//! A new account's details and an administrator's changes to one, each parsed whole so that
//! every invalid field is reported at once.

use crate::identity::{Email, FullName, Password, Role, UserChanges, UserStatus, Username};
use crate::kernel::ValidationErrors;

/// A new account's details, every field validated.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub password: Password,
    pub full_name: FullName,
    pub email: Option<Email>,
    pub role: Role,
}

impl NewAccount {
    /// Parses every field, reporting all violations at once.
    ///
    /// # Errors
    /// [`ValidationErrors`] listing each invalid field.
    pub fn parse(
        username: &str,
        password: &str,
        full_name: &str,
        email: Option<&str>,
        role: &str,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let username = errors.check("username", Username::parse(username));
        // Without a valid username the "contains the username" rule has nothing to compare.
        let password = errors.check("password", Password::parse(password, username.as_ref()));
        let full_name = errors.check("full_name", FullName::parse(full_name));
        let email = match email {
            Some(raw) => errors.check("email", Email::parse(raw)).map(Some),
            None => Some(None),
        };
        let role = errors.check(
            "role",
            role.parse::<Role>()
                .map_err(|_| "must be one of admin, secretary, doctor, laboratory, patient"),
        );
        match (username, password, full_name, email, role) {
            (Some(username), Some(password), Some(full_name), Some(email), Some(role))
                if errors.is_empty() =>
            {
                Ok(Self {
                    username,
                    password,
                    full_name,
                    email,
                    role,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Parses an administrator's changes to an account, reporting all violations at once.
/// `email: Some(None)` clears the address.
///
/// # Errors
/// [`ValidationErrors`] listing each invalid field.
pub fn parse_user_changes(
    full_name: Option<&str>,
    email: Option<Option<&str>>,
    role: Option<&str>,
    status: Option<&str>,
) -> Result<UserChanges, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut changes = UserChanges::default();
    if let Some(raw) = full_name {
        changes.full_name = errors.check("full_name", FullName::parse(raw));
    }
    match email {
        Some(Some(raw)) => changes.email = errors.check("email", Email::parse(raw)).map(Some),
        Some(None) => changes.email = Some(None),
        None => {}
    }
    if let Some(raw) = role {
        changes.role = errors.check(
            "role",
            raw.parse::<Role>()
                .map_err(|_| "must be one of admin, secretary, doctor, laboratory, patient"),
        );
    }
    if let Some(raw) = status {
        changes.status = errors.check(
            "status",
            match raw.parse::<UserStatus>() {
                Ok(UserStatus::Pending) | Err(_) => Err("must be active or suspended"),
                Ok(status) => Ok(status),
            },
        );
    }
    errors.into_result().map(|()| changes)
}
