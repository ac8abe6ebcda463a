//! When a failed job runs again: exponential backoff with jitter, until its attempts are spent.

use jiff::{SignedDuration, Timestamp};

/// Exponential backoff with "equal jitter": the n-th failure waits between half and all of
/// `base × 2^(n-1)` (at most `cap`), so retries of jobs that failed together spread out
/// instead of hitting a recovering server at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: SignedDuration,
    pub cap: SignedDuration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: SignedDuration::from_secs(10),
            cap: SignedDuration::from_hours(1),
        }
    }
}

/// What happens to a job after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// It runs again at this time.
    RetryAt(Timestamp),
    /// Its attempts are spent.
    Dead,
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts` have failed (1 for the first), with
    /// `jitter` in `[0, 1)` choosing where between half and all of the exponential delay.
    pub fn delay(&self, attempts: u32, jitter: f64) -> SignedDuration {
        let exponent = attempts.saturating_sub(1).min(30);
        let full = self
            .base
            .checked_mul(1_i32 << exponent)
            .map_or(self.cap, |d| d.min(self.cap));
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full.div_f64(2.0) + full.div_f64(2.0).mul_f64(jitter)
    }

    /// What to do with a job that failed its `attempts`-th attempt out of `max_attempts`.
    pub fn after_failure(
        &self,
        attempts: u32,
        max_attempts: u32,
        now: Timestamp,
        jitter: f64,
    ) -> AfterFailure {
        if attempts >= max_attempts {
            return AfterFailure::Dead;
        }
        now.checked_add(self.delay(attempts, jitter))
            .map_or(AfterFailure::Dead, AfterFailure::RetryAt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: SignedDuration::from_secs(10),
            cap: SignedDuration::from_secs(300),
        }
    }

    #[test]
    fn each_failure_doubles_the_wait_until_the_cap() {
        let full: Vec<i64> = (1..=7)
            .map(|n| policy().delay(n, 0.999_999).as_secs())
            .collect();
        assert_eq!(full, [9, 19, 39, 79, 159, 299, 299]);
        let least: Vec<i64> = (1..=7).map(|n| policy().delay(n, 0.0).as_secs()).collect();
        assert_eq!(least, [5, 10, 20, 40, 80, 150, 150]);
    }

    #[test]
    fn jitter_spreads_a_wait_between_half_and_all_of_it() {
        let p = policy();
        assert_eq!(p.delay(2, 0.5), SignedDuration::from_secs(15));
        // Out-of-range jitter is clamped, never a negative or endless wait.
        assert_eq!(p.delay(2, -3.0), SignedDuration::from_secs(10));
        assert_eq!(p.delay(2, 7.0), SignedDuration::from_secs(20));
        assert_eq!(p.delay(2, f64::NAN), SignedDuration::from_secs(10));
    }

    #[test]
    fn huge_attempt_counts_stay_at_the_cap() {
        assert_eq!(
            policy().delay(u32::MAX, 1.0),
            SignedDuration::from_secs(300)
        );
    }

    #[test]
    fn a_job_dies_when_its_attempts_are_spent() {
        let now = Timestamp::UNIX_EPOCH;
        let p = policy();
        assert_eq!(
            p.after_failure(1, 3, now, 0.0),
            AfterFailure::RetryAt(now + SignedDuration::from_secs(5))
        );
        assert_eq!(
            p.after_failure(2, 3, now, 0.0),
            AfterFailure::RetryAt(now + SignedDuration::from_secs(10))
        );
        assert_eq!(p.after_failure(3, 3, now, 0.0), AfterFailure::Dead);
        assert_eq!(p.after_failure(9, 3, now, 0.0), AfterFailure::Dead);
    }
}
