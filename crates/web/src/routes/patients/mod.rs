//! Patient records: registration, search, profiles, medical information, notes, care teams,
//! emergency access and each patient's access log.
//!
//! Every handler authenticates, reads the path, and asks the access policy before it looks at
//! the body or the query, so a refused caller gets 403 or 404 whatever they sent. Reads are one
//! service call that checks and audits itself; writes and searches first take a grant.

pub mod emergency_access;
pub mod medical_input;
pub mod patient_input;
pub mod search;
pub mod views;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use carehub_domain::access::{Action, Actor};
use carehub_domain::identity::UserId;
use carehub_domain::kernel::utc_date;
use carehub_domain::patients::{NewNote, NoteKind, PatientId};

use crate::extract::{Caller, RawJson, parse_query, path_uuid};
use crate::openapi::enums;
use crate::paging::{ListPage, PageQuery};
use crate::problem::{ApiError, BodyProblems, PatientNotFound, Problem, Unauthenticated};
use crate::routes::audit::AuditEventView;
use crate::state::AppState;
use medical_input::{MedicalInput, NoteInput};
use patient_input::{PatientInput, PatientPatch, apply_merge_patch};
use utoipa_actix_web::service_config::ServiceConfig;
use views::{
    AddMemberRequest, CareTeamMemberView, CareTeamView, MedicalView, NoteView, PatientView,
};

/// Registers the patient resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(create_patient)
        .service(search::search_patients)
        .service(search::search_patients_by_body)
        .service(get_patient)
        .service(update_patient)
        .service(get_medical)
        .service(put_medical)
        .service(list_notes)
        .service(add_note)
        .service(care_team)
        .service(add_member)
        .service(end_membership)
        .service(emergency_access::request_emergency_access)
        .service(access_log);
}

/// The content type of a JSON merge patch (RFC 7396).
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";

pub(crate) fn patient_id(raw: &str) -> Result<PatientId, ApiError> {
    path_uuid(raw).map(PatientId::from_uuid)
}

/// A read's query, once parsed. A caller the read would refuse is refused (and the refusal
/// audited) before being told that their query is malformed.
async fn read_query<T>(
    state: &AppState,
    actor: &Actor,
    id: PatientId,
    action: Action,
    parsed: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match parsed {
        Ok(query) => Ok(query),
        Err(error) => {
            state.gatekeeper.authorize(actor, id, action).await?;
            Err(error)
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoteListQuery {
    /// Only notes of this kind.
    #[param(value_type = Option<enums::NoteKind>)]
    pub kind: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// Register a patient. A doctor who registers one joins their care team.
#[utoipa::path(
    tag = "patients",
    request_body = PatientInput,
    responses(
        (status = 201, description = "The new patient; `Location` names it", body = PatientView,
            headers(("Location" = String, description = "/api/v1/patients/{id}"))),
        Unauthenticated,
        (status = 403, description = "Only secretaries and doctors register patients", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An identifier belongs to another patient, or the account is linked to another patient", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/patients")]
pub async fn create_patient(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let grant = state
        .gatekeeper
        .authorize_role(&actor, Action::CreatePatient)
        .await?;
    let input: PatientInput = body.parse()?;
    let details = input.parse(utc_date(state.gatekeeper.now()))?;
    let patient = state.patients.create_patient(&grant, details).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/patients/{}", patient.id)))
        .json(PatientView::from(patient)))
}

/// A patient's profile.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The patient", body = PatientView),
        Unauthenticated,
        (status = 403, description = "The caller's role never reads profiles", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/patients/{id}", guard = "search::not_the_search")]
pub async fn get_patient(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let patient = state.patients.get_patient(&actor, id).await?;
    Ok(HttpResponse::Ok().json(PatientView::from(patient)))
}

/// Change a patient's profile with a JSON merge patch (RFC 7396): fields present replace the
/// current ones, `null` clears a field, absent fields stay. The result is validated whole.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body(
        description = "A merge patch of the patient's input",
        content(
            (PatientPatch = "application/merge-patch+json"),
            (PatientPatch = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "The patient as it now is", body = PatientView),
        Unauthenticated,
        (status = 403, description = "The caller's role never changes profiles, or a doctor holds only an emergency access", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
        (status = 409, description = "An identifier belongs to another patient, the account is linked to another patient, or the patient changed concurrently", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body is not an object, or the result has invalid or unknown fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[patch("/patients/{id}", guard = "search::not_the_search")]
pub async fn update_patient(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let grant = state
        .gatekeeper
        .authorize(&actor, id, Action::UpdateProfile)
        .await?;
    let patch: Value = body.parse()?;
    if !patch.is_object() {
        return Err(ApiError::invalid_field(
            "(body)",
            "must be a JSON object: a merge patch of the patient",
        ));
    }
    let today = utc_date(state.gatekeeper.now());
    let patient = state
        .patients
        .update_patient(&grant, |current| {
            apply_merge_patch(&PatientInput::from(current), &patch)?.parse(today)
        })
        .await?;
    Ok(HttpResponse::Ok().json(PatientView::from(patient)))
}

/// A patient's medical information.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The medical information (empty lists and null `updated_at` while nothing was recorded)", body = MedicalView),
        Unauthenticated,
        (status = 403, description = "The caller's role never reads medical information", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/patients/{id}/medical")]
pub async fn get_medical(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let record = state.medical.get_medical(&actor, id).await?;
    Ok(HttpResponse::Ok().json(MedicalView::from(record)))
}

/// Replace a patient's medical information.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = MedicalInput,
    responses(
        (status = 200, description = "The medical information as it now is", body = MedicalView),
        Unauthenticated,
        (status = 403, description = "Only doctors on the care team write medical information", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
        (status = 422, description = "Invalid or unknown fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[put("/patients/{id}/medical")]
pub async fn put_medical(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let grant = state
        .gatekeeper
        .authorize(&actor, id, Action::UpdateMedical)
        .await?;
    let input: MedicalInput = body.parse()?;
    let info = input.parse(utc_date(state.gatekeeper.now()))?;
    let record = state.medical.put_medical(&grant, info).await?;
    Ok(HttpResponse::Ok().json(MedicalView::from(record)))
}

/// A patient's clinical notes, newest first.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id"), NoteListQuery),
    responses(
        (status = 200, description = "A page of notes", body = ListPage<NoteView>),
        (status = 400, description = "Unknown kind, invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "The caller's role never reads notes", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/patients/{id}/notes")]
pub async fn list_notes(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let parsed = parse_query::<NoteListQuery>(&request).and_then(|query| {
        let kind = query
            .kind
            .as_deref()
            .map(str::parse::<NoteKind>)
            .transpose()
            .map_err(|_| {
                ApiError::BadRequest(
                    "kind: must be one of check_up, annotation, progress, consultation, discharge"
                        .into(),
                )
            })?;
        let page = PageQuery {
            limit: query.limit,
            cursor: query.cursor,
        }
        .to_request(carehub_domain::patients::NoteId::from_uuid)?;
        Ok((kind, page))
    });
    let (kind, page) = read_query(&state, &actor, id, Action::ReadNotes, parsed).await?;
    let notes = state.medical.list_notes(&actor, id, kind, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(notes, |id| *id.as_uuid(), NoteView::from)))
}

/// Write a clinical note, signed by the calling doctor. Notes never change: to correct one,
/// write a new note that `amends` it.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = NoteInput,
    responses(
        (status = 201, description = "The note", body = NoteView),
        Unauthenticated,
        (status = 403, description = "Only doctors on the care team write notes", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
        (status = 422, description = "Invalid or unknown fields, all listed; `amends` names no note of this patient", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/patients/{id}/notes")]
pub async fn add_note(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let grant = state
        .gatekeeper
        .authorize(&actor, id, Action::WriteNote)
        .await?;
    let input: NoteInput = body.parse()?;
    let note = state
        .medical
        .add_note(&grant, NewNote::try_from(input)?)
        .await?;
    Ok(HttpResponse::Created().json(NoteView::from(note)))
}

/// A patient's care team: current and past members, oldest first.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The memberships", body = CareTeamView),
        Unauthenticated,
        (status = 403, description = "The caller's role never reads care teams", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/patients/{id}/care-team")]
pub async fn care_team(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let members = state.care_teams.care_team(&actor, id).await?;
    let now = Timestamp::now();
    Ok(HttpResponse::Ok().json(CareTeamView {
        items: members
            .into_iter()
            .map(|m| CareTeamMemberView::at(&m, now))
            .collect(),
    }))
}

/// Add an active doctor to a patient's care team.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "The new membership", body = CareTeamMemberView),
        Unauthenticated,
        (status = 403, description = "Only doctors on the care team and administrators add members", body = Problem, content_type = "application/problem+json"),
        PatientNotFound,
        (status = 409, description = "The doctor is already on the care team", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`doctor_id` is missing or not an active doctor's", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/patients/{id}/care-team")]
pub async fn add_member(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let grant = state
        .gatekeeper
        .authorize(&actor, id, Action::AddCareTeamMember)
        .await?;
    let request: AddMemberRequest = body.parse()?;
    let doctor_id = request
        .doctor_id
        .ok_or_else(|| ApiError::invalid_field("doctor_id", "is required"))?;
    let member = state
        .care_teams
        .add_member(&grant, UserId::from_uuid(doctor_id))
        .await?;
    Ok(HttpResponse::Created().json(CareTeamMemberView::at(&member, Timestamp::now())))
}

/// End a doctor's current membership of a patient's care team; it stays as history.
#[utoipa::path(
    tag = "patients",
    params(
        ("id" = Uuid, Path, description = "The patient's id"),
        ("doctor_id" = Uuid, Path, description = "The doctor's account id"),
    ),
    responses(
        (status = 200, description = "The membership, ended", body = CareTeamMemberView),
        Unauthenticated,
        (status = 403, description = "Only administrators end memberships", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The doctor is not a current member", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[delete("/patients/{id}/care-team/{doctor_id}")]
pub async fn end_membership(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, doctor_id) = path.into_inner();
    let id = patient_id(&id)?;
    let doctor_id = UserId::from_uuid(path_uuid(&doctor_id)?);
    let member = state
        .care_teams
        .end_membership(&actor, id, doctor_id)
        .await?;
    Ok(HttpResponse::Ok().json(CareTeamMemberView::at(&member, Timestamp::now())))
}

/// Who accessed a patient's record, newest first: for the patient themself and administrators.
#[utoipa::path(
    tag = "patients",
    params(("id" = Uuid, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of audit events about the patient", body = ListPage<AuditEventView>),
        (status = 400, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "The caller's role never reads access logs", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient, or not the caller's own record", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/patients/{id}/access-log")]
pub async fn access_log(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = patient_id(&id)?;
    let parsed = parse_query::<PageQuery>(&request)
        .and_then(|query| query.to_request(carehub_domain::audit::AuditEventId::from_uuid));
    let page = read_query(&state, &actor, id, Action::ReadAccessLog, parsed).await?;
    let entries = state.audit.access_log(&actor, id, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        entries,
        |id| *id.as_uuid(),
        AuditEventView::from,
    )))
}
