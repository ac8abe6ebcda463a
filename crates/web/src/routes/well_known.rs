//! The public key set other services verify CareHub's access tokens with.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, get, web};

use crate::state::AppState;

/// The JSON Web Key Set (RFC 7517) of the access token signing key.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The key set", content_type = "application/jwk-set+json", body = Object))
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(300),
        ]))
        .body(state.jwks_json.clone())
}
