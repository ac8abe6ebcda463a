//! Reports: figures about the clinic's activity over a period of days, for administrators.
//! They count and sum; they name doctors (staff) but never a patient.
//!
//! The storage counts and sums (the [`ReportRepository`] port); the service fills in what the
//! counts leave out (every status, rates) and works out each doctor's available time from their
//! weekly rules with the scheduling module's own rules, so that a report and the free slots
//! agree on when a doctor works.

mod period;
mod report;
mod repository;
mod service;

pub use period::*;
pub use report::*;
pub use repository::*;
pub use service::*;
