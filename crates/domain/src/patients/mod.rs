//! Patients: the record (profile, medical information, clinical notes), the care team and
//! emergency access.

mod care_team;
mod care_team_service;
mod emergency_access_service;
mod medical;
mod medical_service;
mod notes;
mod patient;
mod patient_service;
mod search;

pub use care_team::*;
pub use care_team_service::*;
pub use emergency_access_service::*;
pub use medical::*;
pub use medical_service::*;
pub use notes::*;
pub use patient::*;
pub use patient_service::*;
pub use search::*;

#[cfg(test)]
mod tests;
