//! Referrals: a care-team doctor refers a patient to another doctor, sharing a snapshot of the
//! record; the two doctors, and only they, follow it through its status machine.

mod escalation;
mod referral;
mod service;

pub use escalation::*;
pub use referral::*;
pub use service::*;
