//! Work that happens later: a durable queue of jobs kept in the clinic's own database.
//!
//! A job is stored as a row, in the same transaction as the change that causes it (the ports of
//! those changes take [`NewJob`]s), so a rolled-back change leaves no job and a committed one
//! always has its job. Workers on any instance claim due jobs for a lease, run them at least
//! once, and retry failures with exponential backoff and jitter ([`RetryPolicy`]) until the
//! kind's attempts are spent, when the job is `dead`. A job whose worker died is claimed again
//! once its lease expires. Recurring work is one job per occurrence of a schedule, recorded so
//! that every instance agrees it was scheduled once.

mod job;
mod queue;
mod retry;
mod service;

pub use job::*;
pub use queue::*;
pub use retry::*;
pub use service::*;
