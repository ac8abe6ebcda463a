//! A job as stored: its task split into a kind and JSON arguments.

use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use carehub_domain::jobs::{Job, JobId, Task};
use carehub_domain::kernel::RepositoryError;

use crate::db::backend::corrupt;
use crate::db::sql_time::DbTime;

/// The columns [`JobRow`] reads, as a literal for `concat!`.
///
/// A macro only so that `concat!` can take it (see `db::backend`).
macro_rules! job_columns {
    () => {
        "id, kind, args, state, run_at, attempts, max_attempts, unique_key, last_error, \
         locked_until, worker, created_at, started_at, finished_at"
    };
}
pub(crate) use job_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub args: Json<Value>,
    pub state: String,
    pub run_at: DbTime,
    pub attempts: i32,
    pub max_attempts: i32,
    pub unique_key: Option<String>,
    pub last_error: Option<String>,
    pub locked_until: Option<DbTime>,
    pub worker: Option<String>,
    pub created_at: DbTime,
    pub started_at: Option<DbTime>,
    pub finished_at: Option<DbTime>,
}

/// A task as its kind and its arguments, the two columns it is stored in.
pub(crate) fn split(task: &Task) -> Result<(&'static str, Value), serde_json::Error> {
    let value = serde_json::to_value(task)?;
    let args = value.get("args").cloned().unwrap_or(Value::Null);
    Ok((task.kind().as_str(), args))
}

impl TryFrom<JobRow> for Job {
    type Error = RepositoryError;

    fn try_from(row: JobRow) -> Result<Self, Self::Error> {
        let task: Task = serde_json::from_value(serde_json::json!({
            "kind": row.kind,
            "args": row.args.0,
        }))
        .map_err(|e| corrupt("jobs", e))?;
        let count = |n: i32| u32::try_from(n).map_err(|e| corrupt("jobs", e));
        Ok(Job {
            id: JobId::from_uuid(row.id),
            task,
            state: row.state.parse().map_err(|e| corrupt("jobs", e))?,
            run_at: row.run_at.0,
            attempts: count(row.attempts)?,
            max_attempts: count(row.max_attempts)?,
            unique_key: row.unique_key,
            last_error: row.last_error,
            created_at: row.created_at.0,
            started_at: row.started_at.map(|t| t.0),
            finished_at: row.finished_at.map(|t| t.0),
            locked_until: row.locked_until.map(|t| t.0),
            worker: row.worker,
        })
    }
}
