//! CareHub's pure domain: the rules of a clinic backend, free of web servers and databases.
//!
//! Adapters plug into the ports (`*Repository`, [`password::PasswordHasher`],
//! [`token::AccessTokenCodec`], ...) and the services here orchestrate them. Another Rust
//! service can reuse this crate as it is; enable the `mocks` feature for `mockall` doubles of
//! every port.

pub mod access;
pub mod appointment;
pub mod audit;
pub mod care_team;
pub mod clock;
pub mod error;
mod id;
pub mod identity;
pub mod medical;
pub mod note;
pub mod notification;
pub mod page;
pub mod password;
pub mod patient;
pub mod records;
pub mod referral;
pub mod schedule;
pub mod text;
pub mod throttle;
pub mod token;
pub mod user;
pub mod validation;

pub use error::RepositoryError;
