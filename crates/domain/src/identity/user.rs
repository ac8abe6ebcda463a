//! Users, their roles and statuses, and the port that stores them.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::identity::PasswordHash;
use crate::jobs::NewJob;
use crate::kernel::{Page, PageRequest, RepositoryError};

pub use crate::kernel::{Role, UnknownRole, UserId};

/// A sign-in name: 3 to 32 of `a-z 0-9 . _ -`, compared regardless of case (kept lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("must be between 3 and 32 characters long")]
    Length,
    #[error("may only contain letters a-z, digits 0-9, '.', '_' and '-'")]
    Characters,
}

impl Username {
    /// # Errors
    /// [`UsernameError`] naming the first rule `raw` breaks.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let lower = raw.trim().to_ascii_lowercase();
        if !(3..=32).contains(&lower.chars().count()) {
            return Err(UsernameError::Length);
        }
        if !lower.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return Err(UsernameError::Characters);
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's full name as it should be displayed: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FullName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FullNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 200 characters long")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacters,
}

impl FullName {
    /// # Errors
    /// [`FullNameError`] naming the first rule `raw` breaks.
    pub fn parse(raw: &str) -> Result<Self, FullNameError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FullNameError::Empty);
        }
        if trimmed.chars().count() > 200 {
            return Err(FullNameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(FullNameError::ControlCharacters);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, syntactically valid per RFC 5322 and at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a valid e-mail address of at most 254 characters")]
pub struct EmailError;

impl Email {
    /// # Errors
    /// [`EmailError`] when `raw` is not an address.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.len() > 254 {
            return Err(EmailError);
        }
        // Display names ("Ann <ann@x.org>") are valid RFC 5322 but not an address to store.
        let options = email_address::Options::default().without_display_text();
        email_address::EmailAddress::parse_with_options(trimmed, options)
            .map(|_| Self(trimmed.to_owned()))
            .map_err(|_| EmailError)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a user of each role who registers themself starts out.
impl Role {
    /// The status a self-registered account of this role starts in, or `None` when the role
    /// cannot be self-registered at all.
    pub const fn self_registration_status(self) -> Option<UserStatus> {
        match self {
            Role::Patient => Some(UserStatus::Active),
            Role::Doctor | Role::Secretary | Role::Laboratory => Some(UserStatus::Pending),
            Role::Admin => None,
        }
    }
}

/// Whether an account may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Registered staff waiting for an administrator's approval.
    Pending,
    Active,
    /// Stopped by an administrator; every token of the user is revoked.
    Suspended,
}

impl UserStatus {
    pub const ALL: [UserStatus; 3] = [
        UserStatus::Pending,
        UserStatus::Active,
        UserStatus::Suspended,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status")]
pub struct UnknownStatus;

impl FromStr for UserStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// A user as the rest of the system sees them: never with a password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub full_name: FullName,
    pub email: Option<Email>,
    pub role: Role,
    pub status: UserStatus,
    pub created_at: Timestamp,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }
}

/// What to filter a user listing by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
}

/// Changes to a user's profile; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub full_name: Option<FullName>,
    /// `Some(None)` clears the address.
    pub email: Option<Option<Email>>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores users and their password hashes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user with their password hash.
    ///
    /// # Errors
    /// [`CreateUserError::UsernameTaken`] when another user has the same username (usernames
    /// are unique regardless of case); [`CreateUserError::Repository`] on storage failure.
    async fn create(
        &self,
        user: &User,
        password_hash: &PasswordHash,
    ) -> Result<(), CreateUserError>;

    /// # Errors
    /// [`RepositoryError`] on storage failure; a missing user is `Ok(None)`.
    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, RepositoryError>;

    /// The user with this username and their password hash, for sign-in.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure; a missing user is `Ok(None)`.
    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<(User, PasswordHash)>, RepositoryError>;

    /// Users matching `filter`, ordered by id.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn list(
        &self,
        filter: UserFilter,
        page: PageRequest<UserId>,
    ) -> Result<Page<User, UserId>, RepositoryError>;

    /// Activates a pending account at `at`, storing `jobs` (the work its approval causes) in
    /// the same transaction, and returns the user as they now are; `None` when there is no
    /// pending account with this id (and nothing is written).
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn approve(
        &self,
        id: UserId,
        at: Timestamp,
        jobs: &[NewJob],
    ) -> Result<Option<User>, RepositoryError>;

    /// Applies `changes` and returns the user as they now are, or `None` when no such user.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn update(
        &self,
        id: UserId,
        changes: &UserChanges,
    ) -> Result<Option<User>, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_so_case_never_makes_two_accounts() {
        assert_eq!(
            Username::parse("Dr.House").map(|u| u.0),
            Ok("dr.house".to_owned())
        );
    }

    #[test]
    fn usernames_need_three_to_thirty_two_allowed_characters() {
        for ok in ["abc", "a.b_c-9", &"x".repeat(32)] {
            assert!(Username::parse(ok).is_ok(), "{ok} should be accepted");
        }
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"x".repeat(33)), Err(UsernameError::Length));
        for bad in ["with space", "émile", "semi;colon", "at@sign"] {
            assert_eq!(
                Username::parse(bad),
                Err(UsernameError::Characters),
                "{bad}"
            );
        }
    }

    #[test]
    fn full_names_are_trimmed_and_bounded() {
        assert_eq!(
            FullName::parse("  Gregory House ").map(|n| n.0),
            Ok("Gregory House".into())
        );
        assert_eq!(FullName::parse("   "), Err(FullNameError::Empty));
        assert_eq!(
            FullName::parse(&"n".repeat(201)),
            Err(FullNameError::TooLong)
        );
        assert_eq!(
            FullName::parse("a\u{0}b"),
            Err(FullNameError::ControlCharacters)
        );
    }

    #[test]
    fn emails_must_be_plain_addresses() {
        assert!(Email::parse("ann@clinic.example").is_ok());
        for bad in ["", "ann", "ann@", "Ann <ann@clinic.example>", "a b@c.d"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patients_start_active_staff_start_pending_and_admins_cannot_self_register() {
        assert_eq!(
            Role::Patient.self_registration_status(),
            Some(UserStatus::Active)
        );
        for staff in [Role::Doctor, Role::Secretary, Role::Laboratory] {
            assert_eq!(staff.self_registration_status(), Some(UserStatus::Pending));
        }
        assert_eq!(Role::Admin.self_registration_status(), None);
    }

    #[test]
    fn roles_and_statuses_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        for status in UserStatus::ALL {
            assert_eq!(status.as_str().parse::<UserStatus>(), Ok(status));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
