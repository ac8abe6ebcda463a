//! Operations: liveness, readiness (the database answers), Prometheus metrics, the public key
//! set other services verify CareHub's access tokens with, and the OpenAPI document.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers what operations reads under `/api/v1`: health and the OpenAPI document.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(live).service(ready).service(openapi_json);
}

/// Registers what operations reads at the root: the public keys and the metrics.
pub fn root_services(cfg: &mut ServiceConfig) {
    cfg.service(jwks).service(metrics);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `sqlite` or `postgres`, on readiness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        database: None,
    })
}

/// The process can serve: its database answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.database.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::Unavailable("the database does not answer".into())
    })?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok",
        database: Some(state.database.backend()),
    }))
}

/// Request counts and latencies by route and status, job counts by kind and state, and job
/// durations by kind and outcome, in Prometheus text format.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus exposition", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.jobs.counts().await {
        Ok(counts) => state.metrics.set_job_counts(&counts),
        Err(e) => tracing::warn!(error = %e, "cannot count jobs for the metrics"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// The JSON Web Key Set (RFC 7517) of the keys that verify access tokens: the key that signs
/// and, after a rotation, the keys it superseded until their last tokens have expired.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The key set, newest key first", content_type = "application/jwk-set+json", body = Object))
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        // Short, so that verifiers that cache it learn of a rotation soon.
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(60),
        ]))
        .json(state.signing_keys.jwks())
}

/// This API's OpenAPI 3.1 document; Swagger UI at `/docs` reads it.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
#[get("/openapi.json")]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}
