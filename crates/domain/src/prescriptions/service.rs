//! The prescriptions' use cases, each checked by the access policy and audited: a doctor of
//! the care team prescribes (against the recorded allergies), replaces, completes and stops;
//! the care team, a doctor under emergency access and the patient read.

use std::sync::Arc;

use super::{
    NewPrescription, PrescribeError, Prescription, PrescriptionChange, PrescriptionChangeError,
    PrescriptionRepository, PrescriptionStatus, PrescriptionTransitionError, PrescriptionView,
    expiry_job, expiry_key,
};
use crate::access::{AccessError, Action, Actor, Basis};
use crate::audit::{AuditAction, AuditEvent, Gatekeeper};
use crate::jobs::JobChanges;
use crate::kernel::{
    Page, PageRequest, PatientId, PrescriptionId, RepositoryError, Text, ValidationErrors,
};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher, Recipient,
    publish_committed,
};
use crate::patients::{MedicalRepository, PatientRepository};
use crate::prescriptions::AllergyMatch;

/// Why a prescription operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PrescriptionError {
    /// The caller may not do this (403).
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404).
    #[error("no such patient")]
    NotFound,
    /// No such prescription, or none the caller may see (404).
    #[error("no such prescription")]
    PrescriptionNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// The medication matches recorded allergies and no override reason was given (409).
    #[error("the medication matches {} recorded allergies", .0.len())]
    AllergyConflict(Vec<AllergyMatch>),
    /// The prescription is no longer active (409).
    #[error(transparent)]
    Transition(#[from] PrescriptionTransitionError),
    /// The prescription was ended meanwhile by someone else (409).
    #[error("the prescription was changed meanwhile; reload it")]
    Moved,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for PrescriptionError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<PrescribeError> for PrescriptionError {
    fn from(error: PrescribeError) -> Self {
        match error {
            PrescribeError::AllergyConflict(matches) => Self::AllergyConflict(matches),
        }
    }
}

impl From<PrescriptionChangeError> for PrescriptionError {
    fn from(error: PrescriptionChangeError) -> Self {
        match error {
            PrescriptionChangeError::Moved => Self::Moved,
            PrescriptionChangeError::Repository(e) => Self::Internal(e),
        }
    }
}

/// How a prescription ends at a doctor's hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The course is over.
    Complete,
    /// Stopped, for this reason.
    Stop(Text),
}

/// What the expiry job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryOutcome {
    Expired,
    /// Nothing to do, and why.
    Moot(&'static str),
}

/// Prescriptions.
#[derive(Clone)]
pub struct PrescriptionService {
    gate: Gatekeeper,
    prescriptions: Arc<dyn PrescriptionRepository>,
    medical: Arc<dyn MedicalRepository>,
    patients: Arc<dyn PatientRepository>,
    publisher: Arc<dyn NotificationPublisher>,
}

impl std::fmt::Debug for PrescriptionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrescriptionService")
            .finish_non_exhaustive()
    }
}

impl PrescriptionService {
    pub fn new(
        gate: Gatekeeper,
        prescriptions: Arc<dyn PrescriptionRepository>,
        medical: Arc<dyn MedicalRepository>,
        patients: Arc<dyn PatientRepository>,
        publisher: Arc<dyn NotificationPublisher>,
    ) -> Self {
        Self {
            gate,
            prescriptions,
            medical,
            patients,
            publisher,
        }
    }

    /// Refuses, audited, a caller whose role may never do `action` before their request is
    /// read.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn check_role(
        &self,
        actor: &Actor,
        action: Action,
        audit_as: AuditAction,
    ) -> Result<(), PrescriptionError> {
        Ok(self.gate.check_role(actor, action, audit_as).await?)
    }

    /// A doctor of the care team prescribes, checked against the patient's recorded allergies:
    /// a match is refused unless an override reason is given, and an override is audited on
    /// its own. A prescription that `replaces` another stops that one in the same change. The
    /// patient's account is told.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (a replaced prescription of another patient, or
    /// none), `AllergyConflict`, `Transition` (the replaced one is no longer active),
    /// `Internal`.
    pub async fn prescribe(
        &self,
        actor: &Actor,
        new: NewPrescription,
    ) -> Result<PrescriptionView, PrescriptionError> {
        let patient_id = new.patient_id;
        let basis = self
            .gate
            .decide_on_patient(actor, patient_id, Action::Prescribe)
            .await?;
        let mut replaced = match new.replaces {
            Some(id) => {
                let found = self.prescriptions.find(id).await?;
                let Some(found) = found.filter(|v| v.prescription.patient_id == patient_id) else {
                    let mut errors = ValidationErrors::new();
                    errors.add("replaces", "is not a prescription of this patient");
                    return Err(errors.into());
                };
                Some(found.prescription)
            }
            None => None,
        };
        let allergies = self.medical.get(patient_id).await?.info.allergies;
        let now = self.gate.now();
        let written = Prescription::write(new, actor.user_id(), &allergies, now)?;
        let mut jobs = JobChanges::add(expiry_job(&written).into_iter().collect());
        let mut audit = vec![self.gate.event(
            actor,
            Some(patient_id),
            AuditAction::PrescriptionCreate,
            Some(basis),
            now,
        )];
        if written.allergy_override.is_some() {
            audit.push(self.gate.event(
                actor,
                Some(patient_id),
                AuditAction::PrescriptionAllergyOverride,
                Some(basis),
                now,
            ));
        }
        if let Some(old) = replaced.as_mut() {
            old.replace_with(written.id, actor.user_id(), now)?;
            jobs.cancel.push(expiry_key(old.id));
            audit.push(self.gate.event(
                actor,
                Some(patient_id),
                AuditAction::PrescriptionEnd,
                Some(basis),
                now,
            ));
        }
        let notices = self.created_notices(&written).await?;
        let stored = self
            .prescriptions
            .save(PrescriptionChange {
                written: Some(&written),
                ended: replaced.as_ref(),
                audit: &audit,
                notifications: &notices,
                jobs: &jobs,
                at: now,
            })
            .await?;
        publish_committed(self.publisher.as_ref(), &stored).await;
        // Read back for the patient's summary and the doctor's name; the creation's own event
        // covers it.
        self.prescriptions
            .find(written.id)
            .await?
            .ok_or_else(|| RepositoryError::new("a prescription just written is missing").into())
    }

    /// The patient's account is told of a new prescription, if they have one: its id and a
    /// title, never the medication.
    async fn created_notices(
        &self,
        prescription: &Prescription,
    ) -> Result<Vec<NewNotification>, RepositoryError> {
        let patient = self.patients.find(prescription.patient_id).await?;
        Ok(patient
            .and_then(|p| p.details.user_id)
            .map(|user| NewNotification {
                recipient: Recipient::User(user),
                kind: NotificationKind::PrescriptionCreated,
                data: NotificationData {
                    title: "You have a new prescription".to_owned(),
                    patient_id: Some(*prescription.patient_id.as_uuid()),
                    prescription_id: Some(*prescription.id.as_uuid()),
                    ..NotificationData::default()
                },
            })
            .into_iter()
            .collect())
    }

    /// The prescription, if the caller may do `action` on its patient; a refusal is audited as
    /// `audit_as`, and a prescription the caller may not see is not found.
    async fn authorized(
        &self,
        actor: &Actor,
        id: PrescriptionId,
        action: Action,
        audit_as: AuditAction,
    ) -> Result<(PrescriptionView, Basis), PrescriptionError> {
        if !Gatekeeper::role_may_ever(actor, action) {
            return Err(self
                .gate
                .deny(actor, None, audit_as, PrescriptionError::Forbidden)
                .await);
        }
        let Some(view) = self.prescriptions.find(id).await? else {
            return Err(self
                .gate
                .deny(
                    actor,
                    None,
                    audit_as,
                    PrescriptionError::PrescriptionNotFound,
                )
                .await);
        };
        let basis = self
            .gate
            .decide_on_patient_as(actor, view.prescription.patient_id, action, Some(audit_as))
            .await
            .map_err(|e| e.hiding_as(PrescriptionError::PrescriptionNotFound))?;
        Ok((view, basis))
    }

    /// One prescription; the read is audited.
    ///
    /// # Errors
    /// `Forbidden`, `PrescriptionNotFound`, `Internal`.
    pub async fn get(
        &self,
        actor: &Actor,
        id: PrescriptionId,
    ) -> Result<PrescriptionView, PrescriptionError> {
        let (view, basis) = self
            .authorized(
                actor,
                id,
                Action::ReadPrescriptions,
                AuditAction::PrescriptionRead,
            )
            .await?;
        self.gate
            .allowed(
                actor,
                view.prescription.patient_id,
                AuditAction::PrescriptionRead,
                basis,
            )
            .await?;
        Ok(view)
    }

    /// The patient's prescriptions, every status or one; the listing is audited.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn list(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        status: Option<PrescriptionStatus>,
        page: PageRequest<PrescriptionId>,
    ) -> Result<Page<PrescriptionView, PrescriptionId>, PrescriptionError> {
        let basis = self
            .gate
            .decide_on_patient_as(
                actor,
                patient_id,
                Action::ReadPrescriptions,
                Some(AuditAction::PrescriptionList),
            )
            .await?;
        let page = self.prescriptions.list(patient_id, status, page).await?;
        self.gate
            .allowed(actor, patient_id, AuditAction::PrescriptionList, basis)
            .await?;
        Ok(page)
    }

    /// A doctor of the care team completes or stops an active prescription.
    ///
    /// # Errors
    /// `Forbidden`, `PrescriptionNotFound`, `Transition`, `Internal`.
    pub async fn end(
        &self,
        actor: &Actor,
        id: PrescriptionId,
        ending: Ending,
    ) -> Result<PrescriptionView, PrescriptionError> {
        let (mut view, basis) = self
            .authorized(actor, id, Action::Prescribe, AuditAction::PrescriptionEnd)
            .await?;
        let now = self.gate.now();
        let prescription = &mut view.prescription;
        match ending {
            Ending::Complete => prescription.complete(actor.user_id(), now)?,
            Ending::Stop(reason) => prescription.stop(reason, actor.user_id(), now)?,
        }
        let audit = [self.gate.event(
            actor,
            Some(prescription.patient_id),
            AuditAction::PrescriptionEnd,
            Some(basis),
            now,
        )];
        self.prescriptions
            .save(PrescriptionChange {
                written: None,
                ended: Some(prescription),
                audit: &audit,
                notifications: &[],
                jobs: &JobChanges {
                    cancel: vec![expiry_key(prescription.id)],
                    add: Vec::new(),
                },
                at: now,
            })
            .await?;
        Ok(view)
    }

    /// The expiry job: marks the prescription expired if it is still active past its last
    /// day. Not audited: no one acts on the record.
    ///
    /// # Errors
    /// [`RepositoryError`]: the job retries.
    pub async fn expire(&self, id: PrescriptionId) -> Result<ExpiryOutcome, RepositoryError> {
        let Some(mut view) = self.prescriptions.find(id).await? else {
            return Ok(ExpiryOutcome::Moot("the prescription is gone"));
        };
        let now = self.gate.now();
        if let Err(why) = view.prescription.expire(now) {
            return Ok(ExpiryOutcome::Moot(match why {
                PrescriptionTransitionError::NotActive(_) => "the prescription ended already",
                PrescriptionTransitionError::NotDue => "its last day is not over",
            }));
        }
        let saved = self
            .prescriptions
            .save(PrescriptionChange {
                written: None,
                ended: Some(&view.prescription),
                audit: &[] as &[AuditEvent],
                notifications: &[],
                jobs: &JobChanges::default(),
                at: now,
            })
            .await;
        match saved {
            Ok(_) => Ok(ExpiryOutcome::Expired),
            Err(PrescriptionChangeError::Moved) => {
                Ok(ExpiryOutcome::Moot("the prescription ended meanwhile"))
            }
            Err(PrescriptionChangeError::Repository(e)) => Err(e),
        }
    }
}
