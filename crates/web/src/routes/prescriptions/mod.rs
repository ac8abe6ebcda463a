//! Prescriptions: a doctor of the care team prescribes for a patient (checked against the
//! recorded allergies), completes, stops or replaces; the care team, a doctor under emergency
//! access and the patient read them, and a printable page gives one on paper. Secretaries, the
//! laboratory and administrators never see them.
//!
//! A role that may never do what a route does is refused (and the refusal audited) before the
//! path, the query or the body is looked at. A prescription the caller may not see is "not
//! found".

pub mod inputs;
mod print;
pub mod views;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use carehub_domain::access::Action;
use carehub_domain::audit::AuditAction;
use carehub_domain::kernel::PrescriptionId;
use carehub_domain::prescriptions::{Ending, PrescriptionStatus};

use crate::extract::{Caller, RawJson, parse_query, path_uuid};
use crate::openapi::enums;
use crate::paging::{ListPage, PageQuery};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::routes::patients::patient_id;
use crate::state::AppState;
use inputs::{PrescriptionInput, StopInput};
use utoipa_actix_web::service_config::ServiceConfig;
use views::PrescriptionView;

/// Registers the prescriptions' resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(prescribe)
        .service(list_prescriptions)
        .service(get_prescription)
        .service(complete_prescription)
        .service(stop_prescription)
        .service(print::print_prescription);
}

fn prescription_id(raw: &str) -> Result<PrescriptionId, ApiError> {
    path_uuid(raw).map(PrescriptionId::from_uuid)
}

/// A doctor of the patient's care team prescribes. A medication matching a recorded allergy
/// (the substance itself, or a drug class both belong to) is refused with every match listed,
/// unless `override_reason` says why; the override is audited and shown on the prescription.
/// With `replaces`, the replaced prescription is stopped in the same change. The patient is
/// told (`prescription.created`).
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = PrescriptionInput,
    responses(
        (status = 201, description = "The prescription; `Location` names it", body = PrescriptionView,
            headers(("Location" = String, description = "/api/v1/prescriptions/{id}"))),
        Unauthenticated,
        (status = 403, description = "Only doctors prescribe, and not on an emergency access alone", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient, or not one on the caller's care team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The medication matches recorded allergies (`allergy_matches` lists each), or the replaced prescription is no longer active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or missing fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/patients/{id}/prescriptions")]
pub async fn prescribe(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .prescriptions
        .check_role(&actor, Action::Prescribe, AuditAction::PrescriptionCreate)
        .await?;
    let patient = patient_id(&path)?;
    let new = body.parse::<PrescriptionInput>()?.validate(patient)?;
    let view = state.prescriptions.prescribe(&actor, new).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/prescriptions/{}", view.prescription.id),
        ))
        .json(PrescriptionView::from(view)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PrescriptionListQuery {
    /// Only prescriptions in this status.
    #[param(value_type = Option<enums::PrescriptionStatus>)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// The patient's prescriptions, newest first: for the care team, a doctor under emergency
/// access, and the patient. The listing is audited.
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = Uuid, Path, description = "The patient's id"), PrescriptionListQuery),
    responses(
        (status = 200, description = "A page of prescriptions", body = ListPage<PrescriptionView>),
        (status = 400, description = "Unknown status, invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators see no prescriptions", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/patients/{id}/prescriptions")]
pub async fn list_prescriptions(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .prescriptions
        .check_role(
            &actor,
            Action::ReadPrescriptions,
            AuditAction::PrescriptionList,
        )
        .await?;
    let patient = patient_id(&path)?;
    let query: PrescriptionListQuery = parse_query(&request)?;
    let status = query
        .status
        .as_deref()
        .map(|raw| {
            raw.parse::<PrescriptionStatus>().map_err(|_| {
                ApiError::BadRequest(
                    "status: must be one of active, completed, stopped, expired".into(),
                )
            })
        })
        .transpose()?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(PrescriptionId::from_uuid)?;
    let prescriptions = state
        .prescriptions
        .list(&actor, patient, status, page)
        .await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        prescriptions,
        |id| *id.as_uuid(),
        PrescriptionView::from,
    )))
}

/// One prescription; the read is audited.
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = Uuid, Path, description = "The prescription's id")),
    responses(
        (status = 200, description = "The prescription", body = PrescriptionView),
        Unauthenticated,
        (status = 403, description = "Secretaries, the laboratory and administrators see no prescriptions", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prescription, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/prescriptions/{id}")]
pub async fn get_prescription(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .prescriptions
        .check_role(
            &actor,
            Action::ReadPrescriptions,
            AuditAction::PrescriptionRead,
        )
        .await?;
    let view = state
        .prescriptions
        .get(&actor, prescription_id(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(PrescriptionView::from(view)))
}

/// A doctor of the care team marks an active prescription's course over.
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = Uuid, Path, description = "The prescription's id")),
    responses(
        (status = 200, description = "The prescription, completed", body = PrescriptionView),
        Unauthenticated,
        (status = 403, description = "Only doctors of the care team end prescriptions", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prescription, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The prescription is no longer active", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/prescriptions/{id}/complete")]
pub async fn complete_prescription(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .prescriptions
        .check_role(&actor, Action::Prescribe, AuditAction::PrescriptionEnd)
        .await?;
    let view = state
        .prescriptions
        .end(&actor, prescription_id(&path)?, Ending::Complete)
        .await?;
    Ok(HttpResponse::Ok().json(PrescriptionView::from(view)))
}

/// A doctor of the care team stops an active prescription, saying why.
#[utoipa::path(
    tag = "prescriptions",
    params(("id" = Uuid, Path, description = "The prescription's id")),
    request_body = StopInput,
    responses(
        (status = 200, description = "The prescription, stopped", body = PrescriptionView),
        Unauthenticated,
        (status = 403, description = "Only doctors of the care team end prescriptions", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prescription, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The prescription is no longer active", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`reason` missing or invalid", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/prescriptions/{id}/stop")]
pub async fn stop_prescription(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .prescriptions
        .check_role(&actor, Action::Prescribe, AuditAction::PrescriptionEnd)
        .await?;
    let id = prescription_id(&path)?;
    let reason = body.parse::<StopInput>()?.reason()?;
    let view = state
        .prescriptions
        .end(&actor, id, Ending::Stop(reason))
        .await?;
    Ok(HttpResponse::Ok().json(PrescriptionView::from(view)))
}
