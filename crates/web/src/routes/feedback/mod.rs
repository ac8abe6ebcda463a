//! Feedback: a patient rates a completed appointment of their own, once, within 30 days; a
//! doctor reads their own ratings and comments (without who wrote them); administrators read
//! anyone's and hide a comment, with a reason.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use carehub_domain::feedback::{
    DoctorFeedback, Feedback, MAX_COMMENT_CHARS, MAX_HIDE_REASON_CHARS, Rating,
};
use carehub_domain::identity::{Role, UserId};
use carehub_domain::kernel::{AppointmentId, Text, ValidationErrors};
use jiff::Timestamp;

use crate::extract::{Caller, RawJson, path_uuid};
use crate::openapi::rules;
use crate::problem::{AdminOnly, ApiError, BodyProblems, Problem, Unauthenticated};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers feedback's resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(give_feedback)
        .service(doctor_feedback)
        .service(hide_comment);
}

/// A patient's rating of an appointment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    /// 1 (poor) to 5 (excellent).
    #[schema(value_type = i64, minimum = 1, maximum = 5, required = true, example = 5)]
    pub rating: Option<serde_json::Number>,
    /// Up to 2,000 characters.
    #[schema(schema_with = rules::optional_text_2000)]
    pub comment: Option<String>,
}

/// Why a comment is hidden.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HideInput {
    /// 1 to 500 characters.
    #[schema(schema_with = rules::text_500, required = true, example = "It names another patient")]
    pub reason: Option<String>,
}

/// A hidden comment: why, by whom, when (administrators only).
#[derive(Debug, Serialize, ToSchema)]
pub struct HiddenView {
    pub reason: String,
    pub by: Uuid,
    pub at: Timestamp,
}

/// One rating. Doctors see neither the appointment nor the patient, and no hidden comment.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedbackView {
    /// For the patient and administrators.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub appointment_id: Option<Uuid>,
    /// For administrators.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub patient_id: Option<Uuid>,
    pub rating: u8,
    /// `null` when none was written, or (for doctors) when it is hidden.
    pub comment: Option<String>,
    pub created_at: Timestamp,
    /// For administrators, when the comment is hidden.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub hidden: Option<HiddenView>,
}

impl FeedbackView {
    /// The rating as `role` sees it.
    fn seen_by(feedback: Feedback, role: Role) -> Self {
        let admin = role == Role::Admin;
        Self {
            appointment_id: (role != Role::Doctor).then(|| *feedback.appointment_id.as_uuid()),
            patient_id: admin.then(|| *feedback.patient_id.as_uuid()),
            rating: feedback.rating.value(),
            comment: feedback.comment.map(|c| c.as_str().to_owned()),
            created_at: feedback.created_at,
            hidden: feedback.hidden.filter(|_| admin).map(|h| HiddenView {
                reason: h.reason.as_str().to_owned(),
                by: *h.by.as_uuid(),
                at: h.at,
            }),
        }
    }
}

/// A doctor's feedback.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorFeedbackView {
    pub doctor_id: Uuid,
    /// The mean rating; `null` while there is none.
    pub average: Option<f64>,
    pub count: u32,
    /// Newest first.
    pub items: Vec<FeedbackView>,
}

impl DoctorFeedbackView {
    fn seen_by(feedback: DoctorFeedback, role: Role) -> Self {
        Self {
            doctor_id: *feedback.doctor_id.as_uuid(),
            average: feedback.average,
            count: feedback.count,
            items: feedback
                .items
                .into_iter()
                .map(|f| FeedbackView::seen_by(f, role))
                .collect(),
        }
    }
}

fn appointment_id(raw: &str) -> Result<AppointmentId, ApiError> {
    path_uuid(raw).map(AppointmentId::from_uuid)
}

/// The rating and comment of `input`, validated.
fn parse_feedback(input: FeedbackInput) -> Result<(Rating, Option<Text>), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let rating = errors.require("rating", input.rating).and_then(|raw| {
        let whole = raw.as_i64().or_else(|| {
            raw.as_f64()
                .filter(|f| f.fract() == 0.0 && (1.0..=5.0).contains(f))
                .map(|f| f as i64)
        });
        errors.check(
            "rating",
            whole
                .ok_or("must be a whole number from 1 to 5")
                .and_then(Rating::parse),
        )
    });
    let comment = input
        .comment
        .map(|raw| errors.check("comment", Text::multiline(&raw, MAX_COMMENT_CHARS)));
    match rating {
        Some(rating) if errors.is_empty() => Ok((rating, comment.flatten())),
        _ => Err(errors),
    }
}

/// The patient rates a completed appointment of their own, once, within 30 days of its
/// completion; audited.
#[utoipa::path(
    tag = "feedback",
    params(("id" = Uuid, Path, description = "The appointment's id")),
    request_body = FeedbackInput,
    responses(
        (status = 201, description = "The rating", body = FeedbackView),
        Unauthenticated,
        (status = 403, description = "Only patients rate appointments", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such appointment, or not one of the caller's", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The appointment is not completed, or was rated already", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed; or more than 30 days after the appointment was completed", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/appointments/{id}/feedback")]
pub async fn give_feedback(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    state.feedback.check_may_rate(&actor).await?;
    let id = appointment_id(&path)?;
    let (rating, comment) = parse_feedback(body.parse::<FeedbackInput>()?)?;
    let given = state.feedback.give(&actor, id, rating, comment).await?;
    Ok(HttpResponse::Created().json(FeedbackView::seen_by(given, actor.role())))
}

/// A doctor's ratings: the average, the count and each rating with its comment, newest first.
/// A doctor reads their own, without who wrote them and without hidden comments;
/// administrators read anyone's, hidden comments included.
#[utoipa::path(
    tag = "feedback",
    params(("id" = Uuid, Path, description = "The doctor's user id")),
    responses(
        (status = 200, description = "The doctor's feedback", body = DoctorFeedbackView),
        Unauthenticated,
        (status = 403, description = "Only the doctor themself and administrators read a doctor's feedback", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The id is not a user id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/doctors/{id}/feedback")]
pub async fn doctor_feedback(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let doctor = path_uuid(&path).map(UserId::from_uuid)?;
    let feedback = state.feedback.of_doctor(&actor, doctor).await?;
    Ok(HttpResponse::Ok().json(DoctorFeedbackView::seen_by(feedback, actor.role())))
}

/// An administrator hides the comment of an appointment's rating, with a reason; audited.
/// The rating still counts.
#[utoipa::path(
    tag = "feedback",
    params(("id" = Uuid, Path, description = "The rated appointment's id")),
    request_body = HideInput,
    responses(
        (status = 200, description = "The rating, its comment hidden", body = FeedbackView),
        Unauthenticated,
        AdminOnly,
        (status = 404, description = "No rating of this appointment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`reason` missing or invalid", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[post("/appointments/{id}/feedback/hide")]
pub async fn hide_comment(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
    path: web::Path<String>,
    body: RawJson,
) -> Result<HttpResponse, ApiError> {
    if actor.role() != Role::Admin {
        return Err(ApiError::Forbidden(
            "only administrators hide comments".into(),
        ));
    }
    let id = appointment_id(&path)?;
    let input: HideInput = body.parse()?;
    let mut errors = ValidationErrors::new();
    let reason = errors
        .require("reason", input.reason)
        .and_then(|raw| errors.check("reason", Text::multiline(&raw, MAX_HIDE_REASON_CHARS)));
    let Some(reason) = reason.filter(|_| errors.is_empty()) else {
        return Err(errors.into());
    };
    let hidden = state.feedback.hide(&actor, id, reason).await?;
    Ok(HttpResponse::Ok().json(FeedbackView::seen_by(hidden, actor.role())))
}
