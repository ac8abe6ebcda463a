//! Time as a port, so rules that depend on it (expiry, throttling) are testable.

use jiff::Timestamp;

/// The source of "now". Times are truncated to microseconds, the precision both databases keep.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        truncate_to_micros(Timestamp::now())
    }
}

/// Drops sub-microsecond precision so a time survives a round trip through any backend.
pub fn truncate_to_micros(at: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(at.as_microsecond()).unwrap_or(at)
}

/// A clock that stands still, for tests and for tools that replay history.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}
