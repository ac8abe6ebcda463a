//! Passwords: the rules a new one must meet, and the hashing port.

use std::fmt;

use async_trait::async_trait;

use crate::identity::Username;

/// The longest password accepted at sign-in; longer input is refused before any hashing.
pub const MAX_PASSWORD_CHARS: usize = 128;
const MIN_PASSWORD_CHARS: usize = 12;

/// A password a user chose: 12 to 128 characters, not containing their username.
/// Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("must be at most {MAX_PASSWORD_CHARS} characters long")]
    TooLong,
    #[error("must not contain the username")]
    ContainsUsername,
}

impl Password {
    /// # Errors
    /// [`PasswordError`] naming the first rule `raw` breaks.
    pub fn parse(raw: &str, username: Option<&Username>) -> Result<Self, PasswordError> {
        let length = raw.chars().count();
        if length < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if length > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        if let Some(username) = username
            && raw.to_lowercase().contains(username.as_str())
        {
            return Err(PasswordError::ContainsUsername);
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password as submitted at sign-in, which is only compared against a hash. Input longer
    /// than [`MAX_PASSWORD_CHARS`] is `None`: it cannot match and is not worth hashing.
    pub fn attempt(raw: &str) -> Option<Self> {
        (raw.chars().count() <= MAX_PASSWORD_CHARS).then(|| Self(raw.to_owned()))
    }

    /// A password that is only ever verified against the dummy hash, so that an impossible
    /// sign-in spends the same time as a real one.
    pub fn dummy() -> Self {
        Self(String::new())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$...`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Hashing failed for a reason other than a wrong password (a corrupt stored hash, a worker
/// that died).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(pub String);

/// Hashes and verifies passwords, off the async workers and with bounded concurrency.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// # Errors
    /// [`HashingError`] when hashing could not run.
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashingError>;

    /// Whether `password` matches `hash`. With `hash` `None` it does the same work against a
    /// dummy hash and answers `false`, so an unknown user costs as much time as a known one.
    ///
    /// # Errors
    /// [`HashingError`] when the stored hash is corrupt or hashing could not run.
    async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashingError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_need_twelve_to_one_hundred_twenty_eight_characters() {
        assert_eq!(
            Password::parse("short", None).err(),
            Some(PasswordError::TooShort)
        );
        assert!(Password::parse(&"p".repeat(12), None).is_ok());
        assert!(Password::parse(&"p".repeat(128), None).is_ok());
        assert_eq!(
            Password::parse(&"p".repeat(129), None).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        assert!(Password::parse(&"é".repeat(12), None).is_ok());
        assert_eq!(
            Password::parse(&"é".repeat(11), None).err(),
            Some(PasswordError::TooShort)
        );
    }

    #[test]
    fn a_password_may_not_contain_the_username_in_any_case() {
        let username = Username::parse("gregory").expect("valid username");
        assert_eq!(
            Password::parse("my-GREGORY-secret-1", Some(&username)).err(),
            Some(PasswordError::ContainsUsername)
        );
        assert!(Password::parse("correct horse battery", Some(&username)).is_ok());
    }

    #[test]
    fn passwords_and_hashes_never_show_in_debug_output() {
        let password = Password::parse("correct horse battery", None).expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
        assert!(!format!("{:?}", PasswordHash::new("$argon2id$secret".into())).contains("secret"));
    }

    #[test]
    fn an_overlong_sign_in_attempt_is_not_worth_hashing() {
        assert!(Password::attempt(&"p".repeat(MAX_PASSWORD_CHARS + 1)).is_none());
        assert!(Password::attempt("short").is_some());
    }
}
