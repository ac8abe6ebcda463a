//! Looking users up for other concepts: the active doctor an input names, and how a user is
//! named in notification titles.

use super::{Role, User, UserRepository};
use crate::kernel::{RepositoryError, UserId, ValidationErrors};

/// The active doctor with this id; otherwise the input's `field` is invalid.
///
/// # Errors
/// The validation error, or the repository's failure.
pub async fn active_doctor<E>(
    users: &dyn UserRepository,
    id: UserId,
    field: &str,
) -> Result<User, E>
where
    E: From<RepositoryError> + From<ValidationErrors>,
{
    match users.find_by_id(id).await? {
        Some(user) if user.role == Role::Doctor && user.is_active() => Ok(user),
        _ => {
            let mut errors = ValidationErrors::new();
            errors.add(field, "must be the id of an active doctor");
            Err(errors.into())
        }
    }
}

/// How a user is named in notification titles: doctors with their title.
pub fn display_name(user: Option<&User>) -> String {
    match user {
        Some(user) if user.role == Role::Doctor => format!("Dr {}", user.full_name.as_str()),
        Some(user) => user.full_name.as_str().to_owned(),
        None => "A former colleague".to_owned(),
    }
}

/// How the user with this id is named in notification titles.
///
/// # Errors
/// [`RepositoryError`].
pub async fn name_of(users: &dyn UserRepository, id: UserId) -> Result<String, RepositoryError> {
    Ok(display_name(users.find_by_id(id).await?.as_ref()))
}
