//! The visit note: what the doctor writes of an appointment while the patient is seen or after,
//! one per appointment, kept with the patient's clinical notes.

use std::sync::Arc;

use crate::access::{AccessError, Action, Actor, Basis, Relationship};
use crate::audit::{AuditAction, Gatekeeper};
use crate::kernel::{RepositoryError, Text, ValidationErrors};
use crate::patients::{AppendNoteError, ClinicalNote, NoteId, NoteKind, NoteRepository};
use crate::scheduling::{Appointment, AppointmentId, AppointmentRepository, AppointmentStatus};

/// A validated visit note, before it is attributed and stored. A visit note never amends
/// another, so it has nothing to say which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVisitNote {
    pub body: Text,
    /// `None` for a consultation.
    pub kind: Option<NoteKind>,
}

/// Why a visit note was not written.
#[derive(Debug, thiserror::Error)]
pub enum VisitNoteError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// The doctor no longer sees the patient (404).
    #[error("no such patient")]
    NotFound,
    /// No such appointment, or another doctor's (404).
    #[error("no such appointment")]
    AppointmentNotFound,
    /// A visit note is written while or after the patient is seen (409).
    #[error("the appointment is {0}: a visit note needs it in_progress or completed")]
    VisitNotReady(AppointmentStatus),
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The appointment has its visit note already (409).
    #[error("the appointment has a visit note already")]
    VisitNoteExists,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for VisitNoteError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// Writes visit notes.
#[derive(Clone)]
pub struct VisitNoteService {
    gate: Gatekeeper,
    appointments: Arc<dyn AppointmentRepository>,
    notes: Arc<dyn NoteRepository>,
}

impl std::fmt::Debug for VisitNoteService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitNoteService").finish_non_exhaustive()
    }
}

impl VisitNoteService {
    pub fn new(
        gate: Gatekeeper,
        appointments: Arc<dyn AppointmentRepository>,
        notes: Arc<dyn NoteRepository>,
    ) -> Self {
        Self {
            gate,
            appointments,
            notes,
        }
    }

    /// Whether the access policy lets the actor write the visit note of the appointment: only
    /// its doctor may. A refusal is audited. Asked before a request's body is read.
    ///
    /// # Errors
    /// `Forbidden` (not a doctor), `AppointmentNotFound` (none, or another doctor's),
    /// `Internal`.
    pub async fn check_writer(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<(), VisitNoteError> {
        self.its_doctors_appointment(actor, id).await.map(|_| ())
    }

    /// The appointment, if the actor is its doctor.
    async fn its_doctors_appointment(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<Appointment, VisitNoteError> {
        let found = self.appointments.get(id).await?;
        let relationship = match &found {
            Some(a) if a.doctor_id == actor.user_id() => Relationship::Party,
            _ => Relationship::None,
        };
        self.gate
            .decide(
                actor,
                relationship,
                Action::WriteVisitNote,
                AuditAction::NoteCreate,
                found.as_ref().map(|a| a.patient_id),
            )
            .await
            .map_err(|e| e.hiding_as(VisitNoteError::AppointmentNotFound))?;
        found.ok_or(VisitNoteError::AppointmentNotFound)
    }

    /// Whether the visit note of the appointment may be written now: every check
    /// [`Self::write_visit_note`] makes before it looks at the note, and nothing written. A
    /// refusal is audited. Asked when a request's body is not a valid note, so that the caller
    /// is refused, or told the visit is not ready, before being told the note is invalid.
    ///
    /// # Errors
    /// As [`Self::write_visit_note`], but for `VisitNoteExists`.
    pub async fn check_writable(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<(), VisitNoteError> {
        self.writable(actor, id).await.map(|_| ())
    }

    /// The appointment and the basis on which the actor writes its note, if they may now.
    async fn writable(
        &self,
        actor: &Actor,
        id: AppointmentId,
    ) -> Result<(Appointment, Basis), VisitNoteError> {
        let appointment = self.its_doctors_appointment(actor, id).await?;
        if !matches!(
            appointment.status,
            AppointmentStatus::InProgress | AppointmentStatus::Completed
        ) {
            return Err(VisitNoteError::VisitNotReady(appointment.status));
        }
        let basis = self
            .gate
            .decide_on_patient(actor, appointment.patient_id, Action::WriteNote)
            .await?;
        Ok((appointment, basis))
    }

    /// Writes the visit note of an appointment, signed by its doctor, while the patient is
    /// seen or after: one note per appointment, a consultation unless the note says
    /// otherwise, and never an amendment.
    ///
    /// # Errors
    /// `Forbidden` (not a doctor; the doctor sees the patient only by emergency access),
    /// `AppointmentNotFound` (none, or another doctor's), `VisitNotReady`, `NotFound` (the
    /// doctor is no longer on the patient's care team), `VisitNoteExists`, `Internal`.
    pub async fn write_visit_note(
        &self,
        actor: &Actor,
        id: AppointmentId,
        new: NewVisitNote,
    ) -> Result<ClinicalNote, VisitNoteError> {
        let (appointment, basis) = self.writable(actor, id).await?;
        let patient_id = appointment.patient_id;
        let now = self.gate.now();
        let note = ClinicalNote {
            id: NoteId::generate(),
            patient_id,
            author_id: actor.user_id(),
            author_name: None,
            kind: Some(new.kind.unwrap_or(NoteKind::Consultation)),
            body: new.body,
            amends: None,
            created_at: now,
            appointment_id: Some(id),
        };
        let event = self.gate.event(
            actor,
            Some(patient_id),
            AuditAction::NoteCreate,
            Some(basis),
            now,
        );
        self.notes.append(&note, &event).await.map_err(|e| match e {
            AppendNoteError::VisitNoteExists => VisitNoteError::VisitNoteExists,
            AppendNoteError::UnknownAmended => {
                let mut errors = ValidationErrors::new();
                errors.add("amends", "a visit note cannot amend");
                VisitNoteError::Invalid(errors)
            }
            AppendNoteError::Repository(e) => e.into(),
        })
    }
}
