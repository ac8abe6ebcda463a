//! Appointments: booking, reading, listing, rescheduling, status changes, history and the visit
//! note.
//!
//! A caller is refused before what they sent is looked at: booking checks the caller's role
//! before the body is read; on an appointment, a body that does not parse is answered with the
//! refusal the domain gives the caller, if any, and only then as malformed. A body is converted
//! here into what the use case takes; its invalid fields are answered likewise, after the
//! refusals the use case gives before it looks at what was asked (for a new time, also a
//! patient too late and an appointment no longer booked).
//! Times are shown at the clinic's offset; conflicts list every appointment in the way.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use carehub_domain::audit::AuditAction;
use carehub_domain::identity::UserId;
use carehub_domain::patients::PatientId;
use carehub_domain::scheduling::NewVisitNote;
use carehub_domain::scheduling::{
    AppointmentFilter, AppointmentId, AppointmentStatus, BookingRequest, RescheduleRequest,
    StatusChange,
};
use uuid::Uuid;

use super::doctors::query_instant;
use super::inputs::{AppointmentInput, RescheduleInput, StatusInput};
use super::views::{AppointmentView, HistoryEntryView, HistoryView};
use crate::extract::{Caller, RawJson, parse_query, path_uuid, valid_unless_refused};
use crate::openapi::{enums, rules};
use crate::paging::{ListPage, PageQuery};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::routes::patients::medical_input::NoteInput;
use crate::routes::patients::views::NoteView;
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the appointment resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(book_appointment)
        .service(list_appointments)
        .service(get_appointment)
        .service(reschedule_appointment)
        .service(change_status)
        .service(appointment_history)
        .service(write_visit_note);
}

fn appointment_id(raw: &str) -> Result<AppointmentId, ApiError> {
    path_uuid(raw).map(AppointmentId::from_uuid)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppointmentListQuery {
    /// Only this doctor's appointments (a doctor sees only their own).
    #[param(value_type = Option<Uuid>)]
    pub doctor_id: Option<String>,
    /// Only this patient's appointments (a patient sees only their own).
    #[param(value_type = Option<Uuid>)]
    pub patient_id: Option<String>,
    /// Only appointments ending after this: RFC 3339, or a date `YYYY-MM-DD` (the start of that
    /// day in the clinic's time zone).
    #[param(schema_with = rules::instant_or_date)]
    pub from: Option<String>,
    /// Only appointments starting before this, as `from`.
    #[param(schema_with = rules::instant_or_date)]
    pub to: Option<String>,
    /// Only appointments in this status.
    #[param(value_type = Option<enums::AppointmentStatus>)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (also accepted as `after`).
    #[serde(alias = "after")]
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

fn query_uuid(name: &str, raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|raw| {
        raw.parse::<Uuid>()
            .map_err(|_| ApiError::BadRequest(format!("{name}: must be a UUID")))
    })
    .transpose()
}

impl AppointmentListQuery {
    fn filter(&self, tz: &jiff::tz::TimeZone) -> Result<AppointmentFilter, ApiError> {
        Ok(AppointmentFilter {
            doctor_id: query_uuid("doctor_id", self.doctor_id.as_deref())?.map(UserId::from_uuid),
            patient_id: query_uuid("patient_id", self.patient_id.as_deref())?
                .map(PatientId::from_uuid),
            from: query_instant("from", self.from.as_deref(), tz)?,
            to: query_instant("to", self.to.as_deref(), tz)?,
            status: self
                .status
                .as_deref()
                .map(str::parse::<AppointmentStatus>)
                .transpose()
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "status: must be one of {}",
                        AppointmentStatus::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        })
    }
}

/// Book an appointment. A secretary books for any patient; a patient for themself; a doctor
/// for themself, with a patient of their care team. The time must lie inside the doctor's
/// working hours, outside their time off, in the future (at most 366 days ahead), and be free
/// for both the doctor and the patient: the database refuses a double booking, however many
/// requests race for it. The doctor joins the patient's care team until 30 days after the
/// appointment ends. The doctor and the patient are notified (`appointment.booked`), never the
/// caller.
#[utoipa::path(
    tag = "appointments",
    request_body = AppointmentInput,
    responses(
        (status = 201, description = "The appointment; `Location` names it", body = AppointmentView,
            headers(("Location" = String, description = "/api/v1/appointments/{id}"))),
        Unauthenticated,
        (status = 403, description = "Laboratories and administrators never book; a doctor books only for themself, and not on an emergency access alone", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient, or not one the caller may book for", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The time is taken (`appointment-conflict`): `conflicts` lists every appointment of the doctor or the patient in the way", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, all listed; `doctor_id` is not an active doctor's (`validation`); or the time cannot be booked (`not-bookable`: past, more than 366 days ahead, outside the doctor's hours, during their time off)", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/appointments")]
pub async fn book_appointment(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let tz = state.schedules.clinic_time_zone();
    state.appointments.check_may_book(&actor).await?;
    let input: AppointmentInput = body.parse()?;
    let request = BookingRequest::try_from(input)?;
    let appointment = state.appointments.book_appointment(&actor, request).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/appointments/{}", appointment.id),
        ))
        .json(AppointmentView::new(&appointment, tz)))
}

/// Appointments, by start: a secretary's of the whole clinic, a doctor's own, a patient's own.
/// Each patient on the page is audited.
#[utoipa::path(
    tag = "appointments",
    params(AppointmentListQuery),
    responses(
        (status = 200, description = "A page of appointments, by start", body = ListPage<AppointmentView>),
        (status = 400, description = "An id that is not a UUID, a time neither RFC 3339 nor a date, an unknown status, an invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Laboratories and administrators have no appointments to see; a doctor asked for another doctor's, a patient for another patient's", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/appointments")]
pub async fn list_appointments(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tz = state.schedules.clinic_time_zone();
    let parsed = parse_query::<AppointmentListQuery>(&request).and_then(|query| {
        let filter = query.filter(tz)?;
        let page = PageQuery {
            limit: query.limit,
            cursor: query.cursor,
        }
        .to_request(AppointmentId::from_uuid)?;
        Ok((filter, page))
    });
    let (filter, page) = match parsed {
        Ok(parsed) => parsed,
        Err(malformed) => {
            // A role that never lists appointments is refused before its query is judged.
            state.appointments.check_may_list(&actor).await?;
            return Err(malformed);
        }
    };
    let found = state
        .appointments
        .list_appointments(&actor, filter, page)
        .await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        found,
        |id| *id.as_uuid(),
        |a| AppointmentView::new(&a, tz),
    )))
}

/// An appointment, for a secretary, its doctor and its patient.
#[utoipa::path(
    tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment's id")),
    responses(
        (status = 200, description = "The appointment", body = AppointmentView),
        Unauthenticated,
        (status = 403, description = "Laboratories and administrators never read appointments", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such appointment, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/appointments/{id}")]
pub async fn get_appointment(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = appointment_id(&id)?;
    let appointment = state.appointments.appointment(&actor, id).await?;
    Ok(HttpResponse::Ok().json(AppointmentView::new(
        &appointment,
        state.schedules.clinic_time_zone(),
    )))
}

/// Move a booked appointment to another time (`end` defaults to keeping its length), under
/// the same rules as booking. For a secretary, its doctor and its patient (the patient at
/// least 2 hours before the current start). The doctor and the patient are notified
/// (`appointment.rescheduled`), never the caller.
#[utoipa::path(
    tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment's id")),
    request_body = RescheduleInput,
    responses(
        (status = 200, description = "The appointment at its new time", body = AppointmentView),
        Unauthenticated,
        (status = 403, description = "The caller's role never reschedules", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such appointment, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The time is taken (`appointment-conflict`, every appointment in the way listed); the appointment is no longer booked, or changed concurrently", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields (`validation`); the new time cannot be booked (`not-bookable`); a patient less than 2 hours before the start (`too-late`)", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[patch("/appointments/{id}")]
pub async fn reschedule_appointment(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = appointment_id(&id)?;
    let tz = state.schedules.clinic_time_zone();
    let check = state
        .appointments
        .check_access(&actor, id, AuditAction::AppointmentReschedule);
    let input: RescheduleInput = body.parse_unless_refused(check).await?;
    let check = state.appointments.check_reschedulable(&actor, id);
    let request = valid_unless_refused(RescheduleRequest::try_from(input), check).await?;
    let appointment = state
        .appointments
        .reschedule_appointment(&actor, id, request)
        .await?;
    Ok(HttpResponse::Ok().json(AppointmentView::new(&appointment, tz)))
}

/// Change an appointment's status: a secretary checks the patient in, cancels or records a
/// no-show; its doctor starts, completes or cancels it; its patient cancels it, at least 2
/// hours before it starts. Cancelling needs a `reason`, and frees the time. The doctor and the
/// patient are notified of a cancellation (`appointment.cancelled`), never the caller.
#[utoipa::path(
    tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment's id")),
    request_body = StatusInput,
    responses(
        (status = 200, description = "The appointment as it now is", body = AppointmentView),
        Unauthenticated,
        (status = 403, description = "The caller's role never sets this status", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such appointment, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The current status does not lead there (`invalid-transition`), or the appointment changed concurrently", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown status, a missing or invalid cancellation reason, a reason on another change (`validation`); a patient cancelling less than 2 hours before the start (`too-late`)", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/appointments/{id}/status")]
pub async fn change_status(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = appointment_id(&id)?;
    let check = state
        .appointments
        .check_access(&actor, id, AuditAction::AppointmentStatus);
    let input: StatusInput = body.parse_unless_refused(check).await?;
    let check = state
        .appointments
        .check_access(&actor, id, AuditAction::AppointmentStatus);
    let change = valid_unless_refused(StatusChange::try_from(input), check).await?;
    let appointment = state
        .appointments
        .change_appointment_status(&actor, id, change)
        .await?;
    Ok(HttpResponse::Ok().json(AppointmentView::new(
        &appointment,
        state.schedules.clinic_time_zone(),
    )))
}

/// An appointment's changes, oldest first: booking, status changes and new times, each with
/// who made it.
#[utoipa::path(
    tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment's id")),
    responses(
        (status = 200, description = "The changes, oldest first", body = HistoryView),
        Unauthenticated,
        (status = 403, description = "Laboratories and administrators never read appointments", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such appointment, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/appointments/{id}/history")]
pub async fn appointment_history(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = appointment_id(&id)?;
    let entries = state.appointments.appointment_history(&actor, id).await?;
    let tz = state.schedules.clinic_time_zone();
    Ok(HttpResponse::Ok().json(HistoryView {
        items: entries
            .iter()
            .map(|e| HistoryEntryView::new(e, tz))
            .collect(),
    }))
}

/// Write the note of the visit, signed by its doctor, once the appointment is in progress or
/// completed: one per appointment, linked to it (`appointment_id`); `kind` defaults to
/// `consultation`. It joins the patient's notes.
#[utoipa::path(
    tag = "appointments",
    params(("id" = Uuid, Path, description = "The appointment's id")),
    request_body = NoteInput,
    responses(
        (status = 201, description = "The note", body = NoteView),
        Unauthenticated,
        (status = 403, description = "Only doctors write visit notes", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such appointment, or not the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The appointment is not in progress or completed, or its note is written", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, all listed; a visit note cannot amend another", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/appointments/{id}/visit-note")]
pub async fn write_visit_note(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = appointment_id(&id)?;
    let input: NoteInput = body
        .parse_unless_refused(state.visit_notes.check_writer(&actor, id))
        .await?;
    let note = match NewVisitNote::try_from(input) {
        Ok(note) => note,
        Err(errors) => {
            // As writing it would: a refusal, or a visit not yet under way, is answered before
            // the note's errors.
            state.visit_notes.check_writable(&actor, id).await?;
            return Err(errors.into());
        }
    };
    let note = state.visit_notes.write_visit_note(&actor, id, note).await?;
    Ok(HttpResponse::Created().json(NoteView::from(note)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use jiff::tz::TimeZone;

    use crate::openapi::{allowed_methods, openapi_document};

    fn query(raw: &str) -> AppointmentListQuery {
        web::Query::<AppointmentListQuery>::from_query(raw)
            .expect("a query")
            .into_inner()
    }

    #[test]
    fn a_listing_filter_reads_ids_days_instants_and_a_status() {
        let paris = TimeZone::get("Europe/Paris").expect("a zone");
        let doctor = Uuid::now_v7();
        let filter = query(&format!(
            "doctor_id={doctor}&from=2027-03-29&to=2027-03-30T00:00:00%2B02:00&status=checked_in"
        ))
        .filter(&paris)
        .expect("a filter");
        assert_eq!(filter.doctor_id, Some(UserId::from_uuid(doctor)));
        assert_eq!(filter.patient_id, None);
        assert_eq!(filter.from, Some(ts("2027-03-28T22:00:00Z")));
        assert_eq!(filter.to, Some(ts("2027-03-29T22:00:00Z")));
        assert_eq!(filter.status, Some(AppointmentStatus::CheckedIn));
        assert_eq!(
            query("").filter(&paris).ok(),
            Some(AppointmentFilter::default())
        );
    }

    #[test]
    fn a_malformed_listing_filter_names_its_parameter() {
        for (raw, name) in [
            ("doctor_id=nope", "doctor_id"),
            ("patient_id=1", "patient_id"),
            ("from=yesterday", "from"),
            ("to=2027-13-01", "to"),
            ("status=done", "status"),
        ] {
            let error = query(raw).filter(&TimeZone::UTC).expect_err(raw);
            let detail = error.problem().detail.unwrap_or_default();
            assert_eq!(error.problem().status, 400, "{raw}");
            assert!(detail.starts_with(&format!("{name}:")), "{raw}: {detail}");
        }
    }

    #[test]
    fn after_is_taken_for_the_cursor() {
        assert_eq!(query("after=abc").cursor.as_deref(), Some("abc"));
        assert_eq!(query("cursor=abc").cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn the_openapi_document_lists_every_scheduling_route_with_its_errors() {
        let document = openapi_document();
        let json = serde_json::to_value(&document).expect("json");
        let paths = &json["paths"];
        let expected: &[(&str, &str, &[&str])] = &[
            ("/api/v1/doctors", "get", &["200", "400", "401"]),
            ("/api/v1/doctors/{id}", "get", &["200", "401", "404"]),
            (
                "/api/v1/doctors/{id}/profile",
                "put",
                &[
                    "200", "400", "401", "403", "404", "408", "413", "415", "422",
                ],
            ),
            (
                "/api/v1/doctors/{id}/availability",
                "get",
                &["200", "401", "404"],
            ),
            (
                "/api/v1/doctors/{id}/availability",
                "put",
                &[
                    "200", "400", "401", "403", "404", "408", "413", "415", "422",
                ],
            ),
            (
                "/api/v1/doctors/{id}/time-off",
                "post",
                &[
                    "201", "400", "401", "403", "404", "408", "409", "413", "415", "422",
                ],
            ),
            (
                "/api/v1/doctors/{id}/time-off/{time_off_id}",
                "delete",
                &["204", "401", "403", "404"],
            ),
            (
                "/api/v1/doctors/{id}/slots",
                "get",
                &["200", "400", "401", "404", "422"],
            ),
            (
                "/api/v1/appointments",
                "post",
                &[
                    "201", "400", "401", "403", "404", "408", "409", "413", "415", "422",
                ],
            ),
            ("/api/v1/appointments", "get", &["200", "400", "401", "403"]),
            (
                "/api/v1/appointments/{id}",
                "get",
                &["200", "401", "403", "404"],
            ),
            (
                "/api/v1/appointments/{id}",
                "patch",
                &[
                    "200", "400", "401", "403", "404", "408", "409", "413", "415", "422",
                ],
            ),
            (
                "/api/v1/appointments/{id}/status",
                "post",
                &[
                    "200", "400", "401", "403", "404", "408", "409", "413", "415", "422",
                ],
            ),
            (
                "/api/v1/appointments/{id}/history",
                "get",
                &["200", "401", "403", "404"],
            ),
            (
                "/api/v1/appointments/{id}/visit-note",
                "post",
                &[
                    "201", "400", "401", "403", "404", "408", "409", "413", "415", "422",
                ],
            ),
        ];
        for (path, method, statuses) in expected {
            let operation = &paths[path][method];
            assert!(operation.is_object(), "{method} {path} is documented");
            let documented: Vec<&str> = operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(&documented, statuses, "{method} {path}");
            assert!(
                operation["security"].is_array(),
                "{method} {path} is secured"
            );
        }
        for schema in [
            "ProblemConflict",
            "AppointmentView",
            "SlotsView",
            "DoctorProfileView",
        ] {
            assert!(
                json["components"]["schemas"][schema].is_object(),
                "{schema} is in the components"
            );
        }

        let allowed = allowed_methods(&document);
        assert_eq!(allowed["/api/v1/appointments"], "GET, POST");
        assert_eq!(allowed["/api/v1/appointments/{id}"], "GET, PATCH");
        assert_eq!(allowed["/api/v1/doctors/{id}/availability"], "GET, PUT");
        assert_eq!(
            allowed["/api/v1/doctors/{id}/time-off/{time_off_id}"],
            "DELETE"
        );
    }
}
