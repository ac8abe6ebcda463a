//! The audit trail: every attempt on patients' data, allowed or denied, for administrators.
//! (Each patient's own access log is a patient resource, in [`super::patients`].)

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;
use uuid::Uuid;

use carehub_domain::access::{Action, Relationship};
use carehub_domain::audit::{AuditEventId, AuditFilter};
use carehub_domain::identity::UserId;
use carehub_domain::patients::PatientId;

use crate::extract::{Caller, parse_query};
use crate::paging::{ListPage, PageQuery};
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::routes::patients::views::AuditEventView;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the audit trail.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(audit_trail);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events about this patient.
    pub patient_id: Option<Uuid>,
    /// Only events of this actor.
    pub user_id: Option<Uuid>,
    /// Only events at or after this instant (RFC 3339).
    #[param(format = DateTime, example = "2026-11-22T00:00:00Z")]
    pub from: Option<String>,
    /// Only events before this instant (RFC 3339).
    #[param(format = DateTime, example = "2026-11-23T00:00:00Z")]
    pub to: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

fn instant(name: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|raw| {
        OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
            ApiError::BadRequest(format!(
                "{name}: must be an RFC 3339 instant such as 2026-11-22T08:00:00Z"
            ))
        })
    })
    .transpose()
}

/// The audit trail: every attempt on patients' data, allowed or denied, newest first.
#[utoipa::path(
    tag = "admin",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit events", body = ListPage<AuditEventView>),
        (status = 400, description = "Invalid filter, limit or cursor, or `from` after `to`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "The caller is not an administrator", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/audit")]
pub async fn audit_trail(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.permit(Action::ReadAuditTrail, Relationship::None)?;
    let query: AuditQuery = parse_query(&request)?;
    let from = instant("from", query.from.as_deref())?;
    let to = instant("to", query.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::BadRequest("from: must not be after `to`".into()));
    }
    let filter = AuditFilter {
        patient_id: query.patient_id.map(PatientId::from_uuid),
        actor_id: query.user_id.map(UserId::from_uuid),
        from,
        to,
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(AuditEventId::from_uuid)?;
    let entries = state.audit.audit_trail(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        entries,
        |id| *id.as_uuid(),
        AuditEventView::from,
    )))
}
