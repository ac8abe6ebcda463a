//! Feedback's use cases: the patient rates a completed appointment of their own; a doctor
//! reads their own feedback; administrators read anyone's and hide comments.

use std::sync::Arc;

use super::{
    CreateFeedbackError, DoctorFeedback, FEEDBACK_WINDOW, Feedback, FeedbackRepository, Hidden,
    Rating,
};
use crate::access::{AccessError, Action, Actor, Basis, Relationship};
use crate::audit::{AuditAction, Gatekeeper};
use crate::identity::{Role, UserId};
use crate::kernel::{AppointmentId, RepositoryError, Text, ValidationErrors};
use crate::scheduling::{AppointmentRepository, AppointmentStatus};

/// Why a feedback operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// No such appointment, or none of the caller's (404).
    #[error("no such appointment")]
    AppointmentNotFound,
    /// No feedback on this appointment (404).
    #[error("no feedback on this appointment")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Only a completed appointment is rated (409).
    #[error("only a completed appointment can be rated")]
    NotCompleted,
    /// More than 30 days after it was completed (422).
    #[error("an appointment can be rated within 30 days of its completion")]
    TooLate,
    /// The appointment was rated already (409).
    #[error("the appointment was rated already")]
    Duplicate,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for FeedbackError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::AppointmentNotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// Feedback on appointments.
#[derive(Clone)]
pub struct FeedbackService {
    gate: Gatekeeper,
    feedback: Arc<dyn FeedbackRepository>,
    appointments: Arc<dyn AppointmentRepository>,
}

impl std::fmt::Debug for FeedbackService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackService").finish_non_exhaustive()
    }
}

impl FeedbackService {
    pub fn new(
        gate: Gatekeeper,
        feedback: Arc<dyn FeedbackRepository>,
        appointments: Arc<dyn AppointmentRepository>,
    ) -> Self {
        Self {
            gate,
            feedback,
            appointments,
        }
    }

    /// Refuses, audited, a caller who may never rate an appointment, before their request is
    /// read.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_may_rate(&self, actor: &Actor) -> Result<(), FeedbackError> {
        Ok(self
            .gate
            .check_role(actor, Action::GiveFeedback, AuditAction::FeedbackCreate)
            .await?)
    }

    /// The patient rates one of their completed appointments, once, within 30 days of its
    /// completion.
    ///
    /// # Errors
    /// `Forbidden`, `AppointmentNotFound` (none, or not the caller's), `NotCompleted`,
    /// `TooLate`, `Duplicate`, `Internal`.
    pub async fn give(
        &self,
        actor: &Actor,
        appointment_id: AppointmentId,
        rating: Rating,
        comment: Option<Text>,
    ) -> Result<Feedback, FeedbackError> {
        self.check_may_rate(actor).await?;
        let Some(appointment) = self.appointments.get(appointment_id).await? else {
            return Err(self
                .gate
                .deny(
                    actor,
                    None,
                    AuditAction::FeedbackCreate,
                    FeedbackError::AppointmentNotFound,
                )
                .await);
        };
        let basis = self
            .gate
            .decide_on_patient_as(
                actor,
                appointment.patient_id,
                Action::GiveFeedback,
                Some(AuditAction::FeedbackCreate),
            )
            .await?;
        if appointment.status != AppointmentStatus::Completed {
            return Err(FeedbackError::NotCompleted);
        }
        let now = self.gate.now();
        // A completed appointment changes no more: its last change is its completion.
        if now.duration_since(appointment.updated_at) > FEEDBACK_WINDOW {
            return Err(FeedbackError::TooLate);
        }
        let feedback = Feedback {
            appointment_id,
            doctor_id: appointment.doctor_id,
            patient_id: appointment.patient_id,
            rating,
            comment,
            created_at: now,
            hidden: None,
        };
        let event = self.gate.event(
            actor,
            Some(appointment.patient_id),
            AuditAction::FeedbackCreate,
            Some(basis),
            now,
        );
        match self.feedback.create(&feedback, &event).await {
            Ok(()) => Ok(feedback),
            Err(CreateFeedbackError::Duplicate) => Err(FeedbackError::Duplicate),
            Err(CreateFeedbackError::Repository(e)) => Err(e.into()),
        }
    }

    /// A doctor's feedback: their own, for a doctor (with hidden comments left out);
    /// anyone's, for an administrator.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn of_doctor(
        &self,
        actor: &Actor,
        doctor_id: UserId,
    ) -> Result<DoctorFeedback, FeedbackError> {
        let relationship = Relationship::own_if(actor.user_id() == doctor_id);
        actor.permit(Action::ReadFeedback, relationship)?;
        let mut items = self.feedback.for_doctor(doctor_id).await?;
        if actor.role() != Role::Admin {
            for item in &mut items {
                if item.hidden.is_some() {
                    item.comment = None;
                }
            }
        }
        Ok(DoctorFeedback::of(doctor_id, items))
    }

    /// An administrator hides the comment of the feedback on an appointment, with a reason;
    /// audited.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn hide(
        &self,
        actor: &Actor,
        appointment_id: AppointmentId,
        reason: Text,
    ) -> Result<Feedback, FeedbackError> {
        actor.permit(Action::ModerateFeedback, Relationship::None)?;
        let Some(mut feedback) = self.feedback.find(appointment_id).await? else {
            return Err(FeedbackError::NotFound);
        };
        let now = self.gate.now();
        let hidden = Hidden {
            reason,
            by: actor.user_id(),
            at: now,
        };
        let event = self.gate.event(
            actor,
            Some(feedback.patient_id),
            AuditAction::FeedbackHide,
            Some(Basis::Role),
            now,
        );
        self.feedback.hide(appointment_id, &hidden, &event).await?;
        feedback.hidden = Some(hidden);
        Ok(feedback)
    }
}
