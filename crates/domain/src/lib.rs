//! CareHub's pure domain: the rules of a clinic backend, free of web servers and databases.
//!
//! Adapters plug into the ports (`*Repository`, [`password::PasswordHasher`],
//! [`token::AccessTokenCodec`], ...) and the services here orchestrate them. Another Rust
//! service can reuse this crate as it is; enable the `mocks` feature for `mockall` doubles of
//! every port.

pub mod clock;
pub mod error;
pub mod identity;
pub mod page;
pub mod password;
pub mod throttle;
pub mod token;
pub mod user;
pub mod validation;

pub use error::RepositoryError;
