//! Recurring work: each schedule, a cron pattern in the clinic's time zone, becomes one job per
//! occurrence. Every instance with workers adds the next occurrence of each schedule now and
//! then; the queue records occurrences under a key, so the first instance adds the job and the
//! others add nothing. Occurrences missed while no instance ran are not made up.

use std::sync::Arc;
use std::time::Duration;

use croner::Cron;
use jiff::tz::TimeZone;

use carehub_domain::jobs::{JobQueue, NewJob, Task};
use carehub_domain::kernel::Clock;

/// One recurring task.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Names the schedule in the queue's record of occurrences.
    pub name: &'static str,
    pub cron: Cron,
    pub task: Task,
}

impl Schedule {
    /// # Errors
    /// When `pattern` is not a cron pattern (five fields, or six with seconds first).
    pub fn parse(name: &'static str, pattern: &str, task: Task) -> anyhow::Result<Self> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|e| {
                anyhow::anyhow!("schedule {name}: `{pattern}` is not a cron pattern: {e}")
            })?;
        Ok(Self { name, cron, task })
    }
}

/// Adds the next occurrence of each schedule.
#[derive(Clone)]
pub struct Recurring {
    pub schedules: Vec<Schedule>,
    pub queue: Arc<dyn JobQueue>,
    pub clock: Arc<dyn Clock>,
    pub time_zone: TimeZone,
}

impl std::fmt::Debug for Recurring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recurring")
            .field("schedules", &self.schedules)
            .finish_non_exhaustive()
    }
}

/// How often each instance makes sure the next occurrences are in the queue.
pub const SCHEDULING_INTERVAL: Duration = Duration::from_secs(15);

impl Recurring {
    /// Adds the next occurrence of every schedule that is not yet in the queue.
    pub async fn schedule_next(&self) {
        let now = self.clock.now().to_zoned(self.time_zone.clone());
        for schedule in &self.schedules {
            let next = match schedule.cron.find_next_occurrence(&now, false) {
                Ok(next) => next.timestamp(),
                Err(e) => {
                    tracing::warn!(schedule = schedule.name, error = %e, "no next occurrence");
                    continue;
                }
            };
            let job = NewJob::new(schedule.task.clone(), next);
            match self
                .queue
                .schedule_occurrence(schedule.name, next, &job)
                .await
            {
                Ok(true) => {
                    tracing::debug!(schedule = schedule.name, at = %next, "occurrence scheduled");
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(schedule = schedule.name, error = %e, "cannot schedule the next occurrence");
                }
            }
        }
    }
}
