//! Sign-in throttling that an attacker cannot turn against a user (OWASP's "device cookies").
//!
//! Failed sign-ins are counted under several keys at once: the submitted username, the client's
//! address, and the pair of both. Too many under any of them pause sign-in from there. A device
//! that signed in to an account before carries a device token; failures with it are counted
//! against that device instead of the username, so a flood of wrong passwords from elsewhere
//! locks out strangers, never the account's own trusted devices.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use crate::identity::{RefreshTokenHash, UserId};
use crate::kernel::RepositoryError;

/// At most `max` events within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: SignedDuration,
}

impl Limit {
    pub const fn new(max: u32, window: SignedDuration) -> Self {
        Self { max, window }
    }

    /// `Some(wait)` while the limit is reached: the time until the oldest event in the window
    /// leaves it (at least one second).
    pub fn retry_after(&self, recent: RecentFailures, now: Timestamp) -> Option<SignedDuration> {
        if recent.count < self.max {
            return None;
        }
        let oldest = recent.oldest.unwrap_or(now);
        Some(
            (oldest + self.window)
                .duration_since(now)
                .max(SignedDuration::from_secs(1)),
        )
    }
}

/// The limits on sign-ins, refresh tokens and registrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failed sign-ins for one username from clients without a trusted device for it.
    pub per_username: Limit,
    /// Failed sign-ins with one trusted device; past it the device is trusted no more until
    /// the window has passed.
    pub per_device: Limit,
    /// Failed sign-ins for one username from one address, trusted device or not.
    pub per_address_username: Limit,
    /// Failed sign-ins and refused refresh tokens from one address, whatever the username;
    /// a device trusted for the account signing in passes it.
    pub per_address: Limit,
    /// Registrations from one address.
    pub registrations_per_address: Limit,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        let fifteen_minutes = SignedDuration::from_mins(15);
        Self {
            per_username: Limit::new(5, fifteen_minutes),
            per_device: Limit::new(5, fifteen_minutes),
            per_address_username: Limit::new(5, fifteen_minutes),
            per_address: Limit::new(50, fifteen_minutes),
            registrations_per_address: Limit::new(20, SignedDuration::from_hours(1)),
        }
    }
}

impl ThrottlePolicy {
    /// The longest window, after which no count matters any more.
    pub fn longest_window(&self) -> SignedDuration {
        [
            self.per_username,
            self.per_device,
            self.per_address_username,
            self.per_address,
            self.registrations_per_address,
        ]
        .iter()
        .map(|limit| limit.window)
        .max()
        .unwrap_or_default()
    }
}

/// Events counted under one key within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecentFailures {
    pub count: u32,
    pub oldest: Option<Timestamp>,
}

/// A client's network address as throttling counts it: an IPv4 address, or the /64 network of
/// an IPv6 address (one subscriber's usual allocation, which it can walk through freely).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    pub fn new(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 @ IpAddr::V4(_) => v4,
        };
        Self(ip)
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// A device token: proof that this client signed in to an account before. Its `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceToken(String);

impl DeviceToken {
    /// Longer strings are no token CareHub issued.
    pub const MAX_LEN: usize = 64;

    /// `None` for what cannot be a token (empty, over-long or not base64url).
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Self(raw.to_owned()))
    }

    /// A token just made by a [`crate::identity::RefreshTokenFactory`].
    pub fn issued(secret: &str) -> Self {
        Self(secret.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceToken(<redacted>)")
    }
}

/// Who is signing in, as far as throttling cares: where from, and the device tokens the client
/// holds (a browser may hold several, one per account signed in on it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInClient {
    /// `None` when unknown (a caller inside the process): only the username is counted.
    pub address: Option<ClientAddress>,
    pub device_tokens: Vec<DeviceToken>,
}

impl SignInClient {
    /// Device tokens looked at per sign-in; more are ignored.
    pub const MAX_DEVICE_TOKENS: usize = 5;

    pub fn from_address(address: Option<ClientAddress>) -> Self {
        Self {
            address,
            device_tokens: Vec::new(),
        }
    }
}

/// The keys events are counted under. The username is the submitted one, lowercased and
/// bounded, so that unknown usernames are throttled exactly like known ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    pub fn username(submitted: &str) -> Self {
        Self(format!("user:{}", normalized_username(submitted)))
    }

    pub fn device(device: &RefreshTokenHash) -> Self {
        Self(format!("device:{}", device.as_str()))
    }

    pub fn address(address: ClientAddress) -> Self {
        Self(format!("addr:{address}"))
    }

    pub fn address_username(address: ClientAddress, submitted: &str) -> Self {
        Self(format!(
            "addr-user:{address} {}",
            normalized_username(submitted)
        ))
    }

    pub fn registration(address: ClientAddress) -> Self {
        Self(format!("register:{address}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A submitted username as throttling and device trust compare it: trimmed, lowercased and
/// bounded.
pub fn normalized_username(submitted: &str) -> String {
    submitted.trim().to_lowercase().chars().take(64).collect()
}

/// Counts failed sign-ins and other throttled events, shared by every instance.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LoginAttemptRepository: Send + Sync {
    /// Records one event at `at` under each key.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn record_failure(
        &self,
        keys: &[ThrottleKey],
        at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// Events under `key` at or after `since`.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn recent_failures(
        &self,
        key: &ThrottleKey,
        since: Timestamp,
    ) -> Result<RecentFailures, RepositoryError>;

    /// Forgets every event under each key (after a successful sign-in).
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn clear(&self, keys: &[ThrottleKey]) -> Result<(), RepositoryError>;

    /// Forgets events older than `before`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn purge_older_than(&self, before: Timestamp) -> Result<u64, RepositoryError>;
}

/// Devices trusted for an account, stored by the hash of their token.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TrustedDeviceRepository: Send + Sync {
    /// Trusts the device with token hash `device` for `user` until `expires_at` (a token
    /// trusted already gets the later expiry).
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn trust(
        &self,
        device: &RefreshTokenHash,
        user: UserId,
        expires_at: Timestamp,
    ) -> Result<(), RepositoryError>;

    /// Whether the device is trusted, at `now`, for the account with this (lowercased)
    /// username.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn is_trusted_for(
        &self,
        device: &RefreshTokenHash,
        username: &str,
        now: Timestamp,
    ) -> Result<bool, RepositoryError>;

    /// Forgets devices whose trust ended before `before`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError`] on storage failure.
    async fn purge_expired(&self, before: Timestamp) -> Result<u64, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    fn limit() -> Limit {
        ThrottlePolicy::default().per_username
    }

    #[test]
    fn four_failures_do_not_throttle_the_fifth_attempt() {
        let now = ts("2026-01-01T12:00:00Z");
        let failures = RecentFailures {
            count: 4,
            oldest: Some(now - SignedDuration::from_mins(1)),
        };
        assert_eq!(limit().retry_after(failures, now), None);
    }

    #[test]
    fn five_failures_throttle_until_the_oldest_leaves_the_window() {
        let now = ts("2026-01-01T12:00:00Z");
        let failures = RecentFailures {
            count: 5,
            oldest: Some(now - SignedDuration::from_mins(5)),
        };
        assert_eq!(
            limit().retry_after(failures, now),
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
            limit().retry_after(failures, now),
            Some(SignedDuration::from_secs(1))
        );
    }

    #[test]
    fn username_keys_ignore_case_and_are_bounded() {
        assert_eq!(ThrottleKey::username(" Alice ").as_str(), "user:alice");
        assert_eq!(
            ThrottleKey::username(&"x".repeat(500)).as_str().len(),
            "user:".len() + 64
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_network() {
        let a = ClientAddress::new("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = ClientAddress::new("2001:db8:1:2:bbbb::9".parse().expect("ip"));
        let other = ClientAddress::new("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(ThrottleKey::address(a).as_str(), "addr:2001:db8:1:2::/64");
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_address() {
        let mapped = ClientAddress::new("::ffff:192.0.2.7".parse().expect("ip"));
        assert_eq!(mapped, ClientAddress::new("192.0.2.7".parse().expect("ip")));
        assert_eq!(
            ThrottleKey::address_username(mapped, "Bob").as_str(),
            "addr-user:192.0.2.7 bob"
        );
    }

    #[test]
    fn device_tokens_must_look_like_tokens() {
        assert!(DeviceToken::parse("abc-_XYZ09").is_some());
        assert!(DeviceToken::parse("").is_none());
        assert!(DeviceToken::parse("a.b").is_none());
        assert!(DeviceToken::parse(&"a".repeat(65)).is_none());
        assert_eq!(
            format!("{:?}", DeviceToken::parse("secret").expect("token")),
            "DeviceToken(<redacted>)"
        );
    }

    #[test]
    fn the_longest_window_covers_registrations() {
        assert_eq!(
            ThrottlePolicy::default().longest_window(),
            SignedDuration::from_hours(1)
        );
    }
}
