//! Who looks after a patient: reading the care team, adding doctors to it and ending their
//! membership, through the access policy and audited.

use std::sync::Arc;

use crate::access::{AccessError, Action, Actor, Grant};
use crate::audit::{AuditAction, Gatekeeper};
use crate::identity::{UserId, UserRepository, active_doctor, name_of};
use crate::kernel::{RepositoryError, ValidationErrors};
use crate::notifications::{
    NewNotification, NotificationData, NotificationKind, NotificationPublisher, Recipient,
    publish_committed,
};
use crate::patients::{
    AddMemberError, CareTeamMember, CareTeamRepository, MembershipId, PatientId,
};

/// Why a care-team operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CareTeamError {
    /// The caller may not do this (403): their role never may, or they see the patient only
    /// through an emergency access, which grants reading alone.
    #[error("you may not do this")]
    Forbidden,
    /// No such patient, or none the caller may see (404): the two are not told apart.
    #[error("no such patient")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    #[error("the doctor is already on the care team")]
    AlreadyMember,
    #[error("the doctor is not on the care team")]
    NotMember,
    #[error(transparent)]
    Internal(#[from] RepositoryError),
}

impl From<AccessError> for CareTeamError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Forbidden => Self::Forbidden,
            AccessError::NotFound => Self::NotFound,
            AccessError::Internal(e) => Self::Internal(e),
        }
    }
}

/// Patients' care teams.
#[derive(Clone)]
pub struct CareTeamService {
    gate: Gatekeeper,
    care_teams: Arc<dyn CareTeamRepository>,
    users: Arc<dyn UserRepository>,
    publisher: Arc<dyn NotificationPublisher>,
}

impl std::fmt::Debug for CareTeamService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CareTeamService").finish_non_exhaustive()
    }
}

impl CareTeamService {
    pub fn new(
        gate: Gatekeeper,
        care_teams: Arc<dyn CareTeamRepository>,
        users: Arc<dyn UserRepository>,
        publisher: Arc<dyn NotificationPublisher>,
    ) -> Self {
        Self {
            gate,
            care_teams,
            users,
            publisher,
        }
    }

    /// The care team, current and past members.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `Internal`.
    pub async fn care_team(
        &self,
        actor: &Actor,
        id: PatientId,
    ) -> Result<Vec<CareTeamMember>, CareTeamError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::ReadCareTeam)
            .await?;
        let members = self.care_teams.list(id).await?;
        self.gate
            .allowed(actor, id, AuditAction::CareTeamRead, basis)
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
    ) -> Result<CareTeamMember, CareTeamError> {
        let (basis, id) = grant.for_patient_action(Action::AddCareTeamMember)?;
        let actor = &grant.actor();
        let doctor =
            active_doctor::<CareTeamError>(self.users.as_ref(), doctor_id, "doctor_id").await?;
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
            let by = name_of(self.users.as_ref(), actor.user_id()).await?;
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
            .care_teams
            .add(&member, &event, &notices)
            .await
            .map_err(|e| match e {
                AddMemberError::AlreadyMember => CareTeamError::AlreadyMember,
                AddMemberError::Repository(e) => e.into(),
            })?;
        publish_committed(self.publisher.as_ref(), &stored).await;
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
    ) -> Result<CareTeamMember, CareTeamError> {
        let basis = self
            .gate
            .decide_on_patient(actor, id, Action::EndCareTeamMembership)
            .await?;
        let now = self.gate.now();
        let event = self
            .gate
            .event(actor, Some(id), AuditAction::CareTeamEnd, Some(basis), now);
        self.care_teams
            .end(id, doctor_id, now, actor.user_id(), &event)
            .await?
            .ok_or(CareTeamError::NotMember)
    }
}
