//! The job queue, for administrators: jobs listed by state and kind, and failed or dead jobs
//! retried.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use carehub_domain::jobs::{Job, JobFilter, JobId, JobKind, JobState};

use crate::extract::{Caller, parse_query, path_uuid};
use crate::openapi::enums;
use crate::paging::{ListPage, PageQuery};
use crate::problem::{AdminOnly, ApiError, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the queue's administration.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(list_jobs).service(retry_job);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs in this state.
    #[param(value_type = Option<enums::JobState>)]
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    #[param(value_type = Option<enums::JobKind>)]
    pub kind: Option<JobKind>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// The clinic's background jobs, newest first.
#[utoipa::path(
    tag = "admin",
    params(JobQuery),
    responses(
        (status = 200, description = "A page of jobs", body = ListPage<JobView>),
        (status = 400, description = "Unknown state or kind, or invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        AdminOnly,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/jobs")]
pub async fn list_jobs(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state.jobs.check(&actor)?;
    let query: JobQuery = parse_query(&request)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(JobId::from_uuid)?;
    let filter = JobFilter {
        state: query.state,
        kind: query.kind,
    };
    let jobs = state.jobs.list(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(jobs, |id| *id.as_uuid(), JobView::from)))
}

/// Runs a failed or dead job again, now, with its attempts counted afresh.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, scheduled", body = JobView),
        Unauthenticated,
        AdminOnly,
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is neither failed nor dead, or another job with its unique key is pending", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/admin/jobs/{id}/retry")]
pub async fn retry_job(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.jobs.check(&actor)?;
    let id = JobId::from_uuid(path_uuid(&id)?);
    let job = state.jobs.retry(&actor, id).await?;
    Ok(HttpResponse::Ok().json(JobView::from(job)))
}

/// A background job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub id: Uuid,
    #[schema(value_type = enums::JobKind)]
    pub kind: JobKind,
    /// The task's arguments: ids and figures, never a patient's name or clinical text.
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    #[schema(value_type = enums::JobState)]
    pub state: JobState,
    /// When it runs (scheduled), runs again (failed), or last ran.
    pub run_at: Timestamp,
    /// Attempts started so far, the running one included.
    pub attempts: u32,
    pub max_attempts: u32,
    /// While a job with this key is pending, no other with it is added.
    pub unique_key: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    /// When it succeeded or died.
    pub finished_at: Option<Timestamp>,
    /// While running: until when its worker holds it.
    pub locked_until: Option<Timestamp>,
    /// The instance that runs or last ran it.
    pub worker: Option<String>,
}

impl From<Job> for JobView {
    fn from(job: Job) -> Self {
        let args = serde_json::to_value(&job.task)
            .ok()
            .and_then(|mut value| value.get_mut("args").map(serde_json::Value::take))
            .filter(|args| !args.is_null())
            .unwrap_or_else(|| serde_json::json!({}));
        Self {
            id: *job.id.as_uuid(),
            kind: job.kind(),
            args,
            state: job.state,
            run_at: job.run_at,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            unique_key: job.unique_key,
            last_error: job.last_error,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            locked_until: job.locked_until,
            worker: job.worker,
        }
    }
}
