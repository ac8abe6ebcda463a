//! Registering patients, finding them and keeping their profile: every attempt goes through
//! the access policy, and every one on a patient, allowed or refused, is audited.

use std::sync::Arc;

use crate::access::{AccessError, Action, Actor, Basis, Grant, SearchAccess, search_scope};
use crate::audit::{AuditAction, AuditEvent, Gatekeeper};
use crate::identity::{Role, UserRepository};
use crate::kernel::{Page, PageRequest, RepositoryError, ValidationErrors};
use crate::patients::{
    CareTeamMember, MembershipId, Mrn, Patient, PatientDetails, PatientId, PatientQuery,
    PatientRepository, PatientSummary, SavePatientError, SearchScope, SearchText,
};

/// How many times registration draws a new record number when the drawn one is taken.
pub(crate) const MRN_ATTEMPTS: usize = 8;

/// Why a patient operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// The caller may not do this (403): their role never may, or they see the patient only
    /// through an emergency access, which grants reading alone.
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404): the two are not told apart.
    #[error("no such patient")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("another patient holds this {system} identifier")]
    IdentifierTaken { system: String },
    #[error("the account is linked to another patient")]
    UserLinked,
    /// The patient changed since it was read (409).
    #[error("it was changed concurrently; read it again and retry")]
    Stale,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for PatientError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<SavePatientError> for PatientError {
    fn from(error: SavePatientError) -> Self {
        match error {
            SavePatientError::IdentifierTaken { system } => Self::IdentifierTaken { system },
            SavePatientError::UserLinked => Self::UserLinked,
            SavePatientError::Stale => Self::Stale,
            SavePatientError::MrnTaken => Self::Internal(RepositoryError::new(
                "no free medical record number after several draws",
            )),
            SavePatientError::Repository(e) => Self::Internal(e),
        }
    }
}

/// Registers patients, finds them and keeps their profiles.
#[derive(Clone)]
pub struct PatientService {
    gate: Gatekeeper,
    patients: Arc<dyn PatientRepository>,
    users: Arc<dyn UserRepository>,
}

impl std::fmt::Debug for PatientService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientService").finish_non_exhaustive()
    }
}

impl PatientService {
    pub fn new(
        gate: Gatekeeper,
        patients: Arc<dyn PatientRepository>,
        users: Arc<dyn UserRepository>,
    ) -> Self {
        Self {
            gate,
            patients,
            users,
        }
    }

    /// A linked account must be a patient's.
    async fn check_linked_user(&self, details: &PatientDetails) -> Result<(), PatientError> {
        let Some(user_id) = details.user_id else {
            return Ok(());
        };
        match self.users.find_by_id(user_id).await? {
            Some(user) if user.role == Role::Patient => Ok(()),
            _ => {
                let mut errors = ValidationErrors::new();
                errors.add("user_id", "must be the id of a patient's account");
                Err(errors.into())
            }
        }
    }

    /// Registers a patient. A doctor who registers one joins their care team.
    ///
    /// # Errors
    /// `Forbidden`, `Invalid` (a linked account that is not a patient's), `IdentifierTaken`,
    /// `UserLinked`, `Internal`.
    pub async fn create_patient(
        &self,
        grant: &Grant,
        details: PatientDetails,
    ) -> Result<Patient, PatientError> {
        let (basis, _) = grant.for_action(Action::CreatePatient)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        self.check_linked_user(&details).await?;
        let id = PatientId::generate();
        let first_member = (actor.role() == Role::Doctor).then(|| CareTeamMember {
            id: MembershipId::generate(),
            patient_id: id,
            doctor_id: actor.user_id(),
            doctor_name: None,
            started_at: now,
            ended_at: None,
            added_by: actor.user_id(),
            ended_by: None,
            referral_id: None,
            appointment_id: None,
        });
        let event = self.gate.event(
            actor,
            Some(id),
            AuditAction::PatientCreate,
            Some(basis),
            now,
        );
        let mut patient = Patient {
            id,
            mrn: Mrn::random(),
            details,
            created_at: now,
            updated_at: now,
        };
        for _ in 1..MRN_ATTEMPTS {
            match self
                .patients
                .create(&patient, first_member.as_slice(), &event)
                .await
            {
                Err(SavePatientError::MrnTaken) => patient.mrn = Mrn::random(),
                other => return other.map(|()| patient).map_err(Into::into),
            }
        }
        self.patients
            .create(&patient, first_member.as_slice(), &event)
            .await?;
        Ok(patient)
    }

    /// Patients the caller may see, optionally matching `text`. Each patient listed is audited.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn search_patients(
        &self,
        grant: &Grant,
        text: Option<SearchText>,
        page: PageRequest<PatientId>,
    ) -> Result<Page<PatientSummary, PatientId>, PatientError> {
        let (basis, _) = grant.for_action(Action::SearchPatients)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        let scope = match search_scope(actor.role()) {
            Some(SearchAccess::All) => SearchScope::All,
            Some(SearchAccess::CareTeamOrExactMatch) => SearchScope::Doctor {
                doctor_id: actor.user_id(),
                at: now,
            },
            None => return Err(PatientError::Forbidden),
        };
        let found = self
            .patients
            .search(&PatientQuery { text, scope }, page)
            .await?;
        let events: Vec<AuditEvent> = found
            .items
            .iter()
            .map(|p| {
                self.gate.event(
                    actor,
                    Some(p.id),
                    AuditAction::PatientList,
                    Some(basis),
                    now,
                )
            })
            .collect();
        if !events.is_empty() {
            self.gate.record(events).await?;
        }
        Ok(found)
    }

    /// A patient's profile.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn get_patient(&self, actor: &Actor, id: PatientId) -> Result<Patient, PatientError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadProfile)
            .await?;
        let patient = self
            .patients
            .find(id)
            .await?
            .ok_or(PatientError::NotFound)?;
        self.gate
            .allowed(actor, id, AuditAction::PatientRead, basis)
            .await?;
        Ok(patient)
    }

    /// The record linked to the calling patient's own account.
    ///
    /// # Errors
    /// `Forbidden` for staff, `NotFound` when no record is linked yet, `Internal`.
    pub async fn own_record(&self, actor: &Actor) -> Result<Patient, PatientError> {
        self.gate
            .check_role(actor, Action::FindOwnRecord, AuditAction::PatientRead)
            .await?;
        let patient = self
            .patients
            .find_by_user(actor.user_id())
            .await?
            .ok_or(PatientError::NotFound)?;
        self.gate
            .allowed(
                actor,
                patient.id,
                AuditAction::PatientRead,
                Basis::OwnRecord,
            )
            .await?;
        Ok(patient)
    }

    /// Changes a patient's profile: `edit` receives the current details and returns them
    /// changed, or the errors that keep it from changing them (answered as `Invalid`, and
    /// nothing is saved). The result is saved against the version read.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (also a newly linked account that is not a patient's),
    /// `IdentifierTaken`, `UserLinked`, `Stale`, `Internal`.
    pub async fn update_patient<F>(&self, grant: &Grant, edit: F) -> Result<Patient, PatientError>
    where
        F: FnOnce(&PatientDetails) -> Result<PatientDetails, ValidationErrors> + Send,
    {
        let (basis, id) = grant.for_patient_action(Action::UpdateProfile)?;
        let actor = &grant.actor();
        let current = self
            .patients
            .find(id)
            .await?
            .ok_or(PatientError::NotFound)?;
        let now = self.gate.now();
        let details = edit(&current.details)?;
        if details.user_id != current.details.user_id {
            self.check_linked_user(&details).await?;
        }
        let event = self.gate.event(
            actor,
            Some(id),
            AuditAction::PatientUpdate,
            Some(basis),
            now,
        );
        Ok(self
            .patients
            .update(id, &details, current.updated_at, now, &event)
            .await?)
    }
}
