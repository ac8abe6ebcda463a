//! Prescriptions: what a doctor of the care team prescribes, checked against the patient's
//! recorded allergies before it is written.
//!
//! So far: the allergy check ([`allergy_matches`]) and the prescription with its life
//! ([`Prescription`]); its port and its service follow.

mod allergy;
mod prescription;

pub use allergy::*;
pub use prescription::*;
