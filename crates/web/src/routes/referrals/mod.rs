//! Referrals: a doctor on a patient's care team sends the patient, with a snapshot of what
//! matters, to another doctor, who accepts, declines and later completes it.
//!
//! Only doctors take part: every other role is refused (and the refusal audited) before the
//! path, the query or the body is looked at, so a refused caller gets 403 whatever they sent.
//! Only a referral's two doctors ever see it: anyone else is told it does not exist.

pub mod views;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use carehub_domain::access::Actor;
use carehub_domain::audit::AuditAction;
use carehub_domain::kernel::ValidationErrors;
use carehub_domain::referrals::{NewReferral, ReferralBox, ReferralId, ReferralStatus, Transition};

use crate::extract::{Caller, RawJson, parse_query, path_uuid};
use crate::openapi::enums;
use crate::paging::{ListPage, PageQuery};
use crate::problem::{ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;
use views::{CompleteRequest, DeclineRequest, EmptyRequest, ReferralInput, ReferralView};

/// Registers the referral resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(send_referral)
        .service(list_referrals)
        .service(get_referral)
        .service(accept_referral)
        .service(decline_referral)
        .service(cancel_referral)
        .service(complete_referral);
}

fn referral_id(raw: &str) -> Result<ReferralId, ApiError> {
    path_uuid(raw).map(ReferralId::from_uuid)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralListQuery {
    /// `inbox`: referrals sent to the caller; `outbox`: referrals the caller sent.
    #[serde(rename = "box")]
    #[param(value_type = enums::ReferralBox, required = true)]
    pub referral_box: Option<String>,
    /// Only referrals in this status.
    #[param(value_type = Option<enums::ReferralStatus>)]
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    pub cursor: Option<String>,
}

impl ReferralListQuery {
    fn referral_box(&self) -> Result<ReferralBox, ApiError> {
        match self.referral_box.as_deref() {
            Some("inbox") => Ok(ReferralBox::Inbox),
            Some("outbox") => Ok(ReferralBox::Outbox),
            Some(_) => Err(ApiError::BadRequest("box: must be inbox or outbox".into())),
            None => Err(ApiError::BadRequest(
                "box: is required (inbox or outbox)".into(),
            )),
        }
    }

    fn status(&self) -> Result<Option<ReferralStatus>, ApiError> {
        self.status
            .as_deref()
            .map(str::parse::<ReferralStatus>)
            .transpose()
            .map_err(|_| {
                ApiError::BadRequest(
                    "status: must be one of sent, accepted, declined, cancelled, completed".into(),
                )
            })
    }
}

/// Refer a patient of the caller's care team to another active doctor. What is shared (the
/// clinical summary, and the patient's profile and medical information as they are now) is
/// kept as it was sent. The recipient is notified (`referral.received`).
#[utoipa::path(
    tag = "referrals",
    request_body = ReferralInput,
    responses(
        (status = 201, description = "The referral, with what it shared; `Location` names it", body = ReferralView,
            headers(("Location" = String, description = "/api/v1/referrals/{id}"))),
        Unauthenticated,
        (status = 403, description = "Only doctors send referrals, and not on an emergency access alone", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient, or not one on the caller's care team", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields, all listed; `to_doctor_id` is not another active doctor", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/referrals")]
pub async fn send_referral(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .referrals
        .check_referrals_role(&actor, AuditAction::ReferralCreate)
        .await?;
    let input: ReferralInput = body.parse()?;
    let referral = NewReferral::try_from(input)?;
    let detail = state.referrals.send_referral(&actor, referral).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/referrals/{}", detail.referral.id),
        ))
        .json(ReferralView::detail(detail)))
}

/// The caller's inbox or outbox, newest first, without what the referrals shared. Each referral
/// listed is audited as a read of its patient.
#[utoipa::path(
    tag = "referrals",
    params(ReferralListQuery),
    responses(
        (status = 200, description = "A page of referrals (without `snapshot`)", body = ListPage<ReferralView>),
        (status = 400, description = "`box` missing or invalid, unknown `status`, invalid limit or cursor", body = Problem, content_type = "application/problem+json"),
        Unauthenticated,
        (status = 403, description = "Only doctors have referrals", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/referrals")]
pub async fn list_referrals(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .referrals
        .check_referrals_role(&actor, AuditAction::ReferralList)
        .await?;
    let query: ReferralListQuery = parse_query(&request)?;
    let referral_box = query.referral_box()?;
    let status = query.status()?;
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .to_request(ReferralId::from_uuid)?;
    let found = state
        .referrals
        .list_referrals(&actor, referral_box, status, page)
        .await?;
    Ok(HttpResponse::Ok().json(ListPage::of(
        found,
        |id| *id.as_uuid(),
        ReferralView::summary,
    )))
}

/// A referral the caller sent or received, with what it shared. The recipient no longer sees
/// what was shared (`"snapshot": null`) once they declined it or the sender cancelled it.
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "The referral's id")),
    responses(
        (status = 200, description = "The referral and its snapshot", body = ReferralView),
        Unauthenticated,
        (status = 403, description = "Only doctors have referrals", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such referral, or the caller is neither its sender nor its recipient", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/referrals/{id}")]
pub async fn get_referral(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .referrals
        .check_referrals_role(&actor, AuditAction::ReferralRead)
        .await?;
    let id = referral_id(&id)?;
    let detail = state.referrals.get_referral(&actor, id).await?;
    Ok(HttpResponse::Ok().json(ReferralView::detail(detail)))
}

/// The audit action of a status change.
const fn audit_action(transition: Transition) -> AuditAction {
    match transition {
        Transition::Accept => AuditAction::ReferralAccept,
        Transition::Decline => AuditAction::ReferralDecline,
        Transition::Cancel => AuditAction::ReferralCancel,
        Transition::Complete => AuditAction::ReferralComplete,
    }
}

/// The note a change's body carries: none for accepting and cancelling (no body, or `{}`), the
/// reason for declining, the outcome for completing. A missing note is left to the domain,
/// which names the field.
fn note_of(transition: Transition, body: &RawJson) -> Result<Option<String>, ApiError> {
    match transition {
        Transition::Accept | Transition::Cancel => match body.parse_optional::<Value>()? {
            None => Ok(None),
            Some(Value::Object(fields)) => match fields.keys().next() {
                None => Ok(None),
                Some(field) => {
                    let mut errors = ValidationErrors::new();
                    errors.add(
                        field.as_str(),
                        format!("unknown field `{field}`, there are no fields"),
                    );
                    Err(ApiError::Invalid(errors))
                }
            },
            Some(_) => Err(ApiError::invalid_field(
                "(body)",
                "must be empty or an empty JSON object",
            )),
        },
        Transition::Decline => Ok(body
            .parse_optional::<DeclineRequest>()?
            .unwrap_or_default()
            .reason),
        Transition::Complete => Ok(body
            .parse_optional::<CompleteRequest>()?
            .unwrap_or_default()
            .outcome),
    }
}

/// Applies `transition` to the referral named by `raw_id`, once the caller's role is allowed.
async fn change(
    state: &AppState,
    actor: &Actor,
    raw_id: &str,
    transition: Transition,
    body: &RawJson,
) -> Result<HttpResponse, ApiError> {
    state
        .referrals
        .check_referrals_role(actor, audit_action(transition))
        .await?;
    let id = referral_id(raw_id)?;
    let note = note_of(transition, body)?;
    let referral = state
        .referrals
        .change_referral(actor, id, transition, note.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(ReferralView::summary(referral)))
}

/// Accept a referral sent to the caller: they join the patient's care team (unless already on
/// it), with the referral as the reason. The sender is notified (`referral.accepted`).
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "The referral's id")),
    request_body(content = Option<EmptyRequest>, description = "No body, or `{}`"),
    responses(
        (status = 200, description = "The referral, accepted (without `snapshot`)", body = ReferralView),
        Unauthenticated,
        (status = 403, description = "Only doctors have referrals; only the recipient accepts", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such referral, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral is no longer `sent`; the detail names its status", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field in the body: accepting takes none", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/referrals/{id}/accept")]
pub async fn accept_referral(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    change(&state, &actor, &id, Transition::Accept, &body).await
}

/// Decline a referral sent to the caller, with a reason. The sender is notified
/// (`referral.declined`); the recipient no longer sees what was shared.
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "The referral's id")),
    request_body = DeclineRequest,
    responses(
        (status = 200, description = "The referral, declined (without `snapshot`)", body = ReferralView),
        Unauthenticated,
        (status = 403, description = "Only doctors have referrals; only the recipient declines", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such referral, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral is no longer `sent`; the detail names its status", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The reason is missing, empty or longer than 5,000 characters; unknown fields", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/referrals/{id}/decline")]
pub async fn decline_referral(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    change(&state, &actor, &id, Transition::Decline, &body).await
}

/// Withdraw a referral the caller sent, before the recipient answered. The recipient is
/// notified (`referral.cancelled`) and no longer sees what was shared.
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "The referral's id")),
    request_body(content = Option<EmptyRequest>, description = "No body, or `{}`"),
    responses(
        (status = 200, description = "The referral, cancelled (without `snapshot`)", body = ReferralView),
        Unauthenticated,
        (status = 403, description = "Only doctors have referrals; only the sender cancels", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such referral, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral is no longer `sent`; the detail names its status", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field in the body: cancelling takes none", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/referrals/{id}/cancel")]
pub async fn cancel_referral(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    change(&state, &actor, &id, Transition::Cancel, &body).await
}

/// Complete an accepted referral, with an outcome note for the sender, who is notified
/// (`referral.completed`).
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "The referral's id")),
    request_body = CompleteRequest,
    responses(
        (status = 200, description = "The referral, completed (without `snapshot`)", body = ReferralView),
        Unauthenticated,
        (status = 403, description = "Only doctors have referrals; only the recipient completes", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such referral, or the caller is not a party to it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The referral is not `accepted`; the detail names its status", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The outcome is missing, empty or longer than 5,000 characters; unknown fields", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/referrals/{id}/complete")]
pub async fn complete_referral(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    id: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    change(&state, &actor, &id, Transition::Complete, &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> ReferralListQuery {
        web::Query::<ReferralListQuery>::from_query(raw)
            .expect("a query")
            .into_inner()
    }

    #[test]
    fn the_box_is_required_and_named_inbox_or_outbox() {
        assert_eq!(
            query("box=inbox").referral_box().ok(),
            Some(ReferralBox::Inbox)
        );
        assert_eq!(
            query("box=outbox").referral_box().ok(),
            Some(ReferralBox::Outbox)
        );
        assert!(query("").referral_box().is_err());
        assert!(query("box=Inbox").referral_box().is_err());
    }

    #[test]
    fn an_unknown_status_is_refused() {
        assert_eq!(
            query("box=inbox&status=accepted").status().ok(),
            Some(Some(ReferralStatus::Accepted))
        );
        assert_eq!(query("box=inbox").status().ok(), Some(None));
        assert!(query("box=inbox&status=done").status().is_err());
    }
}
