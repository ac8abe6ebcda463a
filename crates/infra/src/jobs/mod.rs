//! The job queue on SQLite and PostgreSQL: jobs as rows, enqueued in the transactions of the
//! changes that cause them, claimed for a lease.
//!
//! Claiming differs between the backends, and is the only SQL that does. On PostgreSQL, any
//! number of instances claim at once: `FOR UPDATE SKIP LOCKED` lets each take rows no other
//! claim holds, without waiting. On SQLite, one instance runs workers, and a claim is one
//! `BEGIN IMMEDIATE` transaction, so two claims run one after the other. On both, every change
//! a worker makes afterwards is conditional on the job's lease, so a worker that lost its job
//! to an expired lease changes nothing.

mod queue;
mod row;

pub(crate) use queue::InsertJobs;
pub use queue::SqlJobQueue;
