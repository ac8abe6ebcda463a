//! CareHub's adapters: the domain's ports implemented on SQLite and PostgreSQL with sqlx,
//! password hashing with argon2id, and access tokens signed with Ed25519.
//!
//! Every repository is written once, as SQL both databases accept, and instantiated for each
//! backend by a macro; the contract suite in `tests/` runs every query on both.

pub mod appointments;
pub mod audit;
mod audit_sql;
mod backend;
pub mod care_teams;
pub mod db;
pub mod login_attempts;
pub mod medical;
pub mod notes;
pub mod notifications;
pub mod patients;
pub mod publish;
pub mod referrals;
pub mod refresh_tokens;
pub mod revoked_tokens;
pub mod schedules;
pub mod security;
pub mod socket_tickets;
mod sql_time;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use db::{Database, DatabaseError, Repositories};
