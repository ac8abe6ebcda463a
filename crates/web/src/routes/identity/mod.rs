//! Identity: accounts and who is calling. Registration, sign-in (JSON and the OAuth 2.0 token
//! endpoint), refresh and sign-out ([`auth`]); the signed-in user and their own patient record
//! ([`users`]); account administration ([`accounts`]); and the views of accounts and tokens
//! ([`views`]).

pub mod accounts;
pub mod auth;
pub mod users;
pub mod views;

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers sign-in and the signed-in user's routes. Account administration registers
/// separately ([`accounts::services`]), after the clinic's resources.
pub fn services(cfg: &mut ServiceConfig) {
    cfg.service(auth::register)
        .service(auth::login)
        .service(auth::token)
        .service(auth::refresh)
        .service(auth::logout)
        .service(users::me)
        .service(users::my_patient_record);
}
