//! Errors as RFC 9457 problem details (`application/problem+json`), and the mapping of every
//! domain error to a status. Causes of server errors are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use jiff::Zoned;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openapi::enums;
use crate::routes::prescriptions::views::AllergyMatchView;
use carehub_domain::kernel::{FieldError, ValidationErrors};
use carehub_domain::scheduling::{Conflict, ConflictWith};

mod from_domain;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem detail (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:carehub:problem:...`).
    #[serde(rename = "type")]
    #[schema(example = "urn:carehub:problem:validation")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    pub status: u16,
    /// What went wrong in this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Each invalid field, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
    /// The OAuth 2.0 error code (RFC 6749), on the token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Every active appointment in the way, for `appointment-conflict` problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub conflicts: Option<Vec<ProblemConflict>>,
    /// Every recorded allergy the medication matches, for `allergy-conflict` problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub allergy_matches: Option<Vec<AllergyMatchView>>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// The field's path in the request, e.g. `password`.
    pub field: String,
    pub message: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

/// An appointment in the way of a booking, a new time or time off: its id and times only
/// (never another patient's), and whose calendar it blocks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemConflict {
    /// The appointment's id.
    pub id: Uuid,
    /// RFC 3339, at the clinic's offset.
    #[schema(example = "2027-03-29T09:00:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub start: Zoned,
    #[schema(example = "2027-03-29T09:30:00+02:00")]
    #[serde(serialize_with = "crate::clinic_time::serialize")]
    pub end: Zoned,
    /// `doctor`: the doctor is busy then; `patient`: the patient is; `both`.
    #[schema(value_type = enums::ConflictWith)]
    pub with: ConflictWith,
}

impl From<Conflict> for ProblemConflict {
    /// The domain gives a conflict's times at the clinic's offset already.
    fn from(conflict: Conflict) -> Self {
        Self {
            id: *conflict.appointment_id.as_uuid(),
            start: conflict.start,
            end: conflict.end,
            with: conflict.with,
        }
    }
}

/// The answer of every route that needs a signed-in caller, named in its `responses`.
#[derive(Debug, utoipa::IntoResponses)]
pub enum Unauthenticated {
    /// No valid access token.
    #[response(
        status = 401,
        description = "No valid access token",
        content_type = "application/problem+json"
    )]
    NoValidToken(Problem),
}

/// The answer of a route on one patient whom the caller may not see or who does not exist:
/// the two are not told apart.
#[derive(Debug, utoipa::IntoResponses)]
pub enum PatientNotFound {
    /// No such patient, or not one the caller may see.
    #[response(
        status = 404,
        description = "No such patient, or not one the caller may see",
        content_type = "application/problem+json"
    )]
    Hidden(Problem),
}

/// The answer of a route for administrators only, to anyone else.
#[derive(Debug, utoipa::IntoResponses)]
pub enum AdminOnly {
    /// The caller is not an administrator.
    #[response(
        status = 403,
        description = "The caller is not an administrator",
        content_type = "application/problem+json"
    )]
    NotAnAdministrator(Problem),
}

/// The answers of every route that reads a JSON body, besides its own: listed once here and
/// named in each route's `responses`.
#[derive(Debug, utoipa::IntoResponses)]
pub enum BodyProblems {
    /// Malformed JSON.
    #[response(
        status = 400,
        description = "Malformed JSON",
        content_type = "application/problem+json"
    )]
    Malformed(Problem),
    /// The body is too large.
    #[response(
        status = 413,
        description = "The body is too large",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    /// The body is not JSON.
    #[response(
        status = 415,
        description = "The body is not JSON",
        content_type = "application/problem+json"
    )]
    NotJson(Problem),
}

/// Why a request failed, as the client will be told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("invalid request fields")]
    Invalid(ValidationErrors),
    /// An access token was missing, invalid, expired or revoked.
    #[error("unauthenticated: {0}")]
    Unauthorized(String),
    /// Sign-in or refresh failed: no access token was involved.
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("method not allowed; allowed: {allow}")]
    MethodNotAllowed { allow: String },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A request body larger than its route takes (413); the detail says the limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// A request body not sent in time (408).
    #[error("request timeout: {0}")]
    RequestTimeout(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// An OAuth 2.0 token endpoint error (RFC 6749 section 5.2).
    #[error("oauth error {error}: {description}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Appointments already hold the time (409), every one listed.
    #[error("the time is taken by {} appointment(s)", .0.len())]
    TimeTaken(Vec<ProblemConflict>),
    /// The medication matches recorded allergies (409), every match listed; an override
    /// reason lets it through.
    #[error("the medication matches {} recorded allergies", .0.len())]
    AllergyConflict(Vec<AllergyMatchView>),
    /// The time cannot be booked with this doctor (422): past, too far ahead, outside the
    /// doctor's hours, during time off.
    #[error("the time cannot be booked: {0}")]
    NotBookable(String),
    /// A status change the state machine refuses from the current status (409).
    #[error("invalid transition: {0}")]
    InvalidTransition(String),
    /// A change asked too close to the appointment (422).
    #[error("too late: {0}")]
    TooLate(String),
    /// Anything the client cannot fix. The cause is logged; the client gets a generic body.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    /// A request body over `limit` bytes.
    pub fn body_too_large(limit: usize) -> Self {
        Self::PayloadTooLarge(format!(
            "the request body may be at most {} here",
            byte_size(limit)
        ))
    }

    /// One invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = ValidationErrors::new();
        errors.add(field, message);
        Self::Invalid(errors)
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("bad-request", "The request is malformed"),
            Self::Invalid(_) => ("validation", "The request has invalid fields"),
            Self::Unauthorized(_) => ("unauthorized", "Authentication is required"),
            Self::SignInFailed(_) => ("unauthorized", "Sign-in failed"),
            Self::Forbidden(_) => ("forbidden", "You may not do this"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::Conflict(_) => ("conflict", "The request conflicts with the current state"),
            Self::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Self::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            Self::PayloadTooLarge(_) => ("payload-too-large", "The request body is too large"),
            Self::RequestTimeout(_) => ("request-timeout", "The request took too long to send"),
            Self::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            Self::OAuth { .. } => ("oauth", "The token request was refused"),
            Self::Unavailable(_) => ("unavailable", "The service is unavailable"),
            Self::TimeTaken(_) => ("appointment-conflict", "The time is taken"),
            Self::AllergyConflict(_) => (
                "allergy-conflict",
                "The medication matches a recorded allergy",
            ),
            Self::NotBookable(_) => ("not-bookable", "The time cannot be booked"),
            Self::InvalidTransition(_) => {
                ("invalid-transition", "The status cannot change this way")
            }
            Self::TooLate(_) => ("too-late", "It is too late for this change"),
            Self::Internal(_) => ("internal", "Internal server error"),
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::SignInFailed(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::UnsupportedMediaType(d)
            | Self::PayloadTooLarge(d)
            | Self::RequestTimeout(d)
            | Self::Unavailable(d)
            | Self::NotBookable(d)
            | Self::InvalidTransition(d)
            | Self::TooLate(d) => Some(d.clone()),
            Self::TimeTaken(conflicts) => Some(match conflicts.len() {
                1 => "1 appointment overlaps".to_owned(),
                n => format!("{n} appointments overlap"),
            }),
            Self::AllergyConflict(matches) => Some(format!(
                "the medication matches {} recorded allergies; give override_reason to \
                 prescribe it anyway",
                matches.len()
            )),
            Self::Invalid(errors) => {
                Some(format!("{} field(s) are invalid", errors.errors().len()))
            }
            Self::MethodNotAllowed { allow } => Some(format!("this resource takes {allow}")),
            Self::TooManyRequests { retry_after_secs } => {
                Some(format!("retry after {retry_after_secs} seconds"))
            }
            Self::OAuth { description, .. } => Some(description.clone()),
            Self::Internal(_) => Some("the server could not complete the request".into()),
        }
    }

    /// The body clients receive.
    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        Problem {
            kind: format!("urn:carehub:problem:{slug}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Invalid(errors) => Some(
                    errors
                        .errors()
                        .iter()
                        .cloned()
                        .map(ProblemField::from)
                        .collect(),
                ),
                _ => None,
            },
            error: match self {
                Self::OAuth { error, .. } => Some(error),
                _ => None,
            },
            error_description: match self {
                Self::OAuth { description, .. } => Some(description.clone()),
                _ => None,
            },
            conflicts: match self {
                Self::TimeTaken(conflicts) => Some(conflicts.clone()),
                _ => None,
            },
            allergy_matches: match self {
                Self::AllergyConflict(matches) => Some(matches.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) | Self::SignInFailed(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_)
            | Self::TimeTaken(_)
            | Self::AllergyConflict(_)
            | Self::InvalidTransition(_) => StatusCode::CONFLICT,
            Self::NotBookable(_) | Self::TooLate(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::OAuth { status, .. } => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(error = %cause, cause = ?cause.source(), "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::Unauthorized(detail) => {
                let challenge = format!(
                    "Bearer realm=\"carehub\", error=\"invalid_token\", error_description=\"{}\"",
                    detail.replace('"', "'")
                );
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&challenge)
                        .unwrap_or(HeaderValue::from_static("Bearer realm=\"carehub\"")),
                ));
            }
            Self::MethodNotAllowed { allow } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    response.insert_header((header::ALLOW, value));
                }
            }
            Self::SignInFailed(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"carehub\""));
            }
            Self::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

/// `bytes` as people read it: `4 KiB`, `20 MiB`, else a number of bytes.
pub fn byte_size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    match bytes {
        0 => "0 bytes".to_owned(),
        b if b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b % KIB == 0 => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
    }
}

/// A 401 for a request that carried no credentials at all (RFC 6750 section 3.1).
pub fn missing_credentials() -> HttpResponse {
    let error = ApiError::Unauthorized("a bearer access token is required".into());
    let mut response = error.error_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"carehub\""),
    );
    response
}
