//! The patient-record use cases: every one asks the access policy first, and every attempt on
//! a patient's data, allowed or denied, leaves an audit event.

use std::sync::Arc;

use jiff::tz::TimeZone;
use time::Duration;

use crate::access::{
    AccessError, AccessFactsRepository, Action, Actor, Basis, Grant, SearchAccess, search_scope,
};
use crate::audit::Gatekeeper;
use crate::audit::{AuditAction, AuditEntry, AuditEvent, AuditEventId, AuditFilter, AuditLog};
use crate::identity::InternalError;
use crate::identity::{Role, UserId, UserRepository};
use crate::kernel::Clock;
use crate::kernel::RepositoryError;
use crate::kernel::ValidationErrors;
use crate::kernel::{Page, PageRequest};
use crate::notifications::{
    NewNotification, Notification, NotificationData, NotificationKind, NotificationPublisher,
    Recipient,
};
use crate::patients::{
    AddMemberError, CareTeamMember, CareTeamRepository, EMERGENCY_ACCESS_DURATION, EmergencyAccess,
    EmergencyAccessFilter, EmergencyAccessId, EmergencyAccessRepository, EmergencyReason,
    MembershipId,
};
use crate::patients::{AppendNoteError, ClinicalNote, NoteId, NoteInput, NoteKind, NoteRepository};
use crate::patients::{MedicalInput, MedicalRecord, MedicalRepository};
use crate::patients::{
    Mrn, Patient, PatientDetails, PatientId, PatientInput, PatientQuery, PatientRepository,
    PatientSummary, SavePatientError, SearchScope, SearchText,
};
use crate::referrals::{ReferralRepository, TransitionError};
use crate::scheduling::{AppointmentRepository, AppointmentStatus, Conflict, StatusChangeError};
use crate::scheduling::{ScheduleRepository, Unavailable};

/// How many times registration draws a new record number when the drawn one is taken.
const MRN_ATTEMPTS: usize = 8;

/// Why a record operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
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
    /// The patient or the appointment changed since it was read (409).
    #[error("it was changed concurrently; read it again and retry")]
    Stale,
    #[error("the doctor is already on the care team")]
    AlreadyMember,
    #[error("the doctor is not on the care team")]
    NotMember,
    /// No such referral, or none the caller is a party to (404).
    #[error("no such referral")]
    ReferralNotFound,
    /// A referral status change the state machine refuses: `NotFrom` is a conflict with the
    /// referral's current status (409), `WrongParty` a change the caller's side may never ask
    /// for (403).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// No active doctor has this id (404).
    #[error("no such doctor")]
    DoctorNotFound,
    /// No such appointment, or none the caller may see (404).
    #[error("no such appointment")]
    AppointmentNotFound,
    /// The doctor has no such time off (404).
    #[error("no such time off")]
    TimeOffNotFound,
    /// The doctor cannot be booked then (422).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// Active appointments are in the way (409): every one, ids and times only.
    #[error("{} appointment(s) overlap", .0.len())]
    Conflicts(Vec<Conflict>),
    /// A status change the rules refuse: `Role` 403, `NotFrom` 409, the others 422.
    #[error(transparent)]
    AppointmentChange(#[from] StatusChangeError),
    /// Only a booked appointment moves (409).
    #[error("the appointment is {0}: only a booked appointment can be rescheduled")]
    NotReschedulable(AppointmentStatus),
    /// A visit note is written while or after the patient is seen (409).
    #[error("the appointment is {0}: a visit note needs it in_progress or completed")]
    VisitNotReady(AppointmentStatus),
    /// The appointment has its visit note already (409).
    #[error("the appointment has a visit note already")]
    VisitNoteExists,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<AccessError> for RecordsError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => e.into(),
        }
    }
}

impl From<RepositoryError> for RecordsError {
    fn from(error: RepositoryError) -> Self {
        Self::Internal(error.into())
    }
}

impl From<SavePatientError> for RecordsError {
    fn from(error: SavePatientError) -> Self {
        match error {
            SavePatientError::IdentifierTaken { system } => Self::IdentifierTaken { system },
            SavePatientError::UserLinked => Self::UserLinked,
            SavePatientError::Stale => Self::Stale,
            SavePatientError::MrnTaken => Self::Internal(
                RepositoryError::new("no free medical record number after several draws").into(),
            ),
            SavePatientError::Repository(e) => e.into(),
        }
    }
}

/// The ports the record use cases need.
#[derive(Clone)]
pub struct RecordsPorts {
    /// How users relate to patients, for the access policy.
    pub access_facts: Arc<dyn AccessFactsRepository>,
    pub patients: Arc<dyn PatientRepository>,
    pub medical: Arc<dyn MedicalRepository>,
    pub notes: Arc<dyn NoteRepository>,
    pub care_teams: Arc<dyn CareTeamRepository>,
    pub emergency_accesses: Arc<dyn EmergencyAccessRepository>,
    pub audit: Arc<dyn AuditLog>,
    pub users: Arc<dyn UserRepository>,
    pub referrals: Arc<dyn ReferralRepository>,
    pub appointments: Arc<dyn AppointmentRepository>,
    /// Doctors' profiles, availability and time off.
    pub schedules: Arc<dyn ScheduleRepository>,
    /// Tells the server instances about committed notifications.
    pub publisher: Arc<dyn NotificationPublisher>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RecordsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordsPorts").finish_non_exhaustive()
    }
}

/// The limits record operations work with, and where the clinic is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsConfig {
    /// How long an emergency access lasts.
    pub emergency_access_ttl: Duration,
    /// The clinic's time zone: doctors' weekly availability is in its local time, and so are
    /// the times notification titles show.
    pub clinic_time_zone: TimeZone,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            emergency_access_ttl: EMERGENCY_ACCESS_DURATION,
            clinic_time_zone: TimeZone::UTC,
        }
    }
}

/// Patients, their medical information, notes, care teams, emergency access and audit trail.
#[derive(Debug, Clone)]
pub struct RecordsService {
    ports: RecordsPorts,
    gate: Gatekeeper,
    config: RecordsConfig,
}

impl RecordsService {
    pub fn new(ports: RecordsPorts, config: RecordsConfig) -> Self {
        let gate = Gatekeeper::new(
            Arc::clone(&ports.access_facts),
            Arc::clone(&ports.audit),
            Arc::clone(&ports.clock),
        );
        Self {
            ports,
            gate,
            config,
        }
    }

    /// Hands committed notifications to the publisher (a no-op when there are none).
    async fn publish(&self, notifications: &[Notification]) {
        if !notifications.is_empty() {
            self.ports.publisher.publish(notifications).await;
        }
    }

    /// The active doctor with this id; otherwise the input's `field` is invalid.
    async fn active_doctor(
        &self,
        id: UserId,
        field: &str,
    ) -> Result<crate::identity::User, RecordsError> {
        match self.ports.users.find_by_id(id).await? {
            Some(user) if user.role == Role::Doctor && user.is_active() => Ok(user),
            _ => {
                let mut errors = ValidationErrors::new();
                errors.add(field, "must be the id of an active doctor");
                Err(errors.into())
            }
        }
    }

    /// How a user is named in notification titles.
    async fn name_of(&self, user_id: UserId) -> Result<String, RecordsError> {
        Ok(display_name(
            self.ports.users.find_by_id(user_id).await?.as_ref(),
        ))
    }

    /// Asks the policy whether `actor` may do `action` on the patient; a refusal is audited.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn authorize(
        &self,
        actor: &Actor,
        patient_id: PatientId,
        action: Action,
    ) -> Result<Grant, RecordsError> {
        Ok(self.gate.authorize(actor, patient_id, action).await?)
    }

    /// Asks the policy whether the actor's role may do a patient-independent action
    /// (registering, searching); a refusal is audited.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn authorize_role(
        &self,
        actor: &Actor,
        action: Action,
    ) -> Result<Grant, RecordsError> {
        Ok(self.gate.authorize_role(actor, action).await?)
    }

    /// A linked account must be a patient's.
    async fn check_linked_user(&self, details: &PatientDetails) -> Result<(), RecordsError> {
        let Some(user_id) = details.user_id else {
            return Ok(());
        };
        match self.ports.users.find_by_id(user_id).await? {
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
    /// `Forbidden`, `Invalid`, `IdentifierTaken`, `UserLinked`, `Internal`.
    pub async fn create_patient(
        &self,
        grant: &Grant,
        input: &PatientInput,
    ) -> Result<Patient, RecordsError> {
        let (basis, _) = grant.for_action(Action::CreatePatient)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        let details = input.parse(now.date())?;
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
                .ports
                .patients
                .create(&patient, first_member.as_slice(), &event)
                .await
            {
                Err(SavePatientError::MrnTaken) => patient.mrn = Mrn::random(),
                other => return other.map(|()| patient).map_err(Into::into),
            }
        }
        self.ports
            .patients
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
    ) -> Result<Page<PatientSummary, PatientId>, RecordsError> {
        let (basis, _) = grant.for_action(Action::SearchPatients)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        let scope = match search_scope(actor.role()) {
            Some(SearchAccess::All) => SearchScope::All,
            Some(SearchAccess::CareTeamOrExactMatch) => SearchScope::Doctor {
                doctor_id: actor.user_id(),
                at: now,
            },
            None => return Err(RecordsError::Forbidden),
        };
        let found = self
            .ports
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
    pub async fn get_patient(&self, actor: &Actor, id: PatientId) -> Result<Patient, RecordsError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadProfile)
            .await?;
        let patient = self
            .ports
            .patients
            .find(id)
            .await?
            .ok_or(RecordsError::NotFound)?;
        self.gate
            .allowed(actor, id, Action::ReadProfile.audit_action(), basis)
            .await?;
        Ok(patient)
    }

    /// The record linked to the calling patient's own account.
    ///
    /// # Errors
    /// `Forbidden` for staff, `NotFound` when no record is linked yet, `Internal`.
    pub async fn own_record(&self, actor: &Actor) -> Result<Patient, RecordsError> {
        if actor.role() != Role::Patient {
            return Err(self
                .gate
                .deny(
                    actor,
                    None,
                    Action::ReadProfile.audit_action(),
                    RecordsError::Forbidden,
                )
                .await);
        }
        let patient = self
            .ports
            .patients
            .find_by_user(actor.user_id())
            .await?
            .ok_or(RecordsError::NotFound)?;
        self.gate
            .allowed(
                actor,
                patient.id,
                Action::ReadProfile.audit_action(),
                Basis::OwnRecord,
            )
            .await?;
        Ok(patient)
    }

    /// Changes a patient's profile: `edit` receives the profile as input and returns it
    /// changed; the result is validated whole, as at registration.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid`, `IdentifierTaken`, `UserLinked`, `Stale`, `Internal`.
    pub async fn update_patient<F>(&self, grant: &Grant, edit: F) -> Result<Patient, RecordsError>
    where
        F: FnOnce(PatientInput) -> Result<PatientInput, ValidationErrors> + Send,
    {
        let (basis, id) = grant.for_patient_action(Action::UpdateProfile)?;
        let actor = &grant.actor();
        let current = self
            .ports
            .patients
            .find(id)
            .await?
            .ok_or(RecordsError::NotFound)?;
        let now = self.gate.now();
        let details = edit(PatientInput::from(&current.details))?.parse(now.date())?;
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
            .ports
            .patients
            .update(id, &details, current.updated_at, now, &event)
            .await?)
    }

    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn get_medical(
        &self,
        actor: &Actor,
        id: PatientId,
    ) -> Result<MedicalRecord, RecordsError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadMedical)
            .await?;
        let record = self.ports.medical.get(id).await?;
        self.gate
            .allowed(actor, id, Action::ReadMedical.audit_action(), basis)
            .await?;
        Ok(record)
    }

    /// Replaces a patient's medical information.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid`, `Internal`.
    pub async fn put_medical(
        &self,
        grant: &Grant,
        input: &MedicalInput,
    ) -> Result<MedicalRecord, RecordsError> {
        let (basis, id) = grant.for_patient_action(Action::UpdateMedical)?;
        let actor = &grant.actor();
        let now = self.gate.now();
        let info = input.parse(now.date())?;
        let event = self.gate.event(
            actor,
            Some(id),
            AuditAction::MedicalUpdate,
            Some(basis),
            now,
        );
        Ok(self
            .ports
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
    ) -> Result<Page<ClinicalNote, NoteId>, RecordsError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadNotes)
            .await?;
        let notes = self.ports.notes.list(id, kind, page).await?;
        self.gate
            .allowed(actor, id, Action::ReadNotes.audit_action(), basis)
            .await?;
        Ok(notes)
    }

    /// Writes a note, signed by the calling doctor.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (also when `amends` names no note of this patient),
    /// `Internal`.
    pub async fn add_note(
        &self,
        grant: &Grant,
        input: &NoteInput,
    ) -> Result<ClinicalNote, RecordsError> {
        let (basis, id) = grant.for_patient_action(Action::WriteNote)?;
        let actor = &grant.actor();
        let new = input.parse()?;
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
        self.ports
            .notes
            .append(&note, &event)
            .await
            .map_err(|e| match e {
                AppendNoteError::UnknownAmended => {
                    let mut errors = ValidationErrors::new();
                    errors.add(
                        "amends",
                        "must be the id of an earlier note of this patient",
                    );
                    RecordsError::Invalid(errors)
                }
                AppendNoteError::VisitNoteExists => RecordsError::VisitNoteExists,
                AppendNoteError::Repository(e) => e.into(),
            })
    }

    /// The care team, current and past members.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn care_team(
        &self,
        actor: &Actor,
        id: PatientId,
    ) -> Result<Vec<CareTeamMember>, RecordsError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadCareTeam)
            .await?;
        let members = self.ports.care_teams.list(id).await?;
        self.gate
            .allowed(actor, id, Action::ReadCareTeam.audit_action(), basis)
            .await?;
        Ok(members)
    }

    /// Adds an active doctor to the care team, from now on.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (not an active doctor), `AlreadyMember`, `Internal`.
    pub async fn add_member(
        &self,
        grant: &Grant,
        doctor_id: UserId,
    ) -> Result<CareTeamMember, RecordsError> {
        let (basis, id) = grant.for_patient_action(Action::AddCareTeamMember)?;
        let actor = &grant.actor();
        let doctor = self.active_doctor(doctor_id, "doctor_id").await?;
        let now = self.gate.now();
        let member = CareTeamMember {
            id: MembershipId::generate(),
            patient_id: id,
            doctor_id,
            doctor_name: Some(doctor.full_name),
            started_at: now,
            ended_at: None,
            added_by: actor.user_id(),
            ended_by: None,
            referral_id: None,
            appointment_id: None,
        };
        let event = self
            .gate
            .event(actor, Some(id), AuditAction::CareTeamAdd, Some(basis), now);
        let mut notices = Vec::new();
        if doctor_id != actor.user_id() {
            let by = self.name_of(actor.user_id()).await?;
            notices.push(NewNotification {
                recipient: Recipient::User(doctor_id),
                kind: NotificationKind::CareTeamAdded,
                data: NotificationData {
                    title: format!("{by} added you to a patient's care team"),
                    patient_id: Some(*id.as_uuid()),
                    actor_id: Some(*actor.user_id().as_uuid()),
                    ..NotificationData::default()
                },
            });
        }
        let stored = self
            .ports
            .care_teams
            .add(&member, &event, &notices)
            .await
            .map_err(|e| match e {
                AddMemberError::AlreadyMember => RecordsError::AlreadyMember,
                AddMemberError::Repository(e) => e.into(),
            })?;
        self.publish(&stored).await;
        Ok(member)
    }

    /// Ends a doctor's current membership; the membership stays as history.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `NotMember`, `Internal`.
    pub async fn end_membership(
        &self,
        actor: &Actor,
        id: PatientId,
        doctor_id: UserId,
    ) -> Result<CareTeamMember, RecordsError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::EndCareTeamMembership)
            .await?;
        let now = self.gate.now();
        let event = self
            .gate
            .event(actor, Some(id), AuditAction::CareTeamEnd, Some(basis), now);
        self.ports
            .care_teams
            .end(id, doctor_id, now, actor.user_id(), &event)
            .await?
            .ok_or(RecordsError::NotMember)
    }

    /// Breaks the glass: the calling doctor may read the patient for the next 60 minutes.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Invalid` (reason), `Internal`.
    pub async fn request_emergency_access(
        &self,
        grant: &Grant,
        reason: Option<&str>,
    ) -> Result<EmergencyAccess, RecordsError> {
        let (basis, id) = grant.for_patient_action(Action::RequestEmergencyAccess)?;
        let actor = &grant.actor();
        let mut errors = ValidationErrors::new();
        let reason = match reason {
            Some(raw) => errors.check("reason", EmergencyReason::parse(raw)),
            None => {
                errors.add("reason", "is required");
                None
            }
        };
        let Some(reason) = reason else {
            return Err(errors.into());
        };
        let now = self.gate.now();
        let access = EmergencyAccess {
            id: EmergencyAccessId::generate(),
            patient_id: id,
            doctor_id: actor.user_id(),
            doctor_name: None,
            reason,
            granted_at: now,
            expires_at: now + self.config.emergency_access_ttl,
        };
        let event = self.gate.event(
            actor,
            Some(id),
            AuditAction::EmergencyAccessGrant,
            Some(basis),
            now,
        );
        let by = self.name_of(actor.user_id()).await?;
        let notice = NewNotification {
            recipient: Recipient::ActiveAdmins,
            kind: NotificationKind::EmergencyAccessUsed,
            data: NotificationData {
                title: format!("{by} used emergency access to a patient's record"),
                patient_id: Some(*id.as_uuid()),
                actor_id: Some(*actor.user_id().as_uuid()),
                emergency_access_id: Some(*access.id.as_uuid()),
                ..NotificationData::default()
            },
        };
        let stored = self
            .ports
            .emergency_accesses
            .grant(&access, &event, &[notice])
            .await?;
        self.publish(&stored).await;
        Ok(access)
    }

    /// Emergency accesses, for administrators: optionally of one patient, by one doctor, and
    /// only those still active (`Some(true)`) or only those expired (`Some(false)`) now.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn list_emergency_accesses(
        &self,
        actor: &Actor,
        patient_id: Option<PatientId>,
        doctor_id: Option<UserId>,
        active: Option<bool>,
        page: PageRequest<EmergencyAccessId>,
    ) -> Result<Page<EmergencyAccess, EmergencyAccessId>, RecordsError> {
        if actor.role() != Role::Admin {
            return Err(RecordsError::Forbidden);
        }
        let now = self.gate.now();
        let filter = EmergencyAccessFilter {
            patient_id,
            doctor_id,
            active_at: (active == Some(true)).then_some(now),
            expired_at: (active == Some(false)).then_some(now),
        };
        Ok(self.ports.emergency_accesses.list(filter, page).await?)
    }

    /// Who accessed the patient's record: for the patient themself and administrators.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn access_log(
        &self,
        actor: &Actor,
        id: PatientId,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, RecordsError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadAccessLog)
            .await?;
        let filter = AuditFilter {
            patient_id: Some(id),
            ..AuditFilter::default()
        };
        let entries = self.gate.entries(filter, page).await?;
        self.gate
            .allowed(actor, id, Action::ReadAccessLog.audit_action(), basis)
            .await?;
        Ok(entries)
    }

    /// The whole audit trail, filtered, for administrators.
    ///
    /// # Errors
    /// `Forbidden`, `Internal`.
    pub async fn audit_trail(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        page: PageRequest<AuditEventId>,
    ) -> Result<Page<AuditEntry, AuditEventId>, RecordsError> {
        if actor.role() != Role::Admin {
            return Err(RecordsError::Forbidden);
        }
        Ok(self.gate.entries(filter, page).await?)
    }
}

/// How a user is named in notification titles: doctors with their title.
fn display_name(user: Option<&crate::identity::User>) -> String {
    match user {
        Some(user) if user.role == Role::Doctor => format!("Dr {}", user.full_name.as_str()),
        Some(user) => user.full_name.as_str().to_owned(),
        None => "A former colleague".to_owned(),
    }
}

#[path = "referral_cases.rs"]
mod referral_cases;

#[path = "schedule_cases.rs"]
mod schedule_cases;
pub use schedule_cases::{Availability, FreeSlots};

#[path = "appointment_cases.rs"]
mod appointment_cases;

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "schedule_cases_tests.rs"]
mod schedule_cases_tests;
