//! Patients' records on SQLite and PostgreSQL: the patients themselves, their medical
//! information, clinical notes, care teams and emergency accesses, each change written with its
//! audit event.

mod care_team;
mod medical;
mod notes;
mod patient;

pub(crate) use care_team::{INSERT_MEMBER, INSERT_MEMBER_UNLESS_OPEN, InsertMember};
pub use care_team::{SqlCareTeamRepository, SqlEmergencyAccessRepository};
pub use medical::SqlMedicalRepository;
pub use notes::SqlNoteRepository;
pub use patient::SqlPatientRepository;
pub(crate) use patient::SummaryRow;
