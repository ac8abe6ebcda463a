//! A patient's medical information and clinical notes: read by those the access policy lets,
//! written by their care-team doctors, and audited either way.

use std::sync::Arc;

use crate::access::{AccessError, Action, Actor, Grant};
use crate::audit::{AuditAction, Gatekeeper};
use crate::kernel::{Page, PageRequest, RepositoryError, ValidationErrors};
use crate::patients::{
    AppendNoteError, ClinicalNote, MedicalInfo, MedicalRecord, MedicalRepository, NewNote, NoteId,
    NoteKind, NoteRepository, PatientId,
};

/// Why reading or writing medical information or notes failed.
#[derive(Debug, thiserror::Error)]
pub enum MedicalError {
    /// The caller may not do this (403): their role never may, or they see the patient only
    /// through an emergency access, which grants reading alone.
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404): the two are not told apart.
    #[error("no such patient")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for MedicalError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// Medical information and clinical notes.
#[derive(Clone)]
pub struct MedicalService {
    gate: Gatekeeper,
    medical: Arc<dyn MedicalRepository>,
    notes: Arc<dyn NoteRepository>,
}

impl std::fmt::Debug for MedicalService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MedicalService").finish_non_exhaustive()
    }
}

impl MedicalService {
    pub fn new(
        gate: Gatekeeper,
        medical: Arc<dyn MedicalRepository>,
        notes: Arc<dyn NoteRepository>,
    ) -> Self {
        Self {
            gate,
            medical,
            notes,
        }
    }

    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn get_medical(
        &self,
        actor: &Actor,
        id: PatientId,
    ) -> Result<MedicalRecord, MedicalError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadMedical)
            .await?;
        let record = self.medical.get(id).await?;
        self.gate
            .allowed(actor, id, AuditAction::MedicalRead, basis)
            .await?;
        Ok(record)
    }

    /// Replaces a patient's medical information.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn put_medical(
        &self,
        grant: &Grant,
        info: MedicalInfo,
    ) -> Result<MedicalRecord, MedicalError> {
        let (basis, id) = grant.for_patient_action(Action::UpdateMedical)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        let event = self.gate.event(
            actor,
            Some(id),
            AuditAction::MedicalUpdate,
            Some(basis),
            now,
        );
        Ok(self
            .medical
            .put(id, &info, actor.user_id(), now, &event)
            .await?)
    }

    /// The patient's notes, newest first.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn list_notes(
        &self,
        actor: &Actor,
        id: PatientId,
        kind: Option<NoteKind>,
        page: PageRequest<NoteId>,
    ) -> Result<Page<ClinicalNote, NoteId>, MedicalError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadNotes)
            .await?;
        let notes = self.notes.list(id, kind, page).await?;
        self.gate
            .allowed(actor, id, AuditAction::NotesRead, basis)
            .await?;
        Ok(notes)
    }

    /// Writes a note, signed by the calling doctor.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (when `amends` names no note of this patient),
    /// `Internal`.
    pub async fn add_note(
        &self,
        grant: &Grant,
        new: NewNote,
    ) -> Result<ClinicalNote, MedicalError> {
        let (basis, id) = grant.for_patient_action(Action::WriteNote)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        let note = ClinicalNote {
            id: NoteId::generate(),
            patient_id: id,
            author_id: actor.user_id(),
            author_name: None,
            kind: new.kind,
            body: new.body,
            amends: new.amends,
            created_at: now,
            appointment_id: None,
        };
        let event = self
            .gate
            .event(actor, Some(id), AuditAction::NoteCreate, Some(basis), now);
        self.notes.append(&note, &event).await.map_err(|e| match e {
            AppendNoteError::UnknownAmended => {
                let mut errors = ValidationErrors::new();
                errors.add(
                    "amends",
                    "must be the id of an earlier note of this patient",
                );
                MedicalError::Invalid(errors)
            }
            // Only a note of an appointment can be its second visit note.
            AppendNoteError::VisitNoteExists => MedicalError::Internal(RepositoryError::new(
                "a note without an appointment was refused as a second visit note",
            )),
            AppendNoteError::Repository(e) => e.into(),
        })
    }
}
