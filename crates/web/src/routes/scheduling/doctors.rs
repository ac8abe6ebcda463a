//! Doctors: the directory, each doctor's profile, weekly availability, time off and free slots.
//!
//! Anyone signed in reads them (they are not patient data, so reads are not audited). Changes
//! are for the doctor themself and the staff who keep their diary: a caller who may not make
//! one is refused before the body is read, whatever they sent. A body is converted into what
//! the use case takes here; its invalid fields are listed only once the doctor is known to
//! exist.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use utoipa::IntoParams;

use carehub_domain::identity::UserId;
use carehub_domain::scheduling::{AvailabilityRule, ProfileUpdate, TimeOffId};

use super::inputs::{AvailabilityInput, ProfileInput, TimeOffInput};
use super::views::{
    AvailabilityView, DoctorProfileView, RulesView, SlotView, SlotsView, TimeOffView,
    parse_instant, zone_name,
};
use crate::extract::{Caller, RawJson, parse_query, path_uuid, valid_unless_refused};
use crate::openapi::rules;
use crate::paging::{ListPage, PageQuery};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the doctors' resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(directory)
        .service(get_doctor)
        .service(put_profile)
        .service(get_availability)
        .service(put_availability)
        .service(add_time_off)
        .service(remove_time_off)
        .service(free_slots);
}

/// The range of slots shown when the query names no end.
pub const DEFAULT_SLOT_RANGE: SignedDuration = SignedDuration::from_hours(24 * 7);

fn doctor_id(raw: &str) -> Result<UserId, ApiError> {
    path_uuid(raw).map(UserId::from_uuid)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryQuery {
    /// Only doctors with this specialization, regardless of case (`cardiology` finds
    /// `Cardiology`).
    pub specialization: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (also accepted as `after`).
    #[serde(alias = "after")]
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlotsQuery {
    /// The start of the range: RFC 3339 (any offset), or a date `YYYY-MM-DD` for the start of
    /// that day in the clinic's time zone. Default: now.
    #[param(example = "2027-03-29", schema_with = rules::instant_or_date)]
    pub from: Option<String>,
    /// The end of the range (exclusive), as `from`; at most 31 days after it. Default: 7 days
    /// after `from`.
    #[param(example = "2027-03-30", schema_with = rules::instant_or_date)]
    pub to: Option<String>,
}

/// An instant of a query, as [`parse_instant`] reads it, or a 400 naming the parameter.
pub fn query_instant(
    name: &str,
    raw: Option<&str>,
    tz: &jiff::tz::TimeZone,
) -> Result<Option<Timestamp>, ApiError> {
    raw.map(|raw| {
        parse_instant(raw, tz).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name}: must be an RFC 3339 instant or a date YYYY-MM-DD"
            ))
        })
    })
    .transpose()
}

/// The directory of active doctors, by account id, optionally by specialization.
#[utoipa::path(
    tag = "doctors",
    params(DirectoryQuery),
    responses(
        (status = 200, description = "A page of doctors", body = ListPage<DoctorProfileView>),
        (status = 400, description = "Invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/doctors")]
pub async fn directory(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: DirectoryQuery = parse_query(&request)?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(UserId::from_uuid)?;
    let found = state
        .schedules
        .doctor_directory(&actor, query.specialization.as_deref(), page)
        .await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        found,
        |id| *id.as_uuid(),
        DoctorProfileView::from,
    )))
}

/// A doctor's profile.
#[utoipa::path(
    tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's account id")),
    responses(
        (status = 200, description = "The doctor", body = DoctorProfileView),
        Unauthenticated,
        (status = 404, description = "No active doctor has this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/doctors/{id}")]
pub async fn get_doctor(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = doctor_id(&id)?;
    let profile = state.schedules.doctor_profile(&actor, id).await?;
    Ok(HttpResponse::Ok().json(DoctorProfileView::from(profile)))
}

/// Replace a doctor's profile: specializations, biography and appointment length. For the
/// doctor themself and administrators.
#[utoipa::path(
    tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's account id")),
    request_body = ProfileInput,
    responses(
        (status = 200, description = "The profile as it now is", body = DoctorProfileView),
        Unauthenticated,
        (status = 403, description = "Only the doctor themself and administrators change a profile", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active doctor has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, all listed: more than 10 specializations, a repeated one, a biography over 2,000 characters, an appointment length outside 5 to 480 minutes", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[put("/doctors/{id}/profile")]
pub async fn put_profile(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = doctor_id(&id)?;
    state.schedules.check_profile_editor(&actor, id)?;
    let input: ProfileInput = body.parse()?;
    let update = valid_unless_refused(
        ProfileUpdate::try_from(input),
        state.schedules.check_doctor(&actor, id),
    )
    .await?;
    let profile = state
        .schedules
        .update_doctor_profile(&actor, id, update)
        .await?;
    Ok(HttpResponse::Ok().json(DoctorProfileView::from(profile)))
}

/// A doctor's weekly availability, in the clinic's time zone, and their time off not yet over.
/// The reasons for time off are shown only to those who may change the doctor's schedule.
#[utoipa::path(
    tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's account id")),
    responses(
        (status = 200, description = "The weekly rules and upcoming time off", body = AvailabilityView),
        Unauthenticated,
        (status = 404, description = "No active doctor has this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/doctors/{id}/availability")]
pub async fn get_availability(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = doctor_id(&id)?;
    let availability = state.schedules.availability(&actor, id).await?;
    Ok(HttpResponse::Ok().json(AvailabilityView::new(
        &availability.rules,
        &availability.time_off,
        state.schedules.clinic_time_zone(),
    )))
}

/// Replace a doctor's weekly availability: every rule at once (`[]` for none). Times are
/// wall-clock times of the clinic's time zone, so a 09:00 rule starts at 09:00 on both sides
/// of a daylight-saving change. Appointments already booked stay.
#[utoipa::path(
    tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's account id")),
    request_body = AvailabilityInput,
    responses(
        (status = 200, description = "The rules as they now are, sorted", body = RulesView),
        Unauthenticated,
        (status = 403, description = "Only the doctor themself, secretaries and administrators change availability", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active doctor has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, all listed: an unknown weekday, a time not `HH:MM`, an end not after its start, rules of one day that overlap, more than 70 rules", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[put("/doctors/{id}/availability")]
pub async fn put_availability(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = doctor_id(&id)?;
    state.schedules.check_schedule_editor(&actor, id)?;
    let input: AvailabilityInput = body.parse()?;
    let rules = valid_unless_refused(
        Vec::<AvailabilityRule>::try_from(input),
        state.schedules.check_doctor(&actor, id),
    )
    .await?;
    let rules = state
        .schedules
        .replace_availability(&actor, id, rules)
        .await?;
    Ok(HttpResponse::Ok().json(RulesView::new(&rules, state.schedules.clinic_time_zone())))
}

/// Add time off to a doctor's diary: no slot is offered and nothing can be booked in it.
/// Refused while appointments are booked then (cancel or move them first).
#[utoipa::path(
    tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's account id")),
    request_body = TimeOffInput,
    responses(
        (status = 201, description = "The time off; `Location` names it", body = TimeOffView,
            headers(("Location" = String, description = "/api/v1/doctors/{id}/time-off/{time_off_id}"))),
        Unauthenticated,
        (status = 403, description = "Only the doctor themself, secretaries and administrators add time off", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No active doctor has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Appointments are booked then (`appointment-conflict`): `conflicts` lists every one", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, all listed: times not RFC 3339, an end not after the start or already past, longer than 366 days, a reason over 500 characters", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/doctors/{id}/time-off")]
pub async fn add_time_off(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    let id = doctor_id(&id)?;
    state.schedules.check_schedule_editor(&actor, id)?;
    let input: TimeOffInput = body.parse()?;
    let new_time_off = valid_unless_refused(
        input.into_new_time_off(state.schedules.now()),
        state.schedules.check_doctor(&actor, id),
    )
    .await?;
    let tz = state.schedules.clinic_time_zone();
    let time_off = state
        .schedules
        .add_time_off(&actor, id, new_time_off)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/doctors/{id}/time-off/{}", time_off.id),
        ))
        .json(TimeOffView::new(&time_off, tz)))
}

/// Remove time off from a doctor's diary.
#[utoipa::path(
    tag = "doctors",
    params(
        ("id" = Uuid, Path, description = "The doctor's account id"),
        ("time_off_id" = Uuid, Path, description = "The time off's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        Unauthenticated,
        (status = 403, description = "Only the doctor themself, secretaries and administrators remove time off", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such doctor, or no such time off of theirs", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[delete("/doctors/{id}/time-off/{time_off_id}")]
pub async fn remove_time_off(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, time_off_id) = path.into_inner();
    let id = doctor_id(&id)?;
    state.schedules.check_schedule_editor(&actor, id)?;
    let time_off_id = TimeOffId::from_uuid(path_uuid(&time_off_id)?);
    state
        .schedules
        .remove_time_off(&actor, id, time_off_id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A doctor's free slots in a range: their working hours, minus time off and appointments,
/// cut into appointments of the doctor's length, from now on. Each may be booked as it is.
#[utoipa::path(
    tag = "doctors",
    params(("id" = Uuid, Path, description = "The doctor's account id"), SlotsQuery),
    responses(
        (status = 200, description = "The free slots, in order, at the clinic's offset", body = SlotsView),
        (status = 400, description = "`from` or `to` is neither RFC 3339 nor a date", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 404, description = "No active doctor has this id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to` is not after `from`, or more than 31 days after it", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/doctors/{id}/slots")]
pub async fn free_slots(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = doctor_id(&id)?;
    let query: SlotsQuery = parse_query(&request)?;
    let tz = state.schedules.clinic_time_zone();
    let from = query_instant("from", query.from.as_deref(), tz)?.unwrap_or_else(Timestamp::now);
    let to = query_instant("to", query.to.as_deref(), tz)?.unwrap_or_else(|| {
        from.saturating_add(DEFAULT_SLOT_RANGE)
            .unwrap_or(Timestamp::MAX)
    });
    let free = state.schedules.free_slots(&actor, id, from, to).await?;
    Ok(HttpResponse::Ok().json(SlotsView {
        doctor_id: *id.as_uuid(),
        time_zone: zone_name(tz),
        appointment_minutes: free.appointment_minutes,
        slots: free
            .slots
            .into_iter()
            .map(|s| SlotView::new(s, tz))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::ts;

    use jiff::tz::TimeZone;

    #[test]
    fn slot_bounds_are_optional_and_a_bad_one_is_named() {
        let new_york = TimeZone::get("America/New_York").expect("a zone");
        assert_eq!(query_instant("from", None, &new_york).ok(), Some(None));
        assert_eq!(
            query_instant("from", Some("2026-11-01"), &new_york).ok(),
            Some(Some(ts("2026-11-01T04:00:00Z")))
        );
        let error = query_instant("to", Some("soon"), &new_york).expect_err("not a time");
        let problem = error.problem();
        assert_eq!(problem.status, 400);
        assert!(problem.detail.unwrap_or_default().starts_with("to:"));
    }
}
