//! Patients: the record (profile, medical information, clinical notes), the care team and
//! emergency access.

mod care_team;
mod medical;
mod notes;
mod patient;

pub use care_team::*;
pub use medical::*;
pub use notes::*;
pub use patient::*;
