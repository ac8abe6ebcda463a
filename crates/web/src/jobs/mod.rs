//! This instance's job workers: they claim due jobs from the shared queue, run each task, and
//! record how it went; a scheduler adds the occurrences of recurring work. Both run inside
//! `carehub serve` unless `CAREHUB_JOB_WORKERS` is 0 (an instance that only serves).

mod recurring;
mod runner;
mod tasks;

pub use recurring::{Recurring, Schedule};
pub use runner::{JobsConfig, Runner, RunnerHandle};
pub use tasks::Tasks;
