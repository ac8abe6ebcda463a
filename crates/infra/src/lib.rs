//! CareHub's adapters: the domain's ports implemented on SQLite and PostgreSQL with sqlx,
//! password hashing with argon2id, and access tokens signed with Ed25519.
//!
//! One module per concept, named as in the domain: `identity`, `audit`, `patients`,
//! `referrals`, `notifications` and `scheduling`, over `db`, which connects to either database
//! and holds what the backends share. Every repository is written once, as SQL both databases
//! accept, in one implementation generic over the backend (see `db::backend`), and wired for
//! SQLite and for PostgreSQL in `Repositories`; the contract suite in `tests/` runs every query
//! on both.

pub mod audit;
pub mod calls;
pub mod db;
pub mod feedback;
pub mod identity;
pub mod jobs;
pub mod lab;
pub mod messages;
pub mod notifications;
pub mod patients;
pub mod prescriptions;
pub mod referrals;
pub mod relay;
pub mod reports;
mod repositories;
pub mod scheduling;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{Database, DatabaseError};
pub use repositories::Repositories;
