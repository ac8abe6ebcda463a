//! CareHub's pure domain: the rules of a clinic backend, free of web servers and databases.
//!
//! One module per concept, each with its model, its ports and its rules, over a small shared
//! [`kernel`]. Adapters plug into the ports (`*Repository`, [`identity::PasswordHasher`],
//! [`identity::AccessTokenCodec`], ...) and the services here orchestrate them. Another Rust
//! service can reuse this crate as it is; enable the `mocks` feature for `mockall` doubles of
//! every port.

pub mod access;
pub mod audit;
pub mod calls;
pub mod feedback;
pub mod identity;
pub mod jobs;
pub mod kernel;
pub mod lab;
pub mod messages;
pub mod notifications;
pub mod patients;
pub mod prescriptions;
pub mod referrals;
pub mod relay;
pub mod reports;
pub mod scheduling;

#[cfg(test)]
mod test_support;
