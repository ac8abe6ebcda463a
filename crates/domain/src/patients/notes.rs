//! Clinical notes: written by doctors, immutable once written. A correction is a new note that
//! amends an earlier one.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::identity::{FullName, UserId};
use crate::kernel::{
    AppointmentId, Page, PageRequest, RepositoryError, Text, string_enum, time_ordered_id,
};
use crate::patients::PatientId;

/// The longest note body, in characters.
pub const MAX_NOTE_CHARS: usize = 20_000;

time_ordered_id!(
    /// A note's identifier; time-ordered.
    NoteId
);

string_enum!(
    /// What a note records.
    NoteKind, "note kind" {
        /// A routine check-up: a ward's check-up history is the notes of this kind.
        CheckUp => "check_up",
        /// A remark on the record.
        Annotation => "annotation",
        /// Progress of a treatment.
        Progress => "progress",
        /// A consultation's findings.
        Consultation => "consultation",
        /// A discharge summary.
        Discharge => "discharge",
    }
);

/// A written note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClinicalNote {
    pub id: NoteId,
    pub patient_id: PatientId,
    pub author_id: UserId,
    /// Filled in when read back.
    pub author_name: Option<FullName>,
    pub kind: Option<NoteKind>,
    pub body: Text,
    /// The earlier note of the same patient this one corrects.
    pub amends: Option<NoteId>,
    pub created_at: Timestamp,
    /// The appointment this is the visit note of (at most one note per appointment).
    pub appointment_id: Option<AppointmentId>,
}

/// A validated new note, before it is attributed and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    pub body: Text,
    pub kind: Option<NoteKind>,
    /// The earlier note this one corrects; it must be a note of the same patient, which only
    /// the store can tell.
    pub amends: Option<NoteId>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendNoteError {
    /// `amends` names no note of this patient.
    #[error("the amended note is not a note of this patient")]
    UnknownAmended,
    /// The appointment has a visit note already.
    #[error("the appointment has a visit note already")]
    VisitNoteExists,
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Stores notes. There is no way to change or delete one.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NoteRepository: Send + Sync {
    /// Appends a note with its audit event, in one transaction, and returns it as stored.
    ///
    /// # Errors
    /// [`AppendNoteError::UnknownAmended`] when `amends` names no note of the same patient;
    /// [`AppendNoteError::VisitNoteExists`] when `appointment_id` names an appointment that has
    /// a note already (nothing written).
    async fn append(
        &self,
        note: &ClinicalNote,
        audit: &AuditEvent,
    ) -> Result<ClinicalNote, AppendNoteError>;

    /// The patient's notes, newest first, optionally of one kind.
    ///
    /// # Errors
    /// [`RepositoryError`].
    async fn list(
        &self,
        patient_id: PatientId,
        kind: Option<NoteKind>,
        page: PageRequest<NoteId>,
    ) -> Result<Page<ClinicalNote, NoteId>, RepositoryError>;
}
