//! CareHub's HTTP adapter: the REST API, its OpenAPI document and Swagger UI, and the
//! server's wiring. The `carehub` binary is a thin command line over [`startup::Application`].

pub mod cli;
pub mod client;
pub mod clinic_time;
pub mod demo;
pub mod ecg_cli;
pub mod edges;
pub mod extract;
pub mod hub;
pub mod jobs;
pub mod keys_cli;
pub mod openapi;
pub mod paging;
pub mod problem;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod upload;

pub use actix_web::dev::ServerHandle;
pub use settings::Settings;
pub use startup::Application;
