//! Emergency ("break-the-glass") access: a doctor opening a patient's record for a limited
//! time, and the list of such accesses administrators review.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use carehub_domain::access::{Action, Relationship};
use carehub_domain::identity::UserId;
use carehub_domain::patients::{EmergencyAccessId, EmergencyReason, PatientId};

use super::patient_id;
use super::views::{EmergencyAccessRequest, EmergencyAccessView};
use crate::extract::{Caller, RawJson, parse_query};
use crate::paging::{ListPage, PageQuery};
use crate::problem::{AdminOnly, ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the administrators' list of emergency accesses (the request itself is registered
/// with the patient's other resources, in [`super::services`]).
pub fn admin_services(cfg: &mut ServiceConfig) {
    cfg.service(emergency_accesses);
}

/// Break the glass: the calling doctor may read the patient for a limited time (60 minutes
/// unless configured otherwise). Administrators see every such access.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = EmergencyAccessRequest,
    responses(
        (status = 201, description = "The access granted", body = EmergencyAccessView),
        Unauthenticated,
        (status = 403, description = "Only doctors break the glass", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The reason is missing, shorter than 10 or longer than 1,000 characters", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/patients/{id}/emergency-access")]
pub async fn request_emergency_access(
    state: web::Data<AppState>,
    Caller { principal, actor }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let grant = state
        .gatekeeper
        .authorize(&actor, id, Action::RequestEmergencyAccess)
        .await?;
    let request: EmergencyAccessRequest = body.parse()?;
    let reason = EmergencyReason::try_from(request)?;
    let mut access = state
        .emergency_accesses
        .request_emergency_access(&grant, reason)
        .await?;
    // The doctor who took the access is the caller: name them as a listing would.
    access
        .doctor_name
        .get_or_insert_with(|| principal.user().full_name.clone());
    Ok(HttpResponse::Created().json(EmergencyAccessView::at(&access, Timestamp::now())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmergencyAccessQuery {
    /// Only accesses to this patient.
    pub patient_id: Option<Uuid>,
    /// Only accesses this doctor took.
    pub doctor_id: Option<Uuid>,
    /// `true`: only accesses that have not expired; `false`: only expired ones; absent: all.
    pub active: Option<bool>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// Emergency ("break-the-glass") accesses doctors took, newest first.
#[utoipa::path(
    tag = "admin",
    params(EmergencyAccessQuery),
    responses(
        (status = 200, description = "A page of emergency accesses", body = ListPage<EmergencyAccessView>),
        (status = 400, description = "Invalid filter, limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        AdminOnly,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/admin/emergency-accesses")]
pub async fn emergency_accesses(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.permit(Action::ReadEmergencyAccesses, Relationship::None)?;
    let query: EmergencyAccessQuery = parse_query(&request)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(EmergencyAccessId::from_uuid)?;
    let accesses = state
        .emergency_accesses
        .list_emergency_accesses(
            &actor,
            query.patient_id.map(PatientId::from_uuid),
            query.doctor_id.map(UserId::from_uuid),
            query.active,
            page,
        )
        .await?;
    let now = Timestamp::now();
    Ok(HttpResponse::Ok().json(ListPage::of(
        accesses,
        |id| *id.as_uuid(),
        |access| EmergencyAccessView::at(&access, now),
    )))
}
