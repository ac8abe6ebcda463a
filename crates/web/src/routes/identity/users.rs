//! The signed-in user and their own patient record. (The directory of doctors is in
//! [`crate::routes::scheduling::doctors`].)

use actix_web::{HttpResponse, get, web};

use super::views::UserView;
use crate::extract::{Authenticated, Caller};
use crate::problem::{ApiError, Problem, Unauthenticated};
use crate::routes::patients::views::PatientView;
use crate::state::AppState;

/// The signed-in user.
#[utoipa::path(
    tag = "users",
    responses(
        (status = 200, description = "The caller's account", body = UserView),
        Unauthenticated,
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/users/me")]
pub async fn me(Authenticated(principal): Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(UserView::from(principal.into_user()))
}

/// The calling patient's own record.
#[utoipa::path(
    tag = "users",
    responses(
        (status = 200, description = "The record linked to the caller's account", body = PatientView),
        Unauthenticated,
        (status = 403, description = "The caller is not a patient", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No record is linked to the caller's account yet", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []), ("oauth2" = []))
)]
#[get("/users/me/patient")]
pub async fn my_patient_record(
    state: web::Data<AppState>,
    Caller { actor, .. }: Caller,
) -> Result<HttpResponse, ApiError> {
    let patient = state.patients.own_record(&actor).await?;
    Ok(HttpResponse::Ok().json(PatientView::from(patient)))
}
