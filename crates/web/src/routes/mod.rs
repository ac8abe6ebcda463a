//! The API's resources, one module per domain concept, each holding its handlers, the request
//! bodies they read and the views they answer with, and a `services` function registering its
//! routes. This is the one place that registers them all.
//!
//! A new concept's routes go in `routes/<concept>/` (or `routes/<concept>.rs` when it is one
//! small file), named as in the domain, and are registered below.

pub mod app;
pub mod audit;
pub mod calls;
pub mod feedback;
pub mod identity;
pub mod jobs;
pub mod lab;
pub mod messages;
pub mod notifications;
pub mod operations;
pub mod patients;
pub mod prescriptions;
pub mod referrals;
pub mod reports;
pub mod scheduling;

use utoipa_actix_web::service_config::ServiceConfig;

/// Everything under `/api/v1`.
pub fn api_v1(cfg: &mut ServiceConfig) {
    identity::services(cfg);
    scheduling::doctors::services(cfg);
    patients::services(cfg);
    referrals::services(cfg);
    scheduling::appointments::services(cfg);
    notifications::services(cfg);
    identity::accounts::services(cfg);
    audit::services(cfg);
    jobs::services(cfg);
    reports::services(cfg);
    lab::services(cfg);
    prescriptions::services(cfg);
    messages::services(cfg);
    feedback::services(cfg);
    calls::services(cfg);
    patients::emergency_access::admin_services(cfg);
    operations::services(cfg);
}

/// Routes at the root: the public keys and the metrics.
pub fn root(cfg: &mut ServiceConfig) {
    operations::root_services(cfg);
}
