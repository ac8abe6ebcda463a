//! Finding patients: by the request's body (`POST /patients/search`), which keeps the search
//! text out of the URL, and by query string (`GET /patients`), which puts it there and is kept
//! for listing without a text and for the clients that use it.

use actix_web::guard::GuardContext;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use carehub_domain::access::{Action, Grant};
use carehub_domain::kernel::{PageRequest, ValidationErrors};
use carehub_domain::patients::{PatientId, SearchText};

use crate::extract::{Caller, JsonBody, parse_query};
use crate::openapi::rules;
use crate::paging::{ListPage, PageQuery, decode_cursor};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;

use super::views::PatientSummaryView;

/// Keeps `/patients/{id}` off `/patients/search`, which takes only `POST`: a `GET` or `PATCH`
/// there is a 405 naming it, not a lookup of a patient whose id would be "search".
pub fn not_the_search(ctx: &GuardContext<'_>) -> bool {
    !ctx.head().uri.path().ends_with("/patients/search")
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatientSearchQuery {
    /// 1 to 100 characters, matched against names (any part, regardless of case), and exactly
    /// against record numbers and identifier values. Doctors see patients outside their care
    /// teams only on an exact record number or identifier match. It travels in the URL, where
    /// proxies and browsers may keep it: prefer `POST /patients/search`.
    #[param(schema_with = rules::search_text)]
    pub q: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// A search, in the request's body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientSearchRequest {
    /// As `q` of `GET /patients`: 1 to 100 characters, matched against names (any part,
    /// regardless of case), and exactly against record numbers and identifier values. Absent:
    /// every patient the caller may list.
    #[schema(schema_with = rules::optional_search_text)]
    pub q: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "whole_number")]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[schema(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

/// A count from a JSON body. JSON Schema's integers include `94.0`, so a number without a
/// fraction is taken as the integer it is; anything else is refused on its field.
fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<f64>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if number.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&number) {
        // Whole and within u32's range, checked above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Some(number as u32))
    } else {
        Err(serde::de::Error::custom(format!(
            "{number} is not a whole number of items"
        )))
    }
}

/// Search patients by name, record number or identifier, in registration order, with the
/// search text in the body rather than the URL.
#[utoipa::path(
    tag = "patients",
    request_body = PatientSearchRequest,
    responses(
        (status = 200, description = "A page of patients; each one listed is audited", body = ListPage<PatientSummaryView>),
        Unauthenticated,
        (status = 403, description = "Only secretaries, doctors and administrators list patients", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid `q`, limit or cursor, or unknown fields, all listed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/patients/search")]
pub async fn search_patients_by_body(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    JsonBody(body): JsonBody<PatientSearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let grant = state
        .gatekeeper
        .authorize_role(&actor, Action::SearchPatients)
        .await?;
    let mut errors = ValidationErrors::new();
    let text = body
        .q
        .as_deref()
        .and_then(|q| errors.check("q", SearchText::parse(q)));
    let after = body
        .cursor
        .as_deref()
        .and_then(|c| errors.check("cursor", decode_cursor(c)))
        .map(PatientId::from_uuid);
    let page = errors.check("limit", PageRequest::new(body.limit, after));
    errors.into_result()?;
    let page = page.ok_or_else(|| ApiError::invalid_field("limit", "is invalid"))?;
    answer(&state, &grant, text, page).await
}

/// List or search patients, in registration order. A search text here travels in the URL:
/// `POST /patients/search` keeps it in the body.
#[utoipa::path(
    tag = "patients",
    params(PatientSearchQuery),
    responses(
        (status = 200, description = "A page of patients; each one listed is audited", body = ListPage<PatientSummaryView>),
        (status = 400, description = "Invalid `q`, limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Only secretaries, doctors and administrators list patients", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/patients")]
pub async fn search_patients(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let grant = state
        .gatekeeper
        .authorize_role(&actor, Action::SearchPatients)
        .await?;
    let query: PatientSearchQuery = parse_query(&request)?;
    let text = query
        .q
        .as_deref()
        .map(SearchText::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("q: {e}")))?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(PatientId::from_uuid)?;
    answer(&state, &grant, text, page).await
}

/// The page of patients a search found, each one listed audited, as both forms answer it.
async fn answer(
    state: &AppState,
    grant: &Grant,
    text: Option<SearchText>,
    page: PageRequest<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let found = state.patients.search_patients(grant, text, page).await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        found,
        |id| *id.as_uuid(),
        PatientSummaryView::from,
    )))
}
