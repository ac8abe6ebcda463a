//! Prescriptions: what a doctor of the care team prescribes, checked against the patient's
//! recorded allergies before it is written.
//!
//! This concept starts with its allergy check ([`allergy_matches`]); the prescription itself,
//! its port and its service follow.

mod allergy;

pub use allergy::*;
