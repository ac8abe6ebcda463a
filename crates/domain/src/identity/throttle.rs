//! Login throttling: too many failed sign-ins for one username pause it for a while.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::kernel::RepositoryError;

/// How many failures within which window pause sign-in for a username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub max_failures: u32,
    pub window: SignedDuration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: SignedDuration::from_mins(15),
        }
    }
}

/// Failed sign-ins for one username key within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecentFailures {
    pub count: u32,
    pub oldest: Option<Timestamp>,
}

impl ThrottlePolicy {
    /// `Some(wait)` while sign-in for the username is paused: the time until the oldest
    /// failure in the window leaves it (at least one second).
    pub fn retry_after(&self, failures: RecentFailures, now: Timestamp) -> Option<SignedDuration> {
        if failures.count < self.max_failures {
            return None;
        }
        let oldest = failures.oldest.unwrap_or(now);
        Some(
            (oldest + self.window)
                .duration_since(now)
                .max(SignedDuration::from_secs(1)),
        )
    }
}

/// The key failures are counted under: the submitted username, lowercased and bounded, so
/// that unknown usernames are throttled exactly like known ones.
pub fn throttle_key(submitted_username: &str) -> String {
    submitted_username
        .trim()
        .to_lowercase()
        .chars()
        .take(64)
        .collect()
}

/// Records failed sign-ins.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LoginAttemptRepository: Send + Sync {
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn record_failure(&self, key: &str, at: Timestamp) -> Result<(), RepositoryError>;

    /// Failures for `key` at or after `since`.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn recent_failures(
        &self,
        key: &str,
        since: Timestamp,
    ) -> Result<RecentFailures, RepositoryError>;

    /// Forgets every failure for `key` (after a successful sign-in).
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn clear(&self, key: &str) -> Result<(), RepositoryError>;

    /// Forgets failures older than `before`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn purge_older_than(&self, before: Timestamp) -> Result<u64, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    #[test]
    fn four_failures_do_not_throttle_the_fifth_attempt() {
        let now = ts("2026-01-01T12:00:00Z");
        let failures = RecentFailures {
            count: 4,
            oldest: Some(now - SignedDuration::from_mins(1)),
        };
        assert_eq!(ThrottlePolicy::default().retry_after(failures, now), None);
    }

    #[test]
    fn five_failures_throttle_until_the_oldest_leaves_the_window() {
        let now = ts("2026-01-01T12:00:00Z");
        let failures = RecentFailures {
            count: 5,
            oldest: Some(now - SignedDuration::from_mins(5)),
        };
        assert_eq!(
            ThrottlePolicy::default().retry_after(failures, now),
            Some(SignedDuration::from_mins(10))
        );
    }

    #[test]
    fn the_wait_is_never_less_than_a_second() {
        let now = ts("2026-01-01T12:00:00Z");
        let failures = RecentFailures {
            count: 5,
            oldest: Some(now - SignedDuration::from_mins(15)),
        };
        assert_eq!(
            ThrottlePolicy::default().retry_after(failures, now),
            Some(SignedDuration::from_secs(1))
        );
    }

    #[test]
    fn throttle_keys_ignore_case_and_are_bounded() {
        assert_eq!(throttle_key(" Alice "), "alice");
        assert_eq!(throttle_key(&"x".repeat(500)).len(), 64);
    }
}
