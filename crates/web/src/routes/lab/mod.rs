//! The laboratory: the test catalogue; doctors order tests for their care-team patients and
//! release the results; the laboratory works its queue (schedules, collects, records results,
//! uploads files); patients read what was released to them. ECG recordings are analysed by a
//! job after upload.
//!
//! A role that may never do what a route does is refused (and the refusal audited) before the
//! path, the query or the body is looked at. An order the caller may not see is "not found".

pub mod ecg;
mod upload;
pub mod views;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use carehub_domain::access::Action;
use carehub_domain::audit::AuditAction;
use carehub_domain::kernel::{LabFileId, LabOrderId, PatientId};
use carehub_domain::lab::{LabOrderStatus, LabTest, NewLabOrder, RecordResults};

use crate::extract::{Caller, RawJson, parse_query, path_uuid};
use crate::openapi::enums;
use crate::paging::{ListPage, PageQuery};
use crate::problem::{AdminOnly, ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;
use views::{LabOrderInput, LabOrderView, LabTestInput, LabTestView, ResultsInput, ScheduleInput};

pub use upload::{UploadLimits, check};

/// Registers the laboratory's resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(list_tests)
        .service(add_test)
        .service(create_order)
        .service(list_orders)
        .service(get_order)
        .service(schedule_order)
        .service(collect_order)
        .service(record_results)
        .service(release_results)
        .service(cancel_order)
        .service(upload::upload_files)
        .service(download_file)
        .service(ecg::get_ecg);
}

pub(crate) fn order_id(raw: &str) -> Result<LabOrderId, ApiError> {
    path_uuid(raw).map(LabOrderId::from_uuid)
}

/// The test catalogue, by code: for doctors, the laboratory and administrators.
#[utoipa::path(
    tag = "laboratory",
    responses(
        (status = 200, description = "Every test", body = Vec<LabTestView>),
        Unauthenticated,
        (status = 403, description = "Only doctors, the laboratory and administrators read the catalogue", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/lab-tests")]
pub async fn list_tests(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
) -> Result<HttpResponse, ApiError> {
    let tests = state.lab.catalogue(&actor).await?;
    Ok(HttpResponse::Ok().json(tests.iter().map(LabTestView::from).collect::<Vec<_>>()))
}

/// Adds a test to the catalogue: administrators only.
#[utoipa::path(
    tag = "laboratory",
    request_body = LabTestInput,
    responses(
        (status = 201, description = "The test", body = LabTestView),
        Unauthenticated,
        AdminOnly,
        (status = 409, description = "A test with this code exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or missing fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-tests")]
pub async fn add_test(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    actor
        .permit(
            Action::ManageLabCatalogue,
            carehub_domain::access::Relationship::None,
        )
        .map_err(|_| ApiError::Forbidden("only administrators keep the catalogue".into()))?;
    let input: LabTestInput = body.parse()?;
    let test = LabTest::try_from(input)?;
    let test = state.lab.add_test(&actor, test).await?;
    Ok(HttpResponse::Created().json(LabTestView::from(&test)))
}

/// A doctor of the patient's care team orders tests of the catalogue.
#[utoipa::path(
    tag = "laboratory",
    request_body = LabOrderInput,
    responses(
        (status = 201, description = "The order; `Location` names it", body = LabOrderView,
            headers(("Location" = String, description = "/api/v1/lab-orders/{id}"))),
        Unauthenticated,
        (status = 403, description = "Only doctors order tests, and not on an emergency access alone", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient, or not one on the caller's care team", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, unknown or repeated tests or fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-orders")]
pub async fn create_order(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::OrderLabTests, AuditAction::LabOrderCreate)
        .await?;
    let input: LabOrderInput = body.parse()?;
    let new = NewLabOrder::try_from(input)?;
    let detail = state.lab.order(&actor, new).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/lab-orders/{}", detail.listing.order.id),
        ))
        .json(LabOrderView::detail(detail)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LabOrderListQuery {
    /// Only this patient's orders (doctors: a care-team patient; patients: their own).
    pub patient_id: Option<uuid::Uuid>,
    /// Only orders in this status (the laboratory's default: ordered, scheduled, collected).
    #[param(value_type = Option<enums::LabOrderStatus>)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// Orders, newest first: the laboratory's queue; a doctor's own orders, or one care-team
/// patient's; a patient's released results. Each patient listed is audited.
#[utoipa::path(
    tag = "laboratory",
    params(LabOrderListQuery),
    responses(
        (status = 200, description = "A page of orders (without `files`)", body = ListPage<LabOrderView>),
        (status = 400, description = "Unknown status, invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Secretaries and administrators see no lab orders", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/lab-orders")]
pub async fn list_orders(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::AccessLabOrder, AuditAction::LabOrderList)
        .await?;
    let query: LabOrderListQuery = parse_query(&request)?;
    let statuses = match query.status.as_deref() {
        Some(raw) => vec![raw.parse::<LabOrderStatus>().map_err(|_| {
            ApiError::BadRequest(
                "status: must be one of ordered, scheduled, collected, resulted, released, cancelled"
                    .into(),
            )
        })?],
        None => Vec::new(),
    };
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(LabOrderId::from_uuid)?;
    let orders = state
        .lab
        .list(
            &actor,
            query.patient_id.map(PatientId::from_uuid),
            statuses,
            page,
        )
        .await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        orders,
        |id| *id.as_uuid(),
        LabOrderView::listing,
    )))
}

/// One order with its results and files. Patients see their own once released.
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = LabOrderView),
        Unauthenticated,
        (status = 403, description = "Secretaries and administrators see no lab orders", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/lab-orders/{id}")]
pub async fn get_order(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::AccessLabOrder, AuditAction::LabOrderRead)
        .await?;
    let detail = state.lab.get(&actor, order_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(LabOrderView::detail(detail)))
}

/// The laboratory gives (or moves) the order's appointment.
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    request_body = ScheduleInput,
    responses(
        (status = 200, description = "The order, scheduled", body = LabOrderView),
        Unauthenticated,
        (status = 403, description = "Only the laboratory works orders", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is past scheduling, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`scheduled_for` missing or invalid", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-orders/{id}/schedule")]
pub async fn schedule_order(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::ProcessLabOrder, AuditAction::LabOrderUpdate)
        .await?;
    let id = order_id(&path)?;
    let at = body.parse::<ScheduleInput>()?.instant()?;
    let detail = state.lab.schedule(&actor, id, at).await?;
    Ok(HttpResponse::Ok().json(LabOrderView::detail(detail)))
}

/// The laboratory took the sample, or made the recording.
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order, collected", body = LabOrderView),
        Unauthenticated,
        (status = 403, description = "Only the laboratory works orders", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not ordered or scheduled, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-orders/{id}/collect")]
pub async fn collect_order(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::ProcessLabOrder, AuditAction::LabOrderUpdate)
        .await?;
    let detail = state.lab.collect(&actor, order_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(LabOrderView::detail(detail)))
}

/// The laboratory records the results: the ordering doctor is told at once (`lab.resulted`;
/// `lab.critical`, urgent, when a value is beyond a critical limit).
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    request_body = ResultsInput,
    responses(
        (status = 200, description = "The order, resulted", body = LabOrderView),
        Unauthenticated,
        (status = 403, description = "Only the laboratory records results", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not collected, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Values of analytes not ordered, repeated or not finite; nothing given", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-orders/{id}/results")]
pub async fn record_results(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(
            &actor,
            Action::ProcessLabOrder,
            AuditAction::LabResultRecord,
        )
        .await?;
    let id = order_id(&path)?;
    let input = RecordResults::try_from(body.parse::<ResultsInput>()?)?;
    let detail = state.lab.record_results(&actor, id, input).await?;
    Ok(HttpResponse::Ok().json(LabOrderView::detail(detail)))
}

/// A doctor of the care team releases the results to the patient (`lab.released`).
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order, released", body = LabOrderView),
        Unauthenticated,
        (status = 403, description = "Only doctors of the care team release results", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not resulted, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-orders/{id}/release")]
pub async fn release_results(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(
            &actor,
            Action::ReleaseLabResults,
            AuditAction::LabResultRelease,
        )
        .await?;
    let detail = state.lab.release(&actor, order_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(LabOrderView::detail(detail)))
}

/// The ordering doctor withdraws the order, before it is resulted.
#[utoipa::path(
    tag = "laboratory",
    params(("id" = Uuid, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order, cancelled", body = LabOrderView),
        Unauthenticated,
        (status = 403, description = "Only the doctor who ordered it cancels it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is resulted, released or cancelled, or changed meanwhile", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/lab-orders/{id}/cancel")]
pub async fn cancel_order(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::OrderLabTests, AuditAction::LabOrderCancel)
        .await?;
    let detail = state.lab.cancel(&actor, order_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(LabOrderView::detail(detail)))
}

/// One file's bytes, served as an attachment with its type and checksum; the read is audited.
#[utoipa::path(
    tag = "laboratory",
    params(
        ("id" = Uuid, Path, description = "The order's id"),
        ("file_id" = Uuid, Path, description = "The file's id"),
    ),
    responses(
        (status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        Unauthenticated,
        (status = 403, description = "Secretaries and administrators see no lab files", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or file, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/lab-orders/{id}/files/{file_id}")]
pub async fn download_file(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    state
        .lab
        .check_role(&actor, Action::AccessLabOrder, AuditAction::LabFileRead)
        .await?;
    let id = order_id(&path.0)?;
    let file_id = path_uuid(&path.1).map(LabFileId::from_uuid)?;
    let (file, bytes) = state.lab.download(&actor, id, file_id).await?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type.as_str())
        .insert_header((
            header::CONTENT_DISPOSITION,
            header::ContentDisposition {
                disposition: header::DispositionType::Attachment,
                parameters: vec![header::DispositionParam::Filename(
                    file.name.as_str().to_owned(),
                )],
            },
        ))
        .insert_header(("X-Content-SHA256", file.sha256.clone()))
        .body(bytes))
}
